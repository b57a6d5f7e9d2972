"""The analysis of one or more captures: legs, attribution, findings, hops and traces."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, overload

from analyzer.analysis.breaks import (
    Attribution,
    InboundIndex,
    Requests,
    attribute,
    judge_candidates,
    root_verdict,
)
from analyzer.analysis.evidence import (
    HiddenHeaders,
    Observer,
    Settling,
    begun_unseen,
    confirm,
    distinct,
    see,
    serving_until,
)
from analyzer.analysis.legs import (
    Options,
    Roles,
    RolesBuilder,
    assign,
    inbound_host,
    outbound_host,
    paired,
)
from analyzer.analysis.model import KINDS, Call, Finding, Hop, Note, Outcome, Pod, Result, Span, Trace
from analyzer.analysis.naming import CaptureCalls, TargetNamer, callees, target_of
from analyzer.analysis.naming import describe_target as describe_target
from analyzer.analysis.parallel import read_captures
from analyzer.analysis.store import TRACE_AT, VALUES_AT, CallLog, SpillLog, call_of
from analyzer.pipeline import CaptureSummary, ConnectionSummary, read_messages
from analyzer.tracing.corroborate import Corroboration


def span_id(call: Call) -> str:
    """A stable span id for a call seen in a capture (the capture shows no span of its own
    for the app's side of the call)."""
    return _span_of(call.capture, call.frame)


def synthetic_trace_id(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()[:32]


def _kept(conn: ConnectionSummary) -> bool:
    """The connections the analysis looks at again, once read: TLS ones (a pod's encrypted
    peers, ``_Capture.pods``) and those that may hide a request being served (evidence).
    Only these are kept, so memory follows the connections open at once, not every one the
    capture ever showed (100,000 half-open connections, issue 9)."""
    return conn.protocol == "tls" or begun_unseen(conn)


# What reading one capture gives: everything later stages need of it, and nothing that
# depends on another capture (so it can be read in a process of its own, ``parallel``).
_State = tuple[CaptureSummary, Observer, CallLog, Roles, Corroboration]
# The same from a worker process: its log as rows, what it saw as keys (``_read_portable``).
_Portable = tuple[CaptureSummary, Observer, list[tuple[Any, ...]], Roles, list[int]]


def _read_state(path: str, opts: Options) -> _State:
    summary = CaptureSummary(path)
    observer = Observer()
    log = CallLog()
    early: dict[int, int] = {}  # id(call) -> its number, for calls logged before their response

    def late(c: Call) -> None:
        log.answered(early.pop(id(c)), c)

    builder = RolesBuilder(opts, path)
    known = Corroboration()  # the values known headers carried (``evidence.corroborate``)
    for c in paired(observer.wrap(read_messages(path, summary, keep=_kept)), observer.attach, late):
        n = log.append(c)
        if c.response_frame is None:
            early[id(c)] = n
        builder.add(c)
        if c.values:
            see(known, c.values)
    observer.finish(log)
    return summary, observer, log, builder.roles(), known


def _read_portable(path: str, opts: Options) -> _State | _Portable:
    """``_read_state`` in a worker process: what its observer and its log keep in files of
    that process travel as plain data."""
    summary, observer, log, roles, known = _read_state(path, opts)
    observer.guesses = list(observer.guesses)
    rows = list(log.rows())
    log.close()
    return summary, observer, rows, roles, known.keys()


# Inbound requests read back for attribution, kept so that one request is one object while
# the calls near it are judged (``attribute`` compares them by identity).
_FETCHED_KEPT = 4096


class _Capture(Requests):
    def __init__(self, path: str, opts: Options, state: _State | _Portable | None = None) -> None:
        self.path = path
        self.opts = opts
        got = state if state is not None else _read_state(path, opts)
        self.summary, self.observer, self.roles = got[0], got[1], got[3]
        # a worker's log comes as its rows, what it saw as its keys (``_read_portable``)
        log, known = got[2], got[4]
        self.log = log if isinstance(log, CallLog) else CallLog.of_rows(log)
        if isinstance(known, Corroboration):
            self.known = known
        else:
            self.known = Corroboration()
            self.known.add(known)
        # what names the targets of its outbound calls, once decided (``_analyze``)
        self.namer: TargetNamer | None = None
        self._fetched: dict[int, Call] = {}
        self._numbers: dict[int, int] = {}  # id() of a fetched call -> its number

    def call_of(self, row: tuple[Any, ...]) -> Call:
        c = call_of(row)
        assign(c, self.roles, self.opts)
        if self.namer is not None and c.role != "noise" and outbound_host(c, self.roles) is not None:
            self.namer.apply(c)
        return c

    def calls(self) -> Iterator[Call]:
        for row in self.log.rows():
            yield self.call_of(row)

    def fetch(self, n: int) -> Call:
        c = self._fetched.get(n)
        if c is None:
            c = self._fetched[n] = self.call_of(self.log.row(n))
            self._numbers[id(c)] = n
        return c

    def forget(self) -> None:
        """Between two calls attributed: past their bound, the requests read back are
        forgotten (never while one call is attributed, which relies on their identity)."""
        if len(self._fetched) >= _FETCHED_KEPT:
            self._fetched.clear()
            self._numbers.clear()

    def number(self, c: Call) -> int:
        """The number of an inbound request ``fetch`` gave while it is kept."""
        return self._numbers[id(c)]

    def get(self, n: int) -> Call:
        return self.call_of(self.log.row(n))

    @property
    def inbound(self) -> list[Call]:
        return [c for c in self.calls() if inbound_host(c, self.roles)]

    @property
    def outbound(self) -> list[Call]:
        return [c for c in self.calls() if outbound_host(c, self.roles)]

    def service_of(self, host: str) -> str:
        return self.roles.services.get(host, host)

    def inbound_service(self, i: Call) -> str:
        return self.service_of(inbound_host(i, self.roles) or "")

    def pods(self, seen: _Seen) -> list[Pod]:
        roles = self.roles
        out: list[Pod] = []
        hosts = ["pod"] if roles.sidecar else sorted(seen.ports)
        for host in hosts:
            pod = Pod(
                capture=self.path,
                service=self.service_of(host),
                name_source=roles.names[host].source if host in roles.names else "address",
                pod_name=roles.names[host].pod if host in roles.names else None,
                address=roles.pod_ip if roles.sidecar else host,
                app_ports=roles.app_ports if roles.sidecar else sorted(seen.ports[host]),
                sidecar=roles.sidecar,
                anomalies=len(self.summary.anomalies),
            )
            legs = {"inbound": seen.inbound.get(host, 0), "outbound": seen.outbound.get(host, 0),
                    "noise": seen.noise, "other": seen.other}
            legs["mesh"] = sum(1 for c in self.summary.connections if c.protocol == "tls")
            pod.legs = legs
            for conn in self.summary.connections:
                if conn.protocol == "tls":
                    mine = roles.pod_ip and conn.client.startswith(roles.pod_ip + ":")
                    peer = conn.server if mine else conn.client.rsplit(":", 1)[0]
                    pod.encrypted_peers[peer] = pod.encrypted_peers.get(peer, 0) + 1
            out.append(pod)
        return out


class _Seen:
    """What one read of a capture's calls, in order, gathers for judging them (``_settle``)."""

    def __init__(self, cap: _Capture) -> None:
        self.by_host: dict[str, InboundIndex] = {}
        self.first_seen: dict[str, int] = {}
        self.serving_hosts: set[str] = set()
        self.hidden = HiddenHeaders((), cap.observer.named)
        self.inbound: dict[str, int] = {}
        self.outbound: dict[str, int] = {}
        self.ports: dict[str, set[int]] = {}  # inbound host -> ports served (generic captures)
        self.noise = self.other = 0
        self.malformed: list[Note] = []
        # Per call, in order: whether it is inbound (``_INBOUND``), outbound (``_OUTBOUND``),
        # both (between two services of a capture that is not a pod's) or neither.
        self.legs = bytearray()


_INBOUND: Final = 1
_OUTBOUND: Final = 2


class _Joins:
    """A capture's calls that carry ids, when several captures are analysed: the only ones
    the multi-capture join and the callee-capture vote of target naming weigh."""

    def __init__(self) -> None:
        self.inbound: list[tuple[int, Call]] = []  # (number, call)
        self.outbound: list[Call] = []


def _settle(cap: _Capture, settling: Settling | None, namer: TargetNamer, joins: _Joins | None) -> _Seen:
    """Read a capture's calls once, in order: corroboration's verdict on their guesses
    written back (when there were guesses), and what judging needs gathered; its outbound
    calls counted for naming their targets; with several captures, what joins them."""
    seen = _Seen(cap)
    roles = cap.roles
    rewritten = CallLog() if settling is not None else None
    going = settling is not None
    for n, c in enumerate(cap.calls()):
        if going and settling is not None:
            going = settling.settle(c)
        if rewritten is not None:
            rewritten.append(c)
        seen.hidden.add(c)
        host = inbound_host(c, roles)
        leg = 0
        if host is not None:
            leg = _INBOUND
            if joins is not None and (c.request_key or c.trace_id):
                joins.inbound.append((n, c))
            index = seen.by_host.get(host)
            if index is None:
                index = seen.by_host[host] = InboundIndex((), cap)
            index.add(n, c)
            first = seen.first_seen.get(host)
            seen.first_seen[host] = c.ts_ns if first is None else min(first, c.ts_ns)
            seen.inbound[host] = seen.inbound.get(host, 0) + 1
            seen.ports.setdefault(host, set()).add(c.dport)
            for t in c.trace:
                if t.violations and c.src in ("127.0.0.6", "127.0.0.1"):
                    seen.malformed.append(Note(
                        "inbound-malformed", f"the inbound request to {cap.service_of(host)} carries "
                        f"{', '.join(t.headers)} that breaks its spec: {'; '.join(t.violations)}",
                        c.capture, c.frame))
        # (a call between two services of a capture that is not a pod's is both)
        out = outbound_host(c, roles)
        seen.legs.append(leg | _OUTBOUND if out is not None else leg)
        if out is not None:
            namer.add(c)
            if joins is not None and (c.request_key or c.trace_id):
                joins.outbound.append(c)
            seen.serving_hosts.add(out)
            seen.outbound[out] = seen.outbound.get(out, 0) + 1
        elif host is None:
            if c.role == "noise":
                seen.noise += 1
            elif roles.sidecar:
                seen.other += 1
    if settling is not None:
        settling.done()
    if rewritten is not None:
        cap.log.close()
        cap.log = rewritten
        cap._fetched.clear()
        cap._numbers.clear()
    for index in seen.by_host.values():
        index.seal()
    return seen


def analyze(paths: Sequence[str | Path], opts: Options | None = None, *, jobs: int = 1) -> Result:
    """The analysis of ``paths`` (one capture per pod); ``jobs`` > 1 reads the captures in
    that many processes at once (``analyze_groups``), with the same result."""
    return analyze_groups([paths], opts, jobs=jobs)[0]


def analyze_groups(groups: Sequence[Sequence[str | Path]], opts: Options | None = None, *,
                   jobs: int = 1) -> list[Result]:
    """One analysis per group of captures (``diff``'s before and after), every capture of
    every group read at once by up to ``jobs`` processes (``parallel.read_captures``): the
    reading is per capture and independent, the joins below are not."""
    opts = opts or Options()
    kept = [distinct([str(p) for p in g]) for g in groups]
    every = [p for paths, _ in kept for p in paths]
    states = read_captures(every, opts, jobs, _read_state, _read_portable)
    caps = [_Capture(p, opts, state) for p, state in zip(every, states, strict=True)]
    out: list[Result] = []
    n = 0
    for paths, warnings in kept:
        out.append(_analyze(caps[n:n + len(paths)], warnings))
        n += len(paths)
    return out


def _known(caps: list[_Capture]) -> Corroboration:
    """The values known headers carried over every call of every capture, as if seen in
    order: each capture's, one after the other, while together they stay under its bound
    (nothing forgotten, so the order cannot matter); else read again, in order."""
    if len(caps) == 1:
        return caps[0].known
    known = Corroboration()
    if sum(len(cap.known) for cap in caps) <= known.limit:
        for cap in caps:
            known.add(cap.known.keys())
        return known
    for cap in caps:
        for row in cap.log.rows():
            see(known, row[VALUES_AT])
    return known


def _corroborated(caps: list[_Capture], known: Corroboration) -> list[Settling | None]:
    """Corroboration of guessed header names over every call of every capture: what each
    capture's calls, read again in order, are to be given (None: nothing to give)."""
    observers = [cap.observer for cap in caps]
    if not any(ob.guesses for ob in observers):
        return [None for _ in caps]
    return [Settling(ob, flags) for ob, flags in zip(observers, confirm(known, observers), strict=True)]


def _analyze(caps: list[_Capture], warnings: list[str]) -> Result:
    # A guessed header name is evidence only when a known header, anywhere, corroborates it.
    several = len(caps) > 1
    namer = TargetNamer(callee_vote=several)
    joins = [_Joins() if several else None for _ in caps]
    known = _known(caps)
    seen = [_settle(cap, settling, namer, j)
            for cap, settling, j in zip(caps, _corroborated(caps, known), joins, strict=True)]
    not_in_capture = limited = unknown_headers = 0
    findings: list[Finding] = []
    notes: list[Note] = []
    hops: dict[tuple[str, str, str], Hop] = {}
    outcomes = SpillLog()
    found: dict[tuple[int, int], list[Finding]] = {}  # (capture, call) -> its findings
    # Multi-capture join: pod A's outbound call is pod B's inbound request when they carry
    # the same ids to the same authority and path (never by clock: pods' clocks differ).
    joined: dict[int, Call] = {}  # id(inbound in B) -> outbound in A
    parents: dict[tuple[int, int], tuple[str, int]] = {}  # inbound (capture, number) -> its caller's
    by_key: dict[tuple[str, str | None, str | None, str | None], list[tuple[int, int, Call]]] = {}
    for k, j in enumerate(joins):
        for n, i in j.inbound if j is not None else ():
            ident = i.request_key or i.trace_id
            if ident:
                by_key.setdefault((ident, i.authority, i.method, i.path), []).append((k, n, i))
    for j in joins:
        for o in j.outbound if j is not None else ():
            ident = o.request_key or o.trace_id
            for k, n, i in by_key.get((ident or "", o.authority, o.method, o.path), []):
                if i.capture != o.capture and id(i) not in joined:
                    joined[id(i)] = o
                    parents[(k, n)] = (o.capture, o.frame)
                    break
    # Targets whose authority the capture does not show are named from other evidence.
    side = callees([CaptureCalls(cap.path, [i for _, i in j.inbound] if j is not None else [], [],
                                 cap.inbound_service) for cap, j in zip(caps, joins, strict=True)], joined)
    notes += namer.decide(side)[0]
    del side, joined, by_key, joins
    for cap in caps:
        cap.namer = namer
        cap._fetched.clear()
        cap._numbers.clear()
    # Spans, each capture's inbound then outbound, as rows (``_SpanRow``) on disk.
    spans: list[tuple[CallLog, CallLog]] = []
    for k, (cap, got) in enumerate(zip(caps, seen, strict=True)):
        roles = cap.roles
        no_inbound = InboundIndex([])
        hidden_in = got.hidden
        serving = {h: serving_until(cap.observer, cap.summary, roles, h) for h in got.serving_hosts}
        first_seen = got.first_seen
        edge_calls: list[Call] = []
        limited_calls: list[Call] = []
        ins, outs = CallLog(), CallLog()
        spans.append((ins, outs))
        legs = got.legs
        for n, row in enumerate(cap.log.rows()):
            # Only outbound calls are judged, only calls with tracing context are spans: the
            # others are not made again from their rows.
            leg = legs[n]
            if not leg & _OUTBOUND and not (leg & _INBOUND and row[TRACE_AT]):
                continue
            o = cap.call_of(row)
            if leg & _INBOUND:
                key = _trace_key(o)
                if key is not None:
                    parent = parents.get((k, n))
                    ins.add((key, span_id(o), _span_of(*parent) if parent is not None else None,
                             "server", cap.inbound_service(o), k, n, o.src, False,
                             o.capture, o.ts_ns, o.frame))
            host = outbound_host(o, roles)
            if host is None:
                continue
            source = cap.service_of(host)
            target, target_source = target_of(o)
            hop = hops.setdefault((source, target, o.protocol), Hop(source, target, o.protocol))
            if target_source != "authority":
                hop.target_source = target_source
            hop.calls += 1
            cap.forget()
            att = attribute(o, got.by_host.get(host, no_inbound))
            parent_call: Call | None = None
            fs: list[Finding] = []
            if _before_capture(o, att, serving.get(host), first_seen.get(host)):
                # The request being served may be one the capture does not show: not evidence.
                edge_calls.append(o)
                outcomes.append((k, n, source, target, False, False, "not-in-capture", None,
                                 "none", "certain", ()))
            elif att.inbound is None:
                notes.append(Note("root-call", f"{source} → {target}: {o.line()} was made while no "
                                  "request was being served: it starts a trace, not a break",
                                  o.capture, o.frame))
                fs = root_verdict(o, source, target, hidden_in.of(o))
                for f in fs:
                    findings.append(f)
                    hop.broken[f.kind] += 1
                outcomes.append((k, n, source, target, False, False, "root", None,
                                 "none", "certain", ()))
            else:
                parent_call = att.inbound
                fs, ns, short = judge_candidates(o, att, source, target, hidden_in.of(o))
                if short and not fs:
                    limited_calls.append(o)
                outcomes.append((k, n, source, target, True, parent_call.has_context,
                                 "limited" if short and not fs else "judged",
                                 cap.number(parent_call), att.method, att.confidence,
                                 tuple(c.frame for c in att.candidates)))
                findings += fs
                notes += ns
                if not fs and parent_call.has_context and not short:
                    hop.propagated += 1
                for f in fs:
                    hop.broken[f.kind] += 1
                    if f.kind in ("missing", "partial"):  # only headers actually lost
                        hop.headers_lost.update(f.headers)
            if fs:
                found[(k, n)] = fs
            key = _trace_key(parent_call) if parent_call is not None else _trace_key(o)
            if key is not None:
                outs.add((key, span_id(o), span_id(parent_call) if parent_call is not None else None,
                          "client", source, k, n, describe_target(o), bool(fs), o.capture, o.ts_ns, o.frame))
        not_in_capture += len(edge_calls)
        limited += len(limited_calls)
        unknown_headers += sum(len(c.unknown) for c in limited_calls)
        notes += _edge_notes(cap.path, edge_calls, limited_calls)
        notes += got.malformed
    traces = Traces(caps, spans, found)
    anomalies = [(cap.path, a) for cap in caps for a in cap.summary.anomalies]
    order = {k: n for n, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (f.outbound.capture, f.outbound.frame, order[f.kind]))
    hop_list = sorted(hops.values(), key=lambda h: (-h.broken_total, h.source, h.target))
    return Result(
        captures=[c.path for c in caps],
        pods=[p for cap, got in zip(caps, seen, strict=True) for p in cap.pods(got)],
        hops=hop_list,
        traces=traces,
        findings=findings,
        notes=notes,
        anomalies=anomalies,
        calls=Calls(caps, known),
        outcomes=Outcomes(caps, outcomes, found),
        warnings=warnings,
        not_in_capture=not_in_capture,
        limited=limited,
        unknown_headers=unknown_headers,
        seen={cap.path: (cap.summary.messages, cap.summary.frames) for cap in caps},
    )


def _before_capture(o: Call, att: Attribution, serving: int | None, first_inbound: int | None) -> bool:
    """Whether the request ``o`` was made for may be one the capture does not show.

    Ids in common with an inbound request settle it. Otherwise, the pod was evidently
    serving a request begun before the capture until ``serving`` (a response to a request
    not in the capture); and a call carrying an x-request-id or a parent span before the
    first inbound request appears continues a request the capture did not see begin.
    """
    if att.method not in ("time-window", "none"):  # an id in common settles it
        return False
    if serving is not None and o.ts_ns <= serving:
        return True
    if att.inbound is None and first_inbound is not None and o.ts_ns < first_inbound:
        return o.request_id is not None or any(t.parent_span_id is not None for t in o.trace)
    return False


def _edge_notes(capture: str, edge: list[Call], limited: list[Call]) -> list[Note]:
    """One note per capture for each kind of call not judged (never one per call: a large
    capture would print thousands)."""
    notes: list[Note] = []
    if edge:
        notes.append(Note("not-in-capture", f"{len(edge)} outbound call(s) not judged: the request "
                          "being served when they were made is not in the capture (it began "
                          "before the capture started)", capture, edge[0].frame))
    if limited:
        n = sum(len(c.unknown) for c in limited)
        notes.append(Note("unknown-headers", f"verdict of {len(limited)} outbound call(s) limited by "
                          f"{n} unknown headers (HPACK entries older than the capture): no finding "
                          "rests on a header the capture cannot show", capture, limited[0].frame))
    return notes


def _trace_key(c: Call) -> str | None:
    return c.trace_id or (synthetic_trace_id("x-request-id:" + c.request_key) if c.request_key else None)


def _span_of(capture: str, frame: int) -> str:
    return hashlib.sha1(f"{capture}\0{frame}".encode()).hexdigest()[:16]


class Calls(Sequence[Call]):
    """Every call of the captures analysed, in order, read back from their logs when asked
    for (``Result.calls``): each read gives new objects, equal to the last."""

    def __init__(self, caps: list[_Capture], known: Corroboration) -> None:
        self._caps = caps
        self._known = known

    def __len__(self) -> int:
        return sum(len(cap.log) for cap in self._caps)

    def __iter__(self) -> Iterator[Call]:
        for cap in self._caps:
            yield from cap.calls()

    @property
    def known(self) -> Corroboration:
        """The tracing values every call carried under a known name (the report's
        ``corroboration``), as reading the captures saw them."""
        return self._known

    @overload
    def __getitem__(self, n: int) -> Call: ...

    @overload
    def __getitem__(self, n: slice) -> list[Call]: ...

    def __getitem__(self, n: int | slice) -> Call | list[Call]:
        if isinstance(n, slice):
            return list(self)[n]
        if n < 0:
            n += len(self)
        for cap in self._caps:
            if 0 <= n < len(cap.log):
                return cap.get(n)
            n -= len(cap.log)
        raise IndexError(n)


# What the analysis keeps of an outbound call's outcome until it is asked for: the capture's
# index and the call's number, source, target, attributed, carried, verdict, the number of
# the inbound request judged against (or None), attribution, confidence, candidates' frames.
_OutcomeRow = tuple[int, int, str, str, bool, bool, str, int | None, str, str, tuple[int, ...]]


class Outcomes(Sequence[Outcome]):
    """The outcome of every outbound call, in order (``Result.outcomes``), kept on disk as
    rows (``store.SpillLog``) and made into ``Outcome``s when read."""

    def __init__(self, caps: list[_Capture], rows: SpillLog,
                 found: dict[tuple[int, int], list[Finding]]) -> None:
        self._caps = caps
        self._rows = rows
        self._found = found

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Outcome]:
        for row in self._rows:
            yield self._outcome(row)

    def _outcome(self, row: _OutcomeRow) -> Outcome:
        k, n, source, target, attributed, carried, verdict, inbound, attribution, confidence, frames = row
        cap = self._caps[k]
        return Outcome(cap.get(n), source, target, self._found.get((k, n), []), attributed, carried,
                       verdict, cap.get(inbound) if inbound is not None else None, attribution,
                       confidence, list(frames))

    @overload
    def __getitem__(self, n: int) -> Outcome: ...

    @overload
    def __getitem__(self, n: slice) -> list[Outcome]: ...

    def __getitem__(self, n: int | slice) -> Outcome | list[Outcome]:
        if isinstance(n, slice):
            return list(self)[n]
        if n < 0:
            n += len(self)
        for k, row in enumerate(self._rows):
            if k == n:
                return self._outcome(row)
        raise IndexError(n)


# A span as the analysis keeps it until asked for: its trace's key, span id, parent id,
# kind, service, the capture's index and the call's number, peer, whether it has findings,
# and the call's capture, start and frame (the spans of a trace are in that order).
_SpanRow = tuple[str, str, str | None, str, str, int, int, str | None, bool, str, int, int]


class _TraceKept:
    """What is kept of a trace until asked for: where its spans are, whether one is broken,
    and where its first span is (its place among the traces)."""

    __slots__ = ("broken", "first", "spans")

    def __init__(self, first: tuple[str, int, int]) -> None:
        self.spans: list[int] = []  # log << 40 | number
        self.broken = False
        self.first = first


class Traces(Sequence[Trace]):
    """The traces of the analysis, broken ones first, each in the order of its first span
    (``Result.traces``): their spans are read back from disk when asked for; what stays in
    memory is a few numbers per span and per trace (``_TraceKept``)."""

    def __init__(self, caps: list[_Capture], spans: list[tuple[CallLog, CallLog]],
                 found: dict[tuple[int, int], list[Finding]]) -> None:
        self._caps = caps
        self._found = found
        self._logs: list[CallLog] = [log for pair in spans for log in pair]
        kept: dict[str, _TraceKept] = {}
        # each capture's inbound requests' spans, then its outbound calls'
        for at, log in enumerate(self._logs):
            for n, row in enumerate(log.rows()):
                key = row[0]
                where = (row[9], row[10], row[11])
                t = kept.get(key)
                if t is None:
                    t = kept[key] = _TraceKept(where)
                elif where < t.first:
                    t.first = where
                t.spans.append(at << 40 | n)
                if row[8]:
                    t.broken = True
        # (sorted is stable: traces that tie stay in the order first seen)
        self._order = sorted(kept.items(), key=lambda kv: (not kv[1].broken, kv[1].first[1]))

    def __len__(self) -> int:
        return len(self._order)

    def _trace(self, key: str, kept: _TraceKept) -> Trace:
        spans: list[Span] = []
        for ref in kept.spans:
            row: _SpanRow = self._logs[ref >> 40].row(ref & (1 << 40) - 1)
            _, sid, parent, kind, service, k, n, peer, broken, _, _, _ = row
            spans.append(Span(sid, parent, kind, service, self._caps[k].get(n), peer,
                              list(self._found[(k, n)]) if broken else None))
        spans.sort(key=lambda s: (s.call.capture, s.call.ts_ns, s.call.frame))
        return Trace(key, spans)

    def __iter__(self) -> Iterator[Trace]:
        for key, kept in self._order:
            yield self._trace(key, kept)

    @overload
    def __getitem__(self, n: int) -> Trace: ...

    @overload
    def __getitem__(self, n: slice) -> list[Trace]: ...

    def __getitem__(self, n: int | slice) -> Trace | list[Trace]:
        if isinstance(n, slice):
            return [self._trace(*kv) for kv in self._order[n]]
        return self._trace(*self._order[n])
