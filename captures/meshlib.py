"""An emulated Kubernetes node with Istio sidecars: what record_pods.py (bookinfo, B3) and
record_mesh.py (an OpenTelemetry mesh) build the same way.

Here: the pods' network namespaces joined by a bridge in a node namespace, with
istio-iptables' nat rules; a throwaway mesh CA and SPIFFE workload certificates; HTTP/1.1
framing that keeps bodies as on the wire; the sidecar's listeners (outbound 15001 with
``SO_ORIGINAL_DST`` and mTLS to the peer pod, inbound 15006 from 127.0.0.6, health 15021,
metrics 15090), the kubelet probes and Prometheus scrapes from the node; the actors (one
process per app, sidecar, ingress and node, each in its namespace, speaking JSON lines with
the recorder); starting and warming a mesh; reading the captures' frames, legs and NAT
halves with tshark; a pod capture's MANIFEST.json entry; and the recorders' command line.

Each script keeps what is its own: pods and services, apps and their injected bugs, what its
sidecar does to the tracing headers, the scenario, the ingress's requests, and how it judges
the captures.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import hashlib
import http.client
import importlib
import json
import os
import queue
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from fixturelib import (
    CAPTURES,
    SafeIds,
    describe_format,
    log,
    run,
    set_actor,
    tshark_h2_summary,
    tshark_summary,
    update_manifest,
)

if TYPE_CHECKING:
    import requests

SIDECAR_UID = 1337  # istio-proxy's uid and gid: the iptables owner match lets it through
INBOUND_SRC = "127.0.0.6"  # the sidecar's source towards its app (Istio >= 1.10)
OUTBOUND_PORT, INBOUND_PORT, HEALTH_PORT, METRICS_PORT = 15001, 15006, 15021, 15090
GRPC_PORT = 50051
HOP_BY_HOP = ("connection", "keep-alive", "proxy-connection", "te", "upgrade")
MAX_CAPTURE_BYTES = 500_000  # a fixture is committed: a run that makes more is a broken run

Table = dict[int, dict[str, Any]]  # frame number -> tshark's fields of it (frame_table)


# --------------------------------------------------------------------------- pods and network


@dataclass(frozen=True)
class Pod:
    name: str
    ip: str
    veth: str  # the bridge end, in the node namespace
    ports: tuple[int, ...]  # the app's
    netns_prefix: str  # + name: the pod's network namespace
    service_accounts: str  # + name: its SPIFFE identity
    version: str = "v1"

    @property
    def netns(self) -> str:
        return self.netns_prefix + self.name

    @property
    def spiffe(self) -> str:
        return self.service_accounts + self.name

    @property
    def workload(self) -> str:
        return f"{self.name}-{self.version}-{hashlib.sha1(self.name.encode()).hexdigest()[:10]}-x7k2p"


@dataclass(frozen=True)
class Network:
    """The namespaces of one emulated node: its pods (with Istio's iptables rules), an ingress
    gateway (without), and the node namespace whose bridge joins them and routes between /24s."""

    pods: tuple[Pod, ...]
    ingress: Pod
    node_ns: str
    bridge: str
    node_addrs: tuple[str, ...]

    def all_netns(self) -> list[str]:
        return [self.node_ns, self.ingress.netns, *(p.netns for p in self.pods)]

    def gateway(self, ip: str) -> str:
        """The node's bridge address in ``ip``'s /24."""
        prefix = ip.rsplit(".", 1)[0] + "."
        return next(a.split("/")[0] for a in self.node_addrs if a.startswith(prefix))

    def delete(self) -> None:
        for ns in self.all_netns():
            run("ip", "netns", "del", ns, check=False)

    def build(self) -> None:
        for ns in self.all_netns():
            run("ip", "netns", "add", ns)
            # no IPv6 (router solicitations, DAD) and no redirects: only the traffic made here
            in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1")  # fmt: skip
            in_ns(ns, "ip", "link", "set", "lo", "up")
        node = self.node_ns
        in_ns(node, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
              "net.ipv4.conf.default.send_redirects=0")  # fmt: skip
        run("ip", "-n", node, "link", "add", self.bridge, "type", "bridge")
        for addr in self.node_addrs:
            run("ip", "-n", node, "addr", "add", addr, "dev", self.bridge)
        run("ip", "-n", node, "link", "set", self.bridge, "up")
        for pod in (*self.pods, self.ingress):
            run("ip", "-n", node, "link", "add", pod.veth, "type", "veth", "peer", "name", "eth0",
                "netns", pod.netns)  # fmt: skip
            run("ip", "-n", node, "link", "set", pod.veth, "master", self.bridge, "up")
            run("ip", "-n", pod.netns, "addr", "add", f"{pod.ip}/24", "dev", "eth0")
            run("ip", "-n", pod.netns, "link", "set", "eth0", "up")
            run("ip", "-n", pod.netns, "route", "add", "default", "via", self.gateway(pod.ip))
            if pod is not self.ingress:
                subprocess.run(["ip", "netns", "exec", pod.netns, "iptables-restore"], input=ISTIO_IPTABLES,
                               text=True, check=True, capture_output=True)  # fmt: skip


def in_ns(ns: str, *cmd: str) -> None:
    run("ip", "netns", "exec", ns, *cmd)


# --------------------------------------------------------------------------- actors' side

_emit_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    """One JSON line to the orchestrator (actors only)."""
    with _emit_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def wait_for_eof() -> None:
    """Actors live until the orchestrator closes their stdin."""
    for _ in sys.stdin:
        pass
    os._exit(0)


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


def make_certs(directory: Path, identities: dict[str, str]) -> None:
    """A throwaway mesh CA and one workload certificate per identity (SPIFFE URI SAN, empty
    subject, like istiod's), P-256, valid for a day. ``identities``: name -> SPIFFE URI."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cluster.local")])

    def issue(subject: x509.Name, public_key: ec.EllipticCurvePublicKey,
              extensions: list[tuple[x509.ExtensionType, bool]]) -> x509.Certificate:  # fmt: skip
        """A certificate signed by the CA: (extension, critical) in this order."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(ca_key, hashes.SHA256())

    def key_usage(ca: bool) -> x509.KeyUsage:
        """A CA signs certificates and CRLs; a workload's key also enciphers keys."""
        return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=not ca,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)  # fmt: skip

    ca_extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=True, path_length=None), True),
        (key_usage(ca=True), True),
    ]
    ca = issue(ca_name, ca_key.public_key(), ca_extensions)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name, uri in identities.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(x509.Name([]), key.public_key(), [
            (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(uri)]), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
             False),
            (key_usage(ca=False), True),
        ])  # fmt: skip
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
    """The peer certificate's SPIFFE id (its URI SAN)."""
    cert = tls.getpeercert() or {}
    sans = cert.get("subjectAltName", ())
    return next((str(v) for k, v in sans if k == "URI"), "") if isinstance(sans, tuple) else ""


