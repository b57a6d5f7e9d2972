"""Decode stage: link layer, IPv4/IPv6 and TCP headers of one frame, as pure functions.

Everything is ``struct`` on the frame's bytes; no general-purpose dissector runs per packet.
A frame that carries no TCP segment yields a short reason string that the caller counts.
"""

from __future__ import annotations

from analyzer.decode.packet import (
    LINKTYPE_NAMES,
    Segment,
    decode_frame,
    format_addr,
    format_endpoint,
)

__all__ = ["LINKTYPE_NAMES", "Segment", "decode_frame", "format_addr", "format_endpoint"]
