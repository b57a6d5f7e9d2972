"""A seeded, structure-aware mutation engine for pcap and pcapng captures.

Strategy: blind byte mutations mostly break the file framing, so the reader stops at the
first damaged record and the stages behind it see little. Half of the mutations therefore
parse the capture into its records (pcap record headers, pcapng blocks), change one field or
one packet's bytes, and write the file back with every length fixed up, so damage reaches
decode, reassembly and the protocol parsers. The other half are blind (truncation, bit
flips, inserts, deletes) and aim at the readers themselves. Everything is driven by one
``random.Random``: the same seed and source give the same input, byte for byte.
"""

from __future__ import annotations

import gzip
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">",
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"

# Values that sit on the edges of the integer types the readers unpack.
EDGE_U32 = (0, 1, 2, 3, 4, 7, 8, 11, 12, 16, 20, 27, 28, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000,
            0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 16 << 20, (16 << 20) + 1, 64 << 20)
EDGE_U16 = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF)
LINKTYPES = (0, 1, 101, 108, 113, 228, 229, 276, 147, 0xFFFF, 12, 14)
TSRESOL = (0x00, 0x01, 0x06, 0x09, 0x0A, 0x13, 0x14, 0x3F, 0x7F, 0x80, 0x81, 0x9E, 0xBF, 0xFF)
TSOFFSET = (-(2**63), 2**63 - 1, -1, 2**40, -(2**40), 253402300800, -62135596801, 2**31)
# Bytes that HTTP parsers, HPACK and the tracing header parsers treat specially.
TOKENS = (b"\r\n", b"\r\n\r\n", b":", b" ", b"\x00", b"\xff", b"9" * 40, b"9" * 5000,
          b"Content-Length: 99999999999999999999\r\n", b"Transfer-Encoding: chunked\r\n",
          b"ffffffffffffffff\r\n", b"HTTP/1.1 200 OK\r\n", b"GET / HTTP/1.1\r\n",
          b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",
          b"\xff\xff\xff\x01\x05\x00\x00\x00\x01", b"\x3f\xe1\x1f", b"\x7f\xff\xff\xff\xff\x0f",
          b"traceparent: 00-00000000000000000000000000000000-0000000000000000-01\r\n",
          b"x-request-id: \x1b]0;x\x07\r\n", b"b3: " + b"a" * 300 + b"\r\n",
          b"\x16\x03\x01\x00\x05", b"=" * 3)


@dataclass(slots=True)
class Record:
    """One record of a capture: its header bytes and its data, kept apart so that a
    mutation of the data can be written back with the lengths fixed up."""

    head: bytearray
    data: bytearray
    kind: str  # "pcap", "epb", "idb", "shb", "block"


@dataclass(slots=True)
class Parsed:
    fmt: str  # "pcap" or "pcapng"
    endian: str
    header: bytes  # pcap file header (empty for pcapng)
    records: list[Record]


def parse(data: bytes) -> Parsed | None:
    """Split a capture into records; None when it is neither a pcap nor a pcapng file."""
    if data[:4] in PCAP_MAGICS and len(data) >= 24:
        e = PCAP_MAGICS[data[:4]]
        pos, records = 24, []
        while pos + 16 <= len(data):
            caplen = struct.unpack_from(e + "I", data, pos + 8)[0]
            records.append(Record(bytearray(data[pos : pos + 16]),
                                  bytearray(data[pos + 16 : pos + 16 + caplen]), "pcap"))
            pos += 16 + caplen
        return Parsed("pcap", e, data[:24], records)
    if data[:4] == PCAPNG_SHB:
        pos, records, e = 0, [], "<"
        while pos + 12 <= len(data):
            if data[pos : pos + 4] == PCAPNG_SHB:
                e = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            btype, total = struct.unpack_from(e + "II", data, pos)
            if total < 12 or total % 4 or pos + total > len(data):
                break
            body = data[pos + 8 : pos + total - 4]
            kind = {0x0A0D0D0A: "shb", 1: "idb", 6: "epb"}.get(btype, "block")
            if kind == "epb" and len(body) < 20:
                kind = "block"
            if kind == "epb":
                records.append(Record(bytearray(data[pos : pos + 8] + body[:20]),
                                      bytearray(body[20:]), kind))
            else:
                records.append(Record(bytearray(data[pos : pos + 8]), bytearray(body), kind))
            pos += total
        return Parsed("pcapng", e, b"", records)
    return None


