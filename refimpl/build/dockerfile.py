"""The Dockerfile grammar (v1, no heredocs): directives, lines, instructions, words, variables.

Pure module: text in, data out, so every rule gets property tests. Parsing is
two-staged as in Docker's classic builder: `parse` turns the text into
`Instruction`s (name, raw arguments, flags, JSON or shell form, line number)
without touching variables; the builder then expands variables per instruction
with `expand` / `expand_words`, because their values (ENV, ARG, --build-arg)
are only known while the stages are dispatched.

Every error is a `DockerfileError` whose text names the line:
"Dockerfile parse error line 3: unknown instruction: FOO".
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

INSTRUCTIONS = {"ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
                "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
                "WORKDIR"}
# "Environment variables are supported by the following list of instructions in the
#  Dockerfile: ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ONBUILD"
# (ARG's default value is expanded as well).
EXPANDS = {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
           "WORKDIR"}
JSON_FORMS = {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME"}
FLAGS = {"FROM": {"platform"}, "COPY": {"from", "chown", "chmod", "link"},
         "ADD": {"chown", "chmod", "link", "checksum", "keep-git-dir"},
         "RUN": {"mount", "network", "security"},
         "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"}}

# Parser directives: "# directive=value", only before the first comment, blank line or
# instruction.  moby/buildkit parser: `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
KNOWN_DIRECTIVES = {"syntax", "escape", "check"}
# A comment line: "Docker treats lines that begin with # as a comment" (leading whitespace allowed).
_COMMENT = re.compile(r"^[ \t]*#")
# A variable name after `$`: [A-Za-z0-9_]+ (buildkit shell lexer, processName).
_NAME = re.compile(r"[A-Za-z0-9_]+")
# A `--flag=value` or `--flag` before the arguments (buildkit BFlags.Parse).
_FLAG = re.compile(r"--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


class DockerfileError(ValueError):
    """A malformed Dockerfile, with its line number in the message."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"Dockerfile parse error line {line}: {message}" if line else message)
        self.line = line


@dataclass
class Instruction:
    name: str                    # upper case: "RUN"
    args: str                    # the raw text after the name and flags (continuations joined)
    line: int                    # 1-based line of the instruction's first line
    original: str                # "RUN echo hi" as written (one line)
    flags: dict[str, str] = field(default_factory=dict)
    json: list[str] | None = None        # exec/JSON form, when the arguments were a JSON array
    sub: "Instruction | None" = None     # ONBUILD's instruction


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    directives: dict[str, str]
    escape: str = "\\"


def parse(text: str) -> Dockerfile:
    """Split a Dockerfile into instructions; raises DockerfileError naming the line."""
    lines = text.replace("\r\n", "\n").split("\n")
    directives: dict[str, str] = {}
    start = 0
    for start, line in enumerate(lines):            # noqa: B007 - `start` is used afterwards
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in KNOWN_DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in directives:
            raise DockerfileError(f"only one {key} parser directive can be used", start + 1)
        directives[key] = m.group(2)
    else:
        start = len(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"invalid escape token '{escape}' does not match ` or \\", 1)
    # "\\[ \t]*$": the escape token, then only blanks, continues the line.
    cont = re.compile(re.escape(escape) + r"[ \t]*$")
    out: list[Instruction] = []
    i = start
    while i < len(lines):
        line, first = lines[i], i + 1
        i += 1
        if _COMMENT.match(line) or not line.strip():
            continue
        parts = []
        while True:
            m = cont.search(line)
            if not m:
                parts.append(line)
                break
            parts.append(line[:m.start()])
            while i < len(lines) and (_COMMENT.match(lines[i]) or not lines[i].strip()):
                i += 1                          # comments and blank lines inside a continuation
            if i >= len(lines):
                break
            line = lines[i]
            i += 1
        out.append(_instruction("".join(parts).strip(), first, escape))
    return Dockerfile(out, directives, escape)


