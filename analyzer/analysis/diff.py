"""What changed between two analyses: per hop (fixed, regressed, new, gone, ...), which
tracing headers appeared or disappeared, which formats switched; and whole-capture lines.

A hop is (source service, target service, protocol, method, path template). Ports and
addresses differ between captures and are not part of it; `/reviews/0` and `/reviews/17`
are one hop (`/reviews/{n}`). Source and target are named as analysis.naming names them,
so one pod keeps one name across captures (not the external Host one capture happened to
show). A target whose authority is unknown (an HPACK entry older than the capture) is matched
by the name other evidence gave it (the same hop as a capture that shows the authority), else
by its ClusterIP, else by protocol, method and path; the hop says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from analyzer.analysis.model import KINDS, Outcome, Result
from analyzer.analysis.naming import reply_address, target_of, unknown_target

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}")

CHANGES = ("regressed", "broken", "new", "gone", "improved", "fixed", "unchanged")
WORSE = frozenset(("regressed", "broken"))


def path_template(path: str | None) -> str:
    """`/reviews/17?x=1` -> `/reviews/{n}`: numeric, UUID and hex segments become placeholders."""
    if path is None:
        return "<unknown path>"
    segments = path.split("?", 1)[0].split("/")
    out = []
    for seg in segments:
        if seg.isdigit():
            out.append("{n}")
        elif _UUID.fullmatch(seg):
            out.append("{uuid}")
        elif _HEX.fullmatch(seg):
            out.append("{hex}")
        else:
            out.append(seg)
    return "/".join(out)


@dataclass(slots=True)
class Side:
    calls: int = 0
    propagated: int = 0
    broken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    headers: set[str] = field(default_factory=set)
    formats: set[str] = field(default_factory=set)
    with_request_id: int = 0

    @property
    def broken_calls(self) -> int:
        return sum(self.broken.values())


@dataclass(slots=True)
class HopDiff:
    """One hop compared: ``change`` (fixed, broken, improved, regressed, new, gone or
    unchanged), each side's counts, and the tracing headers and formats that appeared
    or went."""

    source: str
    target: str
    protocol: str
    method: str
    path: str
    change: str
    before: Side | None
    after: Side | None
    headers_added: list[str]
    headers_removed: list[str]
    formats_before: list[str]
    formats_after: list[str]
    matched_by: str  # "authority" or, for an unknown authority, what was used


@dataclass(slots=True)
class Totals:
    captures: list[str]
    traces: int
    broken_traces: int
    findings: dict[str, int]
    formats: list[str]
    anomalies: int


@dataclass(slots=True)
class DiffResult:
    """Two analyses compared hop by hop; ``differs`` and ``regressed`` decide the exit
    status of ``tracewire diff``."""

    before: Totals
    after: Totals
    hops: list[HopDiff]

    @property
    def differs(self) -> bool:
        return any(
            h.change != "unchanged" or h.headers_added or h.headers_removed
            or h.formats_before != h.formats_after
            for h in self.hops
        )

    @property
    def regressed(self) -> bool:
        return any(h.change in WORSE or (h.change == "new" and h.after and h.after.broken_calls)
                   for h in self.hops)


Key = tuple[str, str, str, str, str]


def hop_key(o: Outcome) -> tuple[Key, str]:
    """The hop an outbound call belongs to across captures and recordings (source, target,
    protocol, method, path template: no frame, id or connection number), and how its target
    was matched. ``diff`` and ``check``'s expectation files key hops by it."""
    c = o.call
    target, source = target_of(c)
    if source == "authority":
        how = "authority"
    elif source != "unknown":
        how = f"{target} inferred from {source} (authority unknown)"
    else:
        # Unknown: match by the service's ClusterIP when the replies showed it, else by
        # protocol and method/path alone (a connection number means nothing in another capture).
        address = reply_address(c)
        target = unknown_target(address, None)
        how = ("ClusterIP, method and path (authority unknown)" if address else
               "protocol, method and path (authority unknown)")
    return (o.source, target, c.protocol, c.method or "?", path_template(c.path)), how


def _sides(r: Result) -> tuple[dict[Key, Side], dict[Key, str]]:
    sides: dict[Key, Side] = {}
    how: dict[Key, str] = {}
    for o in r.outcomes:
        key, h = hop_key(o)
        how.setdefault(key, h)
        s = sides.setdefault(key, Side())
        s.calls += 1
        if o.attributed and o.carried and not o.findings:
            s.propagated += 1
        for f in o.findings:
            s.broken[f.kind] += 1
        s.headers.update(o.call.header_names)
        s.formats.update(t.format for t in o.call.trace)
        if o.call.request_id:
            s.with_request_id += 1
    return sides, how


def _change(b: Side | None, a: Side | None) -> str:
    if b is None:
        return "new"
    if a is None:
        return "gone"
    bb, ab = b.broken_calls, a.broken_calls
    if bb and not ab:
        return "fixed"
    if not bb and ab:
        return "broken"
    if bb and ab:
        before, after = bb / max(b.calls, 1), ab / max(a.calls, 1)
        if after < before:
            return "improved"
        if after > before:
            return "regressed"
    return "unchanged"


def _totals(r: Result) -> Totals:
    findings = dict.fromkeys(KINDS, 0)
    for f in r.findings:
        findings[f.kind] += 1
    formats = sorted({t.format for c in r.calls for t in c.trace})
    return Totals(r.captures, len(r.traces), sum(1 for t in r.traces if t.broken), findings,
                  formats, len(r.anomalies))


def _how(before: str | None, after: str | None) -> str:
    """How a hop was matched: an inference on either side is said, even when the other side
    showed the authority (a cold channel before, a warm one after)."""
    for how in (before, after):
        if how and how != "authority":
            return how
    return before or after or "authority"


def diff(before: Result, after: Result) -> DiffResult:
    bs, bhow = _sides(before)
    as_, ahow = _sides(after)
    hops = []
    for key in sorted(set(bs) | set(as_)):
        b, a = bs.get(key), as_.get(key)
        hb = b.headers if b else set()
        ha = a.headers if a else set()
        source, target, protocol, method, path = key
        hops.append(HopDiff(
            source, target, protocol, method, path, _change(b, a), b, a,
            sorted(ha - hb) if b and a else [], sorted(hb - ha) if b and a else [],
            sorted(b.formats) if b else [], sorted(a.formats) if a else [],
            _how(bhow.get(key), ahow.get(key)),
        ))
    rank = {c: n for n, c in enumerate(CHANGES)}
    hops.sort(key=lambda h: (rank[h.change], h.source, h.target, h.path))
    return DiffResult(_totals(before), _totals(after), hops)
