"""analysis/: attribution, the four finding kinds, notes, and the recorded pod captures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analyzer.analysis import Options, analyze
from analyzer.analysis.breaks import attribute, root_verdict, verdict
from analyzer.analysis.model import Call
from analyzer.records import Header
from analyzer.tracing import extract
from tests.fixtures import CAPTURES, manifest

XRID = "4c1f8a2e-55aa-9e2b-8d3c-0a1b2c3d4e5f"
TRACE = "4a4747f943018302dba1a45b2e0f5884"
B3 = {"x-request-id": XRID, "x-b3-traceid": TRACE, "x-b3-spanid": "362f46f3eb57a3b6",
      "x-b3-parentspanid": "1111222233334444", "x-b3-sampled": "1"}


def call(headers: dict[str, str], ts: int = 100, end: int | None = 200, frame: int = 1,
         path: str = "/") -> Call:
    hs = tuple(Header.of(k.encode(), v.encode()) for k, v in headers.items())
    return Call(capture="t", frame=frame, ts_ns=ts, protocol="http/1.1", src="10.244.1.10", sport=1,
                dst="127.0.0.1", dport=15001, connection=1, stream=None, method="GET", path=path,
                authority="reviews:9080", trace=extract(hs), header_names=tuple(headers),
                values=dict(headers), response_ts=end)


def judge(i: Call, o: Call) -> list[tuple[str, list[str]]]:
    att = attribute(o, [i])
    fs, _ = verdict(i, o, att, "productpage", "reviews:9080")
    return [(f.kind, f.headers) for f in fs]


# -- attribution ------------------------------------------------------------------------------

def test_attribution_by_request_id_masks_envoy_trace_reason() -> None:
    i = call(B3, ts=0, end=10)
    o = call({"x-request-id": XRID[:14] + "4" + XRID[15:]}, ts=500)  # outside the window
    a = attribute(o, [i, call({"x-request-id": "00000000-0000-4000-8000-000000000001"}, ts=490, end=600)])
    assert (a.inbound, a.method, a.confidence) == (i, "x-request-id", "certain")


def test_attribution_by_trace_id_across_formats() -> None:
    i = call({"x-b3-traceid": TRACE[16:], "x-b3-spanid": "362f46f3eb57a3b6"}, ts=0, end=10)
    o = call({"traceparent": f"00-{'0' * 16}{TRACE[16:]}-362f46f3eb57a3b6-01"}, ts=500)
    a = attribute(o, [i])
    assert (a.inbound, a.method) == (i, "trace-id")


def test_attribution_by_time_window_and_ambiguity() -> None:
    a1 = call(B3, ts=100, end=300, frame=1)
    a2 = call({**B3, "x-request-id": "5c1f8a2e-55aa-9e2b-8d3c-0a1b2c3d4e5f"}, ts=250, end=400, frame=2)
    early = call({}, ts=150)
    att = attribute(early, [a1, a2])
    assert (att.inbound, att.method, att.confidence) == (a1, "time-window", "likely")
    overlap = call({}, ts=260)
    att = attribute(overlap, [a1, a2])
    assert att.confidence == "ambiguous" and {c.frame for c in att.candidates} == {1, 2}
    assert attribute(call({}, ts=900), [a1, a2]).inbound is None  # a root call


# -- verdicts ---------------------------------------------------------------------------------

def test_correct_propagation_gives_nothing() -> None:
    assert judge(call(B3), call(B3, ts=150)) == []


def test_missing() -> None:
    assert judge(call(B3), call({}, ts=150)) == [("missing", list(B3))]


def test_partial_request_id_kept_trace_dropped() -> None:
    assert judge(call(B3), call({"x-request-id": XRID}, ts=150)) == [
        ("partial", ["x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled"])]


def test_partial_part_of_b3_and_sampling_lost() -> None:
    out = {k: v for k, v in B3.items() if k != "x-b3-sampled"}
    assert judge(call(B3), call(out, ts=150)) == [("partial", ["x-b3-sampled"])]
    no_rid = {k: v for k, v in B3.items() if k != "x-request-id"}
    assert judge(call(B3), call(no_rid, ts=150)) == [("partial", ["x-request-id"])]


def test_changed_trace_and_request_id() -> None:
    assert judge(call(B3), call({**B3, "x-b3-traceid": "a" * 32}, ts=150)) == [("changed", ["x-b3-traceid"])]
    other = {**B3, "x-request-id": "9c1f8a2e-55aa-9e2b-8d3c-0a1b2c3d4e5f"}
    assert judge(call(B3), call(other, ts=150)) == [("changed", ["x-request-id"])]


def test_64_bit_id_equals_its_padded_form() -> None:
    i = call({**B3, "x-b3-traceid": TRACE[16:]})
    o = call({**B3, "x-b3-traceid": "0" * 16 + TRACE[16:]}, ts=150)
    assert judge(i, o) == []


@pytest.mark.parametrize(
    ("header", "value", "rule"),
    [
        ("x-b3-traceid", TRACE.upper(), "x-b3-traceid: upper-case hex is not allowed"),
        ("x-b3-spanid", "362f46f3eb57a3b", "x-b3-spanid: span id must be 16 hex digits, not 15"),
        ("x-b3-spanid", "0" * 16, "x-b3-spanid: all-zero span id is invalid"),
    ],
)
def test_malformed_rules(header: str, value: str, rule: str) -> None:
    i = call(B3)
    o = call({**B3, header: value}, ts=150)
    att = attribute(o, [i])
    fs, _ = verdict(i, o, att, "productpage", "reviews:9080")
    assert [(f.kind, f.headers) for f in fs if f.kind == "malformed"] == [("malformed", [header])]
    assert rule in (fs[-1].rule or "")


def test_bad_traceparent_version_is_malformed() -> None:
    i = call({"traceparent": f"00-{TRACE}-362f46f3eb57a3b6-01"})
    o = call({"traceparent": f"ff-{TRACE}-362f46f3eb57a3b6-01"}, ts=150)
    fs, _ = verdict(i, o, attribute(o, [i]), "a", "b")
    assert [f.kind for f in fs] == ["malformed"] and "traceparent" in (fs[0].rule or "")


def test_parent_span_id_on_a_root_call_is_malformed() -> None:
    root = call({"x-b3-traceid": TRACE, "x-b3-spanid": "362f46f3eb57a3b6",
                 "x-b3-parentspanid": "1111222233334444"}, ts=900)
    fs = root_verdict(root, "productpage", "reviews:9080")
    assert [(f.kind, f.headers, f.inbound) for f in fs] == [("malformed", ["x-b3-parentspanid"], None)]
    assert root_verdict(call({"x-b3-traceid": TRACE, "x-b3-spanid": "362f46f3eb57a3b6"}), "a", "b") == []


def test_malformed_value_copied_from_inbound_is_not_the_apps_fault() -> None:
    bad = {**B3, "x-b3-traceid": TRACE.upper()}
    assert judge(call(bad), call(bad, ts=150)) == []


def test_format_switch_keeping_trace_id_is_a_note() -> None:
    i = call(B3)
    o = call({"x-request-id": XRID, "traceparent": f"00-{TRACE}-362f46f3eb57a3b6-01"}, ts=150)
    fs, notes = verdict(i, o, attribute(o, [i]), "productpage", "reviews:9080")
    assert fs == []
    assert [n.kind for n in notes] == ["format-switch"]
    assert "B3 in, traceparent out" in notes[0].detail


def test_nothing_to_carry_is_no_break() -> None:
    assert judge(call({}), call({}, ts=150)) == []


# -- recorded captures ------------------------------------------------------------------------

KIND_OF = json.loads((CAPTURES / "diff" / "EXPECTED.json").read_text())["finding_kinds"]
RECORDED = [e for e in manifest() if e.get("expected_breaks")]


@pytest.mark.parametrize("entry", RECORDED, ids=[e["file"] for e in RECORDED])
def test_every_injected_break_and_nothing_else(entry: dict[str, Any]) -> None:
    r = analyze([CAPTURES / str(entry["file"])])
    got = sorted((f.kind, f.inbound.frame if f.inbound else None, f.outbound.frame, f.attribution)
                 for f in r.findings)
    want = sorted((KIND_OF[b["kind"]], b["inbound_frame"], b["outbound_frame"], b["by"])
                  for b in entry["expected_breaks"])
    assert got == want
    pod = r.pods[0]
    assert (pod.service, pod.address, pod.app_ports, pod.sidecar) == (
        "productpage", "10.244.1.10", [9080], True)
    assert {"reviews:9080", "details:9080"} <= {h.target for h in r.hops}
    assert sum(h.calls for h in r.hops) == pod.legs["outbound"]


def test_nat_split_keeps_the_cluster_ip() -> None:
    r = analyze([CAPTURES / "productpage-http1-nat.pcap"])
    outbound = [c for c in r.calls if c.role == "outbound"]
    assert outbound and all(c.nat_reply_from in ("10.96.12.34:9080", "10.96.56.78:9080") for c in outbound)


def test_overrides_and_generic_capture() -> None:
    r = analyze([CAPTURES / "productpage-http1.pcap"], Options(pod_ip="10.244.1.10", app_ports=(9080,)))
    assert len(r.findings) == 4
    # a capture with no sidecar is read generically: every server is a service
    g = analyze([CAPTURES / "curl-basic.pcap"])
    assert g.pods and not g.pods[0].sidecar and g.findings == []


def test_traces_group_calls_and_mark_the_broken_ones() -> None:
    r = analyze([CAPTURES / "productpage-http1.pcap"])
    broken = [t for t in r.traces if t.broken]
    assert len(broken) == 4
    for t in r.traces:
        servers = [s for s in t.spans if s.kind == "server"]
        for s in t.spans:
            if s.kind == "client" and s.parent_id is not None:
                assert s.parent_id in {x.span_id for x in servers}
    assert json.dumps([t.trace_id for t in r.traces])


def test_generic_capture_of_a_docker_network(tmp_path: object) -> None:
    """No sidecar: a client calls service A, which calls service B and drops the headers."""
    from pathlib import Path

    from tests.packets import ACK, PSH, Conn, pcap, sll2

    assert isinstance(tmp_path, Path)
    client = Conn("172.18.0.5", 50000, "172.18.0.2", 8080)
    a_to_b = Conn("172.18.0.2", 40000, "172.18.0.3", 9090, cisn=7000, sisn=9000)
    head = ("GET /a HTTP/1.1\r\nHost: svc-a:8080\r\nx-request-id: " + XRID +
            "\r\nx-b3-traceid: " + TRACE + "\r\nx-b3-spanid: 362f46f3eb57a3b6\r\n\r\n").encode()
    packets = [
        *client.handshake(),
        client.send(head),
        *a_to_b.handshake(),
        a_to_b.send(b"GET /b HTTP/1.1\r\nHost: svc-b:9090\r\n\r\n"),
        a_to_b.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False),
        client.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False, flags=PSH | ACK),
        client.send(b"", flags=ACK),
    ]
    f = tmp_path / "docker.pcap"
    f.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    r = analyze([f])
    assert [p.service for p in r.pods] == ["svc-a", "svc-b"] and not r.pods[0].sidecar
    assert [(x.kind, x.source, x.target, x.attribution) for x in r.findings] == [
        ("missing", "svc-a", "svc-b:9090", "time-window")]
