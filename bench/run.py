#!/usr/bin/env python3
"""Time tracewire against tshark on the same capture, in the same run, and check the targets.

    python bench/run.py [--size-mb 200] [--capture FILE] [--keep]
    python bench/run.py --sizes 50,100,200
    python bench/run.py --h2 [--size-mb 100] [--capture FILE --truth FILE] [--sizes 50,100]

Each tool runs in a fresh ``python -c`` wrapper process that starts it, waits, and reports the
wall-clock time and ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak RSS of that one tool
(ru_maxrss is a maximum over all waited-for children, so measuring two tools from one parent
would report the larger of the two for the second one).

Targets: tracewire at least 3x faster than tshark (wall clock, same file, same machine, same
run), tracewire peak RSS under 100 MiB, and tracewire finding every request (the generator's
count, or tshark's for a capture given with --capture).

--h2 benchmarks HTTP/2 instead: a gRPC-over-h2c capture that starts mid-connection
(``gen_h2_capture.py``, with its ground truth), ``tracewire messages --format jsonl`` against
``tshark -d tcp.port==N,http2 -Y http2.type==1 -T fields -e http2.header.name -e
http2.header.value``, and for each tool the header fields it recovered, left unknown, guessed
and got wrong, checked against the truth. Targets: tracewire at least 10x faster, peak RSS
under 100 MiB, no wrong header.

--shapes mesh,dense,h2 measures issue 10's table in one run: for each shape (``mesh``: the
generator's many interleaved connections; ``dense``: ``gen_capture.py --shape dense``; ``h2``:
``gen_h2_capture.py``) and each size, ``messages --format jsonl``, ``analyze`` and ``analyze
--format json`` of every build given with ``--python`` against the shape's tshark command,
each tool best of ``--repeat``; the ratio is tshark's CPU time over tracewire's. Peak RSS per
size shows whether memory is flat. The summary names the targets of issue 10 each row misses
(RATIO_TARGETS, RSS_TARGETS); they do not change the exit status (0 unless trouble).

Exit status: 0 targets met, 1 not met, 2 trouble (a tool failed, the generator failed, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GEN = BENCH / "gen_capture.py"
GEN_H2 = BENCH / "gen_h2_capture.py"
H2_PORTS = (15001, 50051)  # gen_h2_capture.py's servers: Envoy's outbound listener, the app
AGGREGATOR = "\x1f"  # between tshark's repeated field values: header values contain commas
SHOWN_AGGREGATOR = "\\x1f"

# Runs one command with stdout/stderr to files; prints its time and peak RSS as JSON.
WRAPPER = r"""
import json, resource, subprocess, sys, time
cmd, out_path, err_path, cwd = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(out_path, "wb") as out, open(err_path, "wb") as err:
    t0 = time.perf_counter()
    try:
        rc = subprocess.run(cmd, stdout=out, stderr=err, cwd=cwd).returncode
    except OSError as exc:
        err.write(f"cannot run {cmd[0]!r}: {exc}\n".encode())
        rc = 127
    seconds = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "seconds": seconds, "maxrss_kib": ru.ru_maxrss,
                  "user": ru.ru_utime, "sys": ru.ru_stime}))
"""


class Trouble(Exception):
    """Something kept the benchmark from measuring: exit status 2."""


@dataclass
class Measurement:
    tool: str
    cmd: list[str]
    seconds: float
    rss_mib: float
    user: float
    sys: float
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Row:
    """Both tools on one capture."""

    capture: Path
    size_mib: float
    written: dict[str, Any] | None  # the generator's stats, when we generated the file
    tracewire: Measurement
    tshark: Measurement

    @property
    def ratio(self) -> float:
        return self.tshark.seconds / max(self.tracewire.seconds, 1e-9)

    @property
    def expected_requests(self) -> int:
        if self.written is not None:
            return int(self.written["requests"])
        return self.tshark.counts["requests"]


def gnu_time() -> str | None:
    """/usr/bin/time if it is GNU time (Debian package ``time``), else None."""
    path = shutil.which("time", path="/usr/bin:/bin")
    if path is None:
        return None
    proc = subprocess.run([path, "--version"], capture_output=True, text=True)
    return path if "GNU" in proc.stdout + proc.stderr else None


def measure(tool: str, cmd: list[str], out: Path, err: Path, time_bin: str | None,
            cwd: Path = REPO) -> Measurement:
    """Run ``cmd`` once in a fresh wrapper process: wall-clock seconds and peak RSS.

    A child's ru_maxrss includes what its parent had mapped when it forked, so the Python
    wrapper's own ~14 MiB is a floor under any tool it starts directly. With GNU time in
    between, the floor is GNU time's ~2 MiB and %M is the tool's own peak.
    """
    rss_file = err.with_suffix(".rss")  # beside stderr: stdout may be /dev/null
    run_cmd = [time_bin, "-f", "%M", "-o", str(rss_file), *cmd] if time_bin else cmd
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, json.dumps(run_cmd), str(out), str(err), str(cwd)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise Trouble(f"measuring wrapper for {tool} failed: {proc.stderr.strip()}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        tail = err.read_bytes()[-2000:].decode(errors="replace").strip()
        raise Trouble(f"{tool} exited with status {res['rc']}: {shlex.join(cmd)}\n{tail}")
    rss_kib = res["maxrss_kib"]
    if time_bin:
        rss_kib = int(rss_file.read_text().split()[-1])
    return Measurement(tool, cmd, res["seconds"], rss_kib / 1024, res["user"], res["sys"])


def _kind(obj: dict[str, Any]) -> str | None:
    """Request or response, from whatever shape tracewire's JSON lines take."""
    for key in ("kind", "type", "message_type", "msg_type", "message", "role", "direction"):
        v = obj.get(key)
        if isinstance(v, str):
            lv = v.lower()
            if lv in ("request", "req", "http-request", "http_request"):
                return "request"
            if lv in ("response", "resp", "res", "http-response", "http_response"):
                return "response"
    if any(k in obj for k in ("method", "request_line", "uri", "target")):
        return "request"
    if any(k in obj for k in ("status", "status_code", "status_line", "reason")):
        return "response"
    return None


