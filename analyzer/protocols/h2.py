"""HTTP/2 for one TCP connection seen passively: frames, header blocks, stream roles.

Owns frame parsing (RFC 9113 §4 and §6) for both directions, CONTINUATION joining with its
limits, the settings that matter to decoding (SETTINGS_HEADER_TABLE_SIZE,
SETTINGS_MAX_FRAME_SIZE), the per-stream state that says whether a header block is a
request, a response, informational or trailers, and frame resynchronisation after a gap
or a capture that starts mid-connection. HPACK state lives in ``hpack_state``.

Strategy. Sans-IO: ``feed``/``gap``/``eof`` take bytes and return events, and any split
of the stream gives the same events. The hot loop reads 9-byte frame headers with
``struct.unpack_from`` straight from the caller's buffer and skips DATA payloads by
counting, so only partial frames and header-bearing frames are ever copied. When frame
boundaries are lost (a capture starting mid-stream, a gap that is not inside a frame whose
length we know, a frame that cannot be valid) the direction scans for a run of frame
headers that line up (``find_frame_sync``) and resumes there; its HPACK decoder is told
that blocks may have been lost, so nothing is decoded against a table it cannot know.
"""

from __future__ import annotations

import re
import struct
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from analyzer.protocols.hpack_state import DEFAULT_TABLE_SIZE, HPACKDecoder
from analyzer.records import Header

__all__ = ["PREFACE", "GoAway", "H2Anomaly", "H2Connection", "H2Event", "HeaderBlock", "StreamEnd",
           "StreamReset", "find_frame_sync", "looks_like_h2_frames"]

PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6). Final, one per line: mypyc then compiles each use to the
# number itself, where a tuple assignment left a module-dict lookup per use in the frame
# loop (about 5 % of compiled h2 `messages`, issue 10).
DATA: Final = 0
HEADERS: Final = 1
PRIORITY: Final = 2
RST_STREAM: Final = 3
SETTINGS: Final = 4
PUSH_PROMISE: Final = 5
PING: Final = 6
GOAWAY: Final = 7
WINDOW_UPDATE: Final = 8
CONTINUATION: Final = 9
END_STREAM: Final = 0x1
ACK: Final = 0x1
END_HEADERS: Final = 0x4
PADDED: Final = 0x8
PRIORITY_FLAG: Final = 0x20

DEFAULT_MAX_FRAME: Final = 16384
MAX_FRAME_LIMIT: Final = (1 << 24) - 1
# RFC 9113 §10.5: CONTINUATION floods. Like h2's CONTINUATION_BACKLOG, beyond these a
# header block is dropped (and recorded), never buffered.
MAX_CONTINUATIONS: Final = 64
MAX_HEADER_BLOCK: Final = 256 * 1024
MAX_STREAMS: Final = 65536  # per-stream state kept, oldest forgotten first
MAX_PENDING_SETTINGS: Final = 16  # unacknowledged SETTINGS frames remembered per direction

_FRAME: Final = struct.Struct(">BHBBL")  # length (24 bits as 8 + 16), type, flags, R + stream id
_GOAWAY: Final = struct.Struct(">LL")
_U32: Final = struct.Struct(">L")
_SETTING: Final = struct.Struct(">HL")
_FIXED_LENGTH: Final = {PRIORITY: 5, RST_STREAM: 4, PING: 8, WINDOW_UPDATE: 4}

# Flags each type defines (RFC 9113 §6); registered extension types ALTSVC (RFC 7838),
# ORIGIN (RFC 8336) and PRIORITY_UPDATE (RFC 9218) define none.
_FLAGS: Final = {
    DATA: END_STREAM | PADDED,
    HEADERS: END_STREAM | END_HEADERS | PADDED | PRIORITY_FLAG,
    PRIORITY: 0,
    RST_STREAM: 0,
    SETTINGS: ACK,
    PUSH_PROMISE: END_HEADERS | PADDED,
    PING: ACK,
    GOAWAY: 0,
    WINDOW_UPDATE: 0,
    CONTINUATION: END_HEADERS,
    0xA: 0,
    0xC: 0,
    0x10: 0,
}

