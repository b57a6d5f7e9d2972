"""The verdict rules (issue 13): tracestate judged per W3C Trace Context, one finding per call
with a written precedence, honest attribution among concurrent requests sharing an
x-request-id, capture edges and unknown headers that are never evidence, and what was
expected shown whatever the format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from analyzer.analysis import analyze
from analyzer.analysis.breaks import Attribution, attribute, judge, judge_candidates, verdict
from analyzer.analysis.evidence import HiddenHeaders, Observer, corroborate, distinct
from analyzer.analysis.model import PRECEDENCE, Call, Finding
from analyzer.records import Endpoints, Header, Message
from analyzer.tracing import extract
from analyzer.tracing.w3c import tracestate_dropped, tracestate_members
from tests.fixtures import CAPTURES
from tests.packets import ACK, FIN, PSH, Conn, pcap, sll2
from tests.test_tracing_w3c import TRACESTATE_INVALID, TRACESTATE_VALID

RID = "4c1f8a2e-55aa-9e2b-8d3c-0a1b2c3d4e5f"
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "0af7651916cd43dd8448eb211c80319c"
S1, S2, S3 = "00f067aa0ba902b7", "b7ad6b7169203331", "a3ce929d0e0e4736"
TS = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"


def tp(trace: str = T1, span: str = S1, flags: str = "01") -> str:
    return f"00-{trace}-{span}-{flags}"


def call(headers: list[tuple[str, str]] | dict[str, str], ts: int = 100, end: int | None = 200,
         frame: int = 1, unknown: tuple[str, ...] = (), connection: int = 1) -> Call:
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    hs = tuple(Header.of(k.encode(), v.encode("latin-1")) for k, v in pairs)
    values: dict[str, str] = {}
    for k, v in pairs:
        values.setdefault(k, v)
    return Call(capture="t", frame=frame, ts_ns=ts, protocol="http/1.1", src="10.244.1.10", sport=1,
                dst="127.0.0.1", dport=15001, connection=connection, stream=None, method="GET", path="/",
                authority="payments:8080", trace=extract(hs), header_names=tuple(values), values=values,
                response_ts=end, unknown=unknown)


def findings(i: Call, o: Call, hidden: object = None) -> list[Finding]:
    att = attribute(o, [i])
    fs, _ = verdict(i, o, att, "orders", "payments:8080") if hidden is None else \
        verdict(i, o, att, "orders", "payments:8080", hidden)  # type: ignore[arg-type]
    return fs


def kinds(i: Call, o: Call) -> list[tuple[str, list[str]]]:
    return [(f.kind, f.headers) for f in findings(i, o)]


OTEL = {"x-request-id": RID, "traceparent": tp(), "tracestate": TS}


# -- 1. tracestate (W3C Trace Context §3.3, §3.5) ---------------------------------------------

def test_tracestate_carried_on_gives_nothing() -> None:
    assert kinds(call(OTEL), call(OTEL, ts=150)) == []
    # the app made its own span: traceparent's parent-id changes, tracestate is kept
    assert kinds(call(OTEL), call({**OTEL, "traceparent": tp(span=S2)}, ts=150)) == []


def test_tracestate_dropped_is_one_partial_with_expected_and_found() -> None:
    out = {k: v for k, v in OTEL.items() if k != "tracestate"}
    (f,) = findings(call(OTEL), call(out, ts=150))
    assert (f.kind, f.headers) == ("partial", ["tracestate"])
    assert f.expected == {"tracestate": TS} and f.found == {}
    assert "§3.5" in (f.rule or "")


def test_other_vendors_member_dropped_is_partial() -> None:
    (f,) = findings(call(OTEL), call({**OTEL, "tracestate": "rojo=00f067aa0ba902b7"}, ts=150))
    assert (f.kind, f.headers) == ("partial", ["tracestate"])
    assert f.found == {"tracestate": "rojo=00f067aa0ba902b7"} and "congo" in (f.rule or "")


@pytest.mark.parametrize("out", [
    "rojo=1111111111111111,congo=t61rcWkgMzE",  # its own member updated
    "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",  # its own member moved to the front
    "mine=abc,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",  # its own member added at the front
    "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE",  # OWS is not a change
])
def test_legitimate_tracestate_updates_are_not_findings(out: str) -> None:
    assert kinds(call(OTEL), call({**OTEL, "tracestate": out}, ts=150)) == []


def test_full_list_may_drop_its_oldest_members_only() -> None:
    full = [(f"k{n}", str(n)) for n in range(32)]
    added = [("mine", "x"), *full[:31]]
    assert tracestate_dropped(full, added) == []
    assert tracestate_dropped(full, [("mine", "x"), *full[1:]]) == ["k0"]  # not the oldest
    assert tracestate_dropped(full[:5], [("mine", "x"), *full[:3]]) == ["k3", "k4"]  # not over
    assert tracestate_dropped(full, [("a", "1"), ("b", "2"), *full[:30]]) == ["k30", "k31"]  # one own
    assert tracestate_dropped(full, [("a", "1"), *full[:30]]) == ["k30", "k31"]  # one added, two gone


def test_tracestate_dropped_with_a_new_trace_is_the_one_changed_finding() -> None:
    out = {"x-request-id": RID, "traceparent": tp(trace=T2)}
    (f,) = findings(call(OTEL), call(out, ts=150))
    assert (f.kind, f.headers) == ("changed", ["traceparent"])


def test_invalid_tracestate_sent_is_malformed() -> None:
    (f,) = findings(call(OTEL), call({**OTEL, "tracestate": "rojo=1,rojo=2"}, ts=150))
    assert (f.kind, f.headers) == ("malformed", ["tracestate"])


def test_invalid_tracestate_received_may_be_discarded() -> None:
    bad = {**OTEL, "tracestate": "FOO=1"}
    out = {k: v for k, v in OTEL.items() if k != "tracestate"}
    assert kinds(call(bad), call(out, ts=150)) == []
    assert kinds(call(bad), call(bad, ts=150)) == []  # copied as received: upstream's fault


def test_tracestate_without_traceparent_is_not_required() -> None:
    i = call({"x-request-id": RID, "tracestate": TS})
    assert kinds(i, call({"x-request-id": RID}, ts=150)) == []


@pytest.mark.parametrize("values", TRACESTATE_VALID)
def test_w3c_suite_valid_tracestate_forwarded_and_dropped(values: tuple[str, ...]) -> None:
    pairs = [("x-request-id", RID), ("traceparent", tp())] + [("tracestate", v) for v in values]
    i = call(pairs)
    assert kinds(i, call(pairs, ts=150)) == []
    members = tracestate_members(next(t for t in i.trace if t.format == "tracestate"))
    dropped = kinds(i, call(pairs[:2], ts=150))
    assert dropped == ([("partial", ["tracestate"])] if members else [])


@pytest.mark.parametrize(("values", "violation"), TRACESTATE_INVALID)
def test_w3c_suite_invalid_tracestate_sent_is_malformed(values: tuple[str, ...], violation: str) -> None:
    pairs = [("x-request-id", RID), ("traceparent", tp())]
    i = call([*pairs, ("tracestate", "foo=1")])
    (f,) = findings(i, call(pairs + [("tracestate", v) for v in values], ts=150))
    assert (f.kind, f.headers) == ("malformed", ["tracestate"]) and violation in (f.rule or "")


def test_baggage_dropped_is_a_note_not_a_finding() -> None:
    i = call({**OTEL, "baggage": "userId=alice"})
    o = call(OTEL, ts=150)
    fs, notes = verdict(i, o, attribute(o, [i]), "orders", "payments:8080")
    assert fs == [] and [n.kind for n in notes] == ["baggage-dropped"]
    fs, notes = verdict(i, call({**OTEL, "baggage": "userId=alice"}, ts=150), attribute(o, [i]), "a", "b")
    assert fs == [] and notes == []


# -- 2. one finding per cause, in a written precedence ----------------------------------------

def test_precedence_is_written_down() -> None:
    assert PRECEDENCE == ("changed", "malformed", "missing", "partial")


def test_all_zero_trace_id_is_exactly_one_malformed() -> None:
    out = {**OTEL, "traceparent": tp(trace="0" * 32)}
    (f,) = findings(call(OTEL), call(out, ts=150))
    assert (f.kind, f.headers) == ("malformed", ["traceparent"])
    assert "all-zero" in (f.rule or "")


def test_changed_wins_over_malformed_and_partial() -> None:
    i = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S1, "x-b3-sampled": "1"})
    o = call({"x-request-id": RID, "x-b3-traceid": T2, "x-b3-spanid": S2.upper()}, ts=150)
    (f,) = findings(i, o)
    assert (f.kind, f.headers) == ("changed", ["x-b3-traceid"])
    assert "also malformed x-b3-spanid" in (f.rule or "")


def test_malformed_wins_over_partial() -> None:
    i = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S1, "x-b3-sampled": "1"})
    o = call({"x-b3-traceid": T1, "x-b3-spanid": S1[:15], "x-b3-sampled": "1"}, ts=150)
    (f,) = findings(i, o)
    assert (f.kind, f.headers) == ("malformed", ["x-b3-spanid"])
    assert "also partial x-request-id" in (f.rule or "")


def test_missing_when_nothing_is_carried() -> None:
    (f,) = findings(call(OTEL), call({}, ts=150))
    assert (f.kind, f.headers) == ("missing", ["x-request-id", "traceparent", "tracestate"])


# -- 3. attribution uses every id; "certain" only when it is -----------------------------------

def test_concurrent_requests_sharing_an_x_request_id_narrowed_by_span_lineage() -> None:
    a = call({"x-request-id": RID, "traceparent": tp(span=S1)}, ts=100, end=400, frame=10)
    b = call({"x-request-id": RID, "traceparent": tp(span=S2)}, ts=110, end=410, frame=11)
    verbatim = call({"x-request-id": RID, "traceparent": tp(span=S2)}, ts=200, frame=20)
    att = attribute(verbatim, [a, b])
    assert (att.inbound, att.method, att.confidence) == (b, "span-lineage", "certain")


def test_concurrent_requests_without_lineage_are_ambiguous() -> None:
    a = call({"x-request-id": RID, "traceparent": tp(span=S1)}, ts=100, end=400, frame=10)
    b = call({"x-request-id": RID, "traceparent": tp(span=S2)}, ts=110, end=410, frame=11)
    own_span = call({"x-request-id": RID, "traceparent": tp(span=S3)}, ts=200, frame=20)
    att = attribute(own_span, [a, b])
    assert att.confidence == "ambiguous" and {c.frame for c in att.candidates} == {10, 11}
    assert judge_candidates(own_span, att, "orders", "payments:8080")[0] == []
    dropped = call({"x-request-id": RID}, ts=200, frame=21)
    att = attribute(dropped, [a, b])
    (f,) = judge_candidates(dropped, att, "orders", "payments:8080")[0]
    assert (f.kind, f.confidence, sorted(f.candidates)) == ("partial", "ambiguous", [10, 11])


def test_never_changed_when_another_candidate_carries_the_trace_id() -> None:
    # A retry that began a new trace shares the x-request-id: the call belongs to it.
    a = call({"x-request-id": RID, "traceparent": tp(trace=T1)}, ts=100, end=400, frame=10)
    b = call({"x-request-id": RID, "traceparent": tp(trace=T2, span=S2)}, ts=110, end=410, frame=11)
    o = call({"x-request-id": RID, "traceparent": tp(trace=T2, span=S3)}, ts=200, frame=20)
    att = attribute(o, [a, b])
    assert (att.inbound, att.confidence) == (b, "certain")
    assert judge_candidates(o, att, "orders", "payments:8080")[0] == []
    # even when the x-request-id differs, a request in the window carrying the trace counts
    c = call({"x-request-id": "9" + RID[1:], "traceparent": tp(trace=T2, span=S2)}, ts=120, end=300,
             frame=12)
    att = attribute(o, [a, c])
    assert b not in att.candidates and c in [att.inbound, *att.candidates]
    assert all(f.kind != "changed" or "traceparent" not in f.headers
               for f in judge_candidates(o, att, "orders", "payments:8080")[0])


def test_retry_after_503_is_not_flagged_and_attribution_is_certain() -> None:
    first = call({"x-request-id": RID, "traceparent": tp(span=S1)}, ts=100, end=200, frame=10)
    first.status = 503
    retry = call({"x-request-id": RID, "traceparent": tp(span=S2), "x-envoy-attempt-count": "2"},
                 ts=300, end=500, frame=11)
    for ts, want in ((150, first), (400, retry)):
        o = call({"x-request-id": RID, "traceparent": tp(span=S3)}, ts=ts, frame=ts)
        att = attribute(o, [first, retry])
        assert (att.inbound, att.confidence) == (want, "certain")
        assert judge_candidates(o, att, "a", "b")[0] == []


def test_unsampled_requests_are_not_flagged() -> None:
    i = call({**OTEL, "traceparent": tp(flags="00")})
    assert kinds(i, call({**OTEL, "traceparent": tp(span=S2, flags="00")}, ts=150)) == []


# -- 4. capture edges are not evidence ---------------------------------------------------------

APP = "10.244.1.10"
B3_CONT = ("x-request-id: " + RID + "\r\nx-b3-traceid: " + T1 + "\r\nx-b3-spanid: " + S2
           + "\r\nx-b3-parentspanid: " + S1 + "\r\nx-b3-sampled: 1\r\n")


def _pod_capture(tmp_path: Path, mid_request: bool) -> Path:
    """A sidecar pod: the app calls out (with B3 carrying a parent span) at t=1 ms; the
    inbound connection from 127.0.0.6 is either seen mid-request (its response, to a request
    sent before the capture, comes at t=3 ms) or idle and seen from its SYN after the call."""
    inbound = Conn("127.0.0.6", 41000, APP, 9080)
    out = Conn(APP, 50000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    head = "GET /pay HTTP/1.1\r\nHost: payments:8080\r\n" + B3_CONT + "\r\n"
    frames: list[bytes] = [*out.handshake(), out.send(head.encode()),
                           out.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False)]
    if mid_request:
        frames.append(inbound.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False))
    else:
        frames += [*inbound.handshake(), inbound.send(b"", flags=FIN | ACK)]
    f = tmp_path / ("mid.pcap" if mid_request else "idle.pcap")
    f.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 500_000, sll2(p)) for n, p in enumerate(frames)]))
    return f


def test_call_whose_request_began_before_the_capture_is_not_judged(tmp_path: Path) -> None:
    r = analyze([_pod_capture(tmp_path, mid_request=True)])
    assert r.findings == [] and r.not_in_capture == 1
    assert [o.verdict for o in r.outcomes] == ["not-in-capture"]
    assert any(n.kind == "not-in-capture" for n in r.notes)


def test_root_call_judged_only_when_the_capture_shows_nothing_served(tmp_path: Path) -> None:
    r = analyze([_pod_capture(tmp_path, mid_request=False)])
    got = [(f.kind, f.headers, f.inbound) for f in r.findings]
    assert got == [("malformed", ["x-b3-parentspanid"], None)]
    assert r.not_in_capture == 0 and [o.verdict for o in r.outcomes] == ["root"]


def test_inbound_without_response_is_open_to_the_capture_end() -> None:
    i = call(OTEL, ts=100, end=None, frame=10)
    o = call({}, ts=10_000, frame=20)
    att = attribute(o, [i])
    assert (att.inbound, att.method) == (i, "time-window")


# -- 5. unknown is not missing ------------------------------------------------------------------

ENTRY = "entry #3 of the client's table"


def test_unknown_header_makes_no_finding_that_rests_on_absence() -> None:
    i = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S1, "x-b3-sampled": "1"})
    o = call({"x-request-id": RID, "x-b3-traceid": T1}, ts=150, unknown=(ENTRY,))
    hidden = HiddenHeaders([o]).of(o)
    att = attribute(o, [i])
    fs, _, limited = judge(i, o, att, "a", "b", hidden)
    assert fs == [] and limited  # x-b3-spanid may be the unknown entry: not missing, not malformed
    nothing = call({}, ts=150, unknown=(ENTRY,))
    hidden = HiddenHeaders([nothing]).of(nothing)
    fs, _, limited = judge(i, nothing, attribute(nothing, [i]), "a", "b", hidden)
    assert fs == [] and limited


def test_an_entry_seen_beside_a_known_header_is_not_that_header() -> None:
    # Stream 1 shows entry #3 beside a known x-b3-traceid, x-b3-spanid and x-b3-sampled: on
    # stream 3 the same entry cannot be them, so their absence there is evidence.
    i = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S1, "x-b3-sampled": "1"})
    earlier = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S2, "x-b3-sampled": "1"},
                   ts=120, frame=5, unknown=(ENTRY,))
    o = call({"x-request-id": RID}, ts=150, frame=6, unknown=(ENTRY,))
    hidden = HiddenHeaders([earlier, o]).of(o)
    assert not hidden("x-b3-traceid") and hidden("tracestate")
    fs, _, _ = judge(i, o, attribute(o, [i]), "a", "b", hidden)
    assert [(f.kind, f.headers) for f in fs] == [("partial", ["x-b3-traceid", "x-b3-spanid", "x-b3-sampled"])]
    # on another connection the entry is another one: nothing is ruled out
    other = call({"x-request-id": RID}, ts=150, frame=7, unknown=(ENTRY,), connection=2)
    assert HiddenHeaders([earlier, other]).of(other)("x-b3-traceid")


def _h2_request(frame: int, headers: list[Header]) -> Message:
    return Message(capture="t", frame=frame, first_frame=frame, ts_ns=frame, protocol="h2", kind="request",
                   endpoints=Endpoints(APP, 50000, "127.0.0.1", 15001, 1), stream=frame, method=b"POST",
                   path=None, authority=None, status=None, headers=tuple(headers), trace=extract(headers),
                   anomalies=())


def test_guessed_name_is_evidence_only_when_corroborated() -> None:
    from analyzer.analysis.legs import pair

    guess = Header(b"x-request-id", RID.encode(), b"x-request-id", ENTRY, guessed=True)
    ob = Observer()
    unknown = Header(None, None, None, "entry #1 of x")
    calls = pair(ob.wrap([_h2_request(1, [guess]), _h2_request(3, [unknown])]))
    ob.apply(calls)
    assert calls[0].trace and calls[0].trace[0].guessed and calls[1].unknown == ("entry #1 of x",)
    corroborate(calls, [ob])
    assert calls[0].trace == () and calls[0].unknown == (ENTRY,)  # a shape alone is no evidence
    ob2 = Observer()
    again = pair(ob2.wrap([_h2_request(1, [guess])]))
    known = call({"x-request-id": RID})
    ob2.apply(again)
    corroborate([*again, known], [ob2])
    assert again[0].request_id == RID and again[0].unknown == ()


# -- 8. what was expected, what was lost, and captures given twice -----------------------------

def test_changed_across_formats_shows_both_trace_ids() -> None:
    i = call({"x-request-id": RID, "x-b3-traceid": T1, "x-b3-spanid": S1, "x-b3-sampled": "1"})
    o = call({"x-request-id": RID, "traceparent": tp(trace=T2)}, ts=150)
    (f,) = findings(i, o)
    assert (f.kind, f.headers) == ("changed", ["traceparent"])
    assert f.expected == {"x-b3-traceid": T1} and f.found == {"traceparent": tp(trace=T2)}


def test_hop_headers_lost_lists_only_lost_headers() -> None:
    r = analyze([CAPTURES / "productpage-http1.pcap"])
    for h in r.hops:
        lost = {n for f in r.findings if f.target == h.target and f.kind in ("missing", "partial")
                for n in f.headers}
        assert h.headers_lost == lost
    assert any(f.kind == "changed" for f in r.findings)


def test_same_capture_twice_is_counted_once(tmp_path: Path) -> None:
    src = CAPTURES / "productpage-http1.pcap"
    copy = tmp_path / "copy.pcap"
    shutil.copyfile(src, copy)
    once = analyze([src])
    for twice in ([src, src], [src, copy]):
        r = analyze(twice)
        assert len(r.findings) == len(once.findings) and len(r.captures) == 1
        assert len(r.warnings) == 1 and "given twice" in r.warnings[0]
    kept, warnings = distinct([str(src), "-"])
    assert kept == [str(src), "-"] and warnings == []


def test_attribution_record_defaults() -> None:
    a = Attribution(None, "none", "certain")
    assert a.candidates == []
    assert PSH  # the packet helpers are shared with the capture-edge tests


def test_traceparent_dropped_takes_tracestate_with_it() -> None:
    (f,) = findings(call(OTEL), call({"x-request-id": RID}, ts=150))
    assert (f.kind, f.headers) == ("partial", ["traceparent", "tracestate"])


def test_an_hpack_entry_corroborated_once_names_every_use_of_it() -> None:
    """A warm gRPC channel: the traceparent name is an entry older than the capture, so each
    value's name is guessed. The first value is corroborated (the inbound request carried
    it); the second carries a new trace nobody saw, under the same entry: still traceparent."""
    from analyzer.analysis.legs import pair

    def guessed(value: str) -> Header:
        return Header(b"traceparent", value.encode(), b"traceparent", "name of " + ENTRY, guessed=True)

    ob = Observer()
    calls = pair(ob.wrap([_h2_request(1, [guessed(tp())]), _h2_request(3, [guessed(tp(trace=T2))])]))
    ob.apply(calls)
    corroborate([*calls, call({"traceparent": tp()})], [ob])
    assert [c.trace_id for c in calls] == [T1, T2] and calls[1].unknown == ()
    assert ob.named == {(1, ENTRY): "traceparent"}
    # that entry can then only ever hide a traceparent
    other = call({}, unknown=(ENTRY,))
    hidden = HiddenHeaders([other], ob.named).of(other)
    assert hidden("traceparent") and not hidden("x-request-id")


def test_attribution_stays_linear_on_hostile_shapes() -> None:
    """10,000 requests never answered (all open to the capture's end) sharing one
    x-request-id: each call's attribution looks at a bounded number of them."""
    import time

    from analyzer.analysis.breaks import MAX_JUDGED_CANDIDATES, InboundIndex

    n = 10_000
    inbound = [call({"x-request-id": RID}, ts=k, end=None, frame=k) for k in range(n)]
    index = InboundIndex(inbound)
    start = time.perf_counter()
    for k in range(0, n, 10):
        a = attribute(call({}, ts=k + n, frame=n + k), index)
        assert a.confidence == "ambiguous" and len(a.candidates) <= MAX_JUDGED_CANDIDATES + 1
        b = attribute(call({"x-request-id": RID}, ts=k + n, frame=n + k), index)
        assert b.method == "x-request-id"
    assert time.perf_counter() - start < 5  # about 0.3 s; quadratic would be minutes
    # the window still holds the right requests
    few = InboundIndex([call(OTEL, ts=0, end=50, frame=1), call(OTEL, ts=10, end=None, frame=2),
                        call(OTEL, ts=40, end=45, frame=3)])
    assert {c.frame for c in few.containing(42)} == {1, 2, 3}
    assert {c.frame for c in few.containing(48)} == {1, 2}
    assert {c.frame for c in few.containing(60)} == {2}


@pytest.mark.parametrize("shape", ["in order", "nearly in order", "backwards", "beyond 64 bits"])
def test_the_time_index_finds_what_a_scan_of_every_request_finds(shape: str) -> None:
    """The index keeps a few integers per request and sorts them by start in place (a row at
    a time while that stays linear, else through a list of positions); timestamps no 64-bit
    column holds are kept exactly. Every window lookup gives the requests a scan of all of
    them gives, the latest-starting first, ties in the order added."""
    import random

    from analyzer.analysis.breaks import InboundIndex

    rng = random.Random(7)
    base = (1 << 70) if shape == "beyond 64 bits" else 1_700_000_000 * 10**9
    starts = [base + k * 10 + rng.randrange(3) for k in range(600)]
    if shape == "nearly in order":
        for k in range(0, len(starts) - 3, 7):
            starts[k], starts[k + 2] = starts[k + 2], starts[k]
    elif shape == "backwards":
        starts.reverse()
    inbound = [call(OTEL, ts=t, end=None if k % 13 == 0 else t + rng.randrange(1, 80), frame=k)
               for k, t in enumerate(starts)]
    index = InboundIndex(inbound)
    for t in range(base - 5, base + 6100, 7):
        inside = [i for i in inbound if i.ts_ns <= t and (i.response_ts is None or t <= i.response_ts)]
        # latest-starting first; among equal starts, the later added first (a scan backwards)
        want = sorted(inside, key=lambda i: (i.ts_ns, i.frame), reverse=True)
        assert index.containing(t, limit=10_000) == want, t


def test_cli_warns_once_on_stderr_for_a_capture_given_twice() -> None:
    import json

    from tests.test_cli import run

    src = str(CAPTURES / "productpage-http1.pcap")
    code, out, err = run("analyze", "--format", "json", src, src)
    assert code == 0 and err.count("given twice") == 1 and "warning" in err
    d = json.loads(out)
    assert d["captures"] == [src] and d["summary"]["findings"] == len(d["findings"]) == 4
    assert d["summary"]["not_in_capture"] == 0 and d["summary"]["limited_by_unknown_headers"] == 0


def test_call_before_the_first_inbound_request_carrying_an_id_is_not_a_root() -> None:
    from analyzer.analysis.engine import _before_capture

    none = Attribution(None, "none", "certain")
    carrying = call({"x-request-id": RID}, ts=50)
    bare = call({}, ts=50)
    assert _before_capture(carrying, none, None, first_inbound=100)
    assert not _before_capture(bare, none, None, first_inbound=100)  # a root call: judged
    assert not _before_capture(carrying, none, None, first_inbound=10)  # the capture saw it idle
    assert _before_capture(bare, Attribution(call(OTEL), "time-window", "likely"), 60, None)
    assert not _before_capture(carrying, Attribution(call(OTEL), "x-request-id", "certain"), 60, None)


def test_inbound_connection_mid_body_counts_as_serving(tmp_path: Path) -> None:
    """The capture starts inside a request body on the inbound connection: no message can
    be read from it, yet the app was evidently serving: its outbound call is not judged."""
    inbound = Conn("127.0.0.6", 41000, APP, 9080)
    out = Conn(APP, 50000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    head = "GET /pay HTTP/1.1\r\nHost: payments:8080\r\n" + B3_CONT + "\r\n"
    frames = [inbound.send(b'{"order": 1, "items": [1, 2, 3]}'),
              *out.handshake(), out.send(head.encode()),
              out.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False),
              inbound.send(b'{"more": "body"}')]
    f = tmp_path / "body.pcap"
    f.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 500_000, sll2(p)) for n, p in enumerate(frames)]))
    r = analyze([f])
    assert r.findings == [] and r.not_in_capture == 1


