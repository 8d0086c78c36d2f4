"""The pure half of containers: the create body, names, filters and status texts.

Nothing here touches the OS, so all of it is property-tested. The create body
is checked field by field against the types moby's Go structs give them
(`container.Config`, `container.HostConfig`), and a wrong type is answered as
Go's encoding/json answers it ("json: cannot unmarshal string into Go struct
field Config.Tty of type bool"), one line, status 400. The image's config is
merged in as moby's `daemon.merge` does. Filters, the `ps` status column and
Docker's human durations live here too.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timezone

from .errors import InvalidParameter

# moby daemon/names: validContainerNameChars = `[a-zA-Z0-9][a-zA-Z0-9_.-]`,
# validContainerNamePattern = `^/?` + validContainerNameChars + `+$`
NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")

ZERO_TIME = "0001-01-01T00:00:00Z"

# Go types of the fields we read; anything else in the body is carried along as it is.
_STR, _BOOL, _INT = "string", "bool", "int64"
_STRS = "[]string"          # strslice.StrSlice: a JSON string or an array of strings
_STRLIST = "[]string!"      # a plain []string: only an array
_MAP = "map[string]string"
CONFIG_FIELDS = {
    "Hostname": _STR, "Domainname": _STR, "User": _STR, "AttachStdin": _BOOL, "AttachStdout": _BOOL,
    "AttachStderr": _BOOL, "Tty": _BOOL, "OpenStdin": _BOOL, "StdinOnce": _BOOL, "Env": _STRLIST,
    "Cmd": _STRS, "Entrypoint": _STRS, "Image": _STR, "WorkingDir": _STR, "Labels": _MAP,
    "StopSignal": _STR, "StopTimeout": _INT, "NetworkDisabled": _BOOL, "MacAddress": _STR,
}
RESTART_FIELDS = {"Name": _STR, "MaximumRetryCount": _INT}
HOST_FIELDS = {
    "Memory": _INT, "MemorySwap": _INT, "NanoCpus": _INT, "CpuQuota": _INT, "CpuPeriod": _INT,
    "CpuShares": _INT, "PidsLimit": _INT, "ReadonlyRootfs": _BOOL, "NetworkMode": _STR,
    "Binds": _STRLIST, "VolumesFrom": _STRLIST, "AutoRemove": _BOOL, "Init": _BOOL, "Privileged": _BOOL,
    "RestartPolicy": RESTART_FIELDS, "SecurityOpt": _STRLIST,
}
RESTART_POLICIES = ("", "no", "always", "unless-stopped", "on-failure")


def _go_type(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check(obj: dict, fields: dict, where: str) -> None:
    for key, want in fields.items():
        value = obj.get(key)
        if value is None:
            continue
        field = f"{where}.{key}"
        if isinstance(want, dict):
            ok = isinstance(value, dict)
            if ok:
                _check(value, want, f"{where}.{key}")
            want = "container." + key
        elif want == _BOOL:
            ok = isinstance(value, bool)
        elif want == _INT:
            ok = isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63
        elif want == _STR:
            ok = isinstance(value, str)
        elif want == _MAP:
            ok = isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
        else:
            ok = (isinstance(value, str) and want == _STRS) or \
                 (isinstance(value, list) and all(isinstance(v, str) for v in value))
            want = "[]string"
        if not ok:
            raise InvalidParameter(f"json: cannot unmarshal {_go_type(value)} into Go struct field "
                                   f"{field} of type {want}")


def parse_body(raw: bytes) -> dict:
    """The create body as a dict, or InvalidParameter with a one-line reason."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None
    if body is None:
        raise InvalidParameter("config cannot be empty in order to create a container")
    if not isinstance(body, dict):
        raise InvalidParameter(f"json: cannot unmarshal {_go_type(body)} into Go value of type "
                               "container.CreateRequest")
    _check(body, CONFIG_FIELDS, "Config")
    host = body.get("HostConfig")
    if host is not None:
        if not isinstance(host, dict):
            raise InvalidParameter(f"json: cannot unmarshal {_go_type(host)} into Go struct field "
                                   "CreateRequest.HostConfig of type container.HostConfig")
        _check(host, HOST_FIELDS, "HostConfig")
    return body


