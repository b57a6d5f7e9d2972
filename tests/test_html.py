"""analyze --format html, without a browser: the embedded JSON cannot leave its element, the
document holds only the page's own markup whatever the capture says, the data is the JSON
report's (same redaction), and the page stays bounded (tests/test_html_browser.py runs it)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import analyze
from analyzer.report.html import Limits, embed_json, page, page_data
from analyzer.report.redact import Policy
from tests.fixtures import CAPTURES, ROOT, run_cli
from tests.packets import ACK, FIN, Conn, pcap, sll2

PODS = sorted(str(p) for p in (CAPTURES / "pods").glob("*.pcap"))
MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))

# Markup that would run if it ever became markup instead of text: each sets a flag the
# browser test looks for. No spaces, so it fits a request line's path too.
PAYLOAD = ("<script>window.__pwned=1</script></script><img/src=x/onerror=window.__pwned=2>"
           "'\"><svg/onload=window.__pwned=3>&amp;")
SECRET = "S3CR3T-t0ken-value"
T0 = 1_700_000_000_000_000_000
XRID = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
B3 = [("x-request-id", XRID), ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
      ("x-b3-spanid", "a2fb4a1d1a96d312"), ("x-b3-sampled", "1")]


def _head(line: str, fields: list[tuple[str, str]]) -> bytes:
    return (line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields) + "\r\n").encode()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def xss_capture(folder: Path) -> Path:
    """A sidecar pod whose every header, path and host carries ``PAYLOAD``: two inbound
    requests, and three calls through Istio's NAT that break in different ways (B3 dropped
    to a payload-named host, a payload x-request-id, a payload traceparent), so the payload
    reaches pods, hops, findings, traces, notes and the graph. The file name carries it too."""
    inbound = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    packets = [*inbound.handshake()]
    calls = [
        [("Host", f"evil{PAYLOAD}:80"), ("x-request-id", XRID), ("X-Note", PAYLOAD)],
        [("Host", f"svc{PAYLOAD}"), *B3[1:], ("x-request-id", PAYLOAD)],
        [("Host", f"tp{PAYLOAD}"), ("x-request-id", XRID), ("traceparent", f"00-{PAYLOAD}-01"),
         ("tracestate", f"k={PAYLOAD}")],
    ]
    for n, fields in enumerate(calls):
        head = _head(f"GET /in{n}{PAYLOAD}?token={SECRET} HTTP/1.1",
                     [("Host", f"front{PAYLOAD}.default.svc.cluster.local:9080"), *B3,
                      ("X-Note", PAYLOAD), ("Authorization", f"Bearer {SECRET}")])
        packets.append(inbound.send(head))
        nat_req = Conn("10.244.1.10", 42000 + n, "127.0.0.1", 15001, cisn=7000, sisn=9000)
        nat_rep = Conn("10.244.1.10", 42000 + n, f"10.96.0.{90 + n}", 80, cisn=7000, sisn=9000)
        packets.append(nat_req.send(_head(f"GET /call{n}{PAYLOAD}?api_key={SECRET} HTTP/1.1", fields)))
        nat_rep.cseq = nat_req.cseq
        packets.append(nat_rep.send(OK, from_client=False))
        packets.append(inbound.send(OK, from_client=False))
    packets.append(inbound.send(b"", flags=FIN | ACK))
    dest = folder / f"front{PAYLOAD.replace('/', '_')}.pcap"
    dest.write_bytes(pcap([(T0 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    return dest


class Markup(HTMLParser):
    """The elements and attributes of a document, and the text of its script elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._in: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        if tag in ("script", "style"):
            self._in = tag
            (self.scripts if tag == "script" else self.styles).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles[-1] += data
        else:
            self.text.append(data)


def _strings(obj: object) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in [k, *_strings(v)]]
    if isinstance(obj, list):
        return [x for v in obj for x in _strings(v)]
    return []


def parsed(doc: str) -> Markup:
    m = Markup()
    m.feed(doc)
    m.close()
    return m


