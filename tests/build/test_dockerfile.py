"""The Dockerfile grammar: directives, continuations, forms, flags, errors, variable expansion."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.build import dockerfile as df


def names(text: str) -> list[tuple[str, str]]:
    return [(i.name, i.args) for i in df.parse(text).instructions]


def test_continuations_comments_and_blank_lines():
    text = "FROM busybox\n# a comment\n\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD sh\n"
    assert names(text) == [("FROM", "busybox"), ("RUN", "echo a   && echo b"), ("CMD", "sh")]
    ins = df.parse(text).instructions
    assert [i.line for i in ins] == [1, 4, 8]


def test_escape_directive_switches_the_continuation_character():
    parsed = df.parse("# escape=`\nFROM busybox\nRUN dir c:\\ `\n  && echo x\n")
    assert parsed.escape == "`" and parsed.directives == {"escape": "`"}
    assert parsed.instructions[1].args == "dir c:\\   && echo x"


def test_directives_only_at_the_top():
    parsed = df.parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n# escape=`\nRUN x \\\n y\n")
    assert parsed.directives == {"syntax": "docker/dockerfile:1", "escape": "\\"}
    assert parsed.instructions[1].args == "x  y"
    with pytest.raises(df.DockerfileError, match="line 2: only one escape parser directive"):
        df.parse("# escape=`\n# escape=\\\nFROM a\n")
    with pytest.raises(df.DockerfileError, match="invalid escape token"):
        df.parse("# escape=x\nFROM a\n")


def test_json_and_shell_forms_and_flags():
    ins = df.parse('FROM a\nCMD ["echo", "hi"]\nENTRYPOINT echo hi\nCOPY --from=b --chown=1:2 x y\n'
                   'RUN [not json\n').instructions
    assert ins[1].json == ["echo", "hi"] and ins[2].json is None
    assert ins[3].flags == {"from": "b", "chown": "1:2"} and ins[3].args == "x y"
    assert ins[4].json is None and ins[4].args == "[not json"


@pytest.mark.parametrize("text, message", [
    ("FROM a\nFOO bar\n", "line 2: unknown instruction: FOO"),
    ("FROM a\nCOPY onlyone\n", "line 2: COPY requires at least two arguments"),
    ("FROM a b\n", "line 1: FROM requires either one or three arguments"),
    ("FROM a\nSHELL sh -c\n", "line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nCOPY --frum=x a b\n", "line 2: unknown flag: --frum"),
    ("FROM a\nENV\n", "line 2: ENV requires at least one argument"),
    ("FROM a\nLABEL =x\n", "line 2: LABEL names can not be blank"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "line 2: Chaining ONBUILD"),
    ("FROM a\nONBUILD FROM b\n", "line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK BOGUS x\n", "line 2: Unknown type BOGUS"),
])
def test_errors_name_the_line(text, message):
    with pytest.raises(df.DockerfileError) as e:
        df.parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_env_and_label_pairs():
    assert df.pairs('a=1 b="two words" c=x\\ y', "\\") == [("a", "1"), ("b", '"two words"'), ("c", "x\\ y")]
    assert df.pairs("NAME the whole value", "\\") == [("NAME", "the whole value")]


@pytest.mark.parametrize("word, want", [
    ("$A", "x"), ("${A}y", "xy"), ("${UNSET:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""), ("${A:+alt}", "alt"), ("${UNSET:+alt}", ""), ("${EMPTY+alt}", "alt"),
    ("'$A'", "$A"), ('"$A b"', "x b"), ("\\$A", "$A"), ("$", "$"), ("a$-b", "a$-b"),
    ("${UNSET:-${A}z}", "xz"), ('"q\\"q"', 'q"q'),
])
def test_expand(word, want):
    assert df.expand(word, {"A": "x", "EMPTY": ""}) == want


def test_expand_errors_are_dockerfile_errors():
    for bad in ("${A", "${}", "'open", '"open', "${A:=x}", "${UNSET:?must be set}"):
        with pytest.raises(df.DockerfileError):
            df.expand(bad, {"A": "x"})


# ----------------------------------------------------------------------------- properties
plain = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_-./:,"), min_size=1,
                max_size=12)
name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=60)
@given(plain)
def test_plain_words_expand_to_themselves(word):
    assert df.expand(word, {"A": "x"}) == word


@settings(max_examples=60)
@given(name, st.one_of(st.none(), st.text("ab", max_size=5)), plain)
def test_default_and_alternative_follow_the_rules(var, value, word):
    env = {} if value is None else {var: value}
    is_set = bool(value)
    assert df.expand("${%s:-%s}" % (var, word), env) == (value if is_set else word)
    assert df.expand("${%s:+%s}" % (var, word), env) == (word if is_set else "")
    assert df.expand("${%s-%s}" % (var, word), env) == (value if value is not None else word)


@settings(max_examples=60)
@given(st.lists(st.lists(plain, min_size=1, max_size=4), min_size=1, max_size=5), st.data())
def test_continuations_join_like_one_line(runs, data):
    """Splitting RUN arguments over continuation lines (with comments between) parses the same."""
    one = "FROM a\n" + "".join("RUN " + " ".join(w) + "\n" for w in runs)
    split = "FROM a\n"
    for w in runs:
        parts = ["RUN " + w[0]] + [" " + x for x in w[1:]]
        glue = data.draw(st.sampled_from([" \\\n", " \\\n# note\n", " \\\n\n"]))
        split += glue.join(parts) + "\n"
    strip = lambda t: [(n, " ".join(a.split())) for n, a in names(t)]  # noqa: E731
    assert strip(one) == strip(split)


@settings(max_examples=100)
@given(st.text(max_size=80))
def test_anything_either_parses_or_fails_with_one_line(text):
    try:
        df.parse(text)
    except df.DockerfileError as e:
        assert "\n" not in str(e)


@settings(max_examples=60)
@given(st.dictionaries(name, st.text(st.characters(whitelist_categories=("L", "N", "Zs"),
                                                     whitelist_characters="$'\"\\-_/."), max_size=10),
                       min_size=1, max_size=4))
def test_env_pairs_round_trip_through_quoting(values):
    """Values written with Docker's double-quote escapes come back exactly after expansion."""
    def quote(v: str) -> str:
        return '"' + "".join("\\" + c if c in '"$\\' else c for c in v) + '"'
    line = " ".join(f"{k}={quote(v)}" for k, v in values.items())
    got = {k: df.expand(v, {}) for k, v in df.pairs(line, "\\")}
    assert got == values
