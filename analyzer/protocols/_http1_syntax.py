"""Byte-level grammar of HTTP/1.x for the passive parser in :mod:`analyzer.protocols.http1`.

It owns the start-line, chunk-size and field-line syntax, body framing by the fields, the scan
that finds the next plausible message head in arbitrary bytes (resynchronisation), and the
detection helpers built on it. ``http1`` re-exports ``Side``, ``looks_like_http1`` and
``find_head_start``: import them from there.

Strategy: every line check is a *prefix* check. Given the bytes seen so far it says "complete
and valid", "valid so far, need more" or "invalid at byte i"; the answer depends only on the
bytes, never on how TCP split them, which is what lets the parser give the same events for any
segmentation, and report a bad line as soon as its first wrong byte arrives instead of waiting
for a line end that garbage may never contain.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from analyzer.records import Header

Buf: TypeAlias = bytes | bytearray


class Side(enum.Enum):
    """Which direction of a connection a parser reads."""

    REQUEST = "request"
    RESPONSE = "response"


# Verdicts of check_line.
MORE: Final = 0  # valid so far, the line is not complete yet
DONE: Final = 1  # complete and valid; the index is just past its CRLF
BAD: Final = 2  # invalid; the index is the first wrong byte
LONG: Final = 3  # no line end within the limit; the index is start + limit


def _prefixes(*parts: bytes) -> re.Pattern[bytes]:
    """A pattern matching the longest prefix of ``parts`` joined, built as ``(?:a(?:b(?:c)?)?)?``.

    It always matches (possibly empty), so ``match().end()`` is where the valid prefix stops.
    Every part must itself be prefix-closed (a literal byte, a class, ``X*``, ``X+``, ``X{0,n}``).
    """
    out = b""
    for part in reversed(parts):
        out = part + (b"(?:" + out + b")?" if out else b"")
    return re.compile(b"(?:" + out + b")?")


_VERSION = (rb"H", rb"T", rb"T", rb"P", rb"/", rb"1", rb"\.", rb"[0-9]")
_CRLF = (rb"\r", rb"\n")

# request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3). The method is an
# upper-case token of at most 20 bytes; the target any visible byte (obs-text tolerated).
REQUEST_LINE: Final = _prefixes(
    rb"[A-Z]", rb"[A-Z0-9_\-]{0,19}", rb" ", rb"[!-~\x80-\xff]+", rb" ", *_VERSION, *_CRLF
)
# status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] CRLF (RFC 9112 §4); the SP before
# an empty reason is often left out, so it is optional.
STATUS_LINE: Final = _prefixes(
    *_VERSION, rb" ", rb"[0-9]", rb"[0-9]", rb"[0-9]", rb"(?: [\t -~\x80-\xff]*)?", *_CRLF
)
# The same with a status code of any number of digits: a recipient in step with the stream
# keeps such a response (without a status) rather than lose it and what follows.
STATUS_LINE_ANY_CODE: Final = _prefixes(
    *_VERSION, rb" ", rb"[0-9]+", rb"(?: [\t -~\x80-\xff]*)?", *_CRLF
)
# chunk-size [ BWS chunk-ext ] CRLF (RFC 9112 §7.1); 16 hex digits hold any 64-bit size.
CHUNK_LINE: Final = _prefixes(rb"[0-9A-Fa-f]{1,16}", rb"[ \t]*(?:;[^\r\n]*)?", *_CRLF)


def check_line(rx: re.Pattern[bytes], src: Buf, start: int, end: int, limit: int) -> tuple[int, int]:
    """Judge the line at ``src[start:end]`` (``end`` = bytes available): (verdict, index)."""
    stop = end if end - start < limit else start + limit
    m = rx.match(src, start, stop)
    e = m.end() if m is not None else start
    if e > start and src[e - 1] == 0x0A:
        return DONE, e
    if e < stop:
        return BAD, e
    if stop == end and end - start < limit:
        return MORE, e
    return LONG, e


def _hex_digit(c: int) -> bool:
    return 0x30 <= c <= 0x39 or 0x41 <= c <= 0x46 or 0x61 <= c <= 0x66


def plain_chunk_line(src: Buf, p: int) -> int:
    """Just past the CRLF when ``src[p:]`` starts with 1 to 16 hex digits and CRLF (the
    usual chunk-size line, which CHUNK_LINE accepts), else -1: then ask check_line. A loop
    over a few bytes costs less than starting a regex match."""
    n = min(len(src), p + 18)
    i = p
    while i < n and _hex_digit(src[i]):
        i += 1
    if p < i <= p + 16 and i + 1 < n and src[i] == 0x0D and src[i + 1] == 0x0A:
        return i + 2
    return -1


def plain_request_line(line: bytes) -> bool:
    """Whether ``line`` (without its CRLF) is certainly one REQUEST_LINE accepts: a method
    of 1 to 20 upper-case letters, digits, ``_`` or ``-`` starting with a letter, a target
    of visible or non-ASCII bytes, ``HTTP/1.`` and a digit, one space between each. False
    says nothing: ask check_line."""
    a = line.find(b" ")
    b = line.find(b" ", a + 1) if a > 0 else -1
    n = len(line)
    if not 0 < a <= 20 or b != n - 9 or b <= a + 1:
        return False
    if not (line[n - 8 : n - 1] == b"HTTP/1." and 0x30 <= line[n - 1] <= 0x39):
        return False
    c = line[0]
    if not 0x41 <= c <= 0x5A:
        return False
    for i in range(1, a):
        c = line[i]
        if not (0x41 <= c <= 0x5A or 0x30 <= c <= 0x39 or c == 0x5F or c == 0x2D):
            return False
    for i in range(a + 1, b):
        c = line[i]
        if c <= 0x20 or c == 0x7F:
            return False
    return True


# What a line may show of itself: a method or an HTTP version, never more.
_SAFE_LEAD: Final = re.compile(rb"[A-Z]{1,20}(?= )|HTTP/[0-9]\.[0-9](?= [0-9]{3})?")


def describe(src: Buf, start: int, stop: int) -> str:
    """The line ``src[start:stop]`` (its last byte the one that broke the syntax) for an
    anomaly detail, without its content: the bytes may be anyone's credential (a query
    string, an Authorization field, a body read as a head), and anomaly texts reach every
    output. Its length, a leading method or version, and the offending byte are enough to
    find it in the capture."""
    n = stop - start
    if n <= 0:
        return "an empty line"
    m = _SAFE_LEAD.match(bytes(src[start : min(stop - 1, start + 24)]))
    lead = f" starting {m.group().decode('ascii')!r}" if m is not None else ""
    return f"{n} byte{'s' if n > 1 else ''}{lead}, unexpected {bytes(src[stop - 1 : stop])!r} at byte {n}"


def describe_field(line: bytes) -> str:
    """A field line that is not one, by its name and lengths: never its value."""
    name, colon, value = line.partition(b":")
    if not colon:
        return f"{len(line)} bytes without a colon"
    if not name:
        return f"no name before the colon, value of {len(value)} bytes not shown"
    shown = repr(name[:40]) + ("..." if len(name) > 40 else "")
    return f"name {shown} is not a token, value of {len(value)} bytes not shown"


# -- field lines ----------------------------------------------------------------------------

_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_OWS: Final = b" \t"


def parse_block(
    block: bytes, start_line: bool, known_lines: Container[bytes] = ()
) -> tuple[bytes, list[Header], list[bytes], str | None]:
    """A head (``start_line``) or trailer section without its final CRLFCRLF:
    (start line or b"", headers, names continued by obs-fold, error).

    ``known_lines``: start lines the caller knows hold no CR or LF (it matched them before).
    """
    # Strategy: most field lines repeat from message to message, and a line in the cache
    # passed every check below once (no CR or LF in it, not a continuation, a token name and
    # a colon): only the lines not seen before, and the start line, are looked at. Anything
    # unusual in them goes to the general path, which finds the error or the fold.
    lines = block.split(b"\r\n")
    first = b""
    if start_line:
        first = lines[0]
        del lines[0]
    cache = _FIELD_CACHE
    headers: list[Header] = []
    new: list[bytes] | None = None
    for line in lines:
        h = cache.get(line, _NOT_CACHED)
        if h is _NOT_CACHED:
            if not line or line[0] == 0x20 or line[0] == 0x09:
                return _parse_block_general(block, start_line)
            if new is None:
                new = []
            new.append(line)
        headers.append(h)
    unseen = new if new is not None else []
    if start_line and first not in known_lines:
        unseen = [first, *unseen]
    if not unseen:
        return first, headers, [], None
    # A lone CR or LF in a line not seen before (a new field line, the start line). (find
    # runs at memchr's speed; count, in or a loop over the bytes cost several times more.)
    joined = b"".join(unseen)
    if joined.find(b"\r") >= 0 or joined.find(b"\n") >= 0:
        return _parse_block_general(block, start_line)
    if new is None:
        return first, headers, [], None
    made: dict[bytes, Header] = {}
    names = _NAMES
    for line in new:
        name, colon, value = line.partition(b":")
        if not colon:
            return _parse_block_general(block, start_line)  # for the error
        lname = names.get(name)
        if lname is None:
            if not name or name.translate(None, _TCHAR):
                return _parse_block_general(block, start_line)  # for the error
            lname = name.lower()
            if len(name) <= _NAME_MAX:
                if len(names) >= _NAMES_MAX:
                    names.clear()
                names[name] = lname
        made[line] = Header(name, _strip_ows(value), lname)
    # Bounded in entries and in bytes: long lines (cookies, tokens) rarely repeat, and a
    # flood of distinct ones must not fill memory.
    for line, h in made.items():
        if len(line) <= _FIELD_CACHE_LINE_MAX:
            if len(cache) >= _FIELD_CACHE_MAX:
                cache.clear()
            cache[line] = h
    for i, h in enumerate(headers):
        if h is _NOT_CACHED:
            headers[i] = made[lines[i]]
    return first, headers, [], None


def _strip_ows(value: bytes) -> bytes:
    """``value.strip(b" \\t")``; the usual one space after the colon is sliced off."""
    n = len(value)
    if n > 1 and value[0] == 0x20 and value[1] != 0x20 and value[1] != 0x09:
        last = value[n - 1]
        if last != 0x20 and last != 0x09:
            return value[1:]
    return value.strip(_OWS)


def _parse_block_general(
    block: bytes, start_line: bool
) -> tuple[bytes, list[Header], list[bytes], str | None]:
    """``parse_block`` for any block: finds the error, joins folded lines."""
    lines = block.split(b"\r\n")
    first = lines[0] if start_line else b""
    fields = lines[1:] if start_line else lines
    crlfs = len(lines) - 1
    if block.count(b"\n") != crlfs or block.count(b"\r") != crlfs:
        return first, [], [], "a lone CR or LF"
    if not fields:
        return first, [], [], None
    if b"\n " in block or b"\n\t" in block or fields[0][:1] in (b" ", b"\t"):
        return (first, *parse_fields(fields))
    # The usual case: lines seen before come from a cache (Header is immutable, and most
    # fields repeat from message to message); the rest are checked together.
    cache = _FIELD_CACHE
    new = [line for line in fields if line not in cache]
    if new:
        parts = [line.partition(b":") for line in new]
        names = [part[0] for part in parts]
        if b"" in names or b"".join(names).translate(None, _TCHAR) or b"" in [p[1] for p in parts]:
            return (first, *parse_fields(fields))  # for the error
        if len(cache) + len(new) > _FIELD_CACHE_MAX:
            cache.clear()
            new, parts = fields, [line.partition(b":") for line in fields]
        made = {
            line: Header(p[0], p[2].strip(_OWS), p[0].lower())
            for line, p in zip(new, parts, strict=True)
        }
        # Bounded in entries and in bytes: long lines (cookies, tokens) rarely repeat, and a
        # flood of distinct ones must not fill memory.
        room = _FIELD_CACHE_MAX - len(cache)
        for line, h in made.items():
            if room <= 0:
                break
            if len(line) <= _FIELD_CACHE_LINE_MAX:
                cache[line] = h
                room -= 1
        get = made.get
        return first, [get(line) or cache[line] for line in fields], [], None
    return first, list(map(cache.__getitem__, fields)), [], None


_FIELD_CACHE: Final[dict[bytes, Header]] = {}
# Field names found to be tokens, with their lower-case form (bounded like the lines).
_NAMES: Final[dict[bytes, bytes]] = {}
_NAMES_MAX: Final = 1024
_NAME_MAX: Final = 64
_NOT_CACHED: Final = Header(b"", b"", b"")  # stands for a line parse_block is still to make
_FIELD_CACHE_MAX: Final = 4096
_FIELD_CACHE_LINE_MAX: Final = 256  # so the cache holds at most about 3 MB


def parse_fields(lines: Sequence[bytes]) -> tuple[list[Header], list[bytes], str | None]:
    """Field lines to headers in wire order: (headers, names continued by obs-fold, error).

    The name is kept as sent, the value with leading and trailing OWS stripped; an obs-fold
    continuation line is joined to the previous value with one space (RFC 9112 §5.2).
    """
    headers: list[Header] = []
    folded: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not headers:
                return headers, folded, "a folded line before any field"
            prev = headers[-1]
            name = prev.name or b""
            more = line.strip(_OWS)
            value = prev.value or b""
            if more:
                value = value + b" " + more if value else more
            headers[-1] = Header(name, value, prev.lname)
            if name not in folded:
                folded.append(name)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TCHAR):
            return headers, folded, f"not a field line: {describe_field(line)}"
        headers.append(Header(name, value.strip(_OWS), name.lower()))
    return headers, folded, None


def comma_list(values: Sequence[bytes]) -> list[bytes]:
    """The elements of one or more ``#rule`` list values, OWS stripped, empties dropped."""
    out: list[bytes] = []
    for value in values:
        for item in value.split(b","):
            item = item.strip(_OWS)
            if item:
                out.append(item)
    return out


