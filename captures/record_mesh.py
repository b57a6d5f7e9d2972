#!/usr/bin/env python3
"""Record four pods of an emulated Istio mesh traced with OpenTelemetry (W3C Trace Context).

Run as root:  sudo python3 captures/record_mesh.py                (~45 s)
              sudo python3 captures/record_mesh.py --no-manifest  (leave MANIFEST.json)
              sudo python3 captures/record_mesh.py --out DIR      (into DIR; captures/ and
                                                                   MANIFEST.json untouched)
              python3 captures/record_mesh.py --manifest-only     (no recording, no root:
                                                                   rewrite the MANIFEST.json
                                                                   entries from the files and
                                                                   EXPECTED.json)

Needs grpcio, h2, requests and cryptography (when the Python running it lacks them, it runs
again with the project's .venv/bin/python, which has them), iproute2, iptables, tcpdump and
tshark. The namespaces, istio-iptables rules, mTLS certificates, HTTP/1.1 framing, the
sidecar's listeners, the actors and the reading of the captures are ``meshlib.py``'s, shared
with record_pods.py; this script adds what an OpenTelemetry mesh needs.

The mesh
--------
Namespaces made here and deleted at the end (also after a failure): ``twm-frontend``
(10.244.2.10), ``twm-orders`` (10.244.2.11), ``twm-payments`` (10.244.2.12), ``twm-ledger``
(10.244.2.13), ``twm-ingress`` (10.244.0.5) and the node ``twm-node`` (bridge ``twmbr0``,
10.244.2.1 and 10.244.0.1). Services: frontend 10.96.2.10:8080, orders 10.96.2.11:8080,
payments 10.96.2.12:50051 (gRPC), ledger 10.96.2.13:8080. Each pod has Istio's iptables rules
and a sidecar running as uid 1337 (meshlib's, with an OpenTelemetry tracer where record_pods.py
has Zipkin's):

* frontend (``ThreadingHTTPServer``): ``GET /shop/checkout`` calls ``orders`` with
  python-requests (one keep-alive pool).
* orders: an HTTP/1.1 server whose requests are served by a **thread pool** (8 workers); each
  request makes **two gRPC calls to payments in parallel** (``Authorize`` and ``CheckFraud``,
  two streams at once on one grpcio channel).
* payments: a grpcio server (thread pool); each call makes one HTTP/1.1 call to ledger.
* ledger: ``GET /ledger/entries`` answers JSON.

The tracer. The ingress gateway starts every trace: ``x-request-id`` (Envoy's UUID, character
14 = ``9``), ``traceparent: 00-<trace>-<span>-01`` (``-00`` for the unsampled requests) and
``tracestate: istio=<span>,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7``. No B3 anywhere. Every
sidecar, outbound and inbound, starts a new span per hop as Envoy's OpenTelemetry tracer does:
a new span id, parent = the span it received, the same trace id and flags; it keeps
x-request-id, writes its own ``istio=<span id>`` tracestate entry at the front and keeps every
other entry. A missing or invalid ``traceparent`` (all-zero trace id) makes it start a new
trace (new trace id, tracestate ``istio=<span>`` only), keeping x-request-id. gRPC is proxied
as HTTP/2 (the ``h2`` package) so its headers get the same treatment; towards the app the
inbound sidecar's HPACK encoder uses no dynamic table, so the capture shows its header names.

What a correct app sends (the apps here; captures/README.md): the ``x-request-id``,
``traceparent`` and ``tracestate`` of the request it is serving, **byte for byte** (the app
makes no span of its own). So an outbound request's traceparent parent-id is the span id of the
inbound request it serves: span lineage can tell apart two requests of one trace that reach a
pod at once (orders' two parallel calls at payments). Apps also copy ``x-scenario``, a test
marker: the ingress sets ``NAME#K``, each app appends ``/CALL`` (``orders``, ``authorize``,
``checkfraud``, ``ledger``); tshark finds every message by it.

Injected, one request each (``x-scenario`` NAME; where):
  drop-traceparent     payments -> ledger (Authorize's): x-request-id only,
                       while CheckFraud of the same request is served          partial, ambiguous
  zero-traceid         frontend -> orders: traceparent with an all-zero trace  malformed (only)
  new-trace            orders -> payments Authorize: a new trace, no
                       tracestate, x-request-id kept                           changed (only)
  drop-tracestate      frontend -> orders: no tracestate                       partial
  drop-vendor          payments -> ledger (CheckFraud's): tracestate without
                       the congo entry                                         partial
  shared-rid-new-trace frontend -> orders: a new trace, sent while another
                       request with the same x-request-id is served            changed, ambiguous
and, not to be flagged: ``unsampled`` (flags 00), ``retry`` (orders' app answers the first
attempt 503; frontend's sidecar retries with ``x-envoy-attempt-count: 2``), ``retry-sidecar``
(ledger's sidecar answers the first attempt 503 itself; the app sees attempt 2 only),
``shared-rid`` (two concurrent requests, one x-request-id, two traces, through every pod).
Bugs that remove a header are on HTTP/1.1 hops: on the warm gRPC channel grpcio's constant
headers are HPACK entries older than the capture (unknown), and an absence is not judged there.

Capture edges: before the capture, warm-up requests open every keep-alive connection, the mTLS
connections and the gRPC channel (no SYN, no h2 preface in the capture). ``slow-start`` is
sent before tcpdump starts and frontend waits 2 s before calling orders: frontend's capture has
the call but not the request it serves. ``slow-end`` is sent just before the capture stops and
ledger takes 6 s: every pod's capture has its requests but not their responses. kubelet probes
(15021) and Prometheus scrapes (15090) run from the node during the capture.

Outputs (``captures/mesh/``): ``frontend.pcap``, ``orders.pcap``, ``payments.pcap``,
``ledger.pcap`` (as ``kubectl sniff POD -o POD.pcap`` names them) and ``EXPECTED.json``: every
finding a propagation analysis must report (frames from tshark's reading of the files, found by
``x-scenario``), the calls that must give nothing, and the calls whose serving request is not
in the capture. Every verdict is judged from the headers tshark shows and checked against what
the script meant to inject and what the apps say they sent. Then MANIFEST.json is updated.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from http.server import HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import CAPTURES, SafeIds, log, tcpdump, tshark_h2_summary, tshark_summary
from meshlib import (
    HOP_BY_HOP,
    INBOUND_SRC,
    OUTBOUND_PORT,
    App,
    Message,
    MtlsConnection,
    Network,
    Pod,
    Recorder,
    Sidecar,
    Table,
    actor_main,
    app_ready,
    at_once,
    emit,
    endpoints,
    legs,
    nat_pairs,
    pod_manifest_entry,
    proxy_http,
    pump,
    run_sidecar,
    running_mesh,
    send_all,
    serve_app,
    tls_contexts,
    with_endpoints,
)

MESH_DIR = CAPTURES / "mesh"
HTTP_PORT, GRPC_PORT = 8080, 50051
SCRIPT = Path(__file__).resolve()
OWNER = "record_mesh.py"


def mesh_pod(name: str, ip: str, veth: str, ports: tuple[int, ...]) -> Pod:
    """A pod of this mesh: its own namespace prefix and service accounts."""
    return Pod(name, ip, veth, ports, netns_prefix="twm-", service_accounts="spiffe://cluster.local/ns/shop/sa/")


PODS = {
    p.name: p
    for p in (
        mesh_pod("frontend", "10.244.2.10", "vm-fe", (HTTP_PORT,)),
        mesh_pod("orders", "10.244.2.11", "vm-or", (HTTP_PORT,)),
        mesh_pod("payments", "10.244.2.12", "vm-pa", (GRPC_PORT,)),
        mesh_pod("ledger", "10.244.2.13", "vm-le", (HTTP_PORT,)),
    )
}
INGRESS = mesh_pod("ingress", "10.244.0.5", "vm-ig", ())
INGRESS_SPIFFE = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
NET = Network(
    tuple(PODS.values()),
    INGRESS,
    node_ns="twm-node",
    bridge="twmbr0",
    node_addrs=("10.244.2.1/24", "10.244.0.1/24"),
)
CAPTURED = ("frontend", "orders", "payments", "ledger")
SERVICES = {
    ("10.96.2.10", HTTP_PORT): "frontend",
    ("10.96.2.11", HTTP_PORT): "orders",
    ("10.96.2.12", GRPC_PORT): "payments",
    ("10.96.2.13", HTTP_PORT): "ledger",
}
CLUSTER_IP = {name: ip for (ip, _), name in SERVICES.items()}
TARGET = {name: f"{name}:{port}" for (_, port), name in SERVICES.items()}

TRACE_HEADERS = ("x-request-id", "traceparent", "tracestate")
MARKER = "x-scenario"
SHOWN_HEADERS = (*TRACE_HEADERS, MARKER, "x-envoy-attempt-count", "baggage", "host")
ENVOY_OWNED = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-forwarded-proto",
    "x-envoy-attempt-count",
    "x-forwarded-client-cert",
    "x-envoy-peer-metadata",
    "x-envoy-peer-metadata-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "b3",
)
VENDORS = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
OWN_KEY = "istio"  # the sidecars' (and the gateway's) tracestate entry
AUTHORIZE, CHECKFRAUD = "/payments.v1.Payments/Authorize", "/payments.v1.Payments/CheckFraud"
TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16

# --------------------------------------------------------------------------- scenario

# A step: requests the ingress sends at once, (connection, scenario name); "same-rid" steps
# give both requests one x-request-id.
WARMUP: list[tuple[list[tuple[str, str]], bool]] = [
    ([("A", "ok")], False),
    ([("B", "ok")], False),
    ([("E", "ok")], False),
    ([("A", "ok"), ("B", "ok")], False),
    ([("A", "ok"), ("B", "ok")], False),
]
SCENARIO: list[tuple[list[tuple[str, str]], bool]] = [
    ([("A", "ok")], False),
    ([("A", "drop-traceparent")], False),
    ([("A", "ok"), ("B", "unsampled")], False),
    ([("A", "zero-traceid")], False),
    ([("B", "new-trace")], False),
    ([("A", "drop-tracestate"), ("B", "ok")], False),
    ([("A", "drop-vendor")], False),
    ([("A", "retry")], False),
    ([("B", "retry-sidecar")], False),
    ([("A", "shared-rid"), ("B", "shared-rid")], True),
    ([("A", "unsampled")], False),
    ([("A", "shared-rid"), ("B", "shared-rid-new-trace")], True),
    ([("B", "ok")], False),
]
STEP_GAP = 0.2
SLOW_START_DELAY = 2.0  # frontend waits this long before calling orders (capture starts meanwhile)
SLOW_END_DELAY = 6.0  # ledger takes this long (the capture stops meanwhile)

# (scenario, app, call) -> the verdict the script means to produce on that outbound call
INTENDED = {
    ("drop-traceparent", "payments", "ledger@authorize"): "partial",
    ("zero-traceid", "frontend", "orders"): "malformed",
    ("new-trace", "orders", "authorize"): "changed",
    ("drop-tracestate", "frontend", "orders"): "partial",
    ("drop-vendor", "payments", "ledger@checkfraud"): "partial",
    ("shared-rid-new-trace", "frontend", "orders"): "changed",
}

# the calls whose attribution must stay ambiguous: made while two requests sharing every id the
# call carries are served (the apps' small waits make sure of it; a run where timing differs fails)
AMBIGUOUS = {
    ("shared-rid-new-trace", "frontend", "orders"),
    ("drop-traceparent", "payments", "ledger@authorize"),
}


def scenario_lines() -> list[str]:
    out = ["before the capture (conn E): slow-start (frontend waits 2 s before calling orders)"]
    for step, same in SCENARIO:
        names = [f"conn {c}: {s}" for c, s in step]
        out.append(
            ("at once, one x-request-id: " if same else "at once: " if len(step) > 1 else "")
            + " | ".join(names)
        )
    out.append("just before the capture stops (conn E): slow-end (ledger answers after 6 s)")
    return out


# --------------------------------------------------------------------------- W3C helpers


def tp_parts(value: str | None) -> tuple[str, str, str, str] | None:
    m = TRACEPARENT.fullmatch(value or "")
    if m is None or m.group(1) == "ff":
        return None
    return m.group(1), m.group(2), m.group(3), m.group(4)


def tp_valid(value: str | None) -> bool:
    p = tp_parts(value)
    return p is not None and p[1] != ZERO_TRACE and p[2] != ZERO_SPAN


def ts_keys(value: str) -> list[str]:
    return [m.split("=", 1)[0].strip() for m in value.split(",") if m.strip()]


def ts_with_own(value: str | None, span: str) -> str:
    """tracestate with this vendor's entry updated and moved to the front (W3C §3.5)."""
    others = [
        m.strip() for m in (value or "").split(",") if m.strip() and not m.strip().startswith(OWN_KEY + "=")
    ]
    return ",".join([f"{OWN_KEY}={span}", *others][:32])


