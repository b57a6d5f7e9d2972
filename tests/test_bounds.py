"""Time and memory bounds on hostile input (issue 9): each stage linear, each buffer bounded.

Complexity is asserted without absolute timings: by counting the Python-level steps taken,
or by comparing the CPU time of an input with that of one four times larger (linear: about
4x; quadratic: 16x) with a loose ratio. Memory is measured with tracemalloc.
"""

from __future__ import annotations

import functools
import gc
import itertools
import random
import struct
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from analyzer import pipeline
from analyzer.capture.reader import Frame
from analyzer.decode import Segment, decode_frame
from analyzer.protocols import h2
from analyzer.protocols.session import DETECT_BUDGET, OTHER, Session
from analyzer.reassembly import Data, End, Gap, Reassembler, StreamEvent
from analyzer.reassembly import tcp as tcp_mod
from tests.packets import ACK, PSH, SYN, ip4, ipv4, pcap, sll2, tcp

C, S = ip4("10.244.1.10"), ip4("10.244.2.20")


def _seg(seq: int, payload: bytes | memoryview = b"", flags: int = PSH | ACK, frame: int = 1,
         sport: int = 40000, src: bytes = C, ts: int = 0) -> Segment:
    view = payload if isinstance(payload, memoryview) else memoryview(payload)
    # acknowledgement numbers far apart per connection: none looks like the reply half of
    # another's Istio NAT split
    ack = (sport * 7_919_000 + int.from_bytes(src, "big") * 104_729) & 0xFFFFFFFF
    return Segment(frame, ts or frame * 1000, src, sport, S, 80, seq & 0xFFFFFFFF, ack, flags, view)


def _cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _ratio(fn: Callable[[int], object], n: int) -> float:
    """CPU time of fn(4n) over fn(n): about 4 when linear, 16 when quadratic. Each size's
    best of three, so a moment of load on a shared machine does not decide."""
    fn(n)  # warm up (imports, caches)
    big = min(_cpu(lambda: fn(4 * n)) for _ in range(3))
    small = min(_cpu(lambda: fn(n)) for _ in range(3))
    return big / max(small, 1e-6)


# -- reassembly ---------------------------------------------------------------------------


def _holes(n: int) -> int:
    """n segments, each one byte past the end of the one before: n waiting, n holes."""
    r = Reassembler()
    r.add(_seg(999, flags=SYN))
    body = b"x" * 20
    for i in range(n):
        r.add(_seg(1001 + i * 21, body, frame=i + 2))
    return len(r.finish(n + 2, 0))