# --------------------------------------------------------------------------- sockets


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


def pump(a: socket.socket, b: socket.socket, on_data: Callable[[socket.socket, bytes], bool],
         idle: float = 600) -> None:  # fmt: skip
    """Read both sockets in one thread (an SSL object must not be read and written from two
    threads at once) and hand each read to ``on_data(socket, bytes)``, until either side
    closes, ``idle`` seconds pass without a byte, or ``on_data`` returns False."""
    for s in (a, b):
        s.setblocking(False)
    while True:
        # bytes TLS has decrypted already are not seen by select
        ready: list[socket.socket] = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
        if not ready:
            ready, _, _ = select.select([a, b], [], [], idle)
            if not ready:
                return
        for s in ready:
            try:
                data = s.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except OSError:
                return
            if not data or not on_data(s, data):
                return


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways unchanged (gRPC through a sidecar that does not parse it)."""

    def copy(s: socket.socket, data: bytes) -> bool:
        send_all(b if s is a else a, data)
        return True

    pump(a, b, copy)


# --------------------------------------------------------------------------- the sidecar

OnRequest = Callable[["Message", int], "Message"]  # (request, attempt) -> what goes upstream
OnResponse = Callable[["Message", int], "Message"]  # (response, elapsed ms) -> what goes back


class Sidecar:
    """istio-proxy's listeners, emulated. A mesh's sidecar names its services and pods and
    says what crosses a connection (``outbound_stream``, ``inbound_stream``: ``relay``,
    ``proxy_http`` or its own); this class finds the original destination, makes the mTLS
    connection and answers 15021 and 15090."""

    services: ClassVar[Mapping[tuple[str, int], str]] = {}  # ClusterIP:port -> service name
    pods: ClassVar[Mapping[str, Pod]] = {}  # service name -> its pod (Envoy's EDS, no kube-proxy)
    namespace: ClassVar[str] = "default"  # in the SNI of the outbound mTLS connections
    # the clusters in 15090's envoy_cluster_upstream_cx_active: bookinfo's, and record_mesh's
    # committed captures were scraped with the same list
    metric_clusters: ClassVar[tuple[str, ...]] = ("details", "reviews", "ratings")

    def __init__(self, pod: Pod, certs: Path) -> None:
        self.pod = pod
        self.server_ctx, self.client_ctx = tls_contexts(certs, pod.name)
        self.ids = SafeIds(int.from_bytes(pod.name.encode()[:6], "big"))
        self.counts: dict[str, int] = {"inbound": 0, "outbound": 0}
        self.count_lock = threading.Lock()
        self.node_id = f"sidecar~{pod.ip}~{pod.workload}.default~default.svc.cluster.local"
        meta = json.dumps({"NAME": pod.workload, "NAMESPACE": "default", "WORKLOAD_NAME": f"{pod.name}-v1",
                           "APP_CONTAINERS": pod.name, "CLUSTER_ID": "Kubernetes"}).encode()  # fmt: skip
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

    # ---- what crosses a connection: the mesh's own

    def outbound_stream(self, app: socket.socket, peer: ssl.SSLSocket, port: int) -> None:
        raise NotImplementedError

    def inbound_stream(self, peer: ssl.SSLSocket, app: socket.socket, port: int) -> None:
        raise NotImplementedError

    # ---- outbound: app -> 15001 -> mTLS -> peer pod

    def outbound(self, conn: socket.socket) -> None:
        conn.settimeout(600)
        ip, port = original_dst(conn)
        svc = self.services.get((ip, port))
        if svc is None:
            log(f"outbound: no route for {ip}:{port}")
            return
        up_raw = socket.create_connection((self.pods[svc].ip, port), timeout=10)
        up_raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sni = f"outbound_.{port}_._.{svc}.{self.namespace}.svc.cluster.local"
        with self.client_ctx.wrap_socket(up_raw, server_hostname=sni) as up:
            up.settimeout(600)
            self.outbound_stream(conn, up, port)

    def outbound_response(self, resp: Message, elapsed_ms: int) -> Message:
        hdrs = [(n.lower(), v) for n, v in resp.headers
                if n.lower() not in (*HOP_BY_HOP, "x-envoy-peer-metadata", "x-envoy-peer-metadata-id",
                                     "x-envoy-upstream-service-time", "server")]  # fmt: skip
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
                self.inbound_stream(down, app, port)

    def xfcc(self, peer: socket.socket) -> str:
        """x-forwarded-client-cert for a request that came in on ``peer``."""
        der = peer.getpeercert(binary_form=True) if isinstance(peer, ssl.SSLSocket) else b""
        uri = peer_uri(peer) if isinstance(peer, ssl.SSLSocket) else ""
        return f'By={self.pod.spiffe};Hash={hashlib.sha256(der or b"").hexdigest()};Subject="";URI={uri}'

    def inbound_response(self, resp: Message, elapsed_ms: int) -> Message:
        hdrs = [(n.lower(), v) for n, v in resp.headers if n.lower() not in (*HOP_BY_HOP, "server")]
        hdrs += [("x-envoy-upstream-service-time", str(elapsed_ms)),
                 ("x-envoy-peer-metadata-id", self.node_id), ("x-envoy-peer-metadata", self.peer_metadata),
                 ("server", "istio-envoy")]  # fmt: skip
        return Message(resp.start, hdrs, resp.body)

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
        for svc in self.metric_clusters:
            lines.append(f'envoy_cluster_upstream_cx_active{{cluster_name="outbound|9080||{svc}.default.'
                         f'svc.cluster.local"}} {1 if svc != self.pod.name else 0}')
        for i, le in enumerate(("0.5", "1", "5", "10", "25", "50", "100", "+Inf")):
            lines.append(f'istio_request_duration_milliseconds_bucket{{reporter="destination",'
                         f'destination_workload="{w}",le="{le}"}} {min(inbound, inbound * (i + 1) // 4)}')
        return ("\n".join(lines) + "\n").encode()



def proxy_http(
    down: socket.socket,
    up: socket.socket,
    on_request: OnRequest,
    on_response: OnResponse,
    retries: int = 0,
    answer: Callable[[Message], Message | None] | None = None,
) -> None:
    """The sidecar's HTTP/1.1 loop, either direction. Each request from ``down`` goes to
    ``up`` as ``on_request`` makes it, head and body in one write like Envoy, and its response
    back as ``on_response`` makes it. ``retries``: how often a 503 is tried again (Istio's
    default policy: once), the attempt number going to ``on_request``. ``answer``: the
    sidecar's own response to a request, which then never goes upstream."""
    down_r = down.makefile("rb")
    up_r = up.makefile("rb")
    while True:
        req = read_message(down_r, request=True)
        if req is None:
            return
        own = answer(req) if answer is not None else None
        if own is not None:
            down.sendall(own.wire())
            continue
        method = req.start.split(" ", 1)[0]
        t0 = time.monotonic()
        attempt = 1
        while True:
            up.sendall(on_request(req, attempt).wire())
            resp = read_message(up_r, request=False, method=method)
            if resp is None:
                return
            if attempt > retries or resp.start.split(" ", 2)[1] != "503":
                break
            attempt += 1
            time.sleep(0.025)  # Envoy's retry back-off base interval
        down.sendall(on_response(resp, int((time.monotonic() - t0) * 1000)).wire())


