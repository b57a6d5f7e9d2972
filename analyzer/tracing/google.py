"""Google's formats: grpc-trace-bin (OpenCensus binary) and x-cloud-trace-context.

grpc-trace-bin is version byte 0, then fields in order, each a field id and a fixed
length: 0 -> 16-byte trace id, 1 -> 8-byte span id, 2 -> 1-byte options (bit 0
sampled). An unknown field id ends the known part (later versions append fields).

x-cloud-trace-context is ``TRACE_ID/SPAN_ID;o=OPTIONS``: 32 hex digits, a decimal
64-bit span id, and options whose bit 0 is the sampling decision.
"""

from __future__ import annotations

import base64
import binascii
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
    single,
)

GRPC_TRACE_BIN = "grpc-trace-bin"
CLOUD_TRACE = "x-cloud-trace-context"

_BASE64 = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_FIELD_LENGTHS = {0: 16, 1: 8, 2: 1}
_FIELD_NAMES = {0: "trace id", 1: "span id", 2: "options"}


def _binary(value: bytes) -> bytes:
    # gRPC sends "-bin" metadata base64-encoded (padding optional); a decoder may also
    # hand over the bytes themselves. A binary context starts with version byte 0x00,
    # which is not a base64 character, so the two spellings cannot be confused.
    stripped = value.strip(b" \t")
    if _BASE64.fullmatch(stripped) is not None:
        try:
            return base64.b64decode(stripped + b"=" * (-len(stripped) % 4), validate=True)
        except binascii.Error:
            pass
    return value


def _read_fields(data: bytes, violations: list[str]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    pos = 1
    last = -1
    while pos < len(data):
        fid = data[pos]
        size = _FIELD_LENGTHS.get(fid)
        if size is None:
            break  # a field this version does not know: the rest is not ours to read
        if fid <= last:
            violations.append(f"{GRPC_TRACE_BIN}: field {fid} is out of order")
            break
        if pos + 1 + size > len(data):
            violations.append(f"{GRPC_TRACE_BIN}: truncated in the {_FIELD_NAMES[fid]} field")
            break
        found[fid] = data[pos + 1 : pos + 1 + size]
        last = fid
        pos += 1 + size
    return found


def parse_grpc_trace_bin(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    if len(fields) > 1:
        violations.append(f"{GRPC_TRACE_BIN}: sent {len(fields)} times, only one is allowed")
    data = _binary(fields[0][1])
    if len(data) == 30 and data[:2] == b"\x00\x00" and data[2] == 0 and data[19] == 1:
        # gRPC's "true binary" metadata (grpcio with SETTINGS 0xFE03): a NUL byte marks a
        # value sent as raw bytes instead of base64; the context follows it.
        data = data[1:]
    raw = base64.b64encode(data).decode("ascii")
    if not data:
        violations.append(f"{GRPC_TRACE_BIN}: value is empty")
        return build("grpc-trace-bin", fields, violations, raw=raw)
    if data[0] != 0:
        violations.append(f"{GRPC_TRACE_BIN}: unknown version {data[0]}, only 0 is defined")
        return build("grpc-trace-bin", fields, violations, raw=raw)
    before = len(violations)
    found = _read_fields(data, violations)
    broken = len(violations) > before  # truncated or out of order: "missing" would mislead
    trace_id = span_id = None
    sampled: bool | None = None
    if 0 in found:
        trace_id = hex_id(found[0].hex(), GRPC_TRACE_BIN, "trace id", (32,), 32, violations)
    elif not broken:
        violations.append(f"{GRPC_TRACE_BIN}: trace id field is missing")
    if 1 in found:
        span_id = hex_id(found[1].hex(), GRPC_TRACE_BIN, "span id", (16,), 16, violations)
    elif not broken:
        violations.append(f"{GRPC_TRACE_BIN}: span id field is missing")
    if 2 in found:
        sampled = bool(found[2][0] & 1)
    return build(
        "grpc-trace-bin",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        sampled=sampled,
        raw=raw,
    )


def parse_cloud_trace(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    value = single(fields, violations)
    head, semi, options = value.partition(";")
    tid, slash, sid = head.partition("/")
    trace_id = hex_id(tid, CLOUD_TRACE, "trace id", (32,), 32, violations, lower_only=False)
    span_id: str | None = None
    if not slash:
        violations.append(f"{CLOUD_TRACE}: span id is missing (TRACE_ID/SPAN_ID)")
    else:
        n = decimal_id(sid, CLOUD_TRACE, "span id", violations)
        if n:  # 0 stands for "no span"
            span_id = f"{n:016x}"
    sampled: bool | None = None
    if semi:
        key, eq, flags = options.partition("=")
        if key != "o" or not eq or not is_decimal(flags) or len(flags) > 20:
            violations.append(f"{CLOUD_TRACE}: options must be o=<decimal>, not {excerpt(options)}")
        else:
            sampled = bool(int(flags) & 1)
    return build(
        "cloud-trace",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        sampled=sampled,
    )
