"""``tracewire analyze`` output: JSON, a terminal table and Markdown."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from tabulate import tabulate

from analyzer import __version__
from analyzer.analysis import KINDS, Call, Finding, Hop, Pod, Result, Trace
from analyzer.analysis.naming import name_said, reply_address, target_label, target_of, unknown_target
from analyzer.records import Header
from analyzer.report.messages import anomaly_dict
from analyzer.report.redact import DEFAULT, Confirms, Policy, csv_cell, escape, json_safe, marker, md_code
from analyzer.tracing.corroborate import Corroboration

WIDTH = 120


def _policy(p: Policy | bool) -> Policy:
    """A Policy, or the old ``show_secrets`` flag of library callers."""
    return p if isinstance(p, Policy) else Policy(show_secrets=p)


def corroboration(calls: list[Call]) -> Corroboration:
    """The tracing values every call carried under a known name (``Call.values`` holds no
    guessed header), over all captures of the analysis."""
    seen = Corroboration()
    for c in calls:
        if c.values:
            seen.see([Header.of(k.encode("latin-1"), v.encode("utf-8", "surrogateescape"))
                      for k, v in c.values.items()])
    return seen


def request_id(c: Call, policy: Policy = DEFAULT, confirms: Confirms | None = None) -> str | None:
    """The call's x-request-id when it may be shown (not from an uncorroborated guess)."""
    for t in policy.visible(c.trace, confirms):
        if t.format == "x-request-id" and t.request_id:
            return t.request_id
    return None


def shown_request_id(rid: str | None, calls: tuple[Call | None, ...], policy: Policy,
                     confirms: Confirms | None) -> str | None:
    """An x-request-id the analysis reported, unless it only came from a hidden context."""
    if rid is None:
        return None
    for c in calls:
        if c is not None and request_id(c, policy, confirms) == rid:
            return rid
    hidden = any(t.request_id == rid for c in calls if c is not None for t in c.trace)
    return marker(len(rid.encode())) if hidden else rid


def shown_value(name: str, value: str, policy: Policy | bool) -> str:
    if _policy(policy).secret(name.encode("latin-1", "replace")):
        return marker(len(value.encode()))
    return value


def line(c: Call, policy: Policy = DEFAULT) -> str:
    """The request line as shown: credential query parameters redacted."""
    return f"{c.method or '?'} {policy.url(c.path) or '<unknown path>'}"


def _call(c: Call, outbound: bool = False, policy: Policy = DEFAULT) -> dict[str, Any]:
    d: dict[str, Any] = {
        "capture": c.capture,
        "frame": c.frame,
        "method": c.method,
        "path": policy.url(c.path),
        "authority": policy.url(c.authority),
    }
    if outbound:
        d["protocol"] = c.protocol
        d["stream"] = c.stream
    return d


def finding_dict(f: Finding, policy: Policy | bool = DEFAULT,
                 confirms: Confirms | None = None) -> dict[str, Any]:
    policy = _policy(policy)
    return {
        "kind": f.kind,
        "trace_id": f.trace_id,
        "x_request_id": shown_request_id(f.x_request_id, (f.inbound, f.outbound), policy, confirms),
        "source": f.source,
        "target": policy.url(f.target),
        "target_source": target_of(f.outbound)[1],
        # what identifies a target nothing names: the ClusterIP its replies came from, its connection
        "target_address": reply_address(f.outbound),
        "target_connection": f.outbound.connection,
        "headers": f.headers,
        "expected": {k: shown_value(k, v, policy) for k, v in f.expected.items()},
        "found": {k: shown_value(k, v, policy) for k, v in f.found.items()},
        "rule": None if f.rule is None else policy.prose(f.rule),
        "attribution": f.attribution,
        "confidence": f.confidence,
        "candidates": f.candidates,
        "inbound": None if f.inbound is None else _call(f.inbound, policy=policy),
        "outbound": _call(f.outbound, outbound=True, policy=policy),
    }


def hop_dict(h: Hop) -> dict[str, Any]:
    return {
        "source": h.source,
        "target": h.target,
        "protocol": h.protocol,
        "target_source": h.target_source,
        "calls": h.calls,
        "propagated": h.propagated,
        "broken": dict(h.broken),
        "headers_lost": sorted(h.headers_lost),
    }


def pod_dict(p: Pod) -> dict[str, Any]:
    return {
        "capture": p.capture,
        "service": p.service,
        "name_source": p.name_source,
        "pod_name": p.pod_name,
        "address": p.address,
        "app_ports": p.app_ports,
        "sidecar": p.sidecar,
        "legs": p.legs,
        "encrypted_peers": p.encrypted_peers,
        "anomalies": p.anomalies,
    }


