"""protocols/h2: frames of every type, any split of the stream, kinds, limits, mid-connection
starts, gaps, frame resynchronisation, and arbitrary bytes."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hpack import Encoder
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.protocols.h2 import (
    PREFACE,
    GoAway,
    H2Anomaly,
    H2Connection,
    H2Event,
    HeaderBlock,
    StreamReset,
    find_frame_sync,
    looks_like_h2_frames,
)
from analyzer.records import Header

GRPC = Path(__file__).resolve().parent.parent / "captures" / "public" / "grpc-go"

Write = tuple[bool, bytes]  # (from_client, bytes)


def frame(typ: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return struct.pack(">L", len(payload))[1:] + bytes([typ, flags]) + struct.pack(">L", sid) + payload


def settings_frame(values: dict[int, int] | None = None, ack: bool = False) -> bytes:
    body = b"".join(struct.pack(">HL", k, v) for k, v in (values or {}).items())
    return frame(4, 1 if ack else 0, 0, body)


def headers_frames(sid: int, block: bytes, *, end_stream: bool = False, pad: int = 0,
                   priority: bool = False, split: int = 0) -> bytes:
    """HEADERS (optionally PADDED / PRIORITY), the block split over CONTINUATIONs of ``split`` bytes."""
    first, rest = (block[:split], block[split:]) if split else (block, b"")
    flags = (1 if end_stream else 0) | (0 if rest else 4)
    body = first
    if priority:
        flags |= 0x20
        body = struct.pack(">LB", 3, 15) + body
    if pad:
        flags |= 0x8
        body = bytes([pad]) + body + b"\0" * pad
    out = frame(1, flags, sid, body)
    while rest:
        part, rest = (rest[:split], rest[split:])
        out += frame(9, 0 if rest else 4, sid, part)
    return out


def data(sid: int, payload: bytes, *, end_stream: bool = False, pad: int = 0) -> bytes:
    flags = 1 if end_stream else 0
    if pad:
        return frame(0, flags | 8, sid, bytes([pad]) + payload + b"\0" * pad)
    return frame(0, flags, sid, payload)


def rst(sid: int, code: int) -> bytes:
    return frame(3, 0, sid, struct.pack(">L", code))


def goaway(last: int, code: int, debug: bytes = b"") -> bytes:
    return frame(7, 0, 0, struct.pack(">LL", last, code) + debug)


def push_promise(sid: int, promised: int, block: bytes) -> bytes:
    return frame(5, 4, sid, struct.pack(">L", promised) + block)


def ping(ack: bool = False) -> bytes:
    return frame(6, 1 if ack else 0, 0, b"12345678")


def window_update(sid: int) -> bytes:
    return frame(8, 0, sid, struct.pack(">L", 65535))


def grpc_request(i: int, rid: str) -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/helloworld.Greeter/SayHello"),
        (b":authority", b"greeter:50051"), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
        (b"x-request-id", rid.encode()),
        (b"traceparent", b"00-%032x-%016x-01" % (i + 1, i + 7)),
        (b"x-envoy-attempt-count", b"1"),
    ]


def conversation() -> list[Write]:
    """A synced h2c connection exercising every frame type, as alternating writes."""
    ce, se = Encoder(), Encoder()
    w: list[Write] = []
    w.append((True, PREFACE + settings_frame({2: 0, 4: 65535}) + window_update(0)))
    w.append((False, settings_frame({1: 8192, 3: 100, 5: 32768}) + settings_frame(ack=True)))
    w.append((True, settings_frame(ack=True)))
    # Stream 1: request with PADDED + PRIORITY split over CONTINUATIONs, body, 100-continue.
    w.append((True, headers_frames(1, ce.encode(grpc_request(0, "rid-1")), pad=5, priority=True, split=7)
              + data(1, b"\0\0\0\0\x05hello", end_stream=True, pad=3)))
    w.append((False, headers_frames(1, se.encode([(b":status", b"100")]))
              + headers_frames(1, se.encode([(b":status", b"200"), (b"content-type", b"application/grpc")]))
              + data(1, b"\0\0\0\0\x03abc") + frame(0x20, 0xff, 1, b"unknown extension")
              + headers_frames(1, se.encode([(b"grpc-status", b"0"), (b"grpc-message", b"")]),
                               end_stream=True)))
    # Stream 3: request with client trailers; reset by the server. A push promise on it.
    w.append((True, ping() + headers_frames(3, ce.encode(grpc_request(1, "rid-2")))
              + data(3, b"x" * 30000)
              + headers_frames(3, ce.encode([(b"x-trailer", b"t")]), end_stream=True)))
    w.append((False, ping(ack=True)
              + push_promise(3, 2, se.encode([(b":method", b"GET"), (b":path", b"/style.css"),
                                              (b":scheme", b"http"), (b":authority", b"greeter")]))
              + headers_frames(2, se.encode([(b":status", b"200")]), end_stream=True)
              + rst(3, 8)))
    # The server lowers the client's table; once acknowledged, the client's encoder follows.
    w.append((False, settings_frame({1: 256})))
    w.append((True, settings_frame(ack=True)))
    ce.header_table_size = 256
    w.append((True, headers_frames(5, ce.encode(grpc_request(2, "rid-3")), end_stream=True)
              + frame(2, 0, 5, b"\0\0\0\x01\x10")))
    w.append((False, headers_frames(5, se.encode([(b":status", b"503"), (b"grpc-status", b"14")]),
                                    end_stream=True)
              + goaway(5, 0, b"bye")))
    return w


def run(writes: list[Write], *, client_synced: bool = True, server_synced: bool = True,
        mode: str = "whole", seed: int = 0) -> list[H2Event]:
    conn = H2Connection(client_synced=client_synced, server_synced=server_synced)
    rng = random.Random(seed)
    out: list[H2Event] = []
    for from_client, b in writes:
        if mode == "whole":
            out += conn.feed(from_client, b)
        elif mode == "bytes":
            for i in range(len(b)):
                out += conn.feed(from_client, b[i:i + 1])
        else:
            i = 0
            while i < len(b):
                j = i + rng.randint(1, 30) if rng.random() < 0.8 else i + rng.randint(1, 20000)
                out += conn.feed(from_client, memoryview(b)[i:j])
                i = j
    out += conn.eof(True) + conn.eof(False)
    return out


def blocks(events: list[H2Event]) -> list[HeaderBlock]:
    return [e for e in events if isinstance(e, HeaderBlock)]


def pairs(b: HeaderBlock) -> list[tuple[bytes | None, bytes | None]]:
    return [(h.name, h.value) for h in b.headers]


def test_conversation() -> None:
    events = run(conversation())
    assert [e for e in events if isinstance(e, H2Anomaly)] == []
    bs = blocks(events)
    assert [(b.from_client, b.stream_id, b.kind, b.end_stream) for b in bs] == [
        (True, 1, "request", False),
        (False, 1, "informational", False),
        (False, 1, "response", False),
        (False, 1, "trailers", True),
        (True, 3, "request", False),
        (True, 3, "trailers", True),
        (False, 3, "push-promise", False),
        (False, 2, "response", True),
        (True, 5, "request", True),
        (False, 5, "response", True),
    ]
    assert pairs(bs[0]) == [(n, v) for n, v in grpc_request(0, "rid-1")]
    assert pairs(bs[4]) == [(n, v) for n, v in grpc_request(1, "rid-2")]
    assert pairs(bs[8]) == [(n, v) for n, v in grpc_request(2, "rid-3")]
    assert bs[6].promised_stream_id == 2 and pairs(bs[6])[1] == (b":path", b"/style.css")
    assert pairs(bs[3]) == [(b"grpc-status", b"0"), (b"grpc-message", b"")]
    assert all(h.unknown is None for b in bs for h in b.headers)
    # Offsets: the first block starts after the preface, SETTINGS and WINDOW_UPDATE.
    assert bs[0].start == len(PREFACE) + 9 + 12 + 13 + 9
    resets = [e for e in events if isinstance(e, StreamReset)]
    away = [e for e in events if isinstance(e, GoAway)]
    assert [(r.from_client, r.stream_id, r.error_code) for r in resets] == [(False, 3, 8)]
    assert [(g.from_client, g.last_stream_id, g.error_code) for g in away] == [(False, 5, 0)]


def test_block_offsets_cover_the_frames() -> None:
    enc = Encoder()
    block = enc.encode(grpc_request(0, "r"))
    stream = PREFACE + settings_frame() + headers_frames(1, block, split=10, pad=2)
    (b,) = blocks(run([(True, stream)]))
    assert b.start == len(PREFACE) + 9
    assert b.end == len(stream) - 1


@pytest.mark.parametrize("mode", ["bytes", "random"])
def test_any_split_gives_the_same_events(mode: str) -> None:
    writes = conversation()
    whole = run(writes)
    for seed in range(3 if mode == "random" else 1):
        assert run(writes, mode=mode, seed=seed) == whole


def test_offset_holds_an_open_block() -> None:
    enc = Encoder()
    stream = PREFACE + headers_frames(1, enc.encode(grpc_request(0, "r")), split=10)
    conn = H2Connection(client_synced=True, server_synced=True)
    cut = len(PREFACE) + 9 + 10 + 5
    assert conn.feed(True, stream[:cut]) == []
    assert conn.offset(True) == len(PREFACE)
    assert len(blocks(conn.feed(True, stream[cut:]))) == 1
    assert conn.offset(True) == len(stream)
    assert conn.offset(False) == 0


def test_table_size_settings_reach_the_right_decoder() -> None:
    conn = H2Connection(client_synced=True, server_synced=True)
    conn.feed(False, settings_frame({1: 100}))
    # A decrease waits for the client's acknowledgement.
    assert conn._c.hpack.max_table_size == 4096
    conn.feed(True, PREFACE + settings_frame(ack=True))
    assert conn._c.hpack.max_table_size == 100
    assert conn._s.hpack.max_table_size == 4096
    conn.feed(True, settings_frame({1: 65536}))
    assert conn._s.hpack.max_table_size == 65536


def test_continuation_limits() -> None:
    enc = Encoder()
    big = enc.encode([(b"x-filler-%d" % i, b"v" * 40) for i in range(120)])
    stream = PREFACE + headers_frames(1, big, split=80)
    stream += headers_frames(3, Encoder().encode([(b":method", b"GET")]))
    assert len(big) // 80 > 64
    events = run([(True, stream)])
    kinds = [e.kind for e in events if isinstance(e, H2Anomaly)]
    assert kinds == ["h2-continuation-limit"]
    (b,) = blocks(events)
    assert b.stream_id == 3 and pairs(b) == [(b":method", b"GET")]


def test_frame_inside_a_header_block() -> None:
    enc = Encoder()
    block = enc.encode(grpc_request(0, "r"))
    stream = PREFACE + frame(1, 0, 1, block[:10]) + ping() + headers_frames(3, enc.encode([(b"a", b"b")]))
    events = run([(True, stream)])
    assert [e.kind for e in events if isinstance(e, H2Anomaly)] == ["h2-bad-frame"]
    (b,) = blocks(events)
    # The dropped block's insertions are lost: its entries can no longer be trusted.
    assert b.stream_id == 3 and pairs(b) == [(b"a", b"b")]


def test_eof_inside_a_frame() -> None:
    stream = PREFACE + headers_frames(1, Encoder().encode([(b":method", b"GET")]))
    events = run([(True, stream[:-2])])
    assert [e.kind for e in events if isinstance(e, H2Anomaly)] == ["h2-truncated"]


def test_frame_over_the_maximum_size() -> None:
    enc = Encoder()
    get = [(b":method", b"GET")]
    stream = PREFACE + data(1, b"z" * 20000) + headers_frames(3, enc.encode(get)) + ping()
    stream += headers_frames(5, enc.encode(get))
    events = run([(True, stream)])
    assert [e.kind for e in events if isinstance(e, H2Anomaly)] == ["h2-bad-frame", "h2-resync"]
    assert [pairs(b) for b in blocks(events)] == [get, get]


def test_not_h2_after_all() -> None:
    events = run([(True, b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 50)])
    assert blocks(events) == []
    assert [e.kind for e in events if isinstance(e, H2Anomaly)] == ["h2-bad-frame", "h2-truncated"]


# -- mid-connection ------------------------------------------------------------------------


Request = list[tuple[bytes, bytes]]


def long_client_stream(n: int = 60, seed: int = 1) -> tuple[bytes, list[int], list[Request]]:
    """A client direction with n gRPC calls: the bytes, every frame's offset, each request."""
    rng = random.Random(seed)
    enc = Encoder()
    out = bytearray(PREFACE)
    offsets: list[int] = []
    reqs: list[Request] = []

    def add(f: bytes) -> None:
        pos = 0
        while pos < len(f):
            offsets.append(len(out) + pos)
            pos += 9 + int.from_bytes(f[pos:pos + 3], "big")
        out.extend(f)

    add(settings_frame({4: 1 << 20}))
    for i in range(n):
        a, b, c, d, e = (rng.getrandbits(bits) for bits in (32, 16, 12, 12, 48))
        rid = f"{a:08x}-{b:04x}-4{c:03x}-9{d:03x}-{e:012x}"
        req = grpc_request(i, rid)
        reqs.append(req)
        add(headers_frames(2 * i + 1, enc.encode(req), split=rng.choice([0, 0, 30])))
        add(data(2 * i + 1, bytes(rng.getrandbits(8) for _ in range(rng.randint(5, 3000))), end_stream=True))
        if i % 7 == 0:
            add(window_update(0) + ping())
    return bytes(out), offsets, reqs


