"""`make vm-test`: the conformance suite inside a Vagrant VM, report back on the host.

Laptops without a Linux kernel to spare (and CI, to keep the path alive) get
what Docker Desktop gives its users: a Linux VM hosting the engines. This
runner brings one up with python-vagrant, copies the project in over ssh,
runs the suite there against each target the guest has, copies the JSON-lines
results back, stamps them with the guest's kernel, distribution and box, and
writes the report to reports/vm/ with the host's `conformance report`.

Two ways to get a VM, chosen by VM_BOX:

* ``local`` (default): a libvirt box built here by vm/build-box from Debian's
  archive alone (no box download), cached under /var/cache/dockspec/vm keyed
  by its inputs, kept in a VAGRANT_HOME of its own. The libvirt domain type
  follows the CPU: kvm with vmx/svm, else qemu (software emulation).
* any other name (e.g. ``debian/bookworm64``): a public box, libvirt or
  VirtualBox (VM_PROVIDER), provisioned by the same vm/provision.sh.

What is left behind: nothing running. The VM is destroyed (unless VM_KEEP=1);
libvirt daemons, the storage pool and the network this run started or
defined are stopped and removed; the box and the wheelhouse stay cached.

python-vagrant is used for up/provision/destroy; its ``ssh()`` returns output
only at the end, so the suite runs through ``ssh -F <vagrant ssh-config>``,
which streams and gives the exit status.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VM_DIR = ROOT / "vm"
# Box, wheels, pool and logs: system-wide as root (libvirt), per user otherwise (a laptop's VirtualBox).
CACHE = Path(os.environ.get("DOCKSPEC_VM_CACHE") or
             ("/var/cache/dockspec/vm" if os.geteuid() == 0 else Path.home() / ".cache" / "dockspec" / "vm"))
LOCAL_BOX = "dockspec/bookworm-local"
NAME = "dockspec-vm"  # libvirt network and storage pool
DOMAIN = "dockspec-default"  # the Vagrantfile's default_prefix + Vagrant's machine name
GUEST_PROJECT = "/home/vagrant/dockspec"
GUEST_RESULTS = "/home/vagrant/results"
GUEST_VENV = "/opt/dockspec/venv"
BOX_INPUTS = ("vm/build-box", "vm/provision.sh")


class VMError(RuntimeError):
    """A step failed or a prerequisite is missing; the message is one line."""


# --- pure parts ---------------------------------------------------------------

def libvirt_driver(cpuinfo: str, kvm_device: bool, override: str | None = None) -> str:
    """kvm where the CPU offers hardware virtualization (vmx/svm) and /dev/kvm exists, else qemu."""
    if override:
        if override not in ("kvm", "qemu"):
            raise VMError(f"VM_DRIVER must be kvm or qemu, not {override!r}")
        return override
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return "kvm" if kvm_device and flags & {"vmx", "svm"} else "qemu"


def pick_subnet(used: list[str], candidates: list[str] | None = None) -> str:
    """The first candidate /24 that overlaps none of the networks in use (routes, addresses)."""
    taken = []
    for u in used:
        with contextlib.suppress(ValueError):
            taken.append(ipaddress.ip_network(u, strict=False))
    cands = candidates or [f"192.168.{i}.0/24" for i in range(200, 255)] + [f"10.250.{i}.0/24" for i in range(256)]
    for c in cands:
        net = ipaddress.ip_network(c)
        if not any(net.version == t.version and net.overlaps(t) for t in taken):
            return c
    raise VMError("no free /24 for the VM's network: every candidate overlaps a route")


def requirements(pyproject: str) -> list[str]:
    """The project's runtime dependencies: what the guest's venv needs."""
    return list(tomllib.loads(pyproject)["project"]["dependencies"])


def digest(parts: dict[str, bytes]) -> str:
    """A short key over named inputs; any changed byte or name changes it."""
    h = hashlib.sha256()
    for name in sorted(parts):
        h.update(f"{len(name)}:{name}:{len(parts[name])}:".encode())
        h.update(parts[name])
    return h.hexdigest()[:16]


def suite_targets(project: Path, requested: list[str] | None = None) -> list[str]:
    """docker always; the refimpl targets once refimpld is in the tree."""
    if requested:
        return requested
    targets = ["docker"]
    if (project / "refimpl" / "daemon.py").exists():
        targets += ["refimpl", "refimpl-dockercli"]
    return targets


def guest_command(target: str, suite: str) -> str:
    """The shell line run in the guest for one target (as root, from the project)."""
    marker = " -m smoke" if suite == "smoke" else ""
    return (f"cd {GUEST_PROJECT} && sudo env PATH={GUEST_VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin "
            f"DOCKSPEC_CACHE=/var/cache/dockspec {GUEST_VENV}/bin/python -m pytest conformance "
            f"-p no:cacheprovider -q --target {target}{marker} --results {GUEST_RESULTS}/{target}.jsonl")


def verdict(statuses: dict[str, int], required: list[str]) -> tuple[int, list[str]]:
    """The run's exit status and what went wrong: every required target ran and all its scenarios held.

    pytest's exit 1 means a scenario failed; anything else (or no run at all)
    means the target could not be measured. Targets that are not required are
    reported, never judged: their failures are what the report is for.
    """
    problems = []
    for target in required:
        rc = statuses.get(target)
        if rc is None:
            problems.append(f"{target} did not run")
        elif rc == 1:
            problems.append(f"{target}: scenarios failed")
        elif rc != 0:
            problems.append(f"{target}: could not run (pytest exit {rc})")
    return (1 if problems else 0), problems


def stamp_results(text: str, stamp: dict[str, str]) -> str:
    """Stamp the run record of a JSON-lines results file with where it ran.

    The guest's kernel already is the record's ``kernel``; its distribution
    (``host``) gets the box appended so the report's stamp row shows it, and
    the ``vm_*`` keys carry the details. A suite commit the guest could not
    read (no git there) becomes the host's.
    """
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if isinstance(rec, dict) and rec.get("type") == "run":
            rec.update({f"vm_{k}": v for k, v in stamp.items()})
            rec["host"] = f"{rec.get('host') or '?'} · VM box {stamp.get('box', '?')}"
            if rec.get("suite_commit") in (None, "", "?") and stamp.get("suite_commit"):
                rec["suite_commit"] = stamp["suite_commit"]
            line = json.dumps(rec)
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


def exit_reason(output: str, rc: int) -> str:
    """Why a suite run ended before its first scenario: the harness's one-line `dockspec:` message."""
    for line in reversed(output.splitlines()):
        m = re.search(r"dockspec: (.+?)(?: !)?$", line.strip())
        if m:
            return m.group(1)
    return f"pytest exit {rc}"


