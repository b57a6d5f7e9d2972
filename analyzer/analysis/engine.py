"""The analysis of one or more captures: legs, attribution, findings, hops and traces."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from analyzer.analysis.breaks import InboundIndex, attribute, root_verdict, verdict
from analyzer.analysis.legs import Options, Roles, classify, inbound_host, outbound_host, pair
from analyzer.analysis.model import KINDS, Call, Finding, Hop, Note, Outcome, Pod, Result, Span, Trace
from analyzer.analysis.naming import CaptureCalls, name_targets, target_of
from analyzer.analysis.naming import describe_target as describe_target
from analyzer.pipeline import CaptureSummary, read_messages


def span_id(call: Call) -> str:
    """A stable span id for a call seen in a capture (the capture shows no span of its own
    for the app's side of the call)."""
    return hashlib.sha1(f"{call.capture}\0{call.frame}".encode()).hexdigest()[:16]


def synthetic_trace_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:32]


class _Capture:
    def __init__(self, path: str, opts: Options) -> None:
        self.path = path
        self.summary = CaptureSummary(path)
        self.calls = pair(read_messages(path, self.summary))
        self.roles: Roles = classify(self.calls, opts, path)
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


def analyze(paths: Sequence[str | Path], opts: Options | None = None) -> Result:
    opts = opts or Options()
    caps = [_Capture(str(p), opts) for p in paths]
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
        for o in cap.outbound:
            host = outbound_host(o, roles) or ""
            source = cap.service_of(host)
            target, target_source = target_of(o)
            hop = hops.setdefault((source, target, o.protocol), Hop(source, target, o.protocol))
            if target_source != "authority":
                hop.target_source = target_source
            hop.calls += 1
            att = attribute(o, by_host.get(host, no_inbound))
            if att.inbound is None:
                notes.append(Note("root-call", f"{source} → {target}: {o.line()} was made while no "
                                  "request was being served: it starts a trace, not a break",
                                  o.capture, o.frame))
                fs = root_verdict(o, source, target)
                for f in fs:
                    findings.append(f)
                    hop.broken[f.kind] += 1
                    hop.headers_lost.update(f.headers)
                outcomes.append(Outcome(o, source, target, fs, False, False))
                continue
            parent_of[id(o)] = att.inbound
            fs, ns = verdict(att.inbound, o, att, source, target)
            outcomes.append(Outcome(o, source, target, fs, True, att.inbound.has_context))
            findings += fs
            notes += ns
            if not fs and att.inbound.has_context:
                hop.propagated += 1
            for f in fs:
                hop.broken[f.kind] += 1
                hop.headers_lost.update(f.headers)
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
    )


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
