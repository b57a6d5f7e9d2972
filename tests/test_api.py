"""The library API: what ``import analyzer`` offers, the README's example, one type per
concept (wire records hold bytes, analysis records str; one spelling of a service)."""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import io
from pathlib import Path

import pytest

import analyzer
from analyzer.analysis import analyze as analysis_analyze
from analyzer.analysis.diff import diff as analysis_diff
from analyzer.report.diff import diff_dict
from tests.fixtures import CAPTURES

PODS = CAPTURES / "pods"

# The README's "Python API" example, exactly as printed there.
README_EXAMPLE = """\
import analyzer

result = analyzer.analyze(["productpage.pcap", "reviews.pcap"])
for hop in result.hops:
    if hop.broken_total:
        print(f"{hop.source} -> {hop.target}: {hop.broken_total} of {hop.calls} calls broken")
"""


def test_the_readme_example_runs_and_prints_the_broken_hops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PODS)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(README_EXAMPLE, "README.md", "exec"), {})
    r = analysis_analyze(["productpage.pcap", "reviews.pcap"])
    broken = [h for h in r.hops if h.broken_total]
    assert len(broken) >= 2  # two services' hops: the example shows something
    assert out.getvalue().splitlines() == [
        f"{h.source} -> {h.target}: {h.broken_total} of {h.calls} calls broken" for h in broken]
    assert {h.source for h in broken} == {"productpage", "reviews"}


def test_the_readme_prints_exactly_this_example() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "```python\n" + README_EXAMPLE + "```\n" in readme


def test_the_package_docstring_shows_the_same_example() -> None:
    doc = inspect.cleandoc(analyzer.__doc__ or "")
    body = [line.strip() for line in README_EXAMPLE.splitlines() if line.strip()]
    assert all(line in doc for line in body)


def test_everything_in_all_is_there_and_documented() -> None:
    assert len(analyzer.__all__) == len(set(analyzer.__all__))
    for name in analyzer.__all__:
        obj = getattr(analyzer, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            # a dataclass without a docstring gets its signature: that is not documentation
            assert doc and not doc.startswith(f"{name}("), name
    assert {"analyze", "read_messages", "diff", "Result", "Finding", "Hop", "Trace", "Message",
            "Options", "DiffResult", "CaptureError"} <= set(analyzer.__all__)
    star: dict[str, object] = {}
    exec("from analyzer import *", star)
    assert set(analyzer.__all__) <= set(star)


def test_analyze_takes_one_path_or_several() -> None:
    one = str(CAPTURES / "productpage-http1.pcap")
    as_str = analyzer.analyze(one)
    as_path = analyzer.analyze(Path(one))
    as_list = analyzer.analyze([one])
    assert as_str.captures == as_path.captures == as_list.captures == [one]
    assert len(as_str.findings) == len(as_list.findings) > 0
    assert isinstance(as_str, analyzer.Result)
    with pytest.raises(analyzer.CaptureError):
        analyzer.analyze(str(CAPTURES / "MANIFEST.json"))


def test_analyze_with_jobs_gives_the_same_result() -> None:
    from analyzer.report.analysis import result_dict

    pods = sorted(str(p) for p in (CAPTURES / "pods").glob("*.pcap"))
    one, two = analyzer.analyze(pods), analyzer.analyze(pods, jobs=2)
    assert result_dict(two) == result_dict(one)
    assert one.findings


def test_diff_takes_results_or_captures() -> None:
    before = str(CAPTURES / "diff" / "productpage-fixed.pcap")
    after = str(CAPTURES / "diff" / "productpage-newbug.pcap")
    expected = diff_dict(analysis_diff(analysis_analyze([before]), analysis_analyze([after])))
    from_paths = analyzer.diff(before, after)
    from_results = analyzer.diff(analyzer.analyze(before), analyzer.analyze([after]))
    assert isinstance(from_paths, analyzer.DiffResult)
    assert diff_dict(from_paths) == diff_dict(from_results) == expected
    assert from_paths.differs


def test_read_messages_yields_wire_records_in_bytes() -> None:
    msgs = list(analyzer.read_messages(CAPTURES / "productpage-http1.pcap"))
    requests = [m for m in msgs if m.kind == "request"]
    assert requests and all(isinstance(m, analyzer.Message) for m in msgs)
    for m in requests:
        assert isinstance(m.method, bytes) and isinstance(m.path, bytes)
        assert all(isinstance(h, analyzer.Header) and isinstance(h.value, bytes) for h in m.headers)
        assert all(isinstance(t, analyzer.TraceContext) for t in m.trace)


def test_analysis_records_hold_str_and_one_spelling_of_a_service() -> None:
    r = analyzer.analyze([PODS / "productpage.pcap", PODS / "reviews.pcap"])
    assert r.findings
    messages = {(m.capture, m.frame): m for p in r.captures for m in analyzer.read_messages(p)
                if m.kind == "request"}
    for f in r.findings:
        # the caller as findings, hops and pods name it, on every record that says it
        assert f.outbound.service == f.source
        assert f.inbound is None or f.inbound.service == f.source
        assert isinstance(f.outbound.method, str)
        wire = messages[(f.outbound.capture, f.outbound.frame)]
        assert wire.method is not None and wire.method.decode() == f.outbound.method
    pods = {p.capture: p.service for p in r.pods}
    for c in r.calls:
        if c.role in ("inbound", "outbound"):
            assert c.service == pods[c.capture]
    for t in r.traces:
        for s in t.spans:
            assert s.call.service == s.service


def test_without_a_sidecar_a_call_names_the_service_it_reached() -> None:
    r = analyzer.analyze(CAPTURES / "curl-basic.pcap")
    names = {p.address: p.service for p in r.pods}
    live = [c for c in r.calls if c.role == "inbound"]
    assert live
    assert all(c.service == names[c.dst] for c in live)


def test_records_are_dataclasses_with_typed_fields() -> None:
    for name in ("Call", "Finding", "Hop", "Trace", "Span", "Pod", "Result", "Message", "Header"):
        cls = getattr(analyzer, name)
        assert dataclasses.is_dataclass(cls), name
        assert all(f.type for f in dataclasses.fields(cls)), name
