"""Step definitions: running the CLI, a terminal, the API, and checking what happened.

Steps are written to read like the documentation they check. Each one is
registered for Given, When and Then alike (`step`), so a scenario can use it
under any keyword. Step texts are regular expressions anchored at both ends;
`conformance check-steps` fails when one feature line matches two of them.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import time
from pathlib import Path

from pytest_bdd import given, parsers, then
from pytest_bdd import step as any_step

from .world import World, as_text, dig

Q = r'"(?P<{}>[^"]*)"'          # a quoted value without quotes inside
QQ = r'"(?P<{}>.*)"'            # a quoted value that may contain quotes


def step(pattern: str):
    """Register one regex step for Given, When and Then."""
    rx = parsers.re("^" + pattern + "$")

    def deco(fn):
        # stacklevel 2: register the step in the module that uses @step.
        return any_step(rx, stacklevel=2)(fn)
    return deco


def text(world: World, value: str) -> str:
    """Placeholders substituted and \\n, \\t escapes turned into characters."""
    return world.sub(value).replace("\\n", "\n").replace("\\t", "\t")


def wait_for(check, what: str, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ok, last = check()
        except AssertionError as e:
            ok, last = False, str(e)
        if ok:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}; last seen: {last}")


# --------------------------------------------------------------------------- CLI

@step(r"I run " + QQ.format("cmd") + r" with input " + Q.format("data"))
def run_with_input(world, cmd, data):
    world.run(cmd, input=text(world, data))


@step(r"I run " + QQ.format("cmd") + r" against the second daemon")
def run_second(world, cmd):
    assert world.second is not None, "no second daemon was started in this scenario"
    world.run(cmd, second=True)


@step(r"I run " + QQ.format("cmd") + r" in a terminal")
def run_in_terminal(world, cmd):
    world.open_terminal(cmd)


@step(r'I run (?!.*" (with input "|in a terminal$|against the second daemon$))' + QQ.format("cmd"))
def run_cmd(world, cmd):
    world.run(cmd)


@step(r"I successfully run " + QQ.format("cmd"))
def run_ok(world, cmd):
    r = world.run(cmd)
    assert r.rc == 0, f"command failed:\n{r.describe()}"


@step(r"it succeeds")
def it_succeeds(world):
    r = world.result
    assert r.rc == 0, f"expected success:\n{r.describe()}"


@step(r"it fails")
def it_fails(world):
    r = world.result
    assert r.rc != 0, f"expected a failure:\n{r.describe()}"


@step(r"the exit code is (?P<code>\d+)")
def exit_code(world, code):
    r = world.result
    assert r.rc == int(code), f"expected exit code {code}:\n{r.describe()}"


@step(r"it took at least (?P<n>\d+) seconds?")
def took_at_least(world, n):
    assert world.result.seconds >= int(n) - 0.05, f"took only {world.result.seconds:.2f}s"


def _stream(world, which: str) -> str:
    r = world.result
    return {"output": r.out, "error output": r.err, "combined output": r.out + r.err}[which]


STREAM = r"the (?P<which>output|error output|combined output)"


@step(STREAM + r" contains " + QQ.format("value"))
def output_contains(world, which, value):
    v = text(world, value)
    assert v in _stream(world, which), f"{which} lacks {v!r}:\n{world.result.describe()}"


@step(STREAM + r" does not contain " + QQ.format("value"))
def output_lacks(world, which, value):
    v = text(world, value)
    assert v not in _stream(world, which), f"{which} contains {v!r}:\n{world.result.describe()}"


@step(STREAM + r" contains " + Q.format("value") + r" (?P<n>\d+) times?")
def output_contains_n(world, which, value, n):
    got = _stream(world, which).count(text(world, value))
    assert got == int(n), f"{which} contains {value!r} {got} times, not {n}:\n{world.result.describe()}"


@step(STREAM + r" is " + QQ.format("value"))
def output_is(world, which, value):
    v = text(world, value)
    got = _stream(world, which).strip().replace("\r\n", "\n")
    assert got == v, f"{which} is {got!r}, expected {v!r}:\n{world.result.describe()}"


@step(STREAM + r" matches " + QQ.format("rx"))
def output_matches(world, which, rx):
    pattern = world.sub(rx)
    got = _stream(world, which).strip()
    assert re.search(pattern, got, re.M), f"{which} does not match /{pattern}/:\n{world.result.describe()}"


@step(r"the output has at most (?P<n>\d+) lines")
def output_lines(world, n):
    lines = [ln for ln in world.result.out.splitlines() if ln.strip()]
    assert len(lines) <= int(n), f"{len(lines)} lines:\n{world.result.describe()}"


@step(r"the JSON output field " + Q.format("path") + r" is " + QQ.format("value"))
def json_output_field(world, path, value):
    got = as_text(dig(json.loads(world.result.out), path))
    assert got == text(world, value), f"{path} is {got!r}, expected {value!r}"


@step(r"the JSON output field " + Q.format("path") + r" does not start with " + Q.format("value"))
def json_output_field_prefix(world, path, value):
    got = as_text(dig(json.loads(world.result.out), path))
    assert not got.startswith(value), f"{path} is {got!r}"


@step(r"I remember the output as " + Q.format("key"))
def remember_output(world, key):
    world.saved[key] = world.result.out.strip()


# --------------------------------------------------------------------------- terminal

@step(r"I type " + QQ.format("line"))
def type_line(world, line):
    world.terminal.type(text(world, line))


@step(r"the terminal shows " + QQ.format("rx"))
def terminal_shows(world, rx):
    world.terminal.wait_for(world.sub(rx))


@step(r"the terminal process ends with exit code (?P<code>\d+)")
def terminal_exit(world, code):
    got = world.terminal.wait_exit()
    assert got == int(code), f"terminal process exited {got}, expected {code}:\n{world.terminal.text()[-2000:]}"


# --------------------------------------------------------------------------- API

@step(r"I call " + Q.format("req") + r" on the API")
def call_api(world, req):
    method, path = world.sub(req).split(" ", 1)
    world.api = world.target.api(method, path)


@step(r"I call " + Q.format("req") + r" on the second daemon's TCP endpoint")
def call_api_second(world, req):
    assert world.second is not None, "no second daemon was started in this scenario"
    method, path = world.sub(req).split(" ", 1)
    world.api = world.target.api(method, path, endpoint=world.second.tcp)


@step(r"the API answers (?P<code>\d+)")
def api_status(world, code):
    a = world.api
    assert a.status == int(code), f"API answered {a.status}: {a.body[:500]!r}"


@step(r"the API body is " + QQ.format("value"))
def api_body(world, value):
    assert world.api.body.decode() == text(world, value), f"body is {world.api.body[:300]!r}"


@step(r"the API response has the header " + Q.format("name"))
def api_has_header(world, name):
    assert name.lower() in world.api.headers, f"headers: {world.api.headers}"


@step(r"the API response header " + Q.format("name") + r" is " + Q.format("value"))
def api_header_is(world, name, value):
    got = world.api.headers.get(name.lower())
    assert got == value, f"header {name} is {got!r}, expected {value!r}"


def _api_field(world, path):
    return dig(world.api.json(), path)


@step(r"the API JSON field " + Q.format("path") + r" is " + QQ.format("value"))
def api_field_is(world, path, value):
    got = as_text(_api_field(world, path))
    assert got == text(world, value), f"{path} is {got!r}, expected {value!r}"


@step(r"the API JSON field " + Q.format("path") + r" matches " + QQ.format("rx"))
def api_field_matches(world, path, rx):
    got = as_text(_api_field(world, path))
    assert re.search(rx, got), f"{path} is {got!r}, does not match /{rx}/"


@step(r"the API JSON field " + Q.format("path") + r" contains " + QQ.format("value"))
def api_field_contains(world, path, value):
    got = as_text(_api_field(world, path))
    assert text(world, value) in got, f"{path} is {got!r}, lacks {value!r}"


@step(r"the API JSON field " + Q.format("path") + r" is at least (?P<n>\d+)")
def api_field_at_least(world, path, n):
    got = _api_field(world, path)
    assert isinstance(got, int) and got >= int(n), f"{path} is {got!r}"


# --------------------------------------------------------------------------- objects

KIND = r"(?:(?P<kind>volume|network|image|container) )?"


def field_of(world, path, obj, kind=None):
    return dig(world.inspect(obj, kind or ""), path)


@step(r"the field " + Q.format("path") + r" of " + KIND + Q.format("obj") + r" is " + Q.format("value"))
def field_is(world, path, obj, value, kind=None):
    got = as_text(field_of(world, path, obj, kind))
    assert got == text(world, value), f"{path} of {world.sub(obj)} is {got!r}, expected {text(world, value)!r}"


@step(r"the field " + Q.format("path") + r" of " + Q.format("obj") + r" is not " + Q.format("value"))
def field_is_not(world, path, obj, value):
    got = as_text(field_of(world, path, obj))
    assert got != text(world, value), f"{path} of {world.sub(obj)} is still {got!r}"


@step(r"the field " + Q.format("path") + r" of " + Q.format("obj") + r" contains " + Q.format("value"))
def field_contains(world, path, obj, value):
    got = field_of(world, path, obj)
    v = text(world, value)
    ok = (v in got) if isinstance(got, (dict, str)) else any(v in str(x) for x in (got or []))
    assert ok, f"{path} of {world.sub(obj)} is {got!r}, lacks {v!r}"


@step(r"the field " + Q.format("path") + r" of " + Q.format("obj") + r" is a number above (?P<n>\d+)")
def field_above(world, path, obj, n):
    got = field_of(world, path, obj)
    assert isinstance(got, int) and got > int(n), f"{path} is {got!r}"


@step(r"the field " + Q.format("path") + r" of " + Q.format("a") +
      r" is the same as the field " + Q.format("path2") + r" of " + Q.format("b"))
def field_same(world, path, a, path2, b):
    x, y = field_of(world, path, a), field_of(world, path2, b)
    assert x == y, f"{path} of {world.sub(a)} is {x!r}; {path2} of {world.sub(b)} is {y!r}"


@step(r"I remember the field " + Q.format("path") + r" of " + Q.format("obj") + r" as " + Q.format("key"))
def remember_field(world, path, obj, key):
    world.saved[key] = as_text(field_of(world, path, obj))


@step(r"I wait until the field " + Q.format("path") + r" of " + Q.format("obj") + r" is " + Q.format("value"))
def wait_field(world, path, obj, value):
    v = text(world, value)
    wait_for(lambda: (as_text(field_of(world, path, obj)) == v, as_text(field_of(world, path, obj))),
             f"{path} of {world.sub(obj)} is {v!r}")


@step(r"I wait until the field " + Q.format("path") + r" of " + Q.format("obj") + r" is " + Q.format("value")
      + r" and " + Q.format("path2") + r" is " + Q.format("value2"))
def wait_two_fields(world, path, obj, value, path2, value2):
    def check():
        data = world.inspect(obj)
        got = (as_text(dig(data, path)), as_text(dig(data, path2)))
        return got == (value, value2), got
    wait_for(check, f"{path} is {value!r} and {path2} is {value2!r}", timeout=60)


@step(r"I wait until the field " + Q.format("path") + r" of " + Q.format("obj") + r" is at least (?P<n>\d+)")
def wait_field_at_least(world, path, obj, n):
    def check():
        got = field_of(world, path, obj)
        return isinstance(got, int) and got >= int(n), got
    wait_for(check, f"{path} of {world.sub(obj)} is at least {n}", timeout=60)


@step(r"I wait until the logs of " + Q.format("obj") + r" contain " + Q.format("value"))
def wait_logs(world, obj, value):
    def check():
        r = world.target.run(["logs", world.sub(obj)])
        return value in r.out, r.out[-300:]
    wait_for(check, f"the logs of {world.sub(obj)} contain {value!r}")


@step(r"the (?P<kind>container|image|volume|network) " + Q.format("obj") + r" does not exist")
def does_not_exist(world, kind, obj):
    r = world.target.run([kind, "inspect", world.sub(obj)])
    assert r.rc != 0, f"{kind} {world.sub(obj)} still exists"


@step(r"the output is the first 12 characters of the field " + Q.format("path") + r" of " + Q.format("obj"))
def output_is_short_id(world, path, obj):
    want = str(field_of(world, path, obj))[:12]
    assert world.result.out.strip() == want, f"output {world.result.out.strip()!r}, expected {want!r}"


# --------------------------------------------------------------------------- images and layers

@step(r"a tag of " + Q.format("image") + r" that exists only in the registry, called " + Q.format("name"))
def fresh_tag(world, image, name):
    """Copy the image's manifest to a new tag in the registry: absent locally, by construction."""
    import urllib.request
    info = world.session.images[image]
    ref = world.sub(name)
    repo_path = info["repo"].split("/", 1)[1]
    base = f"http://{info['registry']}/v2/{repo_path}/manifests/"
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    with urllib.request.urlopen(urllib.request.Request(base + "latest", headers={"Accept": accept})) as r:
        body, mtype = r.read(), r.headers["Content-Type"]
    req = urllib.request.Request(base + ref.rsplit(":", 1)[1], data=body, method="PUT",
                                 headers={"Content-Type": mtype})
    urllib.request.urlopen(req).close()
    assert world.target.run(["image", "inspect", ref]).rc != 0, f"{ref} is already present locally"


