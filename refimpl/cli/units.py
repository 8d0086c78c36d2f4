"""The CLI's little grammars and human formats, as docker/go-units and the docker CLI
define them: memory sizes (`512m`), Go durations (`10m30s`), `--since` times, published
ports, restart policies; and the human forms tables print (`1.99MB`, `2 minutes ago`).
Pure functions, property-tested; each regex has its source rule above it.
"""
from __future__ import annotations

import re
import time
from datetime import datetime, timezone


class UnitError(ValueError):
    """A flag value that does not parse; the message is one line."""


# go-units size.go: sizeRegex = `^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$`
SIZE_RE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(s: str) -> int:
    """`units.RAMInBytes`: binary multiples, `512m` -> 536870912."""
    m = SIZE_RE.fullmatch(s)
    if not m:
        raise UnitError(f"invalid size: '{s}'")
    try:
        n = float(m.group(1))
    except ValueError:
        raise UnitError(f"invalid size: '{s}'") from None
    return int(n * BINARY.get((m.group(2) or "").lower(), 1))


def memory_swap(s: str) -> int:
    """`--memory-swap`: a size, or -1 for unlimited."""
    return -1 if s == "-1" else ram_in_bytes(s)


DECIMAL_ABBRS = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]


def human_size(size: float, precision: int = 3) -> str:
    """`units.HumanSizeWithPrecision`: decimal multiples, `%.{precision}g`."""
    i = 0
    while size >= 1000.0 and i < len(DECIMAL_ABBRS) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.{precision}g}{DECIMAL_ABBRS[i]}"


def human_duration(seconds: float) -> str:
    """`units.HumanDuration`."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(round(seconds / 3600))
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds // 3600) // 24 // 365} years"


def ago(unix: float, now: float | None = None) -> str:
    return human_duration((now if now is not None else time.time()) - unix) + " ago"


# Go time.ParseDuration: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ with units ns us µs ms s m h
DURATION_RE = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)")
DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def parse_duration(s: str) -> float:
    """Go's `time.ParseDuration`, in seconds. "0" alone is allowed."""
    if s == "0":
        return 0.0
    m = DURATION_RE.fullmatch(s)
    if not m:
        raise UnitError(f'time: invalid duration "{s}"')
    total = sum(float(n) * DURATION_UNITS[u] for n, u in DURATION_PART.findall(m.group(2)))
    return -total if m.group(1) == "-" else total


def parse_since(s: str, now: float | None = None) -> str:
    """`--since`/`--until` (docker's timetypes.GetTimestamp): a Unix timestamp, an
    RFC 3339 time or date, or a Go duration back from now; as the API's seconds string."""
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return s
    try:
        return f"{(now if now is not None else time.time()) - parse_duration(s):.9f}"
    except UnitError:
        pass
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise UnitError(f'failed to parse value as time or duration: "{s}"') from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return f"{t.timestamp():.9f}"


# docker/go-connections nat.ParsePortSpec:  ip:hostPort:containerPort | ip::containerPort
#   | hostPort:containerPort | containerPort   ; each followed by an optional /proto
PORT_RE = re.compile(r"(?:(?:(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(?P<host>\d*):)?(?P<ctr>\d+)(?:/(?P<proto>tcp|udp|sctp))?")


def parse_publish(spec: str) -> tuple[str, str, str]:
    """`-p`: (container port "80/tcp", host ip, host port)."""
    m = PORT_RE.fullmatch(spec)
    if not m:
        raise UnitError(f"invalid port specification: \"{spec}\"")
    for p in (m.group("host"), m.group("ctr")):
        if p and not 0 <= int(p) <= 65535:
            raise UnitError(f"invalid port specification: \"{spec}\"")
    ip = (m.group("ip") or "").strip("[]")
    return f"{m.group('ctr')}/{m.group('proto') or 'tcp'}", ip, m.group("host") or ""


# docker opts.ParseRestartPolicy: no | always | unless-stopped | on-failure[:max-retries]
RESTART_RE = re.compile(r"(no|always|unless-stopped|on-failure)(?::(\d+))?")


def parse_restart(s: str) -> dict:
    m = RESTART_RE.fullmatch(s)
    if not m or (m.group(2) and m.group(1) != "on-failure"):
        raise UnitError(f"invalid restart policy: {s}")
    policy = {"Name": "" if m.group(1) == "no" else m.group(1)}
    if m.group(2):
        policy["MaximumRetryCount"] = int(m.group(2))
    return policy


def parse_cpus(s: str) -> int:
    """`--cpus 1.5` -> NanoCpus."""
    try:
        v = float(s)
    except ValueError:
        raise UnitError(f"invalid argument \"{s}\" for \"--cpus\" flag") from None
    if v < 0 or v != v:
        raise UnitError(f"invalid argument \"{s}\" for \"--cpus\" flag")
    return int(round(v * 1e9))


def go_time(iso: str) -> float:
    """An API timestamp (RFC 3339 with nanoseconds) as Unix seconds."""
    m = re.fullmatch(r"(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[-+]\d\d:\d\d)", iso)
    if not m:
        return 0.0
    t = datetime.fromisoformat(m.group(1) + (m.group(3).replace("Z", "+00:00")))
    return t.timestamp() + float(m.group(2) or 0)


def _bool_field(key: str, value: str | None) -> bool:
    if value is None:
        return True
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise UnitError(f"invalid value for {key}: {value}")


def parse_mount(spec: str) -> dict:
    """`--mount type=volume,src=x,dst=/d,readonly,...` (docker/cli opts/mount.go, a CSV of
    key=value fields) -> one HostConfig.Mounts object. The type defaults to volume."""
    m: dict = {"Type": "volume"}
    vol: dict = {}
    tmpfs: dict = {}
    for field in (f.strip() for f in spec.split(",")):
        if not field:
            continue
        key, sep, value = field.partition("=")
        key = key.lower()
        if not sep and key not in ("readonly", "ro", "volume-nocopy"):
            raise UnitError(f"invalid field '{field}' must be a key=value pair")
        val = value if sep else None
        if key == "type":
            m["Type"] = value
        elif key in ("source", "src"):
            m["Source"] = value
        elif key in ("target", "destination", "dst"):
            m["Target"] = value
        elif key in ("readonly", "ro"):
            m["ReadOnly"] = _bool_field(key, val)
        elif key == "volume-nocopy":
            vol["NoCopy"] = _bool_field(key, val)
        elif key == "volume-label":
            k, _, v = value.partition("=")
            vol.setdefault("Labels", {})[k] = v
        elif key == "volume-driver":
            vol.setdefault("DriverConfig", {})["Name"] = value
        elif key == "tmpfs-size":
            tmpfs["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs["Mode"] = int(value, 8)
            except ValueError:
                raise UnitError(f"invalid value for {key}: {value}") from None
        elif key in ("bind-propagation", "consistency", "bind-recursive"):
            pass
        else:
            raise UnitError(f"unexpected key '{key}' in '{field}'")
    if not m.get("Target"):
        raise UnitError("target is required")
    if vol:
        m["VolumeOptions"] = vol
    if tmpfs:
        m["TmpfsOptions"] = tmpfs
    return m
