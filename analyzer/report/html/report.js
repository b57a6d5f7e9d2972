// tracewire's HTML report: the viewer of the data embedded in the page.
//
// Strategy: every value comes from capture content and is untrusted. Elements are built
// with createElement / textContent / setAttribute only (never innerHTML), so a value is
// always text. Lists are built once; filters only hide elements; a trace's diagrams are
// drawn when it is opened, so thousands of traces cost nothing until one is looked at.
// The search is a port of analyzer/report/select.py (TraceQuery, service_matches and
// select's rules); tests/test_html_browser.py checks it against the Python on the same ids.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const S = D.strings;
  // span arrays: the order of html.py SPAN_FIELDS
  const SP = {id: 0, parent: 1, kind: 2, service: 3, peer: 4, peerSource: 5, capture: 6, frame: 7,
    rframe: 8, start: 9, end: 10, protocol: 11, stream: 12, method: 13, path: 14, authority: 15,
    status: 16, findings: 17, tids: 18, rids: 19};
  const SVGNS = "http://www.w3.org/2000/svg";
  const PAGE = 100; // traces per page of the trace list
  const MAX_ROWS = 400; // spans drawn in one diagram

  function str(i) { return i === null || i === undefined || i < 0 ? null : S[i]; }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function plural(n, what) {
    return n + " " + (n === 1 ? what : /[^aeiou]y$/.test(what) ? what.slice(0, -1) + "ies" : what + "s");
  }
  function base(path) { const s = String(path); return s.slice(s.lastIndexOf("/") + 1); }

  // -- the --trace matching, as select.py -------------------------------------------------
  const MAX_QUERY = 512;
  const RE_HEX = /^[0-9a-f]{1,32}$/;
  const RE_TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}.*$/;
  const RE_B3 = /^([0-9a-f]{16}|[0-9a-f]{32})-[0-9a-f]{16}(-.*)?$/;
  const RE_UBER = /^([0-9a-f]{1,32}):[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}$/;
  // Python's str.isprintable: no control, format, surrogate, private-use, unassigned or
  // separator character but the ASCII space
  const NOT_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;

  function cpLength(s) { let n = 0; for (const _ of s) n++; return n; }

  // tracing/requestid.py request_id_key: Envoy's trace-reason character (14) masked
  function requestKey(value) {
    let s = value.replace(/^[ \t]+|[ \t]+$/g, "").toLowerCase();
    const cps = Array.from(s);
    if (cps.length === 36) { cps[14] = "*"; s = cps.join(""); }
    return s;
  }

  function parseQuery(text) {
    const s = text.trim().toLowerCase();
    if (!s || cpLength(s) > MAX_QUERY || NOT_PRINTABLE.test(s)) return null;
    let hexid = null;
    for (const re of [RE_TRACEPARENT, RE_B3, RE_UBER, RE_HEX]) {
      const m = re.exec(s);
      if (m) { hexid = re === RE_HEX ? s : m[1]; break; }
    }
    let traceId = null, low64 = null;
    if (hexid !== null) {
      if (hexid.length > 16) traceId = hexid.padStart(32, "0");
      else low64 = hexid.padStart(16, "0");
    }
    return {text: text, traceId: traceId, low64: low64, requestKey: requestKey(s)};
  }
  function matchesId(q, tid) {
    if (tid === null || tid === undefined) return false;
    if (q.traceId !== null) return tid === q.traceId;
    return q.low64 !== null && tid.slice(-16) === q.low64;
  }
  function matchesRequestId(q, rid) { return rid !== null && rid !== undefined && requestKey(rid) === q.requestKey; }
  function matchesIds(q, tids, rids) {
    for (const t of tids) if (matchesId(q, t)) return true;
    for (const r of rids) if (matchesRequestId(q, r)) return true;
    return false;
  }
  const requestKeys = new Map(); // string index -> its request key, computed once
  function matchesTrace(q, t) {
    if (matchesId(q, t.id)) return true;
    for (const s of t.spans) {
      for (const i of s[SP.tids]) if (matchesId(q, S[i])) return true;
      for (const i of s[SP.rids]) {
        let k = requestKeys.get(i);
        if (k === undefined) { k = requestKey(S[i]); requestKeys.set(i, k); }
        if (k === q.requestKey) return true;
      }
    }
    return false;
  }
  function matchesFinding(q, f) { return matchesIds(q, f.tids, f.rids); }

  const RE_V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
  function isIp(host) {
    return RE_V4.test(host) || (host.includes(":") && /^[0-9a-f:.]+(%.+)?$/.test(host));
  }
  // select.py service_matches
  function serviceMatches(name, label) {
    if (label === null || label === undefined) return false;
    const want = name.trim().toLowerCase();
    label = label.toLowerCase();
    if (want === label) return true;
    let host = label;
    if (host.startsWith("[")) host = host.slice(1).split("]")[0];
    else if (host.split(":").length === 2) host = host.slice(0, host.lastIndexOf(":"));
    if (want === host) return true;
    if (isIp(host)) return false;
    return want === host.split(".")[0];
  }

  // Which traces and findings a selection keeps: select.select's rules.
  const spanTrace = [];
  D.traces.forEach(function (t, n) { for (const _ of t.spans) spanTrace.push(n); });
  const globalSpans = [];
  D.traces.forEach(function (t) { for (const s of t.spans) globalSpans.push(s); });

  let links = null; // trace -> traces it is joined to; built at the first search
  function joined(start) {
    // select._joined: traces linked to the ones found through a span's parent in another trace
    if (links === null) {
      links = new Map();
      const link = function (a, b) { if (!links.has(a)) links.set(a, new Set()); links.get(a).add(b); };
      D.traces.forEach(function (t, n) {
        for (const s of t.spans) {
          const p = s[SP.parent];
          if (p >= 0 && spanTrace[p] !== n) { link(n, spanTrace[p]); link(spanTrace[p], n); }
        }
      });
    }
    const seen = new Set(start), todo = start.slice();
    while (todo.length) {
      for (const m of links.get(todo.pop()) || []) if (!seen.has(m)) { seen.add(m); todo.push(m); }
    }
    return seen;
  }

  function selection(query, service, kind) {
    const services = service ? [service] : [];
    const kinds = kind ? [kind] : [];
    function svc() {
      const labels = Array.from(arguments);
      return !services.length || services.some(function (n) { return labels.some(function (x) { return serviceMatches(n, x); }); });
    }
    let traces = D.traces.map(function (_, n) { return n; });
    if (query) traces = Array.from(joined(traces.filter(function (n) { return matchesTrace(query, D.traces[n]); }))).sort(function (a, b) { return a - b; });
    if (kinds.length) {
      traces = traces.filter(function (n) {
        return D.traces[n].spans.some(function (s) {
          return s[SP.findings].some(function (f) { return kinds.includes(f[0]) && svc(str(f[1]), str(f[2])); });
        });
      });
    } else if (services.length) {
      traces = traces.filter(function (n) {
        return D.traces[n].spans.some(function (s) { return svc(str(s[SP.service]), str(s[SP.peer])); });
      });
    }
    const findings = [];
    D.findings.forEach(function (f, n) {
      if ((query === null || matchesFinding(query, f)) && svc(f.source, f.target) && (!kinds.length || kinds.includes(f.kind))) findings.push(n);
    });
    return {traces: traces, findings: findings};
  }
  // For the tests: the page's selection on given inputs, as indexes and ids.
  window.tracewireSelect = function (text, service, kind) {
    const q = text ? parseQuery(text) : null;
    if (text && q === null) return null;
    const r = selection(q, service || "", kind || "");
    return {traces: r.traces.map(function (n) { return D.traces[n].id; }), findings: r.findings};
  };

  // -- header: summary and what the page leaves out --------------------------------------
  const sum = D.summary, om = D.omitted;
  document.getElementById("summary").textContent =
    plural(sum.findings, "finding") + " in " + plural(sum.broken_traces, "broken trace") + "; " +
    plural(sum.traces, "trace") + ", " + plural(sum.outbound_calls, "outbound call") + " over " +
    plural(D.captures.length, "capture") + ".";
  const left = [];
  if (om.findings) left.push((sum.findings - om.findings) + " of " + sum.findings + " findings (every kind of break on every hop keeps an example; the counts below are over all)");
  if (om.traces) left.push((sum.traces - om.traces) + " of " + sum.traces + " traces (broken ones first; " + om.broken_traces + " broken traces left out)");
  if (om.notes) left.push("the first " + D.notes.length + " notes (" + om.notes + " more)");
  if (om.anomalies) left.push("the first " + D.anomalies.length + " anomalies (" + om.anomalies + " more)");
  if (left.length) {
    document.getElementById("left-out").textContent = "This page embeds " + left.join("; ") +
      ". `tracewire analyze --trace ID` (or --format json) shows what is left out.";
  }

  // -- pods and hops -----------------------------------------------------------------------
  const pods = document.getElementById("pods");
  const podList = el("ul", {"class": "pods"});
  for (const p of D.pods) {
    const legs = Object.keys(p.legs).filter(function (k) { return p.legs[k]; }).map(function (k) { return p.legs[k] + " " + k; }).join(", ");
    const peers = Object.keys(p.encrypted_peers).map(function (k) { return k + " (" + p.encrypted_peers[k] + ")"; }).join(", ") || "none";
    const li = el("li", {"class": "pod", "data-service": p.service});
    li.appendChild(el("b", null, p.service));
    li.appendChild(document.createTextNode(" — " + (p.sidecar ? "sidecar pod" : "service") + " in " + base(p.capture) +
      " (named from " + p.name_source + "; " + (p.address || "?") + ", app port " + (p.app_ports.join(",") || "?") +
      "); legs: " + (legs || "none") + "; encrypted peers: " + peers + "; " + plural(p.anomalies, "anomaly")));
    podList.appendChild(li);
  }
  pods.appendChild(podList);
  if (D.hops.length) {
    const t = el("table", {"class": "hops"});
    const head = el("tr");
    for (const h of ["source", "target", "proto", "calls", "ok"].concat(D.kinds, ["headers affected"])) head.appendChild(el("th", null, h));
    t.appendChild(head);
    for (const h of D.hops) {
      const total = D.kinds.reduce(function (a, k) { return a + h.broken[k]; }, 0);
      const tr = el("tr", {"class": total ? "broken" : h.propagated === h.calls ? "ok" : ""});
      for (const v of [h.source, h.label, h.protocol, h.calls, h.propagated].concat(D.kinds.map(function (k) { return h.broken[k] || ""; }), [h.headers_lost.join(", ")])) tr.appendChild(el("td", null, v));
      t.appendChild(tr);
    }
    pods.appendChild(t);
  }

  // -- filters --------------------------------------------------------------------------------
  const search = document.getElementById("search");
  const serviceSel = document.getElementById("service");
  const kindSel = document.getElementById("kind");
  const names = [];
  function addName(n) { if (n && !names.includes(n)) names.push(n); }
  for (const p of D.pods) addName(p.service);
  for (const h of D.hops) { addName(h.source); addName(h.target); }
  for (const n of names) serviceSel.appendChild(el("option", {value: n}, n));
  for (const k of D.kinds) kindSel.appendChild(el("option", {value: k}, k));

  // -- findings grouped by hop ---------------------------------------------------------------
  const findingsBox = document.getElementById("findings");
  const findingEls = [];
  const groupEls = [];
  function pairs(d) {
    const keys = Object.keys(d);
    return keys.length ? keys.map(function (k) { return k + ": " + d[k]; }) : ["(none)"];
  }
  function findingItem(f, n) {
    const li = el("li", {"class": "finding " + f.kind, "data-kind": f.kind, "data-trace": f.trace_id || "",
      "data-index": n, tabindex: 0, role: "button"});
    const top = el("div", {"class": "top"});
    top.appendChild(el("span", {"class": "badge " + f.kind}, f.kind));
    top.appendChild(el("span", {"class": "hop"}, f.source + " → " + (f.target_label || "?")));
    top.appendChild(el("span", {"class": "tid"}, "trace " + (f.trace_id || "-")));
    if (f.trace >= 0) top.appendChild(el("span", {"class": "open"}, "sequence and waterfall ▸"));
    li.appendChild(top);
    const o = f.outbound, i = f.inbound;
    const dl = el("dl");
    function row(k, v) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", null, v)); }
    if (i) row("inbound", "frame " + i.frame + " " + (i.method || "?") + " " + (i.path || "<unknown path>") + " [" + (i.authority || "?") + "] " + base(i.capture));
    else row("inbound", "none (a root call: nothing was being served)");
    row("outbound", "frame " + o.frame + " " + (o.method || "?") + " " + (o.path || "<unknown path>") + " [" + (o.authority || f.target_address || "?") + ", " + o.protocol + (o.stream !== null ? " stream " + o.stream : "") + "] " + base(o.capture));
    row("attribution", f.attribution + " (" + f.confidence + ")" + (f.candidates.length ? "; candidates: frames " + f.candidates.join(", ") : ""));
    if (f.x_request_id) row("x-request-id", f.x_request_id);
    row("headers", f.headers.join(", "));
    if (f.rule) row("rule", f.rule);
    row("expected", pairs(f.expected).join("\n"));
    row("found", pairs(f.found).join("\n"));
    li.appendChild(dl);
    if (f.trace < 0) li.appendChild(el("p", {"class": "note"}, "Its trace is not embedded in this page."));
    function open() { if (f.trace >= 0) showTrace(f.trace, n); }
    li.addEventListener("click", open);
    li.addEventListener("keydown", function (e) { if (e.key === "Enter") open(); });
    return li;
  }
  if (!D.groups.length) findingsBox.appendChild(el("p", {"class": "ok"}, D.hops.length ? "No break found: every outbound call carried the tracing headers on." : "No outbound calls found."));
  for (const g of D.groups) {
    const box = el("div", {"class": "group", "data-source": g.source, "data-target": g.target});
    box.appendChild(el("h3", null, g.source + " → " + g.target + ": " + g.broken + (g.calls !== null ? " of " + g.calls : "") + " " + (g.calls === 1 ? "call" : "calls") + " broken"));
    const ul = el("ul", {"class": "kinds"});
    for (const k of g.kinds) {
      const li = el("li");
      li.appendChild(el("span", {"class": "badge " + k.kind}, k.count + " " + k.kind));
      li.appendChild(document.createTextNode(" " + k.text));
      ul.appendChild(li);
    }
    box.appendChild(ul);
    const ol = el("ol", {"class": "finding-list"});
    for (const n of g.findings) { const li = findingItem(D.findings[n], n); findingEls[n] = li; ol.appendChild(li); }
    box.appendChild(ol);
    if (g.findings.length < g.broken) box.appendChild(el("p", {"class": "note"}, (g.broken - g.findings.length) + " more findings of this hop are not embedded in this page."));
    findingsBox.appendChild(box);
    groupEls.push([box, g.findings]);
  }

  // -- the trace list, one page at a time --------------------------------------------------------
  const tracesBox = document.getElementById("traces");
  let shown = D.traces.map(function (_, n) { return n; });
  let pageNo = 0;
  function duration(s) {
    const e = s[SP.end];
    return e === null ? null : e - s[SP.start];
  }
  function ms(ns) { return (ns / 1e6).toFixed(ns < 1e7 ? 3 : 1) + " ms"; }
  function renderTraces() {
    tracesBox.textContent = "";
    const total = shown.length;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    pageNo = Math.min(pageNo, pages - 1);
    const nav = el("div", {"class": "pager"});
    nav.appendChild(el("span", {id: "trace-count", "data-count": total}, plural(total, "trace") + (total ? ", page " + (pageNo + 1) + " of " + pages : "")));
    const prev = el("button", {type: "button"}, "previous");
    const next = el("button", {type: "button"}, "next");
    prev.disabled = pageNo === 0;
    next.disabled = pageNo >= pages - 1;
    prev.addEventListener("click", function () { pageNo--; renderTraces(); });
    next.addEventListener("click", function () { pageNo++; renderTraces(); });
    nav.appendChild(prev); nav.appendChild(next);
    tracesBox.appendChild(nav);
    const t = el("table", {"class": "traces"});
    const head = el("tr");
    for (const h of ["trace", "verdict", "services", "spans", "start", "duration"]) head.appendChild(el("th", null, h));
    t.appendChild(head);
    for (const n of shown.slice(pageNo * PAGE, (pageNo + 1) * PAGE)) {
      const tr = D.traces[n];
      const row = el("tr", {"class": "trace-row" + (tr.broken ? " broken" : ""), "data-trace": tr.id, "data-index": n, tabindex: 0});
      const services = [];
      let start = Infinity, end = -Infinity;
      for (const s of tr.spans) {
        const sv2 = str(s[SP.service]);
        if (!services.includes(sv2)) services.push(sv2);
        start = Math.min(start, s[SP.start]);
        end = Math.max(end, s[SP.end] === null ? s[SP.start] : s[SP.end]);
      }
      for (const v of [tr.id, tr.broken ? "broken" : "ok", services.join(", "), tr.spans.length, "+" + ms(start), ms(end - start)]) row.appendChild(el("td", null, v));
      row.addEventListener("click", function () { showTrace(n, -1); });
      row.addEventListener("keydown", function (e) { if (e.key === "Enter") showTrace(n, -1); });
      t.appendChild(row);
    }
    tracesBox.appendChild(t);
  }

  function apply() {
    const text = search.value;
    const status = document.getElementById("search-status");
    let q = null;
    status.textContent = "";
    if (text.trim()) {
      q = parseQuery(text);
      if (q === null) status.textContent = "not a trace id, x-request-id, B3 or W3C value";
    }
    if (text.trim() && q === null) { shown = []; }
    const r = text.trim() && q === null ? {traces: [], findings: []} : selection(q, serviceSel.value, kindSel.value);
    const keep = new Set(r.findings);
    findingEls.forEach(function (li, n) { if (li) li.hidden = !keep.has(n); });
    for (const [box, members] of groupEls) box.hidden = !members.some(function (n) { return keep.has(n); });
    shown = r.traces;
    pageNo = 0;
    renderTraces();
    if (q !== null || serviceSel.value || kindSel.value) {
      status.textContent = plural(r.findings.length, "finding") + " and " + plural(r.traces.length, "trace") + " match" +
        (om.traces ? " (among the traces embedded in this page)" : "");
    }
  }
  search.addEventListener("input", apply);
  serviceSel.addEventListener("change", apply);
  kindSel.addEventListener("change", apply);

  // -- one trace: sequence diagram and waterfall, drawn on demand ---------------------------------
  const view = document.getElementById("trace-view");
  function label(s) {
    const m = str(s[SP.method]) || "?", p = str(s[SP.path]) || "<unknown path>";
    const status = s[SP.status] === null ? "no response in capture" : String(s[SP.status]);
    const stream = s[SP.stream] === null ? "" : " stream " + s[SP.stream];
    const frames = "frame " + s[SP.frame] + (s[SP.rframe] === null ? "" : "–" + s[SP.rframe]);
    return m + " " + p + " → " + status + " · " + str(s[SP.protocol]) + stream + " · " + base(str(s[SP.capture])) + " " + frames;
  }

  function sequence(t) {
    const spans = t.spans.map(function (s, i) { return [s, i]; }).sort(function (a, b) { return a[0][SP.start] - b[0][SP.start] || a[1] - b[1]; }).slice(0, MAX_ROWS);
    const first = spanTrace.indexOf(D.traces.indexOf(t));
    const lanes = [];
    function lane(key, text, cls) { let i = lanes.findIndex(function (l) { return l.key === key; }); if (i < 0) { lanes.push({key: key, text: text, cls: cls}); i = lanes.length - 1; } return i; }
    const childOf = new Set();
    for (const [s] of spans) if (s[SP.kind] === 0 && s[SP.parent] >= 0) childOf.add(s[SP.parent]);
    const servers = [];
    for (const [s] of spans) if (s[SP.kind] === 0 && s[SP.parent] < 0) servers.push(str(s[SP.service]));
    function callerOf(svc) {
      for (const [s] of spans) if (s[SP.kind] === 1 && serviceMatches(svc, str(s[SP.peer]))) return s;
      return null;
    }
    const rows = [];
    for (const [s, i] of spans) {
      const svc = str(s[SP.service]);
      const g = first + i;
      if (s[SP.kind] === 0) {
        const p = s[SP.parent] >= 0 ? globalSpans[s[SP.parent]] : null;
        // no parent span, but a call of this trace went to this service: the leg it came by
        const caller = p && p[SP.kind] === 1 ? p : p ? null : callerOf(svc);
        const from = caller ? lane("sidecar:" + str(caller[SP.service]), str(caller[SP.service]) + " sidecar", "sidecar")
          : lane("caller", s[SP.parent] === -2 ? "caller (span outside this page)" : "caller (not in the captures)", "caller");
        const sc = lane("sidecar:" + svc, svc + " sidecar", "sidecar");
        rows.push({from: from, to: sc, dashed: true,
          text: p ? "mesh leg (encrypted between sidecars)" : caller ? "mesh leg (encrypted; joined by trace id, not by span)" : "request from outside the captures"});
        rows.push({from: sc, to: lane("app:" + svc, svc + " app", "app"), text: label(s), span: s, g: g});
      } else {
        const app = lane("app:" + svc, svc + " app", "app");
        const sc = lane("sidecar:" + svc, svc + " sidecar", "sidecar");
        rows.push({from: app, to: sc, text: label(s) + " → " + (str(s[SP.peer]) || "?") + (str(s[SP.peerSource]) && str(s[SP.peerSource]) !== "authority" ? " (inferred from " + str(s[SP.peerSource]) + ")" : ""), span: s, g: g});
        const peer = str(s[SP.peer]);
        if (!childOf.has(g) && !servers.some(function (x) { return serviceMatches(x, peer); })) {
          const captured = D.pods.some(function (p) { return serviceMatches(p.service, peer); });
          rows.push({from: sc, to: lane("target:" + peer, peer || "?", "target"), dashed: true,
            text: captured ? "to the target (a captured pod; its side is not joined to this trace)" : "to the target (not in the captures)"});
        }
      }
    }
    const W = 190, top = 50, rowH = 40;
    const boxes = [];
    let y = top;
    for (const r of rows) {
      r.y = y + 24;
      y += rowH;
      const fs = r.span ? r.span[SP.findings] : [];
      for (const f of fs) {
        const d = f[3] >= 0 ? D.findings[f[3]] : null;
        const lines = [f[0].toUpperCase() + (d ? ": " + d.headers.join(", ") : "")];
        if (d) {
          if (d.rule) lines.push("rule: " + d.rule);
          // one header a line: expected against found
          for (const [k, v] of [["expected", d.expected], ["found", d.found]]) {
            const ps = pairs(v);
            ps.slice(0, 8).forEach(function (x, j) { lines.push((j ? "          " : (k + ":").padEnd(10)) + x); });
            if (ps.length > 8) lines.push("          and " + (ps.length - 8) + " more");
          }
        }
        boxes.push({y: y, lines: lines, row: r, kind: f[0]});
        y += 16 * lines.length + 14;
      }
    }
    const width = Math.max(lanes.length * W + 40, 900), height = y + 20;
    const svg = sv("svg", {"class": "sequence", width: width, height: height, viewBox: "0 0 " + width + " " + height, "data-trace": t.id});
    const defs = sv("defs");
    const mk = sv("marker", {id: "seq-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 9, markerHeight: 9, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse"});
    mk.appendChild(sv("path", {d: "M0,0L10,5L0,10z", "class": "arrowhead"}));
    defs.appendChild(mk);
    svg.appendChild(defs);
    lanes.forEach(function (l, i) {
      const x = 20 + i * W + W / 2;
      const g = sv("g", {"class": "lane " + l.cls});
      g.appendChild(sv("line", {x1: x, y1: top, x2: x, y2: height - 10}));
      g.appendChild(sv("rect", {x: x - W / 2 + 8, y: 8, width: W - 16, height: 30, rx: 6}));
      const inner = sv("svg", {x: x - W / 2 + 8, y: 8, width: W - 16, height: 30});
      inner.appendChild(sv("text", {x: (W - 16) / 2, y: 20, "text-anchor": "middle"}, l.text));
      g.appendChild(inner);
      svg.appendChild(g);
    });
    for (const r of rows) {
      const x1 = 20 + r.from * W + W / 2, x2 = 20 + r.to * W + W / 2;
      const broken = r.span && r.span[SP.findings].length;
      const g = sv("g", {"class": "msg" + (r.dashed ? " dashed" : "") + (broken ? " broken" : "")});
      if (r.span) { g.setAttribute("data-frame", r.span[SP.frame]); g.setAttribute("data-capture", str(r.span[SP.capture])); }
      g.appendChild(sv("line", {x1: x1, y1: r.y, x2: x2 === x1 ? x1 + 30 : x2, y2: r.y, "marker-end": "url(#seq-arrow)"}));
      g.appendChild(sv("text", {x: Math.min(x1, x2) + 6, y: r.y - 6}, r.text));
      g.appendChild(sv("title", null, r.text));
      svg.appendChild(g);
    }
    for (const b of boxes) {
      const x = 20 + Math.min(b.row.from, b.row.to) * W + W / 2;
      const g = sv("g", {"class": "finding-box " + b.kind, "data-kind": b.kind});
      g.appendChild(sv("rect", {x: x, y: b.y, width: width - x - 10, height: 16 * b.lines.length + 8, rx: 4}));
      b.lines.forEach(function (line, i) { g.appendChild(sv("text", {x: x + 8, y: b.y + 16 + 16 * i}, line)); });
      svg.appendChild(g);
    }
    return svg;
  }

  function waterfall(t) {
    // rows in tree order: each span under its parent (by attribution), children by start time
    const first = spanTrace.indexOf(D.traces.indexOf(t));
    const kids = new Map(), roots = [];
    t.spans.forEach(function (s, i) {
      const p = s[SP.parent] - first;
      if (s[SP.parent] >= 0 && p >= 0 && p < t.spans.length && p !== i) { if (!kids.has(p)) kids.set(p, []); kids.get(p).push(i); }
      else roots.push(i);
    });
    const byStart = function (a, b) { return t.spans[a][SP.start] - t.spans[b][SP.start] || a - b; };
    const order = [], seen = new Set();
    const stack = roots.sort(byStart).reverse().map(function (i) { return [i, 0]; });
    while (stack.length && order.length < MAX_ROWS) {
      const [i, d] = stack.pop();
      if (seen.has(i)) continue;
      seen.add(i);
      order.push([i, d]);
      for (const c of (kids.get(i) || []).slice().sort(byStart).reverse()) stack.push([c, d + 1]);
    }
    let t0 = Infinity, t1 = -Infinity;
    for (const s of t.spans) { t0 = Math.min(t0, s[SP.start]); t1 = Math.max(t1, s[SP.end] === null ? s[SP.start] : s[SP.end]); }
    const span = Math.max(t1 - t0, 1);
    const L = 330, W = 1000, rowH = 24;
    const height = 30 + order.length * rowH;
    const svg = sv("svg", {"class": "waterfall", width: W + 20, height: height, viewBox: "0 0 " + (W + 20) + " " + height});
    svg.appendChild(sv("text", {x: L, y: 14, "class": "axis"}, "0"));
    svg.appendChild(sv("text", {x: W, y: 14, "class": "axis", "text-anchor": "end"}, ms(span)));
    order.forEach(function (od, r) {
      const [i, d] = od;
      const s = t.spans[i];
      const y = 24 + r * rowH;
      const broken = s[SP.findings].length > 0;
      const g = sv("g", {"class": "bar " + (s[SP.kind] ? "client" : "server") + (broken ? " broken" : ""), "data-frame": s[SP.frame]});
      const name = sv("svg", {x: 0, y: y, width: L - 8, height: rowH});
      name.appendChild(sv("text", {x: 4 + 14 * d, y: 16}, str(s[SP.service]) + (s[SP.kind] ? " → " + (str(s[SP.peer]) || "?") : " ⇐") + " " + (str(s[SP.method]) || "?") + " " + (str(s[SP.path]) || "")));
      g.appendChild(name);
      const x = L + (s[SP.start] - t0) / span * (W - L);
      const dur = duration(s);
      const w = dur === null ? (t1 - s[SP.start]) / span * (W - L) : dur / span * (W - L);
      g.appendChild(sv("rect", {x: x, y: y + 4, width: Math.max(w, 2), height: rowH - 8, rx: 2, "class": dur === null ? "open" : ""}));
      g.appendChild(sv("title", null, label(s) + (dur === null ? " (no response in the capture)" : " · " + ms(dur))));
      // after the bar when there is room, else inside its end
      const room = x + Math.max(w, 2) + 80 <= W + 20;
      g.appendChild(sv("text", {x: room ? x + Math.max(w, 2) + 4 : x + w - 4, y: y + 16, "class": room ? "dur" : "dur inside",
        "text-anchor": room ? "start" : "end"}, dur === null ? "no response" : ms(dur)));
      svg.appendChild(g);
    });
    return svg;
  }

  function showTrace(n, finding) {
    const t = D.traces[n];
    view.textContent = "";
    view.hidden = false;
    view.setAttribute("data-trace", t.id);
    const head = el("div", {"class": "view-head"});
    head.appendChild(el("h2", null, "Trace " + t.id + (t.broken ? " — broken" : "")));
    const close = el("button", {type: "button"}, "close");
    close.addEventListener("click", function () { view.hidden = true; view.textContent = ""; });
    head.appendChild(close);
    view.appendChild(head);
    if (finding >= 0) view.appendChild(el("p", null, "Opened from finding " + (finding + 1) + " (" + D.findings[finding].kind + ", outbound frame " + D.findings[finding].outbound.frame + ")."));
    if (t.spans.length > MAX_ROWS) view.appendChild(el("p", {"class": "note"}, "The diagrams show the first " + MAX_ROWS + " of " + t.spans.length + " spans."));
    view.appendChild(el("h3", null, "Sequence"));
    const a = el("div", {"class": "scroll"}); a.appendChild(sequence(t)); view.appendChild(a);
    view.appendChild(el("h3", null, "Waterfall (capture timestamps)"));
    const b = el("div", {"class": "scroll"}); b.appendChild(waterfall(t)); view.appendChild(b);
    view.scrollIntoView({block: "start"});
    // a link to this trace in this page (report.html#trace=ID), for a ticket
    history.replaceState(null, "", "#trace=" + encodeURIComponent(t.id));
  }

  // -- limits, notes, anomalies ---------------------------------------------------------------
  const lim = document.getElementById("limits-body");
  const lines = [];
  lines.push(plural(sum.not_in_capture, "outbound call") + " not judged: the request being served began before the capture (or a candidate it does not show).");
  lines.push(plural(sum.limited_by_unknown_headers, "outbound call") + " whose verdict is limited by " + plural(sum.unknown_headers, "header") + " the capture cannot show (HPACK entries older than the capture): such a header is unknown, never missing.");
  const ul = el("ul");
  for (const l of lines) ul.appendChild(el("li", null, l));
  lim.appendChild(ul);
  function listing(title, items, fmt, more) {
    lim.appendChild(el("h3", null, title + " (" + (items.length + more) + ")"));
    const list = el("ul", {"class": "listing"});
    for (const x of items) list.appendChild(el("li", null, fmt(x)));
    if (more) list.appendChild(el("li", {"class": "note"}, more + " more not embedded in this page."));
    lim.appendChild(list);
  }
  listing("Notes", D.notes, function (n) { return base(n.capture) + " frame " + n.frame + ": " + n.kind + ": " + n.detail; }, om.notes);
  listing("Anomalies", D.anomalies, function (a) { return base(a.capture) + " frame " + (a.frame === null ? "-" : a.frame) + ": " + a.kind + ": " + a.detail + (a.flow ? " [" + a.flow + "]" : ""); }, om.anomalies);

  renderTraces();
  const linked = /^#trace=(.+)$/.exec(location.hash);
  if (linked) {
    const n = D.traces.findIndex(function (t) { return t.id === decodeURIComponent(linked[1]); });
    if (n >= 0) showTrace(n, -1);
  }
  // when the page was usable, in ms since navigation started (bench: the load time)
  document.body.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-ready", "1");
})();