@step(r"the image " + Q.format("image") + r" is present locally")
def image_present(world, image):
    ref = world.session.images[image]["ref"]
    if world.target.run(["image", "inspect", ref]).rc != 0:
        world.target.ok(["pull", ref], timeout=300)


@step(r"I compare the layers of " + Q.format("a") + r" with those of " + Q.format("b"))
def compare_layers(world, a, b):
    world.saved["_layers_a"] = json.dumps(field_of(world, "RootFS.Layers", a))
    world.saved["_layers_b"] = json.dumps(field_of(world, "RootFS.Layers", b))


@step(r"the first (?P<n>\d+) layers are the same")
def first_layers_same(world, n):
    a, b = json.loads(world.saved["_layers_a"]), json.loads(world.saved["_layers_b"])
    assert a[:int(n)] == b[:int(n)], f"layers differ:\n{a}\n{b}"


@step(Q.format("obj") + r" has (?P<n>\d+) more layers?")
def more_layers(world, obj, n):
    a, b = json.loads(world.saved["_layers_a"]), json.loads(world.saved["_layers_b"])
    assert len(a) - len(b) == int(n), f"{len(a)} layers against {len(b)}:\n{a}\n{b}"


@step(r"a build context " + Q.format("name") + r" with this Dockerfile:")
def build_context(world, name, docstring):
    ctx = Path(world.name(name))
    (ctx / "Dockerfile").write_text(world.sub(docstring) + "\n")


