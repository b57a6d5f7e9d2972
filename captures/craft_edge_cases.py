#!/usr/bin/env python3
"""Craft small, deterministic edge-case captures into captures/edge/ (and copy public ones).

Run:  python3 captures/craft_edge_cases.py            (write every file, check it with tshark)
      python3 captures/craft_edge_cases.py --no-check (write only)
      python3 captures/craft_edge_cases.py --out DIR  (write DIR/edge/*; MANIFEST.json untouched)
      python3 captures/craft_edge_cases.py --list     (names and what each tests)

No root and no network: packets are built with scapy (IP, TCP, UDP, link layers) and written
with ``struct`` (pcap in both byte orders and both resolutions, pcapng blocks scapy cannot
write: several interfaces, several sections, SPB, the obsolete Packet Block, unknown blocks, a
big-endian section). Timestamps start at 2024-06-01T12:00:00Z and step by 250 µs per frame;
sequence numbers, ports, ids and payloads are fixed or drawn from ``random.Random(case name)``,
so every run writes the same bytes.

Each case also yields its MANIFEST.json entry: what it tests, the frame count, the TCP
connections, the HTTP messages with the 1-based frame that completes each head, and the
anomalies a reader is expected to report (see README.md for the slugs). Afterwards every file
that is not fatal is read by tshark and compared with the entry; where tshark reads a case
differently from what is intended, the entry says so under "tshark" and the check compares
with that instead. It also copies the tcpdump test captures listed in
``../shared/captures-public/INDEX.md`` into captures/public/ with their licence.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import random
import shutil
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, PadN
from scapy.layers.l2 import ARP, CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether
from scapy.packet import Packet, Raw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import CAPTURES, describe_format, tshark_summary, update_manifest

EDGE = CAPTURES / "edge"
PUBLIC = CAPTURES / "public"
PUBLIC_SRC = CAPTURES.parent.parent / "shared" / "captures-public" / "tcpdump-tests"
OWNER = "craft_edge_cases.py"

BASE_NS = 1_717_243_200 * 10**9  # 2024-06-01T12:00:00Z
STEP_NS = 250_000

# Link types (https://www.tcpdump.org/linktypes.html)
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = (
    0, 1, 101, 108, 113, 228, 229, 276,
)  # fmt: skip
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
PACKET_HOST, PACKET_OUTGOING = 0, 4

POD_MAC, GW_MAC = "0a:58:0a:f4:01:0a", "0a:58:0a:f4:01:01"
POD_IP, PEER_IP, ENVOY_IP = "10.244.1.10", "10.244.2.20", "127.0.0.6"
POD_IP6, PEER_IP6 = "fd00:10:244:1::a", "fd00:10:244:2::14"


# --------------------------------------------------------------------------- frames


@dataclass
class Frame:
    data: bytes
    ts_ns: int | None
    linktype: int
    iface: int = 0
    orig_len: int | None = None
    outgoing: bool | None = None  # sent by the capturing host (for pcapng epb_flags)


@dataclass
class Capture:
    """Frames in capture order; frame numbers are 1-based, as Wireshark counts them."""

    frames: list[Frame] = field(default_factory=list)
    sub_us: bool = False  # add sub-microsecond digits (nanosecond files only)

    def add(self, data: bytes, linktype: int, iface: int = 0, outgoing: bool | None = None) -> int:
        n = len(self.frames) + 1
        ts = BASE_NS + (n - 1) * STEP_NS + ((n * 137) % 1000 if self.sub_us else 0)
        self.frames.append(Frame(data, ts, linktype, iface, outgoing=outgoing))
        return n

    @property
    def next_number(self) -> int:
        return len(self.frames) + 1


# --------------------------------------------------------------------------- link layers


@dataclass(frozen=True)
class Link:
    """Wraps an IP packet for one link type. ``outgoing``: sent by the capturing host."""

    linktype: int
    wrap: Callable[[bytes, bool, int], bytes]  # (ip bytes, outgoing, ip version) -> frame


def _ethertype(version: int) -> int:
    return 0x0800 if version == 4 else 0x86DD


def _eth(ip: bytes, out: bool, v: int) -> bytes:
    src, dst = (POD_MAC, GW_MAC) if out else (GW_MAC, POD_MAC)
    return bytes(Ether(src=src, dst=dst, type=_ethertype(v)) / Raw(ip))


def _eth_vlan(ip: bytes, out: bool, v: int) -> bytes:
    src, dst = (POD_MAC, GW_MAC) if out else (GW_MAC, POD_MAC)
    return bytes(Ether(src=src, dst=dst) / Dot1Q(vlan=100, type=_ethertype(v)) / Raw(ip))


def _eth_qinq(ip: bytes, out: bool, v: int) -> bytes:
    src, dst = (POD_MAC, GW_MAC) if out else (GW_MAC, POD_MAC)
    tags = Dot1AD(vlan=200) / Dot1Q(vlan=100, type=_ethertype(v))
    return bytes(Ether(src=src, dst=dst, type=0x88A8) / tags / Raw(ip))


def _sll_lo(ip: bytes, out: bool, v: int) -> bytes:
    hdr = CookedLinux(
        pkttype=PACKET_HOST, lladdrtype=ARPHRD_LOOPBACK, lladdrlen=6, src=b"\0" * 8,
        proto=_ethertype(v),
    )  # fmt: skip
    return bytes(hdr / Raw(ip))


def sll2_header(proto: int, ifindex: int, hatype: int, pkttype: int, addr: bytes) -> Packet:
    return CookedLinuxV2(
        proto=proto, ifindex=ifindex, lladdrtype=hatype, pkttype=pkttype,
        lladdrlen=len(addr), src=addr.ljust(8, b"\0"),
    )  # fmt: skip


def _sll2_lo(ip: bytes, out: bool, v: int) -> bytes:
    # What tcpdump -i any writes for lo: ifindex 1, ARPHRD_LOOPBACK, PACKET_HOST, 6 zero bytes.
    return bytes(sll2_header(_ethertype(v), 1, ARPHRD_LOOPBACK, PACKET_HOST, b"\0" * 6) / Raw(ip))


def _sll2_eth0(ip: bytes, out: bool, v: int) -> bytes:
    mac = bytes.fromhex((POD_MAC if out else GW_MAC).replace(":", ""))
    pkttype = PACKET_OUTGOING if out else PACKET_HOST
    return bytes(sll2_header(_ethertype(v), 3, ARPHRD_ETHER, pkttype, mac) / Raw(ip))


def _null(endian: str, af6: int) -> Callable[[bytes, bool, int], bytes]:
    def wrap(ip: bytes, out: bool, v: int) -> bytes:
        return struct.pack(endian + "I", 2 if v == 4 else af6) + ip

    return wrap


def _raw(ip: bytes, out: bool, v: int) -> bytes:
    return ip


ETH = Link(LT_ETHERNET, _eth)
ETH_VLAN = Link(LT_ETHERNET, _eth_vlan)
ETH_QINQ = Link(LT_ETHERNET, _eth_qinq)
SLL = Link(LT_SLL, _sll_lo)
SLL2 = Link(LT_SLL2, _sll2_lo)
SLL2_ETH0 = Link(LT_SLL2, _sll2_eth0)
NULL_LE = Link(LT_NULL, _null("<", 30))  # AF_INET6 = 30 on macOS, host (little) byte order
NULL_BE = Link(LT_NULL, _null(">", 24))  # a big-endian host; AF_INET6 = 24 on NetBSD/OpenBSD
LOOP = Link(LT_LOOP, _null(">", 24))  # OpenBSD DLT_LOOP: network byte order, AF_INET6 = 24
RAW = Link(LT_RAW, _raw)
RAW4 = Link(LT_IPV4, _raw)
RAW6 = Link(LT_IPV6, _raw)


# --------------------------------------------------------------------------- TCP


class Conn:
    """One TCP connection between a client (the pod side, "c") and a server ("s").

    Every segment acknowledges everything the other side has sent so far, including segments
    the capture is made to miss: they were on the wire, tcpdump just did not keep them.
    """

    def __init__(
        self,
        cap: Capture,
        link: Link,
        client: tuple[str, int] = (ENVOY_IP, 41000),
        server: tuple[str, int] = (POD_IP, 80),
        isn: tuple[int, int] = (1_000_000, 5_000_000),
        iface: int = 0,
        ip_options: Callable[[str, str], list[Any]] | None = None,
        v6_exthdrs: bool = False,
        tcp_options: bool = False,
    ) -> None:
        self.cap, self.link, self.iface = cap, link, iface
        self.addr = {"c": client, "s": server}
        self.nxt = {"c": isn[0] % 2**32, "s": isn[1] % 2**32}
        self.ipid = {"c": 0x1000, "s": 0x2000}
        self.v6 = ":" in client[0]
        self.ip_options, self.v6_exthdrs, self.tcp_options = ip_options, v6_exthdrs, tcp_options
        self.ts = {"c": 3_000_000_000, "s": 700_000}

    def other(self, who: str) -> str:
        return "s" if who == "c" else "c"

    def packet(self, who: str, flags: str, payload: bytes = b"", seq: int | None = None,
               write: bool = True, tcp_opts: list[Any] | None = None) -> int:  # fmt: skip
        """Build one segment (seq defaults to the next one); return its frame number or 0."""
        src, dst = self.addr[who], self.addr[self.other(who)]
        s = self.nxt[who] if seq is None else seq % 2**32
        ack = self.nxt[self.other(who)] if "A" in flags else 0
        opts = tcp_opts
        if opts is None and self.tcp_options:
            self.ts[who] += 7
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (self.ts[who], self.ts[self.other(who)]))]
        tcp = TCP(sport=src[1], dport=dst[1], seq=s, ack=ack, flags=flags, window=502, options=opts or [])
        l4: Packet = tcp / Raw(payload) if payload else tcp
        if self.v6:
            ip6: Packet = IPv6(src=src[0], dst=dst[0], hlim=64)
            if self.v6_exthdrs:
                ip6 = ip6 / IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\0" * 4)])
                ip6 = ip6 / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])
            pkt = bytes(ip6 / l4)
        else:
            self.ipid[who] += 1
            ip = IP(src=src[0], dst=dst[0], id=self.ipid[who], flags="DF", ttl=64)
            if self.ip_options:
                ip.options = self.ip_options(who, flags)
            pkt = bytes(ip / l4)
        if not write:
            return 0
        frame = self.link.wrap(pkt, who == "c", 6 if self.v6 else 4)
        return self.cap.add(frame, self.link.linktype, self.iface, outgoing=who == "c")

    def handshake(self) -> int:
        syn_opts = None
        if self.tcp_options:
            syn_opts = [
                ("MSS", 65495), ("SAckOK", b""), ("Timestamp", (self.ts["c"], 0)),
                ("NOP", None), ("WScale", 7),
            ]  # fmt: skip
        self.packet("c", "S", tcp_opts=syn_opts)
        self.nxt["c"] = (self.nxt["c"] + 1) % 2**32
        if syn_opts:
            syn_opts = [*syn_opts[:2], ("Timestamp", (self.ts["s"], self.ts["c"])), *syn_opts[3:]]
        self.packet("s", "SA", tcp_opts=syn_opts)
        self.nxt["s"] = (self.nxt["s"] + 1) % 2**32
        return self.packet("c", "A")

    def send(self, who: str, data: bytes, flags: str = "PA") -> int:
        n = self.packet(who, flags, data)
        self.nxt[who] = (self.nxt[who] + len(data)) % 2**32
        return n

    def pieces(self, who: str, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
        """Split ``data`` at ``cuts``; return (seq, bytes) pieces and advance past all of it."""
        bounds = [0, *cuts, len(data)]
        base = self.nxt[who]
        out = [((base + a) % 2**32, data[a:b]) for a, b in itertools.pairwise(bounds)]
        self.nxt[who] = (base + len(data)) % 2**32
        return out

    def put(self, who: str, piece: tuple[int, bytes], flags: str = "PA") -> int:
        return self.packet(who, flags, piece[1], seq=piece[0])

    def ack(self, who: str) -> int:
        return self.packet(who, "A")

    def fin(self, who: str) -> int:
        n = self.packet(who, "FA")
        self.nxt[who] = (self.nxt[who] + 1) % 2**32
        return n

    def close(self) -> int:
        self.fin("c")
        self.fin("s")
        return self.ack("c")


# --------------------------------------------------------------------------- HTTP


class Ids:
    def __init__(self, seed: str) -> None:
        self.rng = random.Random(seed)

    def hex(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def request_id(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-9{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def context(self) -> list[tuple[str, str]]:
        return [
            ("x-request-id", self.request_id()),
            ("x-b3-traceid", self.hex(32)),
            ("x-b3-spanid", self.hex(16)),
            ("x-b3-sampled", "1"),
        ]


def request(ids: Ids, path: str, method: str = "GET", host: str = "details:9080",
            body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> bytes:  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", "user-agent: tracewire-craft/1.0",
             "accept: */*", *(f"{k}: {v}" for k, v in ids.context())]  # fmt: skip
    if body:
        lines.append(f"content-length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
           503: "Service Unavailable"}  # fmt: skip


def response(status: int = 200, body: bytes = b'{"id":0,"author":"William Shakespeare"}',
             extra: list[tuple[str, str]] | None = None, length: bool = True) -> bytes:  # fmt: skip
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", "content-type: application/json"]
    if length:
        lines.append(f"content-length: {len(body)}")
    lines += ["server: envoy", "x-envoy-upstream-service-time: 2"]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def req_msg(method: str, path: str, frame: int, **more: Any) -> dict[str, Any]:
    return {"kind": "request", "method": method, "path": path, "frame": frame, **more}


def resp_msg(status: int, frame: int, **more: Any) -> dict[str, Any]:
    return {"kind": "response", "status": status, "frame": frame, **more}


def exchange(conn: Conn, ids: Ids, path: str, status: int = 200, ack: bool = True) -> list[dict[str, Any]]:
    """A request and its response, each in one segment."""
    f1 = conn.send("c", request(ids, path))
    f2 = conn.send("s", response(status))
    if ack:
        conn.ack("c")
    return [req_msg("GET", path, f1), resp_msg(status, f2)]


def opened(seed: str, **kw: Any) -> tuple[Capture, Conn, Ids]:
    """A capture with one SLL2 connection after its handshake, and the case's ids (``seed``)."""
    cap = Capture()
    conn = Conn(cap, SLL2, **kw)
    conn.handshake()
    return cap, conn, Ids(seed)


