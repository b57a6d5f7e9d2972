"""JSON text of the report's documents, written by orjson, byte for byte what ``json`` wrote.

The stdlib encoder was 15-19 % of a ``messages --format jsonl`` run (issue 10); orjson does
the same work in C. Its output equals ``json.dumps(obj, ensure_ascii=False)`` with the
separators below for what the report layer builds (str keys; str, int, bool, None, list,
tuple and dict values): the same escapes (``\\"``, ``\\\\``, ``\\n``, ``\\u001f``, ...; nothing
else escaped), the same key order, the same layout at indent 2. Where they would differ,
the stdlib writes the text instead, so the bytes never depend on which encoder ran:

* a value orjson refuses (a key that is not a str, an int beyond 64 bits, a lone surrogate,
  nesting deeper than 254) falls back whole;
* floats: orjson writes 1e-05 as ``0.00001`` and NaN as ``null``. The report's documents hold
  no floats (timestamps are strings, durations integers; tests/test_jsonout.py checks every
  golden document), so none is looked for: keep it that way, or encode such a value as a
  string.

The result is still a str for ``json_safe`` (C1 controls and bidi marks as ``\\u`` escapes,
which the redaction work requires of every JSON output): callers apply it as before.
"""

from __future__ import annotations

import json
from typing import Final

import orjson

__all__ = ["compact", "indent2"]

_STDLIB_COMPACT: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_STDLIB_INDENT2: Final = json.JSONEncoder(ensure_ascii=False, indent=2).encode
_INDENT_2: Final = orjson.OPT_INDENT_2


def compact(obj: object) -> str:
    """One line: ``json.dumps(obj, ensure_ascii=False, separators=(",", ":"))``."""
    try:
        return orjson.dumps(obj).decode()
    except orjson.JSONEncodeError:
        return _STDLIB_COMPACT(obj)


def indent2(obj: object) -> str:
    """A document: ``json.dumps(obj, indent=2, ensure_ascii=False)``."""
    try:
        return orjson.dumps(obj, option=_INDENT_2).decode()
    except orjson.JSONEncodeError:
        return _STDLIB_INDENT2(obj)
