"""``analyze`` in bounded memory (issue 10 item 6): the JSON document is written in pieces
(``report.analysis.result_json``), byte for byte what the whole document was; and what the
analysis keeps beside the pipeline does not grow with connections it no longer needs."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from analyzer.analysis import Result, analyze
from analyzer.analysis.evidence import Observer, corroborate
from analyzer.analysis.legs import pair
from analyzer.analysis.model import Call
from analyzer.analysis.parallel import flatten, rebuild
from analyzer.analysis.store import SpillLog
from analyzer.cli import cli
from analyzer.pipeline import CaptureSummary, read_messages
from analyzer.report import analysis as report
from analyzer.report import jsonout
from analyzer.report.redact import DEFAULT, Policy, json_safe
from tests.fixtures import CAPTURES, ROOT, readable_captures, recorded_captures

MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))


def _whole(r: Result, policy: Policy = DEFAULT) -> str:
    return json_safe(jsonout.indent2(report.result_dict(r, policy)))


@pytest.mark.parametrize("capture", recorded_captures())
@pytest.mark.parametrize("chunk", [1, 1 << 16])
def test_pieces_are_the_whole_document(capture: str, chunk: int) -> None:
    r = analyze([str(CAPTURES / capture)])
    assert "".join(report.result_json(r, chunk=chunk)) == _whole(r)


def test_pieces_of_a_joined_analysis_and_with_secrets_shown() -> None:
    r = analyze(MESH)
    assert r.traces and r.findings  # both streamed sections are exercised
    for policy in (DEFAULT, Policy(show_secrets=True)):
        assert "".join(report.result_json(r, policy, chunk=1)) == _whole(r, policy)


def test_an_empty_analysis_has_empty_streamed_sections() -> None:
    r = analyze([str(CAPTURES / "public" / "empty.pcapng")])
    text = "".join(report.result_json(r))
    assert text == _whole(r)
    assert '"traces": [],' in text and '"findings": [],' in text


def test_hostile_text_is_escaped_in_every_piece() -> None:
    """json_safe applies to each piece: a C1 control or bidi mark inside a streamed trace
    comes out as a \\u escape, as in the whole document."""
    r = analyze(MESH)
    r = dataclasses.replace(r, traces=list(r.traces))  # (read once: changed below)
    span = r.traces[0].spans[0]
    span.call.path = "/a\u202e\x85\nb"
    text = "".join(report.result_json(r, chunk=1))
    assert text == _whole(r)
    assert "\\u202e" in text and "\\u0085" in text and "\u202e" not in text


def test_cli_writes_the_same_bytes_as_the_whole_document() -> None:
    out = CliRunner().invoke(cli, ["analyze", "--format", "json", *MESH])
    assert out.exit_code in (0, 1), out.output
    assert out.output == _whole(analyze(MESH)) + "\n"


def test_the_document_is_never_held_whole() -> None:
    """Many traces and findings: writing them piece by piece holds at most about a piece
    and one element, far less than the document (which the old path built twice: dicts and
    text)."""
    r = analyze(MESH)
    big = dataclasses.replace(r, traces=list(r.traces) * 400, findings=r.findings * 400)
    size = sum(len(p) for p in report.result_json(big))
    tracemalloc.start()
    try:
        for _ in report.result_json(big, chunk=1 << 14):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 8_000_000
    assert peak < size / 10, (peak, size)


# -- peak RSS, in fresh processes ---------------------------------------------------------------

# Runs a command and prints its peak RSS in KiB: RUSAGE_CHILDREN of a process whose only
# child is that command.
_PEAK = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
         "check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _peak_kib(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-m", "analyzer", *args],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout)


def _half_open(path: Path, scale: float) -> Path:
    """bench/adversarial.py's half-open case: SYNs nobody answers, each from a new port."""
    spec = importlib.util.spec_from_file_location("bench_adversarial", ROOT / "bench" / "adversarial.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    with path.open("wb") as f:
        module.gen_half_open(f, scale)
    return path


def test_connections_the_analysis_does_not_need_are_not_kept(tmp_path: Path) -> None:
    """20,000 and then 80,000 half-open connections: whatever the pipeline itself holds
    (``messages`` shows it), ``analyze`` adds no more as connections grow (it kept a summary
    of every connection: 26 MiB more at 80,000, against the pipeline's 10)."""
    small, large = _half_open(tmp_path / "small.pcap", 0.2), _half_open(tmp_path / "large.pcap", 0.8)
    messages = [_peak_kib("messages", "--format", "jsonl", str(p)) for p in (small, large)]
    analyzed = [_peak_kib("analyze", "--format", "json", str(p)) for p in (small, large)]
    assert analyzed[1] - analyzed[0] <= messages[1] - messages[0] + 3 * 1024, (messages, analyzed)


# -- one copy of equal tracing values ---------------------------------------------------------

def test_calls_carrying_the_same_context_share_one_copy() -> None:
    """An app that propagates sends on the headers it received: the outbound call's values and
    contexts equal its inbound request's, and are kept once (a copy was about half of what a
    call cost). Sharing only ever joins equal values: every call still carries its own."""
    # (as ``pair`` makes them: the analysis then logs them to disk, where marshal writes an
    # object shared by calls of one batch once)
    calls = [c for p in MESH for c in pair(read_messages(p, CaptureSummary(p)))]
    by_values: dict[tuple[tuple[str, str], ...], list[Call]] = {}
    for c in calls:
        if c.values:
            by_values.setdefault(tuple(c.values.items()), []).append(c)
    shared = 0
    for same in by_values.values():
        for a, b in itertools.combinations(same, 2):
            if a.capture == b.capture and a.trace == b.trace:
                assert a.values is b.values and a.trace is b.trace and a.header_names is b.header_names
                shared += 1
    assert shared > 0
    # each call's values still name its own headers, in wire order
    for c in calls:
        assert c.header_names == tuple(c.values)


def test_guessed_contexts_wait_encoded_until_judged() -> None:
    """A request of an HTTP/2 capture that starts mid-connection may carry guessed contexts:
    they wait, encoded in the observer's log (on disk past a bound), until corroboration
    judges them, and the call then carries what it would have carried had they waited as
    objects."""
    path = str(CAPTURES / "grpc-warm.pcap")
    plain = pair(read_messages(path, CaptureSummary(path)))
    observer = Observer()
    calls = pair(observer.wrap(read_messages(path, CaptureSummary(path))), observer.attach)
    observer.apply(calls)
    assert any(t.guessed for c in plain for t in c.trace)
    assert observer.guesses and not any(t.guessed for c in calls for t in c.trace)
    unknown_before = sum(len(c.unknown) for c in calls)
    corroborate(calls, [observer])
    assert not observer.guesses
    # nothing in the capture corroborates its guesses: each is dropped and counted unknown
    assert [c.trace for c in calls] == [tuple(t for t in c.trace if not t.guessed) for c in plain]
    assert sum(len(c.unknown) for c in calls) > unknown_before


def _judged(path: str, guesses: SpillLog | list[Any]) -> list[Call]:
    observer = Observer(guesses=guesses)
    calls = pair(observer.wrap(read_messages(path, CaptureSummary(path))), observer.attach)
    observer.apply(calls)
    corroborate(calls, [observer])
    return calls


def test_guesses_judged_the_same_from_memory_from_disk_and_sent_between_processes() -> None:
    """What waits for corroboration comes back the same whether its log stayed in memory,
    went to disk at once (a batch of one record), or came from a worker as a plain list: every
    call of every fixture is equal."""
    with_guesses = 0
    for capture in readable_captures():
        path = str(CAPTURES / capture)
        observer = Observer()
        plain = pair(observer.wrap(read_messages(path, CaptureSummary(path))), observer.attach)
        observer.apply(plain)
        if not observer.guesses:
            continue
        with_guesses += 1
        records = list(observer.guesses)
        corroborate(plain, [observer])
        assert _judged(path, SpillLog(batch=1)) == plain, capture
        assert _judged(path, []) == plain, capture
        # a worker's log, rebuilt in this process from the records it sent
        observer = Observer(guesses=[])
        calls = pair(observer.wrap(read_messages(path, CaptureSummary(path))), observer.attach)
        observer.apply(calls)
        assert observer.guesses == records
        sent, sent_calls = rebuild(flatten((observer, calls)))
        corroborate(sent_calls, [sent])
        assert sent_calls == plain, capture
    assert with_guesses >= 1


_TRACED = """
import sys, tracemalloc
from analyzer.analysis import analyze
tracemalloc.start()
r = analyze([sys.argv[1]])
print(len(r.calls), tracemalloc.get_traced_memory()[1])
"""


def _traced_peak(path: Path) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _TRACED, str(path)], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=600)
    calls, peak = out.stdout.split()
    return int(calls), int(peak)