def simple_conn(cap: Capture, link: Link, path: str, seed: str, **kw: Any) -> list[dict[str, Any]]:
    """Handshake, one exchange, close: 9 frames."""
    conn = Conn(cap, link, **kw)
    conn.handshake()
    msgs = exchange(conn, Ids(seed), path)
    conn.close()
    return msgs


# --------------------------------------------------------------------------- file writers


def pcap_bytes(cap: Capture, linktype: int, endian: str = "<", nanos: bool = False,
               snaplen: int = 262144) -> bytes:  # fmt: skip
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for f in cap.frames:
        assert f.ts_ns is not None
        sec, frac = divmod(f.ts_ns, 10**9)
        if not nanos:
            assert frac % 1000 == 0, "sub-microsecond timestamp in a microsecond file"
            frac //= 1000
        orig = f.orig_len if f.orig_len is not None else len(f.data)
        out.append(struct.pack(endian + "IIII", sec, frac, len(f.data), orig) + f.data)
    return b"".join(out)


def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


class PcapNG:
    """A pcapng writer, one section at a time, in either byte order."""

    def __init__(self, endian: str = "<") -> None:
        self.e = endian
        self.parts: list[bytes] = []

    def options(self, opts: list[tuple[int, bytes]]) -> bytes:
        if not opts:
            return b""
        body = b"".join(struct.pack(self.e + "HH", c, len(v)) + _pad4(v) for c, v in opts)
        return body + struct.pack(self.e + "HH", 0, 0)

    def block(self, btype: int, body: bytes) -> None:
        body = _pad4(body)
        total = len(body) + 12
        self.parts.append(struct.pack(self.e + "II", btype, total) + body + struct.pack(self.e + "I", total))

    def shb(self, comment: str = "", endian: str | None = None) -> None:
        if endian:
            self.e = endian
        opts = [(2, b"x86_64"), (3, b"Linux 6.1.0"), (4, b"tracewire craft_edge_cases.py")]
        if comment:
            opts.insert(0, (1, comment.encode()))
        body = struct.pack(self.e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + self.options(opts)
        self.block(0x0A0D0D0A, body)

    def idb(self, linktype: int, name: str, tsresol: int = 6, snaplen: int = 262144) -> None:
        opts = [(2, name.encode())]
        if tsresol != 6:
            opts.append((9, bytes([tsresol])))
        self.block(1, struct.pack(self.e + "HHI", linktype, 0, snaplen) + self.options(opts))

    def _ts(self, ts_ns: int, tsresol: int) -> tuple[int, int]:
        units = ts_ns // 1000 if tsresol == 6 else ts_ns
        return units >> 32, units & 0xFFFFFFFF

    def epb(self, f: Frame, tsresol: int = 6, flags: int | None = None) -> None:
        assert f.ts_ns is not None
        hi, lo = self._ts(f.ts_ns, tsresol)
        orig = f.orig_len if f.orig_len is not None else len(f.data)
        body = struct.pack(self.e + "IIIII", f.iface, hi, lo, len(f.data), orig) + _pad4(f.data)
        if flags is not None:
            body += self.options([(2, struct.pack(self.e + "I", flags))])
        self.block(6, body)

    def spb(self, f: Frame) -> None:
        self.block(3, struct.pack(self.e + "I", len(f.data)) + _pad4(f.data))

    def pb(self, f: Frame) -> None:
        assert f.ts_ns is not None
        hi, lo = self._ts(f.ts_ns, 6)
        head = struct.pack(self.e + "HHIIII", f.iface, 0, hi, lo, len(f.data), len(f.data))
        self.block(2, head + _pad4(f.data))

    def isb(self, iface: int, ts_ns: int, received: int) -> None:
        hi, lo = self._ts(ts_ns, 6)
        opts = self.options([(4, struct.pack(self.e + "Q", received)), (5, struct.pack(self.e + "Q", 0))])
        self.block(5, struct.pack(self.e + "III", iface, hi, lo) + opts)

    def raw(self, btype: int, body: bytes) -> None:
        self.block(btype, body)

    def bytes(self) -> bytes:
        return b"".join(self.parts)


# --------------------------------------------------------------------------- cases


@dataclass
class Result:
    """What a case wrote, for its manifest entry."""

    files: dict[str, bytes]  # relative to captures/ -> content (one file per case, usually)
    messages: list[dict[str, Any]]
    frames: int
    tcp_connections: int
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CaseFn = Callable[[], Result]
CASES: dict[str, tuple[str, CaseFn]] = {}


def case(name: str, tests: str) -> Callable[[CaseFn], CaseFn]:
    def deco(fn: CaseFn) -> CaseFn:
        CASES[name] = (tests, fn)
        return fn

    return deco


def pcap_result(name: str, cap: Capture, linktype: int, msgs: list[dict[str, Any]], conns: int,
                **kw: Any) -> Result:  # fmt: skip
    return Result({f"edge/{name}.pcap": pcap_bytes(cap, linktype)}, msgs, len(cap.frames), conns, **kw)


# ---- link types


def _linktype_case(name: str, link: Link, v4: bool = True, v6: bool = False, endian: str = "<",
                   stem: str | None = None, seed: str | None = None) -> Result:  # fmt: skip
    """A connection over IPv4 and/or IPv6 on ``link``: paths /STEM/v4 and /STEM/v6, ids from
    SEED4 and SEED6 (STEM and SEED default to the case name)."""
    cap = Capture()
    msgs: list[dict[str, Any]] = []
    stem, seed = stem or name, seed or name
    if v4:
        msgs += simple_conn(cap, link, f"/{stem}/v4", seed + "4", client=(POD_IP, 41000),
                            server=(PEER_IP, 80))  # fmt: skip
    if v6:
        msgs += simple_conn(cap, link, f"/{stem}/v6", seed + "6", client=(POD_IP6, 41001),
                            server=(PEER_IP6, 80))  # fmt: skip
    data = pcap_bytes(cap, link.linktype, endian=endian)
    return Result({f"edge/{name}.pcap": data}, msgs, len(cap.frames), int(v4) + int(v6))


LINKTYPE_CASES: list[tuple[str, str, Link, dict[str, Any]]] = [
    ("linktype-eth", "Ethernet (1), IPv4", ETH, {}),
    ("linktype-eth-vlan", "Ethernet with an 802.1Q tag (VLAN 100)", ETH_VLAN, {}),
    ("linktype-eth-qinq", "Ethernet with QinQ: 802.1ad 0x88a8 (VLAN 200) then 802.1Q 0x8100 (VLAN 100)",
     ETH_QINQ, {}),
    ("linktype-sll", "Linux cooked v1 (113) on lo, as older libpcap writes for -i any", SLL, {}),
    ("linktype-sll2", "Linux cooked v2 (276) on lo (ifindex 1, ARPHRD_LOOPBACK), as ksniff writes", SLL2, {}),
    ("linktype-null", "BSD loopback NULL (0): AF_INET 2 and AF_INET6 30 in host (little-endian) order",
     NULL_LE, {"v6": True}),
    ("linktype-null-be", "NULL (0) from a big-endian host: big-endian pcap, AF_INET 2, AF_INET6 24",
     NULL_BE, {"v6": True, "endian": ">", "stem": "null-be", "seed": "nb"}),
    ("linktype-loop", "OpenBSD LOOP (108): AF_INET 2 and AF_INET6 24 in network byte order",
     LOOP, {"v6": True}),
    ("linktype-raw", "raw IP (101): IPv4 and IPv6 packets, version from the first nibble", RAW, {"v6": True}),
    ("linktype-ipv4", "raw IPv4 (228)", RAW4, {}),
    ("linktype-ipv6", "raw IPv6 (229)", RAW6, {"v4": False, "v6": True}),
]  # fmt: skip
for _name, _tests, _link, _options in LINKTYPE_CASES:
    case(_name, _tests)(partial(_linktype_case, _name, _link, **_options))


# ---- IP and TCP options


def _ip_opts(who: str, flags: str) -> list[Any]:
    if "S" in flags:  # Record Route with 9 slots + EOL: 40 bytes of options, IHL 15 (the maximum)
        return [IPOption_RR(length=39, routers=["0.0.0.0"] * 9)]
    return [IPOption_Router_Alert()]  # 4 bytes, IHL 6


@case("ipv4-options", "IPv4 with options: Record Route on SYNs (IHL 15), Router Alert on the rest (IHL 6)")
def c_ipv4_options() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ipv4/options", "ipo", ip_options=_ip_opts)
    return pcap_result("ipv4-options", cap, LT_SLL2, msgs, 1)


@case("ipv6-exthdrs", "IPv6 with hop-by-hop and destination-options extension headers before TCP")
def c_ipv6_ext() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ipv6/exthdrs", "ip6x", client=("::1", 41000), server=("::1", 80),
                       v6_exthdrs=True)  # fmt: skip
    return pcap_result("ipv6-exthdrs", cap, LT_SLL2, msgs, 1)


