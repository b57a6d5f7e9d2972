"""protocols/http1: framing, bodiless responses, upgrades, gaps and resynchronisation.

Every scenario is fed whole, one byte at a time, at random split points (many seeds, and
hypothesis), as bytes, bytearray and memoryview, and must give the same events each time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.protocols.http1 import (
    Event,
    HTTP1Parser,
    MessageEnd,
    MessageHead,
    ParseAnomaly,
    Side,
    Upgraded,
    find_head_start,
    looks_like_http1,
)
from analyzer.records import Header

REQ, RESP = Side.REQUEST, Side.RESPONSE


@dataclass(frozen=True)
class Gap:
    n: int


class _Switch:
    """The connection layer calls switch_protocols() on the request parser here."""


SWITCH = _Switch()
Op = bytes | Gap | _Switch
Cutter = Callable[[bytes], list[bytes]]


# -- building expected events ---------------------------------------------------------------


def hdrs(*pairs: tuple[bytes, bytes]) -> tuple[Header, ...]:
    return tuple(Header.of(name, value) for name, value in pairs)


def req(start: int, end: int, method: bytes, target: bytes, headers: tuple[Header, ...] = (),
        version: bytes = b"HTTP/1.1") -> MessageHead:
    return MessageHead(REQ, start, end, version, method, target, None, None, headers)


def resp(start: int, end: int, status: int, reason: bytes, headers: tuple[Header, ...] = (),
         version: bytes = b"HTTP/1.1") -> MessageHead:
    return MessageHead(RESP, start, end, version, None, None, status, reason, headers)


def done(kind: Side, end: int, body: int = 0, trailers: tuple[Header, ...] = ()) -> MessageEnd:
    return MessageEnd(kind, end, body, trailers)


def anomaly(offset: int, kind: str, detail: str) -> ParseAnomaly:
    return ParseAnomaly(offset, kind, detail)


# -- feeding ----------------------------------------------------------------------------------


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def random_cuts(seed: int) -> Cutter:
    rng = random.Random(seed)

    def cut(data: bytes) -> list[bytes]:
        if len(data) < 2:
            return [data]
        points = sorted(rng.sample(range(1, len(data)), rng.randint(0, min(8, len(data) - 1))))
        return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]

    return cut


def parse(ops: Sequence[Op], side: Side = REQ, *, cut: Cutter = whole, synced: bool = True,
          max_head: int = 64 * 1024, expect: Sequence[bytes] = (), wrap: str = "bytes",
          eof: bool = True) -> list[Event]:
    parser = HTTP1Parser(side, synced=synced, max_head=max_head)
    for method in expect:
        parser.expect_response_to(method)
    events: list[Event] = []
    last_offset = parser.offset
    for op in ops:
        if isinstance(op, Gap):
            events += parser.gap(op.n)
        elif isinstance(op, _Switch):
            events += parser.switch_protocols()
        else:
            for piece in cut(op):
                if wrap == "memoryview":
                    events += parser.feed(memoryview(piece))
                elif wrap == "bytearray":
                    events += parser.feed(bytearray(piece))
                else:
                    events += parser.feed(piece)
                assert parser.offset >= last_offset
                last_offset = parser.offset
    if eof:
        events += parser.eof()
    assert_monotonic(events)
    return events


def position(ev: Event) -> int:
    if isinstance(ev, MessageHead):
        return ev.start
    if isinstance(ev, MessageEnd):
        return ev.end
    return ev.offset


def assert_monotonic(events: list[Event]) -> None:
    last = 0
    head_end = 0
    for ev in events:
        assert position(ev) >= last, (ev, last)
        last = position(ev)
        if isinstance(ev, MessageHead):
            assert ev.start < ev.end
            head_end = ev.end
        elif isinstance(ev, MessageEnd):
            assert ev.end >= head_end


def every_way(ops: Sequence[Op], side: Side = REQ, seeds: int = 40, **kw: object) -> list[Event]:
    """The events for ``ops``, after checking that every way of feeding them agrees."""
    expected = parse(ops, side, **kw)  # type: ignore[arg-type]
    for wrap in ("bytes", "bytearray", "memoryview"):
        assert parse(ops, side, cut=bytewise, wrap=wrap, **kw) == expected, wrap  # type: ignore[arg-type]
    for seed in range(seeds):
        wrap = ("bytes", "memoryview")[seed % 2]
        got = parse(ops, side, cut=random_cuts(seed), wrap=wrap, **kw)  # type: ignore[arg-type]
        assert got == expected, seed
    return expected


# -- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    ops: tuple[Op, ...]
    expected: tuple[Event, ...]
    side: Side = REQ
    synced: bool = True
    max_head: int = 64 * 1024
    expect: tuple[bytes, ...] = ()


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, ops: Sequence[Op], expected: Sequence[Event], **kw: object) -> None:
    SCENARIOS[name] = Scenario(tuple(ops), tuple(expected), **kw)  # type: ignore[arg-type]


# simple GET
GET = (b"GET /api/v1/items?id=7 HTTP/1.1\r\nHost: shop.local\r\nUser-Agent: curl/8.0\r\n"
       b"x-b3-traceid: 463ac35c9f6413ad\r\n\r\n")
scenario("simple-get", [GET], [
    req(0, len(GET), b"GET", b"/api/v1/items?id=7", hdrs(
        (b"Host", b"shop.local"), (b"User-Agent", b"curl/8.0"),
        (b"x-b3-traceid", b"463ac35c9f6413ad"))),
    done(REQ, len(GET)),
])

# POST with Content-Length (the body holds CRLFCRLF and a request line: it is only counted)
POST_HEAD = b"POST /orders HTTP/1.1\r\nHost: shop\r\nContent-Length: 30\r\n\r\n"
POST_BODY = b"GET /x HTTP/1.1\r\n\r\n0123456789A"
assert len(POST_BODY) == 30
scenario("post-content-length", [POST_HEAD + POST_BODY], [
    req(0, len(POST_HEAD), b"POST", b"/orders",
        hdrs((b"Host", b"shop"), (b"Content-Length", b"30"))),
    done(REQ, len(POST_HEAD) + 30, 30),
])

# chunked with extensions (with BWS) and trailers; upper-case hex size
CH_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
CH_BODY = (b"5;name=value\r\nhello\r\n6 ; ext\r\n world\r\nA\r\n0123456789\r\n"
           b"0;last\r\ngrpc-status: 0\r\nX-Trace:  abc \r\n\r\n")
scenario("chunked-trailers", [CH_HEAD + CH_BODY], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    done(RESP, len(CH_HEAD) + len(CH_BODY), 21,
         hdrs((b"grpc-status", b"0"), (b"X-Trace", b"abc"))),
], side=RESP)

# pipelined requests, with an empty line between two of them (tolerated, RFC 9112 §2.2)
P1 = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
P2 = b"PUT /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
P3 = b"\r\nDELETE /c?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
_p2, _p3 = len(P1), len(P1) + len(P2)
scenario("pipelined", [P1 + P2 + P3], [
    req(0, len(P1), b"GET", b"/a", hdrs((b"Host", b"h"))),
    done(REQ, len(P1)),
    req(_p2, _p3 - 4, b"PUT", b"/b", hdrs((b"Host", b"h"), (b"Content-Length", b"4"))),
    done(REQ, _p3, 4),
    req(_p3 + 2, _p3 + len(P3), b"DELETE", b"/c?x=1", hdrs((b"Host", b"h"))),
    done(REQ, _p3 + len(P3)),
])

# responses to HEAD then GET (the HEAD response announces a length but has no body)
R_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
R_GET = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
scenario("head-response", [R_HEAD + R_GET], [
    resp(0, len(R_HEAD), 200, b"OK", hdrs((b"Content-Length", b"1234"))),
    done(RESP, len(R_HEAD)),
    resp(len(R_HEAD), len(R_HEAD) + len(R_GET) - 2, 200, b"OK",
         hdrs((b"Content-Length", b"2"))),
    done(RESP, len(R_HEAD) + len(R_GET), 2),
], side=RESP, expect=(b"HEAD", b"GET"))

# 100-continue, then the final response
R100 = b"HTTP/1.1 100 Continue\r\n\r\n"
R200 = b"HTTP/1.1 201 Created\r\nContent-Length: 3\r\nLocation: /o/1\r\n\r\nabc"
scenario("100-continue", [R100 + R200], [
    resp(0, len(R100), 100, b"Continue"),
    done(RESP, len(R100)),
    resp(len(R100), len(R100) + len(R200) - 3, 201, b"Created",
         hdrs((b"Content-Length", b"3"), (b"Location", b"/o/1"))),
    done(RESP, len(R100) + len(R200), 3),
], side=RESP, expect=(b"POST",))
EXPECT_POST = (b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n")
scenario("expect-100-request", [EXPECT_POST, b"12345"], [
    req(0, len(EXPECT_POST), b"POST", b"/up", hdrs(
        (b"Host", b"h"), (b"Expect", b"100-continue"), (b"Content-Length", b"5"))),
    done(REQ, len(EXPECT_POST) + 5, 5),
])

# 101 Switching Protocols to h2c, both sides
H2_BYTES = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"
UPG_REQ = (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
scenario("upgrade-h2c-request", [UPG_REQ, H2_BYTES, SWITCH, H2_BYTES], [
    req(0, len(UPG_REQ), b"GET", b"/", hdrs(
        (b"Host", b"h"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA"))),
    done(REQ, len(UPG_REQ)),
    Upgraded(len(UPG_REQ), b"h2c"),
])
R101 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
scenario("upgrade-h2c-response", [R101 + H2_BYTES[24:] + b"HTTP/1.1 200 OK\r\n\r\n"], [
    resp(0, len(R101), 101, b"Switching Protocols",
         hdrs((b"Connection", b"Upgrade"), (b"Upgrade", b"h2c"))),
    done(RESP, len(R101)),
    Upgraded(len(R101), b"h2c"),
], side=RESP, expect=(b"GET",))
# the upgrade was declined: the client goes on with HTTP/1
UPG_NEXT = b"GET /next HTTP/1.1\r\n\r\n"
scenario("upgrade-declined", [UPG_REQ + UPG_NEXT], [
    req(0, len(UPG_REQ), b"GET", b"/", hdrs(
        (b"Host", b"h"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA"))),
    done(REQ, len(UPG_REQ)),
    req(len(UPG_REQ), len(UPG_REQ) + len(UPG_NEXT), b"GET", b"/next"),
    done(REQ, len(UPG_REQ) + len(UPG_NEXT)),
])
# ... and never confirmed: what followed is held, then reported at the end
scenario("upgrade-unconfirmed", [UPG_REQ + H2_BYTES], [
    req(0, len(UPG_REQ), b"GET", b"/", hdrs(
        (b"Host", b"h"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA"))),
    done(REQ, len(UPG_REQ)),
    anomaly(len(UPG_REQ) + len(H2_BYTES), "http1-upgrade-unconfirmed",
            f"bytes followed the upgrade request ending at {len(UPG_REQ)}, unconfirmed"),
])

# CONNECT tunnels
TLS = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
CONN_REQ = b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n"
scenario("connect-request", [CONN_REQ + TLS, SWITCH, TLS], [
    req(0, len(CONN_REQ), b"CONNECT", b"api.example:443", hdrs((b"Host", b"api.example:443"))),
    done(REQ, len(CONN_REQ)),
    Upgraded(len(CONN_REQ), b""),
])
CONN_OK = b"HTTP/1.1 200 Connection established\r\n\r\n"
scenario("connect-response", [CONN_OK + TLS], [
    resp(0, len(CONN_OK), 200, b"Connection established"),
    done(RESP, len(CONN_OK)),
    Upgraded(len(CONN_OK), b""),
], side=RESP, expect=(b"CONNECT",))

# 204 and 304 carry Content-Length but no body
R204 = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
R304 = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 99\r\n\r\n"
R200_0 = b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"
_a, _b = len(R204), len(R204) + len(R304)
scenario("204-304", [R204 + R304 + R200_0], [
    resp(0, _a, 204, b"No Content", hdrs((b"Content-Length", b"10"))),
    done(RESP, _a),
    resp(_a, _b, 304, b"Not Modified", hdrs((b"ETag", b'"x"'), (b"Content-Length", b"99"))),
    done(RESP, _b),
    resp(_b, _b + len(R200_0), 200, b"", hdrs((b"Content-Length", b"0"))),
    done(RESP, _b + len(R200_0)),
], side=RESP)

# a response without Content-Length or chunked is read until close
UC_HEAD = b"HTTP/1.0 200 OK\r\nServer: legacy\r\n\r\n"
UC_BODY = b"<html>HTTP/1.1 200 OK\r\n\r\n</html>"
scenario("until-close", [UC_HEAD, UC_BODY], [
    resp(0, len(UC_HEAD), 200, b"OK", hdrs((b"Server", b"legacy")), version=b"HTTP/1.0"),
    done(RESP, len(UC_HEAD) + len(UC_BODY), len(UC_BODY)),
], side=RESP)

# Connection: close, then more bytes
CLOSE = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"
AFTER = b"GET /again HTTP/1.1\r\n\r\n"
scenario("connection-close", [CLOSE + AFTER], [
    req(0, len(CLOSE), b"GET", b"/", hdrs((b"Connection", b"close"))),
    done(REQ, len(CLOSE)),
    anomaly(len(CLOSE), "http1-data-after-close",
            "bytes after a message that said Connection: close"),
    req(len(CLOSE), len(CLOSE) + len(AFTER), b"GET", b"/again"),
    done(REQ, len(CLOSE) + len(AFTER)),
])

# HTTP/1.0: keep-alive asked for, then the default (close)
H10A = b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
H10B = b"GET /two HTTP/1.0\r\nUser-Agent: old\r\n\r\n"
scenario("http10", [H10A + H10B + b"X"], [
    req(0, len(H10A), b"GET", b"/one", hdrs((b"Connection", b"keep-alive")), b"HTTP/1.0"),
    done(REQ, len(H10A)),
    req(len(H10A), len(H10A) + len(H10B), b"GET", b"/two", hdrs((b"User-Agent", b"old")),
        b"HTTP/1.0"),
    done(REQ, len(H10A) + len(H10B)),
    anomaly(len(H10A) + len(H10B), "http1-data-after-close",
            "bytes after a message that said Connection: close"),
    anomaly(len(H10A) + len(H10B) + 1, "http1-truncated",
            f"the stream ended inside the head at {len(H10A) + len(H10B)} (1 bytes)"),
])

# obs-fold: joined, reported
FOLD = b"GET / HTTP/1.1\r\nX-Long: a\r\n  b\r\n\tc \r\nHost: h\r\n\r\n"
scenario("obs-fold", [FOLD], [
    anomaly(0, "http1-obs-fold", "field X-Long continued on a folded line (joined)"),
    req(0, len(FOLD), b"GET", b"/", hdrs((b"X-Long", b"a b c"), (b"Host", b"h"))),
    done(REQ, len(FOLD)),
])

# duplicate Content-Length (identical: used), then conflicting (resync after the head)
DUP = b"POST /d HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3, 3\r\n\r\nabc"
CONFLICT = b"POST /c HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"
NEXT = b"GET /n HTTP/1.1\r\n\r\n"
_c = len(DUP)
_n = _c + len(CONFLICT) + 4
scenario("content-length-duplicate-conflicting", [DUP + CONFLICT + b"abcd" + NEXT], [
    anomaly(0, "http1-duplicate-content-length", "Content-Length 3 given 3 times"),
    req(0, len(DUP) - 3, b"POST", b"/d",
        hdrs((b"Content-Length", b"3"), (b"content-length", b"3, 3"))),
    done(REQ, len(DUP), 3),
    anomaly(_c, "http1-bad-content-length", "conflicting Content-Length values 3, 4"),
    req(_c, _c + len(CONFLICT), b"POST", b"/c",
        hdrs((b"Content-Length", b"3"), (b"Content-Length", b"4"))),
    anomaly(_n, "http1-resync", f"skipped 4 bytes from {_c + len(CONFLICT)} to a request head"),
    req(_n, _n + len(NEXT), b"GET", b"/n"),
    done(REQ, _n + len(NEXT)),
])
BADLEN = b"POST /b HTTP/1.1\r\nContent-Length: 12a\r\n\r\n"
scenario("content-length-invalid", [BADLEN + b"\r\n" + NEXT], [
    anomaly(0, "http1-bad-content-length", "invalid Content-Length b'12a'"),
    req(0, len(BADLEN), b"POST", b"/b", hdrs((b"Content-Length", b"12a"))),
    anomaly(len(BADLEN) + 2, "http1-resync", f"skipped 2 bytes from {len(BADLEN)} to a request head"),
    req(len(BADLEN) + 2, len(BADLEN) + 2 + len(NEXT), b"GET", b"/n"),
    done(REQ, len(BADLEN) + 2 + len(NEXT)),
])

# Transfer-Encoding and Content-Length together: chunked wins
TECL = b"POST /t HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
scenario("chunked-wins", [TECL + b"3\r\nabc\r\n0\r\n\r\n"], [
    anomaly(0, "http1-conflicting-framing",
            "both Transfer-Encoding and Content-Length: chunked wins"),
    req(0, len(TECL), b"POST", b"/t",
        hdrs((b"Content-Length", b"100"), (b"Transfer-Encoding", b"gzip, chunked"))),
    done(REQ, len(TECL) + 13, 3),
], side=REQ)

# header names keep their case; values lose OWS only at the ends
CASE = b"GET / HTTP/1.1\r\nx-REQUEST-id:\t Abc  Def \t\r\nTRACEPARENT:00-ab\r\nEmpty:\r\n\r\n"
scenario("header-case", [CASE], [
    req(0, len(CASE), b"GET", b"/", (
        Header(b"x-REQUEST-id", b"Abc  Def", b"x-request-id"),
        Header(b"TRACEPARENT", b"00-ab", b"traceparent"),
        Header(b"Empty", b"", b"empty"),
    )),
    done(REQ, len(CASE)),
])

# the capture starts mid-body (no SYN): resync on both sides
MID_RESP = b'tus":"ok"}\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
_m = MID_RESP.index(b"HTTP/1.1")
scenario("mid-body-response", [MID_RESP], [
    anomaly(_m, "http1-resync", f"skipped {_m} bytes from 0 to a response head"),
    resp(_m, len(MID_RESP) - 2, 200, b"OK", hdrs((b"Content-Length", b"2"))),
    done(RESP, len(MID_RESP), 2),
], side=RESP, synced=False)
MID_REQ = b"ata=1&b=2POST /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nz"
scenario("mid-body-request", [MID_REQ], [
    anomaly(9, "http1-resync", "skipped 9 bytes from 0 to a request head"),
    req(9, len(MID_REQ) - 1, b"POST", b"/x", hdrs((b"Content-Length", b"1"))),
    done(REQ, len(MID_REQ), 1),
], synced=False)
scenario("unsynced-at-head", [GET], [
    req(0, len(GET), b"GET", b"/api/v1/items?id=7", hdrs(
        (b"Host", b"shop.local"), (b"User-Agent", b"curl/8.0"),
        (b"x-b3-traceid", b"463ac35c9f6413ad"))),
    done(REQ, len(GET)),
], synced=False)
# a line start allows any upper-case method; after other bytes only known ones are believed
scenario("unsynced-methods", [b"junk\r\nPURGE /c HTTP/1.1\r\n\r\nxxLOCK / HTTP/1.1\r\n\r\n"], [
    anomaly(6, "http1-resync", "skipped 6 bytes from 0 to a request head"),
    req(6, 27, b"PURGE", b"/c"),
    done(REQ, 27),
    anomaly(27, "http1-bad-head", "not a request line: 1 byte, unexpected b'x' at byte 1"),
    anomaly(48, "http1-resync", "skipped 21 bytes from 27: no head before the end"),
], synced=False)

# a gap inside a Content-Length body, inside chunk data, inside an until-close body
GAP_HEAD = b"POST /g HTTP/1.1\r\nContent-Length: 10\r\n\r\n"
_g = len(GAP_HEAD)
scenario("gap-in-body", [GAP_HEAD + b"abc", Gap(4), b"hij" + NEXT], [
    req(0, _g, b"POST", b"/g", hdrs((b"Content-Length", b"10"))),
    anomaly(_g + 3, "http1-gap", "4 bytes missing inside the body of the message at 0; still in step"),
    done(REQ, _g + 10, 10),
    req(_g + 10, _g + 10 + len(NEXT), b"GET", b"/n"),
    done(REQ, _g + 10 + len(NEXT)),
])
scenario("gap-in-chunk", [CH_HEAD + b"8\r\nab", Gap(6), b"\r\n0\r\n\r\n"], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD) + 5, "http1-gap",
            "6 bytes missing inside the body of the message at 0; still in step"),
    done(RESP, len(CH_HEAD) + 18, 8),
], side=RESP)
scenario("gap-until-close", [UC_HEAD + b"ab", Gap(100), b"cd"], [
    resp(0, len(UC_HEAD), 200, b"OK", hdrs((b"Server", b"legacy")), version=b"HTTP/1.0"),
    anomaly(len(UC_HEAD) + 2, "http1-gap",
            "100 bytes missing inside the body of the message at 0; still in step"),
    done(RESP, len(UC_HEAD) + 104, 104),
], side=RESP)
# a gap longer than the rest of the body loses step
scenario("gap-past-body", [GAP_HEAD + b"abc", Gap(20), b"xyz\r\n" + NEXT], [
    req(0, _g, b"POST", b"/g", hdrs((b"Content-Length", b"10"))),
    anomaly(_g + 3, "http1-gap", "20 bytes missing in the framing of the message at 0; lost step"),
    anomaly(_g + 28, "http1-resync",
            f"skipped 5 bytes from {_g + 3} to a request head (20 more were missing)"),
    req(_g + 28, _g + 28 + len(NEXT), b"GET", b"/n"),
    done(REQ, _g + 28 + len(NEXT)),
])
# a gap inside a head: resync
scenario("gap-in-head", [b"GET /a HTTP/1.1\r\nHo", Gap(5), b"x\r\n\r\n" + NEXT], [
    anomaly(19, "http1-gap", "5 bytes missing before or inside a message head; lost step"),
    anomaly(29, "http1-resync", "skipped 24 bytes from 0 to a request head (5 more were missing)"),
    req(29, 29 + len(NEXT), b"GET", b"/n"),
    done(REQ, 29 + len(NEXT)),
])
# a gap right between messages, then the next head: nothing present was skipped
scenario("gap-between", [P1, Gap(7), NEXT], [
    req(0, len(P1), b"GET", b"/a", hdrs((b"Host", b"h"))),
    done(REQ, len(P1)),
    anomaly(len(P1), "http1-gap", "7 bytes missing before or inside a message head; lost step"),
    req(len(P1) + 7, len(P1) + 7 + len(NEXT), b"GET", b"/n"),
    done(REQ, len(P1) + 7 + len(NEXT)),
])

# the stream ends inside a head, inside a body
scenario("eof-mid-head", [b"GET / HTTP/1.1\r\nHost: a"], [
    anomaly(23, "http1-truncated", "the stream ended inside the head at 0 (23 bytes)"),
])
scenario("eof-mid-body", [GAP_HEAD + b"abc"], [
    req(0, _g, b"POST", b"/g", hdrs((b"Content-Length", b"10"))),
    anomaly(_g + 3, "http1-truncated",
            "the stream ended inside the body of the message at 0, 7 of 10 bytes short"),
])
scenario("eof-mid-chunk-line", [CH_HEAD + b"1f"], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD) + 2, "http1-truncated",
            "the stream ended inside the body of the message at 0"),
], side=RESP)

# garbage: TLS at the start of a stream said to be HTTP, then text followed by a request
scenario("garbage-tls", [TLS], [
    anomaly(0, "http1-bad-head", "not a request line: 1 byte, unexpected b'\\x16' at byte 1"),
    anomaly(len(TLS), "http1-resync", f"skipped {len(TLS)} bytes from 0: no head before the end"),
])
scenario("garbage-then-request", [b"hello world\r\n" + NEXT], [
    anomaly(0, "http1-bad-head", "not a request line: 1 byte, unexpected b'h' at byte 1"),
    anomaly(13, "http1-resync", "skipped 13 bytes from 0 to a request head"),
    req(13, 13 + len(NEXT), b"GET", b"/n"),
    done(REQ, 13 + len(NEXT)),
])
scenario("garbage-status", [b"HTTP/1.1 2x0 OK\r\n\r\n" + R200_0], [
    anomaly(0, "http1-bad-head",
            "not a status line: 11 bytes starting 'HTTP/1.1', unexpected b'x' at byte 11"),
    anomaly(19, "http1-resync", "skipped 19 bytes from 0 to a response head"),
    resp(19, 19 + len(R200_0), 200, b"", hdrs((b"Content-Length", b"0"))),
    done(RESP, 19 + len(R200_0)),
], side=RESP)
scenario("bad-field-line", [b"GET / HTTP/1.1\r\nno colon here\r\n\r\n" + NEXT], [
    anomaly(0, "http1-bad-head", "bad field section: not a field line: 13 bytes without a colon"),
    anomaly(33, "http1-resync", "skipped 33 bytes from 0 to a request head"),
    req(33, 33 + len(NEXT), b"GET", b"/n"),
    done(REQ, 33 + len(NEXT)),
])

# a head larger than max_head
BIG = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 100 + b"\r\n\r\n"
scenario("head-too-large", [BIG + NEXT], [
    anomaly(0, "http1-head-too-large", "no end of the head within 64 bytes"),
    anomaly(len(BIG), "http1-resync", f"skipped {len(BIG)} bytes from 0 to a request head"),
    req(len(BIG), len(BIG) + len(NEXT), b"GET", b"/n"),
    done(REQ, len(BIG) + len(NEXT)),
], max_head=64)

# bad chunked framing
scenario("bad-chunk-size", [CH_HEAD + b"zz\r\n" + R200_0], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD), "http1-bad-chunk", "bad chunk-size line: 1 byte, unexpected b'z' at byte 1"),
    anomaly(len(CH_HEAD) + 4, "http1-resync",
            f"skipped 4 bytes from {len(CH_HEAD)} to a response head"),
    resp(len(CH_HEAD) + 4, len(CH_HEAD) + 4 + len(R200_0), 200, b"",
         hdrs((b"Content-Length", b"0"))),
    done(RESP, len(CH_HEAD) + 4 + len(R200_0)),
], side=RESP)
scenario("chunk-without-crlf", [CH_HEAD + b"2\r\nabX" + R200_0], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD) + 5, "http1-bad-chunk", "chunk data not followed by CRLF"),
    anomaly(len(CH_HEAD) + 6, "http1-resync",
            f"skipped 1 bytes from {len(CH_HEAD) + 5} to a response head"),
    resp(len(CH_HEAD) + 6, len(CH_HEAD) + 6 + len(R200_0), 200, b"",
         hdrs((b"Content-Length", b"0"))),
    done(RESP, len(CH_HEAD) + 6 + len(R200_0)),
], side=RESP)

# framing by Transfer-Encoding that is not chunked
TE_GZIP_REQ = b"POST /z HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"
scenario("request-te-not-chunked", [TE_GZIP_REQ + NEXT], [
    anomaly(0, "http1-bad-transfer-encoding",
            "request Transfer-Encoding b'gzip' does not end in chunked"),
    req(0, len(TE_GZIP_REQ), b"POST", b"/z", hdrs((b"Transfer-Encoding", b"gzip"))),
    req(len(TE_GZIP_REQ), len(TE_GZIP_REQ) + len(NEXT), b"GET", b"/n"),
    done(REQ, len(TE_GZIP_REQ) + len(NEXT)),
])
TE_GZIP_RESP = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
scenario("response-te-not-chunked", [TE_GZIP_RESP + b"\x1f\x8b..."], [
    resp(0, len(TE_GZIP_RESP), 200, b"OK", hdrs((b"Transfer-Encoding", b"gzip"))),
    done(RESP, len(TE_GZIP_RESP) + 5, 5),
], side=RESP)

# an empty queue of expected methods (capture started mid-connection): not HEAD
scenario("no-expectation", [R_GET], [
    resp(0, len(R_GET) - 2, 200, b"OK", hdrs((b"Content-Length", b"2"))),
    done(RESP, len(R_GET), 2),
], side=RESP)

# 103 Early Hints carries fields of its own; the expected method waits for the final response
R103 = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
scenario("103-then-head-response", [R103 + R_HEAD + R_GET], [
    resp(0, len(R103), 103, b"Early Hints", hdrs((b"Link", b"</s.css>; rel=preload"))),
    done(RESP, len(R103)),
    resp(len(R103), len(R103) + len(R_HEAD), 200, b"OK", hdrs((b"Content-Length", b"1234"))),
    done(RESP, len(R103) + len(R_HEAD)),
    resp(len(R103) + len(R_HEAD), len(R103) + len(R_HEAD) + len(R_GET) - 2, 200, b"OK",
         hdrs((b"Content-Length", b"2"))),
    done(RESP, len(R103) + len(R_HEAD) + len(R_GET), 2),
], side=RESP, expect=(b"HEAD", b"GET"))

# a 101 names its protocol in Upgrade even without Connection: upgrade
R101_WS = b"HTTP/1.1 101 \r\nUpgrade: websocket\r\n\r\n"
scenario("upgrade-websocket-response", [R101_WS + b"\x81\x05hello"], [
    resp(0, len(R101_WS), 101, b"", hdrs((b"Upgrade", b"websocket"))),
    done(RESP, len(R101_WS)),
    Upgraded(len(R101_WS), b"websocket"),
], side=RESP)

# an Upgrade field without Connection: upgrade offers nothing: parsing goes on
NO_OFFER = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"
scenario("upgrade-not-offered", [NO_OFFER + b"garbage"], [
    req(0, len(NO_OFFER), b"GET", b"/", hdrs((b"Upgrade", b"h2c"))),
    done(REQ, len(NO_OFFER)),
    anomaly(len(NO_OFFER), "http1-bad-head", "not a request line: 1 byte, unexpected b'g' at byte 1"),
    anomaly(len(NO_OFFER) + 7, "http1-resync",
            f"skipped 7 bytes from {len(NO_OFFER)}: no head before the end"),
])

# a gap right after an upgrade request: held until the switch
scenario("gap-after-upgrade-request", [UPG_REQ, Gap(30), H2_BYTES, SWITCH], [
    req(0, len(UPG_REQ), b"GET", b"/", hdrs(
        (b"Host", b"h"), (b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c"),
        (b"HTTP2-Settings", b"AAMAAABkAARAAAAAAAIAAAAA"))),
    done(REQ, len(UPG_REQ)),
    Upgraded(len(UPG_REQ), b"h2c"),
])

# gaps while already looking for a head add to what was missing, not to what was skipped
scenario("gap-while-resyncing", [b"xyz", Gap(10), b"abc\r\n", Gap(5), b"\r\n" + NEXT], [
    anomaly(3, "http1-gap", "10 bytes missing while looking for a message head; lost step"),
    anomaly(18, "http1-gap", "5 bytes missing while looking for a message head; lost step"),
    anomaly(25, "http1-resync",
            "skipped 10 bytes from 0 to a request head (15 more were missing)"),
    req(25, 25 + len(NEXT), b"GET", b"/n"),
    done(REQ, 25 + len(NEXT)),
], synced=False)

# trailers: bad, and folded
scenario("bad-trailers", [CH_HEAD + b"0\r\nno colon\r\n\r\n" + R200_0], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD) + 3, "http1-bad-chunk",
            "bad trailer section: not a field line: 8 bytes without a colon"),
    anomaly(len(CH_HEAD) + 15, "http1-resync",
            f"skipped 12 bytes from {len(CH_HEAD) + 3} to a response head"),
    resp(len(CH_HEAD) + 15, len(CH_HEAD) + 15 + len(R200_0), 200, b"",
         hdrs((b"Content-Length", b"0"))),
    done(RESP, len(CH_HEAD) + 15 + len(R200_0)),
], side=RESP)
FOLDED_TRAILER = b"0\r\nX-T: a\r\n b\r\n\r\n"
scenario("folded-trailer", [CH_HEAD + FOLDED_TRAILER], [
    resp(0, len(CH_HEAD), 200, b"OK",
         hdrs((b"Transfer-Encoding", b"chunked"), (b"Content-Type", b"text/plain"))),
    anomaly(len(CH_HEAD) + 3, "http1-obs-fold", "field X-T continued on a folded line (joined)"),
    done(RESP, len(CH_HEAD) + len(FOLDED_TRAILER), 0, hdrs((b"X-T", b"a b"))),
], side=RESP)

# a lone CR or LF inside a head is not tolerated
scenario("bare-lf-in-head", [b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n"], [
    anomaly(0, "http1-bad-head", "bad field section: a lone CR or LF"),
    anomaly(29, "http1-resync", "skipped 29 bytes from 0: no head before the end"),
])

# a head larger than the buffer's append slice, followed by a body in the same feed
LONG_VALUE = b"v" * 40_000
LONG_HEAD = b"POST /l HTTP/1.1\r\nX-Long: " + LONG_VALUE + b"\r\nContent-Length: 20000\r\n\r\n"
scenario("long-head-then-body", [LONG_HEAD + b"b" * 20_000 + NEXT], [
    req(0, len(LONG_HEAD), b"POST", b"/l",
        hdrs((b"X-Long", LONG_VALUE), (b"Content-Length", b"20000"))),
    done(REQ, len(LONG_HEAD) + 20_000, 20_000),
    req(len(LONG_HEAD) + 20_000, len(LONG_HEAD) + 20_000 + len(NEXT), b"GET", b"/n"),
    done(REQ, len(LONG_HEAD) + 20_000 + len(NEXT)),
])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_every_way(name: str) -> None:
    sc = SCENARIOS[name]
    got = every_way(sc.ops, sc.side, synced=sc.synced, max_head=sc.max_head, expect=sc.expect)
    assert got == list(sc.expected)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_scenario_arbitrary_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(SCENARIOS)))
    sc = SCENARIOS[name]

    def cut(piece: bytes) -> list[bytes]:
        if len(piece) < 2:
            return [piece]
        points = sorted(data.draw(st.sets(st.integers(1, len(piece) - 1), max_size=12)))
        return [piece[a:b] for a, b in zip([0, *points], [*points, len(piece)], strict=True)]

    got = parse(sc.ops, sc.side, cut=cut, synced=sc.synced, max_head=sc.max_head,
                expect=sc.expect)
    assert got == list(sc.expected)


# -- arbitrary input ------------------------------------------------------------------------

PIECES = [
    b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 101 S\r\n", b"HTTP/1.1 100 C\r\n",
    b"Content-Length: 3\r\n", b"Content-Length: x\r\n", b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n", b"Upgrade: h2c\r\nConnection: upgrade\r\n", b"\r\n", b"\r\n\r\n",
    b"3\r\nabc\r\n", b"0\r\n\r\n", b" folded\r\n", b"HEAD /h HTTP/1.0\r\n", b"X-A: b\r\n",
    b"\n", b"\r", b" ", b"a", b"\x00\xff", b"POST /p HTTP/1.1\r\n", b"CONNECT h:1 HTTP/1.1\r\n",
]
streams = st.lists(
    st.one_of(
        st.sampled_from(PIECES),
        st.binary(max_size=12),
        st.integers(1, 40).map(Gap),
    ),
    max_size=25,
)


def join_ops(ops: list[bytes | Gap]) -> list[Op]:
    """Adjacent byte pieces merged, so that splitting them is the feeding's business."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, bytes) and out and isinstance(out[-1], bytes):
            out[-1] = out[-1] + op
        else:
            out.append(op)
    return out


