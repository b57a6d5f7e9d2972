"""Attribution of each outbound call to the inbound request being served, and the verdict:
were the tracing headers carried on?

Strategy: attribution uses every id the call carries before it uses time. The candidates
are the inbound requests that share the call's x-request-id (Envoy keeps it for the whole
request; compared with its trace-reason character masked) or, failing that, its trace id
in any format. Several inbound requests can share one x-request-id (parallel calls of one
request reaching the same pod, retries), so the candidates are narrowed by trace id, then
by span lineage (the call's span or parent span is one inbound request's span id: only
when exactly one matches), then by time (the call falls inside the request-to-response
window). Only then, with no id in common, time alone: the call falls inside a window.
The attribution is "certain" only when one candidate is left; otherwise "ambiguous" with
the candidates, and a call is flagged only when it is broken against every candidate.

The verdict compares what the inbound request carried with what the outbound call
carries and gives at most one finding per call, the first of model.PRECEDENCE that
applies. A change of format that keeps the trace id is a note, not a break. A header the
capture cannot show (``hidden``) is never absent: no finding rests on its absence.
"""

from __future__ import annotations

import bisect
import re
from array import array
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Final

from analyzer.analysis.model import PRECEDENCE, Call, Finding, Note
from analyzer.tracing import TraceContext
from analyzer.tracing.w3c import tracestate_dropped, tracestate_members

TRACE_FORMATS_NAMES = {
    "b3-multi": "B3",
    "b3-single": "b3",
    "w3c": "traceparent",
    "jaeger": "uber-trace-id",
    "grpc-trace-bin": "grpc-trace-bin",
    "cloud-trace": "x-cloud-trace-context",
    "datadog": "Datadog",
    "aws-xray": "x-amzn-trace-id",
    "sw8": "sw8",
    "ot-span-context": "x-ot-span-context",
}

# Whether a header (lower-cased name) may be present in a call though the capture does not
# show it (an HPACK entry older than the capture).
Hidden = Callable[[str], bool]


def _never(name: str) -> bool:
    return False


# At most this many inbound requests are kept per x-request-id or trace id.
MAX_SHARING_AN_ID = 64
# At most this many candidates are judged one by one (a bound on work per call: an
# x-request-id shared by thousands of inbound requests must not make the analysis quadratic).
MAX_JUDGED_CANDIDATES = 16


@dataclass(slots=True)
class Attribution:
    inbound: Call | None
    method: str  # "x-request-id", "trace-id", "time-window", "none"
    confidence: str  # "certain", "likely", "ambiguous"
    candidates: list[Call] = field(default_factory=list)  # all left when ambiguous

    # Written out, not generated: see analyzer/records.py (one per outbound call); a new
    # list when ``candidates`` is not given, as the field's default_factory gives.
    def __init__(self, inbound: Call | None, method: str, confidence: str,
                 candidates: list[Call] | None = None) -> None:
        self.inbound = inbound
        self.method = method
        self.confidence = confidence
        self.candidates = [] if candidates is None else candidates


def _inside(o: Call, i: Call) -> bool:
    return i.ts_ns <= o.ts_ns and (i.response_ts is None or o.ts_ns <= i.response_ts)


def _preferred(o: Call, pool: list[Call]) -> Call:
    """The candidate to show first: inside the window and latest to start, else the latest
    to start before the call, else the latest."""
    inside = [i for i in pool if _inside(o, i)]
    before = inside or [i for i in pool if i.ts_ns <= o.ts_ns] or pool
    return max(before, key=lambda i: (i.ts_ns, i.frame))


# A column of integers: 64-bit ones (``array``), or a list once one does not fit (``_put``).
_Col = MutableSequence[int]


def _column() -> _Col:
    return array("q")


def _put(column: _Col, value: int) -> _Col:
    """Append to a column of 64-bit integers; a value beyond them (a timestamp no clock
    gives, from a hostile capture) turns it into a plain list, slower but exact."""
    try:
        column.append(value)
    except OverflowError:
        column = list(column)
        column.append(value)
    return column


