"""Jaeger's uber-trace-id and the OpenTracing x-ot-span-context header.

uber-trace-id is ``{trace-id}:{span-id}:{parent-span-id}:{flags}``, sometimes
URL-encoded (``%3A``). Jaeger ids are hex of variable length: leading zeros may be
dropped and receivers pad them, so a short id is not a violation, and Jaeger clients
accept upper-case hex, so neither is that. Parent "0" is the deprecated "no parent".

x-ot-span-context is opaque in general; Envoy's tracers wrote it as
``traceid;spanid;parentspanid[;annotation]`` in hex, which is read when it has that shape.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.tracing.context import (
    Field,
    TraceContext,
    build,
    excerpt,
    hex_id,
    is_hex,
    single,
)

UBER_TRACE_ID = "uber-trace-id"
OT_SPAN_CONTEXT = "x-ot-span-context"

_TRACE_LENGTHS = tuple(range(1, 33))
_SPAN_LENGTHS = tuple(range(1, 17))


def _url_decoded(value: str) -> str:
    # Only the ':' separator is ever percent-encoded here; decoding nothing else keeps
    # any other '%' in an id visible as a violation.
    return value.replace("%3A", ":").replace("%3a", ":")


def parse_uber_trace_id(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    value = _url_decoded(single(fields, violations))
    parts = value.split(":")
    if len(parts) != 4:
        violations.append(
            f"{UBER_TRACE_ID}: must be trace-id:span-id:parent-span-id:flags, "
            f"got {len(parts)} field{'s' if len(parts) != 1 else ''}"
        )
        return build("jaeger", fields, violations)
    where = UBER_TRACE_ID
    trace_id = hex_id(parts[0], where, "trace-id", _TRACE_LENGTHS, 32, violations, lower_only=False)
    span_id = hex_id(parts[1], where, "span-id", _SPAN_LENGTHS, 16, violations, lower_only=False)
    parent: str | None = None
    if parts[2].count("0") != len(parts[2]):  # "0" (any number of zeros) means no parent
        parent = hex_id(parts[2], where, "parent-span-id", _SPAN_LENGTHS, 16, violations, lower_only=False)
    elif not parts[2]:
        violations.append(f"{where}: parent-span-id is empty (use 0 for none)")
    sampled: bool | None = None
    flags = parts[3]
    if not flags or len(flags) > 2 or not is_hex(flags):
        violations.append(f"{where}: flags must be one byte in hex, not {excerpt(flags)}")
    else:
        sampled = bool(int(flags, 16) & 1)
    return build(
        "jaeger",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        sampled=sampled,
    )


def parse_ot_span_context(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    value = single(fields, violations)
    if not value:
        violations.append(f"{OT_SPAN_CONTEXT}: value is empty")
        return build("ot-span-context", fields, violations)
    parts = value.split(";")
    ids = parts[:3]
    if (
        not 2 <= len(parts) <= 4
        or len(ids[0]) not in (16, 32)
        or any(len(p) != 16 for p in ids[1:])
        or not all(is_hex(p) for p in ids)
    ):
        return build("ot-span-context", fields, violations)  # opaque: nothing to check
    # No spec fixes the case of these ids, so upper-case is read without a violation.
    where = OT_SPAN_CONTEXT
    trace_id = hex_id(ids[0], where, "trace id", (16, 32), 32, violations, lower_only=False)
    span_id = hex_id(ids[1], where, "span id", (16,), 16, violations, lower_only=False)
    parent = None
    if len(ids) == 3 and ids[2].count("0") != len(ids[2]):
        parent = hex_id(ids[2], where, "parent span id", (16,), 16, violations, lower_only=False)
    return build(
        "ot-span-context",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
    )
