"""The stage driver: one pass over a capture, from frames to Message records.

It wires capture -> decode -> reassembly -> protocols (-> tracing inside the protocol
sessions) and keeps the counters that ``tracewire info`` reports. Memory stays proportional
to the connections open at any moment: finished connections keep only a small summary.
"""

from __future__ import annotations

import heapq
import itertools
import os
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from analyzer.capture import open_capture
from analyzer.capture.reader import CaptureReader
from analyzer.decode import Segment, decode_frame, format_addr, format_endpoint
from analyzer.fastpath import bare_ack, decided, in_order
from analyzer.fastpath import enabled as fastpath_enabled
from analyzer.protocols.session import UNKNOWN as UNDECIDED
from analyzer.protocols.session import Session
from analyzer.reassembly import Data, End, Gap, Reassembler
from analyzer.reassembly.tcp import Connection
from analyzer.records import Anomaly, Message

# Messages that may wait behind a held one (a response waiting for trailers) to keep the
# output in frame order; beyond, the oldest held message is let out early (and counted).
MAX_READY = 50_000
# Bytes held for protocol detection over all connections at once (each undecided direction
# holds up to 64 KiB); past this the connection holding longest is counted as "other". A
# connection's protocol shows in its first few hundred bytes, so only connections that carry
# no known protocol fill this: 16 MiB is 2,900 of them holding 5.6 KiB each, which is what
# 10,000 open connections of random bytes (bench/adversarial.py junk) held at 53 MiB of RSS.
DETECT_HELD_BUDGET = 16 << 20


@dataclass(slots=True)
class ConnectionSummary:
    id: int
    client: str
    server: str
    protocol: str
    first_frame: int
    first_ts: int
    last_ts: int
    segments: int
    payload_bytes: int
    gap_bytes: int
    messages: int
    syn_seen: bool
    unknown_headers: int = 0


@dataclass(slots=True)
class CaptureSummary:
    """What one pass over a capture saw, beyond its messages."""

    capture: str
    format: str = ""
    linktypes: list[int] = field(default_factory=list)
    frames: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    tcp_segments: int = 0
    not_tcp: Counter[str] = field(default_factory=Counter)
    connections: list[ConnectionSummary] = field(default_factory=list)
    connection_count: int = 0
    anomalies: list[Anomaly] = field(default_factory=list)
    messages: int = 0
    lean_segments: int = 0  # data segments that took the lean path (analyzer.fastpath)
    lean_acks: int = 0  # bare acknowledgements that took it


@dataclass(slots=True)
class Position:
    """Which capture the latest pass is reading, and (through its reader, which counts
    frames anyway) which frame: so that an unexpected error can name where it happened.
    Set once per capture, read only after a failure: nothing is added per packet."""

    capture: str | None = None
    reader: CaptureReader | None = None

    def frame(self) -> int | None:
        return self.reader.frames or None if self.reader is not None else None


POSITION = Position()


def printable(s: str) -> str:
    """A capture's path as given, with control characters escaped (it can be hostile too)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in s)


def internal_error(err: BaseException) -> str:
    """The line for an unexpected error: the capture and frame being read (``POSITION``),
    and the innermost line of tracewire's code the error came from. The command's and a
    ``--jobs`` worker's alike."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    line = "?"
    for fs in traceback.extract_tb(err.__traceback__):
        if fs.filename.startswith(pkg):
            line = f"{os.path.relpath(fs.filename, os.path.dirname(pkg))}:{fs.lineno}"
    at = ""
    if POSITION.capture is not None:
        frame = POSITION.frame()
        if POSITION.reader is None:
            at = f"after reading {printable(POSITION.capture)}: "
        else:
            at = f"{printable(POSITION.capture)}: frame {frame if frame is not None else '-'}: "
    return f"{at}internal error ({type(err).__name__} at {line})"
# datetime shows years 1 to 9999 only; pcapng's if_tsoffset and if_tsresol can say anything
FIRST_SHOWABLE_NS = -62_135_596_800 * 1_000_000_000
LAST_SHOWABLE_NS = 253_402_300_800 * 1_000_000_000 - 1
# Below LAST_SHOWABLE_NS, and (2^62 - 1) the largest int that compiled code keeps unboxed
SHOWABLE_FAST: Final = 4_611_686_018_427_387_903


def _endpoint(addr: bytes, port: int) -> str:
    return format_endpoint(format_addr(addr), port)