def run_sidecar(sidecar: Sidecar) -> None:
    """Run a sidecar made as root (its listeners bound, its certificates read) as istio-proxy."""
    import encodings.idna  # noqa: F401  (SNI encoding: import before dropping root)

    os.setgroups([])
    os.setgid(SIDECAR_UID)
    os.setuid(SIDECAR_UID)  # from here on every socket is istio-proxy's (iptables owner match)
    sidecar.start()
    emit({"ready": "sidecar", "uid": os.getuid()})
    wait_for_eof()


# --------------------------------------------------------------------------- the apps


class App:
    """An app: ``handle`` serves a request; ``session`` and ``get`` call another service by
    its ClusterIP with python-requests, one keep-alive pool per session."""

    server_header = "app/1.0"
    cluster_ip: ClassVar[Mapping[str, str]] = {}  # service name -> ClusterIP
    http_port: ClassVar[int] = 8080
    version: ClassVar[str] = "1.0"  # in the User-Agent of the app's calls
    call_timeout: ClassVar[float] = 10

    def __init__(self, pod: Pod) -> None:
        self.pod = pod

    def handle(self, path: str, inbound: dict[str, str]) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def session(self) -> requests.Session:
        import requests

        s = requests.Session()
        s.trust_env = False  # never a proxy from the environment
        s.headers.clear()
        s.headers.update({"User-Agent": f"{self.pod.name}/{self.version} python-requests",
                          "Accept": "application/json", "Connection": "keep-alive"})  # fmt: skip
        return s

    def get(self, session: requests.Session, service: str, path: str,
            headers: dict[str, str]) -> tuple[int, bytes]:  # fmt: skip
        url = f"http://{self.cluster_ip[service]}:{self.http_port}{path}"
        r = session.get(url, headers={"Host": f"{service}:{self.http_port}", **headers},
                        timeout=self.call_timeout)  # fmt: skip
        return r.status_code, r.content


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
                f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
        self.wfile.write(head.encode() + body)  # head and body in one segment


