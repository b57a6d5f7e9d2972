"""Run one input through the library and the CLI, and say how it failed, if it did.

The contract checked here is the project's promise for untrusted input: the only exception
that may leave the library is ``CaptureError`` (the file is no capture at all); every report
builds (the html page and the expectation file included, and the file reads back as the
verdict it was written from); the CLI ends with status 0, 1 or 2, and with 2 prints exactly
one line on stderr; no output holds a traceback or a raw control character (LF aside), every
output is UTF-8 and JSON where JSON is promised (the page's embedded data too); and
``check`` right after ``check --write-expect`` on the same capture matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from click.testing import CliRunner

from analyzer import check as expectations
from analyzer.analysis import Result, analyze
from analyzer.analysis.diff import diff
from analyzer.cli import cli, info_dict
from analyzer.errors import CaptureError
from analyzer.pipeline import CaptureSummary, read_messages
from analyzer.report import analysis as analysis_report
from analyzer.report import check as check_report
from analyzer.report import diff as diff_report
from analyzer.report import export, html
from analyzer.report.messages import csv_row, message_dict, message_table

ANALYZER = str(Path(__file__).resolve().parents[2] / "analyzer")


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` inside swallows it."""


@dataclass(frozen=True, slots=True)
class Failure:
    """A broken promise: where (``signature``, stable across runs) and the whole story."""

    signature: str
    detail: str

    @property
    def key(self) -> str:
        return hashlib.sha1(self.signature.encode()).hexdigest()[:12]