def _insertion_sorted(starts: _Col, others: list[_Col], budget: int) -> bool:
    """Sort the columns by start, stably, moving each row back past the later-starting ones
    before it; False (the rows in some order, equal starts still in the order added) once
    ``budget`` moves are spent."""
    moves = 0
    for k in range(1, len(starts)):
        start = starts[k]
        if starts[k - 1] <= start:
            continue
        j = k
        while j > 0 and starts[j - 1] > start:
            j -= 1
        moves += k - j
        if moves > budget:
            return False
        # rows j..k-1 move one place on (slices move them in C)
        starts[j + 1:k + 1] = starts[j:k]
        starts[j] = start
        for column in others:
            value = column[k]
            column[j + 1:k + 1] = column[j:k]
            column[j] = value
    return True


def _reordered(column: _Col, order: list[int]) -> _Col:
    out: _Col = bytearray() if isinstance(column, bytearray) else _column()
    for k in order:
        out = _put(out, column[k])
    return out


# Rows of the time index per block (``InboundIndex.tops``).
_BLOCK: Final = 64
_LATER_THAN_ANY: Final = 1 << 256


class Requests:
    """Where an index's requests are: ``fetch(n)`` gives request ``n``, the same object for
    the same number while one call is attributed. This one: the n-th of a list."""

    def __init__(self, calls: Sequence[Call] = ()) -> None:
        self._calls = calls

    def fetch(self, n: int) -> Call:
        return self._calls[n]


