"""``tracewire analyze`` output: JSON, a terminal table and Markdown."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from tabulate import tabulate

from analyzer import __version__
from analyzer.analysis import KINDS, Call, Finding, Hop, Pod, Result, Trace
from analyzer.analysis.engine import Calls
from analyzer.analysis.naming import name_said, reply_address, target_label, target_of, unknown_target
from analyzer.records import Header
from analyzer.report import jsonout
from analyzer.report.messages import anomaly_dict
from analyzer.report.redact import DEFAULT, Confirms, Policy, csv_cell, escape, json_safe, marker, md_code
from analyzer.report.term import PLAIN, Column, Paint, plural, wrap, wrap_list
from analyzer.report.term import table as grid
from analyzer.report.term import width as term_width
from analyzer.tracing.corroborate import Corroboration


def _policy(p: Policy | bool) -> Policy:
    """A Policy, or the old ``show_secrets`` flag of library callers."""
    return p if isinstance(p, Policy) else Policy(show_secrets=p)


def corroboration(calls: Sequence[Call]) -> Corroboration:
    """The tracing values every call carried under a known name (``Call.values`` holds no
    guessed header), over all captures of the analysis."""
    if isinstance(calls, Calls):  # an analysis's calls, on disk: seen as it read them
        return calls.known
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


# The sections written one element at a time: they grow with the capture (issue 10 item 6).
_STREAMED: Final = ("traces", "findings")


def result_json(r: Result, policy: Policy | bool = DEFAULT, chunk: int = 1 << 16) -> Iterator[str]:
    """``json_safe(jsonout.indent2(result_dict(r, policy)))`` in pieces of about ``chunk``
    characters: the document of a large capture (1.4 GB for 50 MB of gRPC) is never held
    whole, nor its traces' and findings' dicts. The same bytes: JSON strings hold no raw
    newline, so re-indenting an element's own indent-2 text by its depth is exact."""
    policy = _policy(policy)
    confirms = corroboration(r.calls).confirms
    # Every section but the streamed ones is small (counts, pods, hops, bounded notes).
    head = result_dict(Result(r.captures, r.pods, r.hops, [], [], r.notes, r.anomalies,
                              outcomes=r.outcomes, not_in_capture=r.not_in_capture,
                              limited=r.limited, unknown_headers=r.unknown_headers), policy)
    head["summary"]["findings"] = len(r.findings)
    # A loop per element, not generator expressions: mypyc evaluates a generator expression
    # stored for later eagerly, which held every element's dict at once in the compiled build.
    items: dict[str, Sequence[Trace] | list[Finding]] = {"traces": r.traces, "findings": r.findings}
    buf: list[str] = ["{"]
    size = 0
    for n, (key, value) in enumerate(head.items()):
        buf.append(("\n  " if n == 0 else ",\n  ") + jsonout.indent2(key) + ": ")
        if key not in _STREAMED:
            buf.append(jsonout.indent2(value).replace("\n", "\n  "))
            continue
        first = True
        for item in items[key]:
            element = (trace_dict(item, policy) if isinstance(item, Trace)
                       else finding_dict(item, policy, confirms))
            text = jsonout.indent2(element).replace("\n", "\n    ")
            buf.append(("[\n    " if first else ",\n    ") + text)
            first = False
            size += len(text)
            if size >= chunk:
                yield json_safe("".join(buf))
                buf, size = [], 0
        buf.append("[]" if first else "\n  ]")
    buf.append("\n}")
    yield json_safe("".join(buf))


# -- text -----------------------------------------------------------------------------------
# Every string from the capture is escaped (terminal) or put in a code span (Markdown)
# where the line is built, after redaction: nothing raw reaches a reader. Lines are laid out
# for a width and wrapped, never cut (``term``); colour is added to escaped text only.

# The detail shown by default: the grouped verdict above it names every broken hop already.
DEFAULT_LIMIT = 10


def _e(s: object) -> str:
    return escape(str(s))