def test_segments_behind_holes_cost_the_same_however_many_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The limits are lifted so that everything waits: with a min() over what waits per
    segment (as before) this is quadratic."""
    monkeypatch.setattr(tcp_mod, "MAX_PENDING_SEGMENTS", 1 << 30)
    monkeypatch.setattr(tcp_mod, "MAX_PENDING_TOTAL_SEGMENTS", 1 << 30)
    assert _holes(10) == 2 * 10 + 2  # a gap and a piece of data per hole, two ends
    assert _ratio(_holes, 4000) < 8


def test_waiting_segments_do_not_keep_their_records() -> None:
    """Out-of-order payloads of a few bytes in 64 KiB records: what waits is the payload."""
    tracemalloc.start()
    try:
        r = Reassembler()
        r.add(_seg(999, flags=SYN))
        base = tracemalloc.get_traced_memory()[0]
        for i in range(400):
            record = bytes(65536)  # a fresh record each time, as the capture reader makes
            r.add(_seg(1001 + i * 8, memoryview(record)[100:108], frame=i + 2))
            del record
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    flow = next(iter(r.flows.values()))
    assert len(flow.pending) == 400
    assert held < 1 << 20, held  # 400 x 64 KiB would be 25 MiB


def test_decode_copies_a_payload_out_of_a_padded_record() -> None:
    pkt = sll2(ipv4("10.244.1.10", "10.244.2.20", tcp(40000, 80, 1, 0, PSH | ACK, b"hello")))
    small = decode_frame(Frame(1, 0, 276, pkt, len(pkt)))
    padded = decode_frame(Frame(1, 0, 276, pkt + bytes(1 << 16), len(pkt)))
    assert isinstance(small, Segment) and isinstance(padded, Segment)
    assert bytes(small.payload) == bytes(padded.payload) == b"hello"
    assert small.payload.obj is not None and memoryview(small.payload.obj).nbytes == len(pkt)  # no copy
    assert padded.payload.obj is not None and memoryview(padded.payload.obj).nbytes == 5  # a copy


def test_waiting_bytes_are_bounded_for_all_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tcp_mod, "MAX_PENDING_TOTAL_SEGMENTS", 100)
    r = Reassembler()
    gaps = 0
    for c in range(50):
        r.add(_seg(999, flags=SYN, sport=41000 + c, frame=c + 1))
    for i in range(10):
        for c in range(50):
            out = r.add(_seg(1001 + i * 4, b"abcd", sport=41000 + c, frame=100 + i * 50 + c))
            gaps += sum(isinstance(e, Gap) for e in out)
            assert r.pending_total_segments <= 100
    assert gaps > 0


# -- connections --------------------------------------------------------------------------


def _kinds(events: list[StreamEvent]) -> list[tuple[int, str]]:
    out = []
    for e in events:
        what = ("data" if isinstance(e, Data) else f"gap {e.n}" if isinstance(e, Gap)
                else f"end {e.reason}" if isinstance(e, End) else "?")
        out.append((e.flow.conn.id, what))
    return out


def test_eviction_flushes_what_a_connection_holds_and_is_counted_once() -> None:
    r = Reassembler(max_connections=2)
    ev: list[StreamEvent] = []
    ev += r.add(_seg(999, flags=SYN, sport=41000, frame=1))
    ev += r.add(_seg(1000, b"GET / HTTP/1.1\r\n", sport=41000, frame=2))
    ev += r.add(_seg(1020, b"waits", sport=41000, frame=3))  # behind a 4-byte hole
    ev += r.add(_seg(500, b"x", sport=41001, frame=4))
    ev += r.add(_seg(77, b"y", sport=41002, frame=5))  # a third: the first must go
    ev += r.add(_seg(88, b"z", sport=41003, frame=6))  # a fourth: then the second
    assert _kinds(ev) == [
        (1, "data"), (2, "data"),
        (1, "gap 4"), (1, "data"), (1, "end evicted"), (1, "end evicted"),
        (3, "data"),
        (2, "end evicted"), (2, "end evicted"),
        (4, "data"),
    ]
    assert [e.frame for e in ev if isinstance(e, End)] == [5, 5, 6, 6]
    r.finish(7, 0)
    evicted = [a for a in r.anomalies if a.kind == "tcp-evicted"]
    assert len(evicted) == 1 and evicted[0].frame == 5
    assert evicted[0].detail.startswith("2 connection(s)")
    assert len(r.active) == 0


def test_active_connections_are_not_evicted_by_idle_ones() -> None:
    r = Reassembler(max_connections=2)
    r.add(_seg(999, flags=SYN, sport=41000, frame=1))
    r.add(_seg(10, b"a", sport=41001, frame=2))
    r.add(_seg(1000, b"b", sport=41000, frame=3))  # 41000 is now the most recent
    ev = r.add(_seg(20, b"c", sport=41002, frame=4))
    assert {e.flow.sport for e in ev if isinstance(e, End)} == {41001, 80}


def test_half_open_connections_idle_too_long_are_dropped() -> None:
    second = 1_000_000_000
    r = Reassembler(half_open_timeout_ns=30 * second)
    r.add(_seg(1, flags=SYN, sport=41000, ts=1 * second))
    r.add(_seg(1, flags=SYN, sport=41001, ts=2 * second))
    r.add(_seg(2, b"data", sport=41001, ts=3 * second))  # carried data: not half-open
    r.add(_seg(1, flags=SYN, sport=41002, ts=20 * second))
    ev = r.add(_seg(1, flags=SYN, sport=41003, ts=40 * second))
    assert {e.flow.conn.id for e in ev} == {1}
    assert [c.id for c in r.active] == [2, 3, 4]
    r.finish(9, 0)
    (a,) = [a for a in r.anomalies if a.kind == "tcp-evicted"]
    assert "1 that never carried data and were idle over 30 s" in a.detail


def _syn_flood_peak(n: int) -> int:
    """Peak memory of n half-open connections; a connection and its two directions refer to
    each other, so ended ones go when the cyclic collector runs: it runs here every 1000
    (in a real run it runs as the allocations go, and bounds that garbage the same way)."""
    gc.collect()
    tracemalloc.start()
    try:
        r = Reassembler(max_connections=500)
        for i in range(n):
            src = bytes([10, 1, i >> 8 & 0xFF, i & 0xFF])
            r.add(_seg(i, flags=SYN, sport=1024 + i % 50000, src=src, frame=i + 1))
            if i % 1000 == 999:
                gc.collect()
        r.finish(n, 0)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_connection_memory_is_flat_in_the_number_opened() -> None:
    # beyond RECENTLY_CLOSED (4096), the bounded memory of ended connections, too
    small, big = _syn_flood_peak(5000), _syn_flood_peak(20000)
    assert big < small * 1.5, (small, big)


def _mid_stream(n: int) -> int:
    """n connections caught mid-stream (no SYN), all to one server endpoint, one direction."""
    r = Reassembler(max_connections=1 << 30)
    for i in range(n):
        r.add(_seg(5000, b"junk", sport=1024 + i % 60000, src=bytes([10, 3, i >> 8 & 0xFF, i & 0xFF]),
                   frame=i + 1))
    return r.connections


def test_many_lonely_connections_to_one_endpoint_stay_linear() -> None:
    """Each new connection looks for the other half of an Istio NAT split among the lonely
    connections of its endpoints: that look must not walk all of them."""
    assert _mid_stream(10) == 10
    assert _ratio(_mid_stream, 1500) < 8


def test_evicted_connections_lose_no_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the whole pipeline: connections ended early still give every message."""
    frames: list[tuple[int, bytes]] = []
    for c in range(6):
        req = b"GET /c%d HTTP/1.1\r\nhost: a\r\nx-request-id: r%d\r\n\r\n" % (c, c)
        # (numbers apart, so that no connection looks like another's NAT-split reply half)
        pkt = ipv4("10.244.1.10", "10.244.2.20",
                   tcp(41000 + c, 80, 1000 + c * 10**6, 7 + c * 10**6, PSH | ACK, req))
        frames.append((c * 1000, sll2(pkt)))
    for c in range(6):
        resp = b"HTTP/1.1 204 No Content\r\n\r\n"
        pkt = ipv4("10.244.2.20", "10.244.1.10",
                   tcp(80, 41000 + c, 7 + c * 10**6, 1000 + c * 10**6 + 60, PSH | ACK, resp))
        frames.append((10_000 + c * 1000, sll2(pkt)))
    f = tmp_path / "evict.pcap"
    f.write_bytes(pcap(frames))
    monkeypatch.setattr(pipeline, "Reassembler", functools.partial(Reassembler, max_connections=2))
    summary = pipeline.CaptureSummary(str(f))
    msgs = list(pipeline.read_messages(f, summary))
    assert sorted(m.path or b"" for m in msgs if m.kind == "request") == [b"/c%d" % c for c in range(6)]
    assert [a.kind for a in summary.anomalies].count("tcp-evicted") == 1


