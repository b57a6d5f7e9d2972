"""analysis/naming: a pod's name from each kind of evidence in its order, never from an external
Host; targets whose :authority the capture does not show, named from the ClusterIP their
replies reveal or from the callee's capture; one spelling for a target that stays unknown, in
every output format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analyzer.analysis import Options, analyze
from analyzer.analysis.legs import _xfcc_identity
from analyzer.analysis.model import Call
from analyzer.analysis.naming import (
    CaptureCalls,
    bare,
    cluster_local,
    file_stem,
    is_address,
    name_pod,
    name_targets,
    pod_shaped,
    service_of_pod,
    target_of,
    unknown_target,
)
from tests.fixtures import CAPTURES, ROOT, CaptureView, capture_views
from tests.packets import ACK, PSH, Conn, pcap, sll2
from tests.test_analysis import B3, call
from tests.test_cli import run

PODS = json.loads((CAPTURES / "pods" / "EXPECTED.json").read_text())
PRODUCTPAGE = CAPTURES / "pods" / "productpage.pcap"
REVIEWS = CAPTURES / "pods" / "reviews.pcap"


@pytest.fixture
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


# -- the file-name rule -----------------------------------------------------------------------


@pytest.mark.parametrize(("path", "stem"), [
    ("captures/pods/reviews.pcap", "reviews"),
    ("/tmp/productpage-v1-7f9c8d5b6d-x7k2p.pcapng", "productpage-v1-7f9c8d5b6d-x7k2p"),
    ("ratings-v1-6d8f9b7c4-b4q2z.pcap.gz", "ratings-v1-6d8f9b7c4-b4q2z"),
    ("Capture 1.pcap", None),  # not a DNS-1123 label
    ("UPPER.pcap", None),
    ("-dash.pcap", None),
    ("a" * 64 + ".pcap", None),  # longer than a label may be
    ("reviews.txt", None),  # not a capture's name
    ("-", None),  # stdin
])
def test_file_stem(path: str, stem: str | None) -> None:
    assert file_stem(path) == stem


@pytest.mark.parametrize(("pod", "service", "shaped"), [
    ("productpage-v1-7f9c8d-x7k2p", "productpage", True),  # Deployment: hash, random suffix
    ("reviews-v2-5b8f9c7d4-zq5mt", "reviews", True),
    ("istio-cni-node-x7k2p", "istio-cni-node", True),  # DaemonSet: random suffix only
    ("reviews-v2", "reviews", False),  # Istio's version suffix
    ("productpage", "productpage", False),
    ("productpage-fixed", "productpage-fixed", False),  # a word, not a random suffix (vowels)
    ("productpage-http1", "productpage-http1", False),  # "1" is not in Kubernetes' alphabet
])
def test_service_of_pod(pod: str, service: str, shaped: bool) -> None:
    assert service_of_pod(pod) == service
    assert pod_shaped(pod) == shaped


@pytest.mark.parametrize(("authority", "local", "name"), [
    ("reviews:9080", True, "reviews"),
    ("reviews.default.svc.cluster.local:9080", True, "reviews"),
    ("reviews.default.svc", True, "reviews"),
    ("bookinfo.example.com", False, "bookinfo"),
    ("10.96.0.13:9080", False, "10.96.0.13"),
    ("[fd00::1]:80", False, "fd00::1"),
])
def test_cluster_local(authority: str, local: bool, name: str) -> None:
    assert cluster_local(authority) is local
    assert bare(authority) == name


# -- a pod's name: each evidence and its precedence -------------------------------------------


def _inbound(authority: str | None, identity: str | None = None) -> Call:
    c = call(B3)
    c.authority, c.identity = authority, identity
    return c


XFCC = (b'By=spiffe://cluster.local/ns/default/sa/bookinfo-productpage;Hash=abc;'
        b'Subject="";URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway')


def test_pod_name_precedence() -> None:
    assert _xfcc_identity(XFCC) == "bookinfo-productpage"
    local, ext = _inbound("productpage:9080"), _inbound("bookinfo.example.com", "bookinfo-productpage")
    both = [local, ext]
    # 1. --name beats everything; the service drops the pod's generated suffixes
    n = name_pod("productpage.pcap", both, "productpage-v1-7f9c8d-x7k2p", "10.244.1.10")
    assert (n.service, n.source, n.pod) == ("productpage", "--name", "productpage-v1-7f9c8d-x7k2p")
    # 2. the file name (ksniff -o POD.pcap) beats the identity and the Host
    n = name_pod("out/productpage-v1-7f9c8d-x7k2p.pcap", both, None, "10.244.1.10")
    assert (n.service, n.source, n.pod) == ("productpage", "file name", "productpage-v1-7f9c8d-x7k2p")
    # a pod-shaped file name is taken even when the Host says otherwise
    assert name_pod("reviews-v1-7f9c8d-x7k2p.pcap", both, None, "x").service == "reviews"
    # 3. the XFCC identity beats the Host
    n = name_pod("Capture 1.pcap", both, None, "10.244.1.10")
    assert (n.service, n.source, n.pod) == ("bookinfo-productpage", "xfcc", None)
    # 4. a cluster-local Host
    n = name_pod("Capture 1.pcap", [local], None, "10.244.1.10")
    assert (n.service, n.source) == ("productpage", "host")
    # 5. nothing names it: its address
    assert (name_pod("-", [], None, "10.244.1.10").source) == "address"


def test_plain_file_name_that_contradicts_the_host_describes_the_capture() -> None:
    """`productpage-fixed.pcap` names a state of the capture, not the pod its callers call
    productpage; `productpage.pcap` and `productpage-v1.pcap` agree with it."""
    local = [_inbound("productpage:9080")]
    assert name_pod("productpage-fixed.pcap", local, None, "x").source == "host"
    assert name_pod("productpage.pcap", local, None, "x").source == "file name"
    n = name_pod("productpage-v1.pcap", local, None, "x")
    assert (n.service, n.source, n.pod) == ("productpage", "file name", "productpage-v1")


def test_plain_file_name_unrelated_to_the_identity_describes_the_capture() -> None:
    """`after.pcap` of the ingress-reached productpage pod: its service account
    bookinfo-productpage is unrelated to "after", so the identity names it; `productpage.pcap`
    is related and names it. The `default` account names no pod."""
    ext = [_inbound("bookinfo.example.com", "bookinfo-productpage")]
    n = name_pod("after.pcap", ext, None, "x")
    assert (n.service, n.source) == ("bookinfo-productpage", "xfcc")
    assert name_pod("productpage.pcap", ext, None, "x").source == "file name"
    assert name_pod("productpage-sa.pcap", ext, None, "x").source == "xfcc"
    default = [_inbound("reviews:9080", "default")]
    n = name_pod("Capture 1.pcap", default, None, "x")
    assert (n.service, n.source) == ("reviews", "host")
    n = name_pod("after.pcap", [_inbound("bookinfo.example.com", "default")], None, "x")
    assert n.source == "file name"


def test_external_host_never_names_a_pod() -> None:
    ext = [_inbound("bookinfo.example.com")]
    n = name_pod("Capture 1.pcap", ext, None, "10.244.1.10")
    assert (n.service, n.source) == ("10.244.1.10", "address")
    # with only an external Host, a plain file name is the better evidence
    assert name_pod("productpage.pcap", ext, None, "10.244.1.10").service == "productpage"


def test_ingress_pod_keeps_one_name_across_captures(tmp_path: Path) -> None:
    """The productpage pod is reached through an ingress (Host bookinfo.example.com): it is
    named productpage by its file name, by its XFCC identity when the file name says nothing,
    and never after the external Host."""
    (pod,) = analyze([PRODUCTPAGE]).pods
    assert (pod.service, pod.name_source) == ("productpage", "file name")
    assert PODS["captures"][0]["pod"]["name"] == pod.service
    odd = tmp_path / "Capture 1.pcap"
    shutil.copy(PRODUCTPAGE, odd)
    (pod,) = analyze([odd]).pods
    assert (pod.service, pod.name_source) == ("bookinfo-productpage", "xfcc")
    r = analyze([odd], Options(names=(("productpage-v1-7f9c8d-x7k2p", str(odd)),)))
    assert (r.pods[0].service, r.pods[0].name_source, r.pods[0].pod_name) == (
        "productpage", "--name", "productpage-v1-7f9c8d-x7k2p")
    assert {h.source for h in r.hops} == {"productpage"}
    assert all("example.com" not in f.source for f in r.findings)


# -- --name on every command that analyses ----------------------------------------------------


@pytest.mark.usefixtures("_at_root")
def test_name_option_on_analyze_diff_and_export(tmp_path: Path) -> None:
    p = "captures/pods/productpage.pcap"
    code, out, err = run("analyze", "--format", "json", "--name", f"frontend-v3={p}", p)
    assert code == 0, err
    (pod,) = json.loads(out)["pods"]
    assert (pod["service"], pod["name_source"], pod["pod_name"]) == ("frontend", "--name", "frontend-v3")
    assert {h["source"] for h in json.loads(out)["hops"]} == {"frontend"}
    code, out, _ = run("analyze", "--name", f"frontend-v3={p}", p)
    assert "sidecar pod frontend (named from --name; pod frontend-v3, 10.244.1.10" in out
    # diff: --name applies to the capture it names, on either side
    code, out, err = run("diff", "--format", "json", "--name", f"frontend={p}", p, p)
    assert code == 0, err
    assert {h["source"] for h in json.loads(out)["hops"]} == {"frontend"}
    code, out, err = run("export", "--to", "zipkin", "--name", f"frontend={p}", p)
    assert code == 0, err
    assert "frontend" in {s["localEndpoint"].get("serviceName") for s in json.loads(out)}
    # a --name that names no capture given, or that is not POD=CAPTURE, is trouble
    code, _, err = run("analyze", "--name", "x=elsewhere.pcap", p)
    assert code == 2
    assert err == "tracewire: --name x=elsewhere.pcap: elsewhere.pcap is not one of the captures given\n"
    code, _, err = run("analyze", "--name", "frontend", p)
    assert code == 2 and "'frontend' is not POD=CAPTURE" in err


# -- targets the capture does not name --------------------------------------------------------


def test_warm_grpc_target_named_by_its_cluster_ip() -> None:
    """reviews -> ratings gRPC on a channel opened before the capture: :authority unknown.
    Its replies came from ClusterIP 10.96.0.13:50051, and reviews' HTTP call to ratings:9080
    shows 10.96.0.13 is ratings: the target is ratings:50051, labelled inferred."""
    r = analyze([REVIEWS])
    services = PODS["captures"][1]["services"]
    grpc = [o for o in r.outcomes if o.call.protocol == "h2"]
    assert grpc and all(o.call.authority is None for o in grpc)
    for o in grpc:
        assert target_of(o.call) == ("ratings:50051", "ClusterIP")
        assert services[o.call.nat_reply_from] == o.target == "ratings:50051"
    (hop,) = [h for h in r.hops if h.protocol == "h2"]
    assert (hop.target, hop.target_source) == ("ratings:50051", "ClusterIP")
    assert {f.target for f in r.findings} == {"ratings:50051"}
    notes = [n for n in r.notes if n.kind == "target-inferred"]
    assert notes and "ClusterIP 10.96.0.13:50051" in notes[0].detail


@pytest.mark.usefixtures("_at_root")
def test_inferred_target_is_labelled_in_every_format() -> None:
    p = "captures/pods/reviews.pcap"
    _, table, _ = run("analyze", p)
    assert "ratings:50051 (inferred)" in table
    assert "reviews → ratings:50051 (inferred from ClusterIP)" in table
    _, md, _ = run("analyze", "--format", "markdown", p)
    assert "ratings:50051 (inferred from ClusterIP)" in md
    d = json.loads(run("analyze", "--format", "json", p)[1])
    assert {(h["target"], h["target_source"]) for h in d["hops"]} == {
        ("ratings:50051", "ClusterIP"), ("ratings:9080", "authority")}
    assert {(f["target"], f["target_source"], f["target_address"]) for f in d["findings"]} == {
        ("ratings:50051", "ClusterIP", "10.96.0.13:50051")}
    spans = [s for t in json.loads(run("export", "--to", "zipkin", p)[1]) for s in [t]
             if s["kind"] == "CLIENT" and s["tags"]["tracewire.target"] == "ratings:50051"]
    assert spans and {s["tags"]["tracewire.target_source"] for s in spans} == {"ClusterIP"}
    assert {s["remoteEndpoint"].get("serviceName") for s in spans} == {"ratings:50051"}


def _views(paths: list[Path]) -> list[CaptureView]:
    return capture_views(paths)


def test_target_named_from_the_callee_capture() -> None:
    """With the callee's capture given, the pod that received the same ids while the call was
    open names the target. Here productpage's calls to reviews lose their authority, their path
    and their ClusterIP (as on a warm channel whose replies the capture missed): reviews'
    capture names them; the calls to details, whose capture is not given, stay unknown."""
    caps = _views([PRODUCTPAGE, REVIEWS])
    to_reviews = [o for o in caps[0].outbound if o.authority == "reviews:9080"]
    to_details = [o for o in caps[0].outbound if o.authority == "details:9080"]
    assert to_reviews and to_details
    for o in to_reviews + to_details:
        o.authority = o.nat_reply_from = None
    for o in to_reviews:
        o.path = None  # nothing left but ids, protocol, method and time
    notes = name_targets([CaptureCalls(c.path, c.inbound, c.outbound, c.inbound_service)
                          for c in caps], {})
    assert {target_of(o) for o in to_reviews} == {("reviews:9080", "callee capture")}
    assert {target_of(o)[1] for o in to_details} == {"unknown"}
    assert all(target_of(o)[0].startswith("unknown (connection ") for o in to_details)
    assert any(n.kind == "target-inferred" and "reviews.pcap" in n.detail for n in notes)


def test_callee_capture_alone_upstream_is_not_a_callee() -> None:
    """reviews' gRPC calls to ratings carry the ids productpage's inbound request carried too,
    but productpage called reviews: it is upstream, never the callee. Without the ClusterIP
    nothing else names them, and they stay unknown."""
    caps = _views([PRODUCTPAGE, REVIEWS])
    joined: dict[int, Call] = {}
    for o in caps[0].outbound:
        for i in caps[1].inbound:
            same = (o.request_key, o.authority, o.path) == (i.request_key, i.authority, i.path)
            if same and id(i) not in joined:
                joined[id(i)] = o
                break
    assert joined
    grpc = [o for o in caps[1].outbound if o.protocol == "h2"]
    for o in caps[1].outbound:
        o.nat_reply_from = None
        o.authority = None
    name_targets([CaptureCalls(c.path, c.inbound, c.outbound, c.inbound_service) for c in caps], joined)
    assert {target_of(o)[1] for o in grpc} == {"unknown"}


# -- one spelling for a target that stays unknown ---------------------------------------------


def _unknown_target_capture(path: Path) -> None:
    """A sidecar pod (10.244.1.10) serves GET /a and makes two HTTP/1.0 calls without a Host
    that drop the tracing headers: one through Istio's NAT (replies from ClusterIP
    10.96.0.99:8080), one whose replies come back on the same connection."""
    inbound = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    nat_req = Conn("10.244.1.10", 42000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    nat_rep = Conn("10.244.1.10", 42000, "10.96.0.99", 8080, cisn=7000, sisn=9000)
    plain = Conn("10.244.1.10", 43000, "127.0.0.1", 15001, cisn=3000, sisn=4000)
    head = "GET /a HTTP/1.1\r\nHost: svc-a:9080\r\n" + "".join(f"{k}: {v}\r\n" for k, v in B3.items())
    ok = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    packets = [*inbound.handshake(), inbound.send((head + "\r\n").encode())]
    packets.append(nat_req.send(b"GET /b HTTP/1.0\r\n\r\n"))
    nat_rep.cseq = nat_req.cseq
    packets.append(nat_rep.send(ok, from_client=False))
    packets.append(plain.send(b"GET /c HTTP/1.0\r\n\r\n"))
    packets.append(plain.send(ok, from_client=False))
    packets.append(inbound.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", from_client=False))
    packets.append(inbound.send(b"", flags=ACK | PSH))
    path.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 1_000_000, sll2(p))
                           for n, p in enumerate(packets)]))


def test_unknown_target_one_spelling_in_every_format(tmp_path: Path) -> None:
    f = tmp_path / "svc-a.pcap"
    _unknown_target_capture(f)
    r = analyze([f])
    (conn,) = {o.call.connection for o in r.outcomes if o.call.path == "/c"}
    nat, plain = "unknown (10.96.0.99:8080)", f"unknown (connection {conn})"
    assert {h.target for h in r.hops} == {nat, plain}
    assert {x.target for x in r.findings} == {nat, plain}
    assert unknown_target("10.96.0.99:8080", 3) == nat and unknown_target(None, conn) == plain
    old = ("no authority", "<unknown", "(none)>", "null)")
    for fmt in ("table", "markdown"):
        code, out, err = run("analyze", "--all", "--format", fmt, str(f))
        assert code == 0, err
        assert nat in out and plain in out
        assert not any(s in out for s in old), out
        assert " [?" not in out and "→ ?" not in out
    d = json.loads(run("analyze", "--format", "json", str(f))[1])
    assert {(h["target"], h["target_source"]) for h in d["hops"]} == {(nat, "unknown"), (plain, "unknown")}
    (nat_conn,) = {o.call.connection for o in r.outcomes if o.call.path == "/b"}
    got = {(x["target"], x["target_address"], x["target_connection"]) for x in d["findings"]}
    assert got == {(nat, "10.96.0.99:8080", nat_conn), (plain, None, conn)}
    peers = {s["peer"] for t in d["traces"] for s in t["spans"] if s["kind"] == "client"}
    assert peers == {nat, plain}
    for to in ("jaeger", "zipkin", "otlp"):
        out = run("export", "--to", to, str(f))[1]
        assert nat in out and plain in out and "<unknown" not in out and "no authority" not in out
    spans = json.loads(run("export", "--to", "zipkin", str(f))[1])
    client = [s for s in spans if s["kind"] == "CLIENT"]
    assert {s["tags"]["tracewire.target"] for s in client} == {nat, plain}
    assert all("peer.service" not in s["tags"] and "serviceName" not in s["remoteEndpoint"] for s in client)
    # diff: connection numbers mean nothing in another capture; the ClusterIP does
    d = json.loads(run("diff", "--format", "json", str(f), str(f))[1])
    assert {h["target"] for h in d["hops"]} == {nat, "unknown"}
    _, out, _ = run("diff", "--all", "--format", "markdown", str(f), str(f))
    assert f"svc-a → {nat}" in out and "<unknown" not in out


# -- diff keys by names that stay put ---------------------------------------------------------


@pytest.mark.usefixtures("_at_root")
def test_diff_matches_one_pod_named_by_file_and_by_name(tmp_path: Path) -> None:
    """The same pod captured twice, once as productpage.pcap and once under a name that says
    nothing: with --name the hops are the same hops (unchanged), not gone + new."""
    other = tmp_path / "Capture 1.pcap"
    shutil.copy(PRODUCTPAGE, other)
    _, out, _ = run("diff", "--format", "json", str(PRODUCTPAGE), str(other))
    changes = {h["change"] for h in json.loads(out)["hops"]}
    assert changes == {"gone", "new"}  # productpage vs bookinfo-productpage: two names
    code, out, err = run("diff", "--format", "json", "--name", f"productpage={other}",
                         str(PRODUCTPAGE), str(other))
    assert code == 0, err
    assert {h["change"] for h in json.loads(out)["hops"]} == {"unchanged"}


@pytest.mark.usefixtures("_at_root")
def test_diff_of_a_warm_channel_matches_by_inferred_name() -> None:
    """An unknown authority named by its ClusterIP keys its hop by that name, so the hop
    matches the same hop of a capture where the authority was seen."""
    p = "captures/pods/reviews.pcap"
    _, out, _ = run("diff", "--format", "json", "--all", p, p)
    hops = {h["target"]: h for h in json.loads(out)["hops"]}
    assert "ratings:50051" in hops and "ClusterIP" in hops["ratings:50051"]["matched_by"]
    assert hops["ratings:50051"]["change"] == "unchanged"


@pytest.mark.parametrize(("authority", "address"), [
    ("10.96.2.12:50051", True), ("[fd00::1]:80", True), ("10.96.2.12", True),
    ("payments:50051", False), ("payments.shop.svc.cluster.local", False), ("v1.2.3.4x", False),
])
def test_is_address(authority: str, address: bool) -> None:
    assert is_address(authority) is address


def test_callee_that_saw_only_an_address_is_named_by_its_pod() -> None:
    """A gRPC client that dialled the ClusterIP sends `:authority: 10.96.0.11:9080`: the callee
    saw an address, not a name. Its pod's name with the service port names the target."""
    caps = _views([PRODUCTPAGE, REVIEWS])
    to_reviews = [o for o in caps[0].outbound if o.authority == "reviews:9080"]
    for o in caps[0].outbound:
        o.authority = None  # nothing on the caller's side names reviews
    assert {o.nat_reply_from for o in to_reviews} == {"10.96.0.11:9080"}
    for i in caps[1].inbound:
        i.authority = "10.96.0.11:9080"
    name_targets([CaptureCalls(c.path, c.inbound, c.outbound, c.inbound_service) for c in caps], {})
    assert {target_of(o) for o in to_reviews} == {("reviews:9080", "callee capture")}