# Body lengths that are not a number of bytes.
CHUNKED: Final = -1
UNTIL_CLOSE: Final = -2
UNKNOWN: Final = -3  # the body cannot be delimited


@dataclass(slots=True, init=False)
class Framing:
    """What a head's fields say about its body and the connection."""

    body: int  # bytes, or CHUNKED, UNTIL_CLOSE, UNKNOWN
    close: bool  # the connection closes after this message
    upgrade: bytes | None  # the Upgrade value
    offers_upgrade: bool  # Connection lists "upgrade" and there is an Upgrade value
    problems: list[tuple[str, str]]  # (anomaly kind, detail)

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(
        self,
        body: int,
        close: bool,
        upgrade: bytes | None,
        offers_upgrade: bool,
        problems: list[tuple[str, str]],
    ) -> None:
        self.body = body
        self.close = close
        self.upgrade = upgrade
        self.offers_upgrade = offers_upgrade
        self.problems = problems


_FRAMING_FIELDS: Final = frozenset(
    (b"content-length", b"transfer-encoding", b"connection", b"upgrade")
)


def framing(headers: Sequence[Header], http10: bool, request: bool) -> Framing:
    """The message body length as RFC 9112 §6.3 defines it (a request without framing has
    none, a response is read until close); the caller handles the bodiless responses."""
    lengths: list[bytes] = []
    codings: list[bytes] = []
    options: list[bytes] = []
    upgrade: bytes | None = None
    for h in headers:
        lname = h.lname
        if lname in _FRAMING_FIELDS:
            value = h.value or b""
            if lname == b"content-length":
                lengths.append(value)
            elif lname == b"transfer-encoding":
                codings.append(value)
            elif lname == b"connection":
                options.append(value)
            else:
                upgrade = value
    if options:
        tokens = {t.lower() for t in comma_list(options)}
        close = b"close" in tokens or (http10 and b"keep-alive" not in tokens)
        offers = upgrade is not None and b"upgrade" in tokens
    else:  # the usual case, without building an empty set
        close, offers = http10, False
    out = Framing(0 if request else UNTIL_CLOSE, close, upgrade, offers, [])
    if codings:
        if lengths:
            detail = "both Transfer-Encoding and Content-Length: chunked wins"
            out.problems.append(("http1-conflicting-framing", detail))
        items = comma_list(codings)
        if items and items[-1].lower() == b"chunked":
            out.body = CHUNKED
        elif request:
            detail = f"request Transfer-Encoding {b', '.join(items)!r} does not end in chunked"
            out.problems.append(("http1-bad-transfer-encoding", detail))
            out.body = UNKNOWN
    elif lengths:
        length, count, error = content_length(lengths)
        if error is not None:
            out.problems.append(("http1-bad-content-length", error))
            out.body = UNKNOWN
        else:
            if count > 1:
                detail = f"Content-Length {length} given {count} times"
                out.problems.append(("http1-duplicate-content-length", detail))
            out.body = length
    return out


