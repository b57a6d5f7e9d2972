"""Records of the analysis stage: calls (request + response), pods, findings, hops, traces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzer.records import Anomaly
from analyzer.tracing import TraceContext, request_id_key

# Finding kinds, in the order reports show them.
KINDS = ("missing", "changed", "partial", "malformed")

# One outbound call gets at most one finding: when several rules fail, the kind that comes
# first here is the one reported (the others are named in its rule text), because it is
# the root cause an SRE must fix first:
#   changed   the call carries a different trace id or x-request-id: everything downstream
#             is another trace, whatever else is wrong (a tracestate dropped with it is
#             part of the restart, not a second break);
#   malformed a header is present but breaks its spec: it is not also "dropped";
#   missing   the call carries none of the tracing headers the inbound request carried;
#   partial   some were carried on, some dropped (a B3 header, the sampling decision,
#             tracestate or some of its members).
# A header the capture cannot show (an HPACK entry older than the capture) is never
# missing: a kind that rests on a header's absence is not given when it may be there.
PRECEDENCE = ("changed", "malformed", "missing", "partial")


@dataclass(slots=True)
class Call:
    """One request and, when captured, its response: what the analysis needs of them.

    Header lists are not kept (only the tracing contexts and the names of tracing headers
    present), so a large capture's analysis stays small.
    """

    capture: str
    frame: int
    ts_ns: int
    protocol: str
    src: str
    sport: int
    dst: str
    dport: int
    connection: int
    stream: int | None
    method: str | None
    path: str | None
    authority: str | None
    trace: tuple[TraceContext, ...]
    header_names: tuple[str, ...]  # lower-cased tracing header names present, wire order
    values: dict[str, str]  # tracing header name -> its (first) value, as text
    response_frame: int | None = None
    response_ts: int | None = None
    status: int | None = None
    nat_reply_from: str | None = None  # the ClusterIP:port the replies came from
    role: str = "other"  # "inbound", "outbound", "noise", "other"
    service: str | None = None  # for inbound: the pod's service; for outbound: the caller's
    authority_unknown: bool = False  # :authority hidden by an HPACK entry older than the capture
    identity: str | None = None  # the receiving workload's service account, from Envoy's XFCC
    # Headers the capture cannot show: HPACK entries older than the capture (their identity,
    # "entry #k of the client's table"), "=name" for a known name with an unknown value, and
    # names guessed from a value's shape that no known header corroborates.
    unknown: tuple[str, ...] = ()
    # The target as analysis.naming names it: the authority, an inferred name, or the one
    # unknown spelling; the evidence used ("authority", "ClusterIP", ...; naming.TARGET_SOURCES).
    target: str | None = None
    target_source: str = "authority"
    target_evidence: str | None = None

    # Written out, not generated: see analyzer/records.py (one call per request).
    def __init__(
        self,
        capture: str,
        frame: int,
        ts_ns: int,
        protocol: str,
        src: str,
        sport: int,
        dst: str,
        dport: int,
        connection: int,
        stream: int | None,
        method: str | None,
        path: str | None,
        authority: str | None,
        trace: tuple[TraceContext, ...],
        header_names: tuple[str, ...],
        values: dict[str, str],
        response_frame: int | None = None,
        response_ts: int | None = None,
        status: int | None = None,
        nat_reply_from: str | None = None,
        role: str = "other",
        service: str | None = None,
        authority_unknown: bool = False,
        identity: str | None = None,
        unknown: tuple[str, ...] = (),
        target: str | None = None,
        target_source: str = "authority",
        target_evidence: str | None = None,
    ) -> None:
        self.capture = capture
        self.frame = frame
        self.ts_ns = ts_ns
        self.protocol = protocol
        self.src = src
        self.sport = sport
        self.dst = dst
        self.dport = dport
        self.connection = connection
        self.stream = stream
        self.method = method
        self.path = path
        self.authority = authority
        self.trace = trace
        self.header_names = header_names
        self.values = values
        self.response_frame = response_frame
        self.response_ts = response_ts
        self.status = status
        self.nat_reply_from = nat_reply_from
        self.role = role
        self.service = service
        self.authority_unknown = authority_unknown
        self.identity = identity
        self.unknown = unknown
        self.target = target
        self.target_source = target_source
        self.target_evidence = target_evidence

    @property
    def request_id(self) -> str | None:
        for c in self.trace:
            if c.format == "x-request-id" and c.request_id:
                return c.request_id
        return None

    @property
    def request_key(self) -> str | None:
        rid = self.request_id
        return request_id_key(rid) if rid else None

    @property
    def trace_id(self) -> str | None:
        for c in self.trace:
            if c.trace_id is not None:
                return c.trace_id
        return None

    @property
    def has_context(self) -> bool:
        return any(c.trace_id is not None or c.format == "x-request-id" for c in self.trace)

    def line(self) -> str:
        return f"{self.method or '?'} {self.path or '<unknown path>'}"


@dataclass(slots=True)
class Pod:
    """One pod (or, without a sidecar, one server endpoint) a capture shows, and how it
    was named."""

    capture: str
    service: str  # name from the inbound authority, or address
    address: str | None  # pod IP
    app_ports: list[int]
    sidecar: bool
    legs: dict[str, int] = field(default_factory=dict)  # role -> calls
    encrypted_peers: dict[str, int] = field(default_factory=dict)  # peer -> TLS connections
    anomalies: int = 0
    name_source: str = "address"  # the evidence that named it (analysis.naming.POD_SOURCES)
    pod_name: str | None = None  # the full pod name, when --name or the file name gives it


@dataclass(slots=True)
class Finding:
    """An outbound call where propagation breaks: its kind (``KINDS``), the headers
    concerned, what the inbound request carried (``expected``) against what the call
    carried (``found``), and how the call was attributed to that request."""

    kind: str
    trace_id: str | None
    x_request_id: str | None
    source: str
    target: str | None
    headers: list[str]
    expected: dict[str, str]
    found: dict[str, str]
    attribution: str  # "x-request-id", "trace-id", "time-window", "none" (a root call)
    confidence: str  # "certain", "likely", "ambiguous"
    inbound: Call | None  # None for a root call: nothing was being served
    outbound: Call
    rule: str | None = None
    candidates: list[int] = field(default_factory=list)  # inbound frames when ambiguous


@dataclass(slots=True)
class Note:
    """Something a reader should know that is not a break (a root call, a format switch,
    calls not judged), tied to a capture frame."""

    kind: str  # "format-switch", "inbound-malformed", "root-call", "unjoined"
    detail: str
    capture: str
    frame: int


@dataclass(slots=True)
class Span:
    """A call as a span: ``server`` for a request the pod received, ``client`` for a
    call its app made; ``parent_id`` links across captures by the ids the calls carry."""

    span_id: str
    parent_id: str | None
    kind: str  # "server" or "client"
    service: str
    call: Call
    peer: str | None
    findings: list[Finding] = field(default_factory=list)

    # Written out, not generated: see analyzer/records.py (one span per call); a new list
    # when ``findings`` is not given, as the field's default_factory gives.
    def __init__(self, span_id: str, parent_id: str | None, kind: str, service: str, call: Call,
                 peer: str | None, findings: list[Finding] | None = None) -> None:
        self.span_id = span_id
        self.parent_id = parent_id
        self.kind = kind
        self.service = service
        self.call = call
        self.peer = peer
        self.findings = [] if findings is None else findings


@dataclass(slots=True)
class Trace:
    """The spans of one trace (by trace id, or by x-request-id when no trace id is
    carried), across every capture analysed."""

    trace_id: str
    spans: list[Span] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(s.findings for s in self.spans)


@dataclass(slots=True)
class Hop:
    """Calls from one service to one target over one protocol: how many carried the
    context on, how many broke (by kind), and which headers were lost."""

    source: str
    target: str
    protocol: str
    calls: int = 0
    propagated: int = 0
    broken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    headers_lost: set[str] = field(default_factory=set)
    method: str | None = None
    path: str | None = None
    target_source: str = "authority"  # how the target was named; inferred when not "authority"

    @property
    def broken_total(self) -> int:
        return sum(self.broken.values())


@dataclass(slots=True)
class Outcome:
    """What became of one outbound call: its hop, and the findings on it."""

    call: Call
    source: str
    target: str
    findings: list[Finding]
    attributed: bool  # an inbound request was being served (else a root call)
    carried: bool  # that request had tracing context to carry on
    # "judged"; "root" (nothing was being served); "not-in-capture" (the request being
    # served began before the capture, or the candidates include one it does not show);
    # "limited" (a finding would rest on the absence of a header the capture cannot show)
    verdict: str = "judged"
    # The attribution, for every call (a finding repeats it): the inbound request it was
    # judged against, the id that decided, how sure, and the candidates' frames.
    inbound: Call | None = None
    attribution: str = "none"
    confidence: str = "certain"
    candidates: list[int] = field(default_factory=list)

    # Written out, not generated: see analyzer/records.py (one outcome per outbound call); a
    # new list when ``candidates`` is not given, as the field's default_factory gives.
    def __init__(self, call: Call, source: str, target: str, findings: list[Finding], attributed: bool,
                 carried: bool, verdict: str = "judged", inbound: Call | None = None,
                 attribution: str = "none", confidence: str = "certain",
                 candidates: list[int] | None = None) -> None:
        self.call = call
        self.source = source
        self.target = target
        self.findings = findings
        self.attributed = attributed
        self.carried = carried
        self.verdict = verdict
        self.inbound = inbound
        self.attribution = attribution
        self.confidence = confidence
        self.candidates = [] if candidates is None else candidates


@dataclass(slots=True)
class Result:
    """The analysis of one or more captures: ``findings`` (breaks with evidence),
    ``hops``, ``traces``, ``pods``, ``notes`` and each capture's ``anomalies``."""

    captures: list[str]
    pods: list[Pod]
    hops: list[Hop]
    traces: Sequence[Trace]  # read back from disk when iterated (``engine.Traces``), or a list
    findings: list[Finding]
    notes: list[Note]
    anomalies: list[tuple[str, Anomaly]]  # (capture, anomaly)
    # Every call and every outbound call's outcome, in order: read back from disk when
    # iterated (``engine.Calls``, ``engine.Outcomes``), or lists.
    calls: Sequence[Call] = field(default_factory=list)
    outcomes: Sequence[Outcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # for stderr: a capture given twice
    not_in_capture: int = 0  # outbound calls whose serving request the capture does not show
    limited: int = 0  # outbound calls whose verdict unknown headers limited
    unknown_headers: int = 0  # headers of those calls the capture cannot show
    # capture -> (HTTP messages, frames) read: what an empty or HTTP-less capture showed
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)
