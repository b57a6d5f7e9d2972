#!/usr/bin/env python3
"""Generate a large, deterministic, ksniff-like capture of an Istio sidecar's loopback traffic.

What it writes is what ``tcpdump -i any -U -w`` inside a pod looks like: classic pcap
(little-endian, microsecond timestamps), link type LINUX_SLL2 (276), IPv4 + TCP with the
timestamp option, all on ``lo`` (ARPHRD_LOOPBACK = 772):

* inbound: Envoy (127.0.0.6:ephemeral) -> app (10.244.1.10:9080)
* outbound: app (10.244.1.10:ephemeral) -> Envoy's outbound listener (127.0.0.1:15001)

Many keep-alive connections run at once and their packets are interleaved; some were open
before the capture started (no SYN), the others begin with a handshake; connections that run
out of requests end with a FIN exchange and are replaced by new ones. Requests carry Envoy's
headers (x-request-id, B3, x-forwarded-proto, x-envoy-attempt-count, ...); outbound requests
repeat the trace context of a recent inbound request, and a few drop the B3 headers, as a
buggy app would. Responses carry JSON bodies of 200 B to 20 KB, some chunked, cut into
loopback-sized (65483-byte) or Ethernet-sized (1448-byte) segments, with ACK-only packets
in between. IP and TCP checksums are correct.

``--shape dense`` writes issue 10's dense shape instead: 2 long keep-alive connections open
before the capture (inbound 127.0.0.6 -> app, outbound app -> 127.0.0.1:15001), each
request and each response in one segment of at most 32 KiB, response bodies of 2-4 KB, no
ACK-only packets: many messages per byte and per packet, few connections.

Usage: ``python bench/gen_capture.py OUT.pcap [--size-mb 200] [--seed 1] [--shape dense]``
"""

from __future__ import annotations

import argparse
import json
import math
import random
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO

LINKTYPE_LINUX_SLL2 = 276
ARPHRD_LOOPBACK = 772
SNAPLEN = 262144
LOOPBACK_MSS = 65483  # 65535 - 20 (IPv4) - 32 (TCP + timestamps)
ETHERNET_MSS = 1448  # 1500 - 20 - 32
DENSE_MSS = 32768  # the dense shape: one message per segment, at most 32 KiB
SYN_MSS = 65495  # what a loopback SYN advertises (without the timestamp option)
WINDOW = 6379  # raw window after the handshake (scaled by 2**7: about 800 KB)
WSCALE = 7

FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10

APP_IP = bytes([10, 244, 1, 10])
ENVOY_INBOUND_IP = bytes([127, 0, 0, 6])
ENVOY_OUTBOUND_IP = bytes([127, 0, 0, 1])
APP_PORT = 9080
OUTBOUND_PORT = 15001

# Ephemeral ports that Wireshark dissects as another protocol before trying HTTP: skipping
# them keeps tshark's request count comparable (a real capture can contain them, of course).
TSHARK_CLAIMED_PORTS = frozenset({34980, 44321, 44322, 44818, 48049, 48898, 57000})

PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_LINUX_SLL2)
# protocol, reserved, ifindex (lo = 1), ARPHRD, packet type (host), addr len, addr
SLL2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, ARPHRD_LOOPBACK, 0, 6, b"")
REC = struct.Struct("<IIII")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
TCP_TS = struct.Struct("!HHIIHHHHBBBBII")  # 20-byte header + NOP NOP TS(8, 10)
TCP_SYN = struct.Struct("!HHIIHHHHBBHBBBBIIBBBB")  # + MSS SACKOK TS NOP WS = 40 bytes

