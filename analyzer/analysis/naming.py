"""Names: what a pod and the target of a call are called, from which evidence, and the one
spelling of a target that stays unknown.

Strategy: an SRE compares hops across captures by name, so a name must not depend on how a
request reached the pod. A pod's name comes from the evidence in this order, and the source
is kept with it:

1. ``--name POD=CAPTURE``: the user said so.
2. The capture's file name, as ksniff's ``-o POD.pcap`` leaves it: the stem when it is a
   DNS-1123 label. A stem shaped like a Deployment's pod (``WORKLOAD-HASH-XXXXX``, the random
   part in Kubernetes' vowel-free alphabet) or a DaemonSet's (``WORKLOAD-XXXXX``) is taken as
   it is. Any other stem (``productpage.pcap``, but also ``productpage-fixed.pcap`` or
   ``after.pcap``) is taken unless the capture names the pod otherwise: a cluster-local Host
   its callers used, or a service account unrelated to it (``bookinfo-productpage`` is related
   to ``productpage``); then the file name describes the capture, not the pod.
3. The pod's SPIFFE identity (its service account) in Envoy's XFCC ``By=`` element, unless it
   is the ``default`` account, which every pod without its own has.
4. A cluster-local Host/``:authority`` its callers used (``reviews:9080``,
   ``reviews.default.svc.cluster.local``): the Kubernetes service name.

An external Host (``bookinfo.example.com``, reached through an ingress) never names a pod: the
same pod captured behind another gateway would get another name. Without any of these, the
pod is named by its address.

The name hops and traces use is the *service*: a pod name loses its ReplicaSet hash and random
suffix (``productpage-v1-7f9c8d-x7k2p`` → ``productpage-v1``) and then Istio's version suffix
(``productpage-v1`` → ``productpage``, the ``app`` label of Istio's conventions), so pods of
one service, or one pod before and after a restart, keep one name; the full pod name is kept
beside it.

A target is named by its ``:authority``/Host. When the capture does not show it (an HPACK entry
older than the capture, an HTTP/1.0 request without Host), the evidence is, in order: another
request on the same connection that shows it (one connection goes to one service); the address
the replies came from (Istio's NAT shows the service's ClusterIP), when any call in any capture
shows that ClusterIP with a known authority (a ClusterIP belongs to one Kubernetes Service, so
the port may differ); and, when the callee's capture is given too, the request the callee
received with the same ids while the call was open (its start and end within the call's, give
or take CLOCK_SKEW_NS; method, path and protocol not contradicting). That last one is weighed
per connection, which goes to one service: every call on it that finds a callee must find the
same pod, and a pod that called the caller (upstream, through the multi-capture join) is never
its callee, although it saw the same x-request-id. An authority that is an IP literal (a client
that dialled the ClusterIP) names no service, so the callee's pod name with the service port
is used instead. Such a name is labelled inferred, with its evidence, and a note per
connection says what named it. A target that stays unknown is spelled ``unknown (ADDRESS)``
when the replies showed an address, else ``unknown (connection N)``, in every output; diff,
which compares captures, drops the connection number (it means nothing in another capture).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from analyzer.analysis.model import Call, Note
from analyzer.errors import AnalyzerError

# Where a pod's name came from, strongest first.
POD_SOURCES = ("--name", "file name", "xfcc", "host", "address")
# Where a target's name came from; all but "authority" and "unknown" are inferences.
TARGET_SOURCES = ("authority", "connection", "ClusterIP", "address", "callee capture", "unknown")

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Kubernetes names generated pods with rand.String: consonants and digits without 0, 1, 3.
_SAFE = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOYMENT_POD = re.compile(rf"(?P<workload>.+)-[a-z0-9]{{6,10}}-{_SAFE}{{5}}")
_DAEMONSET_POD = re.compile(rf"(?P<workload>.+)-{_SAFE}{{5}}")
_VERSION = re.compile(r"(?P<app>.+)-v\d+")
_CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap")
# How far apart two pods' clocks may be when a callee's request is matched to a call by time.
CLOCK_SKEW_NS = 5_000_000


class NamingError(AnalyzerError):
    """A --name that names no capture given: fatal, one line."""


@dataclass(frozen=True, slots=True)
class PodName:
    service: str  # the name hops and traces use
    source: str  # one of POD_SOURCES
    pod: str | None = None  # the full pod name, when the evidence gives one


def is_label(name: str) -> bool:
    """A DNS-1123 label: what Kubernetes allows as a pod or service name's part."""
    return _LABEL.fullmatch(name) is not None


