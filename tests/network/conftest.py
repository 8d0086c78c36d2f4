"""Fixtures for the network tests: real bridges, real namespaces, real rules.

Everything a test creates is named so it cannot be mistaken for anything else
on a shared host (bridges ``dstest…``, iptables chains ``DSTEST-…``) and is
removed by the fixture that made it, whether the test passed or not.
Namespaces are held by ``unshare -n sleep``: killing the sleeper frees the
namespace and the veth ends inside it.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import subprocess
import time
import traceback

import pytest

CHAIN_PREFIX = "DSTEST-"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root for netlink, namespaces and iptables"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed"
    for tool in ("iptables", "unshare", "nsenter", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True).returncode:
        return "iptables does not work here (no netfilter?)"
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode:
        return "cannot create network namespaces here"
    return None


@pytest.fixture(scope="session")
def netadmin():
    """Skip (with the reason) unless real bridges/netns/iptables are usable."""
    reason = _missing()
    if reason:
        pytest.skip(reason)


def run_in_netns(pid: int, fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` in a forked child inside ``pid``'s network
    namespace; return its (picklable) result or raise its error here."""
    import pickle
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(r)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            payload = (True, fn(*args, **kwargs))
        except BaseException as e:  # report everything to the parent
            payload, status = (False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"), 1
        with os.fdopen(w, "wb") as f:
            pickle.dump(payload, f)
        os._exit(status)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        ok, value = pickle.load(f)
    os.waitpid(child, 0)
    if not ok:
        raise AssertionError(value)
    return value


def in_netns(pid: int, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """Run a command inside ``pid``'s network namespace."""
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *argv],
                          capture_output=True, text=True, timeout=timeout)


def ping(pid: int, address, wait: int = 2) -> bool:
    """One echo request from inside ``pid``'s namespace; True if answered."""
    return in_netns(pid, "busybox", "ping", "-c", "1", "-W", str(wait),
                    str(address)).returncode == 0


@pytest.fixture
def netns(netadmin):
    """Factory: a new network namespace, held by a sleeping process; returns its pid."""
    procs = []

    def make() -> int:
        p = subprocess.Popen(["unshare", "-n", "sleep", "120"])
        procs.append(p)
        own = os.readlink("/proc/self/ns/net")
        for _ in range(200):  # until unshare has switched namespaces and exec'd
            try:
                if os.readlink(f"/proc/{p.pid}/ns/net") != own:
                    return p.pid
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("unshare -n did not enter a new network namespace")

    yield make
    for p in procs:
        p.kill()
        p.wait()


@pytest.fixture
def bridge_name(netadmin):
    """A fresh ``dstest…`` bridge name, and the removal of whatever it became."""
    from refimpl.network import bridge
    name = "dstest" + secrets.token_hex(4)
    yield name
    bridge.delete_bridge(name, chain_prefix=CHAIN_PREFIX)


@pytest.fixture
def links(netadmin):
    """A list the test appends host-side link names to; each is deleted afterwards."""
    from refimpl.network import bridge
    names: list[str] = []
    yield names
    for name in names:
        bridge.detach(name)
