"""Reassembly stage: TCP segments in, per-direction ordered bytes, explicit gaps and ends out."""

from __future__ import annotations

from analyzer.reassembly.tcp import (
    Connection,
    Data,
    End,
    Flow,
    Gap,
    Reassembler,
    StreamEvent,
    seq_diff,
)

__all__ = ["Connection", "Data", "End", "Flow", "Gap", "Reassembler", "StreamEvent", "seq_diff"]