def _strs(value) -> list[str] | None:
    return [value] if isinstance(value, str) else (list(value) if value is not None else None)


def merge(body: dict, image_config: dict) -> tuple[dict, dict]:
    """(Config, HostConfig) for a new container: the body with the image's config
    merged in (moby daemon/create.go merge) and HostConfig's defaults filled."""
    img = image_config.get("config") or image_config.get("Config") or {}
    cfg = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    for key in ("Cmd", "Entrypoint"):
        cfg[key] = _strs(cfg.get(key))
    env = list(cfg.get("Env") or [])
    keys = {e.partition("=")[0] for e in env}
    env += [e for e in img.get("Env") or [] if e.partition("=")[0] not in keys]
    cfg["Env"] = env
    if not cfg.get("Entrypoint"):
        if not cfg.get("Cmd"):
            cfg["Cmd"] = img.get("Cmd")
        if cfg.get("Entrypoint") is None:
            cfg["Entrypoint"] = img.get("Entrypoint")
    for key in ("WorkingDir", "User", "StopSignal"):
        if not cfg.get(key) and img.get(key):
            cfg[key] = img[key]
    labels = dict(img.get("Labels") or {})
    labels.update(cfg.get("Labels") or {})
    cfg["Labels"] = labels
    for key, default in (("Hostname", ""), ("Domainname", ""), ("User", ""), ("AttachStdin", False),
                         ("AttachStdout", False), ("AttachStderr", False), ("Tty", False),
                         ("OpenStdin", False), ("StdinOnce", False), ("WorkingDir", ""),
                         ("Volumes", None), ("OnBuild", None)):
        cfg.setdefault(key, default)
    if cfg.get("WorkingDir") and not cfg["WorkingDir"].startswith("/"):
        raise InvalidParameter(f"the working directory '{cfg['WorkingDir']}' is invalid, "
                               "it needs to be an absolute path")
    if not (cfg.get("Entrypoint") or []) + (cfg.get("Cmd") or []):
        raise InvalidParameter("No command specified")
    host = {k: v for k, v in (body.get("HostConfig") or {}).items() if v is not None}
    mode = host.get("NetworkMode") or "default"
    host["NetworkMode"] = "bridge" if mode == "default" else mode
    if host["NetworkMode"].startswith("container:"):
        raise InvalidParameter("joining another container's network namespace is not supported")
    policy = dict(host.get("RestartPolicy") or {})
    policy["Name"] = policy.get("Name") or "no"
    policy["MaximumRetryCount"] = policy.get("MaximumRetryCount") or 0
    if policy["Name"] not in RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy '{policy['Name']}'")
    if policy["MaximumRetryCount"] and policy["Name"] != "on-failure":
        raise InvalidParameter(f"invalid restart policy: maximum retry count can only be used "
                               f"with 'on-failure'")
    if policy["MaximumRetryCount"] < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count cannot be negative")
    if host.get("AutoRemove") and policy["Name"] != "no":
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    host["RestartPolicy"] = policy
    for key in ("Memory", "MemorySwap", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares"):
        host.setdefault(key, 0)
        if host[key] < 0 and not (key == "MemorySwap" and host[key] == -1):
            raise InvalidParameter(f"invalid {key}: {host[key]} must not be negative")
    if 0 < host["Memory"] < 6 * 1024 * 1024:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if host["MemorySwap"] > 0 and host["Memory"] and host["MemorySwap"] < host["Memory"]:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, "
                               "see usage")
    if host["NanoCpus"] and (host["CpuQuota"] or host["CpuPeriod"]):
        raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    host["SecurityOpt"] = security_opts(host.get("SecurityOpt"))
    host.setdefault("PidsLimit", None)
    host.setdefault("ReadonlyRootfs", False)
    host.setdefault("AutoRemove", False)
    host.setdefault("Binds", None)
    host.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    cfg["StopSignal"] = cfg.get("StopSignal") or "SIGTERM"
    return cfg, host


