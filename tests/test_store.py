"""The analysis's stores on disk (analysis.store): every call of every fixture comes back
equal from a CallLog, in order or one by one, with a response seen late; what is decoded for
reads out of order stays bounded; SpillLog gives its records back in order; and the
temporary files never outlive their process, however it ends."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from analyzer.analysis import analyze
from analyzer.analysis.legs import pair, paired
from analyzer.analysis.model import Call
from analyzer.analysis.store import (
    LOG_CACHE_BATCHES,
    SPILL_BATCH,
    CallLog,
    SpillLog,
    call_of,
    row_of,
)
from analyzer.pipeline import CaptureSummary, read_messages
from tests.fixtures import CAPTURES, ROOT, readable_captures

MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))


def _calls(capture: str) -> list[Call]:
    return list(analyze([str(CAPTURES / capture)]).calls)


@pytest.mark.parametrize("capture", readable_captures())
def test_every_call_of_every_fixture_comes_back_equal(capture: str) -> None:
    calls = _calls(capture)
    for c in calls:
        back = call_of(row_of(c))
        assert back == c
        assert [type(t) for t in back.trace] == [type(t) for t in c.trace]
    for batch in (1, 3, SPILL_BATCH):  # from the file (batch by batch), and from memory
        log = CallLog(batch=batch)
        assert [log.append(c) for c in calls] == list(range(len(calls)))
        assert len(log) == len(calls)
        assert list(log) == calls and list(log) == calls  # in order, any number of times
        for n in reversed(range(len(calls))):  # one by one, in an order unlike the one added
            assert log.get(n) == calls[n]
        assert list(CallLog.of_rows(list(log.rows()))) == calls  # as another process sends it
        log.close()
        assert len(log) == 0 and list(log) == []


def test_a_response_seen_after_the_call_was_logged_completes_it() -> None:
    calls = [c for c in _calls("pods/productpage.pcap") if c.response_frame is not None]
    log = CallLog(batch=4)
    for n, c in enumerate(calls):
        early = call_of(row_of(c))
        early.response_frame = early.response_ts = early.status = early.nat_reply_from = None
        assert log.append(early) == n
    assert all(c.response_frame is None for c in log)
    for n, c in enumerate(calls):
        if n % 2:
            log.answered(n, c)
    want = [c if n % 2 else dataclasses.replace(c, response_frame=None, response_ts=None, status=None,
                                                 nat_reply_from=None) for n, c in enumerate(calls)]
    assert list(log) == want
    assert [log.get(n) for n in range(len(calls))] == want


def test_reads_out_of_order_keep_few_batches_decoded() -> None:
    calls = [c for p in MESH for c in analyze([p]).calls]
    log = CallLog(batch=2)
    for c in calls:
        log.append(c)
    assert len(calls) > 2 * (LOG_CACHE_BATCHES + 2)
    for n in range(len(calls)):
        assert log.get(n) == calls[n]
    assert len(log._cache) == LOG_CACHE_BATCHES
    with pytest.raises(IndexError):
        log.get(len(calls))


# -- the temporary file ---------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import os, sys
    from analyzer.analysis import analyze
    from analyzer.analysis.store import CallLog
    calls = list(analyze([sys.argv[1]]).calls)
    log = CallLog(batch=2)  # past a batch: on disk
    for _ in range(20):
        for c in calls:
            log.append(c)
    # the log's file is open, in TMPDIR, and already gone from the directory
    tmp = os.environ["TMPDIR"]
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            held.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir itself used
            pass
    print("HELD", any(h.startswith(tmp) for h in held), flush=True)
    how = sys.argv[2]
    if how == "error":
        raise RuntimeError("boom")
    if how == "kill":
        os.kill(os.getpid(), 9)
    if how == "interrupt":
        raise KeyboardInterrupt
    log.close()
""")


@pytest.mark.parametrize("how", ["close", "error", "interrupt", "kill"])
def test_the_temporary_file_never_outlives_the_log(tmp_path: Path, how: str) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", _CHILD, MESH[0], how], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert "HELD True" in p.stdout, p.stderr  # the log was on disk, in TMPDIR
    assert p.returncode != 0 if how != "close" else p.returncode == 0
    assert list(tmp_path.iterdir()) == []


