"""Traces as spans in Jaeger JSON (the UI's "Upload JSON"), Zipkin v2 JSON and OTLP JSON.

A server span is an inbound request as the pod received it, a client span a call the app
made; each carries the HTTP method, path and status, the peer's address and the capture
frames as tags, and every finding on it as a log/annotation/event. Header values are not
exported beyond the tracing ids, so no credential can leak through an export: paths and
hosts pass through the redaction policy (credential query parameters), and an id read from
a header whose name was only guessed is exported when another call corroborates it.

Jaeger and Zipkin spans carry the tag names their UIs read (``http.method``,
``http.status_code``...); OTLP spans carry OpenTelemetry's current semantic conventions
(``http.request.method``, ``url.path``, ``server.address``...) with typed values.

Every export is a whole file or one document per trace (``documents``): Zipkin Lens and
Grafana show one trace per uploaded file, so ``export --split`` writes one file each. A
span whose parent span is not in its own trace (the caller changed the trace id, or the
parent is in no exported trace) keeps its reference and is marked, so the
fragment the UIs draw says why.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from analyzer import __version__
from analyzer.analysis import Call, Finding, Pod, Result, Span, Trace
from analyzer.analysis.naming import target_of
from analyzer.report.analysis import corroboration, request_id, shown_value
from analyzer.report.redact import DEFAULT, Confirms, Policy, json_safe, redact_url

TARGETS = ("jaeger", "zipkin", "otlp")

_HEX32 = re.compile(r"[0-9a-f]{32}")


def _us(ns: int) -> int:
    return ns // 1000


def _duration_ns(s: Span) -> int:
    c = s.call
    if c.response_ts is not None and c.response_ts >= c.ts_ns:
        return max(c.response_ts - c.ts_ns, 1000)
    return 1000  # no response captured: a 1 µs marker, flagged by a tag


def _target_tags(c: Call) -> dict[str, str]:
    """A client span's target in the one spelling every output uses; peer.service only when
    a name is known (from the authority, or inferred: tracewire.target_source says from what)."""
    target, source = target_of(c)
    tags = {"tracewire.target": target, "tracewire.target_source": source}
    if source != "unknown":
        tags["peer.service"] = target
    return tags


def _name(s: Span) -> str:
    c = s.call
    # an absolute request target may hold userinfo: a span name is no place for a password
    path = redact_url((c.path or "").split("?", 1)[0]) or "<unknown path>"
    return f"{c.method or 'request'} {path}"


def _trace_id(t: Trace) -> str:
    """The trace id as the exports spell it: 32 lower-case hex digits. Trace ids are
    validated hex (or a synthetic hash) already; anything else is hashed, so that an id
    never reaches a file name or a UI in a shape they do not expect."""
    tid = t.trace_id.rjust(32, "0")[-32:]
    return tid if _HEX32.fullmatch(tid) else hashlib.sha1(t.trace_id.encode()).hexdigest()[:32]


@dataclass(slots=True)
class _Context:
    """What every span of one export needs, computed once per result (so that exporting
    trace by trace stays linear in the number of spans)."""

    policy: Policy
    confirms: Confirms
    home: dict[str, str]  # span id -> the exported trace id of the trace holding it
    pods: dict[tuple[str, str], Pod]  # (capture, service) -> the pod

    @classmethod
    def of(cls, r: Result, policy: Policy) -> _Context:
        pods: dict[tuple[str, str], Pod] = {}
        for p in r.pods:
            pods.setdefault((p.capture, p.service), p)
        return cls(policy, corroboration(r.calls).confirms, _homes(r), pods)

    def parent_elsewhere(self, s: Span, tid: str) -> tuple[bool, str | None]:
        return _parent_elsewhere(self.home, s, tid)


def _homes(r: Result) -> dict[str, str]:
    return {s.span_id: _trace_id(t) for t in r.traces for s in t.spans}


def _parent_elsewhere(home: dict[str, str], s: Span, tid: str) -> tuple[bool, str | None]:
    """Whether the span's parent is outside its trace, and the trace holding it (None when
    no exported trace does)."""
    if not s.parent_id:
        return False, None
    where = home.get(s.parent_id)
    return where != tid, where


@dataclass(frozen=True, slots=True)
class Orphan:
    """A span whose parent span is not in the span's own trace."""

    trace_id: str  # the exported trace holding the span
    span_id: str
    parent_id: str
    parent_trace: str | None  # the exported trace holding the parent; None: in none of them
    service: str
    capture: str
    frame: int

    def detail(self) -> str:
        where = (f"in trace {self.parent_trace}" if self.parent_trace
                 else "in no exported trace")
        return f"its parent span {self.parent_id} is {where}"


