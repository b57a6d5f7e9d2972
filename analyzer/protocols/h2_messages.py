"""HTTP/2 header blocks as Message records, with trailers attached to their response.

A response is held until its stream ends (trailers, DATA with END_STREAM, RST_STREAM, end of
connection), so that gRPC's grpc-status and grpc-message travel with it; ``held_min_frame``
lets the pipeline keep the output in frame order while something is held.

Strategy: the pipeline asks for the lowest frame held after every event, so that question
is answered from a heap with lazy deletion (a released response leaves a stale heap entry,
dropped when it reaches the top, and the heap is rebuilt when stale entries outnumber live
ones): O(log n) per response instead of a scan of everything held. At most MAX_HELD
responses wait per connection; beyond that the oldest goes out without its trailers, and
the connection gets one anomaly with the count when it ends.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Sequence
from typing import Final

from analyzer.protocols.h2 import H2Anomaly, HeaderBlock, StreamEnd, StreamReset
from analyzer.records import Anomaly, Endpoints, Header, Message
from analyzer.tracing import extract

MAX_HELD = 4096  # responses waiting for their trailers, per connection

# (frame of the first byte, frame that completed it, its timestamp) for stream offsets
Locate = Callable[[bool, int, int], tuple[int, int, int]]


_LIFTED: Final = frozenset((b":method", b":path", b":authority", b":status", b"host"))


class Sides:
    """Where each side's bytes came from: its addresses, and the frames (with the
    timestamp) that carried a range of its stream. The session subclasses it: a method of
    a class compiles to a direct call, where a closure was called as a Python object, two
    or three times a message (issue 10)."""

    def endpoints(self, from_client: bool) -> Endpoints:
        raise NotImplementedError

    def locate(self, from_client: bool, start: int, end: int) -> tuple[int, int, int]:
        raise NotImplementedError


class _Given(Sides):
    """Sides from two functions (library callers and tests)."""

    def __init__(self, endpoints: Callable[[bool], Endpoints], locate: Locate) -> None:
        self._endpoints = endpoints
        self._locate = locate

    def endpoints(self, from_client: bool) -> Endpoints:
        return self._endpoints(from_client)

    def locate(self, from_client: bool, start: int, end: int) -> tuple[int, int, int]:
        return self._locate(from_client, start, end)


class H2Messages:
    """Turns one connection's H2 events into messages. ``sides`` is a ``Sides``, or the
    function that gives a side's endpoints when ``locate`` is given too."""

    __slots__ = ("_heap", "_tokens", "capture", "early", "early_frame", "held", "pending_anomalies",
                 "sides")

    def __init__(self, capture: str, sides: Sides | Callable[[bool], Endpoints],
                 locate: Locate | None = None) -> None:
        self.capture = capture
        if isinstance(sides, Sides):
            self.sides: Sides = sides
        else:
            assert locate is not None
            self.sides = _Given(sides, locate)
        self.held: dict[int, tuple[int, Message]] = {}  # stream id -> (token, response waiting)
        self._heap: list[tuple[int, int, int]] = []  # (frame, token, stream id), stale ones too
        self._tokens = itertools.count()
        self.pending_anomalies: dict[bool, list[Anomaly]] = {True: [], False: []}
        self.early = 0  # responses let out before their stream ended, to bound what is held
        self.early_frame = 0  # the first of them

    def held_min_frame(self) -> int | None:
        """The lowest frame of a held response: O(1) amortised, O(log n) per stale entry."""
        heap, held = self._heap, self.held
        while heap:
            frame, token, sid = heap[0]
            e = held.get(sid)
            if e is not None and e[0] == token:
                return frame
            heapq.heappop(heap)
        return None

    def _hold(self, sid: int, m: Message) -> None:
        token = next(self._tokens)
        self.held[sid] = (token, m)
        heap = self._heap
        heapq.heappush(heap, (m.frame, token, sid))
        if len(heap) > 2 * len(self.held) + 64:
            # Stale entries under a long-held minimum never reach the top: rebuild.
            self._heap = [(hm.frame, t, s) for s, (t, hm) in self.held.items()]
            heapq.heapify(self._heap)

    def _unhold(self, sid: int) -> Message | None:
        e = self.held.pop(sid, None)
        return None if e is None else e[1]

    def release_oldest(self) -> Message | None:
        """Out with the held response of the lowest frame, before its stream ends (counted)."""
        if self.held_min_frame() is None:
            return None
        _, _, sid = heapq.heappop(self._heap)
        m = self.held.pop(sid)[1]
        if not self.early:
            self.early_frame = m.frame
        self.early += 1
        return m

    def events(
        self, events: Sequence[object], label: Callable[[bool], str]
    ) -> tuple[list[Message], list[Anomaly]]:
        out: list[Message] = []
        anomalies: list[Anomaly] = []
        for ev in events:
            if isinstance(ev, HeaderBlock):
                self._block(ev, out, anomalies, label)
            elif isinstance(ev, StreamEnd):
                if not ev.from_client:
                    m = self._unhold(ev.stream_id)
                    if m is not None:
                        out.append(m)
            elif isinstance(ev, StreamReset):
                m = self._unhold(ev.stream_id)
                if m is not None:
                    out.append(m)
            elif isinstance(ev, H2Anomaly):
                first, _, _ = self.sides.locate(ev.from_client, ev.offset, ev.offset + 1)
                a = Anomaly(ev.kind, first, ev.detail, label(ev.from_client))
                anomalies.append(a)
                self.pending_anomalies[ev.from_client].append(a)
        return out, anomalies

    def release_all(self) -> list[Message]:
        out = sorted((m for _, m in self.held.values()), key=lambda m: m.frame)
        self.held.clear()
        self._heap.clear()
        return out

    def _block(self, b: HeaderBlock, out: list[Message], problems: list[Anomaly],
               label: Callable[[bool], str]) -> None:
        if b.kind == "trailers":
            if b.from_client:
                return  # request trailers carry nothing tracewire reports
            held = self._unhold(b.stream_id)
            if held is not None:
                out.append(_with_trailers(held, b.headers))
                return
            # Trailers of a response that started before the capture: a record of its own,
            # so that nothing decoded is lost; it is a response without a status.
        if b.kind in ("informational", "push-promise"):
            return  # 1xx heads and promises are not requests or responses of their own
        first, frame, ts = self.sides.locate(b.from_client, b.start, b.end + 1)
        headers = b.headers
        # one pass for the fields a record lifts out of the block
        found: dict[bytes, bytes] = {}
        for h in headers:
            ln = h.lname
            if ln is not None and ln in _LIFTED and h.value is not None and ln not in found:
                found[ln] = h.value
        status = found.get(b":status")
        authority = found.get(b":authority") or found.get(b"host")
        anomalies = self.pending_anomalies[b.from_client]
        code: int | None = None
        if status is not None:
            # RFC 9110 §15: exactly three digits. int() of anything else may raise (Python's
            # limit on int digits), and a guess would state what the capture does not show.
            if len(status) == 3 and status.isdigit():
                code = int(status)
            else:
                shown = repr(status[:16])[1:] + ("..." if len(status) > 16 else "")
                a = Anomaly("h2-bad-status", frame,
                            f"stream {b.stream_id}: :status {shown} ({len(status)} bytes) is not "
                            "three digits; the response is kept without a status",
                            label(b.from_client))
                problems.append(a)
                anomalies.append(a)
        m = Message(
            capture=self.capture,
            frame=frame,
            first_frame=first,
            ts_ns=ts,
            protocol="h2",
            kind="request" if b.from_client else "response",
            endpoints=self.sides.endpoints(b.from_client),
            stream=b.stream_id,
            method=found.get(b":method"),
            path=found.get(b":path"),
            authority=authority,
            status=code,
            headers=headers if b.kind != "trailers" else (),
            trace=extract(headers),
            anomalies=tuple(anomalies),
            trailers=headers if b.kind == "trailers" else (),
        )
        anomalies.clear()
        if b.from_client or b.end_stream or b.kind == "trailers":
            out.append(m)
            return
        previous = self._unhold(b.stream_id)
        if previous is not None:
            out.append(previous)
        if len(self.held) >= MAX_HELD:
            oldest = self.release_oldest()
            assert oldest is not None
            out.append(oldest)
        self._hold(b.stream_id, m)



def _with_trailers(m: Message, trailers: tuple[Header, ...]) -> Message:
    # built directly: dataclasses.replace costs several times more on this hot path
    return Message(m.capture, m.frame, m.first_frame, m.ts_ns, m.protocol, m.kind, m.endpoints,
                   m.stream, m.method, m.path, m.authority, m.status, m.headers, m.trace,
                   m.anomalies, trailers)
