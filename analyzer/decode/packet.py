"""Link, network and transport headers, with dispatch tables keyed by link type and protocol."""

from __future__ import annotations

import ipaddress
import struct
from builtins import memoryview  # mypyc resolves dataclass field annotations here
from dataclasses import dataclass
from typing import Final

from analyzer.capture.reader import Frame

LINKTYPE_NAMES: Final = {
    0: "NULL/loopback",
    1: "Ethernet",
    101: "raw IP",
    108: "OpenBSD loopback",
    113: "Linux cooked (SLL)",
    228: "raw IPv4",
    229: "raw IPv6",
    276: "Linux cooked v2 (SLL2)",
}

ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD
VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))
AF_INET6_VALUES = frozenset((10, 24, 28, 30))  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140))  # hop-by-hop, routing, dst opts, mobility, HIP, shim6
PROTO_TCP = 6
# Bytes of a record beyond its TCP payload (link, IP and TCP headers, Ethernet padding: at
# most a few hundred) past which the payload is copied out of the record.
TRAILER_SLACK = 2048

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

_H = struct.Struct("!H")
_I = struct.Struct("!I")
_TCP = struct.Struct("!HHIIBB")


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see analyzer/records.py
class Segment:
    """A TCP segment, with addresses kept as packed bytes (formatted only for display).

    ``missing`` counts payload bytes that were on the wire but not in the capture
    (snap length or a cut record); reassembly turns them into a gap, never into zeros.
    """

    frame: int
    ts_ns: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    payload: memoryview
    missing: int = 0
    iface: int = 0

    # Written out, not generated: see analyzer/records.py.
    def __init__(
        self,
        frame: int,
        ts_ns: int,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        payload: memoryview,
        missing: int = 0,
        iface: int = 0,
    ) -> None:
        self.frame = frame
        self.ts_ns = ts_ns
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.payload = payload
        self.missing = missing
        self.iface = iface


def format_addr(addr: bytes) -> str:
    if len(addr) == 4:
        return f"{addr[0]}.{addr[1]}.{addr[2]}.{addr[3]}"
    return str(ipaddress.IPv6Address(addr))


def format_endpoint(host: str, port: int) -> str:
    """`10.0.0.1:80`, `[::1]:80`: an address shown with its port."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _link(frame: Frame, buf: memoryview) -> tuple[int, int, int] | str:
    """Return (ethertype-or-version, offset of the IP header, interface index) or a reason."""
    lt = frame.linktype
    n = len(buf)
    if lt == 276:  # SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
        if n < 20:
            return "short-link-header"
        return _H.unpack_from(buf, 0)[0], 20, _I.unpack_from(buf, 4)[0]
    if lt == 113:  # SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
        if n < 16:
            return "short-link-header"
        return _H.unpack_from(buf, 14)[0], 16, frame.interface
    if lt == 1:
        if n < 14:
            return "short-link-header"
        etype = _H.unpack_from(buf, 12)[0]
        off = 14
        while etype in VLAN_TYPES:  # 802.1Q, QinQ (802.1ad) and the old 0x9100
            if n < off + 4:
                return "short-link-header"
            etype = _H.unpack_from(buf, off + 2)[0]
            off += 4
        return etype, off, frame.interface
    if lt in (0, 108):
        if n < 4:
            return "short-link-header"
        # NULL stores the address family in the capturing host's byte order, LOOP in
        # network order; read it big-endian and swap when it is clearly the other way.
        fam = _I.unpack_from(buf, 0)[0]
        if fam > 0xFFFF:
            fam = int.from_bytes(buf[:4], "little")
        if fam == 2:
            return ETH_IPV4, 4, frame.interface
        if fam in AF_INET6_VALUES:
            return ETH_IPV6, 4, frame.interface
        return "not-ip"
    if lt in (101, 228, 229, 12, 14):
        if n < 1:
            return "short-link-header"
        version = buf[0] >> 4
        return (ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0), 0, frame.interface
    return "unsupported-linktype"


def decode_frame(frame: Frame) -> Segment | str:
    """Decode one frame to a TCP Segment, or return why it is not one (a counter key)."""
    buf = memoryview(frame.data)
    link = _link(frame, buf)
    if isinstance(link, str):
        return link
    etype, off, iface = link
    n = len(buf)
    if etype == ETH_IPV4:
        if n < off + 20:
            return "short-ip-header"
        vihl = buf[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or n < off + ihl:
            return "bad-ip-header"
        total = _H.unpack_from(buf, off + 2)[0]
        frag = _H.unpack_from(buf, off + 6)[0]
        if frag & 0x3FFF:  # more-fragments flag or a non-zero offset
            return "ip-fragment"
        if buf[off + 9] != PROTO_TCP:
            return "not-tcp"
        src = bytes(buf[off + 12 : off + 16])
        dst = bytes(buf[off + 16 : off + 20])
        end = off + total if total else n  # total 0: TSO/GSO capture, trust the capture
        if total and total < ihl:
            return "bad-ip-header"
        tcp = off + ihl
    elif etype == ETH_IPV6:
        if n < off + 40:
            return "short-ip-header"
        if buf[off] >> 4 != 6:
            return "bad-ip-header"
        plen = _H.unpack_from(buf, off + 4)[0]
        nh = buf[off + 6]
        src = bytes(buf[off + 8 : off + 24])
        dst = bytes(buf[off + 24 : off + 40])
        end = off + 40 + plen if plen else n  # 0: jumbogram or offload, trust the capture
        tcp = off + 40
        while nh in IPV6_EXT or nh == 44 or nh == 51:
            if n < tcp + 8:
                return "short-ip-header"
            if nh == 44:  # fragment header
                if _H.unpack_from(buf, tcp + 2)[0] & 0xFFF9:
                    return "ip-fragment"
                ext = 8
            elif nh == 51:  # AH counts in 4-byte units, minus 2
                ext = (buf[tcp + 1] + 2) * 4
            else:
                ext = (buf[tcp + 1] + 1) * 8
            nh = buf[tcp]
            tcp += ext
        if nh != PROTO_TCP:
            return "not-tcp"
    else:
        return "not-ip"
    if n < tcp + 20:
        return "short-tcp-header"
    sport, dport, seq, ack, doff, flags = _TCP.unpack_from(buf, tcp)
    hlen = (doff >> 4) * 4
    if hlen < 20:
        return "bad-tcp-header"
    start = tcp + hlen
    missing = 0
    if end > n:  # the wire carried more than the capture kept (snap length, cut record)
        missing = end - max(n, start)
        end = n
    if start > end:
        return "short-tcp-header"
    payload = buf[start:end]
    if n - (end - start) > TRAILER_SLACK:
        # Far more record than payload (a trailer, or a record padded on purpose): later
        # stages may keep the payload for a while, and a view would keep the whole record.
        payload = memoryview(bytes(payload))
    return Segment(
        frame.number,
        frame.ts_ns,
        src,
        sport,
        dst,
        dport,
        seq,
        ack,
        flags,
        payload,
        missing,
        iface,
    )
