"""The text reports an SRE reads: laid out for the terminal's width, wrapped never cut, the
grouped verdict first, plurals right, colour only where wanted and only around escaped text."""

from __future__ import annotations

import re

import pytest

from analyzer.report.term import Column, Paint, colour_wanted, plural, table, width, wrap, wrap_list
from tests.test_cli import GOLDEN, run

POD = "captures/pods/productpage.pcap"
pytestmark = pytest.mark.usefixtures("_at_root")
SGR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import ROOT

    monkeypatch.chdir(ROOT)


CASES = {
    "analyze-pod": ("analyze", POD),
    "analyze-pod-all": ("analyze", "--all", POD),
    "messages-grpc": ("messages", "captures/grpc-warm.pcap"),
    "info-nat": ("info", "captures/productpage-http1-nat.pcap"),
    "diff-fixed": ("diff", "captures/productpage-http1.pcap", "captures/diff/productpage-fixed.pcap"),
}


@pytest.mark.parametrize("cols", [80, 160])
@pytest.mark.parametrize("case", sorted(CASES))
def test_layout_golden(case: str, cols: int, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    monkeypatch.setenv("COLUMNS", str(cols))
    _, out, _ = run(*CASES[case])
    golden = GOLDEN / f"{case}.{cols}.table"
    if update_golden:
        golden.write_text(out)
    assert out == golden.read_text()
    lines = out.splitlines()
    # nothing cut, and no line past the width but one whose single word is longer
    assert "…" not in out
    for line in lines:
        assert len(line) <= cols or " " not in line.strip(), line


def test_grouped_verdict_comes_first_and_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    _, out, _ = run("analyze", POD)
    verdict = out.index("8 findings in 8 broken traces:")
    detail = out.index("\ndetail:")
    assert verdict < detail
    assert ("  2 missing: productpage does not copy x-request-id and the B3 headers from its inbound "
            "request to its calls to details:9080: 2 of 15 calls; first at frame 43") in out[verdict:detail]
    assert "productpage → reviews:9080: 4 of 15 calls broken" in out
    # every expected value whole: a trace id is never cut
    assert "x-b3-traceid: 0765076076c16434142cba1d0a6a16fe" in out
    assert "by none" not in out and "certain)" not in out


def test_limit_shows_an_example_of_every_hop_and_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    _, out, _ = run("analyze", "--limit", "4", POD)
    assert "detail (4 of 8; --limit N or --all shows more):" in out
    heads = re.findall(r"^(MISSING|PARTIAL|CHANGED|MALFORMED) ", out, re.M)
    assert sorted(heads) == ["CHANGED", "MALFORMED", "MISSING", "PARTIAL"]
    _, none, _ = run("analyze", "--limit", "0", POD)
    assert not re.search(r"^MISSING ", none, re.M) and "2 missing:" in none
    _, every, _ = run("analyze", "--all", "--limit", "1", POD)
    assert len(re.findall(r"^(MISSING|PARTIAL|CHANGED|MALFORMED) ", every, re.M)) == 8


def test_repeated_notes_fold_into_one_line() -> None:
    _, out, _ = run("analyze", POD)
    notes = out[out.index("notes:"):]
    assert notes.count("B3 in, traceparent out") == 1
    assert "frame 165 (and 1 more note like it, the last at frame 255)" in notes


def test_plurals() -> None:
    assert [plural(1, "anomaly"), plural(0, "anomaly"), plural(1, "unchanged hop"), plural(2, "key"),
            plural(3, "broken trace")] == ["1 anomaly", "0 anomalies", "1 unchanged hop", "2 keys",
                                          "3 broken traces"]


def test_diff_says_traces_and_findings_apart() -> None:
    _, out, _ = run("diff", "captures/productpage-http1.pcap", "captures/diff/productpage-newbug.pcap")
    assert "10 traces, 4 broken; 4 findings (1 missing, 1 changed, 1 partial, 1 malformed)" in out
    assert "10 traces, 8 broken; 9 findings (9 partial)" in out


def test_wrap_never_splits_a_word() -> None:
    word = "f" * 50
    lines = wrap(f"trace {word} is long", 20, "  ")
    assert lines == ["trace", "  " + word, "  is long"]
    items = ["x-b3-traceid: " + "a" * 32, "x-b3-spanid: " + "b" * 16]
    assert wrap_list(items, 40, "   ", "e ") == ["e x-b3-traceid: " + "a" * 32 + ",",
                                                "   x-b3-spanid: " + "b" * 16]


def test_table_wraps_the_wrapping_columns_only() -> None:
    cols = [Column("name", wraps=True, sep=" "), Column("n", right=True), Column("list", wraps=True)]
    head, rows = table(cols, [["a b c", 7, "one, two, three"]], 14)
    assert head == ["name  n  list", "----  -  -----"]
    assert rows == [["a b   7  one,", "c        two,", "         three"]]
    assert max(len(x) for r in rows for x in r) <= 14


def test_width_from_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "97")
    assert width() == 97
    monkeypatch.setenv("COLUMNS", "5")
    assert width() == 40  # narrower, and a table has no room for its numbers


class _Tty:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted("auto", _Tty(True)) and not colour_wanted("auto", _Tty(False))  # type: ignore[arg-type]
    assert colour_wanted("always", _Tty(False)) and not colour_wanted("never", _Tty(True))  # type: ignore[arg-type]
    monkeypatch.setenv("NO_COLOR", "1")
    assert not colour_wanted("auto", _Tty(True))  # type: ignore[arg-type]
    assert colour_wanted("always", _Tty(True))  # type: ignore[arg-type]
    assert Paint(False)("missing", "x") == "x" and Paint(True)("missing", "x") == "\x1b[31mx\x1b[0m"


def test_colour_only_when_asked_and_only_ours() -> None:
    _, plain, _ = run("analyze", POD)
    assert "\x1b" not in plain  # piped (CliRunner is no terminal): auto means none
    _, coloured, _ = run("analyze", "--color", "always", POD)
    assert "\x1b[31m2 missing:\x1b[0m" in coloured
    assert SGR.sub("", coloured) == plain
    _, never, _ = run("analyze", "--color", "never", POD)
    assert never == plain
    _, d, _ = run("diff", "--color", "always", "captures/productpage-http1.pcap",
                  "captures/diff/productpage-newbug.pcap")
    assert "\x1b[1;31mregressions found\x1b[0m" in d


def test_colour_cannot_be_injected_by_capture_text(tmp_path: object) -> None:
    from analyzer.report.redact import escape

    hostile = "svc\x1b[2J\x1b]0;owned\x07"
    line = Paint(True)("broken", escape(hostile))
    # exactly the one SGR we add, around text whose ESC and BEL are shown, not sent
    assert SGR.findall(line) == ["\x1b[1;31m", "\x1b[0m"]
    assert "\\x1b[2J" in line and "\x07" not in line


def test_messages_table_shows_ids_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    for cols in ("80", "200"):
        monkeypatch.setenv("COLUMNS", cols)
        _, out, _ = run("messages", POD)
        assert "d535bbb3-7d1c-90c4-8d8d-da5d485aa781" in out and "be8bd71d3fefa6c8084b8269732d79bc" in out
        assert "…" not in out
    monkeypatch.setenv("COLUMNS", "200")
    _, wide, _ = run("messages", POD)
    assert wide.splitlines()[0].split()[-3:] == ["x-request-id", "trace", "id"]
