"""pcapng: sections with their own byte order, interfaces with their own link type and
timestamp resolution, EPB/SPB/obsolete PB packet blocks; every other block is skipped.

Strategy: read a block's 8-byte head, then its body in one read, then dispatch on the type.
A section header resets the interface table and may switch byte order, so every unpacking
uses the current section's ``struct.Struct`` objects.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from analyzer.capture.pcap import MAX_RECORD, SKIP_CHUNK
from analyzer.capture.reader import Frame

if TYPE_CHECKING:
    from analyzer.capture.reader import CaptureReader

SHB, IDB, PB, SPB, EPB = 0x0A0D0D0A, 1, 2, 3, 6
# Blocks that Wireshark lists as records of their own, so they take a frame number too:
# systemd journal export, and custom blocks (copyable or not).
NUMBERED_NON_PACKETS = frozenset((0x00000009, 0x00000BAD, 0x40000BAD))
BYTE_ORDER_MAGIC = 0x1A2B3C4D
MAX_BLOCK = 64 << 20
# How much of a block body is read into memory, by type; the rest is skipped in pieces, so a
# block's length field never decides how much memory is taken. Packet blocks keep their
# fixed fields and at most MAX_RECORD bytes of packet (as pcap records do); an interface
# block its options; blocks that are skipped anyway, nothing.
IDB_KEEP = 64 * 1024
OPT_TSRESOL, OPT_TSOFFSET = 9, 14


@dataclass(slots=True)
class Interface:
    linktype: int
    snaplen: int
    units_per_sec: int = 1_000_000
    offset_sec: int = 0

    def ts_ns(self, ticks: int) -> int:
        if self.units_per_sec == 1_000_000:
            ns = ticks * 1000
        elif self.units_per_sec == 1_000_000_000:
            ns = ticks
        else:
            ns = ticks * 1_000_000_000 // self.units_per_sec
        return ns + self.offset_sec * 1_000_000_000


def _parse_idb(body: bytes, e: str) -> Interface:
    linktype, _reserved, snaplen = struct.unpack_from(e + "HHI", body, 0)
    iface = Interface(linktype, snaplen)
    pos = 8
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, pos)
        pos += 4
        if code == 0:
            break
        value = body[pos : pos + length]
        if code == OPT_TSRESOL and length >= 1:
            r = value[0]
            exp = r & 0x7F
            iface.units_per_sec = (2**exp) if r & 0x80 else (10**exp)
        elif code == OPT_TSOFFSET and length >= 8:
            iface.offset_sec = struct.unpack(e + "q", value[:8])[0]
        pos += (length + 3) & ~3
    return iface


def read_frames(reader: CaptureReader) -> Iterator[Frame]:
    read = reader.stream.read
    e = "<"
    interfaces: list[Interface] = []
    number = 0
    section = 0
    epb = struct.Struct("<IIIII")
    while True:
        head = read(8)
        if not head:
            return
        if len(head) < 8:
            reader.note("truncated-record", number + 1, "block header cut short at end of file")
            return
        btype_le = int.from_bytes(head[:4], "little")
        if btype_le == SHB:
            # The byte-order magic decides how this section (and this length) is read.
            bom = read(4)
            if len(bom) < 4:
                reader.note("truncated-record", number + 1, "section header cut short")
                return
            e = "<" if int.from_bytes(bom, "little") == BYTE_ORDER_MAGIC else ">"
            epb = struct.Struct(e + "IIIII")
            total = struct.unpack(e + "I", head[4:])[0]
            if total < 28 or total > MAX_BLOCK or total % 4:
                reader.note("bad-block", number + 1, f"section header with length {total}")
                return
            left = total - 12  # nothing in the section header's body is used: skip it
            while left:
                piece = len(read(min(left, SKIP_CHUNK)))
                if not piece:
                    break
                left -= piece
            if left:
                reader.note("truncated-record", number + 1, "section header cut short")
                return
            section += 1
            interfaces = []
            continue
        btype, total = struct.unpack(e + "II", head)
        if total < 12 or total > MAX_BLOCK or total % 4:
            reader.note(
                "bad-block", number + 1, f"block type {btype:#x} with length {total}; reading stopped"
            )
            return
        whole = total - 8
        if btype in (EPB, PB):
            want = min(whole, 20 + MAX_RECORD)
        elif btype == SPB:
            want = min(whole, 4 + MAX_RECORD)
        elif btype == IDB:
            want = min(whole, IDB_KEEP)
        else:
            want = 0
        body = read(want) if want else b""
        got = len(body)
        left = whole - got if got == want else 0
        while left:
            piece = len(read(min(left, SKIP_CHUNK)))
            if not piece:
                break
            got += piece
            left -= piece
        if got < whole:
            reader.note(
                "truncated-record",
                number + 1,
                f"last block cut short: {got + 8} of {total} bytes (capture stopped mid-write)",
            )
            return
        if want == whole:
            body = body[:-4]  # trailing copy of the block length
        if btype in (EPB, PB):
            if len(body) < 20:
                reader.note("bad-block", number + 1, "packet block too short")
                continue
            if btype == EPB:
                if_id, ts_hi, ts_lo, caplen, origlen = epb.unpack_from(body, 0)
            else:
                if_id, _drops, ts_hi, ts_lo, caplen, origlen = struct.unpack_from(
                    e + "HHIIII", body, 0
                )
            if if_id >= len(interfaces):
                reader.note("bad-block", number + 1, f"packet on undeclared interface {if_id}")
                continue
            iface = interfaces[if_id]
            number += 1
            data = body[20 : 20 + min(caplen, MAX_RECORD)]
            if caplen > MAX_RECORD and len(data) == MAX_RECORD:
                reader.note(
                    "record-too-big", number,
                    f"packet of {caplen} bytes; only its first {MAX_RECORD} were kept",
                )
            elif len(data) < caplen:
                reader.note("bad-block", number, "packet data shorter than its captured length")
            yield Frame(
                number, iface.ts_ns((ts_hi << 32) | ts_lo), iface.linktype, data, origlen, if_id
            )
        elif btype == SPB:
            if not interfaces or len(body) < 4:
                reader.note("bad-block", number + 1, "simple packet block without interface")
                continue
            iface = interfaces[0]
            origlen = struct.unpack_from(e + "I", body, 0)[0]
            # (body is at most 4 + MAX_RECORD bytes: the excess of a larger one was skipped)
            caplen = min(origlen, iface.snaplen or origlen, len(body) - 4)
            number += 1
            # A simple packet block has no timestamp: 0 says "unknown", not "1970".
            yield Frame(number, 0, iface.linktype, body[4 : 4 + caplen], origlen, 0)
        elif btype == IDB:
            if len(body) < 8:
                reader.note("bad-block", number + 1, "interface block too short")
                continue
            iface = _parse_idb(body, e)
            interfaces.append(iface)
            reader.linktypes.add(iface.linktype)
        elif btype in NUMBERED_NON_PACKETS:
            number += 1  # not a packet, but Wireshark numbers it: keep frame numbers aligned
        # every other block type (name resolution, statistics, unknown) is skipped