def _instruction(text: str, line: int, escape: str, onbuild: bool = False) -> Instruction:
    head, _, rest = text.partition(" ") if " " in text else text.partition("\t")
    name = head.upper()
    if name not in INSTRUCTIONS:
        raise DockerfileError(f"unknown instruction: {head}", line)
    rest = rest.strip()
    flags: dict[str, str] = {}
    while rest.startswith("--") and name in FLAGS:
        word, _, after = rest.partition(" ")
        m = _FLAG.match(word)
        if not m or m.group(1) not in FLAGS[name]:
            raise DockerfileError(f"unknown flag: {word.split('=')[0]}", line)
        flags[m.group(1)] = m.group(2) if m.group(2) is not None else "true"
        rest = after.strip()
    ins = Instruction(name, rest, line, text, flags)
    if name in JSON_FORMS and rest.startswith("["):
        try:
            doc = json.loads(rest)
        except ValueError:
            doc = None
        if isinstance(doc, list) and all(isinstance(a, str) for a in doc):
            ins.json = doc
    _check(ins, escape, onbuild)
    return ins


def _check(ins: Instruction, escape: str, onbuild: bool) -> None:
    name, rest, line = ins.name, ins.args, ins.line
    if name == "ONBUILD":
        if onbuild:
            raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", line)
        if not rest:
            raise DockerfileError("ONBUILD requires at least one argument", line)
        sub = _instruction(rest, line, escape, onbuild=True)
        if sub.name in ("FROM", "MAINTAINER"):
            raise DockerfileError(f"{sub.name} isn't allowed as an ONBUILD trigger", line)
        ins.sub = sub
        return
    if name in ("CMD", "ENTRYPOINT", "RUN", "HEALTHCHECK") and not rest and not ins.json:
        if name == "HEALTHCHECK" or name == "RUN":
            raise DockerfileError(f"{name} requires at least one argument", line)
        return
    if not rest and name not in ("CMD", "ENTRYPOINT"):
        raise DockerfileError(f"{name} requires at least one argument", line)
    if name == "SHELL" and ins.json is None:
        raise DockerfileError("SHELL requires the arguments to be in JSON form", line)
    if name in ("COPY", "ADD"):
        n = len(ins.json) if ins.json is not None else len(words(rest, escape))
        if n < 2:
            raise DockerfileError(f"{name} requires at least two arguments, but only one was provided. "
                                  f"Destination could not be determined.", line)
    if name == "FROM":
        w = words(rest, escape)
        if len(w) not in (1, 3) or (len(w) == 3 and w[1].lower() != "as"):
            raise DockerfileError("FROM requires either one or three arguments", line)
    if name in ("ENV", "LABEL"):
        pairs(rest, escape, name, line)
    if name == "ARG":
        for w in words(rest, escape):
            if not re.fullmatch(r"[^=\s]+(=.*)?", w, re.S):
                raise DockerfileError(f"invalid ARG {w!r}", line)
    if name == "HEALTHCHECK":
        kind = rest.split(None, 1)[0].upper()
        if kind not in ("NONE", "CMD"):
            raise DockerfileError("Unknown type " + kind + " in HEALTHCHECK (try CMD)", line)
        if kind == "NONE" and (rest.split(None, 1)[1:] or ins.flags):
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", line)
    if name in ("USER", "WORKDIR", "STOPSIGNAL") and len(words(rest, escape)) != 1 and name != "WORKDIR":
        raise DockerfileError(f"{name} requires exactly one argument", line)


def words(text: str, escape: str = "\\") -> list[str]:
    """Split on blanks outside quotes, keeping quotes and escapes in the words
    (buildkit parseWords): `a="b c" d` → ['a="b c"', 'd']."""
    out, cur, quote, i = [], "", "", 0
    while i < len(text):
        c = text[i]
        if c == escape and i + 1 < len(text) and quote != "'":
            cur += c + text[i + 1]
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c.isspace():
            if cur:
                out.append(cur)
            cur = ""
            i += 1
            continue
        cur += c
        i += 1
    if cur:
        out.append(cur)
    return out


