"""The TraceContext record, trace-id comparison, and the field checks every format shares.

Strategy: a passive analyzer must never reject a value the way a tracer would; it keeps
what it can read and says what is wrong. So each field is checked on its own: a bad
field becomes None plus one violation sentence, and the other fields still count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from analyzer._build import compiled

FORMATS: tuple[str, ...] = (
    "x-request-id",
    "b3-multi",
    "b3-single",
    "w3c",
    "tracestate",
    "jaeger",
    "ot-span-context",
    "grpc-trace-bin",
    "cloud-trace",
    "datadog",
    "sw8",
    "aws-xray",
    "baggage",
)

# One header as a parser sees it: the lower-cased name and the value as received.
Field = tuple[str, bytes]


@dataclass(slots=True, unsafe_hash=True)  # not frozen: see analyzer/records.py
class TraceContext:
    """One tracing format's view of one message's headers.

    ``span_id`` is the span the sender made for this message (what the receiver takes
    as its parent: B3 ``x-b3-spanid``, W3C parent-id, Datadog parent-id, X-Ray Parent);
    ``parent_span_id`` is that span's own parent, when the format carries it.
    """

    format: str  # one of FORMATS
    headers: tuple[str, ...]  # lower-cased header names it was built from, wire order
    raw: str  # value(s) as received, latin-1; "name=value; ..." when several headers
    trace_id: str | None  # 32 lower-case hex digits, None when absent or unusable
    span_id: str | None  # 16 lower-case hex digits
    parent_span_id: str | None
    sampled: bool | None
    request_id: str | None  # only for "x-request-id": the lower-cased value
    violations: tuple[str, ...]  # one short sentence per broken rule
    guessed: bool = False  # built from a header whose name was guessed (HPACK unknown)

    # Written out, not generated: see analyzer/records.py.
    def __init__(
        self,
        format: str,
        headers: tuple[str, ...],
        raw: str,
        trace_id: str | None,
        span_id: str | None,
        parent_span_id: str | None,
        sampled: bool | None,
        request_id: str | None,
        violations: tuple[str, ...],
        guessed: bool = False,
    ) -> None:
        self.format = format
        self.headers = headers
        self.raw = raw
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.request_id = request_id
        self.violations = violations
        self.guessed = guessed


# The shapes is_hex, is_lower_hex and is_decimal accept (their reference in the tests).
_HEX = re.compile(r"[0-9a-fA-F]+")
_LOWER_HEX = re.compile(r"[0-9a-f]+")
_DECIMAL = re.compile(r"[0-9]+")
_XRAY_ROOT = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
UINT64_MAX = (1 << 64) - 1


# The three checks below answer as ``_HEX``, ``_LOWER_HEX`` and ``_DECIMAL``'s fullmatch
# (tests/test_tracing.py compares them): an ASCII string is made of the characters only
# when stripping them from its bytes leaves nothing. Measured with callgrind, that costs
# about half of starting a regex match (str.strip with a set of characters costs more than
# the regex); is_hex runs on several ids of every message (issue 10).
_HEX_BYTES: Final = b"0123456789abcdefABCDEF"
_LOWER_HEX_BYTES: Final = b"0123456789abcdef"
_DIGIT_BYTES: Final = b"0123456789"


def is_hex(s: str) -> bool:
    """ASCII hex digits only, at least one (``int(s, 16)`` would also take "0x", "_", " ")."""
    return s.isascii() and s != "" and not s.encode("ascii").strip(_HEX_BYTES)


def is_lower_hex(s: str) -> bool:
    return s.isascii() and s != "" and not s.encode("ascii").strip(_LOWER_HEX_BYTES)


def is_decimal(s: str) -> bool:
    """ASCII digits only (``str.isdigit`` takes "²" and ``int`` takes "1_0")."""
    return s.isascii() and s != "" and not s.encode("ascii").strip(_DIGIT_BYTES)


def text(value: bytes) -> str:
    return value.decode("latin-1")


# The shapes of the two ids nearly every traced message carries, checked on their bytes by
# position in one loop. In the compiled build a loop over bytes costs a few instructions a
# byte, where each bytes method call (strip, count, find) costs over a thousand: these
# checks ran four such calls per value (issue 10). Interpreted, it is the other way round,
# so pure Python keeps the method calls (LOOPS). Tests compare both with the regexes.
LOOPS: Final = compiled()
_LOWER_HEX_DASH: Final = b"0123456789abcdef-"


def lower_hex_run(v: bytes, start: int, end: int) -> bool:
    """Whether ``v[start:end]`` is lower-case hex digits only (True when empty)."""
    return hex_loop(v, start, end) if LOOPS else not v[start:end].strip(_LOWER_HEX_BYTES)


def uuid_shaped(v: bytes) -> bool:
    """A lower-case UUID, 8-4-4-4-12: ``[0-9a-f]{8}-[0-9a-f]{4}-...`` matched in full."""
    if LOOPS:
        return uuid_loop(v)
    return (len(v) == 36 and v[8] == 45 and v[13] == 45 and v[18] == 45 and v[23] == 45
            and v.count(b"-") == 4 and not v.strip(_LOWER_HEX_DASH))


def traceparent_shaped(v: bytes) -> bool:
    """``00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}`` matched in full."""
    if LOOPS:
        return traceparent_loop(v)
    return (len(v) == 55 and v[0] == 48 and v[1] == 48 and v[2] == 45 and v[35] == 45
            and v[52] == 45 and v.count(b"-") == 3 and not v.strip(_LOWER_HEX_DASH))


# The compiled build's way (public so that the pure test suite checks them too).


def hex_loop(v: bytes, start: int, end: int) -> bool:
    for i in range(start, end):
        c = v[i]
        if c > 57:
            if c < 97 or c > 102:
                return False
        elif c < 48:
            return False
    return True


def uuid_loop(v: bytes) -> bool:
    return (len(v) == 36 and v[8] == 45 and v[13] == 45 and v[18] == 45 and v[23] == 45
            and hex_loop(v, 0, 8) and hex_loop(v, 9, 13) and hex_loop(v, 14, 18)
            and hex_loop(v, 19, 23) and hex_loop(v, 24, 36))


def traceparent_loop(v: bytes) -> bool:
    return (len(v) == 55 and v[0] == 48 and v[1] == 48 and v[2] == 45 and v[35] == 45 and v[52] == 45
            and hex_loop(v, 3, 35) and hex_loop(v, 36, 52) and hex_loop(v, 53, 55))


def ows(s: str) -> str:
    """Strip HTTP optional white space (space and tab only)."""
    return s.strip(" \t")


def excerpt(s: str, limit: int = 40) -> str:
    """A value quoted for a violation sentence, cut short when long."""
    return '"' + (s if len(s) <= limit else s[:limit] + "...") + '"'


def raw_of(fields: Sequence[Field]) -> str:
    if len(fields) == 1:
        return text(fields[0][1])
    return "; ".join(f"{name}={text(value)}" for name, value in fields)


def build(
    fmt: str,
    fields: Sequence[Field],
    violations: Sequence[str] = (),
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_span_id: str | None = None,
    sampled: bool | None = None,
    request_id: str | None = None,
    raw: str | None = None,
) -> TraceContext:
    return TraceContext(
        format=fmt,
        headers=tuple(name for name, _ in fields),
        raw=raw_of(fields) if raw is None else raw,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        sampled=sampled,
        request_id=request_id,
        # one sentence per rule, in order; most contexts break none
        violations=tuple(dict.fromkeys(violations)) if violations else (),
    )


def once_each(fields: Sequence[Field], violations: list[str]) -> dict[str, str]:
    """Each header of a multi-header format by name, OWS stripped; a repeat is a violation
    and the first value is the one used."""
    seen: dict[str, str] = {}
    for name, value in fields:
        if name in seen:
            violations.append(f"{name}: sent more than once, only one is allowed")
            continue
        seen[name] = ows(text(value))
    return seen


def single(fields: Sequence[Field], violations: list[str]) -> str:
    """The first value of a header that must appear once, OWS stripped; repeats are noted."""
    if len(fields) > 1:
        violations.append(f"{fields[0][0]}: sent {len(fields)} times, only one is allowed")
    return ows(text(fields[0][1]))


def _lengths(lengths: tuple[int, ...]) -> str:
    if len(lengths) > 2:
        return f"{lengths[0]} to {lengths[-1]}"
    return " or ".join(str(n) for n in lengths)


def hex_id(
    value: str,
    where: str,
    what: str,
    lengths: tuple[int, ...],
    pad: int,
    violations: list[str],
    *,
    lower_only: bool = True,
    zero_invalid: bool = True,
) -> str | None:
    """Check one hex identifier; return it lower-cased and left-padded to ``pad`` digits.

    Upper-case is a violation when ``lower_only`` but the id is still returned: it
    names the same trace. A wrong length or a non-hex digit makes the id unusable.
    """
    if not value:
        violations.append(f"{where}: {what} is empty")
        return None
    if not is_hex(value):
        violations.append(f"{where}: {what} must be hex digits")
        return None
    if len(value) not in lengths:
        violations.append(f"{where}: {what} must be {_lengths(lengths)} hex digits, not {len(value)}")
        return None
    low = value.lower()
    if lower_only and low != value:
        violations.append(f"{where}: upper-case hex is not allowed")
    if zero_invalid and low.count("0") == len(low):
        violations.append(f"{where}: all-zero {what} is invalid")
        return None
    return low.rjust(pad, "0")


def decimal_id(value: str, where: str, what: str, violations: list[str]) -> int | None:
    """An unsigned 64-bit decimal id (Datadog, Cloud Trace span ids)."""
    if not is_decimal(value):
        violations.append(f"{where}: {what} must be an unsigned decimal integer")
        return None
    # int() refuses decimal strings over 4300 digits; 20 digits already exceed 64 bits.
    digits = value.lstrip("0")
    if len(digits) > 20 or (n := int(digits or "0")) > UINT64_MAX:
        violations.append(f"{where}: {what} does not fit in 64 bits")
        return None
    return n


def normalise_trace_id(value: str) -> str | None:
    """A trace id in any supported spelling as 32 lower-case hex, or None.

    Takes hex of 1 to 32 digits (64-bit and short Jaeger ids are zero-padded on the
    left) and X-Ray roots ("1-5759e988-bd862e3fe1be46a994272793"). An all-zero id is
    invalid in every format, so it normalises to None.
    """
    s = ows(value)
    m = _XRAY_ROOT.fullmatch(s)
    if m is not None:
        s = m.group(1) + m.group(2)
    if len(s) > 32 or not is_hex(s):
        return None
    s = s.lower()
    if s.count("0") == len(s):
        return None
    return s.rjust(32, "0")


def same_trace(a: str | None, b: str | None) -> bool:
    """Whether two trace ids name the same trace; None (and all-zero) never equal anything.

    Ids that are not hex in any known spelling compare as stripped, lower-cased text.
    """
    if a is None or b is None:
        return False
    na = normalise_trace_id(a)
    nb = normalise_trace_id(b)
    if na is not None or nb is not None:
        return na == nb
    la = ows(a).lower()
    return la != "" and la.count("0") != len(la) and la == ows(b).lower()
