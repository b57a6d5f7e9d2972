"""A progress line on stderr while a long pass reads its captures: how much of the file is
read (or how many frames, for stdin), for a person at a terminal, never for a pipe or CI.

Strategy: the pipeline already says which capture and reader it is on (``POSITION``) and
the reader counts frames, so a daemon thread can look a few times a second without the
pipeline doing anything per record. It writes nothing in the first second (a short run shows
no flicker) and stops for good, erasing its line, before the first byte of the report
reaches standard output (``StopOnWrite``), so the two never mix on one screen.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from analyzer.pipeline import POSITION, Position
from analyzer.report.redact import escape

INTERVAL = 0.25  # seconds between updates: a few a second is all a reader can follow
DELAY = 1.0  # seconds before the first: a short run shows nothing


def wanted(stderr: TextIO | None = None, env: dict[str, str] | None = None) -> bool:
    """A terminal on stderr, and not a CI job (CI=true and the like)."""
    env = dict(os.environ) if env is None else env
    if env.get("CI", "").lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr if stderr is None else stderr
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _file_of(stream: object) -> io.FileIO | None:
    """The file under a reader's buffers and decompressor: its offset is the bytes read."""
    for _ in range(12):  # the chain is a handful of wrappers deep; never loop forever
        if isinstance(stream, io.FileIO):
            return stream
        for attr in ("raw", "_rest", "fileobj"):
            inner = getattr(stream, attr, None)
            if inner is not None:
                stream = inner
                break
        else:
            return None
    return None


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def describe(position: Position) -> str | None:
    """What the pass is at: ``name: 45% (90.0 of 200.0 MB), frame 123456``, or frames only
    when the size cannot be known (stdin, a pipe). None between passes."""
    name, reader = position.capture, position.reader
    if name is None or reader is None:
        return None
    frames = f"frame {reader.frames}"
    done = total = None
    f = _file_of(reader.stream)
    if f is not None:
        try:
            st = os.fstat(f.fileno())
            if st.st_size > 0 and os.path.isfile(name):
                done, total = f.tell(), st.st_size
        except (OSError, ValueError):  # a pipe cannot tell; a closed file neither
            pass
    label = "standard input" if name == "-" else escape(os.path.basename(name) or name)
    if done is None or total is None:
        return f"{label}: {frames}"
    done = min(done, total)
    return f"{label}: {100 * done // total}% ({_size(done)} of {_size(total)}), {frames}"


class Progress:
    """The progress line, drawn by a daemon thread until ``stop``."""

    def __init__(self, stream: TextIO, position: Position = POSITION, interval: float = INTERVAL,
                 delay: float = DELAY, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.position = position
        self.interval = interval
        self.delay = delay
        self.clock = clock
        self.drawn = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        # not `_thread`: mypyc names the C field `__thread`, a keyword of GCC
        self._drawer: threading.Thread | None = None
        self._start = clock()

    def start(self) -> Progress:
        self._drawer = threading.Thread(target=self._run, name="tracewire-progress", daemon=True)
        self._drawer.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            if self.clock() - self._start >= self.delay:
                self.tick()

    def tick(self) -> None:
        """Draw the line once (the thread calls this; tests may too)."""
        text = describe(self.position)
        with self._lock:
            if self._stopped.is_set():
                return
            try:
                if text is None:
                    if self.drawn:
                        self.stream.write("\r\x1b[K")
                        self.stream.flush()
                        self.drawn = False
                    return
                self.stream.write(f"\r\x1b[K{text}")
                self.stream.flush()
                self.drawn = True
            except (OSError, ValueError):  # the terminal went away: nothing more to show
                self._stopped.set()

    def stop(self) -> None:
        """Stop for good and erase the line; safe to call more than once, from any thread."""
        with self._lock:
            if self._stopped.is_set() and not self.drawn:
                return
            self._stopped.set()
            if self.drawn:
                try:
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
                self.drawn = False


class StopOnWrite:
    """Standard output that stops the progress line before its first write, so a report
    never lands in the middle of it. Everything else is the wrapped stream's."""

    def __init__(self, stream: TextIO, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    def write(self, s: Any) -> int:
        if s:
            self._progress.stop()
        result: int = self._stream.write(s)
        return result

    def writelines(self, lines: Any) -> None:
        self._progress.stop()
        self._stream.writelines(lines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
