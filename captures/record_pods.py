#!/usr/bin/env python3
"""Record ksniff-style captures of two pods of an emulated Istio mesh (bookinfo-like).

Run as root:  sudo python3 captures/record_pods.py                 (~15 s)
              sudo python3 captures/record_pods.py --no-manifest   (leave MANIFEST.json alone)
              python3 captures/record_pods.py --manifest-only      (no recording, no root: rewrite
                                                                    the MANIFEST.json entries from
                                                                    the files and EXPECTED.json)

Needs grpcio, requests and cryptography (``pip install grpcio requests cryptography``),
iproute2, iptables, tcpdump and tshark.

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

import argparse
import base64
import contextlib
import email.utils
import hashlib
import json
import os
import queue
import re
import select
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import CAPTURES, describe_format, tshark_h2_summary, tshark_summary, update_manifest
from record_http1 import Ids, run

PODS_DIR = CAPTURES / "pods"
EXPECTED = PODS_DIR / "EXPECTED.json"
NS_PREFIX = "tw-"
NODE_NS = "tw-node"
BRIDGE = "twbr0"
NODE_ADDRS = ("10.244.1.1/24", "10.244.0.1/24")
SIDECAR_UID = 1337
INBOUND_SRC = "127.0.0.6"
OUTBOUND_PORT, INBOUND_PORT, HEALTH_PORT, METRICS_PORT = 15001, 15006, 15021, 15090
HTTP_PORT, GRPC_PORT = 9080, 50051
GRPC_METHOD = "/ratings.v1.Ratings/GetRating"


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    veth: str  # the bridge end, in the node namespace
    ports: tuple[int, ...]
    version: str = "v1"

    @property
    def netns(self) -> str:
        return NS_PREFIX + self.name

    @property
    def spiffe(self) -> str:
        return f"spiffe://cluster.local/ns/default/sa/bookinfo-{self.name}"

    @property
    def workload(self) -> str:
        return f"{self.name}-{self.version}-{hashlib.sha1(self.name.encode()).hexdigest()[:10]}-x7k2p"


PODS = {
    p.name: p
    for p in (
        Pod("productpage", "10.244.1.10", "veth-pp", (HTTP_PORT,)),
        Pod("reviews", "10.244.1.11", "veth-rv", (HTTP_PORT,)),
        Pod("details", "10.244.1.12", "veth-dt", (HTTP_PORT,)),
        Pod("ratings", "10.244.1.13", "veth-rt", (HTTP_PORT, GRPC_PORT)),
    )
}
INGRESS = Pod("ingress", "10.244.0.5", "veth-ig", ())
INGRESS_SPIFFE = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
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
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "upgrade")
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


# --------------------------------------------------------------------------- small helpers

_print_lock = threading.Lock()
ACTOR = "record"


def log(msg: str) -> None:
    with _print_lock:
        print(f"[{ACTOR}] {msg}", file=sys.stderr, flush=True)


def emit(obj: dict[str, Any]) -> None:
    """One JSON line to the orchestrator (actors only)."""
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def pad32(trace_id: str) -> str:
    return trace_id.rjust(32, "0")


def valid_b3(d: dict[str, str]) -> bool:
    tid, sid = d.get("x-b3-traceid", ""), d.get("x-b3-spanid", "")
    return (len(tid) in (16, 32) and LOWER_HEX.fullmatch(tid) is not None
            and len(sid) == 16 and LOWER_HEX.fullmatch(sid) is not None)


class SafeIds(Ids):
    """record_http1's seeded Envoy-shaped identifiers, usable from several threads."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.lock = threading.Lock()

    def request_id(self) -> str:
        with self.lock:
            return super().request_id()

    def trace_id(self) -> str:
        with self.lock:
            return super().trace_id()

    def span_id(self) -> str:
        with self.lock:
            return super().span_id()

    def trace_id64(self) -> str:
        with self.lock:
            return f"{self.rng.getrandbits(64):016x}"


# --------------------------------------------------------------------------- HTTP/1.1 framing


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name), None)

    def wire(self) -> bytes:
        head = self.start + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in self.headers) + "\r\n"
        return head.encode("latin-1") + self.body


def _exact(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) != n:
        raise EOFError("connection closed inside a body")
    return data


