"""bench/: the dense shape of gen_capture.py is what issue 10 describes, and run.py's builds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import analyzer
from analyzer import _build as analyzer_build
from analyzer.capture import open_capture
from analyzer.decode.packet import Segment, decode_frame
from analyzer.pipeline import read_messages
from tests.fixtures import ROOT

BENCH = ROOT / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def generate(tmp_path: Path, *args: str) -> tuple[Path, dict[str, int]]:
    out, stats = tmp_path / "c.pcap", tmp_path / "stats.json"
    subprocess.run([sys.executable, str(BENCH / "gen_capture.py"), str(out), "--size-mb", "0.5",
                    "--seed", "3", "--stats-json", str(stats), "-q", *args], check=True)
    return out, json.loads(stats.read_text())


def test_dense_shape(tmp_path: Path) -> None:
    path, written = generate(tmp_path, "--shape", "dense")
    messages = list(read_messages(path))
    kinds = Counter(m.kind for m in messages)
    assert kinds["request"] == written["requests"] > 50
    assert kinds["response"] == written["responses"] == written["requests"]
    # two long keep-alive connections, open before the capture: no SYN, no FIN
    flows = {(m.endpoints.src, m.endpoints.dst, m.endpoints.dport) for m in messages
             if m.kind == "request"}
    assert flows == {("127.0.0.6", "10.244.1.10", 9080), ("10.244.1.10", "127.0.0.1", 15001)}
    assert written["syn_connections"] == written["fin_connections"] == 0
    # one message per segment, every segment within 32 KiB, no ACK-only packet
    with open_capture(path) as reader:
        segments = [decode_frame(f) for f in reader]
    payloads = [len(s.payload) for s in segments if isinstance(s, Segment)]
    assert len(payloads) == len(segments) == written["packets"] == len(messages)
    assert min(payloads) > 0 and max(payloads) <= 32768
    assert all(m.frame == m.first_frame for m in messages)
    # B3 and x-request-id on inbound requests; 2-4 KB response bodies
    for m in messages:
        names = {h.lname for h in m.headers}
        if m.kind == "request" and m.endpoints.dport == 9080:
            assert {b"x-request-id", b"x-b3-traceid", b"x-b3-spanid"} <= names
        if m.kind == "response":
            length = next((int(h.value or b"0") for h in m.headers if h.lname == b"content-length"),
                          None)
            assert length is None or 2000 <= length <= 4000
            assert length is not None or b"transfer-encoding" in names


def test_the_default_shape_is_not_changed_by_the_option(tmp_path: Path) -> None:
    default, _ = generate(tmp_path)
    named = tmp_path / "named.pcap"
    subprocess.run([sys.executable, str(BENCH / "gen_capture.py"), str(named), "--size-mb", "0.5",
                    "--seed", "3", "-q", "--shape", "mesh"], check=True)
    assert named.read_bytes() == default.read_bytes()
    dense = tmp_path / "dense.pcap"
    subprocess.run([sys.executable, str(BENCH / "gen_capture.py"), str(dense), "--size-mb", "0.5",
                    "--seed", "3", "-q", "--shape", "dense"], check=True)
    assert dense.read_bytes() != default.read_bytes()


def test_run_py_builds() -> None:
    run = load("run")
    b = run.parse_build("compiled=/opt/venv/bin/python@/src/tree")
    assert (b.label, b.python, b.cwd) == ("compiled", "/opt/venv/bin/python", Path("/src/tree"))
    b = run.parse_build("/opt/venv/bin/python")
    assert (b.label, b.python, b.cwd) == ("", "/opt/venv/bin/python", None)
    # a build is probed for what it is: this checkout, run by this interpreter, is pure Python
    # unless its pipeline module was compiled in place
    b = run.parse_build(f"here={sys.executable}@{ROOT}")
    run.probe(b, ROOT)
    # the package this interpreter imports: the checkout (editable, pure), or the installed
    # wheel in CI's compiled run
    assert b.source == str(Path(analyzer.__file__).parent)
    assert b.kind == ("compiled" if analyzer_build.compiled() else "pure")
    assert b.name == f"here ({b.kind})"


def test_run_py_target_misses() -> None:
    # issue 10's targets per row: ratios per shape and command, peak RSS per command
    run = load("run")
    tshark = run.Cell("mesh", 50.0, "tshark", "tshark", [], cpu=8.0)

    def cell(command: str, cpu: float, rss: float) -> object:
        return run.Cell("mesh", 50.0, "pure", command, [], cpu=cpu, rss_mib=rss)

    by = {"messages": cell("messages", 1.0, 30), "analyze": cell("analyze", 1.0, 60),
          "analyze json": cell("analyze json", 1.0, 60)}
    assert run.target_misses("mesh", by, tshark) == []
    by["messages"] = cell("messages", 2.0, 55)
    assert run.target_misses("mesh", by, tshark) == ["messages 4.0x < 8x", "messages 55 MiB > 50"]
    # the dense and h2 shapes ask 3x of every command
    assert run.target_misses("h2", {"analyze": cell("analyze", 4.0, 60)}, tshark) == [
        "analyze 2.0x < 3x"]