def test_what_a_mid_connection_grpc_request_costs_the_analysis(tmp_path: Path) -> None:
    """gRPC over h2c from mid-connection (bench/gen_h2_capture.py): every request carries
    headers the capture cannot show and names guessed from values' shapes, which wait for
    corroboration. Measured as the peak of Python's allocations in a fresh process at two
    sizes (deterministic, unlike RSS): each request more costs under 1 KiB. They cost
    1.4 KiB when the guesses waited in memory and each unknown-header list was a copy,
    about 550 bytes since."""
    sizes = []
    for mib in (1, 3):
        path = tmp_path / f"h2-{mib}.pcap"
        subprocess.run([sys.executable, str(ROOT / "bench" / "gen_h2_capture.py"), str(path),
                        "--size-mb", str(mib), "-q"], check=True, cwd=ROOT, timeout=600)
        sizes.append(_traced_peak(path))
    (calls_small, peak_small), (calls_large, peak_large) = sizes
    assert calls_large > 2 * calls_small > 2000
    per_call = (peak_large - peak_small) / (calls_large - calls_small)
    assert per_call < 1024, per_call


_EVERY_OUTPUT = """
import json, sys
from click.testing import CliRunner
from analyzer.cli import cli
runner = CliRunner()
for args in json.loads(sys.argv[1]):
    r = runner.invoke(cli, args, catch_exceptions=False)
    sys.stdout.write(f"== {args} {r.exit_code}\\n{r.output}")
"""


