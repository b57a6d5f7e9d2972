"""Precision and recall of `analyze` on every recording that has a truth file.

The truths are written by the recording scripts from tshark's reading of the files, never by
tracewire: ``captures/mesh/EXPECTED.json`` (record_mesh.py: an OpenTelemetry mesh, four pods),
``captures/pods/EXPECTED.json`` (record_pods.py: a B3 bookinfo mesh, two pods) and the
``expected_breaks`` of the single-pod recordings in MANIFEST.json (record_http1.py). A finding
counts as found only when it matches a truth finding exactly: capture, outbound frame, kind,
headers, and attribution (the id that attributed it, its confidence, and the inbound frame when
certain or the candidate frames when ambiguous), wherever the truth states them. Multi-pod
recordings are scored with each capture alone and with all captures together.

``pytest -s tests/test_truth.py`` prints the per-recording table; every assertion message
carries it too, with each false and missed finding.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import Finding, Result, analyze
from tests.fixtures import CAPTURES, manifest

MESH = json.loads((CAPTURES / "mesh" / "EXPECTED.json").read_text())
PODS = json.loads((CAPTURES / "pods" / "EXPECTED.json").read_text())
KIND_OF = json.loads((CAPTURES / "diff" / "EXPECTED.json").read_text())["finding_kinds"]
# record_http1's break kinds that name the header they are about; the others (missing,
# partial) are about the headers the inbound carried and the outbound lacks
HEADERS_OF_KIND = {"b3-traceid-changed": ["x-b3-traceid"], "b3-traceid-malformed": ["x-b3-traceid"]}
TRACING = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "traceparent",
    "tracestate",
    "b3",
)


@dataclass(frozen=True)
class Want:
    """One expected finding; None means the truth does not say (not compared)."""

    capture: str  # path relative to captures/
    outbound: int
    kind: str
    headers: tuple[str, ...] | None
    by: str | None
    confidence: str | None
    inbound: int | None  # compared when the attribution is certain
    candidates: tuple[int, ...] | None  # compared when it is ambiguous

    def describe(self) -> str:
        where = (
            f"candidates {list(self.candidates or ())}"
            if self.confidence == "ambiguous"
            else f"inbound {self.inbound}"
        )
        return (
            f"{self.capture} frame {self.outbound}: {self.kind} {list(self.headers or [])} "
            f"({where}, by {self.by}, {self.confidence})"
        )


def rel(capture: str) -> str:
    return str(Path(capture).resolve().relative_to(CAPTURES))


def describe(f: Finding) -> str:
    where = (
        f"candidates {sorted(f.candidates)}"
        if f.confidence == "ambiguous"
        else f"inbound {f.inbound.frame if f.inbound else None}"
    )
    return (
        f"{rel(f.outbound.capture)} frame {f.outbound.frame}: {f.kind} {sorted(f.headers)} "
        f"({where}, by {f.attribution}, {f.confidence})"
    )


def matches(w: Want, f: Finding) -> bool:
    if (rel(f.outbound.capture), f.outbound.frame, f.kind) != (w.capture, w.outbound, w.kind):
        return False
    if w.headers is not None and tuple(sorted(f.headers)) != w.headers:
        return False
    if w.by is not None and f.attribution != w.by:
        return False
    if w.confidence is not None and f.confidence != w.confidence:
        return False
    if w.confidence == "ambiguous":
        return w.candidates is None or tuple(sorted(f.candidates)) == w.candidates
    return w.inbound is None or (f.inbound is not None and f.inbound.frame == w.inbound)


# --------------------------------------------------------------------------- the truths


def mesh_wants(capture: dict[str, Any]) -> list[Want]:
    return [
        Want(
            capture["file"],
            f["outbound_frame"],
            f["kind"],
            tuple(sorted(f["headers"])),
            f["by"],
            f["confidence"],
            f["inbound_frame"],
            tuple(f["candidates"]),
        )
        for f in capture["findings"]
    ]


def pods_wants(capture: dict[str, Any]) -> list[Want]:
    # Every inbound request of these recordings has its own x-request-id, so an id-attributed
    # call has one candidate: certain. A call attributed by its time alone is ambiguous when
    # windows overlap at its frame; with one window the truth does not say (certain or likely).
    out = []
    for f in capture["findings"]:
        confidence = (
            "certain" if f["by"] != "time-window" else "ambiguous" if f["time_window_ambiguous"] else None
        )
        out.append(
            Want(
                capture["file"],
                f["outbound_frame"],
                f["kind"],
                tuple(sorted(f["headers"])),
                f["by"],
                confidence,
                f["inbound_frame"],
                None,
            )
        )
    return out


def manifest_wants(entry: dict[str, Any]) -> list[Want]:
    """record_http1's expected_breaks: kind and frames from the truth; the headers from what
    tshark shows on the two requests (the manifest's headers)."""
    shown = {m["frame"]: m.get("headers", {}) for m in entry["http_messages"] if m["kind"] == "request"}
    rids = [h.get("x-request-id") for h in shown.values() if h.get("x-request-id")]
    out = []
    for b in entry["expected_breaks"]:
        inb, outb = shown[b["inbound_frame"]], shown[b["outbound_frame"]]
        headers = HEADERS_OF_KIND.get(b["kind"]) or [h for h in TRACING if h in inb and h not in outb]
        unique_rid = b["by"] == "x-request-id" and rids.count(inb.get("x-request-id")) == 1
        out.append(
            Want(
                entry["file"],
                b["outbound_frame"],
                KIND_OF[b["kind"]],
                tuple(sorted(headers)),
                b["by"],
                "certain" if unique_rid else None,
                b["inbound_frame"],
                None,
            )
        )
    return out


MESH_CAPS = {c["file"]: c for c in MESH["captures"]}
PODS_CAPS = {c["file"]: c for c in PODS["captures"]}
RECORDINGS: dict[str, tuple[list[str], list[Want]]] = {
    "mesh (4 pods together)": (list(MESH_CAPS), [w for c in MESH_CAPS.values() for w in mesh_wants(c)]),
    **{name: ([name], mesh_wants(c)) for name, c in MESH_CAPS.items()},
    "pods (2 pods together)": (list(PODS_CAPS), [w for c in PODS_CAPS.values() for w in pods_wants(c)]),
    **{name: ([name], pods_wants(c)) for name, c in PODS_CAPS.items()},
    **{e["file"]: ([e["file"]], manifest_wants(e)) for e in manifest() if "expected_breaks" in e},
}


@functools.cache
def result(files: tuple[str, ...]) -> Result:
    return analyze([CAPTURES / f for f in files])


# --------------------------------------------------------------------------- scoring


@dataclass
class Score:
    name: str
    want: int
    got: int
    found: int
    false: list[str]
    missed: list[str]

    @property
    def precision(self) -> float:
        return self.found / self.got if self.got else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.want if self.want else 1.0

    def row(self) -> str:
        return (
            f"{self.name:<34} {self.want:>5} {self.got:>5} {self.found:>5} "
            f"{self.precision:>9.0%} {self.recall:>7.0%}"
        )


HEAD = f"{'recording':<34} {'truth':>5} {'got':>5} {'exact':>5} {'precision':>9} {'recall':>7}"


def score(name: str) -> Score:
    files, wants = RECORDINGS[name]
    findings = list(result(tuple(files)).findings)
    free = list(findings)
    missed = []
    for w in wants:
        hit = next((f for f in free if matches(w, f)), None)
        if hit is None:
            near = [
                describe(f)
                for f in free
                if rel(f.outbound.capture) == w.capture and f.outbound.frame == w.outbound
            ]
            missed.append(w.describe() + (f"; analyze says {near}" if near else "; analyze says nothing"))
        else:
            free.remove(hit)
    return Score(
        name, len(wants), len(findings), len(wants) - len(missed), [describe(f) for f in free], missed
    )


def report(scores: list[Score]) -> str:
    lines = [HEAD, *(s.row() for s in scores)]
    for s in scores:
        lines += [f"  FALSE  {x}" for x in s.false] + [f"  MISSED {x}" for x in s.missed]
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_precision_and_recall_are_100_percent(name: str) -> None:
    s = score(name)
    assert (s.precision, s.recall) == (1.0, 1.0), "\n" + report([s])


def test_truths_are_not_empty() -> None:
    """Scoring against an empty truth proves nothing: every kind is injected somewhere."""
    wants = [w for _, ws in RECORDINGS.values() for w in ws]
    assert {w.kind for w in wants} == {"missing", "partial", "changed", "malformed"}
    assert any(w.confidence == "ambiguous" for w in wants)
    # the mesh needs every step of attribution: x-request-id alone, then the trace id (two
    # requests sharing an x-request-id), then span lineage (two calls of one request at payments)
    bys = {c["by"] for cap in MESH["captures"] for c in cap["findings"] + cap["correct_calls"]}
    assert {"x-request-id", "trace-id", "span-lineage"} <= bys
    assert all(c["correct_calls"] for c in MESH["captures"] if c["file"] != "mesh/ledger.pcap")
    assert EDGE_CAPS, "a call whose serving request began before the capture"


def test_mesh_truth_points_at_the_messages_it_names() -> None:
    """EXPECTED.json and the captures are one recording: at every frame the truth names, the
    manifest (tshark's reading of the file) has a request with that x-scenario marker."""
    shown: dict[tuple[str, int], list[str]] = {}
    for e in manifest():
        for m in e.get("http_messages", []):
            if m["kind"] == "request":
                shown.setdefault((e["file"], m["frame"]), []).append(
                    m.get("headers", {}).get("x-scenario", "")
                )
    bad = []
    for cap in MESH["captures"]:
        for c in cap["findings"] + cap["correct_calls"] + cap["outside_capture"]:
            if c["marker"] not in shown.get((cap["file"], c["outbound_frame"]), []):
                bad.append(f"{cap['file']} frame {c['outbound_frame']}: {c['marker']}")
        for i in cap["inbound_requests"]:
            if i["marker"] not in shown.get((cap["file"], i["frame"]), []):
                bad.append(f"{cap['file']} inbound frame {i['frame']}: {i['marker']}")
    assert not bad


def test_table() -> None:
    """The per-recording table (shown with ``pytest -s``); fails when any row is below 100 %."""
    scores = [score(name) for name in RECORDINGS]
    table = report(scores)
    print("\n" + table)
    assert all((s.precision, s.recall) == (1.0, 1.0) for s in scores), "\n" + table


# --------------------------------------------------------------------------- what must give nothing


EDGE_CAPS = [name for name, c in MESH_CAPS.items() if c["outside_capture"]]


@pytest.mark.parametrize("name", EDGE_CAPS)
def test_no_finding_on_calls_whose_serving_request_is_outside_the_capture(name: str) -> None:
    """Captures start and stop mid-request: a call whose serving request began before the
    capture is neither a finding nor a root call, alone or with the other pods."""
    edge = {c["outbound_frame"] for c in MESH_CAPS[name]["outside_capture"]}
    for r in (result((name,)), result(tuple(MESH_CAPS))):
        assert not [
            describe(f) for f in r.findings if rel(f.outbound.capture) == name and f.outbound.frame in edge
        ]
        assert not [
            n for n in r.notes if n.kind == "root-call" and rel(n.capture) == name and n.frame in edge
        ]


def test_calls_outside_the_capture_are_counted_apart() -> None:
    """Each call whose serving request began before the capture is counted in the summary as
    not judged, and nothing else is: the calls still unanswered when the capture stops were
    judged (their request is in the capture)."""
    for name, cap in MESH_CAPS.items():
        assert result((name,)).not_in_capture == len(cap["outside_capture"]), name
    together = sum(len(c["outside_capture"]) for c in MESH_CAPS.values())
    assert result(tuple(MESH_CAPS)).not_in_capture == together


@pytest.mark.parametrize("name", list(MESH_CAPS))
def test_correct_calls_give_nothing(name: str) -> None:
    """Retries (503, then attempt 2), unsampled requests (flags 00), parallel calls of one
    request, two requests sharing an x-request-id, calls unanswered when the capture stops."""
    # two h2 requests can share a frame: at a frame, no more findings than the truth has there
    correct = {c["outbound_frame"] for c in MESH_CAPS[name]["correct_calls"]}
    wants = mesh_wants(MESH_CAPS[name])
    findings = result((name,)).findings
    wrong = [
        describe(f)
        for f in findings
        if f.outbound.frame in correct
        and sum(g.outbound.frame == f.outbound.frame for g in findings)
        > sum(w.outbound == f.outbound.frame for w in wants)
    ]
    assert not wrong
    # and each was seen and judged: made while a request the capture shows was being served
    outcomes = result((name,)).outcomes
    assert correct <= {o.call.frame for o in outcomes}
    assert not [o.call.frame for o in outcomes if o.call.frame in correct and not o.attributed]


def unknown_header_frames() -> dict[str, set[int]]:
    """Outbound requests with header fields tshark cannot name (HPACK entries older than the
    capture), per capture."""
    out: dict[str, set[int]] = {}
    for e in manifest():
        for m in e.get("http_messages", []):
            if m["kind"] == "request" and m.get("unknown_headers"):
                out.setdefault(e["file"], set()).add(m["frame"])
    return out


def test_no_finding_comes_from_unknown_headers() -> None:
    """On a warm gRPC channel most header fields are unknown: the only findings on such calls
    are the ones the truth lists (a visible header with another trace id), none from a header
    the capture cannot show."""
    unknown = unknown_header_frames()
    assert unknown.get("mesh/orders.pcap"), "the mesh recording has calls with unknown header fields"
    truth = {(w.capture, w.outbound) for _, ws in RECORDINGS.values() for w in ws}
    bad = []
    for files, _ in RECORDINGS.values():
        for f in result(tuple(files)).findings:
            key = (rel(f.outbound.capture), f.outbound.frame)
            if key[1] in unknown.get(key[0], set()) and key not in truth:
                bad.append(describe(f))
    assert not bad


# --------------------------------------------------------------------------- evidence shown


def test_expected_and_found_values_are_the_captured_ones() -> None:
    """A finding shows, for the headers it names, what the inbound request carried and what the
    outbound one did (nothing when it was dropped), as tshark reads them."""
    r = result(tuple(MESH_CAPS))
    bad = []
    for cap in MESH_CAPS.values():
        for want in cap["findings"]:
            f = next(
                (
                    f
                    for f in r.findings
                    if rel(f.outbound.capture) == cap["file"]
                    and f.outbound.frame == want["outbound_frame"]
                    and f.kind == want["kind"]
                ),
                None,
            )
            if f is None:
                continue  # scored as missed above
            got: tuple[dict[str, str | None], ...] = (
                {h: f.expected.get(h) for h in want["headers"]},
                {h: f.found.get(h) for h in want["headers"]},
            )
            exp: tuple[dict[str, str | None], ...] = (
                {h: want["expected"].get(h) for h in want["headers"]},
                {h: want["found"].get(h) for h in want["headers"]},
            )
            if want["confidence"] == "ambiguous":  # which candidate it was, a reader cannot tell
                got, exp = got[1:], exp[1:]
            if got != exp:
                bad.append(f"{cap['file']} frame {want['outbound_frame']}: {got} != {exp}")
    assert not bad, "\n".join(bad)


def test_targets_of_the_findings() -> None:
    """The target is the service called (the authority, or for the warm gRPC channel whose
    :authority is unknown, at least its ClusterIP)."""
    r = result(tuple(MESH_CAPS))
    services = MESH["captures"][0]["services"]
    for cap in MESH_CAPS.values():
        for want in cap["findings"]:
            for f in r.findings:
                if rel(f.outbound.capture) == cap["file"] and f.outbound.frame == want["outbound_frame"]:
                    named = f.target == want["target"] or (
                        f.outbound.nat_reply_from is not None
                        and services.get(f.outbound.nat_reply_from) == want["target"]
                    )
                    assert named, f"{describe(f)}: target {f.target!r}, want {want['target']}"
