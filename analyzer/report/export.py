"""Traces as spans in Jaeger JSON (the UI's "Upload JSON"), Zipkin v2 JSON and OTLP JSON.

A server span is an inbound request as the pod received it, a client span a call the app
made; each carries the HTTP method, path and status, the peer's address and the capture
frames as tags, and every finding on it as a log/annotation/event. Header values are not
exported beyond the tracing ids, so no credential can leak through an export: paths and
hosts pass through the redaction policy (credential query parameters), and an id read from
a header whose name was only guessed is exported when another call corroborates it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from analyzer import __version__
from analyzer.analysis import Finding, Result, Span, Trace
from analyzer.analysis.naming import target_of
from analyzer.report.analysis import corroboration, request_id, shown_value
from analyzer.report.redact import DEFAULT, Confirms, Policy


def _us(ns: int) -> int:
    return ns // 1000


def _duration_ns(s: Span) -> int:
    c = s.call
    if c.response_ts is not None and c.response_ts >= c.ts_ns:
        return max(c.response_ts - c.ts_ns, 1000)
    return 1000  # no response captured: a 1 µs marker, flagged by a tag


def _name(s: Span) -> str:
    c = s.call
    path = (c.path or "").split("?", 1)[0] or "<unknown path>"
    return f"{c.method or 'request'} {path}"


def _tags(s: Span, policy: Policy = DEFAULT, confirms: Confirms | None = None) -> dict[str, str]:
    c = s.call
    path = policy.url(c.path) or ""
    tags = {
        "span.kind": s.kind,
        "component": "tracewire",
        "http.method": c.method or "",
        "http.url": path,
        "http.target": path,
        "http.flavor": c.protocol,
        "net.peer.ip": c.src if s.kind == "server" else c.dst,
        "net.peer.port": str(c.sport if s.kind == "server" else c.dport),
        "tracewire.capture": c.capture,
        "tracewire.frame": str(c.frame),
    }
    if c.authority:
        tags["http.host"] = policy.url(c.authority) or ""
    if s.kind == "client":
        # The target in the one spelling every output uses; peer.service only when a name
        # is known (from the authority, or inferred: tracewire.target_source says from what).
        target, source = target_of(c)
        tags["tracewire.target"] = target
        tags["tracewire.target_source"] = source
        if source != "unknown":
            tags["peer.service"] = target
    if c.status is not None:
        tags["http.status_code"] = str(c.status)
    if c.response_frame is not None:
        tags["tracewire.response_frame"] = str(c.response_frame)
    else:
        tags["tracewire.no_response"] = "true"
    if c.stream is not None:
        tags["tracewire.h2_stream"] = str(c.stream)
    if c.nat_reply_from:
        tags["tracewire.cluster_ip"] = c.nat_reply_from
    rid = request_id(c, policy, confirms)
    if rid:
        tags["guid:x-request-id"] = rid
    seen = next((t.trace_id for t in policy.visible(c.trace, confirms) if t.trace_id), None)
    if seen:
        tags["tracewire.seen_trace_id"] = seen
    if s.findings:
        tags["error"] = "true"
        tags["tracewire.broken"] = ",".join(f.kind for f in s.findings)
    return tags


def _finding_fields(f: Finding, policy: Policy = DEFAULT) -> dict[str, str]:
    d = {
        "event": "tracewire.finding",
        "kind": f.kind,
        "headers": ", ".join(f.headers),
        "attribution": f"{f.attribution} ({f.confidence})",
        "expected": "; ".join(f"{k}: {shown_value(k, v, policy)}" for k, v in f.expected.items()) or "(none)",
        "found": "; ".join(f"{k}: {shown_value(k, v, policy)}" for k, v in f.found.items()) or "(none)",
    }
    if f.rule:
        d["rule"] = policy.prose(f.rule)
    if f.inbound is not None:
        d["inbound_frame"] = str(f.inbound.frame)
    d["outbound_frame"] = str(f.outbound.frame)
    return d


def _trace_id(t: Trace) -> str:
    return t.trace_id.rjust(32, "0")[-32:]


# -- Jaeger ---------------------------------------------------------------------------------


def to_jaeger(r: Result, policy: Policy = DEFAULT) -> dict[str, Any]:
    confirms = corroboration(r.calls).confirms
    data = []
    for t in r.traces:
        tid = _trace_id(t)
        processes: dict[str, dict[str, Any]] = {}
        pid_of: dict[str, str] = {}
        spans = []
        for s in t.spans:
            pid = pid_of.get(s.service)
            if pid is None:
                pid = pid_of[s.service] = f"p{len(pid_of) + 1}"
                processes[pid] = {"serviceName": s.service, "tags": []}
            spans.append({
                "traceID": tid,
                "spanID": s.span_id,
                "operationName": _name(s),
                "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": s.parent_id}]
                if s.parent_id else [],
                "startTime": _us(s.call.ts_ns),
                "duration": _us(_duration_ns(s)),
                "tags": [{"key": k, "type": "string", "value": v}
                         for k, v in _tags(s, policy, confirms).items()],
                "logs": [
                    {"timestamp": _us(f.outbound.ts_ns),
                     "fields": [{"key": k, "type": "string", "value": v}
                                for k, v in _finding_fields(f, policy).items()]}
                    for f in s.findings
                ],
                "processID": pid,
                "warnings": None,
            })
        data.append({"traceID": tid, "spans": spans, "processes": processes, "warnings": None})
    return {"data": data, "total": 0, "limit": 0, "offset": 0, "errors": None}


# -- Zipkin v2 ------------------------------------------------------------------------------


def _endpoint(host: str, port: int, service: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {}
    if service:
        e["serviceName"] = service
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return e
    e["ipv6" if ip.version == 6 else "ipv4"] = str(ip)
    if 0 < port < 65536:
        e["port"] = port
    return e


def _known_peer(s: Span) -> str | None:
    """The callee's name for a remote endpoint, when something names it."""
    target, source = target_of(s.call)
    return None if source == "unknown" else target