@case("tcp-options", "TCP options: MSS, SACK-permitted, timestamps, NOP, window scale; SACK blocks")
def c_tcp_options() -> Result:
    cap, conn, ids = opened("tcpopt", tcp_options=True)
    msgs = exchange(conn, ids, "/tcp/options", ack=False)
    # a duplicate ACK carrying a SACK block (as after a loss), then the usual ACK
    base = conn.nxt["s"]
    sack = [("NOP", None), ("NOP", None), ("SAck", (base + 10, base + 20))]
    conn.packet("c", "A", tcp_opts=sack)
    conn.ack("c")
    conn.close()
    return pcap_result("tcp-options", cap, LT_SLL2, msgs, 1)


# ---- pcap variants


def _pcap_variant(name: str, endian: str, nanos: bool) -> Result:
    cap = Capture(sub_us=nanos)
    msgs = simple_conn(cap, SLL2, f"/{name}", name)
    first, last = cap.frames[0].ts_ns, cap.frames[-1].ts_ns
    data = pcap_bytes(cap, LT_SLL2, endian=endian, nanos=nanos)
    extra = {"first_ts_ns": first, "last_ts_ns": last}
    return Result({f"edge/{name}.pcap": data}, msgs, len(cap.frames), 1, extra=extra)


PCAP_VARIANTS: list[tuple[str, str, str, bool]] = [
    ("pcap-le-us", "pcap little-endian, microseconds (magic a1b2c3d4 written LE: what tcpdump writes)",
     "<", False),
    ("pcap-be-us", "pcap big-endian, microseconds", ">", False),
    ("pcap-le-ns", "pcap little-endian, nanoseconds (magic a1b23c4d), sub-microsecond timestamps", "<", True),
    ("pcap-be-ns", "pcap big-endian, nanoseconds, sub-microsecond timestamps", ">", True),
]  # fmt: skip
for _name, _tests, _endian, _nanos in PCAP_VARIANTS:
    case(_name, _tests)(partial(_pcap_variant, _name, _endian, _nanos))


