"""A small subset of Go's text/template, enough for docker's `--format` flags.

`docker inspect --format '{{.State.Status}}'`, `ps --format '{{.ID}}\t{{.Names}}'` and
friends are part of many scripts, so the CLI must evaluate the same templates the
same way. Supported: text and actions with `{{-`/`-}}` trimming; fields `.A.B`, `.`,
variables `$`, `$x`, `$x.A`; string, number and bool literals; function calls and
`|` pipelines, parenthesised sub-pipelines; `if`/`else`/`end`, `range` (with `$v :=`
or `$k, $v :=`). Functions: docker's `json join lower upper title split` and Go's
`len index print println eq ne lt gt not and or`.

Values print the way Go's fmt prints the matching decoded JSON (`interface{}`) values:
`true`, `[a b]`, `map[k:v]` with sorted keys, `<no value>` for null. A field that is
not there is an error, as in docker's templates (`missingkey=error`); `index` of a
missing key gives `<no value>`. Data is plain JSON (dicts, lists, str, int, float,
bool, None); integers print as integers, as docker's typed structs do.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache


class TemplateError(ValueError):
    """A template that cannot be parsed or executed; one-line message."""


# ----------------------------------------------------------------- lexing
ACTION_RE = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
# Go lexer items: quoted string "…" (with escapes) or raw `…`; number; field chain
# `.A.B`; variable `$x.A`; identifier (function or keyword); punctuation.
TOKEN_RE = re.compile(r"""\s*(?:
    (?P<str>"(?:[^"\\\n]|\\.)*"|`[^`]*`)
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<var>\$\w*(?:\.\w+)*)
  | (?P<field>(?:\.\w+)+|\.)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<punct>:=|[(),|])
)""", re.X)


def _tokens(src: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(src):
        if src[pos:].strip() == "":
            break
        m = TOKEN_RE.match(src, pos)
        if not m:
            raise TemplateError(f"unexpected {src[pos:].strip()[:10]!r} in command")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


# ---------------------------------------------------------------- parsing
class _Parser:
    def __init__(self, text: str):
        self.items = self._split(text)
        self.i = 0

    @staticmethod
    def _split(text: str) -> list[tuple[str, str]]:
        """Alternating ("text", s) and ("action", src), trim markers applied."""
        items, pos = [], 0
        for m in ACTION_RE.finditer(text):
            lead = text[pos:m.start()]
            if m.group(1):
                lead = lead.rstrip()
            items.append(("text", lead))
            items.append(("action", m.group(2)))
            pos = m.end()
            if m.group(3):
                while pos < len(text) and text[pos].isspace():
                    pos += 1
        rest = text[pos:]
        if "{{" in rest:
            raise TemplateError("unclosed action")
        items.append(("text", rest))
        return items

    def nodes(self, stop: tuple[str, ...] = ()) -> tuple[list, str | None]:
        out: list = []
        while self.i < len(self.items):
            kind, src = self.items[self.i]
            self.i += 1
            if kind == "text":
                if src:
                    out.append(("text", src))
                continue
            toks = _tokens(src)
            if not toks:
                raise TemplateError("missing value for command")
            word = toks[0][1] if toks[0][0] == "ident" else None
            if word in ("end", "else"):
                if word not in stop:
                    raise TemplateError(f"unexpected {{{{{word}}}}}")
                return out, word
            if word == "if":
                pipe = _pipeline(toks[1:])
                body, end = self.nodes(("else", "end"))
                other = self.nodes(("end",))[0] if end == "else" else []
                out.append(("if", pipe, body, other))
            elif word == "range":
                names, rest = _declaration(toks[1:])
                pipe = _pipeline(rest)
                body, end = self.nodes(("else", "end"))
                other = self.nodes(("end",))[0] if end == "else" else []
                out.append(("range", pipe, names, body, other))
            elif word in ("with", "define", "template", "block"):
                raise TemplateError(f"{{{{{word}}}}} is not supported")
            else:
                out.append(("action", _pipeline(toks)))
        if stop:
            raise TemplateError("unexpected EOF")
        return out, None


def _declaration(toks):
    """`$k, $v :=` or `$v :=` at the start of a range."""
    if len(toks) >= 4 and toks[0][0] == "var" and toks[1] == ("punct", ",") and toks[3] == ("punct", ":="):
        return (toks[0][1], toks[2][1]), toks[4:]
    if len(toks) >= 2 and toks[0][0] == "var" and toks[1] == ("punct", ":="):
        return (None, toks[0][1]), toks[2:]
    return (None, None), toks


def _pipeline(toks) -> list:
    """pipeline := command ('|' command)* ; command := operand+"""
    cmds: list = []
    ops, i = [], 0
    while i < len(toks):
        kind, val = toks[i]
        if (kind, val) == ("punct", "("):
            depth, j = 1, i + 1
            while j < len(toks) and depth:
                depth += {"(": 1, ")": -1}.get(toks[j][1], 0) if toks[j][0] == "punct" else 0
                j += 1
            if depth:
                raise TemplateError("unclosed left paren")
            sub = _pipeline(toks[i + 1:j - 1])
            ops.append(("pipe", sub))
            i = j
            continue
        if (kind, val) == ("punct", "|"):
            if not ops:
                raise TemplateError("missing command before '|'")
            cmds.append(ops)
            ops = []
        elif kind == "punct":
            raise TemplateError(f"unexpected {val!r} in operand")
        elif kind == "str":
            ops.append(("lit", json.loads(val) if val[0] == '"' else val[1:-1]))
        elif kind == "num":
            ops.append(("lit", float(val) if any(c in val for c in ".eE") else int(val)))
        elif kind == "ident" and val in ("true", "false", "nil"):
            ops.append(("lit", {"true": True, "false": False, "nil": None}[val]))
        elif kind == "ident":
            if val not in FUNCS:
                raise TemplateError(f'function "{val}" not defined')
            ops.append(("func", val))
        elif kind == "var":
            name, *path = val.split(".")
            ops.append(("var", name, path))
        else:
            ops.append(("field", [] if val == "." else val[1:].split(".")))
        i += 1
    if not ops:
        raise TemplateError("missing value for command")
    cmds.append(ops)
    return cmds


# -------------------------------------------------------------- execution
MISSING = object()


def _field(value, names: list[str], label: str):
    for n in names:
        if value is MISSING or value is None:
            raise TemplateError(f"nil pointer evaluating {label}.{n}")
        if not isinstance(value, dict):
            raise TemplateError(f"can't evaluate field {n} in type {_gotype(value)}")
        if n not in value:
            raise TemplateError(f'map has no entry for key "{n}"')
        value = value[n]
    return value


def _gotype(v) -> str:
    return {str: "string", bool: "bool", int: "int", float: "float64", list: "[]interface {}"}.get(type(v), "interface {}")


def truth(v) -> bool:
    return not (v is MISSING or v is None or v is False or v == 0 and not isinstance(v, bool) and isinstance(v, (int, float))
                or (isinstance(v, (str, list, dict)) and len(v) == 0))


def _gofloat(f: float) -> str:
    """Go's %v of a float64 (strconv 'g', shortest): exponent form below 1e-4 or from 1e6."""
    if f != f or f in (float("inf"), float("-inf")):
        return "NaN" if f != f else ("+Inf" if f > 0 else "-Inf")
    if f == 0:
        return "0"
    sign, digits, e = Decimal(repr(f)).normalize().as_tuple()
    ds, neg = "".join(map(str, digits)), "-" if sign else ""
    exp = len(ds) - 1 + e
    if exp < -4 or exp >= 6:
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return neg + format(Decimal(ds).scaleb(e), "f")