def pairs(text: str, escape: str, name: str = "ENV", line: int | None = None) -> list[tuple[str, str]]:
    """ENV/LABEL arguments as raw (key, value) pairs: `k=v k2="v 2"` or the old `k the value`."""
    w = words(text, escape)
    if not w:
        raise DockerfileError(f"{name} requires at least one argument", line)
    if "=" not in w[0]:
        if len(w) < 2 and name == "ENV":
            raise DockerfileError("ENV must have two arguments", line)
        key, _, value = text.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for word in w:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise DockerfileError(f"{name} names can not be blank" if eq else
                                  f"Syntax error - can't find = in {word!r}. Must be of the form: name=value",
                                  line)
        out.append((key, value))
    return out


# --------------------------------------------------------------------------- variables
def expand(word: str, env: dict[str, str], escape: str = "\\") -> str:
    """Expand $VAR, ${VAR}, ${VAR:-word}, ${VAR:+word} (and -, +, ?, :? ) and remove quotes and
    escapes, as the builder's shell lexer does for one word. Single quotes keep `$` literal."""
    out, _ = _lex(word, 0, env, escape, stop="")
    return out


def expand_words(text: str, env: dict[str, str], escape: str = "\\") -> list[str]:
    """Split then expand each word (EXPOSE, VOLUME, COPY sources in shell form)."""
    return [expand(w, env, escape) for w in words(text, escape)]


def _lex(s: str, i: int, env, escape: str, stop: str) -> tuple[str, int]:
    out = []
    while i < len(s):
        c = s[i]
        if stop and c == stop:
            return "".join(out), i
        if c == escape:
            if i + 1 < len(s):
                out.append(s[i + 1])
            i += 2
        elif c == "'":
            j = s.find("'", i + 1)
            if j < 0:
                raise DockerfileError("unexpected end of statement while looking for matching single-quote")
            out.append(s[i + 1:j])
            i = j + 1
        elif c == '"':
            i += 1
            while True:
                if i >= len(s):
                    raise DockerfileError("unexpected end of statement while looking for matching double-quote")
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == escape and i + 1 < len(s) and s[i + 1] in ('"', "$", escape):
                    out.append(s[i + 1])
                    i += 2
                elif c == "$":
                    text, i = _dollar(s, i, env, escape)
                    out.append(text)
                else:
                    out.append(c)
                    i += 1
        elif c == "$":
            text, i = _dollar(s, i, env, escape)
            out.append(text)
        else:
            out.append(c)
            i += 1
    if stop:
        raise DockerfileError(f"syntax error: missing '{stop}' in {s!r}")
    return "".join(out), i


def _dollar(s: str, i: int, env, escape: str) -> tuple[str, int]:
    """At s[i] == '$': the expansion and the index after it."""
    i += 1
    if i < len(s) and s[i] == "{":
        m = _NAME.match(s, i + 1)
        if not m:
            raise DockerfileError(f"syntax error: bad substitution in {s!r}")
        name, i = m.group(), m.end()
        if i >= len(s):
            raise DockerfileError(f"syntax error: missing '}}' in {s!r}")
        if s[i] == "}":
            return env.get(name, ""), i + 1
        colon = s[i] == ":"
        op_at = i + 1 if colon else i
        op = s[op_at] if op_at < len(s) else ""
        if op not in ("-", "+", "?"):
            raise DockerfileError(f"syntax error: unsupported modifier ({s[i:op_at + 1]}) in substitution")
        word, i = _lex(s, op_at + 1, env, escape, stop="}")
        value = env.get(name)
        is_set = value is not None and (value != "" or not colon)
        if op == "-":
            return (value if is_set else word), i + 1
        if op == "+":
            return (word if is_set else ""), i + 1
        if not is_set:
            raise DockerfileError(f"{name}: {word or 'is not allowed to be unset'}")
        return value, i + 1
    m = _NAME.match(s, i)
    if not m:
        return "$", i
    return env.get(m.group(), ""), m.end()