ServerFactory = Callable[[tuple[str, int], type[AppHandler]], HTTPServer]


def serve_app(app: App, make_server: ServerFactory | None = None) -> None:
    """Serve ``app`` over HTTP/1.1 on its port, in the background: a thread per connection,
    unless ``make_server`` says otherwise."""
    handler = type("Handler", (AppHandler,), {"app": app})
    server: HTTPServer
    if make_server is not None:
        server = make_server(("0.0.0.0", app.http_port), handler)
    else:
        server = threaded = ThreadingHTTPServer(("0.0.0.0", app.http_port), handler)
        threaded.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()


def app_ready() -> None:
    emit({"ready": "app"})
    wait_for_eof()


# --------------------------------------------------------------------------- ingress and node


class MtlsConnection:
    """One of the ingress gateway's keep-alive mTLS connections to a pod, opened when first
    used and again after it is lost, ``attempts`` times per request at the most."""

    def __init__(self, ctx: ssl.SSLContext, pod: Pod, port: int, sni: str, timeout: float,
                 attempts: int = 1) -> None:  # fmt: skip
        self.ctx = ctx
        self.pod, self.port, self.sni, self.timeout, self.attempts = pod, port, sni, timeout, attempts
        self.sock: ssl.SSLSocket | None = None
        self.rfile: BinaryIO | None = None
        self.lock = threading.Lock()

    def request(self, msg: Message) -> Message:
        with self.lock:
            for attempt in range(1, self.attempts + 1):
                if self.sock is None or self.rfile is None:
                    raw = socket.create_connection((self.pod.ip, self.port), timeout=self.timeout)
                    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.sock = self.ctx.wrap_socket(raw, server_hostname=self.sni)
                    self.rfile = self.sock.makefile("rb")
                try:
                    self.sock.sendall(msg.wire())
                    resp = read_message(self.rfile, request=False)
                    if resp is None:
                        raise EOFError("closed")
                    return resp
                except (OSError, EOFError) as exc:
                    log(f"ingress connection lost ({exc}); attempt {attempt}")
                    self.sock.close()
                    self.sock = None
            raise RuntimeError(f"ingress: {self.pod.name} does not answer")


