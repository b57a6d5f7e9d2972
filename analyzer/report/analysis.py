"""``tracewire analyze`` output: JSON, a terminal table and Markdown."""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from analyzer import __version__
from analyzer.analysis import KINDS, Call, Finding, Hop, Pod, Result, Trace
from analyzer.analysis.engine import describe_target
from analyzer.report.messages import anomaly_dict
from analyzer.report.redact import is_secret

WIDTH = 120


def _value(name: str, value: str, show_secrets: bool) -> str:
    if not show_secrets and is_secret(name.encode()):
        return f"<redacted, {len(value.encode())} bytes>"
    return value


def _call(c: Call, outbound: bool = False) -> dict[str, Any]:
    d: dict[str, Any] = {
        "capture": c.capture,
        "frame": c.frame,
        "method": c.method,
        "path": c.path,
        "authority": c.authority,
    }
    if outbound:
        d["protocol"] = c.protocol
        d["stream"] = c.stream
    return d


def finding_dict(f: Finding, show_secrets: bool = False) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "trace_id": f.trace_id,
        "x_request_id": f.x_request_id,
        "source": f.source,
        "target": f.target,
        "headers": f.headers,
        "expected": {k: _value(k, v, show_secrets) for k, v in f.expected.items()},
        "found": {k: _value(k, v, show_secrets) for k, v in f.found.items()},
        "rule": f.rule,
        "attribution": f.attribution,
        "confidence": f.confidence,
        "candidates": f.candidates,
        "inbound": None if f.inbound is None else _call(f.inbound),
        "outbound": _call(f.outbound, outbound=True),
    }


def hop_dict(h: Hop) -> dict[str, Any]:
    return {
        "source": h.source,
        "target": h.target,
        "protocol": h.protocol,
        "calls": h.calls,
        "propagated": h.propagated,
        "broken": dict(h.broken),
        "headers_lost": sorted(h.headers_lost),
    }


def pod_dict(p: Pod) -> dict[str, Any]:
    return {
        "capture": p.capture,
        "service": p.service,
        "address": p.address,
        "app_ports": p.app_ports,
        "sidecar": p.sidecar,
        "legs": p.legs,
        "encrypted_peers": p.encrypted_peers,
        "anomalies": p.anomalies,
    }


def trace_dict(t: Trace) -> dict[str, Any]:
    return {
        "trace_id": t.trace_id,
        "broken": t.broken,
        "spans": [
            {
                "span_id": s.span_id,
                "parent_id": s.parent_id,
                "kind": s.kind,
                "service": s.service,
                "peer": s.peer,
                "capture": s.call.capture,
                "frame": s.call.frame,
                "response_frame": s.call.response_frame,
                "start_ns": s.call.ts_ns,
                "end_ns": s.call.response_ts,
                "protocol": s.call.protocol,
                "stream": s.call.stream,
                "method": s.call.method,
                "path": s.call.path,
                "authority": s.call.authority,
                "status": s.call.status,
                "findings": [f.kind for f in s.findings],
            }
            for s in t.spans
        ],
    }


def result_dict(r: Result, show_secrets: bool = False) -> dict[str, Any]:
    return {
        "tool": {"name": "tracewire", "version": __version__},
        "captures": r.captures,
        "pods": [pod_dict(p) for p in r.pods],
        "hops": [hop_dict(h) for h in r.hops],
        "traces": [trace_dict(t) for t in r.traces],
        "findings": [finding_dict(f, show_secrets) for f in r.findings],
        "notes": [{"kind": n.kind, "detail": n.detail, "capture": n.capture, "frame": n.frame}
                  for n in r.notes],
        "anomalies": [{"capture": cap, **anomaly_dict(a)} for cap, a in r.anomalies],
    }


# -- text -----------------------------------------------------------------------------------


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def pod_line(p: Pod) -> str:
    legs = ", ".join(f"{n} {k}" for k, n in p.legs.items() if n or k in ("inbound", "outbound"))
    where = p.address or "?"
    ports = ",".join(map(str, p.app_ports)) or "?"
    peers = ", ".join(f"{k} ({v})" for k, v in sorted(p.encrypted_peers.items())) or "none"
    kind = "sidecar pod" if p.sidecar else "service"
    return (f"{p.capture}: {kind} {p.service} ({where}, app port {ports})\n"
            + _cut(f"  legs: {legs} | encrypted peers: {peers} | anomalies: {p.anomalies}", WIDTH))


def hop_rows(hops: list[Hop]) -> list[list[object]]:
    return [
        [_cut(h.source, 20), _cut(h.target, 29), h.protocol, h.calls, h.propagated,
         *(h.broken[k] or "" for k in KINDS), _cut(", ".join(sorted(h.headers_lost)), 19)]
        for h in hops
    ]


HOP_HEADERS = ["source", "target", "proto", "calls", "ok", "miss", "chg", "part", "malf",
               "headers affected"]


