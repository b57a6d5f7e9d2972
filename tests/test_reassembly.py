"""reassembly/: order, retransmission, overlap, wraparound, mid-connection starts, gaps, reuse."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.decode import Segment
from analyzer.reassembly import Data, Gap, Reassembler, StreamEvent, seq_diff
from tests.packets import ACK, FIN, PSH, RST, SYN, ip4

C, S = ip4("127.0.0.6"), ip4("10.244.1.10")


def seg(seq: int, payload: bytes = b"", flags: int = PSH | ACK, frame: int = 1, client: bool = True,
        ack: int = 0, missing: int = 0) -> Segment:
    src, sp, dst, dp = (C, 40000, S, 9080) if client else (S, 9080, C, 40000)
    return Segment(frame, frame * 1000, src, sp, dst, dp, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags,
                   memoryview(payload), missing)


def run(segs: list[Segment]) -> list[StreamEvent]:
    r = Reassembler()
    out: list[StreamEvent] = []
    for s in segs:
        out += r.add(s)
    out += r.finish(999, 0)
    return out


def stream(events: list[StreamEvent], sport: int = 40000) -> list[tuple[str, object]]:
    """One direction's events, with adjacent data merged, as comparable tuples."""
    res: list[tuple[str, object]] = []
    for e in events:
        if e.flow.sport != sport:
            continue
        if isinstance(e, Data):
            if res and res[-1][0] == "data":
                res[-1] = ("data", res[-1][1] + bytes(e.data))  # type: ignore[operator]
            else:
                res.append(("data", bytes(e.data)))
        elif isinstance(e, Gap):
            res.append(("gap", e.n))
        else:
            res.append(("end", e.reason))
    return res


def test_seq_diff_wraps() -> None:
    assert seq_diff(5, 0xFFFFFFF0) == 21
    assert seq_diff(0xFFFFFFF0, 5) == -21
    assert seq_diff(10, 10) == 0


def test_in_order_with_handshake_and_fin() -> None:
    ev = run([seg(100, b"", SYN), seg(101, b"abc"), seg(104, b"def"), seg(107, b"", FIN | ACK)])
    assert stream(ev) == [("data", b"abcdef"), ("end", "fin")]
    offsets = [e.offset for e in ev if isinstance(e, Data)]
    assert offsets == [0, 3]


def test_out_of_order_and_retransmission_and_overlap() -> None:
    ev = run([
        seg(100, b"", SYN),
        seg(107, b"ghi", frame=2),
        seg(101, b"abc", frame=3),
        seg(101, b"abc", frame=4),  # retransmission
        seg(102, b"bcdef", frame=5),  # overlap carrying new bytes
        seg(104, b"def", frame=6),
    ])
    assert stream(ev) == [("data", b"abcdefghi"), ("end", "eof")]


def test_wraparound() -> None:
    isn = 0xFFFFFFFA
    ev = run([seg(isn, b"", SYN), seg(isn + 1, b"01234"), seg(isn + 6, b"56789"), seg(isn + 11, b"x")])
    assert stream(ev) == [("data", b"0123456789x"), ("end", "eof")]


def test_mid_connection_start() -> None:
    ev = run([seg(123456, b"tail of a body"), seg(123470, b"GET /")])
    assert stream(ev) == [("data", b"tail of a bodyGET /"), ("end", "eof")]
    assert ev[0].flow.syn_seen is False


def test_gap_is_never_filled() -> None:
    ev = run([seg(100, b"", SYN), seg(101, b"abc"), seg(110, b"xyz")])
    assert stream(ev) == [("data", b"abc"), ("gap", 6), ("data", b"xyz"), ("end", "eof")]


def test_gap_declared_when_peer_acks_unseen_bytes() -> None:
    r = Reassembler()
    r.add(seg(100, b"", SYN))
    r.add(seg(101, b"abc", frame=2))
    assert [type(e) for e in r.add(seg(110, b"xyz", frame=3))] == []
    ev = r.add(seg(900, b"", ACK, client=False, ack=113, frame=4))
    assert [(type(e).__name__, getattr(e, "n", None)) for e in ev] == [("Gap", 6), ("Data", None)]
    # The anomaly cites the first segment after the hole, as Wireshark does.
    assert (r.anomalies[0].kind, r.anomalies[0].frame) == ("tcp-gap", 3)


def test_snapped_segment_becomes_gap() -> None:
    ev = run([seg(100, b"", SYN), seg(101, b"abc", missing=4), seg(108, b"xyz")])
    assert stream(ev) == [("data", b"abc"), ("gap", 4), ("data", b"xyz"), ("end", "eof")]