INBOUND_PATHS = (
    ("GET", "/productpage"),
    ("GET", "/api/v1/products"),
    ("GET", "/api/v1/products/{n}"),
    ("GET", "/api/v1/products/{n}/reviews"),
    ("GET", "/api/v1/products/{n}/ratings"),
    ("GET", "/reviews/{n}"),
    ("POST", "/api/v1/orders"),
    ("PUT", "/api/v1/carts/{n}"),
)
OUTBOUND_CALLS = (
    ("GET", "ratings:9080", "/ratings/{n}"),
    ("GET", "details:9080", "/details/{n}"),
    ("GET", "reviews:9080", "/reviews/{n}"),
    ("POST", "inventory.shop.svc.cluster.local:8080", "/v2/reservations"),
    ("GET", "users.auth.svc.cluster.local:8080", "/v1/users/{n}/profile"),
)
USER_AGENTS = (
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "Go-http-client/1.1",
)
APP_USER_AGENTS = ("Apache-CXF/3.1.18", "Go-http-client/1.1", "python-requests/2.31.0")
SERVICE_ACCOUNTS = ("bookinfo-productpage", "istio-ingressgateway-service-account", "frontend")
STATUSES = ((200, "OK"),) * 92 + (
    (201, "Created"),
    (404, "Not Found"),
    (500, "Internal Server Error"),
    (503, "Service Unavailable"),
)
WORDS = (
    "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    "Absolutely fun and entertaining. The play lacks thematic depth when compared to "
    "other plays by Shakespeare.",
    "A comedy of errors, with mistaken identities and twins separated at birth.",
    "Delivered on time, well packed, exactly as described.",
)


@dataclass
class Stats:
    requests: int = 0
    responses: int = 0
    packets: int = 0
    bytes: int = 0
    connections: int = 0
    syn_connections: int = 0
    fin_connections: int = 0
    chunked_responses: int = 0
    requests_without_b3: int = 0
    inbound_requests: int = 0
    outbound_requests: int = 0


