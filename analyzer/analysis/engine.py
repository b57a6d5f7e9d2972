"""The analysis of one or more captures: legs, attribution, findings, hops and traces."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from analyzer.analysis.breaks import Attribution, InboundIndex, attribute, judge_candidates, root_verdict
from analyzer.analysis.evidence import (
    HiddenHeaders,
    Observer,
    begun_unseen,
    corroborate,
    distinct,
    serving_until,
)
from analyzer.analysis.legs import Options, Roles, classify, inbound_host, outbound_host, pair
from analyzer.analysis.model import KINDS, Call, Finding, Hop, Note, Outcome, Pod, Result, Span, Trace
from analyzer.analysis.naming import CaptureCalls, name_targets, target_of
from analyzer.analysis.naming import describe_target as describe_target
from analyzer.analysis.parallel import read_captures
from analyzer.pipeline import CaptureSummary, ConnectionSummary, read_messages


def span_id(call: Call) -> str:
    """A stable span id for a call seen in a capture (the capture shows no span of its own
    for the app's side of the call)."""
    return hashlib.sha1(f"{call.capture}\0{call.frame}".encode()).hexdigest()[:16]


def synthetic_trace_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:32]


def _kept(conn: ConnectionSummary) -> bool:
    """The connections the analysis looks at again, once read: TLS ones (a pod's encrypted
    peers, ``_Capture.pods``) and those that may hide a request being served (evidence).
    Only these are kept, so memory follows the connections open at once, not every one the
    capture ever showed (100,000 half-open connections, issue 9)."""
    return conn.protocol == "tls" or begun_unseen(conn)


# What reading one capture gives: everything later stages need of it, and nothing that
# depends on another capture (so it can be read in a process of its own, ``parallel``).
_State = tuple[CaptureSummary, Observer, list[Call], Roles]


def _read_state(path: str, opts: Options) -> _State:
    summary = CaptureSummary(path)
    observer = Observer()
    calls = pair(observer.wrap(read_messages(path, summary, keep=_kept)), observer.attach)
    observer.apply(calls)
    return summary, observer, calls, classify(calls, opts, path)


def _read_portable(path: str, opts: Options) -> _State:
    """``_read_state`` in a worker process: the guesses its observer spilled to a file of
    that process travel as plain data."""
    state = _read_state(path, opts)
    state[1].guesses = list(state[1].guesses)
    return state


class _Capture:
    def __init__(self, path: str, opts: Options, state: _State | None = None) -> None:
        self.path = path
        self.summary, self.observer, self.calls, self.roles = (
            state if state is not None else _read_state(path, opts))
        self.inbound = [c for c in self.calls if inbound_host(c, self.roles)]
        self.outbound = [c for c in self.calls if outbound_host(c, self.roles)]

    def service_of(self, host: str) -> str:
        return self.roles.services.get(host, host)

    def inbound_service(self, i: Call) -> str:
        return self.service_of(inbound_host(i, self.roles) or "")

    def pods(self) -> list[Pod]:
        roles = self.roles
        out: list[Pod] = []
        hosts = ["pod"] if roles.sidecar else sorted({c.dst for c in self.inbound})
        for host in hosts:
            pod = Pod(
                capture=self.path,
                service=self.service_of(host),
                name_source=roles.names[host].source if host in roles.names else "address",
                pod_name=roles.names[host].pod if host in roles.names else None,
                address=roles.pod_ip if roles.sidecar else host,
                app_ports=roles.app_ports if roles.sidecar else sorted(
                    {c.dport for c in self.inbound if c.dst == host}),
                sidecar=roles.sidecar,
                anomalies=len(self.summary.anomalies),
            )
            legs = {"inbound": 0, "outbound": 0, "noise": 0, "other": 0}
            for c in self.calls:
                if inbound_host(c, roles) == host:
                    legs["inbound"] += 1
                elif outbound_host(c, roles) == host:
                    legs["outbound"] += 1
                elif c.role == "noise":
                    legs["noise"] += 1
                elif roles.sidecar:
                    legs["other"] += 1
            legs["mesh"] = sum(1 for c in self.summary.connections if c.protocol == "tls")
            pod.legs = legs
            for conn in self.summary.connections:
                if conn.protocol == "tls":
                    mine = roles.pod_ip and conn.client.startswith(roles.pod_ip + ":")
                    peer = conn.server if mine else conn.client.rsplit(":", 1)[0]
                    pod.encrypted_peers[peer] = pod.encrypted_peers.get(peer, 0) + 1
            out.append(pod)
        return out


def analyze(paths: Sequence[str | Path], opts: Options | None = None, *, jobs: int = 1) -> Result:
    """The analysis of ``paths`` (one capture per pod); ``jobs`` > 1 reads the captures in
    that many processes at once (``analyze_groups``), with the same result."""
    return analyze_groups([paths], opts, jobs=jobs)[0]


