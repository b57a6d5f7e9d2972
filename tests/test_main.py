"""The entry point (analyzer/__main__.py): Ctrl-C at any moment after tracewire's first line
runs ends with one line and exit status 130, and start-up loads only what a command uses.

The interrupts are real: SIGINT sent to the command's process group (as a terminal's Ctrl-C
is, so that --jobs workers get it too) at seeded random moments of its start-up, while its
modules load, its options are parsed and the capture begins to be read.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures import CAPTURES, ROOT

MESH = [str(CAPTURES / "pods" / "productpage.pcap"), str(CAPTURES / "pods" / "reviews.pcap")]
INTERRUPTED = b"tracewire: interrupted\n"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TRACEWIRE_DEBUG", "PYTHONPROFILEIMPORTTIME")}


def _guarded(pid: int) -> bool:
    """Whether tracewire's own code has started: the CLI's first import (csv) has mapped its C
    module. Before that the interpreter starts and runs site, and a Ctrl-C there is Python's:
    its traceback (or, before Python's handler exists, death by SIGINT) is nothing tracewire
    can change."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            return "/_csv." in f.read()
    except OSError:
        return False


def _interrupt_at(args: list[str], delay: float) -> tuple[int, bytes]:
    """Start ``python -m analyzer ARGS`` reading a capture's first bytes from a pipe left open
    (so it runs until interrupted), send SIGINT to its process group ``delay`` seconds after
    its own code started; give its exit status and stderr."""
    r, w = os.pipe()
    os.write(w, (CAPTURES / "pods" / "reviews.pcap").read_bytes()[:2000])
    p = subprocess.Popen([sys.executable, "-m", "analyzer", *args], stdin=r, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, cwd=ROOT, env=_env(), start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _guarded(p.pid):
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "the command never imported csv: see _guarded"
            time.sleep(0.0005)
        time.sleep(delay)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        os.close(r)
        os.close(w)
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, err


def _trials(args: list[str], seed: int, n: int, spread: float) -> None:
    rng = random.Random(seed)
    # half of them within the first 30 ms: click and the first stages loading
    delays = [rng.uniform(0, 0.03) if k % 2 else rng.uniform(0, spread) for k in range(n)]
    seen = [(round(d, 4), *_interrupt_at(args, d)) for d in delays]
    assert [s for s in seen if s[1:] != (130, INTERRUPTED)] == [], seen


def test_ctrl_c_while_starting_up_exits_130_in_one_line() -> None:
    _trials(["messages", "--format", "jsonl", "-"], seed=9, n=10, spread=0.3)


def test_ctrl_c_while_analyze_starts_its_workers_exits_130_in_one_line() -> None:
    # the workers (spawned interpreters) get the group's SIGINT too, at any moment of theirs
    _trials(["analyze", "--jobs", "2", *MESH, "-"], seed=10, n=6, spread=0.6)


def _loaded(*args: str) -> set[str]:
    """tracewire's modules (and click, orjson, tabulate) a run of the command has loaded, read
    from sys.modules as it exits (``-X importtime`` does not report the compiled build's
    imports of its own modules)."""
    code = ("import atexit, sys; "
            "atexit.register(lambda: sys.stderr.write('loaded ' + ' '.join(sorted(sys.modules)) + '\\n')); "
            "sys.argv = ['tracewire', *sys.argv[1:]]; "
            "from analyzer.__main__ import main; main()")
    p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                       env=_env(), check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    names = p.stderr.splitlines()[-1].split()
    assert names[0] == "loaded", p.stderr
    return {n for n in names[1:] if n.split(".")[0] in ("analyzer", "click", "orjson", "tabulate")}


def test_help_and_version_load_no_stage() -> None:
    assert {n for n in _loaded("--help") if n.startswith("analyzer")} == {
        "analyzer", "analyzer.__main__", "analyzer.cli", "analyzer.errors"}
    # --version names the build, and with it the Huffman kernel the HTTP/2 stage loads
    assert not {n for n in _loaded("--version") if n.startswith(("analyzer.analysis", "analyzer.report",
                                                                  "analyzer.pipeline", "orjson", "tabulate"))}


@pytest.mark.parametrize("args", [
    ["messages", str(CAPTURES / "h2c-nghttp.pcap")],
    ["messages", "--format", "csv", str(CAPTURES / "h2c-nghttp.pcap")],
    ["info", str(CAPTURES / "curl-basic.pcap")],
])
def test_messages_and_info_load_no_analysis(args: list[str]) -> None:
    loaded = _loaded(*args)
    assert "analyzer.pipeline" in loaded  # they did read the capture
    assert not {n for n in loaded if n.startswith(("analyzer.analysis", "analyzer.report.select", "tabulate",
                                                   "orjson"))}, loaded


def test_the_entry_point_loads_nothing_before_its_guard() -> None:
    """Importing the entry point module (as the console script does before calling main)
    loads only the package's lazy __init__: no stage, no click."""
    code = ("import sys, analyzer.__main__; "
            "print(sorted(m for m in sys.modules if m.startswith(('analyzer', 'click'))))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=_env(),
                       check=True, timeout=60)
    assert p.stdout.strip() == "['analyzer', 'analyzer.__main__']"


def test_the_console_script_is_the_guarded_entry_point() -> None:
    setup = (Path(ROOT) / "setup.cfg").read_text()
    assert "    tracewire = analyzer.__main__:main" in setup.splitlines()


def test_the_command_and_its_workers_collect_garbage_rarely() -> None:
    """The command runs with GC_THRESHOLDS, not CPython's defaults (which walked analyze's
    records again and again), and the output is the same with --jobs workers (set alike)."""
    from analyzer.__main__ import GC_THRESHOLDS

    code = ("import atexit, gc, sys; "
            "atexit.register(lambda: sys.stderr.write(f'gc {gc.get_threshold()}\\n')); "
            "sys.argv = ['tracewire', *sys.argv[1:]]; "
            "from analyzer.__main__ import main; main()")
    caps = [str(CAPTURES / "pods" / "productpage.pcap"), str(CAPTURES / "pods" / "reviews.pcap")]
    outs = []
    for jobs in ("1", "2"):
        p = subprocess.run([sys.executable, "-c", code, "analyze", "--format", "json", "--jobs", jobs, *caps],
                           capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
        assert p.returncode == 0, p.stderr
        assert f"gc {GC_THRESHOLDS}" in p.stderr.splitlines()
        outs.append(p.stdout)
    assert outs[0] == outs[1] and '"findings"' in outs[0]


def test_a_ctrl_c_where_python_would_drop_it_comes_back() -> None:
    """A KeyboardInterrupt raised in importlib's module-lock callback or a __del__ is printed
    as "ignored" and lost (a command then read its pipe for ever): there the handler defers
    it by 10 ms (SIGALRM); anywhere else it raises at once, as Python's own handler does."""
    import signal
    import types

    from analyzer.__main__ import _on_ctrl_c

    def frame_of(name: str, filename: str) -> types.FrameType:
        scope: dict[str, object] = {}
        exec(compile(f"import sys\ndef {name}():\n    return sys._getframe()\n", filename, "exec"), scope)
        made = scope[name]
        assert callable(made)
        got = made()
        assert isinstance(got, types.FrameType)
        return got

    old = signal.signal(signal.SIGALRM, signal.SIG_IGN)
    try:
        for name, filename in [("cb", "<frozen importlib._bootstrap>"), ("__del__", "any.py")]:
            _on_ctrl_c(signal.SIGINT, frame_of(name, filename))  # returns: no exception to lose
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.01
            signal.setitimer(signal.ITIMER_REAL, 0)
        for name, filename in [("cb", "app.py"), ("read", "<frozen importlib._bootstrap>")]:
            with pytest.raises(KeyboardInterrupt):
                _on_ctrl_c(signal.SIGINT, frame_of(name, filename))
            assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