# Stream state bits (Final: see the frame types).
_C_HEAD: Final = 1
_C_DATA: Final = 2
_C_END: Final = 4
_S_FINAL: Final = 8
_S_DATA: Final = 16
_S_END: Final = 32


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see analyzer/records.py
class HeaderBlock:
    """A complete HEADERS (or PUSH_PROMISE) block with its CONTINUATIONs, decoded.

    ``start`` is the stream offset of the first frame's first byte, ``end`` that of the
    block's last byte (inclusive). ``kind``: "request", "response", "informational" (1xx),
    "trailers" or "push-promise" (then ``promised_stream_id`` is set).
    """

    from_client: bool
    stream_id: int
    start: int
    end: int
    headers: tuple[Header, ...]
    end_stream: bool
    kind: str
    promised_stream_id: int | None = None

    # Written out, not generated: see analyzer/records.py.
    def __init__(
        self,
        from_client: bool,
        stream_id: int,
        start: int,
        end: int,
        headers: tuple[Header, ...],
        end_stream: bool,
        kind: str,
        promised_stream_id: int | None = None,
    ) -> None:
        self.from_client = from_client
        self.stream_id = stream_id
        self.start = start
        self.end = end
        self.headers = headers
        self.end_stream = end_stream
        self.kind = kind
        self.promised_stream_id = promised_stream_id


@dataclass(frozen=True, slots=True)
class StreamReset:
    from_client: bool
    stream_id: int
    error_code: int
    offset: int


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see analyzer/records.py
class StreamEnd:
    """A DATA frame with END_STREAM: this side finished the stream (``offset``: its frame)."""

    from_client: bool
    stream_id: int
    offset: int

    # Written out, not generated: see analyzer/records.py.
    def __init__(self, from_client: bool, stream_id: int, offset: int) -> None:
        self.from_client = from_client
        self.stream_id = stream_id
        self.offset = offset


@dataclass(frozen=True, slots=True)
class GoAway:
    from_client: bool
    last_stream_id: int
    error_code: int
    offset: int


@dataclass(frozen=True, slots=True)
class H2Anomaly:
    """kinds: h2-gap, h2-resync, h2-bad-frame, h2-continuation-limit, h2-hpack-error,
    h2-hpack-unknown (once per direction and HPACK generation), h2-truncated."""

    from_client: bool
    offset: int
    kind: str
    detail: str


H2Event = HeaderBlock | StreamReset | StreamEnd | GoAway | H2Anomaly


# -- frame-shape heuristics ---------------------------------------------------------------


def _plausible(length: int, typ: int, flags: int, sid: int, max_len: int) -> bool:
    """Could these nine bytes be a frame header a conforming peer sent?"""
    if sid & 0x80000000 or length > max_len:
        return False
    allowed = _FLAGS.get(typ)
    if allowed is None or flags & ~allowed:
        return False
    sid &= 0x7FFFFFFF
    if typ in (DATA, HEADERS, CONTINUATION):
        # Client-initiated streams are odd; even ones exist only with server push.
        if not sid & 1:
            return False
        if typ == HEADERS:
            return length >= (1 if flags & PADDED else 0) + (5 if flags & PRIORITY_FLAG else 0)
        return typ != DATA or not flags & PADDED or length >= 1
    if typ == SETTINGS:
        return sid == 0 and (length == 0 if flags & ACK else length % 6 == 0)
    if typ == WINDOW_UPDATE:
        return length == 4
    if typ == PING:
        return sid == 0 and length == 8
    if typ == GOAWAY:
        return sid == 0 and length >= 8
    if typ == RST_STREAM:
        return sid != 0 and length == 4
    if typ == PRIORITY:
        return sid != 0 and length == 5
    if typ == PUSH_PROMISE:
        return sid != 0 and length >= (5 if flags & PADDED else 4)
    return True  # the extension types listed in _FLAGS


# Outcomes of _chain_at.
_NO: Final = 0
_YES: Final = 1
_MORE: Final = 2
_EDGE: Final = 3


