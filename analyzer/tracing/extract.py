"""Which header belongs to which format, and the one pass that finds every context.

Strategy: ``extract`` runs on every HTTP message of a large capture and most headers
are not about tracing, so it makes one pass with a dict lookup on the lower-cased name
and allocates nothing until a tracing header shows up. Headers are grouped per format
(dict order keeps the wire order of each format's first header), then each group is
parsed once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from analyzer.records import Header
from analyzer.tracing import b3, baggage, google, jaeger, requestid, vendors, w3c
from analyzer.tracing.context import Field, TraceContext

_FORMAT_OF_NAME: dict[str, str] = {
    "x-request-id": "x-request-id",
    **dict.fromkeys(b3.MULTI_NAMES, "b3-multi"),
    b3.SINGLE_NAME: "b3-single",
    w3c.TRACEPARENT: "w3c",
    w3c.TRACESTATE: "tracestate",
    jaeger.UBER_TRACE_ID: "jaeger",
    jaeger.OT_SPAN_CONTEXT: "ot-span-context",
    google.GRPC_TRACE_BIN: "grpc-trace-bin",
    google.CLOUD_TRACE: "cloud-trace",
    **dict.fromkeys(vendors.DATADOG_NAMES, "datadog"),
    vendors.SW8: "sw8",
    vendors.XRAY: "aws-xray",
    baggage.BAGGAGE: "baggage",
}

TRACING_HEADER_NAMES: frozenset[str] = frozenset(_FORMAT_OF_NAME)
"""Every lower-cased header name a format uses; Jaeger's ``uberctx-*`` is a prefix, not here."""

# Keyed by the wire bytes so the hot loop never decodes a name it does not want.
_LOOKUP: Final[dict[bytes, tuple[str, str]]] = {
    name.encode("ascii"): (fmt, name) for name, fmt in _FORMAT_OF_NAME.items()
}
_UBERCTX: Final = baggage.UBERCTX_PREFIX.encode("ascii")

_PARSERS: Final[dict[str, Callable[[Sequence[Field]], TraceContext]]] = {
    "x-request-id": requestid.parse_request_id,
    "b3-multi": b3.parse_multi,
    "b3-single": b3.parse_single,
    "w3c": w3c.parse_traceparent,
    "tracestate": w3c.parse_tracestate,
    "jaeger": jaeger.parse_uber_trace_id,
    "ot-span-context": jaeger.parse_ot_span_context,
    "grpc-trace-bin": google.parse_grpc_trace_bin,
    "cloud-trace": google.parse_cloud_trace,
    "datadog": vendors.parse_datadog,
    "sw8": vendors.parse_sw8,
    "aws-xray": vendors.parse_xray,
    "baggage": baggage.parse_baggage,
}


def extract(headers: Sequence[Header]) -> tuple[TraceContext, ...]:
    """Every tracing context in a message's headers, in wire order of each one's first header.

    A header whose name or value is unknown (an HPACK entry older than the capture) is
    skipped; one whose name was guessed is used, and its context says ``guessed=True``.
    """
    groups: dict[str, list[Field]] | None = None
    guessed: set[str] | None = None
    lookup = _LOOKUP
    for header in headers:
        lname = header.lname
        value = header.value
        if lname is None or value is None:
            continue
        hit = lookup.get(lname)
        if hit is None:
            # most names are no tracing header's: told by their first byte before calling
            # startswith (a bytes method call costs ~1,000 instructions compiled)
            if not lname or lname[0] != 117 or not lname.startswith(_UBERCTX):  # 117: "u"
                continue
            hit = ("baggage", lname.decode("latin-1"))
        fmt, name = hit
        if groups is None:
            groups = {}
        group = groups.get(fmt)
        if group is None:
            groups[fmt] = [(name, value)]
        else:
            group.append((name, value))
        if header.guessed:
            if guessed is None:
                guessed = set()
            guessed.add(fmt)
    if groups is None:
        return ()
    contexts = []
    for fmt, fields in groups.items():
        # The two formats of nearly every traced message called directly (compiled, a
        # direct call; one through the table is a Python call), the rest by the table.
        if fmt == "w3c":
            context = w3c.parse_traceparent(fields)
        elif fmt == "x-request-id":
            context = requestid.parse_request_id(fields)
        else:
            context = _PARSERS[fmt](fields)
        if guessed is not None and fmt in guessed:
            c = context  # dataclasses.replace is slow on a hot path; build it directly
            context = TraceContext(c.format, c.headers, c.raw, c.trace_id, c.span_id,
                                   c.parent_span_id, c.sampled, c.request_id, c.violations, True)
        contexts.append(context)
    return tuple(contexts)
