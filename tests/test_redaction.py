"""Redaction: no credential from a capture reaches any output of any command.

Crafted captures carry a marker ("LEAK" and a number) in every place a credential can
sit: HTTP/1 fields with mixed-case and look-alike names, malformed field and request
lines, query strings and userinfo, baggage and uberctx-*, HTTP/2 literals that are
indexed, never-indexed, Huffman-coded, split over CONTINUATION, and literals whose name
is an HPACK entry older than the capture (one of them a UUID-shaped API key that looks
like an x-request-id), and an absolute request target and a Host with userinfo. Every
command and format runs on them, ``analyze --format html`` (the page's text, attributes and
embedded JSON), ``check`` (its table, its JSON and the file ``--write-expect`` writes) and
``--jobs 2`` (the same bytes as ``--jobs 1``) included, and no marker may appear; with
--show-secrets the markers do appear, which shows they were decoded at all.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hpack import Encoder, NeverIndexedHeaderTuple

from analyzer.protocols._http1_syntax import describe, describe_field
from analyzer.records import Endpoints, Header, Message
from analyzer.report.messages import message_dict
from analyzer.report.redact import Policy, is_secret, redact_url
from analyzer.tracing import extract
from analyzer.tracing.corroborate import Corroboration
from tests.h2_adversarial import _literal, frame, settings
from tests.packets import ACK, FIN, PSH, Conn, pcap, sll2
from tests.test_cli import run
from tests.test_output_safety import page_parts

MARK = "LEAK"
# An API key shaped like an x-request-id, under a name the capture cannot show.
API_UUID = "deadbeef-0000-4000-8000-00000000c0de"
XRID = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
TRACE, SPAN = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
B3 = {"x-request-id": XRID, "x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "1"}
T0 = 1_700_000_000_000_000_000


def _write(path: Path, packets: list[bytes]) -> Path:
    path.write_bytes(pcap([(T0 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    return path


def _head(line: str, fields: list[tuple[str, str]]) -> bytes:
    return (line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def http1_capture(path: Path) -> Path:
    """A sidecar pod (10.244.1.10:9080) serves one request full of credentials and makes one
    call through Istio's NAT that carries some on and drops B3 (a finding, so credentials
    would reach the finding texts too); then a malformed field line and request line."""
    inbound = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    nat_req = Conn("10.244.1.10", 42000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    nat_rep = Conn("10.244.1.10", 42000, "10.96.0.99", 9080, cisn=7000, sisn=9000)
    creds = [
        ("AuThOrIzAtIoN", f"Bearer {MARK}04"),
        ("X-Forwarded-Authorization", f"Bearer {MARK}05"),
        ("Ocp-Apim-Subscription-Key", f"{MARK}06"),
        ("X-Amz-Security-Token", f"{MARK}07"),
        ("cookie", f"sid={MARK}08"),
        ("Baggage", f"userid={MARK}09,bad member {MARK}19"),
        ("uberctx-User", f"{MARK}10"),
        ("X-Session-Id", f"{MARK}11"),
        ("Referer", f"https://u:{MARK}12@example.com/x?code={MARK}13&lang=en"),
        ("X-My-Service-Token", f"{MARK}18"),
    ]
    first = _head(
        f"GET /page?access_token={MARK}01&view=1&X-Amz-Signature={MARK}02&X-Amz-Credential={MARK}03 HTTP/1.1",
        [("Host", "productpage:9080"), *B3.items(), *creds],
    )
    out = _head(
        f"GET /ratings/0?api_key={MARK}14&n=1 HTTP/1.1",
        [("Host", "ratings:9080"), ("x-request-id", XRID), ("authorization", f"Bearer {MARK}15"),
         ("baggage", f"userid={MARK}16")],
    )
    packets = [*inbound.handshake(), inbound.send(first)]
    packets.append(nat_req.send(out))
    nat_rep.cseq = nat_req.cseq
    packets.append(nat_rep.send(OK, from_client=False))
    packets.append(inbound.send(OK, from_client=False))
    # A field line with a space before its colon: the credential must not be echoed.
    bad_field = f"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization : Bearer {MARK}26\r\n\r\n"
    packets.append(inbound.send(bad_field.encode()))
    packets.append(inbound.send(OK, from_client=False))
    # A request line with a control byte after a credential in its query.
    packets.append(inbound.send(f"GET /y?token={MARK}17\x01 HTTP/1.1\r\nHost: a\r\n\r\n".encode()))
    packets.append(inbound.send(b"", flags=FIN | ACK))
    return _write(path, packets)


def h2_capture(path: Path) -> Path:
    """h2c with prior knowledge, its preface captured: HPACK literals (Huffman-coded by the
    encoder), a never-indexed literal, a header block split over a CONTINUATION, and the
    same credentials again as dynamic-table references on a second stream."""
    c = Conn("127.0.0.6", 40200, "10.244.1.10", 9080)
    enc = Encoder()
    base = [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"reviews:9080")]
    creds = [
        (b"authorization", f"Bearer {MARK}21".encode()),
        NeverIndexedHeaderTuple(b"x-api-key", f"{MARK}22".encode()),
        (b"cookie", f"a={MARK}23".encode()),
        (b"x-forwarded-authorization", f"{MARK}24".encode()),
        (b"baggage", f"k={MARK}25".encode()),
    ]
    b1 = enc.encode([*base, (b":path", f"/h2?sig={MARK}20".encode()), *creds,
                     *((k.encode(), v.encode()) for k, v in B3.items())])
    b2 = enc.encode([*base, (b":path", b"/again"), *creds])  # indexed now
    half = len(b1) // 2
    client = (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + settings()
              + frame(1, 0x1, 1, b1[:half]) + frame(9, 0x4, 1, b1[half:])
              + frame(1, 0x5, 3, b2))
    server = settings() + settings(ack=True) + frame(1, 0x5, 1, b"\x88") + frame(1, 0x5, 3, b"\x88")
    packets = [*c.handshake(), c.send(client), c.send(server, from_client=False),
               c.send(settings(ack=True))]
    return _write(path, packets)


def h2_mid_capture(path: Path) -> Path:
    """An h2c connection captured mid-way (no SYN, no preface): literals whose names are
    HPACK entries older than the capture, one a bearer token, one a UUID-shaped API key
    that a shape-based guess would call an x-request-id."""
    c = Conn("127.0.0.6", 40100, "10.244.1.10", 9080)
    c.cseq += 1
    c.sseq += 1
    static = b"\x82\x86\x04" + _literal(b"/mid") + b"\x01" + _literal(b"reviews:9080")
    b1 = static + b"\x7e" + _literal(f"Bearer {MARK}30".encode()) + b"\x0f\x2f" + _literal(API_UUID.encode())
    b2 = static + b"\x0f\x30" + _literal(API_UUID.encode())  # stream 5: the key alone
    ping = frame(6, 0, 0, b"\0" * 8)
    client = ping + frame(1, 0x4, 3, b1) + frame(0, 0x1, 3) + frame(1, 0x4, 5, b2) + frame(0, 0x1, 5)
    server = frame(6, 1, 0, b"\0" * 8) + frame(1, 0x4, 3, b"\x88") + frame(0, 0x1, 3, b"ok") \
        + frame(1, 0x4, 5, b"\x88") + frame(0, 0x1, 5, b"ok")
    return _write(path, [c.send(client, flags=PSH | ACK), c.send(server, from_client=False)])


def absolute_capture(path: Path) -> Path:
    """Another pod (10.244.1.11) calls ratings through the NAT with an absolute request target
    whose userinfo and query hold credentials and a Host with userinfo, and without B3: a
    broken hop, whose key (target and path) ``check --write-expect`` writes to its file."""
    inbound = Conn("127.0.0.6", 40300, "10.244.1.11", 9080)
    nat_req = Conn("10.244.1.11", 43000, "127.0.0.1", 15001, cisn=17000, sisn=19000)
    nat_rep = Conn("10.244.1.11", 43000, "10.96.0.98", 9080, cisn=17000, sisn=19000)
    first = _head("GET /details/1 HTTP/1.1", [("Host", "details:9080"), *B3.items()])
    out = _head(f"GET http://u:{MARK}40@ratings:9080/ratings/7?token={MARK}41&n=1 HTTP/1.1",
                [("Host", f"u:{MARK}42@ratings:9080"), ("x-request-id", XRID)])
    packets = [*inbound.handshake(), inbound.send(first), nat_req.send(out)]
    nat_rep.cseq = nat_req.cseq
    packets.append(nat_rep.send(OK, from_client=False))
    packets += [inbound.send(OK, from_client=False), inbound.send(b"", flags=FIN | ACK)]
    return _write(path, packets)


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The last one has a Host and an absolute request target with userinfo: a hop's target
    and an exported span's name must not carry it either."""
    d = tmp_path_factory.mktemp("redaction")
    return [str(http1_capture(d / "productpage.pcap")), str(h2_capture(d / "reviews.pcap")),
            str(h2_mid_capture(d / "mid.pcap")), str(absolute_capture(d / "details.pcap"))]