class InboundIndex:
    """The inbound requests of one service, indexed for attribution: by masked x-request-id,
    by trace id, and by time (start-sorted, so a window lookup is a bisect, not a scan).

    It holds numbers, not calls: ``requests.fetch(n)`` gives request ``n`` (the n-th of the
    list it was made from, or a call of a capture's log read back from disk), so what it
    keeps per request is a few integers, and the ids of those that carry some."""

    def __init__(self, inbound: Sequence[Call] = (), requests: Requests | None = None) -> None:
        self.requests = requests if requests is not None else Requests(inbound)
        self.by_key: dict[str, list[int]] = {}
        self.by_trace: dict[str, list[int]] = {}
        self._numbers: _Col = _column()
        self._starts: _Col = _column()
        self._ends: _Col = _column()
        self._open: _Col = bytearray()  # 1: its response is not in the capture
        self.longest = 0
        for n, i in enumerate(inbound):
            self.add(n, i)
        self.seal()

    def add(self, n: int, i: Call) -> None:
        """Index inbound request number ``n`` (``i``: only its fields are kept)."""
        # Retries and parallel calls share an id a handful of times; a capture repeating
        # one id endlessly must not make each lookup long (the first ones are kept).
        if (k := i.request_key) is not None:
            same = self.by_key.setdefault(k, [])
            if len(same) < MAX_SHARING_AN_ID:
                same.append(n)
        for t in {c.trace_id for c in i.trace if c.trace_id is not None}:
            same = self.by_trace.setdefault(t, [])
            if len(same) < MAX_SHARING_AN_ID:
                same.append(n)
        self._numbers = _put(self._numbers, n)
        self._starts = _put(self._starts, i.ts_ns)
        self._ends = _put(self._ends, i.ts_ns if i.response_ts is None else i.response_ts)
        self._open.append(i.response_ts is None)
        # the longest window, to bound how far back a window can have started
        self.longest = max(self.longest, (i.response_ts or i.ts_ns) - i.ts_ns)

    def seal(self) -> None:
        """Done adding: sort by start (requests starting together keep the order added)."""
        starts, ends, numbers, opened = self._starts, self._ends, self._numbers, self._open
        # Requests are added nearly in order of start (the order they were seen): moved into
        # place one by one, in the columns themselves, as long as that stays linear; past it
        # (a capture whose clock jumps back and forth), sorted through a list of positions.
        if not _insertion_sorted(starts, [ends, numbers, opened], budget=8 * len(starts) + 64):
            order = sorted(range(len(starts)), key=starts.__getitem__)
            numbers, starts, ends, opened = (_reordered(numbers, order), _reordered(starts, order),
                                             _reordered(ends, order), _reordered(opened, order))
        self.numbers, self.starts, self.ends, self.opened = numbers, starts, ends, opened
        # The latest end in each block of rows (an open one: later than any), so that a
        # lookup skips a block none of whose windows reaches its time: one long request
        # (which widens ``longest`` for all) then costs a look per block, not per request.
        tops: list[int] = []
        for first in range(0, len(ends), _BLOCK):
            block = list(ends[first:first + _BLOCK])
            top = max(block)
            if any(opened[first:first + _BLOCK]):
                top = _LATER_THAN_ANY
            tops.append(top)
        self.tops = tops
        # A request whose response is not in the capture is open to the capture's end.
        at = [k for k in range(len(opened)) if opened[k]]
        self.open_numbers = [numbers[k] for k in at]
        self.open_starts = [starts[k] for k in at]
        self._numbers, self._starts, self._ends, self._open = _column(), _column(), _column(), bytearray()

    def with_key(self, key: str) -> list[Call]:
        requests = self.requests
        return [requests.fetch(n) for n in self.by_key.get(key, ())]

    def with_trace(self, trace_id: str) -> list[Call]:
        requests = self.requests
        return [requests.fetch(n) for n in self.by_trace.get(trace_id, ())]

    def containing(self, t: int, limit: int = MAX_JUDGED_CANDIDATES + 1) -> list[Call]:
        """Inbound requests whose request-to-response window contains time ``t``: the
        latest-starting ``limit`` of them (more than a few already means "ambiguous")."""
        starts, ends, opened, numbers = self.starts, self.ends, self.opened, self.numbers
        requests = self.requests
        hi = bisect.bisect_right(starts, t)
        lo = bisect.bisect_left(starts, t - self.longest)
        out: list[Call] = []
        tops = self.tops
        n = hi
        while n > lo:
            # A block at a time: skipped when no window in it reaches ``t``; else its ends as
            # a list (one slice of the column, a copy in C), each then read natively (the
            # compiled build reads a column's items one call each).
            block = (n - 1) // _BLOCK
            first = max(lo, block * _BLOCK)
            if tops[block] < t:
                n = first
                continue
            window: list[int] = list(ends[first:n])
            for k in range(len(window) - 1, -1, -1):
                if t <= window[k] or opened[first + k]:
                    out.append(requests.fetch(numbers[first + k]))
                    if len(out) >= limit:
                        return out
            n = first
        # open-ended requests that started before the bound (those after it were seen above)
        bound = min(starts[lo], t + 1) if lo < len(starts) else t + 1
        for n in range(bisect.bisect_left(self.open_starts, bound) - 1, -1, -1):
            out.append(requests.fetch(self.open_numbers[n]))
            if len(out) >= limit:
                break
        return out


def span_ids(c: Call) -> set[str]:
    return {t.span_id for t in c.trace if t.span_id is not None}


def _lineage(o: Call) -> set[str]:
    """Span ids the call may name as its parent: the span it carries (forwarded verbatim,
    it is the inbound request's span) and its parent span (the app made a child span)."""
    out = set()
    for t in o.trace:
        if t.span_id is not None:
            out.add(t.span_id)
        if t.parent_span_id is not None:
            out.add(t.parent_span_id)
    return out


def _narrow(o: Call, pool: list[Call], same_key: set[int] | None = None) -> tuple[list[Call], str] | None:
    """Narrow candidates by x-request-id, trace id, then span lineage; a step that would
    leave none is skipped, and span lineage is used only when it singles one out (a call
    whose app made its own span names no inbound span). Returns what is left and the id
    that decided (the last step that narrowed, else the first that matched), or None when
    no candidate shares an id with the call. ``same_key``: the ids (``id()``) of the
    requests known to share the call's x-request-id, when the caller has them."""
    key = o.request_key
    tids = {t.trace_id for t in o.trace if t.trace_id is not None}
    parents = _lineage(o)
    matched: str | None = None
    decided: str | None = None
    if key:
        same = [i for i in pool if id(i) in same_key] if same_key is not None else [
            i for i in pool if i.request_key == key]
        if same:
            # A candidate carrying exactly the call's trace id stays one even when its
            # x-request-id differs: the call must never be "changed" against it.
            kept = {id(i) for i in same}
            same += [i for i in pool if id(i) not in kept and tids & {t.trace_id for t in i.trace}]
            matched = "x-request-id"
            decided = matched if len(same) < len(pool) else None
            pool = same
    if tids:
        same = [i for i in pool if tids & {t.trace_id for t in i.trace}]
        if same:
            matched = matched or "trace-id"
            if len(same) < len(pool):
                decided = "trace-id"
            pool = same
    if parents and len(pool) > 1:
        same = [i for i in pool if span_ids(i) & parents]
        if len(same) == 1:
            matched = matched or "span-lineage"
            decided = "span-lineage"
            pool = same
    if matched is None:
        return None
    return pool, decided or matched