def content_length(values: Sequence[bytes]) -> tuple[int, int, str | None]:
    """(length, how many values were given, error) for the Content-Length field values.

    Identical repeats (``5, 5`` or two fields) give the length; anything that is not digits,
    or values that differ, give an error (RFC 9112 §6.3 item 5).
    """
    if len(values) == 1:
        value = values[0]
        if len(value) <= 18 and value.isdigit():  # the usual case: one plain number
            return int(value), 1, None
    lengths: set[int] = set()
    count = 0
    for value in values:
        for item in value.split(b","):
            item = item.strip(_OWS)
            if not item.isdigit() or len(item) > 18:
                shown = repr(value[:32]) + ("..." if len(value) > 32 else "")  # not a credential's
                return -1, count, f"invalid Content-Length {shown}"
            lengths.add(int(item))
            count += 1
    if len(lengths) != 1:
        shown = ", ".join(str(n) for n in sorted(lengths))
        return -1, count, f"conflicting Content-Length values {shown}"
    return lengths.pop(), count, None


# -- finding a head in arbitrary bytes ----------------------------------------------------

# Known methods, longest first, to find where a method starts when body bytes run into it.
KNOWN_METHODS: Final = (
    b"OPTIONS",
    b"CONNECT",
    b"DELETE",
    b"PATCH",
    b"TRACE",
    b"POST",
    b"HEAD",
    b"GET",
    b"PUT",
)
_METHOD_BYTES: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_REQ_ANCHOR: Final = b" HTTP/1."
_RESP_ANCHOR: Final = b"HTTP/1."


