"""TCP reassembly per connection and direction.

Strategy: the common case on loopback is in-order data, so a segment whose sequence number is
the one expected goes straight out as a memoryview slice, with no copy and no buffer. Anything
ahead of that waits in a small per-direction buffer until the hole fills, until the peer
acknowledges bytes the capture never showed (then they were lost by the capture, not the
network, and become a gap), until the buffer limit is hit, or until the stream ends. Bytes that
were never captured are reported as ``Gap(n)``: never filled with zeros, never guessed.

Sequence numbers are compared in 32-bit serial arithmetic (RFC 1982), so a stream may wrap.
A capture that starts mid-connection (no SYN) starts each direction at the first byte seen.

Bounds (capture content is hostile). Waiting segments are kept by stream offset in a sorted
list, so finding the oldest hole is O(1) and each segment costs O(log n) plus a bounded
memmove: linear overall, however many holes. What waits is a copy of its payload, never a
view that would keep a whole captured record alive. Waiting segments never overlap: a
segment is cut against what already waits, so the first copy of every byte is the one kept
(a retransmission that differs is recorded as a conflict). Buffers are bounded per direction
and for all connections together, and so are connections: beyond ``max_connections`` the one
idle longest is ended early (its data flushed as a gap and an end, as at the end of the
capture), as are half-open connections idle for ``HALF_OPEN_TIMEOUT`` of capture time, like
Zeek's connection timeouts. Evictions are counted in one anomaly.
"""

from __future__ import annotations

import bisect
from builtins import memoryview, object  # noqa: UP029  (mypyc: field annotations resolve here)
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import islice

from analyzer.decode.packet import ACK, FIN, RST, SYN, Segment, format_addr, format_endpoint
from analyzer.records import Anomaly

MOD = 1 << 32
HALF = 1 << 31
MAX_PENDING_BYTES = 4 << 20  # per direction; beyond this the oldest hole is declared a gap
MAX_PENDING_SEGMENTS = 1024
# For all directions together: many connections each just under their own limit must not
# add up to gigabytes. Beyond these, the direction that adds a segment gives up its oldest hole.
MAX_PENDING_TOTAL_BYTES = 64 << 20
MAX_PENDING_TOTAL_SEGMENTS = 64 * 1024
RECENTLY_CLOSED = 4096
# Anomalies of one kind (gaps, conflicting retransmissions) listed one by one; beyond this
# they are counted, in one anomaly at the end, so their memory does not grow with the file.
MAX_LISTED = 1000
# Bytes of the last delivered segment kept per direction, to check that a retransmission of
# them carries the same bytes: a retransmission overlaps the end of what was delivered.
RECENT_KEEP = 4096
# Open connections kept at once. A pod rarely has more than a few thousand; beyond this the
# least recently active one is ended early (evicted), so memory follows this limit, not the
# number of connections an attacker (or a SYN flood) opens.
MAX_CONNECTIONS = 10_000
# A connection that never carried a byte (a SYN, maybe a handshake) and has been idle this
# long (capture time) is dropped when a new connection arrives: Zeek's tcp_attempt_delay idea.
HALF_OPEN_TIMEOUT_NS = 30 * 1_000_000_000
# Reply halves of Istio's NAT split are looked for among this many recent lonely connections
# per endpoint: the app's endpoint is an ephemeral port with one or two, while a server's
# endpoint can have thousands that must not be walked for every new connection.
NAT_CANDIDATES = 8


def seq_diff(a: int, b: int) -> int:
    """a - b in 32-bit serial arithmetic: negative when a is before b."""
    d = (a - b) & 0xFFFFFFFF
    return d - MOD if d >= HALF else d


