"""What the capture cannot show, so that no verdict rests on it: headers hidden by HPACK
entries older than the capture, guessed names nobody corroborates, requests being served
when the capture started, and the same capture given twice.

Strategy: the analysis judges what it sees, so this module says where seeing stops.
- An unknown header (name or value an HPACK entry older than the capture) could be any
  header, except one the capture rules out: the same entry is referenced, on the same
  connection, by a request that also carries header H under a known name, so the entry is
  not H (a tracing header is sent once per request). Everything not ruled out may hide.
- A name guessed from a value's shape is evidence only when the same value was seen under a
  known tracing name (tracing.corroborate), over every call of every capture given;
  otherwise the header is unknown.
- A response whose request is not in the capture, sent by the app to its sidecar, shows a
  request being served since before the capture: until that response, a call with no
  inbound request to attribute to may belong to it. So does an inbound connection whose
  start is not in the capture and whose bytes gave no message.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from analyzer.analysis.breaks import Hidden
from analyzer.analysis.legs import INBOUND_SOURCES, NOISE_PORTS, Roles
from analyzer.analysis.model import Call
from analyzer.analysis.store import SpillLog, trace_fields, trace_of
from analyzer.pipeline import CaptureSummary, ConnectionSummary
from analyzer.records import Header, Message
from analyzer.tracing.corroborate import Corroboration

_Key = tuple[int, int, int | None]  # frame, connection, stream of a request
# What a record of ``Observer.guesses`` holds: the request's frame, connection and stream,
# whether its call was made, its guesses (entry identity, name guessed, value), all its
# tracing contexts as plain tuples when some are guessed (else None), and the headers of each
# guessed.
_Guessed = tuple[int, int, int | None, bool, tuple[tuple[str, str, bytes], ...],
                 tuple[tuple[Any, ...], ...] | None, tuple[tuple[str, ...], ...]]
OUTBOUND_PORT = 15001  # Envoy's outbound listener: its replies are not the app's
# At most this many combinations of guessed contexts' header names are shared (baggage's
# uberctx-* names are the capture's choice: a flood of them must not grow the table).
_HEADS_KEPT = 256
# At most this many recent lists of unknown headers are shared (``Observer._shared_unknown``).
_UNKNOWNS_KEPT = 1024
# At most this many combinations of a connection's unknown headers are remembered by
# ``HiddenHeaders`` (the rest are worked out again each time).
_COMBINATIONS_KEPT = 4096
# At most this many HPACK labels' identities are remembered (``Observer._ident``).
_IDENTS_KEPT = 4096


def _identity(label: str | None, frame: int, n: int) -> str:
    """One spelling per HPACK entry: a literal naming an old entry ("name of entry #3 ...")
    and a reference to the whole entry ("entry #3 ...") share the entry's name. A header
    with no label is its own identity (header ``n`` of ``frame``), so nothing ever rules it
    out."""
    if label is None:
        return f"unlabelled header {frame}.{n}"
    # A few dozen entries are referenced by every request of a connection: one copy each.
    return sys.intern(label[len("name of "):] if label.startswith("name of ") else label)


_T = TypeVar("_T")


def _one_copy(recent: dict[_T, _T], value: _T, limit: int) -> _T:
    """The copy of ``value`` in ``recent`` when an equal one is there, else ``value``, kept
    for next time; at most ``limit`` are kept, the oldest forgotten first."""
    same = recent.get(value)
    if same is not None:
        return same
    if len(recent) >= limit:
        del recent[next(iter(recent))]
    recent[value] = value
    return value


@dataclass(slots=True)
class Observer:
    """Watches a capture's messages on their way to ``legs.pair``: which headers of each
    request the capture cannot show, and which responses answer a request it did not see."""

    # Held from a request's message until its call is made (``attach``), or until ``apply``.
    unknown: dict[_Key, tuple[str, ...]] = field(default_factory=dict)
    # Every request with guessed headers, in the order its call was made, until
    # ``corroborate`` judges them (every request of an HTTP/2 capture that starts
    # mid-connection may carry some): one record each (``_Guessed``), spilled to a
    # temporary file a batch at a time (``store.SpillLog``), so what waits costs no memory
    # per request. A record holds the request's guesses (entry identity, name guessed,
    # value) and, when some of its tracing contexts are guessed, all of them as plain
    # tuples (``store.trace_fields``; the call holds only the others meanwhile) with the headers of
    # each guessed one: when corroboration drops them all, the call keeps what it holds and
    # the contexts need not be decoded. A plain list of records once sent between processes.
    guesses: SpillLog | list[_Guessed] = field(default_factory=SpillLog)
    # server endpoint (address, port) and client address -> latest orphan response time
    orphans: dict[tuple[str, int, str], int] = field(default_factory=dict)
    # (connection, entry identity) -> the tracing name corroborated for that HPACK entry
    named: dict[tuple[int, str], str] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)  # the calls ``apply`` was given
    _pending: dict[tuple[int, int | None], int] = field(default_factory=dict)
    _unknowns: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    _idents: dict[str, str] = field(default_factory=dict)  # HPACK label -> entry identity
    _loose: int = 0  # records of requests whose call ``attach`` was not given
    # The guesses of the request whose call ``attach`` is to be given next.
    _guessing: tuple[_Key, tuple[tuple[str, str, bytes], ...]] | None = None
    _heads: dict[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]] = field(default_factory=dict)

    def wrap(self, messages: Iterable[Message]) -> Iterator[Message]:
        pending = self._pending
        for m in messages:
            ep = m.endpoints
            slot = (ep.connection, m.stream)
            if m.kind == "request":
                pending[slot] = pending.get(slot, 0) + 1
                self._headers(m)
            else:
                n = pending.get(slot, 0)
                if n > 1:
                    pending[slot] = n - 1
                elif n == 1:
                    del pending[slot]  # bounded by requests in flight
                else:
                    key = (ep.src, ep.sport, ep.dst)
                    self.orphans[key] = max(self.orphans.get(key, m.ts_ns), m.ts_ns)
            yield m

    def _headers(self, m: Message) -> None:
        unknown: list[str] = []
        guessed: list[tuple[str, str, bytes]] = []
        for n, h in enumerate(m.headers):
            if h.guessed and h.lname is not None and h.value is not None:
                # a guess names one of a dozen tracing headers: one copy of each name
                guessed.append((self._ident(h.unknown, m.frame, n), sys.intern(h.lname.decode("latin-1")),
                                h.value))
            elif h.name is None:
                unknown.append(self._ident(h.unknown, m.frame, n))
            elif h.value is None:
                unknown.append("=" + (h.lname or h.name).decode("latin-1").lower())
        if unknown or guessed:
            key = (m.frame, m.endpoints.connection, m.stream)
            if unknown:
                self.unknown[key] = self._shared_unknown(tuple(unknown))
            if guessed:
                self._unattached()
                self._guessing = (key, tuple(guessed))

    def _ident(self, label: str | None, frame: int, n: int) -> str:
        """``_identity``, remembered per label (bounded): the same labels come back on
        every request of a connection."""
        if label is None:
            return _identity(label, frame, n)
        ident = self._idents.get(label)
        if ident is None:
            ident = _identity(label, frame, n)
            if len(self._idents) >= _IDENTS_KEPT:
                self._idents.clear()
            self._idents[label] = ident
        return ident

    def _shared_unknown(self, unknown: tuple[str, ...]) -> tuple[str, ...]:
        """One copy of equal lists of unknown headers: the requests of a connection that
        starts mid-stream reference the same old HPACK entries, request after request
        (about 130 bytes a call)."""
        return _one_copy(self._unknowns, unknown, _UNKNOWNS_KEPT)

    def attach(self, c: Call) -> None:
        """Give a call, as ``legs.pair`` makes it, the unknown headers of its request: held
        from the message to the call only, not for the whole capture."""
        key = (c.frame, c.connection, c.stream)
        u = self.unknown.pop(key, None)
        if u:
            c.unknown = u
        guessing = self._guessing
        if guessing is None or guessing[0] != key:
            return
        self._guessing = None
        contexts: tuple[tuple[Any, ...], ...] | None = None
        heads: tuple[tuple[str, ...], ...] = ()
        kept = tuple(t for t in c.trace if not t.guessed)
        if len(kept) < len(c.trace):
            heads = tuple(t.headers for t in c.trace if t.guessed)
            # A few combinations of names repeat on every request: one copy of each.
            heads = _one_copy(self._heads, heads, _HEADS_KEPT)
            contexts = trace_fields(c.trace)
            c.trace = kept
        self._log(key, True, guessing[1], contexts, heads)

    def _log(self, key: _Key, attached: bool, guesses: tuple[tuple[str, str, bytes], ...],
             contexts: tuple[tuple[Any, ...], ...] | None, heads: tuple[tuple[str, ...], ...]) -> None:
        record: _Guessed = (key[0], key[1], key[2], attached, guesses, contexts, heads)
        self.guesses.append(record)

    def _unattached(self) -> None:
        """The guesses of a request whose call ``attach`` was not given: matched with its
        call by ``apply``, else still evidence of what an entry names, for no call."""
        if self._guessing is not None:
            key, guesses = self._guessing
            self._guessing = None
            self._log(key, False, guesses, None, ())
            self._loose += 1

    def _attach_loose(self, calls: Iterable[Call]) -> None:
        """The log again, each request's guesses beside its call, in the calls' order: for
        calls made without ``attach`` (``legs.pair`` given no ``made``), whose guessed
        contexts the calls still hold. Only then is the log read whole into memory."""
        records: list[_Guessed] = list(self.guesses)
        loose: dict[_Key, _Guessed] = {}
        for g in records:
            if not g[3]:
                loose.setdefault((g[0], g[1], g[2]), g)
        kept = iter([g for g in records if g[3]])
        following = next(kept, None)
        log = self.guesses
        self.guesses = [] if isinstance(log, list) else SpillLog(log.batch)
        self._loose = 0
        for c in calls:
            key = (c.frame, c.connection, c.stream)
            if following is not None and (following[0], following[1], following[2]) == key:
                self._log(key, True, following[4], following[5], following[6])
                following = next(kept, None)
            elif key in loose:
                self._log(key, True, loose.pop(key)[4], None, ())
        for key, g in loose.items():  # no call of these requests
            self._log(key, False, g[4], None, ())
        if isinstance(log, SpillLog):
            log.close()

    def finish(self, calls: Iterable[Call]) -> None:
        """The capture is read, its calls all made (``calls``, read again only when some
        were made without ``attach``)."""
        self._unattached()
        if self._loose:
            self._attach_loose(calls)
        self.unknown = {}  # ``attach`` gave each call its own

    def apply(self, calls: list[Call]) -> None:
        self.calls = calls
        self._unattached()
        if self._loose:
            self._attach_loose(calls)
        if not self.unknown:
            return
        for c in calls:
            u = self.unknown.get((c.frame, c.connection, c.stream))
            if u:
                c.unknown = u
        self.unknown = {}  # the calls carry it now


def _of_calls(log: SpillLog | list[_Guessed]) -> Iterator[_Guessed]:
    """The records of requests whose call was made, one at a time."""
    for record in log:
        if record[3]:
            yield record


def corroborate(calls: Sequence[Call], observers: Sequence[Observer]) -> None:
    """Keep a guessed tracing context only when it is corroborated; otherwise drop it and
    count its header as unknown.

    A guess is corroborated when a known header anywhere carried the same value, or when
    the HPACK entry whose name it uses was corroborated as that same name on the same
    connection (an entry's name never changes: once one value under it is confirmed as a
    traceparent, the entry names traceparent, whatever trace a later value carries). The
    names so established are kept on the observer (``named``) for ``HiddenHeaders``.
    """
    if not any(ob.guesses for ob in observers):
        return
    seen = Corroboration()
    for c in calls:
        see(seen, c.values)
    for ob, flags in zip(observers, confirm(seen, observers), strict=True):
        settling = Settling(ob, flags)
        for c in ob.calls:
            if not settling.settle(c):
                break
        settling.done()


def see(seen: Corroboration, values: dict[str, str]) -> None:
    """Remember a call's tracing values, as known headers carried them."""
    if values:
        seen.see([Header.of(n.encode("latin-1", "replace"), v.encode("utf-8", "surrogateescape"))
                  for n, v in values.items()])


