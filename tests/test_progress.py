"""The progress line: only for a terminal outside CI, cheap (a thread reading what the
pipeline records anyway), erased before any report is written."""

from __future__ import annotations

import io

from analyzer.capture import open_capture
from analyzer.pipeline import Position
from analyzer.progress import Progress, StopOnWrite, describe, wanted
from tests.fixtures import ROOT
from tests.test_cli import run

POD = ROOT / "captures/pods/productpage.pcap"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_wanted_only_on_a_terminal_outside_ci() -> None:
    assert wanted(_Tty(), {})
    assert wanted(_Tty(), {"CI": "false"})
    assert not wanted(_Tty(), {"CI": "true"})
    assert not wanted(_Tty(), {"CI": "1"})
    assert not wanted(io.StringIO(), {})  # a pipe or a file


def test_describe_says_how_much_of_the_file_is_read() -> None:
    with open_capture(POD) as reader:
        frames = iter(reader)
        for _ in range(50):
            next(frames)
        text = describe(Position(str(POD), reader))
    assert text is not None
    size = POD.stat().st_size
    assert text.startswith("productpage.pcap: ") and text.endswith(", frame 50")
    assert f"of {size / 1000:.1f} kB)" in text
    assert describe(Position()) is None  # between passes


def test_describe_counts_frames_when_the_size_is_unknown() -> None:
    with open_capture(POD) as reader:
        reader.stream = io.BufferedReader(io.BytesIO(POD.read_bytes()))
        next(iter(reader))
        assert describe(Position("-", reader)) == "standard input: frame 1"


def test_the_line_is_drawn_then_erased_and_stays_erased() -> None:
    err = io.StringIO()
    with open_capture(POD) as reader:
        next(iter(reader))
        line = Progress(err, Position(str(POD), reader))
        line.tick()
        assert err.getvalue().startswith("\r\x1b[Kproductpage.pcap: ") and line.drawn
        out = io.StringIO()
        stdout = StopOnWrite(out, line)
        stdout.write("")  # click probes streams with empty writes: not output
        assert line.drawn
        stdout.write("report\n")
        assert out.getvalue() == "report\n"
        assert err.getvalue().endswith("\r\x1b[K") and not line.drawn
        before = err.getvalue()
        line.tick()
        line.stop()
        assert err.getvalue() == before  # stopped for good


def test_the_thread_updates_a_few_times_a_second_after_a_delay() -> None:
    err = io.StringIO()
    with open_capture(POD) as reader:
        next(iter(reader))
        line = Progress(err, Position(str(POD), reader), interval=0.01, delay=0.0).start()
        import time

        deadline = time.monotonic() + 5
        while not line.drawn and time.monotonic() < deadline:
            time.sleep(0.01)
        line.stop()
    assert err.getvalue().count("productpage.pcap: ") >= 1


def test_no_progress_in_a_pipe() -> None:
    code, _, err = run("analyze", str(POD))
    assert code == 0 and "\x1b" not in err and "\r" not in err
