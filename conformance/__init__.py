"""The dockspec conformance suite: runs features/ against any container engine."""