@settings(max_examples=400, deadline=None)
@given(ops=streams, side=st.sampled_from([REQ, RESP]), synced=st.booleans(),
       max_head=st.sampled_from([64, 100, 64 * 1024]), seed=st.integers(0, 2**32))
def test_arbitrary_streams_never_raise_and_agree(ops: list[bytes | Gap], side: Side,
                                                 synced: bool, max_head: int, seed: int) -> None:
    merged = join_ops(ops)
    expect = (b"HEAD", b"GET", b"CONNECT") if side is RESP else ()
    kw = {"synced": synced, "max_head": max_head, "expect": expect}
    expected = parse(merged, side, **kw)  # type: ignore[arg-type]
    assert parse(merged, side, cut=bytewise, **kw) == expected  # type: ignore[arg-type]
    got = parse(merged, side, cut=random_cuts(seed), wrap="memoryview", **kw)  # type: ignore[arg-type]
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([REQ, RESP]), st.booleans())
def test_random_bytes_never_raise(data: bytes, side: Side, synced: bool) -> None:
    events = parse([data], side, synced=synced, max_head=64)
    assert parse([data], side, cut=bytewise, synced=synced, max_head=64) == events
    total = len(data)
    assert all(position(ev) <= total for ev in events)


# -- the API around the events ----------------------------------------------------------------