def show(v) -> str:
    """Print a value as Go's fmt prints decoded JSON."""
    if v is MISSING or v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return _gofloat(v)
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_inner(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_inner(x) for x in v) + "]"
    return str(v)


def _inner(v) -> str:
    return "<nil>" if v is None else show(v)


def _index(v, *keys):
    for k in keys:
        if isinstance(v, dict):
            v = v.get(k, MISSING) if isinstance(k, str) else _err(f"value has type {_gotype(k)}; should be string")
        elif isinstance(v, (list, str)) and isinstance(k, int) and not isinstance(k, bool):
            if not 0 <= k < len(v):
                raise TemplateError(f"error calling index: index out of range: {k}")
            v = v[k]
        else:
            raise TemplateError(f"error calling index: can't index item of type {_gotype(v)}")
    return v


def _err(msg):
    raise TemplateError(msg)


def _len(v):
    if isinstance(v, (str, list, dict)):
        return len(v)
    raise TemplateError(f"error calling len: len of type {_gotype(v)}")


def _json(v) -> str:
    return json.dumps(None if v is MISSING else v, separators=(",", ":"), ensure_ascii=False)


def _gocmp(a, b, op):
    try:
        return op(a, b)
    except TypeError:
        raise TemplateError("incompatible types for comparison") from None