def trace_dict(t: Trace, policy: Policy = DEFAULT) -> dict[str, Any]:
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
                "peer_source": target_of(s.call)[1] if s.kind == "client" else None,
                "capture": s.call.capture,
                "frame": s.call.frame,
                "response_frame": s.call.response_frame,
                "start_ns": s.call.ts_ns,
                "end_ns": s.call.response_ts,
                "protocol": s.call.protocol,
                "stream": s.call.stream,
                "method": s.call.method,
                "path": policy.url(s.call.path),
                "authority": policy.url(s.call.authority),
                "status": s.call.status,
                "findings": [f.kind for f in s.findings],
            }
            for s in t.spans
        ],
    }


def result_dict(r: Result, policy: Policy | bool = DEFAULT) -> dict[str, Any]:
    policy = _policy(policy)
    confirms = corroboration(r.calls).confirms
    return {
        "tool": {"name": "tracewire", "version": __version__},
        "captures": r.captures,
        "pods": [pod_dict(p) for p in r.pods],
        "hops": [hop_dict(h) for h in r.hops],
        "traces": [trace_dict(t, policy) for t in r.traces],
        "findings": [finding_dict(f, policy, confirms) for f in r.findings],
        "notes": [{"kind": n.kind, "detail": policy.prose(n.detail), "capture": n.capture,
                   "frame": n.frame} for n in r.notes],
        "anomalies": [{"capture": cap, **anomaly_dict(a)} for cap, a in r.anomalies],
        # Calls not judged, and why: what the capture cannot show is counted, never a finding.
        "summary": {
            "outbound_calls": len(r.outcomes),
            "findings": len(r.findings),
            "not_in_capture": r.not_in_capture,
            "limited_by_unknown_headers": r.limited,
            "unknown_headers": r.unknown_headers,
        },
    }


# -- text -----------------------------------------------------------------------------------
# Every string from the capture is escaped (terminal) or put in a code span (Markdown)
# where the line is built, after redaction: nothing raw reaches a reader.


