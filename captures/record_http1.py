#!/usr/bin/env python3
"""Record real HTTP/1.1 traffic of an emulated Istio pod, the way ksniff captures it.

Run as root:  sudo python3 captures/record_http1.py            (all captures)
              sudo python3 captures/record_http1.py --only productpage-http1
              sudo python3 captures/record_http1.py --variant fixed --variant newbug
              python3 captures/record_http1.py --write-expected  (no root: diff/EXPECTED.json)

What it does
------------
Everything runs inside a network namespace this script creates (``tracewire-rec``), which
plays the pod's network namespace: only its ``lo`` exists, and the pod IP 10.244.1.10/32 is
added to that ``lo``. No packet leaves the namespace; the namespace (and with it the address,
the iptables rules and every socket) is deleted at the end, also after a failure, so the script
can be run again. ``--host-lo`` does the same in the host's namespace instead (the pod IP is
added to the host ``lo`` and removed afterwards; tcpdump then gets the filter
``host 10.244.1.10`` to keep other loopback traffic out; the NAT variant is skipped).

Inside, like ksniff (``kubectl sniff`` runs ``tcpdump -i any -U -w -``), the capture is
``tcpdump -i any -U -w FILE`` (classic pcap, link type LINUX_SLL2 = 276), stopped with SIGINT.

Actors, all real sockets:

* the app "productpage": ``http.server.ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on
  10.244.1.10:9080. Serving ``/productpage`` it calls ``reviews:9080`` and ``details:9080``
  with python-requests (one keep-alive ``Session`` per upstream, source address bound to the
  pod IP). Its header forwarding deliberately depends on the inbound query:

  - ``/productpage``               x-request-id and every x-b3-* to both calls (correct);
  - ``/productpage?bug=drop``      nothing forwarded to reviews (details correct);
  - ``/productpage?bug=partial``   details gets x-request-id but no B3 (reviews correct);
  - ``/productpage?bug=newtrace``  reviews gets a freshly generated x-b3-traceid (rest forwarded);
  - ``/productpage?bug=malformed`` reviews gets the x-b3-traceid upper-cased;
  - ``/productpage?id=13``         correct forwarding; the reviews call gets a 503.

  ``authorization`` and ``cookie`` are forwarded when present (they are there for redaction
  tests). HEAD /productpage answers from a cache (no upstream calls); POST /login sets a cookie.

* the sidecar's outbound listener: a threaded HTTP/1.1 server on 127.0.0.1:15001 answering
  directly, Envoy-style lower-case headers, head and first body bytes in one write: reviews
  with chunked JSON, later chunks in their own segments (503 for product 13), details with
  Content-Length JSON.

* the sidecar's inbound side: an ``http.client`` keep-alive connection from 127.0.0.6 (the
  source Envoy uses for inbound since Istio 1.10) to 10.244.1.10:9080 with Envoy-like headers.
  Its first request is sent *before* tcpdump starts, so the capture begins mid-connection (no
  SYN, on the inbound connection and on both outbound keep-alive connections). Then curl (the
  real binary, ``--interface 127.0.0.6``) sends a HEAD, a POST with a body and a GET with a
  cookie, each on its own connection.

Captures written (into this directory):

* ``productpage-http1.pcap``: the scenario above, app -> 127.0.0.1:15001 directly;
* ``productpage-http1-nat.pcap``: the same scenario, but the app connects to the services'
  ClusterIPs (reviews 10.96.12.34:9080, details 10.96.56.78:9080) and an iptables
  ``nat OUTPUT REDIRECT --to-ports 15001`` rule sends them to the sidecar, as Istio does. At
  the capture point the requests read ``podIP:p -> 127.0.0.1:15001`` and the replies
  ``ClusterIP:9080 -> podIP:p`` (the "NAT split" of DESIGN.md);
* ``curl-basic.pcap``: plain curl GETs against a server on 127.0.0.1:8080 (200 with
  Content-Length, a chunked 200, a 304 on If-None-Match), two curl processes, keep-alive within
  each.

Variants, for ``tracewire diff`` (``--variant``; the default ``buggy`` is everything above):

* ``diff/productpage-fixed.pcap`` (``--variant fixed``): the same inbound requests, query
  strings included, and the same outbound calls, every one forwarding every tracing header.
  One addition: HEAD /productpage revalidates its cache with ``HEAD reviews /reviews/0`` and
  ``HEAD details /details/0`` (buggy makes no call for HEAD), so that a later capture can lose
  one of those hops (``gone``) and keep the other (``unchanged``).
* ``diff/productpage-newbug.pcap`` (``--variant newbug``): the same inbound requests; the old
  bugs are gone but new ones appear. Every details call loses x-b3-sampled and x-b3-flags;
  reviews is called as ``/reviews/17`` and ``/reviews/42`` in turn and gets ``x-b3-flags: 1``
  added, and its call for the request with an ``authorization`` header loses x-request-id
  (1 broken call of 8, buggy had 3 of 8); a new call ``GET ratings:9080 /ratings/{id}``; HEAD
  revalidates with reviews only.

``diff/EXPECTED.json`` says, for buggy -> fixed, fixed -> newbug and buggy -> newbug, what
became of each hop; it is computed from tshark's reading of the three files (``--write-expected``
writes it again without recording).

Header contents (ids, trace ids, bodies) come from seeded ``random.Random`` and are the same on
every run; timestamps, ports, sequence numbers, Date headers and packet boundaries are not.
Afterwards tshark reads each capture and the script rewrites its entries in MANIFEST.json with
what tshark shows (frames, TCP connections, HTTP messages with the frame completing each head,
and the tracing headers of each message).
"""

