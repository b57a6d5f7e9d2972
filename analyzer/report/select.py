"""What ``--trace``, ``--service`` and ``--kind`` select, for every command and report.

A person looks for a trace by whatever id they hold: the trace id Jaeger shows (32 hex
digits, or 16 for a 64-bit id, sometimes with its leading zeros dropped), an x-request-id
from a log line, or a whole B3 single / W3C traceparent / Jaeger uber-trace-id value. One
``TraceQuery`` reads them all, and the same matching decides for ``messages``, ``analyze``,
``export`` (and any other report): a command never has its own idea of "this trace".
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from analyzer.analysis.model import KINDS, Call, Finding, Hop, Outcome, Result, Trace
from analyzer.analysis.naming import target_of
from analyzer.records import Message
from analyzer.tracing import TraceContext, request_id_key

_HEX = re.compile(r"[0-9a-f]{1,32}")
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}.*")
_B3_SINGLE = re.compile(r"([0-9a-f]{16}|[0-9a-f]{32})-[0-9a-f]{16}(-.*)?")
_UBER = re.compile(r"([0-9a-f]{1,32}):[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}")
MAX_QUERY = 512  # longer than any id; a pasted header line is not an id


@dataclass(frozen=True, slots=True)
class TraceQuery:
    """One id to look for. ``trace_id`` is 32 lower-case hex digits; ``low64`` the 16 of a
    64-bit id, which matches any trace id ending in it (Jaeger shows a B3 64-bit id that
    way while the capture may carry it padded to 128 bits); ``request_key`` compares with
    x-request-id values as the analysis does (Envoy's sampling character masked)."""

    text: str
    trace_id: str | None
    low64: str | None
    request_key: str

    @classmethod
    def parse(cls, text: str) -> TraceQuery:
        """Read an id as given on the command line; ValueError when it cannot be one."""
        s = text.strip().lower()
        if not s or len(s) > MAX_QUERY or not s.isprintable():
            raise ValueError("not a trace id, x-request-id, B3 or W3C value")
        hexid: str | None = None
        for pattern in (_TRACEPARENT, _B3_SINGLE, _UBER, _HEX):
            m = pattern.fullmatch(s)
            if m is not None:
                hexid = m.group(1) if pattern is not _HEX else s
                break
        trace_id = low64 = None
        if hexid is not None:
            if len(hexid) > 16:  # a 128-bit id, perhaps shown without its leading zeros
                trace_id = hexid.rjust(32, "0")
            else:
                low64 = hexid.rjust(16, "0")
        # Every form is also tried as an x-request-id: a request id can be any string.
        return cls(text, trace_id, low64, request_id_key(s))

    def matches_id(self, trace_id: str | None) -> bool:
        if trace_id is None:
            return False
        if self.trace_id is not None:
            return trace_id == self.trace_id
        return self.low64 is not None and trace_id[-16:] == self.low64

    def matches_request_id(self, request_id: str | None) -> bool:
        return request_id is not None and request_id_key(request_id) == self.request_key

    def matches_contexts(self, contexts: Iterable[TraceContext]) -> bool:
        """Whether a message or call carrying these contexts belongs to the trace asked for."""
        for c in contexts:
            if self.matches_id(c.trace_id):
                return True
            if c.format == "x-request-id" and self.matches_request_id(c.request_id):
                return True
        return False

    def matches_call(self, c: Call) -> bool:
        return self.matches_contexts(c.trace)

    def matches_trace(self, t: Trace) -> bool:
        """A trace of the analysis (a trace id, or tracewire's own id for one that only
        carries an x-request-id) is the one asked for when any of its calls carries the id:
        so a hop that lost or changed the id still shows, as part of the trace it broke."""
        return self.matches_id(t.trace_id) or any(self.matches_call(s.call) for s in t.spans)

    def matches_finding(self, f: Finding) -> bool:
        return (self.matches_id(f.trace_id) or self.matches_request_id(f.x_request_id)
                or self.matches_call(f.outbound)
                or (f.inbound is not None and self.matches_call(f.inbound)))


def service_matches(name: str, label: str | None) -> bool:
    """``name`` names ``label`` (a pod's service or a hop's target such as
    ``reviews.default.svc.cluster.local:9080``): the whole label, its host, or the host's
    first DNS label, compared without case."""
    if label is None:
        return False
    want = name.strip().lower()
    label = label.lower()
    if want == label:
        return True
    host = label
    if host.startswith("["):  # [v6]:port
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if want == host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return want == host.split(".", 1)[0]
    return False


@dataclass(frozen=True, slots=True)
class Selection:
    """What the user asked to see; empty means everything."""

    trace: TraceQuery | None = None
    services: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.trace is None and not self.services and not self.kinds

    def describe(self) -> str:
        """The selection as the options that made it, for "nothing matches" lines."""
        parts = []
        if self.trace is not None:
            parts.append(f"--trace {self.trace.text}")
        parts += [f"--service {s}" for s in self.services]
        parts += [f"--kind {k}" for k in self.kinds]
        return " ".join(parts)

    def _service(self, *labels: str | None) -> bool:
        return not self.services or any(service_matches(n, x) for n in self.services for x in labels)

    def finding(self, f: Finding) -> bool:
        return ((self.trace is None or self.trace.matches_finding(f))
                and self._service(f.source, f.target)
                and (not self.kinds or f.kind in self.kinds))


def _where(c: Call) -> tuple[str, int, int, int | None]:
    """The capture, frame, connection and stream of a call: one call's, whichever read."""
    return c.capture, c.frame, c.connection, c.stream


def select(r: Result, sel: Selection) -> Result:
    """The part of an analysis the selection asks for, as a Result every report can show.

    A trace is kept whole (every hop of it, across captures); hops are counted again over
    the calls kept, so "3 of 40 calls" stays true of what is shown; notes stay when they
    point at a call kept or at nothing in particular.
    """
    if sel.empty:
        return r
    q = sel.trace
    traces = r.traces
    if q is not None:
        traces = _joined(traces, [n for n, t in enumerate(traces) if q.matches_trace(t)])
    if sel.kinds:  # a trace with such a finding, on a hop of the service asked for
        traces = [t for t in traces if any(f.kind in sel.kinds and sel._service(f.source, f.target)
                                           for s in t.spans for f in s.findings)]
    elif sel.services:
        traces = [t for t in traces if any(sel._service(s.service, s.peer) for s in t.spans)]
    # Calls by what names one (the analysis reads calls back from disk: the span's call
    # and the outcome's are equal, not one object).
    in_traces = {_where(s.call) for t in traces for s in t.spans}

    def keep_outcome(o: Outcome) -> bool:
        if q is not None and _where(o.call) not in in_traces and not q.matches_call(o.call):
            return False
        return sel._service(o.source, o.target)

    outcomes = [o for o in r.outcomes if keep_outcome(o)]
    if sel.kinds:
        # Whole hops with such a finding: "2 of 15 calls" is what the reader needs, not "2 of 2".
        hit = {(o.source, o.target, o.call.protocol) for o in outcomes
               if any(f.kind in sel.kinds for f in o.findings)}
        outcomes = [o for o in outcomes if (o.source, o.target, o.call.protocol) in hit]
    findings = [f for f in r.findings if sel.finding(f)
                and (q is None or _where(f.outbound) in in_traces or q.matches_finding(f))]
    kept: set[tuple[str, int]] = {(o.call.capture, o.call.frame) for o in outcomes}
    kept |= {(o.inbound.capture, o.inbound.frame) for o in outcomes if o.inbound is not None}
    kept |= {(s.call.capture, s.call.frame) for t in traces for s in t.spans}
    per_capture = {"not-in-capture", "unknown-headers"}  # about a capture, not about a call
    notes = [n for n in r.notes if (n.capture, n.frame) in kept
             or (n.kind in per_capture and q is None and not sel.kinds)]
    limited = [o for o in outcomes if o.verdict == "limited"]
    return dataclasses.replace(
        r,
        hops=_hops(outcomes, r.hops) if r.outcomes else [h for h in r.hops if _hop_kept(h, sel)],
        traces=traces,
        findings=findings,
        notes=notes,
        outcomes=outcomes,
        not_in_capture=sum(1 for o in outcomes if o.verdict == "not-in-capture"),
        limited=len(limited),
        unknown_headers=sum(len(o.call.unknown) for o in limited),
    )


def _joined(traces: Sequence[Trace], start: list[int]) -> list[Trace]:
    """``start`` and every trace joined to them across captures: where a pod's inbound
    request is another pod's outbound call, its span's parent is that call's span, even when
    the trace id changed or was lost on the way (the break the user is looking at). One pass
    over the spans and a walk over the links: linear in the spans."""
    owner: dict[str, int] = {}
    for n, t in enumerate(traces):
        for sp in t.spans:
            owner.setdefault(sp.span_id, n)
    links: dict[int, set[int]] = {}
    for n, t in enumerate(traces):
        for sp in t.spans:
            m = owner.get(sp.parent_id) if sp.parent_id is not None else None
            if m is not None and m != n:
                links.setdefault(n, set()).add(m)
                links.setdefault(m, set()).add(n)
    seen = set(start)
    todo = list(start)
    while todo:
        for m in links.get(todo.pop(), ()):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return [t for n, t in enumerate(traces) if n in seen]


def _hop_kept(h: Hop, sel: Selection) -> bool:
    return sel._service(h.source, h.target) and (not sel.kinds or any(h.broken[k] for k in sel.kinds))


def _hops(outcomes: Sequence[Outcome], before: Sequence[Hop]) -> list[Hop]:
    """Hops counted over ``outcomes`` the way the analysis counts them, in its order."""
    hops: dict[tuple[str, str, str], Hop] = {}
    for o in outcomes:
        hop = hops.setdefault((o.source, o.target, o.call.protocol), Hop(o.source, o.target, o.call.protocol))
        source = target_of(o.call)[1]
        if source != "authority":
            hop.target_source = source
        hop.calls += 1
        if o.verdict == "judged" and o.carried and not o.findings:
            hop.propagated += 1
        for f in o.findings:
            hop.broken[f.kind] += 1
            if f.kind in ("missing", "partial"):
                hop.headers_lost.update(f.headers)
    named = {(b.source, b.target, b.protocol): b for b in before}
    for key, h in hops.items():
        if key in named:
            h.method, h.path = named[key].method, named[key].path
    return sorted(hops.values(), key=lambda h: (-h.broken_total, h.source, h.target))


class MessageFilter:
    """``messages --trace``: the messages carrying the id, and the response to each.

    A response carries no tracing headers of its own, so it is kept when it answers a kept
    request: on the same client endpoint (which survives Istio's NAT split of the
    outbound connection, where the connection numbers differ) and, for HTTP/2, the same
    stream, in the order of the requests (HTTP/1 pipelining). Only requests still unanswered
    are remembered, in a bounded table: a capture of requests never answered cannot make it
    grow without end.
    """

    MAX_PER_KEY = 64  # an HTTP/1 pipeline deeper than this is not real traffic

    def __init__(self, query: TraceQuery, max_open: int = 65_536) -> None:
        self.query = query
        self.max_open = max_open
        # key -> for each unanswered request on it, in order, whether it was kept
        self._open: OrderedDict[tuple[str, str, int, int | None], deque[bool]] = OrderedDict()

    def __call__(self, m: Message) -> bool:
        ep = m.endpoints
        if m.kind == "request":
            key = (m.capture, ep.src, ep.sport, m.stream)
            wanted = self.query.matches_contexts(m.trace)
            pending = self._open.get(key)
            if pending is None:
                # every request is remembered, kept or not: on a pipelined connection the
                # answers come in the order of all the requests
                pending = self._open[key] = deque(maxlen=self.MAX_PER_KEY)
                while len(self._open) > self.max_open:
                    self._open.popitem(last=False)
            pending.append(wanted)
            return wanted
        key = (m.capture, ep.dst, ep.dport, m.stream)
        pending = self._open.get(key)
        if pending is None:
            return self.query.matches_contexts(m.trace)
        if m.status is not None and 100 <= m.status < 200:  # an interim answer; more follows
            return pending[0] if pending else False
        wanted = pending.popleft() if pending else False
        if not pending:
            del self._open[key]
        return wanted or self.query.matches_contexts(m.trace)


__all__ = ["KINDS", "MessageFilter", "Selection", "TraceQuery", "select", "service_matches"]