def attribute(o: Call, inbound: list[Call] | InboundIndex) -> Attribution:
    """Which inbound request (of the same service) was being served when ``o`` was made.

    The candidates are the requests whose window contains the call, narrowed by its ids
    (``_narrow``). When none of them shares an id with the call, a request outside any
    window that does (work done after the response, or clocks apart) is preferred to a
    stranger inside one; only then is time alone used.
    """
    index = inbound if isinstance(inbound, InboundIndex) else InboundIndex(inbound)
    # The requests sharing an id with the call; those whose window holds it come first
    # (the others, in no window, are what is left to go by).
    by_id: dict[int, Call] = {}
    if (key := o.request_key) is not None:
        by_id.update((id(i), i) for i in index.with_key(key) if i is not o)
    same_key = set(by_id)
    for tid in sorted({t.trace_id for t in o.trace if t.trace_id is not None}):
        by_id.update((id(i), i) for i in index.with_trace(tid) if i is not o)
    inside = [i for i in by_id.values() if _inside(o, i)]
    narrowed = _narrow(o, inside or list(by_id.values()), same_key) if by_id else None
    if narrowed is not None:
        pool, method = narrowed
        best = _preferred(o, pool)
        if len(pool) == 1:
            return Attribution(best, method, "certain")
        return Attribution(best, method, "ambiguous", sorted(pool, key=lambda i: i.frame))
    window = [i for i in index.containing(o.ts_ns) if i is not o]
    if len(window) == 1:
        return Attribution(window[0], "time-window", "likely")
    if window:
        return Attribution(_preferred(o, window), "time-window", "ambiguous",
                           sorted(window, key=lambda i: i.frame))
    return Attribution(None, "none", "certain")


# -- verdicts ---------------------------------------------------------------------------------

def _trace_contexts(c: Call) -> list[TraceContext]:
    return [t for t in c.trace if t.trace_id is not None]


def _sampled(c: Call) -> bool | None:
    for t in c.trace:
        if t.sampled is not None:
            return t.sampled
    return None


# The header that holds the trace id, for multi-header formats.
_TRACE_ID_HEADER = {"b3-multi": "x-b3-traceid", "datadog": "x-datadog-trace-id"}
# Where a sampling decision travels.
_SAMPLING_HEADERS = ("x-b3-sampled", "x-b3-flags", "b3", "traceparent", "uber-trace-id",
                     "x-datadog-sampling-priority", "x-cloud-trace-context", "grpc-trace-bin")


def _trace_id_header(t: TraceContext) -> str:
    name = _TRACE_ID_HEADER.get(t.format)
    return name if name is not None and name in t.headers else t.headers[0]


def _violating(t: TraceContext, violations: tuple[str, ...] | list[str]) -> list[str]:
    """The headers the violations name ("x-b3-spanid: must be ..."), else all."""
    named = [n for n in t.headers if any(v.startswith(n + ":") for v in violations)]
    return list(dict.fromkeys(named or t.headers))


# Violations that rest on a header's absence, and the header they say is absent.
_ABSENT = (re.compile(r"^([a-z0-9-]+): missing, it is required with"),
           re.compile(r"sent without ([a-z0-9-]+)$"))