def analyze_groups(groups: Sequence[Sequence[str | Path]], opts: Options | None = None, *,
                   jobs: int = 1) -> list[Result]:
    """One analysis per group of captures (``diff``'s before and after), every capture of
    every group read at once by up to ``jobs`` processes (``parallel.read_captures``): the
    reading is per capture and independent, the joins below are not."""
    opts = opts or Options()
    kept = [distinct([str(p) for p in g]) for g in groups]
    every = [p for paths, _ in kept for p in paths]
    states = read_captures(every, opts, jobs, _read_state, _read_portable)
    caps = [_Capture(p, opts, state) for p, state in zip(every, states, strict=True)]
    out: list[Result] = []
    n = 0
    for paths, warnings in kept:
        out.append(_analyze(caps[n:n + len(paths)], warnings))
        n += len(paths)
    return out


def _analyze(caps: list[_Capture], warnings: list[str]) -> Result:
    # A guessed header name is evidence only when a known header, anywhere, corroborates it.
    corroborate([c for cap in caps for c in cap.calls], [cap.observer for cap in caps])
    not_in_capture = limited = unknown_headers = 0
    findings: list[Finding] = []
    notes: list[Note] = []
    hops: dict[tuple[str, str, str], Hop] = {}
    parent_of: dict[int, Call] = {}  # id(outbound) -> attributed inbound
    outcomes: list[Outcome] = []
    # Multi-capture join: pod A's outbound call is pod B's inbound request when they carry
    # the same ids to the same authority and path (never by clock: pods' clocks differ).
    joined: dict[int, Call] = {}  # id(inbound in B) -> outbound in A
    by_key: dict[tuple[str, str | None, str | None, str | None], list[Call]] = {}
    for cap in caps:
        for i in cap.inbound:
            ident = i.request_key or i.trace_id
            if ident:
                by_key.setdefault((ident, i.authority, i.method, i.path), []).append(i)
    for cap in caps:
        for o in cap.outbound:
            ident = o.request_key or o.trace_id
            if not ident:
                continue
            for i in by_key.get((ident, o.authority, o.method, o.path), []):
                if i.capture != o.capture and id(i) not in joined:
                    joined[id(i)] = o
                    break
    # Targets whose authority the capture does not show are named from other evidence.
    notes += name_targets([CaptureCalls(cap.path, cap.inbound, cap.outbound, cap.inbound_service)
                           for cap in caps], joined)
    for cap in caps:
        roles = cap.roles
        grouped: dict[str, list[Call]] = {}
        for i in cap.inbound:
            grouped.setdefault(inbound_host(i, roles) or "", []).append(i)
        by_host = {h: InboundIndex(calls) for h, calls in grouped.items()}
        no_inbound = InboundIndex([])
        hidden_in = HiddenHeaders(cap.calls, cap.observer.named)
        serving = {h: serving_until(cap.observer, cap.summary, roles, h)
                   for h in {outbound_host(o, roles) or "" for o in cap.outbound}}
        first_seen = {h: min(i.ts_ns for i in calls) for h, calls in grouped.items()}
        edge_calls: list[Call] = []
        limited_calls: list[Call] = []
        for o in cap.outbound:
            host = outbound_host(o, roles) or ""
            source = cap.service_of(host)
            target, target_source = target_of(o)
            hop = hops.setdefault((source, target, o.protocol), Hop(source, target, o.protocol))
            if target_source != "authority":
                hop.target_source = target_source
            hop.calls += 1
            att = attribute(o, by_host.get(host, no_inbound))
            if _before_capture(o, att, serving.get(host), first_seen.get(host)):
                # The request being served may be one the capture does not show: not evidence.
                edge_calls.append(o)
                outcomes.append(Outcome(o, source, target, [], False, False, "not-in-capture"))
                continue
            if att.inbound is None:
                notes.append(Note("root-call", f"{source} → {target}: {o.line()} was made while no "
                                  "request was being served: it starts a trace, not a break",
                                  o.capture, o.frame))
                fs = root_verdict(o, source, target, hidden_in.of(o))
                for f in fs:
                    findings.append(f)
                    hop.broken[f.kind] += 1
                outcomes.append(Outcome(o, source, target, fs, False, False, "root"))
                continue
            parent_of[id(o)] = att.inbound
            fs, ns, short = judge_candidates(o, att, source, target, hidden_in.of(o))
            if short and not fs:
                limited_calls.append(o)
            outcomes.append(Outcome(o, source, target, fs, True, att.inbound.has_context,
                                    "limited" if short and not fs else "judged", att.inbound,
                                    att.method, att.confidence, [c.frame for c in att.candidates]))
            findings += fs
            notes += ns
            if not fs and att.inbound.has_context and not short:
                hop.propagated += 1
            for f in fs:
                hop.broken[f.kind] += 1
                if f.kind in ("missing", "partial"):  # only headers actually lost
                    hop.headers_lost.update(f.headers)
        not_in_capture += len(edge_calls)
        limited += len(limited_calls)
        unknown_headers += sum(len(c.unknown) for c in limited_calls)
        notes += _edge_notes(cap.path, edge_calls, limited_calls)
        for i in cap.inbound:
            for t in i.trace:
                if t.violations and i.src in ("127.0.0.6", "127.0.0.1"):
                    notes.append(Note("inbound-malformed", f"the inbound request to "
                                      f"{cap.service_of(inbound_host(i, roles) or '')} carries "
                                      f"{', '.join(t.headers)} that breaks its spec: "
                                      f"{'; '.join(t.violations)}", i.capture, i.frame))
    traces = _traces(caps, parent_of, joined, findings)
    anomalies = [(cap.path, a) for cap in caps for a in cap.summary.anomalies]
    order = {k: n for n, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (f.outbound.capture, f.outbound.frame, order[f.kind]))
    hop_list = sorted(hops.values(), key=lambda h: (-h.broken_total, h.source, h.target))
    return Result(
        captures=[c.path for c in caps],
        pods=[p for cap in caps for p in cap.pods()],
        hops=hop_list,
        traces=traces,
        findings=findings,
        notes=notes,
        anomalies=anomalies,
        calls=[c for cap in caps for c in cap.calls],
        outcomes=outcomes,
        warnings=warnings,
        not_in_capture=not_in_capture,
        limited=limited,
        unknown_headers=unknown_headers,
        seen={cap.path: (cap.summary.messages, cap.summary.frames) for cap in caps},
    )