@step(r"the file " + Q.format("path") + r" in " + Q.format("ctx") + r" contains " + Q.format("value"))
def context_file(world, path, ctx, value):
    f = Path(world.sub(ctx)) / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text(world, value) + "\n")


@step(r"the build context " + Q.format("ctx") + r" holds a tar archive " + Q.format("name")
      + r" with the file " + Q.format("path") + r" containing " + Q.format("value"))
def context_tar(world, ctx, name, path, value):
    import io
    import tarfile
    data = (text(world, value) + "\n").encode()
    with tarfile.open(Path(world.sub(ctx)) / name, "w") as tf:
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), 0o644
        tf.addfile(info, io.BytesIO(data))


@step(r"I remember the digest the registry holds for " + Q.format("ref") + r" as " + Q.format("key"))
def remember_registry_digest(world, ref, key):
    """Ask the registry itself (HEAD on the manifest) which digest the tag names."""
    import urllib.request
    ref = world.sub(ref)
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    accept = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.oci.image.index.v1+json"])
    req = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as r:
        digest = r.headers.get("Docker-Content-Digest")
    assert digest, f"the registry gave no digest for {ref}"
    world.saved[key] = digest


# --------------------------------------------------------------------------- networks and volumes

def _subnets(world, net) -> list[str]:
    data = world.inspect(net, "network")
    cfgs = (data.get("IPAM") or {}).get("Config") or []
    subnets = [c["Subnet"] for c in cfgs if c.get("Subnet")]
    if not subnets and "subnets" in data:   # podman's native shape
        subnets = [s["subnet"] for s in data["subnets"]]
    v4 = [s for s in subnets if ":" not in s]
    assert v4, f"network {world.sub(net)} has no IPv4 subnet: {cfgs}"
    return v4


