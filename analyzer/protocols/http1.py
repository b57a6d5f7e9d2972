"""Passive, sans-IO HTTP/1.x parser for one direction of a TCP connection.

It owns message framing as a recipient sees it (RFC 9112): request and status lines, field
lines, Content-Length, chunked bodies with their trailers, bodies read until close, pipelining,
the bodiless responses (to HEAD, 1xx, 204, 304), Upgrade with 101 and CONNECT tunnels. It is
fed ordered bytes, gaps and end of data by the reassembly stage and returns events; it never
raises on what it is fed: what is wrong becomes a ``ParseAnomaly`` and the parser finds its
footing again at the next plausible message head.

Strategy: a passive parser must give the same events however TCP split the stream, and must
keep up with hundreds of megabytes in pure Python. So every decision is taken on a prefix
whose verdict cannot change as more bytes arrive (see ``_http1_syntax``); bytes that are only
counted (bodies, tunnels) are skipped by arithmetic straight from what was fed, and only an
unfinished head, chunk-size line or trailer section is kept in the buffer between feeds.

Upgrades: the response side sees a 101 (or a 2xx to CONNECT) and yields ``Upgraded``. The
request side cannot know, so after a request that offers an upgrade (``Upgrade`` with
``Connection: upgrade``, or CONNECT) it holds back: the bytes that follow are parsed only if
they start a valid request line (the upgrade was declined, or the client pipelined); anything
else is held, uncounted as HTTP, until the connection layer, having seen ``Upgraded`` on the
response side, calls ``switch_protocols()`` on the request parser, which then yields its own
``Upgraded`` at the end of the upgrade request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, TypeAlias, cast

from analyzer.protocols import _http1_syntax as syn
from analyzer.protocols._http1_syntax import Side, find_head_start, looks_like_http1
from analyzer.records import Header

__all__ = [
    "ANOMALY_KINDS",
    "Event",
    "HTTP1Parser",
    "MessageEnd",
    "MessageHead",
    "ParseAnomaly",
    "Side",
    "Upgraded",
    "find_head_start",
    "looks_like_http1",
]


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class MessageHead:
    """A request or response head; ``start``/``end`` are stream offsets (end past CRLFCRLF)."""

    kind: Side
    start: int
    end: int
    version: bytes
    method: bytes | None
    target: bytes | None
    status: int | None
    reason: bytes | None
    headers: tuple[Header, ...]

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(
        self,
        kind: Side,
        start: int,
        end: int,
        version: bytes,
        method: bytes | None,
        target: bytes | None,
        status: int | None,
        reason: bytes | None,
        headers: tuple[Header, ...],
    ) -> None:
        self.kind = kind
        self.start = start
        self.end = end
        self.version = version
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.headers = headers


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class MessageEnd:
    """The message whose head came last is complete; ``body_length`` counts payload bytes
    (decoded chunk sizes for chunked bodies), including any missing from the capture."""

    kind: Side
    end: int
    body_length: int
    trailers: tuple[Header, ...]

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(self, kind: Side, end: int, body_length: int, trailers: tuple[Header, ...]) -> None:
        self.kind = kind
        self.end = end
        self.body_length = body_length
        self.trailers = trailers


@dataclass(frozen=True, slots=True)
class Upgraded:
    """From stream offset ``offset`` on, the direction carries another protocol: the
    ``Upgrade`` value of the 101 (e.g. ``b"h2c"``), or ``b""`` when not named (CONNECT)."""

    offset: int
    protocol: bytes


@dataclass(frozen=True, slots=True)
class ParseAnomaly:
    """Something wrong in the stream at ``offset``; ``kind`` is a slug (see ANOMALY_KINDS)."""

    offset: int
    kind: str
    detail: str


Event: TypeAlias = MessageHead | MessageEnd | Upgraded | ParseAnomaly

ANOMALY_KINDS: Final = (
    "http1-resync",  # bytes skipped to reach the next plausible head (never for 0 bytes)
    "http1-bad-head",  # bytes where a head should start are not one
    "http1-bad-status",  # a status code that is not three digits: kept, without a status
    "http1-head-too-large",  # no end of head within max_head bytes
    "http1-bad-chunk",  # bad chunk-size line, chunk not followed by CRLF, bad trailers
    "http1-gap",  # bytes missing from the capture (the detail says whether still in step)
    "http1-truncated",  # the stream ended inside a head or body
    "http1-obs-fold",  # a field continued on a folded line (joined)
    "http1-duplicate-content-length",  # identical repeated values (used)
    "http1-bad-content-length",  # invalid or conflicting values: the body cannot be found
    "http1-bad-transfer-encoding",  # a request whose last coding is not chunked
    "http1-conflicting-framing",  # Transfer-Encoding and Content-Length: chunked wins
    "http1-data-after-close",  # bytes after a message that said Connection: close
    "http1-upgrade-unconfirmed",  # bytes held after an upgrade request, never confirmed
    "http1-unexpected-upgrade",  # switch_protocols() with no upgrade request pending
)

# Parser states. The first six only count bytes, so feed() can skip them without looking.
# (Each Final on its own: compiled, a plain module global is a dict lookup at every use.)
_LENGTH: Final = 0
_CHUNK_DATA: Final = 1
_UNTIL_CLOSE: Final = 2
_HELD: Final = 3
_UPGRADED: Final = 4
_EOF: Final = 5
_HEAD: Final = 6
_RESYNC: Final = 7
_CHUNK_SIZE: Final = 8
_CHUNK_CRLF: Final = 9
_TRAILERS: Final = 10
_CLOSED: Final = 11
_AWAIT: Final = 12
_SWALLOW: Final = _HELD  # states >= this (and <= _EOF) consume everything silently

_APPEND: Final = 16 * 1024  # most bytes appended to a non-empty buffer at a time
# Start lines found valid (response side, request side), so that a repeated one is not
# matched again: bounded in entries and in bytes, like the field-line cache.
_LINES_SEEN: Final[tuple[set[bytes], set[bytes]]] = (set(), set())
_LINES_SEEN_MAX: Final = 1024
_LINE_SEEN_MAX: Final = 256
_CHUNK_LINE_MAX: Final = 4096


class HTTP1Parser:
    """Parse one direction of an HTTP/1.x connection: ``feed``, ``gap``, ``eof`` -> events.

    ``synced=False`` says the stream starts mid-connection: bytes are skipped up to the first
    plausible head. ``max_head`` bounds a head (and a trailer section) in bytes.
    """

    __slots__ = (
        "_await_at", "_await_proto", "_body_len", "_buf", "_buf_base", "_close_after", "_end",
        "_expect", "_head_at", "_is_req", "_keep", "_line_ok", "_line_rx", "_max_head",
        "_msg_at", "_remaining", "_rs_floor", "_rs_floor_ls", "_rs_from", "_rs_missing",
        "_rs_scan", "_side", "_state", "_term_scan", "_upgrade_after",
    )

    def __init__(self, side: Side, *, synced: bool = True, max_head: int = 64 * 1024) -> None:
        self._side = side
        self._is_req = side is Side.REQUEST
        self._line_rx = syn.REQUEST_LINE if self._is_req else syn.STATUS_LINE_ANY_CODE
        self._max_head = max(max_head, 64)
        self._expect: deque[bytes] = deque(maxlen=1024)
        self._buf = bytearray()  # unfinished bytes kept between feeds
        self._buf_base = 0  # stream offset of _buf[0]
        self._end = 0  # stream offset past everything fed or missing
        self._keep = 0  # set by a step that needs more: stream offset of the first byte to keep
        self._head_at = -1  # stream offset of the head (or trailers) being looked at
        self._term_scan = 0  # where the search for its blank line resumes
        self._line_ok = False  # its first line is known complete and valid
        self._remaining = 0
        self._body_len = 0
        self._msg_at = 0
        self._close_after = False
        self._upgrade_after: bytes | None = None
        self._await_at = 0
        self._await_proto = b""
        self._state = _HEAD
        self._rs_from = self._rs_missing = self._rs_floor = self._rs_scan = 0
        self._rs_floor_ls = True
        if not synced:
            self._resync(0, 0, 0, True)

    # -- public API ---------------------------------------------------------------------------

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet fully parsed (gaps included)."""
        return self._buf_base if self._buf else self._end

    @property
    def side(self) -> Side:
        return self._side

    @property
    def upgraded(self) -> bool:
        return self._state == _UPGRADED

    @property
    def buffered(self) -> int:
        """Bytes kept between feeds (an unfinished head, chunk line or trailers)."""
        return len(self._buf)

    def expect_response_to(self, method: bytes) -> None:
        """RESPONSE side: a request with ``method`` was sent; call once per request, in order."""
        if self._is_req:
            raise ValueError("expect_response_to() is for the response side")
        self._expect.append(method)

    def switch_protocols(self) -> list[Event]:
        """REQUEST side: the response side yielded ``Upgraded``; the rest is another protocol."""
        state = self._state
        if not self._is_req:
            if state == _UPGRADED:  # this parser saw the 101 itself: nothing to do
                return []
            raise ValueError("switch_protocols() is for the request side")
        if state in (_UPGRADED, _EOF):
            return []
        if state in (_AWAIT, _HELD):
            out: list[Event] = [Upgraded(self._await_at, self._await_proto)]
        else:
            at = self.offset
            detail = "the peer switched protocols, but no upgrade request was pending here"
            out = [ParseAnomaly(at, "http1-unexpected-upgrade", detail), Upgraded(at, b"")]
        self._state = _UPGRADED
        self._buf.clear()
        return out

    def skip(self, n: int) -> list[Event]:
        """``n`` bytes this parser is not shown (already accounted for by the caller): like
        ``gap`` but without an anomaly. On a parser not fed yet it only moves the start: the
        stream is taken to begin at offset ``n``, in the state the parser was created in."""
        if n > 0 and self._end == 0 and self._state in (_HEAD, _RESYNC):
            self._end = self._rs_from = self._rs_floor = self._rs_scan = n
            return []
        return self._lose(n, None)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """The next bytes of the stream."""
        # bytes and bytearray first: compiled, their checks are native, memoryview's a lookup
        view = not isinstance(data, bytes) and not isinstance(data, bytearray)
        if view and isinstance(data, memoryview) and (data.ndim != 1 or data.itemsize != 1):
            data = data.cast("B") if data.c_contiguous else memoryview(data.tobytes())
        n = len(data)
        base = self._end
        self._end = base + n
        out: list[Event] = []
        if n == 0 or _SWALLOW <= self._state <= _EOF:
            return out
        i = 0
        buf = self._buf
        if buf:
            # Unfinished bytes are waiting: complete them a bounded slice at a time, so that
            # a body following them in this feed is not copied into the buffer.
            whole = memoryview(data)
            bbase = self._buf_base
            pos = 0
            while True:
                take = min(n - i, _APPEND)
                buf += whole[i : i + take]
                i += take
                pos = self._run(buf, pos, bbase, out)
                if pos == len(buf):
                    buf.clear()
                    break
                if i == n:
                    del buf[:pos]
                    self._buf_base = bbase + pos
                    return out
            if i == n:
                return out
        if view:
            i = self._count(i, n, base, out)
            if i == n:
                return out
            src: syn.Buf = bytes(data[i:])
            sbase, i = base + i, 0
        else:
            src, sbase = cast(syn.Buf, data), base
        k = self._run(src, i, sbase, out)
        if k < len(src):
            buf += memoryview(src)[k:]
            self._buf_base = sbase + k
        return out

    def gap(self, n: int) -> list[Event]:
        """``n`` bytes of the stream are missing from the capture."""
        return self._lose(n, [])

    def eof(self) -> list[Event]:
        """The direction ended: a body read until close ends here; anything unfinished is
        reported as truncated."""
        state, at = self._state, self._end
        out: list[Event] = []
        if state == _UNTIL_CLOSE:
            out.append(MessageEnd(self._side, at, self._body_len, ()))
        elif state in (_LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _TRAILERS):
            detail = f"the stream ended inside the body of the message at {self._msg_at}"
            if state == _LENGTH:
                detail += f", {self._remaining} of {self._body_len} bytes short"
            out.append(ParseAnomaly(at, "http1-truncated", detail))
        elif state in (_HEAD, _AWAIT) and self._buf.strip(b"\r"):
            detail = f"the stream ended inside the head at {self._buf_base} ({len(self._buf)} bytes)"
            out.append(ParseAnomaly(at, "http1-truncated", detail))
        elif state == _RESYNC:
            present = at - self._rs_from - self._rs_missing
            if present > 0:
                detail = f"skipped {present} bytes from {self._rs_from}: no head before the end"
                out.append(ParseAnomaly(at, "http1-resync", detail))
        elif state == _HELD:
            detail = f"bytes followed the upgrade request ending at {self._await_at}, unconfirmed"
            out.append(ParseAnomaly(at, "http1-upgrade-unconfirmed", detail))
        self._state = _EOF
        self._buf.clear()
        return out

    # -- lost bytes ---------------------------------------------------------------------------

    def _lose(self, n: int, out: list[Event] | None) -> list[Event]:
        """Account for ``n`` missing bytes; ``out`` None means silently (``skip``)."""
        events: list[Event] = [] if out is None else out
        if n <= 0:
            return events
        at, state = self._end, self._state
        self._end = at + n
        if _SWALLOW <= state <= _EOF:
            return events
        if state == _AWAIT:
            self._state = _HELD
            self._buf.clear()
            return events
        if state in (_LENGTH, _CHUNK_DATA, _UNTIL_CLOSE) and (
            state == _UNTIL_CLOSE or n <= self._remaining
        ):
            if out is not None:
                detail = f"{n} bytes missing inside the body of the message at {self._msg_at}"
                events.append(ParseAnomaly(at, "http1-gap", detail + "; still in step"))
            if state == _UNTIL_CLOSE:
                self._body_len += n
            else:
                self._remaining -= n
                if self._remaining == 0:
                    if state == _LENGTH:
                        self._finish(at + n, (), events)
                    else:
                        self._state = _CHUNK_CRLF
            return events
        if out is not None:
            where = {
                _HEAD: "before or inside a message head",
                _RESYNC: "while looking for a message head",
                _CLOSED: "after a message that closed the connection",
            }.get(state, f"in the framing of the message at {self._msg_at}")
            events.append(ParseAnomaly(at, "http1-gap", f"{n} bytes missing {where}; lost step"))
        if state != _RESYNC:
            self._rs_from = self._buf_base if self._buf else at
            self._rs_missing = 0
            self._state = _RESYNC
        self._rs_missing += n
        self._rs_floor = self._rs_scan = at + n
        self._rs_floor_ls = True
        self._head_at = -1
        self._buf.clear()
        return events

    # -- the state machine --------------------------------------------------------------------

    def _count(self, p: int, n: int, base: int, out: list[Event]) -> int:
        """Skip counted bytes from ``p`` while in a counting state; return where it stopped."""
        while True:
            state = self._state
            if state > _EOF:
                return p
            if state >= _SWALLOW:
                return n
            if state == _UNTIL_CLOSE:
                self._body_len += n - p
                return n
            left = self._remaining
            if n - p < left:
                self._remaining = left - (n - p)
                return n
            p += left
            self._remaining = 0
            if state == _LENGTH:
                self._finish(base + p, (), out)
            else:
                self._state = _CHUNK_CRLF

    def _run(self, src: syn.Buf, p: int, base: int, out: list[Event]) -> int:
        """Parse ``src[p:]`` (``src[0]`` is at stream offset ``base``) as far as it goes and
        return the index of the first byte that must be kept for later."""
        n = len(src)
        while True:
            if self._state <= _EOF:
                p = self._count(p, n, base, out)
                if self._state <= _EOF:
                    return n
            state = self._state
            if state == _HEAD:
                q = self._head(src, p, base, out)
            elif state == _RESYNC:
                q = self._find_head(src, base, out)
            elif state == _CHUNK_SIZE:
                q = self._chunk_size(src, p, base, out)
            elif state == _CHUNK_CRLF:
                q = self._chunk_crlf(src, p, base, out)
            elif state == _TRAILERS:
                q = self._trailers(src, p, base, out)
            elif state == _CLOSED:
                if p == n:
                    return n
                detail = "bytes after a message that said Connection: close"
                out.append(ParseAnomaly(base + p, "http1-data-after-close", detail))
                self._state, q = _HEAD, p
            else:  # _AWAIT: parse on only if a request line follows the upgrade request
                verdict, _ = syn.check_line(syn.REQUEST_LINE, src, p, n, self._max_head)
                if verdict == syn.MORE:
                    return p
                self._state = _HEAD if verdict == syn.DONE else _HELD
                q = p
            if q < 0:
                return self._keep - base
            p = q

    def _resync(self, idx: int, base: int, skipped_from: int, line_start: bool) -> int:
        """Look for the next plausible head from ``src[idx]``; bytes since ``skipped_from``
        count as skipped. ``line_start``: whether ``idx`` is known to start a line."""
        self._state = _RESYNC
        self._rs_from = skipped_from
        self._rs_missing = 0
        self._rs_floor = self._rs_scan = base + idx
        self._rs_floor_ls = line_start
        self._head_at = -1
        return idx

    def _find_head(self, src: syn.Buf, base: int, out: list[Event]) -> int:
        floor, scan, limit = self._rs_floor - base, self._rs_scan - base, self._max_head
        if self._is_req:
            found, scan = syn.scan_requests(src, scan, floor, self._rs_floor_ls, limit)
        else:
            found, scan = syn.scan_responses(src, scan, limit)
        if found >= 0:
            at = base + found
            present = at - self._rs_from - self._rs_missing
            if present > 0:
                detail = f"skipped {present} bytes from {self._rs_from} to a {self._side.value} head"
                if self._rs_missing:
                    detail += f" ({self._rs_missing} more were missing)"
                out.append(ParseAnomaly(at, "http1-resync", detail))
            self._state = _HEAD
            return found
        keep = syn.request_keep(src, scan, floor, limit) if self._is_req else scan
        if keep > floor:
            self._rs_floor, self._rs_floor_ls = base + keep, False
        self._rs_scan = base + scan
        self._keep = base + keep
        return -1

    def _head(self, src: syn.Buf, p: int, base: int, out: list[Event]) -> int:
        n = len(src)
        while p + 1 < n and src[p] == 0x0D and src[p + 1] == 0x0A:  # empty lines between
            p += 2  # messages (RFC 9112 §2.2)
        if p == n or (p + 1 == n and src[p] == 0x0D):
            self._keep = base + p
            return -1
        at = base + p
        t = self._blank_line(src, p, base)
        if t >= 0:
            return self._parse_head(src, p, t + 4, base, out)
        if not self._line_ok:
            verdict, e = syn.check_line(self._line_rx, src, p, n, self._max_head)
            if verdict == syn.BAD:
                return self._bad_head(src, p, e, base, out)
            self._line_ok = verdict == syn.DONE
        if t == -2:
            detail = f"no end of the head within {self._max_head} bytes"
            out.append(ParseAnomaly(at, "http1-head-too-large", detail))
            return self._resync(p + 1, base, at, False)
        self._keep = at
        return -1

    def _blank_line(self, src: syn.Buf, p: int, base: int) -> int:
        """Index of the CRLFCRLF ending the head or trailers at ``p`` if it is within
        max_head; -1 if more bytes are needed, -2 if there is none within max_head."""
        at, n, limit = base + p, len(src), self._max_head
        if self._head_at != at:
            self._head_at = self._term_scan = at
            self._line_ok = False
        stop = min(n, p + limit)
        t = src.find(b"\r\n\r\n", max(p, self._term_scan - base), stop)
        if t < 0:
            self._term_scan = base + max(p, stop - 3)
            return -2 if n - p >= limit else -1
        return t

    def _folds(self, at: int, names: list[bytes], out: list[Event]) -> None:
        for name in names:
            detail = f"field {name.decode('latin-1')} continued on a folded line (joined)"
            out.append(ParseAnomaly(at, "http1-obs-fold", detail))

    def _bad_head(self, src: syn.Buf, p: int, e: int, base: int, out: list[Event]) -> int:
        what = "request" if self._is_req else "status"
        detail = f"not a {what} line: {syn.describe(src, p, e + 1)}"
        out.append(ParseAnomaly(base + p, "http1-bad-head", detail))
        return self._resync(p + 1, base, base + p, False)

    def _parse_head(self, src: syn.Buf, p: int, e: int, base: int, out: list[Event]) -> int:
        # The start line's verdict depends on its bytes alone once they fit the limit: one
        # seen valid before (status lines, most request lines) skips the regex.
        known = _LINES_SEEN[self._is_req]
        first, headers, folded, error = syn.parse_block(bytes(src[p : e - 4]), True, known)
        fits = len(first) + 2 <= self._max_head
        if first not in known or not fits:
            if not (fits and self._is_req and syn.plain_request_line(first)):
                verdict, le = syn.check_line(self._line_rx, src, p, e, self._max_head)
                if verdict != syn.DONE:
                    return self._bad_head(src, p, le, base, out)
            if len(first) <= _LINE_SEEN_MAX:
                if len(known) >= _LINES_SEEN_MAX:
                    known.clear()
                known.add(first)
        at, end = base + p, base + e
        if error is not None:
            out.append(ParseAnomaly(at, "http1-bad-head", f"bad field section: {error}"))
            return self._resync(p + 1, base, at, False)
        self._folds(at, folded, out)
        version = first[-8:] if self._is_req else first[:8]
        fr = syn.framing(headers, version == b"HTTP/1.0", self._is_req)
        self._close_after = fr.close
        self._upgrade_after = None
        self._msg_at = at
        self._body_len = 0
        body, bodiless = fr.body, False
        if self._is_req:
            method, target, _ = first.split(b" ")
            head = MessageHead(
                Side.REQUEST, at, end, version, method, target, None, None, tuple(headers)
            )
            if method == b"CONNECT":
                self._upgrade_after = b""
            elif fr.offers_upgrade:
                self._upgrade_after = fr.upgrade
        else:
            digits = first[9:].partition(b" ")[0]
            code: int | None = int(digits) if len(digits) == 3 else None
            if code is None:
                # RFC 9112 §4: three digits. int() of thousands would raise, and any other
                # number would be a guess: kept without a status, framed as a final response.
                shown = digits[:8].decode("ascii") + ("..." if len(digits) > 8 else "")
                out.append(ParseAnomaly(at, "http1-bad-status", f"a status code of {len(digits)} "
                                        f"digits ({shown}); the response is kept without a status"))
            head = MessageHead(Side.RESPONSE, at, end, version, None, None, code,
                               first[10 + len(digits):], tuple(headers))
            status = 200 if code is None else code
            method = b"GET"
            if status >= 200 or status == 101:  # answers the oldest request waiting
                method = self._expect.popleft() if self._expect else b"GET"
            tunnel = method == b"CONNECT" and 200 <= status < 300
            if status < 200 or tunnel:
                out += (head, MessageEnd(Side.RESPONSE, end, 0, ()))
                if status == 101 or tunnel:
                    out.append(Upgraded(end, (fr.upgrade or b"") if status == 101 else b""))
                    self._state = _UPGRADED
                else:
                    self._state = _HEAD
                return e
            if method == b"HEAD" or status in (204, 304):
                body, bodiless = 0, True
        if not bodiless:
            for kind, detail in fr.problems:
                out.append(ParseAnomaly(at, kind, detail))
        out.append(head)
        if body == syn.CHUNKED:
            self._state = _CHUNK_SIZE
        elif body == syn.UNTIL_CLOSE:
            self._state = _UNTIL_CLOSE
        elif body == syn.UNKNOWN:
            return self._resync(e, base, end, True)
        elif body == 0:
            self._finish(end, (), out)
        else:
            self._state = _LENGTH
            self._remaining = self._body_len = body
        return e

    def _finish(self, end: int, trailers: tuple[Header, ...], out: list[Event]) -> None:
        out.append(MessageEnd(self._side, end, self._body_len, trailers))
        if self._upgrade_after is not None:
            self._state = _AWAIT
            self._await_at = end
            self._await_proto = self._upgrade_after
        elif self._close_after:
            self._state = _CLOSED
        else:
            self._state = _HEAD

    def _chunk_size(self, src: syn.Buf, p: int, base: int, out: list[Event]) -> int:
        # The usual line, hex digits and CRLF, without starting a regex match.
        e = syn.plain_chunk_line(src, p)
        if e >= 0:
            size = int(src[p : e - 2], 16)
        else:
            verdict, e = syn.check_line(syn.CHUNK_LINE, src, p, len(src), _CHUNK_LINE_MAX)
            if verdict == syn.MORE:
                self._keep = base + p
                return -1
            if verdict != syn.DONE:
                stop = e + 1 if verdict == syn.BAD else e
                detail = f"bad chunk-size line: {syn.describe(src, p, stop)}"
                out.append(ParseAnomaly(base + p, "http1-bad-chunk", detail))
                return self._resync(p, base, base + p, True)
            size = int(bytes(src[p : e - 2]).split(b";", 1)[0].strip(b" \t"), 16)
        if size == 0:
            self._state = _TRAILERS
        else:
            self._state = _CHUNK_DATA
            self._remaining = size
            self._body_len += size
        return e

    def _chunk_crlf(self, src: syn.Buf, p: int, base: int, out: list[Event]) -> int:
        left = len(src) - p
        if left >= 2 and src[p] == 0x0D and src[p + 1] == 0x0A:
            self._state = _CHUNK_SIZE
            return p + 2
        if left == 0 or (left == 1 and src[p] == 0x0D):
            self._keep = base + p
            return -1
        detail = "chunk data not followed by CRLF"
        out.append(ParseAnomaly(base + p, "http1-bad-chunk", detail))
        return self._resync(p, base, base + p, False)

    def _trailers(self, src: syn.Buf, p: int, base: int, out: list[Event]) -> int:
        at = base + p
        if len(src) - p < 2:
            self._keep = at
            return -1
        if src[p] == 0x0D and src[p + 1] == 0x0A:
            self._finish(at + 2, (), out)
            return p + 2
        t = self._blank_line(src, p, base)
        if t == -1:
            self._keep = at
            return -1
        if t == -2:
            error: str | None = f"no end within {self._max_head} bytes"
        else:
            _, trailers, folded, error = syn.parse_block(bytes(src[p:t]), False)
        if error is not None:
            out.append(ParseAnomaly(at, "http1-bad-chunk", f"bad trailer section: {error}"))
            return self._resync(p, base, at, True)
        self._folds(at, folded, out)
        self._finish(base + t + 4, tuple(trailers), out)
        return t + 4