def signature(err: BaseException) -> str:
    """Exception type plus the innermost analyzer frame: one bug, one signature."""
    where = "?"
    for fs in traceback.extract_tb(err.__traceback__):
        if fs.filename.startswith(ANALYZER):
            where = f"{Path(fs.filename).relative_to(Path(ANALYZER).parent)}:{fs.name}:{fs.lineno}"
    return f"{type(err).__name__} at {where}"


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` after ``seconds`` of wall time (main thread only; 0 disables)."""
    if seconds <= 0:
        yield
        return

    def fire(_sig: int, _frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass(slots=True)
class LibraryRun:
    messages: int = 0  # -1: the input is no capture (CaptureError)
    frames: int = 0


class Broken(Exception):
    """A report that built but breaks its promise (a file that does not read back)."""


def _reports(result: Result) -> None:
    json.dumps(analysis_report.result_dict(result))
    analysis_report.table(result, True)
    analysis_report.markdown(result, True)
    for to in (export.to_jaeger, export.to_zipkin, export.to_otlp):
        json.dumps(to(result))
    html.page(result)
    # the expectation file this verdict writes, read back: the verdict matches it
    written = expectations.dumps(expectations.expectation_of(result))
    checked = expectations.check(result, expectations.loads(written))
    if not checked.matches:
        raise Broken(f"the expectation written from a verdict does not match it: {checked.differences[:3]}")
    json.dumps(check_report.check_dict(checked))
    check_report.table(checked)


def exercise_library(path: Path, partner: Path | None = None) -> LibraryRun:
    """read_messages, every message report, info, analyze, every analysis report, every
    export and a diff of the result with itself; with ``partner`` (another pod's capture),
    the two analysed together too (calls joined across captures) and diffed. Raises
    whatever escapes."""
    out = LibraryRun()
    summary = CaptureSummary(str(path))
    try:
        for m in read_messages(path, summary):
            out.messages += 1
            json.dumps(message_dict(m))
            csv_row(m)
            message_table(80).lines(m)
    except CaptureError:
        out.messages = -1
        return out
    out.frames = summary.frames
    json.dumps(info_dict(summary))
    result = analyze([path])
    _reports(result)
    pairs = [(result, result)]
    if partner is not None:
        joined = analyze([partner, path])
        _reports(joined)
        pairs.append((analyze([partner]), joined))
    for before, after in pairs:
        d = diff(before, after)
        json.dumps(diff_report.diff_dict(d))
        diff_report.table(d, True)
        diff_report.markdown(d, True)
    return out


def check_library(path: Path, seconds: float = 0,
                  partner: Path | None = None) -> tuple[LibraryRun | None, Failure | None]:
    try:
        with time_limit(seconds):
            return exercise_library(path, partner), None
    except Hang as err:
        return None, Failure("Hang", str(err))
    except Exception as err:
        return None, Failure(signature(err), "".join(traceback.format_exception(err)))


COMMANDS = (
    ("messages", "--format", "jsonl"),
    ("messages", "--format", "csv"),
    ("messages",),
    ("info", "--format", "json"),
    ("info",),
    ("analyze", "--format", "json"),
    ("analyze", "--format", "markdown"),
    ("analyze", "--format", "html"),
    ("analyze",),
    ("export", "--to", "otlp"),
    ("diff", "--format", "json"),
    # --expect is added: a file beside the input, written by the first, read by the others
    ("check", "--write-expect"),
    ("check",),
    ("check", "--format", "json"),
)

# What no output may hold raw: C0 controls but LF, DEL, C1 controls, bidi marks, line and
# paragraph separators, the BOM (redact.escape's set). CSV's own CRLF is taken out first.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                         "\u202a-\u202e\u2066-\u2069\ufeff]")
# The page's embedded data (its JSON has no "<": it cannot end the element early).
PAGE_DATA = re.compile(r'<script type="application/json" id="data">([^<]*)</script>')


def _output_fault(cmd: tuple[str, ...], out: bytes, err: str) -> str | None:
    """What is wrong with one command's output, if anything."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"output is not UTF-8 (byte {e.start})"
    for what, t in (("output", text), ("error output", err)):
        if "Traceback (most recent call last)" in t:
            return f"{what} holds a traceback"
        m = RAW_CONTROL.search(t.replace("\r\n", "\n") if "csv" in cmd else t)
        if m:
            return f"{what} holds a raw {m.group()!a}: {t[max(0, m.start() - 60): m.end() + 20]!a}"
    if "html" in cmd and text:
        data = PAGE_DATA.findall(text)
        if len(data) != 1 or text.lower().count("</script") != 2:
            return "the page's data is not one script element"
        try:
            json.loads(data[0])
        except ValueError as e:
            return f"the page's data is not JSON: {e}"
    return None


def check_cli(path: Path, expected: LibraryRun | None) -> Failure | None:
    """Every command on ``path`` through click: status 0/1/2, one error line with 2, and
    with 0 the output the library promised (as many jsonl lines as messages)."""
    # check's file goes to a folder of its own: never beside a corpus file, never another
    # input's file (whose notes and options a rewrite would keep)
    with tempfile.TemporaryDirectory(prefix="tracewire-fuzz-expect-") as folder:
        return _check_commands(path, expected, Path(folder) / ("input" + expectations.SUFFIX))


def _check_commands(path: Path, expected: LibraryRun | None, expect: Path) -> Failure | None:
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if k != "TRACEWIRE_DEBUG"}
    for cmd in COMMANDS:
        extra = ["--expect", str(expect)] if cmd[0] == "check" else []
        if cmd[0] == "check" and cmd[1:2] != ("--write-expect",) and not expect.exists():
            continue  # nothing was written: the capture is no capture (checked below)
        args = [*cmd, *extra, str(path)] + ([str(path)] if cmd[0] == "diff" else [])
        r = runner.invoke(cli, args, env=env)
        name = " ".join(cmd)
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            return Failure(f"cli {cmd[0]}: " + signature(r.exception),
                           "".join(traceback.format_exception(r.exception)))
        if r.exit_code not in (0, 1, 2):
            return Failure(f"cli {cmd[0]}: status {r.exit_code}", r.stderr)
        fault = _output_fault(cmd, r.stdout_bytes, r.stderr)
        if fault is not None:
            return Failure(f"cli {name}: {fault.split(':')[0]}", fault)
        if cmd[0] == "check" and r.exit_code == 1:
            return Failure("cli check: differs from the file just written", r.stdout[:2000])
        if r.exit_code == 2:
            lines = r.stderr.splitlines()
            if len(lines) != 1 or not lines[0].startswith("tracewire: "):
                return Failure(f"cli {cmd[0]}: error output is not one line", r.stderr[:2000])
            if expected is not None and expected.messages >= 0:
                return Failure(f"cli {cmd[0]}: trouble on a readable capture", r.stderr[:2000])
            continue
        if expected is None or expected.messages < 0:
            return Failure(f"cli {cmd[0]}: status {r.exit_code} on no capture", r.stdout[:2000])
        if cmd == ("messages", "--format", "jsonl"):
            rows = r.stdout.splitlines()
            if len(rows) != expected.messages:
                return Failure("cli messages: lost output",
                               f"{len(rows)} lines for {expected.messages} messages")
            for row in rows:
                json.loads(row)
        elif "json" in cmd or cmd[0] == "export":
            json.loads(r.stdout)
        elif cmd == ("check", "--write-expect"):
            expectations.load(str(expect))  # what it wrote reads back
        elif not r.stdout:
            return Failure(f"cli {name}: no output", r.stderr[:2000])
    return None
