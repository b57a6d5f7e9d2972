"""``analyze --format json`` in bounded memory (issue 10 item 6): the document is written in
pieces (``report.analysis.result_json``), byte for byte what the whole document was."""

from __future__ import annotations

import dataclasses
import tracemalloc

import pytest
from click.testing import CliRunner

from analyzer.analysis import Result, analyze
from analyzer.cli import cli
from analyzer.report import analysis as report
from analyzer.report import jsonout
from analyzer.report.redact import DEFAULT, Policy, json_safe
from tests.fixtures import CAPTURES, recorded_captures

MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))


def _whole(r: Result, policy: Policy = DEFAULT) -> str:
    return json_safe(jsonout.indent2(report.result_dict(r, policy)))


@pytest.mark.parametrize("capture", recorded_captures())
@pytest.mark.parametrize("chunk", [1, 1 << 16])
def test_pieces_are_the_whole_document(capture: str, chunk: int) -> None:
    r = analyze([str(CAPTURES / capture)])
    assert "".join(report.result_json(r, chunk=chunk)) == _whole(r)


def test_pieces_of_a_joined_analysis_and_with_secrets_shown() -> None:
    r = analyze(MESH)
    assert r.traces and r.findings  # both streamed sections are exercised
    for policy in (DEFAULT, Policy(show_secrets=True)):
        assert "".join(report.result_json(r, policy, chunk=1)) == _whole(r, policy)


def test_an_empty_analysis_has_empty_streamed_sections() -> None:
    r = analyze([str(CAPTURES / "public" / "empty.pcapng")])
    text = "".join(report.result_json(r))
    assert text == _whole(r)
    assert '"traces": [],' in text and '"findings": [],' in text


def test_hostile_text_is_escaped_in_every_piece() -> None:
    """json_safe applies to each piece: a C1 control or bidi mark inside a streamed trace
    comes out as a \\u escape, as in the whole document."""
    r = analyze(MESH)
    span = r.traces[0].spans[0]
    span.call.path = "/a\u202e\x85\nb"
    text = "".join(report.result_json(r, chunk=1))
    assert text == _whole(r)
    assert "\\u202e" in text and "\\u0085" in text and "\u202e" not in text


def test_cli_writes_the_same_bytes_as_the_whole_document() -> None:
    out = CliRunner().invoke(cli, ["analyze", "--format", "json", *MESH])
    assert out.exit_code in (0, 1), out.output
    assert out.output == _whole(analyze(MESH)) + "\n"


def test_the_document_is_never_held_whole() -> None:
    """Many traces and findings: writing them piece by piece holds at most about a piece
    and one element, far less than the document (which the old path built twice: dicts and
    text)."""
    r = analyze(MESH)
    big = dataclasses.replace(r, traces=r.traces * 400, findings=r.findings * 400)
    size = sum(len(p) for p in report.result_json(big))
    tracemalloc.start()
    try:
        for _ in report.result_json(big, chunk=1 << 14):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 8_000_000
    assert peak < size / 10, (peak, size)
