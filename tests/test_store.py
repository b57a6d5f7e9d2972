"""The call store (analysis.store): every call of every fixture comes back equal, lookups
find what a scan finds, the cache stays bounded, and the temporary file never outlives
the store, however the process ends."""

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
from analyzer.analysis.model import Call
from analyzer.analysis.store import (
    SPILL_BATCH,
    CallStore,
    SpillLog,
    StoredCalls,
    StoreError,
    decode,
    encode,
)
from tests.fixtures import CAPTURES, ROOT, readable_captures

MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))


def _calls(capture: str) -> list[Call]:
    return analyze([str(CAPTURES / capture)]).calls


@pytest.mark.parametrize("capture", readable_captures())
def test_every_call_of_every_fixture_comes_back_equal(capture: str) -> None:
    calls = _calls(capture)
    with CallStore(cache_calls=8) as store:
        numbers = [store.add(c) for c in calls]
        assert numbers == list(range(len(calls)))
        assert len(store) == len(calls)
        assert list(store) == calls  # in the order added
        # read back one by one, past the cache's bound, in an order unlike the one added
        for n in reversed(range(len(calls))):
            assert store.get(n) == calls[n]
    for c in calls:
        back = decode(encode(c))
        assert back == c
        assert [type(t) for t in back.trace] == [type(t) for t in c.trace]


def test_lookups_find_what_a_scan_finds() -> None:
    calls = [c for p in MESH for c in analyze([p]).calls]
    assert len({c.capture for c in calls}) > 1
    with CallStore() as store:
        for c in calls:
            store.add(c)
        keyed = [c for c in calls if c.request_key]
        traced = [c for c in calls if c.trace_id]
        assert keyed and traced
        for c in keyed:
            want = [n for n, x in enumerate(calls)
                    if x.capture == c.capture and x.request_key == c.request_key]
            assert store.numbers(c.capture, request_key=c.request_key) == want
        for c in traced:
            want = [n for n, x in enumerate(calls) if x.capture == c.capture and x.trace_id == c.trace_id]
            assert store.numbers(c.capture, trace_id=c.trace_id) == want
        first = calls[0]
        lo, hi = first.ts_ns, first.ts_ns + 10**9
        want = [n for n, x in enumerate(calls) if x.capture == first.capture and lo <= x.ts_ns <= hi]
        assert want and store.numbers(first.capture, start=lo, end=hi) == want
        assert store.numbers("no such capture", request_key=keyed[0].request_key) == []


def test_a_changed_call_is_written_back() -> None:
    calls = analyze(MESH[:1]).calls
    with CallStore(cache_calls=1) as store:
        for c in calls:
            store.add(c)
        changed = decode(encode(calls[0]))
        changed.role, changed.unknown = "noise", ("entry #62 of the client's table",)
        store.put(0, changed)
        store.get(len(calls) - 1)  # push call 0 out of the cache: the row itself changed
        assert store.get(0) == changed
        assert next(iter(store)) == changed
        with pytest.raises(IndexError):
            store.put(len(calls), changed)


def test_the_view_is_a_read_only_list() -> None:
    calls = analyze(MESH[:1]).calls
    with CallStore() as store:
        for c in calls:
            store.add(c)
        view = StoredCalls(store)
        assert len(view) == len(calls)
        assert list(view) == calls
        assert view[0] == calls[0] and view[-1] == calls[-1]
        assert view[1:3] == calls[1:3]
        with pytest.raises(IndexError):
            view[len(calls)]


def test_the_cache_is_bounded() -> None:
    calls = analyze(MESH[:1]).calls
    assert len(calls) > 3
    with CallStore(cache_calls=3) as store:
        for c in calls:
            store.add(c)
        for n in range(len(calls)):
            store.get(n)
        assert len(store._cache) == 3


def test_a_closed_store_refuses_use() -> None:
    store = CallStore()
    store.add(analyze(MESH[:1]).calls[0])
    store.close()
    assert store.closed
    with pytest.raises(StoreError):
        store.get(0)
    with pytest.raises(StoreError):
        list(store)
    store.close()  # twice is fine


# -- the temporary file ---------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import os, sys
    from analyzer.analysis import analyze
    from analyzer.analysis.store import CallStore
    calls = analyze([sys.argv[1]]).calls
    store = CallStore(cache_calls=1, cache_kib=64)  # past its page cache: on disk
    for _ in range(20):
        for c in calls:
            store.add(c)
    store.flush()
    # the store's file is open, in TMPDIR, and already gone from the directory
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
    store.close()
""")


@pytest.mark.parametrize("how", ["close", "error", "interrupt", "kill"])
def test_the_temporary_file_never_outlives_the_store(tmp_path: Path, how: str) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path), SQLITE_TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", _CHILD, MESH[0], how], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert "HELD True" in p.stdout, p.stderr  # the store was on disk, in TMPDIR
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