@pytest.mark.usefixtures("_at_root")
def test_name_on_a_capture_that_is_not_one_pods() -> None:
    """A capture of a node or a docker network shows several services: --name cannot say
    which it means, so it is trouble, not a guess. A capture with one service takes it."""
    p = "captures/curl-basic.pcap"
    code, out, err = run("analyze", "--format", "json", "--name", f"web={p}", p)
    assert code == 0, err
    (pod,) = json.loads(out)["pods"]
    assert (pod["service"], pod["name_source"], pod["sidecar"]) == ("web", "--name", False)


def test_name_on_a_capture_of_several_services_is_trouble(tmp_path: Path) -> None:
    from analyzer.analysis.naming import NamingError

    client = Conn("172.18.0.5", 50000, "172.18.0.2", 8080)
    other = Conn("172.18.0.2", 40000, "172.18.0.3", 9090, cisn=7000, sisn=9000)
    packets = [*client.handshake(), client.send(b"GET /a HTTP/1.1\r\nHost: svc-a:8080\r\n\r\n"),
               *other.handshake(), other.send(b"GET /b HTTP/1.1\r\nHost: svc-b:9090\r\n\r\n")]
    f = tmp_path / "node.pcap"
    f.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 1_000_000, sll2(p)) for n, p in enumerate(packets)]))
    assert [p.service for p in analyze([f]).pods] == ["svc-a", "svc-b"]
    with pytest.raises(NamingError, match=r"shows 2 services \(svc-a, svc-b\), not one pod"):
        analyze([f], Options(names=(("web", str(f)),)))
    code, _, err = run("analyze", "--name", f"web={f}", str(f))
    assert code == 2 and "not one pod" in err


