"""Reading several captures at once (``--jobs N``, issue 10 item 7).

Strategy: the first stage of the analysis (read a capture, pair its requests with their
responses, tell inbound from outbound) depends on nothing but that capture, so each capture
is read in a process of its own; what comes back is the per-capture view the joins need, and
the joins (corroboration, naming, attribution, traces) run in this process in the order the
captures were given. The result is the one a single process gives: the views are the same
values, only built elsewhere.

- 'spawn' processes: a fresh interpreter holds no lock a thread of this one (the progress
  line) held at the moment of a fork.
- Ctrl-C: the workers ignore SIGINT (a terminal sends it to the whole process group, and
  each would print its own traceback); this process gets KeyboardInterrupt as it waits,
  terminates them, and the command exits 130 as always.
- Errors: an ``AnalyzerError`` in a worker is raised here as the same one line; anything
  else becomes ``WorkerError``, which names the capture, frame and line as the command's
  own internal-error line does, and keeps the worker's traceback for ``--debug``.
- Standard input ("-") can only be read by this process: it is read here, in its place,
  while the workers read the files.
- What crosses between processes is plain data (``flatten``/``rebuild``): the compiled
  build's classes cannot be pickled (mypyc's constructor runs ``__init__``), so a record
  travels as its class's name and its fields, and is built again by its constructor.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import signal
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from analyzer.analysis.legs import Options
from analyzer.errors import AnalyzerError

if TYPE_CHECKING:
    from multiprocessing.pool import AsyncResult

T = TypeVar("T")


class RemoteTraceback(Exception):
    """The traceback of an error in a worker, as text: shown as the cause with --debug."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WorkerError(Exception):
    """An unexpected error while a worker read a capture. ``where`` is the line the command
    prints ("CAPTURE: frame N: internal error (KeyError at analyzer/x.py:12)")."""

    def __init__(self, where: str) -> None:
        super().__init__(where)
        self.where = where


# What a worker sends back (a tuple: plain data): the view flattened, or the error that
# stopped it, or an unexpected error's (where, traceback text).
_Outcome = tuple[object, AnalyzerError | None, tuple[str, str] | None]


def default_jobs() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


# Starting a worker costs about half a second (a fresh interpreter imports the package):
# by default, captures this small in all are read in this process.
WORTH_A_WORKER = 16 << 20


def auto_jobs(paths: Sequence[str]) -> int:
    """``--jobs``'s default: one process per core, when the captures are large enough to
    repay starting them; else 1."""
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p) if p != "-" else 0
        except OSError:
            continue  # the reader reports it
    return default_jobs() if total >= WORTH_A_WORKER else 1


def read_captures(paths: Sequence[str], opts: Options, jobs: int,
                  make: Callable[[str, Options], T],
                  remote: Callable[[str, Options], T] | None = None) -> list[T]:
    """``[make(p, opts) for p in paths]``, by up to ``jobs`` processes at once; a worker
    calls ``remote`` instead when given (what ``make`` keeps in files of its process must
    travel as plain data)."""
    files = [p for p in paths if p != "-"]
    workers = min(jobs, len(files))
    if workers <= 1 or len(paths) <= 1:
        return [make(p, opts) for p in paths]
    import multiprocessing  # only when there are workers: a megabyte or two of modules
    from multiprocessing import resource_tracker

    ctx = multiprocessing.get_context("spawn")
    # The workers start with SIGINT blocked, which they inherit (and never undo): a spawned
    # interpreter would otherwise take the group's Ctrl-C as KeyboardInterrupt while it starts
    # and imports, before _ignore_sigint runs, and print its traceback. A Ctrl-C for this
    # process meanwhile waits, and is raised here once unblocked. The resource tracker is
    # started first: starting it unblocks SIGINT (SIG_UNBLOCK, not the mask it found).
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        pool = ctx.Pool(workers, initializer=_ignore_sigint)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # inside: the pool is ended below
        pending: dict[int, AsyncResult[_Outcome]] = {
            n: pool.apply_async(_read, (remote or make, p, opts)) for n, p in enumerate(paths) if p != "-"}
        views: list[T] = []
        for n, p in enumerate(paths):
            job = pending.get(n)
            if job is None:
                views.append(make(p, opts))  # stdin: read here, in its place
                continue
            views.append(cast(T, _unwrap(job.get())))
        pool.close()
        return views
    finally:
        # on an error or Ctrl-C the other workers' captures are of no use any more
        pool.terminate()
        pool.join()


