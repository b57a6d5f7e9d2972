"""decode/: every link type, IP options and extension headers, TCP options, reasons counted."""

from __future__ import annotations

import struct

import pytest

from analyzer.capture import Frame
from analyzer.decode import Segment, decode_frame, format_addr
from tests.packets import ACK, PSH, ipv4, ipv6, sll2, tcp

SEG = tcp(40000, 9080, 7, 9, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n")
IP4 = ipv4("127.0.0.6", "10.244.1.10", SEG)
V6A = bytes(15) + b"\x01"
V6B = bytes(10) + b"\xff\xff" + bytes([10, 244, 1, 10])
IP6 = ipv6(V6A, V6B, SEG)


def _seg(linktype: int, data: bytes, orig: int | None = None) -> Segment:
    s = decode_frame(Frame(1, 0, linktype, data, orig if orig is not None else len(data)))
    assert isinstance(s, Segment), s
    return s


def _check(s: Segment, v6: bool = False) -> None:
    assert (s.sport, s.dport, s.seq, s.ack, s.flags) == (40000, 9080, 7, 9, PSH | ACK)
    assert bytes(s.payload) == b"GET / HTTP/1.1\r\n\r\n"
    if v6:
        assert format_addr(s.src) == "::1"
    else:
        assert (format_addr(s.src), format_addr(s.dst)) == ("127.0.0.6", "10.244.1.10")


ETH = b"\x02" * 6 + b"\x04" * 6


@pytest.mark.parametrize(
    ("linktype", "data", "v6"),
    [
        (1, ETH + b"\x08\x00" + IP4, False),
        (1, ETH + b"\x81\x00\x00\x05\x08\x00" + IP4, False),  # 802.1Q
        (1, ETH + b"\x88\xa8\x00\x05\x81\x00\x00\x06\x86\xdd" + IP6, True),  # QinQ
        (113, struct.pack("!HHH8sH", 0, 772, 6, bytes(8), 0x0800) + IP4, False),
        (276, sll2(IP4), False),
        (276, sll2(IP6, proto=0x86DD), True),
        (0, struct.pack("<I", 2) + IP4, False),  # NULL, little-endian host
        (0, struct.pack(">I", 2) + IP4, False),  # NULL, big-endian host
        (0, struct.pack("<I", 30) + IP6, True),  # macOS AF_INET6
        (108, struct.pack(">I", 24) + IP6, True),
        (101, IP4, False),
        (101, IP6, True),
        (228, IP4, False),
        (229, IP6, True),
    ],
)
def test_link_types(linktype: int, data: bytes, v6: bool) -> None:
    _check(_seg(linktype, data), v6)


def test_sll2_interface_index() -> None:
    assert _seg(276, sll2(IP4, ifindex=7)).iface == 7


def test_ipv4_options_and_tcp_options() -> None:
    opts = b"\x02\x04\xff\xd7\x04\x02\x08\x0a" + bytes(8) + b"\x01\x03\x03\x07"
    seg = tcp(40000, 9080, 7, 9, PSH | ACK, b"GET / HTTP/1.1\r\n\r\n", options=opts)
    pkt = ipv4("127.0.0.6", "10.244.1.10", seg, options=b"\x94\x04\x00\x00")  # router alert
    _check(_seg(101, pkt))


def test_ipv6_extension_headers() -> None:
    hop = bytes([60, 0]) + bytes(6)  # hop-by-hop, next: destination options
    dst = bytes([6, 0]) + bytes(6)  # destination options, next: TCP
    _check(_seg(229, ipv6(V6A, V6B, SEG, nh=0, ext=hop + dst)), v6=True)


def test_ipv4_trailing_padding_is_not_payload() -> None:
    # Ethernet pads short frames; the IP total length says where TCP data ends.
    s = _seg(1, ETH + b"\x08\x00" + IP4 + b"\x00" * 6)
    assert bytes(s.payload) == b"GET / HTTP/1.1\r\n\r\n"


def test_snapped_packet_reports_missing_bytes() -> None:
    data = sll2(IP4)
    s = _seg(276, data[:-5], orig=len(data))
    assert len(s.payload) == len(b"GET / HTTP/1.1\r\n\r\n") - 5
    assert s.missing == 5


@pytest.mark.parametrize(
    ("linktype", "data", "reason"),
    [
        (276, sll2(ipv4("1.1.1.1", "2.2.2.2", b"\x00" * 8, proto=17)), "not-tcp"),
        (276, sll2(b"\x00" * 28, proto=0x0806), "not-ip"),
        (276, sll2(ipv4("1.1.1.1", "2.2.2.2", SEG, frag=0x2000)), "ip-fragment"),
        (276, sll2(ipv4("1.1.1.1", "2.2.2.2", SEG, frag=0x0010)), "ip-fragment"),
        (276, b"\x08\x00", "short-link-header"),
        (276, sll2(b"\x45\x00"), "short-ip-header"),
        (276, sll2(b"\x75" + bytes(19)), "bad-ip-header"),
        (276, sll2(ipv4("1.1.1.1", "2.2.2.2", b"\x00" * 10)), "short-tcp-header"),
        (147, b"\x00" * 40, "unsupported-linktype"),
        (229, ipv6(V6A, V6B, b"\x00" * 8, nh=58), "not-tcp"),
    ],
)
def test_reasons(linktype: int, data: bytes, reason: str) -> None:
    assert decode_frame(Frame(1, 0, linktype, data, len(data))) == reason


def test_garbage_never_raises() -> None:
    import random

    rnd = random.Random(7)
    for lt in (0, 1, 101, 108, 113, 228, 229, 276):
        for n in range(0, 80):
            data = bytes(rnd.randrange(256) for _ in range(n))
            decode_frame(Frame(1, 0, lt, data, n + rnd.randrange(3)))