def to_zipkin(r: Result, policy: Policy = DEFAULT) -> list[dict[str, Any]]:
    confirms = corroboration(r.calls).confirms
    out = []
    for t in r.traces:
        tid = _trace_id(t)
        for s in t.spans:
            c = s.call
            local = (_endpoint(c.dst, c.dport, s.service) if s.kind == "server"
                     else _endpoint(c.src, c.sport, s.service))
            remote = (_endpoint(c.src, c.sport) if s.kind == "server"
                      else _endpoint(c.dst, c.dport, _known_peer(s)))
            span: dict[str, Any] = {
                "traceId": tid,
                "id": s.span_id,
                "name": _name(s).lower(),
                "kind": s.kind.upper(),
                "timestamp": _us(c.ts_ns),
                "duration": _us(_duration_ns(s)),
                "localEndpoint": local,
                "remoteEndpoint": remote,
                "tags": _tags(s, policy, confirms),
                "annotations": [
                    {"timestamp": _us(f.outbound.ts_ns),
                     "value": f"tracewire.finding {f.kind}: {', '.join(f.headers)}"}
                    for f in s.findings
                ],
            }
            if s.parent_id:
                span["parentId"] = s.parent_id
            out.append(span)
    return out


# -- OTLP -----------------------------------------------------------------------------------

SPAN_KIND = {"server": 2, "client": 3}


def _attrs(d: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": k, "value": {"stringValue": v}} for k, v in d.items()]


def to_otlp(r: Result, policy: Policy = DEFAULT) -> dict[str, Any]:
    """OTLP/JSON (ExportTraceServiceRequest); ids hex-encoded as OTLP/JSON requires."""
    confirms = corroboration(r.calls).confirms
    by_service: dict[str, list[dict[str, Any]]] = {}
    for t in r.traces:
        tid = _trace_id(t)
        for s in t.spans:
            c = s.call
            span: dict[str, Any] = {
                "traceId": tid,
                "spanId": s.span_id,
                "name": _name(s),
                "kind": SPAN_KIND[s.kind],
                "startTimeUnixNano": str(c.ts_ns),
                "endTimeUnixNano": str(c.ts_ns + _duration_ns(s)),
                "attributes": _attrs(_tags(s, policy, confirms)),
                "events": [
                    {"timeUnixNano": str(f.outbound.ts_ns), "name": "tracewire.finding",
                     "attributes": _attrs(_finding_fields(f, policy))}
                    for f in s.findings
                ],
                "status": {"code": 2, "message": "tracing headers not propagated"}
                if s.findings else {},
            }
            if s.parent_id:
                span["parentSpanId"] = s.parent_id
            by_service.setdefault(s.service, []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attrs({"service.name": service})},
                "scopeSpans": [{"scope": {"name": "tracewire", "version": __version__},
                                "spans": spans}],
            }
            for service, spans in by_service.items()
        ]
    }