def rid_key(rid: str) -> str:
    """Envoy writes its sampling decision into character 14: compare with it masked."""
    return rid[:14] + "_" + rid[15:] if len(rid) == 36 else rid


# --------------------------------------------------------------------------- the OTel sidecar


def keep(hdrs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Lower-cased names without hop-by-hop headers; gRPC's ``te: trailers`` is end to end."""
    return [
        (n.lower(), v)
        for n, v in hdrs
        if n.lower() not in HOP_BY_HOP or (n.lower() == "te" and v.strip() == "trailers")
    ]


class OtelSidecar(Sidecar):
    """The sidecar with Envoy's OpenTelemetry tracer, Envoy's retry on 503 (one retry,
    ``x-envoy-attempt-count``), and gRPC proxied as HTTP/2 rather than relayed."""

    services = SERVICES
    pods = PODS
    namespace = "shop"

    def span(self, d: dict[str, str]) -> list[tuple[str, str]]:
        """traceparent and tracestate of a new span, child of the one received (or a new trace)."""
        tp = d.get("traceparent")
        span = self.ids.span_id()
        parts = tp_parts(tp)
        if tp_valid(tp) and parts is not None:
            out = [("traceparent", f"00-{parts[1]}-{span}-{parts[3]}")]
            return [*out, ("tracestate", ts_with_own(d.get("tracestate"), span))]
        # no usable context: Envoy starts a new trace; a tracestate without its traceparent
        # means nothing (W3C §3.3.1), so only this vendor's entry goes on
        return [("traceparent", f"00-{self.ids.trace_id()}-{span}-01"), ("tracestate", f"{OWN_KEY}={span}")]

    def envoy_headers(
        self, hdrs: list[tuple[str, str]], attempt: str, extra: list[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        d = dict(hdrs)
        rid = d.get("x-request-id") or self.ids.request_id()
        out = [(n, v) for n, v in hdrs if n not in ENVOY_OWNED]
        return [
            *out,
            ("x-forwarded-proto", "http"),
            ("x-request-id", rid),
            ("x-envoy-attempt-count", attempt),
            *extra,
            *self.span(d),
        ]

    def outbound_stream(self, app: socket.socket, peer: ssl.SSLSocket, port: int) -> None:
        if port == GRPC_PORT:
            proxy_h2(app, peer, lambda h: self.outbound_headers(h, "1"), plain_encoder=False)
        else:
            proxy_http(app, peer, self.outbound_request, self.outbound_response, retries=1)

    def inbound_stream(self, peer: ssl.SSLSocket, app: socket.socket, port: int) -> None:
        if port == GRPC_PORT:
            proxy_h2(peer, app, lambda h: self.inbound_headers(h, peer), plain_encoder=True)
        else:
            proxy_http(
                peer,
                app,
                lambda req, _: Message(req.start, self.inbound_headers(req.headers, peer), req.body),
                self.inbound_response,
                answer=self.own_answer,
            )

    def outbound_headers(self, headers: list[tuple[str, str]], attempt: str) -> list[tuple[str, str]]:
        hdrs = keep(headers)
        self.count("outbound")
        return self.envoy_headers(
            hdrs,
            attempt,
            [("x-envoy-peer-metadata-id", self.node_id), ("x-envoy-peer-metadata", self.peer_metadata)],
        )

    def outbound_request(self, req: Message, attempt: int) -> Message:
        return Message(req.start, self.outbound_headers(req.headers, str(attempt)), req.body)

    def inbound_headers(self, headers: list[tuple[str, str]], peer: socket.socket) -> list[tuple[str, str]]:
        hdrs = keep(headers)
        attempt = dict(hdrs).get("x-envoy-attempt-count", "1")
        xfcc = self.xfcc(peer)
        self.count("inbound")
        return self.envoy_headers(hdrs, attempt, [("x-forwarded-client-cert", xfcc)])

    def own_answer(self, req: Message) -> Message | None:
        """ledger's sidecar answers the first attempt of ``retry-sidecar`` itself, as Envoy does
        on an upstream reset; the app never sees it."""
        if (
            self.pod.name != "ledger"
            or not (req.get(MARKER) or "").startswith("retry-sidecar#")
            or req.get("x-envoy-attempt-count") != "1"
        ):
            return None
        body = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
        return Message(
            "HTTP/1.1 503 Service Unavailable",
            [("content-length", str(len(body))), ("content-type", "text/plain"), ("server", "istio-envoy")],
            body,
        )


def proxy_h2(
    down: socket.socket,
    up: socket.socket,
    rewrite: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
    plain_encoder: bool,
) -> None:
    """An HTTP/2 proxy between two sockets in one thread (an SSL object must not be used from
    two threads): requests from ``down`` go to ``up`` with ``rewrite``-n headers, responses,
    data and trailers come back unchanged. ``plain_encoder``: no HPACK dynamic table towards
    ``up``, so the header names on that leg stay readable in a capture that starts later."""
    import h2.config
    import h2.connection
    import h2.events

    def config(client: bool) -> h2.config.H2Configuration:
        return h2.config.H2Configuration(
            client_side=client,
            header_encoding="utf-8",
            validate_inbound_headers=False,
            validate_outbound_headers=False,
        )

    dconn, uconn = h2.connection.H2Connection(config(False)), h2.connection.H2Connection(config(True))
    dconn.initiate_connection()
    uconn.initiate_connection()
    if plain_encoder:
        uconn.encoder.header_table_size = 0
    to_up: dict[int, int] = {}
    to_down: dict[int, int] = {}
    ended: set[tuple[str, int]] = set()
    for s in (down, up):
        s.setblocking(False)

    def flush() -> None:
        send_all(down, dconn.data_to_send())
        send_all(up, uconn.data_to_send())

    flush()

    def on_data(s: socket.socket, data: bytes) -> bool:
        from_down = s is down
        events = (dconn if from_down else uconn).receive_data(data)
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                sid = uconn.get_next_available_stream_id()
                to_up[ev.stream_id], to_down[sid] = sid, ev.stream_id
                headers = [(str(n), str(v)) for n, v in ev.headers]
                uconn.send_headers(sid, rewrite(headers), end_stream=ev.stream_ended is not None)
                if ev.stream_ended is not None:
                    ended.add(("up", sid))
            elif isinstance(ev, h2.events.ResponseReceived | h2.events.TrailersReceived):
                sid = to_down[ev.stream_id]
                last = isinstance(ev, h2.events.TrailersReceived) or ev.stream_ended is not None
                dconn.send_headers(sid, ev.headers, end_stream=last)
                if last:
                    ended.add(("down", sid))
            elif isinstance(ev, h2.events.DataReceived):
                if from_down:
                    uconn.send_data(to_up[ev.stream_id], ev.data)
                    dconn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                else:
                    dconn.send_data(to_down[ev.stream_id], ev.data)
                    uconn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                side, sid = ("up", to_up[ev.stream_id]) if from_down else ("down", to_down[ev.stream_id])
                if (side, sid) not in ended:
                    ended.add((side, sid))
                    (uconn if from_down else dconn).end_stream(sid)
            elif isinstance(ev, h2.events.StreamReset):
                other = to_up.get(ev.stream_id) if from_down else to_down.get(ev.stream_id)
                if other is not None:
                    # the stream may be closed already
                    with contextlib.suppress(Exception):
                        (uconn if from_down else dconn).reset_stream(other, ev.error_code or 0)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                flush()
                return False
        flush()
        return True

    pump(down, up, on_data)


def run_otel_sidecar(pod: Pod, certs: Path) -> None:
    import h2.connection  # noqa: F401  (import before dropping root, as run_sidecar does for idna)

    run_sidecar(OtelSidecar(pod, certs))  # made as root: it binds and reads the certificates


# --------------------------------------------------------------------------- the apps


class PoolHTTPServer(HTTPServer):
    """An HTTP/1.1 server whose connections are served by a fixed thread pool (gunicorn's
    gthread worker, a Java servlet container): what a thread-local tracing context gets
    wrong, and what concurrent requests look like from one process."""

    def __init__(self, addr: tuple[str, int], handler: Any, workers: int) -> None:
        super().__init__(addr, handler)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orders-worker")

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


def forwarded(inbound: dict[str, str], call: str) -> dict[str, str]:
    """What a correct app sends on: the tracing headers it received, byte for byte, and the
    test marker with this call's name appended."""
    out = {h: inbound[h] for h in TRACE_HEADERS if h in inbound}
    out[MARKER] = f"{inbound.get(MARKER, '?')}/{call}"
    return out


def scenario_of(marker: str) -> str:
    return marker.split("#", 1)[0]


def checkout(path: str, route: str) -> tuple[str, str] | None:
    """The scenario name (``s``) and order number (``n``) of a request for ``route``; None for
    any other path."""
    url = urlsplit(path)
    if url.path != route:
        return None
    q = parse_qs(url.query)
    return q.get("s", ["ok"])[0], q.get("n", ["0"])[0]


class MeshApp(App):
    cluster_ip = CLUSTER_IP
    http_port = HTTP_PORT
    version = "2.3"
    call_timeout = 20

    def __init__(self, pod: Pod) -> None:
        super().__init__(pod)
        self.ids = SafeIds(int.from_bytes(pod.name.encode()[:4], "big") + 7)

    def new_trace(self, out: dict[str, str]) -> dict[str, str]:
        """The bug of an app that starts its own trace: a new traceparent, no tracestate."""
        out = {k: v for k, v in out.items() if k != "tracestate"}
        out["traceparent"] = f"00-{self.ids.trace_id()}-{self.ids.span_id()}-01"
        return out


class Frontend(MeshApp):
    server_header = "frontend/2.3"

    def __init__(self, pod: Pod) -> None:
        super().__init__(pod)
        self.orders = self.session()

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        query = checkout(path, "/shop/checkout")
        if query is None:
            return 404, "text/plain", b"not found\n"
        name, n = query
        out = forwarded(inbound, "orders")
        if name == "slow-start":
            time.sleep(SLOW_START_DELAY)
        elif name == "zero-traceid":
            parts = tp_parts(out["traceparent"])
            assert parts is not None
            out["traceparent"] = f"00-{ZERO_TRACE}-{parts[2]}-{parts[3]}"
        elif name == "drop-tracestate":
            out.pop("tracestate", None)
        elif name == "shared-rid-new-trace":
            out = self.new_trace(out)
            # looks up the cart first: the other request with this x-request-id, sent at the
            # same moment, is in flight when this call goes out (it takes 30 ms at payments)
            time.sleep(0.015)
        status, body = self.get(self.orders, "orders", f"/orders/checkout?s={name}&n={n}", out)
        emit(
            {
                "event": "served",
                "app": "frontend",
                "marker": inbound.get(MARKER),
                "inbound": inbound,
                "calls": [{"call": "orders", "target": TARGET["orders"], "headers": out, "status": status}],
            }
        )
        page = f"<html><body><h1>Checkout {n}</h1><p>{'confirmed' if status == 200 else 'failed'}</p>"
        return 200, "text/html; charset=utf-8", (page + f"<!-- {len(body)} -->\n</body></html>\n").encode()


class Orders(MeshApp):
    server_header = "orders/1.8"

    def __init__(self, pod: Pod) -> None:
        import grpc

        super().__init__(pod)
        self.grpc = grpc
        self.channel = grpc.insecure_channel(
            f"{CLUSTER_IP['payments']}:{GRPC_PORT}",
            options=[
                ("grpc.enable_http_proxy", 0),
                ("grpc.enable_retries", 0),
                ("grpc.primary_user_agent", "orders/1.8"),
                ("grpc.http2.true_binary", 0),
            ],
        )
        self.stubs = {
            "authorize": self.channel.unary_unary(AUTHORIZE),
            "checkfraud": self.channel.unary_unary(CHECKFRAUD),
        }
        self.calls = ThreadPoolExecutor(max_workers=8, thread_name_prefix="orders-client")
        self.first_attempts: set[str] = set()
        self.lock = threading.Lock()

    def call(self, which: str, md: dict[str, str], n: str) -> int:
        try:
            self.stubs[which](f"order={n}".encode(), metadata=list(md.items()), timeout=20)
            return 200
        except self.grpc.RpcError as exc:
            log(f"{which}: {exc.code().name}")
            return 503

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        query = checkout(path, "/orders/checkout")
        if query is None:
            return 404, "application/json", b'{"error":"not found"}'
        name, n = query
        marker = inbound.get(MARKER, "")
        if name == "retry":
            with self.lock:
                first = marker not in self.first_attempts
                self.first_attempts.add(marker)
            if first:  # the first attempt fails before any downstream call; Envoy retries it
                emit(
                    {
                        "event": "served",
                        "app": "orders",
                        "marker": marker,
                        "inbound": inbound,
                        "calls": [],
                        "status": 503,
                    }
                )
                return 503, "application/json", b'{"error":"inventory lock timeout"}'
        mds = {"authorize": forwarded(inbound, "authorize"), "checkfraud": forwarded(inbound, "checkfraud")}
        if name == "new-trace":
            mds["authorize"] = self.new_trace(mds["authorize"])
        # both calls at once, from the client pool: two streams on one warm channel
        futures = {k: self.calls.submit(self.call, k, md, n) for k, md in mds.items()}
        statuses = {k: f.result() for k, f in futures.items()}
        emit(
            {
                "event": "served",
                "app": "orders",
                "marker": marker,
                "inbound": inbound,
                "calls": [
                    {"call": k, "target": TARGET["payments"], "headers": mds[k], "status": statuses[k]}
                    for k in mds
                ],
            }
        )
        ok = all(s == 200 for s in statuses.values())
        return (200 if ok else 502), "application/json", json.dumps({"order": n, "paid": ok}).encode()


class Payments(MeshApp):
    def __init__(self, pod: Pod) -> None:
        import grpc

        super().__init__(pod)
        self.ledger = self.session()
        handler = grpc.method_handlers_generic_handler(
            "payments.v1.Payments",
            {
                "Authorize": grpc.unary_unary_rpc_method_handler(lambda r, c: self.serve("authorize", r, c)),
                "CheckFraud": grpc.unary_unary_rpc_method_handler(
                    lambda r, c: self.serve("checkfraud", r, c)
                ),
            },
        )
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8), options=[("grpc.http2.true_binary", 0)])
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"0.0.0.0:{GRPC_PORT}")

    def serve(self, which: str, request: bytes, context: Any) -> bytes:
        inbound = {k: str(v) for k, v in context.invocation_metadata()}
        marker = inbound.get(MARKER, "")
        name = scenario_of(marker)
        out = forwarded(inbound, "ledger")
        if name == "drop-traceparent" and which == "authorize":
            out = {k: v for k, v in out.items() if k in ("x-request-id", MARKER)}
        elif name == "drop-vendor" and which == "checkfraud":
            out["tracestate"] = ",".join(
                m for m in out["tracestate"].split(",") if not m.startswith("congo=")
            )
        n = request.decode().partition("=")[2]
        time.sleep(0.03)  # checks the card: both calls of one order are in flight before either goes on
        status, _ = self.get(self.ledger, "ledger", f"/ledger/entries?op={which}&n={n}", out)
        emit(
            {
                "event": "served",
                "app": "payments",
                "marker": marker,
                "inbound": inbound,
                "calls": [
                    {"call": f"ledger@{which}", "target": TARGET["ledger"], "headers": out, "status": status}
                ],
            }
        )
        return json.dumps({"order": n, which: status == 200}).encode()

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        return 404, "text/plain", b"not found\n"