ANALYZE_FORMATS = ("table", "json", "markdown", "jsonl", "csv", "html")
EXPORTS = ("jaeger", "zipkin", "otlp")


def _commands(paths: list[str]) -> list[list[str]]:
    cmds: list[list[str]] = []
    for p in paths:
        cmds.append(["info", p])
        cmds.append(["info", "--format", "json", p])
        for fmt in ("table", "jsonl", "csv"):
            cmds.append(["messages", "--format", fmt, p])
        for fmt in ANALYZE_FORMATS:
            cmds.append(["analyze", "--all", "--format", fmt, p])
        for to in EXPORTS:
            cmds.append(["export", "--to", to, p])
        for fmt in ("table", "json", "markdown"):
            cmds.append(["diff", "--all", "--format", fmt, p, p])
    for fmt in ANALYZE_FORMATS:
        cmds.append(["analyze", "--all", "--format", fmt, *paths])
    for to in EXPORTS:
        cmds.append(["export", "--to", to, *paths])
    return cmds


def _no_marker(text: str, what: object) -> None:
    assert MARK not in text, (what, text[text.find(MARK) - 200: text.find(MARK) + 50])
    assert "deadbeef" not in text, what


def test_markers_are_decoded_at_all(captures: list[str]) -> None:
    """Without this the test below could pass on captures nothing reads."""
    shown = "".join(run("messages", "--format", "jsonl", "--show-secrets", p)[1]
                    for p in captures)
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 18, 20, 21, 22, 23, 24, 25, 30, 40, 41, 42):
        assert f"{MARK}{n:02d}" in shown, n
    assert API_UUID in shown
    # the page embeds paths and ids: shown with --show-secrets, so their redaction is tested
    page = run("analyze", "--all", "--format", "html", "--show-secrets", *captures)[1]
    assert all(f"{MARK}{n:02d}" in page for n in (1, 2, 14, 20, 41))
    # the malformed lines are anomalies, and their text never held the value
    info = run("info", "--format", "json", captures[0])[1]
    assert "not a field line: name b'Authorization ' is not a token, value of 14 bytes not shown" in info


