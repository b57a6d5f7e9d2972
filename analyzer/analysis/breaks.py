"""Attribution of each outbound call to the inbound request being served, and the verdict:
were the tracing headers carried on?

Strategy: attribution tries the strongest evidence first (the x-request-id Envoy keeps for
the whole request, compared with its trace-reason character masked; then the trace id in
any format), and only then time: the outbound call falls inside an inbound request's
request-to-response window. Each finding says which was used and how sure it is. The
verdict compares what the inbound request carried with what the outbound call carries;
a change of format that keeps the trace id is a note, not a break.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from analyzer.analysis.model import Call, Finding, Note
from analyzer.tracing import TraceContext

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


@dataclass(slots=True)
class Attribution:
    inbound: Call | None
    method: str  # "x-request-id", "trace-id", "time-window", "none"
    confidence: str  # "certain", "likely", "ambiguous"
    candidates: list[Call]


def _inside(o: Call, i: Call) -> bool:
    return i.ts_ns <= o.ts_ns and (i.response_ts is None or o.ts_ns <= i.response_ts)


def _best(o: Call, same: list[Call]) -> Call:
    inside = [i for i in same if _inside(o, i)]
    pool = inside or [i for i in same if i.ts_ns <= o.ts_ns] or same
    return max(pool, key=lambda i: i.ts_ns)


class InboundIndex:
    """The inbound requests of one service, indexed for attribution: by masked x-request-id,
    by trace id, and by time (start-sorted, so a window lookup is a bisect, not a scan)."""

    def __init__(self, inbound: list[Call]) -> None:
        self.by_key: dict[str, list[Call]] = {}
        self.by_trace: dict[str, list[Call]] = {}
        for i in inbound:
            if (k := i.request_key) is not None:
                self.by_key.setdefault(k, []).append(i)
            if (t := i.trace_id) is not None:
                self.by_trace.setdefault(t, []).append(i)
        self.by_start = sorted(inbound, key=lambda i: i.ts_ns)
        self.starts = [i.ts_ns for i in self.by_start]
        # the longest window, to bound how far back a window can have started
        self.longest = max(((i.response_ts or i.ts_ns) - i.ts_ns for i in inbound), default=0)
        self.open_ended = [i for i in inbound if i.response_ts is None]

    def containing(self, t: int) -> list[Call]:
        """Inbound requests whose request-to-response window contains time ``t``."""
        hi = bisect.bisect_right(self.starts, t)
        lo = bisect.bisect_left(self.starts, t - self.longest)
        out = [i for i in self.by_start[lo:hi] if i.response_ts is not None and t <= i.response_ts]
        out += [i for i in self.open_ended if i.ts_ns <= t]
        return out


def attribute(o: Call, inbound: list[Call] | InboundIndex) -> Attribution:
    """Which inbound request (of the same service) was being served when ``o`` was made."""
    index = inbound if isinstance(inbound, InboundIndex) else InboundIndex(inbound)
    key = o.request_key
    if key:
        same = [i for i in index.by_key.get(key, ()) if i is not o]
        if same:
            return Attribution(_best(o, same), "x-request-id", "certain", [])
    tid = o.trace_id
    if tid:
        same = [i for i in index.by_trace.get(tid, ()) if i is not o]
        if same:
            return Attribution(_best(o, same), "trace-id", "certain", [])
    inside = [i for i in index.containing(o.ts_ns) if i is not o]
    if len(inside) == 1:
        return Attribution(inside[0], "time-window", "likely", [])
    if inside:
        return Attribution(max(inside, key=lambda i: i.ts_ns), "time-window", "ambiguous", inside)
    return Attribution(None, "none", "certain", [])


def _trace_contexts(c: Call) -> list[TraceContext]:
    return [t for t in c.trace if t.trace_id is not None]


def _sampled(c: Call) -> bool | None:
    for t in c.trace:
        if t.sampled is not None:
            return t.sampled
    return None


def _names(ctxs: list[TraceContext]) -> list[str]:
    return [n for t in ctxs for n in t.headers]


# The header that holds the trace id, for multi-header formats.
_TRACE_ID_HEADER = {"b3-multi": "x-b3-traceid", "datadog": "x-datadog-trace-id"}


def _trace_id_headers(ctxs: list[TraceContext]) -> list[str]:
    out = []
    for t in ctxs:
        name = _TRACE_ID_HEADER.get(t.format)
        out.append(name if name in t.headers else t.headers[0])
    return out


def _violating(t: TraceContext) -> list[str]:
    """The headers a context's violations name ("x-b3-spanid: must be ..."), else all."""
    named = [n for n in t.headers if any(v.startswith(n + ":") for v in t.violations)]
    return named or list(t.headers)


