#!/usr/bin/env python3
"""Generate a large, deterministic gRPC-over-h2c capture that starts mid-connection, with ground truth.

The capture is what ``tcpdump -i any -U -w`` records inside an Istio pod (ksniff): classic
pcap, LINUX_SLL2 on ``lo``, IPv4 + TCP with timestamps (the packet writer of
``gen_capture.py``). A few long-lived h2c connections carry many gRPC calls each:

* outbound: app ``10.244.1.10:ephemeral`` -> Envoy's outbound listener ``127.0.0.1:15001``
  (a grpc-go and a grpc-java client; responses come from Envoy: ``date``, ``server: envoy``,
  ``x-envoy-upstream-service-time``);
* inbound: Envoy ``127.0.0.6:ephemeral`` -> the app's gRPC server ``10.244.1.10:50051``
  (Envoy's inbound headers; responses and trailers from a grpcio or grpc-go server).

Every header block is encoded with the ``hpack`` package's ``Encoder``, one per direction,
**from the start of each connection** (after the preface and SETTINGS, which leave
SETTINGS_HEADER_TABLE_SIZE at 4096): a warm-up of calls is encoded but not written. The
pcap begins after the warm-up, in the middle of a round of calls (responses whose requests
it does not contain), so the dynamic tables hold entries the capture never shows. The
encoder's indexing policy is that of common encoders (nghttp2's ``should_indexing``, Go's
and Envoy's sensitivity rules): names and repeating values are indexed; high-entropy values
(``x-request-id``, B3 ids, ``traceparent``, ``grpc-timeout``, ``grpc-message``) go as
literals *without indexing* with an indexed name, once their name is in the table;
``authorization`` is never indexed. So the tracing-header names are references to
dynamic-table entries older than the capture, and stay so until churn evicts them (rare new
``:path`` values, Envoy's per-response ``x-envoy-upstream-service-time`` and ``date``).
One connection has no churn at all.

The ground truth (``--truth FILE``, JSON Lines) has one object per header block in the
capture, in capture order after a first line describing the connections::

    {"conn": 1, "stream": 4711, "dir": "c2s", "kind": "request", "frame": 1234,
     "headers": [[":method", "POST"], ...], "known": "111101..."}

``frame`` is the pcap frame (1-based) that carries the block's last byte; ``known`` says per
field whether a decoder that starts with the capture *can* know both its name and value
(``1``) or not (``0``: a reference, or a name reference, to an entry older than the capture,
possibly through an entry inserted during the capture that copied an unknown name).

Usage: ``python bench/gen_h2_capture.py OUT.pcap [--size-mb 100] [--seed 1] [--truth T.jsonl]``
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import hpack
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_capture import (
    ACK,
    APP_IP,
    ENVOY_INBOUND_IP,
    ENVOY_OUTBOUND_IP,
    LOOPBACK_MSS,
    OUTBOUND_PORT,
    PSH,
    SYN,
    TSHARK_CLAIMED_PORTS,
    WORDS,
    Capture,
    Direction,
)

GRPC_PORT = 50051
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS, PING, WINDOW_UPDATE = 0, 1, 4, 6, 8
END_STREAM, END_HEADERS = 0x1, 0x4
MAX_FRAME = 16384
FRAME = struct.Struct(">BHBBL")
WRITE_BUFFER = 32768  # grpc-go's write buffer: a big write leaves in pieces of this size

INDEX_NONE = b"\x00"
INDEX_NEVER = b"\x10"

# Fields whose values rarely repeat: sent as literals without indexing once the name is known.
NO_INDEX = frozenset(
    {b"x-request-id", b"x-b3-traceid", b"x-b3-spanid", b"x-b3-parentspanid", b"traceparent",
     b"grpc-timeout", b"grpc-message", b"x-client-trace-id"}
)
SENSITIVE = frozenset({b"authorization", b"cookie", b"proxy-authorization"})


@dataclass(frozen=True)
class Flavor:
    """One connection's client and server: who talks, and which fields they send."""

    inbound: bool
    authority: str
    user_agent: str
    service: str
    methods: tuple[tuple[str, float, bool], ...]  # (method, weight, server-streaming)
    timeout: str  # "go": remaining µs, "java": remaining ns, "fixed": constant "5S"
    envoy_response: bool  # responses through Envoy (outbound) or straight from the app
    churn: float  # chance per call of a rarely used :path (a new dynamic-table entry)