def confirm(seen: Corroboration, observers: Sequence[Observer]) -> list[bytearray]:
    """Whether each guess of each observer's calls, in order, was confirmed: one byte a
    guess, so that ``Settling`` need not hash every value again. Nothing seen under a known
    name confirms nothing: then the guesses need not be hashed at all. Establishes the
    names of entries (``Observer.named``) on the way."""
    confirmed: list[bytearray] = []
    for ob in observers:
        named = ob.named
        flags = bytearray()
        confirmed.append(flags)
        if not len(seen):
            continue
        for _, connection, _, attached, guesses, _, _ in ob.guesses:
            for ident, name, value in guesses:
                yes = seen.confirms(value)
                if attached:
                    flags.append(yes)
                if yes:
                    slot = (connection, ident)
                    # two names for one entry: the guesses contradict each other, trust neither
                    named[slot] = name if named.get(slot, name) == name else ""
    return confirmed


class Settling:
    """One observer's calls, given in the order they were made (``settle``), get what
    corroboration decided of their guesses: the log of guesses is read beside them."""

    def __init__(self, ob: Observer, flags: bytearray) -> None:
        self._ob = ob
        self._flags = flags
        self._at = 0  # the first of the next call's flags
        self._records = _of_calls(ob.guesses)  # a generator function: mypyc would fill a list
        self._record = next(self._records, None)

    def settle(self, c: Call) -> bool:
        """Settle ``c``; False once no guesses are left for any later call."""
        record = self._record
        if record is None:
            return False
        if (record[0], record[1], record[2]) != (c.frame, c.connection, c.stream):
            return True
        ob, flags, at = self._ob, self._flags, self._at
        guesses, contexts, heads = record[4], record[5], record[6]
        self._record = next(self._records, None)
        weak = [(ident, name) for n, (ident, name, _) in enumerate(guesses)
                if not (flags and flags[at + n]) and ob.named.get((c.connection, ident)) != name]
        self._at = at + len(guesses)
        names = {name for _, name in weak}
        if contexts is not None:
            # Every guessed context dropped: the call holds the rest already, in order.
            if not all(names & set(h) for h in heads):
                c.trace = trace_of(contexts)  # as made, guesses and all
        if weak:
            c.trace = tuple(t for t in c.trace if not (t.guessed and names & set(t.headers)))
            c.unknown = ob._shared_unknown(c.unknown + tuple(ident for ident, _ in weak))
        return True

    def done(self) -> None:
        ob = self._ob
        if isinstance(ob.guesses, SpillLog):
            ob.guesses.close()  # judged: the records need not be kept any longer
        ob.guesses = SpillLog()


