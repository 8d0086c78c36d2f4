#!/bin/sh
# Provision a Debian 12 guest for the conformance suite. One script for every
# provider and box: Vagrant runs it on `vagrant up`/`vagrant provision`
# (libvirt or VirtualBox, local or public box), and vm/build-box runs it in the
# chroot of the local box. Idempotent: each step checks before it acts, so on
# the prebuilt box it finishes in seconds and needs no network.
#
# Environment:
#   DOCKSPEC_WHEELHOUSE  directory of wheels + requirements.txt (from the host)
#   DOCKSPEC_PROJECT     the synced project tree (its console scripts get wrappers)
#   DOCKSPEC_OFFLINE=1   never call apt-get (fail with a one-line message instead)
set -eu
VENV=/opt/dockspec/venv
PACKAGES="systemd-sysv dbus openssh-server sudo ca-certificates docker.io apparmor python3 python3-venv
iptables iproute2 busybox-static debootstrap docker-registry skopeo runc procps psmisc util-linux kmod"
say() { echo "provision: $*"; }

# 1. Debian packages (a public box has few of them; the local box has all).
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "${DOCKSPEC_OFFLINE:-0}" = 1 ] && { say "packages missing and offline:$missing" >&2; exit 1; }
    say "installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The registry package's own service would take port 5000; the suite starts its own.
if [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
    systemctl enable --now docker >/dev/null 2>&1 || true
else
    rm -f /etc/systemd/system/multi-user.target.wants/docker-registry.service
fi
id vagrant >/dev/null 2>&1 && usermod -aG docker vagrant

# 2. The Python environment, from the host's wheelhouse (no index needed).
W="${DOCKSPEC_WHEELHOUSE:-}"
if [ -n "$W" ] && [ -f "$W/requirements.txt" ]; then
    want=$(sha256sum < "$W/requirements.txt" | cut -c1-16)
    if [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$want" ]; then
        say "python environment $VENV ($want)"
        rm -rf "$VENV"; python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$W" -r "$W/requirements.txt"
        echo "$want" > "$VENV/.requirements"
    fi
fi

# 3. The project itself: importable from the venv, console scripts on PATH.
# A .pth file and small wrappers do what `pip install -e .` does, without a
# build backend inside the guest.
P="${DOCKSPEC_PROJECT:-}"
if [ -n "$P" ] && [ -f "$P/pyproject.toml" ] && [ -x "$VENV/bin/python" ]; then
    "$VENV/bin/python" - "$P" "$VENV" <<'EOF'
import sys, sysconfig, tomllib
from pathlib import Path
project, venv = Path(sys.argv[1]), Path(sys.argv[2])
site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
(site / "dockspec-project.pth").write_text(f"{project}\n")
scripts = tomllib.loads((project / "pyproject.toml").read_text())["project"].get("scripts", {})
for name, spec in scripts.items():
    mod, func = spec.split(":")
    path = venv / "bin" / name
    path.write_text(f"#!{venv}/bin/python\nimport sys\nfrom {mod} import {func}\nsys.exit({func}())\n")
    path.chmod(0o755)
EOF
    ln -sf "$VENV/bin/python" /usr/local/bin/dockspec-python
    say "project $P linked into $VENV"
fi
say "ready"