@step(r"I remember the subnet of network " + Q.format("net") + r" as " + Q.format("key"))
def remember_subnet(world, net, key):
    world.saved[key] = _subnets(world, net)[0]


@step(r"the subnet of network " + Q.format("net") + r" is " + Q.format("value"))
def subnet_is(world, net, value):
    assert text(world, value) in _subnets(world, net)


@step(r"I remember the address of " + Q.format("obj") + r" on network " + Q.format("net") + r" as " + Q.format("key"))
def remember_address(world, obj, net, key):
    nets = field_of(world, "NetworkSettings.Networks", obj)
    entry = nets.get(world.sub(net))
    assert entry and entry.get("IPAddress"), f"{world.sub(obj)} has no address on {world.sub(net)}: {nets}"
    world.saved[key] = entry["IPAddress"]


def _addresses(out: str) -> list[ipaddress.IPv4Address]:
    return [ipaddress.ip_address(a) for a in re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", out)]


@step(r"the output contains an address in " + Q.format("subnet"))
def address_in(world, subnet):
    net = ipaddress.ip_network(world.sub(subnet))
    addrs = _addresses(world.result.out)
    assert any(a in net for a in addrs), f"no address in {net} among {addrs}:\n{world.result.describe()}"


@step(r"the output does not contain an address in " + Q.format("subnet"))
def no_address_in(world, subnet):
    net = ipaddress.ip_network(world.sub(subnet))
    addrs = _addresses(world.result.out)
    assert not any(a in net for a in addrs), f"an address in {net} among {addrs}"


def _host_address() -> str:
    """The host's own non-loopback IPv4 address: the source of its route to the outside."""
    out = subprocess.run(["ip", "-4", "-o", "route", "get", "192.0.2.200"], capture_output=True,
                         text=True).stdout.split()
    assert "src" in out, f"the host has no route with a source address: {' '.join(out)}"
    return out[out.index("src") + 1]


@step(r"a TCP connection to (?P<where>the host's own address|" + Q.format("ip") + r") on port "
      + Q.format("port") + r" receives " + Q.format("value"))
def tcp_receives(world, where, port, value, ip=None):
    import socket
    host = world.sub(ip) if ip else _host_address()
    want = text(world, value)

    def check():
        try:
            with socket.create_connection((host, int(world.sub(port))), timeout=5) as s:
                s.settimeout(5)
                got = b""
                while chunk := s.recv(4096):
                    got += chunk
        except OSError as e:
            return False, f"{host}:{world.sub(port)}: {e}"
        return want in got.decode(errors="replace"), got
    wait_for(check, f"a connection to {host}:{world.sub(port)} receives {want!r}")


@step(r"I remember the mount source volume of " + Q.format("obj") + r" at " + Q.format("dest") + r" as " + Q.format("key"))
def remember_volume(world, obj, dest, key):
    mounts = field_of(world, "Mounts", obj)
    m = [m for m in mounts if m.get("Destination") == dest]
    assert m and m[0].get("Name"), f"no volume at {dest}: {mounts}"
    world.saved[key] = m[0]["Name"]
    world.saved["_volumes"] = (world.saved.get("_volumes", "") + " " + m[0]["Name"]).strip()


# --------------------------------------------------------------------------- the host

@given(parsers.re("^the host file " + Q.format("path") + r" contains " + Q.format("value") + "$"))
def make_host_file(world, path, value):
    f = Path(world.sub(path))
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text(world, value) + "\n")


