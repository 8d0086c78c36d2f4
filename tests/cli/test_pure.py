"""Property and unit tests of the CLI's pure parts: the template evaluator, flag
grammars, human formats, the stdcopy demultiplexer, the tab writer; and version
negotiation against a small real HTTP server on a UNIX socket."""
from __future__ import annotations

import json
import socket
import threading

import pytest
from hypothesis import given, settings, strategies as st

from refimpl.cli import template, units
from refimpl.cli.client import Client
from refimpl.cli.output import render_rows, tabwrite
from refimpl.cli.run import start_error_status
from refimpl.cli.streams import Demuxer, frame
from refimpl.cli.template import TemplateError, render

PROP = settings(max_examples=60, deadline=None)

keys = st.text(st.sampled_from("abcXYZ_"), min_size=1, max_size=6).filter(lambda k: not k[0] == "_" or len(k) > 1)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=8))
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(keys, kids, max_size=4)), max_leaves=12)


# ---------------------------------------------------------------- template
@PROP
@given(st.text().filter(lambda s: "{{" not in s))
def test_plain_text_renders_as_itself(text):
    assert render(text, {}) == text


@PROP
@given(json_values)
def test_json_round_trips(value):
    assert json.loads(render("{{json .V}}", {"V": value})) == value


@PROP
@given(st.one_of(st.lists(scalars, max_size=5), st.dictionaries(keys, scalars, max_size=5), st.text(max_size=5)))
def test_len(value):
    assert render("{{len .V}}", {"V": value}) == str(len(value))


@PROP
@given(st.dictionaries(keys, st.text(max_size=5), min_size=1))
def test_index_and_range_over_maps(m):
    k = sorted(m)[0]
    assert render(f'{{{{index .M "{k}"}}}}', {"M": m}) == m[k]
    assert render("{{range $k, $v := .M}}{{$k}}={{$v}};{{end}}", {"M": m}) == "".join(f"{k}={m[k]};" for k in sorted(m))


@PROP
@given(st.lists(keys, min_size=1, max_size=4), scalars)
def test_field_chains_reach_nested_values(path, leaf):
    data = leaf
    for k in reversed(path):
        data = {k: data}
    assert render("{{." + ".".join(path) + "}}", data) == template.show(leaf)


@PROP
@given(st.text(alphabet="{}.$|()\" abcif end range json len index -", max_size=30))
def test_arbitrary_templates_fail_only_with_template_errors(text):
    try:
        render(text, {"a": {"b": [1]}, "c": "x"})
    except TemplateError:
        pass


@pytest.mark.parametrize("tmpl, expected", [
    ("{{.A}}", "[1 2 three]"), ("{{.M}}", "map[a:1 b:true]"), ("{{.N}}", "<no value>"),
    ("{{.F}} {{.G}} {{.H}}", "1.5 1e+06 1.234567e+06"), ("{{.A | len}}", "3"),
    ("{{index .A 2 | upper}}", "THREE"), ("{{join .S \", \"}}", "x, y"),
    ("{{if eq .T \"on\"}}yes{{else}}no{{end}}", "yes"), ("{{if .N}}a{{else}}b{{end}}", "b"),
    ("{{range .A}}<{{.}}>{{else}}none{{end}}", "<1><2><three>"), ("{{range .E}}x{{else}}none{{end}}", "none"),
    ("a  {{- .T -}}  b", "aonb"), ("{{$.T}}{{range .S}}{{$.T}}{{end}}", "ononon"),
    ("{{json .M}}", '{"b":true,"a":1}'), ("{{.M.a}}", "1"), ("{{(index .A 0)}}", "1"),
])
def test_go_template_semantics(tmpl, expected):
    data = {"A": [1, 2, "three"], "M": {"b": True, "a": 1}, "N": None, "F": 1.5, "G": 1e6, "H": 1234567.0,
            "S": ["x", "y"], "T": "on", "E": []}
    assert render(tmpl, data) == expected


@pytest.mark.parametrize("bad", ["{{.A", "{{end}}", "{{if .A}}x", "{{nope .A}}", "{{.A.B}}", "{{index .A 9}}",
                                 "{{.Missing}}", "{{len 3}}", "{{with .A}}{{end}}", "{{.A | }}"])
def test_template_errors(bad):
    with pytest.raises(TemplateError):
        render(bad, {"A": "str"})


# ------------------------------------------------------------------ units
@PROP
@given(st.integers(0, 10**6), st.sampled_from(["", "b", "k", "K", "kb", "m", "M", "mb", "g", "GiB", "t"]))
def test_ram_in_bytes(n, suffix):
    mult = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[suffix[:1].lower()]
    assert units.ram_in_bytes(f"{n}{suffix}") == n * mult


@pytest.mark.parametrize("bad", ["", "lots", "12x", "-1", "1.2.3k", "k"])
def test_ram_in_bytes_rejects(bad):
    with pytest.raises(units.UnitError):
        units.ram_in_bytes(bad)


