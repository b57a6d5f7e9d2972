#!/usr/bin/env python3
"""Record real HTTP/2 traffic (gRPC and h2c) of an emulated Istio pod, the way ksniff captures it.

Run as root:  sudo python3 captures/record_h2.py              (all captures)
              sudo python3 captures/record_h2.py --only grpc-warm
              sudo python3 captures/record_h2.py --out DIR    (into DIR; captures/ untouched)
              python3 captures/record_h2.py --manifest-only   (no root: the entries again)

Needs grpcio and h2 (``pip install grpcio h2``) and the nghttp2 tools
(``apt-get install nghttp2-client nghttp2-server``: ``nghttpd``, ``nghttp``), curl, tcpdump,
tshark.

What it does
------------
The conventions are those of ``record_http1.py`` (whose ``tcpdump``, ``Ids`` and ``run`` it
uses): everything runs in a network namespace this script creates (``tracewire-rec-h2``, so
it can run beside ``record_http1.py``) and deletes at the end, also after a failure. Only its
``lo`` exists, with the pod IP 10.244.1.10/32 added; no packet leaves it. The capture is
``tcpdump -i any -U -w FILE`` (classic pcap, LINUX_SLL2 = 276, every frame on ``lo``), stopped
with SIGINT.

Inside, the local route of the pod IP is given ``src 127.0.0.6``, so a client that connects to
the pod IP without binding (grpcio cannot bind a client's source address; nghttp has no option
for it) comes from 127.0.0.6, the address Istio's sidecar uses for inbound connections. curl
binds it explicitly (``--interface``).

Captures written (into this directory):

* ``grpc-warm.pcap``: a grpcio server (generic handlers, raw-bytes messages, no protoc) for
  ``ratings.v1.Ratings`` on 10.244.1.10:50051, called by one grpcio channel from 127.0.0.6
  (the sidecar's inbound leg). The channel is **warm** before tcpdump starts: it has made
  four calls with the same metadata names, so the capture starts mid-connection (no SYN, no
  preface, no SETTINGS) and both HPACK contexts hold entries the capture never shows. Then
  nine calls on the same channel, each with new ids: unary and server-streaming, one with
  ``authorization``, one ending in ``grpc-status: 5`` (NOT_FOUND) with a ``grpc-message``,
  two running concurrently. Both peers run with ``grpc.http2.true_binary = 0``, as behind
  Envoy, which does not offer true-binary metadata: ``grpc-trace-bin`` goes as unpadded
  base64 text.
* ``grpc-cold.pcap``: the same calls, but tcpdump starts before the channel connects (SYN,
  preface, SETTINGS: the whole HPACK context is known) and the channel closes inside the
  capture. grpcio's defaults this time: both peers offer ``SETTINGS 0xFE03 = 1``
  (GRPC_ALLOW_TRUE_BINARY_METADATA), so grpcio sends ``grpc-trace-bin`` as *true binary*:
  the value on the wire is a 0x00 byte followed by the 29 raw bytes, not base64. tshark shows
  that value as empty (with a "Trailing stray characters" warning).
* ``h2c-nghttp.pcap``: h2c with prior knowledge against ``nghttpd --no-tls`` on the
  non-standard port 10.244.1.10:8088: ``nghttp -a`` (a page and its two assets on one
  connection, plus PRIORITY frames), ``nghttp`` with two URIs on one connection, and
  ``curl --http2-prior-knowledge``, with ``x-request-id``, ``traceparent``, ``tracestate``
  and the single ``b3`` header. nghttpd (1.52) does not do the HTTP/1.1 Upgrade, so a tiny
  server built on the ``h2`` package listens on 10.244.1.10:8089 for
  ``curl --http2`` (``Upgrade: h2c`` with ``HTTP2-Settings``, ``101 Switching Protocols``, the
  response to the upgraded request on stream 1, then a second request as h2 on stream 3).

What grpcio (1.85, C-core chttp2) does with HPACK, as seen in the recordings: it indexes the
header fields it knows (``:path``, ``:authority``, ``content-type``, ``te``, ``user-agent``,
``grpc-accept-encoding``, ``grpc-timeout``, ``grpc-status``; for ``grpc-trace-bin`` only the
name: the value is a literal without indexing) but sends custom metadata (``x-request-id``,
``x-b3-*``, ``traceparent``, ``authorization``) as literals *without indexing, with a new
name*, every time. It also moves ``grpc-trace-bin`` and ``traceparent`` ahead of the other
metadata. So in ``grpc-warm.pcap`` the fields tshark cannot name are grpcio's indexed ones
(``:path``, ``:authority``, ``content-type``, ``te``, ``user-agent``, ``grpc-status: 0``, and
the name of ``grpc-trace-bin``, whose base64 value is readable), while the tracing headers
stay readable. Tracing names referenced from a dynamic table older than the capture are what
``bench/gen_h2_capture.py`` produces (its encoder indexes the names).

Header contents (ids, trace ids, bodies) come from seeded generators and are the same on every
run; timestamps, ports, sequence numbers, ``date`` headers, gRPC's PING/WINDOW_UPDATE timing
and how frames fall into segments are not. Afterwards tshark reads each capture and the
script rewrites its entries in MANIFEST.json from what tshark shows (fixturelib's
``tshark_summary`` and ``tshark_h2_summary``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import (
    CAPTURES,
    Ids,
    describe_format,
    log,
    run,
    run_in_netns,
    tcpdump,
    tshark_h2_summary,
    tshark_summary,
    update_manifest,
)

NETNS = "tracewire-rec-h2"
POD_IP = "10.244.1.10"
ENVOY_INBOUND_SRC = "127.0.0.6"
GRPC_PORT = 50051
NGHTTPD_PORT = 8088
UPGRADE_PORT = 8089
SERVICE = "ratings.v1.Ratings"

CAPTURE_NAMES = ("grpc-warm", "grpc-cold", "h2c-nghttp")
TSHARK_ARGS = {
    "grpc-warm": ["-d", f"tcp.port=={GRPC_PORT},http2"],
    "grpc-cold": ["-d", f"tcp.port=={GRPC_PORT},http2"],
    # 8089 as http: tshark's HTTP dissector follows the Upgrade: h2c and hands the rest of
    # the connection to its HTTP/2 dissector.
    "h2c-nghttp": ["-d", f"tcp.port=={NGHTTPD_PORT},http2", "-d", f"tcp.port=={UPGRADE_PORT},http"],
}
MANIFEST_HEADERS = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "b3",
    "traceparent",
    "tracestate",
    "grpc-trace-bin",
    "authorization",
    "grpc-status",
    "grpc-message",
)


# --------------------------------------------------------------------------- trace contexts


def trace_bin(trace_id: str, span_id: str, sampled: bool = True) -> bytes:
    """grpc-trace-bin, OpenCensus binary format: version 0, then field 0 (trace id, 16 bytes),
    field 1 (span id, 8 bytes), field 2 (trace options, 1 byte: bit 0 = sampled)."""
    return (
        b"\x00"
        + b"\x00" + bytes.fromhex(trace_id)
        + b"\x01" + bytes.fromhex(span_id)
        + b"\x02" + (b"\x01" if sampled else b"\x00")
    )  # fmt: skip


def grpc_metadata(ids: Ids, parent: bool = False) -> list[tuple[str, str | bytes]]:
    """An Envoy-like inbound context, in all the formats a mesh may carry at once."""
    trace, span = ids.trace_id(), ids.span_id()
    md: list[tuple[str, str | bytes]] = [
        ("x-request-id", ids.request_id()),
        ("x-b3-traceid", trace),
        ("x-b3-spanid", span),
    ]
    if parent:
        md.append(("x-b3-parentspanid", ids.span_id()))
    md += [
        ("x-b3-sampled", "1"),
        ("traceparent", f"00-{trace}-{span}-01"),
        ("grpc-trace-bin", trace_bin(trace, span)),
    ]
    return md


# --------------------------------------------------------------------------- gRPC


def pb_varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def pb(*fields: tuple[int, int | bytes]) -> bytes:
    """Protobuf wire format by hand (no protoc): varint and length-delimited fields.

    The messages are real protobuf so that tshark's gRPC/protobuf dissectors parse them
    (without a schema) instead of warning about them.
    """
    out = b""
    for number, value in fields:
        if isinstance(value, int):
            out += pb_varint(number << 3) + pb_varint(value)
        else:
            out += pb_varint(number << 3 | 2) + pb_varint(len(value)) + value
    return out


def pb_first_varint(message: bytes) -> int:
    """Field 1 of a request (the product id), a varint."""
    value, shift = 0, 0
    for byte in message[1:]:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


class RatingsServer:
    """ratings.v1.Ratings on grpcio with generic handlers; messages are raw bytes (no
    serializers), hand-encoded protobuf.

    GetRating (unary): ``{1: product}`` -> ``{1: product, 2: {1: reviewer, 2: stars}, ...}``;
    product 404 ends with NOT_FOUND and a grpc-message. ListRatings (server streaming): three
    messages ``{1: product, 2: reviewer, 3: stars}``.
    """

    def __init__(self, true_binary: bool) -> None:
        import grpc

        self.grpc = grpc
        self.seen: list[dict[str, str]] = []
        handlers = {
            "GetRating": grpc.unary_unary_rpc_method_handler(self.get_rating),
            "ListRatings": grpc.unary_stream_rpc_method_handler(self.list_ratings),
        }
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4),
            options=[("grpc.http2.true_binary", int(true_binary))],
        )
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.server.add_insecure_port(f"{POD_IP}:{GRPC_PORT}")

    def _note(self, context: Any) -> None:
        md = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in context.invocation_metadata()}
        self.seen.append(md)

    def get_rating(self, request: bytes, context: Any) -> bytes:
        self._note(context)
        product = pb_first_varint(request)
        if product == 404:
            context.abort(self.grpc.StatusCode.NOT_FOUND, f"rating for product {product} not found")
        return pb((1, product), (2, pb((1, b"Reviewer1"), (2, 5))), (2, pb((1, b"Reviewer2"), (2, 4))))

    def list_ratings(self, request: bytes, context: Any) -> Any:
        self._note(context)
        product = pb_first_varint(request)
        for i, stars in enumerate((5, 4, 2)):
            yield pb((1, product), (2, b"Reviewer%d" % (i + 1)), (3, stars))


class RatingsClient:
    """One grpcio channel to the app, as the sidecar's inbound leg keeps it open."""

    def __init__(self, ids: Ids, true_binary: bool) -> None:
        import grpc

        self.grpc = grpc
        self.ids = ids
        self.channel = grpc.insecure_channel(
            f"{POD_IP}:{GRPC_PORT}",
            options=[
                ("grpc.primary_user_agent", "envoy-inbound/1.22 tracewire-fixture/1.0"),
                ("grpc.http2.true_binary", int(true_binary)),
                ("grpc.enable_retries", 0),
            ],
        )
        self.get = self.channel.unary_unary(f"/{SERVICE}/GetRating")
        self.list = self.channel.unary_stream(f"/{SERVICE}/ListRatings")

    def unary(self, product: int, extra: list[tuple[str, str | bytes]] | None = None,
              parent: bool = False) -> str:
        md = [*grpc_metadata(self.ids, parent), *(extra or [])]
        try:
            reply = self.get(pb((1, product)), metadata=md, timeout=5)
            result = f"OK {len(reply)} bytes"
        except self.grpc.RpcError as exc:
            result = f"{exc.code().name} {exc.details()!r}"
        log(f"grpc GetRating product={product} -> {result}")
        return result

    def stream(self, product: int) -> str:
        md = grpc_metadata(self.ids)
        replies = list(self.list(pb((1, product)), metadata=md, timeout=5))
        log(f"grpc ListRatings product={product} -> {len(replies)} messages")
        return f"OK {len(replies)} messages"

    def concurrent(self, products: tuple[int, ...]) -> None:
        calls = [
            self.get.future(pb((1, p)), metadata=grpc_metadata(self.ids), timeout=5)
            for p in products
        ]
        for p, call in zip(products, calls, strict=True):
            log(f"grpc GetRating product={p} (concurrent) -> {len(call.result())} bytes")