MESH = json.loads((CAPTURES / "mesh" / "EXPECTED.json").read_text())
MESH_FILES = [CAPTURES / c["file"] for c in MESH["captures"]]


def test_mesh_warm_grpc_target_named_by_the_callee_capture() -> None:
    """The OpenTelemetry mesh recording: orders calls payments over gRPC on a channel warm
    before the capture, through a client that dialled the ClusterIP. orders' capture alone
    cannot name it (no call shows 10.96.2.12 with a name); with payments' capture given too,
    the pod that received the same ids while the calls were open names it payments:50051;
    with frontend's instead (upstream of orders, same x-request-id) it stays unknown."""
    orders = CAPTURES / "mesh" / "orders.pcap"
    services = MESH["captures"][0]["services"]
    (cluster_ip,) = [a for a, name in services.items() if name.startswith("payments:")]
    unknown = (unknown_target(cluster_ip, None), "unknown")

    def grpc_targets(paths: list[Path]) -> set[tuple[str, str]]:
        r = analyze(paths)
        return {target_of(o.call) for o in r.outcomes
                if o.call.capture == str(orders) and o.call.protocol == "h2"}

    assert grpc_targets([orders]) == {unknown}
    assert grpc_targets([CAPTURES / "mesh" / "frontend.pcap", orders]) == {unknown}
    assert grpc_targets(MESH_FILES) == {(services[cluster_ip], "callee capture")}
    r = analyze(MESH_FILES)
    assert [p.service for p in r.pods] == [c["pod"]["name"] for c in MESH["captures"]]
    assert {p.name_source for p in r.pods} == {"file name"}
    assert {(h.source, h.target, h.target_source) for h in r.hops} == {
        ("frontend", "orders:8080", "authority"), ("orders", services[cluster_ip], "callee capture"),
        ("payments", "ledger:8080", "authority")}
