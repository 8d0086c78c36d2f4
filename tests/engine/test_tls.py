"""refimpld's TCP listeners: a non-loopback address only with --tlsverify and certificates
(client certificates required), checked with certificates made here by the openssl CLI
and the real docker CLI as the client. Loopback TCP without TLS keeps working."""
from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
OPENSSL = shutil.which("openssl")
BRIDGE = "dsk1"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")


def host_address() -> str | None:
    """One of this machine's own non-loopback IPv4 addresses (eth0's, usually)."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout
    try:
        links = json.loads(out or "[]")
    except ValueError:
        return None
    addrs = [(link["ifname"], a["local"]) for link in links for a in link.get("addr_info", [])]
    addrs.sort(key=lambda x: x[0] != "eth0")
    return addrs[0][1] if addrs else None


def openssl(*args: str, cwd: Path) -> None:
    p = subprocess.run([OPENSSL, *args], cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, (args, p.stderr)


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=d)


def make_cert(d: Path, name: str, ca: str, *, server_ip: str | None = None) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
            "-out", f"{name}.csr", cwd=d)
    ext = d / f"{name}.ext"
    if server_ip:
        ext.write_text(f"subjectAltName=IP:{server_ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    else:
        ext.write_text("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
            "-CAcreateserial", "-days", "2", "-extfile", ext.name, "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def certs():
    d = Path(tempfile.mkdtemp(prefix="dsk-tls-", dir="/tmp"))
    addr = host_address()
    make_ca(d, "ca")
    make_cert(d, "server", "ca", server_ip=addr or "127.0.0.1")
    make_cert(d, "client", "ca")
    make_ca(d, "otherca")
    make_cert(d, "intruder", "otherca")
    yield d, addr
    shutil.rmtree(d, ignore_errors=True)


def refimpld(d: Path, *args: str, wait: bool = True) -> subprocess.Popen:
    log = open(d / "refimpld.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "refimpl.daemon", "--data-root", str(d / "data"), "--exec-root",
         str(d / "exec"), "--bridge", BRIDGE, "--log-level", "info", *args],
        cwd=ROOT, stdout=log, stderr=log, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    log.close()
    return proc


def listening_on(d: Path, proc: subprocess.Popen, scheme: str) -> tuple[str, int]:
    """The TCP address refimpld logged it listens on (it binds port 0)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(rf"API listen on {scheme}://([^\s]+):(\d+)", (d / "refimpld.log").read_text())
        if m:
            return m.group(1), int(m.group(2))
        assert proc.poll() is None, (d / "refimpld.log").read_text()[-2000:]
        time.sleep(0.05)
    raise AssertionError("refimpld did not listen in 30 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:
        from refimpl.network.bridge import delete_bridge
        delete_bridge(BRIDGE)
    except Exception:  # noqa: BLE001 - not made when the daemon refused to start
        pass


@pytest.fixture
def work():
    d = Path(tempfile.mkdtemp(prefix="dsk-tlsd-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(work: Path, *args: str) -> str:
    """Run refimpld with args; it must exit 1 with one line on stderr, having set up nothing."""
    p = subprocess.run([sys.executable, "-m", "refimpl.daemon", "--data-root", str(work / "data"),
                        "--exec-root", str(work / "exec"), "--bridge", BRIDGE, *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert p.returncode == 1, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert not (work / "data").exists() and not (work / "exec").exists()
    assert not os.path.exists(f"/sys/class/net/{BRIDGE}")
    return lines[0]


# ---------------------------------------------------------------------------- refusals
def test_all_addresses_without_tlsverify_is_refused(work):
    port = free_port()
    line = refused(work, "-H", f"tcp://0.0.0.0:{port}")
    assert line.startswith("refimpld: refusing to listen on tcp://0.0.0.0:") and "--tlsverify" in line
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0       # nothing listens


def test_the_hosts_own_address_without_tlsverify_is_refused(work, certs):
    d, addr = certs
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    line = refused(work, "-H", f"tcp://{addr}:0")
    assert f"tcp://{addr}:0 without --tlsverify" in line
    # --tls alone (no client certificates) is not enough either
    line = refused(work, "-H", f"tcp://{addr}:0", "--tls", "--tlscert", str(d / "server.pem"),
                   "--tlskey", str(d / "server-key.pem"))
    assert "without --tlsverify" in line


def test_tlsverify_without_all_three_files_is_refused(work, certs):
    d, _ = certs
    line = refused(work, "-H", "tcp://0.0.0.0:0", "--tlsverify", "--tlscert", str(d / "server.pem"))
    assert line == "refimpld: --tlscacert and --tlskey are required with --tlsverify"
    line = refused(work, "-H", "tcp://0.0.0.0:0", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                   "--tlscert", str(d / "server.pem"), "--tlskey", str(d / "missing-key.pem"))
    assert line == f"refimpld: --tlskey {d / 'missing-key.pem'}: no such file"
    line = refused(work, "-H", "tcp://0.0.0.0:0", "--tlsverify", "--tlscacert", str(d / "ca.pem"),
                   "--tlscert", str(d / "server.pem"), "--tlskey", str(d / "client-key.pem"))
    assert line.startswith("refimpld: cannot load the TLS certificates:")     # key of another cert


# ---------------------------------------------------------------------------- TLS in use
def docker(*args: str, env_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_CONFIG=str(env_dir), DOCKER_CLI_HINTS="false")
    for k in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        env.pop(k, None)
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, env=env, timeout=60)


def tls_client(d: Path, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(d / f"{cert}.pem"), str(d / f"{cert}-key.pem"))
    return ctx


def ping(addr: str, port: int, ctx: ssl.SSLContext | None) -> int:
    conn = (http.client.HTTPSConnection(addr, port, context=ctx, timeout=20) if ctx
            else http.client.HTTPConnection(addr, port, timeout=20))
    try:
        conn.request("GET", "/_ping")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.skipif(not os.path.exists(DOCKER), reason="the docker CLI is not installed")
def test_tls_listener_on_the_hosts_address_requires_a_client_certificate_of_its_ca(work, certs):
    d, addr = certs
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    proc = refimpld(work, "-H", f"unix://{work / 'refimpl.sock'}", "-H", f"tcp://{addr}:0", "--tlsverify",
                    "--tlscacert", str(d / "ca.pem"), "--tlscert", str(d / "server.pem"),
                    "--tlskey", str(d / "server-key.pem"))
    try:
        host, port = listening_on(work, proc, "https")
        assert ipaddress.ip_address(host) == ipaddress.ip_address(addr)
        url = f"tcp://{addr}:{port}"
        tls = ["--tlsverify", "--tlscacert", str(d / "ca.pem")]
        for args in (("version", "--format", "{{.Server.APIVersion}}"), ("ps", "-a")):
            p = docker(*tls, "--tlscert", str(d / "client.pem"), "--tlskey", str(d / "client-key.pem"),
                       "-H", url, *args, env_dir=work)
            assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("CONTAINER ID")
        assert ping(addr, port, tls_client(d, "client")) == 200
        # no client certificate: the handshake fails, nothing is answered
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            ping(addr, port, tls_client(d, None))
        # a client certificate signed by another CA: refused the same way, by the CLI too
        with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
            ping(addr, port, tls_client(d, "intruder"))
        p = docker(*tls, "--tlscert", str(d / "intruder.pem"), "--tlskey", str(d / "intruder-key.pem"),
                   "-H", url, "ps", env_dir=work)
        assert p.returncode != 0 and "CONTAINER ID" not in p.stdout, p.stderr
        # plain HTTP gets no API either
        with pytest.raises((ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine)):
            assert ping(addr, port, None) != 200
        # the UNIX socket is there, mode 0660, and the daemon still answers after the refusals
        assert (work / "refimpl.sock").stat().st_mode & 0o777 == 0o660
        assert ping(addr, port, tls_client(d, "client")) == 200
        assert proc.poll() is None
        log = (work / "refimpld.log").read_text()
        assert "Traceback" not in log, log[-3000:]
    finally:
        stop(proc)


def test_loopback_tcp_without_tls_keeps_working(work):
    proc = refimpld(work, "-H", "tcp://127.0.0.1:0")
    try:
        host, port = listening_on(work, proc, "http")
        assert ping(host, port, None) == 200
    finally:
        stop(proc)
