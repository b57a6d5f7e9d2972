"""``tracewire analyze --format html``: one self-contained, offline HTML page.

Strategy: the page is a viewer of the same records the JSON report holds, made safe and
small before it is written.

- Data comes from the report's dicts (``finding_dict``, ``hop_dict``, ``pod_dict``) and from
  the calls through the same ``Policy``, so redaction is the JSON report's. The data is
  embedded once, as JSON in a ``<script type="application/json">`` element, with ``<``,
  ``>``, ``&``, ``'`` and the line separators written as ``\\uXXXX``: no capture text can
  close the element or start markup. The page's own script (report.js, inlined) builds
  every element from it with ``textContent`` and ``setAttribute``, never ``innerHTML``.
- The service graph is SVG drawn here, in Python, every text ``html.escape``-d; the
  sequence diagram and the waterfall of a trace are drawn by the page on demand (a click),
  with the DOM API, so thousands of traces cost nothing until one is opened. No library:
  a layered layout of a few dozen services needs none, and nothing is fetched.
- A Content-Security-Policy with the hashes of the one script and the one style sheet
  forbids every other script, style and request: even an escaping bug could not run
  injected code or make the page call out.
- Bounded: at most ``Limits.findings`` findings and ``Limits.traces`` traces are embedded
  (broken traces first; every kind of break on every hop keeps an example), the graph at
  most ``Limits.nodes`` services; counts are always over everything, and the page says
  what was left out. The page of a 100 MB capture stays a few MB.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

from analyzer import __version__
from analyzer.analysis import KINDS, Call, Finding, Hop, Pod, Result, Trace
from analyzer.analysis.naming import target_label, target_of
from analyzer.report import jsonout
from analyzer.report.analysis import (
    _hop_key,
    corroboration,
    finding_dict,
    hop_dict,
    pod_dict,
    verdict_groups,
)
from analyzer.report.messages import anomaly_dict
from analyzer.report.redact import DEFAULT, Confirms, Policy, escape, json_safe
from analyzer.report.select import service_matches

__all__ = ["Limits", "embed_json", "page", "page_data", "service_graph"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much detail one page embeds; everything beyond is counted, not shown."""

    findings: int = 2000
    traces: int = 3000
    spans: int = 60_000  # over all embedded traces
    notes: int = 500
    anomalies: int = 500
    nodes: int = 120  # services in the graph
    edges: int = 300


LIMITS: Final = Limits()

# -- embedding --------------------------------------------------------------------------------

# In a <script> element only "</script" and "<!--" can end it early; every "<" is escaped,
# so neither can occur. ">", "&" and "'" too, so the text is also inert in an attribute or
# elsewhere; U+2028/9 for old JavaScript parsers. Lone surrogates (from a value the stdlib
# encoder wrote) as escapes, so the page encodes as UTF-8.
# (mypyc takes no surrogate in a string literal: the range is built with chr)
_SURROGATES: Final = f"{chr(0xD800)}-{chr(0xDFFF)}"
_EMBED: Final = re.compile(f"[<>&'\u2028\u2029{_SURROGATES}]")


