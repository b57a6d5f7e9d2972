"""The recorded pod captures (captures/record_pods.py: network namespaces with Istio's
iptables rules, emulated sidecars, mTLS between pods, HTTP/1.1 and gRPC): analyze finds
every injected break with the right kind, target, headers and frames, and nothing on the
correct calls; the two pods' captures join into end-to-end traces."""

from __future__ import annotations

import json
from typing import Any

import pytest

from analyzer.analysis import Result, analyze
from tests.fixtures import CAPTURES

EXPECTED = json.loads((CAPTURES / "pods" / "EXPECTED.json").read_text())
CAPS = {c["file"]: c for c in EXPECTED["captures"]}


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    return {name: analyze([CAPTURES / name]) for name in CAPS}


@pytest.mark.parametrize("name", sorted(CAPS))
def test_findings_exactly_as_injected(name: str, results: dict[str, Result]) -> None:
    exp = CAPS[name]
    r = results[name]
    got = sorted((f.kind, f.inbound.frame if f.inbound else None, f.outbound.frame, f.attribution,
                  tuple(sorted(f.headers))) for f in r.findings)
    want = sorted((f["kind"], f["inbound_frame"], f["outbound_frame"], f["by"],
                   tuple(sorted(f["headers"]))) for f in exp["findings"])
    assert got == want
    # targets: the authority, or (warm gRPC channel) unknown and named by its ClusterIP
    for f in r.findings:
        e = next(x for x in exp["findings"] if x["outbound_frame"] == f.outbound.frame)
        assert f.target in (e["target"], None)
        if f.target is None:
            assert f.outbound.nat_reply_from is not None
            assert exp["services"][f.outbound.nat_reply_from] == e["target"]


@pytest.mark.parametrize("name", sorted(CAPS))
def test_correct_calls_give_nothing(name: str, results: dict[str, Result]) -> None:
    r = results[name]
    broken = {f.outbound.frame for f in r.findings}
    correct = {c["outbound_frame"] for c in CAPS[name]["correct_calls"]}
    assert correct and not (broken & correct)
    outcomes = {o.call.frame: o for o in r.outcomes}
    for c in CAPS[name]["correct_calls"]:
        o = outcomes[c["outbound_frame"]]
        assert o.attributed and not o.findings


@pytest.mark.parametrize("name", sorted(CAPS))
def test_notes_for_format_switches(name: str, results: dict[str, Result]) -> None:
    want = sorted(n["outbound_frame"] for n in CAPS[name].get("notes", []) if n["kind"] == "format-switch")
    got = sorted(n.frame for n in results[name].notes if n.kind == "format-switch")
    assert got == want


@pytest.mark.parametrize("name", sorted(CAPS))
def test_pod_and_legs(name: str, results: dict[str, Result]) -> None:
    pod: dict[str, Any] = CAPS[name]["pod"]
    (p,) = results[name].pods
    assert (p.address, p.app_ports, p.sidecar) == (pod["ip"], pod["app_ports"], True)
    assert p.legs["inbound"] > 0 and p.legs["outbound"] > 0
    assert p.legs["noise"] > 0  # kubelet and Prometheus, left out
    assert p.legs["mesh"] > 0 and p.encrypted_peers  # mTLS between sidecars: counted, not decoded


def test_two_pods_join_into_end_to_end_traces() -> None:
    r = analyze([CAPTURES / "pods" / "productpage.pcap", CAPTURES / "pods" / "reviews.pcap"])
    spans = {s.span_id: s for t in r.traces for s in t.spans}
    joined = [s for s in spans.values() if s.kind == "server" and s.parent_id in spans
              and spans[s.parent_id].call.capture != s.call.capture]
    assert joined, "no call of productpage was linked to the request reviews received"
    for s in joined:
        parent = spans[s.parent_id]  # type: ignore[index]
        assert parent.kind == "client" and parent.call.request_key == s.call.request_key
        assert parent.call.path == s.call.path
    # findings of each pod are still found when analysed together
    alone = sum(len(analyze([CAPTURES / n]).findings) for n in CAPS)
    assert len(r.findings) == alone