def _cut(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _e(s: object) -> str:
    return escape(str(s))


def pod_line(p: Pod) -> str:
    legs = ", ".join(f"{n} {k}" for k, n in p.legs.items() if n or k in ("inbound", "outbound"))
    where = p.address or "?"
    ports = ",".join(map(str, p.app_ports)) or "?"
    peers = ", ".join(f"{k} ({v})" for k, v in sorted(p.encrypted_peers.items())) or "none"
    kind = "sidecar pod" if p.sidecar else "service"
    if p.pod_name and p.pod_name != p.service:
        where = f"pod {p.pod_name}, {where}"
    return (_e(f"{p.capture}: {kind} {p.service} (named from {name_said(p.name_source)}; {where}, "
               f"app port {ports})") + "\n"
            + _cut(_e(f"  legs: {legs} | encrypted peers: {peers} | anomalies: {p.anomalies}"), WIDTH))


def _pod_markdown(p: Pod) -> str:
    legs = ", ".join(f"{n} {k}" for k, n in p.legs.items() if n or k in ("inbound", "outbound"))
    ports = ",".join(map(str, p.app_ports)) or "?"
    peers = ", ".join(f"{k} ({v})" for k, v in sorted(p.encrypted_peers.items())) or "none"
    kind = "sidecar pod" if p.sidecar else "service"
    pod = f"pod {md_code(p.pod_name)}, " if p.pod_name and p.pod_name != p.service else ""
    return (f"- {md_code(p.capture)}: {kind} {md_code(p.service)} (named from "
            f"{name_said(p.name_source)}; {pod}{md_code(p.address or '?')}, "
            f"app port {ports}); legs: {legs} | encrypted peers: {md_code(peers)} | "
            f"anomalies: {p.anomalies}")


def hop_rows(hops: list[Hop], markdown: bool = False) -> list[list[object]]:
    if markdown:
        return [
            [md_code(h.source, True), md_code(target_label(h.target, h.target_source), True),
             h.protocol, h.calls, h.propagated,
             *(h.broken[k] or "" for k in KINDS), md_code(", ".join(sorted(h.headers_lost)), True)]
            for h in hops
        ]
    return [
        [_cut(_e(h.source), 20), _cut(_e(target_label(h.target, h.target_source, short=True)), 29),
         h.protocol, h.calls, h.propagated,
         *(h.broken[k] or "" for k in KINDS), _cut(_e(", ".join(sorted(h.headers_lost))), 19)]
        for h in hops
    ]


HOP_HEADERS = ["source", "target", "proto", "calls", "ok", "miss", "chg", "part", "malf",
               "headers affected"]


def _pairs(d: dict[str, str], policy: Policy | bool) -> str:
    if not d:
        return "(none)"
    return ", ".join(f"{k}: {shown_value(k, v, policy)}" for k, v in d.items())


def finding_lines(f: Finding, policy: Policy | bool = DEFAULT) -> list[str]:
    policy = _policy(policy)
    how = f"by {f.attribution}, {f.confidence}"
    if f.candidates:
        how += f" among inbound frames {', '.join(map(str, f.candidates))}"
    name, source = target_of(f.outbound)
    target = policy.url(target_label(f.target or name, source))
    head = f"{f.kind.upper():9} {f.source} → {target}  trace {f.trace_id or '-'}  ({how})"
    i, o = f.inbound, f.outbound
    served = (f"  inbound  frame {i.frame:>6}  {line(i, policy)}  [{policy.url(i.authority) or '?'}]"
              if i is not None else "  inbound  none: no request was being served (a root call)")
    lines = [
        head,
        served,
        f"  outbound frame {o.frame:>6}  {line(o, policy)}  "
        f"[{policy.url(o.authority) or unknown_target(reply_address(o), o.connection)}, {o.protocol}"
        + (f" stream {o.stream}" if o.stream is not None else "") + "]",
        f"  headers  {', '.join(f.headers)}" + (f"  rule: {policy.prose(f.rule)}" if f.rule else ""),
        f"  expected {_pairs(f.expected, policy)}",
        f"  found    {_pairs(f.found, policy)}",
    ]
    return [_cut(_e(x), WIDTH) for x in lines]


def trace_lines(t: Trace, policy: Policy = DEFAULT) -> list[str]:
    lines = [f"trace {_e(t.trace_id)}" + ("  BROKEN" if t.broken else "")]
    depth: dict[str, int] = {}
    for s in t.spans:
        d = depth.get(s.parent_id or "", -1) + 1 if s.parent_id else 0
        depth[s.span_id] = d
        arrow = f"→ {target_label(s.peer or '', target_of(s.call)[1])}" if s.kind == "client" else "⇐"
        marks = f"  [{', '.join(f.kind for f in s.findings)}]" if s.findings else ""
        lines.append(_cut(_e(f"  {'  ' * d}{s.service} {arrow} {line(s.call, policy)} "
                             f"({s.call.capture.rsplit('/', 1)[-1]} frame {s.call.frame}){marks}"), WIDTH))
    return lines


def table(r: Result, show_all: bool = False, policy: Policy | bool = DEFAULT) -> str:
    policy = _policy(policy)
    out: list[str] = [pod_line(p) for p in r.pods]
    out.append("")
    if r.hops:
        out.append(tabulate(hop_rows(r.hops), headers=HOP_HEADERS, tablefmt="simple"))
    else:
        out.extend(nothing_found(r, escape))
    out.append("")
    broken = [t for t in r.traces if t.broken]
    if r.findings:
        out.append(f"{len(r.findings)} findings in {len(broken)} broken traces:")
        for f in r.findings:
            out.append("")
            out.extend(finding_lines(f, policy))
    elif r.hops:
        out.append("no break found: every outbound call carried the tracing headers on")
    notes = [n for n in r.notes if n.kind != "root-call"]
    if notes:
        out.append("")
        out.append("notes:")
        out.extend(_cut(_e(f"  frame {n.frame}: {policy.prose(n.detail)}"), WIDTH) for n in notes)
    if show_all:
        out.append("")
        out.append(f"{len(r.traces)} traces:")
        for t in r.traces:
            out.extend(trace_lines(t, policy))
    if r.anomalies:
        out.append("")
        out.append(f"{len(r.anomalies)} anomalies (see `tracewire info`)")
    return "\n".join(out) + "\n"


def markdown(r: Result, show_all: bool = False, policy: Policy | bool = DEFAULT) -> str:
    """Markdown for a ticket or a pull request: every string from the capture sits in a
    code span (``md_code``), so none can become a link, an image or HTML."""
    policy = _policy(policy)
    out = ["# tracewire analysis", ""]
    for p in r.pods:
        out.append(_pod_markdown(p))
    out.append("")
    out.append("## Hops")
    out.append("")
    out.append(tabulate(hop_rows(r.hops, markdown=True), headers=HOP_HEADERS, tablefmt="github")
               if r.hops else "\n\n".join(nothing_found(r, md_code)))
    out.append("")
    out.append("## Findings")
    out.append("")
    if not r.findings:
        out.append("No break found.")
    for f in r.findings:
        i, o = f.inbound, f.outbound
        served = (f"inbound frame {i.frame} {md_code(line(i, policy))}" if i is not None
                  else "no inbound (root call)")
        target = target_label(policy.url(f.target) or unknown_target(reply_address(o), o.connection),
                              target_of(o)[1])
        out.append(f"- **{f.kind}** {md_code(f.source)} → {md_code(target)}, "
                   f"trace {md_code(f.trace_id or '-')} "
                   f"(by {f.attribution}, {f.confidence}): {served}, "
                   f"outbound frame {o.frame} {md_code(line(o, policy))}; "
                   f"headers: {', '.join(md_code(h) for h in f.headers)}"
                   + (f"; rule: {md_code(policy.prose(f.rule))}" if f.rule else ""))
    notes = [n for n in r.notes if n.kind != "root-call"]
    if notes:
        out.append("")
        out.append("## Notes")
        out.append("")
        out.extend(f"- frame {n.frame}: {md_code(policy.prose(n.detail))}" for n in notes)
    if show_all:
        out.append("")
        out.append("## Traces")
        out.append("")
        for t in r.traces:
            # A fenced block longer than any backtick run inside cannot be closed early.
            body = trace_lines(t, policy)
            fence = "`" * max(3, 1 + _longest_backticks("\n".join(body)))
            out.append(fence)
            out.extend(body)
            out.append(fence)
    return "\n".join(out) + "\n"


def _longest_backticks(s: str) -> int:
    return max((len(run) for run in re.findall("`+", s)), default=0)


# -- findings for tools: JSON Lines and CSV ---------------------------------------------------
# Both stream from the same dicts as --format json, so redaction and escaping are decided
# in one place; nothing is truncated.


def jsonl_lines(r: Result, policy: Policy | bool = DEFAULT) -> Iterator[str]:
    """``analyze --format jsonl``: one line per finding, then one per trace; each object's
    ``record`` says which ("finding" or "trace"), so `jq 'select(.record == "finding")'`
    picks one kind."""
    policy = _policy(policy)
    confirms = corroboration(r.calls).confirms
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for f in r.findings:
        yield json_safe(dumps({"record": "finding", **finding_dict(f, policy, confirms)}))
    for t in r.traces:
        yield json_safe(dumps({"record": "trace", **trace_dict(t, policy)}))


FINDING_CSV_FIELDS = (
    "kind", "trace_id", "x_request_id", "source", "target", "target_source", "target_address",
    "headers", "expected", "found", "rule", "attribution", "confidence", "candidates",
    "inbound_capture", "inbound_frame", "inbound_request", "outbound_capture", "outbound_frame",
    "outbound_request", "protocol", "stream",
)


def _request(c: dict[str, Any] | None) -> str:
    return "" if c is None else f"{c['method'] or '?'} {c['path'] or '<unknown path>'}"


def finding_csv_rows(r: Result, policy: Policy | bool = DEFAULT) -> Iterator[list[object]]:
    """``analyze --format csv``: one row per finding (no header row; FINDING_CSV_FIELDS is
    it). Several values in one cell go one per line; every text cell is escaped and
    defused against spreadsheet formulas (``csv_cell``)."""
    policy = _policy(policy)
    confirms = corroboration(r.calls).confirms
    for f in r.findings:
        d = finding_dict(f, policy, confirms)
        i, o = d["inbound"], d["outbound"]
        row: list[object] = [
            d["kind"], d["trace_id"] or "", d["x_request_id"] or "", d["source"], d["target"] or "",
            d["target_source"], d["target_address"] or "", ", ".join(d["headers"]),
            "\n".join(escape(f"{k}: {v}") for k, v in d["expected"].items()),
            "\n".join(escape(f"{k}: {v}") for k, v in d["found"].items()),
            d["rule"] or "", d["attribution"], d["confidence"], " ".join(map(str, d["candidates"])),
            "" if i is None else i["capture"], "" if i is None else i["frame"], _request(i),
            o["capture"], o["frame"], _request(o), o["protocol"], "" if o["stream"] is None else o["stream"],
        ]
        multiline = (8, 9)  # expected, found: escaped line by line above
        yield [csv_cell(v if n in multiline or not isinstance(v, str) else escape(v))
               for n, v in enumerate(row)]


def nothing_found(r: Result, quote: Callable[[str], str]) -> list[str]:
    """What stands in for the hop table when no outbound call was found: what each capture
    did show ("0 HTTP messages in 0 frames"), so an empty capture, one without HTTP, or the
    wrong pod's capture is told apart from a pod that made no call. ``quote`` makes a
    capture's path safe to show (``escape`` or ``md_code``)."""

    def n(k: int, what: str) -> str:
        return f"{k} {what}" if k == 1 else f"{k} {what}s"

    out = [f"{quote(cap)}: {n(msgs, 'HTTP message')} in {n(frames, 'frame')}"
           for cap, (msgs, frames) in r.seen.items()]
    return [*out, "no outbound calls found"]