# -- detection ----------------------------------------------------------------------------


def _headers() -> Iterator[bytes]:
    types = [*range(0x11), 0xFF]
    flags = [*range(0x40), 0x80, 0xFF]
    sids = [0, 1, 2, 3, 0x101, 0x7FFFFFFF, 0x80000001]
    lengths = [0, 1, 4, 5, 6, 8, 9, 12, 255, 16384, 16385, 65535, 65536, (1 << 24) - 1]
    for typ, fl, sid, length in itertools.product(types, flags, sids, lengths):
        yield struct.pack(">BHBBL", length >> 16, length & 0xFFFF, typ, fl, sid)


@pytest.mark.parametrize("max_len", [16384, 65535, (1 << 24) - 1])
def test_frame_candidates_cover_every_plausible_header(max_len: int) -> None:
    """The regular expression that skips bytes must never skip a header _plausible takes."""
    pattern = h2._CANDIDATES[max_len <= 0xFFFF]
    found = 0
    for head in _headers():
        hi, lo, typ, fl, sid = h2._FRAME.unpack_from(head, 0)
        if h2._plausible((hi << 16) | lo, typ, fl, sid, max_len):
            found += 1
            assert pattern.match(head) is not None, head.hex()
    assert found > 1000


def _reference_sync(data: bytes) -> int:
    """find_frame_sync as it was: every offset tried in turn."""
    n = len(data)
    for o in range(0, n - 8):
        r = h2._chain_at(data, o, n, 3, h2.DEFAULT_MAX_FRAME)
        if r in (h2._YES, h2._EDGE):
            return o
        if r != h2._NO:
            return -1
    return -1


