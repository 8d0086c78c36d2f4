"""The VM runner's pure parts: driver choice, subnet choice, cache keys, result stamping.

The VM itself is exercised by `make vm-test`; these run in milliseconds.
"""
import importlib.util
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vm_runner", ROOT / "vm" / "runner.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

INTEL = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx ept\n"
AMD = "processor\t: 0\nflags\t\t: fpu svm npt\n"
NONE = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr hypervisor\nvmx flags\t: ept\n"


@pytest.mark.parametrize("cpuinfo,kvm,expected", [
    (INTEL, True, "kvm"), (AMD, True, "kvm"), (NONE, True, "qemu"), (INTEL, False, "qemu"), ("", False, "qemu")])
def test_driver_follows_cpu_flags(cpuinfo, kvm, expected):
    assert runner.libvirt_driver(cpuinfo, kvm) == expected


def test_driver_override_and_bad_override():
    assert runner.libvirt_driver(NONE, False, "kvm") == "kvm"
    assert runner.libvirt_driver(INTEL, True, "qemu") == "qemu"
    with pytest.raises(runner.VMError, match="kvm or qemu"):
        runner.libvirt_driver(INTEL, True, "xen")


def test_subnet_skips_routes_and_addresses():
    # 192.168.202.9/23 is an address whose network covers 202 and 203.
    assert runner.pick_subnet(["192.168.200.0/24", "192.168.201.0/24", "192.168.202.9/23", "fe80::/64", "junk"]) \
        == "192.168.204.0/24"
    assert runner.pick_subnet(["172.17.0.0/16"]) == "192.168.200.0/24"
    assert runner.pick_subnet(["192.168.0.0/16"]) == "10.250.0.0/24"


def test_no_free_subnet_is_a_clear_error():
    with pytest.raises(runner.VMError, match="no free /24"):
        runner.pick_subnet(["0.0.0.0/0"])


nets = st.builds(lambda a, p: str(ipaddress.ip_network(f"{ipaddress.IPv4Address(a)}/{p}", strict=False)),
                 st.integers(0, 2**32 - 1), st.integers(8, 32))


@settings(max_examples=200)
@given(st.lists(nets, max_size=30))
def test_picked_subnet_overlaps_nothing_in_use(used):
    try:
        got = ipaddress.ip_network(runner.pick_subnet(used))
    except runner.VMError:
        return
    assert got.prefixlen == 24
    assert not any(got.overlaps(ipaddress.ip_network(u)) for u in used)


@settings(max_examples=100)
@given(st.dictionaries(st.text(max_size=8), st.binary(max_size=16), max_size=4), st.text(max_size=8), st.binary(max_size=4))
def test_digest_changes_with_any_input(parts, name, extra):
    base = runner.digest(parts)
    assert base == runner.digest(dict(reversed(list(parts.items()))))
    changed = dict(parts)
    changed[name] = parts.get(name, b"") + b"x" + extra
    assert runner.digest(changed) != base


def test_requirements_are_the_projects_dependencies():
    reqs = runner.requirements((ROOT / "pyproject.toml").read_text())
    assert any(r.startswith("pytest-bdd") for r in reqs) and any(r.startswith("python-vagrant") for r in reqs)


def test_targets_follow_the_tree(tmp_path):
    assert runner.suite_targets(tmp_path) == ["docker"]
    (tmp_path / "refimpl").mkdir()
    (tmp_path / "refimpl" / "daemon.py").touch()
    assert runner.suite_targets(tmp_path) == ["docker", "refimpl", "refimpl-dockercli"]
    assert runner.suite_targets(tmp_path, ["podman"]) == ["podman"]


def test_guest_command_selects_smoke_only_when_asked():
    assert " -m smoke " in runner.guest_command("docker", "smoke")
    full = runner.guest_command("refimpl", "full")
    assert "-m smoke" not in full and "--target refimpl " in full and "refimpl.jsonl" in full


STAMP = {"box": "dockspec/bookworm-local 1.20261129.0", "kernel": "6.1.0-41-amd64", "suite_commit": "abc1234",
         "provider": "libvirt", "distribution": "Debian GNU/Linux 12 (bookworm)"}


