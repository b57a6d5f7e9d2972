"""Records that flow between stages: slotted, timestamps in integer nanoseconds.

Header values stay ``bytes`` until the report layer turns them into display strings.

The hot records (these, and ``Frame``, ``Segment``, ``Data``, ``MessageHead``,
``HeaderBlock``, ``TraceContext`` in their stages) are slotted dataclasses that are not
frozen: a frozen dataclass sets each field through ``object.__setattr__``, which made its
construction about three times as slow and cost 10-15 % of a run (issue 10). They are
still values by convention: no stage changes a record after building it. ``unsafe_hash``
keeps them hashable by their fields, with the equality they had when frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.tracing import TraceContext


@dataclass(slots=True, unsafe_hash=True)
class Anomaly:
    """Something wrong in the capture, kept as evidence instead of raised."""

    kind: str  # short machine-readable slug, e.g. "truncated-record", "http1-resync"
    frame: int | None  # Wireshark frame number (1-based), None when not tied to a frame
    detail: str  # one human sentence
    flow: str | None = None  # "src:sport -> dst:dport" when tied to a TCP direction


@dataclass(slots=True, unsafe_hash=True)
class Header:
    """One header field as received.

    ``name`` keeps the case sent on the wire; ``lname`` is lower-cased for lookup.
    HTTP/2 can leave the name or the value unknown (an HPACK entry older than the capture):
    then the unknown part is None and ``unknown`` names the entry ("entry #7 of the
    client's table"); ``guessed`` is True when a name was offered from the value's shape.
    """

    name: bytes | None
    value: bytes | None
    lname: bytes | None
    unknown: str | None = None
    guessed: bool = False

    @classmethod
    def of(cls, name: bytes, value: bytes) -> Header:
        return cls(name, value, name.lower())


@dataclass(slots=True, unsafe_hash=True)
class Endpoints:
    """The TCP direction a message travelled: addresses as display strings."""

    src: str
    sport: int
    dst: str
    dport: int
    connection: int  # the connection's number within its capture, from 1


@dataclass(slots=True, unsafe_hash=True)
class Message:
    """One HTTP request or response head, with where it came from.

    ``frame`` is the Wireshark frame number of the packet that completed the head,
    ``first_frame`` the one that carried its first byte. ``trace`` holds the parsed tracing
    contexts, in the wire order of their first header.
    """

    capture: str
    frame: int
    first_frame: int
    ts_ns: int
    protocol: str  # "http/1.1", "http/1.0", "h2"
    kind: str  # "request" or "response"
    endpoints: Endpoints
    stream: int | None
    method: bytes | None
    path: bytes | None
    authority: bytes | None
    status: int | None
    headers: tuple[Header, ...]
    trace: tuple[TraceContext, ...]
    anomalies: tuple[Anomaly, ...]
    trailers: tuple[Header, ...] = ()  # HTTP/2 trailers of a response (gRPC grpc-status)