def test_every_output_is_the_same_whichever_part_of_the_analysis_is_on_disk() -> None:
    """The analysis keeps calls, guesses, outcomes and spans in logs a batch at a time, each
    full batch on disk. With batches of one record (``TRACEWIRE_SPILL_BATCH=1``) every one of
    them goes through its file and every read out of order decodes a batch: the outputs of
    every fixture, set of pods and before/after pair are those of the default, where small
    captures never leave memory."""
    sets = [[str(CAPTURES / c)] for c in readable_captures()]
    sets += [sorted(str(p) for p in (CAPTURES / d).glob("*.pcap")) for d in ("mesh", "pods")]
    runs = [["analyze", "--format", "json", *s] for s in sets]
    runs += [["export", "--to", "zipkin", *s] for s in sets if len(s) > 1]
    runs += [["diff", "--format", "json", str(CAPTURES / "diff" / "productpage-newbug.pcap"),
              str(CAPTURES / "diff" / "productpage-fixed.pcap")]]
    outputs = []
    for batch in ("1", "1024"):
        env = dict(os.environ, TRACEWIRE_SPILL_BATCH=batch, NO_COLOR="1")
        out = subprocess.run([sys.executable, "-c", _EVERY_OUTPUT, json.dumps(runs)], capture_output=True,
                             text=True, check=True, cwd=ROOT, env=env, timeout=900)
        outputs.append(out.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n== ") == len(runs) - 1 and '"traces": [' in outputs[0]
    assert not [line for line in outputs[0].splitlines() if line.startswith("== [") and line.endswith("] 2")]