def read_message(rfile: BinaryIO, request: bool, method: str = "GET") -> Message | None:
    """One HTTP/1.1 message, body kept as on the wire (chunked stays chunked); None at EOF."""
    line = rfile.readline(65537)
    while line in (b"\r\n", b"\n"):
        line = rfile.readline(65537)
    if not line:
        return None
    start = line.rstrip(b"\r\n").decode("latin-1")
    headers: list[tuple[str, str]] = []
    while True:
        raw = rfile.readline(65537)
        if not raw:
            raise EOFError("connection closed inside a head")
        if raw in (b"\r\n", b"\n"):
            break
        name, _, value = raw.decode("latin-1").rstrip("\r\n").partition(":")
        headers.append((name.strip(), value.strip()))
    msg = Message(start, headers)
    status = 0 if request else int(start.split(" ", 2)[1])
    te = (msg.get("transfer-encoding") or "").lower()
    if not request and (method == "HEAD" or status in (204, 304) or 100 <= status < 200):
        return msg
    if "chunked" in te:
        parts = []
        while True:
            size_line = rfile.readline(65537)
            parts.append(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = rfile.readline(65537)
                    parts.append(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                break
            parts.append(_exact(rfile, size + 2))
        msg.body = b"".join(parts)
    elif msg.get("content-length") is not None:
        msg.body = _exact(rfile, int(msg.get("content-length") or 0))
    elif not request:
        msg.body = rfile.read()
    return msg


# --------------------------------------------------------------------------- certificates


def make_certs(directory: Path, identities: dict[str, str] | None = None) -> None:
    """A throwaway mesh CA and one workload certificate per identity (SPIFFE URI SAN, empty
    subject, like istiod's), P-256, valid for a day. ``identities``: name -> SPIFFE URI
    (default: this mesh's pods and ingress; record_mesh.py passes its own)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    if identities is None:
        identities = {name: pod.spiffe for name, pod in PODS.items()}
        identities["ingress"] = INGRESS_SPIFFE
    for name, uri in identities.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                              data_encipherment=False, key_agreement=False, key_cert_sign=False,
                              crl_sign=False, encipher_only=False, decipher_only=False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}-key.pem").write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )


def tls_contexts(certs: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for mutual TLS with the mesh CA."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    server.load_cert_chain(certs / f"{name}.pem", certs / f"{name}-key.pem")
    server.load_verify_locations(certs / "ca.pem")
    server.verify_mode = ssl.CERT_REQUIRED
    server.set_alpn_protocols(["istio-http/1.1", "istio", "http/1.1"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.minimum_version = ssl.TLSVersion.TLSv1_2
    client.check_hostname = False  # SPIFFE identities are URIs, not host names
    client.load_cert_chain(certs / f"{name}.pem", certs / f"{name}-key.pem")
    client.load_verify_locations(certs / "ca.pem")
    return server, client


def peer_uri(tls: ssl.SSLSocket) -> str:
    cert = tls.getpeercert() or {}
    return next((v for k, v in cert.get("subjectAltName", ()) if k == "URI"), "")


# --------------------------------------------------------------------------- the sidecar


def original_dst(sock: socket.socket) -> tuple[str, int]:
    raw = sock.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST: a sockaddr_in
    port = struct.unpack("!H", raw[2:4])[0]
    return socket.inet_ntoa(raw[4:8]), port


def send_all(sock: socket.socket, data: bytes) -> None:
    """sendall for a non-blocking (TLS) socket."""
    view = memoryview(data)
    while view:
        try:
            n = sock.send(view)
        except (BlockingIOError, ssl.SSLWantWriteError):
            select.select([], [sock], [], 10)
            continue
        except ssl.SSLWantReadError:
            select.select([sock], [], [], 10)
            continue
        view = view[n:]


def relay(a: socket.socket, b: socket.socket, idle: float = 600) -> None:
    """Copy bytes both ways in one thread (an SSL object must not be read and written from
    two threads at once) until either side closes."""
    for s in (a, b):
        s.setblocking(False)
    while True:
        ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select([a, b], [], [], idle)
            if not ready:
                return
        for s in ready:
            other = b if s is a else a
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return
            if not data:
                return
            send_all(other, data)


class Sidecar:
    """istio-proxy's listeners, emulated."""

    def __init__(self, pod: Pod, certs: Path) -> None:
        self.pod = pod
        self.server_ctx, self.client_ctx = tls_contexts(certs, pod.name)
        self.ids = SafeIds(int.from_bytes(pod.name.encode()[:6], "big"))
        self.counts: dict[str, int] = {"inbound": 0, "outbound": 0}
        self.count_lock = threading.Lock()
        self.node_id = f"sidecar~{pod.ip}~{pod.workload}.default~default.svc.cluster.local"
        meta = json.dumps({"NAME": pod.workload, "NAMESPACE": "default", "WORKLOAD_NAME": f"{pod.name}-v1",
                           "APP_CONTAINERS": pod.name, "CLUSTER_ID": "Kubernetes"}).encode()
        self.peer_metadata = base64.b64encode(meta).decode()
        self.listeners = {
            port: socket.create_server(("0.0.0.0", port), backlog=128)
            for port in (OUTBOUND_PORT, INBOUND_PORT, HEALTH_PORT, METRICS_PORT)
        }

    def start(self) -> None:
        handlers: dict[int, Callable[[socket.socket], None]] = {
            OUTBOUND_PORT: self.outbound,
            INBOUND_PORT: self.inbound,
            HEALTH_PORT: self.admin,
            METRICS_PORT: self.admin,
        }
        for port, sock in self.listeners.items():
            threading.Thread(target=self.accept_loop, args=(sock, handlers[port]), daemon=True).start()

    def accept_loop(self, sock: socket.socket, handler: Callable[[socket.socket], None]) -> None:
        while True:
            conn, _ = sock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.guarded, args=(handler, conn), daemon=True).start()

    def guarded(self, handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
        try:
            handler(conn)
        except (OSError, EOFError, ValueError) as exc:
            log(f"{handler.__name__}: {type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def count(self, key: str) -> None:
        with self.count_lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    # ---- outbound: app -> 15001 -> mTLS -> peer pod

    def outbound(self, conn: socket.socket) -> None:
        conn.settimeout(600)
        ip, port = original_dst(conn)
        svc = SERVICES.get((ip, port))
        if svc is None:
            log(f"outbound: no route for {ip}:{port}")
            return
        target = PODS[svc]
        up_raw = socket.create_connection((target.ip, port), timeout=10)
        up_raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sni = f"outbound_.{port}_._.{svc}.default.svc.cluster.local"
        with self.client_ctx.wrap_socket(up_raw, server_hostname=sni) as up:
            up.settimeout(600)
            if port == GRPC_PORT:
                relay(conn, up)
            else:
                self.proxy_http(conn, up, self.outbound_request, self.outbound_response)

    def outbound_request(self, req: Message, _peer: socket.socket) -> Message:
        hdrs = [(n.lower(), v) for n, v in req.headers if n.lower() not in HOP_BY_HOP]
        d = dict(hdrs)
        rid = d.get("x-request-id") or self.ids.request_id()
        if valid_b3(d):  # a child of the app's span
            trace, parent, sampled = d["x-b3-traceid"], d["x-b3-spanid"], d.get("x-b3-sampled", "1")
        else:  # no usable context: Envoy starts a new trace
            trace, parent, sampled = self.ids.trace_id(), None, "1"
        out = [(n, v) for n, v in hdrs if n not in ENVOY_OWNED]
        out += [("x-forwarded-proto", "http"), ("x-request-id", rid), ("x-envoy-attempt-count", "1"),
                ("x-envoy-peer-metadata-id", self.node_id), ("x-envoy-peer-metadata", self.peer_metadata),
                ("x-b3-traceid", trace), ("x-b3-spanid", self.ids.span_id())]
        if parent:
            out.append(("x-b3-parentspanid", parent))
        out.append(("x-b3-sampled", sampled))
        self.count("outbound")
        return Message(req.start, out, req.body)

    def outbound_response(self, resp: Message, elapsed_ms: int) -> Message:
        hdrs = [(n.lower(), v) for n, v in resp.headers
                if n.lower() not in (*HOP_BY_HOP, "x-envoy-peer-metadata", "x-envoy-peer-metadata-id",
                                     "x-envoy-upstream-service-time", "server")]
        hdrs += [("x-envoy-upstream-service-time", str(elapsed_ms)), ("server", "envoy")]
        return Message(resp.start, hdrs, resp.body)

    # ---- inbound: peer -> podIP:port (redirected to 15006) -> 127.0.0.6 -> app

    def inbound(self, conn: socket.socket) -> None:
        conn.settimeout(600)
        _, port = original_dst(conn)
        with self.server_ctx.wrap_socket(conn, server_side=True) as down:
            app = socket.create_connection((self.pod.ip, port), timeout=10, source_address=(INBOUND_SRC, 0))
            app.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with app:
                app.settimeout(600)
                if port == GRPC_PORT:
                    relay(down, app)
                else:
                    self.proxy_http(down, app, self.inbound_request, self.inbound_response)

    def inbound_request(self, req: Message, peer: socket.socket) -> Message:
        hdrs = [(n.lower(), v) for n, v in req.headers if n.lower() not in HOP_BY_HOP]
        d = dict(hdrs)
        rid = d.get("x-request-id") or self.ids.request_id()
        if valid_b3(d):  # a server span, child of the caller's client span
            trace, parent, sampled = d["x-b3-traceid"], d["x-b3-spanid"], d.get("x-b3-sampled", "1")
        else:
            trace, parent, sampled = self.ids.trace_id(), None, "1"
        der = peer.getpeercert(binary_form=True) if isinstance(peer, ssl.SSLSocket) else b""
        uri = peer_uri(peer) if isinstance(peer, ssl.SSLSocket) else ""
        xfcc = (f"By={self.pod.spiffe};Hash={hashlib.sha256(der or b'').hexdigest()};"
                f'Subject="";URI={uri}')
        out = [(n, v) for n, v in hdrs if n not in ENVOY_OWNED]
        out += [("x-forwarded-proto", "http"), ("x-request-id", rid), ("x-envoy-attempt-count", "1"),
                ("x-forwarded-client-cert", xfcc),
                ("x-b3-traceid", trace), ("x-b3-spanid", self.ids.span_id())]
        if parent:
            out.append(("x-b3-parentspanid", parent))
        out.append(("x-b3-sampled", sampled))
        self.count("inbound")
        return Message(req.start, out, req.body)

    def inbound_response(self, resp: Message, elapsed_ms: int) -> Message:
        hdrs = [(n.lower(), v) for n, v in resp.headers if n.lower() not in (*HOP_BY_HOP, "server")]
        hdrs += [("x-envoy-upstream-service-time", str(elapsed_ms)),
                 ("x-envoy-peer-metadata-id", self.node_id), ("x-envoy-peer-metadata", self.peer_metadata),
                 ("server", "istio-envoy")]
        return Message(resp.start, hdrs, resp.body)

    # ---- the HTTP/1.1 loop shared by both directions

    def proxy_http(
        self,
        down: socket.socket,
        up: socket.socket,
        on_request: Callable[[Message, socket.socket], Message],
        on_response: Callable[[Message, int], Message],
    ) -> None:
        down_r = down.makefile("rb")
        up_r = up.makefile("rb")
        while True:
            req = read_message(down_r, request=True)
            if req is None:
                return
            method = req.start.split(" ", 1)[0]
            t0 = time.monotonic()
            up.sendall(on_request(req, down).wire())  # head and body in one write, like Envoy
            resp = read_message(up_r, request=False, method=method)
            if resp is None:
                return
            down.sendall(on_response(resp, int((time.monotonic() - t0) * 1000)).wire())

    # ---- 15021 and 15090

    def admin(self, conn: socket.socket) -> None:
        conn.settimeout(60)
        rfile = conn.makefile("rb")
        while True:
            req = read_message(rfile, request=True)
            if req is None:
                return
            path = req.start.split(" ")[1] if " " in req.start else "/"
            close = (req.get("connection") or "").lower() == "close"
            if path == "/healthz/ready":
                status, ctype, body = "200 OK", "text/plain", b""
            elif path == "/stats/prometheus":
                status, ctype, body = "200 OK", "text/plain; version=0.0.4", self.metrics()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            hdrs = [("content-type", ctype), ("content-length", str(len(body))),
                    ("date", email.utils.formatdate(usegmt=True)), ("server", "envoy")]
            if close:
                hdrs.append(("connection", "close"))
            conn.sendall(Message(f"HTTP/1.1 {status}", hdrs, body).wire())
            if close:
                return

    def metrics(self) -> bytes:
        with self.count_lock:
            inbound, outbound = self.counts["inbound"], self.counts["outbound"]
        w = self.pod.workload.rsplit("-", 2)[0]
        lines = [
            "# TYPE istio_requests_total counter",
            f'istio_requests_total{{reporter="destination",destination_workload="{w}",'
            f'destination_canonical_service="{self.pod.name}",response_code="200",'
            f'connection_security_policy="mutual_tls"}} {inbound}',
            f'istio_requests_total{{reporter="source",source_workload="{w}",'
            f'source_canonical_service="{self.pod.name}",response_code="200",'
            f'connection_security_policy="unknown"}} {outbound}',
            "# TYPE envoy_server_live gauge",
            "envoy_server_live{} 1",
            "# TYPE envoy_cluster_upstream_cx_active gauge",
        ]
        for svc in ("details", "reviews", "ratings"):
            lines.append(f'envoy_cluster_upstream_cx_active{{cluster_name="outbound|9080||{svc}.default.'
                         f'svc.cluster.local"}} {1 if svc != self.pod.name else 0}')
        for i, le in enumerate(("0.5", "1", "5", "10", "25", "50", "100", "+Inf")):
            lines.append(f'istio_request_duration_milliseconds_bucket{{reporter="destination",'
                         f'destination_workload="{w}",le="{le}"}} {min(inbound, inbound * (i + 1) // 4)}')
        return ("\n".join(lines) + "\n").encode()


def run_sidecar(pod: Pod, certs: Path) -> None:
    import encodings.idna  # noqa: F401  (SNI encoding: import before dropping root)

    sidecar = Sidecar(pod, certs)  # binds and reads the certificates as root
    os.setgroups([])
    os.setgid(SIDECAR_UID)
    os.setuid(SIDECAR_UID)  # from here on every socket is istio-proxy's (iptables owner match)
    sidecar.start()
    emit({"ready": "sidecar", "uid": os.getuid()})
    wait_for_eof()


# --------------------------------------------------------------------------- the apps


class AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 600  # keep-alive connections stay open through the whole run
    app: App

    def version_string(self) -> str:
        return self.app.server_header

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        inbound = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, ctype, body = self.app.handle(self.path, inbound)
        except Exception as exc:  # the app answers 500 like any web app; the run goes on
            log(f"{self.path}: {type(exc).__name__}: {exc}")
            status, ctype, body = 500, "text/plain", b"internal error\n"
        head = (f"HTTP/1.1 {status} {self.responses[status][0]}\r\nServer: {self.version_string()}\r\n"
                f"Date: {self.date_time_string()}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.wfile.write(head.encode() + body)  # head and body in one segment


class App:
    server_header = "app/1.0"

    def __init__(self, pod: Pod) -> None:
        self.pod = pod

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def session(self, service: str) -> Any:
        import requests

        s = requests.Session()
        s.trust_env = False  # never a proxy from the environment
        s.headers.clear()
        s.headers.update({"User-Agent": f"{self.pod.name}/1.0 python-requests", "Accept": "application/json",
                          "Connection": "keep-alive"})
        return s

    def get(self, session: Any, service: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        url = f"http://{CLUSTER_IP[service]}:{HTTP_PORT}{path}"
        r = session.get(url, headers={"Host": f"{service}:{HTTP_PORT}", **headers}, timeout=10)
        return r.status_code, r.content


class ProductPage(App):
    server_header = "gunicorn"

    def __init__(self, pod: Pod) -> None:
        super().__init__(pod)
        self.ids = SafeIds(9080)
        self.sessions = {svc: self.session(svc) for svc in ("details", "reviews")}

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


class Reviews(App):
    server_header = "reviews/1.0"

    def __init__(self, pod: Pod) -> None:
        import grpc

        super().__init__(pod)
        self.grpc = grpc
        self.http = self.session("ratings")
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


class Details(App):
    server_header = "WEBrick/1.7.0 (Ruby/3.1.2)"

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/details/(\d+)", urlsplit(path).path)
        if not m:
            return 404, "application/json", b'{"error":"not found"}'
        doc = {"id": int(m.group(1)), "author": "William Shakespeare", "year": 1595, "type": "paperback",
               "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890",
               "ISBN-13": "123-1234567890"}
        return 200, "application/json", json.dumps(doc).encode()


class Ratings(App):
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


APPS: dict[str, type[App]] = {"productpage": ProductPage, "reviews": Reviews, "details": Details,
                              "ratings": Ratings}


def run_app(pod: Pod) -> None:
    app = APPS[pod.name](pod)
    handler = type("Handler", (AppHandler,), {"app": app})
    server = ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit({"ready": "app"})
    wait_for_eof()


# --------------------------------------------------------------------------- ingress and node


class IngressConn:
    """One of the gateway's keep-alive mTLS connections to productpage."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.sock: ssl.SSLSocket | None = None
        self.rfile: BinaryIO | None = None

    def request(self, msg: Message) -> Message:
        for attempt in (1, 2):
            if self.sock is None:
                pod = PODS["productpage"]
                raw = socket.create_connection((pod.ip, HTTP_PORT), timeout=15)
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sni = f"outbound_.{HTTP_PORT}_._.productpage.default.svc.cluster.local"
                self.sock = self.ctx.wrap_socket(raw, server_hostname=sni)
                self.rfile = self.sock.makefile("rb")
            try:
                self.sock.sendall(msg.wire())
                assert self.rfile is not None
                resp = read_message(self.rfile, request=False)
                if resp is None:
                    raise EOFError("closed")
                return resp
            except (OSError, EOFError) as exc:
                log(f"ingress connection lost ({exc}); attempt {attempt}")
                self.sock.close()
                self.sock = None
        raise RuntimeError("ingress: productpage does not answer")


def run_ingress(certs: Path) -> None:
    _, ctx = tls_contexts(certs, "ingress")
    conns = {"A": IngressConn(ctx), "B": IngressConn(ctx)}
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
            if len(step) == 1:
                one(*step[0], out, None)
            else:
                barrier = threading.Barrier(len(step))
                threads = [threading.Thread(target=one, args=(c, p, out, barrier)) for c, p in step]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(30)
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


def run_noise(pods: list[Pod] | None = None) -> None:
    """kubelet readiness probes on 15021 (a connection each) and Prometheus scrapes on 15090
    (one keep-alive connection per pod), from the node's bridge address. ``pods``: whose
    sidecars (default: this mesh's)."""
    import http.client

    targets = list(PODS.values()) if pods is None else pods

    stop = threading.Event()
    sent = {"probes": 0, "scrapes": 0}

    def kubelet() -> None:
        while not stop.is_set():
            for pod in targets:
                conn = http.client.HTTPConnection(pod.ip, HEALTH_PORT, timeout=5)
                try:
                    conn.request("GET", "/healthz/ready", headers={
                        "Host": f"{pod.ip}:{HEALTH_PORT}", "User-Agent": "kube-probe/1.29",
                        "Accept": "*/*", "Connection": "close"})
                    conn.getresponse().read()
                    sent["probes"] += 1
                except OSError as exc:
                    log(f"probe {pod.name}: {exc}")
                finally:
                    conn.close()
            stop.wait(1.0)

    def prometheus() -> None:
        conns = {p.name: http.client.HTTPConnection(p.ip, METRICS_PORT, timeout=5) for p in targets}
        stop.wait(0.4)
        while not stop.is_set():
            for pod in targets:
                try:
                    conns[pod.name].request("GET", "/stats/prometheus", headers={
                        "Host": f"{pod.ip}:{METRICS_PORT}", "User-Agent": "Prometheus/2.51.1",
                        "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;"
                                  "version=0.0.4;q=0.4,*/*;q=0.1",
                        "X-Prometheus-Scrape-Timeout-Seconds": "10"})
                    conns[pod.name].getresponse().read()
                    sent["scrapes"] += 1
                except (OSError, http.client.HTTPException) as exc:
                    log(f"scrape {pod.name}: {exc}")
                    conns[pod.name].close()
            stop.wait(2.5)
        for c in conns.values():
            c.close()

    threads = [threading.Thread(target=kubelet), threading.Thread(target=prometheus)]
    emit({"ready": "noise"})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "start":
            for t in threads:
                t.start()
            emit({"started": "noise"})
        elif cmd == "stop":
            stop.set()
            for t in threads:
                t.join(10)
            emit({"done": "noise", **sent})
    os._exit(0)


def wait_for_eof() -> None:
    """Actors live until the orchestrator closes their stdin."""
    for _ in sys.stdin:
        pass
    os._exit(0)


# --------------------------------------------------------------------------- orchestration


class Actor:
    """A process inside one of the namespaces, talking JSON lines on stdin/stdout."""

    def __init__(self, name: str, netns: str, args: list[str], script: Path | None = None) -> None:
        self.name = name
        # ``script``: the recorder whose ``--actor`` mode runs this actor (record_mesh.py reuses
        # this class for its own actors)
        cmd = ["ip", "netns", "exec", netns, sys.executable, "-u", str(script or Path(__file__).resolve()),
               "--actor", *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                log(f"{self.name}: {line.rstrip()}")
                continue
            if "event" in obj:
                self.events.append(obj)
            else:
                self.replies.put(obj)

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def wait(self, key: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self.replies.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: no {key!r} within {timeout} s") from None
                continue
            if key in obj:
                return obj

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


@dataclass(frozen=True)
class Network:
    """The namespaces of one emulated node: its pods (with Istio's iptables rules), an ingress
    gateway (without), and the node namespace whose bridge joins them and routes between /24s."""

    pods: tuple[Pod, ...]
    ingress: Pod
    node_ns: str = NODE_NS
    bridge: str = BRIDGE
    node_addrs: tuple[str, ...] = NODE_ADDRS

    def all_netns(self) -> list[str]:
        return [self.node_ns, self.ingress.netns, *(p.netns for p in self.pods)]

    def gateway(self, ip: str) -> str:
        """The node's bridge address in ``ip``'s /24."""
        prefix = ip.rsplit(".", 1)[0] + "."
        return next(a.split("/")[0] for a in self.node_addrs if a.startswith(prefix))


BOOKINFO = Network(tuple(PODS.values()), INGRESS)


def all_netns(net: Network = BOOKINFO) -> list[str]:
    return net.all_netns()


def delete_namespaces(net: Network = BOOKINFO) -> None:
    for ns in all_netns(net):
        run("ip", "netns", "del", ns, check=False)


ISTIO_IPTABLES = f"""*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport {METRICS_PORT} -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport {HEALTH_PORT} -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {INBOUND_PORT}
-A ISTIO_OUTPUT -s {INBOUND_SRC}/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner {SIDECAR_UID} -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {SIDECAR_UID} -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner {SIDECAR_UID} -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --gid-owner {SIDECAR_UID} -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner {SIDECAR_UID} -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner {SIDECAR_UID} -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {OUTBOUND_PORT}
COMMIT
"""


def in_ns(ns: str, *cmd: str) -> None:
    run("ip", "netns", "exec", ns, *cmd)


def build_network(net: Network = BOOKINFO) -> None:
    for ns in all_netns(net):
        run("ip", "netns", "add", ns)
        # no IPv6 (router solicitations, DAD) and no redirects: only the traffic made here
        in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        in_ns(ns, "ip", "link", "set", "lo", "up")
    node = net.node_ns
    in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
          "net.ipv4.conf.default.send_redirects=0")
    run("ip", "-n", node, "link", "add", net.bridge, "type", "bridge")
    for addr in net.node_addrs:
        run("ip", "-n", node, "addr", "add", addr, "dev", net.bridge)
    run("ip", "-n", node, "link", "set", net.bridge, "up")
    for pod in (*net.pods, net.ingress):
        run("ip", "-n", node, "link", "add", pod.veth, "type", "veth", "peer", "name", "eth0",
            "netns", pod.netns)
        run("ip", "-n", node, "link", "set", pod.veth, "master", net.bridge, "up")
        run("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/24", "dev", "eth0")
        run("ip", "-n", pod.netns, "link", "set", "eth0", "up")
        run("ip", "-n", pod.netns, "route", "add", "default", "via", net.gateway(pod.ip))
        if pod is not net.ingress:
            subprocess.run(["ip", "netns", "exec", pod.netns, "iptables-restore"], input=ISTIO_IPTABLES,
                           text=True, check=True, capture_output=True)


@contextlib.contextmanager
def sniff(targets: dict[str, Path]) -> Iterator[None]:
    """``tcpdump -i any -U -w FILE`` in each namespace at once, as ``kubectl sniff -p`` runs it;
    stopped with SIGINT. (record_http1's waits: the file appears before the socket captures;
    the TPACKET_V3 ring hands blocks over after its 1 s timeout.)"""
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for ns, path in targets.items():
            path.unlink(missing_ok=True)
            procs[ns] = subprocess.Popen(
                ["ip", "netns", "exec", ns, "tcpdump", "-i", "any", "-U", "-Z", "root", "-w", str(path)],
                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        for ns, path in targets.items():
            while not path.exists():
                if procs[ns].poll() is not None or time.monotonic() > deadline:
                    err = procs[ns].stderr.read() if procs[ns].stderr else ""
                    raise RuntimeError(f"tcpdump in {ns} did not start: {err}")
                time.sleep(0.05)
        time.sleep(1.0)
        yield
        time.sleep(2.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for ns, proc in procs.items():
            try:
                _, err = proc.communicate(timeout=10)
                log(f"tcpdump {ns}: " + " / ".join(line for line in err.splitlines() if line))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def record(workdir: Path) -> dict[str, Any]:
    """Build the mesh, warm it up, capture the scenario; return what the actors said."""
    certs = workdir / "certs"
    certs.mkdir()
    make_certs(certs)
    actors: list[Actor] = []
    try:
        build_network()
        for pod in PODS.values():
            actors.append(Actor(f"{pod.name}-app", pod.netns, ["app", "--pod", pod.name]))
            actors.append(Actor(f"{pod.name}-sidecar", pod.netns,
                                ["sidecar", "--pod", pod.name, "--certs", str(certs)]))
        ingress = Actor("ingress", INGRESS.netns, ["ingress", "--certs", str(certs)])
        noise = Actor("node", NODE_NS, ["noise"])
        actors += [ingress, noise]
        for a in actors:
            reply = a.wait("ready", 30)
            if reply.get("ready") == "sidecar" and reply.get("uid") != SIDECAR_UID:
                raise RuntimeError(f"{a.name} runs as uid {reply.get('uid')}")
        log("mesh up; warming up")
        ingress.send("warm")
        warm = ingress.wait("done", 120)
        if warm["failed"]:
            raise RuntimeError(f"warm-up: {warm['failed']} requests failed")
        time.sleep(0.5)
        with sniff({PODS[n].netns: workdir / f"{n}.pcap" for n in CAPTURED}):
            noise.send("start")
            noise.wait("started", 10)
            time.sleep(0.6)
            ingress.send("run")
            scenario = ingress.wait("done", 180)
            time.sleep(0.8)
            noise.send("stop")
            noise_done = noise.wait("done", 30)
        if scenario["failed"]:
            raise RuntimeError(f"scenario: {scenario['failed']} requests failed")
        log(f"scenario: {len(scenario['requests'])} requests; node: {noise_done}")
        by_name = {a.name: a for a in actors}
        return {
            "scenario": scenario["requests"],
            "served": {n: list(by_name[f"{n}-app"].events) for n in CAPTURED},
            "noise": noise_done,
        }
    finally:
        for a in reversed(actors):
            a.stop()
        delete_namespaces()


# --------------------------------------------------------------------------- reading the captures


def frame_table(path: Path, args: list[str]) -> dict[int, dict[str, Any]]:
    fields = ["frame.number", "sll.ifindex", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
              "tcp.stream", "frame.protocols", "tcp.flags.syn", "tcp.len"]
    cmd = ["tshark", "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", *args, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    table: dict[int, dict[str, Any]] = {}
    for line in out.splitlines():
        row = dict(zip(fields, line.split("\t"), strict=False))
        table[int(row["frame.number"])] = row
    return table


def endpoints(row: dict[str, Any]) -> tuple[str, int, str, int]:
    return row["ip.src"], int(row["tcp.srcport"] or 0), row["ip.dst"], int(row["tcp.dstport"] or 0)


def leg_role(pod: Pod, row: dict[str, Any]) -> str:
    src, sport, dst, dport = endpoints(row)
    lo = row["sll.ifindex"] == "1"
    if lo and INBOUND_SRC in (src, dst):
        return "inbound (sidecar -> app, from 127.0.0.6, plaintext)"
    if lo and OUTBOUND_PORT in (sport, dport) and "127.0.0.1" in (src, dst):
        return "outbound request half (app -> 127.0.0.1:15001, plaintext)"
    if lo and (src.startswith("10.96.") or dst.startswith("10.96.")):
        return "outbound reply half (ClusterIP -> app, plaintext)"
    if HEALTH_PORT in (sport, dport):
        return "kubelet probe (node -> sidecar 15021)"
    if METRICS_PORT in (sport, dport):
        return "prometheus scrape (node -> sidecar 15090)"
    if (dst == pod.ip and dport in pod.ports) or (src == pod.ip and sport in pod.ports):
        return "inbound mTLS (peer -> pod, eth0)"
    return "outbound mTLS (sidecar -> peer pod, eth0)"


def legs(pod: Pod, table: dict[int, dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One entry per tshark TCP conversation, with its role and whether tshark sees TLS in it."""
    streams: dict[str, dict[str, Any]] = {}
    for number, row in sorted(table.items()):
        if not row.get("tcp.stream"):
            continue
        s = streams.get(row["tcp.stream"])
        if s is None:
            src, sport, dst, dport = endpoints(row)
            s = streams[row["tcp.stream"]] = {
                "tcp_stream": int(row["tcp.stream"]), "first_frame": number,
                "interface": "lo" if row["sll.ifindex"] == "1" else "eth0",
                "from": f"{src}:{sport}", "to": f"{dst}:{dport}", "role": leg_role(pod, row),
                "syn": False, "frames": 0, "tls_frames": 0, "http_frames": 0}
        s["frames"] += 1
        s["syn"] = s["syn"] or row.get("tcp.flags.syn") in ("1", "True")
        protos = row.get("frame.protocols", "").split(":")
        s["tls_frames"] += "tls" in protos
        s["http_frames"] += "http" in protos or "http2" in protos
    out = sorted(streams.values(), key=lambda s: s["tcp_stream"])
    counts: dict[str, int] = {}
    for s in out:
        counts[s["role"]] = counts.get(s["role"], 0) + 1
    return out, counts


def nat_pairs(pod: Pod, table: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """The NAT-split outbound connections: the app-side endpoint seen in a request half (to
    127.0.0.1:15001) and in a reply half (from a ClusterIP)."""
    req_half: dict[int, str] = {}
    reply_half: dict[int, tuple[str, str]] = {}
    for row in table.values():
        if not row.get("tcp.stream"):
            continue
        src, sport, dst, dport = endpoints(row)
        if src == pod.ip and dst == "127.0.0.1" and dport == OUTBOUND_PORT:
            req_half[sport] = row["tcp.stream"]
        elif dst == pod.ip and src.startswith("10.96."):
            reply_half[dport] = (row["tcp.stream"], f"{src}:{sport}")
    return [{"app_endpoint": f"{pod.ip}:{p}", "request_stream": int(req_half[p]),
             "reply_stream": int(reply_half[p][0]), "cluster_ip": reply_half[p][1]}
            for p in sorted(req_half) if p in reply_half]


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


def http_requests(path: Path, args: list[str], table: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    summary = tshark_summary(path, args, SHOWN_HEADERS)
    out = []
    for m in summary["http_messages"]:
        row = table[m["frame"]]
        src, sport, dst, dport = endpoints(row)
        out.append({**m, "protocol": "http/1.1", "src": f"{src}:{sport}", "dst": f"{dst}:{dport}",
                    "tcp_stream": int(row["tcp.stream"])})
    return out


def expected_for(name: str, path: Path, args: list[str], table: dict[int, dict[str, Any]],
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
                    return m["protocol"] == "grpc"
                return m["protocol"] == "http/1.1" and m["path"] == call["path"] \
                    and m["headers"].get("host", "").startswith(host)

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
            key = ("productpage", ev.get("u"), call["target"]) if name == "productpage" else \
                ("reviews", ev["path"].rsplit("/", 1)[-1], call["target"])
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


def tshark_args_for(name: str, table: dict[int, dict[str, Any]]) -> list[str]:
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


def manifest_entry(name: str, args: list[str], table: dict[int, dict[str, Any]],
                   expected: dict[str, Any]) -> dict[str, Any]:
    path = PODS_DIR / f"{name}.pcap"
    summary = tshark_summary(path, args, SHOWN_HEADERS)
    http1 = [{"kind": m["kind"], "protocol": "http/1.1", **m, "stream": None}
             for m in summary["http_messages"]]
    messages = list(http1)
    tshark: dict[str, Any] = {"args": args}
    if name == "reviews":
        h2 = tshark_h2_summary(path, args, SHOWN_HEADERS)
        messages += h2["http_messages"]
        tshark.update({"unknown_headers": h2["unknown_headers"],
                       "requests": sum(m["kind"] == "request" for m in http1),
                       "responses": sum(m["kind"] == "response" for m in http1)})
    messages.sort(key=lambda m: int(m["frame"]))
    pairs = expected["nat_split"]
    tshark["tcp_connections"] = summary["tcp_connections"]
    tshark["note"] = (
        f"tshark counts each of the {len(pairs)} NAT-split outbound connections twice (request half to "
        "127.0.0.1:15001, reply half from the ClusterIP) and pairs no outbound request with its "
        "response; paired by the app-side endpoint there are that many fewer connections"
        + ("; the gRPC channel is decoded as http2 by its app-side port (both halves); "
           "http.request.method/http.response.code count only the HTTP/1.1 messages"
           if name == "reviews" else ""))
    non_tcp: dict[str, int] = {}
    for row in table.values():
        if not row.get("tcp.stream"):
            proto = row.get("frame.protocols", "").split(":")[-1] or "unknown"
            non_tcp[proto] = non_tcp.get(proto, 0) + 1
    entry: dict[str, Any] = {
        "file": f"pods/{name}.pcap",
        "made_by": "record_pods.py",
        "tests": TESTS[name],
        **describe_format(path),
        "frames": summary["frames"],
        "tcp_connections": summary["tcp_connections"] - len(pairs),
        "http_messages": messages,
        "anomalies": [],
        "error": None,
        "tshark": tshark,
        "first_ts_ns": summary["first_ts_ns"],
        "last_ts_ns": summary["last_ts_ns"],
        "scenario": scenario_lines(),
        "expected": "pods/EXPECTED.json",
        "note": (f"pod {PODS[name].ip}, sidecar inbound from 127.0.0.6; legs: "
                 + ", ".join(f"{n} {r}" for r, n in expected["leg_counts"].items())),
    }
    if non_tcp:
        entry["non_tcp"] = non_tcp
    return entry


def check_capture(path: Path, table: dict[int, dict[str, Any]], leg_list: list[dict[str, Any]]) -> None:
    name = path.stem
    size = path.stat().st_size
    if size >= 500_000:
        raise RuntimeError(f"{name}.pcap is {size} bytes (limit 500 KB)")
    eth0_app = [s for s in leg_list if "mTLS" in s["role"]]
    if not eth0_app or any(s["http_frames"] for s in eth0_app):
        raise RuntimeError(f"{name}: the eth0 sidecar legs must be TLS, not HTTP: {eth0_app}")
    if not any(s["tls_frames"] for s in eth0_app):
        log(f"{name}: tshark recognises no TLS on eth0 (heuristics)")
    log(f"{name}.pcap: {size} bytes, {len(table)} frames, {len(leg_list)} tshark conversations")


# --------------------------------------------------------------------------- main


def actor_main(argv: list[str]) -> int:
    global ACTOR
    ap = argparse.ArgumentParser(prog="record_pods.py --actor")
    ap.add_argument("role", choices=("app", "sidecar", "ingress", "noise"))
    ap.add_argument("--pod", choices=sorted(PODS))
    ap.add_argument("--certs", type=Path)
    ns = ap.parse_args(argv)
    ACTOR = f"{ns.pod}-{ns.role}" if ns.pod else ns.role
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator ends actors by closing stdin
    socket.setdefaulttimeout(30)
    if ns.role == "app":
        run_app(PODS[ns.pod])
    elif ns.role == "sidecar":
        run_sidecar(PODS[ns.pod], ns.certs)
    elif ns.role == "ingress":
        run_ingress(ns.certs)
    else:
        run_noise()
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--actor":
        return actor_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--no-manifest", action="store_true", help="do not touch MANIFEST.json")
    ap.add_argument("--manifest-only", action="store_true",
                    help="do not record: rewrite the MANIFEST.json entries from the files and EXPECTED.json")
    ns = ap.parse_args()
    if ns.manifest_only:
        entries = []
        for exp in json.loads(EXPECTED.read_text())["captures"]:
            path, args = CAPTURES / exp["file"], exp["tshark_args"]
            entries.append(manifest_entry(path.stem, args, frame_table(path, args), exp))
        update_manifest(entries, owner="record_pods.py")
        return 0
    if os.geteuid() != 0:
        print("record_pods.py needs root (network namespaces, iptables, tcpdump)", file=sys.stderr)
        return 2
    for tool in ("ip", "iptables-restore", "tcpdump", "tshark"):
        if shutil.which(tool) is None:
            print(f"record_pods.py needs {tool}", file=sys.stderr)
            return 2
    delete_namespaces()  # left over from an interrupted run
    workdir = Path(tempfile.mkdtemp(prefix="tracewire-pods-"))
    os.chmod(workdir, 0o755)
    try:
        run_info = record(workdir)
        # judged on the new files before they replace the old ones: a failed run keeps those
        scenario_ids = {r["x-request-id"] for r in run_info["scenario"]}
        captures: list[dict[str, Any]] = []
        tables: dict[str, tuple[list[str], dict[int, dict[str, Any]]]] = {}
        for name in CAPTURED:
            path = workdir / f"{name}.pcap"
            table = frame_table(path, [])
            args = tshark_args_for(name, table)
            if args:
                table = frame_table(path, args)
            exp = expected_for(name, path, args, table, run_info["served"][name], scenario_ids)
            check_capture(path, table, exp["legs"])
            captures.append(exp)
            tables[name] = (args, table)
        PODS_DIR.mkdir(exist_ok=True)
        for name in CAPTURED:
            shutil.copyfile(workdir / f"{name}.pcap", PODS_DIR / f"{name}.pcap")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    entries = [manifest_entry(name, *tables[name], exp) for name, exp in zip(CAPTURED, captures, strict=True)]
    doc = {
        "made_by": "record_pods.py",
        "about": (
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
        ),
        "scenario": scenario_lines(),
        "captures": captures,
    }
    EXPECTED.write_text(json.dumps(doc, indent=1) + "\n")
    for c in captures:
        kinds = [f"{f['kind']} {f['target']} {f['inbound_frame']}->{f['outbound_frame']}"
                 for f in c["findings"]]
        log(f"{c['file']}: {len(c['findings'])} findings ({'; '.join(kinds)}), {len(c['notes'])} notes, "
            f"{len(c['correct_calls'])} correct calls, concurrent inbound pairs {c['concurrent_inbound']}")
    if not ns.no_manifest:
        update_manifest(entries, owner="record_pods.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