def orphans(r: Result) -> list[Orphan]:
    """Every span whose parent is outside its own trace: UIs draw such a trace as a
    fragment, so the exports mark these spans and the CLI says so on stderr."""
    home = _homes(r)
    out = []
    for t in r.traces:
        tid = _trace_id(t)
        for s in t.spans:
            elsewhere, where = _parent_elsewhere(home, s, tid)
            if elsewhere and s.parent_id:
                out.append(Orphan(tid, s.span_id, s.parent_id, where, s.service,
                                  s.call.capture, s.call.frame))
    return out


def _tags(s: Span, tid: str, ctx: _Context) -> dict[str, str]:
    """Tags in the names Jaeger and Zipkin read (OpenTracing conventions)."""
    c = s.call
    policy = ctx.policy
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
        tags.update(_target_tags(c))
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
    rid = request_id(c, policy, ctx.confirms)
    if rid:
        tags["guid:x-request-id"] = rid
    seen = next((t.trace_id for t in policy.visible(c.trace, ctx.confirms) if t.trace_id), None)
    if seen:
        tags["tracewire.seen_trace_id"] = seen
    tags.update(_parent_tags(s, tid, ctx))
    if s.findings:
        tags["error"] = "true"
        tags["tracewire.broken"] = ",".join(f.kind for f in s.findings)
    return tags


def _parent_tags(s: Span, tid: str, ctx: _Context) -> dict[str, str]:
    elsewhere, where = ctx.parent_elsewhere(s, tid)
    if not elsewhere:
        return {}
    tags = {"tracewire.parent_outside": "true"}
    if where:
        tags["tracewire.parent_trace"] = where
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


def _process_tags(s: Span, ctx: _Context) -> dict[str, str]:
    """Where the span was seen: the capture file, the pod's address and name."""
    tags = {"tracewire.capture": s.call.capture}
    pod = ctx.pods.get((s.call.capture, s.service))
    if pod is not None:
        if pod.address:
            tags["ip"] = pod.address  # the tag Jaeger's own clients set on a process
        if pod.pod_name:
            tags["k8s.pod.name"] = pod.pod_name
    return tags


# -- Jaeger ---------------------------------------------------------------------------------


def _jaeger_trace(t: Trace, ctx: _Context) -> dict[str, Any]:
    tid = _trace_id(t)
    processes: dict[str, dict[str, Any]] = {}
    pid_of: dict[tuple[str, str], str] = {}
    spans = []
    for s in t.spans:
        key = (s.service, s.call.capture)  # one process per pod capture: the same service
        pid = pid_of.get(key)              # in two captures is two pods
        if pid is None:
            pid = pid_of[key] = f"p{len(pid_of) + 1}"
            processes[pid] = {"serviceName": s.service,
                              "tags": [{"key": k, "type": "string", "value": v}
                                       for k, v in _process_tags(s, ctx).items()]}
        elsewhere, where = ctx.parent_elsewhere(s, tid)
        spans.append({
            "traceID": tid,
            "spanID": s.span_id,
            "operationName": _name(s),
            "references": [{"refType": "CHILD_OF", "traceID": where or tid, "spanID": s.parent_id}]
            if s.parent_id else [],
            "startTime": _us(s.call.ts_ns),
            "duration": _us(_duration_ns(s)),
            "tags": [{"key": k, "type": "string", "value": v} for k, v in _tags(s, tid, ctx).items()],
            "logs": [
                {"timestamp": _us(f.outbound.ts_ns),
                 "fields": [{"key": k, "type": "string", "value": v}
                            for k, v in _finding_fields(f, ctx.policy).items()]}
                for f in s.findings
            ],
            "processID": pid,
            # The UI lists a span's warnings on it: the fragment says why it is one.
            "warnings": [f"tracewire: parent span {s.parent_id} is "
                         + (f"in trace {where}" if where else "in no exported trace")]
            if elsewhere else None,
        })
    return {"traceID": tid, "spans": spans, "processes": processes, "warnings": None}


