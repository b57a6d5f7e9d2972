"""Records of the analysis stage: calls (request + response), pods, findings, hops, traces."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.records import Anomaly
from analyzer.tracing import TraceContext, request_id_key

# Finding kinds, most severe first.
KINDS = ("missing", "changed", "partial", "malformed")


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
    capture: str
    service: str  # name from the inbound authority, or address
    address: str | None  # pod IP
    app_ports: list[int]
    sidecar: bool
    legs: dict[str, int] = field(default_factory=dict)  # role -> calls
    encrypted_peers: dict[str, int] = field(default_factory=dict)  # peer -> TLS connections
    anomalies: int = 0


@dataclass(slots=True)
class Finding:
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
    kind: str  # "format-switch", "inbound-malformed", "root-call", "unjoined"
    detail: str
    capture: str
    frame: int


@dataclass(slots=True)
class Span:
    span_id: str
    parent_id: str | None
    kind: str  # "server" or "client"
    service: str
    call: Call
    peer: str | None
    findings: list[Finding] = field(default_factory=list)


@dataclass(slots=True)
class Trace:
    trace_id: str
    spans: list[Span] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(s.findings for s in self.spans)


@dataclass(slots=True)
class Hop:
    source: str
    target: str
    protocol: str
    calls: int = 0
    propagated: int = 0
    broken: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    headers_lost: set[str] = field(default_factory=set)
    method: str | None = None
    path: str | None = None

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


@dataclass(slots=True)
class Result:
    captures: list[str]
    pods: list[Pod]
    hops: list[Hop]
    traces: list[Trace]
    findings: list[Finding]
    notes: list[Note]
    anomalies: list[tuple[str, Anomaly]]  # (capture, anomaly)
    calls: list[Call] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