def _absent_header(violation: str) -> str | None:
    for rx in _ABSENT:
        m = rx.search(violation)
        if m is not None:
            return m.group(1)
    return None


def _real_violations(t: TraceContext, hidden: Hidden) -> list[str]:
    """A context's violations, without those a header hidden from the capture may answer."""
    return [v for v in t.violations if (a := _absent_header(v)) is None or not hidden(a)]


def _value(c: Call, name: str) -> str | None:
    """A tracing header's value as shown (guessed-and-corroborated headers are only in
    the context's raw value)."""
    v = c.values.get(name)
    if v is not None:
        return v
    for t in c.trace:
        if name in t.headers:
            return t.raw if len(t.headers) == 1 else None
    return None


def _shown(c: Call, names: list[str]) -> dict[str, str]:
    return {n: v for n in names if (v := _value(c, n)) is not None}


def _names(c: Call) -> list[str]:
    """Every tracing header name a call carries, known or corroborated, wire order."""
    out = list(c.header_names)
    for t in c.trace:
        out += [n for n in t.headers if n not in out]
    return out


def root_verdict(o: Call, source: str, target: str | None, hidden: Hidden = _never) -> list[Finding]:
    """A call made while nothing was being served starts a trace: it can only be malformed,
    for instance a B3 parent span id on what is a root span. One finding at most."""
    rules: list[str] = []
    heads: list[str] = []
    for t in o.trace:
        if t.format == "baggage":
            continue
        real = _real_violations(t, hidden)
        if real:
            rules += real
            heads += _violating(t, real)
        if t.format == "b3-multi" and "x-b3-parentspanid" in t.headers:
            rules.append("x-b3-parentspanid: a root span (no request was being served) has no parent")
            heads.append("x-b3-parentspanid")
        elif t.format == "b3-single" and t.parent_span_id is not None:
            rules.append("b3: a root span (no request was being served) has no parent span id")
            heads.append("b3")
    if not rules:
        return []
    heads = list(dict.fromkeys(heads))
    return [Finding(
        kind="malformed", trace_id=o.trace_id, x_request_id=o.request_id, source=source,
        target=target, headers=heads, expected={}, found=_shown(o, heads),
        attribution="none", confidence="certain", inbound=None, outbound=o, rule="; ".join(rules))]


@dataclass(slots=True)
class _Cause:
    kind: str
    headers: list[str]
    expected: dict[str, str]
    found: dict[str, str]
    rule: str | None = None