def _summarise(conn: Connection, session: Session | None) -> ConnectionSummary:
    a, b = conn.a, conn.b
    assert a is not None and b is not None
    client = conn.client or a
    server = _endpoint(client.dst, client.dport)
    if conn.nat_reply_from is not None:
        server += f" (replies from {_endpoint(*conn.nat_reply_from)})"
    return ConnectionSummary(
        id=conn.id,
        client=_endpoint(client.src, client.sport),
        server=server,
        protocol=session.protocol if session else "no data",
        first_frame=conn.first_frame,
        first_ts=conn.first_ts,
        last_ts=conn.last_ts,
        segments=a.segments + b.segments,
        payload_bytes=a.payload_bytes + b.payload_bytes,
        gap_bytes=a.gap_bytes + b.gap_bytes,
        messages=session.messages if session else 0,
        syn_seen=a.syn_seen or b.syn_seen,
        unknown_headers=session.unknown_headers if session else 0,
    )


def read_messages(
    path: str | Path,
    summary: CaptureSummary | None = None,
    *,
    name: str | None = None,
    keep_connections: bool = True,
    fastpath: bool | None = None,
    keep: Callable[[ConnectionSummary], bool] | None = None,
) -> Iterator[Message]:
    """Yield every HTTP message of one capture in one pass; fill ``summary`` as it goes.

    With ``keep_connections`` the summary lists every connection (for ``info``), or those
    ``keep`` accepts; without, only counts are kept, so memory follows the connections open
    at any one time.
    ``fastpath`` False forces the general path for every segment (see ``analyzer.fastpath``;
    None: on unless ``TRACEWIRE_FASTPATH=0``); the output is the same either way.

    Raises ``CaptureError`` before the first message if ``path`` is not a capture.
    """
    reader = open_capture(path)
    capture = name if name is not None else str(path)
    POSITION.capture, POSITION.reader = capture, reader
    s = summary if summary is not None else CaptureSummary(capture)
    s.capture = capture
    s.format = reader.format
    reasm = Reassembler()
    not_tcp = s.not_tcp
    last_frame = 0
    last_ts = 0
    bad_ts: list[int] = []  # first frame whose timestamp cannot be a date, its value, count

    def session_of(conn: Connection) -> Session:
        sess = conn.state
        if sess is None:
            sess = conn.state = Session(capture, conn)
        assert isinstance(sess, Session)
        return sess

    # HTTP/2 responses (and HTTP/1 messages that announce trailers) wait in their session for
    # their trailers; while any does, later messages wait here so that the output stays in
    # frame order. The lowest held frame over all sessions comes from a heap with lazy
    # deletion (an entry is live while it equals its session's value in ``holders``), so each
    # message costs O(log n), however many sessions or responses are held. At most
    # MAX_READY messages wait: beyond, the oldest held message goes out without its trailers.
    ready: list[tuple[int, int, Message]] = []
    holders: dict[Session, int] = {}  # session -> its lowest held frame
    lows: list[tuple[int, int, Session]] = []  # (frame, order, session), stale entries too
    order = itertools.count()

    def low_frame() -> int | None:
        while lows:
            frame, _, sess = lows[0]
            if holders.get(sess) == frame:
                return frame
            heapq.heappop(lows)
        return None

    def note(sess: Session) -> None:
        low = sess.held_min_frame() if sess.holding else None
        if low is None:
            holders.pop(sess, None)
        elif holders.get(sess) != low:
            holders[sess] = low
            heapq.heappush(lows, (low, next(order), sess))
            if len(lows) > 2 * len(holders) + 64:  # stale entries under a long-held low
                lows[:] = [(f, next(order), h) for h, f in holders.items()]
                heapq.heapify(lows)

    def release(msgs: list[Message], sess: Session) -> Iterator[Message]:
        note(sess)
        if not holders and not ready:
            if len(msgs) > 1:  # held bytes replayed at detection: both directions at once
                msgs.sort(key=lambda m: m.frame)
            yield from msgs
            return
        for m in msgs:
            heapq.heappush(ready, (m.frame, next(order), m))
        while len(ready) > MAX_READY and (low := low_frame()) is not None and ready[0][0] >= low:
            # Output waits behind a message held too long: let the oldest held one go.
            holder = lows[0][2]
            early = holder.release_oldest()
            if early is not None:
                heapq.heappush(ready, (early.frame, next(order), early))
            note(holder)
        low = low_frame()
        while ready and (low is None or ready[0][0] < low):
            yield heapq.heappop(ready)[2]

    # Bytes held for protocol detection, over all connections: past DETECT_HELD_BUDGET the
    # connection that has held bytes longest gives up ("other"), so that many undecided
    # connections (each may hold 64 KiB a direction) cannot add up to gigabytes.
    detecting: dict[Session, None] = {}
    detect_held = [0, 0, 0]  # bytes held now, connections given up, frame of the first

    def account(sess: Session, before: int, frame: int) -> None:
        after = sess.held_bytes
        detect_held[0] += after - before
        if after:
            detecting.setdefault(sess, None)
        else:
            detecting.pop(sess, None)
        while detect_held[0] > DETECT_HELD_BUDGET and detecting:
            victim = next(iter(detecting))
            detect_held[0] -= victim.held_bytes
            victim.give_up()
            del detecting[victim]
            detect_held[1] += 1
            detect_held[2] = detect_held[2] or frame

    def handle(events: list[Data | Gap | End]) -> Iterator[Message]:
        for ev in events:
            flow = ev.flow
            sess = session_of(flow.conn)
            undecided = sess.protocol == UNDECIDED
            before = sess.held_bytes if undecided else 0
            if isinstance(ev, Data):
                msgs = sess.data(flow, ev.data, ev.offset, ev.frame, ev.ts_ns)
            elif isinstance(ev, Gap):
                msgs = sess.gap(flow, ev.n, ev.offset, ev.frame, ev.ts_ns)
            else:
                msgs = sess.end(flow)
            if undecided:
                account(sess, before, ev.frame)
            if sess.h2_out is not None or ready or holders or sess.h1_waiting:
                yield from release(msgs, sess)
            elif msgs:  # HTTP/1 with nothing held anywhere: straight out
                yield from msgs
            if isinstance(ev, End) and sess.ends == 2:
                # both directions over: keep a summary, drop the state
                conn = flow.conn
                s.anomalies.extend(sess.anomalies)
                if sess in detecting:
                    detect_held[0] -= sess.held_bytes
                    del detecting[sess]
                s.connection_count += 1
                if keep_connections:
                    done = _summarise(conn, sess)
                    if keep is None or keep(done):
                        s.connections.append(done)
                conn.state = None

    lean = fastpath_enabled(fastpath)
    flows = reasm.flows
    with reader:
        for frame in reader:
            last_frame = frame.number
            last_ts = frame.ts_ns
            # (0 to 2^62 first: compiled, that is a native comparison; the bounds are not)
            if not 0 <= last_ts <= SHOWABLE_FAST and not FIRST_SHOWABLE_NS <= last_ts <= LAST_SHOWABLE_NS:
                if not bad_ts:
                    bad_ts[:] = (last_frame, last_ts, 0)
                bad_ts[2] += 1
            if s.first_ts is None:
                s.first_ts = frame.ts_ns
            seg = decode_frame(frame)
            if not isinstance(seg, Segment):
                not_tcp[seg] += 1
                continue
            s.tcp_segments += 1
            if lean:
                flow = flows.get((seg.src, seg.sport, seg.dst, seg.dport))
                if flow is not None and in_order(flow, seg):
                    # The lean path: in-order bytes straight to a session that knows its
                    # protocol, as handle() would pass them, without the event objects.
                    offset = reasm.deliver_in_order(flow, seg)
                    sess = decided(flow.conn)
                    if sess is not None:
                        s.lean_segments += 1
                        msgs = sess.data(flow, seg.payload, offset, seg.frame, seg.ts_ns)
                        if sess.h2_out is not None or ready or holders or sess.h1_waiting:
                            for msg in release(msgs, sess):
                                s.messages += 1
                                yield msg
                        else:
                            for msg in msgs:
                                s.messages += 1
                                yield msg
                        continue
                    events: list[Data | Gap | End] = [
                        Data(flow, seg.payload, offset, seg.frame, seg.ts_ns)]
                elif flow is not None and bare_ack(flow, seg):
                    reasm.ack_in_order(flow, seg)
                    s.lean_acks += 1
                    continue
                else:
                    events = reasm.add(seg)
            else:
                events = reasm.add(seg)
            if events:
                for msg in handle(events):
                    s.messages += 1
                    yield msg
        for msg in handle(reasm.finish(last_frame, last_ts)):
            s.messages += 1
            yield msg
        if detect_held[1]:
            s.anomalies.append(Anomaly(
                "detect-budget", detect_held[2],
                f"{detect_held[1]} connection(s) counted as other before their protocol showed: "
                f"bytes held for detection over all connections reached {DETECT_HELD_BUDGET >> 20} MiB"))
        s.frames = reader.frames
        s.last_ts = last_ts if reader.frames else None
        s.linktypes = sorted(reader.linktypes)
        s.connections.sort(key=lambda c: c.id)
        if bad_ts:
            s.anomalies.append(Anomaly(
                "bad-timestamp", bad_ts[0],
                f"timestamp {bad_ts[1]} ns since 1970 is outside years 1-9999 (pcapng if_tsoffset or "
                f"if_tsresol?): shown as that raw number; {bad_ts[2]} frame(s) like it"))
        s.anomalies = sorted(
            reader.anomalies + reasm.anomalies + s.anomalies, key=lambda a: a.frame or 0
        )
    POSITION.capture, POSITION.reader = None, None  # the pass is over: no frame to blame