_BARS = tuple(",".join(f"bar{n:02d}={n:02d}" for n in range(k, k + 10)) for k in (1, 11, 21))
_KEY = "".join(map(chr, range(0x61, 0x7B))) + "0123456789_-*/"
_VALUE = "".join(map(chr, [*range(0x20, 0x2C), *range(0x2D, 0x3D), *range(0x3E, 0x7F)]))


@pytest.mark.parametrize(("values", "valid"), [
    ((*_BARS, "bar31=31,bar32=32"), True),  # the suite's 32 members: the limit
    ((*_BARS, "bar31=31,bar32=32,bar33=33"), False),  # 33: one too many
    ((_KEY + "=" + _VALUE,), True),  # every allowed key and value character
    ((_KEY + "@a-z0-9_-*/=" + _VALUE,), True),  # the same with a multi-tenant vendor key
])
def test_w3c_suite_tracestate_limits_and_characters(values: tuple[str, ...], valid: bool) -> None:
    pairs = [("x-request-id", RID), ("traceparent", tp())]
    sent = pairs + [("tracestate", v) for v in values]
    fs = findings(call([*pairs, ("tracestate", "foo=1")]), call(sent, ts=150))
    assert [(f.kind, f.headers) for f in fs] == ([("partial", ["tracestate"])] if valid else
                                                 [("malformed", ["tracestate"])])
    # received and forwarded as is: never a finding
    assert kinds(call(sent), call(sent, ts=150)) == []


def test_a_call_attributed_by_any_id_is_judged_even_while_serving_an_unseen_request() -> None:
    from analyzer.analysis.engine import _before_capture

    for method in ("x-request-id", "trace-id", "span-lineage"):
        assert not _before_capture(call(OTEL, ts=50), Attribution(call(OTEL), method, "certain"), 60, 100)