def test_offset_and_buffer_follow_the_stream() -> None:
    p = HTTP1Parser(REQ)
    assert p.feed(P1[:10]) == []
    assert (p.offset, p.buffered) == (0, 10)
    assert p.feed(P1[10:]) == [req(0, len(P1), b"GET", b"/a", hdrs((b"Host", b"h"))),
                               done(REQ, len(P1))]
    assert (p.offset, p.buffered) == (len(P1), 0)
    assert p.gap(3) == [anomaly(len(P1), "http1-gap",
                                "3 bytes missing before or inside a message head; lost step")]
    assert p.offset == len(P1) + 3


def test_body_bytes_are_counted_not_buffered() -> None:
    body = b"x" * 1_000_000
    head = b"POST /big HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n"
    p = HTTP1Parser(REQ)
    events = p.feed(memoryview(head[:-1]))
    assert events == [] and p.buffered == len(head) - 1
    events = p.feed(memoryview(head[-1:] + body[:500_000]))
    assert events == [req(0, len(head), b"POST", b"/big", hdrs((b"Content-Length", b"1000000")))]
    assert p.buffered == 0
    assert p.feed(memoryview(body[500_000:])) == [done(REQ, len(head) + len(body), len(body))]
    assert (p.buffered, p.offset) == (0, len(head) + len(body))