def _legs(p: Pod) -> str:
    return ", ".join(f"{n} {k}" for k, n in p.legs.items() if n or k in ("inbound", "outbound"))


def pod_line(p: Pod, width: int = 120) -> str:
    where = p.address or "?"
    ports = ",".join(map(str, p.app_ports)) or "?"
    peers = [f"{k} ({v})" for k, v in sorted(p.encrypted_peers.items())] or ["none"]
    kind = "sidecar pod" if p.sidecar else "service"
    if p.pod_name and p.pod_name != p.service:
        where = f"pod {p.pod_name}, {where}"
    head = wrap(_e(f"{p.capture}: {kind} {p.service} (named from {name_said(p.name_source)}; {where}, "
                   f"app port {ports})"), width, "    ")
    parts = [_e(f"legs: {_legs(p)}"), _e(f"encrypted peers: {', '.join(peers)}"),
             plural(p.anomalies, "anomaly")]
    # one line when it fits; else each part on its own lines, a long one wrapped at its spaces
    rest = wrap_list(parts, width, "  ", "  ", sep=" | ")
    return "\n".join([*head, *(x for y in rest for x in wrap(y[2:], width, "    ", "  "))])


def _pod_markdown(p: Pod) -> str:
    ports = ",".join(map(str, p.app_ports)) or "?"
    peers = ", ".join(f"{k} ({v})" for k, v in sorted(p.encrypted_peers.items())) or "none"
    kind = "sidecar pod" if p.sidecar else "service"
    pod = f"pod {md_code(p.pod_name)}, " if p.pod_name and p.pod_name != p.service else ""
    return (f"- {md_code(p.capture)}: {kind} {md_code(p.service)} (named from "
            f"{name_said(p.name_source)}; {pod}{md_code(p.address or '?')}, "
            f"app port {ports}); legs: {_legs(p)} | encrypted peers: {md_code(peers)} | "
            f"{plural(p.anomalies, 'anomaly')}")


def hop_rows(hops: list[Hop], markdown: bool = False) -> list[list[object]]:
    if markdown:
        return [
            [md_code(h.source, True), md_code(target_label(h.target, h.target_source), True),
             h.protocol, h.calls, h.propagated,
             *(h.broken[k] or "" for k in KINDS), md_code(", ".join(sorted(h.headers_lost)), True)]
            for h in hops
        ]
    return [
        [_e(h.source), _e(target_label(h.target, h.target_source, short=True)),
         h.protocol, h.calls, h.propagated,
         *(h.broken[k] or "" for k in KINDS), _e(", ".join(sorted(h.headers_lost)))]
        for h in hops
    ]


HOP_HEADERS = ["source", "target", "proto", "calls", "ok", "miss", "chg", "part", "malf",
               "headers affected"]
HOP_COLUMNS = (
    Column("source", wraps=True, sep=" "), Column("target", wraps=True, sep=" "), Column("proto"),
    Column("calls", right=True), Column("ok", right=True),
    *(Column(t, right=True) for t in ("miss", "chg", "part", "malf")),
    Column("headers affected", wraps=True),
)


def hop_table(hops: list[Hop], width: int, paint: Paint = PLAIN) -> list[str]:
    """The hop table in ``width`` columns; a broken hop's row in the colour of a break, a
    hop that carried every header on in the colour of success. When even the longest
    header name leaves no room for the last column, the headers go under their row."""
    rows = hop_rows(hops)
    head, body = grid(HOP_COLUMNS, rows, width)
    under: list[list[str]] = [[] for _ in hops]
    if max(len(x) for x in head + [y for b in body for y in b]) > width:
        head, body = grid(HOP_COLUMNS[:-1], [r[:-1] for r in rows], width)
        under = [wrap_list(str(r[-1]).split(", "), width, "      ", "    headers affected: ")
                 if r[-1] else [] for r in rows]
    out = list(head)
    for h, lines, extra in zip(hops, body, under, strict=True):
        style = "broken" if h.broken_total else "ok" if h.propagated == h.calls else ""
        out.extend(paint(style, x) for x in lines + extra)
    return out


