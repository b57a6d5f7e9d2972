"""capture/: formats from the magic number, byte orders, resolutions, damage kept as anomalies."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest

from analyzer.capture import open_capture
from analyzer.errors import CaptureError
from tests.packets import Conn, pcap, sll2

PUBLIC = Path(__file__).resolve().parent.parent / "captures" / "public"


def _frames(n: int = 3) -> list[tuple[int, bytes]]:
    c = Conn()
    return [(1_700_000_000_123_456_000 + i * 1000, sll2(p)) for i, p in enumerate(c.handshake()[:n])]


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, nano: bool) -> None:
    frames = _frames()
    f = tmp_path / "x.bin"
    f.write_bytes(pcap(frames, endian=endian, nano=nano))
    with open_capture(f) as r:
        got = list(r)
    assert r.format == "pcap"
    assert [g.number for g in got] == [1, 2, 3]
    assert [g.data for g in got] == [d for _, d in frames]
    assert [g.ts_ns for g in got] == [t for t, _ in frames]
    assert r.linktypes == {276}
    assert r.anomalies == []


def test_nanosecond_precision_kept(tmp_path: Path) -> None:
    f = tmp_path / "ns.pcap"
    f.write_bytes(pcap([(1_700_000_000_000_000_007, sll2(b"\x45" + b"\x00" * 19))], nano=True))
    with open_capture(f) as r:
        assert [x.ts_ns for x in r] == [1_700_000_000_000_000_007]


def test_truncated_last_record_keeps_everything_before(tmp_path: Path) -> None:
    data = pcap(_frames())
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[:-10])
    with open_capture(f) as r:
        got = list(r)
    assert len(got) == 2
    assert [(a.kind, a.frame) for a in r.anomalies] == [("truncated-record", 3)]


def test_truncated_record_header(tmp_path: Path) -> None:
    data = pcap(_frames(1))
    f = tmp_path / "cut.pcap"
    f.write_bytes(data + b"\x01\x02\x03")
    with open_capture(f) as r:
        assert len(list(r)) == 1
    assert [(a.kind, a.frame) for a in r.anomalies] == [("truncated-record", 2)]


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    f = tmp_path / "plain.pcap"  # gzip data under a name that says otherwise
    f.write_bytes(gzip.compress(pcap(_frames())))
    with open_capture(f) as r:
        assert len(list(r)) == 3
    assert r.format == "pcap+gzip"


def test_truncated_gzip_keeps_what_decompressed(tmp_path: Path) -> None:
    frames = [(i * 1000, sll2(b"\x45" + bytes(19) + bytes(range(256)) * 4)) for i in range(50)]
    raw = gzip.compress(pcap(frames), compresslevel=1)
    f = tmp_path / "cut.pcap.gz"
    f.write_bytes(raw[: len(raw) * 2 // 3])
    with open_capture(f) as r:
        got = list(r)
    assert 0 < len(got) < 50
    assert r.anomalies and r.anomalies[-1].kind in ("truncated-record", "truncated-file")


def _block(btype: int, body: bytes, e: str = "<") -> bytes:
    body += b"\x00" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _shb(e: str = "<") -> bytes:
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def _idb(linktype: int, tsresol: int | None = None, e: str = "<") -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\x00" * 3
        opts += struct.pack(e + "HH", 0, 0)
    return _block(1, struct.pack(e + "HHI", linktype, 0, 262144) + opts, e)


def _epb(iface: int, ticks: int, data: bytes, e: str = "<") -> bytes:
    return _block(6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data),
                                 len(data)) + data, e)


def test_pcapng_interfaces_resolutions_and_unknown_blocks(tmp_path: Path) -> None:
    eth = b"\x00" * 12 + b"\x08\x00" + b"\x45" + bytes(19)
    s2 = sll2(b"\x45" + bytes(19))
    data = (
        _shb()
        + _idb(276)  # default resolution: microseconds
        + _idb(1, tsresol=9)
        + _epb(0, 1_700_000_000_000_001, s2)
        + _block(0x0BAE, b"unknown block")  # skipped
        + _block(0x40000BAD, struct.pack("<I", 32473) + b"custom")  # numbered, as Wireshark does
        + _epb(1, 1_700_000_000_000_000_002, eth)
        + _block(3, struct.pack("<I", len(s2)) + s2)  # simple packet block, interface 0
        + _block(2, struct.pack("<HHIIII", 0, 0, 0, 5, len(s2), len(s2)) + s2)  # obsolete PB
    )
    f = tmp_path / "named-like-pcap.pcap"
    f.write_bytes(data)
    with open_capture(f) as r:
        got = list(r)
    assert r.format == "pcapng"
    assert [(g.number, g.linktype, g.interface) for g in got] == [
        (1, 276, 0), (3, 1, 1), (4, 276, 0), (5, 276, 0)
    ]
    assert got[0].ts_ns == 1_700_000_000_000_001_000
    assert got[1].ts_ns == 1_700_000_000_000_000_002
    assert got[2].ts_ns == 0  # an SPB has no timestamp
    assert got[3].ts_ns == 5_000
    assert r.linktypes == {276, 1}
    assert r.anomalies == []


def test_pcapng_two_sections_and_big_endian(tmp_path: Path) -> None:
    s2 = sll2(b"\x45" + bytes(19))
    eth = b"\x00" * 12 + b"\x08\x00" + b"\x45" + bytes(19)
    data = _shb() + _idb(276) + _epb(0, 1, s2) + _shb(">") + _idb(1, e=">") + _epb(0, 2, eth, ">")
    f = tmp_path / "x.pcapng"
    f.write_bytes(data)
    with open_capture(f) as r:
        got = list(r)
    assert [(g.number, g.linktype, g.ts_ns) for g in got] == [(1, 276, 1000), (2, 1, 2000)]


def test_pcapng_truncated_block(tmp_path: Path) -> None:
    s2 = sll2(b"\x45" + bytes(19))
    data = _shb() + _idb(276) + _epb(0, 1, s2) + _epb(0, 2, s2)
    f = tmp_path / "x.pcapng"
    f.write_bytes(data[:-7])
    with open_capture(f) as r:
        assert len(list(r)) == 1
    assert [(a.kind, a.frame) for a in r.anomalies] == [("truncated-record", 2)]


def test_header_only_capture_has_no_frames(tmp_path: Path) -> None:
    f = tmp_path / "h.pcap"
    f.write_bytes(pcap([]))
    with open_capture(f) as r:
        assert list(r) == []
    assert r.anomalies == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "x: not a capture: the file is empty"),
        (b"hello, world\n", "x: not a capture: no pcap or pcapng magic number (starts with 68656c6c)"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("x").write_bytes(content)
    with pytest.raises(CaptureError) as err:
        open_capture("x")
    assert str(err.value) == message


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="cannot read: No such file or directory"):
        open_capture(tmp_path / "missing.pcap")
    with pytest.raises(CaptureError, match="cannot read: Is a directory"):
        open_capture(tmp_path)


def test_public_nanosecond_capture() -> None:
    with open_capture(PUBLIC / "tcp-handshake-nano.pcap") as r:
        frames = list(r)
    assert len(frames) == 3
    assert r.linktypes == {113}
    assert any(f.ts_ns % 1000 for f in frames)  # sub-microsecond digits survive


# -- lengths that decide nothing about memory (issue 9) ----------------------------------------


def _record(data: bytes, caplen: int | None = None, ts: int = 1_700_000_000) -> bytes:
    return struct.pack("<IIII", ts, 0, len(data) if caplen is None else caplen, len(data)) + data


def _pcap_header(snaplen: int) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 276)


def test_absurd_snaplen_is_an_anomaly_and_records_are_read_by_their_length(tmp_path: Path) -> None:
    frames = _frames()
    f = tmp_path / "snap.pcap"
    f.write_bytes(_pcap_header(0xFFFFFFFF) + b"".join(_record(d) for _, d in frames))
    with open_capture(f) as r:
        got = list(r)
    assert [g.data for g in got] == [d for _, d in frames]
    assert [(a.kind, a.frame) for a in r.anomalies] == [("bad-snaplen", None)]
    assert "4294967295" in r.anomalies[0].detail


def test_oversized_record_keeps_its_start_and_later_records(tmp_path: Path) -> None:
    from analyzer.capture.pcap import MAX_RECORD

    frames = _frames()
    big = frames[1][1] + bytes(3 * MAX_RECORD)  # a real record, far over libpcap's ceiling
    f = tmp_path / "big.pcap.gz"
    body = _pcap_header(262144) + _record(frames[0][1]) + _record(big) + _record(frames[2][1])
    f.write_bytes(gzip.compress(body))
    with open_capture(f) as r:
        got = list(r)
    assert [g.number for g in got] == [1, 2, 3]
    assert got[1].data == big[:MAX_RECORD] and got[1].orig_len == len(big)
    assert got[2].data == frames[2][1]
    assert [(a.kind, a.frame) for a in r.anomalies] == [("record-too-big", 2)]


def test_record_claiming_more_than_the_file_is_truncated(tmp_path: Path) -> None:
    frames = _frames()
    f = tmp_path / "claim.pcap"
    f.write_bytes(_pcap_header(0xFFFFFFFF) + _record(frames[0][1]) + _record(b"x" * 100, 1 << 30))
    with open_capture(f) as r:
        got = list(r)
    assert [g.number for g in got] == [1]
    assert [a.kind for a in r.anomalies] == ["bad-snaplen", "truncated-record"]
    assert r.anomalies[1].frame == 2


def test_a_quarter_gib_record_costs_no_quarter_gib(tmp_path: Path) -> None:
    """The record is real (gzip makes the file small): it is read in pieces, never whole."""
    import tracemalloc

    frames = _frames()
    n = 1 << 28
    f = tmp_path / "gib.pcap.gz"
    with gzip.open(f, "wb", compresslevel=1) as gz:
        gz.write(_pcap_header(0xFFFFFFFF) + struct.pack("<IIII", 1, 0, n, n) + frames[0][1])
        zeros = bytes(1 << 22)
        left = n - len(frames[0][1])
        while left > 0:
            gz.write(zeros[: min(left, len(zeros))])
            left -= len(zeros)
        gz.write(_record(frames[1][1]))
    tracemalloc.start()
    try:
        with open_capture(f) as r:
            got = [(g.number, len(g.data)) for g in r]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [(1, 256 * 1024), (2, len(frames[1][1]))]
    assert peak < 16 << 20, peak


def test_pcapng_oversized_packet_block_keeps_its_start(tmp_path: Path) -> None:
    from analyzer.capture.pcap import MAX_RECORD

    frames = _frames()
    big = frames[0][1] + bytes(MAX_RECORD)
    f = tmp_path / "big.pcapng"
    f.write_bytes(_shb() + _idb(276) + _epb(0, 1, big) + _block(4, bytes(1 << 20)) + _epb(0, 2, frames[1][1]))
    with open_capture(f) as r:
        got = list(r)
    assert [len(g.data) for g in got] == [MAX_RECORD, len(frames[1][1])]
    assert got[0].data == big[:MAX_RECORD]
    assert [(a.kind, a.frame) for a in r.anomalies] == [("record-too-big", 1)]
