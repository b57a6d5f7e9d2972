#!/usr/bin/env python3
"""Time tracewire against tshark on the same capture, in the same run, and check the targets.

    python bench/run.py [--size-mb 200] [--capture FILE] [--keep]
    python bench/run.py --sizes 50,100,200

Each tool runs in a fresh ``python -c`` wrapper process that starts it, waits, and reports the
wall-clock time and ``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak RSS of that one tool
(ru_maxrss is a maximum over all waited-for children, so measuring two tools from one parent
would report the larger of the two for the second one).

Targets: tracewire at least 3x faster than tshark (wall clock, same file, same machine, same
run), tracewire peak RSS under 100 MiB, and tracewire finding every request (the generator's
count, or tshark's for a capture given with --capture).

Exit status: 0 targets met, 1 not met, 2 trouble (a tool failed, the generator failed, ...).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
GEN = BENCH / "gen_capture.py"

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


def measure(tool: str, cmd: list[str], out: Path, err: Path, time_bin: str | None) -> Measurement:
    """Run ``cmd`` once in a fresh wrapper process: wall-clock seconds and peak RSS.

    A child's ru_maxrss includes what its parent had mapped when it forked, so the Python
    wrapper's own ~14 MiB is a floor under any tool it starts directly. With GNU time in
    between, the floor is GNU time's ~2 MiB and %M is the tool's own peak.
    """
    rss_file = out.with_suffix(".rss")
    run_cmd = [time_bin, "-f", "%M", "-o", str(rss_file), *cmd] if time_bin else cmd
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, json.dumps(run_cmd), str(out), str(err), str(REPO)],
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="tracewire vs tshark on the same capture")
    ap.add_argument("--size-mb", type=float, default=200.0,
                    help="size of the generated capture in MiB (default 200)")
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
    ap.add_argument("--min-speedup", type=float, default=3.0)
    ap.add_argument("--max-rss-mib", type=float, default=100.0)
    ap.add_argument("--no-count-check", action="store_true",
                    help="do not require tracewire to find every request")
    ap.add_argument("--rss-via", choices=("auto", "time", "rusage"), default="auto",
                    help="peak RSS from GNU time's %%M (auto: when /usr/bin/time is GNU time) "
                         "or from the wrapper's RUSAGE_CHILDREN")
    ap.add_argument("--json-out", type=Path, help="also write the measurements here as JSON")
    args = ap.parse_args(argv)
    if args.sizes and args.capture:
        ap.error("--sizes generates its captures: it cannot be used with --capture")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
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
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tracewire-bench-", dir=args.workdir))
    try:
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