def _pairs(d: dict[str, str], policy: Policy | bool) -> list[str]:
    if not d:
        return ["(none)"]
    return [f"{k}: {shown_value(k, v, policy)}" for k, v in d.items()]


def attribution_words(f: Finding) -> str:
    """How the outbound call was tied to the request it was made for, in words."""
    if f.attribution == "none":
        return "made while no request was being served (a root call)"
    by = {"x-request-id": "matched to its inbound request by x-request-id",
          "trace-id": "matched to its inbound request by trace id",
          "span-lineage": "matched to its inbound request by its parent span id",
          "time-window": "matched by time"}.get(f.attribution, f"matched by {f.attribution}")
    why = ["made while that request was being served"] if f.attribution == "time-window" else []
    if f.confidence == "likely":
        why.append("likely, no id in common")
    elif f.confidence == "ambiguous":
        why.append(f"ambiguous: inbound frames {', '.join(map(str, f.candidates))} are candidates")
    return by + (f" ({'; '.join(why)})" if why else "")


def finding_lines(f: Finding, policy: Policy | bool = DEFAULT, width: int = 120,
                  paint: Paint = PLAIN) -> list[str]:
    policy = _policy(policy)
    name, source = target_of(f.outbound)
    target = policy.url(target_label(f.target or name, source))
    i, o = f.inbound, f.outbound
    lines = wrap(_e(f"{f.source} → {target}  trace {f.trace_id or '-'}"), width, "          ",
                 f"{f.kind.upper():9} ")
    lines[0] = paint(f.kind, lines[0][:9]) + lines[0][9:]
    lines += wrap(_e(attribution_words(f)), width, "    ", "  ")
    if i is not None:
        lines += wrap(_e(f"{line(i, policy)}  [{policy.url(i.authority) or '?'}]"), width,
                      " " * 17, f"  inbound  frame {i.frame:>6}  ")
    where = policy.url(o.authority) or unknown_target(reply_address(o), o.connection)
    stream = f" stream {o.stream}" if o.stream is not None else ""
    outbound = f"{line(o, policy)}  [{where}, {o.protocol}{stream}]"
    lines += wrap(_e(outbound), width, " " * 17, f"  outbound frame {o.frame:>6}  ")
    lines += wrap_list([_e(h) for h in f.headers], width, " " * 11, "  headers  ")
    if f.rule:
        lines += wrap(_e(policy.prose(f.rule)), width, " " * 11, "  rule     ")
    lines += wrap_list([_e(x) for x in _pairs(f.expected, policy)], width, " " * 11, "  expected ")
    lines += wrap_list([_e(x) for x in _pairs(f.found, policy)], width, " " * 11, "  found    ")
    return lines


def trace_lines(t: Trace, policy: Policy = DEFAULT, width: int = 120, paint: Paint = PLAIN) -> list[str]:
    lines = [f"trace {_e(t.trace_id)}" + ("  " + paint("broken", "BROKEN") if t.broken else "")]
    depth: dict[str, int] = {}
    for s in t.spans:
        d = depth.get(s.parent_id or "", -1) + 1 if s.parent_id else 0
        depth[s.span_id] = d
        arrow = f"→ {target_label(s.peer or '', target_of(s.call)[1])}" if s.kind == "client" else "⇐"
        marks = f"  [{', '.join(f.kind for f in s.findings)}]" if s.findings else ""
        lead = f"  {'  ' * d}"
        lines += wrap(_e(f"{s.service} {arrow} {line(s.call, policy)} "
                         f"({s.call.capture.rsplit('/', 1)[-1]} frame {s.call.frame}){marks}"),
                      width, lead + "    ", lead)
    return lines


# -- the grouped verdict -----------------------------------------------------------------------

_B3: Final = ("x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")


