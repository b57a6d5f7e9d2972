"""The fixture scripts of captures/: their shared pieces (fixturelib.py, meshlib.py) and what
the scripts promise that can be checked without recording. Crafting is deterministic and gives
the committed edge files back byte for byte; the mesh recorders' manifest code still describes
the committed pod captures as MANIFEST.json does. Recording itself needs root, network
namespaces and tcpdump, so it is not run here (captures/README.md says how a recording is
checked against the committed one)."""

from __future__ import annotations

import importlib
import io
import json
import re
import socket
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"


def load(name: str) -> Any:
    """A module of captures/: the scripts import each other by plain name, as when run there."""
    if str(CAPTURES) not in sys.path:
        sys.path.append(str(CAPTURES))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def fixturelib() -> Any:
    return load("fixturelib")


@pytest.fixture(scope="module")
def meshlib() -> Any:
    return load("meshlib")


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


# --------------------------------------------------------------------------- ids


def test_ids_are_envoy_shaped_and_the_same_for_a_seed(fixturelib: Any) -> None:
    a, b = fixturelib.Ids(9080), fixturelib.Ids(9080)
    rids = [a.request_id() for _ in range(100)]
    assert rids == [b.request_id() for _ in range(100)]
    for rid in rids:
        assert str(uuid.UUID(rid)) == rid
        assert rid[14] == "9"  # Envoy's "sampled" mark where a UUID has its version
    assert re.fullmatch(r"[0-9a-f]{32}", a.trace_id())
    assert re.fullmatch(r"[0-9a-f]{16}", a.span_id())
    assert re.fullmatch(r"[0-9a-f]{16}", a.trace_id64())
    assert fixturelib.Ids(9081).request_id() != fixturelib.Ids(9080).request_id()


def test_safe_ids_from_threads_are_the_seeds_ids_each_whole(fixturelib: Any) -> None:
    safe, plain = fixturelib.SafeIds(443), fixturelib.Ids(443)
    drawn: list[str] = []
    lock = threading.Lock()

    def draw() -> None:
        for _ in range(300):
            span = safe.span_id()
            with lock:
                drawn.append(span)

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(drawn) == sorted(plain.span_id() for _ in range(1200))


# --------------------------------------------------------------------------- HTTP/1.1 framing