# -- SpillLog: records read back in order, from memory or from its file -----------------

def _spill_records() -> list[Any]:
    return [b"", b"x", (1, 2, None, True, ("a", b"b")), "text", bytes(range(256)) * 3,
            (0, (("uberctx-k", "v"),), None), b"z" * 100_000, ("end",)]


@pytest.mark.parametrize("batch", [1, 3, SPILL_BATCH])
def test_spill_log_gives_back_every_record_in_order_any_number_of_times(batch: int) -> None:
    log = SpillLog(batch=batch)
    records = _spill_records()
    for r in records[:4]:
        log.append(r)
    assert list(log) == records[:4]
    for r in records[4:]:  # adding after reading appends, whatever was read
        log.append(r)
    assert len(log) == len(records) and bool(log)
    assert list(log) == records
    assert list(log) == records
    log.close()
    assert len(log) == 0 and not log and list(log) == []


def _open_files() -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir itself used
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
    return out


def test_spill_log_keeps_memory_bounded_and_deletes_its_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    before = _open_files()
    log = SpillLog(batch=64)
    small = SpillLog(batch=1 << 20)
    tracemalloc.start()
    try:
        for n in range(20_000):
            log.append((n, b"%d" % n * 20))
        held = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert held < 200_000  # 64 records at most in memory, not 20,000 (about 2 MB)
    for _ in range(5000):
        small.append(b"s")
    # past a batch the log is on disk: an anonymous file in TMPDIR, already unlinked
    opened = [f for f in _open_files() if f not in before]
    assert len(opened) == 1 and opened[0].startswith(str(tmp_path)) and opened[0].endswith("(deleted)")
    assert list(tmp_path.iterdir()) == []
    assert [r[0] for r in log] == list(range(20_000))
    assert list(small) == [b"s"] * 5000  # under its batch: never on disk
    log.close()
    assert [f for f in _open_files() if f not in before] == []


def test_a_context_is_encoded_field_by_field_in_its_constructors_order() -> None:
    import marshal

    from analyzer.analysis.store import trace_fields, trace_of
    from analyzer.tracing import TraceContext

    names = [f.name for f in dataclasses.fields(TraceContext)]
    values: dict[str, Any] = {n: f"v-{n}" for n in names}
    values.update(headers=("h1", "h2"), violations=("bad",), sampled=True, guessed=True)
    t = TraceContext(**values)
    back = trace_of(marshal.loads(marshal.dumps(trace_fields((t,)), 4)))[0]
    assert [getattr(back, n) for n in names] == [values[n] for n in names]


# -- calls logged as pair makes them -----------------------------------------------------------

@pytest.mark.parametrize("capture", readable_captures())
def test_calls_logged_before_their_response_are_completed_by_it(capture: str) -> None:
    """``legs.paired`` gives each call on once answered, or ``limit`` requests later without
    its response, which then completes it in the log (``CallLog.answered``): with a limit of
    one, nearly every call goes on early; the log still reads back as ``pair``'s calls."""
    path = str(CAPTURES / capture)
    log, _ = _logged_early(path)
    assert list(log) == pair(read_messages(path, CaptureSummary(path)))


def _logged_early(path: str) -> tuple[CallLog, int]:
    """The capture's calls logged by ``paired`` with a limit of one; how many were completed."""
    log = CallLog(batch=2)
    early: dict[int, int] = {}
    completed = 0

    def late(c: Call) -> None:
        nonlocal completed
        log.answered(early.pop(id(c)), c)
        completed += 1

    for c in paired(read_messages(path, CaptureSummary(path)), None, late, limit=1):
        n = log.append(c)
        if c.response_frame is None:
            early[id(c)] = n
    return log, completed


def test_concurrent_requests_are_logged_early_and_completed() -> None:
    """Requests in flight together (a pod's fan-out, HTTP/2 streams) are what ``limit``
    sends on before their responses."""
    completed = [_logged_early(p)[1] for p in MESH]
    assert sum(completed) > 0