def _chain_at(data: bytes | bytearray | memoryview, o: int, n: int, min_frames: int, max_len: int) -> int:
    """Do ``min_frames`` plausible frames line up from ``o``? _YES, _NO, _MORE (need more
    bytes) or _EDGE (>= 2 frames ending exactly at ``n``: enough only if the data is final)."""
    k = 0
    open_stream = 0  # stream of a header block awaiting CONTINUATION
    unpack = _FRAME.unpack_from
    while True:
        if n - o < 9:
            return _EDGE if o == n and k >= 2 else _MORE
        hi, lo, typ, flags, sid = unpack(data, o)
        length = (hi << 16) | lo
        if not _plausible(length, typ, flags, sid, max_len):
            return _NO
        if open_stream:
            if typ != CONTINUATION or sid != open_stream:
                return _NO
        elif typ == CONTINUATION and k:
            return _NO
        if typ in (HEADERS, PUSH_PROMISE, CONTINUATION):
            open_stream = 0 if flags & END_HEADERS else sid
        k += 1
        if k >= min_frames:
            return _YES
        o += 9 + length


def _class(values: Iterable[int]) -> str:
    return "[" + "".join(f"\\x{v:02x}" for v in values) + "]"


def _candidate_pattern(short: bool) -> re.Pattern[bytes]:
    """Positions where nine bytes could be a frame header ``_plausible`` accepts: a
    superset of it (lengths and non-zero stream ids are left to ``_plausible``), but one the
    regex engine finds without a Python loop over every byte. ``short``: max_len < 65536, so
    the first length byte is 0."""
    any_, rc = "[\\x00-\\xff]", "[\\x00-\\x7f]"  # rc: the reserved bit of the stream id clear
    odd = _class(range(1, 256, 2))
    l0 = "\\x00" if short else any_
    head = l0 + any_ * 2
    headers_flags = _class(sorted({a | b | c | d for a in (0, 1) for b in (0, 4) for c in (0, 8)
                                   for d in (0, 0x20)}))
    alts = [
        head + "\\x00" + _class((0, 1, 8, 9)) + rc + any_ * 2 + odd,  # DATA, odd stream
        head + "\\x01" + headers_flags + rc + any_ * 2 + odd,  # HEADERS, odd stream
        "\\x00\\x00\\x05\\x02\\x00" + rc + any_ * 3,  # PRIORITY
        "\\x00\\x00\\x04\\x03\\x00" + rc + any_ * 3,  # RST_STREAM
        head + "\\x04" + _class((0, 1)) + "\\x00" * 4,  # SETTINGS on stream 0
        head + "\\x05" + _class((0, 4, 8, 12)) + rc + any_ * 3,  # PUSH_PROMISE
        "\\x00\\x00\\x08\\x06" + _class((0, 1)) + "\\x00" * 4,  # PING on stream 0
        head + "\\x07\\x00" + "\\x00" * 4,  # GOAWAY on stream 0
        "\\x00\\x00\\x04\\x08\\x00" + rc + any_ * 3,  # WINDOW_UPDATE
        head + "\\x09" + _class((0, 4)) + rc + any_ * 2 + odd,  # CONTINUATION, odd stream
        head + _class((0x0A, 0x0C, 0x10)) + "\\x00" + rc + any_ * 3,  # ALTSVC, ORIGIN, PRIORITY_UPDATE
    ]
    return re.compile(("(?=(?:" + "|".join(alts) + "))").encode("ascii"), re.DOTALL)


_CANDIDATES: Final = {short: _candidate_pattern(short) for short in (True, False)}


def _scan(data: bytes | bytearray | memoryview, start: int, min_frames: int, max_len: int,
          final: bool) -> tuple[int, int]:
    """(status, offset): _YES at the first synchronised offset; _MORE at the first offset
    that needs more data (nothing before it can be a frame start); _NO with the offset
    from which scanning must resume.

    Candidates come from a regular expression (C speed), so bytes that cannot start a frame
    cost no Python step; each candidate is then checked frame by frame (at most
    ``min_frames`` headers). Linear in the bytes scanned."""
    n = len(data)
    search = _CANDIDATES[max_len <= 0xFFFF].search
    o = start
    while True:
        m = search(data, o)
        if m is None:
            return _NO, max(start, n - 8)
        o = m.start()
        r = _chain_at(data, o, n, min_frames, max_len)
        if r == _YES or (r == _EDGE and final):
            return _YES, o
        if r != _NO:
            return _MORE, o
        o += 1


