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

# typing.TYPE_CHECKING without loading typing (about 10 ms): type checkers read any name
# TYPE_CHECKING as true. Everything here runs before the command's Ctrl-C guard exists.
TYPE_CHECKING = False

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

# The API is loaded on first use (PEP 562): ``import analyzer`` costs nothing, so that the
# command (``python -m analyzer``, ``tracewire``) can set up its Ctrl-C guard before any stage
# loads, and so that ``tracewire info`` or ``--version`` load only the stages they use.
_WHERE = {
    "KINDS": "analyzer.analysis",
    "Call": "analyzer.analysis",
    "Finding": "analyzer.analysis",
    "Hop": "analyzer.analysis",
    "Note": "analyzer.analysis",
    "Options": "analyzer.analysis",
    "Pod": "analyzer.analysis",
    "Result": "analyzer.analysis",
    "Span": "analyzer.analysis",
    "Trace": "analyzer.analysis",
    "DiffResult": "analyzer.analysis.diff",
    "HopDiff": "analyzer.analysis.diff",
    "analyze": "analyzer.api",
    "diff": "analyzer.api",
    "AnalyzerError": "analyzer.errors",
    "CaptureError": "analyzer.errors",
    "CaptureSummary": "analyzer.pipeline",
    "read_messages": "analyzer.pipeline",
    "Anomaly": "analyzer.records",
    "Endpoints": "analyzer.records",
    "Header": "analyzer.records",
    "Message": "analyzer.records",
    "TraceContext": "analyzer.tracing",
}

if TYPE_CHECKING:  # what the names are, for mypy and editors; loaded by __getattr__ at run time
    from analyzer.analysis import KINDS, Call, Finding, Hop, Note, Options, Pod, Result, Span, Trace
    from analyzer.analysis.diff import DiffResult, HopDiff
    from analyzer.api import analyze, diff
    from analyzer.errors import AnalyzerError, CaptureError
    from analyzer.pipeline import CaptureSummary, read_messages
    from analyzer.records import Anomaly, Endpoints, Header, Message
    from analyzer.tracing import TraceContext


if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name as an object

    def __getattr__(name: str) -> object:
        module = _WHERE.get(name)
        if module is None:
            raise AttributeError(f"module 'analyzer' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # found once; later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
