"""analyze --format html in a real browser: Debian's chromium, driven by playwright (no browser
download: ``executable_path``). The recorded pod and mesh captures: every finding of
--format json is on the page, every service is drawn, nothing is requested, no console error,
a click on a finding draws its trace; the search and filters select what ``--trace``,
``--service`` and ``--kind`` select; a capture full of markup runs none of it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from analyzer.analysis import Result, analyze
from analyzer.report.select import Selection, TraceQuery, select
from tests.fixtures import run_cli
from tests.test_html import MESH, PAYLOAD, PODS, xss_capture

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # pyshark (tests/test_differential*) leaves a SafeChildWatcher attached to its closed
    # event loop; playwright's loop could not start chromium through it. A fresh default
    # policy brings the default watcher back.
    asyncio.set_event_loop_policy(None)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@dataclass
class Opened:
    """A page opened from a file, with every request other than the file and every console
    error or page error it caused."""

    page: Page
    url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _open(browser: Browser, path: Path) -> Opened:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    opened = Opened(page, path.resolve().as_uri())

    def route(r: Route) -> None:
        if r.request.url == opened.url:
            r.continue_()
        else:
            opened.requests.append(r.request.url)
            r.abort()

    def console(m: ConsoleMessage) -> None:
        if m.type in ("error", "warning"):
            opened.errors.append(f"{m.type}: {m.text}")

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
    page.on("request", lambda r: None if r.url == opened.url else opened.requests.append(r.url))
    # an alert from an injected payload sets a flag instead of blocking the page
    page.add_init_script("window.alert = function () { window.__alerted = true; };")
    page.goto(opened.url)
    page.wait_for_selector("body[data-ready='1']")
    return opened


def _write(tmp: Path, name: str, *args: str) -> tuple[Path, dict[str, Any]]:
    code, doc, err = run_cli("analyze", *args, "--format", "html")
    assert code == 0, err
    path = tmp / f"{name}.html"
    path.write_text(doc, encoding="utf-8")
    code, out, err = run_cli("analyze", *args, "--format", "json")
    assert code == 0, err
    return path, json.loads(out)


Fixture = tuple[Opened, dict[str, Any], list[str]]  # the page, --format json, the captures


@pytest.fixture(scope="module", params=["pods", "mesh"])
def fixture_page(request: pytest.FixtureRequest, browser: Browser,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    captures = PODS if request.param == "pods" else MESH
    path, want = _write(tmp_path_factory.mktemp("html"), request.param, *captures)
    opened = _open(browser, path)
    yield opened, want, captures
    opened.page.close()


def test_every_finding_is_on_the_page(fixture_page: Fixture) -> None:
    opened, want, _ = fixture_page
    assert want["findings"]
    shown = opened.page.eval_on_selector_all(
        "li.finding", "els => els.map(e => [e.getAttribute('data-kind'), e.getAttribute('data-trace')])")
    assert Counter(map(tuple, shown)) == Counter((f["kind"], f["trace_id"] or "") for f in want["findings"])
    assert opened.page.locator("li.finding:visible").count() == len(want["findings"])


def test_every_service_is_drawn(fixture_page: Fixture) -> None:
    opened, want, _ = fixture_page
    texts = set(opened.page.eval_on_selector_all("#graph text.name", "els => els.map(e => e.textContent)"))
    assert {p["service"] for p in want["pods"]} <= texts
    for h in want["hops"]:
        assert h["source"] in texts
        label = h["target"] + (" (inferred)" if h["target_source"] not in ("authority", "unknown") else "")
        assert label in texts or any(h["target"].startswith(p["service"]) for p in want["pods"]), label


def test_clicking_a_finding_draws_its_trace(fixture_page: Fixture) -> None:
    """Each finding opens its trace: the sequence diagram, with the finding's outbound call
    marked broken and its kind on the arrow, and the waterfall."""
    opened, want, _ = fixture_page
    page = opened.page
    owner = {(s["capture"], s["frame"]): t["trace_id"] for t in want["traces"] for s in t["spans"]}
    for n, f in enumerate(want["findings"]):
        page.locator(f"li.finding[data-index='{n}']").click()
        view = page.locator("#trace-view")
        assert view.is_visible()
        o = f["outbound"]
        assert view.get_attribute("data-trace") == owner[(o["capture"], o["frame"])]
        seq = view.locator("svg.sequence")
        assert seq.count() == 1
        arrow = seq.locator(f"g.msg.broken[data-frame='{o['frame']}']")
        assert arrow.count() >= 1
        assert seq.locator(f"g.finding-box[data-kind='{f['kind']}']").count() >= 1
        assert view.locator(f"svg.waterfall g.bar.broken[data-frame='{o['frame']}']").count() >= 1
    assert not opened.requests, opened.requests
    assert not opened.errors, opened.errors


def test_a_trace_row_opens_its_diagrams(fixture_page: Fixture) -> None:
    opened, want, _ = fixture_page
    page = opened.page
    rows = page.locator("tr.trace-row")
    assert rows.count() == min(100, len(want["traces"]))
    ok = [t for t in want["traces"] if not t["broken"]]
    t = ok[0] if ok else want["traces"][0]
    page.locator(f"tr.trace-row[data-trace='{t['trace_id']}']").click()
    assert page.locator("#trace-view").get_attribute("data-trace") == t["trace_id"]
    assert page.locator("#trace-view svg.waterfall g.bar").count() == len(t["spans"])
    # the address now links to it: opened again from it, the page shows the same trace
    assert page.evaluate("location.hash") == "#trace=" + t["trace_id"]
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator("#trace-view").get_attribute("data-trace") == t["trace_id"]
    assert page.locator("#trace-view svg.sequence").count() == 1


def _python(whole: Result, sel: Selection) -> tuple[set[str], list[int]]:
    r = select(whole, sel)
    index = {id(f): n for n, f in enumerate(whole.findings)}
    return {t.trace_id for t in r.traces}, sorted(index[id(f)] for f in r.findings)


def _queries(whole: Result) -> list[str]:
    """Every id the captures hold, in each form a person may paste, and some that are none."""
    out: list[str] = ["", "not-an-id", "0" * 32, "zz" * 20, "x" * 600, "a\u200bb", "a\u00a0b", "ABCDEF",
                      "\u212a" * 16, "é" * 3, "00-" + "f" * 32 + "-" + "1" * 16 + "-01-extra"]
    for t in whole.traces[:12]:
        out += [t.trace_id, t.trace_id.upper(), f"  {t.trace_id}  ", t.trace_id[-16:], t.trace_id.lstrip("0"),
                f"00-{t.trace_id}-{'a' * 16}-01", f"{t.trace_id}-{'b' * 16}-1", f"{t.trace_id}:1:0:1"]
    for f in whole.findings:
        if f.x_request_id:
            rid = f.x_request_id
            out += [rid, rid.upper(), rid[:14] + ("9" if rid[14] != "9" else "4") + rid[15:]]
        for c in (f.inbound, f.outbound):
            if c is not None and c.trace_id:
                out.append(c.trace_id)
    return list(dict.fromkeys(out))


def test_search_selects_what_trace_selects(fixture_page: Fixture) -> None:
    """The search box (its JavaScript port of TraceQuery and select) keeps the traces and
    findings that ``--trace`` keeps, on the same ids, typed into the page."""
    opened, _, captures = fixture_page
    page = opened.page
    whole = analyze(captures)
    box = page.locator("#search")
    hits = 0
    for q in _queries(whole):
        box.fill(q)
        findings = sorted(int(x) for x in page.eval_on_selector_all(
            "li.finding", "els => els.filter(e => !e.hidden && !e.closest('[hidden]'))"
                          ".map(e => e.getAttribute('data-index'))"))
        traces = set(page.eval_on_selector_all("tr.trace-row",
                                               "els => els.map(e => e.getAttribute('data-trace'))"))
        count = int(page.locator("#trace-count").get_attribute("data-count") or -1)
        try:
            query = TraceQuery.parse(q) if q.strip() else None
        except ValueError:
            assert (findings, traces) == ([], set()), q
            assert "not a trace id" in page.locator("#search-status").inner_text()
            continue
        want_traces, want_findings = _python(whole, Selection(query))
        assert findings == want_findings, q
        assert traces == want_traces and count == len(want_traces), q
        hits += bool(want_findings)
    assert hits >= len(whole.findings)  # each finding's ids found it, at least
    box.fill("")


def test_filters_select_what_service_and_kind_select(
        fixture_page: Fixture) -> None:
    opened, _, captures = fixture_page
    page = opened.page
    whole = analyze(captures)
    services = page.eval_on_selector_all("#service option", "els => els.map(e => e.value)")
    kinds = page.eval_on_selector_all("#kind option", "els => els.map(e => e.value)")
    assert "" in services and len(services) > 2
    assert kinds[1:] == ["missing", "changed", "partial", "malformed"]
    tid = whole.findings[0].trace_id or ""
    for service in services:
        for kind in kinds:
            for q in ("", tid):
                page.locator("#search").fill(q)
                page.select_option("#service", service)
                page.select_option("#kind", kind)
                got = page.evaluate("([q, s, k]) => window.tracewireSelect(q, s, k)", [q, service, kind])
                sel = Selection(TraceQuery.parse(q) if q else None, (service,) if service else (),
                                (kind,) if kind else ())
                want_traces, want_findings = _python(whole, sel)
                assert set(got["traces"]) == want_traces, (service, kind, q)
                assert got["findings"] == want_findings, (service, kind, q)
                shown = sorted(int(x) for x in page.eval_on_selector_all(
                    "li.finding", "els => els.filter(e => !e.hidden && !e.closest('[hidden]'))"
                                  ".map(e => e.getAttribute('data-index'))"))
                assert shown == want_findings
    page.locator("#search").fill("")
    page.select_option("#service", "")
    page.select_option("#kind", "")
    assert not opened.requests, opened.requests  # a reload, searches and filters asked for nothing
    assert not opened.errors, opened.errors


def test_markup_in_a_capture_stays_text(browser: Browser, tmp_path: Path) -> None:
    """A capture with <script>, </script>, onerror= and quotes in every header, path and host
    (and its file name): the page shows them as text, runs none of them and asks for nothing,
    with every finding and trace opened."""
    cap = xss_capture(tmp_path)
    path, want = _write(tmp_path, "xss", str(cap))
    assert len(want["findings"]) == 3
    opened = _open(browser, path)
    page = opened.page
    for n in range(len(want["findings"])):
        page.locator(f"li.finding[data-index='{n}']").click()
        assert page.locator("#trace-view svg.sequence").count() == 1
    rows = page.locator("tr.trace-row")
    for n in range(rows.count()):
        rows.nth(n).click()
    body = page.locator("body").inner_text()
    assert PAYLOAD.replace("/", "") not in body  # the file-name form is the only one changed
    assert body.count("<script>window.__pwned=1</script>") >= 6
    assert page.evaluate("document.scripts.length") == 2
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed, a[href]').length") == 0
    on = page.evaluate("Array.from(document.querySelectorAll('*')).flatMap(e => "
                       "Array.from(e.attributes).filter(a => a.name.startsWith('on')).map(a => a.name))")
    assert on == []
    assert page.evaluate("[window.__pwned, window.__alerted]") == [None, None]
    graph_text = page.eval_on_selector_all("#graph text.name", "els => els.map(e => e.textContent)")
    assert any(PAYLOAD in t for t in graph_text)
    seq_text = page.eval_on_selector_all("#trace-view svg text", "els => els.map(e => e.textContent)")
    assert any(PAYLOAD in t for t in seq_text)
    assert not opened.requests, opened.requests
    assert not opened.errors, opened.errors
    page.close()
