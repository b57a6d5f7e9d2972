"""Baggage: the W3C baggage header and Jaeger's uberctx-{key} headers.

W3C baggage is ``key=value[;property]...`` members separated by commas; keys and
property names are RFC 9110 tokens, values are baggage-octets (printable ASCII without
'"', ',', ';', '\\' and space; anything else must be percent-encoded). uberctx-{key}
carries one item per header, its key in the header name. Neither says which trace it
belongs to, so the context's trace_id is always None.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analyzer.tracing.context import Field, TraceContext, build, excerpt, ows, text

BAGGAGE = "baggage"
UBERCTX_PREFIX = "uberctx-"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


def _member(member: str, n: int, violations: list[str]) -> None:
    # Baggage carries user data (ids, emails, tokens): a sentence names a member by its
    # position or its (valid) key, never quotes a value or a malformed member.
    head, *properties = member.split(";")
    key, eq, value = head.partition("=")
    key = ows(key)
    if not eq:
        violations.append(f"baggage: list-member {n} has no '='")
        return
    if _TOKEN.fullmatch(key) is None:
        violations.append(f"baggage: the key of list-member {n} is not a token")
        return
    if _VALUE.fullmatch(ows(value)) is None:
        violations.append(f"baggage: value of {excerpt(key)} has a character that must be percent-encoded")
    for prop in properties:
        name, peq, pvalue = prop.partition("=")
        if _TOKEN.fullmatch(ows(name)) is None or (peq and _VALUE.fullmatch(ows(pvalue)) is None):
            violations.append(f"baggage: a property of {excerpt(key)} is malformed")


def parse_baggage(fields: Sequence[Field]) -> TraceContext:
    violations: list[str] = []
    for name, raw in fields:
        if name.startswith(UBERCTX_PREFIX):
            if name == UBERCTX_PREFIX:
                violations.append(f"{UBERCTX_PREFIX}: header name carries no baggage key")
            continue  # the value is free URL-encoded text
        for n, item in enumerate(text(raw).split(","), 1):
            member = ows(item)
            if not member:
                violations.append("baggage: empty list-member")
                continue
            _member(member, n, violations)
    return build("baggage", fields, violations)
