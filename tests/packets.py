"""Small builders for packets and capture files, for unit tests that need exact bytes."""

from __future__ import annotations

import struct

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def ip4(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes = b"",
        options: bytes = b"") -> bytes:
    options += b"\x00" * (-len(options) % 4)
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       doff << 4, flags, 65535, 0, 0) + options + payload


def ipv4(src: str, dst: str, payload: bytes, proto: int = 6, options: bytes = b"",
         frag: int = 0) -> bytes:
    options += b"\x00" * (-len(options) % 4)
    ihl = (20 + len(options)) // 4
    total = 20 + len(options) + len(payload)
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0,
                       ip4(src), ip4(dst)) + options + payload


def ipv6(src: bytes, dst: bytes, payload: bytes, nh: int = 6, ext: bytes = b"") -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(payload), nh, 64, src, dst) \
        + ext + payload


def sll2(ip: bytes, proto: int = 0x0800, ifindex: int = 1) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, ifindex, 772, 0, 6, b"\x00" * 8) + ip


def pcap(frames: list[tuple[int, bytes]], linktype: int = 276, endian: str = "<",
         nano: bool = False, snaplen: int = 262144) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts_ns, data in frames:
        sec, rem = divmod(ts_ns, 1_000_000_000)
        frac = rem if nano else rem // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


class Conn:
    """Builds the segments of one TCP connection, tracking sequence numbers."""

    def __init__(self, client: str = "127.0.0.6", cport: int = 40000,
                 server: str = "10.244.1.10", sport: int = 9080,
                 cisn: int = 1000, sisn: int = 5000) -> None:
        self.c, self.cp, self.s, self.sp = client, cport, server, sport
        self.cseq, self.sseq = cisn, sisn

    def handshake(self) -> list[bytes]:
        out = [
            ipv4(self.c, self.s, tcp(self.cp, self.sp, self.cseq, 0, SYN)),
            ipv4(self.s, self.c, tcp(self.sp, self.cp, self.sseq, self.cseq + 1, SYN | ACK)),
        ]
        self.cseq += 1
        self.sseq += 1
        out.append(ipv4(self.c, self.s, tcp(self.cp, self.sp, self.cseq, self.sseq, ACK)))
        return out

    def send(self, data: bytes, from_client: bool = True, flags: int = PSH | ACK) -> bytes:
        if from_client:
            pkt = ipv4(self.c, self.s, tcp(self.cp, self.sp, self.cseq, self.sseq, flags, data))
            self.cseq += len(data) + (1 if flags & FIN else 0)
        else:
            pkt = ipv4(self.s, self.c, tcp(self.sp, self.cp, self.sseq, self.cseq, flags, data))
            self.sseq += len(data) + (1 if flags & FIN else 0)
        return pkt
