"""Classic libpcap files: both byte orders, microsecond and nanosecond timestamps."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from analyzer.capture.reader import PCAP_MAGICS, Frame

if TYPE_CHECKING:
    from analyzer.capture.reader import CaptureReader

# Records larger than this are corrupt, not jumbo: libpcap's own ceiling is 256 KiB
# (262144), raised for D-Bus/USB captures; nothing sane goes past 16 MiB.
MAX_RECORD = 16 << 20


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
    limit = max(snaplen, 262_144, MAX_RECORD)
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
        if caplen > limit:
            reader.note(
                "bad-record", number, f"record claims {caplen} bytes; the rest of the file is unreadable"
            )
            return
        data = read(caplen)
        if len(data) < caplen:
            reader.note(
                "truncated-record",
                number,
                f"last record cut short: {len(data)} of {caplen} bytes (capture stopped mid-write)",
            )
            return
        yield Frame(number, sec * 1_000_000_000 + frac * ns_per_tick, linktype, data, origlen)