def header_words(headers: list[str]) -> str:
    """Header names for a sentence: the B3 multi-header set named as one when all of it is
    involved (the detail below lists each)."""
    b3 = [h for h in headers if h in _B3]
    whole = set(_B3[:4]) <= set(b3)  # only the whole set is "the B3 headers"
    names = [h for h in headers if h not in _B3 or not whole]
    if whole:
        names.insert(headers.index(b3[0]) if b3[0] in headers else len(names), "the B3 headers")
        names = list(dict.fromkeys(names))
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _fix(kind: str, source: str, target: str, headers: str, rules: list[str]) -> str:
    if kind == "missing":
        return f"{source} does not copy {headers} from its inbound request to its calls to {target}"
    if kind == "partial":
        return f"{source} copies some tracing headers but not {headers} to its calls to {target}"
    if kind == "changed":
        return (f"{source} sends {headers} with values of its own instead of copying them from its "
                f"inbound request, on its calls to {target}")
    rule = (f" ({rules[0]})" if len(rules) == 1 else
            f" ({len(rules)} different rules, below)" if rules else "")
    return (f"{source} sends {headers} in a form its specification does not allow{rule}, "
            f"on its calls to {target}")


def _hop_key(f: Finding) -> tuple[str, str, str]:
    return (f.source, target_of(f.outbound)[0], f.outbound.protocol)


@dataclass(slots=True)
class KindGroup:
    """The findings of one kind on one hop, and the sentence that says what the app does."""

    kind: str
    findings: list[Finding]
    first_frame: int
    text: str


@dataclass(slots=True)
class HopGroup:
    """One broken hop of the grouped verdict: its findings by kind, in KINDS order."""

    source: str
    target: str  # as shown: labelled when inferred, credentials redacted
    protocol: str
    hop: Hop | None
    kinds: list[KindGroup]

    @property
    def broken(self) -> int:
        return sum(len(k.findings) for k in self.kinds)


def verdict_groups(r: Result, policy: Policy) -> list[HopGroup]:
    """The findings grouped by hop, in the order they first appear: what the text verdict
    prints and the HTML page shows (one grouping, one set of sentences)."""
    groups: dict[tuple[str, str, str], dict[str, list[Finding]]] = {}
    for f in r.findings:
        groups.setdefault(_hop_key(f), {}).setdefault(f.kind, []).append(f)
    hops = {(h.source, h.target, h.protocol): h for h in r.hops}
    out: list[HopGroup] = []
    for key, kinds in groups.items():
        h = hops.get(key)
        source, name, protocol = key
        first = next(iter(kinds.values()))[0]
        target = policy.url(target_label(first.target or name, target_of(first.outbound)[1])) or name
        of = f" of {h.calls}" if h is not None else ""
        per_kind: list[KindGroup] = []
        for kind in KINDS:
            fs = kinds.get(kind)
            if not fs:
                continue
            headers = list(dict.fromkeys(x for f in fs for x in f.headers))
            rules = list(dict.fromkeys(policy.prose(f.rule) for f in fs if f.rule))
            frame = min(f.outbound.frame for f in fs)
            text = (f"{_fix(kind, source, target, header_words(headers), rules)}: "
                    f"{len(fs)}{of} calls; first at frame {frame}")
            per_kind.append(KindGroup(kind, fs, frame, text))
        out.append(HopGroup(source, target, protocol, h, per_kind))
    return out


def verdict_lines(r: Result, policy: Policy, width: int, paint: Paint = PLAIN) -> list[str]:
    """One paragraph per broken hop, before any detail: the calls it broke, of how many, and
    per kind of break what the app does wrong, in words, with the first frame to look at."""
    out: list[str] = []
    for g in verdict_groups(r, policy):
        h = g.hop
        of = f" of {h.calls}" if h is not None else ""
        out += [paint("broken", x) for x in wrap(
            _e(f"{g.source} → {g.target}: {g.broken}{of} {'call' if h and h.calls == 1 else 'calls'} broken"),
            width, "    ")]
        for k in g.kinds:
            lead = f"  {len(k.findings)} {k.kind}: "
            lines = wrap(_e(k.text), width, "      ", lead)
            lines[0] = "  " + paint(k.kind, lead[2:].rstrip()) + " " + lines[0][len(lead):]
            out += lines
    return out


