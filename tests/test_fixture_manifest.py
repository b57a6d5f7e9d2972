"""captures/MANIFEST.json describes the fixture files truthfully, as tshark reads them.

Every listed file exists and has the format the manifest says; every capture file under
captures/ is listed; and tshark (Wireshark's dissectors, independent of tracewire) reads each
readable file with the frame count, TCP connection count and HTTP request and response counts
the manifest gives. Where tshark is known to read a case differently from what it is meant to
test (gaps, a 0-byte file, ...), the entry's "tshark" object says what tshark shows, and why.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
MANIFEST: list[dict[str, Any]] = json.loads((CAPTURES / "MANIFEST.json").read_text())
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz")
ANOMALY_KINDS = {
    "truncated-record",
    "tcp-gap",
    "http1-resync",
    "not-a-capture",
    "tcp-overlap-conflict",
}
TSHARK = shutil.which("tshark") or "tshark"  # installed by the README's test command
MADE_BY = ("record_http1.py", "record_h2.py", "record_pods.py", "record_mesh.py", "craft_edge_cases.py",
           "public:")


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["file"] for e in entries]


READABLE = [e for e in MANIFEST if not e["error"]]
FATAL = [e for e in MANIFEST if e["error"]]


def test_manifest_entries_are_well_formed() -> None:
    files = [e["file"] for e in MANIFEST]
    assert len(files) == len(set(files)), "a file is listed twice"
    for e in MANIFEST:
        assert e["format"] in ("pcap", "pcapng", None), e["file"]
        assert e["error"] in (None, "fatal"), e["file"]
        assert e["made_by"].startswith(MADE_BY), e["file"]
        assert isinstance(e["frames"], int) and isinstance(e["tcp_connections"], int), e["file"]
        frames = [m["frame"] for m in e["http_messages"]]
        assert frames == sorted(frames), f"{e['file']}: messages not in capture order"
        for m in e["http_messages"]:
            assert m["kind"] in ("request", "response"), e["file"]
            assert 1 <= m["frame"] <= e["frames"], e["file"]
            assert ("method" in m) if m["kind"] == "request" else ("status" in m), e["file"]
        for a in e["anomalies"]:
            assert a["kind"] in ANOMALY_KINDS, f"{e['file']}: undocumented anomaly {a['kind']}"
        if e["error"]:
            assert e["frames"] == 0 and not e["http_messages"], e["file"]
            assert [a["kind"] for a in e["anomalies"]] == ["not-a-capture"], e["file"]


def test_every_capture_file_is_listed() -> None:
    on_disk = {
        str(p.relative_to(CAPTURES))
        for p in CAPTURES.rglob("*")
        if p.is_file() and p.name.endswith(CAPTURE_SUFFIXES)
    }
    assert on_disk <= {e["file"] for e in MANIFEST}


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_file_exists_with_the_stated_format(entry: dict[str, Any]) -> None:
    raw = (CAPTURES / entry["file"]).read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == entry["gzip"]
    if entry["gzip"]:
        raw = gzip.decompress(raw)
    magic = raw[:4]
    if entry["format"] == "pcap":
        assert magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    elif entry["format"] == "pcapng":
        assert magic == b"\x0a\x0d\x0d\x0a"
    else:
        assert entry["error"] == "fatal"


def _tshark(path: Path, extra: list[str]) -> tuple[int, list[list[str]]]:
    cmd = [TSHARK, "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", *extra]
    cmd += ["-T", "fields", "-E", "aggregator=,", "-E", "occurrence=a"]
    for field in ("frame.number", "tcp.stream", "http.request.method", "http.response.code"):
        cmd += ["-e", field]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    return proc.returncode, rows


def _count(cell: str) -> int:
    return len([v for v in cell.split(",") if v])


@pytest.mark.parametrize("entry", READABLE, ids=_ids(READABLE))
def test_tshark_reads_what_the_manifest_says(entry: dict[str, Any]) -> None:
    override = entry.get("tshark", {})
    status, rows = _tshark(CAPTURES / entry["file"], override.get("args", []))
    assert status == override.get("exit_status", 0)

    complete = [m for m in entry["http_messages"] if m.get("complete", True)]
    want_requests = override.get("requests", sum(m["kind"] == "request" for m in complete))
    want_responses = override.get("responses", sum(m["kind"] == "response" for m in complete))
    assert len(rows) == override.get("frames", entry["frames"])
    assert len({r[1] for r in rows if r[1]}) == override.get("tcp_connections", entry["tcp_connections"])
    assert sum(_count(r[2]) for r in rows) == want_requests
    assert sum(_count(r[3]) for r in rows) == want_responses


@pytest.mark.parametrize("entry", FATAL, ids=_ids(FATAL))
def test_fatal_files_are_not_captures_to_tshark_either(entry: dict[str, Any]) -> None:
    status, rows = _tshark(CAPTURES / entry["file"], [])
    assert rows == []
    if "tshark" not in entry:  # a 0-byte file is "no packets" to tshark, and says so
        assert status != 0
