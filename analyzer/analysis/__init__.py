"""Analysis stage: legs and roles, attribution of outbound calls to inbound requests,
findings (where propagation breaks), hops and traces, over one or more captures."""

from __future__ import annotations

from analyzer.analysis.engine import analyze
from analyzer.analysis.legs import Options
from analyzer.analysis.model import KINDS, Call, Finding, Hop, Note, Pod, Result, Span, Trace

__all__ = ["KINDS", "Call", "Finding", "Hop", "Note", "Options", "Pod", "Result", "Span", "Trace", "analyze"]