class Ledger(MeshApp):
    server_header = "ledger/0.9"

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        url = urlsplit(path)
        if url.path != "/ledger/entries":
            return 404, "application/json", b'{"error":"not found"}'
        if scenario_of(inbound.get(MARKER, "")) == "slow-end":
            time.sleep(SLOW_END_DELAY)
        q = parse_qs(url.query)
        emit(
            {
                "event": "served",
                "app": "ledger",
                "marker": inbound.get(MARKER),
                "inbound": inbound,
                "calls": [],
            }
        )
        doc = {"entry": q.get("n", ["0"])[0], "op": q.get("op", ["?"])[0], "balance": "1024.00"}
        return 200, "application/json", json.dumps(doc).encode()


APPS: dict[str, type[MeshApp]] = {
    "frontend": Frontend,
    "orders": Orders,
    "payments": Payments,
    "ledger": Ledger,
}


def run_app(pod: Pod) -> None:
    app = APPS[pod.name](pod)
    if isinstance(app, Payments):
        app.server.start()
    elif isinstance(app, Orders):
        serve_app(app, partial(PoolHTTPServer, workers=8))
    else:
        serve_app(app)
    app_ready()


# --------------------------------------------------------------------------- ingress


class Ingress:
    def __init__(self, certs: Path) -> None:
        _, ctx = tls_contexts(certs, "ingress")
        sni = f"outbound_.{HTTP_PORT}_._.frontend.shop.svc.cluster.local"
        self.conns = {c: MtlsConnection(ctx, PODS["frontend"], HTTP_PORT, sni, timeout=30) for c in "ABE"}
        self.ids = SafeIds(443)
        self.counter = 0
        self.lock = threading.Lock()

    def one(
        self,
        conn: str,
        name: str,
        out: list[dict[str, Any]],
        rid: str | None = None,
        barrier: threading.Barrier | None = None,
    ) -> None:
        with self.lock:
            self.counter += 1
            n = self.counter
        trace, span = self.ids.trace_id(), self.ids.span_id()
        flags = "00" if name == "unsampled" else "01"
        ctx = {
            "x-request-id": rid or self.ids.request_id(),
            "traceparent": f"00-{trace}-{span}-{flags}",
            "tracestate": f"{OWN_KEY}={span},{VENDORS}",
            MARKER: f"{name}#{n}",
        }
        msg = Message(
            f"GET /shop/checkout?s={name}&n={n} HTTP/1.1",
            [
                ("host", "shop.example.com"),
                ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
                ("accept", "text/html"),
                ("x-forwarded-for", "198.51.100.23"),
                ("x-forwarded-proto", "https"),
                ("x-envoy-external-address", "198.51.100.23"),
                *ctx.items(),
                ("x-envoy-attempt-count", "1"),
                ("x-envoy-decorator-operation", "frontend.shop.svc.cluster.local:8080/shop/*"),
            ],
        )
        if barrier is not None:
            barrier.wait(timeout=10)
        t0 = time.time()
        resp = self.conns[conn].request(msg)
        out.append(
            {
                "conn": conn,
                "scenario": name,
                **ctx,
                "status": int(resp.start.split()[1]),
                "t0": t0,
                "t1": time.time(),
            }
        )

    def steps(self, plan: list[tuple[list[tuple[str, str]], bool]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for step, same_rid in plan:
            rid = self.ids.request_id() if same_rid else None
            at_once([partial(self.one, c, s, out, rid) for c, s in step], timeout=60)
            time.sleep(STEP_GAP)
        return out


def run_ingress(certs: Path) -> None:
    ingress = Ingress(certs)
    edge: list[dict[str, Any]] = []
    edge_threads: list[threading.Thread] = []
    emit({"ready": "ingress"})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd in ("warm", "run"):
            done = ingress.steps(WARMUP if cmd == "warm" else SCENARIO)
            emit({"done": cmd, "requests": done, "failed": sum(r["status"] != 200 for r in done)})
        elif cmd in ("slow-start", "slow-end"):
            t = threading.Thread(target=ingress.one, args=("E", cmd, edge))
            t.start()
            edge_threads.append(t)
            emit({"sent": cmd})
        elif cmd == "finish":
            for t in edge_threads:
                t.join(60)
            emit({"done": cmd, "requests": edge, "failed": sum(r["status"] != 200 for r in edge)})
    os._exit(0)


# --------------------------------------------------------------------------- orchestration


def record(workdir: Path) -> dict[str, Any]:
    """Build the mesh, warm it up, capture the scenario between the two edge requests; return
    what the actors said."""
    identities = {name: pod.spiffe for name, pod in PODS.items()}
    identities["ingress"] = INGRESS_SPIFFE
    with running_mesh(NET, SCRIPT, workdir / "certs", identities) as mesh:
        ingress, noise = mesh.ingress, mesh.noise
        ingress.send("slow-start")
        ingress.wait("sent", 10)
        time.sleep(0.3)  # frontend has the request and waits: tcpdump starts now
        with tcpdump({PODS[n].netns: workdir / f"{n}.pcap" for n in CAPTURED}):
            noise.send("start")
            noise.wait("started", 10)
            time.sleep(SLOW_START_DELAY)  # slow-start goes through the mesh
            ingress.send("run")
            scenario = ingress.wait("done", 240)
            noise.send("stop")
            noise_done = noise.wait("done", 30)
            ingress.send("slow-end")
            ingress.wait("sent", 10)
            time.sleep(0.5)  # tcpdump() waits 2.5 s more, then stops tcpdump, before ledger answers
        ingress.send("finish")
        edge = ingress.wait("done", 60)
        if scenario["failed"] or edge["failed"]:
            bad = [
                (r["scenario"], r["status"])
                for r in scenario["requests"] + edge["requests"]
                if r["status"] != 200
            ]
            raise RuntimeError(f"requests failed: {bad}")
        log(f"scenario: {len(scenario['requests'])} requests; node: {noise_done}")
        return {"scenario": scenario["requests"] + edge["requests"], "served": mesh.served(CAPTURED)}


# --------------------------------------------------------------------------- reading the captures


def tshark_args_for(name: str, table: Table) -> list[str]:
    """The h2c legs, which tshark cannot recognise without their preface: orders' gRPC channel
    (both NAT halves, by its app-side port) and payments' inbound leg from 127.0.0.6."""
    ports: set[int] = set()
    for r in table.values():
        if not r.get("tcp.stream") or r.get("sll.ifindex") != "1":
            continue
        src, sport, _, dport = endpoints(r)
        if name == "orders" and src == CLUSTER_IP["payments"] and sport == GRPC_PORT:
            ports.add(dport)
        if name == "payments" and src == INBOUND_SRC and dport == GRPC_PORT:
            ports.add(sport)
    if not ports:
        return []
    # tshark 4.0's gRPC dissector asserts on a response whose request it did not see (a warm
    # channel) and drops the rest of that segment, other streams' responses included
    return ["--disable-protocol", "grpc", *(x for p in sorted(ports) for x in ("-d", f"tcp.port=={p},http2"))]


def messages_of(path: Path, args: list[str], table: Table) -> list[dict[str, Any]]:
    """Every HTTP/1.1 and h2 message tshark decodes, with its endpoints and TCP stream."""
    out: list[dict[str, Any]] = []
    for m in tshark_summary(path, args, SHOWN_HEADERS)["http_messages"]:
        out.append({**m, "protocol": "http/1.1", "stream": None})
    if args:
        for m in tshark_h2_summary(path, args, SHOWN_HEADERS)["http_messages"]:
            out.append({**m, "protocol": "grpc"})
    return sorted((with_endpoints(m, table) for m in out), key=lambda m: int(m["frame"]))


def shown(m: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in m.get("headers", {}).items() if k in TRACE_HEADERS}


def judge(inb: dict[str, str], out: dict[str, str]) -> dict[str, Any] | None:
    """The expected verdict on one outbound request from the tracing headers on it and on the
    inbound request it serves. One finding per call: changed > malformed > missing > partial."""
    carried = [h for h in TRACE_HEADERS if h in inb]
    if not carried:
        return None
    if not any(h in out for h in TRACE_HEADERS):
        return {"kind": "missing", "headers": carried}
    changed = []
    if (
        "x-request-id" in out
        and "x-request-id" in inb
        and rid_key(out["x-request-id"]) != rid_key(inb["x-request-id"])
    ):
        changed.append("x-request-id")
    pin, pout = tp_parts(inb.get("traceparent")), tp_parts(out.get("traceparent"))
    if tp_valid(out.get("traceparent")) and pin and pout and pin[1] != pout[1]:
        # a restarted trace: its tracestate belongs to the old trace, so dropping it is part
        # of this one finding, not a second one
        changed.append("traceparent")
    if changed:
        return {
            "kind": "changed",
            "headers": changed,
            "rule": "another trace (or request) id than the request being served",
        }
    if "traceparent" in out and not tp_valid(out["traceparent"]):
        return {
            "kind": "malformed",
            "headers": ["traceparent"],
            "rule": "W3C Trace Context §3.2.2.3: an all-zero trace-id is invalid",
        }
    dropped = [h for h in carried if h not in out]
    if "tracestate" in inb and "tracestate" in out:
        lost = [k for k in ts_keys(inb["tracestate"]) if k not in ts_keys(out["tracestate"])]
        if lost:
            return {
                "kind": "partial",
                "headers": ["tracestate"],
                "lost_entries": lost,
                "rule": "W3C Trace Context §3.5: a vendor must not drop other vendors' tracestate entries",
            }
    if dropped:
        return {
            "kind": "partial",
            "headers": dropped,
            "rule": "Istio: apps forward x-request-id, traceparent and tracestate; W3C §3.5"
            if "tracestate" in dropped
            else "Istio: apps forward x-request-id and traceparent",
        }
    return None


def attribute(out: dict[str, Any], inbound: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The inbound requests an analysis may attribute an outbound call to, narrowed the way
    DESIGN.md says (window, then x-request-id, trace id, span lineage), and the id that
    narrowed them last. One left: certain; several: ambiguous."""
    cands = [i for i in inbound if i["frame"] < out["frame"] < i["end"]]
    o = shown(out)
    op = tp_parts(o.get("traceparent"))
    tests: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
        (
            "x-request-id",
            lambda i: (
                "x-request-id" in o
                and rid_key(shown(i).get("x-request-id", "")) == rid_key(o["x-request-id"])
            ),
        ),
        (
            "trace-id",
            lambda i: (
                op is not None
                and tp_valid(o.get("traceparent"))
                and (tp_parts(shown(i).get("traceparent")) or ("", "", "", ""))[1] == op[1]
            ),
        ),
        (
            "span-lineage",
            lambda i: (
                op is not None and (tp_parts(shown(i).get("traceparent")) or ("", "", "", ""))[2] == op[2]
            ),
        ),
    ]
    by = "time-window"
    for name, test in tests:
        if len(cands) <= 1 and by != "time-window":
            break
        hits = [c for c in cands if test(c)]
        if hits:
            cands, by = hits, name
    return cands, by


def expected_for(
    name: str,
    path: Path,
    args: list[str],
    table: Table,
    served: list[dict[str, Any]],
    scenario_markers: set[str],
) -> dict[str, Any]:
    pod = PODS[name]
    msgs = messages_of(path, args, table)
    last = max(table)
    reqs = [m for m in msgs if m["kind"] == "request"]
    resps = [m for m in msgs if m["kind"] == "response"]

    def response_of(req: dict[str, Any], reply_streams: set[int] | None = None) -> dict[str, Any] | None:
        for r in resps:
            if r["frame"] <= req["frame"] or r.get("used"):
                continue
            if req["protocol"] == "grpc":
                if (
                    r["protocol"] == "grpc"
                    and r["stream"] == req["stream"]
                    and (r["tcp_stream"] == req["tcp_stream"] or r["dport"] == req["sport"])
                ):
                    r["used"] = True
                    return r
            elif r["protocol"] == "http/1.1" and (
                r["tcp_stream"] == req["tcp_stream"]
                or (r["dport"] == req["sport"] and r["dst"].startswith(pod.ip))
            ):
                r["used"] = True
                return r
        return None

    inbound = [m for m in reqs if m["src"].startswith(INBOUND_SRC + ":")]
    for i in inbound:
        resp = response_of(i)
        end = resp.get("trailers", {}).get("frame", resp["frame"]) if resp else None
        i.update({"end": end if end else last + 1, "response_frame": end})
    outbound = [m for m in reqs if m["dst"] == f"127.0.0.1:{OUTBOUND_PORT}"]
    for o in outbound:
        resp = response_of(o)
        o["response_frame"] = resp.get("trailers", {}).get("frame", resp["frame"]) if resp else None
    by_marker: dict[str, list[dict[str, Any]]] = {}
    for i in inbound:
        by_marker.setdefault(i.get("headers", {}).get(MARKER, ""), []).append(i)
    calls_sent = {c["headers"][MARKER]: (ev, c) for ev in served for c in ev["calls"]}
    findings: list[dict[str, Any]] = []
    correct: list[dict[str, Any]] = []
    outside: list[dict[str, Any]] = []
    for o in outbound:
        marker = o.get("headers", {}).get(MARKER, "")
        if marker.split("/")[0] not in scenario_markers:
            raise RuntimeError(f"{name}: outbound frame {o['frame']} with unknown marker {marker!r}")
        _, call = calls_sent[marker]
        if {k: v for k, v in call["headers"].items() if k in TRACE_HEADERS} != shown(o):
            raise RuntimeError(f"{name}: frame {o['frame']}: tshark shows {shown(o)}, the app sent {call}")
        parent = marker.rsplit("/", 1)[0]
        serving = [i for i in by_marker.get(parent, []) if i["frame"] < o["frame"] < i["end"]]
        base = {
            "source": name,
            "target": call["target"],
            "protocol": o["protocol"],
            "marker": marker,
            "outbound_frame": o["frame"],
            "response_frame": o["response_frame"],
            "path": o.get("path"),
            "headers_sent": shown(o),
            "unknown_headers": o.get("unknown_headers", 0),  # fields tshark cannot name (HPACK)
        }
        cands, by = attribute(o, inbound)
        if not serving:
            if cands:
                raise RuntimeError(
                    f"{name}: frame {o['frame']} serves nothing captured, yet falls in {cands}"
                )
            outside.append({**base, "reason": "the request it serves began before the capture"})
            continue
        (inb,) = serving
        if inb not in cands:
            raise RuntimeError(
                f"{name}: frame {o['frame']}: attribution {by} misses its inbound {inb['frame']}"
            )
        attribution = {
            "inbound_frame": inb["frame"],
            "by": by,
            "confidence": "certain" if len(cands) == 1 else "ambiguous",
            "candidates": sorted(c["frame"] for c in cands),
        }
        verdict = judge(shown(inb), shown(o))
        key = (scenario_of(marker), name, call["call"])
        got = verdict["kind"] if verdict else None
        if got != INTENDED.get(key):
            raise RuntimeError(
                f"{name}: {key} judged {got}, meant {INTENDED.get(key)}: {shown(inb)} -> {shown(o)}"
            )
        if (key in AMBIGUOUS) != (attribution["confidence"] == "ambiguous"):
            raise RuntimeError(
                f"{name}: {key} attributed {attribution}: the timing did not go as planned, rerun"
            )
        if verdict is None:
            correct.append({**base, **attribution})
            continue
        hdrs = verdict["headers"]
        findings.append(
            {
                "kind": verdict["kind"],
                "headers": hdrs,
                **base,
                **attribution,
                "expected": {h: v for h, v in shown(inb).items() if h in hdrs},
                "found": {h: v for h, v in shown(o).items() if h in hdrs},
                "rule": verdict["rule"],
                **({"lost_entries": verdict["lost_entries"]} if "lost_entries" in verdict else {}),
            }
        )
    inbound_list = [
        {
            "frame": i["frame"],
            "response_frame": i["response_frame"],
            "protocol": i["protocol"],
            "path": i.get("path"),
            "marker": i.get("headers", {}).get(MARKER),
            "attempt": i.get("headers", {}).get("x-envoy-attempt-count"),
            **shown(i),
        }
        for i in inbound
    ]
    # pairs of inbound requests in flight together (two h2 requests can share a frame)
    concurrent = sorted(
        {
            (a["frame"], b["frame"])
            for k, a in enumerate(inbound)
            for b in inbound[k + 1 :]
            if a["frame"] <= b["frame"] < a["end"]
        }
    )
    pairs = nat_pairs(pod, table)
    leg_list, leg_counts = legs(pod, table)
    return {
        "file": f"mesh/{name}.pcap",
        "pod": {
            "name": name,
            "namespace": "shop",
            "ip": pod.ip,
            "app_ports": list(pod.ports),
            "sidecar": True,
            "inbound_source": INBOUND_SRC,
            "spiffe": pod.spiffe,
        },
        "services": {f"{ip}:{port}": f"{svc}:{port}" for (ip, port), svc in SERVICES.items()},
        "tshark_args": args,
        "findings": findings,
        "correct_calls": correct,
        "outside_capture": outside,
        "inbound_requests": inbound_list,
        "concurrent_inbound": concurrent,
        "nat_split": pairs,
        "leg_counts": leg_counts,
        "legs": leg_list,
    }


TESTS = {
    "frontend": (
        "frontend (HTTP/1.1) of an emulated Istio mesh traced with OpenTelemetry (W3C traceparent + "
        "tracestate + x-request-id, no B3), ksniff-style: inbound from 127.0.0.6, outbound NAT split, "
        "mTLS on eth0, probes and scrapes, warm keep-alive connections; a call whose serving request "
        "began before the capture; zero trace id (malformed), dropped tracestate (partial), a new "
        "trace while another request shares its x-request-id (changed, ambiguous); mesh/EXPECTED.json"
    ),
    "orders": (
        "orders in the same mesh, at the same time: HTTP/1.1 served by a thread pool, two parallel "
        "gRPC calls per request to payments on a warm channel (h2 without preface, HPACK entries older "
        "than the capture, NAT split); a 503 answered by the app then a retry (x-envoy-attempt-count: "
        "2); a new trace keeping x-request-id (changed); mesh/EXPECTED.json"
    ),
    "payments": (
        "payments in the same mesh: gRPC inbound from 127.0.0.6 on a warm h2 connection (two requests "
        "of one trace at once, told apart by span lineage), HTTP/1.1 calls to ledger retried by its "
        "sidecar; another vendor's tracestate entry dropped (partial, certain by span lineage), "
        "traceparent dropped (partial, ambiguous between the two); mesh/EXPECTED.json"
    ),
    "ledger": (
        "ledger in the same mesh: HTTP/1.1 inbound only (concurrent requests sharing x-request-id and "
        "trace id), a request whose first attempt its sidecar answered; requests still unanswered "
        "when the capture stops; mesh/EXPECTED.json"
    ),
}


def manifest_entry(name: str, args: list[str], table: Table, expected: dict[str, Any]) -> dict[str, Any]:
    note = (
        f"tshark counts each of the {len(expected['nat_split'])} NAT-split outbound connections twice "
        "(request half to 127.0.0.1:15001, reply half from the ClusterIP); paired by the app-side "
        "endpoint there are that many fewer connections"
        + (
            "; the h2c legs are decoded as http2 by their app-side ports; "
            "http.request.method/http.response.code count only HTTP/1.1"
            if args
            else ""
        )
    )
    return pod_manifest_entry(
        path=MESH_DIR / f"{name}.pcap",
        file=f"mesh/{name}.pcap",
        made_by=OWNER,
        tests=TESTS[name],
        args=args,
        table=table,
        expected=expected,
        shown_headers=SHOWN_HEADERS,
        h2=bool(args),
        note=note,
        scenario=scenario_lines(),
    )


ABOUT = (
    "What a propagation analysis (tracewire analyze) must find in the four mesh captures, each alone "
    "and all four together (the same findings either way). Frames are Wireshark's numbers: the frame "
    "completing an HTTP/1.1 message head, or the one whose segment completes an h2 HEADERS frame. "
    "inbound_frame: the request the sidecar sent the app (from 127.0.0.6); outbound_frame: the app's "
    "request to 127.0.0.1:15001. Kinds, one per call, in this precedence: changed (another trace id or "
    "x-request-id; a restarted trace's dropped tracestate is part of it, headers name traceparent "
    "only) > malformed (present but invalid, e.g. an all-zero trace id; never also partial) > missing "
    "(none of the inbound's tracing headers) > partial (some dropped, or other vendors' tracestate "
    "entries dropped: headers [tracestate], lost_entries). expected/found: the inbound's and the "
    "outbound's values of those headers (a header absent from the outbound is absent from found); "
    "unknown_headers: header fields of the outbound that tshark cannot name (HPACK entries older than "
    "the capture: on the warm gRPC channel, grpcio's constant headers, fully indexed). "
    "Attribution: candidates are the inbound requests of the pod "
    "whose window (head to response, or to the end of the capture) contains the outbound; narrowed in "
    "turn by x-request-id (character 14 masked), trace id, and span lineage (the outbound's "
    "traceparent parent-id = the inbound's span id), each step only when it keeps at least one; by = "
    "the last id that narrowed (time-window when none did); confidence certain when one candidate is "
    "left, else ambiguous (candidates: their frames; inbound_frame is the one the script knows it "
    "served, which a passive reader cannot tell). correct_calls: must give no finding (retries, "
    "unsampled requests, parallel calls, calls unanswered at the end). outside_capture: calls whose "
    "serving request began before the capture: no finding of any kind, counted apart."
)


def expect(run_info: dict[str, Any], name: str, path: Path, args: list[str], table: Table) -> dict[str, Any]:
    markers = {r[MARKER] for r in run_info["scenario"]}
    return expected_for(name, path, args, table, run_info["served"][name], markers)


def document(captures: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "made_by": OWNER,
        "about": ABOUT,
        "tracer": (
            "OpenTelemetry: traceparent + tracestate (istio=<span>, congo, rojo) + x-request-id, no B3; "
            "every sidecar starts a span per hop and keeps the other vendors' entries"
        ),
        "correct_app": (
            "forwards the inbound request's x-request-id, traceparent and tracestate byte for byte "
            "(no span of its own): the outbound traceparent's parent-id is the inbound's span id"
        ),
        "injected": {f"{s} ({app} -> {call})": kind for (s, app, call), kind in INTENDED.items()},
        "scenario": scenario_lines(),
        "captures": captures,
    }


def summary(c: dict[str, Any]) -> str:
    kinds = [
        f"{f['kind']} {f['target']} {f['inbound_frame']}->{f['outbound_frame']} {f['confidence']}"
        for f in c["findings"]
    ]
    return (
        f"{c['file']}: {len(c['findings'])} findings ({'; '.join(kinds)}), {len(c['correct_calls'])} "
        f"correct, {len(c['outside_capture'])} outside, concurrent inbound {c['concurrent_inbound']}"
    )


def actor(argv: list[str]) -> int:
    return actor_main(argv, f"{OWNER} --actor", PODS, run_app, run_otel_sidecar, run_ingress)


def main() -> int:
    recorder = Recorder(
        script=SCRIPT,
        doc=__doc__,
        directory=MESH_DIR,
        net=NET,
        captured=CAPTURED,
        modules=("cryptography", "grpc", "h2", "requests"),
        actor=actor,
        record=record,
        args_for=tshark_args_for,
        expect=expect,
        manifest_entry=manifest_entry,
        document=document,
        summary=summary,
    )
    return recorder.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