def did_not_start(target: str, reason: str, stamp: dict[str, str]) -> str:
    """A results file for a target whose run never started: the report still shows its column."""
    rec = {"type": "run", "target": target, "version": f"did not start: {reason}"[:200],
           "kernel": stamp.get("kernel", "?"), "host": stamp.get("distribution", "?")}
    return stamp_results(json.dumps(rec), stamp)


# --- the outside world ----------------------------------------------------------

def sh(argv: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and res.returncode != 0:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise VMError(f"{' '.join(argv[:3])}: {last[0]}")
    return res


def need(cmd: str, package: str) -> None:
    if shutil.which(cmd) is None:
        raise VMError(f"{cmd} is not installed: apt-get install {package} (or scripts/bootstrap --vm)")


class Libvirt:
    """The libvirt daemons, network and pool this run needs; undoes only what it did."""

    def __init__(self, log) -> None:
        self.log = log
        self.started: list[tuple[str, int]] = []
        self.defined: list[tuple[str, str]] = []
        self.virbr0_before = Path("/sys/class/net/virbr0").exists()
        self.chains_before = _has_libvirt_chains()

    def virsh(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh(["virsh", "-q", "-c", "qemu:///system", *args], check=check)

    def up(self) -> None:
        for daemon in ("virtlogd", "libvirtd"):
            pidfile = Path(f"/run/{daemon}.pid")
            if _alive(pidfile):
                continue
            sh([daemon, "-d"])
            for _ in range(50):
                if _alive(pidfile):
                    break
                time.sleep(0.1)
            else:
                raise VMError(f"{daemon} -d did not start")
            self.started.append((daemon, int(pidfile.read_text())))
            self.log(f"started {daemon} (pid {self.started[-1][1]})")
        for _ in range(100):
            if self.virsh("version", check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise VMError("libvirtd does not answer on qemu:///system")
        # A daemon started here must not leave Debian's default network (virbr0) up.
        if self.started and not self.virbr0_before and "default" in self.active_networks():
            self.virsh("net-destroy", "default", check=False)

    def active_networks(self) -> list[str]:
        return self.virsh("net-list", "--name", check=False).stdout.split()

    def network(self) -> str:
        """A free subnet for our management network, removing a stale one of ours first."""
        self.drop_network()
        used = [r.get("dst", "") for r in json.loads(sh(["ip", "-j", "route"]).stdout or "[]")]
        for link in json.loads(sh(["ip", "-j", "addr"]).stdout or "[]"):
            used += [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
        return pick_subnet([u for u in used if u and u != "default"])

    def drop_network(self) -> None:
        names = self.virsh("net-list", "--all", "--name", check=False).stdout.split()
        if NAME in names:
            self.virsh("net-destroy", NAME, check=False)
            self.virsh("net-undefine", NAME, check=False)

    def pool(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if NAME not in self.virsh("pool-list", "--all", "--name", check=False).stdout.split():
            self.virsh("pool-define-as", NAME, "dir", "--target", str(path))
            self.defined.append(("pool", NAME))
        self.virsh("pool-start", NAME, check=False)
        self.virsh("pool-refresh", NAME, check=False)

    def drop_domain(self) -> None:
        """The VM by libvirt's hand, for when `vagrant destroy` could not (an interrupted `up`)."""
        if DOMAIN in self.virsh("list", "--all", "--name", check=False).stdout.split():
            self.virsh("destroy", DOMAIN, check=False)
            self.virsh("undefine", DOMAIN, "--remove-all-storage", check=False)
            self.log(f"removed libvirt domain {DOMAIN}")

    def down(self) -> None:
        self.drop_domain()
        self.drop_network()
        for kind, name in reversed(self.defined):
            if kind == "pool":
                self.virsh("pool-destroy", name, check=False)
                self.virsh("pool-undefine", name, check=False)
        # libvirt adds top-level LIBVIRT_* chains with its first network and never
        # removes them; a daemon started here had them made here: remove them (empty now).
        if self.started and not self.chains_before:
            for tool in ("iptables", "ip6tables"):
                for table, parent, chain in LIBVIRT_CHAINS:
                    sh([tool, "-w", "-t", table, "-D", parent, "-j", chain], check=False)
                    sh([tool, "-w", "-t", table, "-X", chain], check=False)
        for daemon, pid in reversed(self.started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
            self.log(f"stopped {daemon} (pid {pid})")


def _stop_children() -> None:
    """SIGTERM our own child processes (by PID) and wait for them."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == os.getpid():
                kids.append(int(stat.parent.name))
    for pid in kids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for pid in kids:
        for _ in range(300):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    break
            if not _pid_alive(pid):
                break
            time.sleep(0.1)


LIBVIRT_CHAINS = [("filter", "INPUT", "LIBVIRT_INP"), ("filter", "OUTPUT", "LIBVIRT_OUT"),
                  ("filter", "FORWARD", "LIBVIRT_FWX"), ("filter", "FORWARD", "LIBVIRT_FWI"),
                  ("filter", "FORWARD", "LIBVIRT_FWO"), ("nat", "POSTROUTING", "LIBVIRT_PRT"),
                  ("mangle", "POSTROUTING", "LIBVIRT_PRT")]


def _has_libvirt_chains() -> bool:
    if shutil.which("iptables") is None:
        return False
    return sh(["iptables", "-w", "-n", "-L", "LIBVIRT_INP"], check=False).returncode == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError, PermissionError):
        return False


def _alive(pidfile: Path) -> bool:
    try:
        return _pid_alive(int(pidfile.read_text().strip()))
    except (OSError, ValueError):
        return False


def wheelhouse(log) -> Path:
    """Wheels of the project's dependencies for the guest (Linux x86_64, CPython 3.11), cached."""
    reqs = requirements((ROOT / "pyproject.toml").read_text())
    text = "\n".join(reqs) + "\n"
    out = CACHE / f"wheels-{digest({'requirements': text.encode()})}"
    if (out / "requirements.txt").exists():
        return out
    log(f"wheelhouse: pip download into {out}")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sh([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "-d", str(tmp),
        "--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.11",
        "--implementation", "cp", *reqs])
    (tmp / "requirements.txt").write_text(text)
    tmp.rename(out)
    return out


def local_box(vagrant_home: Path, wheels: Path, log) -> tuple[str, float]:
    """The local box for the current inputs, built when missing; returns (version, seconds spent building)."""
    parts = {p: (ROOT / p).read_bytes() for p in BOX_INPUTS}
    parts["wheels"] = wheels.name.encode()
    key = digest(parts)
    boxes = vagrant_home / "boxes" / LOCAL_BOX.replace("/", "-VAGRANTSLASH-")
    for version_dir in sorted(boxes.glob("*")):
        stamp = version_dir / "libvirt" / "dockspec-box.json"
        with contextlib.suppress(OSError, ValueError):
            if json.loads(stamp.read_text()).get("key") == key:
                return version_dir.name, 0.0
    for tool, pkg in (("debootstrap", "debootstrap"), ("qemu-img", "qemu-utils"), ("extlinux", "extlinux"),
                      ("sfdisk", "fdisk"), ("mkfs.ext4", "e2fsprogs")):
        if shutil.which(tool) is None:
            raise VMError(f"no box {LOCAL_BOX} and no way to build one: apt-get install {pkg} "
                          f"(or scripts/bootstrap --vm)")
    from conformance.images import debian_rootfs, ImageError
    try:
        debroot = debian_rootfs()
    except ImageError as e:
        raise VMError(f"the suite's debian image root: {e}") from None
    version = time.strftime("1.%Y%m%d.%H%M%S", time.gmtime())
    out = boxes / version / "libvirt"
    log(f"building box {LOCAL_BOX} {version} (inputs {key}) with vm/build-box")
    t0 = time.monotonic()
    rc = subprocess.call([str(VM_DIR / "build-box"), str(out), "--key", key, "--wheelhouse", str(wheels),
                          "--debian-rootfs", str(debroot)])
    if rc != 0:
        shutil.rmtree(out.parent, ignore_errors=True)
        raise VMError(f"vm/build-box failed (exit {rc})")
    for old in boxes.glob("*"):  # one version cached: the current one
        if old.name != version:
            shutil.rmtree(old, ignore_errors=True)
    return version, time.monotonic() - t0


def box_volume_name(box: str, version: str) -> str:
    """The volume vagrant-libvirt (0.11) uploads a box's box.img as (handle_box_image.rb)."""
    return f"{box.replace('/', '-VAGRANTSLASH-')}_vagrant_box_image_{version}_box.img"


def seed_pool(pool: Path, vagrant_home: Path, version: str) -> None:
    """Hard-link the local box's image into the pool under the name vagrant-libvirt looks for.

    vagrant-libvirt skips its upload when the volume exists: that upload is a
    1.4 GB stream through libvirt, a link is instant and the bytes are the same.
    Volumes of other box versions are removed.
    """
    pool.mkdir(parents=True, exist_ok=True)
    want = box_volume_name(LOCAL_BOX, version)
    prefix = box_volume_name(LOCAL_BOX, "")[:-len("_box.img")]
    for old in pool.glob(prefix + "*"):
        if old.name != want:
            old.unlink()
    if not (pool / want).exists():
        src = vagrant_home / "boxes" / LOCAL_BOX.replace("/", "-VAGRANTSLASH-") / version / "libvirt" / "box.img"
        with contextlib.suppress(OSError):  # another file system: vagrant uploads it instead
            os.link(src, pool / want)


class Guest:
    """ssh to the VM through the config vagrant prints, streaming output."""

    def __init__(self, v, work: Path) -> None:
        self.cfg = work / "ssh-config"
        self.cfg.write_text(v.ssh_config())
        self.host = "default"

    def argv(self, command: str) -> list[str]:
        return ["ssh", "-F", str(self.cfg), "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=15",
                self.host, command]

    def run(self, command: str, stdin=None, capture: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(command), stdin=stdin, capture_output=capture, text=capture)

    def stream(self, command: str) -> tuple[int, str]:
        """Run with the output passed through as it comes; returns (exit status, last output)."""
        proc = subprocess.Popen(self.argv(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        tail = b""
        try:
            while chunk := os.read(proc.stdout.fileno(), 65536):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                tail = (tail + chunk)[-4000:]
            return proc.wait(), tail.decode(errors="replace")
        finally:
            if proc.poll() is None:  # interrupted: the VM is about to go, so is this ssh
                proc.kill()
                proc.wait()

    def out(self, command: str) -> str:
        res = self.run(command)
        if res.returncode != 0:
            raise VMError(f"in the VM, {command.split()[0]}: {(res.stderr or res.stdout).strip()[-200:]}")
        return res.stdout.strip()

    def send_tree(self, src: Path, files: list[str], dest: str) -> None:
        tar = subprocess.Popen(["tar", "-C", str(src), "--null", "-T", "-", "-cf", "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ssh = subprocess.Popen(self.argv(f"mkdir -p {dest} && tar -C {dest} -xf -"), stdin=tar.stdout,
                               stderr=subprocess.PIPE)
        tar.stdout.close()
        tar.stdin.write(b"\0".join(f.encode() for f in files) + b"\0")
        tar.stdin.close()
        _, err = ssh.communicate()
        if tar.wait() != 0 or ssh.returncode != 0:
            raise VMError(f"copying {src} into the VM failed: {err.decode(errors='replace').strip()[-200:]}")


def _show_tail(path: Path, lines: int = 15) -> None:
    text = [ln for ln in path.read_text(errors="replace").splitlines() if "Progress:" not in ln]
    for ln in text[-lines:]:
        print(f"  | {ln}", file=sys.stderr)


def project_files() -> list[str]:
    """The tree as git sees it, with uncommitted changes, minus what is ignored."""
    res = sh(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    return sorted(f for f in res.stdout.split("\0") if f and (ROOT / f).is_file())


# --- the run ------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vm/runner.py", description="The conformance suite inside a Vagrant VM.")
    p.add_argument("--suite", choices=("smoke", "full"), default=os.environ.get("SUITE") or "smoke")
    p.add_argument("--box", default=os.environ.get("VM_BOX") or "local",
                   help="'local' (built here) or a box name such as debian/bookworm64")
    p.add_argument("--provider", default=os.environ.get("VM_PROVIDER") or "libvirt",
                   choices=("libvirt", "virtualbox"))
    p.add_argument("--keep", action="store_true", default=os.environ.get("VM_KEEP") == "1",
                   help="leave the VM running afterwards")
    p.add_argument("--targets", nargs="*", help="default: docker, plus refimpl targets when present")
    p.add_argument("--out", default="reports/vm")
    p.add_argument("--require", default=os.environ.get("VM_REQUIRE") or "docker",
                   help="targets whose scenarios must all pass for exit 0 (space or comma separated); "
                        "default docker, the reference")
    a = p.parse_args(argv)
    for name, value, allowed in (("SUITE", a.suite, ("smoke", "full")), ("VM_PROVIDER", a.provider, ("libvirt", "virtualbox"))):
        if value not in allowed:
            print(f"vm-test: {name} must be one of {', '.join(allowed)}, not {value!r}", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(a)
    except VMError as e:
        print(f"vm-test: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vm-test: interrupted", file=sys.stderr)
        return 130


def log(msg: str) -> None:
    print(f"vm-test: {msg}", flush=True)


def run(a) -> int:
    need("vagrant", "vagrant")
    need("ssh", "openssh-client")
    if a.provider == "libvirt":
        need("virsh", "libvirt-clients")
        need("libvirtd", "libvirt-daemon-system")
        need("qemu-system-x86_64", "qemu-system-x86")
        if not list(Path("/usr/share/vagrant-plugins/plugins.d").glob("*libvirt*")) and \
                "vagrant-libvirt" not in sh(["vagrant", "plugin", "list"], check=False).stdout:
            raise VMError("the vagrant-libvirt plugin is not installed: apt-get install vagrant-libvirt")
        if os.geteuid() != 0:
            raise VMError("run as root: the libvirt system daemon, its network and pool need it")
    else:
        need("VBoxManage", "virtualbox")
    if a.box == "local" and a.provider != "libvirt":
        raise VMError("the local box is a libvirt box: use VM_PROVIDER=libvirt or a public VM_BOX")
    try:
        import vagrant
    except ImportError:
        raise VMError("python-vagrant is missing: pip install -e . (it is a project dependency)") from None

    CACHE.mkdir(parents=True, exist_ok=True)
    lock = open(CACHE / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise VMError(f"another vm-test is running (lock {CACHE / 'lock'})") from None

    out = ROOT / a.out
    results = out / "results"
    times: dict[str, float] = {}
    env = dict(os.environ, DOCKSPEC_VM_CPUS=os.environ.get("VM_CPUS", "2"),
               DOCKSPEC_VM_MEMORY=os.environ.get("VM_MEMORY", "3072"))
    stamp = {"provider": a.provider, "suite": a.suite}
    version = ""
    t = time.monotonic()
    wheels = wheelhouse(log)
    times["wheelhouse"] = time.monotonic() - t
    if a.box == "local":
        env["VAGRANT_HOME"] = str(CACHE / "vagrant.d")
        version, times["box build"] = local_box(CACHE / "vagrant.d", wheels, log)
        env["DOCKSPEC_VM_BOX"] = LOCAL_BOX
        stamp["box"] = f"{LOCAL_BOX} {version}"
    else:
        env["DOCKSPEC_VM_BOX"] = a.box
        stamp["box"] = a.box

    lv = Libvirt(log) if a.provider == "libvirt" else None
    v = None
    up_done = False
    statuses: dict[str, int] = {}
    try:
        if lv:
            lv.up()
            if not (VM_DIR / ".vagrant" / "machines" / "default" / "libvirt" / "id").exists():
                lv.drop_domain()  # left by an interrupted run: vagrant no longer knows it
            env["DOCKSPEC_VM_DRIVER"] = libvirt_driver(Path("/proc/cpuinfo").read_text(),
                                                       Path("/dev/kvm").exists(), os.environ.get("VM_DRIVER"))
            env["DOCKSPEC_VM_NETWORK"] = NAME
            env["DOCKSPEC_VM_SUBNET"] = lv.network()
            env["DOCKSPEC_VM_POOL"] = NAME
            env["DOCKSPEC_VM_CONSOLE"] = str(CACHE / "console.log")
            if a.box == "local":
                seed_pool(CACHE / "pool", CACHE / "vagrant.d", version)
            lv.pool(CACHE / "pool")
            stamp["driver"] = env["DOCKSPEC_VM_DRIVER"]
            log(f"libvirt: driver {stamp['driver']}, network {NAME} {env['DOCKSPEC_VM_SUBNET']}, pool {NAME}")
        # Vagrant's own output (progress bars included) goes to a log; on failure its tail is shown.
        vlog = CACHE / "vagrant.log"
        vlog.write_text("")
        v = vagrant.Vagrant(root=str(VM_DIR), env=env, out_cm=vagrant.make_file_cm(vlog),
                            err_cm=vagrant.make_file_cm(vlog))
        if a.box != "local" and not any(b.name == a.box for b in v.box_list()):
            log(f"box {a.box} is not installed: vagrant will try to download it")
        log(f"vagrant up ({a.provider}, box {stamp['box']})")
        t = time.monotonic()
        up_done = True
        try:
            v.up(provider=a.provider, provision=False)
        except subprocess.CalledProcessError as e:
            _show_tail(vlog)
            raise VMError(f"vagrant up failed (exit {e.returncode}); log {vlog}, guest console "
                          f"{CACHE / 'console.log'}") from None
        times["up"] = time.monotonic() - t

        t = time.monotonic()
        guest = Guest(v, CACHE)
        files = project_files()
        guest.out(f"rm -rf {GUEST_PROJECT} {GUEST_RESULTS} && mkdir -p {GUEST_RESULTS}")
        guest.send_tree(ROOT, files, GUEST_PROJECT)
        want = hashlib.sha256((wheels / "requirements.txt").read_bytes()).hexdigest()[:16]
        if guest.run(f"cat {GUEST_VENV}/.requirements 2>/dev/null").stdout.strip() != want:
            guest.send_tree(wheels, sorted(f.name for f in wheels.iterdir()), f"{GUEST_PROJECT}/.wheelhouse")
        try:
            v.provision()
        except subprocess.CalledProcessError as e:
            _show_tail(vlog)
            raise VMError(f"provisioning (vm/provision.sh) failed (exit {e.returncode}); log {vlog}") from None
        times["sync + provision"] = time.monotonic() - t
        stamp["kernel"] = guest.out("uname -r")
        stamp["distribution"] = guest.out(". /etc/os-release && echo \"$PRETTY_NAME\"")
        box_json = guest.run("cat /etc/dockspec-box.json 2>/dev/null").stdout.strip()
        if box_json:
            with contextlib.suppress(ValueError):
                stamp["box_key"] = json.loads(box_json).get("key", "")
        commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        stamp["suite_commit"] = commit
        log(f"guest: {stamp['distribution']}, kernel {stamp['kernel']}")

        shutil.rmtree(results, ignore_errors=True)
        results.mkdir(parents=True)
        for target in suite_targets(ROOT, a.targets):
            log(f"suite ({a.suite}) against {target}, inside the VM")
            t = time.monotonic()
            rc, tail = guest.stream(guest_command(target, a.suite))
            times[f"suite {target}"] = time.monotonic() - t
            statuses[target] = rc
            text = guest.run(f"cat {GUEST_RESULTS}/{target}.jsonl 2>/dev/null").stdout
            if text.strip():
                (results / f"{target}.jsonl").write_text(stamp_results(text, stamp))
            else:
                (results / f"{target}.jsonl").write_text(did_not_start(target, exit_reason(tail, rc), stamp))
        subprocess.run([sys.executable, "-m", "conformance", "report", "--results", str(results),
                        "--out", str(out)], cwd=ROOT, check=False)
    finally:
        _stop_children()  # a `vagrant up` cut short by a signal must not race the teardown
        if v is not None and up_done:
            if a.keep:
                log("VM kept (VM_KEEP=1): `cd vm && vagrant ssh`, `vagrant destroy -f` when done"
                    + (f"; VAGRANT_HOME={env['VAGRANT_HOME']}" if "VAGRANT_HOME" in env else ""))
            else:
                t = time.monotonic()
                with contextlib.suppress(subprocess.CalledProcessError):
                    v.destroy()
                times["destroy"] = time.monotonic() - t
        if lv and not a.keep:
            lv.down()
        summary = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
        log(f"times: {summary}")
        if statuses:  # the record that goes with the report; a run cut short leaves the last one alone
            out.mkdir(parents=True, exist_ok=True)
            (out / "vm-run.json").write_text(json.dumps({"stamp": stamp, "seconds": {k: round(v, 1) for k, v in times.items()}},
                                                        indent=1, sort_keys=True) + "\n")
    bad = {t: rc for t, rc in statuses.items() if rc not in (0, 1)}
    if bad:
        log("targets that could not run: " + ", ".join(f"{t} (pytest exit {rc})" for t, rc in bad.items()))
    log(f"report: {out / 'compat.md'}")
    # Real Docker is the reference: its scenarios must hold in the VM too. The
    # other targets' failures are what the report is for, unless they are
    # required (CI requires every target, so the VM path cannot rot).
    rc, problems = verdict(statuses, a.require.replace(",", " ").split())
    if problems:
        log("FAILED: " + "; ".join(problems))
    return rc

if __name__ == "__main__":
    sys.exit(main())
