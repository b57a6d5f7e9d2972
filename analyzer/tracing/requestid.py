"""x-request-id: Envoy's request UUID, and the key that compares ids across hops.

Envoy rewrites character 14 of a 36-character id (the UUID version nibble) with its
trace reason: '4' (or '7') not traced, '9' sampled, 'a' forced by the service, 'b'
forced by the client. The same request therefore shows different ids before and after
a sidecar; ``request_id_key`` masks that character so they compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from analyzer.tracing.context import Field, TraceContext, build, single, uuid_shaped

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID_LENGTH: Final = 36  # Envoy only reads or writes the trace reason on ids of this length
_TRACE_REASON_INDEX: Final = 14
_MASK: Final = "*"


def request_id_key(value: str) -> str:
    """The lower-cased id with Envoy's trace-reason character masked, for comparison."""
    s = value.strip(" \t").lower()
    if len(s) == _UUID_LENGTH:
        s = s[:_TRACE_REASON_INDEX] + _MASK + s[_TRACE_REASON_INDEX + 1 :]
    return s


def is_uuid(value: str) -> bool:
    """``_UUID.fullmatch``: dashes at 8, 13, 18 and 23 and nowhere else, lower-case hex
    around them, checked by position without starting a regex match (tests compare the
    two)."""
    return len(value) == 36 and value.isascii() and uuid_shaped(value.encode("ascii"))


def parse_request_id(fields: Sequence[Field]) -> TraceContext:
    if len(fields) == 1:
        # The usual id, a lower-case UUID and nothing around it: the context the general
        # path below builds, without its strip, lower-casing and build (tests compare them).
        name, v = fields[0]
        if uuid_shaped(v):
            value = v.decode("ascii")
            return TraceContext("x-request-id", (name,), value, None, None, None, None, value, ())
    return _parse_request_id(fields)


def _parse_request_id(fields: Sequence[Field]) -> TraceContext:
    """Any x-request-id: OWS stripped, lower-cased, checked against the UUID shape."""
    violations: list[str] = []
    value = single(fields, violations).lower()
    if not value:
        violations.append("x-request-id: value is empty")
    elif not is_uuid(value):
        violations.append("x-request-id: not a UUID (8-4-4-4-12 hex digits)")
    return build("x-request-id", fields, violations, request_id=value)