def _jaeger_doc(traces: Any) -> dict[str, Any]:
    """The upload document around its traces (a list, or the marker ``_stream`` writes
    them in place of)."""
    return {"data": traces, "total": 0, "limit": 0, "offset": 0, "errors": None}


def to_jaeger(r: Result, policy: Policy = DEFAULT) -> dict[str, Any]:
    ctx = _Context.of(r, policy)
    return _jaeger_doc([_jaeger_trace(t, ctx) for t in r.traces])


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


def _zipkin_trace(t: Trace, ctx: _Context) -> list[dict[str, Any]]:
    tid = _trace_id(t)
    out = []
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
            "tags": _tags(s, tid, ctx),
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


def to_zipkin(r: Result, policy: Policy = DEFAULT) -> list[dict[str, Any]]:
    ctx = _Context.of(r, policy)
    return [span for t in r.traces for span in _zipkin_trace(t, ctx)]


# -- OTLP -----------------------------------------------------------------------------------

SPAN_KIND = {"server": 2, "client": 3}
_PROTOCOL_VERSION = {"http/1.1": "1.1", "http/1.0": "1.0", "h2": "2"}


def _value(v: str | int | bool | list[str]) -> dict[str, Any]:
    """An OTLP/JSON AnyValue: int64 is written as a decimal string, as OTLP/JSON encodes it."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, list):
        return {"arrayValue": {"values": [{"stringValue": x} for x in v]}}
    return {"stringValue": v}


def _attrs(d: dict[str, str | int | bool | list[str]]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items()]


def host_port(authority: str) -> tuple[str, int | None]:
    """Split an authority (``host``, ``host:port``, ``[v6]:port``) into host and port; a
    port that is not one (hostile input) is left out, not guessed."""
    host, port = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        if end > 0:
            host, rest = authority[1:end], authority[end + 1:]
            port = rest[1:] if rest.startswith(":") else ""
    elif authority.count(":") == 1:
        host, port = authority.split(":")
    n = int(port) if port.isascii() and port.isdigit() and len(port) <= 5 else 0
    return host, n if 0 < n < 65536 else None


def _otel_attributes(s: Span, tid: str, ctx: _Context) -> dict[str, str | int | bool | list[str]]:
    """The span in OpenTelemetry's HTTP semantic conventions; only what the capture shows:
    no scheme-default port, no server address when neither the authority nor the NAT
    replies name one."""
    c = s.call
    policy = ctx.policy
    a: dict[str, str | int | bool | list[str]] = {}
    if c.method:
        a["http.request.method"] = c.method
    url = policy.url(c.path) if c.path is not None else None
    full = None
    if url is not None:
        target = url
        if url.startswith(("http://", "https://")):  # absolute-form (a request to a proxy)
            full = url
            scheme_end = url.index("://") + 3
            slash = url.find("/", scheme_end)
            target = url[slash:] if slash >= 0 else "/"
        path, sep, query = target.partition("?")
        a["url.path"] = path
        if sep:
            a["url.query"] = query
    authority = policy.url(c.authority) if c.authority else None
    server: tuple[str, int | None] | None = None
    if authority:
        server = host_port(authority)
        if full is None and url is not None and url.startswith("/"):  # origin-form
            full = f"http://{authority}{url}"
    # The legs tracewire reads are plaintext (TLS is not decoded): http, unless an
    # absolute-form request names its scheme.
    a["url.scheme"] = "https" if full is not None and full.startswith("https:") else "http"
    if s.kind == "client" and full is not None:
        a["url.full"] = full
    elif s.kind == "client" and c.nat_reply_from:
        server = host_port(c.nat_reply_from)  # the ClusterIP the replies came from
    if server is not None and server[0]:
        a["server.address"] = server[0]
        if server[1] is not None:
            a["server.port"] = server[1]
    if s.kind == "server" and "server.port" not in a:
        a["server.port"] = c.dport  # the port the app was reached on
    a["network.peer.address"] = c.src if s.kind == "server" else c.dst
    a["network.peer.port"] = c.sport if s.kind == "server" else c.dport
    a["network.protocol.name"] = "http"
    if c.protocol in _PROTOCOL_VERSION:
        a["network.protocol.version"] = _PROTOCOL_VERSION[c.protocol]
    if c.status is not None:
        a["http.response.status_code"] = c.status
    rid = request_id(c, policy, ctx.confirms)
    if rid:
        a["http.request.header.x-request-id"] = [rid]
    if s.kind == "client":
        a.update(_target_tags(c))
    a["tracewire.capture"] = c.capture
    a["tracewire.frame"] = c.frame
    if c.response_frame is not None:
        a["tracewire.response_frame"] = c.response_frame
    else:
        a["tracewire.no_response"] = True
    if c.stream is not None:
        a["tracewire.h2_stream"] = c.stream
    if c.nat_reply_from:
        a["tracewire.cluster_ip"] = c.nat_reply_from
    seen = next((t.trace_id for t in policy.visible(c.trace, ctx.confirms) if t.trace_id), None)
    if seen:
        a["tracewire.seen_trace_id"] = seen
    a.update(_parent_tags(s, tid, ctx))
    if s.findings:
        a["tracewire.broken"] = ",".join(f.kind for f in s.findings)
    return a


def _otlp_span(s: Span, tid: str, ctx: _Context) -> dict[str, Any]:
    c = s.call
    span: dict[str, Any] = {
        "traceId": tid,
        "spanId": s.span_id,
        "name": _name(s),
        "kind": SPAN_KIND[s.kind],
        "startTimeUnixNano": str(c.ts_ns),
        "endTimeUnixNano": str(c.ts_ns + _duration_ns(s)),
        "attributes": _attrs(_otel_attributes(s, tid, ctx)),
        "events": [
            {"timeUnixNano": str(f.outbound.ts_ns), "name": "tracewire.finding",
             "attributes": _attrs(dict(_finding_fields(f, ctx.policy)))}
            for f in s.findings
        ],
        "status": {"code": 2, "message": "tracing headers not propagated"}
        if s.findings else {},
    }
    if s.parent_id:
        span["parentSpanId"] = s.parent_id
    return span


def _by_resource(traces: Sequence[Trace]) -> dict[tuple[str, str], list[tuple[Span, str]]]:
    """Spans (with their trace's exported id) per OTLP resource, one resource per service
    and capture, in order of first appearance."""
    out: dict[tuple[str, str], list[tuple[Span, str]]] = {}
    for t in traces:
        tid = _trace_id(t)
        for s in t.spans:
            out.setdefault((s.service, s.call.capture), []).append((s, tid))
    return out


def _otlp_doc(by_resource: dict[tuple[str, str], Any], ctx: _Context) -> dict[str, Any]:
    """The ExportTraceServiceRequest around each resource's spans (a list, or the marker
    ``_write`` streams them in place of)."""
    resources = []
    for (service, capture), spans in by_resource.items():
        res: dict[str, str | int | bool | list[str]] = {"service.name": service,
                                                         "tracewire.capture": capture}
        pod = ctx.pods.get((capture, service))
        if pod is not None and pod.address:
            res["k8s.pod.ip"] = pod.address  # the k8sattributes processor's name for it
        if pod is not None and pod.pod_name:
            res["k8s.pod.name"] = pod.pod_name
        resources.append({
            "resource": {"attributes": _attrs(res)},
            "scopeSpans": [{"scope": {"name": "tracewire", "version": __version__}, "spans": spans}],
        })
    return {"resourceSpans": resources}


def to_otlp(r: Result, policy: Policy = DEFAULT) -> dict[str, Any]:
    """OTLP/JSON (ExportTraceServiceRequest); ids hex-encoded as OTLP/JSON requires."""
    ctx = _Context.of(r, policy)
    return _otlp_doc({k: [_otlp_span(s, tid, ctx) for s, tid in spans]
                      for k, spans in _by_resource(r.traces).items()}, ctx)


# -- one document per trace -----------------------------------------------------------------


def document(r: Result, target: str, policy: Policy = DEFAULT) -> Any:
    """The whole export in one document for ``target`` (jaeger, zipkin or otlp)."""
    return {"jaeger": to_jaeger, "zipkin": to_zipkin, "otlp": to_otlp}[target](r, policy)


def documents(r: Result, target: str, policy: Policy = DEFAULT) -> Iterator[tuple[str, Any]]:
    """(trace id, a document holding that trace alone) for every trace, in the export's
    order: what Zipkin Lens and Grafana need to show one trace per uploaded file."""
    ctx = _Context.of(r, policy)
    for t in r.traces:
        if target == "jaeger":
            yield _trace_id(t), _jaeger_doc([_jaeger_trace(t, ctx)])
        elif target == "zipkin":
            yield _trace_id(t), _zipkin_trace(t, ctx)
        elif target == "otlp":
            yield _trace_id(t), _otlp_doc({k: [_otlp_span(s, tid, ctx) for s, tid in spans]
                                           for k, spans in _by_resource([t]).items()}, ctx)
        else:
            raise ValueError(f"unknown export target {target!r}")


# -- written as it is made ------------------------------------------------------------------


def dumps(doc: Any) -> str:
    """A document as every export writes it: indented JSON, non-ASCII kept, C1 controls
    and bidi marks escaped."""
    return json_safe(json.dumps(doc, indent=1, ensure_ascii=False))


def _stream(out: TextIO, skeleton: Any, marks: list[str], lists: list[Iterable[Any]]) -> None:
    """Write ``skeleton`` with the JSON string ``marks[i]`` replaced by the array of
    ``lists[i]``, element by element, in the very bytes ``dumps`` gives the whole document
    (an element indented one level deeper than the line its array opens on). The marks
    carry a random nonce, so no string from a capture can be taken for one."""
    text = dumps(skeleton)
    pos = 0
    for mark, items in zip(marks, lists, strict=True):
        quoted = json.dumps(mark)
        at = text.index(quoted, pos)
        out.write(text[pos:at])
        line = text[text.rfind("\n", 0, at) + 1:at]
        depth = len(line) - len(line.lstrip(" "))
        pad = "\n" + " " * (depth + 1)
        first = True
        for item in items:  # JSON text has no raw newline but between tokens
            out.write(("[" if first else ",") + pad + dumps(item).replace("\n", pad))
            first = False
        out.write("[]" if first else "\n" + " " * depth + "]")
        pos = at + len(quoted)
    out.write(text[pos:])


def write(r: Result, target: str, out: TextIO, policy: Policy = DEFAULT) -> None:
    """Write the whole export for ``target`` to ``out``, trace by trace: the same bytes as
    ``dumps(document(...))`` and a newline, without the whole document in memory."""
    ctx = _Context.of(r, policy)
    nonce = secrets.token_hex(16)
    if target == "jaeger":
        mark = f"tracewire-traces-{nonce}"
        _stream(out, _jaeger_doc(mark), [mark], [(_jaeger_trace(t, ctx) for t in r.traces)])
    elif target == "zipkin":
        mark = f"tracewire-spans-{nonce}"
        _stream(out, mark, [mark], [(span for t in r.traces for span in _zipkin_trace(t, ctx))])
    elif target == "otlp":
        groups = _by_resource(r.traces)
        marks = [f"tracewire-spans-{n}-{nonce}" for n in range(len(groups))]
        _stream(out, _otlp_doc(dict(zip(groups, marks, strict=True)), ctx), marks,
                [(_otlp_span(s, tid, ctx) for s, tid in spans) for spans in groups.values()])
    else:
        raise ValueError(f"unknown export target {target!r}")
    out.write("\n")
