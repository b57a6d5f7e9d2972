"""Legs and roles: pair requests with responses, and tell inbound calls (to the app) from
outbound calls (made by the app) and from the sidecar's own noise.

Strategy: a sidecar pod capture (ksniff ``-p``) shows the inbound leg as requests from
127.0.0.6 (Istio >= 1.10) or 127.0.0.1 to the app's ports, and the outbound leg as requests
to 127.0.0.1:15001 after the iptables redirect; the pod's address and the app's ports are
read off that traffic. Any other capture (a node, a docker network) is read generically:
every server endpoint is a service, and the calls a service's host makes are its outbound
calls. The user's ``--pod-ip``/``--app-port``/``--outbound-port`` override what is found.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from analyzer.analysis.model import Call
from analyzer.analysis.naming import NamingError, PodName, explicit_name, host_name, pod_name
from analyzer.decode.packet import format_endpoint
from analyzer.records import Message
from analyzer.tracing import TRACING_HEADER_NAMES, TraceContext

NOISE_PORTS = frozenset((15000, 15004, 15020, 15021, 15090))  # admin, health, metrics
INBOUND_SOURCES = frozenset(("127.0.0.6", "127.0.0.1", "::6", "::1"))
LOOPBACK_PREFIXES = ("127.", "::1")
NOISE_AGENTS = (b"kube-probe/", b"prometheus/", b"envoy/health")
# How many recent distinct sets of tracing values ``pair`` remembers to share (see _Shared):
# far more requests than are ever served at once (the generator's shape shares as much at 512).
SHARED_RECENT = 1024


@dataclass(slots=True)
class Options:
    """What the traffic may not show: the pod's IP, the ports its app listens on, the
    sidecar's outbound capture port, whether to keep probe/metrics noise, and pod names
    per capture (``--name POD=CAPTURE``). Found from the traffic when left out."""

    pod_ip: str | None = None
    app_ports: tuple[int, ...] = ()
    outbound_port: int = 15001
    include_noise: bool = False
    names: tuple[tuple[str, str], ...] = ()  # (pod, capture) from --name POD=CAPTURE


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "backslashreplace")


def _without_userinfo(authority: bytes | None) -> bytes | None:
    """The authority as the service it names: ``user:password@host:port`` names
    ``host:port``. Userinfo is a credential, never part of a service's identity, and the
    authority becomes hop, span and expectation names that no redaction policy reaches
    (``messages`` still shows the Host header, redacted)."""
    if authority is None or b"@" not in authority:
        return authority
    return authority.rsplit(b"@", 1)[1]


def _interned(b: bytes | None) -> str | None:
    """Methods and authorities repeat across thousands of calls: keep one copy of each."""
    return None if b is None else sys.intern(b.decode("utf-8", "backslashreplace"))


def _is_noise(m: Message) -> bool:
    if m.endpoints.dport in NOISE_PORTS:
        return True
    for h in m.headers:
        if h.lname == b"user-agent" and h.value is not None:
            return h.value.lower().startswith(NOISE_AGENTS)
    return False


_Values = tuple[tuple[str, str], ...]
# The values of every call that carries no tracing header: one empty dict, not one a call
# (64 bytes each; no call's values are changed once made).
_NO_VALUES: Final[dict[str, str]] = {}
# A call's tracing values, their names in order, its tracing contexts.
_Kept = tuple[dict[str, str], tuple[str, ...], tuple[TraceContext, ...]]


class _Shared:
    """One copy of equal tracing values and contexts for calls made close together.

    An app that propagates sends on exactly the headers it received, so an outbound call's
    values and tracing contexts usually equal those of the inbound request seen moments
    before (and a retry's those of the first try): each call kept its own copy, about
    1.5 KB of the 3 KB a call costs (issue 10 item 6). Calls share one copy only when the
    values and the contexts are equal, field for field, so nothing downstream can tell;
    none is changed after ``pair`` (``corroborate`` replaces a call's contexts, it never
    changes the tuple). The recent sets are bounded (``SHARED_RECENT``, oldest forgotten
    first).
    """

    __slots__ = ("_recent",)

    def __init__(self) -> None:
        self._recent: dict[_Values, _Kept] = {}

    def get(self, values: dict[str, str], trace: tuple[TraceContext, ...]) -> _Kept:
        """The values, their names and the contexts to keep for a call: an earlier call's
        when equal, else these."""
        if not values:
            return _NO_VALUES, (), trace
        key = tuple(values.items())
        recent = self._recent
        seen = recent.get(key)
        if seen is not None and seen[2] == trace:
            return seen
        if seen is None and len(recent) >= SHARED_RECENT:
            del recent[next(iter(recent))]
        kept = (values, tuple(values), trace)
        recent[key] = kept
        return kept


def _same_strings(values: dict[str, str], trace: tuple[TraceContext, ...]) -> dict[str, str]:
    """The values, each one the very string its tracing context already holds when equal
    (an x-b3-traceid's value is the context's trace id, a traceparent's its raw value): a
    request's ids were each kept twice, about 280 bytes."""
    held: dict[str, str] = {}
    for t in trace:
        for s in (t.raw, t.trace_id, t.span_id, t.parent_span_id, t.request_id):
            if s is not None:
                held[s] = s
    return {name: held.get(v, v) for name, v in values.items()}


# Calls wait, in the order their requests were seen, for their responses: at most this many.
# Past it the oldest goes on unanswered, and its response, if it comes, is told (``late``).
IN_ORDER_LIMIT: Final = 4096


def pair(messages: Iterable[Message], made: Callable[[Call], None] | None = None) -> list[Call]:
    """Requests with their responses: per HTTP/1 connection in order, per HTTP/2 stream;
    ``made`` is told of each call as it is made."""
    return list(paired(messages, made))


def paired(messages: Iterable[Message], made: Callable[[Call], None] | None = None,
           late: Callable[[Call], None] | None = None, limit: int = IN_ORDER_LIMIT) -> Iterator[Call]:
    """``pair``'s calls one at a time, in the order their requests were seen, each once its
    response is seen (or, ``limit`` requests later, without it: ``late`` is then told of the
    call when its response comes), so a capture's calls need not be held whole."""
    order: deque[Call] = deque()
    early: set[int] = set()  # id() of calls given on before their response was seen
    shared = _Shared()
    # Requests waiting for their response, per connection and stream: one call, or a queue
    # only when several wait on one HTTP/1 connection (pipelining). An answered key is
    # dropped, so this follows the requests in flight: an empty queue kept per HTTP/2
    # stream ever seen cost 600 bytes a stream.
    waiting: dict[tuple[int, int | None], Call | deque[Call]] = {}
    for m in messages:
        ep = m.endpoints
        key = (ep.connection, m.stream)
        if m.kind == "request":
            values: dict[str, str] = {}
            identity = None
            for h in m.headers:
                if h.lname is None or h.value is None or h.guessed:
                    continue
                if h.lname == b"x-forwarded-client-cert":
                    identity = _xfcc_identity(h.value)
                    continue
                lname = sys.intern(h.lname.decode("latin-1"))  # one copy of each name
                if lname in TRACING_HEADER_NAMES or lname.startswith("uberctx-"):
                    values.setdefault(lname, h.value.decode("utf-8", "backslashreplace"))
            if values and m.trace:
                values = _same_strings(values, m.trace)
            values, names, trace = shared.get(values, m.trace)
            authority_unknown = m.authority is None and any(
                h.unknown is not None and h.name is None for h in m.headers
            )
            call = Call(
                capture=m.capture,
                frame=m.frame,
                ts_ns=m.ts_ns,
                protocol=m.protocol,
                src=sys.intern(ep.src),
                sport=ep.sport,
                dst=sys.intern(ep.dst),
                dport=ep.dport,
                connection=ep.connection,
                stream=m.stream,
                method=_interned(m.method),
                path=_text(m.path),
                authority=_interned(_without_userinfo(m.authority)),
                trace=trace,
                header_names=names,
                values=values,
                role="noise" if _is_noise(m) else "other",
                authority_unknown=authority_unknown,
                identity=identity,
            )
            order.append(call)
            if made is not None:
                made(call)
            queued = waiting.get(key)
            if queued is None:
                waiting[key] = call
            elif isinstance(queued, deque):
                queued.append(call)
            else:
                waiting[key] = deque((queued, call))
        else:
            queued = waiting.get(key)
            if queued is None:
                continue  # a response to a request sent before the capture started
            if isinstance(queued, deque):
                call = queued.popleft()
                if not queued:
                    del waiting[key]
            else:
                call = queued
                del waiting[key]
            call.response_frame = m.frame
            call.response_ts = m.ts_ns
            call.status = m.status
            if (ep.src, ep.sport) != (call.dst, call.dport):
                call.nat_reply_from = format_endpoint(ep.src, ep.sport)
            if early and id(call) in early:
                early.discard(id(call))
                if late is not None:
                    late(call)
                continue
        while order and (order[0].response_frame is not None or len(order) > limit):
            first = order.popleft()
            if first.response_frame is None:
                early.add(id(first))  # still waiting (pair's ``waiting`` holds it)
            yield first
    yield from order


_XFCC_BY = re.compile(rb"(?:^|[;,])By=spiffe://[^/;,]+/ns/[^/;,]+/sa/([^;,\"]+)")


def _xfcc_identity(value: bytes) -> str | None:
    """Envoy's x-forwarded-client-cert names the receiving proxy's own SPIFFE identity in
    its By= element (spiffe://cluster.local/ns/NS/sa/NAME): the pod's service account."""
    m = _XFCC_BY.search(value)
    return m.group(1).decode("ascii", "replace") if m else None


def _loopback(ip: str) -> bool:
    return ip.startswith(LOOPBACK_PREFIXES)


@dataclass(slots=True)
class Roles:
    sidecar: bool
    pod_ip: str | None
    app_ports: list[int]  # sorted
    # host key -> service name; inbound/outbound calls carry the same host key
    services: dict[str, str]
    names: dict[str, PodName] = field(default_factory=dict)  # host key -> name and its source


def _to_app(c: Call, opts: Options) -> bool:
    """Whether a call that is not noise is an inbound call, should the capture be a sidecar
    pod's: a request to the app's port (from the sidecar's loopback source when the ports are
    not given), to the pod when its address is given. Decided by the call and the options
    alone, so it needs nothing found later in the capture."""
    return (
        c.dport != opts.outbound_port
        and (c.dport in opts.app_ports if opts.app_ports else c.src in INBOUND_SOURCES)
        and (opts.pod_ip is None or c.dst == opts.pod_ip or _loopback(c.dst))
    )


class RolesBuilder:
    """What ``classify`` finds about a capture's pod, from its calls given one at a time.

    Strategy: a capture is a sidecar pod's or not, and the pod's address, ports and name are
    found, only once every call has been seen; a call's role then follows from its own
    fields and that (``assign``). So calls need not be kept until the end (issue 10 item 6):
    this keeps counts per address, port, Host and identity, in the order first seen, which
    is what ``Counter.most_common`` breaks ties by. Both readings of the capture are counted
    until one call shows a sidecar (then only that one), since the last call may be the one.
    The counts grow with the addresses, ports, Hosts and identities the capture shows, never
    with its calls.
    """

    __slots__ = ("_app_ports", "_authorities", "_capture", "_dsts", "_hosts", "_identities",
                 "_live_ports", "_opts", "_outbound_port", "_pod_ip", "_ports", "_sidecar", "_srcs")

    def __init__(self, opts: Options, capture: str = "-") -> None:
        self._opts = opts
        self._capture = capture
        # the options every call is tested against, at hand
        self._outbound_port = opts.outbound_port
        self._app_ports = opts.app_ports
        self._pod_ip = opts.pod_ip
        self._sidecar = opts.pod_ip is not None or bool(opts.app_ports)
        # Sidecar: the inbound calls' ports, their destinations and, for the pod's address
        # too, the sources of calls to the outbound port; the inbound calls' Hosts and
        # identities (they name the pod).
        # (Counts are plain dicts, in the order first seen: a Counter's += costs about three
        # times a dict's get; they become Counters once, in roles().)
        self._ports: set[int] = set()
        self._dsts: dict[str, int] = {}
        self._srcs: dict[str, int] = {}
        self._authorities: dict[str, int] = {}
        self._identities: dict[str, int] = {}
        # Generic: per server address (first seen first), the Hosts and identities of the
        # calls it served; the ports of every call.
        self._hosts: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
        self._live_ports: set[int] = set()

    def add(self, c: Call) -> None:
        """Count one call (noise included); calls must come in the capture's order (``pair``'s).
        ``_to_app`` is spelled out here: this runs for every call of a capture."""
        if c.role == "noise":
            return
        dport = c.dport
        src = c.src
        dst = c.dst
        if dport == self._outbound_port:
            self._sidecar = True
            srcs = self._srcs
            srcs[src] = srcs.get(src, 0) + 1  # loopback ones too: dropped once, in roles()
        else:
            if src == "127.0.0.6":
                self._sidecar = True
            app_ports = self._app_ports
            pod_ip = self._pod_ip
            if (dport in app_ports if app_ports else src in INBOUND_SOURCES) and (
                pod_ip is None or dst == pod_ip or dst.startswith(LOOPBACK_PREFIXES)
            ):
                self._ports.add(dport)
                dsts = self._dsts
                dsts[dst] = dsts.get(dst, 0) + 1  # loopback ones too: dropped once, in roles()
                authority = c.authority
                if authority:
                    authorities = self._authorities
                    authorities[authority] = authorities.get(authority, 0) + 1
                identity = c.identity
                if identity:
                    identities = self._identities
                    identities[identity] = identities.get(identity, 0) + 1
        if self._sidecar:
            if self._hosts:  # a sidecar's after all: the generic reading is not needed
                self._hosts = {}
                self._live_ports = set()
            return
        seen = self._hosts.get(dst)
        if seen is None:
            seen = self._hosts[dst] = ({}, {})
        _count(seen[0], c.authority)
        _count(seen[1], c.identity)
        self._live_ports.add(dport)

    def roles(self) -> Roles:
        """What was found about the pod (named by analysis.naming from the capture's file
        name, --name and what the calls showed); the calls seen so far are all there are."""
        opts = self._opts
        capture = self._capture
        explicit = explicit_name(capture, opts.names)
        if self._sidecar:
            ports = sorted(set(opts.app_ports) or self._ports)
            pod_ip = opts.pod_ip
            if pod_ip is None:
                # the inbound calls' destinations first, then the outbound calls' sources
                seen = Counter({ip: n for ip, n in self._dsts.items() if not _loopback(ip)})
                seen.update({ip: n for ip, n in self._srcs.items() if not _loopback(ip)})
                pod_ip = seen.most_common(1)[0][0] if seen else None
            name = pod_name(capture, Counter(self._authorities), Counter(self._identities), explicit,
                            pod_ip or "pod")
            return Roles(True, pod_ip, ports, {"pod": name.service}, {"pod": name})
        # Generic: every server endpoint is a service; its host's own requests are its calls.
        names = {host: host_name(Counter(a), Counter(i), host) for host, (a, i) in self._hosts.items()}
        if explicit and len(names) == 1:  # --name can name a capture's only service
            (host,) = names
            names[host] = pod_name(capture, Counter(), Counter(), explicit, host)
        elif explicit and names:  # which of them? a guess would misname the others
            raise NamingError(f"--name {explicit}={capture}: the capture shows {len(names)} services "
                              f"({', '.join(sorted(n.service for n in names.values()))}), not one pod")
        services = {host: n.service for host, n in names.items()}
        return Roles(False, None, sorted(self._live_ports), services, names)


def _count(counts: dict[str, int], key: str | None) -> None:
    if key:  # a Host or an identity the call did not show counts for nothing
        counts[key] = counts.get(key, 0) + 1


def assign(c: Call, roles: Roles, opts: Options) -> None:
    """Give one call its role and, when inbound or outbound, its service (the name every
    report uses, not the host key). Decided by the call's own fields, the roles and the
    options alone (a call's role is read only to keep noise noise), so a call can be given
    its role whenever it is read, as often as it is."""
    if c.role == "noise":
        return
    if not roles.sidecar:
        c.role = "inbound"
        c.service = roles.services[c.dst]  # the receiving service, as its role says
        return
    dport = c.dport
    if dport == opts.outbound_port:
        c.role = "outbound"
    elif _to_app(c, opts):
        c.role = "inbound"
    elif roles.pod_ip is not None and c.src == roles.pod_ip and not _has(roles.app_ports, dport):
        c.role = "outbound"
    else:
        c.role = "other"
        return
    c.service = roles.services["pod"]


def _has(ports: list[int], port: int) -> bool:
    """Whether a sorted list holds the port: a sidecar's inbound ports are as many as its
    capture shows, and every call of the pod is tested."""
    i = bisect_left(ports, port)
    return i < len(ports) and ports[i] == port


def classify(calls: list[Call], opts: Options, capture: str = "-") -> Roles:
    """Give every call its role and host key; return what was found about the pod
    (``RolesBuilder`` over the calls, then ``assign`` to each)."""
    builder = RolesBuilder(opts, capture)
    for c in calls:
        builder.add(c)  # a direct call: a bound method kept in a variable is a generic one when compiled
    roles = builder.roles()
    for c in calls:
        assign(c, roles, opts)
    return roles


def outbound_host(c: Call, roles: Roles) -> str | None:
    """The host key of the service that made this call, when it is an outbound call."""
    if roles.sidecar:
        return "pod" if c.role == "outbound" else None
    # A request between two endpoints of one address (all of a loopback-only capture) cannot
    # be told from a client's call to the service: only calls that leave the host count.
    if c.src in roles.services and c.role != "noise" and c.src != c.dst:
        return c.src
    return None


def inbound_host(c: Call, roles: Roles) -> str | None:
    if roles.sidecar:
        return "pod" if c.role == "inbound" else None
    return c.dst if c.role == "inbound" else None