@pytest.fixture(scope="module")
def xss(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return xss_capture(tmp_path_factory.mktemp("html-xss"))


@pytest.fixture(scope="module")
def pods_page() -> str:
    code, out, err = run_cli("analyze", *PODS, "--format", "html")
    assert code == 0, err
    return out


# -- embedding ------------------------------------------------------------------------------------

HOSTILE = ["</script><script>alert(1)</script>", "<!--", "a&b'c\"d>", "\u2028\u2029", "\x1b[2J\u009b\u202e",
           "\ud800 lone", "</SCRIPT >", "<\u0000/script>"]


@pytest.mark.parametrize("value", HOSTILE)
def test_embedded_json_has_no_markup_characters_and_means_the_same(value: str) -> None:
    obj = {"k" + value: [value, {"v": value}], "n": 3}
    text = embed_json(obj)
    for ch in "<>&'\u2028\u2029\u009b\u202e\x1b":
        assert ch not in text
    assert not re.search("[\ud800-\udfff]", text)
    assert json.loads(text) == obj


def test_page_is_only_its_own_markup(xss: Path) -> None:
    """Whatever the capture says, the document holds the page's own elements: two scripts
    (the data and the viewer), no event handler attribute, no image, no link out; the
    payload is in the text, escaped."""
    code, doc, err = run_cli("analyze", str(xss), "--format", "html")
    assert code == 0, err
    m = parsed(doc)
    assert [t for t, _ in m.tags].count("script") == 2
    assert [dict(a).get("type") for t, a in m.tags if t == "script"] == ["application/json", None]
    tags = {t for t, _ in m.tags}
    assert not tags & {"img", "iframe", "object", "embed", "a", "link", "form", "base", "image"}
    for tag, attrs in m.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            assert "javascript:" not in (value or "").lower()
            if name in ("src", "href"):
                raise AssertionError((tag, name, value))
    data = json.loads(m.scripts[0])
    assert any(PAYLOAD in s for s in _strings(data))  # the data keeps it, as text
    assert any(PAYLOAD in t for t in m.text)  # and the graph shows it as text
    assert m.scripts[1] == (ROOT / "analyzer/report/html/report.js").read_text()


def test_page_redacts_as_the_json_report(xss: Path) -> None:
    code, doc, _ = run_cli("analyze", str(xss), "--format", "html")
    assert code == 0 and SECRET not in doc
    code, doc, _ = run_cli("analyze", str(xss), "--format", "html", "--show-secrets")
    assert code == 0
    assert SECRET in parsed(doc).scripts[0]


def test_content_security_policy_allows_only_the_page_itself(pods_page: str) -> None:
    m = parsed(pods_page)
    csp = [dict(a)["content"] for t, a in m.tags
           if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    rules = dict(([*r.strip().split(" ", 1), ""])[:2] for r in (csp[0] or "").split(";"))

    def sha(s: str) -> str:
        return f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"

    assert rules["default-src"] == "'none'"
    assert rules["script-src"] == sha(m.scripts[1])
    assert rules["style-src"] == sha(m.styles[0])
    assert "http" not in (csp[0] or "")


def test_page_data_is_the_json_reports(pods_page: str) -> None:
    """Findings, hops and pods on the page are the JSON report's dicts (same redaction);
    every service of the graph is SVG text."""
    code, out, _ = run_cli("analyze", *PODS, "--format", "json")
    assert code == 0
    want = json.loads(out)
    m = parsed(pods_page)
    data = json.loads(m.scripts[0])
    extra = {"tids", "rids", "target_label", "trace"}
    assert [{k: v for k, v in f.items() if k not in extra} for f in data["findings"]] == want["findings"]
    assert [{k: v for k, v in h.items() if k != "label"} for h in data["hops"]] == want["hops"]
    assert data["pods"] == want["pods"]
    assert sorted(t["id"] for t in data["traces"]) == sorted(t["trace_id"] for t in want["traces"])
    assert data["omitted"] == {"findings": 0, "traces": 0, "broken_traces": 0, "notes": 0, "anomalies": 0}
    spans = sum(len(t["spans"]) for t in data["traces"])
    assert spans == sum(len(t["spans"]) for t in want["traces"])
    # every finding's trace is embedded and holds its outbound call
    strings = data["strings"]
    for f in data["findings"]:
        t = data["traces"][f["trace"]]
        assert any(s[7] == f["outbound"]["frame"] and strings[s[6]] == f["outbound"]["capture"]
                   for s in t["spans"])


def test_groups_are_the_text_reports_verdict() -> None:
    r = analyze(PODS)
    data = page_data(r)
    code, table, _ = run_cli("analyze", *PODS)
    assert code == 0
    flat = " ".join(table.split())
    for g in data["groups"]:
        assert f"{g['source']} → {g['target']}: {g['broken']} of {g['calls']} calls broken" in flat
        for k in g["kinds"]:
            assert " ".join(k["text"].split()) in flat
    assert sorted(n for g in data["groups"] for n in g["findings"]) == list(range(len(r.findings)))


def test_graph_draws_every_service_and_hop(pods_page: str) -> None:
    r = analyze(PODS)
    m = parsed(pods_page)
    groups = [dict(a) for t, a in m.tags if t == "g"]
    drawn = {g["data-service"] for g in groups if "node" in (g.get("class") or "")}
    assert {p.service for p in r.pods} <= drawn
    edges = {(g["data-source"], g["data-target"], g["data-protocol"]) for g in groups
             if (g.get("class") or "").startswith("edge") and "data-source" in g}
    assert edges == {(h.source, h.target, h.protocol) for h in r.hops}
    states = {(g["data-source"], g["data-target"]): g["class"] or "" for g in groups if "data-source" in g}
    for h in r.hops:
        assert ("broken" in states[(h.source, h.target)]) == bool(h.broken_total)


def test_bounds_keep_an_example_of_every_kind_on_every_hop() -> None:
    r = analyze(PODS)
    limits = Limits(findings=4, traces=3, notes=1, anomalies=1)
    data = page_data(r, Policy(), limits)
    assert len(data["findings"]) == 4 and len(data["traces"]) == 3
    assert data["omitted"]["findings"] == len(r.findings) - 4
    assert data["omitted"]["traces"] == len(r.traces) - 3
    assert data["omitted"]["notes"] == len(r.notes) - 1
    assert data["omitted"]["anomalies"] == len(r.anomalies) - 1
    assert all(t["broken"] for t in data["traces"])  # broken traces first
    # 5 hop and kind pairs, 4 places: the first four pairs each keep one
    kinds = {(g["source"], g["target"], k["kind"]) for g in data["groups"] for k in g["kinds"]}
    shown = {(f["source"], f["target_label"], f["kind"]) for f in data["findings"]}
    assert len(shown) == 4 and shown <= kinds
    # counts stay over everything
    assert sum(g["broken"] for g in data["groups"]) == len(r.findings)
    doc = page(r, Policy(), limits)
    assert "findings (every kind of break" in (ROOT / "analyzer/report/html/report.js").read_text()
    assert len(doc) < len(page(r))


def test_a_trace_over_the_span_bound_leaves_the_others_in() -> None:
    """The first broken trace does not fit the span bound: it is left out, the ones after
    it that fit are not."""
    r = analyze(PODS)
    first = next(t for t in r.traces if t.broken)
    assert len(first.spans) > 2
    data = page_data(r, Policy(), Limits(spans=len(first.spans) - 1))
    ids = [t["id"] for t in data["traces"]]
    assert first.trace_id not in ids and len(ids) >= 1
    assert sum(len(t["spans"]) for t in data["traces"]) <= len(first.spans) - 1
    assert data["omitted"]["traces"] == len(r.traces) - len(ids)


def test_page_of_a_large_capture_stays_small(tmp_path: Path) -> None:
    """20 MB of traffic (thousands of traces): a page of a few hundred KB per 1000 traces,
    at most the bound's worth, whatever the capture's size."""
    cap = tmp_path / "big.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench/gen_capture.py"), str(cap), "--size-mb", "20"],
                   check=True, capture_output=True)
    r = analyze([str(cap)])
    assert len(r.traces) > 1000
    doc = page(r, Policy(), Limits(traces=1000, findings=200))
    data: dict[str, Any] = json.loads(parsed(doc).scripts[0])
    assert len(data["traces"]) == 1000 and data["omitted"]["traces"] == len(r.traces) - 1000
    assert len(doc.encode()) < 600_000
    assert len(page(r).encode()) < 3_000_000


def test_cli_lists_html_and_writes_one_document() -> None:
    code, out, _ = run_cli("analyze", "--help")
    assert "html" in out
    code, doc, _ = run_cli("analyze", *MESH, "--format", "html")
    assert code == 0 and doc.startswith("<!DOCTYPE html>") and doc.rstrip().endswith("</html>")
