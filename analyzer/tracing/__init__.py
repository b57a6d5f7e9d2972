"""Tracing contexts: parse and validate the trace-propagation headers of one message.

``extract(headers)`` gives one ``TraceContext`` per format present (x-request-id, B3
multi and single, W3C traceparent and tracestate, Jaeger, x-ot-span-context,
grpc-trace-bin, Cloud Trace, Datadog, SkyWalking sw8, AWS X-Ray, baggage), each with
the raw value, the normalised ids and the spec rules the value breaks.
"""

from __future__ import annotations

from analyzer.tracing.context import FORMATS, TraceContext, same_trace
from analyzer.tracing.extract import TRACING_HEADER_NAMES, extract
from analyzer.tracing.requestid import request_id_key

__all__ = [
    "FORMATS",
    "TRACING_HEADER_NAMES",
    "TraceContext",
    "extract",
    "request_id_key",
    "same_trace",
]