# ---- pcapng


def one_section(cap: Capture, endian: str = "<", comment: str = "", block: str = "epb", snaplen: int = 262144,
                after_request: tuple[int, bytes] | None = None) -> bytes:  # fmt: skip
    """One section, one SLL2 interface, a ``block`` ("epb", "spb" or "pb") per frame;
    ``after_request``: a (type, body) block after the fourth frame (the request)."""
    ng = PcapNG(endian)
    ng.shb(comment)
    ng.idb(LT_SLL2, "any", snaplen=snaplen)
    write = {"epb": ng.epb, "spb": ng.spb, "pb": ng.pb}[block]
    for i, f in enumerate(cap.frames):
        write(f)
        if i == 3 and after_request is not None:
            ng.raw(*after_request)
    return ng.bytes()


@case("pcapng-two-interfaces",
      "pcapng, one section, two IDBs: SLL2 lo (if_tsresol 6) and Ethernet eth0 (if_tsresol 9); "
      "EPBs on both (with epb_flags), ISBs at the end")  # fmt: skip
def c_ng_two_ifaces() -> Result:
    cap = Capture(sub_us=True)
    a = Conn(cap, SLL2, iface=0)
    b = Conn(cap, ETH, client=(POD_IP, 42000), server=(PEER_IP, 80), iface=1)
    ia, ib = Ids("ng2a"), Ids("ng2b")
    a.handshake()
    b.handshake()
    msgs = [req_msg("GET", "/ng/lo", a.send("c", request(ia, "/ng/lo")))]
    msgs.append(req_msg("GET", "/ng/eth0", b.send("c", request(ib, "/ng/eth0"))))
    msgs.append(resp_msg(200, a.send("s", response())))
    msgs.append(resp_msg(200, b.send("s", response())))
    a.close()
    b.close()
    # lo frames get whole microseconds (if_tsresol 6); eth0 frames keep their nanoseconds.
    for f in cap.frames:
        if f.iface == 0 and f.ts_ns is not None:
            f.ts_ns -= f.ts_ns % 1000
    ng = PcapNG("<")
    ng.shb("two interfaces, two link types, two timestamp resolutions")
    ng.idb(LT_SLL2, "any", tsresol=6)
    ng.idb(LT_ETHERNET, "eth0", tsresol=9)
    for f in cap.frames:  # eth0 EPBs say their direction: epb_flags 2 outbound, 1 inbound
        ng.epb(f, tsresol=9 if f.iface else 6, flags=(2 if f.outgoing else 1) if f.iface else None)
    last = cap.frames[-1].ts_ns or 0
    ng.isb(0, last, sum(1 for f in cap.frames if f.iface == 0))
    ng.isb(1, last, sum(1 for f in cap.frames if f.iface == 1))
    files = {"edge/pcapng-two-interfaces.pcapng": ng.bytes()}
    extra = {"first_ts_ns": cap.frames[0].ts_ns, "last_ts_ns": last}
    return Result(files, msgs, len(cap.frames), 2, extra=extra)


@case("pcapng-two-sections",
      "pcapng with two sections: little-endian section with an SLL2 IDB, then a big-endian "
      "section whose own IDB 0 is Ethernet (interface ids restart)")  # fmt: skip
def c_ng_two_sections() -> Result:
    cap1, cap2 = Capture(), Capture()
    m1 = simple_conn(cap1, SLL2, "/section/one", "sec1")
    m2 = simple_conn(cap2, ETH, "/section/two", "sec2", client=(POD_IP, 42000), server=(PEER_IP, 80))
    offset = len(cap1.frames)
    for f in cap2.frames:  # the second section continues in time
        f.ts_ns = (f.ts_ns or 0) + offset * STEP_NS
    ng = PcapNG("<")
    ng.shb("section 1 of 2")
    ng.idb(LT_SLL2, "any")
    for f in cap1.frames:
        ng.epb(f)
    ng.shb("section 2 of 2", endian=">")
    ng.idb(LT_ETHERNET, "eth0")
    for f in cap2.frames:
        ng.epb(f)
    msgs = m1 + [{**m, "frame": m["frame"] + offset} for m in m2]
    return Result({"edge/pcapng-two-sections.pcapng": ng.bytes()}, msgs, offset + len(cap2.frames), 2)


@case("pcapng-spb", "pcapng with Simple Packet Blocks only (no timestamps, interface 0)")
def c_ng_spb() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/spb", "spb")
    data = one_section(cap, block="spb", snaplen=65535)
    extra = {"first_ts_ns": None, "note": "SPBs carry no timestamp: every frame has none (tshark shows 0)"}
    return Result({"edge/pcapng-spb.pcapng": data}, msgs, len(cap.frames), 1, extra=extra)


@case("pcapng-obsolete-pb", "pcapng with obsolete Packet Blocks (type 2), as very old writers made")
def c_ng_pb() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/pb", "pb")
    data = one_section(cap, block="pb")
    return Result({"edge/pcapng-obsolete-pb.pcapng": data}, msgs, len(cap.frames), 1)


# 0x00000BAD would be a Custom Block (which Wireshark shows as a frame of its own): an
# unassigned type is what a reader must skip by its length.
UNKNOWN_BLOCK = 0x0000ABCD


@case("pcapng-unknown-block", "pcapng with an unassigned block type 0x0000ABCD between EPBs: skip it")
def c_ng_unknown() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/unknown", "unk")
    unknown = (UNKNOWN_BLOCK, b"not a block anyone knows, skip me by its length\0")
    data = one_section(cap, after_request=unknown)
    return Result({"edge/pcapng-unknown-block.pcapng": data}, msgs, len(cap.frames), 1)


@case("pcapng-custom-block",
      "pcapng with a Custom Block (type 0x00000BAD, PEN 32473) between EPBs: not a packet, but "
      "Wireshark gives it a frame number")  # fmt: skip
