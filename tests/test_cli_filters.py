"""Finding what you look for: --trace on analyze, messages and export; --service and --kind
on analyze; analyze --format jsonl and csv (analyzer/report/select.py, report/analysis.py).

Expected outputs are derived from the unfiltered output of the same command, so each test
checks that the filter keeps exactly what it should and changes nothing it keeps.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.records import Header
from analyzer.report.analysis import FINDING_CSV_FIELDS
from analyzer.report.select import TraceQuery, service_matches
from analyzer.tracing import extract
from tests.fixtures import ROOT, run_cli

PODS = ("captures/pods/productpage.pcap", "captures/pods/reviews.pcap")
MESH = tuple(f"captures/mesh/{p}.pcap" for p in ("frontend", "orders", "payments", "ledger"))


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


run = run_cli


_CACHE: dict[tuple[str, ...], dict[str, Any]] = {}


def full(*captures: str) -> dict[str, Any]:
    """The unfiltered analysis, as analyze --format json gives it."""
    if captures not in _CACHE:
        code, out, _ = run("analyze", "--format", "json", *captures)
        assert code == 0
        _CACHE[captures] = json.loads(out)
    return _CACHE[captures]


def analyze_json(*args: str) -> dict[str, Any]:
    code, out, err = run("analyze", "--format", "json", *args)
    assert (code, err) == (0, "")
    doc: dict[str, Any] = json.loads(out)
    return doc


def ctx(name: str, value: str) -> tuple[Any, ...]:
    return extract([Header.of(name.encode(), value.encode())])


# -- the one matching function --------------------------------------------------------

TID = "0af7651916cd43dd8448eb211c80319c"


@pytest.mark.parametrize(("given", "trace_id", "low64"), [
    (TID, TID, None),
    (TID.upper(), TID, None),
    (f" {TID} ", TID, None),
    ("b7ad6b7169203331", None, "b7ad6b7169203331"),
    ("7ad6b7169203331", None, "07ad6b7169203331"),  # Jaeger shows ids without leading zeros
    ("af7651916cd43dd8448eb211c80319c", TID, None),
    (f"00-{TID}-b7ad6b7169203331-01", TID, None),
    (f"{TID}-b7ad6b7169203331-1", TID, None),
    (f"{TID}-b7ad6b7169203331", TID, None),
    ("b7ad6b7169203331-e457b5a2e4d86bd1-d", None, "b7ad6b7169203331"),
    (f"{TID}:e457b5a2e4d86bd1:0:1", TID, None),
    ("3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f", None, None),
    ("some-request-id", None, None),
])
def test_a_trace_query_reads_every_id_a_person_holds(given: str, trace_id: str | None,
                                                     low64: str | None) -> None:
    q = TraceQuery.parse(given)
    assert (q.trace_id, q.low64) == (trace_id, low64)
    assert q.request_key == given.strip().lower() or len(given.strip()) == 36


@pytest.mark.parametrize("given", ["", "   ", "a\x1b[31mb", "x" * 513])
def test_a_trace_query_refuses_what_cannot_be_an_id(given: str) -> None:
    with pytest.raises(ValueError, match="not a trace id"):
        TraceQuery.parse(given)


def test_trace_ids_match_in_every_format_and_the_16_hex_form_matches_the_low_half() -> None:
    b3 = ctx("x-b3-traceid", TID)
    w3c = ctx("traceparent", f"00-{TID}-b7ad6b7169203331-01")
    b3_64 = ctx("x-b3-traceid", "8448eb211c80319c")  # a 64-bit id: padded to 128 bits
    for q in (TID, TID.upper(), f"00-{TID}-00f067aa0ba902b7-00"):
        assert TraceQuery.parse(q).matches_contexts(b3)
        assert TraceQuery.parse(q).matches_contexts(w3c)
        assert not TraceQuery.parse(q).matches_contexts(b3_64)
    low = TraceQuery.parse("8448eb211c80319c")
    assert low.matches_contexts(b3) and low.matches_contexts(w3c) and low.matches_contexts(b3_64)
    assert not TraceQuery.parse("8448eb211c80319d").matches_contexts(b3)
    assert not TraceQuery.parse(TID).matches_contexts(ctx("x-request-id", TID[:30] + "00"))


def test_an_x_request_id_matches_with_envoys_sampling_character_masked() -> None:
    sent = ctx("x-request-id", "3a1c4f1e-5d2b-9c3a-9f8e-1a2b3c4d5e6f")  # '9': sampled
    for q in ("3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f", "3A1C4F1E-5D2B-AC3A-9F8E-1A2B3C4D5E6F"):
        assert TraceQuery.parse(q).matches_contexts(sent)
    assert not TraceQuery.parse("3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e60").matches_contexts(sent)
    # any other character counts, and a trace id is not taken for a request id
    assert not TraceQuery.parse("3a1c4f1e-5d2b-9c3a-9f8e-1a2b3c4d5e6f").matches_contexts(
        ctx("x-b3-traceid", TID))


@pytest.mark.parametrize(("name", "label", "hit"), [
    ("reviews", "reviews", True),
    ("REVIEWS", "reviews:9080", True),
    ("reviews:9080", "reviews:9080", True),
    ("reviews", "reviews.default.svc.cluster.local:9080", True),
    ("reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080", True),
    ("review", "reviews:9080", False),
    ("details", "reviews:9080", False),
    ("10", "10.96.0.11:9080", False),  # an address's first byte is not a name
    ("10.96.0.11", "10.96.0.11:9080", True),
    ("fd00::1", "[fd00::1]:80", True),
    ("reviews", None, False),
])
def test_service_names(name: str, label: str | None, hit: bool) -> None:
    assert service_matches(name, label) is hit


# -- analyze --------------------------------------------------------------------------


def test_analyze_trace_keeps_that_trace_whole_across_captures() -> None:
    whole = full(*PODS)
    # a trace that crosses both pods' captures
    crossing = next(t for t in whole["traces"]
                    if {s["capture"] for s in t["spans"]} == set(PODS) and t["broken"])
    tid = crossing["trace_id"]
    got = analyze_json("--trace", tid, *PODS)
    assert crossing in got["traces"]
    assert all(t == crossing or any(s["frame"] in {x["frame"] for x in crossing["spans"]}
                                    for s in t["spans"]) for t in got["traces"])
    assert got["findings"] == [f for f in whole["findings"] if f["trace_id"] == tid]
    assert got["pods"] == whole["pods"] and got["captures"] == whole["captures"]
    # hops are counted over the trace's calls: one per client span
    assert sum(h["calls"] for h in got["hops"]) == sum(
        1 for t in got["traces"] for s in t["spans"] if s["kind"] == "client")


def test_every_form_of_one_id_selects_the_same() -> None:
    f = next(f for f in full(*PODS)["findings"] if f["x_request_id"] and f["kind"] == "partial")
    tid, rid = f["trace_id"], f["x_request_id"]
    outputs = set()
    for given in (tid, tid.upper(), tid[16:], f"00-{tid}-b7ad6b7169203331-01",
                  f"{tid}-b7ad6b7169203331-1", rid, rid.upper(), rid[:14] + "4" + rid[15:]):
        code, out, err = run("analyze", "--format", "json", "--trace", given, *PODS)
        assert (code, err) == (0, "")
        outputs.add(out)
    assert len(outputs) == 1
    got = json.loads(outputs.pop())
    assert [x["trace_id"] for x in got["findings"]] == [tid]


def test_the_id_a_changed_hop_starts_leads_back_to_the_trace_it_broke() -> None:
    """Jaeger shows the downstream half of a changed trace: asking for it shows the hop
    that changed it, in the trace it came from."""
    changed = next(f for f in full(*PODS)["findings"] if f["kind"] == "changed")
    new_id = changed["found"]["x-b3-traceid"]
    got = analyze_json("--trace", new_id, *PODS)
    assert got["findings"] == [changed]
    assert {t["trace_id"] for t in got["traces"]} >= {changed["trace_id"], new_id}


@pytest.mark.parametrize("service", ["reviews", "ratings", "details", "productpage"])
def test_analyze_service_keeps_calls_from_or_to_it(service: str) -> None:
    whole = full(*PODS)
    got = analyze_json("--service", service, *PODS)

    def names(label: str | None) -> bool:
        return label is not None and (label == service or label.split(":")[0] == service)

    assert got["findings"] == [f for f in whole["findings"] if names(f["source"]) or names(f["target"])]
    assert got["hops"] == [h for h in whole["hops"] if names(h["source"]) or names(h["target"])]
    assert got["traces"] == [t for t in whole["traces"]
                             if any(names(s["service"]) or names(s["peer"]) for s in t["spans"])]


def test_analyze_kind_keeps_those_findings_and_their_hops_and_traces() -> None:
    whole = full(*PODS)
    got = analyze_json("--kind", "changed", "--kind", "malformed", *PODS)
    assert got["findings"] == [f for f in whole["findings"] if f["kind"] in ("changed", "malformed")]
    assert got["findings"] and {f["kind"] for f in got["findings"]} == {"changed", "malformed"}
    kept = {t["trace_id"] for t in whole["traces"]
            if any(k in ("changed", "malformed") for s in t["spans"] for k in s["findings"])}
    assert {t["trace_id"] for t in got["traces"]} == kept
    # whole hops, so that "2 of 15 calls" stays true
    assert got["hops"] == [h for h in whole["hops"] if h["broken"]["changed"] + h["broken"]["malformed"]]


def test_filters_combine() -> None:
    whole = full(*MESH)
    f = whole["findings"][0]
    got = analyze_json("--trace", f["trace_id"], "--kind", f["kind"], "--service", f["source"], *MESH)
    assert got["findings"] == [x for x in whole["findings"] if x["trace_id"] == f["trace_id"]
                               and x["kind"] == f["kind"]]


def test_nothing_matching_is_said_on_stderr_and_the_table_stays_empty() -> None:
    whole = full(*PODS)
    code, out, err = run("analyze", "--trace", "0" * 32, *PODS)
    n, k = len(whole["traces"]), len(whole["findings"])
    assert (code, out, err) == (0, "", f"tracewire: nothing matches --trace {'0' * 32} "
                                f"({n} traces, {k} findings in all)\n")
    code, out, err = run("analyze", "--format", "jsonl", "--kind", "missing", "--service", "ratings", *PODS)
    assert (code, out) == (0, "")
    assert err == (f"tracewire: nothing matches --service ratings --kind missing ({n} traces, "
                   f"{k} findings in all)\n")
    code, out, _ = run("analyze", "--format", "csv", "--trace", "0" * 32, *PODS)
    assert code == 0 and out.splitlines() == [",".join(FINDING_CSV_FIELDS)]


def test_fail_on_broken_looks_at_what_was_selected() -> None:
    ok = next(t for t in full(*PODS)["traces"] if not t["broken"])
    assert run("analyze", "--fail-on-broken", "--trace", ok["trace_id"], *PODS)[0] == 0
    assert run("analyze", "--fail-on-broken", "--kind", "missing", *PODS)[0] == 1


def test_a_bad_trace_or_kind_is_one_line() -> None:
    code, out, err = run("analyze", "--trace", "", *PODS)
    assert (code, out) == (2, "")
    assert err == ("tracewire: Invalid value for '--trace': '': not a trace id, x-request-id, B3 or "
                   "W3C value\nTry 'tracewire analyze --help'.\n")
    code, _, err = run("analyze", "--kind", "lost", *PODS)
    assert (code, err) == (2, "tracewire: Invalid value for '--kind': 'lost' is not one of 'missing', "
                           "'changed', 'partial', 'malformed'.\nTry 'tracewire analyze --help'.\n")


# -- analyze --format jsonl and csv -----------------------------------------------------


@pytest.mark.parametrize("captures", [PODS, MESH, ("captures/productpage-http1.pcap",)])
def test_analyze_jsonl_is_the_findings_then_the_traces(captures: tuple[str, ...]) -> None:
    whole = full(*captures)
    code, out, err = run("analyze", "--format", "jsonl", *captures)
    assert (code, err) == (0, "")
    assert out.endswith("\n")
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines == ([{"record": "finding", **f} for f in whole["findings"]]
                     + [{"record": "trace", **t} for t in whole["traces"]])


@pytest.mark.parametrize("captures", [PODS, MESH])
def test_analyze_csv_has_one_row_per_finding(captures: tuple[str, ...]) -> None:
    whole = full(*captures)
    code, out, err = run("analyze", "--format", "csv", *captures)
    assert (code, err) == (0, "")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert tuple(rows[0].keys()) == FINDING_CSV_FIELDS
    assert len(rows) == len(whole["findings"])
    for row, f in zip(rows, whole["findings"], strict=True):
        o, i = f["outbound"], f["inbound"]
        assert row["kind"] == f["kind"] and row["trace_id"] == (f["trace_id"] or "")
        assert row["source"] == f["source"] and row["target"] == f["target"]
        assert row["headers"] == ", ".join(f["headers"])
        assert row["expected"] == "\n".join(f"{k}: {v}" for k, v in f["expected"].items())
        assert row["found"] == "\n".join(f"{k}: {v}" for k, v in f["found"].items())
        assert row["outbound_frame"] == str(o["frame"])
        assert row["outbound_request"] == f"{o['method'] or '?'} {o['path'] or '<unknown path>'}"
        assert row["inbound_frame"] == ("" if i is None else str(i["frame"]))


def test_analyze_csv_cells_cannot_run_as_formulas(tmp_path: Path) -> None:
    from tests.test_output_safety import RAW, hostile_capture

    cap = hostile_capture(tmp_path / "frontend.pcap")
    code, out, _ = run("analyze", "--format", "csv", str(cap))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))[1:]
    assert rows, "the hostile capture gives findings"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
            assert not any(ch in cell for ch in RAW), cell
    assert any(cell.startswith("'=HYPERLINK") for row in rows for cell in row)  # the target, defused
    code, out, _ = run("analyze", "--format", "jsonl", str(cap))
    assert code == 0 and not any(ch in out for ch in RAW)
    assert next(json.loads(x)["record"] for x in out.splitlines()) == "finding"


# -- messages and export ------------------------------------------------------------------


def _jsonl(*args: str) -> list[dict[str, Any]]:
    code, out, err = run("messages", "--format", "jsonl", *args)
    assert (code, err) == (0, "")
    return [json.loads(x) for x in out.splitlines()]


def test_messages_trace_keeps_the_messages_carrying_it_and_their_responses() -> None:
    changed = next(f for f in full(*PODS)["findings"] if f["kind"] == "changed")
    tid = changed["found"]["x-b3-traceid"]
    every = _jsonl(*PODS)
    carrying = [m for m in every if any(t["trace_id"] == tid for t in m["trace"])]
    assert {m["capture"] for m in carrying} == set(PODS)  # across captures
    answers = []
    for req in carrying:
        c = req["connection"]
        later = [m for m in every if m["kind"] == "response" and m["capture"] == req["capture"]
                 and (m["connection"]["dst"], m["connection"]["dport"]) == (c["src"], c["sport"])
                 and m["stream"] == req["stream"] and m["frame"] > req["frame"]]
        answers.append(later[0])
    order = {(m["capture"], m["frame"]): n for n, m in enumerate(every)}
    want = sorted(carrying + answers, key=lambda m: order[(m["capture"], m["frame"])])
    assert _jsonl("--trace", tid, *PODS) == want
    assert _jsonl("--trace", tid[16:], *PODS) == want


def test_messages_table_says_how_many_matched() -> None:
    tid = full(*PODS)["findings"][0]["trace_id"]
    every = _jsonl(*PODS)
    code, out, _ = run("messages", "--trace", tid, PODS[0])
    assert code == 0
    total = sum(1 for m in every if m["capture"] == PODS[0])
    shown = len(_jsonl("--trace", tid, PODS[0]))
    code, info_out, _ = run("info", "--format", "json", PODS[0])
    frames = json.loads(info_out)["frames"]
    assert out.splitlines()[-1] == (f"{PODS[0]}: {shown} of {total} messages in {frames} frames "
                                    f"match --trace {tid}")


def test_export_trace_writes_only_that_trace() -> None:
    whole = full(*PODS)
    tid = next(t["trace_id"] for t in whole["traces"] if t["broken"])
    code, out, err = run("export", "--to", "zipkin", "--trace", tid, *PODS)
    assert (code, err) == (0, "")
    spans = json.loads(out)
    want = next(t for t in whole["traces"] if t["trace_id"] == tid)
    assert {s["traceId"] for s in spans} == {tid}
    assert len(spans) == len(want["spans"])


def test_export_with_nothing_to_export_says_so() -> None:
    code, out, err = run("export", "--to", "zipkin", "--trace", "1" * 32, *PODS)
    whole = full(*PODS)
    assert (code, out) == (0, "[]\n")
    assert err == (f"tracewire: warning: nothing matches --trace {'1' * 32} ({len(whole['traces'])} "
                   f"traces, {len(whole['findings'])} findings in all)\n")


def test_messages_trace_on_a_pipelined_connection_keeps_the_answer_in_its_place() -> None:
    cap = "captures/edge/http-pipelined.pcap"
    every = _jsonl(cap)
    requests = [m for m in every if m["kind"] == "request"]
    responses = [m for m in every if m["kind"] == "response"]
    assert len(requests) == len(responses) == 3
    for n, req in enumerate(requests):
        tid = next(t["trace_id"] for t in req["trace"] if t["trace_id"])
        assert _jsonl("--trace", tid, cap) == [req, responses[n]]
        rid = next(t["raw"] for t in req["trace"] if t["format"] == "x-request-id")
        assert _jsonl("--trace", rid, cap) == [req, responses[n]]


def test_the_message_filter_remembers_a_bounded_number_of_unanswered_requests() -> None:
    from analyzer.records import Endpoints, Message
    from analyzer.report.select import MessageFilter

    keep = MessageFilter(TraceQuery.parse(TID), max_open=100)
    wanted = ctx("x-b3-traceid", TID)
    for port in range(1, 1001):  # requests never answered, on 1,000 connections
        ep = Endpoints(src="10.0.0.1", sport=port, dst="10.0.0.2", dport=80, connection=port)
        m = Message(capture="c", frame=port, first_frame=port, ts_ns=port, protocol="http/1.1",
                    kind="request", endpoints=ep, stream=None, method=b"GET", path=b"/", authority=b"a",
                    status=None, headers=(), trace=wanted if port % 2 else (), anomalies=())
        assert keep(m) is bool(port % 2)
    assert len(keep._open) == 100
    for pending in keep._open.values():
        assert len(pending) <= keep.MAX_PER_KEY
