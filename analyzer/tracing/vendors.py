"""Vendor formats: Datadog's x-datadog-* headers, SkyWalking's sw8, AWS X-Ray's x-amzn-trace-id.

Datadog ids are unsigned 64-bit decimals; a 128-bit trace id keeps its upper half as
16 hex digits in the ``_dd.p.tid`` tag of x-datadog-tags. sw8 is eight '-'-separated
fields, most of them base64; its trace id is any string, so it only becomes a trace
id here when it decodes to 32 hex digits. X-Ray's root ``1-{8 hex}-{24 hex}`` is the
time and the random part of one 128-bit id.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from analyzer.tracing.context import (
    Field,
    TraceContext,
    build,
    decimal_id,
    excerpt,
    hex_id,
    is_decimal,
    is_hex,
    is_lower_hex,
    once_each,
    ows,
    single,
    text,
)

DD_TRACE_ID = "x-datadog-trace-id"
DD_PARENT_ID = "x-datadog-parent-id"
DD_PRIORITY = "x-datadog-sampling-priority"
DD_ORIGIN = "x-datadog-origin"
DD_TAGS = "x-datadog-tags"
DATADOG_NAMES: tuple[str, ...] = (DD_TRACE_ID, DD_PARENT_ID, DD_PRIORITY, DD_ORIGIN, DD_TAGS)  # mypyc
SW8 = "sw8"
XRAY = "x-amzn-trace-id"

_SIGNED = re.compile(r"-?[0-9]{1,10}")
_XRAY_ROOT = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")


def _dd_upper_bits(tags: str, violations: list[str]) -> str | None:
    for item in tags.split(","):
        key, _, value = ows(item).partition("=")
        if key == "_dd.p.tid":
            if len(value) == 16 and is_lower_hex(value):
                return value
            violations.append(f"{DD_TAGS}: _dd.p.tid must be 16 lower-case hex digits")
    return None


def parse_datadog(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    seen = once_each(fields, violations)

    trace_id = span_id = None
    sampled: bool | None = None
    high = _dd_upper_bits(seen[DD_TAGS], violations) if DD_TAGS in seen else None
    if DD_TRACE_ID in seen:
        low = decimal_id(seen[DD_TRACE_ID], DD_TRACE_ID, "trace id", violations)
        if low == 0:
            violations.append(f"{DD_TRACE_ID}: 0 is not a valid trace id")
        elif low is not None:
            trace_id = (high or "0" * 16) + f"{low:016x}"
    elif DD_PARENT_ID in seen:
        violations.append(f"{DD_PARENT_ID}: sent without {DD_TRACE_ID}")
    if DD_PARENT_ID in seen:
        parent = decimal_id(seen[DD_PARENT_ID], DD_PARENT_ID, "parent id", violations)
        if parent:
            span_id = f"{parent:016x}"
    if DD_PRIORITY in seen:
        priority = seen[DD_PRIORITY]
        if _SIGNED.fullmatch(priority) is None:
            violations.append(f"{DD_PRIORITY}: must be an integer, not {excerpt(priority)}")
        else:
            sampled = int(priority) > 0
    return build("datadog", fields, violations, trace_id=trace_id, span_id=span_id, sampled=sampled)


_SW8_FIELDS = (
    "sample",
    "trace id",
    "segment id",
    "span id",
    "parent service",
    "parent service instance",
    "parent endpoint",
    "peer address",
)
_SW8_BASE64 = (1, 2, 4, 5, 6, 7)


def parse_sw8(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    value = single(fields, violations)
    parts = value.split("-")
    if len(parts) != len(_SW8_FIELDS):
        violations.append(f"{SW8}: must have 8 '-'-separated fields, not {len(parts)}")
        return build("sw8", fields, violations)
    sampled: bool | None = None
    if parts[0] in ("0", "1"):
        sampled = parts[0] == "1"
    else:
        violations.append(f'{SW8}: sample must be "0" or "1", not {excerpt(parts[0])}')
    decoded: dict[int, bytes] = {}
    for i in _SW8_BASE64:
        if not parts[i]:
            violations.append(f"{SW8}: {_SW8_FIELDS[i]} is empty")
            continue
        try:
            decoded[i] = base64.b64decode(parts[i], validate=True)
        except ValueError:  # binascii.Error, or a non-ASCII character
            violations.append(f"{SW8}: {_SW8_FIELDS[i]} is not valid base64")
    if not is_decimal(parts[3]):
        violations.append(f"{SW8}: span id must be a decimal integer, not {excerpt(parts[3])}")
    trace_id: str | None = None
    tid = text(decoded.get(1, b""))
    if len(tid) == 32 and is_hex(tid) and tid.count("0") != 32:
        trace_id = tid.lower()
    return build("sw8", fields, violations, trace_id=trace_id, sampled=sampled)


def parse_xray(fields: Sequence[Field]) -> TraceContext:
    """``Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled={0|1|?}``, in any order."""
    violations: list[str] = []
    value = single(fields, violations)
    seen: dict[str, str] = {}
    for item in value.split(";"):
        part = ows(item)
        if not part:
            continue
        key, eq, val = part.partition("=")
        key = ows(key)
        if not eq:
            violations.append(f"{XRAY}: {excerpt(part)} is not key=value")
        elif key in seen:
            violations.append(f"{XRAY}: {excerpt(key)} appears more than once")
        else:
            seen[key] = ows(val)  # Self=, Lineage= and custom keys are allowed

    trace_id = span_id = None
    sampled: bool | None = None
    root = seen.get("Root")
    if root is None:
        violations.append(f"{XRAY}: Root is missing")
    else:
        m = _XRAY_ROOT.fullmatch(root)
        if m is None:
            violations.append(f"{XRAY}: Root must be 1-<8 hex digits>-<24 hex digits>")
        else:
            trace_id = hex_id(m.group(1) + m.group(2), XRAY, "Root", (32,), 32, violations, lower_only=False)
    if "Parent" in seen:
        span_id = hex_id(seen["Parent"], XRAY, "Parent", (16,), 16, violations, lower_only=False)
    if "Sampled" in seen:
        flag = seen["Sampled"]
        if flag in ("0", "1"):
            sampled = flag == "1"
        elif flag != "?":  # "?" asks the receiver to decide
            violations.append(f'{XRAY}: Sampled must be "0", "1" or "?", not {excerpt(flag)}')
    return build("aws-xray", fields, violations, trace_id=trace_id, span_id=span_id, sampled=sampled)