def security_opts(opts: list[str] | None) -> list[str] | None:
    """--security-opt values, checked as dockerd checks them (daemon/create.go parseSecurityOpt).

    no-new-privileges (optionally `=`/`:` true or false) is applied. The others are
    confinement refimpl does not apply at all (no seccomp, AppArmor or SELinux profiles), so
    only their "off" values are accepted; asking for a profile is refused rather than ignored.
    """
    for opt in opts or []:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges":
            if sep and value not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid --security-opt 2: {opt!r}")
        elif (key, value) in (("seccomp", "unconfined"), ("apparmor", "unconfined"),
                              ("label", "disable")):
            pass
        elif key in ("seccomp", "apparmor", "label", "systempaths", "writable-cgroups"):
            raise InvalidParameter(f"--security-opt {opt}: not supported by refimpl (it applies no "
                                   f"{key} confinement)")
        else:
            raise InvalidParameter(f"invalid --security-opt 1: {opt!r}")
    return opts or None


def no_new_privileges(opts: list[str] | None) -> bool:
    """Whether --security-opt asks for no_new_privs (the last no-new-privileges value wins)."""
    on = False
    for opt in opts or []:
        key, sep, value = opt.replace(":", "=", 1).partition("=")
        if key == "no-new-privileges":
            on = not sep or value in ("true", "1")
    return on


def check_name(name: str) -> str:
    """A requested container name, normalised to its "/x" form."""
    if not NAME.fullmatch(name):
        raise InvalidParameter(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                               "are allowed")
    return "/" + name.lstrip("/")


_LEFT = ("admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant", "happy", "jolly",
         "keen", "lucid", "modest", "nifty", "quirky", "serene", "trusting", "vibrant", "zealous")
_RIGHT = ("babbage", "curie", "darwin", "euler", "fermi", "galois", "hopper", "lovelace", "noether",
          "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yonath")


def random_name() -> str:
    """moby's namesgenerator in miniature: adjective_scientist."""
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}"


# --- time and status texts ---------------------------------------------------------------

def now_rfc3339() -> str:
    ns = time.time_ns()
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_time(text: str) -> float:
    """RFC 3339 (with up to nanoseconds) -> unix seconds; the zero time -> 0."""
    if not text or text.startswith("0001-"):
        return 0.0
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError(f"invalid time {text!r}")
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    tz = timezone.utc if m.group(3) == "Z" else datetime.strptime(m.group(3).replace(":", ""), "%z").tzinfo
    return base.replace(tzinfo=tz).timestamp() + float("0." + (m.group(2) or "0"))


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
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
    hours = round(seconds / 3600)
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
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(state: str, exit_code: int, started_at: str, finished_at: str, now: float) -> str:
    """The STATUS column of `docker ps` (moby container/state.go State.String)."""
    if state in ("running", "paused"):
        up = "Up " + human_duration(now - parse_time(started_at))
        return up + " (Paused)" if state == "paused" else up
    if state == "restarting":
        return f"Restarting ({exit_code}) {human_duration(now - parse_time(finished_at))} ago"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    if state == "created" or not parse_time(finished_at):
        return "Created"
    return f"Exited ({exit_code}) {human_duration(now - parse_time(finished_at))} ago"


# --- filters ------------------------------------------------------------------------------
FILTER_KEYS = ("name", "id", "label", "status", "ancestor", "exited", "before", "since",
               "network", "health", "volume", "publish", "expose", "isolation", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse_filters(text: str | None, keys=None) -> dict[str, list[str]]:
    """`filters` JSON ({"name": {"x": true}} or the older {"name": ["x"]}) -> {key: [values]};
    `keys` are the filters allowed (the container list's by default)."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise InvalidParameter(f"invalid filter: {e}") from None
    if not isinstance(raw, dict):
        raise InvalidParameter("invalid filter: not a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in (keys or FILTER_KEYS):
            raise InvalidParameter(f"invalid filter '{key}'")
        if isinstance(value, dict):
            values = [k for k, v in value.items() if v]
        elif isinstance(value, list):
            values = [str(v) for v in value]
        else:
            raise InvalidParameter(f"invalid filter '{key}': not a list or an object")
        if key == "status":
            for v in values:
                if v not in STATUSES:
                    raise InvalidParameter(f"invalid filter 'status={v}'")
        if key == "exited":
            for v in values:
                if not re.fullmatch(r"-?\d+", v):
                    raise InvalidParameter(f"invalid filter 'exited={v}'")
        out[key] = values
    return out


def label_matches(labels: dict, wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)
