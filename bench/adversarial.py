#!/usr/bin/env python3
"""Generate adversarial captures and measure tracewire's wall time and peak RSS on each.

Each case is a capture that once cost far more time or memory than its size warrants
(issue 9, "Time and memory"). The generator is deterministic (fixed seeds, fixed
timestamps), writes into a temporary directory, and needs nothing beyond the standard
library. Every case is run through ``tracewire messages --format jsonl`` and ``tracewire
analyze --format json``; each run is a fresh wrapper process that starts the command, waits
for it and reads ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, so the peak RSS is that one
command's.

    python bench/adversarial.py                       # all cases, against this checkout
    python bench/adversarial.py --tree /tmp/baseline  # against another checkout (PYTHONPATH)
    python bench/adversarial.py --cases holes,junk --timeout 60 --json-out r.json
    python bench/adversarial.py --scale 0.25          # smaller inputs (flatness checks)

Targets: every run finishes within ``--target-seconds`` (default 20) with a peak RSS of at
most 200 MiB. CPU time (user + system) is shown too: on a shared machine it varies far less
than wall time. Exit status 0 when all runs meet them, 1 otherwise, 2 on trouble.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

LINKTYPE_SLL2 = 276
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
T0 = 1_700_000_000  # capture start, seconds


# -- packet builders ------------------------------------------------------------------------


def _ip(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def packet(src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int,
           payload: bytes = b"", pad: int = 0) -> bytes:
    """SLL2 + IPv4 + TCP; ``pad`` bytes of trailer after the IP packet (as on Ethernet)."""
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags,
                      65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, src, dst)
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, b"\x00" * 8)
    return sll2 + ip + tcp + payload + b"\x00" * pad


class PcapWriter:
    def __init__(self, out: BinaryIO, snaplen: int = 262144) -> None:
        self.out = out
        self.n = 0
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_SLL2))

    def write(self, data: bytes, caplen: int | None = None) -> None:
        usec = self.n * 10  # 10 µs apart: deterministic, increasing
        self.n += 1
        sec, us = divmod(usec, 1_000_000)
        cl = len(data) if caplen is None else caplen
        self.out.write(struct.pack("<IIII", T0 + sec, us, cl, len(data)))
        self.out.write(data)


# -- the cases ------------------------------------------------------------------------------

C_IP, S_IP = _ip("10.244.1.10"), _ip("10.244.2.20")


def gen_holes(out: BinaryIO, scale: float) -> str:
    """One connection; every segment starts one byte past the end of the previous one, so
    each waits behind its own 1-byte hole (issue: 37 s on 7.7 MB)."""
    n = int(100_000 * scale)
    w = PcapWriter(out)
    w.write(packet(C_IP, 40000, S_IP, 80, 999, 0, SYN))
    w.write(packet(S_IP, 80, C_IP, 40000, 4999, 1000, SYN | ACK))
    seq = 1000
    body = b"x" * 20
    for _ in range(n):
        seq += 1  # the hole
        w.write(packet(C_IP, 40000, S_IP, 80, seq, 5000, PSH | ACK, body))
        seq += len(body)
    return f"{n} segments, each past a 1-byte hole"


def gen_ooo_frames(out: BinaryIO, scale: float) -> str:
    """Out-of-order segments of a few bytes each in 256 KiB records (the rest is link-layer
    trailer): whoever keeps a view of the payload keeps the whole record alive. gzip makes
    the file small (issue: 1.2 MB compressed -> 1.26 GB RSS)."""
    conns = max(1, int(5 * scale))
    per = 1000
    pad = 262144 - 20 - 40 - 8
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        w = PcapWriter(gz)  # type: ignore[arg-type]
        for c in range(conns):
            port = 41000 + c
            w.write(packet(C_IP, port, S_IP, 80, 999, 0, SYN))
            w.write(packet(S_IP, 80, C_IP, port, 4999, 1000, SYN | ACK))
        for i in range(per):
            for c in range(conns):
                # byte 1000 is never sent: everything after it waits
                w.write(packet(C_IP, 41000 + c, S_IP, 80, 1001 + i * 8, 5000, PSH | ACK,
                               b"GET /%03d" % (i % 1000), pad))
    return f"{conns} connections x {per} out-of-order segments in 256 KiB records (gzip)"


def gen_snaplen(out: BinaryIO, scale: float) -> str:
    """A pcap header with snap length 2^32-1; requests, every 10th in a 4 MiB record; one
    1 GiB record (a request followed by zeros: gzip makes it small); more requests after it;
    then a last record that claims 1 GiB with nothing behind it."""
    n = max(2, int(200 * scale))
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as gz:
        w = PcapWriter(gz, snaplen=0xFFFFFFFF)  # type: ignore[arg-type]
        seq = 1000
        w.write(packet(C_IP, 40000, S_IP, 80, 999, 0, SYN))
        w.write(packet(S_IP, 80, C_IP, 40000, 4999, 1000, SYN | ACK))
        for i in range(n):
            req = b"GET /r%d HTTP/1.1\r\nhost: a\r\nx-request-id: %d\r\n\r\n" % (i, i)
            pkt = packet(C_IP, 40000, S_IP, 80, seq, 5000, PSH | ACK, req)
            seq += len(req)
            if i % 10 == 5:
                pkt += b"\x00" * (4 << 20)  # a 4 MiB record: far beyond libpcap's 256 KiB
            if i == n // 2:
                # a 1 GiB record, written in pieces
                big = 1 << 30
                gz.write(struct.pack("<IIII", T0 + 5, 0, big, big))
                gz.write(pkt)
                zeros = b"\x00" * (1 << 20)
                left = big - len(pkt)
                while left > 0:
                    gz.write(zeros[: min(left, len(zeros))])
                    left -= len(zeros)
                w.n += 1
                continue
            w.write(pkt)
        # a last record that claims 1 GiB, with nothing behind it
        gz.write(struct.pack("<IIII", T0 + 10, 0, 1 << 30, 1 << 30))
        gz.write(b"\x00" * 64)
    return f"snaplen 2^32-1, {n} requests (every 10th in a 4 MiB record, one in 1 GiB), a 1 GiB claim"


def gen_half_open(out: BinaryIO, scale: float) -> str:
    """SYNs that nobody answers, each from a new port (issue: 184-436 MB for 100,000)."""
    n = int(100_000 * scale)
    w = PcapWriter(out)
    for i in range(n):
        src = bytes([10, 1, (i >> 16) & 0xFF, (i >> 8) & 0xFF]) if i >= 60000 else C_IP
        w.write(packet(src, 1024 + (i % 60000), S_IP, 80, i * 7919, 0, SYN))
    return f"{n} half-open connections (SYN only)"


def gen_junk(out: BinaryIO, scale: float) -> str:
    """Connections caught mid-stream (no SYN) carrying bytes that are neither HTTP nor TLS,
    in one direction (issue: 10,000 such connections ran past 120 s)."""
    n = int(10_000 * scale)
    rng = random.Random(5)
    w = PcapWriter(out)
    seg = 1400
    per = 4 * seg
    for i in range(n):
        src = bytes([10, 2, (i >> 8) & 0xFF, i & 0xFF])
        junk = rng.randbytes(per)
        # random numbers, as real ISNs are: equal ones would make connections look like the
        # two halves of an Istio NAT split, and pair them
        isn, ack = rng.getrandbits(32), rng.getrandbits(32)
        for k in range(0, per, seg):
            w.write(packet(src, 30000 + i % 30000, S_IP, 9000, isn + k, ack, PSH | ACK,
                           junk[k : k + seg]))
    return f"{n} mid-stream connections x {per} bytes of random bytes"


def _h2_frame(typ: int, flags: int, sid: int, payload: bytes) -> bytes:
    return struct.pack(">BHBBL", len(payload) >> 16, len(payload) & 0xFFFF, typ, flags, sid) + payload


def gen_h2_never_end(out: BinaryIO, scale: float) -> str:
    """HTTP/2 (prior knowledge, h2c): 200,000 requests answered by a HEADERS frame without
    END_STREAM, and never a DATA frame or trailers: every response waits for its end."""
    n = int(200_000 * scale)
    w = PcapWriter(out)
    cseq, sseq = 1000, 5000
    w.write(packet(C_IP, 40000, S_IP, 8080, cseq - 1, 0, SYN))
    w.write(packet(S_IP, 8080, C_IP, 40000, sseq - 1, cseq, SYN | ACK))
    w.write(packet(C_IP, 40000, S_IP, 8080, cseq, sseq, ACK))
    pre = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b"")
    w.write(packet(C_IP, 40000, S_IP, 8080, cseq, sseq, PSH | ACK, pre))
    cseq += len(pre)
    settings = _h2_frame(4, 0, 0, b"") + _h2_frame(4, 1, 0, b"")
    w.write(packet(S_IP, 8080, C_IP, 40000, sseq, cseq, PSH | ACK, settings))
    sseq += len(settings)
    batch = 100
    for b in range(0, n, batch):
        reqs = b"".join(
            # :method GET, :scheme http, :path /, :authority "a" (literal, not indexed)
            _h2_frame(1, 0x05, 2 * k + 1, b"\x82\x86\x84\x01\x01a")
            for k in range(b, min(b + batch, n))
        )
        w.write(packet(C_IP, 40000, S_IP, 8080, cseq, sseq, PSH | ACK, reqs))
        cseq += len(reqs)
        resps = b"".join(_h2_frame(1, 0x04, 2 * k + 1, b"\x88")  # :status 200, no END_STREAM
                         for k in range(b, min(b + batch, n)))
        w.write(packet(S_IP, 8080, C_IP, 40000, sseq, cseq, PSH | ACK, resps))
        sseq += len(resps)
    return f"HTTP/2: {n} responses that never end"


def gen_header_flood(out: BinaryIO, scale: float) -> str:
    """HTTP/1.1 requests whose header lines are all distinct and long (heads of 48 KiB, under
    the 64 KiB head limit): a cache of header fields keyed by line grows with the file unless
    bounded by size (issue: 668 MB)."""
    n = int(2048 * scale)
    w = PcapWriter(out)
    cseq, sseq = 1000, 5000
    w.write(packet(C_IP, 40000, S_IP, 80, cseq - 1, 0, SYN))
    w.write(packet(S_IP, 80, C_IP, 40000, sseq - 1, cseq, SYN | ACK))
    value = b"v" * 12000
    for i in range(n):
        lines = b"".join(b"x-h%d-%d: %s%d\r\n" % (i, k, value, i) for k in range(4))
        req = b"GET /f%d HTTP/1.1\r\nhost: a\r\n%s\r\n" % (i, lines)
        for k in range(0, len(req), 65000):
            part = req[k : k + 65000]
            w.write(packet(C_IP, 40000, S_IP, 80, cseq, sseq, PSH | ACK, part))
            cseq += len(part)
        resp = b"HTTP/1.1 204 No Content\r\n\r\n"
        w.write(packet(S_IP, 80, C_IP, 40000, sseq, cseq, PSH | ACK, resp))
        sseq += len(resp)
    return f"{n} HTTP/1.1 requests x 4 distinct 12 KB header lines"


def gen_pinned(out: BinaryIO, scale: float) -> str:
    """Many open connections, each whose last segment carries a few bytes in a 256 KiB record
    (the rest is link-layer trailer): whoever keeps a view of a connection's last bytes (to
    check retransmissions against them) keeps its whole record alive. gzip makes the file
    small."""
    n = int(2000 * scale)
    pad = 262144 - 20 - 40 - 8
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
        w = PcapWriter(gz)  # type: ignore[arg-type]
        for i in range(n):
            src = bytes([10, 3, (i >> 8) & 0xFF, i & 0xFF])
            w.write(packet(src, 20000 + i % 30000, S_IP, 80, 999, 0, SYN))
            w.write(packet(S_IP, 80, src, 20000 + i % 30000, 4999, 1000, SYN | ACK))
            w.write(packet(src, 20000 + i % 30000, S_IP, 80, 1000, 5000, PSH | ACK,
                           b"GET /p%d HTTP/1.1\r\nhost: a\r\n\r\n" % i, pad))
    return f"{n} open connections, each a request in a 256 KiB record (gzip)"


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    gen: Callable[[BinaryIO, float], str]


CASES = [
    Case("holes", ".pcap", gen_holes),
    Case("ooo-frames", ".pcap.gz", gen_ooo_frames),
    Case("snaplen", ".pcap.gz", gen_snaplen),
    Case("half-open", ".pcap", gen_half_open),
    Case("junk", ".pcap", gen_junk),
    Case("h2-never-end", ".pcap", gen_h2_never_end),
    Case("header-flood", ".pcap", gen_header_flood),
    Case("pinned", ".pcap.gz", gen_pinned),
]


# -- measuring ------------------------------------------------------------------------------

_WRAPPER = """
import resource, subprocess, sys, time, json
timeout = float(sys.argv[1])
t = time.perf_counter()
status = "ok"
try:
    p = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=timeout)
    if p.returncode not in (0, 1):
        status = "exit %d: %s" % (p.returncode, p.stderr.decode(errors="replace")[-300:])
