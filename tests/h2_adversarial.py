"""Adversarial HTTP/2 captures for the bounds tests (and, at larger sizes, for measuring).

* ``never_ending``: one h2c connection whose server answers every request with a HEADERS
  frame that never ends its stream (no DATA with END_STREAM, no trailers, no RST_STREAM):
  every response is held waiting for trailers.
* ``header_flood``: one h2c connection whose client sends blocks of distinct literal names
  and values with incremental indexing, after the server allowed it a huge table.

* ``reference_flood``: one big entry, then blocks of thousands of one-byte references to it.

Run by hand to write bigger ones: ``python tests/h2_adversarial.py never-ending 200000 OUT.pcap``,
``python tests/h2_adversarial.py header-flood 80 OUT.pcap`` or ``reference-flood 1`` (sizes in MB).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analyzer.protocols.h2 import PREFACE
from tests.packets import ACK, FIN, Conn, pcap, sll2

SEGMENT = 16_000  # payload bytes per TCP segment, well under loopback's MSS


def frame(typ: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">L", sid) + payload


def settings(values: dict[int, int] | None = None, ack: bool = False) -> bytes:
    body = b"".join(struct.pack(">HL", k, v) for k, v in (values or {}).items())
    return frame(4, 1 if ack else 0, 0, body)


def _literal(s: bytes) -> bytes:
    """An RFC 7541 §5.2 string, not Huffman coded (7-bit prefix integer length)."""
    n = len(s)
    if n < 127:
        return bytes([n]) + s
    out = bytearray([127])
    n -= 127
    while n >= 128:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out) + s


def _segments(c: Conn, writes: Iterator[tuple[bool, bytes]]) -> Iterator[bytes]:
    """Coalesce consecutive writes of one side into segments of about SEGMENT bytes."""
    side: bool | None = None
    buf = bytearray()
    for from_client, b in writes:
        if side is not None and (from_client != side or len(buf) + len(b) > SEGMENT) and buf:
            yield c.send(bytes(buf), side)
            buf.clear()
        side = from_client
        buf += b
    if buf and side is not None:
        yield c.send(bytes(buf), side)


def _packets(c: Conn, writes: Iterator[tuple[bool, bytes]], *, syn: bool = True,
             fin: bool = True) -> list[bytes]:
    packets = c.handshake() if syn else []
    if not syn:
        c.cseq += 1
        c.sseq += 1
    packets += _segments(c, writes)
    if fin:
        packets.append(c.send(b"", True, FIN | ACK))
        packets.append(c.send(b"", False, FIN | ACK))
    return packets


def _pcap(packets: list[bytes]) -> bytes:
    return pcap([(1_700_000_000_000_000_000 + i * 1000, sll2(p)) for i, p in enumerate(packets)])


def _conn(port: int = 41000) -> Conn:
    return Conn(client="10.244.1.10", cport=port, server="127.0.0.1", sport=15001)


def _capture(writes: Iterator[tuple[bool, bytes]], *, syn: bool = True) -> bytes:
    return _pcap(_packets(_conn(), writes, syn=syn))


def _start(table: int = 1 << 20) -> Iterator[tuple[bool, bytes]]:
    yield True, PREFACE + settings({2: 0})
    yield False, settings({1: table}) + settings(ack=True)  # the client's table (1 MiB)
    yield True, settings(ack=True)


def never_ending(streams: int, batch: int = 100) -> bytes:
    """``streams`` requests, each answered by a response head that never ends its stream."""
    # GET / http, :authority literal without indexing; :status 200
    request = b"\x82\x84\x86\x01\x07example"
    response = b"\x88"

    def writes() -> Iterator[tuple[bool, bytes]]:
        yield from _start()
        for first in range(0, streams, batch):
            sids = [2 * k + 1 for k in range(first, min(first + batch, streams))]
            yield True, b"".join(frame(1, 0x5, sid, request) for sid in sids)
            yield False, b"".join(frame(1, 0x4, sid, response) for sid in sids)

    return _capture(writes())


def long_held(others: int) -> bytes:
    """A response head on connection 1 whose trailers come only after ``others`` complete
    request/response pairs on connection 2 (each in its own segments)."""
    a, b = _conn(41000), _conn(41001)
    request = b"\x83\x84\x86\x01\x07example"  # POST / http
    held = _packets(a, iter([*_start(), (True, frame(1, 0x5, 1, request)),
                             (False, frame(1, 0x4, 1, b"\x88"))]), fin=False)
    busy = _packets(b, iter(_start()), fin=False)
    for k in range(others):
        sid = 2 * k + 1
        busy.append(b.send(frame(1, 0x5, sid, request)))
        busy.append(b.send(frame(1, 0x5, sid, b"\x88"), False))
    trailers = frame(1, 0x5, 1, b"\x00\x0bgrpc-status\x010")  # literal, not indexed
    end = [a.send(trailers, False)]
    for c in (a, b):
        end += [c.send(b"", True, FIN | ACK), c.send(b"", False, FIN | ACK)]
    return _pcap(held + busy + end)


def header_flood(size: int, per_block: int = 100, value_len: int = 40, table: int = 1 << 20) -> bytes:
    """About ``size`` bytes of client header blocks, every field a new name and value
    inserted into the dynamic table (literal with incremental indexing, new name), in a
    table the server allowed to be ``table`` bytes."""

    def writes() -> Iterator[tuple[bool, bytes]]:
        yield from _start(table)
        written, sid, k = 0, 1, 0
        while written < size:
            fields = [b"\x82\x84\x86"]
            for _ in range(per_block):
                name = b"x-flood-%08d" % k
                value = (b"%08d" % k) * (value_len // 8)
                fields.append(b"\x40" + _literal(name) + _literal(value))
                k += 1
            block = b"".join(fields)
            parts = [block[o:o + 16_000] for o in range(0, len(block), 16_000)]
            f = frame(1, 0x1 | (0x4 if len(parts) == 1 else 0), sid, parts[0]) + b"".join(
                frame(9, 0x4 if j == len(parts) - 1 else 0, sid, part)
                for j, part in enumerate(parts[1:], 1))  # CONTINUATIONs under 16 KiB frames
            written += len(f)
            yield True, f
            yield False, frame(1, 0x5, sid, b"\x88")
            sid += 2

    return _capture(writes())


def reference_flood(size: int, refs: int = 10_000, value_len: int = 4000) -> bytes:
    """One big entry, then about ``size`` bytes of blocks of ``refs`` one-byte references
    to it: each block of 10 KB decodes to 40 MB of headers."""

    def writes() -> Iterator[tuple[bool, bytes]]:
        yield from _start()
        entry = b"\x40" + _literal(b"x-big") + _literal(b"b" * value_len)
        yield True, frame(1, 0x5, 1, b"\x82\x84\x86" + entry)
        yield False, frame(1, 0x5, 1, b"\x88")
        written, sid, k = 0, 3, 0
        while written < size:
            body = b"\x82\x84\x86" + b"\xbe" * refs  # index 62: the newest entry
            f = frame(1, 0x5, sid, body)
            written += len(f)
            yield True, f
            yield False, frame(1, 0x5, sid, b"\x88")
            sid += 2
            k += 1

    return _capture(writes())


if __name__ == "__main__":
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "never-ending":
        body = never_ending(n)
    elif kind == "header-flood":  # big values in a table of 4 GiB
        body = header_flood(n * 1_000_000, per_block=3, value_len=15_000, table=0xFFFFFFFF)
    else:
        body = reference_flood(n * 1_000_000)
    Path(out).write_bytes(body)