def c_ng_custom() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/custom", "custom")
    # right after the request: Wireshark numbers it frame 5
    data = one_section(cap, after_request=(0x00000BAD, struct.pack("<I", 32473) + b"tracewire custom data"))
    msgs = [{**m, "frame": m["frame"] + (m["frame"] > 4)} for m in msgs]
    extra = {
        "packets": len(cap.frames),
        "note": "frames counts the Custom Block too (frame 5), as Wireshark numbers it; "
        "packets is the number of packet records. Frame numbers after it follow Wireshark's.",
    }
    return Result({"edge/pcapng-custom-block.pcapng": data}, msgs, len(cap.frames) + 1, 1, extra=extra)


@case("pcapng-be", "pcapng, one big-endian section (byte-order magic 1a2b3c4d written big-endian)")
def c_ng_be() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/big-endian", "ngbe")
    data = one_section(cap, endian=">", comment="big-endian section")
    extra = {"first_ts_ns": cap.frames[0].ts_ns}
    return Result({"edge/pcapng-be.pcapng": data}, msgs, len(cap.frames), 1, extra=extra)


@case("pcapng-named-pcap", "a pcapng file named .pcap: the format comes from the magic, not the name")
def c_ng_named() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/ng/named-pcap", "ngnamed")
    return Result({"edge/pcapng-named.pcap": one_section(cap)}, msgs, len(cap.frames), 1)


@case("gzip", "gzip-compressed pcap (.pcap.gz, SLL2)")
def c_gzip() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/gzip", "gz")
    data = gzip.compress(pcap_bytes(cap, LT_SLL2), mtime=0)
    return Result({"edge/gzip-sll2.pcap.gz": data}, msgs, len(cap.frames), 1)


# ---- TCP


@case("tcp-out-of-order",
      "TCP out of order: request head in 2 segments sent second-first; response body in 3 "
      "segments delivered 1, 3, 2")  # fmt: skip
def c_ooo() -> Result:
    cap, conn, ids = opened("ooo")
    req = conn.pieces("c", request(ids, "/tcp/out-of-order"), [60])
    conn.put("c", req[1])
    f_req = conn.put("c", req[0])
    body = b'{"reviews":[' + b'{"text":"' + b"x" * 300 + b'"}]}'
    rsp = response(body=body)
    head_len = rsp.index(b"\r\n\r\n") + 4
    parts = conn.pieces("s", rsp, [head_len, head_len + 100, head_len + 200])
    f_rsp = conn.put("s", parts[0])
    conn.put("s", parts[1])
    conn.put("s", parts[3])
    conn.put("s", parts[2])
    conn.ack("c")
    conn.close()
    msgs = [req_msg("GET", "/tcp/out-of-order", f_req), resp_msg(200, f_rsp)]
    return pcap_result("tcp-out-of-order", cap, LT_SLL2, msgs, 1)


@case("tcp-retransmission",
      "TCP retransmissions: an exact duplicate of the request; in the response a segment that "
      "overlaps received data with the SAME bytes and adds new ones, and an exact duplicate")  # fmt: skip
def c_retrans() -> Result:
    cap, conn, ids = opened("retrans")
    req = conn.pieces("c", request(ids, "/tcp/retransmission"), [])[0]
    f_req = conn.put("c", req)
    conn.put("c", req)  # exact retransmission
    body = bytes(random.Random("retrans-body").choice(b"abcdefghij") for _ in range(400))
    rsp = response(body=body, extra=[("content-type", "text/plain")])
    head_len = rsp.index(b"\r\n\r\n") + 4
    base = conn.nxt["s"]
    a, b, c = head_len + 100, head_len + 200, head_len + 300
    f_rsp = conn.packet("s", "PA", rsp[:a], seq=base)
    conn.packet("s", "PA", rsp[a:b], seq=base + a)
    conn.packet("s", "PA", rsp[a + 50 : c], seq=base + a + 50)  # overlap 50 old bytes, 100 new
    conn.packet("s", "PA", rsp[a:b], seq=base + a)  # exact duplicate
    conn.packet("s", "PA", rsp[c:], seq=base + c)
    conn.nxt["s"] = (base + len(rsp)) % 2**32
    conn.ack("c")
    conn.close()
    msgs = [req_msg("GET", "/tcp/retransmission", f_req), resp_msg(200, f_rsp)]
    return pcap_result("tcp-retransmission", cap, LT_SLL2, msgs, 1)


@case(
    "tcp-overlap-conflict",
    "TCP overlap with DIFFERENT bytes inside a response body (a retransmission that disagrees)",
)
def c_overlap_conflict() -> Result:
    cap, conn, ids = opened("conflict")
    f_req = conn.send("c", request(ids, "/tcp/overlap-conflict"))
    body = b"A" * 200
    rsp = response(body=body, extra=[("content-type", "text/plain")])
    head_len = rsp.index(b"\r\n\r\n") + 4
    base = conn.nxt["s"]
    f_rsp = conn.packet("s", "PA", rsp[: head_len + 100], seq=base)
    f_bad = conn.packet("s", "PA", b"B" * 60, seq=base + head_len + 80)  # 20 old bytes differ
    conn.packet("s", "PA", rsp[head_len + 100 :], seq=base + head_len + 100)
    conn.nxt["s"] = (base + len(rsp)) % 2**32
    conn.ack("c")
    f2 = exchange(conn, ids, "/tcp/after-conflict")
    conn.close()
    msgs = [req_msg("GET", "/tcp/overlap-conflict", f_req), resp_msg(200, f_rsp), *f2]
    anomalies = [{"kind": "tcp-overlap-conflict", "frame": f_bad, "bytes": 20}]
    return pcap_result("tcp-overlap-conflict", cap, LT_SLL2, msgs, 1, anomalies=anomalies)


@case("tcp-gap-body",
      "a segment missing (dropped by tcpdump) inside a Content-Length response body, then a "
      "second exchange on the same connection")  # fmt: skip
def c_gap_body() -> Result:
    cap, conn, ids = opened("gapbody")
    f_req = conn.send("c", request(ids, "/tcp/gap-in-body"))
    body = b"0123456789" * 30
    rsp = response(body=body, extra=[("content-type", "text/plain")])
    head_len = rsp.index(b"\r\n\r\n") + 4
    parts = conn.pieces("s", rsp, [head_len, head_len + 100, head_len + 200])
    f_rsp = conn.put("s", parts[0])
    conn.put("s", parts[1])
    # parts[2] (100 bytes) was on the wire but not captured
    f_after = conn.put("s", parts[3])
    conn.ack("c")
    more = exchange(conn, ids, "/tcp/after-gap")
    conn.close()
    msgs = [req_msg("GET", "/tcp/gap-in-body", f_req), resp_msg(200, f_rsp), *more]
    anomalies = [{"kind": "tcp-gap", "frame": f_after, "bytes": 100}]
    return pcap_result("tcp-gap-body", cap, LT_SLL2, msgs, 1, anomalies=anomalies)


@case("tcp-gap-headers",
      "a segment missing inside a request's header block; the response to it, then a second "
      "exchange on the same connection")  # fmt: skip
def c_gap_headers() -> Result:
    cap, conn, ids = opened("gaphdr")
    req = request(ids, "/tcp/gap-in-headers", extra=[("x-filler", "f" * 80)])
    parts = conn.pieces("c", req, [70, 150])
    conn.put("c", parts[0])
    # parts[1] (80 bytes of headers) not captured
    f_end = conn.put("c", parts[2])
    f_rsp = conn.send("s", response())
    conn.ack("c")
    f_req2 = conn.send("c", request(ids, "/tcp/after-gap"))
    f_rsp2 = conn.send("s", response())
    conn.ack("c")
    conn.close()
    msgs = [
        req_msg("GET", "/tcp/gap-in-headers", f_end, complete=False),
        resp_msg(200, f_rsp),
        req_msg("GET", "/tcp/after-gap", f_req2),
        resp_msg(200, f_rsp2),
    ]
    anomalies = [
        {"kind": "tcp-gap", "frame": f_end, "bytes": 80},
        {"kind": "http1-resync", "frame": f_req2},
    ]
    return pcap_result("tcp-gap-headers", cap, LT_SLL2, msgs, 1, anomalies=anomalies)