def find_frame_sync(data: bytes | bytearray | memoryview, *, min_frames: int = 3,
                    max_frame_size: int = DEFAULT_MAX_FRAME) -> int:
    """The first offset where ``min_frames`` plausible HTTP/2 frame headers line up, or -1.

    Plausible: a type RFC 9113 defines (or ALTSVC/ORIGIN/PRIORITY_UPDATE), only the flags
    that type defines, reserved bit clear, length at most ``max_frame_size`` and fitting
    the type, the stream-id rules of the type (SETTINGS/PING/GOAWAY on 0, DATA/HEADERS/
    CONTINUATION on odd streams, ...), and CONTINUATION exactly where a header block is
    open. Fewer frames are accepted when at least two end exactly at the end of ``data``.
    """
    status, o = _scan(data, 0, min_frames, max_frame_size, final=True)
    return o if status == _YES else -1


# For detection, which resumes a search as bytes arrive: (status, offset), found when
# status is SCAN_FOUND, else the offset to resume from.
scan_frames = _scan
SCAN_FOUND: Final = _YES


def looks_like_h2_frames(data: bytes | bytearray | memoryview) -> bool:
    """``data`` starts with HTTP/2 frames (the confirmation rule of ``find_frame_sync``)."""
    n = len(data)
    return n >= 9 and _chain_at(data, 0, n, 3, DEFAULT_MAX_FRAME) in (_YES, _EDGE)


# -- connection -------------------------------------------------------------------------

_PREFACE_MODE: Final = 0
_SYNC: Final = 1
_RESYNC: Final = 2
_DONE: Final = 3


class _Block:
    """A header block waiting for its CONTINUATIONs."""

    __slots__ = ("count", "dropped", "end_stream", "parts", "promised", "size", "start", "stream")

    def __init__(self, stream: int, start: int, end_stream: bool, promised: int | None) -> None:
        self.stream = stream
        self.start = start
        self.end_stream = end_stream
        self.promised = promised
        self.parts: list[bytes] = []
        self.size = 0
        self.count = 0
        self.dropped = False


class _Side:
    """One direction: its buffer, framing state and HPACK decoder."""

    __slots__ = ("acked_size", "block", "buf", "client", "hpack", "lost", "max_frame", "mode",
                 "pending_sizes", "pos", "quiet", "reported_gen", "skip")

    def __init__(self, client: bool, synced: bool) -> None:
        self.client = client
        self.mode = (_PREFACE_MODE if client else _SYNC) if synced else _RESYNC
        self.buf = bytearray()
        self.pos = 0  # stream offset of buf[0] (of the next byte when buf is empty)
        self.skip = 0  # payload bytes still to skip by counting
        self.block: _Block | None = None
        self.hpack = HPACKDecoder("client" if client else "server", synced=synced)
        self.max_frame = DEFAULT_MAX_FRAME  # what the peer lets this side send
        # SETTINGS_HEADER_TABLE_SIZE for this side's encoder: the value this side has
        # acknowledged, and one entry per peer SETTINGS frame it has not acknowledged yet
        # (None: the frame does not set it), in order, as ACKs answer them in order.
        self.acked_size = DEFAULT_TABLE_SIZE
        self.pending_sizes: deque[int | None] = deque(maxlen=MAX_PENDING_SETTINGS)
        self.reported_gen = -1  # HPACK generation whose unknowns were summarised
        self.quiet = not synced  # orphan CONTINUATIONs right after a resync are expected
        self.lost = 0  # bytes passed over while looking for frame boundaries


