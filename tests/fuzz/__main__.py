"""A long fuzz campaign by hand: ``python -m tests.fuzz --seconds 600 --seed 7``
(``--streams`` for the stream-level campaign of the protocol stage).

New crashes are saved into tests/data/fuzz-corpus/ (one file per signature, with a .txt
beside it); tests/test_fuzz.py replays every file there.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.fuzz.campaign import CORPUS, peak_rss_mb, run, run_streams


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    ap.add_argument("--seconds", type=float, default=600, help="wall-time budget")
    ap.add_argument("--iterations", type=int, default=None, help="stop after this many inputs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="number of the first input (to resume)")
    ap.add_argument("--cli-every", type=int, default=25,
                    help="also run every command through the CLI on every Nth input (0: never)")
    ap.add_argument("--no-save", action="store_true", help="do not write to the corpus")
    ap.add_argument("--streams", action="store_true",
                    help="fuzz the protocol stage with mutated, re-chunked TCP streams instead "
                    "of whole captures (much faster per input)")
    args = ap.parse_args(argv)

    def log(line: str) -> None:
        print(time.strftime("%H:%M:%S"), line, flush=True)

    if args.streams:
        stats = run_streams(args.seed, args.iterations, args.seconds, args.start,
                            corpus=None if args.no_save else CORPUS, log=log)
        log(f"done: streams seed {args.seed}, {stats.inputs} inputs; slowest {stats.slowest:.2f} s CPU "
            f"({stats.slowest_input}); peak RSS {peak_rss_mb():.0f} MB")
        for sig, n in stats.failures.most_common():
            log(f"  {n:6d}  {sig}")
        return 1 if stats.failures else 0
    stats = run(args.seed, args.iterations, args.seconds, args.start, cli_every=args.cli_every,
                corpus=None if args.no_save else CORPUS, log=log)
    log(f"done: seed {args.seed}, {stats.inputs} inputs ({stats.cli_inputs} through the CLI), "
        f"{stats.not_captures} no capture, {stats.frames} frames and {stats.messages} messages "
        f"decoded; slowest {stats.slowest:.2f} s CPU ({stats.slowest_input}); "
        f"peak RSS {peak_rss_mb():.0f} MB")
    for sig, n in stats.failures.most_common():
        log(f"  {n:6d}  {sig}")
    for p in stats.saved:
        log(f"  saved {p}")
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
