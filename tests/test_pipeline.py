"""The whole extraction on every fixture, against what captures/MANIFEST.json says is in it."""

from __future__ import annotations

from typing import Any

import pytest

from analyzer.errors import CaptureError
from analyzer.pipeline import CaptureSummary, read_messages
from tests.fixtures import CAPTURES, manifest

ENTRIES = {e["file"]: e for e in manifest()}
READABLE = sorted(f for f, e in ENTRIES.items() if not e.get("error"))
FATAL = sorted(f for f, e in ENTRIES.items() if e.get("error"))


def _key(m: dict[str, Any]) -> tuple[Any, ...]:
    if m["kind"] == "request":
        return (m["frame"], "request", m.get("stream"), m["method"], m["path"])
    return (m["frame"], "response", m.get("stream"), m["status"])


@pytest.mark.parametrize("name", READABLE)
def test_messages_frames_and_anomalies_match_manifest(name: str) -> None:
    entry = ENTRIES[name]
    summary = CaptureSummary(name)
    ours = [
        (m.frame, m.kind, m.stream, None if m.method is None else m.method.decode(),
         None if m.path is None else m.path.decode())
        if m.kind == "request"
        else (m.frame, m.kind, m.stream, m.status)
        for m in read_messages(CAPTURES / name, summary)
    ]
    # A message whose head was partly never captured is not reported: nothing is invented.
    expected = [_key(m) for m in entry["http_messages"] if m.get("complete", True)]
    assert ours == sorted(ours, key=lambda k: k[0])  # in capture order
    assert sorted(ours, key=repr) == sorted(expected, key=repr)
    assert summary.frames == entry["frames"]
    assert summary.linktypes == sorted(entry["linktypes"])
    assert summary.connection_count == entry["tcp_connections"]
    found = {(a.kind, a.frame) for a in summary.anomalies}
    for a in entry.get("anomalies", []):
        assert (a["kind"], a["frame"]) in found, (a, summary.anomalies)
    if not entry.get("anomalies"):
        # A capture that starts inside an h2 connection says so once per direction: HPACK
        # entries older than the capture exist (tshark shows them as <unknown> too).
        informational = {"h2-hpack-unknown"} if entry.get("tshark", {}).get("unknown_headers") else set()
        assert [a for a in summary.anomalies if a.kind not in informational] == []


@pytest.mark.parametrize("name", FATAL)
def test_fatal_inputs_raise_capture_error(name: str) -> None:
    with pytest.raises(CaptureError, match="not a capture"):
        list(read_messages(CAPTURES / name))


def test_memory_does_not_keep_finished_connections() -> None:
    summary = CaptureSummary("x")
    list(read_messages(CAPTURES / "edge/tcp-port-reuse.pcap", summary, keep_connections=False))
    assert summary.connections == []
    assert summary.connection_count == 2


def test_http1_trailers_travel_with_their_message() -> None:
    """A chunked response that announces trailers (Trailer:) carries them, in frame order."""
    msgs = list(read_messages(CAPTURES / "edge/http-chunked-trailers.pcap"))
    assert [m.frame for m in msgs] == sorted(m.frame for m in msgs)
    with_trailers = [m for m in msgs if m.trailers]
    assert len(with_trailers) == 1
    assert [(h.name, h.value) for h in with_trailers[0].trailers] == [
        (b"server-timing", b"upstream;dur=12"), (b"x-checksum", b"5d41402abc4b2a76")]


def test_undecided_stream_is_not_rescanned_for_every_packet(tmp_path: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A binary protocol already running when the capture started (a database connection)
    is searched for HTTP heads and h2 frames a bounded number of times, not once per packet
    over everything held (which made such captures quadratic)."""
    import random

    from analyzer.protocols import h2, session
    from tests.packets import Conn, pcap, sll2

    calls = 0
    real = h2.find_frame_sync  # what session calls, counted below

    def counting(data: bytes | bytearray) -> int:
        nonlocal calls
        calls += 1
        return real(data)

    monkeypatch.setattr(session, "find_frame_sync", counting)
    rnd = random.Random(3)
    conn = Conn("10.244.1.10", 41000, "10.96.0.50", 5432)
    frames = [sll2(conn.send(bytes(rnd.randrange(256) for _ in range(100)), from_client=i % 2 == 0))
              for i in range(1500)]
    f = tmp_path / "db.pcap"
    f.write_bytes(pcap([(i * 1000, x) for i, x in enumerate(frames)]))
    summary = CaptureSummary("db")
    assert list(read_messages(f, summary)) == []
    assert [c.protocol for c in summary.connections] == ["other"]
    assert calls < 200  # 1,500 packets; every packet below 4 KiB, then geometric
