"""Output safety: text from a capture cannot act on whoever reads the output.

A crafted capture puts terminal controls (ESC sequences that clear the screen or set the
window title, BEL, CR/LF inside a value, C1 CSI, a bidi override), spreadsheet formulas and
Markdown (a backtick closing a code span, links, autolinks, images, raw HTML) into paths,
hosts, header values and the service names derived from them (and given with --name). Every
text format must show them escaped or inert; JSON must stay valid JSON. That holds for
``check`` (its table is escaped as diff's, its JSON and the file ``--write-expect`` writes
are valid JSON with C1 and bidi escaped) and for the bytes of the ``--format html`` page: its
own markup only, capture text escaped in the server-drawn SVG, the embedded JSON without a
character HTML gives a meaning to. (The page's behaviour in a browser is tests/test_html_browser.)
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hpack import Encoder
from markdown_it import MarkdownIt
from markdown_it.token import Token

from analyzer.report.redact import csv_cell, escape, json_safe, md_code
from tests.fixtures import ROOT
from tests.h2_adversarial import frame, settings
from tests.packets import ACK, FIN, Conn, pcap, sll2
from tests.test_cli import run

XRID = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
B3 = {"x-request-id": XRID, "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
      "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"}
T0 = 1_700_000_000_000_000_000

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's window title
CLEAR = "\x1b[2J"
CSI = "\u009b"  # the C1 form of ESC [
RLO = "\u202e"  # right-to-left override
BOM = "\ufeff"  # zero-width no-break space: invisible, and it splits what looks like one word
MD = ("`[click](http://evil.example/a)` <img src=x onerror=alert(1)> ![i](http://evil.example/i.png) "
      "http://evil.example/bare <b>bold</b>")
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"
# Raw control characters that must never reach a text output (LF is checked apart).
RAW = ("\x1b", "\x07", "\r", CSI, RLO, BOM, "\x00", "\x7f")


def _head(line: str, fields: list[tuple[str, str]]) -> bytes:
    return (line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def hostile_capture(dest: Path) -> Path:
    """A sidecar pod serves a request whose path, Host and fields carry the payloads, and calls
    a hostile-named service through the NAT without the B3 headers (a finding, so the payloads
    reach finding lines, hops and traces); then an h2c call whose :path holds CR LF."""
    inbound = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    nat_req = Conn("10.244.1.10", 42000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    nat_rep = Conn("10.244.1.10", 42000, "10.96.0.99", 9080, cisn=7000, sisn=9000)
    path = "/p" + MD.replace(" ", "") + CSI + RLO + "?q=1"
    first = _head(f"GET {path} HTTP/1.1", [
        ("Host", f"{BOM}front{CLEAR}{TITLE}end:9080"), *B3.items(),
        ("X-Note", f"{CLEAR}{TITLE}{CSI}{RLO}\x7f done"),
        ("X-Formula", FORMULA),
    ])
    out = _head(f"GET /call{MD.replace(' ', '')}{CSI} HTTP/1.1", [
        ("Host", f"{FORMULA}{TITLE}{RLO}:80"), ("x-request-id", XRID)])
    packets = [*inbound.handshake(), inbound.send(first), nat_req.send(out)]
    nat_rep.cseq = nat_req.cseq
    packets.append(nat_rep.send(OK, from_client=False))
    packets.append(inbound.send(OK, from_client=False))
    # A request whose x-request-id is a formula, for the csv x_request_id column.
    packets.append(inbound.send(_head("GET /f HTTP/1.1", [("Host", "a"), ("X-Request-Id", "-2+3")])))
    packets.append(inbound.send(OK, from_client=False))
    packets.append(inbound.send(b"", flags=FIN | ACK))
    # h2c: CR LF and ESC inside :path and a value (HTTP/1 cannot carry them in one line).
    c = Conn("127.0.0.6", 40200, "10.244.1.10", 9080)
    block = Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"),
                              (b":authority", f"h2{TITLE}:9080".encode()),
                              (b":path", f"/h2\r\nInjected: yes{CLEAR}".encode()),
                              (b"x-note", f"a\r\nb{TITLE}".encode())])
    client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings() + frame(1, 0x5, 1, block)
    server = settings() + settings(ack=True) + frame(1, 0x5, 1, b"\x88")
    packets += [*c.handshake(), c.send(client), c.send(server, from_client=False)]
    dest.write_bytes(pcap([(T0 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    return dest


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(hostile_capture(tmp_path_factory.mktemp("safety") / "frontend.pcap"))


def _ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code in (0, 1), (args, err)
    assert out, args
    for ch in RAW:
        assert ch not in err, (args, repr(ch))
    return out


def _no_raw_controls(out: str, what: object) -> None:
    for ch in RAW:
        assert ch not in out, (what, repr(ch), out[max(0, out.find(ch) - 80): out.find(ch) + 20])
    # an LF inside a value never starts a line of its own
    assert not any(line.startswith("Injected") for line in out.splitlines()), what


def test_payloads_are_decoded_at_all(hostile: str) -> None:
    """The payloads reach the records (else the tests below prove nothing)."""
    msgs = [json.loads(x) for x in _ok("messages", "--format", "jsonl", hostile).splitlines()]
    paths = [m["path"] for m in msgs if m["kind"] == "request"]
    assert any("evil.example" in p and CSI in p and RLO in p for p in paths if p)  # decoded by json
    assert any(p and "\r\n" in p for p in paths)
    hosts = {m["authority"] for m in msgs if m["authority"]}
    assert any("\x1b" in h for h in hosts) and any(h.startswith("=HYPERLINK") for h in hosts)
    d = json.loads(_ok("analyze", "--all", "--format", "json", hostile))
    assert d["findings"] and d["traces"]


TEXT_COMMANDS = [
    ("messages", "--format", "table"),
    ("messages", "--format", "csv"),
    ("analyze", "--all", "--format", "table"),
    ("analyze", "--all", "--format", "markdown"),
    ("info",),
]


@pytest.mark.parametrize("cmd", TEXT_COMMANDS, ids=lambda c: "-".join(c))
def test_control_bytes_escaped_in_every_text_output(hostile: str, cmd: tuple[str, ...]) -> None:
    out = _ok(*cmd, hostile)
    _no_raw_controls(out, cmd)
    if cmd[0] != "info":  # info shows no header, path or host; its anomalies are checked all the same
        assert "\\x0d\\x0a" in out or "\\x1b" in out, cmd  # shown, escaped


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_control_bytes_escaped_in_diff(hostile: str, fmt: str) -> None:
    out = _ok("diff", "--all", "--format", fmt, hostile, hostile)
    _no_raw_controls(out, fmt)
    assert "\\x1b" in out or "\\u009b" in out or "\\x9b" in out


@pytest.mark.parametrize(
    "cmd",
    [("messages", "--format", "jsonl"), ("analyze", "--all", "--format", "json"),
     ("info", "--format", "json"), ("export", "--to", "jaeger"), ("export", "--to", "zipkin"),
     ("export", "--to", "otlp")],
    ids=lambda c: "-".join(c),
)
def test_json_outputs_stay_valid_and_escape_c1_and_bidi(hostile: str, cmd: tuple[str, ...]) -> None:
    out = _ok(*cmd, hostile)
    docs = [json.loads(x) for x in out.splitlines()] if cmd[-1] == "jsonl" else [json.loads(out)]
    assert docs
    _no_raw_controls(out, cmd)


def test_diff_json_is_valid(hostile: str) -> None:
    out = _ok("diff", "--all", "--format", "json", hostile, hostile)
    json.loads(out)
    _no_raw_controls(out, "diff json")


def test_csv_cells_cannot_be_formulas(hostile: str) -> None:
    rows = list(csv.reader(io.StringIO(_ok("messages", "--format", "csv", hostile))))
    header, body = rows[0], rows[1:]
    assert body
    for row in body:
        for name, cell in zip(header, row, strict=True):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
    cells = {c for row in body for c in row}
    assert any(c.startswith("'=HYPERLINK") for c in cells)  # the authority, defused
    assert "'-2+3" in cells  # the x-request-id column


def _tokens(tokens: list[Token]) -> Iterator[Token]:
    for t in tokens:
        yield t
        if t.children:
            yield from _tokens(t.children)


# The only HTML a report writes itself (diff folds the unchanged hops).
OUR_HTML = re.compile(r"(?:<details><summary>\d+ unchanged hops?</summary>|</details>)")


@pytest.mark.parametrize(
    "cmd",
    [("analyze", "--all", "--format", "markdown"), ("diff", "--all", "--format", "markdown"),
     ("diff", "--format", "markdown")],
    ids=lambda c: "-".join(c),
)
def test_markdown_is_inert(hostile: str, cmd: tuple[str, ...]) -> None:
    args = (*cmd, hostile, hostile) if cmd[0] == "diff" else (*cmd, hostile)
    out = _ok(*args)
    # GitHub renders GFM with tables and bare-URL autolinks: the strictest reader to test with.
    md = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "linkify"])
    tokens = list(_tokens(md.parse(out)))
    kinds = {t.type for t in tokens}
    assert "link_open" not in kinds and "image" not in kinds, out
    for t in tokens:
        if t.type in ("html_inline", "html_block"):
            assert OUR_HTML.fullmatch(t.content.strip()), t.content
        if t.type in ("text",):
            assert "evil.example" not in t.content, t.content  # only ever inside code
    assert any(t.type == "code_inline" and "evil.example" in t.content for t in tokens) or \
        any(t.type == "fence" and "evil.example" in t.content for t in tokens) or cmd[0] == "diff"


# -- check: the table, its JSON, the file it writes ----------------------------------------------


def _no_hops(dest: Path, captures: list[str]) -> str:
    """An expectation that lists no hop: every hop the captures show is "new", with its
    source, target, path and details in the output."""
    dest.write_text(json.dumps({"schema_version": 1, "captures": [Path(c).name for c in captures],
                                "hops": []}))
    return str(dest)


def test_check_table_is_escaped_like_diff(hostile: str, tmp_path: Path) -> None:
    out = _ok("check", "--expect", _no_hops(tmp_path / "e.tracewire.json", [hostile]), hostile)
    _no_raw_controls(out, "check table")
    assert "\\x1b]0;pwned\\x07" in out and "\\ufeff" in out and "\\u202e" in out  # shown, escaped
    assert '=HYPERLINK("http://evil.example","x")' in out  # the hop's target, not lost
    assert "differs from the expectation" in out


def test_check_json_and_the_written_file_are_valid_and_escaped(hostile: str, tmp_path: Path) -> None:
    expect = _no_hops(tmp_path / "e.tracewire.json", [hostile])
    out = _ok("check", "--format", "json", "--expect", expect, hostile)
    _no_raw_controls(out, "check json")
    hops = json.loads(out)["differences"]
    assert any(TITLE in d["target"] and RLO in d["target"] for d in hops)  # decoded as it was sent
    assert any(BOM in d["source"] for d in hops)
    written = tmp_path / "w.tracewire.json"
    assert "wrote " in _ok("check", "--write-expect", "--expect", str(written), hostile)
    text = written.read_text(encoding="utf-8")
    _no_raw_controls(text, "written file")
    doc = json.loads(text)
    assert any(TITLE in h["target"] and CSI in h["path"] for h in doc["hops"]), doc
    assert run("check", "--expect", str(written), hostile)[0] == 0  # it reads back as it was


def test_a_capture_name_with_controls_is_escaped_in_checks_lines(hostile: str, tmp_path: Path) -> None:
    """The capture and expectation file names are shown too ("check:", "wrote ...")."""
    named = tmp_path / f"pod{TITLE}{RLO}.pcap"
    named.write_bytes(Path(hostile).read_bytes())
    expect = tmp_path / f"x{CLEAR}.tracewire.json"
    written = _ok("check", "--write-expect", "--expect", str(expect), str(named))
    _no_raw_controls(written, "wrote")
    table = _ok("check", "--expect", _no_hops(tmp_path / "e.tracewire.json", [str(named)]), str(named))
    _no_raw_controls(table, "check table")
    assert "pod\\x1b]0;pwned\\x07\\u202e.pcap" in table


# A name a person may give with --name: printable, yet markup, quotes and a formula start.
POD_NAME = '@SUM(1+1)<img src onerror>"q"`[l](http://evil.example/n)`'  # no "=": it ends the name


@pytest.mark.parametrize(
    "cmd",
    [("analyze", "--all", "--format", "table"), ("analyze", "--all", "--format", "markdown"),
     ("analyze", "--all", "--format", "csv"), ("analyze", "--all", "--format", "html"),
     ("check", "--format", "table"), ("check", "--format", "json")],
    ids=lambda c: "-".join(c),
)
def test_service_names_given_with_name_stay_text(hostile: str, tmp_path: Path, cmd: tuple[str, ...]) -> None:
    extra = ["--expect", _no_hops(tmp_path / "e.tracewire.json", [hostile])] if cmd[0] == "check" else []
    out = _ok(*cmd, *extra, "--name", f"{POD_NAME}={hostile}", hostile)
    _no_raw_controls(out, cmd)
    if cmd[-1] == "html":
        parts = page_parts(out)
        assert "img" not in parts.tags
        assert any(POD_NAME in t for t in parts.text)  # the name is shown, as text
    elif cmd[-1] == "csv":
        cells = {c for row in csv.reader(io.StringIO(out)) for c in row}
        assert not any(c.startswith("@") for c in cells) and any(c.startswith("'@SUM") for c in cells)
    elif cmd[-1] == "json":
        assert any(d["source"] == POD_NAME for d in json.loads(out)["differences"])
    else:
        assert "@SUM(1+1)" in out


@pytest.mark.parametrize("name", [f"a{TITLE}b", f"a{RLO}b", f"{BOM}a", "a\nb"])
def test_a_name_that_is_not_printable_is_refused_in_one_escaped_line(hostile: str, name: str) -> None:
    for cmd in (("analyze",), ("check", "--write-expect", "--expect", "/nonexistent/x.json")):
        code, out, err = run(*cmd, "--name", f"{name}={hostile}", hostile)
        assert code == 2 and not out and len(err.splitlines()) == 2, err  # click's usage line + one
        _no_raw_controls(err, cmd)


# -- the html page: its bytes --------------------------------------------------------------------


@dataclass
class Page:
    """An html page as a browser's parser splits it: start tags, attribute values and the text
    outside script and style elements (character references resolved), the embedded JSON as
    written and decoded."""

    tags: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # tag, name, value
    text: list[str] = field(default_factory=list)
    raw_data: str = ""
    data: Any = None
    scripts: int = 0


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._in: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.page.tags.append(tag)
        self.page.attributes += [(tag, k, v or "") for k, v in attrs]
        if tag in ("script", "style"):
            self._in = (tag, dict(attrs))
            self.page.scripts += tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if self._in is not None and tag == self._in[0]:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is None:
            self.page.text.append(data)
        elif self._in[1].get("type") == "application/json":
            self.page.raw_data += data


def page_parts(text: str) -> Page:
    parser = _PageParser()
    parser.feed(text)
    parser.close()
    page = parser.page
    assert page.raw_data, "no embedded data"
    page.data = json.loads(page.raw_data)
    return page


# Every element the page's own markup is made of, read off the module that writes it: a tag
# the capture smuggled in is none of these.
OUR_TAGS = frozenset(re.findall(r"<([a-z][a-z0-9]*)\b", (ROOT / "analyzer/report/html.py").read_text()))
OUR_SCRIPTS = 2  # the data, and the page's own script


@pytest.fixture(scope="module")
def hostile_page(hostile: str) -> str:
    return _ok("analyze", "--all", "--format", "html", hostile)


def test_html_page_has_only_its_own_markup(hostile_page: str) -> None:
    page = page_parts(hostile_page)
    assert {"svg", "text", "g", "title", "script"} <= OUR_TAGS
    assert set(page.tags) <= OUR_TAGS, set(page.tags) - OUR_TAGS
    assert page.scripts == OUR_SCRIPTS
    assert hostile_page.lower().count("</script") == OUR_SCRIPTS
    for tag, name, value in page.attributes:
        assert not name.startswith("on"), (tag, name, value)
        assert "evil.example" not in value or name in ("data-source", "data-target", "data-service"), \
            (tag, name, value)
        if name in ("href", "src", "xlink:href", "action"):
            assert value.startswith("#"), (tag, name, value)  # the page links to itself only


def test_html_static_text_escapes_capture_text(hostile_page: str) -> None:
    """The server-drawn graph and the header carry hop and service names: no raw < or " from
    the capture inside a tag, no raw control byte or bidi mark anywhere outside the data."""
    static = re.sub(r"(?s)<script\b[^>]*>.*?</script>", "<script></script>", hostile_page)
    _no_raw_controls(static, "html static")
    assert '"http://evil.example"' not in static and "<img" not in static and "<b>" not in static
    assert "=HYPERLINK(&quot;http://evil.example&quot;,&quot;x&quot;)" in static  # shown, escaped
    page = page_parts(hostile_page)
    shown = "\n".join(page.text) + "\n".join(v for _, _, v in page.attributes)
    assert "front\\x1b[2J\\x1b]0;pwned\\x07end" in shown and "\\u202e" in shown  # as the tables show them
    assert '=HYPERLINK("http://evil.example","x")' in shown  # text once parsed, not markup


def test_html_embedded_json_cannot_leave_its_element(hostile_page: str) -> None:
    page = page_parts(hostile_page)
    raw = page.raw_data
    for ch in ("<", ">", "&", "'", "\u2028", "\u2029", *RAW):
        assert ch not in raw, repr(ch)
    assert "</script" not in raw.lower() and "<!--" not in raw
    decoded = json.dumps(page.data, ensure_ascii=False)
    # the payloads are in the data, decoded as sent: the escaping is what kept them inert
    assert "<imgsrc=xonerror=alert(1)>" in decoded and "\\u001b]0;pwned" in decoded
    assert CSI in decoded and RLO in decoded and BOM in decoded
    assert "\\u003c" in raw and "\\u003e" in raw  # written as escapes


def test_html_embedded_json_escapes_line_separators_and_quotes(tmp_path: Path) -> None:
    """U+2028/9, ' and </script> in a path: each written as a \\u escape in the data."""
    c = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    nat_req = Conn("10.244.1.10", 42000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    nat_rep = Conn("10.244.1.10", 42000, "10.96.0.99", 9080, cisn=7000, sisn=9000)
    odd = "/x\u2028y\u2029z'</script><!--&amp;"
    first = _head("GET /in HTTP/1.1", [("Host", "front:9080"), *B3.items()])
    call = _head(f"GET {odd} HTTP/1.1", [("Host", "back:80"), ("x-request-id", XRID)])
    packets = [*c.handshake(), c.send(first), nat_req.send(call)]
    nat_rep.cseq = nat_req.cseq
    packets += [nat_rep.send(OK, from_client=False), c.send(OK, from_client=False)]
    dest = tmp_path / "front.pcap"
    dest.write_bytes(pcap([(T0 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    out = _ok("analyze", "--all", "--format", "html", str(dest))
    page = page_parts(out)
    assert page.scripts == OUR_SCRIPTS and out.lower().count("</script") == OUR_SCRIPTS
    for ch in ("\u2028", "\u2029", "'", "<", ">", "&"):
        assert ch not in page.raw_data, repr(ch)
    assert "\\u2028" in page.raw_data and "\\u2029" in page.raw_data
    assert "</script><!--&amp;" in json.dumps(page.data), "the path is in the data"


# -- the functions, unit by unit -------------------------------------------------------------


def test_escape() -> None:
    assert escape("a\x1b[2Jb\x07\r\n\t\x7f") == "a\\x1b[2Jb\\x07\\x0d\\x0a\\x09\\x7f"
    assert escape(f"x{CSI}y{RLO}z\u2066") == "x\\x9by\\u202ez\\u2066"
    assert escape("plain é ü 日本") == "plain é ü 日本"


def test_json_safe() -> None:
    encoded = json.dumps({"k": f"a{CSI}{RLO}\x1b"}, ensure_ascii=False)
    safe = json_safe(encoded)
    assert CSI not in safe and RLO not in safe
    assert json.loads(safe) == {"k": f"a{CSI}{RLO}\x1b"}
    # ASCII text is passed through untouched, but for DEL (the one ASCII character escaped)
    assert json_safe('{"k": "plain"}') == '{"k": "plain"}'
    assert json_safe('{"k": "a\x7fb"}') == '{"k": "a\\u007fb"}'


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cell_prefixes_formulas(cell: str) -> None:
    out = csv_cell(cell)
    assert isinstance(out, str)
    # = + - @ get the quote; TAB and CR are shown escaped, which starts the cell with "\"
    assert out.startswith("'") if cell[0] in "=+-@" else out.startswith("\\x0")


def test_csv_cell_keeps_numbers_and_plain_text() -> None:
    assert csv_cell(5) == 5
    assert csv_cell("GET /a") == "GET /a"
    assert csv_cell("a: 1\nb: 2") == "a: 1\nb: 2"  # the headers cell's own line breaks
    assert csv_cell("a\x1bb") == "a\\x1bb"


@pytest.mark.parametrize("text", ["a`b", "``x``", "`", "x`", " lead", "[l](http://e.x)", "<b>x</b>", "a|b"])
def test_md_code_cannot_be_left(text: str) -> None:
    md = MarkdownIt("commonmark").enable("table")
    inline = [t for t in _tokens(md.parse(md_code(text))) if t.type == "code_inline"]
    assert len(inline) == 1 and inline[0].content.strip() == text.strip()
    row = md.parse(f"| h |\n|---|\n| {md_code(text, table=True)} |\n")
    cells = [t for t in _tokens(row) if t.type == "code_inline"]
    assert len(cells) == 1 and cells[0].content.strip() == text.strip()  # one cell, whole