def test_upgraded_parser_consumes_nothing_more() -> None:
    p = HTTP1Parser(RESP)
    assert p.upgraded is False
    events = p.feed(R101 + b"\x00\x00\x12\x04")
    assert events[-1] == Upgraded(len(R101), b"h2c")
    assert p.upgraded is True
    assert p.feed(b"HTTP/1.1 200 OK\r\n\r\n") == []
    assert p.gap(10) == []
    assert p.offset == len(R101) + 4 + 19 + 10
    assert p.eof() == []


def test_switch_protocols_without_an_upgrade_request() -> None:
    p = HTTP1Parser(REQ)
    p.feed(P1)
    assert p.switch_protocols() == [
        anomaly(len(P1), "http1-unexpected-upgrade",
                "the peer switched protocols, but no upgrade request was pending here"),
        Upgraded(len(P1), b""),
    ]
    assert p.upgraded and p.feed(b"anything") == []


def test_side_specific_calls_are_checked() -> None:
    with pytest.raises(ValueError, match="response side"):
        HTTP1Parser(REQ).expect_response_to(b"GET")
    with pytest.raises(ValueError, match="request side"):
        HTTP1Parser(RESP).switch_protocols()
    upgraded = HTTP1Parser(RESP)
    assert upgraded.feed(R101)[-1] == Upgraded(len(R101), b"h2c")
    assert upgraded.switch_protocols() == []