def test_rst_ends_both_directions() -> None:
    ev = run([seg(100, b"", SYN), seg(101, b"abc"), seg(500, b"", RST, client=False)])
    assert stream(ev) == [("data", b"abc"), ("end", "rst")]
    assert stream(ev, sport=9080) == [("end", "rst")]


def test_port_reuse_starts_a_new_connection() -> None:
    r = Reassembler()
    ev: list[StreamEvent] = []
    for s in [seg(100, b"", SYN), seg(101, b"one"), seg(104, b"", FIN | ACK),
              seg(7000, b"", SYN), seg(7001, b"two")]:
        ev += r.add(s)
    ev += r.finish(9, 0)
    conns = sorted({e.flow.conn.id for e in ev})
    assert conns == [1, 2]
    assert stream([e for e in ev if e.flow.conn.id == 2]) == [("data", b"two"), ("end", "eof")]
    assert stream([e for e in ev if e.flow.conn.id == 1]) == [("data", b"one"), ("end", "fin")]


def test_late_retransmission_after_close_is_ignored() -> None:
    r = Reassembler()
    for s in [seg(100, b"", SYN), seg(101, b"one"), seg(104, b"", FIN | ACK),
              seg(700, b"", FIN | ACK, client=False, ack=105)]:
        r.add(s)
    assert r.add(seg(101, b"one")) == []
    assert r.connections == 1


def test_buffer_limit_bounds_memory() -> None:
    from analyzer.reassembly import tcp

    r = Reassembler()
    r.add(seg(100, b"", SYN))
    out: list[StreamEvent] = []
    for i in range(tcp.MAX_PENDING_SEGMENTS + 5):
        out += r.add(seg(1101 + i * 10, b"0123456789"))  # a 1000-byte hole never filled
    gaps = [e for e in out if isinstance(e, Gap)]
    assert [g.n for g in gaps] == [1000]
    flow = next(iter(r.flows.values()))
    assert len(flow.pending) + len(flow.peer.pending) <= tcp.MAX_PENDING_SEGMENTS


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    cuts=st.lists(st.integers(min_value=1, max_value=399), max_size=30),
    seed=st.integers(min_value=0, max_value=2**32),
    isn=st.integers(min_value=0, max_value=2**32 - 1),
    drop=st.booleans(),
)
def test_any_segmentation_reorder_and_duplication(
    data: bytes, cuts: list[int], seed: int, isn: int, drop: bool
) -> None:
    """Whatever the order of arrival, the bytes come out in order; a lost piece is a gap of
    exactly its size and nothing is invented."""
    points = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
    pieces = [(points[i], data[points[i]:points[i + 1]]) for i in range(len(points) - 1)]
    rnd = random.Random(seed)
    dropped = None
    if drop and len(pieces) > 2:
        dropped = rnd.randrange(1, len(pieces) - 1)  # never the first: the start is a SYN
    sent = [p for i, p in enumerate(pieces) if i != dropped]
    sent += [rnd.choice(sent) for _ in range(rnd.randrange(4))]  # retransmissions
    rnd.shuffle(sent)
    segs = [seg(isn, b"", SYN, frame=1)]
    segs += [seg(isn + 1 + off, chunk, frame=i + 2) for i, (off, chunk) in enumerate(sent)]
    got = stream(run(segs))
    if dropped is None:
        assert got == [("data", data), ("end", "eof")]
    else:
        off, chunk = pieces[dropped]
        assert got == [("data", data[:off]), ("gap", len(chunk)),
                       ("data", data[off + len(chunk):]), ("end", "eof")]


def test_istio_nat_halves_are_paired_by_endpoint_and_numbers() -> None:
    """Requests go podIP:p -> 127.0.0.1:15001, replies come ClusterIP:9080 -> podIP:p."""
    pod, lo, cip = ip4("10.244.1.10"), ip4("127.0.0.1"), ip4("10.96.12.34")
    r = Reassembler()

    def s(src: bytes, sp: int, dst: bytes, dp: int, seq: int, ack: int, data: bytes) -> Segment:
        return Segment(1, 0, src, sp, dst, dp, seq, ack, PSH | ACK, memoryview(data))

    ev = r.add(s(pod, 41901, lo, 15001, 1000, 7000, b"GET / HTTP/1.1\r\n\r\n"))
    ev += r.add(s(cip, 9080, pod, 41901, 7000, 1018, b"HTTP/1.1 200 OK\r\n\r\n"))
    # another app connection to the same sidecar port must not be taken for the reply
    ev += r.add(s(pod, 41999, lo, 15001, 50, 60, b"GET /x HTTP/1.1\r\n\r\n"))
    assert r.connections == 2
    conn = ev[0].flow.conn
    assert ev[1].flow.conn is conn and ev[1].flow is conn.b
    assert conn.nat_reply_from == (cip, 9080)
    assert ev[2].flow.conn is not conn


