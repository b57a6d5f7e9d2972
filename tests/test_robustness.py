"""Bad input is normal input: damaged captures give anomalies, never a traceback."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from analyzer.analysis import analyze
from analyzer.errors import CaptureError
from analyzer.pipeline import CaptureSummary, read_messages
from tests.fixtures import CAPTURES

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
