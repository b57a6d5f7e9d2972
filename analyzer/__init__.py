"""tracewire: find where tracing headers stop propagating, from packet captures of a mesh.

The package is a pipeline of stages (see README "Architecture"): capture -> decode ->
reassembly -> protocols -> tracing -> analysis -> report. Each stage is importable alone.

The public API (``__all__``)::

    import analyzer

    result = analyzer.analyze(["productpage.pcap", "reviews.pcap"])
    for hop in result.hops:
        if hop.broken_total:
            print(f"{hop.source} -> {hop.target}: {hop.broken_total} of {hop.calls} calls broken")

``analyze`` returns a ``Result`` (findings, hops, traces, pods, notes, anomalies);
``read_messages`` yields one capture's HTTP messages in one pass; ``diff`` compares two
results. Wire records (``Message``, ``Header``) keep bytes as received; analysis records
(``Call``, ``Finding``, ``Hop``, ...) hold str: see ``analyzer.api``.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = [
    "KINDS",
    "AnalyzerError",
    "Anomaly",
    "Call",
    "CaptureError",
    "CaptureSummary",
    "DiffResult",
    "Endpoints",
    "Finding",
    "Header",
    "Hop",
    "HopDiff",
    "Message",
    "Note",
    "Options",
    "Pod",
    "Result",
    "Span",
    "Trace",
    "TraceContext",
    "__version__",
    "analyze",
    "diff",
    "read_messages",
]

# Imported after __version__: the stages import it (export's scope version, the CLI).
from analyzer.analysis import KINDS, Call, Finding, Hop, Note, Options, Pod, Result, Span, Trace
from analyzer.analysis.diff import DiffResult, HopDiff
from analyzer.api import analyze, diff
from analyzer.errors import AnalyzerError, CaptureError
from analyzer.pipeline import CaptureSummary, read_messages
from analyzer.records import Anomaly, Endpoints, Header, Message
from analyzer.tracing import TraceContext
