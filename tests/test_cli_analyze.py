"""tracewire analyze: every format against golden files, exit statuses, the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import GOLDEN, run

MAIN = "captures/productpage-http1.pcap"
pytestmark = pytest.mark.usefixtures("_at_root")


@pytest.fixture
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import ROOT

    monkeypatch.chdir(ROOT)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_analyze_golden(fmt: str, update_golden: bool) -> None:
    code, out, err = run("analyze", "--format", fmt, "--all", MAIN)
    assert code == 0, err
    golden = GOLDEN / f"analyze-{Path(MAIN).stem}.{fmt}"
    if update_golden:
        golden.write_text(out)
    assert out == golden.read_text()


def test_json_schema() -> None:
    _, out, _ = run("analyze", "--format", "json", MAIN)
    d = json.loads(out)
    assert set(d) >= {"tool", "captures", "pods", "hops", "traces", "findings", "notes", "anomalies"}
    assert d["tool"]["name"] == "tracewire"
    for h in d["hops"]:
        assert set(h) >= {"source", "target", "protocol", "calls", "propagated", "broken"}
        assert set(h["broken"]) == {"missing", "changed", "partial", "malformed"}
    kinds = sorted(f["kind"] for f in d["findings"])
    assert kinds == ["changed", "malformed", "missing", "partial"]
    for f in d["findings"]:
        assert set(f) >= {"kind", "trace_id", "x_request_id", "source", "target", "headers", "expected",
                          "found", "attribution", "confidence", "inbound", "outbound"}
        assert len(f["trace_id"]) == 32 and f["trace_id"] == f["trace_id"].lower()
        assert set(f["inbound"]) == {"capture", "frame", "method", "path", "authority"}
        assert set(f["outbound"]) == {"capture", "frame", "method", "path", "authority", "protocol",
                                      "stream"}
        assert f["target"] in ("reviews:9080", "details:9080")


def test_exit_statuses() -> None:
    assert run("analyze", MAIN)[0] == 0
    assert run("analyze", "--fail-on-broken", MAIN)[0] == 1
    assert run("analyze", "--fail-on-broken", "captures/curl-basic.pcap")[0] == 0
    code, _, err = run("analyze", "captures/edge/not-a-capture.pcap")
    assert code == 2 and err.startswith("tracewire: captures/edge/not-a-capture.pcap: not a capture")


def test_table_is_readable_in_120_columns() -> None:
    _, out, _ = run("analyze", "--all", MAIN)
    assert max(len(line) for line in out.splitlines()) <= 120
    assert "MISSING   productpage → reviews:9080" in out
    assert "inbound  frame     18  GET /productpage?bug=drop" in out