def test_anomaly_texts_describe_lines_without_their_content() -> None:
    line = f"GET /y?token={MARK}17\x01 HTTP/1.1".encode()
    assert describe(line, 0, line.index(b"\x01") + 1) == \
        "20 bytes starting 'GET', unexpected b'\\x01' at byte 20"
    assert describe_field(f"Bearer {MARK}".encode()) == "11 bytes without a colon"
    assert describe_field(f": {MARK}".encode()) == "no name before the colon, value of 5 bytes not shown"


def test_no_credential_in_any_command_or_format(captures: list[str]) -> None:
    for cmd in _commands(captures):
        code, out, err = run(*cmd)
        assert code in (0, 1), (cmd, err)
        assert out or "jsonl" in cmd, cmd  # analyze's jsonl: a line per finding and trace, if any
        for text in (out, err):
            _no_marker(text, cmd)


def test_no_credential_in_the_html_page_text_attributes_or_data(captures: list[str]) -> None:
    """The page's bytes hold no marker (above); here each part as a reader gets it: the text
    and attribute values with their character references resolved, and the embedded JSON
    decoded (a \\u escape could hide what a byte search would find)."""
    for paths in ([p] for p in captures):
        for extra in ([], ["--redact", "x-custom"]):
            code, out, err = run("analyze", "--all", "--format", "html", *extra, *paths)
            assert code == 0, err
            parts = page_parts(out)
            assert parts.text and parts.attributes and parts.data
            _no_marker("\n".join(parts.text), (paths, "text"))
            _no_marker("\n".join(v for _, _, v in parts.attributes), (paths, "attributes"))
            _no_marker(json.dumps(parts.data, ensure_ascii=False), (paths, "data"))