class H2Connection:
    """Sans-IO HTTP/2 for one TCP connection; ``*_synced``: that direction's start was seen."""

    def __init__(self, *, client_synced: bool, server_synced: bool) -> None:
        self._c = _Side(True, client_synced)
        self._s = _Side(False, server_synced)
        # insertion-ordered, and an OrderedDict because dropping the oldest of a plain dict
        # (``del d[next(iter(d))]``) scans the deleted slots before it: quadratic at the limit
        self._streams: OrderedDict[int, int] = OrderedDict()

    def offset(self, from_client: bool) -> int:
        """Stream offset of the earliest byte still needed (buffered or in an open block)."""
        d = self._c if from_client else self._s
        if d.block is not None and not d.block.dropped:
            return min(d.block.start, d.pos)
        return d.pos

    # -- input --------------------------------------------------------------------------

    def feed(self, from_client: bool, data: bytes | bytearray | memoryview) -> list[H2Event]:
        d = self._c if from_client else self._s
        out: list[H2Event] = []
        n = len(data)
        if not n or d.mode == _DONE:
            d.pos += n
            return out
        i = 0
        if d.skip:
            i = min(d.skip, n)
            d.skip -= i
            d.pos += i
            if i == n:
                return out
        if d.buf:
            d.buf += data[i:] if i else data
            self._run(d, d.buf, 0, out)
        else:
            self._run(d, data, i, out)
        return out

    def gap(self, from_client: bool, n: int) -> list[H2Event]:
        d = self._c if from_client else self._s
        at = d.pos + len(d.buf)
        out: list[H2Event] = []
        if n <= 0 or d.mode == _DONE:
            return out
        if d.mode == _SYNC and d.skip and n <= d.skip and not d.buf:
            d.skip -= n
            d.pos += n
            out.append(H2Anomaly(d.client, at, "h2-gap", f"{n} bytes lost inside a frame payload; "
                                 "frame boundaries kept"))
            return out
        if d.mode == _SYNC and not d.skip and len(d.buf) >= 9:
            hi, lo, typ, flags, sid = _FRAME.unpack_from(d.buf, 0)
            total = 9 + ((hi << 16) | lo)
            if len(d.buf) + n <= total:
                # The gap ends inside the frame being buffered: that frame is lost, not the sync.
                d.skip = total - len(d.buf) - n
                d.pos = at + n
                d.buf = bytearray()
                what = f"a frame of type {typ}"
                if typ in (HEADERS, PUSH_PROMISE, CONTINUATION):
                    what = "a header block; HPACK state of this direction is now uncertain"
                    if typ != CONTINUATION:
                        d.block = _Block(sid & 0x7FFFFFFF, at, False, None)
                    if d.block is not None:
                        d.block.dropped = True
                        d.block.parts = []
                        if flags & END_HEADERS:
                            d.block = None
                    d.hpack.desync()
                out.append(H2Anomaly(d.client, at, "h2-gap", f"{n} bytes lost inside {what}; "
                                     "frame boundaries kept"))
                return out
        # Frame boundaries are lost: scan for them again after the gap.
        d.lost += len(d.buf) if d.mode == _RESYNC else 0
        d.buf = bytearray()
        d.skip = 0
        d.pos = at + n
        d.block = None
        d.hpack.desync()
        d.mode = _RESYNC
        d.quiet = True
        out.append(H2Anomaly(d.client, at, "h2-gap", f"{n} bytes lost; looking for the next frame boundary"))
        return out

    def eof(self, from_client: bool) -> list[H2Event]:
        d = self._c if from_client else self._s
        out: list[H2Event] = []
        if d.mode == _DONE:
            return out
        if d.mode == _RESYNC and d.buf:
            status, o = _scan(d.buf, 0, 3, d.max_frame, final=True)
            if status == _YES:
                del d.buf[:o]
                d.pos += o
                d.lost += o
                self._resynced(d, out)
                self._run(d, d.buf, 0, out)
        at = d.pos
        if d.buf or d.skip or (d.block is not None and not d.block.dropped):
            what = "inside a header block" if d.block is not None else "inside a frame"
            if d.mode == _RESYNC:
                what = f"before frame boundaries were found again ({len(d.buf)} bytes unparsed)"
            out.append(H2Anomaly(d.client, at, "h2-truncated", f"the stream ended {what}"))
        d.pos += len(d.buf)
        d.buf = bytearray()
        d.skip = 0
        d.block = None
        d.mode = _DONE
        return out

    # -- framing ------------------------------------------------------------------------

    def _run(self, d: _Side, data: bytes | bytearray | memoryview, i: int, out: list[H2Event]) -> None:
        """Consume ``data[i:]`` (``data`` is ``d.buf`` or the caller's bytes); keep the rest."""
        base = d.pos - i  # stream offset of data[0]
        n = len(data)
        while i < n:
            mode = d.mode
            if mode == _SYNC:
                i = self._frames(d, data, i, n, base, out)
                if d.mode == _SYNC:
                    break
            elif mode == _RESYNC:
                status, o = _scan(data, i, 3, d.max_frame, final=False)
                d.lost += o - i
                i = o
                if status != _YES:
                    break
                d.pos = base + o
                self._resynced(d, out)
            elif mode == _PREFACE_MODE:
                m = min(n - i, len(PREFACE))
                if bytes(data[i:i + m]) != PREFACE[:m]:
                    d.mode = _SYNC  # no preface (e.g. bytes after an h2c upgrade): frames
                elif m == len(PREFACE):
                    i += m
                    d.mode = _SYNC
                else:
                    break
            else:
                i = n
        d.pos = base + i
        if data is d.buf:
            del d.buf[:i]
        elif i < n:
            d.buf = bytearray(data[i:])

    def _resynced(self, d: _Side, out: list[H2Event]) -> None:
        d.mode = _SYNC
        # Whatever lay before this point may have held header blocks.
        d.hpack.desync()
        if d.lost:
            out.append(H2Anomaly(d.client, d.pos, "h2-resync",
                                 f"skipped {d.lost} bytes to the next frame boundary"))
        d.lost = 0

    def _frames(self, d: _Side, data: bytes | bytearray | memoryview, i: int, n: int, base: int,
                out: list[H2Event]) -> int:
        """The synchronised frame loop; returns where it stopped."""
        unpack = _FRAME.unpack_from
        streams = self._streams
        client = d.client
        # Typed: unpack_from gives Any, and mypyc then did every comparison and mask below
        # as a generic Python operation.
        hi: int
        lo: int
        typ: int
        flags: int
        sid: int
        while n - i >= 9:
            hi, lo, typ, flags, sid = unpack(data, i)
            length = (hi << 16) | lo
            sid &= 0x7FFFFFFF
            if typ == DATA and d.block is None:
                if not sid or length > d.max_frame:
                    self._bad(d, base + i, f"DATA frame of {length} bytes on stream {sid}", out)
                    return i
                st = streams.get(sid, 0) | (_C_DATA if client else _S_DATA)
                if flags & END_STREAM:
                    st |= _C_END if client else _S_END
                    out.append(StreamEnd(client, sid, base + i))
                i += 9
                self._set_stream(sid, st)
                if n - i >= length:
                    i += length
                else:
                    d.skip = length - (n - i)
                    d.pos = base + n
                    return n
                continue
            start = base + i
            problem = self._check(d, typ, flags, sid, length)
            if problem:
                self._bad(d, start, problem, out)
                return i
            if length > MAX_HEADER_BLOCK or typ not in _FLAGS or typ == DATA:
                # Not worth buffering: an unknown type, or a header frame over the limit.
                if typ in (HEADERS, PUSH_PROMISE, CONTINUATION):
                    self._over_limit(d, start, sid, typ, flags, out)
                elif typ == DATA:  # DATA inside an open header block
                    self._protocol(d, start, "DATA frame inside a header block", out)
                    continue
                i += 9
                if n - i >= length:
                    i += length
                else:
                    d.skip = length - (n - i)
                    d.pos = base + n
                    return n
                continue
            if n - i - 9 < length:
                return i
            payload = bytes(data[i + 9:i + 9 + length])
            i += 9 + length
            self._frame(d, typ, flags, sid, payload, start, base + i - 1, out)
        return i

    def _check(self, d: _Side, typ: int, flags: int, sid: int, length: int) -> str | None:
        """Why this frame header cannot be right, when it cannot (then frame sync is lost)."""
        if length > d.max_frame:
            # Over the receiver's SETTINGS_MAX_FRAME_SIZE (16384 unless seen larger): a peer
            # would have closed the connection, so far likelier we are out of step.
            return f"frame of type {typ} with length {length} over the maximum {d.max_frame}"
        if typ in (HEADERS, CONTINUATION, PUSH_PROMISE, PRIORITY, RST_STREAM) and not sid:
            return f"frame of type {typ} on stream 0"
        if typ in (SETTINGS, PING, GOAWAY) and sid:
            return f"frame of type {typ} on stream {sid}"
        fixed = _FIXED_LENGTH.get(typ)
        if fixed is not None and length != fixed:
            return f"frame of type {typ} with length {length}"
        if typ == SETTINGS and (length % 6 or (flags & ACK and length)):
            return f"SETTINGS frame with length {length}"
        if typ == GOAWAY and length < 8:
            return f"GOAWAY frame with length {length}"
        return None

    def _bad(self, d: _Side, at: int, why: str, out: list[H2Event]) -> None:
        out.append(H2Anomaly(d.client, at, "h2-bad-frame", f"{why}; looking for the next frame boundary"))
        d.mode = _RESYNC
        d.quiet = True
        d.block = None
        d.hpack.desync()

    def _protocol(self, d: _Side, at: int, why: str, out: list[H2Event]) -> None:
        """A frame arrived where the open header block needed a CONTINUATION."""
        assert d.block is not None
        if not d.block.dropped:
            out.append(H2Anomaly(d.client, at, "h2-bad-frame",
                                 f"{why} (stream {d.block.stream}); the block is dropped"))
        d.block = None
        d.hpack.desync()

    def _over_limit(self, d: _Side, at: int, sid: int, typ: int, flags: int, out: list[H2Event]) -> None:
        out.append(H2Anomaly(d.client, at, "h2-continuation-limit",
                             f"header block on stream {sid} exceeds {MAX_HEADER_BLOCK} bytes; dropped"))
        if typ != CONTINUATION:
            d.block = _Block(sid, at, bool(flags & END_STREAM), None)
        if d.block is not None:
            d.block.dropped = True
            d.block.parts = []
        if flags & END_HEADERS:
            d.block = None
        d.hpack.desync()

    def _frame(self, d: _Side, typ: int, flags: int, sid: int, payload: bytes, start: int, end: int,
               out: list[H2Event]) -> None:
        b = d.block
        if b is not None and typ != CONTINUATION:
            self._protocol(d, start, f"frame of type {typ}", out)
            b = None
        if typ == CONTINUATION:
            if b is None or b.stream != sid:
                if b is not None:
                    self._protocol(d, start, f"CONTINUATION for stream {sid}", out)
                elif not d.quiet:
                    out.append(H2Anomaly(d.client, start, "h2-bad-frame",
                                         f"CONTINUATION on stream {sid} without a header block"))
                return
            b.count += 1
            b.size += len(payload)
            if not b.dropped:
                if b.count > MAX_CONTINUATIONS or b.size > MAX_HEADER_BLOCK:
                    out.append(H2Anomaly(d.client, start, "h2-continuation-limit",
                                         f"header block on stream {sid} exceeds {MAX_CONTINUATIONS} "
                                         f"CONTINUATION frames or {MAX_HEADER_BLOCK} bytes; dropped"))
                    b.dropped = True
                    b.parts = []
                    d.hpack.desync()
                else:
                    b.parts.append(payload)
            if flags & END_HEADERS:
                d.block = None
                if not b.dropped:
                    self._block(d, b, b"".join(b.parts), end, out)
            return
        d.quiet = False
        if typ in (HEADERS, PUSH_PROMISE):
            lo = 0
            hi = len(payload)
            if flags & PADDED:
                pad = payload[0] if hi else 0
                lo = 1
                hi -= pad
            promised: int | None = None
            if typ == HEADERS:
                lo += 5 if flags & PRIORITY_FLAG else 0
            else:
                if lo + 4 <= hi:
                    promised = _U32.unpack_from(payload, lo)[0] & 0x7FFFFFFF
                lo += 4
            nb = _Block(sid, start, bool(flags & END_STREAM) if typ == HEADERS else False, promised)
            if lo > hi or (typ == PUSH_PROMISE and promised is None):
                out.append(H2Anomaly(d.client, start, "h2-bad-frame",
                                     f"frame of type {typ} on stream {sid} with padding longer than it"))
                d.hpack.desync()
                nb.dropped = True
                if not flags & END_HEADERS:
                    d.block = nb
                return
            if flags & END_HEADERS:
                self._block(d, nb, payload[lo:hi], end, out)
            else:
                nb.parts.append(payload[lo:hi])
                nb.size = hi - lo
                d.block = nb
        elif typ == RST_STREAM:
            out.append(StreamReset(d.client, sid, _U32.unpack_from(payload, 0)[0], start))
            self._streams.pop(sid, None)
        elif typ == SETTINGS:
            self._settings(d, flags, payload)
        elif typ == GOAWAY:
            last, code = _GOAWAY.unpack_from(payload, 0)
            out.append(GoAway(d.client, last & 0x7FFFFFFF, code, start))
        # PRIORITY, PING, WINDOW_UPDATE and extensions carry nothing tracewire reports.

    def _settings(self, d: _Side, flags: int, payload: bytes) -> None:
        peer = self._s if d.client else self._c
        if flags & ACK:
            # This side acknowledged the oldest SETTINGS of its peer (RFC 9113 §6.5.3: in
            # order). An ACK for one sent before the capture finds the queue empty.
            if d.pending_sizes:
                value = d.pending_sizes.popleft()
                if value is not None:
                    d.acked_size = value
                self._table_limit(d)
            return
        table: int | None = None
        for o in range(0, len(payload) - 5, 6):
            ident, value = _SETTING.unpack_from(payload, o)
            if ident == 0x1:  # SETTINGS_HEADER_TABLE_SIZE: limits the peer's encoder
                table = value  # the last value in a frame is the one that holds (§6.5)
            elif ident == 0x5 and DEFAULT_MAX_FRAME <= value <= MAX_FRAME_LIMIT:
                peer.max_frame = value  # SETTINGS_MAX_FRAME_SIZE: what the peer may send
        peer.pending_sizes.append(table)
        self._table_limit(peer)

    @staticmethod
    def _table_limit(d: _Side) -> None:
        """The largest table ``d``'s encoder may be using (RFC 7541 §4.2): the value it
        acknowledged, or any it has yet to acknowledge, since an ACK may already be on its
        way. A size update above it is an error; below, the decoder follows the encoder."""
        limit = max([d.acked_size, *(v for v in d.pending_sizes if v is not None)])
        if limit != d.hpack.max_table_size:
            d.hpack.set_max_table_size(limit)

    # -- header blocks ------------------------------------------------------------------

    def _set_stream(self, sid: int, st: int) -> None:
        streams = self._streams
        if st & _C_END and st & _S_END:
            streams.pop(sid, None)
            return
        if sid not in streams and len(streams) >= MAX_STREAMS:
            streams.popitem(last=False)
        streams[sid] = st

    def _block(self, d: _Side, b: _Block, fragment: bytes, end: int, out: list[H2Event]) -> None:
        headers, problems = d.hpack.decode(fragment)
        for p in problems:
            out.append(H2Anomaly(d.client, b.start, "h2-hpack-error", f"stream {b.stream}: {p}"))
        if d.reported_gen != d.hpack.generation:  # once per generation: the list only then
            unknown = [h.unknown for h in headers if h.unknown is not None]
            if unknown:
                d.reported_gen = d.hpack.generation
                out.append(H2Anomaly(
                    d.client, b.start, "h2-hpack-unknown",
                    f"stream {b.stream}: {len(unknown)} of {len(headers)} headers refer to HPACK "
                    f"entries older than what was captured (first: {unknown[0]}); they are "
                    "reported as unknown",
                ))
        sid = b.stream
        if b.promised is not None:
            self._set_stream(b.promised, self._streams.get(b.promised, 0) | _C_HEAD | _C_END)
            out.append(HeaderBlock(d.client, sid, b.start, end, headers, False, "push-promise", b.promised))
            return
        st = self._streams.get(sid, 0)
        # One pass over the fields whose name is known (not guessed): how many, whether
        # one is a pseudo-header, and the first :status's value.
        known = 0
        pseudo = False
        status: bytes | None = None
        has_status = False
        for h in headers:
            name = h.name
            if name is None or h.guessed:
                continue
            known += 1
            if name.startswith(b":"):
                pseudo = True
                if not has_status and name == b":status":
                    status, has_status = h.value, True
        all_known = known == len(headers)
        if d.client:
            # A request carries :method; a second block, or one after DATA, is trailers.
            again = st & _C_HEAD or (not pseudo and (st & _C_DATA or all_known))
            kind = "trailers" if again else "request"
            st |= _C_HEAD
            if b.end_stream:
                st |= _C_END
        else:
            if status is not None:
                kind = "informational" if status[:1] == b"1" and len(status) == 3 else "response"
            elif pseudo:
                kind = "response"
            elif st & (_S_FINAL | _S_DATA) or all_known or (not st and b.end_stream):
                # No :status: trailers, or a stream opened before the capture ending with them.
                kind = "trailers"
            else:
                kind = "response"
            if kind != "informational":
                st |= _S_FINAL
            if b.end_stream:
                st |= _S_END
        self._set_stream(sid, st)
        out.append(HeaderBlock(d.client, sid, b.start, end, headers, b.end_stream, kind, None))
