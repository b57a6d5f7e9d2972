"""Logs on disk, so that what ``analyze`` holds need not grow with the number of requests a
capture shows (issue 10 item 6).

Strategy: what is made once per request and read back later is appended to a log held in
memory a batch at a time; each full batch is written, marshalled whole, to an anonymous
temporary file and read back, in order, as often as needed.
- ``CallLog``: a capture's calls, in the order their requests were seen, numbered; read
  back in order (judging), or one by one (the inbound requests a call is attributed to,
  near it in the log: the last few batches read stay decoded).
- ``SpillLog``: records read back whole, in order (the guesses awaiting corroboration,
  the outcomes of outbound calls).
- Encoding: a call is the tuple of its fields in declaration order, its tracing contexts
  tuples of theirs, written with ``marshal`` (every field is a str, int, bool, None or a
  tuple/dict of them): several times faster than pickle or JSON for this shape, and it
  needs no class to be picklable (the compiled build's records are not). One ``marshal``
  call per batch each way costs far less than a Python loop over records, or SQLite.
- The file is made in the temporary directory (``TMPDIR``) and unlinked at once: not even
  a SIGKILL leaves it behind. A small capture's logs never leave memory.
"""

from __future__ import annotations

import dataclasses
import marshal
import os
from collections import OrderedDict
from collections.abc import Iterator
from typing import IO, Any, Final

from analyzer.analysis.model import Call
from analyzer.tracing import TraceContext


def _spill_batch(default: int = 1024) -> int:
    """A log holds this many records in memory; each batch this long goes to its file.
    ``TRACEWIRE_SPILL_BATCH`` sets it (the tests send small captures through the files)."""
    try:
        return max(1, int(os.environ.get("TRACEWIRE_SPILL_BATCH", default)))
    except ValueError:
        return default


SPILL_BATCH: Final = _spill_batch()

_CALL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Call))
TRACE_AT = _CALL_FIELDS.index("trace")  # where a row holds the tracing contexts
VALUES_AT = _CALL_FIELDS.index("values")  # where a row (``row_of``) holds the tracing values
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


# -- a capture's calls, in order, on disk -----------------------------------------------------

# Batches of decoded rows a CallLog keeps for reads out of order (least recently used first out).
LOG_CACHE_BATCHES = 4
_RESPONSE_AT: tuple[int, int, int, int] = (
    _CALL_FIELDS.index("response_frame"), _CALL_FIELDS.index("response_ts"),
    _CALL_FIELDS.index("status"), _CALL_FIELDS.index("nat_reply_from"))


def row_of(c: Call) -> tuple[Any, ...]:
    """A call as the plain tuple ``call_of`` turns back into an equal call: its fields in
    declaration order (``_CALL_FIELDS``), its tracing contexts as tuples. Named one by one:
    a loop of ``getattr`` costs several times more, once per call."""
    return (c.capture, c.frame, c.ts_ns, c.protocol, c.src, c.sport, c.dst, c.dport, c.connection,
            c.stream, c.method, c.path, c.authority, trace_fields(c.trace) if c.trace else (),
            c.header_names, c.values, c.response_frame, c.response_ts, c.status, c.nat_reply_from,
            c.role, c.service, c.authority_unknown, c.identity, c.unknown, c.target,
            c.target_source, c.target_evidence)


def call_of(row: tuple[Any, ...]) -> Call:
    # (The strings calls repeat need no interning: a batch is marshalled whole, and marshal
    # writes an object met twice once, so the calls of a batch share them when read back.)
    if not row[TRACE_AT]:
        return Call(*row)
    values = list(row)
    values[TRACE_AT] = trace_of(values[TRACE_AT])
    return Call(*values)