GRPC_SCENARIO = [
    "GetRating product=1 (unary, grpc-timeout)",
    "ListRatings product=1 (server streaming, 3 messages)",
    "GetRating product=2 with x-b3-parentspanid",
    "GetRating product=404: trailers-only response, grpc-status 5 NOT_FOUND with grpc-message",
    "GetRating product=3 with authorization: Bearer ...",
    "ListRatings product=2 (server streaming)",
    "GetRating product=5 and product=6 concurrently (interleaved streams)",
    "GetRating product=4",
]


def grpc_calls(client: RatingsClient) -> None:
    client.unary(1)
    client.stream(1)
    client.unary(2, parent=True)
    client.unary(404)
    token = "Bearer eyJhbGciOiJSUzI1NiJ9." + client.ids.token(40)
    client.unary(3, extra=[("authorization", token)])
    client.stream(2)
    client.concurrent((5, 6))
    client.unary(4)


def record_grpc(path: Path, warm: bool) -> None:
    true_binary = not warm  # warm: Envoy-like peers (base64 -bin); cold: grpcio's defaults
    server = RatingsServer(true_binary)
    server.server.start()
    ids = Ids(GRPC_PORT if warm else GRPC_PORT + 1)
    try:
        if warm:
            client = RatingsClient(ids, true_binary)
            # before the capture: fills both HPACK dynamic tables with this channel's fields
            for product in (7, 8):
                client.unary(product)
                client.stream(product)
            with tcpdump({None: path}):
                grpc_calls(client)
            client.channel.close()
        else:
            with tcpdump({None: path}):
                client = RatingsClient(ids, true_binary)
                grpc_calls(client)
                client.channel.close()  # GOAWAY and FIN inside the capture
    finally:
        server.server.stop(grace=1).wait()
    bins = sorted({md["grpc-trace-bin"] for md in server.seen if "grpc-trace-bin" in md})
    log(f"server saw {len(server.seen)} calls; grpc-trace-bin arrived intact: "
        f"{all(len(b) == 58 and b.startswith('0000') for b in bins)}")