def _method_start(src: Buf, idx: int, floor: int, floor_line_start: bool, limit: int) -> int:
    """Where the request line whose `` HTTP/1.`` is at ``idx`` starts, or -1.

    At a line start (after LF, or at a floor known to be one) the whole upper-case run before
    the target is the method; elsewhere the bytes before it belong to something else (the tail
    of a body), so only a known method that ends the run is believed.
    """
    sp = src.rfind(b" ", max(floor, idx - limit), idx)
    if sp < 0 or sp + 1 == idx:
        return -1
    j = sp
    lo = max(floor, sp - 21)
    while j > lo and src[j - 1] in _METHOD_BYTES:
        j -= 1
    if j == sp:
        return -1
    line_start = src[j - 1] == 0x0A if j > floor else floor_line_start
    run = bytes(src[j:sp])
    if line_start and len(run) <= 20 and 0x41 <= run[0] <= 0x5A:
        return j
    for method in KNOWN_METHODS:
        if run.endswith(method):
            return sp - len(method)
    return -1


def scan_requests(
    src: Buf, scan: int, floor: int, floor_line_start: bool, limit: int
) -> tuple[int, int]:
    """The first complete, valid request line starting at or after ``floor``, searching for
    its `` HTTP/1.x`` from ``scan``: (start or -1, where to search from next time).

    Nothing before ``floor`` is looked at; ``floor_line_start`` says whether it is a line start.
    """
    n = len(src)
    while True:
        idx = src.find(_REQ_ANCHOR, scan)
        if idx < 0:
            return -1, max(scan, n - len(_REQ_ANCHOR) + 1)
        if idx + 11 > n:
            return -1, idx
        if 0x30 <= src[idx + 8] <= 0x39 and src[idx + 9] == 0x0D and src[idx + 10] == 0x0A:
            s = _method_start(src, idx, floor, floor_line_start, limit)
            if s >= 0 and check_line(REQUEST_LINE, src, s, idx + 11, limit) == (DONE, idx + 11):
                return s, idx
        scan = idx + 1


