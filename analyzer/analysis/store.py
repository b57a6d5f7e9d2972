"""A store of calls on disk, so that what ``analyze`` holds need not grow with the number of
requests a capture shows (issue 10 item 6).

Strategy: a call is written as it is made, as one row of a temporary SQLite database, and
read back when a later stage needs it; only a bounded cache of decoded calls stays in
memory. What the joins look up (capture, request key, trace id, start time) are indexed
columns beside the row's encoded call, so a lookup reads the few rows it needs.

- Encoding: a call is the tuple of its fields in declaration order, its tracing contexts
  tuples of theirs, written with ``marshal`` (every field is a str, int, bool, None or a
  tuple/dict of them). It is several times faster than pickle or JSON for this shape and
  needs no class to be picklable (the compiled build's records are not).
- The database is SQLite's private temporary file (``connect("")``): it lives in the
  temporary directory (``TMPDIR``), is deleted when the connection closes and, on POSIX,
  is unlinked as soon as it is opened, so not even a SIGKILL leaves it behind. Its page
  cache is bounded (``CACHE_KIB``): a small store never leaves memory, everything beyond
  the cache is on disk.
- Rows are inserted in batches (``executemany``): one statement per call would cost more
  than encoding it.
- A mutable call is never shared between the store and its reader: ``get`` hands out the
  cached object, so a change made to it must be written back with ``put``.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
import sys
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import IO, Any

from analyzer.analysis.model import Call
from analyzer.tracing import TraceContext

# Rows are written this many at a time.
BATCH = 512
# Decoded calls kept in memory at most (least recently used forgotten first).
CACHE_CALLS = 4096
# SQLite's own page cache for the store, in KiB.
CACHE_KIB = 8192
# Rows read per query while iterating in order.
READ_AHEAD = 256
# A SpillLog holds this many records in memory; each batch this long goes to its file.
SPILL_BATCH = 1024

_CALL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Call))
_TRACE_AT = _CALL_FIELDS.index("trace")
# Fields with few distinct values across thousands of calls: one copy of each when decoded.
_INTERNED = tuple(_CALL_FIELDS.index(n) for n in
                  ("capture", "protocol", "src", "dst", "method", "authority", "role", "service"))
_MARSHAL_VERSION = 4


def trace_fields(trace: tuple[TraceContext, ...]) -> tuple[tuple[Any, ...], ...]:
    """Tracing contexts as plain tuples (what ``marshal`` writes) ``trace_of`` turns back
    into equal ones."""
    # Named one by one, in the constructor's order (the round-trip tests hold it
    # to that): an attribute read by name is a generic lookup in the compiled build.
    return tuple((t.format, t.headers, t.raw, t.trace_id, t.span_id, t.parent_span_id, t.sampled,
                  t.request_id, t.violations, t.guessed) for t in trace)


def trace_of(fields: tuple[tuple[Any, ...], ...]) -> tuple[TraceContext, ...]:
    return tuple(TraceContext(*t) for t in fields)


def encode(call: Call) -> bytes:
    """The call as bytes ``decode`` turns back into an equal call."""
    values: list[Any] = [getattr(call, name) for name in _CALL_FIELDS]
    values[_TRACE_AT] = trace_fields(call.trace)
    return marshal.dumps(tuple(values), _MARSHAL_VERSION)


def decode(data: bytes) -> Call:
    values: list[Any] = list(marshal.loads(data))
    values[_TRACE_AT] = trace_of(values[_TRACE_AT])
    for n in _INTERNED:
        v = values[n]
        if v is not None:
            values[n] = sys.intern(v)
    return Call(*values)


class SpillLog:
    """Records (values ``marshal`` writes: tuples of str, bytes, int, bool, None) read back in
    the order added, any number of times. They are held in memory ``batch`` at a time; each
    full batch goes, marshalled whole, to an anonymous temporary file (unlinked when made,
    so it never outlives the process). For what is written once per request and read back
    whole, in order, later (``evidence.Observer``'s guesses): nothing is looked up, so a file
    read front to back is all the store it needs, and one ``marshal`` call per batch each
    way costs far less than SQLite, or a Python loop over records, would."""

    __slots__ = ("_batch", "_count", "_file", "batch")

    def __init__(self, batch: int = SPILL_BATCH) -> None:
        self._batch: list[Any] = []
        self._file: IO[bytes] | None = None
        self._count = 0
        self.batch = max(1, batch)

    def append(self, record: Any) -> None:
        self._batch.append(record)
        self._count += 1
        if len(self._batch) >= self.batch:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            import tempfile  # only once there is something to spill: most logs never do

            # open as long as the log: ``close`` (or the log's end) closes it
            self._file = tempfile.TemporaryFile(prefix="tracewire-")  # noqa: SIM115
        data = marshal.dumps(self._batch, _MARSHAL_VERSION)
        self._file.seek(0, os.SEEK_END)
        self._file.write(len(data).to_bytes(8, "little"))
        self._file.write(data)
        self._batch = []

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[Any]:
        f = self._file
        if f is not None:
            f.seek(0)
            while head := f.read(8):
                batch: list[Any] = marshal.loads(f.read(int.from_bytes(head, "little")))
                yield from batch
        yield from list(self._batch)  # the newest, not yet in the file

    def close(self) -> None:
        """Forget every record (the file, if any, is deleted)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._batch = []
        self._count = 0


class StoreError(Exception):
    """The store was used after it was closed."""


class CallStore:
    """Calls on disk in the order they were added (``add`` returns each one's number, from
    0), with a bounded cache of decoded calls. Use as a context manager, or ``close``."""

    def __init__(self, cache_calls: int = CACHE_CALLS, cache_kib: int = CACHE_KIB) -> None:
        # Imported here: every analyze imports this module (evidence encodes contexts with
        # it), and sqlite3 costs 2 MB of peak RSS to a run that never opens a store.
        import sqlite3

        # A sqlite3.Connection, typed loosely: the module is not imported at the top. Any
        # thread may use it (check_same_thread): the store is never used by two at once.
        self._db: Any = sqlite3.connect("", check_same_thread=False)
        db = self._db
        # Nothing here must survive a crash: no journal, no fsync.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(f"PRAGMA cache_size=-{max(16, int(cache_kib))}")
        db.execute("PRAGMA temp_store=FILE")
        db.execute(
            "CREATE TABLE calls (n INTEGER PRIMARY KEY, capture TEXT, frame INTEGER, ts INTEGER, "
            "response_ts INTEGER, request_key TEXT, trace_id TEXT, data BLOB)")
        self._pending: list[tuple[object, ...]] = []
        self._count = 0
        self._cache: OrderedDict[int, Call] = OrderedDict()
        self._cache_calls = max(1, cache_calls)
        self._indexed = False

    # -- writing ---------------------------------------------------------------------------

    def add(self, call: Call) -> int:
        """Store a call; its number (the order added)."""
        n = self._count
        self._count += 1
        self._pending.append(self._row(n, call))
        if len(self._pending) >= BATCH:
            self.flush()
        return n

    def put(self, n: int, call: Call) -> None:
        """Write call ``n`` again (it was changed)."""
        if not 0 <= n < self._count:
            raise IndexError(n)
        self.flush()
        self._conn().execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             self._row(n, call))
        if n in self._cache:
            self._cache[n] = call

    @staticmethod
    def _row(n: int, call: Call) -> tuple[object, ...]:
        return (n, call.capture, call.frame, call.ts_ns, call.response_ts, call.request_key,
                call.trace_id, encode(call))

    def flush(self) -> None:
        if self._pending:
            self._conn().executemany("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                     self._pending)
            self._pending = []

    # -- reading ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    def get(self, n: int) -> Call:
        """Call number ``n``."""
        cached = self._cache.get(n)
        if cached is not None:
            self._cache.move_to_end(n)
            return cached
        if not 0 <= n < self._count:
            raise IndexError(n)
        self.flush()
        row = self._conn().execute("SELECT data FROM calls WHERE n = ?", (n,)).fetchone()
        call = decode(row[0])
        self._remember(n, call)
        return call

    def _remember(self, n: int, call: Call) -> None:
        cache = self._cache
        cache[n] = call
        if len(cache) > self._cache_calls:
            cache.popitem(last=False)

    def __iter__(self) -> Iterator[Call]:
        """Every call in the order added, read ahead in small batches (never all at once)."""
        self.flush()
        n = 0
        while n < self._count:
            rows = self._conn().execute("SELECT n, data FROM calls WHERE n >= ? ORDER BY n LIMIT ?",
                                        (n, READ_AHEAD)).fetchall()
            if not rows:
                return
            for k, data in rows:
                cached = self._cache.get(k)
                yield cached if cached is not None else decode(data)
            n = rows[-1][0] + 1

    def _index(self) -> None:
        """The lookup indexes, made once, when the first lookup needs them: building them
        after the inserts is cheaper than keeping them up to date during them."""
        if not self._indexed:
            db = self._conn()
            db.execute("CREATE INDEX calls_key ON calls (capture, request_key)")
            db.execute("CREATE INDEX calls_trace ON calls (capture, trace_id)")
            db.execute("CREATE INDEX calls_ts ON calls (capture, ts)")
            self._indexed = True

    def numbers(self, capture: str, *, request_key: str | None = None, trace_id: str | None = None,
                start: int | None = None, end: int | None = None) -> list[int]:
        """The numbers of ``capture``'s calls with that request key, trace id, or start time
        in [start, end], in the order added."""
        self.flush()
        self._index()
        where = ["capture = ?"]
        args: list[object] = [capture]
        if request_key is not None:
            where.append("request_key = ?")
            args.append(request_key)
        if trace_id is not None:
            where.append("trace_id = ?")
            args.append(trace_id)
        if start is not None:
            where.append("ts >= ?")
            args.append(start)
        if end is not None:
            where.append("ts <= ?")
            args.append(end)
        sql = f"SELECT n FROM calls WHERE {' AND '.join(where)} ORDER BY n"
        return [row[0] for row in self._conn().execute(sql, args)]

    # -- life ------------------------------------------------------------------------------

    def _conn(self) -> Any:
        if self._db is None:
            raise StoreError("the call store is closed")
        return self._db

    def close(self) -> None:
        """Delete the store (SQLite removes its temporary file); calls handed out stay valid."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._pending = []
        self._cache.clear()

    @property
    def closed(self) -> bool:
        return self._db is None

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoredCalls(Sequence[Call]):
    """A read-only list view of a store's calls: ``len``, iteration in order, indexing."""

    def __init__(self, store: CallStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self) -> Iterator[Call]:
        return iter(self._store)

    def __getitem__(self, n: Any) -> Any:
        if isinstance(n, slice):
            return [self._store.get(k) for k in range(*n.indices(len(self._store)))]
        if n < 0:
            n += len(self._store)
        return self._store.get(n)