# --------------------------------------------------------------------------- h2c


INDEX_HTML = b"""<!doctype html>
<html><head><title>ratings</title>
<link rel="stylesheet" href="/css/style.css">
<script src="/js/app.js"></script>
</head><body><h1>Ratings</h1></body></html>
"""


def htdocs(root: Path) -> None:
    (root / "css").mkdir()
    (root / "js").mkdir()
    (root / "api" / "ratings").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX_HTML)
    (root / "css" / "style.css").write_bytes(b"body { font-family: sans-serif; }\n")
    (root / "js" / "app.js").write_bytes(b"console.log('ratings');\n")
    for n in (1, 2, 3, 4):
        (root / "api" / "ratings" / str(n)).write_bytes(b'{"id":%d,"stars":%d}\n' % (n, 6 - n))


def h2c_context(ids: Ids) -> list[str]:
    """x-request-id, traceparent, tracestate and single-header b3 for one request."""
    trace, span = ids.trace_id(), ids.span_id()
    return [
        f"x-request-id: {ids.request_id()}",
        f"traceparent: 00-{trace}-{span}-01",
        "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
        f"b3: {trace}-{span}-1",
    ]


class UpgradeServer:
    """A tiny h2c server (the ``h2`` package) that accepts ``Upgrade: h2c`` (RFC 7540 §3.2).

    It answers the upgraded request on stream 1 and every later request on the same
    connection with a small JSON body: the files under ``root``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = socket.create_server((POD_IP, UPGRADE_PORT))
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def body(self, path: bytes) -> tuple[int, bytes]:
        target = (self.root / path.decode().lstrip("/")).resolve()
        if target.is_file() and self.root.resolve() in target.parents:
            return 200, target.read_bytes()
        return 404, b'{"error":"not found"}\n'

    def respond(self, h2conn: Any, stream: int, path: bytes) -> None:
        status, body = self.body(path)
        h2conn.send_headers(stream, [
            (":status", str(status)),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("server", "tracewire-h2c/1.0"),
        ])  # fmt: skip
        h2conn.send_data(stream, body, end_stream=True)
        log(f"h2c upgrade server: stream {stream} {path.decode()} -> {status}")

    def handle(self, conn: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        with conn:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            _method, target, _version = lines[0].split(b" ", 2)
            fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
            if b"h2c" not in fields.get(b"upgrade", b"").lower() or b"http2-settings" not in fields:
                conn.sendall(b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: h2c\r\n"
                             b"Connection: close\r\nContent-Length: 0\r\n\r\n")
                return
            h2conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
            h2conn.initiate_upgrade_connection(fields[b"http2-settings"])
            self.respond(h2conn, 1, target)
            conn.sendall(h2conn.data_to_send())
            data = rest
            while True:
                for event in h2conn.receive_data(data) if data else []:
                    if isinstance(event, h2.events.RequestReceived):
                        hdrs = {bytes(k): bytes(v) for k, v in event.headers}
                        self.respond(h2conn, event.stream_id, hdrs.get(b":path", b"/"))
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        conn.sendall(h2conn.data_to_send())
                        return
                out = h2conn.data_to_send()
                if out:
                    conn.sendall(out)
                try:
                    data = conn.recv(65536)
                except ConnectionResetError:  # curl ends the connection with a RST
                    return
                if not data:
                    return


def curl(*args: str) -> None:
    proc = run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code} ", *args, check=False)
    log(f"curl {args[-1]} -> {proc.stdout.strip()} {proc.stderr.strip()}")


def nghttp(*args: str) -> None:
    proc = run("nghttp", "-n", "--stat", *args, check=False)
    status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr.strip()}"
    log(f"nghttp {' '.join(a for a in args if a.startswith('http'))} -> {status}")


H2C_SCENARIO = [
    "nghttp -a /index.html: the page and its 2 assets (css, js) on one prior-knowledge connection",
    "nghttp /api/ratings/1 /api/ratings/2: two requests on one connection, same context",
    "nghttp /api/ratings/404: a 404",
    "curl --http2-prior-knowledge /api/ratings/3 with authorization",
    "curl --http2 /api/ratings/4 and /api/ratings/1 on port 8089, one connection: Upgrade: h2c, "
    "101, the response on stream 1, then the second request on stream 3",
]


def record_h2c(path: Path) -> None:
    ids = Ids(NGHTTPD_PORT)
    with tempfile.TemporaryDirectory(prefix="tracewire-htdocs-") as tmp:
        root = Path(tmp)
        htdocs(root)
        nghttpd = subprocess.Popen(
            ["nghttpd", "--no-tls", "-a", POD_IP, "-d", str(root), str(NGHTTPD_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        upgrade = UpgradeServer(root)
        url = f"http://{POD_IP}:{NGHTTPD_PORT}"
        try:
            for _ in range(50):  # wait for nghttpd to listen
                with socket.socket() as s:
                    if s.connect_ex((POD_IP, NGHTTPD_PORT)) == 0:
                        break
                time.sleep(0.1)
            with tcpdump({None: path}):
                hdrs = [f"-H{h}" for h in h2c_context(ids)]
                nghttp("-a", *hdrs, f"{url}/index.html")
                hdrs = [f"-H{h}" for h in h2c_context(ids)]
                nghttp(*hdrs, f"{url}/api/ratings/1", f"{url}/api/ratings/2")
                hdrs = [f"-H{h}" for h in h2c_context(ids)]
                nghttp(*hdrs, f"{url}/api/ratings/404")
                hdrs = [f"-H{h}" for h in h2c_context(ids)]
                token = "Bearer eyJhbGciOiJSUzI1NiJ9." + ids.token(40)
                curl("--http2-prior-knowledge", "--interface", ENVOY_INBOUND_SRC, *hdrs,
                     "-H", f"authorization: {token}", f"{url}/api/ratings/3")
                hdrs = [f"-H{h}" for h in h2c_context(ids)]
                curl("--http2", "--interface", ENVOY_INBOUND_SRC, *hdrs,
                     f"http://{POD_IP}:{UPGRADE_PORT}/api/ratings/4", "-o", "/dev/null",
                     f"http://{POD_IP}:{UPGRADE_PORT}/api/ratings/1")
        finally:
            upgrade.close()
            nghttpd.terminate()
            nghttpd.wait(timeout=10)


# --------------------------------------------------------------------------- namespace


def inside(names: list[str], out: Path) -> None:
    run("ip", "link", "set", "lo", "up")
    run("ip", "addr", "replace", f"{POD_IP}/32", "dev", "lo")
    # Connections to the pod IP that do not bind a source come from 127.0.0.6.
    run("ip", "route", "replace", "local", POD_IP, "dev", "lo", "table", "local", "src", ENVOY_INBOUND_SRC)
    for name in names:
        path = out / f"{name}.pcap"
        log(f"recording {path}")
        if name == "h2c-nghttp":
            record_h2c(path)
        else:
            record_grpc(path, warm=name == "grpc-warm")


# --------------------------------------------------------------------------- manifest

TESTS = {
    "grpc-warm": (
        "real grpcio unary and server-streaming calls on a channel that was warm before the capture "
        "(no SYN, no preface, both HPACK dynamic tables unknown: tshark shows <unknown> fields); "
        "x-request-id, B3, traceparent, grpc-trace-bin (base64, Envoy-like), authorization, "
        "a trailers-only NOT_FOUND, concurrent streams"
    ),
    "grpc-cold": (
        "the same gRPC calls with the whole connection captured (SYN, preface, SETTINGS with "
        "0xFE03, every HPACK entry known); grpc-trace-bin in grpcio's true-binary form "
        "(0x00 + raw bytes)"
    ),
    "h2c-nghttp": (
        "h2c with prior knowledge on port 8088 (nghttpd; nghttp with PRIORITY frames and several "
        "streams per connection; curl), x-request-id, traceparent, tracestate, single-header b3, "
        "a 404, authorization; and an HTTP/1.1 Upgrade: h2c on port 8089 (101, then h2 on stream 1)"
    ),
}


def manifest_entry(name: str) -> dict[str, Any]:
    path = CAPTURES / f"{name}.pcap"
    args = TSHARK_ARGS[name]
    summary = tshark_summary(path, args)
    h2 = tshark_h2_summary(path, args, MANIFEST_HEADERS)
    http1 = [
        {"kind": m["kind"], "protocol": "http/1.1", **m, "stream": None} for m in summary["http_messages"]
    ]
    messages = sorted([*http1, *h2["http_messages"]], key=lambda m: int(m["frame"]))
    note = (
        "tshark's http.request.method/http.response.code count only the HTTP/1.1 messages "
        "(the h2 ones are http2.headers.*); unknown_headers: fields tshark shows as <unknown> "
        "(an HPACK index into a dynamic table filled before the capture started)"
    )
    entry: dict[str, Any] = {
        "file": path.name,
        "made_by": "record_h2.py",
        "tests": TESTS[name],
        **describe_format(path),
        "frames": summary["frames"],
        "tcp_connections": summary["tcp_connections"],
        "http_messages": messages,
        "anomalies": [],
        "error": None,
        "tshark": {
            "args": args,
            "unknown_headers": h2["unknown_headers"],
            "requests": sum(m["kind"] == "request" for m in http1),
            "responses": sum(m["kind"] == "response" for m in http1),
            "note": note,
        },
        "scenario": H2C_SCENARIO if name == "h2c-nghttp" else GRPC_SCENARIO,
    }
    if name == "grpc-warm":
        entry["note"] = (
            "channel warm before the capture (4 calls); both peers with grpc.http2.true_binary=0, "
            "so grpc-trace-bin is unpadded base64. grpcio indexes the fields it knows (:path, "
            ":authority, content-type, te, user-agent, grpc-accept-encoding, grpc-timeout, "
            "grpc-status; for grpc-trace-bin only the name) and sends custom metadata "
            "(x-request-id, x-b3-*, traceparent, authorization) as literals without indexing, "
            "new name, so those stay readable"
        )
    elif name == "grpc-cold":
        entry["note"] = (
            "both peers offer SETTINGS 0xFE03=1 (grpcio's default), so grpc-trace-bin is sent as "
            "true binary: a 0x00 byte and the 29 raw bytes; tshark shows it as an empty value"
        )
    else:
        entry["note"] = (
            "nghttpd 1.52 does not accept Upgrade: h2c, so port 8089 is a small server on the h2 "
            "package; its upgrade request and 101 are HTTP/1.1 messages (stream null here; the "
            "upgraded request is h2 stream 1)"
        )
    return entry


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--only", action="append", choices=CAPTURE_NAMES, help="record only this one")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--manifest-only", action="store_true",
                    help="do not record: rewrite the manifest entries from the existing files")
    ap.add_argument("--out", type=Path, metavar="DIR",
                    help="write the captures into DIR (made if need be) and leave captures/ and "
                         "MANIFEST.json alone")
    ns = ap.parse_args()
    names = list(ns.only or CAPTURE_NAMES)
    out = ns.out.resolve() if ns.out else CAPTURES
    if ns.inside:
        inside(names, out)
        return 0
    if ns.manifest_only and ns.out:
        ap.error("--manifest-only reads the files in captures/: not with --out")
    if not ns.manifest_only:
        if os.geteuid() != 0:
            print("record_h2.py needs root (network namespace, tcpdump)", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        only = [x for n in names for x in ("--only", n)]
        run_in_netns(NETNS, [__file__, "--inside", "--out", str(out), *only])
    for n in names:
        p = out / f"{n}.pcap"
        log(f"{p}: {p.stat().st_size} bytes")
    if ns.out:
        return 0
    owner = "record_h2.py" if not ns.only else None
    update_manifest([manifest_entry(n) for n in names], owner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