def test_skip_moves_the_start_of_a_fresh_parser() -> None:
    p = HTTP1Parser(RESP, synced=False)
    p.skip(1000)
    assert p.offset == 1000
    assert p.feed(b"xx" + R200_0) == [
        anomaly(1002, "http1-resync", "skipped 2 bytes from 1000 to a response head"),
        resp(1002, 1002 + len(R200_0), 200, b"", hdrs((b"Content-Length", b"0"))),
        done(RESP, 1002 + len(R200_0)),
    ]


def test_skip_inside_a_body_is_silent() -> None:
    p = HTTP1Parser(REQ)
    p.feed(GAP_HEAD)
    p.skip(10)
    assert p.feed(NEXT) == [req(_g + 10, _g + 10 + len(NEXT), b"GET", b"/n"),
                            done(REQ, _g + 10 + len(NEXT))]


def test_eof_is_final() -> None:
    p = HTTP1Parser(REQ)
    assert p.eof() == []
    assert p.feed(GET) == []
    assert p.eof() == []
    assert p.offset == len(GET)


def test_max_head_bounds_the_buffer_while_resyncing() -> None:
    p = HTTP1Parser(REQ, synced=False, max_head=1024)
    for _ in range(200):
        assert p.feed(b"x" * 997 + b"\r\n") == []
        assert p.buffered <= 1024 + 32
    assert p.feed(NEXT) == [
        anomaly(200 * 999, "http1-resync", f"skipped {200 * 999} bytes from 0 to a request head"),
        req(200 * 999, 200 * 999 + len(NEXT), b"GET", b"/n"),
        done(REQ, 200 * 999 + len(NEXT)),
    ]


