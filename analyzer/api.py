"""The library's entry points: what ``import analyzer`` offers besides the record types.

Two kinds of record, one rule for text:

* **Wire records** (``Message``, ``Header``, ``Anomaly``, ``Endpoints``) say what the capture
  holds. Their header names and values, method, path and authority are ``bytes``, exactly as
  received: capture content is hostile, may not be UTF-8, and only the report layer decides
  how to show it (escaped, credentials redacted).
* **Analysis records** (``Call``, ``Finding``, ``Hop``, ``Trace``, ``Span``, ``Pod``,
  ``Result``, ``DiffResult``) are the analysis's conclusions: every name, method, path and
  id is ``str`` (bytes decoded with backslash escapes, so nothing is lost or guessed), and a
  service is always the name the reports print (``Finding.source``, ``Call.service`` and
  ``Pod.service`` agree).

Converting the wire records to ``str`` would lose the exact bytes a protocol analyzer must
keep; converting the analysis records to ``bytes`` would make every caller decode. So the
line is drawn where the analysis begins.

Values from a capture are shown by the CLI through ``analyzer.report``; a program that
prints them itself is responsible for redacting credentials (``analyzer.report.redact``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from analyzer.analysis import Options, Result
from analyzer.analysis import analyze as _analyze
from analyzer.analysis.diff import DiffResult
from analyzer.analysis.diff import diff as _diff

Captures = str | Path | Iterable[str | Path]


def _paths(captures: Captures) -> list[str | Path]:
    # One path is a capture, not an iterable of one-character file names.
    if isinstance(captures, str | Path):
        return [captures]
    return list(captures)


def analyze(captures: Captures, options: Options | None = None, *, jobs: int = 1) -> Result:
    """Analyse one capture or several (one per pod, as ``kubectl sniff`` records them).

    Returns a ``Result``: ``findings`` (each outbound call where tracing headers stop
    propagating, with its evidence), ``hops`` (source → target service, calls and broken
    calls by kind, headers lost), ``traces`` (spans joined across captures by their ids),
    ``pods``, ``notes`` and the captures' ``anomalies``. ``options`` (an ``Options``) gives
    what the traffic may not show: the pod's IP, the app's ports, the sidecar's outbound
    port, pod names per capture.

    ``jobs`` > 1 reads up to that many captures at once, each in a process of its own
    (spawned: a script calling this needs the usual ``if __name__ == "__main__":`` guard);
    the result is the same as with 1.

    Raises ``CaptureError`` when a file is not a capture; malformed content inside a capture
    becomes an anomaly and the analysis goes on.
    """
    return _analyze(_paths(captures), options, jobs=jobs)


def diff(before: Result | Captures, after: Result | Captures,
         options: Options | None = None) -> DiffResult:
    """Compare two analyses hop by hop: which hops were fixed, regressed, are new or gone,
    which tracing headers appeared or disappeared. ``before`` and ``after`` are each a
    ``Result`` or the capture(s) to analyse (with ``options``)."""
    b = before if isinstance(before, Result) else analyze(before, options)
    a = after if isinstance(after, Result) else analyze(after, options)
    return _diff(b, a)
