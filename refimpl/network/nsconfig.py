"""Configure one more interface inside a running container's network namespace.

`network connect` on a running container puts a veth end into its namespace
(bridge.attach); its address must then be set from inside. A short-lived
helper process enters the namespace with setns(2) (Python 3.11 has no wrapper:
ctypes) and runs bridge.configure_inside there. A separate process, because
setns changes the calling thread's namespace and the daemon's threads must stay
in the host's.

    python -m refimpl.network.nsconfig PID IFNAME ADDRESS/PREFIX MAC
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys

CLONE_NEWNET = 0x40000000


def enter_netns(pid: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")
    finally:
        os.close(fd)


def configure(pid: int, ifname: str, address: str, mac: str) -> None:
    """Run the helper; raises NetworkError with its one-line message."""
    from .bridge import NetworkError
    proc = subprocess.run([sys.executable, "-m", "refimpl.network.nsconfig", str(pid), ifname, address, mac],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode:
        raise NetworkError((proc.stderr.strip().splitlines() or ["configuring the interface failed"])[-1])


def main(argv: list[str]) -> int:
    from .bridge import NetworkError, configure_inside
    try:
        pid, ifname, address, mac = int(argv[0]), argv[1], argv[2], argv[3]
        enter_netns(pid)
        configure_inside(ifname, address, None, mac, new_name=ifname)
    except (NetworkError, OSError, ValueError, IndexError) as e:
        print(f"cannot configure {argv[1:2]} in process {argv[:1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