def _ignore_sigint() -> None:
    import gc

    from analyzer.__main__ import GC_THRESHOLDS

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*GC_THRESHOLDS)  # as the command's own process does


def _read(make: Callable[[str, Options], T], path: str, opts: Options) -> _Outcome:
    try:
        return flatten(make(path, opts)), None, None
    except AnalyzerError as err:
        return None, _portable(err), None
    except Exception as bug:  # not ``err``: mypyc gives a name one type per function
        return None, None, (_where(bug), "".join(traceback.format_exception(bug)))


def _unwrap(outcome: _Outcome) -> object:
    data, error, crash = outcome
    if error is not None:
        raise error
    if crash is not None:
        where, tb = crash
        failure = WorkerError(where)
        failure.__cause__ = RemoteTraceback(tb)  # set, not ``raise from``: compiled, that drops it
        raise failure
    return rebuild(data)


# -- plain data across processes ---------------------------------------------------------------
# A container or record becomes a list [tag, number, ...]: lists are never left as they are,
# so anything else in the data is a value (str, bytes, int, float, bool, None). The number
# lets a second reference to the same object (a call in both ``calls`` and ``inbound``)
# come back as the same object.

_REF, _RECORD, _LIST, _TUPLE, _DICT, _COUNTER, _SET, _FROZENSET = range(8)
_VALUES = (str, bytes, int, float, bool, type(None))


def flatten(root: object) -> object:
    """``root`` (records, lists, tuples, dicts, sets of them and of plain values) as plain
    data that ``rebuild`` turns back into equal objects, shared references kept."""
    seen: dict[int, int] = {}
    alive: list[object] = []  # the ids above stay unique while this holds the objects

    def enc(o: object) -> object:
        if isinstance(o, _VALUES):
            return o
        n = seen.get(id(o))
        if n is not None:
            return [_REF, n]
        n = len(alive)
        seen[id(o)] = n
        alive.append(o)
        if isinstance(o, list):
            return [_LIST, n, [enc(x) for x in o]]
        if isinstance(o, tuple):
            return [_TUPLE, n, [enc(x) for x in o]]
        if isinstance(o, Counter):
            return [_COUNTER, n, [[enc(k), enc(v)] for k, v in o.items()]]
        if isinstance(o, dict):
            return [_DICT, n, [[enc(k), enc(v)] for k, v in o.items()]]
        if isinstance(o, frozenset):
            return [_FROZENSET, n, [enc(x) for x in o]]
        if isinstance(o, set):
            return [_SET, n, [enc(x) for x in o]]
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            cls = type(o)
            fields = [f.name for f in dataclasses.fields(o)]
            return [_RECORD, n, cls.__module__, cls.__qualname__, fields,
                    [enc(getattr(o, name)) for name in fields]]
        raise TypeError(f"cannot send a {type(o).__name__} to another process")

    return enc(root)


def rebuild(data: object) -> Any:
    """The objects ``flatten`` was given, built again (records by their constructors)."""
    made: dict[int, object] = {}

    def dec(x: object) -> object:
        if not isinstance(x, list):
            return x
        tag, n = x[0], x[1]
        if tag == _REF:
            return made[n]
        out: object
        if tag == _LIST:
            out = [dec(y) for y in x[2]]
        elif tag == _TUPLE:
            out = tuple(dec(y) for y in x[2])
        elif tag == _DICT:
            out = {dec(k): dec(v) for k, v in x[2]}
        elif tag == _COUNTER:
            out = Counter({dec(k): dec(v) for k, v in x[2]})
        elif tag == _SET:
            out = {dec(y) for y in x[2]}
        elif tag == _FROZENSET:
            out = frozenset(dec(y) for y in x[2])
        else:
            cls = getattr(importlib.import_module(x[2]), x[3])
            out = cls(**{name: dec(v) for name, v in zip(x[4], x[5], strict=True)})
        made[n] = out
        return out

    return dec(data)


def _portable(err: AnalyzerError) -> AnalyzerError:
    """The error itself when it survives pickling (its class and message), else its message
    as an ``AnalyzerError``: the command prints the message either way."""
    try:
        back = pickle.loads(pickle.dumps(err))
    except Exception:
        return AnalyzerError(str(err))
    return back if isinstance(back, AnalyzerError) and str(back) == str(err) else AnalyzerError(str(err))


def _where(err: BaseException) -> str:
    """The command's line for an unexpected error, as the command would say it."""
    from analyzer.pipeline import internal_error

    return internal_error(err)