def test_stamp_marks_the_run_record_only():
    text = "\n".join([
        json.dumps({"type": "run", "target": "docker", "kernel": "6.1.0-41-amd64", "host": "Debian GNU/Linux 12 (bookworm)",
                    "suite_commit": "?"}),
        json.dumps({"type": "scenario", "status": "pass", "host": "x"}),
        "{truncated"])
    lines = runner.stamp_results(text, STAMP).splitlines()
    run = json.loads(lines[0])
    assert run["host"] == "Debian GNU/Linux 12 (bookworm) · VM box dockspec/bookworm-local 1.20261129.0"
    assert run["vm_kernel"] == "6.1.0-41-amd64" and run["vm_provider"] == "libvirt"
    assert run["suite_commit"] == "abc1234"
    assert json.loads(lines[1]) == {"type": "scenario", "status": "pass", "host": "x"}
    assert lines[2] == "{truncated"


def test_a_target_that_did_not_start_still_has_a_column(tmp_path):
    (tmp_path / "refimpl.jsonl").write_text(runner.did_not_start("refimpl", "pytest exit 3", STAMP))
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "conformance", "report", "--results", str(tmp_path), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    md = (out / "compat.md").read_text()
    assert "did not start: pytest exit 3" in md and "6.1.0-41-amd64" in md and "VM box dockspec/bookworm-local" in md


def test_missing_vagrant_is_one_line(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, str(ROOT / "vm" / "runner.py")], env=env, capture_output=True, text=True)
    assert res.returncode == 2
    assert res.stderr.strip() == "vm-test: vagrant is not installed: apt-get install vagrant (or scripts/bootstrap --vm)"


def test_exit_reason_is_the_harness_message():
    out = "98 deselected in 3.26s\n! _pytest.outcomes.Exit: dockspec: target refimpl: the refimpl CLI is not installed !\n"
    assert runner.exit_reason(out, 3) == "target refimpl: the refimpl CLI is not installed"
    assert runner.exit_reason("Traceback ...\nboom\n", 4) == "pytest exit 4"


def test_box_volume_name_matches_vagrant_libvirt():
    assert runner.box_volume_name("dockspec/bookworm-local", "1.20261129.030238") == \
        "dockspec-VAGRANTSLASH-bookworm-local_vagrant_box_image_1.20261129.030238_box.img"


def test_seed_pool_links_current_and_drops_old(tmp_path):
    home, pool = tmp_path / "home", tmp_path / "pool"
    box = home / "boxes" / "dockspec-VAGRANTSLASH-bookworm-local" / "1.2.3" / "libvirt"
    box.mkdir(parents=True)
    (box / "box.img").write_bytes(b"qcow2")
    pool.mkdir()
    stale = pool / runner.box_volume_name(runner.LOCAL_BOX, "1.0.0")
    stale.write_bytes(b"old")
    other = pool / "someone-else.img"
    other.write_bytes(b"x")
    runner.seed_pool(pool, home, "1.2.3")
    linked = pool / runner.box_volume_name(runner.LOCAL_BOX, "1.2.3")
    assert linked.read_bytes() == b"qcow2" and linked.stat().st_ino == (box / "box.img").stat().st_ino
    assert not stale.exists() and other.exists()


@pytest.mark.parametrize("var,value", [("SUITE", "bogus"), ("VM_PROVIDER", "xen")])
def test_bad_variable_is_one_line_before_anything_starts(var, value):
    res = subprocess.run([sys.executable, str(ROOT / "vm" / "runner.py")], env={"PATH": "/usr/bin:/bin", var: value},
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"{var} must be one of" in res.stderr


def test_verdict_judges_only_required_targets():
    assert runner.verdict({"docker": 0, "podman": 1}, ["docker"]) == (0, [])
    rc, problems = runner.verdict({"docker": 0, "refimpl": 1}, ["docker", "refimpl"])
    assert rc == 1 and problems == ["refimpl: scenarios failed"]
    rc, problems = runner.verdict({"docker": 4}, ["docker", "refimpl-dockercli"])
    assert rc == 1
    assert problems == ["docker: could not run (pytest exit 4)", "refimpl-dockercli did not run"]