def service_of_pod(pod: str) -> str:
    """`productpage-v1-7f9c8d-x7k2p` -> `productpage`: the service a pod name belongs to."""
    m = _DEPLOYMENT_POD.fullmatch(pod) or _DAEMONSET_POD.fullmatch(pod)
    workload = m.group("workload") if m else pod
    v = _VERSION.fullmatch(workload)
    return v.group("app") if v else workload


def pod_shaped(name: str) -> bool:
    """A name Kubernetes generated for a pod (it carries the random suffix)."""
    return bool(_DEPLOYMENT_POD.fullmatch(name) or _DAEMONSET_POD.fullmatch(name))


def file_stem(capture: str) -> str | None:
    """`captures/reviews-v1-7f9c8d-x7k2p.pcap.gz` -> `reviews-v1-7f9c8d-x7k2p`, when the file
    name is a capture's (`.pcap`, `.pcapng`, `.cap`, optionally `.gz`) and its stem a DNS-1123
    label; else None (stdin, other names)."""
    if capture == "-":
        return None
    name = Path(capture).name
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in _CAPTURE_SUFFIXES:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            return stem if is_label(stem) else None
    return None


def _host(authority: str) -> str:
    """The host part of an authority (`[::1]:80` -> `::1`, `reviews:9080` -> `reviews`)."""
    if authority.startswith("["):
        return authority[1:].split("]", 1)[0]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def cluster_local(authority: str) -> bool:
    """A name only the cluster resolves: a bare service name, `*.svc*`, `*.local`. (`NAME.NS`
    cannot be told from `example.com`, so it is not taken as one.)"""
    host = _host(authority).rstrip(".").lower()
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return False  # an address names no service
    return "." not in host or ".svc" in host or host.endswith(".local")


def is_address(authority: str) -> bool:
    """An authority that is an IP literal (`10.96.2.12:50051`, `[fd00::1]:80`) names nothing
    beyond the address: a client that dialled a ClusterIP."""
    host = _host(authority)
    return ":" in host or (host.replace(".", "").isdigit() and host.count(".") == 3)


def bare(authority: str) -> str:
    """`reviews.default.svc.cluster.local:9080` -> `reviews`; an address stays as it is."""
    host = _host(authority)
    return host if host.replace(".", "").isdigit() or ":" in host else host.split(".", 1)[0]


def _related(service: str, account: str) -> bool:
    """Whether a service account belongs to a service by the usual spellings (`reviews`,
    `bookinfo-reviews`, `reviews-sa`)."""
    return (account == service or account.endswith("-" + service) or account.startswith(service + "-")
            or service.endswith("-" + account) or service.startswith(account + "-"))


def name_pod(capture: str, inbound: Sequence[Call], explicit: str | None, fallback: str) -> PodName:
    """The name of the pod a sidecar capture shows, from its inbound calls (``pod_name``)."""
    return pod_name(capture, Counter(c.authority for c in inbound if c.authority),
                    Counter(c.identity for c in inbound if c.identity), explicit, fallback)


def pod_name(capture: str, authorities: Counter[str], identities: Counter[str],
             explicit: str | None, fallback: str) -> PodName:
    """The name of the pod a sidecar capture shows, from the evidence in the module's order:
    the Hosts and the identities its inbound calls showed are counted in the order first
    seen (ties go to the first), so the calls need not be kept to name it."""
    if explicit:
        return PodName(service_of_pod(explicit), "--name", explicit)
    local = [bare(a) for a, _ in authorities.most_common() if cluster_local(a)]
    # The "default" service account is every pod's that has none of its own: it names none.
    account = None
    most = 0
    for identity, n in identities.items():
        if n > most and identity != "default":
            account, most = identity, n
    stem = file_stem(capture)
    if stem is not None:
        service = service_of_pod(stem)
        # A plain stem (`reviews.pcap`, but also `after.pcap`) is the pod's name unless what
        # the capture shows names the pod otherwise; a generated pod name always is.
        if pod_shaped(stem) or ((not local or service == local[0])
                                and (account is None or _related(service, account))):
            return PodName(service, "file name", stem)
    if account is not None:
        return PodName(account, "xfcc")
    if local:
        return PodName(local[0], "host")
    return PodName(fallback, "address")


