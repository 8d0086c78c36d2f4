"""The refimpl-registry command as a real process: listeners, socket mode, clean stop, bad input."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "refimpl.registry.server", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_serves_tcp_and_unix_and_stops_on_sigterm(workdir):
    sock = workdir / "registry.sock"
    proc = run("--root", str(workdir / "root"), "--listen", "127.0.0.1:0", "--listen", f"unix://{sock}")
    try:
        tcp = proc.stdout.readline().split()[-1]
        assert proc.stdout.readline().split()[-1] == f"unix://{sock}"
        host, port = tcp[len("http://"):].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/v2/")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("docker-distribution-api-version") == "registry/2.0"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(b"GET /v2/_catalog HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert (workdir / "root" / "blobs").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "Traceback" not in err
    assert not sock.exists()


@pytest.mark.parametrize("args, message", [
    (["--listen", "nowhere"], "invalid address 'nowhere'"),
    (["--auth", "basic"], "basic auth needs an htpasswd file"),
    (["--htpasswd", "/nonexistent/htpasswd"], "No such file or directory"),
])
def test_bad_input_is_one_line(workdir, args, message):
    proc = run("--root", str(workdir / "root"), *args)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 1 and message in err
    assert err.count("\n") == 1 and err.startswith("refimpl-registry: ")
    assert not (workdir / "root").exists()