def _before_capture(o: Call, att: Attribution, serving: int | None, first_inbound: int | None) -> bool:
    """Whether the request ``o`` was made for may be one the capture does not show.

    Ids in common with an inbound request settle it. Otherwise, the pod was evidently
    serving a request begun before the capture until ``serving`` (a response to a request
    not in the capture); and a call carrying an x-request-id or a parent span before the
    first inbound request appears continues a request the capture did not see begin.
    """
    if att.method not in ("time-window", "none"):  # an id in common settles it
        return False
    if serving is not None and o.ts_ns <= serving:
        return True
    if att.inbound is None and first_inbound is not None and o.ts_ns < first_inbound:
        return o.request_id is not None or any(t.parent_span_id is not None for t in o.trace)
    return False


def _edge_notes(capture: str, edge: list[Call], limited: list[Call]) -> list[Note]:
    """One note per capture for each kind of call not judged (never one per call: a large
    capture would print thousands)."""
    notes: list[Note] = []
    if edge:
        notes.append(Note("not-in-capture", f"{len(edge)} outbound call(s) not judged: the request "
                          "being served when they were made is not in the capture (it began "
                          "before the capture started)", capture, edge[0].frame))
    if limited:
        n = sum(len(c.unknown) for c in limited)
        notes.append(Note("unknown-headers", f"verdict of {len(limited)} outbound call(s) limited by "
                          f"{n} unknown headers (HPACK entries older than the capture): no finding "
                          "rests on a header the capture cannot show", capture, limited[0].frame))
    return notes


def _traces(caps: list[_Capture], parent_of: dict[int, Call], joined: dict[int, Call],
            findings: list[Finding]) -> list[Trace]:
    by_call: dict[int, list[Finding]] = {}
    for f in findings:
        by_call.setdefault(id(f.outbound), []).append(f)
    traces: dict[str, Trace] = {}

    def trace_key(c: Call) -> str | None:
        return c.trace_id or (synthetic_trace_id("x-request-id:" + c.request_key) if c.request_key else None)

    for cap in caps:
        roles = cap.roles
        for i in cap.inbound:
            parent = joined.get(id(i))
            key = trace_key(i)
            if key is None:
                continue
            span = Span(span_id(i), span_id(parent) if parent is not None else None, "server",
                        cap.service_of(inbound_host(i, roles) or ""), i, i.src)
            traces.setdefault(key, Trace(key)).spans.append(span)
        for o in cap.outbound:
            parent = parent_of.get(id(o))
            key = trace_key(parent) if parent is not None else trace_key(o)
            if key is None:
                continue
            span = Span(span_id(o), span_id(parent) if parent is not None else None, "client",
                        cap.service_of(outbound_host(o, roles) or ""), o, describe_target(o),
                        by_call.get(id(o), []))
            traces.setdefault(key, Trace(key)).spans.append(span)
    for t in traces.values():
        t.spans.sort(key=lambda s: (s.call.capture, s.call.ts_ns, s.call.frame))
    return sorted(traces.values(), key=lambda t: (not t.broken, t.spans[0].call.ts_ns))
