"""W3C Trace Context: the traceparent and tracestate headers.

traceparent is ``version-traceid-parentid-flags`` in lower-case hex. Version ff is
invalid; version 00 has exactly four fields, while a later version may append more
after a '-', and its first four fields are read as version 00's. tracestate is a
comma-separated list of ``key=value`` members, at most 32, keys unique; the key and
value grammar is the one the w3c/trace-context test suite checks (keys may hold '@'
anywhere after the first character).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from analyzer.tracing.context import (
    Field,
    TraceContext,
    build,
    excerpt,
    hex_id,
    is_hex,
    ows,
    single,
    text,
    traceparent_shaped,
)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_KEY = re.compile(r"[a-z0-9][a-z0-9_\-*/@]{0,255}")
_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
_MAX_MEMBERS = 32


def _two_hex(value: str, what: str, violations: list[str]) -> int | None:
    if len(value) != 2 or not is_hex(value):
        violations.append(f"traceparent: {what} must be 2 lower-case hex digits")
        return None
    if value != value.lower():
        violations.append("traceparent: upper-case hex is not allowed")
    return int(value, 16)


_ZERO_TRACE: Final = b"0" * 32
_ZERO_SPAN: Final = b"0" * 16


def _canonical(fields: Sequence[Field]) -> TraceContext | None:
    """The context of one canonical, valid traceparent (version 00, lower-case hex, ids
    not all zeros), read by position; None for anything else (the general parser then
    reads it). The same context as the general parser's (tests compare them): every
    message of a traced capture carries one, and splitting and checking each field on its
    own cost several times more."""
    if len(fields) != 1:
        return None
    name, v = fields[0]
    if not traceparent_shaped(v) or v[3:35] == _ZERO_TRACE or v[36:52] == _ZERO_SPAN:
        return None  # an all-zero id is a violation, for the general parser to word
    raw = v.decode("ascii")
    return TraceContext("w3c", (name,), raw, raw[3:35], raw[36:52], None, bool(int(raw[53:55], 16) & 1),
                        None, ())


def parse_traceparent(fields: Sequence[Field]) -> TraceContext:
    fast = _canonical(fields)
    return fast if fast is not None else _parse_traceparent(fields)


def _parse_traceparent(fields: Sequence[Field]) -> TraceContext:
    """Any traceparent: each field checked on its own, every broken rule said."""
    violations: list[str] = []
    value = single(fields, violations)
    parts = value.split("-")
    if len(parts) < 4:
        violations.append("traceparent: must be version-traceid-parentid-flags")
        return build("w3c", fields, violations)
    version = _two_hex(parts[0], "version", violations)
    if version == 0xFF:
        violations.append("traceparent: version ff is invalid")
    if len(parts) > 4 and (version is None or version == 0):
        violations.append("traceparent: version 00 allows nothing after the flags")
    trace_id = hex_id(parts[1], "traceparent", "trace-id", (32,), 32, violations)
    span_id = hex_id(parts[2], "traceparent", "parent-id", (16,), 16, violations)
    flags = _two_hex(parts[3], "trace-flags", violations)
    return build(
        "w3c",
        fields,
        violations,
        trace_id=trace_id,
        span_id=span_id,
        sampled=None if flags is None else bool(flags & 1),
    )


def parse_tracestate(fields: Sequence[Field]) -> TraceContext:
    """All tracestate headers of a message form one list, in order (RFC 9110 combining)."""
    violations: list[str] = []
    keys: set[str] = set()
    members = 0
    for _, raw in fields:
        for item in text(raw).split(","):
            member = ows(item)
            if not member:
                continue  # empty list-members are allowed and ignored
            members += 1
            key, eq, value = member.partition("=")
            if not eq:
                violations.append(f"tracestate: list-member {excerpt(member)} has no '='")
                continue
            if _KEY.fullmatch(key) is None:
                violations.append(f"tracestate: key {excerpt(key)} is not a valid key")
            elif key in keys:
                violations.append(f"tracestate: key {excerpt(key)} appears more than once")
            keys.add(key)
            if not value:
                violations.append(f"tracestate: value of {excerpt(key)} is empty")
            elif _VALUE.fullmatch(value) is None:
                violations.append(
                    f"tracestate: value of {excerpt(key)} must be 1-256 printable ASCII "
                    "characters without ',' or '=', not ending in a space"
                )
    if members > _MAX_MEMBERS:
        violations.append(f"tracestate: {members} list-members, at most {_MAX_MEMBERS} allowed")
    return build("tracestate", fields, violations)


def tracestate_members(context: TraceContext) -> list[tuple[str, str]]:
    """The (key, value) list-members of a tracestate context, in order, OWS stripped and
    empty members skipped; a member without '=' is kept with an empty value.

    Several tracestate headers were combined in ``raw`` as ``tracestate=a; tracestate=b``;
    a valid value cannot hold '=', so "; tracestate=" only ever separates headers.
    """
    raw = context.raw
    parts = [raw]
    if len(context.headers) > 1 and raw.startswith(TRACESTATE + "="):
        parts = raw[len(TRACESTATE) + 1 :].split("; " + TRACESTATE + "=")
    out: list[tuple[str, str]] = []
    for part in parts:
        for item in part.split(","):
            member = ows(item)
            if member:
                key, _, value = member.partition("=")
                out.append((ows(key), ows(value)))
    return out


def tracestate_dropped(inbound: Sequence[tuple[str, str]], outbound: Sequence[tuple[str, str]]) -> list[str]:
    """The keys of ``inbound`` that ``outbound`` dropped against W3C Trace Context §3.5.

    A participant may update its own member (its value changes, it moves to the front) or
    add one at the front; it must keep every other member. Only when the list would exceed
    32 members may the oldest (right-most) ones be dropped, to make room.
    """
    out_keys = {k for k, _ in outbound}
    in_keys = [k for k, _ in inbound]
    dropped = [k for k in in_keys if k not in out_keys]
    if not dropped:
        return dropped
    # Only what the participant's own new member pushes over 32 may go, from the right end
    # (it adds one member, its own; more new keys do not make room for anything).
    added = min(1, len(out_keys - set(in_keys)))
    room = len(in_keys) + added - _MAX_MEMBERS
    tail = in_keys[len(in_keys) - len(dropped):]
    return [] if len(dropped) <= room and set(tail) == set(dropped) else dropped
