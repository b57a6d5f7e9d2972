"""Output safety: text from a capture cannot act on whoever reads the output.

A crafted capture puts terminal controls (ESC sequences that clear the screen or set the
window title, BEL, CR/LF inside a value, C1 CSI, a bidi override), spreadsheet formulas and
Markdown (a backtick closing a code span, links, autolinks, images, raw HTML) into paths,
hosts, header values and the service names derived from them. Every text format must show
them escaped or inert; JSON must stay valid JSON.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hpack import Encoder
from markdown_it import MarkdownIt
from markdown_it.token import Token

from analyzer.report.redact import csv_cell, escape, json_safe, md_code
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
MD = ("`[click](http://evil.example/a)` <img src=x onerror=alert(1)> ![i](http://evil.example/i.png) "
      "http://evil.example/bare <b>bold</b>")
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"
# Raw control characters that must never reach a text output (LF is checked apart).
RAW = ("\x1b", "\x07", "\r", CSI, RLO, "\x00", "\x7f")


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
        ("Host", f"front{CLEAR}{TITLE}end:9080"), *B3.items(),
        ("X-Note", f"{CLEAR}{TITLE}{CSI}{RLO}\x7f done"),
        ("X-Formula", FORMULA),
    ])
    out = _head(f"GET /call{MD.replace(' ', '')}{CSI} HTTP/1.1", [
        ("Host", f"{FORMULA}{TITLE}:80"), ("x-request-id", XRID)])
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