def _causes(i: Call, o: Call, hidden: Hidden) -> tuple[list[_Cause], bool]:
    """Every rule the call breaks against inbound ``i``, and whether a verdict rested on
    a header the capture cannot show (then a finding was not made)."""
    causes: list[_Cause] = []
    limited = False
    i_ctx, o_ctx = _trace_contexts(i), _trace_contexts(o)
    i_tid = i.trace_id
    i_rid, o_rid = i.request_key, o.request_key

    # changed: another trace, or another x-request-id
    changed: list[str] = []
    expected: dict[str, str] = {}
    found: dict[str, str] = {}
    if i_tid is not None:
        ref_by_format = {t.format: t for t in i_ctx}
        for t in o_ctx:
            ref = ref_by_format.get(t.format) or i_ctx[0]
            if t.trace_id != ref.trace_id:
                name = _trace_id_header(t)
                changed.append(name)
                expected.update(_shown(i, [_trace_id_header(ref)]))
                found.update(_shown(o, [name]))
    if i_rid and o_rid and o_rid != i_rid:
        changed.append("x-request-id")
        expected.update(_shown(i, ["x-request-id"]))
        found.update(_shown(o, ["x-request-id"]))
    if changed:
        causes.append(_Cause("changed", list(dict.fromkeys(changed)), expected, found))

    # malformed: present but invalid (unless copied as received: the fault is upstream)
    for t in o.trace:
        if t.format == "baggage" or (real := _real_violations(t, hidden)) == []:
            continue
        if any(x.format == t.format and x.raw == t.raw for x in i.trace):
            continue
        heads = _violating(t, real)
        causes.append(_Cause("malformed", heads, _shown(i, heads), _shown(o, heads), "; ".join(real)))

    # missing: none carried
    i_names = [n for n in _names(i) if not n.startswith("uberctx-") and n != "baggage"]
    o_carries = o.has_context or any(t.format not in ("baggage",) for t in o.trace)
    if not o_carries:
        lost = [n for n in i_names if not hidden(n)]
        limited = len(lost) < len(i_names)
        if lost and not limited:
            causes.append(_Cause("missing", lost, _shown(i, lost), {}))
        elif lost:
            causes.append(_Cause("partial", lost, _shown(i, lost), {}))
        return causes, limited

    # partial: some kept, some dropped
    dropped: list[str] = []
    rules: list[str] = []
    if i_rid and not o_rid:
        dropped.append("x-request-id")
    o_tids = {t.trace_id for t in o_ctx}
    if i_tid and not o_ctx:
        dropped += [n for t in i_ctx for n in t.headers]
        # tracestate travels with traceparent (W3C Trace Context §3.5): lost with it
        has_state = [any(t.format == "tracestate" for t in c.trace) for c in (i, o)]
        if has_state == [True, False]:
            dropped.append("tracestate")
    elif i_tid and i_tid in o_tids:
        o_formats = {t.format: t for t in o_ctx}
        for t in i_ctx:
            kept = o_formats.get(t.format)
            if kept is not None:
                # part of a multi-header set dropped (B3 multi, Datadog)
                dropped += [n for n in t.headers if n not in kept.headers]
        if _sampled(i) is not None and _sampled(o) is None:
            dropped.append(next((n for n in i.header_names if n in ("x-b3-sampled", "x-b3-flags")),
                                "sampling decision"))
        ts_in = next((t for t in i.trace if t.format == "tracestate"), None)
        w3c_in = next((t for t in i_ctx if t.format == "w3c"), None)
        w3c_out = o_formats.get("w3c")
        # W3C Trace Context §3.5: a tracestate received with a valid traceparent must be sent
        # on with the trace (an invalid one may be discarded, §3.3.1.1).
        if (ts_in is not None and not ts_in.violations and w3c_in is not None and w3c_out is not None
                and w3c_out.trace_id == w3c_in.trace_id):
            ts_out = next((t for t in o.trace if t.format == "tracestate"), None)
            members_in = tracestate_members(ts_in)
            if ts_out is None and members_in:
                dropped.append("tracestate")
                rules.append("tracestate: received with the trace, it must be sent on "
                             "(W3C Trace Context §3.5)")
            elif ts_out is not None and not ts_out.violations:
                lost = tracestate_dropped(members_in, tracestate_members(ts_out))
                if lost:
                    dropped.append("tracestate")
                    rules.append(f"tracestate: other vendors' members must be kept (W3C Trace Context "
                                 f"§3.5); dropped: {', '.join(lost)}")
    # A header present but invalid is malformed (above), never also dropped.
    present = {n for t in o.trace if t.violations for n in t.headers}
    certain = [n for n in dict.fromkeys(dropped) if n not in present and not _could_hide(n, hidden)]
    limited = limited or len(certain) < len(set(dropped))
    if certain:
        exp = _shown(i, certain)
        fnd = _shown(o, certain)
        if "tracestate" in certain:
            ts_i = next(t for t in i.trace if t.format == "tracestate")
            exp["tracestate"] = ts_i.raw
            ts_o = next((t for t in o.trace if t.format == "tracestate"), None)
            if ts_o is not None:
                fnd["tracestate"] = ts_o.raw
        causes.append(_Cause("partial", certain, exp, fnd, "; ".join(rules) or None))
    return causes, limited


def _could_hide(name: str, hidden: Hidden) -> bool:
    if name == "sampling decision":
        return any(hidden(n) for n in _SAMPLING_HEADERS)
    return hidden(name)


