"""Link, network and transport headers, with dispatch tables keyed by link type and protocol."""

from __future__ import annotations

import ipaddress
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

# Final: compiled, a plain module global is a lookup in the module's dict at every use.
ETH_IPV4: Final = 0x0800
ETH_IPV6: Final = 0x86DD
VLAN_TYPES: Final = frozenset((0x8100, 0x88A8, 0x9100))
AF_INET6_VALUES: Final = frozenset((10, 24, 28, 30))  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
# hop-by-hop, routing, dst opts, mobility, HIP, shim6
IPV6_EXT: Final = frozenset((0, 43, 60, 135, 139, 140))
RAW_IP_LINKTYPES: Final = frozenset((101, 228, 229, 12, 14))
PROTO_TCP: Final = 6
# Bytes of a record beyond its TCP payload (link, IP and TCP headers, Ethernet padding: at
# most a few hundred) past which the payload is copied out of the record.
TRAILER_SLACK: Final = 2048

FIN: Final = 0x01
SYN: Final = 0x02
RST: Final = 0x04
PSH: Final = 0x08
ACK: Final = 0x10


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
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

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
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


def decode_frame(frame: Frame) -> Segment | str:
    """Decode one frame to a TCP Segment, or return why it is not one (a counter key)."""
    # Every field is read by indexing the record's bytes, never through struct or a
    # memoryview: compiled, an index of ``bytes`` is a native operation, while each
    # ``unpack_from`` or memoryview index is a generic call that boxes its result. This runs
    # once per packet, before anything else can skip it.
    data = frame.data
    if not isinstance(data, bytes):
        data = bytes(data)
    n = len(data)
    lt = frame.linktype
    iface = frame.interface
    if lt == 276:  # SLL2: protocol(2) reserved(2) ifindex(4) hatype(2) pkttype(1) halen(1) addr(8)
        if n < 20:
            return "short-link-header"
        etype = data[0] << 8 | data[1]
        off = 20
        iface = data[4] << 24 | data[5] << 16 | data[6] << 8 | data[7]
    elif lt == 113:  # SLL: pkttype(2) hatype(2) halen(2) addr(8) protocol(2)
        if n < 16:
            return "short-link-header"
        etype = data[14] << 8 | data[15]
        off = 16
    elif lt == 1:
        if n < 14:
            return "short-link-header"
        etype = data[12] << 8 | data[13]
        off = 14
        while etype in VLAN_TYPES:  # 802.1Q, QinQ (802.1ad) and the old 0x9100
            if n < off + 4:
                return "short-link-header"
            etype = data[off + 2] << 8 | data[off + 3]
            off += 4
    elif lt == 0 or lt == 108:
        if n < 4:
            return "short-link-header"
        # NULL stores the address family in the capturing host's byte order, LOOP in
        # network order; read it big-endian and swap when it is clearly the other way.
        fam = data[0] << 24 | data[1] << 16 | data[2] << 8 | data[3]
        if fam > 0xFFFF:
            fam = data[3] << 24 | data[2] << 16 | data[1] << 8 | data[0]
        if fam == 2:
            etype = ETH_IPV4
        elif fam in AF_INET6_VALUES:
            etype = ETH_IPV6
        else:
            return "not-ip"
        off = 4
    elif lt in RAW_IP_LINKTYPES:
        if n < 1:
            return "short-link-header"
        version = data[0] >> 4
        etype = ETH_IPV4 if version == 4 else ETH_IPV6 if version == 6 else 0
        off = 0
    else:
        return "unsupported-linktype"
    if etype == ETH_IPV4:
        if n < off + 20:
            return "short-ip-header"
        vihl = data[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20 or n < off + ihl:
            return "bad-ip-header"
        total = data[off + 2] << 8 | data[off + 3]
        if (data[off + 6] << 8 | data[off + 7]) & 0x3FFF:  # more-fragments flag or an offset
            return "ip-fragment"
        if data[off + 9] != PROTO_TCP:
            return "not-tcp"
        src = data[off + 12 : off + 16]
        dst = data[off + 16 : off + 20]
        end = off + total if total else n  # total 0: TSO/GSO capture, trust the capture
        if total and total < ihl:
            return "bad-ip-header"
        tcp = off + ihl
    elif etype == ETH_IPV6:
        if n < off + 40:
            return "short-ip-header"
        if data[off] >> 4 != 6:
            return "bad-ip-header"
        plen = data[off + 4] << 8 | data[off + 5]
        nh = data[off + 6]
        src = data[off + 8 : off + 24]
        dst = data[off + 24 : off + 40]
        end = off + 40 + plen if plen else n  # 0: jumbogram or offload, trust the capture
        tcp = off + 40
        while nh in IPV6_EXT or nh == 44 or nh == 51:
            if n < tcp + 8:
                return "short-ip-header"
            if nh == 44:  # fragment header
                if (data[tcp + 2] << 8 | data[tcp + 3]) & 0xFFF9:
                    return "ip-fragment"
                ext = 8
            elif nh == 51:  # AH counts in 4-byte units, minus 2
                ext = (data[tcp + 1] + 2) * 4
            else:
                ext = (data[tcp + 1] + 1) * 8
            nh = data[tcp]
            tcp += ext
        if nh != PROTO_TCP:
            return "not-tcp"
    else:
        return "not-ip"
    if n < tcp + 20:
        return "short-tcp-header"
    hlen = (data[tcp + 12] >> 4) * 4
    if hlen < 20:
        return "bad-tcp-header"
    start = tcp + hlen
    missing = 0
    if end > n:  # the wire carried more than the capture kept (snap length, cut record)
        missing = end - max(n, start)
        end = n
    if start > end:
        return "short-tcp-header"
    if n - (end - start) > TRAILER_SLACK:
        # Far more record than payload (a trailer, or a record padded on purpose): later
        # stages may keep the payload for a while, and a view would keep the whole record.
        payload = memoryview(data[start:end])
    else:
        payload = memoryview(data)[start:end]
    return Segment(
        frame.number,
        frame.ts_ns,
        src,
        data[tcp] << 8 | data[tcp + 1],
        dst,
        data[tcp + 2] << 8 | data[tcp + 3],
        data[tcp + 4] << 24 | data[tcp + 5] << 16 | data[tcp + 6] << 8 | data[tcp + 7],
        data[tcp + 8] << 24 | data[tcp + 9] << 16 | data[tcp + 10] << 8 | data[tcp + 11],
        data[tcp + 13],
        payload,
        missing,
        iface,
    )
