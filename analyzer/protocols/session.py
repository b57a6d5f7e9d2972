"""Per-connection protocol state: detection by content, then one parser per direction.

Strategy: a connection starts undecided. The first bytes of each direction are kept (up to
DETECT_LIMIT) until one of them shows what the connection carries: a TLS record, the HTTP/2
preface, or an HTTP/1 request or status line (at the start, or further in when the capture
began mid-connection). Then both directions get their parser and the kept bytes are replayed
into it, so no message is lost to detection. Stream offsets are mapped back to the frames that
carried them, so each message names the Wireshark frames of its first and last head byte.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzer.decode.packet import format_addr
from analyzer.protocols.detect import looks_like_h2_preface, looks_like_tls
from analyzer.protocols.http1 import (
    HTTP1Parser,
    MessageHead,
    ParseAnomaly,
    Side,
    Upgraded,
    find_head_start,
    looks_like_http1,
)
from analyzer.reassembly.tcp import Connection, Flow, flow_label
from analyzer.records import Anomaly, Endpoints, Message
from analyzer.tracing import extract

DETECT_LIMIT = 64 * 1024

HTTP1, TLS, H2, OTHER, UNKNOWN = "http/1", "tls", "h2c", "other", "undecided"


@dataclass(eq=False, slots=True)
class Direction:
    flow: Flow
    endpoints: Endpoints
    # (end offset, frame, ts) of the stream pieces not yet behind the parser
    pieces: deque[tuple[int, int, int]] = field(default_factory=deque)
    held: bytearray = field(default_factory=bytearray)  # bytes kept while undecided
    held_from: int = 0
    parser: HTTP1Parser | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    ended: bool = False
    messages: int = 0

    def frame_at(self, offset: int) -> tuple[int, int]:
        """The frame (and its timestamp) that carried stream byte ``offset``."""
        for end, frame, ts in self.pieces:
            if end > offset:
                return frame, ts
        if self.pieces:
            _, frame, ts = self.pieces[-1]
            return frame, ts
        return 0, 0

    def completed_by(self, start: int, end: int) -> tuple[int, int]:
        """The frame that completed bytes [start, end): the last of the frames that carried
        them to arrive (with out-of-order segments it is not the one carrying the last byte)."""
        best, best_ts = 0, 0
        for piece_end, frame, ts in self.pieces:
            if piece_end <= start:
                continue
            if frame > best:
                best, best_ts = frame, ts
            if piece_end >= end:
                break
        return (best, best_ts) if best else self.frame_at(end - 1)

    def forget_before(self, offset: int) -> None:
        pieces = self.pieces
        while len(pieces) > 1 and pieces[0][0] <= offset:
            pieces.popleft()


class Session:
    """The protocol state of one TCP connection; produces Message records."""

    __slots__ = ("anomalies", "capture", "conn", "dirs", "ends", "messages", "protocol")

    def __init__(self, capture: str, conn: Connection) -> None:
        self.capture = capture
        self.conn = conn
        self.dirs: dict[int, Direction] = {}
        self.protocol = UNKNOWN
        self.anomalies: list[Anomaly] = []
        self.messages = 0
        self.ends = 0  # directions whose end was seen: at 2 the connection is done

    def _dir(self, flow: Flow) -> Direction:
        d = self.dirs.get(id(flow))
        if d is None:
            ep = Endpoints(
                format_addr(flow.src), flow.sport, format_addr(flow.dst), flow.dport, self.conn.id
            )
            d = self.dirs[id(flow)] = Direction(flow, ep)
        return d

    # -- stream events --------------------------------------------------------------------

    def data(self, flow: Flow, data: memoryview, offset: int, frame: int, ts: int) -> list[Message]:
        d = self._dir(flow)
        d.pieces.append((offset + len(data), frame, ts))
        if d.parser is not None:
            return self._events(d, d.parser.feed(data))
        if self.protocol != UNKNOWN:
            d.forget_before(offset + len(data))
            return []
        if not d.held:
            d.held_from = offset
        if len(d.held) < DETECT_LIMIT:
            d.held += data[: DETECT_LIMIT - len(d.held)]
        return self._detect(d, frame)

    def gap(self, flow: Flow, n: int, offset: int, frame: int, ts: int) -> list[Message]:
        d = self._dir(flow)
        d.pieces.append((offset + n, frame, ts))
        if d.parser is not None:
            return self._events(d, d.parser.gap(n))
        if self.protocol == UNKNOWN and d.held:
            # What was held is no longer contiguous with what comes next: start over.
            d.held.clear()
        return []

    def end(self, flow: Flow) -> list[Message]:
        d = self._dir(flow)
        if d.ended:
            return []
        d.ended = True
        self.ends += 1
        if d.parser is not None:
            return self._events(d, d.parser.eof())
        if self.protocol == UNKNOWN and d.held:
            # The stream ended undecided: try what was held one last time.
            return self._detect(d, d.pieces[-1][1] if d.pieces else 0, final=True)
        return []

    # -- detection ------------------------------------------------------------------------

    def _detect(self, d: Direction, frame: int, final: bool = False) -> list[Message]:
        held = d.held
        at_start = d.held_from == 0 and d.flow.syn_seen
        if looks_like_tls(held):
            self.protocol = TLS
            self._release()
            return []
        pre = looks_like_h2_preface(held)
        if pre is None and not final:
            return []
        if pre:
            self.protocol = H2
            self._release()
            return []
        side = looks_like_http1(bytes(held[:64]))
        if side is not None:
            return self._start_http1(d, side, synced=at_start)
        # Mid-connection: a head may start further in (after the tail of a body).
        if not at_start:
            for side in (Side.REQUEST, Side.RESPONSE):
                if find_head_start(bytes(held), side) >= 0:
                    return self._start_http1(d, side, synced=False)
        if at_start or len(held) >= DETECT_LIMIT or final:
            other = self._peer(d)
            if other is None or other.ended or len(other.held) >= DETECT_LIMIT or (
                other.held_from == 0 and other.flow.syn_seen and other.held
            ):
                self.protocol = OTHER
                self._release()
        return []

    def _peer(self, d: Direction) -> Direction | None:
        return self.dirs.get(id(d.flow.peer))

    def _release(self) -> None:
        for d in self.dirs.values():
            d.held = bytearray()
            if d.pieces:
                d.forget_before(d.pieces[-1][0])

    def _start_http1(self, d: Direction, side: Side, synced: bool) -> list[Message]:
        self.protocol = HTTP1
        out: list[Message] = []
        other_side = Side.RESPONSE if side is Side.REQUEST else Side.REQUEST
        peer = self._dir(d.flow.peer)
        order = [(d, side, synced), (peer, other_side, None)]
        if side is Side.RESPONSE:
            order.reverse()  # requests first, so HEAD is known before its response
        for dd, sd, sync in order:
            if sync is None:
                sync = dd.held_from == 0 and dd.flow.syn_seen and not dd.flow.gap_bytes
            dd.parser = HTTP1Parser(sd, synced=sync)
        # Both parsers exist before any byte is replayed, so that each request seen on one
        # side is announced to the other (a response to HEAD has no body).
        for dd, _, _ in order:
            assert dd.parser is not None
            if dd.held:
                held, dd.held = bytes(dd.held), bytearray()
                if dd.held_from:
                    dd.parser.skip(dd.held_from)
                out += self._events(dd, dd.parser.feed(held))
            if dd.ended:
                out += self._events(dd, dd.parser.eof())
        return out

    # -- parser events --------------------------------------------------------------------

    def _events(self, d: Direction, events: Sequence[object]) -> list[Message]:
        out: list[Message] = []
        for ev in events:
            if isinstance(ev, MessageHead):
                out.append(self._message(d, ev))
            elif isinstance(ev, ParseAnomaly):
                frame, _ = d.frame_at(ev.offset)
                a = Anomaly(ev.kind, frame, ev.detail, flow_label(d.flow))
                d.anomalies.append(a)
                self.anomalies.append(a)
            elif isinstance(ev, Upgraded):
                out += self._upgraded(d, ev)
        parser = d.parser
        if parser is not None:
            d.forget_before(parser.offset)
        return out

    def _upgraded(self, d: Direction, ev: Upgraded) -> list[Message]:
        if ev.protocol:
            self.protocol = HTTP1 + "+" + ev.protocol.decode("latin-1").lower()
        peer = self.dirs.get(id(d.flow.peer))
        if peer is not None and peer.parser is not None and not peer.parser.upgraded:
            return self._events(peer, list(peer.parser.switch_protocols()))
        return []

    def _message(self, d: Direction, head: MessageHead) -> Message:
        first_frame, _ = d.frame_at(head.start)
        frame, ts = d.completed_by(head.start, head.end)
        anomalies = tuple(d.anomalies)
        d.anomalies.clear()
        d.messages += 1
        self.messages += 1
        request = head.kind is Side.REQUEST
        authority = None
        if request:
            for h in head.headers:
                if h.lname == b"host":
                    authority = h.value
                    break
            if self.conn.client is None:
                self.conn.client = d.flow
            peer = self.dirs.get(id(d.flow.peer))
            if peer is not None and peer.parser is not None and head.method is not None:
                peer.parser.expect_response_to(head.method)
        return Message(
            capture=self.capture,
            frame=frame,
            first_frame=first_frame,
            ts_ns=ts,
            protocol="http/1.0" if head.version == b"HTTP/1.0" else "http/1.1",
            kind="request" if request else "response",
            endpoints=d.endpoints,
            stream=None,
            method=head.method,
            path=head.target,
            authority=authority,
            status=head.status,
            headers=head.headers,
            trace=extract(head.headers),
            anomalies=anomalies,
        )