def host_name(authorities: Counter[str], identities: Counter[str], fallback: str) -> PodName:
    """The name of one server host of a capture that is not a pod's (a node, a docker
    network): its identity, else the Host its clients used (external or not: nothing better
    names it), else its address; each the most common its calls showed, the first seen of
    equals."""
    if identities:
        return PodName(identities.most_common(1)[0][0], "xfcc")
    if authorities:
        return PodName(bare(authorities.most_common(1)[0][0]), "host")
    return PodName(fallback, "address")


# -- --name POD=CAPTURE ---------------------------------------------------------------------


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    if "-" in (a, b):
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


def explicit_name(capture: str, names: Iterable[tuple[str, str]]) -> str | None:
    """The pod name the user gave for this capture (`--name POD=CAPTURE`), if any."""
    for pod, path in names:
        if _same_file(path, capture):
            return pod
    return None


def check_names(captures: Sequence[str], names: Iterable[tuple[str, str]]) -> None:
    """Every --name must name one of the captures given: a typo must not go unnoticed."""
    for pod, path in names:
        if not any(_same_file(path, c) for c in captures):
            raise NamingError(f"--name {pod}={path}: {path} is not one of the captures given")


# -- targets --------------------------------------------------------------------------------


def unknown_target(address: str | None, connection: int | None) -> str:
    """The one spelling of a target nothing names."""
    if address:
        return f"unknown ({address})"
    if connection is not None:
        return f"unknown (connection {connection})"
    return "unknown"


def reply_address(c: Call) -> str | None:
    """The target's address as the capture shows it: the ClusterIP the replies came from
    (Istio's NAT), else the destination when it is not the sidecar's loopback redirect."""
    if c.nat_reply_from:
        return c.nat_reply_from
    if c.dst.startswith(("127.", "::1")) or c.dst == "::1":
        return None
    return f"[{c.dst}]:{c.dport}" if ":" in c.dst else f"{c.dst}:{c.dport}"


def target_of(c: Call) -> tuple[str, str]:
    """(name, source) of a call's target: as named by name_targets, else its authority, else
    the unknown spelling."""
    if c.target is not None:
        return c.target, c.target_source
    if c.authority:
        return c.authority, "authority"
    return unknown_target(reply_address(c), c.connection), "unknown"


def describe_target(c: Call) -> str:
    return target_of(c)[0]


def target_label(name: str, source: str, short: bool = False) -> str:
    """A target for people: an inferred name says so, and from what."""
    if source in ("authority", "unknown"):
        return name
    return f"{name} (inferred)" if short else f"{name} (inferred from {source})"


def _with_port(authority: str, address: str | None) -> str:
    """The service's host with the port the replies came from (a ClusterIP's service port)."""
    if address is None:
        return _host(authority) if authority.count(":") == 1 else authority
    port = address.rsplit(":", 1)[1]
    host = _host(authority)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _agreed(names: Counter[str]) -> str | None:
    """The most common spelling, when every spelling names one service (else None: two
    services behind one address is a contradiction, and a guess would misname one)."""
    if not names or len({bare(n) for n in names}) != 1:
        return None
    return names.most_common(1)[0][0]


@dataclass(slots=True)
class CaptureCalls:
    """What target naming needs of one capture."""

    path: str
    inbound: list[Call]
    outbound: list[Call]
    service_of: Callable[[Call], str]  # the name of the pod that received an inbound call


def _idents(c: Call | _Sent) -> set[str]:
    """The ids a request is found by: its trace id and its x-request-id (a hop may keep one
    and drop or restart the other)."""
    return {k for k in (c.trace_id, c.request_key) if k}