def test_a_chunked_body_is_kept_as_on_the_wire(meshlib: Any) -> None:
    first = (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
             b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n")  # fmt: skip
    rfile = io.BytesIO(first + b"HTTP/1.1 204 No Content\r\nserver: envoy\r\n\r\n")
    msg = meshlib.read_message(rfile, request=False)
    assert msg.get("transfer-encoding") == "chunked"
    assert msg.body == b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"
    assert msg.wire() == first
    after = meshlib.read_message(rfile, request=False)
    assert (after.start, after.headers, after.body) == ("HTTP/1.1 204 No Content", [("server", "envoy")], b"")
    assert meshlib.read_message(rfile, request=False) is None


def test_bodies_are_framed_by_method_status_and_length(meshlib: Any) -> None:
    head = io.BytesIO(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\n"
                      b"content-length: 9\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil close")  # fmt: skip
    assert meshlib.read_message(head, request=False, method="HEAD").body == b""
    assert meshlib.read_message(head, request=False).body == b""  # 304: never a body
    assert meshlib.read_message(head, request=False).body == b"until close"
    requests = io.BytesIO(b"\r\nPOST /login HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n")
    post = meshlib.read_message(requests, request=True)
    assert (post.start, post.get("content-length"), post.body) == ("POST /login HTTP/1.1", "3", b"abc")
    get = meshlib.read_message(requests, request=True)
    assert (get.start, get.body) == ("GET / HTTP/1.1", b"")  # a request without a length has no body


def test_the_end_of_the_stream_inside_a_message_is_an_error(meshlib: Any) -> None:
    with pytest.raises(EOFError):
        meshlib.read_message(io.BytesIO(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"), request=False)
    with pytest.raises(EOFError):
        meshlib.read_message(io.BytesIO(b"GET / HTTP/1.1\r\nhost: a"), request=True)


# --------------------------------------------------------------------------- the sidecar's loops


def test_proxy_http_retries_a_503_once_and_answers_for_itself(meshlib: Any) -> None:
    message = meshlib.Message
    client, down = socket.socketpair()
    up, server = socket.socketpair()
    seen: list[tuple[str, str]] = []  # (request line, attempt) as the upstream got them

    def upstream() -> None:
        rfile = server.makefile("rb")
        tries: dict[str, int] = {}
        while (req := meshlib.read_message(rfile, request=True)) is not None:
            seen.append((req.start, req.get("x-attempt") or ""))
            tries[req.start] = tries.get(req.start, 0) + 1
            flaky = "/flaky" in req.start and tries[req.start] == 1
            status = "503 Service Unavailable" if flaky or "/down" in req.start else "200 OK"
            server.sendall(message(f"HTTP/1.1 {status}", [("content-length", "2")], b"ok").wire())

    def own(req: Any) -> Any:
        return message("HTTP/1.1 429 Too Many Requests", [("content-length", "0")]) if "/local" in req.start \
            else None

    def forward(req: Any, attempt: int) -> Any:
        return message(req.start, [*req.headers, ("x-attempt", str(attempt))], req.body)

    def back(resp: Any, elapsed_ms: int) -> Any:
        return message(resp.start, [*resp.headers, ("x-proxied", "1")], resp.body)

    threads = [threading.Thread(target=upstream),
               threading.Thread(target=meshlib.proxy_http, args=(down, up, forward, back),
                                kwargs={"retries": 1, "answer": own})]  # fmt: skip
    for t in threads:
        t.start()
    client.settimeout(10)
    rfile = client.makefile("rb")
    got = []
    for path in ("/flaky", "/local", "/down", "/ok"):
        client.sendall(message(f"GET {path} HTTP/1.1", [("host", "svc")]).wire())
        resp = meshlib.read_message(rfile, request=False)
        got.append((resp.start, resp.get("x-proxied")))
    client.shutdown(socket.SHUT_WR)  # the proxy ends at the end of its downstream
    threads[1].join(10)
    up.shutdown(socket.SHUT_WR)
    threads[0].join(10)
    for s in (client, down, up, server):
        s.close()
    assert got == [("HTTP/1.1 200 OK", "1"), ("HTTP/1.1 429 Too Many Requests", None),
                   ("HTTP/1.1 503 Service Unavailable", "1"), ("HTTP/1.1 200 OK", "1")]  # fmt: skip
    assert seen == [("GET /flaky HTTP/1.1", "1"), ("GET /flaky HTTP/1.1", "2"), ("GET /down HTTP/1.1", "1"),
                    ("GET /down HTTP/1.1", "2"), ("GET /ok HTTP/1.1", "1")]  # fmt: skip


def test_relay_copies_bytes_both_ways_until_one_side_closes(meshlib: Any) -> None:
    left, a = socket.socketpair()
    b, right = socket.socketpair()
    relay = threading.Thread(target=meshlib.relay, args=(a, b))
    relay.start()
    left.settimeout(10)
    right.settimeout(10)
    left.sendall(b"PRI * HTTP/2.0" * 1000)
    assert recv_exactly(right, 14000) == b"PRI * HTTP/2.0" * 1000
    right.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
    assert recv_exactly(left, 9) == b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    left.close()
    relay.join(10)
    assert not relay.is_alive()  # closing both sockets is the caller's (the sidecar's with blocks)
    for s in (a, b, right):
        s.close()


def test_proxy_h2_rewrites_request_headers_and_passes_the_rest(meshlib: Any) -> None:
    import h2.config
    import h2.connection
    import h2.events

    record_mesh = load("record_mesh")
    client, down = socket.socketpair()
    up, server = socket.socketpair()
    requests: list[dict[str, str]] = []

    def h2_connection(client_side: bool) -> Any:
        return h2.connection.H2Connection(h2.config.H2Configuration(client_side=client_side,
                                                                    header_encoding="utf-8"))  # fmt: skip

    def grpc_server() -> None:
        conn = h2_connection(client_side=False)
        conn.initiate_connection()
        server.sendall(conn.data_to_send())
        while data := server.recv(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    requests.append({str(k): str(v) for k, v in ev.headers})
                    head = [(":status", "200"), ("content-type", "application/grpc")]
                    conn.send_headers(ev.stream_id, head)
                    conn.send_data(ev.stream_id, b"\x00\x00\x00\x00\x02ok")
                    conn.send_headers(ev.stream_id, [("grpc-status", "0")], end_stream=True)
            server.sendall(conn.data_to_send())

    def rewrite(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*headers, ("x-forwarded-proto", "http")]

    threads = [threading.Thread(target=grpc_server),
               threading.Thread(target=record_mesh.proxy_h2, args=(down, up, rewrite, True))]  # fmt: skip
    for t in threads:
        t.start()
    client.settimeout(10)
    conn = h2_connection(client_side=True)
    conn.initiate_connection()
    traceparent = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    request = [(":method", "POST"), (":scheme", "http"), (":path", "/ratings.v1.Ratings/GetRating"),
               (":authority", "ratings:50051"), ("traceparent", traceparent)]  # fmt: skip
    conn.send_headers(1, request, end_stream=True)
    client.sendall(conn.data_to_send())
    response: dict[str, str] = {}
    body, trailers, ended = b"", {}, False
    while not ended and (data := client.recv(65536)):
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                response = {str(k): str(v) for k, v in ev.headers}
            elif isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers = {str(k): str(v) for k, v in ev.headers}
            elif isinstance(ev, h2.events.StreamEnded):
                ended = True
        client.sendall(conn.data_to_send())
    client.close()
    threads[1].join(10)
    up.close()
    threads[0].join(10)
    down.close()
    server.close()
    assert len(requests) == 1
    assert requests[0]["traceparent"] == traceparent
    assert requests[0]["x-forwarded-proto"] == "http"
    assert requests[0][":path"] == "/ratings.v1.Ratings/GetRating"
    assert (response[":status"], body, ended) == ("200", b"\x00\x00\x00\x00\x02ok", True)
    assert trailers == {"grpc-status": "0"}


# --------------------------------------------------------------------------- the emulated node


def test_the_two_meshes_name_their_namespaces_and_identities_apart() -> None:
    pods, mesh = load("record_pods"), load("record_mesh")
    assert pods.NET.all_netns() == ["tw-node", "tw-ingress", "tw-productpage", "tw-reviews", "tw-details",
                                    "tw-ratings"]  # fmt: skip
    assert mesh.NET.all_netns() == ["twm-node", "twm-ingress", "twm-frontend", "twm-orders", "twm-payments",
                                    "twm-ledger"]  # fmt: skip
    assert pods.NET.gateway(pods.PODS["ratings"].ip) == "10.244.1.1"
    assert pods.NET.gateway(pods.INGRESS.ip) == "10.244.0.1"
    assert mesh.NET.gateway(mesh.PODS["ledger"].ip) == "10.244.2.1"
    assert pods.PODS["reviews"].spiffe == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert mesh.PODS["orders"].spiffe == "spiffe://cluster.local/ns/shop/sa/orders"
    # each sidecar resolves only its own mesh's ClusterIPs, to its own pods
    assert {pods.BookinfoSidecar.pods[s].ip for s in pods.BookinfoSidecar.services.values()} <= \
        {p.ip for p in pods.PODS.values()}
    assert {mesh.OtelSidecar.pods[s].ip for s in mesh.OtelSidecar.services.values()} == \
        {p.ip for p in mesh.PODS.values()}


# --------------------------------------------------------------------------- the committed files


def test_crafting_gives_the_committed_edge_files_back_byte_for_byte() -> None:
    craft = load("craft_edge_cases")
    written = 0
    for name, (_, make) in craft.CASES.items():
        first, again = make(), make()
        for rel, data in first.files.items():
            assert again.files[rel] == data, f"{name}: crafting {rel} twice differs"
            assert (CAPTURES / rel).read_bytes() == data, f"{rel} is not what {name} crafts (craft it again)"
            written += 1
    assert written == len(list((CAPTURES / "edge").iterdir()))


@pytest.mark.slow
def test_the_mesh_recorders_describe_the_committed_captures_as_the_manifest_does(meshlib: Any) -> None:
    manifest = {e["file"]: e for e in json.loads((CAPTURES / "MANIFEST.json").read_text())}
    checked = []
    for script, folder in (("record_pods", "pods"), ("record_mesh", "mesh")):
        recorder = load(script)
        for expected in json.loads((CAPTURES / folder / "EXPECTED.json").read_text())["captures"]:
            path, args = CAPTURES / expected["file"], expected["tshark_args"]
            entry = recorder.manifest_entry(path.stem, args, meshlib.frame_table(path, args), expected)
            assert entry == manifest[expected["file"]], f"{script}: {expected['file']}"
            checked.append(expected["file"])
    assert sorted(checked) == sorted(f for f, e in manifest.items() if e["made_by"] in ("record_pods.py",
                                                                                          "record_mesh.py"))