@then(parsers.re("^the host file " + Q.format("path") + r" contains " + Q.format("value") + "$"))
def check_host_file(world, path, value):
    f = Path(world.sub(path))
    v = text(world, value)
    assert f.exists(), f"{f} does not exist"
    got = f.read_text()
    assert v in got, f"{f} holds {got!r}, not {v!r}"


@step(r"a host process " + Q.format("cmd") + r" is running")
def host_process(world, cmd):
    world.host_procs.append(subprocess.Popen(cmd.split(), stdin=subprocess.DEVNULL))


@step(r"the host's hostname is not " + Q.format("value"))
def host_hostname(world, value):
    import socket
    assert socket.gethostname() != world.sub(value)


@step(r"a tmpfs is mounted on the host at " + Q.format("path"))
def host_tmpfs(world, path):
    p = Path(world.sub(path))
    p.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "dockspec-host-only", str(p)], check=True)
    world.host_mounts.append(p)


@step(r"a host shared-memory file " + Q.format("path") + r" exists")
def host_shm(world, path):
    p = Path(world.sub(path))
    p.write_text("host-only\n")
    world.host_files.append(p)


@step(r"the target's UNIX socket allows no access to other users")
def socket_mode(world):
    import os
    import stat
    endpoint = world.target.endpoint
    assert endpoint.startswith("unix://"), f"the target's endpoint is not a UNIX socket: {endpoint}"
    mode = stat.S_IMODE(os.stat(endpoint[len("unix://"):]).st_mode)
    assert mode & 0o007 == 0, f"socket mode is {mode:o}: other users may connect"


# --------------------------------------------------------------------------- a second daemon

@step(r"a second daemon is running")
def second_daemon(world):
    from ..second import second_daemon_for
    world.second = second_daemon_for(world)
