"""Bounds of the HTTP/2 layer on hostile input: held responses, caches, absurd values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.pipeline import CaptureSummary, read_messages
from analyzer.protocols import h2_messages
from analyzer.records import Message
from tests import h2_adversarial


def _read(tmp_path: Path, body: bytes) -> tuple[list[Message], CaptureSummary]:
    path = tmp_path / "c.pcap"
    path.write_bytes(body)
    s = CaptureSummary(str(path))
    return list(read_messages(path, s)), s


def test_responses_that_never_end_are_released_beyond_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h2_messages, "MAX_HELD", 16)
    msgs, s = _read(tmp_path, h2_adversarial.never_ending(300, batch=7))
    assert len(msgs) == 600
    assert [m.frame for m in msgs] == sorted(m.frame for m in msgs)
    responses = [m for m in msgs if m.kind == "response"]
    assert sorted(m.stream or 0 for m in responses) == [2 * k + 1 for k in range(300)]
    assert {m.status for m in responses} == {200}
    held = [a for a in s.anomalies if a.kind == "held-limit"]
    assert len(held) == 1
    assert held[0].detail.startswith(f"{300 - 16} messages were reported before")
    # the first one let out early is the first response
    assert held[0].frame == responses[0].frame
    assert s.connections[0].messages == 600


def test_held_heap_stays_proportional_to_what_is_held() -> None:
    """A response held for the whole connection, while thousands come and go: the heap of
    held frames keeps its stale entries bounded."""
    from analyzer.protocols.h2 import HeaderBlock, StreamEnd
    from analyzer.records import Endpoints, Header

    ep = Endpoints("a", 1, "b", 2, 1)
    out = h2_messages.H2Messages("c", lambda c: ep, lambda c, s, e: (s, e, 0))
    status = (Header.of(b":status", b"200"),)

    def head(sid: int, at: int) -> HeaderBlock:
        return HeaderBlock(False, sid, at, at, status, False, "response")

    out.events([head(1, 1)], lambda c: "x")
    for k in range(1, 5000):
        sid = 2 * k + 1
        msgs, _ = out.events([head(sid, 10 * k), StreamEnd(False, sid, 10 * k + 5)], lambda c: "x")
        assert [m.stream for m in msgs] == [sid]
        assert len(out._heap) <= 2 * (len(out.held) + 1) + 64  # checked when one is added
    assert out.held_min_frame() == 2  # the frame that completed block [1, 1]
    assert [m.stream for m in out.release_all()] == [1]
    assert out.held_min_frame() is None


def test_output_does_not_wait_without_bound_behind_a_held_response(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = h2_adversarial.long_held(40)
    # Within the bound: the held response waits and gets its trailers.
    msgs, s = _read(tmp_path, body)
    held = [m for m in msgs if m.endpoints.connection == 1 and m.kind == "response"]
    assert len(held) == 1 and held[0].status == 200
    assert [(h.name, h.value) for h in held[0].trailers] == [(b"grpc-status", b"0")]
    assert not [a for a in s.anomalies if a.kind == "held-limit"]
    order = [m.frame for m in msgs]
    assert order == sorted(order)

    # Beyond it: the held response goes out early, its trailers become a record of their own.
    from analyzer import pipeline

    monkeypatch.setattr(pipeline, "MAX_READY", 10)
    early, s2 = _read(tmp_path, body)
    on1 = [m for m in early if m.endpoints.connection == 1 and m.kind == "response"]
    assert [(m.status, len(m.trailers)) for m in on1] == [(200, 0), (None, 1)]
    # the same records in the same order, and the trailers, last in the capture, on their own
    assert [m.frame for m in early] == [*order, on1[1].frame]
    limit = [a for a in s2.anomalies if a.kind == "held-limit"]
    assert len(limit) == 1 and limit[0].frame == held[0].frame
    assert re.match(r"1 messages were reported before", limit[0].detail)


@pytest.mark.parametrize("status", [b"9" * 5000, b"20", b"2000", b"20x", b"\x1b[2J", b""])
def test_status_that_is_not_three_digits(tmp_path: Path, status: bytes) -> None:
    """A :status Python's int() would choke on, or any that is not three digits: an anomaly
    with its frame; the response is kept, without a status, and the next one is fine."""
    from tests.h2_adversarial import _capture, _literal, _start, frame

    request = b"\x82\x84\x86\x01\x07example"

    def writes() -> Iterator[tuple[bool, bytes]]:
        yield from _start()
        yield True, frame(1, 0x5, 1, request)
        yield False, frame(1, 0x5, 1, b"\x08" + _literal(status))  # :status by static name
        yield True, frame(1, 0x5, 3, request)
        yield False, frame(1, 0x5, 3, b"\x89")  # :status 204

    msgs, s = _read(tmp_path, _capture(writes()))
    responses = [m for m in msgs if m.kind == "response"]
    assert [(m.stream, m.status) for m in responses] == [(1, None), (3, 204)]
    bad = [a for a in s.anomalies if a.kind == "h2-bad-status"]
    assert len(bad) == 1 and bad[0].frame == responses[0].frame
    assert f"({len(status)} bytes) is not three digits" in bad[0].detail
    assert len(bad[0].detail) < 200 and "\x1b" not in bad[0].detail
    assert responses[0].anomalies == (bad[0],)


def test_flood_of_distinct_indexed_fields_decodes_every_field(tmp_path: Path) -> None:
    """Every field of the flood is a new literal inserted into a table the server allowed
    to be 1 MiB: tracewire keeps a bounded part of that table, and decodes all."""
    msgs, s = _read(tmp_path, h2_adversarial.header_flood(600_000, value_len=400))
    requests = [m for m in msgs if m.kind == "request"]
    assert requests and not [a for a in s.anomalies if a.kind.startswith("h2-")]
    k = 0
    for m in requests:
        flood = [h for h in m.headers if h.name is not None and h.name.startswith(b"x-flood-")]
        assert len(flood) == 100
        for h in flood:
            assert h.name == b"x-flood-%08d" % k and h.value == (b"%08d" % k) * 50
            k += 1


def test_http1_message_awaiting_trailers_is_bounded_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTTP/1 chunked response that announces trailers waits for them like an HTTP/2
    one; let out early, its trailers become a record of their own."""
    from analyzer import pipeline
    from tests.h2_adversarial import _pcap
    from tests.packets import ACK, FIN, Conn

    a = Conn(client="10.244.1.10", cport=42000, server="127.0.0.1", sport=15001)
    b = Conn(client="10.244.1.10", cport=42001, server="127.0.0.1", sport=15001)
    get = b"GET /%d HTTP/1.1\r\nHost: s\r\n\r\n"
    head = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: grpc-status\r\n\r\n"
            b"3\r\nabc\r\n")
    packets = [*a.handshake(), a.send(get % 0), a.send(head, False), *b.handshake()]
    for k in range(40):
        packets += [b.send(get % k), b.send(b"HTTP/1.1 204 No Content\r\n\r\n", False)]
    packets.append(a.send(b"0\r\ngrpc-status: 0\r\n\r\n", False))
    for c in (a, b):
        packets += [c.send(b"", True, FIN | ACK), c.send(b"", False, FIN | ACK)]
    body = _pcap(packets)

    msgs, s = _read(tmp_path, body)
    assert not [a for a in s.anomalies if a.kind == "held-limit"]
    (held,) = [m for m in msgs if m.endpoints.connection == 1 and m.kind == "response"]
    assert held.status == 200 and [(h.name, h.value) for h in held.trailers] == [(b"grpc-status", b"0")]
    assert [m.frame for m in msgs] == sorted(m.frame for m in msgs)

    monkeypatch.setattr(pipeline, "MAX_READY", 10)
    early, s2 = _read(tmp_path, body)
    on1 = [m for m in early if m.endpoints.connection == 1 and m.kind == "response"]
    assert [(m.status, m.headers == held.headers, m.trailers) for m in on1] == [
        (200, True, ()), (None, False, held.trailers)]
    assert [m.frame for m in early] == [*(m.frame for m in msgs), on1[1].frame]
    (limit,) = [a for a in s2.anomalies if a.kind == "held-limit"]
    assert limit.frame == held.frame and limit.detail.startswith("1 messages")
