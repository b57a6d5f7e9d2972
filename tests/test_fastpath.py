"""The lean in-order path against the general path: identical output, always.

``analyzer.fastpath`` lets in-order data on a connection whose protocol is known skip the
reassembler's event objects; the general path is the reference. Every fixture capture is
run through ``messages --format jsonl`` and ``analyze --format json`` both ways, and
hypothesis builds HTTP/1 connections cut at random, with the irregular cases that must
fall back (out of order, retransmissions, holes, SYN/FIN/RST, several connections
interleaved, a protocol not yet detected) and compares every message and every summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.cli import cli
from analyzer.decode import Segment
from analyzer.fastpath import ENV, bare_ack, enabled, in_order
from analyzer.pipeline import CaptureSummary, read_messages
from analyzer.reassembly import Data, Reassembler
from analyzer.report.messages import anomaly_dict, message_dict
from tests.fixtures import CAPTURES, readable_captures
from tests.packets import ACK, FIN, PSH, RST, SYN, ip4, ipv4, pcap, sll2, tcp


def _run(env: str, *args: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, list(args), env={ENV: env})
    return r.exit_code, r.stdout


def _outputs(path: Path, fast: bool) -> tuple[list[str], list[str], str]:
    """Every message (unredacted, as JSON), every anomaly and the summary of one pass."""
    s = CaptureSummary(str(path))
    msgs = [json.dumps(message_dict(m, True), sort_keys=True)
            for m in read_messages(path, s, fastpath=fast)]
    anomalies = [json.dumps(anomaly_dict(a), sort_keys=True) for a in s.anomalies]
    rest = repr((s.frames, s.tcp_segments, sorted(s.not_tcp.items()), s.connections,
                 s.connection_count, s.messages, s.first_ts, s.last_ts, s.linktypes))
    return msgs, anomalies, rest


# -- the switch -----------------------------------------------------------------------------

def test_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert enabled()
    monkeypatch.setenv(ENV, "0")
    assert not enabled()
    assert enabled(True)
    monkeypatch.setenv(ENV, "1")
    assert enabled() and not enabled(False)


# -- every fixture ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", readable_captures())
def test_fixture_identical(name: str) -> None:
    path = CAPTURES / name
    fast, general = _outputs(path, True), _outputs(path, False)
    assert fast == general
    for args in (("messages", "--format", "jsonl", str(path)),
                 ("analyze", "--format", "json", str(path))):
        assert _run("1", *args) == _run("0", *args)


def test_fixtures_take_the_lean_path() -> None:
    """The comparison above means something only if the lean path runs on the fixtures."""
    lean = acks = total = 0
    for name in readable_captures():
        s = CaptureSummary(name)
        for _ in read_messages(CAPTURES / name, s, fastpath=True):
            pass
        lean += s.lean_segments
        acks += s.lean_acks
        total += s.tcp_segments
        off = CaptureSummary(name)
        for _ in read_messages(CAPTURES / name, off, fastpath=False):
            pass
        assert off.lean_segments == off.lean_acks == 0
    assert 0 < lean < total
    assert 0 < acks < total - lean


# -- the decision ----------------------------------------------------------------------------

def _seg(seq: int, flags: int = ACK | PSH, payload: bytes = b"x", missing: int = 0,
         frame: int = 1) -> Segment:
    return Segment(frame, frame, ip4("10.0.0.1"), 1000, ip4("10.0.0.2"), 80, seq, 1, flags,
                   memoryview(payload), missing, 1)


def test_decision() -> None:
    r = Reassembler()
    first = _seg(100, frame=1)
    r.add(first)  # a direction starts mid-connection: the general path sees it first
    flow = r.flows[(first.src, first.sport, first.dst, first.dport)]
    assert in_order(flow, _seg(101))
    assert not in_order(None, _seg(101))
    assert not in_order(flow, _seg(102))  # a hole before it
    assert not in_order(flow, _seg(100))  # a retransmission
    assert not in_order(flow, _seg(101, payload=b""))  # a bare ACK
    assert not in_order(flow, _seg(101, missing=5))  # cut by the snap length
    for flags in (FIN | ACK, RST | ACK, SYN | ACK, PSH):
        assert not in_order(flow, _seg(101, flags=flags))
    r.add(_seg(105, frame=2))  # waits behind a hole
    assert flow.pending and not in_order(flow, _seg(101))


def test_bare_ack_decision() -> None:
    r = Reassembler()
    first = _seg(100, frame=1)
    r.add(first)
    flow = r.flows[(first.src, first.sport, first.dst, first.dport)]
    assert bare_ack(flow, _seg(101, flags=ACK, payload=b""))
    assert bare_ack(flow, _seg(7, flags=ACK | PSH, payload=b""))  # its sequence number is not used
    assert not bare_ack(flow, _seg(101, flags=ACK))  # data
    assert not bare_ack(flow, _seg(101, flags=ACK, payload=b"", missing=3))
    for flags in (FIN | ACK, RST | ACK, SYN | ACK, PSH, 0):
        assert not bare_ack(flow, _seg(101, flags=flags, payload=b""))
    # the peer has bytes waiting behind a hole: an acknowledgement may declare the hole a gap
    back = Segment(2, 2, first.dst, first.dport, first.src, first.sport, 500, 101, ACK | PSH,
                   memoryview(b"y"), 0, 1)
    r.add(back)
    peer = r.flows[(back.src, back.sport, back.dst, back.dport)]
    r.add(Segment(3, 3, back.src, back.sport, back.dst, back.dport, 510, 101, ACK | PSH,
                  memoryview(b"z"), 0, 1))
    assert peer.pending and not bare_ack(flow, _seg(101, flags=ACK, payload=b""))
    assert bare_ack(peer, Segment(4, 4, back.src, back.sport, back.dst, back.dport, 501, 101, ACK,
                                  memoryview(b""), 0, 1))
    # a direction not seen yet (its first segment may pair a NAT half) or with a FIN pending
    fresh = Reassembler()
    fresh.add(first)
    other = fresh.flows[(first.dst, first.dport, first.src, first.sport)]
    assert not bare_ack(other, _seg(101, flags=ACK, payload=b""))
    r.add(_seg(101, flags=FIN | ACK, payload=b"", frame=5))
    assert flow.fin_seq is not None and not bare_ack(flow, _seg(102, flags=ACK, payload=b""))


def test_ack_in_order_leaves_the_state_add_leaves() -> None:
    fast, general = Reassembler(), Reassembler()
    segs = [_seg(100, frame=1), _seg(101, flags=ACK, payload=b"", frame=2),
            _seg(101, flags=ACK | PSH, payload=b"", frame=3)]
    for r in (fast, general):
        r.add(segs[0])
        r.add(Segment(9, 9, segs[0].dst, 80, segs[0].src, 1000, 5, 101, ACK, memoryview(b""), 0, 1))
    key = (segs[0].src, segs[0].sport, segs[0].dst, segs[0].dport)
    for i, seg in enumerate(segs[1:]):
        seg.ack = 40 + i
        f = fast.flows[key]
        assert bare_ack(f, seg)
        fast.ack_in_order(f, seg)
        assert general.add(seg) == []
    a, b = fast.flows[key], general.flows[key]
    for attr in ("next_seq", "offset", "segments", "payload_bytes", "last_ack", "recent_seq",
                 "ended", "fin_seq"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.conn.last_ts == b.conn.last_ts
    assert list(fast.active) == [a.conn] and list(general.active) == [b.conn]


def test_deliver_in_order_leaves_the_state_add_leaves() -> None:
    fast, general = Reassembler(), Reassembler()
    segs = [_seg(100 + i * 3000, payload=bytes([i]) * 3000 if i % 2 else b"ab" * 1500, frame=i)
            for i in range(6)]
    segs = [_seg(100 + sum(len(s.payload) for s in segs[:i]), payload=bytes(segs[i].payload),
                 frame=i + 1) for i in range(len(segs))]
    fast.add(segs[0])
    general.add(segs[0])
    key = (segs[0].src, segs[0].sport, segs[0].dst, segs[0].dport)
    for seg in segs[1:]:
        f = fast.flows[key]
        assert in_order(f, seg)
        offset = fast.deliver_in_order(f, seg)
        (ev,) = general.add(seg)
        assert isinstance(ev, Data) and offset == ev.offset
    a, b = fast.flows[key], general.flows[key]
    for attr in ("next_seq", "offset", "segments", "payload_bytes", "last_ack", "recent_seq"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.recent is not None and b.recent is not None and bytes(a.recent) == bytes(b.recent)
    assert a.conn.last_ts == b.conn.last_ts


# -- generated streams -----------------------------------------------------------------------

def _request(i: int, trace: int) -> bytes:
    tid = f"{trace:032x}"
    return (f"GET /item/{i} HTTP/1.1\r\nHost: svc:9080\r\nx-request-id: {trace:08x}-0000-4000-8000-"
            f"{i:012x}\r\nx-b3-traceid: {tid}\r\nx-b3-spanid: {i + 1:016x}\r\n"
            f"traceparent: 00-{tid}-{i + 1:016x}-01\r\n\r\n").encode()


def _response(i: int, chunked: bool) -> bytes:
    body = b"{\"n\": %d}" % i + b" " * (i * 37 % 500)
    if chunked:
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body


@st.composite
def _captures(draw: st.DrawFn) -> bytes:
    """One pcap: 1-3 interleaved connections, each an exchange cut at random, with the
    irregular cases sprinkled in."""
    conns = []
    for c in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 6))
        chunked = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        client = b"".join(_request(i, 1000 + c) for i in range(n))
        server = b"".join(_response(i, chunked[i]) for i in range(n))
        if draw(st.booleans()):
            server = b"junk that is no protocol " + server  # detection must wait or give up
        handshake = draw(st.booleans())
        conns.append((c, client, server, handshake))
    packets: list[list[bytes]] = []
    for c, client, server, handshake in conns:
        cip, sip = "127.0.0.6", "10.244.1.10"
        cport, sport = 40000 + c, 9080
        cseq, sseq = 1000 * (c + 1), (1 << 32) - 700  # the server's numbers wrap
        out: list[bytes] = []
        if handshake:
            out.append(ipv4(cip, sip, tcp(cport, sport, cseq - 1, 0, SYN)))
            out.append(ipv4(sip, cip, tcp(sport, cport, sseq - 1, cseq, SYN | ACK)))
        # whole requests and responses alternate, each cut into random pieces
        streams = [(client, True), (server, False)]
        pos = [0, 0]
        while pos[0] < len(client) or pos[1] < len(server):
            for k, (data, from_client) in enumerate(streams):
                if pos[k] >= len(data):
                    continue
                size = draw(st.integers(1, 900))
                piece = data[pos[k] : pos[k] + size]
                seq = (cseq if from_client else sseq) + pos[k]
                ack = (sseq + pos[1]) if from_client else (cseq + pos[0])
                src, dst = (cip, sip) if from_client else (sip, cip)
                sp, dp = (cport, sport) if from_client else (sport, cport)
                out.append(ipv4(src, dst, tcp(sp, dp, seq, ack, PSH | ACK, piece)))
                pos[k] += len(piece)
                if draw(st.integers(0, 2)) == 0:  # the receiver acknowledges it, bare
                    rseq = (sseq + pos[1]) if from_client else (cseq + pos[0])
                    out.append(ipv4(dst, src, tcp(dp, sp, rseq, seq + len(piece), ACK)))
        end = draw(st.sampled_from(["fin", "rst", "none"]))
        if end == "fin":
            out.append(ipv4(cip, sip, tcp(cport, sport, cseq + len(client), sseq + len(server),
                                          FIN | ACK)))
            out.append(ipv4(sip, cip, tcp(sport, cport, sseq + len(server), cseq + len(client) + 1,
                                          FIN | ACK)))
        elif end == "rst":
            out.append(ipv4(sip, cip, tcp(sport, cport, sseq + len(server), 0, RST)))
        # the irregular cases: a packet sent again, two swapped, one lost
        for _ in range(draw(st.integers(0, 4))):
            if len(out) < 2:
                break
            i = draw(st.integers(0, len(out) - 2))
            what = draw(st.sampled_from(["again", "swap", "drop"]))
            if what == "again":
                out.insert(i + 1, out[i])
            elif what == "swap":
                out[i], out[i + 1] = out[i + 1], out[i]
            else:
                del out[i]
        packets.append(out)
    # interleave the connections at random, each keeping its own order
    merged: list[bytes] = []
    while any(packets):
        live = [p for p in packets if p]
        merged.append(live[draw(st.integers(0, len(live) - 1))].pop(0))
    return pcap([(1_700_000_000_000_000_000 + i * 1000, sll2(p)) for i, p in enumerate(merged)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_captures())
def test_generated_streams_identical(data: bytes, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("fp") / "gen.pcap"
    path.write_bytes(data)
    assert _outputs(path, True) == _outputs(path, False)


def _messages_of(path: Path, fast: bool) -> list[dict[str, Any]]:
    return [message_dict(m, True) for m in read_messages(path, fastpath=fast)]


def test_generated_stream_takes_the_lean_path(tmp_path: Path) -> None:
    """A plain keep-alive exchange: after detection, every data segment is lean."""
    out = [ipv4("127.0.0.6", "10.244.1.10", tcp(40000, 9080, 999, 0, SYN)),
           ipv4("10.244.1.10", "127.0.0.6", tcp(9080, 40000, 4999, 1000, SYN | ACK))]
    cseq, sseq = 1000, 5000
    for i in range(20):
        req, resp = _request(i, 7), _response(i, i % 3 == 0)
        out.append(ipv4("127.0.0.6", "10.244.1.10", tcp(40000, 9080, cseq, sseq, PSH | ACK, req)))
        cseq += len(req)
        out.append(ipv4("10.244.1.10", "127.0.0.6", tcp(9080, 40000, sseq, cseq, PSH | ACK, resp)))
        sseq += len(resp)
    path = tmp_path / "keepalive.pcap"
    path.write_bytes(pcap([(i * 1000, sll2(p)) for i, p in enumerate(out)]))
    s = CaptureSummary(str(path))
    fast = [message_dict(m, True) for m in read_messages(path, s, fastpath=True)]
    assert len(fast) == 40
    # the first request is what detection looks at; once it has decided, both directions
    # are HTTP/1 and every later data segment is lean, the server's first one included
    assert s.lean_segments == 40 - 1
    assert fast == _messages_of(path, False)
