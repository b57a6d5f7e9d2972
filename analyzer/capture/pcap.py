"""Classic libpcap files: both byte orders, microsecond and nanosecond timestamps."""

from __future__ import annotations

import struct
from collections.abc import Iterator
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
    rec = struct.Struct(endian + "IIII")
    unpack = rec.unpack
    read = stream.read
    if snaplen > MAX_RECORD:
        reader.note(
            "bad-snaplen",
            None,
            f"file header gives a snap length of {snaplen}; records are read by their own "
            f"length, at most {MAX_RECORD} bytes of each kept",
        )
    limit = MAX_RECORD
    number = 0
    while True:
        rh = read(16)
        if not rh:
            return
        number += 1
        if len(rh) < 16:
            reader.note(
                "truncated-record", number, f"record header cut short ({len(rh)} of 16 bytes)"
            )
            return
        sec, frac, caplen, origlen = unpack(rh)
        data = read(min(caplen, limit))
        got = len(data)
        if caplen > limit and got == limit:
            # Skip the rest by its real length, in pieces: nothing larger is ever allocated.
            left = caplen - limit
            while left:
                piece = len(read(min(left, SKIP_CHUNK)))
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
        yield Frame(number, sec * 1_000_000_000 + frac * ns_per_tick, linktype, data, origlen)