FUNCS = {
    "json": _json,
    "len": _len,
    "index": _index,
    "join": lambda v, sep: sep.join(show(x) for x in v),
    "lower": lambda s: show(s).lower(),
    "upper": lambda s: show(s).upper(),
    "title": lambda s: show(s).title(),
    "split": lambda s, sep: show(s).split(sep),
    "print": lambda *a: "".join(show(x) for x in a),
    "println": lambda *a: " ".join(show(x) for x in a) + "\n",
    "eq": lambda a, *bs: any(_gocmp(a, b, lambda x, y: x == y) for b in bs),
    "ne": lambda a, b: _gocmp(a, b, lambda x, y: x != y),
    "lt": lambda a, b: _gocmp(a, b, lambda x, y: x < y),
    "gt": lambda a, b: _gocmp(a, b, lambda x, y: x > y),
    "not": lambda a: not truth(a),
    "and": lambda *a: next((x for x in a if not truth(x)), a[-1]),
    "or": lambda *a: next((x for x in a if truth(x)), a[-1]),
}


class Template:
    def __init__(self, text: str):
        self.nodes, _ = _Parser(text).nodes()

    def execute(self, data) -> str:
        out: list[str] = []
        self._run(self.nodes, data, {"$": data}, out)
        return "".join(out)

    def _run(self, nodes, dot, env, out):
        for node in nodes:
            kind = node[0]
            if kind == "text":
                out.append(node[1])
            elif kind == "action":
                out.append(show(self._pipe(node[1], dot, env)))
            elif kind == "if":
                branch = node[2] if truth(self._pipe(node[1], dot, env)) else node[3]
                self._run(branch, dot, env, out)
            else:
                _, pipe, (kname, vname), body, other = node
                seq = self._pipe(pipe, dot, env)
                if isinstance(seq, dict):
                    pairs = [(k, seq[k]) for k in sorted(seq)]
                elif isinstance(seq, list):
                    pairs = list(enumerate(seq))
                elif seq is MISSING or seq is None:
                    pairs = []
                else:
                    raise TemplateError(f"range can't iterate over {show(seq)}")
                for k, v in pairs:
                    scope = dict(env)
                    if kname:
                        scope[kname] = k
                    if vname:
                        scope[vname] = v
                    self._run(body, v, scope, out)
                if not pairs:
                    self._run(other, dot, env, out)

    def _pipe(self, cmds, dot, env):
        result = MISSING
        for i, ops in enumerate(cmds):
            args = [self._operand(op, dot, env) for op in ops[1:]] if ops[0][0] == "func" else None
            if args is None:
                if len(ops) > 1 or i > 0:
                    raise TemplateError("can't give argument to non-function")
                result = self._operand(ops[0], dot, env)
                continue
            if i > 0:
                args.append(result)
            try:
                result = FUNCS[ops[0][1]](*args)
            except TypeError:
                raise TemplateError(f"wrong number of args for {ops[0][1]}") from None
            except (AttributeError, ValueError) as e:
                if isinstance(e, TemplateError):
                    raise
                raise TemplateError(f"error calling {ops[0][1]}: {e}") from None
        return result

    def _operand(self, op, dot, env):
        kind = op[0]
        if kind == "lit":
            return op[1]
        if kind == "field":
            return _field(dot, op[1], "") if op[1] else dot
        if kind == "var":
            if op[1] not in env:
                raise TemplateError(f"undefined variable: {op[1]}")
            return _field(env[op[1]], op[2], op[1])
        if kind == "pipe":
            return self._pipe(op[1], dot, env)
        raise TemplateError(f"function {op[1]} used as a value")


@lru_cache(maxsize=64)
def parse(text: str) -> Template:
    return Template(text)


def render(text: str, data) -> str:
    """Parse (cached) and execute `text` on `data`."""
    return parse(text).execute(data)
