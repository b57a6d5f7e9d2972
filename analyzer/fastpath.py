"""The one place that decides which path a segment's bytes take: lean or general.

Strategy: most of a ksniff capture is in-order data on long keep-alive connections whose
protocol is already known. For such a segment the general stages do little but build
objects that are thrown away at once (a stream event, a list of events, a generator step
per event). The lean path hands the payload from the reassembler's in-order check straight
to the connection's protocol session. Everything irregular (out of order, a gap, a
retransmission, SYN/FIN/RST, data still waiting behind a hole, a protocol not yet detected,
a NAT half not yet paired) takes the general path at that segment (a bare acknowledgement
has a shortcut of its own, ``bare_ack``: it only updates counters), and the general path
stays the reference: ``tests/test_fastpath.py`` runs both on every fixture and on generated
streams and requires identical output.

Both paths share the record types, the protocol parsers, the tracing extraction and the
redaction; the lean path is a shortcut through the reassembly-to-session boundary, not a
second pipeline. ``TRACEWIRE_FASTPATH=0`` (or ``read_messages(..., fastpath=False)``)
forces the general path everywhere.
"""

from __future__ import annotations

import os
from typing import Final

from analyzer.decode.packet import ACK, FIN, RST, SYN, Segment
from analyzer.protocols.session import UNKNOWN, Session
from analyzer.reassembly.tcp import Connection, Flow

ENV: Final = "TRACEWIRE_FASTPATH"
# A segment may take the lean path only with exactly these flags: ACK, maybe PSH (and any of
# URG, ECE, CWR, which reassembly ignores). SYN, FIN and RST change connection state.
_STATE_FLAGS: Final = SYN | FIN | RST


def enabled(flag: bool | None = None) -> bool:
    """Whether the lean path may be taken: ``flag`` if given, else the environment (on
    unless ``TRACEWIRE_FASTPATH=0``)."""
    if flag is not None:
        return flag
    return os.environ.get(ENV, "1").strip() != "0"


def in_order(flow: Flow | None, seg: Segment) -> bool:
    """Whether ``seg`` continues ``flow`` exactly as the general reassembly would deliver it
    with no other effect than one in-order ``Data``: a known direction, still open, with
    nothing waiting behind a hole in either direction (the peer's acknowledgement could turn
    a hole into a gap), no FIN pending, fully captured, and exactly the expected sequence
    number. Any other segment takes the general path."""
    return (
        flow is not None
        and seg.flags & (_STATE_FLAGS | ACK) == ACK
        and seg.seq == flow.next_seq
        and not seg.missing
        and len(seg.payload) > 0
        and flow.segments > 0
        and not flow.ended
        and flow.fin_seq is None
        and not flow.pending
        and not flow.peer.pending
    )


def bare_ack(flow: Flow, seg: Segment) -> bool:
    """Whether ``seg`` is an acknowledgement alone that the general reassembly would take
    with no other effect than counting it and noting its acknowledgement number: no payload,
    no flag but ACK (and PSH and the ignored ones), on a direction already seen, still open,
    no FIN pending, and nothing of the peer's waiting behind a hole (the acknowledgement
    could turn the hole into a gap). About half the packets of a capture are these."""
    return (
        seg.flags & (_STATE_FLAGS | ACK) == ACK
        and len(seg.payload) == 0
        and not seg.missing
        and flow.segments > 0
        and not flow.ended
        and flow.fin_seq is None
        and not flow.peer.pending
    )


def decided(conn: Connection) -> Session | None:
    """The session that may take in-order bytes of ``conn`` directly: one that knows its
    protocol. While detection runs, bytes go through the general path, which accounts for
    what detection holds over all connections."""
    sess = conn.state
    if isinstance(sess, Session) and sess.protocol != UNKNOWN:
        return sess
    return None