except subprocess.TimeoutExpired:
    status = "timeout"
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024,
                  "status": status}))
"""


def measure(cmd: list[str], timeout: float, env: dict[str, str], cwd: Path) -> dict[str, object]:
    # cwd matters: ``python -m`` puts it first on sys.path, before PYTHONPATH.
    p = subprocess.run([sys.executable, "-c", _WRAPPER, str(timeout), *cmd],
                       capture_output=True, env=env, cwd=cwd, check=False)
    if p.returncode != 0:
        return {"wall": 0.0, "cpu": 0.0, "rss_mib": 0.0,
                "status": "wrapper failed: " + p.stderr.decode()[-300:]}
    result: dict[str, object] = json.loads(p.stdout)
    return result


def run_cases(names: list[str], scale: float, tree: str | None, timeout: float,
              workdir: Path, keep: bool = False) -> Iterator[dict[str, object]]:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree
    for case in CASES:
        if case.name not in names:
            continue
        path = workdir / (case.name + case.suffix)
        t = time.perf_counter()
        with open(path, "wb") as f:
            what = case.gen(f, scale)
        gen_s = time.perf_counter() - t
        size = path.stat().st_size
        for command, fmt in (("messages", "jsonl"), ("analyze", "json")):
            cmd = [sys.executable, "-m", "analyzer", command, str(path), "--format", fmt]
            r = measure(cmd, timeout, env, workdir)
            row = {"case": case.name, "what": what, "file_mib": size / (1 << 20),
                   "gen_s": gen_s, "command": command, **r}
            yield row
        if not keep:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(c.name for c in CASES),
                    help="comma-separated case names (default: all)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every case's size")
    ap.add_argument("--tree", help="a tracewire checkout to measure instead (put on PYTHONPATH)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a run is killed")
    ap.add_argument("--target-seconds", type=float, default=20.0)
    ap.add_argument("--target-rss-mib", type=float, default=200.0)
    ap.add_argument("--json-out", help="write the rows as JSON here too")
    ap.add_argument("--keep", help="generate into this directory and keep the files")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = set(names) - {c.name for c in CASES}
    if unknown:
        print(f"unknown case(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    rows: list[dict[str, object]] = []
    ok = True
    trouble = False
    print(f"{'case':<14} {'file MiB':>8} {'command':<9} {'wall s':>8} {'CPU s':>7} "
          f"{'peak RSS MiB':>12}  status")
    with tempfile.TemporaryDirectory(prefix="tw-adv-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for row in run_cases(names, args.scale, args.tree, args.timeout, workdir,
                             bool(args.keep)):
            rows.append(row)
            wall, rss, status = float(row["wall"]), float(row["rss_mib"]), str(row["status"])  # type: ignore[arg-type]
            met = status == "ok" and wall <= args.target_seconds and rss <= args.target_rss_mib
            ok = ok and met
            trouble = trouble or status not in ("ok", "timeout")
            shown = f"> {args.timeout:.0f}" if status == "timeout" else f"{wall:.1f}"
            cpu = float(row["cpu"])  # type: ignore[arg-type]
            print(f"{row['case']:<14} {row['file_mib']:>8.1f} {row['command']:<9} {shown:>8} "
                  f"{cpu:>7.1f} {rss:>12.0f}  {status}{'' if met else '  (target missed)'}",
                  flush=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=1))
    return 2 if trouble else 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