def test_unrelated_reply_numbers_are_not_paired() -> None:
    pod, lo, cip = ip4("10.244.1.10"), ip4("127.0.0.1"), ip4("10.96.12.34")
    r = Reassembler()
    r.add(Segment(1, 0, pod, 41901, lo, 15001, 1000, 7000, PSH | ACK, memoryview(b"GET /")))
    r.add(Segment(2, 0, cip, 9080, pod, 41901, 0x80000000, 0x90000000, PSH | ACK, memoryview(b"HTTP/1.1")))
    assert r.connections == 2


def test_conflicting_retransmission_behind_a_hole_keeps_the_first_copy() -> None:
    """Issue 9, "Evidence": a retransmission that differs while the first copy still waits
    must not replace it; the conflict is recorded with the retransmission's frame."""
    r = Reassembler()
    out: list[StreamEvent] = []
    out += r.add(seg(100, b"", SYN, frame=1))
    out += r.add(seg(104, b"GET /real", frame=2))  # waits behind the hole at 101..103
    out += r.add(seg(104, b"GET /fake", frame=3))  # same place, other bytes
    out += r.add(seg(104, b"GET /fake HTTP/1.1", frame=4))  # longer: only its tail is new
    out += r.add(seg(101, b"abc", frame=5))
    out += r.finish(9, 0)
    assert stream(out) == [("data", b"abcGET /real HTTP/1.1"), ("end", "eof")]
    conflicts = [a for a in r.anomalies if a.kind == "tcp-overlap-conflict"]
    assert [(a.frame, "4 byte(s)" in a.detail) for a in conflicts] == [(3, True), (4, True)]


def test_partly_overlapping_waiting_copies_keep_the_first_bytes() -> None:
    r = Reassembler()
    out: list[StreamEvent] = []
    out += r.add(seg(100, b"", SYN, frame=1))
    out += r.add(seg(106, b"FGH", frame=2))  # bytes 5..7 of the stream
    out += r.add(seg(103, b"cdefgh", frame=3))  # covers them with other bytes, and more
    out += r.add(seg(101, b"ab", frame=4))
    out += r.finish(9, 0)
    assert stream(out) == [("data", b"abcdeFGH"), ("end", "eof")]
    assert [a.frame for a in r.anomalies if a.kind == "tcp-overlap-conflict"] == [3]


def test_in_order_segment_does_not_override_what_waits() -> None:
    r = Reassembler()
    out: list[StreamEvent] = []
    out += r.add(seg(100, b"", SYN, frame=1))
    out += r.add(seg(101, b"ab", frame=2))
    out += r.add(seg(105, b"XY", frame=3))  # waits
    out += r.add(seg(103, b"cdxyz", frame=4))  # in order, and rewrites what waits
    out += r.finish(9, 0)
    assert stream(out) == [("data", b"abcdXYz"), ("end", "eof")]
    assert [a.frame for a in r.anomalies if a.kind == "tcp-overlap-conflict"] == [4]


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=2, max_size=200),
    ranges=st.lists(st.tuples(st.integers(0, 199), st.integers(1, 60), st.booleans()), max_size=25),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_first_copy_of_every_byte_wins(
    data: bytes, ranges: list[tuple[int, int, bool]], seed: int
) -> None:
    """Copies of any ranges, some with altered bytes, in any order: each byte comes out as
    the first segment that carried it had it, and each differing copy is recorded."""
    n = len(data)
    rnd = random.Random(seed)
    sent: list[tuple[int, bytes]] = [(0, data)]  # one whole copy, so nothing is missing
    for start, length, alter in ranges:
        start %= n
        chunk = bytearray(data[start : start + length])
        if alter:
            chunk[rnd.randrange(len(chunk))] ^= 0xFF
        sent.append((start, bytes(chunk)))
    rnd.shuffle(sent)
    first: list[int | None] = [None] * n
    for start, piece in sent:
        for i, b in enumerate(piece):
            if first[start + i] is None:
                first[start + i] = b
    expected = bytes(b for b in first if b is not None)
    r = Reassembler()
    out = r.add(seg(1000, b"", SYN, frame=1))
    for i, (start, piece) in enumerate(sent):
        out += r.add(seg(1001 + start, piece, frame=i + 2))
    out += r.finish(999, 0)
    assert stream(out) == [("data", expected), ("end", "eof")]