def _answered(row: tuple[Any, ...], fields: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with the response fields ``CallLog.answered`` kept apart put in."""
    out = list(row)
    for i, v in zip(_RESPONSE_AT, fields, strict=True):
        out[i] = v
    return tuple(out)


class CallLog:
    """The calls of one capture, numbered from 0 in the order added, read back in that
    order (``rows``, ``__iter__``) or one by one (``get``), any number of times.

    As ``SpillLog``, rows are held ``batch`` at a time and each full batch goes, marshalled
    whole, to an anonymous temporary file; a read out of order decodes the batch holding
    the row and keeps the last few decoded (``LOG_CACHE_BATCHES``). A call added before its
    response was seen is completed by ``answered``: the few response fields are kept apart
    (one entry per such call, not per call) and given back with the row."""

    __slots__ = ("_batch", "_cache", "_count", "_file", "_late", "_offsets", "batch")

    def __init__(self, batch: int = SPILL_BATCH) -> None:
        self._batch: list[tuple[Any, ...]] = []
        self._file: IO[bytes] | None = None
        self._offsets: list[int] = []  # where each batch in the file starts
        self._count = 0
        self._cache: OrderedDict[int, list[tuple[Any, ...]]] = OrderedDict()
        self._late: dict[int, tuple[Any, ...]] = {}  # row -> response fields
        self.batch = max(1, batch)

    def append(self, call: Call) -> int:
        """Add a call; its number."""
        return self.add(row_of(call))

    def add(self, row: tuple[Any, ...]) -> int:
        """Add a row of another kind (a span: ``engine.Traces``); its number."""
        n = self._count
        self._batch.append(row)
        self._count += 1
        if len(self._batch) >= self.batch:
            self._spill()
        return n

    def answered(self, n: int, call: Call) -> None:
        """Call ``n`` was added before its response was seen: ``call`` now holds it."""
        self._late[n] = (call.response_frame, call.response_ts, call.status, call.nat_reply_from)

    def _spill(self) -> None:
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile(prefix="tracewire-")  # noqa: SIM115
        data = marshal.dumps(self._batch, _MARSHAL_VERSION)
        f = self._file
        f.seek(0, os.SEEK_END)
        self._offsets.append(f.tell())
        f.write(len(data).to_bytes(8, "little"))
        f.write(data)
        self._batch = []

    def __len__(self) -> int:
        return self._count

    def _read(self, b: int) -> list[tuple[Any, ...]]:
        f = self._file
        assert f is not None
        f.seek(self._offsets[b])
        rows: list[tuple[Any, ...]] = marshal.loads(f.read(int.from_bytes(f.read(8), "little")))
        return rows

    def _patched(self, first: int, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        late = self._late
        if not late:
            return rows
        out = rows
        for k, fields in late.items():
            at = k - first
            if 0 <= at < len(rows):
                if out is rows:
                    out = list(rows)
                out[at] = _answered(out[at], fields)
        return out

    def rows(self) -> Iterator[tuple[Any, ...]]:
        """Every row, in order (as ``row_of`` gives them, responses completed)."""
        size = self.batch
        for b in range(len(self._offsets)):
            yield from self._patched(b * size, self._read(b))
        yield from self._patched(len(self._offsets) * size, list(self._batch))

    def __iter__(self) -> Iterator[Call]:
        for row in self.rows():
            yield call_of(row)

    def row(self, n: int) -> tuple[Any, ...]:
        if not 0 <= n < self._count:
            raise IndexError(n)
        b, at = divmod(n, self.batch)
        if b == len(self._offsets):
            rows = self._batch
        else:
            cached = self._cache.get(b)
            if cached is None:
                cached = self._read(b)
                self._cache[b] = cached
                if len(self._cache) > LOG_CACHE_BATCHES:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(b)
            rows = cached
        fields = self._late.get(n)
        return rows[at] if fields is None else _answered(rows[at], fields)

    def get(self, n: int) -> Call:
        return call_of(self.row(n))

    @classmethod
    def of_rows(cls, rows: list[tuple[Any, ...]]) -> CallLog:
        """A log of rows ``rows`` gave (another process's log, ``rows``)."""
        log = cls()
        for row in rows:
            log.add(row)
        return log

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._batch = []
        self._offsets = []
        self._cache.clear()
        self._late = {}
        self._count = 0