_IDS = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\b[0-9a-fA-F]{16,}\b|\b\d+\b")


def folded_notes(r: Result, policy: Policy, width: int) -> list[str]:
    """Notes, those that differ only in their ids or numbers folded into one line that
    shows the first in full and counts the others."""
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for n in r.notes:
        if n.kind == "root-call":
            continue
        detail = policy.prose(n.detail)
        groups.setdefault((n.kind, _IDS.sub("#", detail)), []).append((n.frame, detail))
    out: list[str] = []
    for items in groups.values():
        frame, detail = items[0]
        more = (f" (and {plural(len(items) - 1, 'more note')} like it, the last at frame {items[-1][0]})"
                if len(items) > 1 else "")
        out += wrap(_e(f"{detail}"), width, "    ", f"  frame {frame}{more}: ")
    return out


def _detail(findings: list[Finding], limit: int | None) -> list[Finding]:
    """At most ``limit`` findings, in their order, the first of each hop and kind before
    any other: every kind of break on every hop keeps an example."""
    if limit is None or len(findings) <= limit:
        return findings
    chosen: set[int] = set()
    seen: set[tuple[tuple[str, str, str], str]] = set()
    for n, f in enumerate(findings):
        if (_hop_key(f), f.kind) not in seen and len(chosen) < limit:
            seen.add((_hop_key(f), f.kind))
            chosen.add(n)
    for n in range(len(findings)):
        if len(chosen) >= limit:
            break
        chosen.add(n)
    return [f for n, f in enumerate(findings) if n in chosen]


def table(r: Result, show_all: bool = False, policy: Policy | bool = DEFAULT, *,
          width: int | None = None, limit: int | None = DEFAULT_LIMIT, paint: Paint = PLAIN) -> str:
    """The report for a terminal of ``width`` columns (the terminal's by default): pods, the
    hop table, the grouped verdict, then up to ``limit`` findings in detail (all with
    ``show_all``, which also lists every trace)."""
    policy = _policy(policy)
    cols = term_width() if width is None else width
    out: list[str] = [pod_line(p, cols) for p in r.pods]
    out.append("")
    if r.hops:
        out.extend(hop_table(r.hops, cols, paint))
    else:
        out.extend(nothing_found(r, escape))
    out.append("")
    broken = [t for t in r.traces if t.broken]
    if r.findings:
        out.append(f"{plural(len(r.findings), 'finding')} in {plural(len(broken), 'broken trace')}:")
        out.extend(verdict_lines(r, policy, cols, paint))
        shown = r.findings if show_all else _detail(r.findings, limit)
        if shown:
            out.append("")
            out.append("detail:" if len(shown) == len(r.findings) else
                       f"detail ({len(shown)} of {len(r.findings)}; --limit N or --all shows more):")
        for f in shown:
            out.append("")
            out.extend(finding_lines(f, policy, cols, paint))
    elif r.hops:
        out.append(paint("ok", "no break found: every outbound call carried the tracing headers on"))
    notes = folded_notes(r, policy, cols)
    if notes:
        out.append("")
        out.append("notes:")
        out.extend(notes)
    if show_all:
        out.append("")
        out.append(f"{plural(len(r.traces), 'trace')}:")
        for t in r.traces:
            out.extend(trace_lines(t, policy, cols, paint))
    if r.anomalies:
        out.append("")
        out.append(f"{plural(len(r.anomalies), 'anomaly')} (see `tracewire info`)")
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
                   f"trace {md_code(f.trace_id or '-')}, "
                   f"{attribution_words(f)}: {served}, "
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
    dumps = jsonout.compact  # orjson, the bytes json wrote
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