def test_frame_sync_finds_what_a_byte_by_byte_search_finds() -> None:
    rnd = random.Random(9)
    frames = [
        bytes.fromhex("000000040000000000"),  # SETTINGS
        bytes.fromhex("00000806000000000000000000000000"[:34]),  # PING
        bytes.fromhex("000003010500000001") + b"\x82\x86\x84",  # HEADERS
        bytes.fromhex("000004080000000001") + b"\x00\x00\x10\x00",  # WINDOW_UPDATE
        bytes.fromhex("000002000100000003") + b"ok",  # DATA
    ]
    differ = 0
    for _ in range(300):
        parts = [rnd.randbytes(rnd.randrange(0, 300))]
        for _ in range(rnd.randrange(0, 5)):
            parts.append(rnd.choice(frames))
        if rnd.random() < 0.3:
            parts.append(rnd.randbytes(rnd.randrange(0, 50)))
        data = b"".join(parts)
        if rnd.random() < 0.3:  # mostly-zero junk: every byte a naive candidate
            data = bytes(rnd.randrange(0, 400)) + data
        got = h2.find_frame_sync(data)
        assert got == _reference_sync(data), data.hex()
        differ += got >= 0
    assert differ > 50


def test_frame_sync_steps_in_python_only_at_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    chain_at = h2._chain_at

    def counting(*args: object) -> int:
        nonlocal calls
        calls += 1
        return chain_at(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(h2, "_chain_at", counting)
    rnd = random.Random(3)
    for junk in (rnd.randbytes(1 << 16), bytes(1 << 16), b"\x01" * (1 << 16)):
        calls = 0
        assert h2.find_frame_sync(junk) == -1
        assert calls < len(junk) // 100, calls


def _junk_session(n_bytes: int, gap_every: int) -> Session:
    r = Reassembler()
    (ev,) = r.add(_seg(1000, b"\xee"))
    assert isinstance(ev, Data)
    sess = Session("t", ev.flow.conn)
    rnd = random.Random(1)
    offset = 0
    while offset < n_bytes and sess.protocol == "undecided":
        chunk = rnd.randbytes(1400)
        sess.data(ev.flow, memoryview(chunk), offset, 2, 0)
        offset += len(chunk)
        if offset % gap_every < 1400:
            sess.gap(ev.flow, 1, offset, 2, 0)
            offset += 1
    return sess


def test_detection_gives_up_after_a_bounded_search() -> None:
    """Junk with a gap every 16 KiB (each gap starts detection over): after DETECT_BUDGET
    bytes the connection is "other" and nothing more is held or scanned."""
    sess = _junk_session(4 * DETECT_BUDGET, 16 * 1024)
    assert sess.protocol == OTHER
    d = next(iter(sess.dirs.values()))
    assert DETECT_BUDGET <= d.detect_seen < DETECT_BUDGET + 1400
    assert not d.held


def test_detection_of_junk_is_linear() -> None:
    """Mid-stream junk is searched incrementally: each byte once, not once per packet."""
    assert _ratio(lambda n: _junk_session(n, 1 << 40), 12 * 1024) < 8


def test_gap_anomalies_are_counted_past_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A million holes must not keep a million anomalies: past MAX_LISTED, one count."""
    monkeypatch.setattr(tcp_mod, "MAX_LISTED", 5)
    monkeypatch.setattr(tcp_mod, "MAX_PENDING_SEGMENTS", 3)
    r = Reassembler()
    r.add(_seg(999, flags=SYN))
    events: list[StreamEvent] = []
    for i in range(20):
        events += r.add(_seg(1001 + i * 3, b"ab", frame=i + 2))
    events += r.finish(99, 0)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 20 and sum(g.n for g in gaps) == 20  # every gap still reaches parsers
    listed = [a for a in r.anomalies if a.kind == "tcp-gap"]
    assert len(listed) == 6
    assert listed[-1].detail.startswith("15 more like this (15 bytes missing in all)")
    assert listed[-1].frame == gaps[5].frame


def test_undecided_direction_forgets_frames_behind_a_gap() -> None:
    """Frame bookkeeping of held bytes goes with them when a gap makes detection start over."""
    sess = _junk_session(100 * 1024, 16 * 1024)
    assert sess.protocol == "undecided"
    d = next(iter(sess.dirs.values()))
    assert len(d.pieces) <= 16 * 1024 // 1400 + 3, len(d.pieces)


def test_pipeline_out_of_order_segments_in_huge_records_stay_small(tmp_path: Path) -> None:
    """The bench's ooo-frames case, smaller: capture, decode and reassembly together keep
    what waits, not the 256 KiB records it came in (gzip keeps the file small)."""
    import gzip

    n = 200
    f = tmp_path / "ooo.pcap.gz"
    # written record by record: this test's own process must not grow either (a test that
    # spawns a process measures it from there, and a child starts as big as its parent)
    with gzip.open(f, "wb", compresslevel=1) as gz:
        gz.write(pcap([(0, sll2(ipv4("10.244.1.10", "10.244.2.20", tcp(41000, 80, 999, 0, SYN))))]))
        for i in range(n):
            pkt = sll2(ipv4("10.244.1.10", "10.244.2.20",
                            tcp(41000, 80, 1001 + i * 8, 1, PSH | ACK, b"GET /%03d" % i)))
            record = pkt + bytes(256 * 1024 - len(pkt))
            gz.write(struct.pack("<IIII", i + 1, 0, len(record), len(record)) + record)
    gc.collect()
    tracemalloc.start()
    try:
        summary = pipeline.CaptureSummary(str(f))
        list(pipeline.read_messages(f, summary))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.tcp_segments == n + 1
    assert [a.kind for a in summary.anomalies].count("tcp-gap") == 1
    assert peak < 8 << 20, peak  # the records alone would be 50 MiB


def test_bytes_held_for_detection_are_bounded_over_all_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many undecided connections: past the shared budget the one holding longest becomes
    "other"; a connection whose protocol shows is unaffected, and the count is one anomaly."""
    rnd = random.Random(4)
    frames: list[tuple[int, bytes]] = []
    for c in range(10):
        isn, ack = rnd.getrandbits(32), rnd.getrandbits(32)
        for k in range(2):
            junk = rnd.randbytes(3000)
            pkt = ipv4(f"10.2.0.{c + 1}", "10.244.2.20", tcp(30000 + c, 9000, isn + k * 3000, ack,
                                                               PSH | ACK, junk))
            frames.append((len(frames) * 1000, sll2(pkt)))
    req = b"GET /ok HTTP/1.1\r\nhost: a\r\n\r\n"
    pkt = ipv4("10.244.1.10", "10.244.2.20", tcp(41000, 80, 77, 88, PSH | ACK, req))
    frames.append((len(frames) * 1000, sll2(pkt)))
    f = tmp_path / "junk.pcap"
    f.write_bytes(pcap(frames))
    monkeypatch.setattr(pipeline, "DETECT_HELD_BUDGET", 16 * 1024)
    summary = pipeline.CaptureSummary(str(f))
    msgs = list(pipeline.read_messages(f, summary))
    assert [m.path for m in msgs] == [b"/ok"]
    (a,) = [a for a in summary.anomalies if a.kind == "detect-budget"]
    # 10 x 6000 bytes held against a 16 KiB budget: all but the last two gave up early
    assert a.detail.startswith("8 connection(s)"), a.detail
    assert sorted(c.protocol for c in summary.connections) == ["http/1"] + ["other"] * 10