class HiddenHeaders:
    """For one capture: which headers an unknown header may be (see the module's strategy)."""

    def __init__(self, calls: Iterable[Call] = (), named: dict[tuple[int, str], str] | None = None) -> None:
        # (connection, identity) -> the entry's name, when corroborated (see ``corroborate``)
        self._named = named if named is not None else {}
        # (connection, identity) -> known tracing names seen beside that entry
        self._beside: dict[tuple[int, str], set[str]] = {}
        # The requests of a connection repeat the same unknown entries beside the same known
        # names (the lists are shared objects): each combination is added once.
        self._done: set[tuple[int, tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]] = set()
        for c in calls:
            self.add(c)
        # What ``of`` made for a connection's list of unknown headers, made once.
        self._made: dict[tuple[int, tuple[str, ...]], Hidden] = {}

    def add(self, c: Call) -> None:
        """Learn from one more call of the capture (before any ``of``)."""
        if not c.unknown:
            return
        combination = (c.connection, c.unknown, c.header_names, tuple(t.headers for t in c.trace))
        done = self._done
        if combination in done:
            return
        if len(done) < _COMBINATIONS_KEPT:
            done.add(combination)
        known = set(c.header_names)
        for t in c.trace:
            known.update(t.headers)
        for u in c.unknown:
            self._beside.setdefault((c.connection, u), set()).update(known)

    def of(self, c: Call) -> Hidden:
        if not c.unknown:
            return _nothing
        key = (c.connection, c.unknown)
        made = self._made.get(key)
        if made is None:
            made = self._hidden(c.connection, c.unknown)
            if len(self._made) >= _COMBINATIONS_KEPT:
                self._made.clear()
            self._made[key] = made
        return made

    def _hidden(self, connection: int, unknown: tuple[str, ...]) -> Hidden:
        entries = [u for u in unknown if not u.startswith("=")]
        # An entry whose name is established hides that name only.
        valued = {u[1:] for u in unknown if u.startswith("=")} | {
            n for u in entries if (n := self._named.get((connection, u)))}
        beside = [self._beside.get((connection, u), set()) for u in entries
                  if not self._named.get((connection, u))]

        def hidden(name: str) -> bool:
            return name in valued or any(name not in b for b in beside)

        return hidden


