"""The ``tracewire`` command's entry point: ``python -m analyzer`` and the console script.

Strategy: Ctrl-C must end the command the same way at every moment, with one line on stderr
and exit status 130, while its modules load too. So this module loads nothing but ``sys``
before its guard is in place, and the command (click and every stage it uses) is imported
inside the guard. ``analyzer/__init__.py`` loads nothing either (its API is lazy), because
Python runs it before this module. Once the command is over, however it ended, Ctrl-C is
ignored: the interpreter's own shutdown (flushing, atexit, threads) then cannot be
interrupted into a traceback.

Before Python has set up its own SIGINT handler (the first few milliseconds of the
interpreter's start), a Ctrl-C ends the process as the signal does by default: no output,
and a shell shows status 130 for it too.
"""

from __future__ import annotations

import sys
from types import FrameType

# gc.set_threshold for a command's process and its --jobs workers (analysis/parallel.py).
GC_THRESHOLDS = (100_000, 50, 50)


def main() -> None:
    """Run the command; end the process with its status (raises ``SystemExit``). Ctrl-C is
    ignored afterwards: this is for a process that ends here, not for use in a library."""
    try:
        try:
            import signal

            signal.signal(signal.SIGINT, _on_ctrl_c)
            signal.signal(signal.SIGALRM, _on_ctrl_c)
            import gc

            # A command keeps many long-lived records (analyze: one per request) and makes
            # little cyclic garbage, yet CPython's default thresholds walk every tracked
            # object again and again: ~14 % of analyze's CPU on gRPC. Collecting rarely
            # keeps the output and the peak memory the same (measured on every bench shape).
            gc.set_threshold(*GC_THRESHOLDS)
            from analyzer.cli import main as run

            run()
        finally:
            _ignore_ctrl_c()
    except KeyboardInterrupt:
        # Outside the command group's own handler (which flushes the output, says the same
        # line and exits 130): while the modules load, or between click's steps.
        _ignore_ctrl_c()
        _interrupted()
        raise SystemExit(130) from None
    except Exception as err:
        _ignore_ctrl_c()
        if not caused_by_ctrl_c(err):
            raise
        _interrupted()
        raise SystemExit(130) from None


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGINT (and SIGALRM, its deferred delivery): KeyboardInterrupt, as Python's own handler
    raises it, except inside code whose exceptions CPython prints as "ignored" and drops: a
    ``__del__`` or importlib's module-lock weakref callback (``cb``), run whenever an import
    releases a lock. A Ctrl-C raised there was lost and the command went on reading its pipe
    for ever; it comes back 10 ms later instead, out of that code."""
    import signal

    while frame is not None:
        code = frame.f_code
        if code.co_name == "__del__" or (code.co_name == "cb"
                                         and code.co_filename.startswith("<frozen importlib")):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        frame = frame.f_back
    raise KeyboardInterrupt


def caused_by_ctrl_c(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt caused ``err``: Python 3.11 turns any exception raised while
    a class is made (``__set_name__``: a dataclass with slots, loading) into RuntimeError."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _ignore_ctrl_c() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 0)  # a deferred Ctrl-C (_on_ctrl_c) has no more to do
    # CPython notes a KeyboardInterrupt that leaves code run by exec() or eval() of a string
    # (dataclasses and namedtuple build their methods so, while modules load) in a global
    # flag, handled or not, and at exit kills the process with SIGINT when the flag is set
    # (status -2, not 130). Running an empty string resets the flag.
    exec("")


def _interrupted() -> None:
    """Whatever was decoded reaches the output first, then the one line."""
    import contextlib
    import os

    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):  # a closed pipe or full disk: nowhere left to write it
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    with contextlib.suppress(OSError, ValueError):
        if sys.stderr is not None:
            sys.stderr.write("tracewire: interrupted\n")
            sys.stderr.flush()


if __name__ == "__main__":
    main()