def _pairs(d: dict[str, str], show_secrets: bool) -> str:
    if not d:
        return "(none)"
    return ", ".join(f"{k}: {_value(k, v, show_secrets)}" for k, v in d.items())


def finding_lines(f: Finding, show_secrets: bool = False) -> list[str]:
    how = f"by {f.attribution}, {f.confidence}"
    if f.candidates:
        how += f" among inbound frames {', '.join(map(str, f.candidates))}"
    target = f.target or describe_target(f.outbound)
    head = f"{f.kind.upper():9} {f.source} → {target}  trace {f.trace_id or '-'}  ({how})"
    i, o = f.inbound, f.outbound
    served = (f"  inbound  frame {i.frame:>6}  {i.line()}  [{i.authority or '?'}]" if i is not None
              else "  inbound  none: no request was being served (a root call)")
    lines = [
        _cut(head, WIDTH),
        _cut(served, WIDTH),
        _cut(f"  outbound frame {o.frame:>6}  {o.line()}  [{o.authority or '?'}, {o.protocol}"
             + (f" stream {o.stream}" if o.stream is not None else "") + "]", WIDTH),
        _cut(f"  headers  {', '.join(f.headers)}" + (f"  rule: {f.rule}" if f.rule else ""), WIDTH),
        _cut(f"  expected {_pairs(f.expected, show_secrets)}", WIDTH),
        _cut(f"  found    {_pairs(f.found, show_secrets)}", WIDTH),
    ]
    return lines


def trace_lines(t: Trace) -> list[str]:
    lines = [f"trace {t.trace_id}" + ("  BROKEN" if t.broken else "")]
    depth: dict[str, int] = {}
    for s in t.spans:
        d = depth.get(s.parent_id or "", -1) + 1 if s.parent_id else 0
        depth[s.span_id] = d
        arrow = f"→ {s.peer}" if s.kind == "client" else "⇐"
        marks = f"  [{', '.join(f.kind for f in s.findings)}]" if s.findings else ""
        lines.append(_cut(f"  {'  ' * d}{s.service} {arrow} {s.call.line()} "
                          f"({s.call.capture.rsplit('/', 1)[-1]} frame {s.call.frame}){marks}", WIDTH))
    return lines


def table(r: Result, show_all: bool = False, show_secrets: bool = False) -> str:
    out: list[str] = [pod_line(p) for p in r.pods]
    out.append("")
    if r.hops:
        out.append(tabulate(hop_rows(r.hops), headers=HOP_HEADERS, tablefmt="simple"))
    else:
        out.append("no outbound calls found")
    out.append("")
    broken = [t for t in r.traces if t.broken]
    if r.findings:
        out.append(f"{len(r.findings)} findings in {len(broken)} broken traces:")
        for f in r.findings:
            out.append("")
            out.extend(finding_lines(f, show_secrets))
    elif r.hops:
        out.append("no break found: every outbound call carried the tracing headers on")
    notes = [n for n in r.notes if n.kind != "root-call"]
    if notes:
        out.append("")
        out.append("notes:")
        out.extend(_cut(f"  frame {n.frame}: {n.detail}", WIDTH) for n in notes)
    if show_all:
        out.append("")
        out.append(f"{len(r.traces)} traces:")
        for t in r.traces:
            out.extend(trace_lines(t))
    if r.anomalies:
        out.append("")
        out.append(f"{len(r.anomalies)} anomalies (see `tracewire info`)")
    return "\n".join(out) + "\n"


def markdown(r: Result, show_all: bool = False, show_secrets: bool = False) -> str:
    out = ["# tracewire analysis", ""]
    for p in r.pods:
        out.append("- " + pod_line(p).replace("\n  ", "; "))
    out.append("")
    out.append("## Hops")
    out.append("")
    out.append(tabulate(hop_rows(r.hops), headers=HOP_HEADERS, tablefmt="github") if r.hops
               else "No outbound calls found.")
    out.append("")
    out.append("## Findings")
    out.append("")
    if not r.findings:
        out.append("No break found.")
    for f in r.findings:
        i, o = f.inbound, f.outbound
        served = f"inbound frame {i.frame} `{i.line()}`" if i is not None else "no inbound (root call)"
        out.append(f"- **{f.kind}** `{f.source}` → `{f.target or '<unknown>'}`, trace `{f.trace_id or '-'}` "
                   f"(by {f.attribution}, {f.confidence}): {served}, "
                   f"outbound frame {o.frame} `{o.line()}`; headers: {', '.join(f'`{h}`' for h in f.headers)}"
                   + (f"; rule: {f.rule}" if f.rule else ""))
    notes = [n for n in r.notes if n.kind != "root-call"]
    if notes:
        out.append("")
        out.append("## Notes")
        out.append("")
        out.extend(f"- frame {n.frame}: {n.detail}" for n in notes)
    if show_all:
        out.append("")
        out.append("## Traces")
        out.append("")
        for t in r.traces:
            out.append("```")
            out.extend(trace_lines(t))
            out.append("```")
    return "\n".join(out) + "\n"
