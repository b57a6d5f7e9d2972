"""Corroboration: whether a guessed tracing value was also seen under a known name.

Strategy: an HTTP/2 header whose name is an HPACK entry older than the capture can only
be named from its value's shape (``Header.guessed``). A shape is not evidence: a
UUID-shaped API key looks exactly like an x-request-id. The value becomes evidence only
when the capture shows the same value under a name that was decoded from the wire: on
another leg, another stream or another capture. This module remembers such values.

Memory is bounded whatever the capture holds: values are kept as 64-bit hashes of a
normalised key (never the bytes themselves, so a 10 MB header costs 8 bytes), and the
oldest is forgotten first once ``limit`` values are held. ``hash`` of bytes is SipHash
with a per-process random key, so a capture cannot craft a collision; two distinct
values sharing a hash by chance among 200,000 has odds near 1e-9.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from analyzer.records import Header
from analyzer.tracing.baggage import BAGGAGE
from analyzer.tracing.extract import TRACING_HEADER_NAMES

__all__ = ["Corroboration"]

# Identifier-carrying names. Baggage is user data, not an id: a value seen there says
# nothing about whether an unknown header carries a trace id, and a guess never offers it.
_ID_NAMES: Final[frozenset[bytes]] = frozenset(
    n.encode("ascii") for n in TRACING_HEADER_NAMES if n != BAGGAGE
)

_UUID_LENGTH: Final = 36
_TRACE_REASON_INDEX: Final = 14  # Envoy rewrites this x-request-id character per hop (see requestid)


def _key(value: bytes) -> int:
    """The hash of a value as hops legitimately differ in it: OWS stripped, lower-cased
    (ids are hex; a guess only offers lower-case shapes) and, for a 36-byte id, Envoy's
    trace-reason character masked."""
    v = value.strip(b" \t").lower()
    if len(v) == _UUID_LENGTH:
        v = v[:_TRACE_REASON_INDEX] + b"*" + v[_TRACE_REASON_INDEX + 1 :]
    return hash(v)


class Corroboration:
    """Values seen under a known (not guessed) tracing header name. Bounded (FIFO/LRU,
    default 200_000 values); never holds whole messages."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = 200_000) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        # A dict keeps insertion order: the first key is the least recently seen.
        self._seen: dict[int, None] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def see(self, headers: Sequence[Header]) -> None:
        """Remember the values of the known tracing headers among ``headers``.

        Guessed names, unknown names and unknown values are skipped: a guess must never
        corroborate itself or another guess.
        """
        seen = self._seen
        for h in headers:
            lname = h.lname
            if lname is None or h.guessed or h.value is None or lname not in _ID_NAMES:
                continue
            key = _key(h.value)
            if key in seen:
                del seen[key]  # refreshed: it moves to the young end
            elif len(seen) >= self._limit:
                del seen[next(iter(seen))]
            seen[key] = None

    @property
    def limit(self) -> int:
        return self._limit

    def keys(self) -> list[int]:
        """What is remembered, least recently seen first (``add`` takes it back)."""
        return list(self._seen)

    def add(self, keys: Iterable[int]) -> None:
        """Remember ``keys`` (another's ``keys()``) as if their values were seen now, in order."""
        seen = self._seen
        for key in keys:
            if key in seen:
                del seen[key]
            elif len(seen) >= self._limit:
                del seen[next(iter(seen))]
            seen[key] = None

    def confirms(self, value: bytes) -> bool:
        """Whether ``value`` was seen under a known tracing header name (and not yet forgotten)."""
        return _key(value) in self._seen
