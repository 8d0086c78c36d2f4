"""The daemon's domain: containers and their lifecycle, images, networks, volumes and
events, persisted so that a restart of the daemon loses nothing. No HTTP parsing
and no syscalls here: the api layer calls in, runtime and network are called out to."""
