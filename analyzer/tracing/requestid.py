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

from analyzer.tracing.context import Field, TraceContext, build, single

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


_UUID_BYTES: Final = b"0123456789abcdef-"


def is_uuid(value: str) -> bool:
    """``_UUID.fullmatch``: dashes at 8, 13, 18 and 23 and nowhere else, lower-case hex
    around them. Checked on the ASCII bytes without starting a regex match, about half its
    cost per request (tests compare the two)."""
    if len(value) != 36 or not value.isascii():
        return False
    b = value.encode("ascii")
    return (b[8] == 45 and b[13] == 45 and b[18] == 45 and b[23] == 45 and b.count(b"-") == 4
            and not b.strip(_UUID_BYTES))


def parse_request_id(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    value = single(fields, violations).lower()
    if not value:
        violations.append("x-request-id: value is empty")
    elif not is_uuid(value):
        violations.append("x-request-id: not a UUID (8-4-4-4-12 hex digits)")
    return build("x-request-id", fields, violations, request_id=value)