from __future__ import annotations

import argparse
import email.utils
import http.client
import itertools
import json
import os
import random
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixturelib import (
    CAPTURES,
    MANIFEST,
    Ids,
    describe_format,
    log,
    run,
    run_in_netns,
    tcpdump,
    tshark_summary,
    update_manifest,
)

NETNS = "tracewire-rec"
POD_IP = "10.244.1.10"
APP_PORT = 9080
ENVOY_INBOUND_SRC = "127.0.0.6"
OUTBOUND_LISTENER = ("127.0.0.1", 15001)
CLUSTER_IPS = {"reviews": "10.96.12.34", "details": "10.96.56.78"}
SERVICE_CIDR = "10.96.0.0/12"
CURL_SERVER = ("127.0.0.1", 8080)

TRACE_HEADERS = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
)
SECRET_HEADERS = ("authorization", "cookie")
MANIFEST_HEADERS = (*TRACE_HEADERS, "host", "authorization", "cookie", "set-cookie")

CAPTURE_NAMES = ("productpage-http1", "productpage-http1-nat", "curl-basic")
# --variant: "buggy" is the scenario of CAPTURE_NAMES; the others record one capture each.
VARIANTS = ("buggy", "fixed", "newbug")
VARIANT_CAPTURES = {"fixed": "diff/productpage-fixed", "newbug": "diff/productpage-newbug"}
VARIANT_OF = {"productpage-http1": "buggy", "productpage-http1-nat": "buggy",
              **{name: v for v, name in VARIANT_CAPTURES.items()}}
# Seeds of the inbound ids: each variant is its own recording, with its own request and trace ids.
INBOUND_SEED = {"buggy": 9080, "fixed": 9081, "newbug": 9082}
NEWBUG_REVIEW_IDS = ("17", "42")  # newbug calls reviews with these ids, in turn
EXPECTED_JSON = CAPTURES / "diff" / "EXPECTED.json"


# --------------------------------------------------------------------------- the app


