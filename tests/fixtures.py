"""Where the fixture captures are, and which of them hold HTTP."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from analyzer.analysis import Options
from analyzer.analysis.engine import _Capture
from analyzer.analysis.model import Call

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def manifest() -> list[dict[str, Any]]:
    return list(json.loads((CAPTURES / "MANIFEST.json").read_text()))


def readable_captures() -> list[str]:
    """Every fixture that is a capture (not the deliberately broken inputs)."""
    return sorted(e["file"] for e in manifest() if not e.get("error"))


def recorded_captures() -> list[str]:
    return sorted(
        e["file"] for e in manifest() if not e.get("error") and e.get("made_by", "").startswith("record_")
    )


def run_cli(*args: str) -> tuple[int, str, str]:
    """``tracewire ARGS`` in-process: exit status, stdout, stderr; a crash is raised as is."""
    from click.testing import CliRunner

    from analyzer.cli import cli

    r = CliRunner().invoke(cli, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def _blocked_reading_stdin(pid: int) -> bool:
    """Whether the process waits in a system call on file descriptor 0 (its first argument,
    from /proc/PID/syscall); True where the kernel does not say (the drained pipe is then
    all there is to go by)."""
    try:
        with open(f"/proc/{pid}/syscall", encoding="ascii") as f:
            fields = f.read().split()
    except OSError:
        return True
    if not fields or fields[0] == "running":
        return False
    return len(fields) > 1 and fields[1] == "0x0"


def interrupt_while_reading(args: list[str], capture: Path) -> tuple[int, bytes]:
    """Run ``python -m analyzer ARGS`` (one of them ``-``) on the first 2000 bytes of
    ``capture`` through a pipe left open, send SIGINT once the command has read them all,
    and give its exit status and stderr."""
    import fcntl
    import os
    import signal
    import struct
    import subprocess
    import sys
    import termios
    import time

    r, w = os.pipe()
    os.write(w, capture.read_bytes()[:2000])
    env = {k: v for k, v in os.environ.items() if k != "TRACEWIRE_DEBUG"}
    p = subprocess.Popen([sys.executable, "-m", "analyzer", *args], stdin=r,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    try:
        # our copy of the read end tells when the command has read everything sent: it is
        # then past its imports and blocked reading the capture
        deadline = time.monotonic() + 120
        while struct.unpack("i", fcntl.ioctl(r, termios.FIONREAD, b"\0" * 4))[0]:
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        # ... and once it has parsed them and waits in read(0, ...) for more: under load the
        # parsing of what it read can take a while, and this is the Ctrl-C being tested
        while not _blocked_reading_stdin(p.pid):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        os.close(r)
        os.close(w)
        if p.poll() is None:
            p.kill()
    return p.returncode, err


@dataclasses.dataclass
class CaptureView:
    """A capture's inbound and outbound calls, read once: the analysis reads its calls back
    from disk at each ask, so a test that changes calls keeps the lists it changed."""

    path: str
    inbound: list[Call]
    outbound: list[Call]
    inbound_service: Callable[[Call], str]


def capture_views(paths: Sequence[str | Path]) -> list[CaptureView]:
    caps = [_Capture(str(p), Options()) for p in paths]
    return [CaptureView(c.path, c.inbound, c.outbound, c.inbound_service) for c in caps]