def _nothing(name: str) -> bool:
    return False


def serving_until(observer: Observer, summary: CaptureSummary, roles: Roles, host: str) -> int | None:
    """Until when the capture shows ``host`` may be serving a request it does not show, or
    None when it shows none."""
    until: int | None = None
    for (src, sport, dst), ts in observer.orphans.items():
        mine = (host == "pod" and _app_port(sport, roles) and dst in INBOUND_SOURCES) if roles.sidecar \
            else (src == host)
        if mine:
            until = ts if until is None else max(until, ts)
    for conn in summary.connections:
        if not begun_unseen(conn):
            continue
        ends = (conn.client, conn.server.split(" ", 1)[0])
        ports = [e.rsplit(":", 1) for e in ends]
        if roles.sidecar and host == "pod":
            mine = any(a in INBOUND_SOURCES for a, _ in ports) and any(
                p.isdigit() and _app_port(int(p), roles) for _, p in ports)
        else:
            mine = any(a == host for a, _ in ports)
        if mine:
            until = conn.last_ts if until is None else max(until, conn.last_ts)
    return until


def begun_unseen(conn: ConnectionSummary) -> bool:
    """A connection whose start the capture does not show and whose bytes gave no message:
    it may carry a request being served since before the capture (``serving_until``)."""
    return not conn.syn_seen and not conn.messages and bool(conn.payload_bytes)