FLAVORS = (
    Flavor(False, "ratings.bookinfo.svc.cluster.local:9090", "grpc-go/1.62.1", "bookinfo.ratings.v1.Ratings",
           (("GetRating", 0.7, False), ("ListRatings", 0.1, True), ("UpdateRating", 0.2, False)),
           "go", True, 1 / 400),
    Flavor(True, "productpage.bookinfo.svc.cluster.local:50051",
           "grpc-python/1.62.1 grpc-c/39.0.0 (linux; chttp2)", "bookinfo.productpage.v1.ProductPage",
           (("GetProduct", 0.8, False), ("WatchProducts", 0.05, True), ("Search", 0.15, False)),
           "fixed", False, 0.0),
    Flavor(False, "reviews.bookinfo.svc.cluster.local:9090", "grpc-java-netty/1.62.2",
           "bookinfo.reviews.v1.Reviews",
           (("GetReviews", 0.6, False), ("StreamReviews", 0.1, True), ("PostReview", 0.3, False)),
           "java", True, 1 / 200),
    Flavor(True, "productpage.bookinfo.svc.cluster.local:50051", "grpc-go/1.62.1",
           "bookinfo.productpage.v1.ProductPage",
           (("GetProduct", 0.9, False), ("WatchProducts", 0.1, True)),
           "go", False, 1 / 20000),
)
GRPC_ERRORS = (
    (5, "product not found"),
    (14, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
    (4, "Deadline Exceeded"),
    (3, "invalid rating: stars must be between 1 and 5"),
)
XFCC_SUBJECTS = ("bookinfo-productpage", "istio-ingressgateway-service-account", "frontend")


class FastHuffman:
    """HPACK Huffman coding (RFC 7541 Appendix B) two bytes at a time.

    Same output as ``hpack``'s own ``HuffmanEncoder``, several times faster: the generator
    Huffman-codes every literal value and most of them are fresh ids.
    """

    def __init__(self) -> None:
        codes, lengths = REQUEST_CODES, REQUEST_CODES_LENGTH
        self.single = [(codes[b], lengths[b]) for b in range(256)]
        self.pair = [((codes[a] << lengths[b]) | codes[b], lengths[a] + lengths[b])
                     for a in range(256) for b in range(256)]

    def encode(self, data: bytes) -> bytes:
        if not data:
            return b""
        acc = nbits = 0
        pair = self.pair
        n = len(data)
        for i in range(0, n - 1, 2):
            code, length = pair[(data[i] << 8) | data[i + 1]]
            acc = (acc << length) | code
            nbits += length
        if n & 1:
            code, length = self.single[data[-1]]
            acc = (acc << length) | code
            nbits += length
        pad = -nbits % 8
        acc = (acc << pad) | ((1 << pad) - 1)
        return acc.to_bytes((nbits + pad) // 8, "big")


HUFFMAN = FastHuffman()


class MeshEncoder(hpack.Encoder):
    """``hpack.Encoder`` with a common encoder's indexing policy, and knowledge tracking.

    The policy: a field in ``NO_INDEX`` whose name is already in a table is sent as a literal
    without indexing (representation 0000xxxx), so it does not enter the dynamic table; a
    field in ``SENSITIVE`` is never indexed (0001xxxx); everything else as ``hpack`` does it
    (indexed when the pair is in a table, else a literal with incremental indexing).

    Beside the dynamic table it keeps, per entry, whether a decoder that started at the
    capture can know the entry's name and value (``mark_capture_start`` makes every entry
    present unknown). ``last_known`` says it per field of the last ``encode``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.huffman_coder = HUFFMAN  # type: ignore[assignment]
        self.entry_known: deque[tuple[bool, bool]] = deque()
        self.last_known: list[bool] = []

    def mark_capture_start(self) -> None:
        self.entry_known = deque((False, False) for _ in self.entry_known)

    def encode_block(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        self.last_known = []
        return self.encode(headers, huffman=True)

    _indexed: dict[int, bytes] = {}  # noqa: RUF012 (a cache shared by all encoders)

    def _encode_indexed(self, index: int) -> bytes:
        encoded = self._indexed.get(index)
        if encoded is None:
            encoded = self._indexed[index] = super()._encode_indexed(index)
        return encoded

    def _ref_known(self, index: int) -> tuple[bool, bool]:
        if index <= 61:  # the static table
            return True, True
        return self.entry_known[index - 62]

    def _insert(self, name: bytes, value: bytes, known: tuple[bool, bool]) -> None:
        self.header_table.add(name, value)
        self.entry_known.appendleft(known)
        while len(self.entry_known) > len(self.header_table.dynamic_entries):
            self.entry_known.pop()

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        name, value = to_add
        sensitive = sensitive or name in SENSITIVE
        match = self.header_table.search(name, value)
        if match is None:  # literal, new name
            if sensitive:
                encoded = self._encode_literal(name, value, INDEX_NEVER, huffman)
            else:  # also for a NO_INDEX field: its first occurrence brings the name in
                encoded = self._encode_literal(name, value, hpack.hpack.INDEX_INCREMENTAL, huffman)
                self._insert(name, value, (True, True))
            self.last_known.append(True)
            return encoded
        index, _, perfect = match
        name_known, value_known = self._ref_known(index)
        if perfect is not None:
            self.last_known.append(name_known and value_known)
            return self._encode_indexed(index)
        self.last_known.append(name_known)
        if sensitive:
            return self._encode_indexed_literal(index, value, INDEX_NEVER, huffman)
        if name in NO_INDEX:
            return self._encode_indexed_literal(index, value, INDEX_NONE, huffman)
        encoded = self._encode_indexed_literal(index, value, hpack.hpack.INDEX_INCREMENTAL, huffman)
        self._insert(name, value, (name_known, True))
        return encoded


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def _pb_field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def protobuf(rng: random.Random, size: int) -> bytes:
    """A valid protobuf message of about ``size`` bytes: ids, names, ratings, nested reviews.

    Valid wire format, so that tshark's protobuf dissector (behind its gRPC one) parses it
    without a schema instead of raising exceptions that cut a packet's dissection short.
    """
    out = [_pb_field(1, rng.randrange(1, 10_000))]
    n = len(out[0])
    while n < size:
        r = rng.random()
        if r < 0.3:
            f = _pb_field(3, rng.randrange(1, 6))
        elif r < 0.6:
            f = _pb_field(2, rng.choice(WORDS[:3]).encode()[: max(1, size - n - 2)])
        else:
            review = _pb_field(1, f"Reviewer{rng.randrange(1, 500)}".encode())
            review += _pb_field(2, rng.randrange(1, 6))
            if size - n > 120:
                review += _pb_field(3, rng.choice(WORDS).encode())
            f = _pb_field(4, review)
        out.append(f)
        n += len(f)
    return b"".join(out)


def frame(ftype: int, flags: int, stream: int, payload: bytes) -> bytes:
    n = len(payload)
    return FRAME.pack(n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


@dataclass
class Stats:
    calls: int = 0
    streaming_calls: int = 0
    error_calls: int = 0
    trailers_only: int = 0
    authorization: int = 0
    request_blocks: int = 0
    response_blocks: int = 0
    trailer_blocks: int = 0
    header_fields: int = 0
    unknowable_fields: int = 0
    packets: int = 0
    bytes: int = 0
    connections: int = 0
    warmup_calls: int = 0
    in_flight_at_start: int = 0
    connection_info: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Call:
    stream: int
    path: str
    streaming: bool
    request: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Block:
    """A header block waiting for the packet that carries its last byte."""

    end: int  # offset in the direction's byte stream, after the block
    record: dict[str, Any] | None


class H2Conn:
    """One h2c connection: its TCP directions, an HPACK encoder per direction, its calls."""

    def __init__(self, gen: Generator, number: int, flavor: Flavor) -> None:
        self.gen = gen
        self.rng = random.Random(gen.rng.getrandbits(64))
        self.number = number
        self.flavor = flavor
        rng = self.rng
        port = gen.port()
        if flavor.inbound:
            client_ip, server_ip, server_port = ENVOY_INBOUND_IP, APP_IP, GRPC_PORT
        else:
            client_ip, server_ip, server_port = APP_IP, ENVOY_OUTBOUND_IP, OUTBOUND_PORT
        self.c = Direction(client_ip, server_ip, port, server_port, rng.getrandbits(32),
                           rng.getrandbits(32), rng.getrandbits(16))
        self.s = Direction(server_ip, client_ip, server_port, port, rng.getrandbits(32),
                           rng.getrandbits(32), rng.getrandbits(16))
        self.c.peer, self.s.peer = self.s, self.c
        self.enc = {"c2s": MeshEncoder(), "s2c": MeshEncoder()}
        self.offset = {"c2s": 0, "s2c": 0}  # bytes written so far in each direction
        self.writing = {"c2s": False, "s2c": False}
        self.acked: dict[str, int | None] = {"c2s": None, "s2c": None}  # peer seq last acknowledged
        self.next_stream = 1
        self.received = {"c2s": 0, "s2c": 0}  # DATA bytes since the last WINDOW_UPDATE
        self.ping_due = False
        self.rare_paths = [f"/{flavor.service}/Admin{i:03d}" for i in range(400)]
        rng.shuffle(self.rare_paths)
        self.xfcc = [
            f"By=spiffe://cluster.local/ns/bookinfo/sa/productpage;Hash={rng.getrandbits(256):064x};"
            f'Subject="";URI=spiffe://cluster.local/ns/bookinfo/sa/{s}'
            for s in XFCC_SUBJECTS
        ]
        self.bodies = [protobuf(rng, int(math.exp(rng.uniform(math.log(3), math.log(200)))))
                       for _ in range(64)]
        self.big_bodies = [protobuf(rng, rng.randrange(20_000, 90_000)) for _ in range(4)]
        tsval = (gen.cap.now_us // 1000) & 0xFFFFFFFF
        self.c.last_tsval = (tsval + self.c.ts_offset) & 0xFFFFFFFF
        self.s.last_tsval = (tsval + self.s.ts_offset) & 0xFFFFFFFF
        gen.stats.connections += 1
        c, s = (self.c, self.s)
        gen.stats.connection_info.append({
            "conn": number,
            "client": f"{'.'.join(map(str, c.src))}:{c.sport}",
            "server": f"{'.'.join(map(str, s.src))}:{s.sport}",
            "authority": flavor.authority,
            "inbound": flavor.inbound,
        })  # fmt: skip

    # -- header lists ---------------------------------------------------------------
    def _hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def request_headers(self, path: str) -> list[tuple[bytes, bytes]]:
        rng, fl = self.rng, self.flavor
        if fl.timeout == "go":
            timeout = f"{rng.randrange(900_000, 5_000_000)}u"
        elif fl.timeout == "java":
            timeout = f"{rng.randrange(900, 5_000)}m"
        else:
            timeout = "5S"
        rid = self._hex(128)
        rid = f"{rid[:8]}-{rid[8:12]}-9{rid[13:16]}-{rid[16:20]}-{rid[20:]}"
        trace, span, parent = self._hex(128), self._hex(64), self._hex(64)
        sampled = "1" if rng.random() < 0.95 else "0"
        h = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", fl.authority),
            ("content-type", "application/grpc"),
            ("user-agent", fl.user_agent),
            ("te", "trailers"),
            ("grpc-timeout", timeout),
        ]
        if fl.inbound:
            h += [
                ("x-forwarded-proto", "http"),
                ("x-request-id", rid),
                ("x-envoy-attempt-count", "1"),
                ("x-forwarded-client-cert", rng.choice(self.xfcc)),
            ]
        else:
            h.append(("x-request-id", rid))
        h += [("x-b3-traceid", trace), ("x-b3-spanid", span)]
        if rng.random() < 0.8:  # not on a root span
            h.append(("x-b3-parentspanid", parent))
        h += [("x-b3-sampled", sampled), ("traceparent", f"00-{trace}-{span}-0{sampled}")]
        if rng.random() < 0.03:
            h.append(("authorization", f"Bearer eyJhbGciOiJSUzI1NiJ9.{self._hex(256)}.{self._hex(128)}"))
            self.gen.stats.authorization += 1
        return [(n.encode(), v.encode()) for n, v in h]

    def response_headers(self, trailers_only: tuple[int, str] | None) -> list[tuple[bytes, bytes]]:
        h = [(":status", "200"), ("content-type", "application/grpc")]
        if self.flavor.envoy_response:
            h += [
                ("date", self.gen.date()),
                ("server", "envoy"),
                ("x-envoy-upstream-service-time", str(self.rng.randrange(1, 60))),
            ]
        else:
            h.append(("grpc-accept-encoding", "identity, deflate, gzip"))
        if trailers_only:
            h += [("grpc-status", str(trailers_only[0])), ("grpc-message", trailers_only[1])]
        return [(n.encode(), v.encode()) for n, v in h]

    @staticmethod
    def trailers(status: int, message: str) -> list[tuple[bytes, bytes]]:
        return [(b"grpc-status", str(status).encode()), (b"grpc-message", message.encode())]

    # -- writing --------------------------------------------------------------------
    def block(self, direction: str, stream: int, kind: str, headers: list[tuple[bytes, bytes]],
              flags: int) -> tuple[bytes, dict[str, Any] | None]:
        """A HEADERS frame for ``headers`` and, when it will be written, its truth record."""
        enc = self.enc[direction]
        payload = enc.encode_block(headers)
        data = frame(HEADERS, flags | END_HEADERS, stream, payload)
        if not self.writing[direction]:
            return data, None
        stats = self.gen.stats
        stats.header_fields += len(headers)
        known = "".join("1" if k else "0" for k in enc.last_known)
        stats.unknowable_fields += known.count("0")
        record = {"conn": self.number, "stream": stream, "dir": direction, "kind": kind, "frame": 0,
                  "headers": [[n.decode(), v.decode()] for n, v in headers], "known": known}
        return data, record

    def data_frames(self, direction: str, stream: int, message: bytes, end: bool) -> bytes:
        """A length-prefixed gRPC message in DATA frames of at most 16 KiB."""
        msg = b"\x00" + len(message).to_bytes(4, "big") + message
        self.received[direction] += len(msg)
        out = []
        for i in range(0, len(msg), MAX_FRAME):
            last = i + MAX_FRAME >= len(msg)
            out.append(frame(DATA, END_STREAM if end and last else 0, stream, msg[i : i + MAX_FRAME]))
        return b"".join(out)

    def write(self, direction: str, pieces: list[tuple[bytes, dict[str, Any] | None]]) -> Iterator[None]:
        """Send ``pieces`` (frames with their truth records) as one application write."""
        if not self.writing[direction]:
            return
        data = b"".join(p for p, _ in pieces)
        blocks: list[Block] = []
        pos = self.offset[direction]
        for p, rec in pieces:
            pos += len(p)
            if rec is not None:
                blocks.append(Block(pos, rec))
        d = self.c if direction == "c2s" else self.s
        assert d.peer is not None
        self.acked[direction] = d.peer.seq
        cut = WRITE_BUFFER if len(data) > LOOPBACK_MSS else LOOPBACK_MSS
        start = self.offset[direction]
        for i in range(0, len(data), cut):
            seg = data[i : i + cut]
            last = i + cut >= len(data)
            self.gen.cap.send(d, ACK | PSH if last else ACK, seg)
            frame_no = self.gen.cap.stats.packets
            seg_end = start + i + len(seg)
            while blocks and blocks[0].end <= seg_end:
                rec = blocks.pop(0).record
                assert rec is not None
                rec["frame"] = frame_no
                self.gen.emit(rec)
            yield
        self.offset[direction] += len(data)

    def ack(self, direction: str) -> Iterator[None]:
        """A pure ACK, unless there is nothing new to acknowledge (no duplicate ACKs)."""
        d = self.c if direction == "c2s" else self.s
        assert d.peer is not None
        if self.writing[direction] and self.acked[direction] != d.peer.seq:
            self.acked[direction] = d.peer.seq
            self.gen.cap.send(d, ACK)
            yield

    def control(self, direction: str) -> list[tuple[bytes, dict[str, Any] | None]]:
        """WINDOW_UPDATE for the DATA received from the peer, and BDP PINGs."""
        out: list[tuple[bytes, dict[str, Any] | None]] = []
        peer = "s2c" if direction == "c2s" else "c2s"
        if self.received[peer] >= 65535:
            out.append((frame(WINDOW_UPDATE, 0, 0, self.received[peer].to_bytes(4, "big")), None))
            self.received[peer] = 0
        if direction == "c2s" and self.rng.random() < 0.01:
            out.append((frame(PING, 0, 0, self.rng.randbytes(8)), None))
            self.ping_due = True
        elif direction == "s2c" and self.ping_due:
            out.append((frame(PING, 1, 0, self.rng.randbytes(8)), None))
            self.ping_due = False
        return out

    # -- calls ----------------------------------------------------------------------
    def new_call(self) -> Call:
        rng, fl = self.rng, self.flavor
        if fl.churn and rng.random() < fl.churn and self.rare_paths:
            method, streaming = self.rare_paths.pop(), False
            path = method
        else:
            r = rng.random()
            name, streaming = fl.methods[-1][0], fl.methods[-1][2]
            for name, weight, streaming in fl.methods:  # noqa: B007 (the one picked is kept)
                r -= weight
                if r < 0:
                    break
            path = f"/{fl.service}/{name}"
        stream = self.next_stream
        self.next_stream += 2
        body = rng.choice(self.bodies)
        return Call(stream, path, streaming, self.request_headers(path), body)

    def round(self) -> Iterator[None]:
        """A few concurrent calls: their requests, then their responses, interleaved.

        A header block is HPACK-encoded when it is put into a write, so the encoder sees the
        blocks in wire order, as the peer's decoder will.
        """
        rng, stats = self.rng, self.gen.stats
        k = min(1 + int(rng.expovariate(0.25)), 24)
        calls = [self.new_call() for _ in range(k)]
        if self.writing["c2s"]:
            stats.calls += k
        elif self.writing["s2c"]:
            stats.in_flight_at_start += k
        else:
            stats.warmup_calls += k
        # requests: HEADERS + DATA(END_STREAM) per call; calls grouped into writes
        pieces = self.control("c2s")
        for call in calls:
            pieces.append(self.block("c2s", call.stream, "request", call.request, 0))
            pieces.append((self.data_frames("c2s", call.stream, call.body, True), None))
            if rng.random() < 0.25:
                yield from self.write("c2s", pieces)
                pieces = []
        if pieces:
            yield from self.write("c2s", pieces)
        if rng.random() < 0.1:
            yield from self.ack("s2c")
        # responses: per call a queue of (kind, headers, flags) or (None, message, end)
        counting = self.writing["c2s"]
        queues: list[tuple[int, deque[tuple[str | None, Any, int]]]] = []
        for call in calls:
            q: deque[tuple[str | None, Any, int]] = deque()
            r = rng.random()
            if r < 0.01:  # trailers-only: an error before any message
                q.append(("response", self.response_headers(rng.choice(GRPC_ERRORS)), END_STREAM))
                stats.trailers_only += counting
                stats.error_calls += counting
            else:
                q.append(("response", self.response_headers(None), 0))
                status, message = 0, ""
                if r < 0.03:
                    status, message = rng.choice(GRPC_ERRORS)
                    stats.error_calls += counting
                else:
                    n = rng.randrange(2, 12) if call.streaming else 1
                    stats.streaming_calls += counting and call.streaming
                    for _ in range(n):
                        big = rng.random() < 0.0005
                        q.append((None, rng.choice(self.big_bodies if big else self.bodies), 0))
                q.append(("trailers", self.trailers(status, message), END_STREAM))
            queues.append((call.stream, q))
        pieces = self.control("s2c")
        while queues:
            i = rng.randrange(len(queues)) if rng.random() < 0.3 else 0
            stream, q = queues[i]
            kind, what, flags = q.popleft()
            if kind is None:
                pieces.append((self.data_frames("s2c", stream, what, False), None))
            else:
                pieces.append(self.block("s2c", stream, kind, what, flags))
            if not q:
                queues.pop(i)
            if rng.random() < 0.12:
                yield from self.write("s2c", pieces)
                pieces = []
                if rng.random() < 0.1:
                    yield from self.ack("c2s")
        if pieces:
            yield from self.write("s2c", pieces)
        if rng.random() < 0.25:
            yield from self.ack("c2s")

    def opening(self) -> Iterator[None]:
        """Handshake, preface and SETTINGS: written only with --from-start."""
        cap = self.gen.cap
        cap.send(self.c, SYN)
        yield
        cap.send(self.s, SYN | ACK)
        yield
        cap.send(self.c, ACK)
        yield
        settings = b"".join(struct.pack(">HL", k, v) for k, v in ((2, 0), (4, 4194304), (6, 16384)))
        yield from self.write("c2s", [(PREFACE, None), (frame(SETTINGS, 0, 0, settings), None)])
        settings = struct.pack(">HL", 3, 100)
        yield from self.write("s2c", [(frame(SETTINGS, 0, 0, settings), None),
                                      (frame(SETTINGS, 1, 0, b""), None)])
        yield from self.write("c2s", [(frame(SETTINGS, 1, 0, b""), None)])

    def run(self, warmup: int) -> Iterator[None]:
        if self.gen.from_start:  # a self-check: everything written, every field knowable
            self.writing = {"c2s": True, "s2c": True}
            yield from self.opening()
            while not self.gen.stopping:
                yield from self.round()
            return
        # The preface and both SETTINGS (SETTINGS_HEADER_TABLE_SIZE left at 4096) went out
        # long before the capture; they do not touch HPACK state, so nothing to encode.
        done = 0
        while done < warmup:  # encoded, not written
            for _ in self.round():
                pass
            done = self.next_stream // 2
        # the round in flight when tcpdump starts: its requests were sent before
        self.writing["s2c"] = True
        self.enc["s2c"].mark_capture_start()
        self.writing["c2s"] = False
        gen = self.round()
        # requests of this round happen before the capture; responses are in it
        yield from gen
        self.writing["c2s"] = True
        self.enc["c2s"].mark_capture_start()
        while not self.gen.stopping:
            yield from self.round()


class Generator:
    def __init__(self, out: BinaryIO, truth: TextIO | None, seed: int, target: int, start_us: int,
                 connections: int, from_start: bool = False) -> None:
        self.rng = random.Random(seed)
        self.from_start = from_start
        self.cap = Capture(out, start_us, self.rng)
        self.truth = truth
        self.target = target
        self.stats = Stats()
        self.stopping = False
        self.used_ports: set[int] = set()
        self._date: tuple[int, str] = (-1, "")
        self.conns = [H2Conn(self, i + 1, FLAVORS[i % len(FLAVORS)]) for i in range(connections)]
        if truth is not None:
            truth.write(json.dumps({"truth": "gen_h2_capture", "version": 1, "seed": seed,
                                    "connections": self.stats.connection_info}) + "\n")

    def port(self) -> int:
        while True:
            port = self.rng.randrange(32768, 61000)
            if port not in self.used_ports and port not in TSHARK_CLAIMED_PORTS:
                self.used_ports.add(port)
                return port

    def date(self) -> str:
        sec = self.cap.now_us // 1_000_000
        if self._date[0] != sec:
            self._date = (sec, formatdate(sec, usegmt=True))
        return self._date[1]

    def emit(self, record: dict[str, Any]) -> None:
        kind = record["kind"]
        if kind == "request":
            self.stats.request_blocks += 1
        elif kind == "response":
            self.stats.response_blocks += 1
        else:
            self.stats.trailer_blocks += 1
        if self.truth is not None:
            self.truth.write(json.dumps(record, separators=(",", ":")) + "\n")

    def run(self) -> Stats:
        rng = self.rng
        active = [conn.run(warmup=rng.randrange(40, 400)) for conn in self.conns]
        while active:
            if not self.stopping and self.cap.stats.bytes >= self.target:
                self.stopping = True
            k = rng.randrange(len(active))
            if next(active[k], StopIteration) is StopIteration:
                active[k] = active[-1]
                active.pop()
        self.stats.packets = self.cap.stats.packets
        self.stats.bytes = self.cap.stats.bytes
        return self.stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="pcap file to write")
    ap.add_argument("--size-mb", type=float, default=100.0, help="approximate size (MiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=4,
                    help="long-lived h2c connections (outbound, inbound, outbound, ...)")
    ap.add_argument("--truth", type=Path, help="write the ground truth here (JSON Lines)")
    ap.add_argument("--start", type=int, default=1_714_564_800,
                    help="capture start, Unix seconds (default 2024-05-01T12:00:00Z)")
    ap.add_argument("--stats-json", type=Path, help="also write the counts here as JSON")
    ap.add_argument("--from-start", action="store_true",
                    help="self-check: write the connections from their SYN, preface and warm-up "
                         "included, so that every field is knowable")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.connections < 1:
        ap.error("--connections must be at least 1")

    t0 = time.perf_counter()
    target = int(args.size_mb * 1024 * 1024)
    truth = args.truth.open("w", buffering=4 * 1024 * 1024) if args.truth else None
    try:
        with args.out.open("wb", buffering=4 * 1024 * 1024) as out:
            gen = Generator(out, truth, args.seed, target, args.start * 1_000_000, args.connections,
                            args.from_start)
            stats = gen.run()
    finally:
        if truth is not None:
            truth.close()
    elapsed = time.perf_counter() - t0
    result = {**stats.__dict__, "seconds": round(elapsed, 3), "seed": args.seed, "file": str(args.out),
              "truth": str(args.truth) if args.truth else None,
              "server_ports": sorted({GRPC_PORT if FLAVORS[i % len(FLAVORS)].inbound else OUTBOUND_PORT
                                      for i in range(args.connections)})}
    if args.stats_json:
        args.stats_json.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        blocks = stats.request_blocks + stats.response_blocks + stats.trailer_blocks
        print(
            f"wrote {args.out}: {stats.bytes / 1048576:.1f} MiB, {stats.packets} packets, "
            f"{stats.connections} connections, {stats.calls} calls ({stats.streaming_calls} streaming, "
            f"{stats.error_calls} failed, {stats.in_flight_at_start} in flight at the start, "
            f"{stats.warmup_calls} before it), {blocks} header blocks, {stats.header_fields} fields "
            f"({stats.unknowable_fields} unknowable from the capture) in {elapsed:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