def root_verdict(o: Call, source: str, target: str | None) -> list[Finding]:
    """A call made while nothing was being served starts a trace: it can only be malformed,
    for instance a B3 parent span id on what is a root span."""
    findings: list[Finding] = []
    for t in o.trace:
        rules = list(t.violations)
        if t.format == "b3-multi" and "x-b3-parentspanid" in t.headers:
            rules.append("x-b3-parentspanid: a root span (no request was being served) has no parent")
        elif t.format == "b3-single" and t.parent_span_id is not None:
            rules.append("b3: a root span (no request was being served) has no parent span id")
        if rules:
            heads = _violating(t) if t.violations else [
                "x-b3-parentspanid" if t.format == "b3-multi" else t.headers[0]]
            findings.append(Finding(
                kind="malformed", trace_id=o.trace_id, x_request_id=o.request_id, source=source,
                target=target, headers=heads, expected={},
                found={h: o.values[h] for h in heads if h in o.values},
                attribution="none", confidence="certain", inbound=None, outbound=o, rule="; ".join(rules)))
    return findings


def verdict(
    i: Call, o: Call, att: Attribution, source: str, target: str | None
) -> tuple[list[Finding], list[Note]]:
    """Findings for one outbound call ``o`` attributed to inbound ``i``."""
    findings: list[Finding] = []
    notes: list[Note] = []
    if not i.has_context:
        return findings, notes  # nothing to carry on

    def finding(kind: str, headers: list[str], rule: str | None = None) -> Finding:
        return Finding(
            kind=kind,
            trace_id=i.trace_id,
            x_request_id=i.request_id,
            source=source,
            target=target,
            headers=headers,
            expected={h: i.values[h] for h in headers if h in i.values},
            found={h: o.values[h] for h in headers if h in o.values},
            attribution=att.method,
            confidence=att.confidence,
            inbound=i,
            outbound=o,
            rule=rule,
            candidates=[c.frame for c in att.candidates],
        )

    i_ctx, o_ctx = _trace_contexts(i), _trace_contexts(o)
    i_tid, o_tid = i.trace_id, o.trace_id
    i_rid, o_rid = i.request_key, o.request_key
    if not o.has_context:
        lost = [n for n in i.header_names]
        findings.append(finding("missing", lost))
        return findings, notes
    changed: list[str] = []
    if i_tid and o_tid and o_tid != i_tid:
        changed += _trace_id_headers([t for t in o_ctx if t.trace_id != i_tid])
    if i_rid and o_rid and o_rid != i_rid:
        changed.append("x-request-id")
    if changed:
        findings.append(finding("changed", changed))
    dropped: list[str] = []
    if i_rid and not o_rid:
        dropped.append("x-request-id")
    if i_tid and not o_tid:
        dropped += _names(i_ctx)
    elif i_tid and o_tid == i_tid:
        o_formats = {t.format for t in o_ctx}
        for t in i_ctx:
            if t.format in o_formats:
                kept = next(x for x in o_ctx if x.format == t.format)
                # part of a multi-header set dropped (B3 multi, Datadog)
                dropped += [n for n in t.headers if n not in kept.headers]
            elif o_formats:
                notes.append(Note(
                    "format-switch",
                    f"{source} → {target or '?'}: {TRACE_FORMATS_NAMES.get(t.format, t.format)} in, "
                    f"{', '.join(sorted(TRACE_FORMATS_NAMES.get(f, f) for f in o_formats))} out, same trace "
                    f"id {i_tid}: whether the mesh's tracer reads the new format depends on its "
                    "configuration",
                    o.capture, o.frame))
        if _sampled(i) is not None and _sampled(o) is None and not any(
            "sampled" in n or n == "x-b3-flags" for n in dropped
        ):
            dropped.append(next((n for n in i.header_names if n in ("x-b3-sampled", "x-b3-flags")),
                                "sampling decision"))
    if dropped:
        findings.append(finding("partial", list(dict.fromkeys(dropped))))
    for t in o.trace:
        if not t.violations:
            continue
        same_in = next((x for x in i.trace if x.format == t.format and x.raw == t.raw), None)
        if same_in is not None:
            continue  # copied as received: the fault is upstream (a note on the inbound side)
        findings.append(finding("malformed", _violating(t), rule="; ".join(t.violations)))
    return findings, notes
