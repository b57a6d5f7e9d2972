#!/usr/bin/env python3
"""Record ksniff-style captures of two pods of an emulated Istio mesh (bookinfo-like).

Run as root:  sudo python3 captures/record_pods.py                 (~15 s)
              sudo python3 captures/record_pods.py --no-manifest   (leave MANIFEST.json alone)
              sudo python3 captures/record_pods.py --out DIR       (into DIR; captures/ and
                                                                    MANIFEST.json untouched)
              python3 captures/record_pods.py --manifest-only      (no recording, no root: rewrite
                                                                    the MANIFEST.json entries from
                                                                    the files and EXPECTED.json)

Needs grpcio, requests and cryptography (when the Python running it lacks them, it runs
again with the project's .venv/bin/python, which has them), iproute2, iptables, tcpdump and
tshark. The namespaces, the istio-iptables rules, the certificates, the sidecar's listeners,
the actors and the reading of the captures are ``meshlib.py``'s, shared with record_mesh.py;
this script has the bookinfo pods, apps, bugs and B3 sidecar, and the judging.

What it builds
--------------
Every pod is a network namespace of its own, made here and deleted at the end (also after a
failure; leftovers of an interrupted run are deleted first): ``tw-productpage`` (10.244.1.10),
``tw-reviews`` (10.244.1.11), ``tw-details`` (10.244.1.12), ``tw-ratings`` (10.244.1.13), and
``tw-ingress`` (10.244.0.5, the istio-ingressgateway). Each has ``lo`` and an ``eth0`` veth
whose other end is on the bridge ``twbr0`` in a "node" namespace ``tw-node`` (10.244.1.1 and
10.244.0.1, routing between the two /24s). No packet leaves these namespaces; the host's own
network is not touched.

Services have ClusterIPs: reviews 10.96.0.11:9080, details 10.96.0.12:9080, ratings
10.96.0.13:9080 (HTTP) and 10.96.0.13:50051 (gRPC). There is no kube-proxy: the sidecar maps
the original destination (ClusterIP:port) to the pod IP itself, as Envoy's EDS would.

In every pod namespace, the nat rules of istio-iptables (``ISTIO_INBOUND`` redirects inbound
TCP to 15006 except 15008/15090/15021/15020; ``ISTIO_OUTPUT`` lets uid 1337 and 127.0.0.6
through and redirects everything else to 15001, as ``istio-iptables`` writes them).

Per pod, two processes:

* the **app** (root): a ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on 9080; ratings also
  runs a grpcio server (``ratings.v1.Ratings/GetRating``) on 50051. productpage calls details
  and reviews with python-requests, reviews calls ratings with grpcio (metadata), except for
  product 3 where it calls ratings over HTTP. The apps call the ClusterIPs, so the OUTPUT
  rule sends their connections to the sidecar and the capture shows the NAT split.
* the **sidecar** (binds as root, then runs as uid/gid 1337 like istio-proxy): listeners on
  15001 (outbound), 15006 (inbound), 15021 (health) and 15090 (metrics).

  - outbound 15001: finds the original destination (``SO_ORIGINAL_DST``), opens an mTLS
    connection to the target pod (throwaway CA and SPIFFE certificates made here, TLS 1.3,
    Istio-like SNI and ALPN) and, for HTTP/1.1, forwards each request like Envoy: keeps the
    app's x-request-id (or makes one, with character 14 = ``9``), makes a client span (new
    x-b3-spanid, x-b3-parentspanid = the app's span) when the app sent valid B3, starts a
    **new trace** when it did not, adds x-forwarded-proto, x-envoy-attempt-count and the
    peer-metadata headers. Port 50051 is relayed as bytes inside TLS.
  - inbound 15006: terminates mTLS, connects to the app from 127.0.0.6 (Istio >= 1.10) and
    forwards requests with a server span (new x-b3-spanid, x-b3-parentspanid = the caller's
    span), x-request-id, x-forwarded-proto, x-envoy-attempt-count and x-forwarded-client-cert.
    gRPC (50051) is relayed as bytes.
  - 15021 ``/healthz/ready`` and 15090 ``/stats/prometheus`` answer directly.

  One upstream connection per downstream connection, kept alive as long as it is.

The ingress gateway (``tw-ingress``) keeps two mTLS connections to productpage:9080 and
starts every trace (x-request-id and B3: 128-bit trace ids, 64-bit for the ``w3c`` requests).
From the node (10.244.1.1), a "kubelet" probes 15021 and a "Prometheus" scrapes 15090 of every
pod during the capture.

The productpage app's forwarding depends on the inbound query ``u`` (``id`` picks the
product), one deliberate bug per call path:

  ``u=normal``     x-request-id and every x-b3-* to details and reviews (correct);
  ``u=drop``       nothing to details (reviews correct);
  ``u=partial``    reviews gets x-request-id only (details correct);
  ``u=malformed``  details gets x-b3-spanid cut to 15 hex digits (reviews correct);
  ``u=newtrace``   reviews gets a freshly generated x-b3-traceid (details correct);
  ``u=w3c``        details gets x-request-id and a W3C traceparent made from the B3 context
                   (same trace id, zero-padded to 128 bits), no B3: correct, a format switch.

reviews forwards x-request-id and B3 to ratings, except for ``/reviews/2`` where its gRPC
call carries x-request-id only.

Before the capture, the ingress sends warm-up requests (some of them two at a time) so every
sidecar<->app connection, the apps' keep-alive pools, the mTLS connections and the gRPC
channel are open and warm: the captured connections start without a SYN (the gRPC one without
its preface, with HPACK tables the capture never shows). Then tcpdump runs in the productpage
and the reviews namespaces at once, as ``kubectl sniff -p`` runs it (``tcpdump -i any -U -w``,
classic pcap, LINUX_SLL2), while the ingress sends the scenario (some requests two at a time on
its two connections, so that only x-request-id tells which outbound call belongs to which
inbound request) and the node probes and scrapes; tcpdump is stopped with SIGINT.

Outputs (in ``captures/pods/``): ``productpage.pcap``, ``reviews.pcap`` and ``EXPECTED.json``,
the findings a propagation analysis must report (and the calls it must not report), with frame
numbers from tshark's reading of the files (fixturelib's rule: the frame completing a message
head), judged from the headers tshark shows and cross-checked against what the apps say they
sent. Then the script replaces its entries in MANIFEST.json.

Header contents (ids, trace ids, bodies) come from seeded generators; timestamps, ports,
sequence numbers, ``date`` headers, how bytes fall into segments, the interleaving of the
concurrent requests and so the frame numbers vary from run to run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import CAPTURES, SafeIds, log, tcpdump, tshark_h2_summary, tshark_summary
from meshlib import (
    GRPC_PORT,
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
    legs,
    nat_pairs,
    pod_manifest_entry,
    proxy_http,
    relay,
    run_sidecar,
    running_mesh,
    serve_app,
    tls_contexts,
    with_endpoints,
)

PODS_DIR = CAPTURES / "pods"
SCRIPT = Path(__file__).resolve()
OWNER = "record_pods.py"
HTTP_PORT = 9080
GRPC_METHOD = "/ratings.v1.Ratings/GetRating"


def bookinfo_pod(name: str, ip: str, veth: str, ports: tuple[int, ...]) -> Pod:
    """A pod of bookinfo: namespaces tw-NAME, service accounts bookinfo-NAME in "default"."""
    accounts = "spiffe://cluster.local/ns/default/sa/bookinfo-"
    return Pod(name, ip, veth, ports, netns_prefix="tw-", service_accounts=accounts)


PODS = {
    p.name: p
    for p in (
        bookinfo_pod("productpage", "10.244.1.10", "veth-pp", (HTTP_PORT,)),
        bookinfo_pod("reviews", "10.244.1.11", "veth-rv", (HTTP_PORT,)),
        bookinfo_pod("details", "10.244.1.12", "veth-dt", (HTTP_PORT,)),
        bookinfo_pod("ratings", "10.244.1.13", "veth-rt", (HTTP_PORT, GRPC_PORT)),
    )
}
INGRESS = bookinfo_pod("ingress", "10.244.0.5", "veth-ig", ())
INGRESS_SPIFFE = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
NET = Network(tuple(PODS.values()), INGRESS, node_ns="tw-node", bridge="twbr0",
              node_addrs=("10.244.1.1/24", "10.244.0.1/24"))  # fmt: skip
CAPTURED = ("productpage", "reviews")
# ClusterIP:port -> service name (no kube-proxy: the sidecar resolves it to the pod IP)
SERVICES = {
    ("10.96.0.10", HTTP_PORT): "productpage",
    ("10.96.0.11", HTTP_PORT): "reviews",
    ("10.96.0.12", HTTP_PORT): "details",
    ("10.96.0.13", HTTP_PORT): "ratings",
    ("10.96.0.13", GRPC_PORT): "ratings",
}
CLUSTER_IP = {name: ip for (ip, _), name in SERVICES.items()}

B3_HEADERS = ("x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags")
TRACE_HEADERS = ("x-request-id", *B3_HEADERS)
SHOWN_HEADERS = (*TRACE_HEADERS, "traceparent", "tracestate", "b3", "host")
ENVOY_OWNED = ("x-request-id", *B3_HEADERS, "x-forwarded-proto", "x-envoy-attempt-count",
               "x-forwarded-client-cert", "x-envoy-peer-metadata", "x-envoy-peer-metadata-id")
LOWER_HEX = re.compile(r"[0-9a-f]+")

# --------------------------------------------------------------------------- scenario

# Each step: requests the ingress sends at once, one per connection ("A", "B").
WARMUP: list[list[tuple[str, str]]] = [
    [("A", "/productpage?u=normal")],
    [("B", "/productpage?u=normal&id=3")],
    [("A", "/productpage?u=normal&id=1"), ("B", "/productpage?u=normal&id=2")],
    [("A", "/productpage?u=normal&id=3"), ("B", "/productpage?u=normal")],
]
SCENARIO: list[list[tuple[str, str]]] = [
    [("A", "/productpage?u=normal")],
    [("A", "/productpage?u=drop")],
    [("A", "/productpage?u=normal&id=2"), ("B", "/productpage?u=partial")],
    [("A", "/productpage?u=malformed")],
    [("A", "/productpage?u=newtrace"), ("B", "/productpage?u=normal&id=3")],
    [("B", "/productpage?u=w3c")],
    [("B", "/productpage?u=drop&id=1")],
    [("A", "/productpage?u=malformed&id=1"), ("B", "/productpage?u=partial&id=1")],
    [("A", "/productpage?u=normal&id=2"), ("B", "/productpage?u=w3c&id=1")],
    [("A", "/productpage?u=newtrace&id=1")],
    [("B", "/productpage?u=normal&id=1")],
]
STEP_GAP = 0.15  # s between steps: sequential requests have windows apart


def scenario_lines() -> list[str]:
    out = []
    for step in SCENARIO:
        if len(step) == 1:
            out.append(f"ingress conn {step[0][0]}: GET {step[0][1]}")
        else:
            out.append("at once: " + " | ".join(f"conn {c}: GET {p}" for c, p in step))
    return out


# --------------------------------------------------------------------------- B3 helpers


def pad32(trace_id: str) -> str:
    return trace_id.rjust(32, "0")


def valid_b3(d: dict[str, str]) -> bool:
    tid, sid = d.get("x-b3-traceid", ""), d.get("x-b3-spanid", "")
    return (len(tid) in (16, 32) and LOWER_HEX.fullmatch(tid) is not None
            and len(sid) == 16 and LOWER_HEX.fullmatch(sid) is not None)


# --------------------------------------------------------------------------- the sidecar


class BookinfoSidecar(Sidecar):
    """The sidecar with Envoy's Zipkin tracer (B3): a client span outbound, a server span
    inbound, a new trace when the app sent no usable B3; gRPC is relayed as bytes."""

    services = SERVICES
    pods = PODS

    def outbound_stream(self, app: socket.socket, peer: ssl.SSLSocket, port: int) -> None:
        if port == GRPC_PORT:
            relay(app, peer)
        else:
            proxy_http(app, peer, lambda req, _: self.outbound_request(req), self.outbound_response)

    def inbound_stream(self, peer: ssl.SSLSocket, app: socket.socket, port: int) -> None:
        if port == GRPC_PORT:
            relay(peer, app)
        else:
            proxy_http(peer, app, lambda req, _attempt: self.inbound_request(req, peer),
                            self.inbound_response)  # fmt: skip

    def with_span(self, req: Message, extra: list[tuple[str, str]]) -> Message:
        """``req`` as Envoy forwards it: its own tracing headers replaced by x-request-id
        (kept, or made), x-forwarded-proto, the attempt, ``extra`` and a new span, child of
        the one received when it was valid B3."""
        hdrs = [(n.lower(), v) for n, v in req.headers if n.lower() not in HOP_BY_HOP]
        d = dict(hdrs)
        rid = d.get("x-request-id") or self.ids.request_id()
        if valid_b3(d):  # a child of the sender's span
            trace, parent, sampled = d["x-b3-traceid"], d["x-b3-spanid"], d.get("x-b3-sampled", "1")
        else:  # no usable context: Envoy starts a new trace
            trace, parent, sampled = self.ids.trace_id(), None, "1"
        out = [(n, v) for n, v in hdrs if n not in ENVOY_OWNED]
        out += [("x-forwarded-proto", "http"), ("x-request-id", rid), ("x-envoy-attempt-count", "1"), *extra,
                ("x-b3-traceid", trace), ("x-b3-spanid", self.ids.span_id())]  # fmt: skip
        if parent:
            out.append(("x-b3-parentspanid", parent))
        out.append(("x-b3-sampled", sampled))
        return Message(req.start, out, req.body)

    def outbound_request(self, req: Message) -> Message:  # a client span
        out = self.with_span(req, [("x-envoy-peer-metadata-id", self.node_id),
                                   ("x-envoy-peer-metadata", self.peer_metadata)])  # fmt: skip
        self.count("outbound")
        return out

    def inbound_request(self, req: Message, peer: socket.socket) -> Message:  # a server span
        out = self.with_span(req, [("x-forwarded-client-cert", self.xfcc(peer))])
        self.count("inbound")
        return out


# --------------------------------------------------------------------------- the apps


class BookinfoApp(App):
    cluster_ip = CLUSTER_IP
    http_port = HTTP_PORT


class ProductPage(BookinfoApp):
    server_header = "gunicorn"

    def __init__(self, pod: Pod) -> None:
        super().__init__(pod)
        self.ids = SafeIds(9080)
        self.sessions = {svc: self.session() for svc in ("details", "reviews")}

    def forward(self, fwd: dict[str, str], u: str) -> tuple[dict[str, str], dict[str, str]]:
        """What goes to (details, reviews): the deliberate bugs live here."""
        details, reviews = dict(fwd), dict(fwd)
        if u == "drop":
            details = {}
        elif u == "partial":
            reviews = {k: v for k, v in fwd.items() if k == "x-request-id"}
        elif u == "malformed":
            details["x-b3-spanid"] = fwd["x-b3-spanid"][:15]
        elif u == "newtrace":
            reviews["x-b3-traceid"] = self.ids.trace_id()
        elif u == "w3c":
            flags = "01" if fwd.get("x-b3-sampled") == "1" else "00"
            details = {"x-request-id": fwd["x-request-id"],
                       "traceparent": f"00-{pad32(fwd['x-b3-traceid'])}-{fwd['x-b3-spanid']}-{flags}"}
        return details, reviews

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        url = urlsplit(path)
        q = parse_qs(url.query)
        if url.path != "/productpage":
            return 404, "text/plain", b"not found\n"
        u, product = q.get("u", ["normal"])[0], q.get("id", ["0"])[0]
        fwd = {h: inbound[h] for h in TRACE_HEADERS if h in inbound}
        to_details, to_reviews = self.forward(fwd, u)
        d_status, d_body = self.get(self.sessions["details"], "details", f"/details/{product}", to_details)
        r_status, r_body = self.get(self.sessions["reviews"], "reviews", f"/reviews/{product}", to_reviews)
        time.sleep(0.03)  # rendering: keeps concurrent requests in flight together
        emit({"event": "served", "app": "productpage", "path": path, "u": u, "inbound": fwd,
              "calls": [
                  {"target": f"details:{HTTP_PORT}", "protocol": "http/1.1", "path": f"/details/{product}",
                   "headers": to_details, "status": d_status},
                  {"target": f"reviews:{HTTP_PORT}", "protocol": "http/1.1", "path": f"/reviews/{product}",
                   "headers": to_reviews, "status": r_status},
              ]})
        parts = ["<!DOCTYPE html>", "<html><head><title>Simple Bookstore App</title></head><body>",
                 f"<h1>The Comedy of Errors (product {product})</h1>"]
        if d_status == 200:
            d = json.loads(d_body)
            parts.append(f"<p>{d['author']}, {d['year']}, {d['pages']} pages, {d['publisher']}</p>")
        else:
            parts.append("<p>Sorry, product details are currently unavailable.</p>")
        if r_status == 200:
            for rv in json.loads(r_body)["reviews"]:
                parts.append(f"<blockquote>{rv['text']} <small>{rv['reviewer']}</small> "
                             f"{'&#9733;' * rv['rating']['stars']}</blockquote>")
        else:
            parts.append(f"<p>Sorry, product reviews are currently unavailable ({r_status}).</p>")
        parts.append("</body></html>")
        return 200, "text/html; charset=utf-8", ("\n".join(parts) + "\n").encode()


class Reviews(BookinfoApp):
    server_header = "reviews/1.0"

    def __init__(self, pod: Pod) -> None:
        import grpc

        super().__init__(pod)
        self.grpc = grpc
        self.http = self.session()
        self.channel = grpc.insecure_channel(
            f"{CLUSTER_IP['ratings']}:{GRPC_PORT}",
            options=[("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0),
                     ("grpc.primary_user_agent", "reviews/1.0"), ("grpc.http2.true_binary", 0)],
        )
        self.get_rating = self.channel.unary_unary(GRPC_METHOD)

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/reviews/(\d+)", urlsplit(path).path)
        if not m:
            return 404, "application/json", b'{"error":"not found"}'
        product = m.group(1)
        fwd = {h: inbound[h] for h in TRACE_HEADERS if h in inbound}
        call: dict[str, Any]
        if product == "3":  # this one asks ratings over HTTP
            call = {"target": f"ratings:{HTTP_PORT}", "protocol": "http/1.1", "path": f"/ratings/{product}",
                    "headers": fwd}
            status, body = self.get(self.http, "ratings", f"/ratings/{product}", fwd)
            ratings = json.loads(body)["ratings"] if status == 200 else {}
        else:
            md = fwd if product != "2" else {k: v for k, v in fwd.items() if k == "x-request-id"}
            call = {"target": f"ratings:{GRPC_PORT}", "protocol": "grpc", "path": GRPC_METHOD, "headers": md}
            try:
                reply = self.get_rating(f"product={product}".encode(), metadata=list(md.items()), timeout=10)
                ratings, status = json.loads(reply)["ratings"], 200
            except self.grpc.RpcError as exc:
                ratings, status = {}, 503
                log(f"GetRating: {exc.code().name}")
        call["status"] = status
        emit({"event": "served", "app": "reviews", "path": path, "inbound": fwd, "calls": [call]})
        doc = {"id": product, "podname": self.pod.workload, "clustername": "null", "reviews": [
            {"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare.",
             "rating": {"stars": ratings.get("Reviewer1", 0), "color": "black"}},
            {"reviewer": "Reviewer2",
             "text": "Absolutely fun and entertaining. The play lacks thematic depth.",
             "rating": {"stars": ratings.get("Reviewer2", 0), "color": "black"}},
        ]}
        return 200, "application/json", json.dumps(doc).encode()


class Details(BookinfoApp):
    server_header = "WEBrick/1.7.0 (Ruby/3.1.2)"

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/details/(\d+)", urlsplit(path).path)
        if not m:
            return 404, "application/json", b'{"error":"not found"}'
        doc = {"id": int(m.group(1)), "author": "William Shakespeare", "year": 1595, "type": "paperback",
               "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890",
               "ISBN-13": "123-1234567890"}
        return 200, "application/json", json.dumps(doc).encode()


class Ratings(BookinfoApp):
    server_header = "ratings/1.0"

    def __init__(self, pod: Pod) -> None:
        from concurrent import futures

        import grpc

        super().__init__(pod)

        def get_rating(request: bytes, context: Any) -> bytes:
            return self.doc(request.decode().partition("=")[2])

        handler = grpc.method_handlers_generic_handler(
            "ratings.v1.Ratings", {"GetRating": grpc.unary_unary_rpc_method_handler(get_rating)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  options=[("grpc.http2.true_binary", 0)])
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"0.0.0.0:{GRPC_PORT}")
        self.server.start()

    @staticmethod
    def doc(product: str) -> bytes:
        return json.dumps({"id": int(product or 0), "ratings": {"Reviewer1": 5, "Reviewer2": 4}}).encode()

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/ratings/(\d+)", urlsplit(path).path)
        if not m:
            return 404, "application/json", b'{"error":"not found"}'
        return 200, "application/json", self.doc(m.group(1))


APPS: dict[str, type[BookinfoApp]] = {"productpage": ProductPage, "reviews": Reviews, "details": Details,
                                     "ratings": Ratings}


def run_app(pod: Pod) -> None:
    serve_app(APPS[pod.name](pod))
    app_ready()


def run_bookinfo_sidecar(pod: Pod, certs: Path) -> None:
    run_sidecar(BookinfoSidecar(pod, certs))  # made as root: it binds and reads the certificates


# --------------------------------------------------------------------------- ingress and node


def run_ingress(certs: Path) -> None:
    _, ctx = tls_contexts(certs, "ingress")
    sni = f"outbound_.{HTTP_PORT}_._.productpage.default.svc.cluster.local"
    conns = {c: MtlsConnection(ctx, PODS["productpage"], HTTP_PORT, sni, timeout=15, attempts=2)
             for c in "AB"}
    ids = SafeIds(443)

    def one(conn: str, path: str, out: list[dict[str, Any]], barrier: threading.Barrier | None) -> None:
        w3c = "u=w3c" in path
        ctx_hdrs = [("x-request-id", ids.request_id()),
                    ("x-b3-traceid", ids.trace_id64() if w3c else ids.trace_id()),
                    ("x-b3-spanid", ids.span_id()), ("x-b3-sampled", "1")]
        msg = Message(f"GET {path} HTTP/1.1", [
            ("host", "bookinfo.example.com"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"),
            ("accept", "text/html,application/xhtml+xml"),
            ("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"),
            ("x-envoy-external-address", "203.0.113.7"), *ctx_hdrs,
            ("x-envoy-attempt-count", "1"),
            ("x-envoy-decorator-operation", "productpage.default.svc.cluster.local:9080/productpage"),
            ("x-envoy-peer-metadata-id", "router~10.244.0.5~istio-ingressgateway-7d4f8b9c-q2w3e.istio-system"
                                         "~istio-system.svc.cluster.local"),
        ])
        if barrier is not None:
            barrier.wait(timeout=10)
        t0 = time.time()
        resp = conns[conn].request(msg)
        out.append({"conn": conn, "path": path, **dict(ctx_hdrs), "status": int(resp.start.split()[1]),
                    "t0": t0, "t1": time.time()})

    def steps(plan: list[list[tuple[str, str]]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for step in plan:
            at_once([partial(one, c, p, out) for c, p in step], timeout=30)
            time.sleep(STEP_GAP)
        return out

    emit({"ready": "ingress"})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd in ("warm", "run"):
            done = steps(WARMUP if cmd == "warm" else SCENARIO)
            bad = [r for r in done if r["status"] != 200]
            emit({"done": cmd, "requests": done, "failed": len(bad)})
    os._exit(0)


# --------------------------------------------------------------------------- recording


def record(workdir: Path) -> dict[str, Any]:
    """Build the mesh, warm it up, capture the scenario; return what the actors said."""
    identities = {name: pod.spiffe for name, pod in PODS.items()}
    identities["ingress"] = INGRESS_SPIFFE
    with running_mesh(NET, SCRIPT, workdir / "certs", identities) as mesh:
        with tcpdump({PODS[n].netns: workdir / f"{n}.pcap" for n in CAPTURED}):
            mesh.noise.send("start")
            mesh.noise.wait("started", 10)
            time.sleep(0.6)
            mesh.ingress.send("run")
            scenario = mesh.ingress.wait("done", 180)
            time.sleep(0.8)
            mesh.noise.send("stop")
            noise_done = mesh.noise.wait("done", 30)
        if scenario["failed"]:
            raise RuntimeError(f"scenario: {scenario['failed']} requests failed")
        log(f"scenario: {len(scenario['requests'])} requests; node: {noise_done}")
        return {"scenario": scenario["requests"], "served": mesh.served(CAPTURED), "noise": noise_done}


# --------------------------------------------------------------------------- expected findings


def b3_rule(out: dict[str, str]) -> tuple[list[str], str] | None:
    """Which B3 headers break openzipkin/b3-propagation, and the rule, or None."""
    bad: list[str] = []
    rules: list[str] = []
    for name, lengths, what in (("x-b3-traceid", (16, 32), "trace id"), ("x-b3-spanid", (16,), "span id"),
                                ("x-b3-parentspanid", (16,), "parent span id")):
        v = out.get(name)
        if v is None:
            continue
        if len(v) not in lengths or not LOWER_HEX.fullmatch(v):
            bad.append(name)
            want = " or ".join(str(n) for n in lengths)
            rules.append(f"{name}: a B3 {what} is {want} lower-case hex digits; {v!r} has {len(v)}"
                         + ("" if LOWER_HEX.fullmatch(v) else " and is not lower-case hex"))
    if "x-b3-sampled" in out and out["x-b3-sampled"] not in ("0", "1"):
        bad.append("x-b3-sampled")
        rules.append('x-b3-sampled: must be "1" or "0"')
    return (bad, "; ".join(rules)) if bad else None


def traceparent_trace(value: str | None) -> str | None:
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", value or "")
    return m.group(1) if m else None


def judge(inb: dict[str, str], out: dict[str, str]) -> dict[str, Any] | None:
    """The expected verdict for one outbound request, from the tracing headers tshark shows on
    it and on the inbound request it was made for: a finding, a note, or None (correct)."""
    carried = [h for h in TRACE_HEADERS if h in inb]
    if not any(h in out for h in (*TRACE_HEADERS, "traceparent", "b3")):
        return {"kind": "missing", "headers": carried}
    bad = b3_rule(out)
    if bad is not None:
        return {"kind": "malformed", "headers": bad[0], "rule": bad[1]}
    changed = []
    if "x-request-id" in out and out["x-request-id"] != inb.get("x-request-id"):
        changed.append("x-request-id")
    if "x-b3-traceid" in out and pad32(out["x-b3-traceid"]) != pad32(inb.get("x-b3-traceid", "")):
        changed.append("x-b3-traceid")
    if changed:
        return {"kind": "changed", "headers": changed}
    dropped = [h for h in carried if h not in out]
    tp = traceparent_trace(out.get("traceparent"))
    if tp and tp == pad32(inb.get("x-b3-traceid", "")) and not any(h in out for h in B3_HEADERS):
        if [h for h in dropped if h not in B3_HEADERS]:
            return {"kind": "partial", "headers": [h for h in dropped if h not in B3_HEADERS]}
        return {"note": "format-switch", "headers": dropped, "trace_id": tp}
    if dropped:
        return {"kind": "partial", "headers": dropped}
    return None


INTENDED = {  # (app, bug or product, target) -> the verdict the script means to produce
    ("productpage", "drop", "details:9080"): "missing",
    ("productpage", "partial", "reviews:9080"): "partial",
    ("productpage", "malformed", "details:9080"): "malformed",
    ("productpage", "newtrace", "reviews:9080"): "changed",
    ("productpage", "w3c", "details:9080"): "format-switch",
    ("reviews", "2", "ratings:50051"): "partial",
}


def context_of(m: dict[str, Any]) -> dict[str, str]:
    """The tracing headers tshark shows on a message."""
    return {k: v for k, v in m.get("headers", {}).items() if k in (*TRACE_HEADERS, "traceparent")}


def http_requests(path: Path, args: list[str], table: Table) -> list[dict[str, Any]]:
    summary = tshark_summary(path, args, SHOWN_HEADERS)
    return [with_endpoints({**m, "protocol": "http/1.1"}, table) for m in summary["http_messages"]]


def expected_for(name: str, path: Path, args: list[str], table: Table,
                 served: list[dict[str, Any]], scenario_ids: set[str]) -> dict[str, Any]:
    pod = PODS[name]
    h1 = http_requests(path, args, table)
    inbound_reqs = [m for m in h1 if m["kind"] == "request" and m["src"].startswith(INBOUND_SRC + ":")]
    # each inbound request's window: from its head to its response's head, same connection
    windows: dict[int, int] = {}
    for req in inbound_reqs:
        resp = next((m for m in h1 if m["kind"] == "response" and m["tcp_stream"] == req["tcp_stream"]
                     and m["frame"] > req["frame"]), None)
        windows[req["frame"]] = resp["frame"] if resp else max(table)
    by_rid = {m["headers"]["x-request-id"]: m for m in inbound_reqs}
    outbound: list[dict[str, Any]] = [
        m for m in h1 if m["kind"] == "request" and m["dst"] == f"127.0.0.1:{OUTBOUND_PORT}"]
    if name == "reviews":
        h2 = tshark_h2_summary(path, args, SHOWN_HEADERS)
        outbound += [{**m, "protocol": "grpc"} for m in h2["http_messages"] if m["kind"] == "request"]
    used: set[int] = set()
    findings: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    correct: list[dict[str, Any]] = []
    inbound_list: list[dict[str, Any]] = []
    for ev in served:
        rid = ev["inbound"].get("x-request-id")
        if rid not in scenario_ids or rid not in by_rid:
            continue  # a warm-up request, before the capture
        inb = by_rid[rid]
        shown_in = {k: v for k, v in inb.get("headers", {}).items() if k in TRACE_HEADERS}
        if shown_in != ev["inbound"]:
            raise RuntimeError(f"{name}: tshark shows {shown_in}, the app got {ev['inbound']}")
        f_in, f_end = inb["frame"], windows[inb["frame"]]
        inbound_list.append({"frame": f_in, "response_frame": f_end, "path": inb["path"],
                             "x-request-id": rid})
        for call in ev["calls"]:
            want = {k: v for k, v in call["headers"].items()}
            host = call["target"].split(":")[0]

            def matches(m: dict[str, Any], call: dict[str, Any] = call, want: dict[str, str] = want,
                        host: str = host, f_in: int = f_in, f_end: int = f_end) -> bool:
                shown = context_of(m)
                if m["frame"] in used or not f_in < m["frame"] < f_end or shown != want:
                    return False
                if call["protocol"] == "grpc":
                    return bool(m["protocol"] == "grpc")
                return bool(m["protocol"] == "http/1.1" and m["path"] == call["path"]
                            and m["headers"].get("host", "").startswith(host))

            hits = [m for m in outbound if matches(m)]
            if not hits:
                raise RuntimeError(f"{name}: no captured request for {call} (inbound frame {f_in})")
            o = hits[0]
            used.add(o["frame"])
            shown_out = context_of(o)
            verdict = judge(shown_in, shown_out)
            containing = [f for f, end in windows.items() if f < o["frame"] < end]
            base = {"source": name, "target": call["target"], "protocol": call["protocol"],
                    "inbound_frame": f_in, "outbound_frame": o["frame"],
                    "by": "x-request-id" if shown_out.get("x-request-id") == rid else "time-window",
                    "time_window_ambiguous": len(containing) > 1,
                    "inbound_path": inb["path"], "outbound_path": o.get("path"), "x-request-id": rid}
            key: tuple[str, str, str] = (
                ("productpage", str(ev.get("u")), call["target"]) if name == "productpage"
                else ("reviews", ev["path"].rsplit("/", 1)[-1], call["target"]))
            intended = INTENDED.get(key)
            got = None if verdict is None else verdict.get("kind") or verdict.get("note")
            if got != intended:
                raise RuntimeError(f"{name}: {key} judged {got}, meant {intended}: {shown_in} -> {shown_out}")
            if verdict is None:
                correct.append(base)
            elif "note" in verdict:
                notes.append({"kind": verdict["note"], **base, "from": "b3-multi", "to": "w3c",
                              "trace_id": verdict["trace_id"], "headers": verdict["headers"],
                              "detail": "B3 in, W3C traceparent out, same trace id (zero-padded to 128 "
                                        "bits), x-request-id kept: correct, not a break"})
            else:
                findings.append({"kind": verdict["kind"], **base, "headers": verdict["headers"],
                                 **({"rule": verdict["rule"]} if "rule" in verdict else {})})
    leftovers = [m["frame"] for m in outbound if m["frame"] not in used]
    if leftovers:
        raise RuntimeError(f"{name}: outbound requests not accounted for: frames {leftovers}")
    concurrent = sorted([a, b] for a in windows for b in windows if a < b and b < windows[a])
    pairs = nat_pairs(pod, table)
    leg_list, leg_counts = legs(pod, table)
    return {
        "file": f"pods/{name}.pcap",
        "pod": {"name": name, "namespace": "default", "ip": pod.ip, "app_ports": list(pod.ports),
                "workload": pod.workload, "sidecar": True, "inbound_source": INBOUND_SRC},
        "services": {f"{ip}:{port}": f"{svc}:{port}" for (ip, port), svc in SERVICES.items()},
        "tshark_args": args,
        "findings": sorted(findings, key=lambda f: f["outbound_frame"]),
        "notes": sorted(notes, key=lambda f: f["outbound_frame"]),
        "correct_calls": sorted(correct, key=lambda f: f["outbound_frame"]),
        "inbound_requests": sorted(inbound_list, key=lambda f: f["frame"]),
        "concurrent_inbound": concurrent,
        "nat_split": pairs,
        "leg_counts": leg_counts,
        "legs": leg_list,
    }


def tshark_args_for(name: str, table: Table) -> list[str]:
    """reviews: the gRPC channel's app-side port (both NAT halves) as http2; nothing else needs
    help (tshark's heuristics find HTTP/1.1 on 9080, 15001, 15021 and 15090, and TLS on eth0)."""
    if name != "reviews":
        return []
    ports = sorted({int(r["tcp.dstport"]) for r in table.values()
                    if r.get("ip.src") == CLUSTER_IP["ratings"] and r.get("tcp.srcport") == str(GRPC_PORT)})
    return [x for p in ports for x in ("-d", f"tcp.port=={p},http2")]


TESTS = {
    "productpage": (
        "ksniff capture (tcpdump -i any in the pod's netns) of productpage in an emulated Istio mesh: "
        "inbound from 127.0.0.6, outbound NAT split (podIP:p -> 127.0.0.1:15001, replies from the "
        "ClusterIPs), mTLS legs on eth0, kubelet/Prometheus noise on 15021/15090, warm keep-alive "
        "connections (no SYN), concurrent inbound requests; broken propagation to details (missing, "
        "malformed x-b3-spanid) and to reviews (partial, changed trace id), a B3 -> W3C switch; "
        "expected findings in pods/EXPECTED.json"
    ),
    "reviews": (
        "ksniff capture of reviews in the same mesh, at the same time: inbound HTTP/1.1 from "
        "127.0.0.6, outbound gRPC to ratings on a warm channel (h2 mid-connection, HPACK state "
        "unknown; NAT split) and HTTP/1.1 to ratings, mTLS on eth0; the gRPC call for /reviews/2 "
        "drops B3 (partial); expected findings in pods/EXPECTED.json"
    ),
}


def manifest_entry(name: str, args: list[str], table: Table, expected: dict[str, Any]) -> dict[str, Any]:
    grpc = name == "reviews"
    note = (
        f"tshark counts each of the {len(expected['nat_split'])} NAT-split outbound connections twice "
        "(request half to 127.0.0.1:15001, reply half from the ClusterIP) and pairs no outbound request "
        "with its response; paired by the app-side endpoint there are that many fewer connections"
        + ("; the gRPC channel is decoded as http2 by its app-side port (both halves); "
           "http.request.method/http.response.code count only the HTTP/1.1 messages" if grpc else ""))
    return pod_manifest_entry(
        path=PODS_DIR / f"{name}.pcap", file=f"pods/{name}.pcap", made_by=OWNER, tests=TESTS[name], args=args,
        table=table, expected=expected, shown_headers=SHOWN_HEADERS, h2=grpc, note=note,
        scenario=scenario_lines())


def check_capture(path: Path, table: Table, leg_list: list[dict[str, Any]]) -> None:
    name = path.stem
    size = path.stat().st_size
    eth0_app = [s for s in leg_list if "mTLS" in s["role"]]
    if not eth0_app or any(s["http_frames"] for s in eth0_app):
        raise RuntimeError(f"{name}: the eth0 sidecar legs must be TLS, not HTTP: {eth0_app}")
    if not any(s["tls_frames"] for s in eth0_app):
        log(f"{name}: tshark recognises no TLS on eth0 (heuristics)")
    log(f"{name}.pcap: {size} bytes, {len(table)} frames, {len(leg_list)} tshark conversations")


# --------------------------------------------------------------------------- main

ABOUT = (
    "What a propagation analysis (tracewire analyze) must find in the pod captures, one "
    "capture at a time. Frames are Wireshark's numbers; inbound_frame completes the head of "
    "the request the sidecar sent to the app (from 127.0.0.6), outbound_frame the head of "
    "the app's request to 127.0.0.1:15001 (HTTP/1.1) or the h2 HEADERS frame (gRPC). "
    "Kinds: missing (the outbound carries none of the inbound's tracing headers), partial "
    "(some kept, some dropped), changed (another trace id or x-request-id), malformed (a "
    "header breaks its spec). notes: correct but worth saying (a format switch). "
    "correct_calls: outbound requests that carry the context on correctly and must give no "
    "finding. by: what attributes the outbound to its inbound request; "
    "time_window_ambiguous: the outbound falls in more than one inbound request's window."
)


def expect(run_info: dict[str, Any], name: str, path: Path, args: list[str], table: Table) -> dict[str, Any]:
    scenario_ids = {r["x-request-id"] for r in run_info["scenario"]}
    exp = expected_for(name, path, args, table, run_info["served"][name], scenario_ids)
    check_capture(path, table, exp["legs"])
    return exp


def document(captures: list[dict[str, Any]]) -> dict[str, Any]:
    return {"made_by": OWNER, "about": ABOUT, "scenario": scenario_lines(), "captures": captures}


def summary(c: dict[str, Any]) -> str:
    kinds = [f"{f['kind']} {f['target']} {f['inbound_frame']}->{f['outbound_frame']}" for f in c["findings"]]
    return (f"{c['file']}: {len(c['findings'])} findings ({'; '.join(kinds)}), {len(c['notes'])} notes, "
            f"{len(c['correct_calls'])} correct calls, concurrent inbound pairs {c['concurrent_inbound']}")


def actor(argv: list[str]) -> int:
    return actor_main(argv, f"{OWNER} --actor", PODS, run_app, run_bookinfo_sidecar, run_ingress)


def main() -> int:
    recorder = Recorder(
        script=SCRIPT, doc=__doc__, directory=PODS_DIR, net=NET, captured=CAPTURED,
        modules=("cryptography", "grpc", "requests"), actor=actor, record=record, args_for=tshark_args_for,
        expect=expect, manifest_entry=manifest_entry, document=document, summary=summary)  # fmt: skip
    return recorder.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