@dataclass
class Direction:
    """One direction of a TCP connection, with its pre-computed checksum parts."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ts_offset: int
    ip_id: int
    ip_sum: int = 0
    pseudo_sum: int = 0
    last_tsval: int = 0
    peer: Direction | None = None

    def __post_init__(self) -> None:
        # Everything in the IPv4 header except total length, id and checksum.
        self.ip_sum = int.from_bytes(
            IPV4.pack(0x45, 0, 0, 0, 0x4000, 64, 6, 0, self.src, self.dst), "big"
        )
        # TCP pseudo-header without the TCP length.
        self.pseudo_sum = int.from_bytes(self.src + self.dst, "big") + 6


@dataclass
class Pool:
    """Bodies and header pieces built once, picked at random per message."""

    bodies: list[tuple[bytes, bytes]] = field(default_factory=list)  # (identity, chunked)
    dense_bodies: list[tuple[bytes, bytes]] = field(default_factory=list)  # 2-4 KB, dense shape
    post_bodies: list[bytes] = field(default_factory=list)
    jwts: list[str] = field(default_factory=list)
    xfcc_hashes: list[str] = field(default_factory=list)


def _fold(total: int) -> int:
    """The Internet checksum of data whose big-endian integer value (summed) is ``total``.

    2**16 = 1 (mod 0xFFFF), so a big-endian integer is congruent to the sum of its 16-bit
    words: one ``%`` does the ones'-complement folding at C speed.
    """
    r = total % 0xFFFF
    return 0xFFFF - r if r else 0


def json_body(rng: random.Random, size: int) -> bytes:
    """A valid JSON document of about ``size`` bytes (at least 200)."""
    doc: dict[str, object] = {
        "id": rng.randrange(1, 10_000),
        "status": "ok",
        "reviews": [],
    }
    reviews: list[object] = []
    doc["reviews"] = reviews
    text = json.dumps(doc, separators=(",", ":"))
    while len(text) < size - 160:
        reviews.append(
            {
                "reviewer": f"Reviewer{rng.randrange(1, 500)}",
                "text": rng.choice(WORDS),
                "rating": {"stars": rng.randrange(1, 6), "color": rng.choice(("red", "black"))},
            }
        )
        text = json.dumps(doc, separators=(",", ":"))
    pad = max(0, size - len(text) - len(',"pad":""'))
    doc["pad"] = "x" * pad
    return json.dumps(doc, separators=(",", ":")).encode()


def chunked(rng: random.Random, body: bytes) -> bytes:
    parts = []
    pos = 0
    while pos < len(body):
        n = min(len(body) - pos, rng.choice((256, 1024, 4096, 8192, 16384)))
        parts.append(b"%x\r\n%b\r\n" % (n, body[pos : pos + n]))
        pos += n
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


def build_pool(rng: random.Random) -> Pool:
    pool = Pool()
    lo, hi = math.log(200), math.log(20_000)
    for _ in range(240):
        body = json_body(rng, int(math.exp(rng.uniform(lo, hi))))
        pool.bodies.append((body, chunked(rng, body)))
    for _ in range(32):
        pool.post_bodies.append(json_body(rng, rng.randrange(200, 2400)))
    for _ in range(16):
        pool.jwts.append("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."
                         f"{rng.getrandbits(256):064x}.{rng.getrandbits(512):0128x}")
        pool.xfcc_hashes.append(f"{rng.getrandbits(256):064x}")
    return pool


class Capture:
    """Writes packets: pcap record + SLL2 + IPv4 + TCP (+ options) + payload."""

    def __init__(self, out: BinaryIO, start_us: int, rng: random.Random) -> None:
        self.out = out
        self.now_us = start_us
        self.rng = rng
        self.stats = Stats()
        out.write(PCAP_GLOBAL)
        self.stats.bytes = len(PCAP_GLOBAL)

    def tick(self) -> None:
        self.now_us += self.rng.randrange(1, 300)

    def send(self, d: Direction, flags: int, payload: bytes = b"") -> None:
        peer = d.peer
        assert peer is not None
        self.tick()
        tsval = (self.now_us // 1000 + d.ts_offset) & 0xFFFFFFFF
        d.last_tsval = tsval
        plen = len(payload)
        ack = peer.seq if flags & ACK else 0
        if flags & SYN:
            window = SYN_MSS if not flags & ACK else LOOPBACK_MSS
            hdr = TCP_SYN.pack(d.sport, d.dport, d.seq, ack, (10 << 12) | flags, window, 0, 0,
                               2, 4, SYN_MSS, 4, 2, 8, 10, tsval,
                               peer.last_tsval if flags & ACK else 0,
                               1, 3, 3, WSCALE)
        else:
            hdr = TCP_TS.pack(d.sport, d.dport, d.seq, ack, (8 << 12) | flags, WINDOW, 0, 0,
                              1, 1, 8, 10, tsval, peer.last_tsval)
        tcp_len = len(hdr) + plen
        total = d.pseudo_sum + tcp_len + int.from_bytes(hdr, "big")
        if plen:
            body_int = int.from_bytes(payload, "big")
            total += body_int << 8 if plen & 1 else body_int
        csum = _fold(total)
        hdr = hdr[:16] + csum.to_bytes(2, "big") + hdr[18:]
        ip_len = 20 + tcp_len
        d.ip_id = (d.ip_id + 1) & 0xFFFF
        ip_csum = _fold(d.ip_sum + ip_len + d.ip_id)  # every 16-bit word weighs 1 mod 0xFFFF
        ip = IPV4.pack(0x45, 0, ip_len, d.ip_id, 0x4000, 64, 6, ip_csum, d.src, d.dst)
        caplen = 20 + ip_len
        write = self.out.write
        write(REC.pack(self.now_us // 1_000_000, self.now_us % 1_000_000, caplen, caplen)
              + SLL2 + ip + hdr)
        if plen:
            write(payload)
        d.seq = (d.seq + plen + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF
        self.stats.packets += 1
        self.stats.bytes += 16 + caplen


@dataclass
class Shared:
    """State every connection generator reads: the stop flag and recent trace contexts."""

    stopping: bool = False
    contexts: list[tuple[str, str, str, str]] = field(default_factory=list)
    used_ports: set[int] = field(default_factory=set)


class Generator:
    def __init__(self, out: BinaryIO, seed: int, target_bytes: int, start_us: int,
                 dense: bool = False) -> None:
        self.dense = dense
        self.rng = random.Random(seed)
        self.pool = build_pool(self.rng)
        if dense:  # drawn after the common pool, so the default shape's bytes stay as they were
            for _ in range(64):
                body = json_body(self.rng, self.rng.randrange(2000, 4001))
                self.pool.dense_bodies.append((body, chunked(self.rng, body)))
        self.cap = Capture(out, start_us, self.rng)
        self.target = target_bytes
        self.shared = Shared()
        self._date_cache: tuple[int, str] = (-1, "")

    # -- header helpers -------------------------------------------------------------
    def _hex(self, bits: int) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _date(self) -> str:
        sec = self.cap.now_us // 1_000_000
        if self._date_cache[0] != sec:
            self._date_cache = (sec, formatdate(sec, usegmt=True))
        return self._date_cache[1]

    def _port(self) -> int:
        if len(self.shared.used_ports) > 20_000:  # only for captures of several GB
            self.shared.used_ports.clear()
        while True:
            port = self.rng.randrange(32768, 61000)
            if port not in self.shared.used_ports and port not in TSHARK_CLAIMED_PORTS:
                self.shared.used_ports.add(port)
                return port

    def inbound_request(self) -> bytes:
        rng = self.rng
        method, path = rng.choice(INBOUND_PATHS)
        path = path.replace("{n}", str(rng.randrange(0, 1000)))
        if rng.random() < 0.3:
            path += f"?page={rng.randrange(1, 50)}&limit=20"
        trace, span, parent = self._hex(128), self._hex(64), self._hex(64)
        rid = self._uuid()
        sampled = "1" if rng.random() < 0.9 else "0"
        self.shared.contexts.append((rid, trace, span, parent))
        if len(self.shared.contexts) > 256:
            del self.shared.contexts[:128]
        lines = [
            f"{method} {path} HTTP/1.1",
            "host: productpage:9080",
            f"user-agent: {rng.choice(USER_AGENTS)}",
            "accept: application/json, */*",
            "accept-encoding: gzip, deflate",
            "x-forwarded-proto: http",
            f"x-request-id: {rid}",
            f"x-envoy-attempt-count: {1 if rng.random() < 0.97 else 2}",
            "x-forwarded-client-cert: By=spiffe://cluster.local/ns/default/sa/bookinfo-"
            f"productpage;Hash={rng.choice(self.pool.xfcc_hashes)};Subject=\"\";URI=spiffe://"
            f"cluster.local/ns/istio-system/sa/{rng.choice(SERVICE_ACCOUNTS)}",
            f"x-b3-traceid: {trace}",
            f"x-b3-spanid: {span}",
            f"x-b3-parentspanid: {parent}",
            f"x-b3-sampled: {sampled}",
        ]
        if rng.random() < 0.3:
            lines.append(f"authorization: Bearer {rng.choice(self.pool.jwts)}")
        body = b""
        if method in ("POST", "PUT"):
            body = rng.choice(self.pool.post_bodies)
            lines.append("content-type: application/json")
            lines.append(f"content-length: {len(body)}")
        self.cap.stats.inbound_requests += 1
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def outbound_request(self) -> bytes:
        rng = self.rng
        method, host, path = rng.choice(OUTBOUND_CALLS)
        path = path.replace("{n}", str(rng.randrange(0, 1000)))
        ctxs = self.shared.contexts
        if ctxs:
            rid, trace, span, parent = ctxs[rng.randrange(len(ctxs))]
        else:
            rid, trace, span, parent = self._uuid(), self._hex(128), self._hex(64), self._hex(64)
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {host}",
            f"User-Agent: {rng.choice(APP_USER_AGENTS)}",
            "Accept: application/json",
            f"x-request-id: {rid}",
        ]
        if rng.random() < 0.95:  # the rest is a propagation bug for tracewire to find
            lines += [
                f"x-b3-traceid: {trace}",
                f"x-b3-spanid: {span}",
                f"x-b3-parentspanid: {parent}",
                "x-b3-sampled: 1",
            ]
        else:
            self.cap.stats.requests_without_b3 += 1
        if rng.random() < 0.1:
            lines.append(f"Authorization: Bearer {rng.choice(self.pool.jwts)}")
        body = b""
        if method == "POST":
            body = rng.choice(self.pool.post_bodies)
            lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        self.cap.stats.outbound_requests += 1
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def response(self, inbound: bool) -> tuple[bytes, bytes]:
        """(head, body) of a response; inbound ones come from the app, outbound from Envoy."""
        rng = self.rng
        code, reason = rng.choice(STATUSES)
        identity, chunk_form = rng.choice(self.pool.dense_bodies if self.dense else self.pool.bodies)
        use_chunked = rng.random() < 0.25
        if use_chunked:
            self.cap.stats.chunked_responses += 1
        body = chunk_form if use_chunked else identity
        framing = "transfer-encoding: chunked" if use_chunked else f"content-length: {len(body)}"
        if inbound:
            lines = [
                f"HTTP/1.1 {code} {reason}",
                "Content-Type: application/json",
                framing.title() if not use_chunked else "Transfer-Encoding: chunked",
                f"Date: {self._date()}",
                "Server: Werkzeug/2.3.7 Python/3.11.7",
            ]
        else:
            lines = [
                f"HTTP/1.1 {code} {reason}",
                "content-type: application/json",
                framing,
                f"date: {self._date()}",
                f"x-envoy-upstream-service-time: {rng.randrange(1, 120)}",
                "server: envoy",
            ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), body

    # -- connections ----------------------------------------------------------------
    def new_direction_pair(self, inbound: bool) -> tuple[Direction, Direction]:
        rng = self.rng
        port = self._port()
        if inbound:
            client_ip, server_ip, server_port = ENVOY_INBOUND_IP, APP_IP, APP_PORT
        else:
            client_ip, server_ip, server_port = APP_IP, ENVOY_OUTBOUND_IP, OUTBOUND_PORT
        c = Direction(client_ip, server_ip, port, server_port, rng.getrandbits(32),
                      rng.getrandbits(32), rng.getrandbits(16))
        s = Direction(server_ip, client_ip, server_port, port, rng.getrandbits(32),
                      rng.getrandbits(32), rng.getrandbits(16))
        c.peer, s.peer = s, c
        c.last_tsval = (self.cap.now_us // 1000 + c.ts_offset) & 0xFFFFFFFF
        s.last_tsval = (self.cap.now_us // 1000 + s.ts_offset) & 0xFFFFFFFF
        return c, s

    def segments(self, data: bytes, mss: int) -> list[bytes]:
        return [data[i : i + mss] for i in range(0, len(data), mss)]

    def connection(self, inbound: bool, handshake: bool) -> Iterator[None]:
        """Yields after each packet so the caller can interleave connections."""
        rng, cap, stats = self.rng, self.cap, self.cap.stats
        c, s = self.new_direction_pair(inbound)
        if self.dense:  # one message per segment; the next request acknowledges the response
            mss, ack_every = DENSE_MSS, 1 << 30
        else:
            mss = LOOPBACK_MSS if rng.random() < 0.6 else ETHERNET_MSS
            ack_every = 1 if mss == LOOPBACK_MSS else 2
        stats.connections += 1
        if handshake:
            stats.syn_connections += 1
            cap.send(c, SYN)
            yield
            cap.send(s, SYN | ACK)
            yield
            cap.send(c, ACK)
            yield
        n_requests = int(math.exp(rng.uniform(math.log(3), math.log(400))))
        if self.dense:  # kept alive until the capture ends
            n_requests = 1 << 62
        for _ in range(n_requests):
            if self.shared.stopping:
                return
            req = self.inbound_request() if inbound else self.outbound_request()
            stats.requests += 1
            segs = self.segments(req, mss)
            for i, seg in enumerate(segs):
                cap.send(c, ACK | PSH if i == len(segs) - 1 else ACK, seg)
                yield
            if not self.dense and rng.random() < 0.3:
                cap.send(s, ACK)
                yield
            head, body = self.response(inbound)
            stats.responses += 1
            if not self.dense and rng.random() < 0.3:  # headers and body written separately
                parts = [head, *self.segments(body, mss)]
                pushed = {0, len(parts) - 1}
            else:
                parts = self.segments(head + body, mss)
                pushed = {len(parts) - 1}
            unacked = 0
            for i, seg in enumerate(parts):
                cap.send(s, ACK | PSH if i in pushed else ACK, seg)
                yield
                unacked += 1
                if unacked >= ack_every or (i == len(parts) - 1 and not self.dense):
                    cap.send(c, ACK)
                    unacked = 0
                    yield
        stats.fin_connections += 1
        closer, other = (c, s) if rng.random() < 0.7 else (s, c)
        cap.send(closer, FIN | ACK)
        yield
        cap.send(other, FIN | ACK)
        yield
        cap.send(closer, ACK)
        yield

    def run(self, concurrent: int) -> Stats:
        rng = self.rng
        active: list[tuple[bool, Iterator[None]]] = []
        if self.dense:
            concurrent = 1
        for i in range(concurrent * 2):
            inbound = i % 2 == 0
            handshake = not self.dense and rng.random() < 0.3
            active.append((inbound, self.connection(inbound, handshake=handshake)))
        stats = self.cap.stats
        while active:
            if not self.shared.stopping and stats.bytes >= self.target:
                self.shared.stopping = True
            k = rng.randrange(len(active))
            inbound, conn = active[k]
            if next(conn, StopIteration) is StopIteration:
                if self.shared.stopping:
                    active[k] = active[-1]
                    active.pop()
                else:
                    active[k] = (inbound, self.connection(inbound, handshake=True))
        return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="pcap file to write")
    ap.add_argument("--size-mb", type=float, default=200.0, help="approximate size (MiB)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--connections", type=int, default=64,
                    help="concurrent connections per direction (inbound and outbound)")
    ap.add_argument("--start", type=int, default=1_714_564_800,
                    help="capture start, Unix seconds (default 2024-05-01T12:00:00Z)")
    ap.add_argument("--shape", choices=("mesh", "dense"), default="mesh",
                    help="mesh: many interleaved connections (default); dense: 2 keep-alive "
                         "connections, one message per segment of at most 32 KiB, 2-4 KB bodies")
    ap.add_argument("--stats-json", type=Path, help="also write the counts here as JSON")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    target = int(args.size_mb * 1024 * 1024)
    with args.out.open("wb", buffering=4 * 1024 * 1024) as out:
        gen = Generator(out, args.seed, target, args.start * 1_000_000, dense=args.shape == "dense")
        stats = gen.run(args.connections)
    elapsed = time.perf_counter() - t0
    result = {**stats.__dict__, "shape": args.shape, "seconds": round(elapsed, 3), "seed": args.seed,
              "file": str(args.out)}
    if args.stats_json:
        args.stats_json.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        print(
            f"wrote {args.out}: {stats.bytes / 1048576:.1f} MiB, {stats.packets} packets, "
            f"{stats.requests} requests, {stats.responses} responses "
            f"({stats.inbound_requests} inbound, {stats.outbound_requests} outbound, "
            f"{stats.chunked_responses} chunked, {stats.requests_without_b3} without B3), "
            f"{stats.connections} connections ({stats.syn_connections} with SYN, "
            f"{stats.fin_connections} closed with FIN) in {elapsed:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