def _one(causes: list[_Cause]) -> _Cause | None:
    """The cause reported for one call (model.PRECEDENCE); the others go in its rule."""
    if not causes:
        return None
    order = {k: n for n, k in enumerate(PRECEDENCE)}
    ranked = sorted(causes, key=lambda c: order[c.kind])
    top = ranked[0]
    others = [f"{c.kind} {', '.join(c.headers)}" for c in ranked[1:] if c.kind != top.kind]
    if others:
        top.rule = "; ".join(filter(None, [top.rule, "also " + "; ".join(others)]))
    for c in ranked[1:]:
        if c.kind == top.kind:  # e.g. two malformed formats: one finding naming both
            top.headers += [h for h in c.headers if h not in top.headers]
            top.expected.update(c.expected)
            top.found.update(c.found)
            top.rule = "; ".join(filter(None, [top.rule, c.rule]))
    return top


def _notes(i: Call, o: Call, source: str, target: str | None, hidden: Hidden) -> list[Note]:
    notes: list[Note] = []
    i_tid = i.trace_id
    o_ctx = _trace_contexts(o)
    if i_tid is None or i_tid not in {t.trace_id for t in o_ctx}:
        return notes
    o_formats = {t.format for t in o_ctx}
    for t in _trace_contexts(i):
        if t.format not in o_formats:
            notes.append(Note(
                "format-switch",
                f"{source} → {target or '?'}: {TRACE_FORMATS_NAMES.get(t.format, t.format)} in, "
                f"{', '.join(sorted(TRACE_FORMATS_NAMES.get(f, f) for f in o_formats))} out, same trace "
                f"id {i_tid}: whether the mesh's tracer reads the new format depends on its "
                "configuration",
                o.capture, o.frame))
    # W3C Baggage (§3.2.1.1 says a participant SHOULD forward it) is application data, not
    # trace context: dropping it does not split a trace, so it is a note, never a finding.
    b_in = next((t for t in i.trace if t.format == "baggage"), None)
    if b_in is not None:
        b_out = next((t for t in o.trace if t.format == "baggage"), None)
        lost = [n for n in b_in.headers if (b_out is None or n not in b_out.headers) and not hidden(n)]
        if lost:
            notes.append(Note("baggage-dropped", f"{source} → {target or '?'}: {', '.join(lost)} received "
                              "but not sent on (W3C Baggage: application data, not a trace break)",
                              o.capture, o.frame))
    return notes


def verdict(
    i: Call, o: Call, att: Attribution, source: str, target: str | None, hidden: Hidden = _never,
) -> tuple[list[Finding], list[Note]]:
    """At most one finding for outbound call ``o`` attributed to inbound ``i``."""
    findings, notes, _ = judge(i, o, att, source, target, hidden)
    return findings, notes


def judge(
    i: Call, o: Call, att: Attribution, source: str, target: str | None, hidden: Hidden = _never,
) -> tuple[list[Finding], list[Note], bool]:
    """``verdict``, and whether it was limited by headers the capture cannot show."""
    if not i.has_context:
        return [], [], False  # nothing to carry on
    causes, limited = _causes(i, o, hidden)
    top = _one(causes)
    notes = _notes(i, o, source, target, hidden)
    if top is None:
        return [], notes, limited
    f = Finding(
        kind=top.kind, trace_id=i.trace_id, x_request_id=i.request_id, source=source, target=target,
        headers=top.headers, expected=top.expected, found=top.found, attribution=att.method,
        confidence=att.confidence, inbound=i, outbound=o, rule=top.rule,
        candidates=[c.frame for c in att.candidates])
    return [f], notes, limited


def judge_candidates(
    o: Call, att: Attribution, source: str, target: str | None, hidden: Hidden = _never,
) -> tuple[list[Finding], list[Note], bool]:
    """The verdict when several inbound requests remain: a call is flagged only when it is
    broken against every candidate (it may be serving the one it carries on correctly);
    the finding shown is the one against the preferred candidate."""
    assert att.inbound is not None
    first = judge(att.inbound, o, att, source, target, hidden)
    if not first[0] or len(att.candidates) <= 1:
        return first
    for c in att.candidates[:MAX_JUDGED_CANDIDATES]:
        if c is att.inbound:
            continue
        fs, _, _ = judge(c, o, att, source, target, hidden)
        if not fs:
            return [], first[1], first[2]
    return first