@case("tcp-seq-wrap",
      "sequence numbers wrap: client ISN 2**32-100 with a request spanning the wrap, server ISN "
      "2**32-10 with a response spanning it, then a second exchange past the wrap")  # fmt: skip
def c_wrap() -> Result:
    cap, conn, ids = opened("wrap", isn=(2**32 - 100, 2**32 - 10))
    req = conn.pieces("c", request(ids, "/tcp/seq-wrap"), [150])
    conn.put("c", req[0])
    f_req = conn.put("c", req[1])
    f_rsp = conn.send("s", response())
    conn.ack("c")
    more = exchange(conn, ids, "/tcp/after-wrap")
    conn.close()
    msgs = [req_msg("GET", "/tcp/seq-wrap", f_req), resp_msg(200, f_rsp), *more]
    return pcap_result("tcp-seq-wrap", cap, LT_SLL2, msgs, 1)


@case(
    "tcp-port-reuse",
    "the same 4-tuple reused: a connection closed with FIN, then a new SYN with a different ISN",
)
def c_reuse() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/tcp/first", "reuse1", isn=(1_000_000, 5_000_000))
    msgs += simple_conn(cap, SLL2, "/tcp/second", "reuse2", isn=(3_500_000_000, 123_456))
    return pcap_result("tcp-port-reuse", cap, LT_SLL2, msgs, 2)


@case("tcp-rst", "a connection reset: one full exchange, then a second request answered by RST (no response)")
def c_rst() -> Result:
    cap, conn, ids = opened("rst")
    msgs = exchange(conn, ids, "/tcp/before-reset")
    f_req = conn.send("c", request(ids, "/tcp/reset"))
    f_rst = conn.packet("s", "RA")
    msgs.append(req_msg("GET", "/tcp/reset", f_req))
    extra = {"note": f"the server resets the connection in frame {f_rst}: the last request has no response"}
    return pcap_result("tcp-rst", cap, LT_SLL2, msgs, 1, extra=extra)


@case("tcp-no-syn", "a connection already open when the capture started: no SYN, starts at a request")
def c_no_syn() -> Result:
    cap = Capture()
    conn = Conn(cap, SLL2, isn=(2_000_000_000, 3_000_000_000))
    ids = Ids("nosyn")
    msgs = exchange(conn, ids, "/tcp/no-syn/1")
    msgs += exchange(conn, ids, "/tcp/no-syn/2")
    return pcap_result("tcp-no-syn", cap, LT_SLL2, msgs, 1)


@case(
    "tcp-no-syn-midmessage", "capture starts inside a response body (no SYN): skip to the next message head"
)
def c_no_syn_mid() -> Result:
    cap = Capture()
    conn = Conn(cap, SLL2, isn=(2_000_000_000, 3_000_000_000))
    ids = Ids("nosynmid")
    conn.send("s", b'Reviewer2","text":"Absolutely fun and entertaining."}]}')  # tail of a body
    conn.ack("c")
    f_req = conn.send("c", request(ids, "/tcp/no-syn/next"))
    f_rsp = conn.send("s", response())
    conn.ack("c")
    msgs = [req_msg("GET", "/tcp/no-syn/next", f_req), resp_msg(200, f_rsp)]
    anomalies = [{"kind": "http1-resync", "frame": f_rsp}]
    return pcap_result("tcp-no-syn-midmessage", cap, LT_SLL2, msgs, 1, anomalies=anomalies)


# ---- truncation and not-captures


@case("truncated-record",
      "the last record is cut short (header says N bytes, the file ends earlier), after two "
      "complete exchanges: as when ksniff is stopped with Ctrl-C")  # fmt: skip
def c_truncated() -> Result:
    cap, conn, ids = opened("trunc")
    msgs = exchange(conn, ids, "/truncated/1")
    msgs += exchange(conn, ids, "/truncated/2")
    complete = len(cap.frames)
    conn.send("c", request(ids, "/truncated/3"))
    data = pcap_bytes(cap, LT_SLL2)
    cut = len(cap.frames[-1].data) // 2
    data = data[: len(data) - len(cap.frames[-1].data) + cut]
    anomalies = [{"kind": "truncated-record", "frame": complete + 1}]
    extra = {"note": f"record {complete + 1} claims {len(cap.frames[-1].data)} bytes, {cut} follow"}
    return Result({"edge/truncated-record.pcap": data}, msgs, complete, 1, anomalies, extra=extra)


