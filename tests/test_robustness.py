"""Bad input is normal input: damaged captures give anomalies, never a traceback."""

from __future__ import annotations

import datetime as dt
import random
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analyzer.analysis import analyze
from analyzer.cli import info_dict
from analyzer.errors import CaptureError
from analyzer.pipeline import FIRST_SHOWABLE_NS, LAST_SHOWABLE_NS, CaptureSummary, read_messages
from analyzer.report.messages import message_dict, rfc3339
from tests.fixtures import CAPTURES
from tests.fuzz.mutate import _option, parse, serialise

SOURCES = ["productpage-http1.pcap", "grpc-warm.pcap", "h2c-nghttp.pcap", "pods/reviews.pcap",
           "edge/pcapng-two-interfaces.pcapng"]


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("seed", range(12))
def test_damaged_capture_never_raises(name: str, seed: int, tmp_path: Path) -> None:
    data = bytearray((CAPTURES / name).read_bytes())
    rnd = random.Random(seed)
    for _ in range(rnd.randrange(1, 40)):  # flip bytes after the file header
        data[rnd.randrange(24, len(data))] = rnd.randrange(256)
    if seed % 3 == 0:
        del data[rnd.randrange(24, len(data)):]  # and cut it short
    path = tmp_path / "damaged.pcap"
    path.write_bytes(bytes(data))
    summary = CaptureSummary("x")
    try:
        messages = list(read_messages(path, summary))
        analyze([path])
    except CaptureError:
        return  # a damaged header can make it no capture at all: one line, exit 2
    assert summary.frames >= 0 and all(m.frame >= 1 for m in messages)


# --- timestamps no date can show (pcapng if_tsoffset / if_tsresol say anything) -----------

def _retimed(source: str, option: bytes) -> bytes:
    """``source`` with ``option`` put first among every interface block's options."""
    p = parse((CAPTURES / source).read_bytes())
    assert p is not None and p.fmt == "pcapng"
    for r in p.records:
        if r.kind == "idb":
            r.data[8:8] = option
            if len(r.data) == 8 + len(option):
                r.data += b"\x00" * 4  # opt_endofopt
    return serialise(p)


TSOFFSET, TSRESOL = 14, 9
RETIMINGS = {
    "offset-far-future": _option("<", TSOFFSET, struct.pack("<q", 2**62)),
    "offset-far-past": _option("<", TSOFFSET, struct.pack("<q", -(2**62))),
    "offset-max": _option("<", TSOFFSET, struct.pack("<q", 2**63 - 1)),
    "resolution-seconds": _option("<", TSRESOL, b"\x00"),  # microsecond ticks read as seconds
}


@pytest.mark.parametrize("case", sorted(RETIMINGS))
def test_timestamp_out_of_range_is_an_anomaly_and_a_raw_number(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.pcapng"
    path.write_bytes(_retimed("edge/pcapng-named.pcap", RETIMINGS[case]))
    summary = CaptureSummary("x")
    messages = list(read_messages(path, summary))
    assert messages and summary.first_ts is not None
    bad = [a for a in summary.anomalies if a.kind == "bad-timestamp"]
    assert [a.frame for a in bad] == [1]
    assert f"{summary.frames} frame(s) like it" in bad[0].detail
    for m in messages:
        assert message_dict(m)["ts"] == str(m.ts_ns)  # the raw number, nothing invented
    info = info_dict(summary)
    assert info["first_ts"] == str(summary.first_ts) and info["last_ts"] == str(summary.last_ts)
    analyze([path])  # and the analysis does not mind either


def test_negative_timestamp_before_1970_is_still_a_date(tmp_path: Path) -> None:
    path = tmp_path / "past.pcapng"
    path.write_bytes(_retimed("edge/pcapng-named.pcap",
                              _option("<", TSOFFSET, struct.pack("<q", -(10**10)))))
    summary = CaptureSummary("x")
    messages = list(read_messages(path, summary))
    assert not [a for a in summary.anomalies if a.kind == "bad-timestamp"]
    assert all(message_dict(m)["ts"].startswith("17") for m in messages)  # the 1700s


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_rfc3339_never_raises_and_is_exact_when_it_is_a_date(ts: int) -> None:
    shown = rfc3339(ts)
    sec, ns = divmod(ts, 1_000_000_000)
    if FIRST_SHOWABLE_NS <= ts <= LAST_SHOWABLE_NS:
        d = dt.datetime.fromisoformat(shown[:19]).replace(tzinfo=dt.timezone.utc)
        back = (d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(seconds=1)
        assert (back, int(shown[20:29]), shown[-1]) == (sec, ns, "Z")
    else:
        assert shown == str(ts)


def test_rfc3339_edges() -> None:
    assert rfc3339(FIRST_SHOWABLE_NS) == "0001-01-01T00:00:00.000000000Z"
    assert rfc3339(LAST_SHOWABLE_NS) == "9999-12-31T23:59:59.999999999Z"
    assert rfc3339(LAST_SHOWABLE_NS + 1) == str(LAST_SHOWABLE_NS + 1)
    assert rfc3339(FIRST_SHOWABLE_NS - 1) == str(FIRST_SHOWABLE_NS - 1)
    assert rfc3339(-1) == "1969-12-31T23:59:59.999999999Z"
    # the second remembered at start-up (the epoch) is formatted right on first use
    assert rfc3339(5) == "1970-01-01T00:00:00.000000005Z"
    assert rfc3339(1_000_000_000) == "1970-01-01T00:00:01.000000000Z"