# -- detection helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "side"), [
    (b"GET ", REQ),
    (b"GET /index.html HTTP/1.1\r\nHost: x\r\n", REQ),
    (b"M-SEARCH * HTTP/1.1\r\n", REQ),
    (b"HTTP/1.", RESP),
    (b"HTTP/1.1 200 OK\r\n", RESP),
    (b"GET", None),
    (b"get / HTTP/1.1\r\n", None),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", None),
    (b"GET / HTTP/2\r\n", None),
    (b"HTTP/2 200\r\n", None),
    (b"HTTP/1.1 OK\r\n", None),
    (TLS, None),
    (b"", None),
])
def test_looks_like_http1(data: bytes, side: Side | None) -> None:
    assert looks_like_http1(data) is side
    assert looks_like_http1(memoryview(data)) is side


@pytest.mark.parametrize(("data", "side", "index"), [
    (b"GET / HTTP/1.1\r\n", REQ, 0),
    (b"xx\r\nGET / HTTP/1.1\r\n", REQ, 4),
    (b'{"a":1}POST /p HTTP/1.1\r\n', REQ, 7),
    (b"GET / HTTP/1.1", REQ, -1),
    (b"abc HTTP/1.1 not", REQ, -1),
    (b"body...HTTP/1.1 404 Not Found\r\n", RESP, 7),
    (b"HTTP/1.1 404", RESP, -1),
    (b"nothing here", RESP, -1),
])
def test_find_head_start(data: bytes, side: Side, index: int) -> None:
    assert find_head_start(data, side) == index