def at_once(calls: Sequence[Callable[[threading.Barrier | None], None]], timeout: float) -> None:
    """Run ``calls`` together: each in a thread of its own, released by one barrier so their
    requests leave at the same moment (a single call runs here, without a barrier)."""
    if len(calls) == 1:
        calls[0](None)
        return
    barrier = threading.Barrier(len(calls))
    threads = [threading.Thread(target=call, args=(barrier,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def run_noise(targets: Sequence[Pod]) -> None:
    """kubelet readiness probes on 15021 (a connection each) and Prometheus scrapes on 15090
    (one keep-alive connection per pod) of the ``targets``' sidecars, from the node's bridge
    address."""

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



# --------------------------------------------------------------------------- orchestration


class Actor:
    """A process inside one of the namespaces, talking JSON lines on stdin/stdout."""

    def __init__(self, name: str, netns: str, args: list[str], script: Path) -> None:
        self.name = name
        # ``script``: the recorder whose ``--actor`` mode runs this actor
        cmd = ["ip", "netns", "exec", netns, sys.executable, "-u", str(script), "--actor", *args]
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



def actor_main(
    argv: list[str],
    prog: str,
    pods: Mapping[str, Pod],
    run_app: Callable[[Pod], None],
    run_sidecar: Callable[[Pod, Path], None],
    run_ingress: Callable[[Path], None],
) -> int:
    """A recorder's ``--actor`` mode: one actor of the mesh, in its namespace."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("role", choices=("app", "sidecar", "ingress", "noise"))
    ap.add_argument("--pod", choices=sorted(pods))
    ap.add_argument("--certs", type=Path)
    ns = ap.parse_args(argv)
    set_actor(f"{ns.pod}-{ns.role}" if ns.pod else ns.role)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator ends actors by closing stdin
    socket.setdefaulttimeout(30)
    if ns.role == "app":
        run_app(pods[ns.pod])
    elif ns.role == "sidecar":
        run_sidecar(pods[ns.pod], ns.certs)
    elif ns.role == "ingress":
        run_ingress(ns.certs)
    else:
        run_noise(list(pods.values()))
    return 0


@dataclass
class Mesh:
    """A running mesh: every actor, the ingress and the node among them."""

    actors: list[Actor]
    ingress: Actor
    noise: Actor

    def served(self, names: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """What each of these pods' apps says it served (its "event" lines)."""
        by_name = {a.name: a for a in self.actors}
        return {n: list(by_name[f"{n}-app"].events) for n in names}


@contextlib.contextmanager
def running_mesh(net: Network, script: Path, certs: Path, identities: dict[str, str]) -> Iterator[Mesh]:
    """Build the namespaces, start an app and a sidecar per pod, the ingress and the node
    (``script``'s actors), and warm the mesh up (the ingress's "warm" plan) so every
    connection the capture shows is open before it starts. Everything is stopped and deleted
    afterwards, also after a failure."""
    certs.mkdir()
    make_certs(certs, identities)
    actors: list[Actor] = []
    try:
        net.build()
        for pod in net.pods:
            actors.append(Actor(f"{pod.name}-app", pod.netns, ["app", "--pod", pod.name], script))
            actors.append(Actor(f"{pod.name}-sidecar", pod.netns,
                                ["sidecar", "--pod", pod.name, "--certs", str(certs)], script))  # fmt: skip
        ingress = Actor("ingress", net.ingress.netns, ["ingress", "--certs", str(certs)], script)
        noise = Actor("node", net.node_ns, ["noise"], script)
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
        yield Mesh(actors, ingress, noise)
    finally:
        for a in reversed(actors):
            a.stop()
        net.delete()


# --------------------------------------------------------------------------- reading the captures


def frame_table(path: Path, args: list[str]) -> Table:
    fields = ["frame.number", "sll.ifindex", "ip.src", "tcp.srcport", "ip.dst", "tcp.dstport",
              "tcp.stream", "frame.protocols", "tcp.flags.syn", "tcp.len"]
    cmd = ["tshark", "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", *args, "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=f"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    table: Table = {}
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


def legs(pod: Pod, table: Table) -> tuple[list[dict[str, Any]], dict[str, int]]:
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


def nat_pairs(pod: Pod, table: Table) -> list[dict[str, Any]]:
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


def with_endpoints(m: dict[str, Any], table: Table) -> dict[str, Any]:
    """A message of tshark_summary or tshark_h2_summary with the addresses and the TCP
    stream of the frame it completes in."""
    row = table[m["frame"]]
    src, sport, dst, dport = endpoints(row)
    return {**m, "src": f"{src}:{sport}", "dst": f"{dst}:{dport}", "sport": sport, "dport": dport,
            "tcp_stream": int(row["tcp.stream"])}  # fmt: skip


def pod_manifest_entry(*, path: Path, file: str, made_by: str, tests: str, args: list[str], table: Table,
                       expected: dict[str, Any], shown_headers: tuple[str, ...], h2: bool, note: str,
                       scenario: list[str]) -> dict[str, Any]:  # fmt: skip
    """The MANIFEST.json entry of one pod capture: what tshark shows (HTTP/1.1, and h2 with
    ``h2``), its connections with each NAT-split pair counted once (``expected``'s nat_split),
    its legs, and the non-TCP frames. ``note``: what tshark's own counts mean here."""
    summary = tshark_summary(path, args, shown_headers)
    http1 = [{"kind": m["kind"], "protocol": "http/1.1", **m, "stream": None}
             for m in summary["http_messages"]]  # fmt: skip
    messages = list(http1)
    tshark: dict[str, Any] = {"args": args}
    if h2:
        h2_summary = tshark_h2_summary(path, args, shown_headers)
        messages += h2_summary["http_messages"]
        tshark.update({"unknown_headers": h2_summary["unknown_headers"],
                       "requests": sum(m["kind"] == "request" for m in http1),
                       "responses": sum(m["kind"] == "response" for m in http1)})  # fmt: skip
    messages.sort(key=lambda m: int(m["frame"]))
    pairs = expected["nat_split"]
    tshark["tcp_connections"] = summary["tcp_connections"]
    tshark["note"] = note
    non_tcp: dict[str, int] = {}
    for row in table.values():
        if not row.get("tcp.stream"):
            proto = row.get("frame.protocols", "").split(":")[-1] or "unknown"
            non_tcp[proto] = non_tcp.get(proto, 0) + 1
    entry: dict[str, Any] = {
        "file": file,
        "made_by": made_by,
        "tests": tests,
        **describe_format(path),
        "frames": summary["frames"],
        "tcp_connections": summary["tcp_connections"] - len(pairs),
        "http_messages": messages,
        "anomalies": [],
        "error": None,
        "tshark": tshark,
        "first_ts_ns": summary["first_ts_ns"],
        "last_ts_ns": summary["last_ts_ns"],
        "scenario": scenario,
        "expected": str(Path(file).parent / "EXPECTED.json"),
        "note": (f"pod {expected['pod']['ip']}, sidecar inbound from {INBOUND_SRC}; legs: "
                 + ", ".join(f"{n} {r}" for r, n in expected["leg_counts"].items())),
    }
    if non_tcp:
        entry["non_tcp"] = non_tcp
    return entry


# --------------------------------------------------------------------------- the recorders' command line

EntryFn = Callable[[str, list[str], Table, dict[str, Any]], dict[str, Any]]  # name, args, table, expected
# what the actors said, name, file, tshark args, table -> the capture's EXPECTED.json document
ExpectFn = Callable[[dict[str, Any], str, Path, list[str], Table], dict[str, Any]]


def ensure_dependencies(script: Path, modules: Sequence[str]) -> None:
    """``sudo python3 ...`` runs the system Python, which may lack the Python packages the
    actors need while the project's .venv has them: then run again with that one."""
    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError as exc:
        venv = CAPTURES.parent / ".venv"
        python = venv / "bin" / "python"
        if python.exists() and Path(sys.prefix).resolve() != venv.resolve():
            os.execv(str(python), [str(python), str(script), *sys.argv[1:]])
        raise SystemExit(f"{script.name} needs {', '.join(modules)}: {exc}") from exc


def preflight(script: Path) -> int | None:
    """Why this machine cannot record (a message and status 2), or None."""
    if os.geteuid() != 0:
        print(f"{script.name} needs root (network namespaces, iptables, tcpdump)", file=sys.stderr)
        return 2
    for tool in ("ip", "iptables-restore", "tcpdump", "tshark"):
        if shutil.which(tool) is None:
            print(f"{script.name} needs {tool}", file=sys.stderr)
            return 2
    return None


@dataclass(frozen=True)
class Recorder:
    """A mesh recorder as record_pods.py and record_mesh.py each fill it in. ``main`` is their
    common procedure: record in a scratch directory (``record`` returns what the actors
    said), read every new capture with tshark and judge it (``expect``) before anything
    replaces the committed files (a failed run keeps those), then install the captures and
    EXPECTED.json (``document``) in ``directory`` or ``--out DIR``, and the MANIFEST.json
    entries (``manifest_entry``; not with ``--out``)."""

    script: Path
    doc: str | None  # the script's docstring: its first paragraph is the --help description
    directory: Path  # where the captures and EXPECTED.json are committed
    net: Network
    captured: tuple[str, ...]  # the pods whose captures are made
    modules: tuple[str, ...]  # the Python packages the actors import
    actor: Callable[[list[str]], int]  # the --actor mode
    record: Callable[[Path], dict[str, Any]]
    args_for: Callable[[str, Table], list[str]]  # tshark dissector arguments a capture needs
    expect: ExpectFn
    manifest_entry: EntryFn
    document: Callable[[list[dict[str, Any]]], dict[str, Any]]
    summary: Callable[[dict[str, Any]], str]  # a log line about one capture's expectations

    def main(self, argv: list[str]) -> int:
        if argv[:1] == ["--actor"]:
            return self.actor(argv[1:])
        ap = argparse.ArgumentParser(description=self.doc.split("\n\n")[0] if self.doc else None)
        ap.add_argument("--no-manifest", action="store_true", help="do not touch MANIFEST.json")
        ap.add_argument("--manifest-only", action="store_true",
                        help="do not record: rewrite the MANIFEST.json entries from the files and "
                             "EXPECTED.json")  # fmt: skip
        ap.add_argument("--out", type=Path, metavar="DIR",
                        help="write the captures and EXPECTED.json into DIR (made if need be), not into "
                             "captures/, and leave MANIFEST.json alone")  # fmt: skip
        ns = ap.parse_args(argv)
        if ns.manifest_only:
            if ns.out:
                ap.error("--manifest-only reads the committed files: not with --out")
            self.write_manifest(json.loads((self.directory / "EXPECTED.json").read_text())["captures"])
            return 0
        ensure_dependencies(self.script, self.modules)
        status = preflight(self.script)
        if status is not None:
            return status
        out: Path = ns.out.resolve() if ns.out else self.directory
        self.net.delete()  # left over from an interrupted run
        workdir = Path(tempfile.mkdtemp(prefix=f"tracewire-{self.directory.name}-"))
        os.chmod(workdir, 0o755)  # the actors drop root and read the certificates here
        try:
            run_info = self.record(workdir)
            captures = [self.judge(workdir / f"{name}.pcap", run_info) for name in self.captured]
            out.mkdir(parents=True, exist_ok=True)
            for name in self.captured:
                shutil.copyfile(workdir / f"{name}.pcap", out / f"{name}.pcap")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        (out / "EXPECTED.json").write_text(json.dumps(self.document(captures), indent=1) + "\n")
        for c in captures:
            log(self.summary(c))
        if not ns.no_manifest and not ns.out:
            self.write_manifest(captures)
        return 0

    def judge(self, path: Path, run_info: dict[str, Any]) -> dict[str, Any]:
        """The EXPECTED.json document of one new capture, read with the dissector arguments
        it needs."""
        table = frame_table(path, [])
        args = self.args_for(path.stem, table)
        if args:
            table = frame_table(path, args)
        expected = self.expect(run_info, path.stem, path, args, table)
        size = path.stat().st_size
        if size >= MAX_CAPTURE_BYTES:
            raise RuntimeError(f"{path.name} is {size} bytes (limit {MAX_CAPTURE_BYTES // 1000} KB)")
        return expected

    def write_manifest(self, captures: list[dict[str, Any]]) -> None:
        """This script's MANIFEST.json entries, from the committed files and what EXPECTED.json
        says of them (the tshark arguments each needs among it)."""
        entries = []
        for exp in captures:
            path, args = CAPTURES / exp["file"], exp["tshark_args"]
            entries.append(self.manifest_entry(path.stem, args, frame_table(path, args), exp))
        update_manifest(entries, owner=self.script.name)