class SourceAddressAdapter(HTTPAdapter):
    """Bind every connection of a requests Session to one local address."""

    def __init__(self, source_ip: str, **kwargs: Any) -> None:
        self._source = (source_ip, 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source
        super().init_poolmanager(*args, **kwargs)


class App:
    """The productpage application's outbound side (one keep-alive Session per upstream).

    ``variant`` is the release of the app: "buggy" (the query decides the bug), "fixed"
    (every header forwarded) or "newbug" (see ``variant_headers``).
    """

    def __init__(self, nat: bool, variant: str = "buggy") -> None:
        self.variant = variant
        self.ids = Ids(15001)
        self.sessions: dict[str, requests.Session] = {}
        self.base: dict[str, str] = {}
        self.reviews_calls = 0
        services = ("reviews", "details", "ratings") if variant == "newbug" else ("reviews", "details")
        for svc in services:
            s = requests.Session()
            s.mount("http://", SourceAddressAdapter(POD_IP))
            s.headers.clear()
            s.headers.update(
                {
                    "User-Agent": "productpage/1.0 python-requests",
                    "Accept": "application/json",
                    "Connection": "keep-alive",
                }
            )
            self.sessions[svc] = s
            if nat:
                self.base[svc] = f"http://{CLUSTER_IPS[svc]}:9080"
            else:
                self.base[svc] = "http://{}:{}".format(*OUTBOUND_LISTENER)
        self.lock = threading.Lock()

    def call(self, svc: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
        hdrs = {"Host": f"{svc}:9080", **headers}
        r = self.sessions[svc].get(self.base[svc] + path, headers=hdrs, timeout=5)
        return r.status_code, r.text

    def head(self, svc: str, path: str, headers: dict[str, str]) -> int:
        hdrs = {"Host": f"{svc}:9080", **headers}
        return self.sessions[svc].head(self.base[svc] + path, headers=hdrs, timeout=5).status_code

    def reviews_path(self, product: str) -> str:
        """buggy and fixed: /reviews/<product>; newbug: /reviews/17, /reviews/42, ... in turn."""
        if self.variant != "newbug":
            return f"/reviews/{product}"
        with self.lock:
            rid = NEWBUG_REVIEW_IDS[self.reviews_calls % len(NEWBUG_REVIEW_IDS)]
            self.reviews_calls += 1
        return f"/reviews/{rid}"

    def variant_headers(self, inbound: dict[str, str]) -> dict[str, dict[str, str]]:
        """What the fixed and newbug releases send to each upstream; the query does not matter.

        fixed: every tracing header to every upstream. newbug: details loses x-b3-sampled and
        x-b3-flags; reviews gets ``x-b3-flags: 1`` added (debug, not a break), and loses
        x-request-id when the inbound request has an authorization header; ratings is correct.
        """
        correct = {h: inbound[h] for h in (*TRACE_HEADERS, *SECRET_HEADERS) if h in inbound}
        out = {"reviews": dict(correct), "details": dict(correct)}
        if self.variant == "newbug":
            out["details"] = {h: v for h, v in correct.items() if h not in ("x-b3-sampled", "x-b3-flags")}
            out["reviews"]["x-b3-flags"] = "1"
            if "authorization" in inbound:
                del out["reviews"]["x-request-id"]
            out["ratings"] = dict(correct)
        return out

    def outbound_headers(
        self, inbound: dict[str, str], bug: str | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        correct = {h: inbound[h] for h in (*TRACE_HEADERS, *SECRET_HEADERS) if h in inbound}
        reviews, details = dict(correct), dict(correct)
        if bug == "drop":
            reviews = {h: v for h, v in correct.items() if h in SECRET_HEADERS}
        elif bug == "partial":
            details = {h: v for h, v in correct.items() if h == "x-request-id" or h in SECRET_HEADERS}
        elif bug == "newtrace":
            with self.lock:
                reviews["x-b3-traceid"] = self.ids.trace_id()
        elif bug == "malformed" and "x-b3-traceid" in reviews:
            reviews["x-b3-traceid"] = reviews["x-b3-traceid"].upper()
        return reviews, details


def render_page(product: str, reviews: tuple[int, str], details: tuple[int, str]) -> bytes:
    parts = [
        "<!DOCTYPE html>",
        "<html><head><title>Simple Bookstore App</title></head><body>",
        f"<h1>The Comedy of Errors (product {product})</h1>",
    ]
    if details[0] == 200:
        d = json.loads(details[1])
        parts.append(f"<p>{d['author']}, {d['year']}, {d['pages']} pages, {d['publisher']}</p>")
    else:
        parts.append("<p>Sorry, product details are currently unavailable.</p>")
    if reviews[0] == 200:
        for rv in json.loads(reviews[1])["reviews"]:
            parts.append(f"<blockquote>{rv['text']} <small>{rv['reviewer']}</small></blockquote>")
    else:
        parts.append(f"<p>Sorry, product reviews are currently unavailable ({reviews[0]}).</p>")
    parts.append("</body></html>")
    return ("\n".join(parts) + "\n").encode()


class ProductPageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    app: App  # set on the subclass made by start_app()

    def version_string(self) -> str:
        return "productpage/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log("app: " + format % args)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None,
              head: bool = False) -> None:  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _inbound(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path != "/productpage":
            self._send(404, b"not found\n", "text/plain")
            return
        product = query.get("id", ["0"])[0]
        if self.app.variant != "buggy":
            to = self.app.variant_headers(self._inbound())
            reviews = self.app.call("reviews", self.app.reviews_path(product), to["reviews"])
            details = self.app.call("details", f"/details/{product}", to["details"])
            if "ratings" in to:
                self.app.call("ratings", f"/ratings/{product}", to["ratings"])
            self._send(200, render_page(product, reviews, details), "text/html; charset=utf-8")
            return
        bug = query.get("bug", [None])[0]
        to_reviews, to_details = self.app.outbound_headers(self._inbound(), bug)
        reviews = self.app.call("reviews", f"/reviews/{product}", to_reviews)
        details = self.app.call("details", f"/details/{product}", to_details)
        body = render_page(product, reviews, details)
        self._send(200, body, "text/html; charset=utf-8")

    def do_HEAD(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/productpage":
            self._send(404, b"not found\n", "text/plain", head=True)
            return
        # From the page cache: no upstream calls (buggy), Content-Length of the body not sent.
        # fixed revalidates the cache with HEAD to reviews and details, newbug with reviews only.
        if self.app.variant != "buggy":
            correct = {h: v for h, v in self._inbound().items() if h in (*TRACE_HEADERS, *SECRET_HEADERS)}
            self.app.head("reviews", "/reviews/0", correct)
            if self.app.variant == "fixed":
                self.app.head("details", "/details/0", correct)
        body = render_page("0", (503, ""), (503, ""))
        self._send(200, body, "text/html; charset=utf-8", head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        if urlsplit(self.path).path != "/login":
            self._send(404, b"not found\n", "text/plain")
            return
        user = form.get("username", ["anonymous"])[0]
        self._send(
            302,
            b"",
            "text/html; charset=utf-8",
            {"Location": "/productpage", "Set-Cookie": f"session={user}.{SESSION_TOKEN}; Path=/"},
        )


SESSION_TOKEN = Ids(443).token(32)


# --------------------------------------------------------------------------- the sidecar


def reviews_json(product: str) -> bytes:
    rng = random.Random(f"reviews-{product}")
    reviews = [
        {"reviewer": "Reviewer1", "text": "An extremely entertaining play by Shakespeare."},
        {"reviewer": "Reviewer2", "text": "Absolutely fun and entertaining. " * 2},
    ]
    doc = {
        "id": product,
        "podname": f"reviews-v1-{rng.getrandbits(32):08x}",
        "clustername": "null",
        "reviews": reviews,
    }
    return json.dumps(doc).encode()


def details_json(product: str) -> bytes:
    doc = {
        "id": int(product),
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }
    return json.dumps(doc).encode()


ENVOY_503 = b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"


class SidecarOutboundHandler(BaseHTTPRequestHandler):
    """Answers as Envoy would, lower-case headers, without asking any upstream."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        log("sidecar: " + format % args)

    def _send(self, status: int, headers: list[tuple[str, str]], first: bytes) -> None:
        """Head and the first body bytes in one write, as Envoy flushes them together (the
        head is made here, as send_response_only and send_header would buffer it)."""
        lines = [f"{self.protocol_version} {status} {self.responses[status][0]}",
                 *(f"{k}: {v}" for k, v in headers), f"date: {email.utils.formatdate(usegmt=True)}",
                 "server: envoy", "x-envoy-upstream-service-time: 3"]  # fmt: skip
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + first)

    def do_GET(self) -> None:
        svc = self.headers.get("Host", "").split(":")[0]
        product = self.path.rstrip("/").rsplit("/", 1)[-1]
        if svc == "reviews" and product == "13":
            headers = [("content-length", str(len(ENVOY_503))), ("content-type", "text/plain")]
            self._send(503, headers, ENVOY_503)
        elif svc == "reviews":
            # chunked, as when the upstream streams its body: the chunks after the first go
            # out in their own segments
            body = reviews_json(product)
            cuts = [0, 40, len(body) // 2 + 7, len(body)]
            chunks = [b"%x\r\n%s\r\n" % (b - a, body[a:b]) for a, b in itertools.pairwise(cuts)]
            headers = [("content-type", "application/json"), ("transfer-encoding", "chunked")]
            self._send(200, headers, chunks[0])
            for chunk in chunks[1:]:
                self.wfile.write(chunk)
            self.wfile.write(b"0\r\n\r\n")
        elif svc == "details":
            body = details_json(product)
            headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
            self._send(200, headers, body)
        elif svc == "ratings":  # only the newbug variant calls ratings
            body = json.dumps({"id": int(product), "ratings": {"Reviewer1": 5, "Reviewer2": 4}}).encode()
            headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
            self._send(200, headers, body)
        else:
            self._send(404, [("content-length", "0")], b"")

    def do_HEAD(self) -> None:
        """Only the fixed and newbug variants send HEAD (cache revalidation): no body."""
        svc = self.headers.get("Host", "").split(":")[0]
        product = self.path.rstrip("/").rsplit("/", 1)[-1]
        if svc in ("reviews", "details") and product.isdigit():
            body = reviews_json(product) if svc == "reviews" else details_json(product)
            headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
            self._send(200, headers, b"")
        else:
            self._send(404, [("content-length", "0")], b"")


class CurlServerHandler(BaseHTTPRequestHandler):
    """A plain web server for curl-basic.pcap: Content-Length, chunked, 304."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    etag = '"5f2b-1c"'

    def version_string(self) -> str:
        return "tiny/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        log("web: " + format % args)

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"first chunk\n", b"second, longer chunk of text\n", b"third\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/etag" and self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.send_header("ETag", self.etag)
            self.end_headers()
        else:
            body = b"hello from tracewire\n" * (3 if self.path == "/etag" else 1)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            if self.path == "/etag":
                self.send_header("ETag", self.etag)
            self.end_headers()
            self.wfile.write(body)


def serve(handler: type[BaseHTTPRequestHandler], addr: tuple[str, int]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(addr, handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --------------------------------------------------------------------------- the capture


class EnvoyInbound:
    """The sidecar's inbound leg: one keep-alive connection from 127.0.0.6 to the app."""

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.conn = http.client.HTTPConnection(
            POD_IP, APP_PORT, timeout=10, source_address=(ENVOY_INBOUND_SRC, 0)
        )
        self.n = 0

    def context(self, with_parent: bool) -> list[tuple[str, str]]:
        ctx = [
            ("x-request-id", self.ids.request_id()),
            ("x-b3-traceid", self.ids.trace_id()),
            ("x-b3-spanid", self.ids.span_id()),
        ]
        if with_parent:
            ctx.append(("x-b3-parentspanid", self.ids.span_id()))
        ctx.append(("x-b3-sampled", "1"))
        return ctx

    def get(self, path: str, extra: list[tuple[str, str]] | None = None) -> int:
        self.n += 1
        headers = [
            ("host", "productpage:9080"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) tracewire-fixture/1.0"),
            ("accept", "text/html"),
            ("x-forwarded-for", "10.244.0.1"),
            ("x-forwarded-proto", "http"),
            ("x-envoy-attempt-count", "1"),
            ("x-envoy-internal", "true"),
            *self.context(with_parent=self.n % 2 == 1),
            *(extra or []),
        ]
        self.conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            self.conn.putheader(k, v)
        self.conn.endheaders()
        resp = self.conn.getresponse()
        resp.read()
        log(f"inbound GET {path} -> {resp.status}")
        return resp.status


def curl(*args: str) -> None:
    proc = run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} ", *args, check=False)
    log(f"curl {' '.join(args[-1:])} -> {proc.stdout.strip()} {proc.stderr.strip()}")


def record_productpage(path: Path, nat: bool, bpf: list[str], variant: str = "buggy") -> None:
    if nat:
        run("ip", "route", "replace", SERVICE_CIDR, "dev", "lo")
        run(
            "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", SERVICE_CIDR,
            "-j", "REDIRECT", "--to-ports", str(OUTBOUND_LISTENER[1]),
        )  # fmt: skip
    app = App(nat, variant)
    handler = type("Handler", (ProductPageHandler,), {"app": app})
    servers = [serve(SidecarOutboundHandler, OUTBOUND_LISTENER), serve(handler, (POD_IP, APP_PORT))]
    ids = Ids(INBOUND_SEED[variant])
    envoy = EnvoyInbound(ids)
    try:
        envoy.get("/productpage")  # before the capture: it starts mid-connection
        with tcpdump({None: path}, bpf):
            envoy.get("/productpage")
            for bug in ("drop", "partial", "newtrace", "malformed"):
                envoy.get(f"/productpage?bug={bug}")
            envoy.get("/productpage?id=13")
            envoy.get(
                "/productpage?id=1",
                [
                    ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9." + ids.token(40)),
                    ("cookie", f"session=jason.{SESSION_TOKEN}; theme=dark"),
                ],
            )
            src = ["--interface", ENVOY_INBOUND_SRC, "-H", "host: productpage:9080"]
            url = f"http://{POD_IP}:{APP_PORT}"
            b3 = [f"-H{k}: {v}" for k, v in envoy.context(with_parent=True)]
            curl(*src, *b3, "-I", f"{url}/productpage")
            b3 = [f"-H{k}: {v}" for k, v in envoy.context(with_parent=False)]
            curl(*src, *b3, "--data", "username=jason&passwd=hunter2", f"{url}/login")
            b3 = [f"-H{k}: {v}" for k, v in envoy.context(with_parent=True)]
            curl(*src, *b3, "-b", f"session=jason.{SESSION_TOKEN}", f"{url}/productpage?id=2")
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        if nat:
            run("iptables", "-t", "nat", "-F", "OUTPUT", check=False)
            run("ip", "route", "del", SERVICE_CIDR, "dev", "lo", check=False)


def record_curl_basic(path: Path, bpf: list[str]) -> None:
    server = serve(CurlServerHandler, CURL_SERVER)
    url = "http://{}:{}".format(*CURL_SERVER)
    try:
        with tcpdump({None: path}, bpf):
            curl(f"{url}/", "-o", "/dev/null", f"{url}/chunked")  # one process: one keep-alive connection
            curl("-H", 'If-None-Match: "5f2b-1c"', f"{url}/etag")
    finally:
        server.shutdown()
        server.server_close()


def capture_path(name: str, out: Path | None = None) -> Path:
    return out if out is not None else CAPTURES / f"{name}.pcap"


def inside(names: list[str], host_lo: bool, out: Path | None = None) -> None:
    """Runs in the pod namespace (or the host's, with --host-lo)."""
    run("ip", "link", "set", "lo", "up")
    run("ip", "addr", "replace", f"{POD_IP}/32", "dev", "lo")
    try:
        for name in names:
            path = capture_path(name, out)
            path.parent.mkdir(parents=True, exist_ok=True)
            log(f"recording {path}")
            if name == "curl-basic":
                record_curl_basic(path, ["host", "127.0.0.1", "and", "port", "8080"] if host_lo else [])
            else:
                bpf = ["host", POD_IP] if host_lo else []
                record_productpage(path, nat=name.endswith("-nat"), bpf=bpf, variant=VARIANT_OF[name])
    finally:
        if host_lo:
            run("ip", "addr", "del", f"{POD_IP}/32", "dev", "lo", check=False)


# --------------------------------------------------------------------------- manifest

TESTS = {
    "productpage-http1": (
        "ksniff-style capture of an emulated Istio pod: inbound keep-alive leg from 127.0.0.6 "
        "started before the capture (no SYN), outbound legs to 127.0.0.1:15001 with correct and "
        "deliberately broken trace-header forwarding (drop, partial, newtrace, malformed), a 503, "
        "chunked and Content-Length bodies, curl HEAD/POST/cookie, authorization and cookie headers"
    ),
    "productpage-http1-nat": (
        "the same scenario with Istio's NAT split: outbound requests podIP:p -> 127.0.0.1:15001, "
        "their responses ClusterIP:9080 -> podIP:p (two one-way conversations per connection)"
    ),
    "curl-basic": "plain curl on 127.0.0.1:8080: 200 Content-Length, chunked 200, 304 (If-None-Match)",
    "diff/productpage-fixed": (
        "tracewire diff, after productpage-http1.pcap: the same inbound requests and outbound calls "
        "with every tracing header forwarded (no breaks); HEAD /productpage now revalidates with HEAD "
        "to reviews and details"
    ),
    "diff/productpage-newbug": (
        "tracewire diff, after productpage-http1.pcap or diff/productpage-fixed.pcap: the old bugs "
        "fixed, new ones: details loses x-b3-sampled on every call, reviews (/reviews/17, /reviews/42, "
        "x-b3-flags added) loses x-request-id on 1 call of 8, a new hop to ratings, HEAD revalidates "
        "with reviews only"
    ),
}

SCENARIO = [
    "inbound GET /productpage (sent before the capture started; only its absence is visible)",
    "inbound GET /productpage: correct forwarding to reviews and details",
    "inbound GET /productpage?bug=drop: reviews call has no tracing headers",
    "inbound GET /productpage?bug=partial: details call has x-request-id but no B3",
    "inbound GET /productpage?bug=newtrace: reviews call has a new x-b3-traceid",
    "inbound GET /productpage?bug=malformed: reviews call has the x-b3-traceid upper-cased",
    "inbound GET /productpage?id=13: correct forwarding, reviews answers 503",
    "inbound GET /productpage?id=1 with authorization and cookie: correct, both forwarded",
    "curl HEAD /productpage (new connection from 127.0.0.6, no upstream calls)",
    "curl POST /login with a form body: 302 with set-cookie",
    "curl GET /productpage?id=2 with cookie: correct forwarding",
]


SCENARIO_FIXED = [
    "inbound GET /productpage (sent before the capture started; only its absence is visible)",
    "inbound GET /productpage: correct forwarding to reviews /reviews/0 and details /details/0",
    "inbound GET /productpage?bug=drop: the query is ignored now, correct forwarding",
    "inbound GET /productpage?bug=partial: correct forwarding",
    "inbound GET /productpage?bug=newtrace: correct forwarding",
    "inbound GET /productpage?bug=malformed: correct forwarding",
    "inbound GET /productpage?id=13: correct forwarding, reviews answers 503",
    "inbound GET /productpage?id=1 with authorization and cookie: correct, both forwarded",
    "curl HEAD /productpage (new connection from 127.0.0.6): revalidates with HEAD reviews /reviews/0 "
    "and HEAD details /details/0, correct forwarding",
    "curl POST /login with a form body: 302 with set-cookie",
    "curl GET /productpage?id=2 with cookie: correct forwarding",
]

SCENARIO_NEWBUG = [
    "inbound GET /productpage (sent before the capture started; only its absence is visible)",
    "every inbound GET /productpage below: reviews is called as /reviews/17 and /reviews/42 in turn, "
    "with x-b3-flags: 1 added; details loses x-b3-sampled (and x-b3-flags); a new call "
    "ratings /ratings/<id>, correct forwarding",
    "inbound GET /productpage: as above",
    "inbound GET /productpage?bug=drop: as above (the query is ignored)",
    "inbound GET /productpage?bug=partial: as above",
    "inbound GET /productpage?bug=newtrace: as above",
    "inbound GET /productpage?bug=malformed: as above",
    "inbound GET /productpage?id=13: as above (reviews /reviews/<17|42> answers 200)",
    "inbound GET /productpage?id=1 with authorization and cookie: as above, and the reviews call "
    "also loses x-request-id",
    "curl HEAD /productpage (new connection from 127.0.0.6): revalidates with HEAD reviews /reviews/0 "
    "only, correct forwarding",
    "curl POST /login with a form body: 302 with set-cookie",
    "curl GET /productpage?id=2 with cookie: as above",
]

SCENARIOS = {"buggy": SCENARIO, "fixed": SCENARIO_FIXED, "newbug": SCENARIO_NEWBUG}


def expected_breaks(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where propagation breaks, judged from the headers tshark shows.

    Each outbound request (any Host but productpage) is attributed to the inbound request
    (Host productpage) with the same x-request-id, else with the same x-b3-traceid, else to
    the latest inbound one before it ("by": "x-request-id", "trace-id" or "time-window"), and
    compared with it. Kinds, the first that applies: no-tracing-headers, b3-missing (no
    x-b3-traceid), b3-traceid-malformed, b3-traceid-changed, x-request-id-missing,
    b3-sampled-missing (the last two only occur in the newbug variant).
    """
    breaks: list[dict[str, Any]] = []
    inbound: list[dict[str, Any]] = []
    for m in messages:
        if m["kind"] != "request":
            continue
        h = m.get("headers", {})
        if h.get("host", "").startswith("productpage"):
            inbound.append(m)
            continue
        rid = h.get("x-request-id")
        trace = h.get("x-b3-traceid")
        parent = next((i for i in reversed(inbound) if rid and i["headers"].get("x-request-id") == rid), None)
        by = "x-request-id"
        if parent is None:
            same_trace = (i for i in reversed(inbound) if trace and i["headers"].get("x-b3-traceid") == trace)
            parent = next(same_trace, None)
            by = "trace-id"
        if parent is None:
            parent, by = inbound[-1], "time-window"
        ph = parent["headers"]
        if not any(k in h for k in TRACE_HEADERS):
            kind = "no-tracing-headers"
        elif trace is None:
            kind = "b3-missing"
        elif trace != ph.get("x-b3-traceid") and trace.lower() == ph.get("x-b3-traceid"):
            kind = "b3-traceid-malformed"
        elif trace != ph.get("x-b3-traceid"):
            kind = "b3-traceid-changed"
        elif "x-request-id" in ph and "x-request-id" not in h:
            kind = "x-request-id-missing"
        elif "x-b3-sampled" in ph and "x-b3-sampled" not in h:
            kind = "b3-sampled-missing"
        else:
            continue
        breaks.append(
            {"inbound_frame": parent["frame"], "outbound_frame": m["frame"], "kind": kind, "by": by}
        )
    return breaks


TSHARK_ARGS = ["-d", "tcp.port==9080,http", "-d", "tcp.port==15001,http"]


def manifest_entry(name: str, path: Path | None = None) -> dict[str, Any]:
    path = capture_path(name, path)
    args = TSHARK_ARGS
    summary = tshark_summary(path, args if name != "curl-basic" else [], MANIFEST_HEADERS)
    variant = VARIANT_OF.get(name, "buggy")
    entry: dict[str, Any] = {
        "file": str(path.resolve().relative_to(CAPTURES)),
        "made_by": "record_http1.py" if variant == "buggy" else f"record_http1.py --variant {variant}",
        "tests": TESTS[name],
        **describe_format(path),
        "frames": summary["frames"],
        "tcp_connections": summary["tcp_connections"],
        "http_messages": summary["http_messages"],
        "anomalies": [],
        "error": None,
    }
    if name != "curl-basic":
        entry["tshark"] = {"args": args}
        entry["scenario"] = SCENARIOS[variant]
        entry["expected_breaks"] = expected_breaks(summary["http_messages"])
    if name.endswith("-nat"):
        # Each outbound connection shows up as two one-way conversations (request half to
        # 127.0.0.1:15001, response half from the ClusterIP); tshark counts them apart.
        entry["tshark"]["tcp_connections"] = summary["tcp_connections"]
        entry["tcp_connections"] = summary["tcp_connections"] - 2
        entry["tshark"]["note"] = (
            "tshark counts each of the 2 outbound connections twice (the NAT split halves) and "
            "pairs no outbound request with its response; paired by the app-side endpoint "
            "there are 2 fewer connections"
        )
    return entry


# --------------------------------------------------------------------------- diff expectations

DIFF_PAIRS = (("buggy", "fixed"), ("fixed", "newbug"), ("buggy", "newbug"))
CAPTURE_OF_VARIANT = {"buggy": "productpage-http1", **VARIANT_CAPTURES}
CHANGE_VALUES = ("fixed", "improved", "regressed", "broken", "unchanged", "new", "gone")
# expected_breaks kinds -> the finding kinds of tracewire analyze
FINDING_KIND = {
    "no-tracing-headers": "missing",
    "b3-missing": "partial",
    "b3-traceid-changed": "changed",
    "b3-traceid-malformed": "malformed",
    "x-request-id-missing": "partial",
    "b3-sampled-missing": "partial",
}
_UUID_SEGMENT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX_SEGMENT = re.compile(r"(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}")


def path_template(path: str) -> str:
    """``/reviews/17?x=1`` -> ``/reviews/{n}``: the query goes; all-digit segments become {n},
    UUIDs {uuid}, hex strings of 8 or more characters with a digit among them {hex}."""
    out = []
    for seg in path.split("?", 1)[0].split("/"):
        if seg.isdigit():
            seg = "{n}"
        elif _UUID_SEGMENT.fullmatch(seg):
            seg = "{uuid}"
        elif _HEX_SEGMENT.fullmatch(seg):
            seg = "{hex}"
        out.append(seg)
    return "/".join(out)


HopKey = tuple[str, str, str, str, str]


def hop_stats(path: Path) -> dict[HopKey, dict[str, Any]]:
    """The outbound hops of one productpage capture as tshark shows them: per (source, target
    authority, protocol, method, path template) the calls, the broken calls (expected_breaks),
    the paths and the tracing headers seen on any of its calls."""
    messages = tshark_summary(path, TSHARK_ARGS, MANIFEST_HEADERS)["http_messages"]
    kind_at = {b["outbound_frame"]: b["kind"] for b in expected_breaks(messages)}
    hops: dict[HopKey, dict[str, Any]] = {}
    for m in messages:
        host = m.get("headers", {}).get("host", "")
        if m["kind"] != "request" or host.startswith("productpage"):
            continue
        key = ("productpage", host, "http/1.1", m["method"], path_template(m["path"]))
        hop = hops.setdefault(
            key, {"calls": 0, "broken_calls": 0, "breaks": {}, "paths": [], "headers": set()}
        )
        hop["calls"] += 1
        if m["frame"] in kind_at:
            hop["broken_calls"] += 1
            hop["breaks"][kind_at[m["frame"]]] = hop["breaks"].get(kind_at[m["frame"]], 0) + 1
        if m["path"] not in hop["paths"]:
            hop["paths"].append(m["path"])
        hop["headers"].update(h for h in TRACE_HEADERS if h in m["headers"])
    return hops


def hop_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None:
        return "new"
    if after is None:
        return "gone"
    b, a = before["broken_calls"], after["broken_calls"]
    if b and not a:
        return "fixed"
    if a and not b:
        return "broken"
    if a and b and a / after["calls"] != b / before["calls"]:
        return "improved" if a / after["calls"] < b / before["calls"] else "regressed"
    return "unchanged"


def _hop_json(key: HopKey) -> dict[str, str]:
    return dict(zip(("source", "target", "protocol", "method", "path"), key, strict=True))


def diff_expectations() -> dict[str, Any]:
    files = {v: f"{CAPTURE_OF_VARIANT[v]}.pcap" for v in VARIANTS}
    stats = {v: hop_stats(CAPTURES / f) for v, f in files.items()}
    variants: dict[str, Any] = {}
    for v, hops in stats.items():
        variants[v] = {
            "file": files[v],
            "hops": [
                {**_hop_json(k), "calls": h["calls"], "broken_calls": h["broken_calls"],
                 "breaks": dict(sorted(h["breaks"].items())), "paths": h["paths"],
                 "tracing_headers": [n for n in TRACE_HEADERS if n in h["headers"]]}
                for k, h in sorted(hops.items())
            ],
        }
    pairs = []
    coverage: dict[str, list[str]] = {c: [] for c in CHANGE_VALUES}
    for bv, av in DIFF_PAIRS:
        before, after = stats[bv], stats[av]
        changed: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after)):
            b, a = before.get(key), after.get(key)
            change = hop_change(b, a)
            # headers_added / headers_removed only for a hop on both sides
            added: set[str] = a["headers"] - b["headers"] if a is not None and b is not None else set()
            removed: set[str] = b["headers"] - a["headers"] if a is not None and b is not None else set()
            changed.append({
                **_hop_json(key),
                "change": change,
                "before": {"calls": b["calls"], "broken_calls": b["broken_calls"]} if b else None,
                "after": {"calls": a["calls"], "broken_calls": a["broken_calls"]} if a else None,
                "headers_added": [n for n in TRACE_HEADERS if n in added],
                "headers_removed": [n for n in TRACE_HEADERS if n in removed],
            })
            coverage[change].append(f"{bv} -> {av}")
        differs = any(h["change"] != "unchanged" or h["headers_added"] or h["headers_removed"]
                      for h in changed)  # fmt: skip
        worse = any(h["change"] in ("regressed", "broken")
                    or (h["change"] == "new" and h["after"]["broken_calls"]) for h in changed)
        pairs.append({
            "before": bv, "after": av, "before_file": files[bv], "after_file": files[av],
            "changes": {c: n for c in CHANGE_VALUES if (n := sum(h["change"] == c for h in changed))},
            "differs": differs,
            "worse": worse,
            "hops": changed,
        })
    return {
        "about": "What tracewire diff should find between the productpage captures: for each pair, "
                 "the change of every outbound hop of the pod productpage. Computed by "
                 "captures/record_http1.py from tshark's reading of the files (expected_breaks "
                 "marks the broken calls), not by tracewire.",
        "hop_key": ["source", "target", "protocol", "method", "path"],
        "path": "the request path without its query; all-digit segments -> {n}, UUIDs -> {uuid}, "
                "hex strings of 8+ characters with a digit -> {hex}",
        "change": "new / gone: the hop is only in the after / before capture; fixed: broken calls "
                  "before > 0 and after = 0; broken: before = 0 and after > 0; both > 0: improved or "
                  "regressed by the broken fraction (broken calls / calls), unchanged when equal; "
                  "else unchanged",
        "headers": "tracing headers seen on any call of the hop; headers_added / headers_removed only "
                   "when the hop is on both sides",
        "worse": "a hop regressed or broke, or a new hop has broken calls (what --fail-on-regression "
                 "looks for)",
        "finding_kinds": FINDING_KIND,
        "variants": variants,
        "pairs": pairs,
        "coverage": {c: sorted(set(v), key=v.index) for c, v in coverage.items()},
    }


def write_expected() -> None:
    EXPECTED_JSON.parent.mkdir(exist_ok=True)
    EXPECTED_JSON.write_text(json.dumps(diff_expectations(), indent=1) + "\n")
    log(f"wrote {EXPECTED_JSON.relative_to(CAPTURES)}")


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--only", action="append", choices=CAPTURE_NAMES,
                    help="record only this one of the buggy-variant captures")
    ap.add_argument("--variant", action="append", choices=VARIANTS,
                    help="buggy (default): the captures above; fixed / newbug: diff/productpage-VARIANT.pcap "
                         "(repeat for several)")
    ap.add_argument("--out", type=Path, help="write the capture to this file (when recording one capture); "
                                              "outside captures/ MANIFEST.json is left alone")
    ap.add_argument("--write-expected", action="store_true",
                    help="only write diff/EXPECTED.json again from the captures there are (no root)")
    ap.add_argument("--host-lo", action="store_true", help="use the host namespace, not a netns")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--name", action="append", default=[], help=argparse.SUPPRESS)
    ns = ap.parse_args()
    out = ns.out.resolve() if ns.out else None
    if ns.inside:
        inside(ns.name, ns.host_lo, out)
        return 0
    if ns.write_expected:
        write_expected()
        return 0
    variants = list(dict.fromkeys(ns.variant or ["buggy"]))
    if ns.only and "buggy" not in variants:
        ap.error("--only chooses among the buggy-variant captures")
    names: list[str] = []
    for v in variants:
        names += list(ns.only or CAPTURE_NAMES) if v == "buggy" else [VARIANT_CAPTURES[v]]
    if ns.host_lo:
        names = [n for n in names if not n.endswith("-nat")]
    if out is not None and len(names) != 1:
        ap.error(f"--out needs exactly one capture, not {len(names)}: use --only or a single --variant")
    if os.geteuid() != 0:
        print("record_http1.py needs root (network namespace, tcpdump)", file=sys.stderr)
        return 2
    socket.setdefaulttimeout(10)
    if ns.host_lo:
        inside(names, host_lo=True, out=out)
    else:
        argv = [__file__, "--inside", *(x for n in names for x in ("--name", n))]
        run_in_netns(NETNS, argv + (["--out", str(out)] if out is not None else []))
    listed = [n for n in names if capture_path(n, out).resolve().is_relative_to(CAPTURES)]
    for n in names:
        p = capture_path(n, out)
        log(f"{p}: {p.stat().st_size} bytes" + ("" if n in listed else " (outside captures/: not listed)"))
    if not listed:  # a recording outside captures/ (a trial run, a comparison) leaves the manifest alone
        return 0
    # Entries of the files this script makes but did not make this time are kept; any other
    # entry of this script (a file it no longer makes, or wrote with --out) is dropped.
    entries = [manifest_entry(n, capture_path(n, out)) for n in listed]
    ours = {f"{n}.pcap" for n in (*CAPTURE_NAMES, *VARIANT_CAPTURES.values())} - {e["file"] for e in entries}
    current = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else []
    entries += [e for e in current
                if e["file"] in ours and str(e.get("made_by")).startswith("record_http1.py")]
    update_manifest(entries, "record_http1.py")
    if out is None and any(n in VARIANT_CAPTURES.values() for n in names):
        if all((CAPTURES / f"{CAPTURE_OF_VARIANT[v]}.pcap").exists() for v in VARIANTS):
            write_expected()
    return 0


if __name__ == "__main__":
    sys.exit(main())