# -- status codes and the field cache: bounds on hostile input ------------------------------


def test_status_that_is_not_three_digits_is_kept_without_a_status() -> None:
    """int() refuses more than 4300 digits, and any other count would be a guess: an
    anomaly, the response kept with status None and framed by its headers, the next fine."""
    for digits in (b"9" * 5000, b"2000", b"20"):
        head = b"HTTP/1.1 " + digits + b" OK\r\nContent-Length: 2\r\n\r\nhi"
        events = every_way([head + R200_0], RESP)
        shown = digits[:8].decode() + ("..." if len(digits) > 8 else "")
        n = len(head)
        assert events == [
            anomaly(0, "http1-bad-status", f"a status code of {len(digits)} digits ({shown}); "
                    "the response is kept without a status"),
            MessageHead(RESP, 0, n - 2, b"HTTP/1.1", None, None, None, b"OK",
                        hdrs((b"Content-Length", b"2"))),
            done(RESP, n, 2),
            resp(n, n + len(R200_0), 200, b"", hdrs((b"Content-Length", b"0"))),
            done(RESP, n + len(R200_0)),
        ]
    # a status that is not digits at all is no status line
    events = parse([b"HTTP/1.1 2x0 OK\r\n\r\n" + R200_0], RESP)
    assert [e.kind for e in events if isinstance(e, ParseAnomaly)][:1] == ["http1-bad-head"]


