"""B3 propagation (openzipkin/b3-propagation): the x-b3-* headers and the single "b3" header.

Trace ids are 16 or 32 lower-hex digits, span and parent ids 16; a 64-bit trace id is
the same trace as its zero-padded 128-bit form, so ids are padded to 32 digits here.
Any x-b3-* header may come alone (a bare sampling decision is legal), and all of them
together make one "b3-multi" context.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.tracing.context import Field, TraceContext, build, excerpt, hex_id, once_each, ows, text

TRACE_ID = "x-b3-traceid"
SPAN_ID = "x-b3-spanid"
PARENT_SPAN_ID = "x-b3-parentspanid"
SAMPLED = "x-b3-sampled"
FLAGS = "x-b3-flags"
MULTI_NAMES: tuple[str, ...] = (TRACE_ID, SPAN_ID, PARENT_SPAN_ID, SAMPLED, FLAGS)  # typed for mypyc
SINGLE_NAME = "b3"

_TRACE_LENGTHS = (16, 32)
_SPAN_LENGTHS = (16,)


def _sampled(value: str, where: str, violations: list[str]) -> bool | None:
    if value == "1":
        return True
    if value == "0":
        return False
    low = value.lower()
    # Tracers older than the spec sent "true"/"false"; the spec lets receivers tolerate it.
    if low == "true":
        violations.append(f'{where}: {excerpt(value)} is not allowed, the spec says "1"')
        return True
    if low == "false":
        violations.append(f'{where}: {excerpt(value)} is not allowed, the spec says "0"')
        return False
    violations.append(f'{where}: must be "1" or "0", not {excerpt(value)}')
    return None


def parse_multi(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    seen = once_each(fields, violations)

    trace_id = span_id = parent = None
    sampled: bool | None = None
    if TRACE_ID in seen:
        trace_id = hex_id(seen[TRACE_ID], TRACE_ID, "trace id", _TRACE_LENGTHS, 32, violations)
    if SPAN_ID in seen:
        span_id = hex_id(seen[SPAN_ID], SPAN_ID, "span id", _SPAN_LENGTHS, 16, violations)
    if PARENT_SPAN_ID in seen:
        parent = hex_id(seen[PARENT_SPAN_ID], PARENT_SPAN_ID, "parent span id", _SPAN_LENGTHS, 16, violations)
    if SAMPLED in seen:
        sampled = _sampled(seen[SAMPLED], SAMPLED, violations)
    if FLAGS in seen:
        flags = seen[FLAGS]
        if flags == "1":
            sampled = True  # debug implies an accept decision
        elif flags != "0":
            violations.append(f'{FLAGS}: must be "1" (debug), not {excerpt(flags)}')

    if TRACE_ID in seen and SPAN_ID not in seen:
        violations.append(f"{SPAN_ID}: missing, it is required with {TRACE_ID}")
    if TRACE_ID not in seen:
        for name in (SPAN_ID, PARENT_SPAN_ID):
            if name in seen:
                violations.append(f"{name}: sent without {TRACE_ID}")
    return build(
        "b3-multi",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        sampled=sampled,
    )


def _single_sampling(value: str, violations: list[str]) -> bool | None:
    if value in ("1", "d"):  # "d" is debug, which implies an accept decision
        return True
    if value == "0":
        return False
    violations.append(f'b3: sampling state must be "1", "0" or "d", not {excerpt(value)}')
    return None


def parse_single(fields: Sequence[Field]) -> TraceContext:
    """``{traceid}-{spanid}[-{sampling}[-{parentspanid}]]`` or a bare ``{sampling}``."""
    violations: list[str] = []
    if len(fields) > 1:
        violations.append(f"b3: sent {len(fields)} times, only one is allowed")
    value = ows(text(fields[0][1]))
    parts = value.split("-")
    trace_id = span_id = parent = None
    sampled: bool | None = None
    if not value:
        violations.append("b3: value is empty")
    elif len(parts) == 1:
        sampled = _single_sampling(value, violations)
    elif len(parts) > 4:
        violations.append(f"b3: has {len(parts)} fields, at most 4 are allowed")
    else:
        trace_id = hex_id(parts[0], "b3", "trace id", _TRACE_LENGTHS, 32, violations)
        span_id = hex_id(parts[1], "b3", "span id", _SPAN_LENGTHS, 16, violations)
        if len(parts) >= 3:
            sampled = _single_sampling(parts[2], violations)
        if len(parts) == 4:
            parent = hex_id(parts[3], "b3", "parent span id", _SPAN_LENGTHS, 16, violations)
    return build(
        "b3-single",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        sampled=sampled,
    )