@dataclass(eq=False, slots=True)
class Flow:
    """One direction of a connection: src:sport -> dst:dport."""

    conn: Connection
    src: bytes
    sport: int
    dst: bytes
    dport: int
    first_frame: int
    syn_seen: bool = False
    next_seq: int | None = None
    offset: int = 0  # stream bytes accounted for, gaps included
    fin_seq: int | None = None
    ended: bool = False
    # Segments waiting behind a hole, keyed by stream offset (the ``offset`` scale, which
    # never wraps): start -> (payload copy, bytes missing after it, frame, ts). ``starts``
    # from index ``head`` on holds the same keys in order; entries never overlap.
    pending: dict[int, tuple[bytes, int, int, int]] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)
    head: int = 0  # starts[:head] are delivered; dropped in bulk, so taking the first is O(1)
    pending_bytes: int = 0
    retransmitted: int = 0
    last_ack: int | None = None  # the last acknowledgement number this direction sent
    readdressed: int = 0  # bumped when NAT pairing gives this direction its real addresses
    # The last delivered segment (its first sequence number and bytes), to check that a
    # retransmission overlapping it carries the same bytes.
    recent_seq: int = 0
    recent: memoryview | None = None
    segments: int = 0
    payload_bytes: int = 0
    gap_bytes: int = 0

    @property
    def peer(self) -> Flow:
        c = self.conn
        return c.b if self is c.a else c.a  # type: ignore[return-value]


@dataclass(eq=False, slots=True)
class Connection:
    """Both directions of one TCP connection. ``a`` is the direction seen first.

    ``client`` is the direction that sent the SYN, when the capture shows it; otherwise
    None and the protocol stage decides from content. ``state`` is free for the protocol
    stage to hang its per-connection parser on.
    """

    id: int
    first_frame: int
    first_ts: int
    a: Flow | None = None
    b: Flow | None = None
    client: Flow | None = None
    last_ts: int = 0
    state: object = None
    # Istio's NAT split: the replies came from this address ("10.96.12.34:9080"), the
    # service's ClusterIP, while the requests went to the sidecar's 127.0.0.1:15001.
    nat_reply_from: tuple[bytes, int] | None = None

    @property
    def closed(self) -> bool:
        return bool(self.a and self.a.ended and self.b and self.b.ended)


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class Data:
    flow: Flow
    data: memoryview
    offset: int
    frame: int
    ts_ns: int

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(self, flow: Flow, data: memoryview, offset: int, frame: int, ts_ns: int) -> None:
        self.flow = flow
        self.data = data
        self.offset = offset
        self.frame = frame
        self.ts_ns = ts_ns


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class Gap:
    flow: Flow
    n: int
    offset: int
    frame: int
    ts_ns: int

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(self, flow: Flow, n: int, offset: int, frame: int, ts_ns: int) -> None:
        self.flow = flow
        self.n = n
        self.offset = offset
        self.frame = frame
        self.ts_ns = ts_ns


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class End:
    flow: Flow
    frame: int
    ts_ns: int
    reason: str  # "fin", "rst", "eof" (capture ended), "reused" (ports taken by a new SYN)

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(self, flow: Flow, frame: int, ts_ns: int, reason: str) -> None:
        self.flow = flow
        self.frame = frame
        self.ts_ns = ts_ns
        self.reason = reason


StreamEvent = Data | Gap | End