@case("truncated-record-header", "the file ends 7 bytes into a record header, after one exchange")
def c_truncated_hdr() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/truncated/header", "trunchdr")
    n = len(cap.frames)
    data = pcap_bytes(cap, LT_SLL2) + struct.pack("<II", BASE_NS // 10**9 + 60, 0)[:7]
    anomalies = [{"kind": "truncated-record", "frame": n + 1}]
    return Result({"edge/truncated-record-header.pcap": data}, msgs, n, 1, anomalies)


@case("truncated-block-pcapng", "pcapng whose last EPB is cut short")
def c_truncated_ng() -> Result:
    cap, conn, ids = opened("truncng")
    msgs = exchange(conn, ids, "/truncated/pcapng")
    complete = len(cap.frames)
    conn.send("c", request(ids, "/truncated/pcapng/2"))
    ng = PcapNG("<")
    ng.shb()
    ng.idb(LT_SLL2, "any")
    for f in cap.frames:
        ng.epb(f)
    data = ng.bytes()
    data = data[: len(data) - 100]
    anomalies = [{"kind": "truncated-record", "frame": complete + 1}]
    return Result({"edge/truncated-block.pcapng": data}, msgs, complete, 1, anomalies)


@case("header-only", "a pcap with only its 24-byte file header: a valid capture of no packets")
def c_header_only() -> Result:
    return Result({"edge/header-only.pcap": pcap_bytes(Capture(), LT_SLL2)}, [], 0, 0)


@case("empty", "an empty file (0 bytes): not a capture, fatal")
def c_empty() -> Result:
    return Result({"edge/empty.pcap": b""}, [], 0, 0, [{"kind": "not-a-capture", "frame": None}],
                  error="fatal")  # fmt: skip


@case("not-a-capture", "a text file named .pcap: not a capture, fatal")
def c_not_capture() -> Result:
    text = b"GET / HTTP/1.1\r\nHost: example\r\n\r\nThis is a text file, not a packet capture.\n"
    return Result({"edge/not-a-capture.pcap": text}, [], 0, 0, [{"kind": "not-a-capture", "frame": None}],
                  error="fatal")  # fmt: skip


# ---- not TCP


@case("mixed-non-tcp",
      "non-TCP frames among an HTTP exchange (SLL2, lo and eth0): UDP DNS query and answer, "
      "ICMP echo and reply, ARP request and reply: counted, not errors")  # fmt: skip
def c_mixed() -> Result:
    cap = Capture()

    def add_eth0(pkt: Packet, out: bool) -> int:
        return cap.add(_sll2_eth0(bytes(pkt), out, 4), LT_SLL2)

    pod_mac, gw_mac = (bytes.fromhex(m.replace(":", "")) for m in (POD_MAC, GW_MAC))
    arp_req = ARP(op=1, hwsrc=POD_MAC, psrc=POD_IP, pdst="10.244.1.1")
    cap.add(bytes(sll2_header(0x0806, 3, ARPHRD_ETHER, PACKET_OUTGOING, pod_mac) / arp_req), LT_SLL2)
    arp_rep = ARP(op=2, hwsrc=GW_MAC, psrc="10.244.1.1", hwdst=POD_MAC, pdst=POD_IP)
    cap.add(bytes(sll2_header(0x0806, 3, ARPHRD_ETHER, PACKET_HOST, gw_mac) / arp_rep), LT_SLL2)
    q = DNS(id=0x4242, rd=1, qd=DNSQR(qname="details.default.svc.cluster.local"))
    add_eth0(IP(src=POD_IP, dst="10.96.0.10", id=7) / UDP(sport=53211, dport=53) / q, True)
    a = DNS(id=0x4242, qr=1, aa=1, rd=1, ra=1, qd=q.qd,
            an=DNSRR(rrname="details.default.svc.cluster.local", ttl=30, rdata="10.96.56.78"))  # fmt: skip
    add_eth0(IP(src="10.96.0.10", dst=POD_IP, id=8) / UDP(sport=53, dport=53211) / a, False)
    add_eth0(IP(src=POD_IP, dst=PEER_IP, id=9) / ICMP(type=8, id=1, seq=1) / Raw(b"ping" * 8), True)
    add_eth0(IP(src=PEER_IP, dst=POD_IP, id=10) / ICMP(type=0, id=1, seq=1) / Raw(b"ping" * 8), False)
    msgs = simple_conn(cap, SLL2, "/mixed", "mixed")
    extra = {"non_tcp": {"arp": 2, "udp": 2, "icmp": 2}}
    return pcap_result("mixed-non-tcp", cap, LT_SLL2, msgs, 1, extra=extra)


@case("ipv4-fragment",
      "an IPv4 UDP datagram in 3 fragments (offsets 0, 1480, 2960) among an HTTP exchange: "
      "counted, not errors")  # fmt: skip
def c_fragment() -> Result:
    cap = Capture()
    payload = bytes(random.Random("frag").getrandbits(8) for _ in range(3500))
    dgram = bytes(
        IP(src=POD_IP, dst=PEER_IP, id=0x5151, flags=0) / UDP(sport=40000, dport=9999) / Raw(payload)
    )
    ip_payload = dgram[20:]
    for off in range(0, len(ip_payload), 1480):
        chunk = ip_payload[off : off + 1480]
        mf = off + 1480 < len(ip_payload)
        frag = IP(src=POD_IP, dst=PEER_IP, id=0x5151, flags="MF" if mf else 0, frag=off // 8, proto=17)
        cap.add(_sll2_eth0(bytes(frag / Raw(chunk)), True, 4), LT_SLL2)
    msgs = simple_conn(cap, SLL2, "/fragment", "frag")
    extra = {"non_tcp": {"ipv4-fragment": 3}}
    return pcap_result("ipv4-fragment", cap, LT_SLL2, msgs, 1, extra=extra)


# ---- HTTP/1.1 over TCP


@case("http-pipelined",
      "pipelining: 3 requests back to back (the third's head split across 2 segments); "
      "responses 1 and 2 in one segment, 3 in another")  # fmt: skip
def c_pipelined() -> Result:
    cap, conn, ids = opened("pipe")
    reqs = b"".join(request(ids, f"/pipelined/{i}") for i in (1, 2, 3))
    cut = len(reqs) - 40
    f1 = conn.send("c", reqs[:cut])
    f2 = conn.send("c", reqs[cut:])
    f3 = conn.send("s", response(body=b'{"n":1}') + response(body=b'{"n":2}'))
    f4 = conn.send("s", response(body=b'{"n":3}'))
    conn.ack("c")
    conn.close()
    msgs = [req_msg("GET", "/pipelined/1", f1), req_msg("GET", "/pipelined/2", f1),
            req_msg("GET", "/pipelined/3", f2), resp_msg(200, f3), resp_msg(200, f3),
            resp_msg(200, f4)]  # fmt: skip
    return pcap_result("http-pipelined", cap, LT_SLL2, msgs, 1)


@case("http-chunked-trailers",
      "chunked response with trailer fields (Trailer: server-timing, x-checksum) and a chunk "
      "extension, a chunk-size line split across segments, then a second exchange")  # fmt: skip
def c_chunked() -> Result:
    cap, conn, ids = opened("chunked")
    f_req = conn.send("c", request(ids, "/http/chunked"))
    head = response(
        length=False,
        body=b"",
        extra=[("transfer-encoding", "chunked"), ("trailer", "server-timing, x-checksum")],
    )
    c1, c2 = b'{"reviews":[{"reviewer":"Reviewer1",', b'"text":"' + b"y" * 40 + b'"}]}'
    body = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\n" % (len(c1), c1, len(c2), c2)
    trailers = b"server-timing: upstream;dur=12\r\nx-checksum: 5d41402abc4b2a76\r\n\r\n"
    stream = head + body + trailers
    split1 = len(head) + len(b"%x\r\n" % len(c1)) + len(c1) + 2 + 1  # inside the 2nd size line
    split2 = len(head) + len(body) + 10  # inside the trailers
    parts = conn.pieces("s", stream, [len(head), split1, split2])
    f_rsp = conn.put("s", parts[0])
    for p in parts[1:]:
        conn.put("s", p)
    conn.ack("c")
    more = exchange(conn, ids, "/http/after-chunked")
    conn.close()
    msgs = [req_msg("GET", "/http/chunked", f_req), resp_msg(200, f_rsp), *more]
    return pcap_result("http-chunked-trailers", cap, LT_SLL2, msgs, 1)


@case("http-head",
      "HEAD: the response has Content-Length 5120 and no body; a GET with a body follows on the "
      "same connection")  # fmt: skip
def c_head() -> Result:
    cap, conn, ids = opened("head")
    f1 = conn.send("c", request(ids, "/http/head", method="HEAD"))
    rsp = response(length=False, body=b"", extra=[("content-length", "5120")])
    f2 = conn.send("s", rsp)
    conn.ack("c")
    more = exchange(conn, ids, "/http/after-head")
    conn.close()
    msgs = [req_msg("HEAD", "/http/head", f1), resp_msg(200, f2), *more]
    return pcap_result("http-head", cap, LT_SLL2, msgs, 1)


@case("http-100-continue", "POST with Expect: 100-continue: 100 Continue, then the body, then 201 Created")
def c_continue() -> Result:
    cap, conn, ids = opened("continue")
    body = b'{"reviewer":"Reviewer3","rating":4,"text":"' + b"z" * 30 + b'"}'
    req = request(ids, "/http/upload", method="POST", body=body,
                  extra=[("content-type", "application/json"), ("expect", "100-continue")])  # fmt: skip
    head = req[: len(req) - len(body)]
    f1 = conn.send("c", head)
    f2 = conn.send("s", b"HTTP/1.1 100 Continue\r\n\r\n")
    conn.send("c", body)
    f3 = conn.send("s", response(201, body=b'{"created":true}'))
    conn.ack("c")
    conn.close()
    msgs = [req_msg("POST", "/http/upload", f1), resp_msg(100, f2), resp_msg(201, f3)]
    return pcap_result("http-100-continue", cap, LT_SLL2, msgs, 1)


@case("http-until-close",
      "a response without Content-Length or chunking (Connection: close): the body ends with "
      "the server's FIN")  # fmt: skip
def c_until_close() -> Result:
    cap, conn, ids = opened("close")
    f1 = conn.send("c", request(ids, "/http/until-close"))
    head = response(length=False, body=b"", extra=[("connection", "close")])
    f2 = conn.send("s", head)
    conn.send("s", b'{"part":1,"text":"' + b"q" * 100 + b'",')
    conn.send("s", b'"part2":"' + b"r" * 100 + b'"}')
    conn.ack("c")
    conn.fin("s")
    conn.fin("c")
    conn.ack("s")
    msgs = [req_msg("GET", "/http/until-close", f1), resp_msg(200, f2)]
    return pcap_result("http-until-close", cap, LT_SLL2, msgs, 1)


@case("http-port-31337", "HTTP/1.1 on a non-standard port (31337): detect by content, not port")
def c_port_31337() -> Result:
    cap = Capture()
    msgs = simple_conn(cap, SLL2, "/http/port-31337", "31337", server=(POD_IP, 31337))
    return pcap_result("http-port-31337", cap, LT_SLL2, msgs, 1)


@case("non-http-port-80", "random binary both ways on port 80: not HTTP whatever the port says")
def c_binary_80() -> Result:
    cap = Capture()
    conn = Conn(cap, SLL2)
    conn.handshake()
    rng = random.Random("binary")
    for who in ("c", "s", "c", "s"):
        data = bytes([0x16, 0x03, 0x7F]) + bytes(rng.getrandbits(8) for _ in range(200))
        conn.send(who, data)
    conn.ack("c")
    conn.close()
    return pcap_result("non-http-port-80", cap, LT_SLL2, [], 1)


# --------------------------------------------------------------------------- public files

PUBLIC_FILES = {
    "tcp-handshake-nano.pcap": "nanosecond pcap (magic a1b23c4d), Linux cooked v1 (113): a TCP "
    "handshake, 3 frames, no HTTP",
    "ipv4_tcp_http_xml.pcap": "real traffic: one Ethernet frame holding a whole HTTP/1.1 200 response "
    "with an XML body; no handshake, its request not captured",
    "ipv4_tcp_http_xml_tso.pcap": "real traffic: one 2030-byte Ethernet frame, larger than the MTU as "
    "TSO produces, holding a whole HTTP POST request with an XML body",
    "empty.pcapng": "a pcapng section header and one Ethernet IDB, no packets: a valid capture of nothing",
}
PUBLIC_ORIGIN = "the-tcpdump-group/tcpdump@39b50f76672b tests/"


def copy_public() -> list[dict[str, Any]]:
    entries = []
    if PUBLIC_SRC.is_dir():
        PUBLIC.mkdir(exist_ok=True)
        for name in PUBLIC_FILES:
            shutil.copyfile(PUBLIC_SRC / name, PUBLIC / name)
        shutil.copyfile(PUBLIC_SRC / "LICENSE", PUBLIC / "LICENSE.tcpdump")
    for name, tests in PUBLIC_FILES.items():
        path = PUBLIC / name
        if not path.exists():
            continue
        s = tshark_summary(path)
        entries.append(
            {
                "file": f"public/{name}",
                "made_by": f"{OWNER}:copy {PUBLIC_ORIGIN}{name} (BSD-3-Clause)",
                "tests": tests,
                **describe_format(path),
                "frames": s["frames"],
                "tcp_connections": s["tcp_connections"],
                "http_messages": s["http_messages"],
                "anomalies": [],
                "error": None,
            }
        )
    return entries


# --------------------------------------------------------------------------- checks

# What tshark 4.0 shows differently from the intent, per case (see README.md). Keys are those of
# the manifest's "tshark" object; "http_messages" there is what tshark shows.
TSHARK_DIFFERS: dict[str, dict[str, Any]] = {
    "tcp-overlap-conflict": {
        "requests": 2,
        "responses": 2,
        "note": "tshark flags the conflicting segment and the next one as out-of-order and "
        "reports the first response's head in the frame after the conflict, not where it arrived",
    },
    "tcp-gap-body": {
        "requests": 2,
        "responses": 0,
        "note": "tshark waits for the missing body segment forever and holds everything after the "
        "hole in that direction: it shows neither response",
    },
    "tcp-gap-headers": {
        "requests": 0,
        "responses": 2,
        "note": "tshark waits for the missing header bytes forever and holds everything after the "
        "hole in that direction: it shows neither request",
    },
    "tcp-no-syn-midmessage": {
        "requests": 1,
        "responses": 0,
        "note": "tshark takes the body tail for the start of a message head and swallows the next "
        "response into it",
    },
    "truncated-record": {"exit_status": 2, "note": "tshark: cut short in the middle of a packet"},
    "truncated-record-header": {"exit_status": 2, "note": "tshark: cut short in the middle of a packet"},
    "truncated-block-pcapng": {"exit_status": 2, "note": "tshark: cut short in the middle of a packet"},
    "empty": {"note": "tshark reads a 0-byte file as a capture of no packets (exit status 0)"},
}
TSHARK_ARGS: dict[str, list[str]] = {}


def message_counts(messages: list[dict[str, Any]]) -> tuple[int, int]:
    """Requests and responses a dissector should show: those with a complete head."""
    done = [m for m in messages if m.get("complete", True)]
    return sum(m["kind"] == "request" for m in done), sum(m["kind"] == "response" for m in done)


def compare(entry: dict[str, Any], got: dict[str, Any]) -> list[str]:
    override = entry.get("tshark", {})
    problems = []
    for key in ("frames", "tcp_connections"):
        want = override.get(key, entry[key])
        if got[key] != want:
            problems.append(f"{key}: tshark {got[key]}, manifest {want}")
    for key in ("first_ts_ns", "last_ts_ns"):
        if entry.get(key) and got[key] != entry[key]:
            problems.append(f"{key}: tshark {got[key]}, manifest {entry[key]}")
    if got["status"] != override.get("exit_status", 0):
        problems.append(f"tshark exit status {got['status']}: {got['stderr']}")
    have = [{k: m[k] for k in ("kind", "method", "path", "status", "frame") if k in m}
            for m in got["http_messages"]]  # fmt: skip
    if "requests" in override:
        counts = message_counts(got["http_messages"])
        if counts != (override["requests"], override["responses"]):
            problems.append(f"http requests/responses: tshark {counts}, manifest.tshark "
                            f"{override['requests'], override['responses']}: {have}")  # fmt: skip
        return problems
    want_msgs = [{k: m[k] for k in ("kind", "method", "path", "status", "frame") if k in m}
                 for m in entry["http_messages"] if m.get("complete", True)]  # fmt: skip
    if want_msgs != have:
        problems.append(f"http_messages: tshark {have}\n      manifest {want_msgs}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description="Craft the edge-case captures into captures/edge/.")
    ap.add_argument("--no-check", action="store_true", help="do not read the files back with tshark")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--only", action="append", help="craft only this case (repeatable)")
    ap.add_argument("--out", type=Path, metavar="DIR",
                    help="write DIR/edge/* instead of captures/edge/* (the public copies and MANIFEST.json "
                         "are left alone); the check reads them there")  # fmt: skip
    ns = ap.parse_args()
    if ns.list:
        for name, (tests, _) in CASES.items():
            print(f"{name:28} {tests}")
        return 0
    root = ns.out.resolve() if ns.out else CAPTURES
    (root / EDGE.name).mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for name, (tests, fn) in CASES.items():
        if ns.only and name not in ns.only:
            continue
        res = fn()
        for rel, data in res.files.items():
            path = root / rel
            path.write_bytes(data)
            fmt = describe_format(path)
            entry: dict[str, Any] = {
                "file": rel,
                "made_by": f"{OWNER}:{name}",
                "tests": tests,
                **fmt,
                "frames": res.frames,
                "tcp_connections": res.tcp_connections,
                "http_messages": res.messages,
                "anomalies": res.anomalies,
                "error": res.error,
                **res.extra,
            }
            if name in TSHARK_DIFFERS or name in TSHARK_ARGS:
                entry["tshark"] = {"args": TSHARK_ARGS.get(name, []), **TSHARK_DIFFERS.get(name, {})}
            entries.append(entry)
    if not ns.out:
        if not ns.only:
            entries += copy_public()
        update_manifest(entries, None if ns.only else OWNER)
    failed = 0
    if not ns.no_check:
        for e in entries:
            if e["error"]:
                continue
            got = tshark_summary(root / e["file"], e.get("tshark", {}).get("args"))
            problems = compare(e, got)
            status = "ok " if not problems else "DIFF"
            print(f"{status} {e['file']}: {got['frames']} frames, {len(got['http_messages'])} messages")
            for p in problems:
                print("     " + p)
            failed += bool(problems)
    print(f"{len(entries)} files, {failed} differing from tshark", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
