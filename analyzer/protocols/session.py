"""Per-connection protocol state: detection by content, then one parser per direction.

Strategy: a connection starts undecided. The first bytes of each direction are kept (up to
DETECT_LIMIT) until one of them shows what the connection carries: a TLS record, the HTTP/2
preface, or an HTTP/1 request or status line (at the start, or further in when the capture
began mid-connection). Then both directions get their parser and the kept bytes are replayed
into it, so no message is lost to detection. Stream offsets are mapped back to the frames that
carried them, so each message names the Wireshark frames of its first and last head byte.
"""

from __future__ import annotations

from builtins import bytearray, memoryview  # mypyc resolves dataclass field annotations here
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzer.decode.packet import format_addr
from analyzer.protocols.detect import looks_like_h2_preface, looks_like_tls
from analyzer.protocols.h2 import (
    DEFAULT_MAX_FRAME,
    SCAN_FOUND,
    H2Connection,
    find_frame_sync,
    scan_frames,
)
from analyzer.protocols.h2_messages import H2Messages, Sides
from analyzer.protocols.http1 import (
    HTTP1Parser,
    MessageEnd,
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
# Bytes a direction may hold for detection over its whole life (a gap starts the held bytes
# over): past this the search gives up and the connection is "other". Bounds the work spent
# on bytes that are no known protocol, whatever their shape.
DETECT_BUDGET = 4 * DETECT_LIMIT

HTTP1, TLS, H2, OTHER, UNKNOWN = "http/1", "tls", "h2c", "other", "undecided"


@dataclass(eq=False, slots=True)
class Direction:
    flow: Flow
    _endpoints: Endpoints
    # (end offset, frame, ts) of the stream pieces not yet behind the parser
    pieces: deque[tuple[int, int, int]] = field(default_factory=deque)
    held: bytearray = field(default_factory=bytearray)  # bytes kept while undecided
    held_from: int = 0
    parser: HTTP1Parser | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    ended: bool = False
    messages: int = 0
    h2_base: int | None = None  # stream offset where HTTP/2 starts in this direction
    waiting: Message | None = None  # an HTTP/1 message whose announced trailers are to come
    released: Message | None = None  # one let out before them: they follow on their own
    scan_at: int = 0  # held size at which the next mid-stream search runs (they cost O(held))
    sync_scan: int = 0  # offset in held where the search for HTTP/2 frames resumes
    detect_seen: int = 0  # bytes held for detection so far, over all restarts
    _readdressed: int = 0
    last: tuple[int, memoryview] | None = None  # the last chunk fed (offset, bytes)

    @property
    def endpoints(self) -> Endpoints:
        """The direction's addresses as display strings, made once; remade if reassembly
        re-addressed the flow (the reply half of an Istio NAT-split connection)."""
        ep, f = self._endpoints, self.flow
        if self._readdressed != f.readdressed:
            self._readdressed = f.readdressed
            ep = self._endpoints = Endpoints(
                format_addr(f.src), f.sport, format_addr(f.dst), f.dport, ep.connection
            )
        return ep

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

    __slots__ = (
        "anomalies", "capture", "conn", "dirs", "early", "early_frame", "ends", "h1_waiting", "h2",
        "h2_client", "h2_out", "messages", "protocol", "unknown_headers",
    )

    def __init__(self, capture: str, conn: Connection) -> None:
        self.capture = capture
        self.conn = conn
        self.dirs: dict[int, Direction] = {}
        self.protocol = UNKNOWN
        self.anomalies: list[Anomaly] = []
        self.messages = 0
        self.ends = 0  # directions whose end was seen: at 2 the connection is done
        self.h2: H2Connection | None = None
        self.h2_client: Direction | None = None
        self.h2_out: H2Messages | None = None
        self.unknown_headers = 0  # header fields an HPACK entry older than the capture hid
        self.h1_waiting = 0  # HTTP/1 messages held for their trailers
        self.early = 0  # HTTP/1 messages let out before their trailers (release_oldest)
        self.early_frame = 0

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
        if self.h2 is not None:
            if d.h2_base is None:
                d.h2_base = offset
            return self._h2_events(self.h2.feed(d is self.h2_client, data))
        if d.parser is not None:
            d.last = (offset, data)
            return self._events(d, d.parser.feed(data))
        if self.protocol != UNKNOWN:
            d.forget_before(offset + len(data))
            return []
        if not d.held:
            d.held_from = offset
        if len(d.held) < DETECT_LIMIT:
            d.held += data[: DETECT_LIMIT - len(d.held)]
        d.detect_seen += len(data)
        return self._detect(d, frame)

    def gap(self, flow: Flow, n: int, offset: int, frame: int, ts: int) -> list[Message]:
        d = self._dir(flow)
        d.pieces.append((offset + n, frame, ts))
        if self.h2 is not None:
            if d.h2_base is None:
                d.h2_base = offset
            return self._h2_events(self.h2.gap(d is self.h2_client, n))
        if d.parser is not None:
            return self._events(d, d.parser.gap(n))
        if self.protocol == UNKNOWN and d.held:
            # What was held is no longer contiguous with what comes next: start over.
            d.held.clear()
            d.sync_scan = d.scan_at = 0
            d.forget_before(offset + n)  # no message can start in what was held
        return []

    def end(self, flow: Flow) -> list[Message]:
        d = self._dir(flow)
        if d.ended:
            return []
        d.ended = True
        self.ends += 1
        if self.h2 is not None:
            out = self._h2_events(self.h2.eof(d is self.h2_client))
            if self.ends == 2 and self.h2_out is not None:
                out += self._counted(self.h2_out.release_all())
                self._early_anomaly()
            return out
        if d.parser is not None:
            out = self._events(d, d.parser.eof())
            self._release_waiting(d, out)
            if self.ends == 2:
                self._early_anomaly()
            return out
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
            return self._start_h2(d, mid_connection=False)
        side = looks_like_http1(bytes(held[:64]))
        if side is not None:
            return self._start_http1(d, side, synced=at_start)
        if not at_start and (len(held) >= d.scan_at or final or len(held) >= DETECT_LIMIT):
            # Mid-connection: HTTP/2 frames that line up, or an HTTP/1 head further in
            # (after the tail of a body). These searches read all that is held, so they run
            # again only once it has grown by half: linear in total, not quadratic.
            # (below 4 KiB every packet is looked at, so that detection stays prompt)
            d.scan_at = len(held) + 1 if len(held) < 4096 else len(held) + len(held) // 2
            sync = self._frame_sync(d)
            if sync == 0 or (sync > 0 and not self._any_http1_head(held)):
                return self._start_h2(d, mid_connection=True, final=final)
            for side in (Side.REQUEST, Side.RESPONSE):
                if find_head_start(bytes(held), side) >= 0:
                    return self._start_http1(d, side, synced=False)
        if len(held) >= DETECT_LIMIT or d.detect_seen >= DETECT_BUDGET:
            self.protocol = OTHER  # 64 KiB without a sign of a known protocol
            self._release()
        elif at_start or final:
            # Unknown from its first byte: other unless the peer, once it speaks, says
            # otherwise (an HTTP/2 server sends SETTINGS before the client's preface).
            other = self._peer(d)
            peer_silent = other is None or (not other.held and not other.ended)
            if (final and peer_silent) or (not peer_silent and other is not None and (
                other.ended or (other.held_from == 0 and other.flow.syn_seen)
            )):
                self.protocol = OTHER
                self._release()
        return []

    @property
    def held_bytes(self) -> int:
        """Bytes held while the protocol is undecided (0 once it is decided)."""
        return sum(len(d.held) for d in self.dirs.values())

    def give_up(self) -> None:
        """Stop detection: the connection is "other" (a budget shared by all connections
        ran out; see the pipeline)."""
        if self.protocol == UNKNOWN:
            self.protocol = OTHER
            self._release()

    @staticmethod
    def _frame_sync(d: Direction) -> int:
        """``find_frame_sync(d.held)``, resumed where the last search stopped: what it
        rejected stays rejected as bytes are appended, so each held byte is looked at once."""
        status, o = scan_frames(d.held, d.sync_scan, 3, DEFAULT_MAX_FRAME, final=True)
        if status == SCAN_FOUND:
            return o
        d.sync_scan = o
        return -1

    @staticmethod
    def _any_http1_head(held: bytearray) -> bool:
        data = bytes(held)
        return any(find_head_start(data, side) >= 0 for side in (Side.REQUEST, Side.RESPONSE))

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
                d.released = None  # its end, if it had one, has passed
                m = self._message(d, ev)
                self._release_waiting(d, out)
                if _announces_trailers(ev):
                    # Held until its body ends, so that the trailers travel with it.
                    d.waiting = m
                    self.h1_waiting += 1
                else:
                    out.append(m)
            elif isinstance(ev, MessageEnd):
                w = d.waiting
                if w is not None:
                    d.waiting = None
                    self.h1_waiting -= 1
                    out.append(Message(w.capture, w.frame, w.first_frame, w.ts_ns, w.protocol,
                                       w.kind, w.endpoints, w.stream, w.method, w.path,
                                       w.authority, w.status, w.headers, w.trace, w.anomalies,
                                       ev.trailers))
                elif d.released is not None:
                    r, d.released = d.released, None
                    if ev.trailers:
                        # As for HTTP/2: trailers whose message went out are a record of
                        # their own, so that nothing decoded is lost.
                        frame, ts = d.frame_at(ev.end - 1)
                        out.append(Message(r.capture, frame, frame, ts, r.protocol, r.kind,
                                           r.endpoints, None, None, None, None, None, (),
                                           extract(ev.trailers), (), ev.trailers))
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

    def _release_waiting(self, d: Direction, out: list[Message]) -> None:
        """A held message whose body will not end (a new head, a gap, the end): out as is."""
        if d.waiting is not None:
            out.append(d.waiting)
            d.waiting = None
            self.h1_waiting -= 1

    def _upgraded(self, d: Direction, ev: Upgraded) -> list[Message]:
        if ev.protocol:
            self.protocol = HTTP1 + "+" + ev.protocol.decode("latin-1").lower()
        if ev.protocol.lower() == b"h2c":
            d.h2_base = ev.offset
        out: list[Message] = []
        peer = self.dirs.get(id(d.flow.peer))
        if peer is not None and peer.parser is not None and not peer.parser.upgraded:
            out += self._events(peer, list(peer.parser.switch_protocols()))
        if (
            self.h2 is None
            and peer is not None
            and d.h2_base is not None
            and peer.h2_base is not None
        ):
            out += self._start_h2_upgraded(d, peer)
        return out

    # -- HTTP/2 ---------------------------------------------------------------------------

    def _start_h2(self, d: Direction, *, mid_connection: bool, final: bool = False) -> list[Message]:
        peer = self._dir(d.flow.peer)
        if not mid_connection:
            client, server = d, peer  # the preface names the client
        else:
            role = h2_role(d.held, find_frame_sync(d.held))
            if role is None and peer.held:
                peer_role = h2_role(peer.held, max(find_frame_sync(peer.held), 0))
                role = None if peer_role is None else not peer_role
            if role is None and self.conn.client is not None:
                role = self.conn.client is d.flow
            if role is None:
                if not final and len(d.held) < DETECT_LIMIT and not d.ended:
                    return []  # wait for a HEADERS frame to tell who is the client
                # Last resort, and said so: the client is usually on the ephemeral port.
                role = d.flow.sport > d.flow.dport
                frame = d.pieces[-1][1] if d.pieces else 0
                self.anomalies.append(Anomaly(
                    "h2-role-guessed", frame,
                    "no header block showed which side is the client; guessed from the ports",
                    flow_label(d.flow)))
            client, server = (d, peer) if role else (peer, d)
        self.protocol = H2

        def synced(x: Direction, seen_start: bool) -> bool:
            start = x.held_from == 0 if x.held else x.flow.offset == 0
            return start and seen_start and not x.flow.gap_bytes

        # The client's preface can only be its first bytes: seen, the connection starts there
        # whether or not the capture shows the SYN. Before it the server can have sent only
        # SETTINGS (its first header block answers a request after the preface), so from
        # its first byte seen the server's table is empty and its frames line up.
        preface = not mid_connection
        self.h2 = H2Connection(
            client_synced=preface,
            server_synced=synced(server, preface or server.flow.syn_seen),
        )
        return self._h2_begin(client, server, [(client, bytes(client.held)), (server, bytes(server.held))])

    def _start_h2_upgraded(self, a: Direction, b: Direction) -> list[Message]:
        """HTTP/1.1 ``Upgrade: h2c`` answered by 101: both directions continue as HTTP/2."""
        client, server = (a, b) if a.parser is not None and a.parser.side is Side.REQUEST else (b, a)
        self.protocol = H2
        self.h2 = H2Connection(client_synced=True, server_synced=True)
        tails: list[tuple[Direction, bytes]] = []
        for x in (client, server):
            base = x.h2_base
            assert base is not None
            if x.last is not None:
                off, chunk = x.last
                if off <= base < off + len(chunk):
                    tails.append((x, bytes(chunk[base - off :])))
                    continue
            if x.last is not None and x.last[0] + len(x.last[1]) > base:
                continue
            # Nothing of the new protocol has arrived yet: it starts with the next byte.
        for x in (client, server):
            x.parser = None
            x.held = bytearray()
        return self._h2_begin(client, server, tails, bases_known=True)

    def _h2_begin(
        self,
        client: Direction,
        server: Direction,
        held: list[tuple[Direction, bytes]],
        bases_known: bool = False,
    ) -> list[Message]:
        self.h2_client = client
        self.conn.client = client.flow
        self.h2_out = H2Messages(self.capture, _H2Sides(client, server))
        out: list[Message] = []
        h2 = self.h2
        assert h2 is not None
        for x, data in held:
            if not bases_known:
                # Held bytes start the HTTP/2 stream; a direction with none yet starts with
                # its next byte (set in data()).
                x.h2_base = x.held_from if data else None
            x.held = bytearray()
            if data:
                out += self._h2_events(h2.feed(x is client, data))
        for x in (client, server):
            if x.ended:
                out += self._h2_events(h2.eof(x is client))
        return out

    def _h2_events(self, events: Sequence[object]) -> list[Message]:
        if not events or self.h2_out is None:
            return []
        client = self.h2_client
        assert client is not None
        server = self._dir(client.flow.peer)

        def label(from_client: bool) -> str:
            return flow_label((client if from_client else server).flow)

        msgs, anomalies = self.h2_out.events(events, label)
        self.anomalies += anomalies
        self._counted(msgs)
        h2 = self.h2
        if h2 is not None:
            for x in (client, server):
                x.forget_before((x.h2_base or 0) + h2.offset(x is client))
        return msgs

    def _counted(self, msgs: list[Message]) -> list[Message]:
        """HTTP/2 messages are counted when they go out (a response once its stream ends)."""
        unknown = 0
        for m in msgs:  # a plain loop: mypyc made sum() over a generator an object per message
            for h in m.headers:
                if h.unknown is not None:
                    unknown += 1
        self.unknown_headers += unknown
        self.messages += len(msgs)
        return msgs

    @property
    def holding(self) -> bool:
        return self.h1_waiting > 0 or (self.h2_out is not None and bool(self.h2_out.held))

    def held_min_frame(self) -> int | None:
        frames = [d.waiting.frame for d in self.dirs.values() if d.waiting is not None]
        if self.h2_out is not None and (h2 := self.h2_out.held_min_frame()) is not None:
            frames.append(h2)
        return min(frames, default=None)

    def release_oldest(self) -> Message | None:
        """Out with the held message of the lowest frame before its trailers came (the
        pipeline bounds how much output may wait behind one held message); counted."""
        low = self.held_min_frame()
        if low is None:
            return None
        for d in self.dirs.values():
            w = d.waiting
            if w is not None and w.frame == low:
                d.waiting = None
                d.released = w
                self.h1_waiting -= 1
                if not self.early:
                    self.early_frame = w.frame
                self.early += 1
                return w
        assert self.h2_out is not None
        m = self.h2_out.release_oldest()
        if m is not None:
            self._counted([m])
        return m

    def _early_anomaly(self) -> None:
        """One anomaly for every message let out before its trailers could come."""
        h2 = self.h2_out
        n = self.early + (h2.early if h2 is not None else 0)
        if not n:
            return
        firsts = [f for f, k in ((self.early_frame, self.early),
                                 (h2.early_frame if h2 else 0, h2.early if h2 else 0)) if k]
        client = self.conn.client
        flow = client.peer if client is not None else self.conn.a  # responses: server to client
        self.anomalies.append(Anomaly(
            "held-limit", min(firsts),
            f"{n} messages were reported before their stream or body ended, without the trailers "
            "they may have had: more were waiting for their end than tracewire holds",
            flow_label(flow) if flow is not None else None))
        self.early = 0
        if h2 is not None:
            h2.early = 0

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


# HPACK static-table indexes of pseudo-header names: requests start with :authority,
# :method, :path or :scheme (1-7), responses with :status (8-14). RFC 9113 puts pseudo-header
# fields first in a block, and encoders refer to these names by their static index.
_CLIENT_FIRST = frozenset(range(1, 8))
_SERVER_FIRST = frozenset(range(8, 15))


class _H2Sides(Sides):
    """The two directions of an HTTP/2 connection, as its messages are located."""

    def __init__(self, client: Direction, server: Direction) -> None:
        self.client = client
        self.server = server

    def endpoints(self, from_client: bool) -> Endpoints:
        return (self.client if from_client else self.server).endpoints

    def locate(self, from_client: bool, start: int, end: int) -> tuple[int, int, int]:
        x = self.client if from_client else self.server
        base = x.h2_base or 0
        first, _ = x.frame_at(base + start)
        frame, ts = x.completed_by(base + start, base + end)
        return first, frame, ts


def h2_role(data: bytes | bytearray, start: int) -> bool | None:
    """Whether a direction of HTTP/2 frames (aligned at ``start``) is the client's, from the
    first field of its first HEADERS block; None when no HEADERS frame tells."""
    if start < 0:
        return None
    i, n = start, len(data)
    while i + 9 <= n:
        length = int.from_bytes(data[i : i + 3], "big")
        typ, flags = data[i + 3], data[i + 4]
        if typ == 5:  # PUSH_PROMISE: only servers send it
            return False
        if typ == 1 and i + 9 + length <= n and length:
            p = i + 9
            end = p + length
            if flags & 0x08:
                end -= data[p]
                p += 1
            if flags & 0x20:
                p += 5
            # skip dynamic table size updates (001xxxxx, with continuation bytes)
            while p < end and data[p] & 0xE0 == 0x20:
                more = data[p] & 0x1F == 0x1F
                p += 1
                while more and p < end:
                    more = bool(data[p] & 0x80)
                    p += 1
            if p < end:
                b = data[p]
                if b & 0x80:
                    idx = b & 0x7F
                elif b & 0xC0 == 0x40:
                    idx = b & 0x3F
                else:
                    idx = b & 0x0F
                if idx in _SERVER_FIRST:
                    return False
                if idx in _CLIENT_FIRST:
                    return True
        i += 9 + length
    return None


def _announces_trailers(head: MessageHead) -> bool:
    """A chunked message whose head names the trailer fields to come (RFC 9110 §6.6.2)."""
    trailer = chunked = False
    for h in head.headers:
        if h.lname == b"trailer":
            trailer = True
        elif h.lname == b"transfer-encoding" and h.value is not None and b"chunked" in h.value.lower():
            chunked = True
    return trailer and chunked
