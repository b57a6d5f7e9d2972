"""A fuzz campaign: mutate every fixture, run each input, keep every new crash.

A campaign is deterministic for a seed and an iteration count (the sources are taken in
turn, each input from ``random.Random(f"{seed}:{i}")``), so input ``i`` can be
regenerated alone. Crashes are saved to the corpus once per signature, shrunk first when
that is cheap, with a text file beside each that says what broke.
"""

from __future__ import annotations

import random
import resource
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures import CAPTURES
from tests.fuzz.mutate import mutate, parse, serialise
from tests.fuzz.run import Failure, Hang, check_cli, check_library, signature, time_limit
from tests.fuzz.streams import (
    Ev,
    Recorded,
    from_json,
    mutate_events,
    recorded_sources,
    replay,
    to_json,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "fuzz-corpus"
# Recordings of other pods, to analyse a mutated capture with: calls joined across captures.
PARTNERS = [p for p in (CAPTURES / "pods" / "productpage.pcap", CAPTURES / "pods" / "reviews.pcap",
                        CAPTURES / "mesh" / "orders.pcap", CAPTURES / "mesh" / "payments.pcap")
            if p.is_file()]


def sources() -> list[tuple[str, bytes]]:
    """Every capture file under captures/, the deliberately broken ones included."""
    paths = sorted(p for p in CAPTURES.rglob("*")
                   if p.is_file() and p.name.endswith((".pcap", ".pcapng", ".pcap.gz", ".pcapng.gz")))
    return [(p.relative_to(CAPTURES).as_posix(), p.read_bytes()) for p in paths]


def make_input(srcs: list[tuple[str, bytes]], seed: int, i: int) -> tuple[str, bytes]:
    name, data = srcs[i % len(srcs)]
    return name, mutate(random.Random(f"{seed}:{i}"), data)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(slots=True)
class Stats:
    inputs: int = 0
    cli_inputs: int = 0
    not_captures: int = 0
    messages: int = 0
    frames: int = 0
    slowest: float = 0.0  # CPU seconds of the slowest input: load on the machine does not count
    slowest_input: str = ""
    failures: Counter[str] = field(default_factory=Counter)
    saved: list[Path] = field(default_factory=list)


def shrink(data: bytes, still_fails: Callable[[bytes], bool], budget: int = 120) -> bytes:
    """Cheap minimisation: drop whole records, then cut the tail, while the failure stays."""
    tries = 0
    p = parse(data)
    if p is not None and p.records:
        i = len(p.records) - 1
        while i >= 0 and tries < budget:
            kept = p.records.pop(i)
            tries += 1
            candidate = serialise(p)
            if still_fails(candidate):
                data = candidate
            else:
                p.records.insert(i, kept)
            i -= 1
    lo, hi = 0, len(data)
    while lo < hi and tries < budget:
        mid = (lo + hi) // 2
        tries += 1
        if still_fails(data[:mid]):
            hi = mid
        else:
            lo = mid + 1
    return data[:hi] if hi < len(data) and still_fails(data[:hi]) else data


def run(seed: int, iterations: int | None = None, seconds: float | None = None,
        start: int = 0, cli_every: int = 25, per_input_seconds: float = 30.0,
        rss_limit_mb: float = 1024.0, corpus: Path | None = CORPUS,
        log: Callable[[str], None] | None = None) -> Stats:
    """Run until ``iterations`` inputs or ``seconds`` of wall time, whichever comes first."""
    srcs = sources()
    stats = Stats()
    seen: set[str] = set()
    if corpus is not None:
        seen = {p.stem for p in corpus.glob("*.txt")}
    began = last_log = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tracewire-fuzz-") as tmp:
        path = Path(tmp) / "input.pcap"
        i = start
        while (iterations is None or i < start + iterations) and (
            seconds is None or time.monotonic() - began < seconds
        ):
            name, data = make_input(srcs, seed, i)
            path.write_bytes(data)
            t0 = time.process_time()
            rss0 = peak_rss_mb()
            # every 5th input is also analysed together with another pod's recording
            partner = PARTNERS[i // 5 % len(PARTNERS)] if PARTNERS and i % 5 == 0 else None
            lib, failure = check_library(path, per_input_seconds, partner)
            if failure is None and cli_every and i % cli_every == 0:
                stats.cli_inputs += 1
                failure = check_cli(path, lib)
            took = time.process_time() - t0
            if failure is None and peak_rss_mb() > max(rss_limit_mb, rss0 + 1):
                failure = Failure("Memory", f"peak RSS {peak_rss_mb():.0f} MB after this input")
            stats.inputs += 1
            if took > stats.slowest:
                stats.slowest, stats.slowest_input = took, f"{name} seed {seed} input {i}"
            if lib is not None:
                if lib.messages < 0:
                    stats.not_captures += 1
                else:
                    stats.messages += lib.messages
                    stats.frames += lib.frames
            if failure is not None:
                stats.failures[failure.signature] += 1
                if failure.key not in seen:
                    seen.add(failure.key)
                    if log:
                        log(f"NEW {failure.signature} ({name}, seed {seed}, input {i})")
                    if corpus is not None:
                        stats.saved.append(_save(corpus, data, failure, name, seed, i, path))
            i += 1
            if log and time.monotonic() - last_log > 60:
                last_log = time.monotonic()
                log(f"{stats.inputs} inputs, {stats.cli_inputs} through the CLI, "
                    f"{sum(stats.failures.values())} failures ({len(stats.failures)} kinds), "
                    f"slowest {stats.slowest:.2f} s CPU, peak RSS {peak_rss_mb():.0f} MB")
    return stats


def _save(corpus: Path, data: bytes, failure: Failure, name: str, seed: int, i: int,
          scratch: Path) -> Path:
    def still_fails(candidate: bytes) -> bool:
        scratch.write_bytes(candidate)
        lib, f = check_library(scratch, 30)
        if f is None and failure.signature.startswith("cli "):
            f = check_cli(scratch, lib)
        return f is not None and f.signature == failure.signature

    if failure.signature not in ("Hang", "Memory"):  # those are too slow to shrink
        data = shrink(data, still_fails)
    corpus.mkdir(parents=True, exist_ok=True)
    out = corpus / f"{failure.key}.pcap"
    out.write_bytes(data)
    (corpus / f"{failure.key}.txt").write_text(
        f"{failure.signature}\nfrom {name}, seed {seed}, input {i}\n\n{failure.detail}\n"
    )
    return out


def check_stream(text: str) -> Failure | None:
    """Replay a stream corpus file (see streams.to_json)."""
    rec, events = from_json(text, CAPTURES)
    return _replay_checked(rec, events, 30)


def _replay_checked(rec: Recorded, events: list[Ev], seconds: float) -> Failure | None:
    try:
        with time_limit(seconds):
            replay(rec, events)
    except Hang as err:
        return Failure("Hang", str(err))
    except Exception as err:
        return Failure(signature(err), "".join(traceback.format_exception(err)))
    return None


def run_streams(seed: int, iterations: int | None = None, seconds: float | None = None,
                start: int = 0, per_input_seconds: float = 10.0, corpus: Path | None = CORPUS,
                log: Callable[[str], None] | None = None) -> Stats:
    """The stream-level campaign: input ``i`` mutates connection ``i`` (in turn) of every
    fixture with ``random.Random(f"streams:{seed}:{i}")`` and replays it into a session."""
    recs = recorded_sources(sources(), CAPTURES)
    stats = Stats()
    seen = {p.name.split(".")[0] for p in corpus.glob("*.txt")} if corpus is not None else set()
    began = last_log = time.monotonic()
    i = start
    while (iterations is None or i < start + iterations) and (
        seconds is None or time.monotonic() - began < seconds
    ):
        rec = recs[i % len(recs)]
        events = mutate_events(random.Random(f"streams:{seed}:{i}"), rec.events)
        t0 = time.process_time()
        failure = _replay_checked(rec, events, per_input_seconds)
        took = time.process_time() - t0
        stats.inputs += 1
        if took > stats.slowest:
            stats.slowest, stats.slowest_input = took, f"{rec.source} streams seed {seed} input {i}"
        if failure is not None:
            stats.failures[failure.signature] += 1
            if failure.key not in seen:
                seen.add(failure.key)
                if log:
                    log(f"NEW {failure.signature} ({rec.source}, streams seed {seed}, input {i})")
                if corpus is not None:
                    corpus.mkdir(parents=True, exist_ok=True)
                    out = corpus / f"{failure.key}.streams.json"
                    out.write_text(to_json(recs, rec, events))
                    (corpus / f"{failure.key}.txt").write_text(
                        f"{failure.signature}\nfrom {rec.source}, streams seed {seed}, input {i}\n\n"
                        f"{failure.detail}\n")
                    stats.saved.append(out)
        i += 1
        if log and time.monotonic() - last_log > 60:
            last_log = time.monotonic()
            log(f"{stats.inputs} stream inputs, {sum(stats.failures.values())} failures "
                f"({len(stats.failures)} kinds), slowest {stats.slowest:.2f} s")
    return stats