def test_field_cache_is_bounded_in_entries_and_bytes() -> None:
    from analyzer.protocols import _http1_syntax as syn

    syn._FIELD_CACHE.clear()
    lines = [b"X-Long-%d: %s" % (k, b"v" * 300) for k in range(50)]
    many = [b"X-%d: %d" % (k, k) for k in range(2 * syn._FIELD_CACHE_MAX)]
    for fields in (lines, many, lines[:3] + many[:10]):
        block = b"HTTP/1.1 200 OK\r\n" + b"\r\n".join(fields)
        _, headers, _, error = syn.parse_block(block, True)
        assert error is None
        assert [(h.name, h.value) for h in headers] == [tuple(f.split(b": ", 1)) for f in fields]
        assert len(syn._FIELD_CACHE) <= syn._FIELD_CACHE_MAX
        assert max(map(len, syn._FIELD_CACHE), default=0) <= syn._FIELD_CACHE_LINE_MAX
    # short lines seen before are served from the cache: the same objects
    _, again, _, _ = syn.parse_block(b"HTTP/1.1 200 OK\r\n" + many[0], True)
    _, twice, _, _ = syn.parse_block(b"HTTP/1.1 200 OK\r\n" + many[0], True)
    assert again[0] is twice[0]


_LINE_POOL = [
    b"Host: svc:9080", b"content-length: 12", b"X-Request-Id:  abc ", b"x-b3-sampled:\t1",
    b"Accept: */*", b"server: envoy", b"empty:", b"Spaced : no", b"a: b\rc", b"a: b\nc",
    b" folded", b"\tfolded", b"", b"no colon", b":no name", b"b@d: name", b"dup: 1", b"dup: 1",
    b"Trailing: x \t", b"Lead:\t\tx", b"x: \x80\xff",
]


@settings(max_examples=300, deadline=None)
@given(
    first=st.sampled_from([b"GET / HTTP/1.1", b"HTTP/1.1 200 OK", b"GET /\r HTTP/1.1", b"G\nT"]),
    lines=st.lists(st.one_of(st.sampled_from(_LINE_POOL),
                             st.binary(max_size=12).map(lambda b: b"x-id: " + b)), max_size=8),
    start=st.booleans(),
    known=st.booleans(),
)
def test_parse_block_matches_the_general_path(first: bytes, lines: list[bytes], start: bool,
                                              known: bool) -> None:
    """The cached path of parse_block gives what the general path gives, cold or warm, with
    the start line known clean or not (only a line without CR or LF may be known)."""
    from analyzer.protocols import _http1_syntax as syn

    block = b"\r\n".join([first, *lines] if start else lines)
    if not start and not block:
        return
    clean = b"\r" not in first and b"\n" not in first
    syn._FIELD_CACHE.clear()
    syn._NAMES.clear()
    cold = syn.parse_block(block, start, {first} if known and clean else ())
    ref = syn._parse_block_general(block, start)
    warm = syn.parse_block(block, start, {first} if known and clean else ())
    assert cold == ref == warm


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=40),
    st.tuples(st.sampled_from([b"GET", b"POST", b"M-_9", b"get", b"A" * 20, b"A" * 21, b"", b"9X"]),
              st.sampled_from([b" ", b"  ", b"\t"]),
              st.binary(max_size=12) | st.sampled_from([b"/", b"/a?b=c", b"\x80\xff", b"/\x7f"]),
              st.sampled_from([b" ", b""]),
              st.sampled_from([b"HTTP/1.1", b"HTTP/1.x", b"HTTP/2.0", b"HTTP/1.12", b"HTTP/1."]))
    .map(b"".join),
))
def test_plain_request_line_is_the_regex(line: bytes) -> None:
    from analyzer.protocols import _http1_syntax as syn

    whole = line + b"\r\n"
    done = syn.check_line(syn.REQUEST_LINE, whole, 0, len(whole), 1 << 16) == (syn.DONE, len(whole))
    assert syn.plain_request_line(line) == done


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=24) | st.tuples(
    st.text("0123456789abcdefABCDEFg", max_size=18).map(str.encode),
    st.sampled_from([b"\r\n", b"\r", b"", b" \r\n", b";x\r\n", b"\n"]),
    st.binary(max_size=3)).map(b"".join), st.integers(0, 3))
def test_plain_chunk_line_agrees_with_the_regex(src: bytes, p: int) -> None:
    from analyzer.protocols import _http1_syntax as syn

    e = syn.plain_chunk_line(src, p)
    verdict = syn.check_line(syn.CHUNK_LINE, src, p, len(src), 4096)
    if e >= 0:
        assert verdict == (syn.DONE, e)
    if verdict[0] == syn.DONE and src[p : verdict[1] - 2].isalnum() and verdict[1] - p <= 18:
        assert e == verdict[1]  # hex digits alone: the shortcut takes it