def _pad4(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def serialise(p: Parsed) -> bytes:
    """Write the records back, with every length field made consistent with the data."""
    e = p.endian
    out = bytearray(p.header)
    for r in p.records:
        if p.fmt == "pcap":
            head = bytearray(r.head)
            struct.pack_into(e + "I", head, 8, len(r.data))
            out += head + r.data
        elif r.kind == "epb":
            head = bytearray(r.head)
            struct.pack_into(e + "I", head, 20, len(r.data))  # caplen
            body = bytes(head[8:]) + _pad4(bytes(r.data))
            total = 12 + len(body)
            struct.pack_into(e + "I", head, 4, total)
            out += head[:8] + body + struct.pack(e + "I", total)
        else:
            body = _pad4(bytes(r.data))
            total = 12 + len(body)
            head = bytearray(r.head)
            end = "<" if r.kind != "shb" or body[:4] == b"\x4d\x3c\x2b\x1a" else ">"
            struct.pack_into((end if r.kind == "shb" else e) + "I", head, 4, total)
            out += head + body + struct.pack((end if r.kind == "shb" else e) + "I", total)
    return bytes(out)


Mutation = Callable[[random.Random, bytes], bytes]


# --- blind mutations: aimed at the readers -------------------------------------------------

def truncate(rnd: random.Random, data: bytes) -> bytes:
    return data[: rnd.randrange(len(data) + 1)]


def truncate_near_end(rnd: random.Random, data: bytes) -> bytes:
    return data[: max(0, len(data) - rnd.randrange(1, 64))]


def bit_flips(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randrange(1, 9)):
        i = rnd.randrange(len(b))
        b[i] ^= 1 << rnd.randrange(8)
    return bytes(b)


def byte_sets(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randrange(1, 17)):
        b[rnd.randrange(len(b))] = rnd.choice((0, 0xFF, 0x7F, 0x80, rnd.randrange(256)))
    return bytes(b)


def insert_bytes(rnd: random.Random, data: bytes) -> bytes:
    i = rnd.randrange(len(data) + 1)
    chunk = rnd.choice(TOKENS) if rnd.random() < 0.5 else rnd.randbytes(rnd.randrange(1, 64))
    return data[:i] + chunk + data[i:]


def delete_bytes(rnd: random.Random, data: bytes) -> bytes:
    i = rnd.randrange(len(data))
    return data[:i] + data[i + rnd.randrange(1, 64) :]


def duplicate_chunk(rnd: random.Random, data: bytes) -> bytes:
    i = rnd.randrange(len(data))
    j = min(len(data), i + rnd.randrange(1, 512))
    k = rnd.randrange(len(data) + 1)
    return data[:k] + data[i:j] * rnd.randrange(1, 4) + data[k:]


def edge_word(rnd: random.Random, data: bytes) -> bytes:
    """Overwrite a 2- or 4-byte word anywhere with an edge value, in either byte order."""
    b = bytearray(data)
    if len(b) < 4:
        return bytes(b)
    i = rnd.randrange(len(b) - 3)
    e = rnd.choice("<>")
    if rnd.random() < 0.5:
        struct.pack_into(e + "I", b, i, rnd.choice(EDGE_U32))
    else:
        struct.pack_into(e + "H", b, i, rnd.choice(EDGE_U16))
    return bytes(b)


BLIND: tuple[Mutation, ...] = (truncate, truncate_near_end, bit_flips, byte_sets, insert_bytes,
                               delete_bytes, duplicate_chunk, edge_word)


# --- structural mutations: aimed at the stages behind the readers ------------------------

def _packets(p: Parsed) -> list[Record]:
    return [r for r in p.records if r.kind in ("pcap", "epb")]


def packet_bytes(rnd: random.Random, p: Parsed) -> None:
    """Change one packet's bytes (lengths fixed up on write): flips, tokens, cuts."""
    pkts = _packets(p)
    if not pkts:
        return
    r = rnd.choice(pkts)
    d = r.data
    choice = rnd.randrange(5)
    if choice == 0 and d:
        for _ in range(rnd.randrange(1, 5)):
            d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
    elif choice == 1:
        i = rnd.randrange(len(d) + 1)
        d[i:i] = rnd.choice(TOKENS)
    elif choice == 2:
        del d[rnd.randrange(len(d) + 1) :]
    elif choice == 3 and d:
        i = rnd.randrange(len(d))
        del d[i : i + rnd.randrange(1, 32)]
    else:
        # the tail of the packet (TCP payload, when there is one) replaced by a token
        i = max(0, len(d) - rnd.randrange(1, 200))
        d[i:] = rnd.choice(TOKENS)


def reorder(rnd: random.Random, p: Parsed) -> None:
    """Drop, duplicate, swap or move packet records: what reassembly must survive."""
    idx = [i for i, r in enumerate(p.records) if r.kind in ("pcap", "epb")]
    if len(idx) < 2:
        return
    choice = rnd.randrange(4)
    i, j = rnd.sample(idx, 2)
    if choice == 0:
        del p.records[i]
    elif choice == 1:
        r = p.records[i]
        for _ in range(rnd.randrange(1, 50)):
            p.records.insert(j, Record(bytearray(r.head), bytearray(r.data), r.kind))
    elif choice == 2:
        p.records[i], p.records[j] = p.records[j], p.records[i]
    else:
        p.records.insert(j, p.records.pop(i))


def pcap_fields(rnd: random.Random, p: Parsed) -> None:
    """Absurd pcap header and record fields: snaplen, link type, seconds, fraction, lengths."""
    e = p.endian
    choice = rnd.randrange(5)
    if choice == 0:
        h = bytearray(p.header)
        struct.pack_into(e + "I", h, 16, rnd.choice(EDGE_U32))  # snaplen
        p.header = bytes(h)
    elif choice == 1:
        h = bytearray(p.header)
        struct.pack_into(e + "I", h, 20, rnd.choice(LINKTYPES) | rnd.choice((0, 0x10000000)))
        p.header = bytes(h)
    elif p.records:
        r = rnd.choice(p.records)
        field = {2: 0, 3: 4, 4: 12}[choice]  # seconds, fraction, orig_len
        struct.pack_into(e + "I", r.head, field, rnd.choice((*EDGE_U32, 999_999_999, 1_000_000_000)))


def _option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + _pad4(value)


def pcapng_fields(rnd: random.Random, p: Parsed) -> None:
    """pcapng options and fields: if_tsresol, if_tsoffset, link types, snaplen, interface ids,
    timestamps, extra interface blocks, a second section."""
    e = p.endian
    idbs = [r for r in p.records if r.kind == "idb" and len(r.data) >= 8]
    epbs = [r for r in p.records if r.kind == "epb"]
    choice = rnd.randrange(7)
    if choice in (0, 1) and idbs:
        r = rnd.choice(idbs)
        if choice == 0:
            opt = _option(e, 9, bytes([rnd.choice(TSRESOL)]))
        else:
            opt = _option(e, 14, struct.pack(e + "q", rnd.choice(TSOFFSET)))
        # the new option goes first: a later duplicate would not override it
        r.data[8:8] = opt
        if not r.data.endswith(b"\x00\x00\x00\x00"):
            r.data += b"\x00\x00\x00\x00"
    elif choice == 2 and idbs:
        r = rnd.choice(idbs)
        struct.pack_into(e + "H", r.data, 0, rnd.choice(LINKTYPES))
    elif choice == 3 and idbs:
        struct.pack_into(e + "I", rnd.choice(idbs).data, 4, rnd.choice(EDGE_U32))  # snaplen
    elif choice == 4 and epbs:
        struct.pack_into(e + "I", rnd.choice(epbs).head, 8, rnd.choice((1, 2, 255, 0xFFFFFFFF)))
    elif choice == 5 and epbs:
        r = rnd.choice(epbs)
        struct.pack_into(e + "I", r.head, 12 + 4 * rnd.randrange(2), rnd.choice(EDGE_U32))
    elif idbs:
        # a block's recorded length made absurd, without fixing it up
        r = rnd.choice(p.records)
        r.head[4:8] = struct.pack(e + "I", rnd.choice(EDGE_U32))
        p.records.append(Record(bytearray(r.head), bytearray(), "raw"))


STRUCTURAL = (packet_bytes, packet_bytes, reorder, pcap_fields, pcapng_fields)


def _serialise_keeping_raw(p: Parsed) -> bytes:
    """Serialise, but a record whose head was made absurd on purpose keeps that head."""
    raws = [r for r in p.records if r.kind == "raw"]
    if not raws:
        return serialise(p)
    p.records = [r for r in p.records if r.kind != "raw"]
    data = bytearray(serialise(p))
    # put the absurd length into the first block/record head that matches the original type
    bad = raws[0].head
    for i in range(len(data) - 8, -1, -4):
        if data[i : i + 4] == bad[:4]:
            data[i + 4 : i + 8] = bad[4:8]
            break
    return bytes(data)


def mutate(rnd: random.Random, source: bytes, rounds: int | None = None) -> bytes:
    """One mutated capture from ``source`` (gzip is opened, mutated, and mostly re-packed)."""
    compressed = source[:2] == GZIP_MAGIC
    data = gzip.decompress(source) if compressed else source
    for _ in range(rounds if rounds is not None else rnd.choice((1, 1, 1, 2, 3))):
        if not data:
            data = rnd.randbytes(rnd.randrange(64))
            continue
        p = parse(data) if rnd.random() < 0.55 else None
        if p is not None and (p.records or p.fmt == "pcap"):
            op = rnd.choice(STRUCTURAL)
            if (op is pcap_fields and p.fmt != "pcap") or (op is pcapng_fields and p.fmt != "pcapng"):
                op = packet_bytes
            op(rnd, p)
            data = _serialise_keeping_raw(p)
        else:
            data = rnd.choice(BLIND)(rnd, data)
    if compressed:
        packed = gzip.compress(data, mtime=0)
        if rnd.random() < 0.2 and packed:  # damage the compressed stream itself
            return rnd.choice(BLIND)(rnd, packed)
        return packed
    return data
