"""Memory on bench/adversarial.py's inputs, measured as a user meets it: the peak RSS of fresh
``python -m analyzer`` processes on the same shape at two sizes (issue 9: flat in file size,
proportional at most to the connections open at once)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.fixtures import ROOT

# the child's peak RSS (KiB), measured by a wrapper process that only waits for it
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
         "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _peak_kib(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-m", "analyzer", *args],
                         capture_output=True, text=True, check=True, cwd=ROOT, timeout=600)
    return int(out.stdout)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_adversarial", ROOT / "bench" / "adversarial.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_connections_of_unknown_bytes_cost_their_bookkeeping_not_their_bytes(tmp_path: Path) -> None:
    """2,500 and then 7,500 connections caught mid-stream, each 5.6 KiB of random bytes that
    no protocol claims. The bytes held while looking for a protocol are bounded over all
    connections (pipeline.DETECT_HELD_BUDGET), so each connection beyond the budget costs
    only its bookkeeping (about 6 KiB), not its bytes too: it cost 11.6 KiB a connection
    before (64 MiB budget: 83 -> 141 MiB from 5,000 to 10,000 connections)."""
    bench = _bench()
    paths = []
    for name, scale in (("small", 0.25), ("large", 0.75)):
        path = tmp_path / f"{name}.pcap"
        with path.open("wb") as f:
            bench.gen_junk(f, scale)
        paths.append(path)
    peaks = [_peak_kib("messages", "--format", "jsonl", str(p)) for p in paths]
    extra_connections = 5000
    assert peaks[1] - peaks[0] <= extra_connections * 8.5, peaks