def test_no_credential_in_check_or_its_expectation_file(captures: list[str], tmp_path: Path) -> None:
    """``check --write-expect`` writes each hop's key (source, target, path) to a file that is
    committed and shared: a credential in a path or Host is redacted in the key itself, even
    with --show-secrets (the file is the same). ``check`` against a file that lists no hop
    shows every hop as new, with its path and details, in the table and in JSON."""
    written = tmp_path / "scenario.tracewire.json"
    texts = []
    for extra in ([], ["--show-secrets"]):
        code, out, err = run("check", "--write-expect", "--expect", str(written), *extra, *captures)
        assert code == 0, err
        _no_marker(out + err, extra)
        texts.append(written.read_text(encoding="utf-8"))
        _no_marker(texts[-1], ("written", extra))
    assert texts[0] == texts[1]
    hops = json.loads(texts[0])["hops"]
    ratings = [h for h in hops if h["target"].endswith("ratings:9080")]
    assert {h["source"] for h in ratings} == {"productpage", "details"}, hops  # both calls are in it
    assert all(h["verdict"] == "broken" for h in ratings)
    assert run("check", "--expect", str(written), *captures)[0] == 0
    empty = tmp_path / "empty.tracewire.json"
    empty.write_text(json.dumps({"schema_version": 1, "captures": [Path(p).name for p in captures],
                                 "hops": []}))
    for fmt in ("table", "json"):
        for extra in ([], ["--show-secrets"], ["--redact", "x-b3-traceid"]):
            code, out, err = run("check", "--expect", str(empty), "--format", fmt, *extra, *captures)
            assert code == 1, err
            assert "ratings" in out and "/ratings/" in out, out
            _no_marker(out + err, (fmt, extra))
        code, out, err = run("check", "--expect", str(empty), "--format", fmt, *captures[:1])
        assert code == 1 and "ratings" in out, err
        _no_marker(out + err, (fmt, "one capture"))


@pytest.mark.parametrize(
    "cmd",
    [*(("analyze", "--all", "--format", fmt) for fmt in ANALYZE_FORMATS),
     *(("export", "--to", to) for to in EXPORTS)],
    ids=lambda c: "-".join(c[1:]),
)
def test_jobs_give_the_same_bytes_and_no_credential(captures: list[str], cmd: tuple[str, ...]) -> None:
    """Captures read in worker processes come back as the same records, redacted by the same
    policy here: not a byte differs, so no credential either."""
    code1, one, err1 = run(*cmd, "--jobs", "1", *captures)
    code2, two, err2 = run(*cmd, "--jobs", "2", *captures)
    assert (code1, err1) == (code2, err2) and code1 in (0, 1), err2
    assert one and one == two
    _no_marker(two + err2, cmd)


def test_redacted_values_keep_their_length_and_names(captures: list[str]) -> None:
    lines = [json.loads(x) for x in run("messages", "--format", "jsonl", captures[0])[1].splitlines()]
    first = lines[0]
    assert first["path"] == ("/page?access_token=<redacted, 6 bytes>&view=1"
                             "&X-Amz-Signature=<redacted, 6 bytes>&X-Amz-Credential=<redacted, 6 bytes>")
    values = {h["name"]: h["value"] for h in first["headers"]}
    assert values["AuThOrIzAtIoN"] == "<redacted, 13 bytes>"
    assert values["Referer"] == "https://u:<redacted, 6 bytes>@example.com/x?code=<redacted, 6 bytes>&lang=en"
    # the tracing headers stay visible: they are what the tool is for
    assert values["x-request-id"] == XRID and values["x-b3-traceid"] == TRACE
    baggage = next(t for t in first["trace"] if t["format"] == "baggage")
    assert baggage["raw"].startswith("<redacted, ")
    assert baggage["violations"] and all(MARK not in v for v in baggage["violations"])