def count_jsonl(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    with path.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            counts["lines"] += 1
            try:
                obj = json.loads(line)
            except ValueError:
                counts["unparsed"] += 1
                continue
            kind = _kind(obj) if isinstance(obj, dict) else None
            if kind is None and isinstance(obj, dict):  # one level down, e.g. {"message": {..}}
                for v in obj.values():
                    if isinstance(v, dict) and (kind := _kind(v)):
                        break
            counts[kind or "other"] += 1
    return {"lines": counts["lines"], "requests": counts["request"],
            "responses": counts["response"], "other": counts["other"],
            "unparsed": counts["unparsed"]}


def count_lines(path: Path) -> dict[str, int]:
    with path.open("rb") as f:
        n = sum(1 for line in f if line.strip())
    return {"lines": n, "requests": n}


def warm(path: Path) -> None:
    """Read the capture once so neither tool pays for a cold page cache."""
    with path.open("rb") as f:
        while f.read(8 << 20):
            pass


def tracewire_cmd(template: str | None, capture: Path) -> list[str]:
    if template is None:
        base = ["tracewire"] if shutil.which("tracewire") else [sys.executable, "-m", "analyzer"]
        return [*base, "messages", "--format", "jsonl", str(capture)]
    parts = shlex.split(template)
    if not any("{file}" in p or p == "FILE" for p in parts):
        parts.append("{file}")
    return [str(capture) if p == "FILE" else p.replace("{file}", str(capture)) for p in parts]


def generate(out: Path, size_mb: float, seed: int) -> dict[str, Any]:
    stats = out.with_suffix(".stats.json")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(GEN), str(out), "--size-mb", str(size_mb), "--seed", str(seed),
         "--stats-json", str(stats)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise Trouble(f"generator failed:\n{proc.stdout}{proc.stderr}")
    print(proc.stdout.strip(), f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    result: dict[str, Any] = json.loads(stats.read_text())
    return result


def bench_one(capture: Path, written: dict[str, Any] | None, work: Path,
              args: argparse.Namespace) -> Row:
    tag = capture.stem
    tw_cmd = tracewire_cmd(args.tracewire_cmd, capture)
    ts_cmd = [args.tshark, "-r", str(capture), "-Y", "http.request", "-T", "fields",
              "-e", "http.request.line"]
    warm(capture)
    best: dict[str, Measurement] = {}
    for i in range(args.repeat):
        order = [("tracewire", tw_cmd), ("tshark", ts_cmd)]
        for tool, cmd in order if i % 2 == 0 else order[::-1]:
            print(f"  running {tool}: {shlex.join(cmd)}", flush=True)
            m = measure(tool, cmd, work / f"{tag}.{tool}.out", work / f"{tag}.{tool}.err",
                        args.time_bin)
            print(f"    {m.seconds:.2f} s, peak RSS {m.rss_mib:.1f} MiB", flush=True)
            prev = best.get(tool)
            if prev is not None:  # fastest time, highest peak
                m.seconds = min(m.seconds, prev.seconds)
                m.rss_mib = max(m.rss_mib, prev.rss_mib)
            best[tool] = m
    best["tracewire"].counts = count_jsonl(work / f"{tag}.tracewire.out")
    best["tshark"].counts = count_lines(work / f"{tag}.tshark.out")
    size_mib = capture.stat().st_size / 1048576
    return Row(capture, size_mib, written, best["tracewire"], best["tshark"])


def checks(row: Row, args: argparse.Namespace) -> list[tuple[bool, str]]:
    tw = row.tracewire
    found, expected = tw.counts["requests"], row.expected_requests
    source = "written by the generator" if row.written is not None else "found by tshark"
    out = [
        (row.ratio >= args.min_speedup,
         f"tracewire >= {args.min_speedup:g}x faster than tshark: {row.ratio:.2f}x"),
        (tw.rss_mib < args.max_rss_mib,
         f"tracewire peak RSS < {args.max_rss_mib:g} MiB: {tw.rss_mib:.1f} MiB"),
    ]
    if not args.no_count_check:
        out.append((found == expected,
                    f"tracewire found every request: {found} of {expected} ({source})"))
    return out


def fmt_int(counts: dict[str, int], key: str) -> str:
    return str(counts[key]) if key in counts else "–"


def report_single(row: Row, args: argparse.Namespace) -> bool:
    w = row.written
    print()
    head = f"## {row.capture.name}: {row.size_mib:.1f} MiB"
    if w is not None:
        head += (f", {w['packets']} packets, {w['requests']} requests and {w['responses']} "
                 f"responses written (seed {w['seed']})")
    print(head + "\n")
    print("| tool | seconds | peak RSS MiB | requests found | responses found |")
    print("|---|---:|---:|---:|---:|")
    for m in (row.tracewire, row.tshark):
        print(f"| {m.tool} | {m.seconds:.2f} | {m.rss_mib:.1f} | {fmt_int(m.counts, 'requests')}"
              f" | {fmt_int(m.counts, 'responses')} |")
    extra = {k: v for k, v in row.tracewire.counts.items() if k in ("other", "unparsed") and v}
    if extra:
        print(f"\ntracewire also printed {extra} lines that are neither request nor response")
    print(f"\nspeed ratio (tshark seconds / tracewire seconds): {row.ratio:.2f}x\n")
    return print_checks(checks(row, args))


def print_checks(results: list[tuple[bool, str]]) -> bool:
    for ok, text in results:
        print(f"- [{'x' if ok else ' '}] {'PASS' if ok else 'FAIL'} {text}")
    return all(ok for ok, _ in results)


def report_sizes(rows: list[Row], args: argparse.Namespace) -> bool:
    print("\n| capture MiB | requests written | tracewire s | tracewire RSS MiB | "
          "tracewire requests | tshark s | tshark RSS MiB | tshark requests | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        written = str(r.written["requests"]) if r.written is not None else "–"
        print(f"| {r.size_mib:.1f} | {written} | {r.tracewire.seconds:.2f} | "
              f"{r.tracewire.rss_mib:.1f} | {r.tracewire.counts['requests']} | "
              f"{r.tshark.seconds:.2f} | {r.tshark.rss_mib:.1f} | {r.tshark.counts['requests']} "
              f"| {r.ratio:.2f}x |")
    first, last = rows[0], rows[-1]
    if len(rows) > 1:
        print(f"\npeak RSS from {first.size_mib:.0f} to {last.size_mib:.0f} MiB of capture: "
              f"tracewire x{last.tracewire.rss_mib / max(first.tracewire.rss_mib, 1e-9):.2f}, "
              f"tshark x{last.tshark.rss_mib / max(first.tshark.rss_mib, 1e-9):.2f}")
    ok = True
    for r in rows:
        print(f"\n{r.size_mib:.0f} MiB:")
        ok = print_checks(checks(r, args)) and ok
    return ok


# --------------------------------------------------------------------------- HTTP/2 mode


@dataclass
class H2Score:
    """How one tool's header fields compare with the generator's truth."""

    blocks: int = 0  # header blocks (tracewire) or frames with HEADERS (tshark) printed
    matched_blocks: int = 0  # of those, found in the truth
    fields: int = 0  # fields printed
    known: int = 0  # name and value both given, not guessed
    right: int = 0  # known and equal to the truth
    unknown: int = 0  # name or value not given
    guessed: int = 0  # name offered from the value's shape ("guessed": true)
    guessed_right: int = 0
    wrong: int = 0  # a given name or value (not a guess) that differs from the truth
    wrong_guess: int = 0  # a guessed name that differs from the truth
    beyond_truth: int = 0  # known and right although the truth says no decoder can know it
    misaligned_blocks: int = 0  # blocks whose field count differs from the truth's
    unmatched_blocks: int = 0  # blocks printed that the truth does not have
    frame_differs: int = 0  # blocks reported in another frame than the one completing them
    truth_blocks: int = 0  # blocks in the truth
    truth_fields: int = 0
    truth_knowable: int = 0  # fields a decoder starting with the capture can know
    missed_blocks: int = 0  # truth blocks the tool did not print
    examples: list[str] = field(default_factory=list)  # a few wrong ones, for the report

    def note(self, text: str, kind: str = "wrong") -> None:
        """Keep a few examples of each kind of difference for the report."""
        if sum(e.startswith(f"[{kind}]") for e in self.examples) < 4:
            self.examples.append(f"[{kind}] {text}")


@dataclass
class H2Row:
    capture: Path
    size_mib: float
    written: dict[str, Any] | None
    truth: Path | None
    tracewire: Measurement
    tshark: Measurement
    tw_score: H2Score
    ts_score: H2Score

    @property
    def ratio(self) -> float:
        return self.tshark.seconds / max(self.tracewire.seconds, 1e-9)


def generate_h2(out: Path, size_mb: float, seed: int) -> dict[str, Any]:
    stats = out.with_suffix(".stats.json")
    truth = out.with_suffix(".truth.jsonl")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(GEN_H2), str(out), "--size-mb", str(size_mb), "--seed", str(seed),
         "--truth", str(truth), "--stats-json", str(stats)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise Trouble(f"generator failed:\n{proc.stdout}{proc.stderr}")
    print(proc.stdout.strip(), f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    result: dict[str, Any] = json.loads(stats.read_text())
    return result


def tshark_h2_cmd(tshark: str, capture: Path, ports: list[int], extra: list[str] | None = None) -> list[str]:
    cmd = [tshark, "-n", "-r", str(capture), *(extra or [])]
    for port in ports:
        cmd += ["-d", f"tcp.port=={port},http2"]
    return [*cmd, "-Y", "http2.type==1", "-T", "fields", "-E", f"aggregator={AGGREGATOR}",
            "-e", "frame.number", "-e", "http2.header.name", "-e", "http2.header.value"]


_REDACTED = re.compile(r"<redacted, (\d+) bytes>")


def _same_value(shown: str, true: str) -> bool:
    if shown == true:
        return True
    m = _REDACTED.fullmatch(shown)
    return m is not None and int(m.group(1)) == len(true.encode())


class Truth:
    """The generator's truth, read lazily in capture order (it can be larger than memory)."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("rb")
        head = json.loads(self.file.readline())
        if head.get("truth") != "gen_h2_capture":
            raise Trouble(f"{path}: not a gen_h2_capture.py truth file")
        self.endpoints: dict[tuple[str, str], tuple[int, str]] = {}
        for c in head["connections"]:
            self.endpoints[(c["client"], c["server"])] = (c["conn"], "c2s")
            self.endpoints[(c["server"], c["client"])] = (c["conn"], "s2c")
        self.last_frame = 0
        self.done = False

    def records(self) -> Iterator[dict[str, Any]]:
        for line in self.file:
            rec: dict[str, Any] = json.loads(line)
            self.last_frame = rec["frame"]
            yield rec
        self.done = True
        self.file.close()


def _count_truth(score: H2Score, rec: dict[str, Any]) -> None:
    score.truth_blocks += 1
    score.truth_fields += len(rec["headers"])
    score.truth_knowable += rec["known"].count("1")


def _compare_field(score: H2Score, shown: dict[str, Any], true: list[str], knowable: bool,
                   where: str) -> None:
    """One printed field against the true one at the same position."""
    name, value = shown.get("name"), shown.get("value")
    tname, tvalue = true
    if shown.get("guessed"):
        score.guessed += 1
        if name == tname:
            score.guessed_right += 1
        else:
            score.wrong_guess += 1
        if value is not None and not _same_value(value, tvalue):
            score.wrong += 1
            score.note(f"{where}: value {value!r}, truth {tname}: {tvalue!r}")
        return
    if name is not None and value is not None and "unknown" not in shown:
        score.known += 1
        if name == tname and _same_value(value, tvalue):
            score.right += 1
            score.beyond_truth += not knowable
        else:
            score.wrong += 1
            score.note(f"{where}: {name}: {value!r}, truth {tname}: {tvalue!r}")
        return
    score.unknown += 1
    if (name is not None and name != tname) or (value is not None and not _same_value(value, tvalue)):
        score.wrong += 1
        score.note(f"{where}: partly known {name!r}: {value!r}, truth {tname}: {tvalue!r}")


def _compare_block(score: H2Score, shown: list[dict[str, Any]], rec: dict[str, Any], where: str) -> None:
    true, known = rec["headers"], rec["known"]
    pairs = list(zip(true, known, strict=True))
    if len(shown) != len(true):  # perhaps the pseudo-header fields are elsewhere
        regular = [(t, k) for t, k in pairs if not t[0].startswith(":")]
        pseudo_shown = any(str(item.get("name") or "").startswith(":") for item in shown)
        if len(shown) == len(regular) and not pseudo_shown:
            pairs = regular
        else:
            score.misaligned_blocks += 1
            score.note(f"{where}: {len(shown)} fields, truth {len(true)}", "count")
            pairs = pairs[: len(shown)]
    for item, (t, k) in zip(shown, pairs, strict=False):
        _compare_field(score, item, t, k == "1", where)


LOOKAHEAD_FRAMES = 20_000  # how far past a message the truth is read to find its block
FORGET_FRAMES = 200_000  # truth blocks this far behind the output are counted as missed


def _count_fields(score: H2Score, headers: list[dict[str, Any]]) -> None:
    """Without a truth: what the tool says it knows."""
    for item in headers:
        if item.get("guessed"):
            score.guessed += 1
        elif item.get("name") is not None and item.get("value") is not None and "unknown" not in item:
            score.known += 1
        else:
            score.unknown += 1


def score_tracewire(out: Path, truth_path: Path | None) -> H2Score:
    """tracewire's h2 messages (JSON lines) against the truth.

    A block is found by connection, direction, stream and kind (request, response,
    trailers): each occurs once per stream. tracewire prints a response's trailers inside
    the response (``"trailers"``); a separate message of kind "trailers" is taken too. The
    frame of a request or response must be the truth's (the frame carrying the block's last
    byte); a different one is counted in ``frame_differs``.
    """
    score = H2Score()
    truth = Truth(truth_path) if truth_path is not None else None
    source = truth.records() if truth is not None else iter(())
    pending: dict[tuple[int, str, int, str], dict[str, Any]] = {}

    def find(key: tuple[int, str, int, str], frame: int) -> dict[str, Any] | None:
        assert truth is not None
        while key not in pending and not truth.done and truth.last_frame <= frame + LOOKAHEAD_FRAMES:
            rec = next(source, None)
            if rec is None:
                break
            _count_truth(score, rec)
            pending[(rec["conn"], rec["dir"], rec["stream"], rec["kind"])] = rec
        return pending.pop(key, None)

    def forget(frame: int) -> None:
        for key in [k for k, rec in pending.items() if rec["frame"] < frame - FORGET_FRAMES]:
            del pending[key]
            score.missed_blocks += 1

    with out.open("rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("protocol") != "h2":
                continue
            kind = str(msg.get("kind"))
            blocks = [(kind, msg.get("headers") or [])]
            if msg.get("trailers"):
                blocks.append(("trailers", msg["trailers"]))
            score.blocks += len(blocks)
            score.fields += sum(len(h) for _, h in blocks)
            if truth is None:
                for _, headers in blocks:
                    _count_fields(score, headers)
                continue
            frame = int(msg.get("frame") or 0)
            conn = msg.get("connection") or {}
            ends = (f"{conn.get('src')}:{conn.get('sport')}", f"{conn.get('dst')}:{conn.get('dport')}")
            cid, direction = truth.endpoints.get(ends, (0, ""))
            for block_kind, headers in blocks:
                where = f"frame {frame} stream {msg.get('stream')} {block_kind}"
                rec = find((cid, direction, cast(int, msg.get("stream")), block_kind), frame)
                if rec is None:
                    score.unmatched_blocks += 1
                    score.note(f"{where}: not in the truth", "unmatched")
                    continue
                score.matched_blocks += 1
                if block_kind != "trailers" or kind == "trailers":
                    if rec["frame"] != frame:
                        score.frame_differs += 1
                        score.note(f"{where}: frame {frame}, truth {rec['frame']}", "frame")
                _compare_block(score, headers, rec, where)
            if score.blocks % 65536 < len(blocks):
                forget(frame)
    if truth is not None:
        score.missed_blocks += len(pending)
        for rec in source:
            _count_truth(score, rec)
            score.missed_blocks += 1
    return score


def score_tshark(out: Path, truth_path: Path | None) -> H2Score:
    """tshark prints one line per frame with the names and values of every HEADERS frame in
    it; compared with the truth blocks that end in that frame, in order."""
    score = H2Score()
    truth = Truth(truth_path) if truth_path is not None else None
    source = truth.records() if truth is not None else iter(())
    ahead: dict[str, Any] | None = None

    def blocks_in(frame: int) -> list[dict[str, Any]]:
        nonlocal ahead
        found: list[dict[str, Any]] = []
        while True:
            rec = ahead if ahead is not None else next(source, None)
            ahead = None
            if rec is None:
                return found
            if rec["frame"] < frame:
                _count_truth(score, rec)
                score.missed_blocks += 1
                continue
            if rec["frame"] > frame:
                ahead = rec
                return found
            _count_truth(score, rec)
            found.append(rec)

    with out.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or not parts[0].isdigit():
                continue
            frame = int(parts[0])
            names = parts[1].split(AGGREGATOR) if parts[1] else []
            values = parts[2].split(AGGREGATOR) if parts[2] else []
            values += [""] * (len(names) - len(values))
            score.blocks += 1
            score.fields += len(names)
            shown = [{"name": n, "value": v} if n != "<unknown>" else {"name": None, "value": None}
                     for n, v in zip(names, values, strict=False)]
            if truth is None:
                unknown = sum(1 for s in shown if s["name"] is None)
                score.unknown += unknown
                score.known += len(shown) - unknown
                continue
            recs = blocks_in(frame)
            if not recs:
                score.note(f"frame {frame}: not in the truth", "unmatched")
                continue
            score.matched_blocks += len(recs)
            merged = {"headers": [h for r in recs for h in r["headers"]],
                      "known": "".join(r["known"] for r in recs)}
            _compare_block(score, shown, merged, f"frame {frame}")
    if truth is not None:
        while blocks_in(1 << 62):
            pass
        if ahead is not None:
            _count_truth(score, ahead)
            score.missed_blocks += 1
            ahead = None
        for rec in source:
            _count_truth(score, rec)
            score.missed_blocks += 1
    return score


def bench_one_h2(capture: Path, written: dict[str, Any] | None, truth: Path | None, work: Path,
                 args: argparse.Namespace) -> H2Row:
    tag = capture.stem
    ports = args.h2_ports or (written or {}).get("server_ports") or list(H2_PORTS)
    tw_cmd = tracewire_cmd(args.tracewire_cmd, capture)
    ts_cmd = tshark_h2_cmd(args.tshark, capture, [int(p) for p in ports], shlex.split(args.tshark_extra))
    warm(capture)
    best: dict[str, Measurement] = {}
    for i in range(args.repeat):
        order = [("tracewire", tw_cmd), ("tshark", ts_cmd)]
        for tool, cmd in order if i % 2 == 0 else order[::-1]:
            shown = shlex.join(cmd).replace(AGGREGATOR, SHOWN_AGGREGATOR)
            print(f"  running {tool}: {shown}", flush=True)
            m = measure(tool, cmd, work / f"{tag}.{tool}.out", work / f"{tag}.{tool}.err",
                        args.time_bin)
            print(f"    {m.seconds:.2f} s, peak RSS {m.rss_mib:.1f} MiB", flush=True)
            prev = best.get(tool)
            if prev is not None:
                m.seconds = min(m.seconds, prev.seconds)
                m.rss_mib = max(m.rss_mib, prev.rss_mib)
            best[tool] = m
    print("  comparing with the truth" if truth else "  counting (no truth file)", flush=True)
    tw_score = score_tracewire(work / f"{tag}.tracewire.out", truth)
    ts_score = score_tshark(work / f"{tag}.tshark.out", truth)
    size_mib = capture.stat().st_size / 1048576
    return H2Row(capture, size_mib, written, truth, best["tracewire"], best["tshark"], tw_score, ts_score)


def checks_h2(row: H2Row, args: argparse.Namespace) -> list[tuple[bool, str]]:
    tw = row.tw_score
    out = [
        (row.ratio >= args.min_speedup,
         f"tracewire >= {args.min_speedup:g}x faster than tshark: {row.ratio:.2f}x"),
        (row.tracewire.rss_mib < args.max_rss_mib,
         f"tracewire peak RSS < {args.max_rss_mib:g} MiB: {row.tracewire.rss_mib:.1f} MiB"),
    ]
    if row.truth is not None:
        out.append((tw.wrong == 0, f"tracewire printed no wrong header field: {tw.wrong} wrong"))
        if not args.no_count_check:
            out.append((tw.blocks > 0 and tw.missed_blocks == 0,
                        f"tracewire printed every header block: {tw.matched_blocks} of "
                        f"{tw.truth_blocks}"))
    return out


def _score_cells(m: Measurement, sc: H2Score, truth: bool) -> str:
    right = f" ({sc.right} right)" if truth else ""
    guessed = f"{sc.guessed} ({sc.guessed_right} right)" if truth else str(sc.guessed)
    wrong = str(sc.wrong) if truth else "–"
    return (f"| {m.tool} | {m.seconds:.2f} | {m.rss_mib:.1f} | {sc.blocks} | {sc.known}{right} | "
            f"{sc.unknown} | {guessed} | {wrong} |")


def report_h2(rows: list[H2Row], args: argparse.Namespace) -> bool:
    ok = True
    for row in rows:
        w = row.written
        head = f"\n## h2: {row.capture.name}: {row.size_mib:.1f} MiB"
        if w is not None:
            head += (f", {w['packets']} packets, {w['calls']} calls on {w['connections']} connections, "
                     f"{w['request_blocks'] + w['response_blocks'] + w['trailer_blocks']} header blocks, "
                     f"{w['header_fields']} fields, {w['header_fields'] - w['unknowable_fields']} of them "
                     f"knowable from the capture (seed {w['seed']})")
        print(head + "\n")
        truth = row.truth is not None
        print("| tool | seconds | peak RSS MiB | blocks printed¹ | fields known | fields unknown | "
              "guessed | wrong |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(_score_cells(row.tracewire, row.tw_score, truth))
        print(_score_cells(row.tshark, row.ts_score, truth))
        print("\n¹ tracewire: messages with \"protocol\": \"h2\"; tshark: frames with a HEADERS frame")
        for name, sc in (("tracewire", row.tw_score), ("tshark", row.ts_score)):
            if not truth:
                continue
            print(f"\n{name}: {sc.matched_blocks} of {sc.truth_blocks} true blocks matched, "
                  f"{sc.missed_blocks} missed, {sc.unmatched_blocks} not in the truth, "
                  f"{sc.misaligned_blocks} with another field count, {sc.frame_differs} in another "
                  f"frame; "
                  f"{sc.right} of {sc.truth_knowable} knowable fields recovered"
                  + (f", {sc.beyond_truth} more than the truth allows" if sc.beyond_truth else "")
                  + (f"; {sc.wrong_guess} wrong guesses" if sc.wrong_guess else ""))
            for ex in sc.examples:
                print(f"  e.g. {ex}")
        print(f"\nspeed ratio (tshark seconds / tracewire seconds): {row.ratio:.2f}x\n")
        ok = print_checks(checks_h2(row, args)) and ok
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"\npeak RSS from {first.size_mib:.0f} to {last.size_mib:.0f} MiB of capture: "
              f"tracewire x{last.tracewire.rss_mib / max(first.tracewire.rss_mib, 1e-9):.2f}, "
              f"tshark x{last.tshark.rss_mib / max(first.tshark.rss_mib, 1e-9):.2f}")
    return ok


def run_h2(args: argparse.Namespace, work: Path) -> bool:
    rows: list[H2Row] = []
    if args.capture is not None:
        capture = args.capture.resolve()
        truth, stats = args.truth, capture.with_suffix(".stats.json")
        if truth is None and capture.with_suffix(".truth.jsonl").is_file():
            truth = capture.with_suffix(".truth.jsonl")  # as generate_h2 names it
        written = json.loads(stats.read_text()) if truth is not None and stats.is_file() else None
        if truth is not None:
            print(f"truth: {truth}")
        rows.append(bench_one_h2(capture, written, truth, work, args))
    else:
        sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else [args.size_mb]
        for size in sizes:
            capture = work / f"h2-{size:g}mb.pcap"
            written = generate_h2(capture, size, args.seed)
            rows.append(bench_one_h2(capture, written, Path(written["truth"]), work, args))
    ok = report_h2(rows, args)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([
            {"capture": str(r.capture), "size_mib": r.size_mib, "written": r.written, "ratio": r.ratio,
             **{m.tool: {"cmd": m.cmd, "seconds": m.seconds, "rss_mib": m.rss_mib, "user": m.user,
                         "sys": m.sys, "score": {k: v for k, v in sc.__dict__.items() if k != "examples"}}
                for m, sc in ((r.tracewire, r.tw_score), (r.tshark, r.ts_score))}}
            for r in rows], indent=2) + "\n")
    return ok


# -- issue 10's table: shapes x sizes x commands x builds -------------------------------------

SHAPES = ("mesh", "dense", "h2")
COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("messages", ["messages", "--format", "jsonl"]),
    ("analyze", ["analyze"]),
    ("analyze json", ["analyze", "--format", "json"]),
)
# Issue 10's targets: the lowest ratio (tshark CPU / tracewire CPU) per shape and command,
# and the highest peak RSS in MiB per command, whatever the shape and size.
RATIO_TARGETS: dict[str, dict[str, float]] = {
    "mesh": {"messages": 8.0, "analyze": 6.0, "analyze json": 6.0},
    "dense": {"messages": 3.0, "analyze": 3.0, "analyze json": 3.0},
    "h2": {"messages": 3.0, "analyze": 3.0, "analyze json": 3.0},
}
RSS_TARGETS: dict[str, float] = {"messages": 50.0, "analyze": 150.0, "analyze json": 150.0}
BUILD_PROBE = ("import analyzer, analyzer.pipeline as p; "
               "print(p.__file__); print(analyzer.__file__)")


@dataclass
class Build:
    """One tracewire to measure: an interpreter (a venv's python) and the directory it runs in.

    ``python -m analyzer`` imports the package from its working directory first, so a source
    tree given with @TREE is what runs; without one the command runs in the work directory and
    imports what that interpreter has installed (a compiled wheel, say).
    """

    label: str
    python: str
    cwd: Path | None
    kind: str = "?"  # "compiled" (mypyc extension modules) or "pure", probed before measuring
    source: str = ""

    @property
    def name(self) -> str:
        return self.label if self.label == self.kind else f"{self.label} ({self.kind})"


def parse_build(spec: str) -> Build:
    """``[LABEL=]PYTHON[@TREE]``."""
    label, _, rest = spec.rpartition("=") if "=" in spec else ("", "", spec)
    python, _, tree = rest.partition("@")
    # abspath, not resolve: a venv's python is a symlink that must stay the venv's
    return Build(label, os.path.abspath(python), Path(tree).resolve() if tree else None)


def probe(build: Build, work: Path) -> None:
    cwd = build.cwd or work
    proc = subprocess.run([build.python, "-c", BUILD_PROBE], capture_output=True, text=True,
                          cwd=cwd)
    if proc.returncode != 0:
        raise Trouble(f"{build.python} cannot import analyzer (in {cwd}): {proc.stderr.strip()}")
    pipeline_file, package_file = proc.stdout.split("\n")[:2]
    # mypyc turns each module into an extension module: the pipeline is a .so then.
    build.kind = "pure" if pipeline_file.endswith(".py") else "compiled"
    build.source = str(Path(package_file).parent)
    build.label = build.label or build.kind


@dataclass
class Cell:
    """One command of one build (or tshark) on one capture: the best of the repetitions."""

    shape: str
    size_mib: float
    build: str
    command: str
    cmd: list[str]
    cpu: float = float("inf")
    wall: float = float("inf")
    rss_mib: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, m: Measurement) -> None:
        self.cpu = min(self.cpu, m.user + m.sys)
        self.wall = min(self.wall, m.seconds)
        self.rss_mib = max(self.rss_mib, m.rss_mib)


def generate_shape(shape: str, out: Path, size_mb: float, seed: int) -> dict[str, Any]:
    stats = out.with_suffix(".stats.json")
    if shape == "h2":  # no truth file: this table counts, it does not score fields
        cmd = [sys.executable, str(GEN_H2), str(out), "--size-mb", str(size_mb), "--seed",
               str(seed), "--stats-json", str(stats)]
    else:
        cmd = [sys.executable, str(GEN), str(out), "--size-mb", str(size_mb), "--seed", str(seed),
               "--shape", shape, "--stats-json", str(stats)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise Trouble(f"generator failed:\n{proc.stdout}{proc.stderr}")
    print(proc.stdout.strip(), f"[{time.perf_counter() - t0:.1f} s]", flush=True)
    result: dict[str, Any] = json.loads(stats.read_text())
    return result


def tshark_shape_cmd(shape: str, tshark: str, capture: Path, written: dict[str, Any]) -> list[str]:
    if shape == "h2":
        ports = [int(p) for p in written.get("server_ports") or H2_PORTS]
        return tshark_h2_cmd(tshark, capture, ports)
    return [tshark, "-r", str(capture), "-Y", "http.request", "-T", "fields",
            "-e", "http.request.line"]


def bench_shape(shape: str, size: float, capture: Path, written: dict[str, Any], builds: list[Build],
                work: Path, args: argparse.Namespace) -> list[Cell]:
    tag = capture.stem
    runs: list[tuple[Cell, Path, Path]] = []
    ts = Cell(shape, 0.0, "tshark", "tshark", tshark_shape_cmd(shape, args.tshark, capture, written))
    runs.append((ts, work / f"{tag}.tshark.out", work / f"{tag}.tshark.err"))
    for b in builds:
        for i, (command, argv) in enumerate(COMMANDS):
            cell = Cell(shape, 0.0, b.name, command, [b.python, "-m", "analyzer", *argv, str(capture)])
            # Only messages' output is read back (to count); analyze's can be large.
            out = work / f"{tag}.{b.label}.{i}.out" if command == "messages" else Path(os.devnull)
            runs.append((cell, out, work / f"{tag}.{b.label}.{i}.err"))
    warm(capture)
    for rep in range(args.repeat):
        for cell, out, err in runs if rep % 2 == 0 else runs[::-1]:
            print(f"  [{rep + 1}/{args.repeat}] {cell.build}: {shlex.join(cell.cmd)}", flush=True)
            cwd = next((b.cwd or work for b in builds if b.name == cell.build), REPO)
            m = measure(cell.build, cell.cmd, out, err, args.time_bin, cwd=cwd)
            print(f"    {m.user + m.sys:.2f} s CPU, {m.seconds:.2f} s wall, "
                  f"peak RSS {m.rss_mib:.1f} MiB", flush=True)
            cell.add(m)
    size_mib = capture.stat().st_size / 1048576
    for cell, out, _ in runs:
        cell.size_mib = size_mib
        if cell.command == "messages":
            cell.counts = count_jsonl(out)
        elif cell.build == "tshark" and shape != "h2":
            cell.counts = count_lines(out)
    return [c for c, _, _ in runs]


def target_misses(shape: str, by: dict[str, Cell], tshark: Cell) -> list[str]:
    """Which of issue 10's targets one row (a shape, size and build) misses, as short text."""
    misses = []
    for name, _ in COMMANDS:
        c = by.get(name)
        if c is None:
            continue
        ratio = tshark.cpu / max(c.cpu, 1e-9)
        want = RATIO_TARGETS.get(shape, {}).get(name)
        if want is not None and ratio < want:
            misses.append(f"{name} {ratio:.1f}x < {want:g}x")
        if c.rss_mib > RSS_TARGETS[name]:
            misses.append(f"{name} {c.rss_mib:.0f} MiB > {RSS_TARGETS[name]:g}")
    return misses


def report_summary(cells: list[Cell]) -> None:
    """Issue 10's table: one row per shape, size and build; the ratio per command, and the
    targets the row misses."""
    tshark = {(c.shape, c.size_mib): c for c in cells if c.build == "tshark"}
    rows: dict[tuple[str, float, str], dict[str, Cell]] = {}
    for c in cells:
        if c.build != "tshark":
            rows.setdefault((c.shape, c.size_mib, c.build), {})[c.command] = c
    names = [name for name, _ in COMMANDS]
    print("\n| shape | MiB | build | " + " | ".join(names) + " | peak RSS MiB ("
          + " / ".join(names) + ") | targets |")
    print("|---|---:|---|" + "---:|" * (len(names) + 1) + "---|")
    for (shape, size, build), by in rows.items():
        t = tshark[(shape, size)]
        ratios = [f"{t.cpu / max(by[n].cpu, 1e-9):.2f}x" if n in by else "–" for n in names]
        rss = " / ".join(f"{by[n].rss_mib:.0f}" if n in by else "–" for n in names)
        misses = target_misses(shape, by, t)
        print(f"| {shape} | {size:.1f} | {build} | " + " | ".join(ratios) + f" | {rss} | "
              + ("; ".join(misses) or "met") + " |")


def report_matrix(cells: list[Cell], written: dict[tuple[str, float], dict[str, Any]]) -> None:
    report_summary(cells)
    print("\nCPU seconds (user + system) and peak RSS, best of the repetitions; ratio = tshark CPU "
          "seconds / tracewire CPU seconds, same file, same run.\n")
    print("| shape | MiB | build | command | CPU s | wall s | peak RSS MiB | tshark CPU s | "
          "tshark RSS MiB | ratio |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    tshark = {(c.shape, c.size_mib): c for c in cells if c.build == "tshark"}
    for c in cells:
        if c.build == "tshark":
            continue
        t = tshark[(c.shape, c.size_mib)]
        print(f"| {c.shape} | {c.size_mib:.1f} | {c.build} | {c.command} | {c.cpu:.2f} | "
              f"{c.wall:.2f} | {c.rss_mib:.1f} | {t.cpu:.2f} | {t.rss_mib:.1f} | "
              f"{t.cpu / max(c.cpu, 1e-9):.2f}x |")
    print()
    for c in cells:
        if c.command != "messages":
            continue
        w = next((v for (shape, _), v in written.items()
                  if shape == c.shape and abs(v["_mib"] - c.size_mib) < 1e-6), None)
        wrote = f" (generator wrote {w['requests']})" if w is not None and "requests" in w else ""
        print(f"{c.shape} {c.size_mib:.1f} MiB, {c.build}: messages printed "
              f"{c.counts.get('requests', 0)} requests, {c.counts.get('responses', 0)} "
              f"responses{wrote}")
    sizes = sorted({c.size_mib for c in cells})
    if len(sizes) < 2:
        return
    print("\npeak RSS MiB by capture size (flat memory: the same at every size)\n")
    keys = sorted({(c.shape, c.build, c.command) for c in cells},
                  key=lambda k: (SHAPES.index(k[0]), k[1] != "tshark", k[1], k[2]))
    by = {(c.shape, c.build, c.command, c.size_mib): c for c in cells}
    per_shape = {s: sorted({c.size_mib for c in cells if c.shape == s}) for s in SHAPES}
    print("| shape | build | command | " + " | ".join(f"size {i + 1}" for i in
                                                     range(max(map(len, per_shape.values())))) + " |")
    print("|---|---|---|" + "---:|" * max(map(len, per_shape.values())))
    for shape, build, command in keys:
        vals = [by[(shape, build, command, m)] for m in per_shape[shape]
                if (shape, build, command, m) in by]
        print(f"| {shape} | {build} | {command} | "
              + " | ".join(f"{v.rss_mib:.1f} @ {v.size_mib:.0f} MiB" for v in vals) + " |")


def run_matrix(args: argparse.Namespace, work: Path) -> None:
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for shape in shapes:
        if shape not in SHAPES:
            raise Trouble(f"unknown shape {shape!r}: choose from {', '.join(SHAPES)}")
    builds = [parse_build(spec) for spec in args.python] or [Build("", sys.executable, REPO)]
    for b in builds:
        probe(b, work)
        print(f"build {b.name}: {b.python}, analyzer from {b.source}")
    if len({b.label for b in builds}) != len(builds):
        raise Trouble("two builds with the same label: name them, --python LABEL=PATH")
    sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else [args.size_mb]
    cells: list[Cell] = []
    written: dict[tuple[str, float], dict[str, Any]] = {}
    for size in sizes:
        for shape in shapes:
            capture = work / f"{shape}-{size:g}mb.pcap"
            w = generate_shape(shape, capture, size, args.seed)
            w["_mib"] = capture.stat().st_size / 1048576
            written[(shape, size)] = w
            cells += bench_shape(shape, size, capture, w, builds, work, args)
            capture.unlink()  # the next capture needs the room more than a rerun does
    report_matrix(cells, written)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(
            {"builds": [{"label": b.label, "kind": b.kind, "python": b.python,
                         "source": b.source} for b in builds],
             "cells": [{k: v for k, v in c.__dict__.items()} for c in cells]},
            indent=2) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="tracewire vs tshark on the same capture")
    ap.add_argument("--size-mb", type=float, default=None,
                    help="size of the generated capture in MiB (default 200, with --h2 100)")
    ap.add_argument("--sizes", help="comma-separated sizes in MiB, one row each, e.g. 50,100,200")
    ap.add_argument("--capture", type=Path, help="benchmark this capture instead of generating")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--workdir", type=Path, help="parent of the temporary work directory")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each tool N times, alternating order; best time, highest RSS")
    ap.add_argument("--tracewire-cmd",
                    help="command to time instead of tracewire, e.g. 'cat FILE' to test the "
                         "harness; FILE or {file} is replaced by the capture path")
    ap.add_argument("--tshark", default="tshark", help="tshark executable (default: tshark)")
    ap.add_argument("--h2", action="store_true",
                    help="HTTP/2: gRPC over h2c starting mid-connection, checked against the truth")
    ap.add_argument("--truth", type=Path,
                    help="--h2 with --capture: the gen_h2_capture.py truth file for that capture "
                         "(default: CAPTURE.truth.jsonl beside it, if there is one)")
    ap.add_argument("--h2-ports", type=lambda s: [int(p) for p in s.split(",")],
                    help="--h2: ports tshark decodes as HTTP/2 (default: the generator's, or 15001,50051)")
    ap.add_argument("--tshark-extra", default="",
                    help="--h2: more tshark arguments, e.g. '--disable-protocol grpc'")
    ap.add_argument("--min-speedup", type=float, default=None,
                    help="speed ratio target (default 3, with --h2 10)")
    ap.add_argument("--max-rss-mib", type=float, default=100.0)
    ap.add_argument("--no-count-check", action="store_true",
                    help="do not require tracewire to find every request")
    ap.add_argument("--rss-via", choices=("auto", "time", "rusage"), default="auto",
                    help="peak RSS from GNU time's %%M (auto: when /usr/bin/time is GNU time) "
                         "or from the wrapper's RUSAGE_CHILDREN")
    ap.add_argument("--json-out", type=Path, help="also write the measurements here as JSON")
    ap.add_argument("--shapes",
                    help="issue 10's table: comma-separated shapes from mesh, dense, h2; "
                         "messages, analyze and analyze --format json of every --python build "
                         "against tshark, per --sizes (CPU-time ratio; targets shown, exit 0)")
    ap.add_argument("--python", action="append", default=[], metavar="[LABEL=]PYTHON[@TREE]",
                    help="with --shapes: a tracewire build to measure, as the interpreter that "
                         "runs it (a venv's bin/python) and optionally the source tree to run "
                         "it from; repeat to compare builds in one run (default: this python, "
                         "this checkout)")
    args = ap.parse_args(argv)
    if args.sizes and args.capture:
        ap.error("--sizes generates its captures: it cannot be used with --capture")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.truth is not None and not (args.h2 and args.capture):
        ap.error("--truth goes with --h2 --capture")
    if args.shapes and (args.h2 or args.capture or args.tracewire_cmd):
        ap.error("--shapes generates its captures and runs tracewire itself: not with --h2, "
                 "--capture or --tracewire-cmd")
    if args.python and not args.shapes:
        ap.error("--python goes with --shapes")
    if args.min_speedup is None:
        args.min_speedup = 10.0 if args.h2 else 3.0
    if args.size_mb is None:
        args.size_mb = 100.0 if args.h2 else 200.0
    return args


def run(args: argparse.Namespace) -> int:
    if shutil.which(args.tshark) is None:
        raise Trouble(f"tshark not found: {args.tshark}")
    args.time_bin = None if args.rss_via == "rusage" else gnu_time()
    if args.rss_via == "time" and args.time_bin is None:
        raise Trouble("--rss-via time: GNU time not found (apt-get install time)")
    print("peak RSS via " + (f"{args.time_bin} -f %M" if args.time_bin else
                             "the wrapper's RUSAGE_CHILDREN (includes its ~14 MiB floor)"))
    if args.capture is not None and not args.capture.is_file():
        raise Trouble(f"no such capture: {args.capture}")
    if args.truth is not None and not args.truth.is_file():
        raise Trouble(f"no such truth file: {args.truth}")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tracewire-bench-", dir=args.workdir))
    try:
        if args.shapes:
            run_matrix(args, work)
            return 0
        if args.h2:
            ok = run_h2(args, work)
            print(f"\ntargets {'met' if ok else 'NOT met'}")
            return 0 if ok else 1
        rows: list[Row] = []
        if args.capture is not None:
            rows.append(bench_one(args.capture.resolve(), None, work, args))
        else:
            sizes = [float(s) for s in args.sizes.split(",")] if args.sizes else [args.size_mb]
            for size in sizes:
                capture = work / f"capture-{size:g}mb.pcap"
                written = generate(capture, size, args.seed)
                rows.append(bench_one(capture, written, work, args))
        ok = report_sizes(rows, args) if args.sizes else report_single(rows[0], args)
        if args.json_out is not None:
            args.json_out.write_text(json.dumps([
                {"capture": str(r.capture), "size_mib": r.size_mib, "written": r.written,
                 "ratio": r.ratio,
                 **{m.tool: {"cmd": m.cmd, "seconds": m.seconds, "rss_mib": m.rss_mib,
                             "user": m.user, "sys": m.sys, "counts": m.counts}
                    for m in (r.tracewire, r.tshark)}}
                for r in rows], indent=2) + "\n")
        print(f"\ntargets {'met' if ok else 'NOT met'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except Trouble as exc:
        print(f"trouble: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"trouble: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
