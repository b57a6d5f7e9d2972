"""A message as its JSON line, with the parts that repeat written once and reused.

Strategy: ``messages --format jsonl`` writes ``jsonout.compact(message_dict(m))`` for every
message, and most of what that builds repeats exactly. An HTTP/2 header that is a table
entry (static, inserted, or older than the capture: ``hpack_state`` hands out the same
``Header`` object each time it is referenced), an HTTP/1 field line seen before
(``_http1_syntax`` caches them the same way) and a connection's addresses come back
message after message, and their redacted, escaped JSON text does not change as long as
the header and the redaction policy do not. So that text is made once per header object
and kept as an ``orjson.Fragment``, which orjson copies into the line as is.

Only what cannot change is reused: a field whose value the capture does not show, or
whose name is known and not guessed (``Policy.value`` then decides by the name and the
policy alone). A guessed or nameless value depends on what corroborated it so far, so it
is built each time, as in ``message_dict``. A tracing context that is hidden (a guessed
name not corroborated, a redacted name) shows only its format, its header names, its
length and how many rules it breaks, so its text is made once for each combination of
those. The text is orjson's own encoding of the same dict ``message_dict`` would hold, so
the line is byte for byte ``jsonout.compact(message_dict(m))`` (tests/test_message_json.py
compares them on every capture and on a gRPC capture from mid-connection); when orjson
refuses the line (the cases ``jsonout`` lists) it is exactly that.

Bounded: at most ``_MAX`` fragments, each of a header whose value is at most
``_VALUE_MAX`` bytes, and the cache is emptied when full. An entry holds its header and
policy, so neither can be freed and its ``id`` reused while the entry stands.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from analyzer.records import Endpoints, Header, Message
from analyzer.report import jsonout
from analyzer.report.messages import (
    anomaly_dict,
    header_dict,
    hidden_context_dict,
    message_dict,
    rfc3339,
    same_ids,
    shown_context_dict,
)
from analyzer.report.redact import DEFAULT, Confirms, Policy, text
from analyzer.tracing import TraceContext

__all__ = ["message_json"]

_MAX: Final = 4096
_VALUE_MAX: Final = 256  # longer values rarely repeat, and would hold memory
# id(header) -> (header, policy, its fragment); id(endpoints) -> (endpoints, fragment)
_HEADERS: Final[dict[int, tuple[Header, Policy, Any]]] = {}
_CONNECTIONS: Final[dict[int, tuple[Endpoints, Any]]] = {}
# (label, value length) -> a redacted nameless field's fragment
_NAMELESS: Final[dict[tuple[str | None, int], Any]] = {}
# (format, headers, value length, rules broken, guessed) -> a hidden context's fragment
_HIDDEN: Final[dict[tuple[str, tuple[str, ...], int, int, bool], Any]] = {}
_EMPTY: Final[list[Any]] = []
_SHOW: Final = Policy(show_secrets=True)


def message_json(m: Message, policy: Policy | bool = DEFAULT, confirms: Confirms | None = None) -> str:
    """``jsonout.compact(message_dict(m, policy, confirms))``, the same text, made faster."""
    # a library caller's show_secrets flag as one of two policies, so that entries made
    # for it are found again (they are keyed by the policy object)
    pol = policy if isinstance(policy, Policy) else _SHOW if policy else DEFAULT
    shown_confirms = same_ids(m, confirms)
    d = {
        "capture": m.capture,
        "frame": m.frame,
        "first_frame": m.first_frame,
        "ts": rfc3339(m.ts_ns),
        "protocol": m.protocol,
        "kind": m.kind,
        "connection": _connection(m.endpoints),
        "stream": m.stream,
        "method": None if m.method is None else text(m.method),
        "path": None if m.path is None else pol.url(text(m.path)),
        "authority": None if m.authority is None else pol.url(text(m.authority)),
        "status": m.status,
        "headers": _fields(m.headers, pol, shown_confirms),
        "trailers": _fields(m.trailers, pol, shown_confirms) if m.trailers else _EMPTY,
        "trace": [_context(c, pol, shown_confirms) for c in m.trace] if m.trace else _EMPTY,
        "anomalies": [anomaly_dict(a) for a in m.anomalies] if m.anomalies else _EMPTY,
    }
    try:
        return orjson.dumps(d).decode()
    except orjson.JSONEncodeError:
        # What orjson refuses (see jsonout) is written by the stdlib, from the plain dict.
        return jsonout.compact(message_dict(m, pol, confirms))


def _fragment(d: dict[str, Any]) -> Any:
    """``d``'s JSON, kept as text of its own length: the bytes orjson returns hold a 2 KiB
    buffer however short the text, and 4096 of them per cache grew ``messages`` by 17 MiB
    on 50 MiB of h2c."""
    return orjson.Fragment(orjson.dumps(d).decode())


def _context(c: TraceContext, policy: Policy, confirms: Confirms | None) -> Any:
    """A context as ``context_dict`` shows it; a hidden one (a guessed name not
    corroborated: every context of an HTTP/2 capture whose names are all older than it)
    shows only what its key holds, so its text is made once per key."""
    if not policy.context_hidden(c, confirms):
        return shown_context_dict(c)
    key = (c.format, c.headers, len(c.raw.encode("latin-1")), len(c.violations), c.guessed)
    frag = _HIDDEN.get(key)
    if frag is None:
        d = hidden_context_dict(c)
        try:
            frag = _fragment(d)
        except orjson.JSONEncodeError:
            return d
        if len(_HIDDEN) >= _MAX:
            _HIDDEN.clear()
        _HIDDEN[key] = frag
    return frag


def _nameless(h: Header, n: int, policy: Policy) -> Any:
    """``header_dict`` of a nameless field whose value is redacted whatever corroborates
    it: {"name": null, "value": its marker, "unknown": where its name was}, made once per
    label and length."""
    key = (h.unknown, n)
    frag = _NAMELESS.get(key)
    if frag is None:
        d = header_dict(h, policy, None)
        try:
            frag = _fragment(d)
        except orjson.JSONEncodeError:
            return d
        if len(_NAMELESS) >= _MAX:
            _NAMELESS.clear()
        _NAMELESS[key] = frag
    return frag


def _connection(ep: Endpoints) -> Any:
    e = _CONNECTIONS.get(id(ep))
    if e is not None and e[0] is ep:
        return e[1]
    d = {"src": ep.src, "sport": ep.sport, "dst": ep.dst, "dport": ep.dport}
    try:
        frag = _fragment(d)
    except orjson.JSONEncodeError:
        return d
    if len(_CONNECTIONS) >= _MAX:
        _CONNECTIONS.clear()
    _CONNECTIONS[id(ep)] = (ep, frag)
    return frag


def _fields(fields: tuple[Header, ...], policy: Policy, confirms: Confirms | None) -> list[Any]:
    out: list[Any] = []
    cache = _HEADERS
    for h in fields:
        value = h.value
        if value is not None and (h.lname is None or h.guessed):
            if h.name is None and h.lname is None and not h.guessed and policy.nameless_hidden(value):
                # a nameless value without a tracing shape: its marker, whatever corroborates
                out.append(_nameless(h, len(value), policy))
                continue
            # shown or not by corroboration, which grows as the capture is read
            out.append(header_dict(h, policy, confirms))
            continue
        e = cache.get(id(h))
        if e is not None and e[0] is h and e[1] is policy:
            out.append(e[2])
            continue
        d = header_dict(h, policy, confirms)
        if value is not None and len(value) > _VALUE_MAX:
            out.append(d)
            continue
        try:
            frag = _fragment(d)
        except orjson.JSONEncodeError:
            out.append(d)
            continue
        if len(cache) >= _MAX:
            cache.clear()
        cache[id(h)] = (h, policy, frag)
        out.append(frag)
    return out