def _same_request(o: _Sent, i: Call) -> bool:
    """Nothing the two show contradicts that they are one request: ids, method, path and
    protocol agree where both are known, and the callee got it while the call was open."""
    if o.trace_id and i.trace_id and o.trace_id != i.trace_id:
        return False
    if o.request_key and i.request_key and o.request_key != i.request_key:
        return False
    if o.protocol != i.protocol:
        return False
    if o.method and i.method and o.method != i.method:
        return False
    if o.path and i.path and o.path != i.path:
        return False
    if i.ts_ns < o.ts_ns - CLOCK_SKEW_NS:
        return False
    if o.response_ts is not None:
        if i.ts_ns > o.response_ts + CLOCK_SKEW_NS:
            return False
        if i.response_ts is not None and i.response_ts > o.response_ts + CLOCK_SKEW_NS:
            return False
    return True


class _Sent:
    """What the callee-capture vote reads of an outbound call without :authority that
    carries ids: the only per-call state a TargetNamer keeps, and only when it may vote."""

    __slots__ = (
        "frame",
        "method",
        "path",
        "protocol",
        "request_key",
        "response_frame",
        "response_ts",
        "stream",
        "trace_id",
        "ts_ns",
    )

    def __init__(self, c: Call, trace_id: str | None, request_key: str | None) -> None:
        self.frame = c.frame
        self.stream = c.stream
        self.ts_ns = c.ts_ns
        self.response_frame = c.response_frame
        self.response_ts = c.response_ts
        self.protocol = c.protocol
        self.method = c.method
        self.path = c.path
        self.trace_id = trace_id
        self.request_key = request_key

    def made(self, o: Call) -> bool:
        """Whether `o`, a call of this one's connection, is this call: by what both show of
        themselves (frame, stream, times, request line, ids), since object identity means
        nothing for a call read back from disk. Two calls of one connection that agree on all
        of it are one request as far as the capture can tell."""
        return (o.frame == self.frame and o.stream == self.stream and o.ts_ns == self.ts_ns
                and not o.authority and o.response_frame == self.response_frame
                and o.response_ts == self.response_ts and o.protocol == self.protocol
                and o.method == self.method and o.path == self.path
                and o.trace_id == self.trace_id and o.request_key == self.request_key)


class _Connection:
    """What naming needs of one connection's outbound calls: a few counters and facts."""

    __slots__ = ("addr", "first", "known", "nat", "sent", "unknown")

    def __init__(self) -> None:
        self.known: Counter[str] = Counter()  # its authorities, in first-appearance order
        self.addr: str | None = None  # the first reply address any of its calls showed
        self.nat = False  # whether any call's replies came through Istio's NAT
        self.unknown = 0  # calls without :authority
        self.first = 0  # the frame of the first of them
        self.sent: list[_Sent] = []  # those that carry ids, when the namer may vote


@dataclass(slots=True)
class Callees:
    """The callee side of the vote: every capture's inbound requests by id with the pod that
    received them, which captures' pods called which (from the multi-capture join), and the
    join itself (id(inbound call) -> the outbound call of another capture it was joined with)."""

    by_id: dict[str, list[tuple[Call, str]]]
    upstream: dict[str, set[str]]  # capture -> captures of pods that called it
    joined: dict[int, Call]


def callees(caps: Sequence[CaptureCalls], joined: dict[int, Call]) -> Callees:
    """The inbound side of the callee-capture vote: empty with one capture (no callee's
    capture is given); else per inbound request with ids."""
    by_id: dict[str, list[tuple[Call, str]]] = {}
    upstream: dict[str, set[str]] = {}
    if len(caps) > 1:
        for cap in caps:
            for i in cap.inbound:
                for ident in _idents(i):
                    by_id.setdefault(ident, []).append((i, cap.service_of(i)))
                # a pod that called this one with the same ids is its caller, not its callee
                caller = joined.get(id(i))
                if caller is not None:
                    upstream.setdefault(i.capture, set()).add(caller.capture)
    return Callees(by_id, upstream, joined)