@PROP
@given(st.lists(st.tuples(st.integers(0, 999), st.sampled_from(["h", "m", "s", "ms"])), min_size=1, max_size=4))
def test_go_durations(parts):
    text = "".join(f"{n}{u}" for n, u in parts)
    expected = sum(n * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in parts)
    assert units.parse_duration(text) == pytest.approx(expected)


def test_since_forms():
    assert units.parse_since("1700000000") == "1700000000"
    assert units.parse_since("10m", now=1000.0) == "400.000000000"
    assert units.parse_since("1970-01-01T00:01:00Z") == "60.000000000"
    with pytest.raises(units.UnitError):
        units.parse_since("yesterday")


@PROP
@given(st.floats(0, 10**8))
def test_human_duration_is_monotonic_in_its_unit_order(sec):
    order = ["Less than a second", "second", "seconds", "About a minute", "minutes", "About an hour",
             "hours", "days", "weeks", "months", "years"]
    rank = lambda s: max(i for i, w in enumerate(order) if s.endswith(w))
    assert rank(units.human_duration(sec)) <= rank(units.human_duration(sec * 2 + 1))


@pytest.mark.parametrize("size, text", [(0, "0B"), (999, "999B"), (1000, "1kB"), (1982256, "1.98MB"),
                                        (5 * 10**9, "5GB")])
def test_human_size(size, text):
    assert units.human_size(size) == text


@PROP
@given(st.integers(1, 65535), st.one_of(st.just(""), st.integers(0, 65535).map(str)),
       st.sampled_from(["", "127.0.0.1", "[::1]"]), st.sampled_from(["", "/udp", "/tcp"]))
def test_publish(cport, hport, ip, proto):
    spec = (f"{ip}:" if ip else "") + (f"{hport}:" if hport or ip else "") + f"{cport}{proto}"
    port, hip, hp = units.parse_publish(spec)
    assert port == f"{cport}/{proto[1:] or 'tcp'}" and hip == ip.strip("[]") and hp == hport


def test_restart_and_cpus():
    assert units.parse_restart("on-failure:3") == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert units.parse_restart("no") == {"Name": ""}
    assert units.parse_cpus("1.5") == 1_500_000_000
    for bad in ("always:3", "sometimes"):
        with pytest.raises(units.UnitError):
            units.parse_restart(bad)


@pytest.mark.parametrize("message, status", [
    ('exec: "nope": executable file not found in $PATH', 127), ("open /x: no such file or directory", 127),
    ("exec /etc/passwd: permission denied", 126), ("exec /tmp: is a directory", 126),
    ("driver failed programming external connectivity", 125)])
def test_start_error_status(message, status):
    assert start_error_status(message) == status


# ---------------------------------------------------------------- streams
@PROP
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=300)), max_size=6), st.data())
def test_demuxer_reassembles_frames_however_the_bytes_are_split(frames, data):
    wire = b"".join(frame(s, p) for s, p in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    d, got = Demuxer(), []
    for a, b in zip([0] + cuts, cuts + [len(wire)]):
        got += d.feed(wire[a:b])
    assert got == frames and d.buf == b""


@PROP
@given(st.lists(st.lists(st.text(st.sampled_from("ab "), max_size=12), min_size=3, max_size=3), min_size=1, max_size=5))
def test_tabwrite_aligns_columns(rows):
    # Go's tabwriter (minwidth 10, padding 3): a column is as wide as its widest cell
    # plus 3, at least 10; every row's cell starts at the same offset; the last is unpadded.
    lines = tabwrite(["\t".join(r) for r in rows]).splitlines()
    w0 = max(10, max(len(r[0]) for r in rows) + 3)
    w1 = max(10, max(len(r[1]) for r in rows) + 3)
    for line, r in zip(lines, rows):
        assert line == r[0].ljust(w0) + r[1].ljust(w1) + r[2]


def test_table_format_header():
    out = render_rows("table {{.ID}}\\t{{.Names}}", [{"ID": "abc", "Names": "n1"}], {"ID": "CONTAINER ID", "Names": "NAMES"})
    assert out == "CONTAINER ID   NAMES\nabc            n1\n"


# ------------------------------------------------------------ negotiation
@pytest.mark.parametrize("theirs, used", [("1.25", "1.25"), ("1.50", "1.44"), ("1.9", "1.9"), ("1.100", "1.44")])
def test_version_negotiation(tmp_path, theirs, used):
    path = str(tmp_path / "api.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen()
    seen = []

    def serve():
        for _ in range(2):
            conn, _ = srv.accept()
            req = b""
            while b"\r\n\r\n" not in req:
                req += conn.recv(4096)
            seen.append(req.split(b" ")[1].decode())
            body = b"OK" if seen[-1] == "/_ping" else b"[]"
            conn.sendall(b"HTTP/1.1 200 OK\r\nApi-Version: " + theirs.encode() +
                         b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert Client("unix://" + path).get("/containers/json") == []
    t.join(5)
    srv.close()
    assert seen == ["/_ping", f"/v{used}/containers/json"]