def test_redact_option_adds_names_and_wins_over_the_allow_list(captures: list[str]) -> None:
    _, out, _ = run("messages", "--format", "jsonl", "--redact", "X-B3-TraceId", "--redact", "host",
                    captures[0])
    first = json.loads(out.splitlines()[0])
    values = {h["name"]: h["value"] for h in first["headers"]}
    assert values["x-b3-traceid"] == "<redacted, 32 bytes>"
    assert values["Host"] == "<redacted, 16 bytes>"
    b3 = next(t for t in first["trace"] if t["format"] == "b3-multi")
    assert b3["trace_id"] is None and TRACE not in out
    for cmd in (["analyze", "--format", "json"], ["export", "--to", "zipkin"]):
        code, out, err = run(*cmd, "--redact", "x-custom", captures[0])
        assert code == 0, err


def test_unknown_name_is_shown_only_when_corroborated(tmp_path: Path) -> None:
    """The UUID under an unknown name is redacted; once a message carries it under a known
    x-request-id, a later guess of it may be shown (it says nothing new)."""
    c = Conn("127.0.0.6", 40100, "10.244.1.10", 9080)
    c.cseq += 1
    c.sseq += 1
    static = b"\x82\x86\x04" + _literal(b"/mid") + b"\x01" + _literal(b"reviews:9080")
    known = static + b"\x00" + _literal(b"x-request-id") + _literal(API_UUID.encode())
    guessed = static + b"\x0f\x30" + _literal(API_UUID.encode())
    ping = frame(6, 0, 0, b"\0" * 8)
    before = ping + frame(1, 0x5, 3, guessed) + frame(1, 0x5, 5, known) + frame(1, 0x5, 7, guessed)
    f = _write(tmp_path / "c.pcap", [c.send(before), c.send(frame(6, 1, 0, b"\0" * 8), from_client=False)])
    msgs = [json.loads(x) for x in run("messages", "--format", "jsonl", str(f))[1].splitlines()]
    assert [m["stream"] for m in msgs] == [3, 5, 7]
    shown = [[h["value"] for h in m["headers"] if h.get("unknown")] for m in msgs]
    assert shown[0] == ["<redacted, 36 bytes>"]  # nothing corroborates it yet
    assert shown[2] == [API_UUID]  # seen under a known name in stream 5
    guess = [t for t in msgs[0]["trace"] if t["guessed"]]
    assert all(t["raw"] == "<redacted, 36 bytes>" and t["request_id"] is None for t in guess)


# -- the policy, unit by unit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("authorization", True), ("x-forwarded-authorization", True), ("ocp-apim-subscription-key", True),
        ("x-amz-security-token", True), ("x-my-service-token", True), ("x-client-secret", True),
        ("x-db-password", True), ("x-passwd", True), ("x-session-id", True), ("set-cookie", True),
        ("x-api-key", True), ("apikey", True), ("x-api_key", True), ("x-goog-signature", True),
        ("x-credential", True), ("baggage", True), ("uberctx-user", True), ("proxy-authenticate", True),
        (":authority", False), ("x-request-id", False), ("traceparent", False), ("tracestate", False),
        ("x-b3-traceid", False), ("x-b3-spanid", False), ("b3", False), ("uber-trace-id", False),
        ("content-type", False), ("user-agent", False), ("x-envoy-attempt-count", False),
    ],
)
def test_names_by_rule_with_a_tracing_allow_list(name: str, secret: bool) -> None:
    assert is_secret(name.encode()) is secret


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("/a?access_token=abc&x=1", "/a?access_token=<redacted, 3 bytes>&x=1"),
        ("/a?x=1&API_KEY=abcd", "/a?x=1&API_KEY=<redacted, 4 bytes>"),
        ("/s3/o?X-Amz-Date=1&X-Amz-Signature=ff00", "/s3/o?X-Amz-Date=<redacted, 1 bytes>"
         "&X-Amz-Signature=<redacted, 4 bytes>"),
        ("/cb?code=xyz;state=s1#frag", "/cb?code=<redacted, 3 bytes>;state=<redacted, 2 bytes>#frag"),
        ("/a?acc%65ss_token=abc", "/a?acc%65ss_token=<redacted, 3 bytes>"),  # percent-decoded name
        ("/a?key=", "/a?key="),  # nothing to hide
        ("/plain?page=2&sort=asc", "/plain?page=2&sort=asc"),
        ("http://user:pw@host/p", "http://user:<redacted, 2 bytes>@host/p"),
        ("//u:pw@host/p?a=1", "//u:<redacted, 2 bytes>@host/p?a=1"),
        ("u:secret@reviews:9080", "u:<redacted, 6 bytes>@reviews:9080"),  # an authority
        ("/a/b@c:d", "/a/b@c:d"),  # a path, no userinfo
        ("/no-query", "/no-query"),
    ],
)
def test_query_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redaction_is_linear_on_hostile_urls() -> None:
    """Plain scans, no backtracking: a long hostile path costs time in proportion."""
    import time

    start = time.perf_counter()
    redact_url("a:" * 200_000 + "/@x")
    redact_url("/?" + "token=1&" * 100_000)
    Policy().prose("x?" + "a" * 1_000_000)
    assert time.perf_counter() - start < 5