def scan_responses(src: Buf, scan: int, limit: int) -> tuple[int, int]:
    """The first complete, valid status line found from ``scan``: (start or -1, next scan)."""
    n = len(src)
    while True:
        idx = src.find(_RESP_ANCHOR, scan)
        if idx < 0:
            return -1, max(scan, n - len(_RESP_ANCHOR) + 1)
        verdict, _ = check_line(STATUS_LINE, src, idx, n, limit)
        if verdict == DONE:
            return idx, idx
        if verdict == MORE:
            return -1, idx
        scan = idx + 1


def request_keep(src: Buf, scan: int, floor: int, limit: int) -> int:
    """The first byte a request scan resuming at ``scan`` may still look at.

    A candidate's method and target hold no LF and are at most ``limit`` + 21 bytes long, so
    only the last LF before ``scan`` (to tell a line start) and what follows must be kept.
    """
    keep = max(floor, scan - limit - 24)
    lf = src.rfind(b"\n", keep, scan)
    return lf if lf >= 0 else keep


# -- detection ----------------------------------------------------------------------------

_DETECT_MAX: Final = 8192  # bytes of a first line looked at


def looks_like_http1(data: bytes | bytearray | memoryview) -> Side | None:
    """REQUEST if ``data`` starts with a plausible request line (at least a method and a
    space, the rest valid so far), RESPONSE if with ``HTTP/1.`` and a valid status line so far
    (at least those 7 bytes), else None."""
    head = bytes(data[:_DETECT_MAX])
    if head.startswith(b"HTTP/1."):
        rx, side = STATUS_LINE, Side.RESPONSE
    else:
        sp = head.find(b" ", 0, 22)
        if sp < 1:
            return None
        rx, side = REQUEST_LINE, Side.REQUEST
    verdict, e = check_line(rx, head, 0, len(head), _DETECT_MAX + 1)
    if verdict == BAD or (side is Side.REQUEST and e <= sp):
        return None
    return side


def find_head_start(data: bytes | bytearray | memoryview, side: Side) -> int:
    """Index of the first complete, plausible request or status line in ``data``, or -1."""
    src = data if isinstance(data, (bytes, bytearray)) else bytes(data)
    limit = 64 * 1024
    if side is Side.REQUEST:
        return scan_requests(src, 0, 0, True, limit)[0]
    return scan_responses(src, 0, limit)[0]