def _app_port(port: int, roles: Roles) -> bool:
    """A port the app may serve on: one of those seen (a capture with no inbound request
    seen shows none, then any port but the sidecar's own)."""
    if roles.app_ports:
        return port in roles.app_ports
    return port not in NOISE_PORTS and port != OUTBOUND_PORT


# -- the same capture given twice ---------------------------------------------------------

_SAMPLE = 64 * 1024


def _fingerprint(path: str) -> tuple[str, int, str] | None:
    """(resolved path, size, hash of the first and last 64 KiB), or None for stdin and
    anything that cannot be read here (the pipeline reports that)."""
    if path == "-":
        return None
    try:
        p = Path(path)
        size = p.stat().st_size
        h = hashlib.sha256()
        with p.open("rb") as f:
            h.update(f.read(_SAMPLE))
            if size > _SAMPLE:
                f.seek(max(_SAMPLE, size - _SAMPLE))
                h.update(f.read(_SAMPLE))
        return os.path.realpath(p), size, h.hexdigest()
    except OSError:
        return None


def distinct(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """The captures with repeats left out (same path, or same size and first/last 64 KiB),
    and one warning per capture left out."""
    kept: list[str] = []
    warnings: list[str] = []
    by_path: dict[str, str] = {}
    by_content: dict[tuple[int, str], str] = {}
    for path in paths:
        fp = _fingerprint(path)
        if fp is None:
            kept.append(path)
            continue
        real, size, digest = fp
        first = by_path.get(real) or by_content.get((size, digest))
        if first is not None:
            how = "the same file" if by_path.get(real) else "the same content"
            warnings.append(f"{path}: {how} as {first}, given twice: counted once")
            continue
        by_path[real] = path
        by_content[(size, digest)] = path
        kept.append(path)
    return kept, warnings