def test_policy_value_decisions() -> None:
    p = Policy.of(False, ["X-Custom"])
    seen = Corroboration()
    seen.see([Header.of(b"x-request-id", XRID.encode())])
    unknown_rid = Header(None, XRID.encode(), None, "name of entry #3 of the client's table")
    unknown_key = Header(None, b"Bearer abc", None, "name of entry #4 of the client's table")
    guessed = Header(b"x-request-id", API_UUID.encode(), b"x-request-id", "entry", True)
    assert p.value(unknown_rid, seen.confirms) == XRID  # tracing-shaped and corroborated
    assert p.value(unknown_rid) == f"<redacted, {len(XRID)} bytes>"  # no corroboration given
    assert p.value(unknown_key, seen.confirms) == "<redacted, 10 bytes>"  # not tracing-shaped
    assert p.value(guessed, seen.confirms) == f"<redacted, {len(API_UUID)} bytes>"
    assert p.value(Header.of(b"X-Custom", b"v")) == "<redacted, 1 bytes>"
    assert p.value(Header.of(b"x-request-id", XRID.encode())) == XRID
    assert Policy.of(True).value(unknown_key) == "Bearer abc"
    assert p.value(Header(b"x", None, b"x", "entry")) is None


def _message(headers: tuple[Header, ...]) -> Message:
    return Message("t", 1, 1, 0, "h2", "request", Endpoints("127.0.0.6", 1, "10.244.1.10", 2, 1), 1,
                   b"POST", None, None, None, headers, extract(headers), ())


@pytest.mark.parametrize("span", [SPAN, "b7ad6b7169203331"])
def test_guess_beside_its_own_ids_under_known_names_is_shown(span: str) -> None:
    """A guessed grpc-trace-bin whose trace and span ids the message's traceparent carries
    shows nothing new; with another span id it is a guess like any other."""
    ctx = base64.b64encode(b"\x00\x00" + bytes.fromhex(TRACE) + b"\x01" + bytes.fromhex(span) + b"\x02\x01")
    value = ctx.rstrip(b"=")
    entry = "name of entry #3 of the client's table"
    headers = (Header(b"grpc-trace-bin", value, b"grpc-trace-bin", entry, True),
               Header.of(b"traceparent", f"00-{TRACE}-{SPAN}-01".encode()))
    d = message_dict(_message(headers), Policy(), Corroboration().confirms)
    bin_header = d["headers"][0]
    bin_context = next(c for c in d["trace"] if c["format"] == "grpc-trace-bin")
    if span == SPAN:
        assert bin_header["value"] == value.decode() and bin_context["trace_id"] == TRACE
    else:
        assert bin_header["value"] == f"<redacted, {len(value)} bytes>" and bin_context["trace_id"] is None


def test_marker_says_the_length_at_every_size() -> None:
    # the short markers are made once (a table), the long ones when asked: the same text
    from analyzer.report.redact import marker

    for n in (0, 1, 36, 511, 512, 513, 70_000):
        assert marker(n) == f"<redacted, {n} bytes>"
