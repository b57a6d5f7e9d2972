"""Classic libpcap files: both byte orders, microsecond and nanosecond timestamps."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from analyzer.capture.reader import PCAP_MAGICS, Frame

if TYPE_CHECKING:
    from analyzer.capture.reader import CaptureReader

# The most of one record that is kept. libpcap never captures more than 256 KiB (262144,
# Wireshark's WTAP_MAX_PACKET_SIZE_STANDARD; only D-Bus, USB and EBHSCR link types, which
# carry no TCP/IP, go further), and an IP packet is at most 64 KiB unless offloaded. A record
# claiming more (as a file header's snap length of 2^32-1 allows) is read by its real length
# in pieces: its first MAX_RECORD bytes are kept, the rest skipped, reading goes on, so a
# length field never decides how much memory is taken.
MAX_RECORD = 256 * 1024
SKIP_CHUNK = 1 << 20
READ_CHUNK = 256 * 1024  # (peak memory holds a few of these: the bounds tests measure it)


def read_frames(reader: CaptureReader) -> Iterator[Frame]:
    stream = reader.stream
    header = stream.read(24)
    if len(header) < 24:
        reader.note("truncated-record", None, f"pcap file header cut short ({len(header)} bytes)")
        return
    endian, ns_per_tick = PCAP_MAGICS[header[:4]]
    _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(endian + "HHiIII", header[4:])
    linktype &= 0xFFFF  # upper bits carry FCS information, not the link type
    reader.linktypes.add(linktype)
    little = endian == "<"
    # Records are cut from chunks of up to READ_CHUNK bytes, each got with one read1 (what
    # is there, without waiting for more: a live capture on stdin is not held back), and
    # their header fields read by indexing: two reads, a header object and an unpack per
    # record cost more than the rest of reading it. A record's bytes are still a copy of
    # their own (never a view of a chunk, which later stages would keep alive).
    read1: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
    if snaplen > MAX_RECORD:
        reader.note(
            "bad-snaplen",
            None,
            f"file header gives a snap length of {snaplen}; records are read by their own "
            f"length, at most {MAX_RECORD} bytes of each kept",
        )
    limit = MAX_RECORD
    number = 0
    buf = b""
    pos = 0
    last_sec = sec_ns = 0
    while True:
        if len(buf) - pos < 16:
            more = read1(READ_CHUNK)
            if more:
                buf = buf[pos:] + more if pos < len(buf) else more
                pos = 0
                continue
            if pos == len(buf):
                return
            number += 1
            reader.note(
                "truncated-record", number,
                f"record header cut short ({len(buf) - pos} of 16 bytes)",
            )
            return
        number += 1
        b, p = buf, pos
        if little:
            sec = b[p] | b[p + 1] << 8 | b[p + 2] << 16 | b[p + 3] << 24
            frac = b[p + 4] | b[p + 5] << 8 | b[p + 6] << 16 | b[p + 7] << 24
            caplen = b[p + 8] | b[p + 9] << 8 | b[p + 10] << 16 | b[p + 11] << 24
            origlen = b[p + 12] | b[p + 13] << 8 | b[p + 14] << 16 | b[p + 15] << 24
        else:
            sec = b[p] << 24 | b[p + 1] << 16 | b[p + 2] << 8 | b[p + 3]
            frac = b[p + 4] << 24 | b[p + 5] << 16 | b[p + 6] << 8 | b[p + 7]
            caplen = b[p + 8] << 24 | b[p + 9] << 16 | b[p + 10] << 8 | b[p + 11]
            origlen = b[p + 12] << 24 | b[p + 13] << 16 | b[p + 14] << 8 | b[p + 15]
        pos += 16
        want = min(caplen, limit)
        while len(buf) - pos < want:
            more = read1(max(READ_CHUNK, want - (len(buf) - pos)))
            if not more:
                break
            buf = buf[pos:] + more if pos < len(buf) else more
            pos = 0
        data = buf[pos : pos + want]
        pos += len(data)
        got = len(data)
        if caplen > limit and got == limit:
            # Skip the rest by its real length, in pieces: nothing larger is ever allocated.
            left = caplen - limit
            while left:
                if pos < len(buf):
                    piece = min(left, len(buf) - pos)
                    pos += piece
                else:
                    piece = len(read1(min(left, SKIP_CHUNK)))
                got += piece
                left -= piece
                if not piece:
                    break
            if not left:
                reader.note(
                    "record-too-big",
                    number,
                    f"record of {caplen} bytes; only its first {limit} were kept",
                )
        if got < caplen:
            reader.note(
                "truncated-record",
                number,
                f"last record cut short: {got} of {caplen} bytes (capture stopped mid-write)",
            )
            return
        if sec != last_sec:  # compiled, a product this large is a boxed one: once a second
            last_sec, sec_ns = sec, sec * 1_000_000_000
        yield Frame(number, sec_ns + frac * ns_per_tick, linktype, data, origlen)