def _u(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def embed_json(obj: object) -> str:
    """JSON for a ``<script type="application/json">`` element: compact, C1 controls and
    bidi marks escaped (``json_safe``), and no character that HTML gives a meaning to."""
    return _EMBED.sub(_u, json_safe(jsonout.compact(obj)))


_SURROGATE: Final = re.compile(f"[{_SURROGATES}]")


def _x(s: object) -> str:
    """Text for HTML or SVG, in an element or an attribute value: & < > " ' escaped; a lone
    surrogate (not encodable) shown as U+FFFD; controls and bidi marks as the text reports show
    them (``\\x1b``), so the file is as inert in a terminal (cat, grep) as they are."""
    return _SURROGATE.sub("\ufffd", html.escape(escape(str(s)), quote=True))


# -- the data the page shows ---------------------------------------------------------------------


def _chosen_findings(findings: list[Finding], limit: int) -> list[int]:
    """Indexes of at most ``limit`` findings, in order: the first of each hop and kind
    before any other (as the text report's detail), so no kind of break goes unshown."""
    if len(findings) <= limit:
        return list(range(len(findings)))
    chosen: set[int] = set()
    seen: set[tuple[tuple[str, str, str], str]] = set()
    for n, f in enumerate(findings):
        key = (_hop_key(f), f.kind)
        if key not in seen and len(chosen) < limit:
            seen.add(key)
            chosen.add(n)
    for n in range(len(findings)):
        if len(chosen) >= limit:
            break
        chosen.add(n)
    return sorted(chosen)


class _Strings:
    """A string table: spans repeat services, paths and ids; each is written once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, s: str | None) -> int:
        if s is None:
            return -1
        n = self.index.get(s)
        if n is None:
            n = self.index[s] = len(self.items)
            self.items.append(s)
        return n


def _ids(c: Call | None, policy: Policy, confirms: Confirms | None) -> tuple[list[str], list[str]]:
    """The trace ids and x-request-ids a call carries that may be shown: what the page's
    search matches, as ``TraceQuery.matches_contexts`` does (hidden contexts left out)."""
    if c is None:
        return [], []
    tids: list[str] = []
    rids: list[str] = []
    for t in policy.visible(c.trace, confirms):
        if t.trace_id is not None and t.trace_id not in tids:
            tids.append(t.trace_id)
        if t.format == "x-request-id" and t.request_id and t.request_id not in rids:
            rids.append(t.request_id)
    return tids, rids


# Span fields, in the order of the arrays the page reads (report.js SPAN).
SPAN_FIELDS: Final = ("span_id", "parent", "kind", "service", "peer", "peer_source", "capture",
                      "frame", "response_frame", "start", "end", "protocol", "stream", "method",
                      "path", "authority", "status", "findings", "tids", "rids")


def page_data(r: Result, policy: Policy | bool = DEFAULT, limits: Limits = LIMITS) -> dict[str, Any]:
    """Everything the page shows, as one JSON-able dict, bounded by ``limits``."""
    policy = policy if isinstance(policy, Policy) else Policy(show_secrets=policy)
    confirms = corroboration(r.calls).confirms
    strings = _Strings()

    # Findings: a bounded choice, each with the ids search matches.
    chosen = _chosen_findings(r.findings, limits.findings)
    fnum: dict[int, int] = {id(r.findings[n]): k for k, n in enumerate(chosen)}
    findings: list[dict[str, Any]] = []
    for n in chosen:
        f = r.findings[n]
        d = finding_dict(f, policy, confirms)
        tids, rids = _ids(f.outbound, policy, confirms)
        itids, irids = _ids(f.inbound, policy, confirms)
        if f.trace_id is not None:
            tids.insert(0, f.trace_id)
        if f.x_request_id is not None and d["x_request_id"] == f.x_request_id:
            rids.insert(0, f.x_request_id)
        d["tids"] = list(dict.fromkeys(tids + itids))
        d["rids"] = list(dict.fromkeys(rids + irids))
        d["target_label"] = policy.url(target_label(f.target or target_of(f.outbound)[0],
                                                    target_of(f.outbound)[1]))
        d["trace"] = -1
        findings.append(d)

    # Traces: broken ones first, then the others, up to the bounds.
    order = [t for t in r.traces if t.broken] + [t for t in r.traces if not t.broken]
    kept: list[Trace] = []
    n_spans = 0
    for t in order:
        if len(kept) >= limits.traces:
            break
        if n_spans + len(t.spans) > limits.spans:
            continue  # one huge trace does not keep the next ones out
        kept.append(t)
        n_spans += len(t.spans)
    t0 = min((s.call.ts_ns for t in kept for s in t.spans), default=0)
    owner: dict[str, int] = {}  # span id -> global index of the first span with it (as select._joined)
    g = 0
    for t in kept:
        for s in t.spans:
            owner.setdefault(s.span_id, g)
            g += 1
    traces: list[dict[str, Any]] = []
    for ti, t in enumerate(kept):
        spans: list[list[Any]] = []
        for s in t.spans:
            c = s.call
            fs = []
            for f in s.findings:
                k = fnum.get(id(f), -1)
                if k >= 0:
                    findings[k]["trace"] = ti
                fs.append([f.kind, strings(f.source), strings(f.target), k])
            st, sr = _ids(c, policy, confirms)
            parent = -1 if s.parent_id is None else owner.get(s.parent_id, -2)
            spans.append([
                strings(s.span_id), parent, 1 if s.kind == "client" else 0, strings(s.service),
                strings(s.peer), strings(target_of(c)[1]) if s.kind == "client" else -1,
                strings(c.capture), c.frame, c.response_frame, c.ts_ns - t0,
                None if c.response_ts is None else c.response_ts - t0,
                strings(c.protocol), c.stream, strings(c.method), strings(policy.url(c.path)),
                strings(policy.url(c.authority)), c.status, fs,
                [strings(x) for x in st], [strings(x) for x in sr],
            ])
        traces.append({"id": t.trace_id, "broken": t.broken, "spans": spans})

    broken_total = sum(1 for t in r.traces if t.broken)
    notes = [{"kind": n.kind, "detail": policy.prose(n.detail), "capture": n.capture, "frame": n.frame}
             for n in r.notes[: limits.notes]]
    anomalies = [{"capture": cap, **anomaly_dict(a)} for cap, a in r.anomalies[: limits.anomalies]]
    return {
        "tool": {"name": "tracewire", "version": __version__},
        "captures": r.captures,
        "pods": [pod_dict(p) for p in r.pods],
        "hops": [_hop(h, policy) for h in r.hops],
        "groups": _groups(r, policy, fnum),
        "findings": findings,
        "traces": traces,
        "strings": strings.items,
        "t0": str(t0),
        "notes": notes,
        "anomalies": anomalies,
        "kinds": list(KINDS),
        "summary": {
            "outbound_calls": len(r.outcomes),
            "findings": len(r.findings),
            "traces": len(r.traces),
            "broken_traces": broken_total,
            "not_in_capture": r.not_in_capture,
            "limited_by_unknown_headers": r.limited,
            "unknown_headers": r.unknown_headers,
        },
        # What the page leaves out, so it can say so (counts are over everything).
        "omitted": {
            "findings": len(r.findings) - len(findings),
            "traces": len(r.traces) - len(kept),
            "broken_traces": broken_total - sum(1 for t in kept if t.broken),
            "notes": max(0, len(r.notes) - limits.notes),
            "anomalies": max(0, len(r.anomalies) - limits.anomalies),
        },
        "limits": {"findings": limits.findings, "traces": limits.traces, "spans": limits.spans},
    }


def _hop(h: Hop, policy: Policy) -> dict[str, Any]:
    d = hop_dict(h)
    d["label"] = policy.url(target_label(h.target, h.target_source))
    return d


def _groups(r: Result, policy: Policy, fnum: dict[int, int]) -> list[dict[str, Any]]:
    """The text report's grouped verdict (``verdict_groups``): counts and sentences over
    every finding; ``findings`` the indexes embedded."""
    return [{"source": g.source, "target": g.target, "protocol": g.protocol,
             "calls": None if g.hop is None else g.hop.calls, "broken": g.broken,
             "kinds": [{"kind": k.kind, "count": len(k.findings), "first_frame": k.first_frame,
                        "text": k.text} for k in g.kinds],
             "findings": sorted(fnum[id(f)] for k in g.kinds for f in k.findings if id(f) in fnum)}
            for g in verdict_groups(r, policy)]


# -- the service graph ---------------------------------------------------------------------------

_NODE_W: Final = 200
_NODE_H: Final = 50
_COL: Final = 400
_ROW: Final = 90


def _pod_of(label: str, pods: list[Pod]) -> Pod | None:
    for p in pods:
        if service_matches(p.service, label):
            return p
    return None


def service_graph(r: Result, policy: Policy | bool = DEFAULT, limits: Limits = LIMITS) -> str:
    """The pods and the services they call as SVG: one edge per hop, red when calls broke
    (with the count), green when every call carried the context on, grey when none could
    be judged; encrypted mesh legs (TLS between sidecars) dashed, apart from the hops.
    Each service's name is SVG text (escaped)."""
    policy = policy if isinstance(policy, Policy) else Policy(show_secrets=policy)
    names: dict[str, dict[str, Any]] = {}  # node key -> node

    def node(key: str, label: str, sub: str, pod: bool) -> str:
        if key not in names and len(names) < limits.nodes:
            names[key] = {"label": label, "sub": sub, "pod": pod}
        return key

    for p in r.pods:
        node("pod:" + p.service, p.service, p.capture.rsplit("/", 1)[-1], True)
    edges: list[tuple[str, str, Hop]] = []
    left_out = 0
    for h in r.hops:
        target = _pod_of(h.target, r.pods)
        src = f"pod:{h.source}" if any(p.service == h.source for p in r.pods) else f"svc:{h.source}"
        if src not in names:
            node(src, h.source, "", False)
        dst = ("pod:" + target.service if target is not None else
               node("svc:" + h.target, policy.url(target_label(h.target, h.target_source, short=True))
                    or h.target, "", False))
        if src in names and dst in names and len(edges) < limits.edges:
            edges.append((src, dst, h))
        else:
            left_out += 1
    # Encrypted legs: a pod's TLS peers, joined to the pod at that address when captured.
    mesh: list[tuple[str, str, int]] = []
    by_address = {p.address: p for p in r.pods if p.address}
    for p in r.pods:
        for peer, count in sorted(p.encrypted_peers.items()):
            host = peer.rsplit(":", 1)[0] if peer.count(":") == 1 else peer
            other = by_address.get(host)
            if other is not None and other is p:
                continue
            dst = ("pod:" + other.service if other is not None
                   else node("tls:" + peer, peer, "encrypted peer", False))
            if dst in names and len(mesh) < limits.edges:
                mesh.append(("pod:" + p.service, dst, count))
            else:
                left_out += 1
    # Layers: the longest path of hops from a node nothing calls (bounded passes: cycles).
    layer = dict.fromkeys(names, 0)
    for _ in range(min(len(names), 12)):
        changed = False
        for s, d, _h in edges:
            if s != d and layer[d] < layer[s] + 1 and layer[s] + 1 < 12:
                layer[d] = layer[s] + 1
                changed = True
        if not changed:
            break
    for key, n in names.items():
        if key.startswith("tls:"):
            n["tls"] = True
    cols: dict[int, list[str]] = {}
    for key in names:
        if not key.startswith("tls:"):
            cols.setdefault(layer[key], []).append(key)
    pos: dict[str, tuple[int, int]] = {}
    for c, keys in cols.items():
        for i, key in enumerate(keys):
            pos[key] = (20 + c * _COL, 30 + i * _ROW)
    tls = [k for k in names if k.startswith("tls:")]
    bottom = max((y for _, y in pos.values()), default=0) + _ROW + 30
    # the band of encrypted peers is packed closer than the columns, as wide as they are
    per_row = max(3, (max((x for x, _ in pos.values()), default=0) + _NODE_W) // (_NODE_W + 30))
    for i, key in enumerate(tls):
        pos[key] = (20 + (i % per_row) * (_NODE_W + 30), bottom + (i // per_row) * _ROW)
    width = max((x for x, _ in pos.values()), default=0) + _NODE_W + 40
    height = max((y for _, y in pos.values()), default=0) + _NODE_H + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" id="graph" '
           f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="service graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11" '
           'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
           '<path d="M0,0L10,5L0,10z" class="arrowhead"/></marker></defs>']
    seen_pairs: dict[tuple[str, str], int] = {}
    for s, d, h in edges:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        k = seen_pairs.get((s, d), 0)
        seen_pairs[(s, d)] = k + 1
        state = "broken" if h.broken_total else "ok" if h.calls and h.propagated == h.calls else "unjudged"
        label = (f"{h.broken_total} of {h.calls} broken" if h.broken_total
                 else f"{h.propagated} of {h.calls} ok")
        sx, sy = x1 + _NODE_W, y1 + _NODE_H // 2 + k * 8
        ex, ey = x2, y2 + _NODE_H // 2 + k * 8
        if s == d:
            path = f"M{sx},{sy} C{sx + 60},{sy - 60} {x1 + 40},{y1 - 60} {x1 + 60},{y1}"
            lx, ly = sx + 10, sy - 40
        elif ex <= sx:  # same column or backwards: an arc below
            ex, ey = x2 + _NODE_W // 2, y2 + _NODE_H
            path = f"M{sx},{sy} C{sx + 80},{sy + 80} {ex + 40},{ey + 80} {ex},{ey}"
            lx, ly = (sx + ex) // 2 + 40, max(sy, ey) + 50
        else:
            mid = (sx + ex) // 2
            path = f"M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}"
            lx, ly = mid, (sy + ey) // 2 - 6 + k * 14
        title = (f"{h.source} → {target_label(h.target, h.target_source)} ({h.protocol}): {h.calls} calls, "
                 f"{h.propagated} carried the context on, {h.broken_total} broken")
        out.append(f'<g class="edge {state}" data-source="{_x(h.source)}" data-target="{_x(h.target)}" '
                   f'data-protocol="{_x(h.protocol)}"><title>{_x(policy.url(title))}</title>'
                   f'<path d="{path}" marker-end="url(#arrow)"/>'
                   f'<text x="{lx}" y="{ly}" text-anchor="middle">{_x(label)} · {_x(h.protocol)}</text></g>')
    for s, d, count in mesh:
        (x1, y1), (x2, y2) = pos[s], pos[d]
        sx, sy = x1 + _NODE_W // 2 - 30, y1 + _NODE_H
        if d.startswith("tls:"):  # down to the band of encrypted peers
            ex, ey = x2 + _NODE_W // 2, y2
            path = f"M{sx},{sy} C{sx},{(sy + ey) // 2} {ex},{(sy + ey) // 2} {ex},{ey}"
            lx, ly = (sx + ex) // 2, (sy + ey) // 2 - 4
        else:  # between two captured pods: an arc under both, apart from the hop's edge
            ex, ey = x2 + _NODE_W // 2 - 30, y2 + _NODE_H
            dip = max(sy, ey) + 34
            path = f"M{sx},{sy} C{sx},{dip} {ex},{dip} {ex},{ey}"
            lx, ly = (sx + ex) // 2, dip - 4
        out.append(f'<g class="edge tls"><title>{_x(f"encrypted (TLS) connections: {count}")}</title>'
                   f'<path d="{path}"/><text x="{lx}" y="{ly}" text-anchor="middle">TLS ×{count}</text></g>')
    for key, n in names.items():
        x, y = pos[key]
        kind = "pod" if n["pod"] else "tls" if n.get("tls") else "target"
        out.append(f'<g class="node {kind}" data-service="{_x(n["label"])}">'
                   f'<title>{_x(n["label"])}{" — " + _x(n["sub"]) if n["sub"] else ""}</title>'
                   f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="8"/>'
                   f'<svg x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}">'  # clips long names
                   f'<text class="name" x="10" y="21">{_x(n["label"])}</text>'
                   f'<text class="sub" x="10" y="39">{_x(n["sub"])}</text></svg></g>')
    out.append("</svg>")
    more = (f'<p class="left-out">{left_out} more hops or services are not drawn (the graph shows at most '
            f'{limits.nodes} services and {limits.edges} edges); the findings below list them all.</p>'
            if left_out else "")
    return "".join(out) + more


# -- the page ---------------------------------------------------------------------------------


def _asset(name: str) -> str:
    return (resources.files("analyzer.report") / "html" / name).read_text(encoding="utf-8")


def _sha256(s: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii")


def page(r: Result, policy: Policy | bool = DEFAULT, limits: Limits = LIMITS) -> str:
    """The whole HTML document."""
    policy = policy if isinstance(policy, Policy) else Policy(show_secrets=policy)
    script = _asset("report.js")
    style = _asset("report.css")
    data = embed_json(page_data(r, policy, limits))
    # Only this page's own script and style may run; nothing may be fetched, framed or sent.
    csp = (f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    caps = ", ".join(c.rsplit("/", 1)[-1] for c in r.captures[:20])
    if len(r.captures) > 20:
        caps += f" and {len(r.captures) - 20} more"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>tracewire: {_x(caps)}</title>"
        f"<style>{style}</style></head><body>"
        f'<header><h1>tracewire analysis</h1><p class="captures">{_x(caps)}</p>'
        '<p id="summary"></p><p id="left-out"></p></header>'
        '<section id="graph-section"><h2>Service graph</h2>'
        '<p class="legend"><span class="key broken">broken calls</span> '
        '<span class="key ok">every call carried the context on</span> '
        '<span class="key unjudged">not judged</span> '
        '<span class="key tls">encrypted (TLS) mesh leg</span></p>'
        f"<div class=\"graph-box\">{service_graph(r, policy, limits)}</div>"
        '<div id="pods"></div></section>'
        '<section id="filters"><h2>Findings</h2>'
        '<label>trace id or x-request-id <input id="search" type="search" size="44" '
        'placeholder="as tracewire --trace takes it" autocomplete="off"></label> '
        '<label>service <select id="service"><option value="">all</option></select></label> '
        '<label>kind <select id="kind"><option value="">all</option></select></label> '
        '<span id="search-status"></span></section>'
        '<section id="findings"></section>'
        '<section id="trace-view" hidden></section>'
        '<section id="traces-section"><h2>Traces</h2><div id="traces"></div></section>'
        '<section id="limits"><h2>Limits, notes and anomalies</h2><div id="limits-body"></div></section>'
        f'<footer>tracewire {_x(__version__)} — offline page: nothing is loaded from elsewhere.</footer>'
        f'<script type="application/json" id="data">{data}</script>'
        f"<script>{script}</script></body></html>\n"
    )