class Reassembler:
    """Feeds segments, returns stream events. ``finish()`` flushes at the end of the capture."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS,
                 half_open_timeout_ns: int = HALF_OPEN_TIMEOUT_NS) -> None:
        self.flows: dict[tuple[bytes, int, bytes, int], Flow] = {}
        # 4-tuple of a recently ended direction -> its next sequence number (only that: the
        # ended connection itself is not kept alive)
        self.closed: dict[tuple[bytes, int, bytes, int], int | None] = {}
        self.connections = 0
        self.anomalies: list[Anomaly] = []
        # endpoint -> connections seen in one direction only, for pairing NAT halves
        # (dicts used as ordered sets: removal is O(1) however many share an endpoint)
        self.lonely: dict[tuple[bytes, int], dict[Connection, None]] = {}
        # open connections, least recently active first
        self.active: OrderedDict[Connection, None] = OrderedDict()
        self.max_connections = max(1, max_connections)
        self.half_open_timeout_ns = half_open_timeout_ns
        self.evicted = 0
        self.evicted_half_open = 0
        self.first_evicted_frame: int | None = None
        self.pending_total_bytes = 0
        self.pending_total_segments = 0
        self.pending_conflicts = 0
        # anomalies listed one by one, per kind, and those only counted past MAX_LISTED:
        # kind -> (count, bytes, first frame)
        self.listed: dict[str, int] = {}
        self.unlisted: dict[str, tuple[int, int, int]] = {}

    # -- connection table -------------------------------------------------------------

    def _new_connection(self, seg: Segment, out: list[StreamEvent]) -> Flow:
        self._make_room(seg, out)
        self.connections += 1
        conn = Connection(self.connections, seg.frame, seg.ts_ns)
        a = Flow(conn, seg.src, seg.sport, seg.dst, seg.dport, seg.frame)
        b = Flow(conn, seg.dst, seg.dport, seg.src, seg.sport, seg.frame)
        conn.a, conn.b = a, b
        self.flows[(a.src, a.sport, a.dst, a.dport)] = a
        self.flows[(b.src, b.sport, b.dst, b.dport)] = b
        for ep in ((a.src, a.sport), (a.dst, a.dport)):
            self.lonely.setdefault(ep, {})[conn] = None
        self.active[conn] = None
        return a

    def _make_room(self, seg: Segment, out: list[StreamEvent]) -> None:
        """Before a new connection: end the least recently active ones while there are too
        many, and those that never carried data and have been idle too long. Each connection
        is evicted at most once, so this is O(1) amortised per segment."""
        active = self.active
        while active:
            conn = next(iter(active))
            if len(active) >= self.max_connections:
                half_open = False
            elif seg.ts_ns - conn.last_ts > self.half_open_timeout_ns and _no_data(conn):
                half_open = True
            else:
                return
            self.evicted += 1
            self.evicted_half_open += half_open
            if self.first_evicted_frame is None:
                self.first_evicted_frame = seg.frame
            self._close(conn, seg, "evicted", out)

    def _unlonely(self, conn: Connection) -> None:
        a = conn.a
        assert a is not None
        for ep in ((a.src, a.sport), (a.dst, a.dport)):
            d = self.lonely.get(ep)
            if d is not None and d.pop(conn, 0) is None and not d:
                del self.lonely[ep]

    def _nat_pair(self, seg: Segment) -> Flow | None:
        """Find the other half of a connection that NAT made look like two.

        Istio redirects the app's outbound connection to 127.0.0.1:15001 before the capture
        point, while conntrack rewrites the replies back to the service's ClusterIP: the two
        directions of one connection then have different 4-tuples. They share the app's
        endpoint, and each acknowledges the other's bytes: those numbers pair them.
        """
        for app, other in (((seg.dst, seg.dport), (seg.src, seg.sport)),
                           ((seg.src, seg.sport), (seg.dst, seg.dport))):
            for conn in islice(reversed(self.lonely.get(app, {})), NAT_CANDIDATES):
                a = conn.a
                assert a is not None
                # the existing half runs between the app endpoint and a different peer
                if (a.src, a.sport) == app:
                    peer_ep = (a.dst, a.dport)
                elif (a.dst, a.dport) == app:
                    peer_ep = (a.src, a.sport)
                else:
                    continue
                if peer_ep == other or (peer_ep[1] == other[1] and peer_ep[0] == other[0]):
                    continue
                if a.next_seq is None or a.last_ack is None or not seg.flags & ACK:
                    continue
                # seg acknowledges bytes a sent (not beyond them), and starts near where
                # a's acknowledgements say the other direction stood.
                if not -(1 << 22) < seq_diff(seg.ack, a.next_seq) <= 0:
                    continue
                if not -(1 << 16) < seq_diff(seg.seq, a.last_ack) < (1 << 22):
                    continue
                b = a.peer
                if b.segments:
                    continue
                self._unlonely(conn)
                old = (b.src, b.sport, b.dst, b.dport)
                if self.flows.get(old) is b:
                    del self.flows[old]
                b.src, b.sport, b.dst, b.dport = seg.src, seg.sport, seg.dst, seg.dport
                b.readdressed += 1
                self.flows[(b.src, b.sport, b.dst, b.dport)] = b
                conn.nat_reply_from = other if (a.src, a.sport) == app else peer_ep
                return b
        return None

    def _retire(self, conn: Connection) -> None:
        self._unlonely(conn)
        self.active.pop(conn, None)
        for f in (conn.a, conn.b):
            assert f is not None
            key = (f.src, f.sport, f.dst, f.dport)
            f.recent = None  # a retired flow only answers "was this seen before?"
            if self.flows.get(key) is f:
                del self.flows[key]
                self.closed[key] = f.next_seq
        while len(self.closed) > RECENTLY_CLOSED:
            del self.closed[next(iter(self.closed))]

    def add(self, seg: Segment) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        flow = self.flows.get(key)
        flags = seg.flags
        if flow is None:
            if key in self.closed and not flags & SYN:
                # Late packets of a finished connection: a retransmission or a final ACK.
                old = self.closed[key]
                if not seg.payload or (old is not None and seq_diff(seg.seq, old) < 0):
                    return out
            flow = self._nat_pair(seg) if not flags & SYN or flags & ACK else None
            if flow is None:
                flow = self._new_connection(seg, out)
        elif flags & SYN and not flags & ACK and (flow.syn_seen or flow.offset or flow.ended):
            if flow.next_seq is None or seq_diff(seg.seq + 1, flow.next_seq) != 0:
                # Same ports, new connection: close the old one and start afresh.
                self._close(flow.conn, seg, "reused", out)
                flow = self._new_connection(seg, out)
        conn = flow.conn
        conn.last_ts = seg.ts_ns
        self.active.move_to_end(conn)
        if not flow.segments and flow is conn.b:
            self._unlonely(conn)
        flow.segments += 1
        if flags & SYN:
            if not flags & ACK and conn.client is None:
                conn.client = flow
            elif flags & ACK and conn.client is None:
                conn.client = flow.peer
            if flow.next_seq is None or not flow.offset:
                flow.next_seq = (seg.seq + 1) & 0xFFFFFFFF
                flow.syn_seen = True
        if flags & ACK:
            flow.last_ack = seg.ack
            peer = flow.peer
            if peer.pending and peer.next_seq is not None and not peer.ended:
                self._ack_gap(peer, seg, out)
        if not flow.ended:
            seq = (seg.seq + 1) & 0xFFFFFFFF if flags & SYN else seg.seq
            n = len(seg.payload)
            if n or seg.missing:
                if flow.next_seq is None:
                    flow.next_seq = seq
                self._data(flow, seq, seg.payload, seg.missing, seg.frame, seg.ts_ns, out)
            if flags & FIN:
                if flow.next_seq is None:
                    flow.next_seq = seq
                flow.fin_seq = (seq + n + seg.missing) & 0xFFFFFFFF
            if flags & RST:
                self._close(conn, seg, "rst", out)
            elif flow.fin_seq is not None and flow.next_seq == flow.fin_seq:
                self._end(flow, seg.frame, seg.ts_ns, "fin", out)
        if conn.closed:
            self._retire(conn)
        return out

    def deliver_in_order(self, flow: Flow, seg: Segment) -> int:
        """The lean path's step, for a segment that ``analyzer.fastpath.in_order`` admits (the
        only caller decides there): the state ``add`` would leave, without building a ``Data``
        event or a list. Returns the stream offset of the payload's first byte; the payload
        is ``seg.payload``, delivered whole. ``tests/test_fastpath.py`` keeps the two equal."""
        conn = flow.conn
        conn.last_ts = seg.ts_ns
        self.active.move_to_end(conn)
        flow.segments += 1
        flow.last_ack = seg.ack
        payload = seg.payload
        n = len(payload)
        if n <= RECENT_KEEP:
            flow.recent_seq = seg.seq
            flow.recent = payload
        else:  # a copy of the tail, as _deliver keeps
            flow.recent_seq = (seg.seq + n - RECENT_KEEP) & 0xFFFFFFFF
            flow.recent = memoryview(bytes(payload[-RECENT_KEEP:]))
        offset = flow.offset
        flow.offset = offset + n
        flow.payload_bytes += n
        flow.next_seq = (seg.seq + n) & 0xFFFFFFFF
        return offset

    def ack_in_order(self, flow: Flow, seg: Segment) -> None:
        """The lean path's step for a bare acknowledgement that ``analyzer.fastpath.bare_ack``
        admits: the state ``add`` would leave (it returns no event for one)."""
        conn = flow.conn
        conn.last_ts = seg.ts_ns
        self.active.move_to_end(conn)
        flow.segments += 1
        flow.last_ack = seg.ack

    # -- data path ----------------------------------------------------------------------

    def _data(
        self,
        flow: Flow,
        seq: int,
        payload: memoryview,
        missing: int,
        frame: int,
        ts: int,
        out: list[StreamEvent],
    ) -> None:
        assert flow.next_seq is not None
        d = seq_diff(seq, flow.next_seq)
        if d < 0:
            self._check_overlap(flow, seq, payload, frame)
            total = len(payload) + missing
            if -d >= total:
                flow.retransmitted += 1
                return
            if -d >= len(payload):  # only the never-captured tail is new
                missing = total + d
                payload = payload[len(payload) :]
            else:
                payload = payload[-d:]
            d = 0
        if not flow.pending:
            if not d:  # the common case: in order, nothing waiting
                self._deliver(flow, payload, missing, frame, ts, out)
                return
        self._insert(flow, flow.offset + d, payload, missing, frame, ts)
        if flow.pending and flow.starts[flow.head] == flow.offset:
            self._drain(flow, out)
        while flow.pending and (
            flow.pending_bytes > MAX_PENDING_BYTES
            or len(flow.pending) > MAX_PENDING_SEGMENTS
            or self.pending_total_bytes > MAX_PENDING_TOTAL_BYTES
            or self.pending_total_segments > MAX_PENDING_TOTAL_SEGMENTS
        ):
            # Give up the oldest hole: what waits behind it goes out after a gap.
            first = flow.starts[flow.head]
            _, _, after, after_ts = flow.pending[first]
            self._gap(flow, first - flow.offset, after, after_ts, out, "buffer limit")
            self._drain(flow, out)

    def _insert(
        self, flow: Flow, start: int, payload: memoryview, missing: int, frame: int, ts: int
    ) -> None:
        """Keep [start, start + len(payload) + missing) where nothing waits yet; where
        something does, the first copy stays and differing bytes are recorded."""
        cap_end = start + len(payload)
        end = cap_end + missing
        starts, pending = flow.starts, flow.pending
        head = flow.head
        i = max(bisect.bisect_right(starts, start, head) - 1, head)
        pos = start
        new: list[tuple[int, int]] = []
        differ = 0
        while i < len(starts) and pos < end:
            e_start = starts[i]
            if e_start >= end:
                break
            e_payload, e_missing, _, _ = pending[e_start]
            e_cap = e_start + len(e_payload)
            e_end = e_cap + e_missing
            i += 1
            if e_end <= pos:
                continue
            if e_start > pos:
                new.append((pos, e_start))
            # bytes both copies captured must agree
            lo, hi = max(pos, e_start), min(cap_end, e_cap)
            if lo < hi:
                first = e_payload[lo - e_start : hi - e_start]
                again = payload[lo - start : hi - start]
                if first != again:
                    differ += _differing(first, again)
            pos = e_end
        if pos < end:
            new.append((pos, end))
        if differ:
            self.pending_conflicts += 1
            self._note(
                "tcp-overlap-conflict",
                frame,
                f"a retransmission carries {differ} byte(s) that differ from the first copy "
                "(still waiting behind a hole), which is kept",
                flow,
                differ,
            )
        if not new:
            flow.retransmitted += 1
            return
        for lo, hi in new:
            # A copy: a view would keep the whole captured record alive while it waits.
            piece = bytes(payload[lo - start : min(hi, cap_end) - start]) if lo < cap_end else b""
            gone = max(hi - max(lo, cap_end), 0)
            pending[lo] = (piece, gone, frame, ts)
            bisect.insort(starts, lo, flow.head)
            flow.pending_bytes += len(piece)
            self.pending_total_bytes += len(piece)
            self.pending_total_segments += 1

    def _deliver(
        self,
        flow: Flow,
        payload: memoryview,
        missing: int,
        frame: int,
        ts: int,
        out: list[StreamEvent],
    ) -> None:
        n = len(payload)
        if n:
            if n <= RECENT_KEEP:
                flow.recent_seq = flow.next_seq or 0
                flow.recent = payload
            else:  # a copy of the tail: a view would keep the whole record per direction
                flow.recent_seq = ((flow.next_seq or 0) + n - RECENT_KEEP) & 0xFFFFFFFF
                flow.recent = memoryview(bytes(payload[-RECENT_KEEP:]))
            out.append(Data(flow, payload, flow.offset, frame, ts))
            flow.offset += n
            flow.payload_bytes += n
        assert flow.next_seq is not None
        flow.next_seq = (flow.next_seq + n) & 0xFFFFFFFF
        if missing:
            self._gap(flow, missing, frame, ts, out, "bytes beyond the captured length")

    def _check_overlap(self, flow: Flow, seq: int, payload: memoryview, frame: int) -> None:
        """A segment re-sending bytes already delivered must carry the same bytes; when it
        does not, the first copy is kept (it is what the receiver took, as far as the capture
        can tell) and the conflict is recorded."""
        recent = flow.recent
        if recent is None:
            return
        lo = max(seq_diff(seq, flow.recent_seq), 0)  # overlap, relative to recent's start
        hi = min(seq_diff(seq, flow.recent_seq) + len(payload), len(recent))
        if hi <= lo:
            return
        off = seq_diff(flow.recent_seq, seq)  # where recent starts, relative to payload
        first, again = recent[lo:hi], payload[lo + off : hi + off]
        if first != again:
            differ = _differing(first, again)
            self._note(
                "tcp-overlap-conflict",
                frame,
                f"a retransmission carries {differ} byte(s) that differ from the first copy, "
                "which is kept",
                flow,
                differ,
            )

    def _note(self, kind: str, frame: int, detail: str, flow: Flow, n: int) -> None:
        """Record an anomaly; past MAX_LISTED of a kind, only count it (and its bytes), so
        that a capture with a million holes does not keep a million anomalies."""
        listed = self.listed.get(kind, 0)
        if listed < MAX_LISTED:
            self.listed[kind] = listed + 1
            self.anomalies.append(Anomaly(kind, frame, detail, flow_label(flow)))
            return
        count, total, first = self.unlisted.get(kind, (0, 0, frame))
        self.unlisted[kind] = (count + 1, total + n, first)

    def _gap(
        self, flow: Flow, n: int, frame: int, ts: int, out: list[StreamEvent], why: str
    ) -> None:
        if n <= 0:
            return
        out.append(Gap(flow, n, flow.offset, frame, ts))
        self._note("tcp-gap", frame, f"{n} bytes missing from the capture ({why})", flow, n)
        flow.offset += n
        flow.gap_bytes += n
        assert flow.next_seq is not None
        flow.next_seq = (flow.next_seq + n) & 0xFFFFFFFF

    def _drain(self, flow: Flow, out: list[StreamEvent]) -> None:
        """Deliver waiting segments that the stream has reached. Waiting segments never
        overlap and none starts before ``flow.offset``, so this is a pop from the front."""
        starts, pending = flow.starts, flow.pending
        while flow.head < len(starts) and starts[flow.head] <= flow.offset:
            first = starts[flow.head]
            flow.head += 1
            if flow.head >= 64 and flow.head * 2 >= len(starts):
                del starts[: flow.head]
                flow.head = 0
            payload, missing, frame, ts = pending.pop(first)
            flow.pending_bytes -= len(payload)
            self.pending_total_bytes -= len(payload)
            self.pending_total_segments -= 1
            view = memoryview(payload)
            skip = flow.offset - first  # defensive: 0 by construction
            if skip:
                if skip >= len(payload) + missing:
                    continue
                if skip >= len(payload):
                    missing, view = missing - (skip - len(payload)), view[len(view) :]
                else:
                    view = view[skip:]
            self._deliver(flow, view, missing, frame, ts, out)
        if not pending:
            starts.clear()
            flow.head = 0

    def _ack_gap(self, flow: Flow, seg: Segment, out: list[StreamEvent]) -> None:
        """The peer acknowledged bytes of ``flow`` that the capture lacks: they are a gap."""
        nxt = flow.next_seq
        assert nxt is not None
        acked = seq_diff(seg.ack, nxt)
        if acked <= 0:
            return
        first = flow.starts[flow.head]
        upto = min(first, flow.offset + acked)
        # Cite the first segment after the hole, as Wireshark's "previous segment not captured".
        _, _, after, after_ts = flow.pending[first]
        self._gap(flow, upto - flow.offset, after, after_ts, out, "acknowledged by the peer")
        self._drain(flow, out)
        if flow.fin_seq is not None and flow.next_seq == flow.fin_seq:
            self._end(flow, seg.frame, seg.ts_ns, "fin", out)

    # -- ends -----------------------------------------------------------------------------

    def _flush(self, flow: Flow, out: list[StreamEvent]) -> None:
        while flow.pending:
            first = flow.starts[flow.head]
            _, _, after, after_ts = flow.pending[first]
            self._gap(flow, first - flow.offset, after, after_ts, out, "never captured")
            self._drain(flow, out)

    def _end(self, flow: Flow, frame: int, ts: int, reason: str, out: list[StreamEvent]) -> None:
        if flow.ended:
            return
        self._flush(flow, out)
        flow.ended = True
        out.append(End(flow, frame, ts, reason))

    def _close(self, conn: Connection, seg: Segment, reason: str, out: list[StreamEvent]) -> None:
        for f in (conn.a, conn.b):
            assert f is not None
            self._end(f, seg.frame, seg.ts_ns, reason, out)
        self._retire(conn)

    def finish(self, frame: int, ts: int) -> list[StreamEvent]:
        """End every open direction: the capture is over."""
        out: list[StreamEvent] = []
        seen: set[int] = set()
        for flow in list(self.flows.values()):
            conn = flow.conn
            if conn.id in seen:
                continue
            seen.add(conn.id)
            for f in (conn.a, conn.b):
                assert f is not None
                self._end(f, frame, ts, "eof", out)
        self.flows.clear()
        self.active.clear()
        for kind, (count, total, first) in self.unlisted.items():
            what = "bytes missing" if kind == "tcp-gap" else "bytes differing"
            self.anomalies.append(
                Anomaly(
                    kind,
                    first,
                    f"{count} more like this ({total} {what} in all), counted but not listed: "
                    f"only the first {MAX_LISTED} are",
                )
            )
        self.unlisted.clear()
        if self.evicted:
            idle = self.half_open_timeout_ns // 1_000_000_000
            self.anomalies.append(
                Anomaly(
                    "tcp-evicted",
                    self.first_evicted_frame,
                    f"{self.evicted} connection(s) ended before the capture did, to bound memory: "
                    f"{self.evicted - self.evicted_half_open} beyond {self.max_connections} open at "
                    f"once (least recently active first), {self.evicted_half_open} that never "
                    f"carried data and were idle over {idle} s; what they carried was decoded",
                )
            )
        return out


def _differing(a: bytes | memoryview, b: bytes | memoryview) -> int:
    """How many bytes of two equal-length strings differ, without a Python step per byte."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return len(a) - x.to_bytes(len(a), "big").count(0)


def _no_data(conn: Connection) -> bool:
    """Nothing but handshake packets so far: a half-open or never-used connection."""
    a, b = conn.a, conn.b
    assert a is not None and b is not None
    return not (a.offset or b.offset or a.pending or b.pending)


def flow_label(flow: Flow) -> str:
    src = format_endpoint(format_addr(flow.src), flow.sport)
    return f"{src} -> {format_endpoint(format_addr(flow.dst), flow.dport)}"