def _ancestors(capture: str, upstream: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [capture]
    while todo:
        for up in upstream.get(todo.pop(), ()):
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


# (name, source, evidence) of the calls without :authority on one connection.
Named = tuple[str, str, str | None]


class TargetNamer:
    """Names the targets of outbound calls fed one at a time, keeping per connection and per
    reply address a few counters, never the calls (issue 10: `analyze` in memory that does
    not grow with the requests).

    Strategy: every inference the module's docstring lists rests on what a whole connection
    (one connection goes to one service) or a whole address showed, so nothing is decided
    until every outbound call was added: `add` each outbound call of every capture (captures
    in order, each capture's calls in their order: first appearances and ties among equally
    common authorities follow it), `decide` once, then `apply` to each call, at any time and
    as often as wanted (a call read back from disk included). The one exception to "nothing
    per call" is the callee-capture vote (`callee_vote`: several captures were given): it
    weighs each call without :authority that carries ids, so those few fields are kept for
    those calls; a call without ids never is.
    """

    def __init__(self, callee_vote: bool) -> None:
        self.callee_vote = callee_vote
        self._connections: dict[tuple[str, int], _Connection] = {}
        # the connection of the last call added: consecutive calls often share one (an h2
        # connection's streams), and then no key is built and looked up
        self._last: _Connection | None = None
        self._last_capture = ""
        self._last_connection = 0
        # A reply address -> the authorities calls to it showed, that address's host -> the
        # same over every port (a ClusterIP belongs to one Service), and where each host
        # was first seen with a name.
        self._by_address: dict[str, Counter[str]] = {}
        self._by_ip: dict[str, Counter[str]] = {}
        self._host_of: dict[str, str] = {}
        self._where: dict[str, tuple[str, int]] = {}
        self._table: dict[tuple[str, int], Named] = {}

    def add(self, o: Call) -> None:
        """Count one outbound call."""
        capture = o.capture
        connection = o.connection
        conn = self._last
        if conn is None or connection != self._last_connection or capture != self._last_capture:
            key = (capture, connection)
            conn = self._connections.get(key)
            if conn is None:
                conn = self._connections[key] = _Connection()
            self._last = conn
            self._last_capture = capture
            self._last_connection = connection
        if o.nat_reply_from:
            conn.nat = True
        authority = o.authority
        if authority:
            conn.known[authority] += 1
            addr = reply_address(o)
            if addr is not None:
                if conn.addr is None:
                    conn.addr = addr
                self._count(authority, addr, capture, o.frame)
            return
        if conn.addr is None:
            conn.addr = reply_address(o)
        conn.unknown += 1
        if conn.unknown == 1:
            conn.first = o.frame
        if self.callee_vote:
            trace_id = o.trace_id
            request_key = o.request_key
            if trace_id or request_key:
                conn.sent.append(_Sent(o, trace_id, request_key))

    def _count(self, authority: str, addr: str, capture: str, frame: int) -> None:
        """One more call to `addr` that showed `authority`; an address authority names none."""
        exact = self._by_address.get(addr)
        if exact is not None and authority in exact:
            # counted before, so not an address, and its host's first sight is kept already
            exact[authority] += 1
            self._by_ip[self._host_of[addr]][authority] += 1
            return
        if is_address(authority):
            return
        host = self._host_of.get(addr)
        if host is None:
            host = self._host_of[addr] = addr.rsplit(":", 1)[0]
        if exact is None:
            exact = self._by_address[addr] = Counter()
        exact[authority] += 1
        by_ip = self._by_ip.get(host)
        if by_ip is None:
            by_ip = self._by_ip[host] = Counter()
        by_ip[authority] += 1
        self._where.setdefault(host, (capture, frame))

    def kept(self) -> int:
        """How many calls' fields the namer holds (only the vote's; tests bound it)."""
        return sum(len(conn.sent) for conn in self._connections.values())

    def decide(self, side: Callees) -> tuple[list[Note], dict[tuple[str, int], Named]]:
        """Name each connection's calls without :authority from everything added; return a
        note per connection whose target was inferred (first appearance order) and the
        table (capture, connection) -> (name, source, evidence) `apply` reads."""
        if side.by_id and not self.callee_vote:
            raise ValueError("a TargetNamer without callee_vote kept nothing to vote with")
        notes: list[Note] = []
        table: dict[tuple[str, int], Named] = {}
        for (capture, connection), conn in self._connections.items():
            if not conn.unknown:
                continue
            name, source, evidence = self._name(capture, connection, conn, side)
            table[(capture, connection)] = (name, source, evidence or None)
            if source != "unknown":
                notes.append(Note(
                    "target-inferred",
                    f"target {name} inferred from {source} for {conn.unknown} call(s) on "
                    f"connection {connection} that show no :authority (an HPACK entry older than "
                    f"the capture, or no Host): {evidence}",
                    capture, conn.first))
        self._table = table
        return notes, table

    def _name(self, capture: str, connection: int, conn: _Connection,
              side: Callees) -> tuple[str, str, str]:
        known = conn.known
        named = Counter({a: n for a, n in known.items() if not is_address(a)})
        addr = conn.addr
        name: str | None = None
        source = "unknown"
        evidence = ""
        same = _agreed(named)
        if same is not None:
            name, source = same, "connection"
            evidence = f"other requests on connection {connection} show :authority {same}"
        elif addr is not None:
            host = addr.rsplit(":", 1)[0]
            exact = _agreed(self._by_address.get(addr, Counter()))
            by_host = _agreed(self._by_ip.get(host, Counter()))
            kind = "ClusterIP" if conn.nat else "address"
            if exact is not None:
                name, source = exact, kind
            elif by_host is not None:
                name, source = _with_port(by_host, addr), kind
            if name is not None:
                cap_, frame = self._where[host]
                evidence = (f"the replies came from {kind} {addr}, which "
                            f"{Path(cap_).name} frame {frame} shows as {bare(name)}")
        if name is None and side.by_id:
            votes: Counter[str] = Counter()
            ambiguous = False
            seen_at: dict[str, Call] = {}
            ups = _ancestors(capture, side.upstream)
            joined = side.joined
            for o in conn.sent:
                pods = set()
                for ident in _idents(o):
                    for i, pod in side.by_id.get(ident, ()):
                        if i.capture == capture or i.capture in ups:
                            continue  # the caller's own pod, or a pod upstream of it
                        caller = joined.get(id(i))
                        if caller is not None and not (caller.capture == capture
                                                       and caller.connection == connection
                                                       and o.made(caller)):
                            continue  # another call's callee
                        if not _same_request(o, i):
                            continue
                        pods.add(pod)
                        seen_at.setdefault(pod, i)
                if len(pods) == 1:
                    votes[pods.pop()] += 1
                elif pods:
                    ambiguous = True  # several pods got these ids then: none is named
            if len(votes) == 1 and not ambiguous:
                pod = next(iter(votes))
                i = seen_at[pod]
                # the authority the callee saw, unless it is only an address (a client that
                # dialled the ClusterIP): then the callee pod's name, with the service port
                name = i.authority if i.authority and not is_address(i.authority) else (
                    f"{pod}:{addr.rsplit(':', 1)[1]}" if addr else pod)
                source = "callee capture"
                evidence = (f"{Path(i.capture).name} (pod {pod}) received the same request ids "
                            f"while the calls were open (frame {i.frame})")
        if name is None:
            # the other requests on the connection show only an address: that is its name
            name = _agreed(known)
            if name is not None:
                source = "connection"
                evidence = f"other requests on connection {connection} show :authority {name}"
        if name is None:
            name = unknown_target(addr, connection)
        return name, source, evidence

    def apply(self, c: Call) -> None:
        """Set `target`, `target_source` and `target_evidence` of one outbound call from
        its authority or the decided table; idempotent. A call of a connection the namer was
        not fed is left as it is (target_of names it by its authority or the unknown
        spelling)."""
        if c.authority:
            c.target = c.authority
            c.target_source = "authority"
            return
        named = self._table.get((c.capture, c.connection))
        if named is not None:
            c.target, c.target_source, c.target_evidence = named


def name_targets(caps: Sequence[CaptureCalls], joined: dict[int, Call]) -> list[Note]:
    """Name the target of every outbound call (sets `target`, `target_source` and
    `target_evidence` on each); return a note for each inferred name, per connection.

    `joined` maps id(inbound call) to the outbound call of another capture it was joined with.
    Linear in the calls: one pass to count (TargetNamer.add), one per connection to name, one
    to apply.
    """
    namer = TargetNamer(callee_vote=len(caps) > 1)
    for cap in caps:
        for o in cap.outbound:
            namer.add(o)
    notes = namer.decide(callees(caps, joined))[0]
    for cap in caps:
        for o in cap.outbound:
            namer.apply(o)
    return notes


_SAID = {"--name": "--name", "file name": "file name", "xfcc": "XFCC identity",
         "host": "Host", "address": "address"}


def name_said(source: str) -> str:
    """How a report says where a pod's name came from."""
    return _SAID.get(source, source)