def check_against_truth(bs: list[HeaderBlock], reqs: list[Request]) -> tuple[int, int, int]:
    """Every stated header is right; returns (fully known, unknown or partial, guessed)."""
    known = unknown = guessed = 0
    for b in bs:
        truth = reqs[(b.stream_id - 1) // 2]
        assert b.kind == "request"
        assert len(b.headers) == len(truth)
        for h, (name, value) in zip(b.headers, truth, strict=True):
            if h.value is not None:
                assert h.value == value
            if h.name is not None:
                assert h.name == name  # guesses included: these are all tracing headers
            if h.guessed:
                guessed += 1
            if h.unknown is None:
                known += 1
            else:
                unknown += 1
    return known, unknown, guessed


def test_find_frame_sync_on_every_cut() -> None:
    stream, offsets, _ = long_client_stream(20)
    frames = set(offsets)
    rng = random.Random(5)
    for cut in [0, 1, 5, 9, 30, *rng.sample(range(len(stream) - 2000), 300)]:
        o = find_frame_sync(stream[cut:])
        assert o >= 0 and cut + o in frames
        # The first true frame boundary that three frames confirm: no false start before it.
        assert cut + o == min(f for f in offsets if f >= cut)
    assert looks_like_h2_frames(stream[len(PREFACE):])
    assert not looks_like_h2_frames(stream)
    assert find_frame_sync(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10) == -1
    # Two frames that end exactly at the end of the data are enough.
    assert find_frame_sync(settings_frame() + ping()) == 0
    assert find_frame_sync(settings_frame() + ping()[:-1]) == -1


def test_mid_connection_start() -> None:
    stream, offsets, reqs = long_client_stream(60)
    rng = random.Random(7)
    total = [0, 0, 0]
    for cut in [len(PREFACE) + 9, *rng.sample(range(100, len(stream) // 2), 25)]:
        events = run([(True, stream[cut:])], client_synced=False, server_synced=False,
                     mode="random", seed=cut)
        bs = blocks(events)
        assert len(bs) >= 20
        for b in bs:  # offsets count from the first byte fed
            assert b.start + cut in offsets and stream[b.start + cut + 3] == 1
        k, u, g = check_against_truth(bs, reqs)
        total[0] += k
        total[1] += u
        total[2] += g
        anomalies = [e for e in events if isinstance(e, H2Anomaly)]
        assert all(a.kind in ("h2-resync", "h2-hpack-unknown") for a in anomalies)
        assert sum(a.kind == "h2-hpack-unknown" for a in anomalies) <= 1
        if cut + 0 not in offsets:
            assert anomalies and anomalies[0].kind == "h2-resync"
        # The same pre-capture entry keeps one identity across requests.
        labels = {(h.unknown, h.value) for b in bs for h in b.headers if h.unknown and h.value is None}
        assert len({lab for lab, _ in labels}) == len(labels)
    assert total[1] > 0 and total[2] > 0
    print(f"mid-connection h2 starts: {total[0]} headers known, {total[1]} unknown or partial, "
          f"{total[2]} names guessed (all checked right)")


def test_gap_inside_data_keeps_everything() -> None:
    stream, offsets, reqs = long_client_stream(10)
    # Find a DATA frame with a long payload and cut 100 bytes from its middle.
    start = next(o for o in offsets if stream[o + 3] == 0 and int.from_bytes(stream[o:o + 3], "big") > 500)
    a, b = start + 9 + 100, start + 9 + 200
    conn = H2Connection(client_synced=True, server_synced=True)
    events = conn.feed(True, stream[:a]) + conn.gap(True, b - a)
    events += conn.feed(True, stream[b:]) + conn.eof(True)
    (gap,) = [e for e in events if isinstance(e, H2Anomaly)]
    assert gap.kind == "h2-gap" and "kept" in gap.detail and gap.offset == a
    bs = blocks(events)
    assert len(bs) == 10
    assert check_against_truth(bs, reqs)[1] == 0


def test_gap_over_frames_resyncs_and_forgets_the_table() -> None:
    stream, offsets, reqs = long_client_stream(40)
    a = offsets[30] + 4
    b = offsets[40] + 11
    for mode in ("whole", "bytes"):
        conn = H2Connection(client_synced=True, server_synced=True)
        events = conn.feed(True, stream[:a]) + conn.gap(True, b - a)
        rest = stream[b:]
        if mode == "whole":
            events += conn.feed(True, rest)
        else:
            for i in range(len(rest)):
                events += conn.feed(True, rest[i:i + 1])
        events += conn.eof(True)
        kinds = [e.kind for e in events if isinstance(e, H2Anomaly)]
        assert kinds[:2] == ["h2-gap", "h2-resync"] and "h2-hpack-unknown" in kinds
        bs = blocks(events)
        _, u, _ = check_against_truth(bs, reqs)
        assert u > 0
        labels = [h.unknown for bl in bs for h in bl.headers if h.unknown]
        assert all("(resync 1)" in (lab or "") for lab in labels)


@pytest.mark.parametrize("seed", range(4))
def test_random_gaps_never_decode_wrongly(seed: int) -> None:
    stream, _, reqs = long_client_stream(60)
    rng = random.Random(seed)
    for _ in range(25):
        conn = H2Connection(client_synced=True, server_synced=True)
        events: list[H2Event] = []
        i = 0
        while i < len(stream):
            j = min(len(stream), i + rng.randint(1, 4000))
            events += conn.feed(True, stream[i:j])
            i = j
            if rng.random() < 0.08:
                lost = rng.randint(1, 3000)
                events += conn.gap(True, lost)
                i += lost
        events += conn.eof(True)
        bs = blocks(events)
        assert all(b.stream_id % 2 and b.stream_id < 2 * len(reqs) for b in bs)
        check_against_truth(bs, reqs)


def test_gap_inside_a_buffered_header_frame() -> None:
    enc = Encoder()
    first = headers_frames(1, enc.encode(grpc_request(0, "r1")))
    second = headers_frames(3, enc.encode(grpc_request(1, "r2")))
    stream = PREFACE + first + second
    cut = len(PREFACE) + 20
    conn = H2Connection(client_synced=True, server_synced=True)
    events = conn.feed(True, stream[:cut]) + conn.gap(True, 10) + conn.feed(True, stream[cut + 10:])
    kinds = [e.kind for e in events if isinstance(e, H2Anomaly)]
    assert kinds[0] == "h2-gap" and "kept" in events[0].detail  # type: ignore[union-attr]
    (b,) = blocks(events)
    assert b.stream_id == 3
    # The second request refers back to entries the lost block inserted: unknown, not wrong.
    truth = grpc_request(1, "r2")
    assert any(h.unknown for h in b.headers)
    for h, (name, value) in zip(b.headers, truth, strict=True):
        assert h.value in (None, value) and h.name in (None, name)


def test_unsynced_server_trailers_and_responses() -> None:
    se = Encoder()
    se.encode([(b"grpc-status", b"0"), (b"x-custom", b"1")])  # built before the capture
    srv = headers_frames(7, se.encode([(b"grpc-status", b"0"), (b"x-custom", b"1")]), end_stream=True)
    srv += headers_frames(9, se.encode([(b":status", b"200")])) + data(9, b"abc")
    srv += headers_frames(9, se.encode([(b"grpc-status", b"0")]), end_stream=True)
    events = run([(False, srv)], client_synced=False, server_synced=False)
    kinds = [(b.stream_id, b.kind) for b in blocks(events)]
    assert kinds == [(7, "trailers"), (9, "response"), (9, "trailers")]
    first = blocks(events)[0]
    assert first.headers[0].unknown == "entry #2 of the server's table"


# -- robustness ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300), st.integers(0, 40)), max_size=8),
       st.booleans())
def test_random_bytes_never_raise(chunks: list[tuple[bool, bytes, int]], synced: bool) -> None:
    conn = H2Connection(client_synced=synced, server_synced=synced)
    for from_client, b, gap in chunks:
        conn.feed(from_client, b)
        if gap == 1:
            conn.gap(from_client, 17)
        assert conn.offset(from_client) >= 0
    conn.eof(True)
    conn.eof(False)
    find_frame_sync(b"".join(b for _, b, _ in chunks))


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.integers(0, 200))
def test_mutated_conversation_never_raises(noise: bytes, at: int) -> None:
    writes = conversation()
    stream = writes[3][1]
    pos = at * len(stream) // 200
    mutated = [*writes[:3], (True, stream[:pos] + noise + stream[pos:]), *writes[4:]]
    for e in run(mutated):
        if isinstance(e, HeaderBlock):
            assert all(isinstance(h, Header) for h in e.headers)


# -- real captures ---------------------------------------------------------------------------


def grpc_streams(name: str) -> list[list[Write]]:
    import scapy.all as scapy
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    conns: dict[int, list[Write]] = {}
    for p in scapy.rdpcap(str(GRPC / name)):
        raw = bytes(p.payload)  # NULL/loopback: the IPv6 packet follows the 4-byte family
        if not raw or raw[0] >> 4 != 6:
            continue
        ip = IPv6(raw)
        if TCP not in ip:
            continue
        t = ip[TCP]
        payload = bytes(t.payload)
        if 50051 not in (t.sport, t.dport) or not payload:
            continue
        conns.setdefault(t.sport if t.dport == 50051 else t.dport, []).append((t.dport == 50051, payload))
    return list(conns.values())


@pytest.mark.parametrize("name", ["grpc-go-unary.pcapng", "grpc-go-client-streaming.pcapng",
                                  "grpc-go-server-streaming.pcapng", "grpc-go-bidi-streaming.pcapng"])
def test_grpc_go_captures(name: str) -> None:
    (writes,) = grpc_streams(name)
    events = run(writes)
    assert [e for e in events if isinstance(e, H2Anomaly)] == []
    bs = blocks(events)
    kinds = [(b.from_client, b.kind) for b in bs]
    assert kinds == [(True, "request"), (False, "response"), (False, "trailers")]
    assert (b":method", b"POST") in pairs(bs[0])
    assert pairs(bs[2])[0] == (b"grpc-status", b"0") and bs[2].end_stream
    assert run(writes, mode="bytes") == events


# -- capture edges: a preface in the capture, its SYN not ------------------------------------


@pytest.mark.parametrize("name", ["h2c-nghttp.pcap", "grpc-cold.pcap"])
def test_preface_without_syn_starts_the_connection(name: str, tmp_path: Path) -> None:
    """The capture lost the SYNs (it started a moment after them): the client's preface is
    its first byte, so the connection starts there. Nothing is desynchronised or unknown,
    and the messages are those of the capture with its SYNs."""
    import scapy.all as scapy
    from scapy.layers.inet import TCP

    from analyzer.pipeline import CaptureSummary, read_messages

    src = Path(__file__).resolve().parent.parent / "captures" / name
    packets = scapy.rdpcap(str(src))
    kept = [p for p in packets if not (TCP in p and p[TCP].flags & 0x02)]
    assert len(kept) < len(packets)
    nosyn = tmp_path / name
    scapy.wrpcap(str(nosyn), kept)

    def read(path: Path) -> tuple[list[tuple[object, ...]], CaptureSummary]:
        s = CaptureSummary(str(path))
        return [(m.kind, m.stream, m.status, m.headers, m.trailers, m.anomalies)
                for m in read_messages(path, s)], s

    want, _ = read(src)
    got, s = read(nosyn)
    assert got == want and got
    assert [a for a in s.anomalies if a.kind.startswith("h2-")] == []
    assert all(h.unknown is None for m in got for h in m[3])  # type: ignore[attr-defined]
    assert not any(c.syn_seen for c in s.connections)


# -- SETTINGS_HEADER_TABLE_SIZE takes effect when acknowledged, in order ---------------------


def _size_update(n: int) -> bytes:
    from hpack.hpack import encode_integer

    first = encode_integer(n, 5)
    first[0] |= 0x20
    return bytes(first)


def test_table_size_zero_then_4096_acked_in_order() -> None:
    """RFC 9113 §6.5.3, RFC 7541 §4.2: a client that sends 0 then 4096 in two SETTINGS
    frames lets the server's encoder grow back to 4096 once both are acknowledged; the
    encoder may even use the larger while the second ACK is on its way."""
    se = Encoder()
    conn = H2Connection(client_synced=True, server_synced=True)
    events = conn.feed(True, PREFACE + settings_frame({1: 0}) + settings_frame({1: 4096}))
    assert conn._s.hpack.max_table_size == 4096  # 4096 is still pending: the larger holds
    events += conn.feed(False, settings_frame() + settings_frame(ack=True))
    assert conn._s.hpack.max_table_size == 4096  # 0 acknowledged, 4096 pending
    events += conn.feed(True, settings_frame(ack=True)
                        + headers_frames(1, Encoder().encode(grpc_request(0, "r1")), end_stream=True))
    # The server's first block after both ACKs: a size update to 0 (the smallest since its
    # last block, RFC 7541 §4.2), then to 4096, then fields it indexes.
    block = _size_update(0) + _size_update(4096) + se.encode([(b":status", b"200"), (b"x-a", b"1")])
    events += conn.feed(False, settings_frame(ack=True) + headers_frames(1, block))
    events += conn.feed(False, headers_frames(1, se.encode([(b"x-a", b"1")]), end_stream=True))
    assert [e for e in events if isinstance(e, H2Anomaly)] == []
    resp, trailers = blocks(events)[1:]
    assert pairs(resp) == [(b":status", b"200"), (b"x-a", b"1")]
    assert pairs(trailers) == [(b"x-a", b"1")]  # decoded from the dynamic table
    assert conn._s.hpack.max_table_size == 4096 and conn._s.acked_size == 4096


def test_table_size_decrease_holds_from_its_ack() -> None:
    conn = H2Connection(client_synced=True, server_synced=True)
    se = Encoder()
    events = conn.feed(True, PREFACE + settings_frame())
    events += conn.feed(False, settings_frame() + settings_frame(ack=True))
    events += conn.feed(False, headers_frames(1, se.encode([(b":status", b"200"), (b"x-a", b"1")]),
                                              end_stream=True))
    events += conn.feed(True, settings_frame({1: 0}))
    # Not acknowledged yet: the server's table still holds x-a, and it may use it.
    events += conn.feed(False, headers_frames(3, se.encode([(b":status", b"200"), (b"x-a", b"1")]),
                                              end_stream=True))
    assert [e for e in events if isinstance(e, H2Anomaly)] == []
    assert pairs(blocks(events)[-1]) == [(b":status", b"200"), (b"x-a", b"1")]
    # Acknowledged: a size update above 0 is an error; the table is certainly empty.
    events = conn.feed(False, settings_frame(ack=True)
                       + headers_frames(5, _size_update(4096) + b"\x88", end_stream=True))
    problems = [e for e in events if isinstance(e, H2Anomaly)]
    assert [e.kind for e in problems] == ["h2-hpack-error"]
    assert "exceeds the 0 allowed" in problems[0].detail
    assert conn._s.hpack.synced


def test_acks_of_settings_sent_before_the_capture_are_ignored() -> None:
    """An ACK whose SETTINGS the capture did not show answers nothing tracewire knows."""
    conn = H2Connection(client_synced=False, server_synced=False)
    conn.feed(False, settings_frame(ack=True) * 3 + ping())
    assert conn._s.acked_size == 4096 and conn._s.hpack.max_table_size == 4096
    conn.feed(True, settings_frame({1: 100}) + ping() + ping())
    assert conn._s.hpack.max_table_size == 4096  # 100 pending: 4096 may still be in use
    conn.feed(False, settings_frame(ack=True))
    assert conn._s.hpack.max_table_size == 100


def test_table_size_settings_of_a_real_implementation() -> None:
    """python-hyper's h2 on both sides, over an in-memory pipe: the client sends
    SETTINGS_HEADER_TABLE_SIZE 0, then 4096; once both are acknowledged the server's
    encoder emits size updates 0 and 4096 and indexes again. Every byte goes through
    tracewire in the order the peers sent it."""
    import h2.config
    import h2.connection
    import h2.settings

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    ours = H2Connection(client_synced=True, server_synced=True)
    events: list[H2Event] = []

    def pump() -> None:
        while True:
            a, b = client.data_to_send(), server.data_to_send()
            if not a and not b:
                return
            if a:
                events.extend(ours.feed(True, a))
                server.receive_data(a)
            if b:
                events.extend(ours.feed(False, b))
                client.receive_data(b)

    client.initiate_connection()
    server.initiate_connection()
    client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    client.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 4096})
    pump()
    for sid in (1, 3, 5):
        client.send_headers(sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"),
                                  (":authority", "x"), ("x-request-id", f"r{sid}")], end_stream=True)
        pump()
        server.send_headers(sid, [(":status", "200"), ("x-served-by", "server-1")], end_stream=True)
        pump()
    assert [e for e in events if isinstance(e, H2Anomaly)] == []
    responses = [pairs(b) for b in blocks(events) if not b.from_client]
    assert responses == [[(b":status", b"200"), (b"x-served-by", b"server-1")]] * 3
    assert ours._s.hpack.max_table_size == 4096
