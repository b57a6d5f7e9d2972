"""analysis/naming's TargetNamer: fed one outbound call at a time, then applied to each call
(as a streaming `analyze` reads calls back from disk), it names every target and writes every
note as `name_targets` does over the whole lists; applying twice changes nothing; and it keeps
nothing per call but the few fields the callee-capture vote reads."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from analyzer.analysis.model import Call, Note
from analyzer.analysis.naming import CaptureCalls, TargetNamer, callees, name_targets
from analyzer.analysis.store import call_of, row_of
from tests.fixtures import CAPTURES, CaptureView, capture_views, readable_captures
from tests.test_analysis import B3, call

SETS = {
    "pods": sorted(str(p) for p in (CAPTURES / "pods").glob("*.pcap")),
    "mesh": sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap")),
    "diff": sorted(str(p) for p in (CAPTURES / "diff").glob("*.pcap")),
    "productpage+reviews": [str(CAPTURES / "pods" / "productpage.pcap"),
                            str(CAPTURES / "pods" / "reviews.pcap")],
}
SINGLE = {f: [str(CAPTURES / f)] for f in readable_captures()}
Named = tuple[str | None, str, str | None]


def _load(paths: list[str]) -> list[CaptureView]:
    return capture_views(paths)


def _join(caps: list[CaptureView]) -> dict[int, Call]:
    """The multi-capture join as analyze makes it: an outbound call is another pod's inbound
    request with the same ids, authority, method and path."""
    by_key: dict[tuple[str, str | None, str | None, str | None], list[Call]] = {}
    for cap in caps:
        for i in cap.inbound:
            ident = i.request_key or i.trace_id
            if ident:
                by_key.setdefault((ident, i.authority, i.method, i.path), []).append(i)
    joined: dict[int, Call] = {}
    for cap in caps:
        for o in cap.outbound:
            ident = o.request_key or o.trace_id
            for i in by_key.get((ident, o.authority, o.method, o.path), []) if ident else []:
                if i.capture != o.capture and id(i) not in joined:
                    joined[id(i)] = o
                    break
    return joined


def _hide(caps: list[CaptureView], how: str) -> None:
    """What the capture may not show: every outbound :authority (HPACK entries older than the
    capture), and with it the ClusterIP the replies came from, or the paths too."""
    for cap in caps:
        for o in cap.outbound:
            if how == "shown":
                continue
            o.authority = None
            if how in ("no authority, no NAT", "ids only"):
                o.nat_reply_from = None
            if how == "ids only":
                o.path = None


def _targets(calls: list[Call]) -> list[Named]:
    return [(o.target, o.target_source, o.target_evidence) for o in calls]


def _streamed(caps: list[CaptureView], joined: dict[int, Call]) -> tuple[list[Note], list[Call]]:
    """Feed each outbound call as the streaming engine will, keep only a copy of it (the call
    as read back from disk, unnamed), decide, and apply to the copies."""
    namer = TargetNamer(callee_vote=len(caps) > 1)
    back: list[Call] = []
    for cap in caps:
        for o in cap.outbound:
            namer.add(o)
            back.append(call_of(row_of(o)))
    notes, table = namer.decide(callees([CaptureCalls(c.path, c.inbound, [], c.inbound_service)
                                         for c in caps], joined))
    assert all(key in table for key in {(o.capture, o.connection) for o in back if not o.authority})
    for o in back:
        assert o.target is None
        namer.apply(o)
    named = _targets(back)
    for o in back:
        namer.apply(o)
    assert _targets(back) == named  # idempotent
    return notes, back


def _compare(paths: list[str], how: str) -> list[Note]:
    """name_targets over the whole lists (today's result) against the namer fed one call at
    a time and applied to copies; returns the notes."""
    ref = _load(paths)
    joined = _join(ref)  # what the captures showed before anything was hidden
    _hide(ref, how)
    fed = _load(paths)  # the same calls again (a deep copy would copy the pods' names too)
    _hide(fed, how)
    # The join's keys are the fed captures' inbound calls; its values stay ref's calls, equal
    # to the fed ones but other objects, as calls read back from disk would be.
    joined_fed = {id(f): joined[id(i)] for c, d in zip(ref, fed, strict=True)
                  for i, f in zip(c.inbound, d.inbound, strict=True) if id(i) in joined}
    want = name_targets([CaptureCalls(c.path, c.inbound, c.outbound, c.inbound_service) for c in ref],
                        joined)
    notes, back = _streamed(fed, joined_fed)
    assert notes == want
    assert _targets(back) == _targets([o for c in ref for o in c.outbound])
    # feeding names nothing: only apply does
    assert all(o.target is None for c in fed for o in c.outbound)
    return want


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_namer_names_each_capture_as_name_targets(name: str) -> None:
    for how in ("shown", "no authority", "no authority, no NAT"):
        _compare(SINGLE[name], how)


@pytest.mark.parametrize("name", sorted(SETS))
@pytest.mark.parametrize("how", ["shown", "no authority", "no authority, no NAT", "ids only"])
def test_namer_names_several_captures_as_name_targets(name: str, how: str) -> None:
    _compare(SETS[name], how)


def test_namer_votes_by_callee_capture_on_calls_read_back() -> None:
    """productpage's calls to reviews, their authority, ClusterIP and path hidden, are named by
    reviews' capture when applied to copies read back: the join's calls are the originals,
    recognised by what they show."""
    notes = _compare(SETS["productpage+reviews"], "ids only")
    assert any("inferred from callee capture" in n.detail and "reviews.pcap" in n.detail
               for n in notes)


def _no_authority(n: int, ids: bool, frame: int = 1) -> list[Call]:
    out = []
    for k in range(n):
        c = call(B3 if ids else {"x-custom": "1"}, ts=100 + k, end=150 + k, frame=frame + k)
        c.authority = None
        out.append(c)
    return out


def test_namer_keeps_nothing_per_call_without_ids() -> None:
    """10,000 calls without :authority or ids on one connection: the namer's memory is what
    it was after 100 (counters, not calls), even when it may vote."""
    calls = _no_authority(10_000, ids=False)
    held = []
    for n in (100, 10_000):
        tracemalloc.start()
        try:
            namer = TargetNamer(callee_vote=True)
            for c in calls[:n]:
                namer.add(c)
            held.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
        assert namer.kept() == 0
    assert held[1] - held[0] < 1024, held
    notes, table = namer.decide(callees([], {}))
    assert table == {("t", 1): ("unknown (connection 1)", "unknown", None)}
    assert notes == []


def test_namer_keeps_only_the_votes_calls() -> None:
    """A call without :authority that carries ids is kept for the callee-capture vote, and
    only when the namer may vote; calls with an authority never are."""
    with_ids = _no_authority(50, ids=True)
    without = _no_authority(50, ids=False, frame=100)
    named = [call(B3, frame=200 + k) for k in range(50)]
    for vote, kept in ((True, 50), (False, 0)):
        namer = TargetNamer(callee_vote=vote)
        for c in with_ids + without + named:
            namer.add(c)
        assert namer.kept() == kept
        notes, table = namer.decide(callees([], {}))
        # one connection: its other calls show reviews:9080
        assert table == {("t", 1): ("reviews:9080", "connection",
                                    "other requests on connection 1 show :authority reviews:9080")}
        assert [(n.kind, n.frame) for n in notes] == [("target-inferred", 1)]
        assert "for 100 call(s) on connection 1" in notes[0].detail


def test_namer_without_vote_refuses_callees_with_ids() -> None:
    """A namer built for one capture kept nothing to vote with: given the callees' ids it
    says so instead of naming less than name_targets would."""
    namer = TargetNamer(callee_vote=False)
    for c in _no_authority(3, ids=True):
        namer.add(c)
    inbound = call(B3)
    inbound.capture = "callee"
    caps = [CaptureCalls("t", [], [], lambda c: "caller"),
            CaptureCalls("callee", [inbound], [], lambda c: "reviews")]
    with pytest.raises(ValueError, match="callee_vote"):
        namer.decide(callees(caps, {}))


def test_apply_leaves_a_call_it_was_not_fed() -> None:
    namer = TargetNamer(callee_vote=False)
    namer.decide(callees([], {}))
    (c,) = _no_authority(1, ids=False)
    namer.apply(c)
    assert (c.target, c.target_source, c.target_evidence) == (None, "authority", None)
    c.authority = "ratings:9080"
    namer.apply(c)
    assert (c.target, c.target_source) == ("ratings:9080", "authority")


def test_sets_are_found() -> None:
    for paths in SETS.values():
        assert len(paths) > 1 and all(Path(p).exists() for p in paths)
