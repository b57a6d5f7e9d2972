"""analysis/legs: roles found from calls given one at a time (RolesBuilder) and given to each
call on its own (assign), as the streaming engine will use them: the same roles, services and
names as classify over the whole list, on every fixture capture and on generated call sets
(sidecar and generic captures, --pod-ip, --app-port, --name, ties between equal counts)."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.analysis.legs import (
    INBOUND_SOURCES,
    Options,
    Roles,
    RolesBuilder,
    assign,
    classify,
    pair,
)
from analyzer.analysis.model import Call
from analyzer.analysis.naming import NamingError, explicit_name, host_name, name_pod
from analyzer.analysis.store import call_of, row_of
from analyzer.pipeline import CaptureSummary, read_messages
from tests.fixtures import CAPTURES, readable_captures


def _copies(calls: list[Call]) -> list[Call]:
    """Copies of calls as the analysis reads them back from disk (the compiled build's
    records cannot be pickled or copied by ``copy``)."""
    return [call_of(row_of(c)) for c in calls]


def _made(src: str, dst: str, dport: int, *, authority: str | None = None,
          identity: str | None = None, role: str = "other", frame: int = 1) -> Call:
    return Call(capture="t", frame=frame, ts_ns=frame, protocol="http/1.1", src=src, sport=40000,
                dst=dst, dport=dport, connection=frame, stream=None, method="GET", path="/",
                authority=authority, trace=(), header_names=(), values={}, role=role,
                identity=identity)


def _loopback(ip: str) -> bool:
    return ip.startswith(("127.", "::1"))


def _reference(calls: list[Call], opts: Options, capture: str) -> Roles:
    """classify as it was before the builder (2b64b5f), over the whole list: the oracle the
    generated call sets are held to, ties and insertion order included."""
    live = [c for c in calls if c.role != "noise"]
    sidecar = opts.pod_ip is not None or bool(opts.app_ports) or any(
        c.dport == opts.outbound_port or c.src == "127.0.0.6" for c in live)
    if sidecar:
        inbound = [
            c for c in live
            if c.dport != opts.outbound_port
            and (c.dport in opts.app_ports if opts.app_ports else c.src in INBOUND_SOURCES)
            and (opts.pod_ip is None or c.dst == opts.pod_ip or _loopback(c.dst))
        ]
        ports = sorted(set(opts.app_ports) or {c.dport for c in inbound})
        pod_ip = opts.pod_ip
        if pod_ip is None:
            seen = Counter(c.dst for c in inbound if not _loopback(c.dst))
            seen.update(c.src for c in live if c.dport == opts.outbound_port and not _loopback(c.src))
            pod_ip = seen.most_common(1)[0][0] if seen else None
        for c in inbound:
            c.role = "inbound"
        for c in live:
            if c.role == "other" and (
                c.dport == opts.outbound_port
                or (pod_ip is not None and c.src == pod_ip and c.dport not in ports)
            ):
                c.role = "outbound"
        name = name_pod(capture, inbound, explicit_name(capture, opts.names), pod_ip or "pod")
        for c in live:
            if c.role in ("inbound", "outbound"):
                c.service = name.service
        return Roles(True, pod_ip, ports, {"pod": name.service}, {"pod": name})
    by_host: dict[str, list[Call]] = {}
    for c in live:
        by_host.setdefault(c.dst, []).append(c)
    names = {host: host_name(Counter(c.authority for c in served if c.authority),
                             Counter(c.identity for c in served if c.identity), host)
             for host, served in by_host.items()}
    explicit = explicit_name(capture, opts.names)
    if explicit and len(names) == 1:
        (host,) = names
        names[host] = name_pod(capture, [], explicit, host)
    elif explicit and names:
        raise NamingError(f"--name {explicit}={capture}: the capture shows {len(names)} services "
                          f"({', '.join(sorted(n.service for n in names.values()))}), not one pod")
    services = {host: n.service for host, n in names.items()}
    for c in live:
        c.role = "inbound"
        c.service = services[c.dst]
    return Roles(False, None, sorted({c.dport for c in live}), services, names)


def _shape(roles: Roles) -> tuple[object, ...]:
    """Everything of the roles, the dicts' order included (reports list hosts in it)."""
    return (roles.sidecar, roles.pod_ip, roles.app_ports, list(roles.services.items()),
            list(roles.names.items()))


def _outcome(calls: list[Call], opts: Options, capture: str, how: str) -> tuple[object, ...]:
    """The roles (or the error) and every call's role and service, classified ``how``."""
    try:
        roles = _reference(calls, opts, capture) if how == "reference" else classify(calls, opts, capture)
    except NamingError as e:
        return ("error", str(e))
    return (_shape(roles), [(c.role, c.service) for c in calls])


def _read(path: str, made: RolesBuilder | None = None) -> list[Call]:
    return pair(read_messages(path, CaptureSummary(path)), None if made is None else made.add)


def _options(path: str) -> list[Options]:
    """The options each capture is read with: none, its found pod address and ports given,
    another outbound port, and --name for it (one service, or an error for several)."""
    found = classify(_read(path), Options(), path)
    out = [Options(), Options(outbound_port=8080),
           Options(names=(("productpage-v1-7f9c8d-x7k2p", path),))]
    if found.pod_ip is not None:
        out.append(Options(pod_ip=found.pod_ip))
    if found.app_ports:
        out.append(Options(app_ports=tuple(found.app_ports[:1])))
    return out


# -- every fixture capture --------------------------------------------------------------------


@pytest.mark.parametrize("name", readable_captures())
def test_roles_from_calls_one_at_a_time(name: str) -> None:
    """Calls given to the builder as pair makes them (before their responses), roles given to
    copies read back as from disk: the roles and every call's role and service are
    classify's; assigning again, counting assigned calls again, asking twice change nothing."""
    path = str(CAPTURES / name)
    for opts in _options(path):
        whole = _read(path)
        try:
            expected = _shape(classify(whole, opts, path))
        except NamingError as e:
            builder = RolesBuilder(opts, path)
            _read(path, builder)
            with pytest.raises(NamingError) as raised:
                builder.roles()
            assert str(raised.value) == str(e)
            continue
        builder = RolesBuilder(opts, path)
        fresh = _read(path, builder)
        assert all(c.service is None for c in fresh)  # nothing assigned while counting
        roles = builder.roles()
        assert _shape(roles) == expected
        assert _shape(builder.roles()) == expected
        back: list[Call] = [call_of(row_of(c)) for c in fresh]
        for c in back:
            assign(c, roles, opts)
        assert [(c.role, c.service) for c in back] == [(c.role, c.service) for c in whole]
        for c in back:
            assign(c, roles, opts)
        assert [(c.role, c.service) for c in back] == [(c.role, c.service) for c in whole]
        again = RolesBuilder(opts, path)
        for c in back:
            again.add(c)
        assert _shape(again.roles()) == expected


def test_fixtures_cover_both_readings() -> None:
    """The fixtures above hold sidecar captures and generic ones, and calls of every role."""
    sidecar = generic = 0
    roles: set[str] = set()
    for name in readable_captures():
        calls = _read(str(CAPTURES / name))
        if calls:
            r = classify(calls, Options(), name)
            sidecar += r.sidecar
            generic += not r.sidecar
            roles.update(c.role for c in calls)
    assert sidecar >= 5 and generic >= 5
    assert roles == {"inbound", "outbound", "noise", "other"}


# -- generated call sets, held to the list-based rules ----------------------------------------

_CALLS = st.lists(st.builds(
    _made,
    src=st.sampled_from(["127.0.0.6", "127.0.0.1", "::6", "10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    dst=st.sampled_from(["10.0.0.1", "10.0.0.2", "127.0.0.1", "::1", "10.0.0.3"]),
    dport=st.sampled_from([15001, 9080, 8080, 15020, 80]),
    authority=st.sampled_from([None, "", "reviews:9080", "ratings", "bookinfo.example.com",
                               "10.96.0.1:80", "details.default.svc.cluster.local"]),
    identity=st.sampled_from([None, "", "default", "reviews", "bookinfo-productpage"]),
    role=st.sampled_from(["other", "other", "other", "noise"]),
), max_size=30)
_OPTIONS = st.builds(
    Options,
    pod_ip=st.sampled_from([None, None, "10.0.0.1", "10.0.0.2"]),
    app_ports=st.sampled_from([(), (), (9080,), (9080, 8080)]),
    outbound_port=st.sampled_from([15001, 15001, 8080]),
    names=st.sampled_from([(), (("productpage-v1-7f9c8d-x7k2p", "reviews.pcap"),),
                           (("ratings", "-"),)]),
)


@settings(max_examples=400, deadline=None)
@given(calls=_CALLS, opts=_OPTIONS, capture=st.sampled_from(["-", "reviews.pcap", "Capture 1.pcap"]))
def test_roles_as_the_whole_list_gave_them(calls: list[Call], opts: Options, capture: str) -> None:
    expected = _outcome(_copies(calls), opts, capture, "reference")
    mine = _copies(calls)
    assert _outcome(mine, opts, capture, "builder") == expected
    if expected[0] != "error":
        # a call read back later, assigned again: the same role and service
        roles = classify(_copies(calls), opts, capture)
        for c in mine:
            assign(c, roles, opts)
        assert [(c.role, c.service) for c in mine] == expected[1]


# -- hand-made cases --------------------------------------------------------------------------


def _classified(calls: list[Call], opts: Options | None = None, capture: str = "-") -> Roles:
    opts = opts or Options()
    assert _outcome(_copies(calls), opts, capture, "builder") == \
        _outcome(_copies(calls), opts, capture, "reference")
    return classify(calls, opts, capture)


def test_sidecar_pod_address_ports_and_roles() -> None:
    calls = [
        _made("127.0.0.6", "10.0.0.1", 9080, authority="productpage:9080", frame=1),
        _made("10.0.0.1", "127.0.0.1", 15001, authority="reviews:9080", frame=2),
        _made("10.0.0.1", "10.0.0.9", 443, frame=3),  # from the pod, not to an app port
        _made("10.0.0.7", "10.0.0.1", 9080, frame=4),  # from elsewhere: neither
        _made("127.0.0.6", "10.0.0.1", 15020, role="noise", frame=5),
    ]
    roles = _classified(calls)
    assert (roles.sidecar, roles.pod_ip, roles.app_ports) == (True, "10.0.0.1", [9080])
    assert roles.services == {"pod": "productpage"} and roles.names["pod"].source == "host"
    assert [c.role for c in calls] == ["inbound", "outbound", "outbound", "other", "noise"]
    assert [c.service for c in calls] == ["productpage"] * 3 + [None, None]


def test_sidecar_found_by_the_last_call() -> None:
    """A capture read generically until its last call shows the sidecar's outbound port."""
    calls = [_made("10.0.0.5", f"10.0.1.{i}", 80, authority=f"s{i}") for i in range(20)]
    calls.append(_made("10.0.0.5", "127.0.0.1", 15001, frame=21))
    roles = _classified(calls)
    assert (roles.sidecar, roles.pod_ip, roles.app_ports) == (True, "10.0.0.5", [])
    assert {c.role for c in calls} == {"outbound"}


def test_generic_hosts_named_by_identity_host_then_address() -> None:
    calls = [
        _made("10.0.0.9", "10.0.0.2", 80, authority="web.example.com", identity="web", frame=1),
        _made("10.0.0.9", "10.0.0.3", 8080, authority="api:8080", frame=2),
        _made("10.0.0.2", "10.0.0.4", 9000, frame=3),
        _made("10.0.0.9", "10.0.0.4", 15020, role="noise", frame=4),
    ]
    roles = _classified(calls)
    assert not roles.sidecar and roles.app_ports == [80, 8080, 9000]
    assert list(roles.services.items()) == [("10.0.0.2", "web"), ("10.0.0.3", "api"),
                                            ("10.0.0.4", "10.0.0.4")]
    assert [n.source for n in roles.names.values()] == ["xfcc", "host", "address"]
    assert [(c.role, c.service) for c in calls] == [
        ("inbound", "web"), ("inbound", "api"), ("inbound", "10.0.0.4"), ("noise", None)]


def test_pod_ip_option() -> None:
    """--pod-ip: a call to another address is not inbound, even from the sidecar's source."""
    calls = [_made("127.0.0.6", "10.0.0.1", 9080, frame=1), _made("127.0.0.6", "10.0.0.2", 9080, frame=2),
             _made("127.0.0.6", "127.0.0.1", 9081, frame=3), _made("10.0.0.1", "10.0.0.8", 9080, frame=4)]
    roles = _classified(calls, Options(pod_ip="10.0.0.1"))
    assert (roles.pod_ip, roles.app_ports) == ("10.0.0.1", [9080, 9081])
    # the pod's own call to port 9080 elsewhere is not outbound: 9080 is an app port
    assert [c.role for c in calls] == ["inbound", "other", "inbound", "other"]


def test_app_port_option() -> None:
    """--app-port: inbound by port, whatever the source; the pod's calls to other ports go out."""
    calls = [_made("10.0.0.7", "10.0.0.1", 8080, frame=1), _made("127.0.0.6", "10.0.0.1", 9080, frame=2),
             _made("10.0.0.1", "10.0.0.8", 5432, frame=3)]
    roles = _classified(calls, Options(app_ports=(8080,)))
    assert (roles.sidecar, roles.pod_ip, roles.app_ports) == (True, "10.0.0.1", [8080])
    assert [c.role for c in calls] == ["inbound", "other", "outbound"]


def test_name_option_with_one_and_several_services() -> None:
    one = [_made("10.0.0.9", "10.0.0.2", 80, authority="web", frame=1)]
    opts = Options(names=(("reviews-v2-5b8f9c7d4-zq5mt", "c.pcap"),))
    roles = _classified(one, opts, "c.pcap")
    assert roles.services == {"10.0.0.2": "reviews"}
    assert (roles.names["10.0.0.2"].source, roles.names["10.0.0.2"].pod) == (
        "--name", "reviews-v2-5b8f9c7d4-zq5mt")
    several = [_made("10.0.0.9", "10.0.0.2", 80, authority="web", frame=1),
               _made("10.0.0.9", "10.0.0.3", 80, authority="api", frame=2)]
    with pytest.raises(NamingError, match=r"shows 2 services \(api, web\), not one pod"):
        classify(several, opts, "c.pcap")
    builder = RolesBuilder(opts, "c.pcap")
    for c in several:
        builder.add(c)
    with pytest.raises(NamingError, match="shows 2 services"):
        builder.roles()
    assert all(c.role == "other" for c in several)  # nothing assigned before the error
    sidecar = _classified([_made("127.0.0.6", "10.0.0.1", 9080, authority="web")], opts, "c.pcap")
    assert sidecar.services == {"pod": "reviews"}


def test_ties_go_to_the_first_seen() -> None:
    """Equal counts: the pod's address is the inbound calls' destination before an outbound
    call's source (even one seen earlier); a Host, an identity, the first seen."""
    calls = [_made("10.0.0.2", "127.0.0.1", 15001, frame=1), _made("127.0.0.6", "10.0.0.1", 9080, frame=2)]
    assert _classified(calls).pod_ip == "10.0.0.1"
    calls = [_made("127.0.0.6", "10.0.0.1", 9080, identity=i, frame=n)
             for n, i in enumerate(["default", "default", "ratings", "reviews", "reviews", "ratings"])]
    assert _classified(calls, capture="Capture 1.pcap").names["pod"].service == "ratings"
    calls = [_made("127.0.0.6", "10.0.0.1", 9080, authority=a, frame=n)
             for n, a in enumerate(["ratings:9080", "reviews", "reviews", "ratings:9080"])]
    assert _classified(calls, capture="Capture 1.pcap").names["pod"].service == "ratings"
    calls = [_made("10.0.0.9", "10.0.0.2", 80, authority=a, frame=n)
             for n, a in enumerate(["b.example", "a.example", "a.example", "b.example"])]
    assert _classified(calls).services == {"10.0.0.2": "b"}


def test_builder_keeps_no_call() -> None:
    """What the builder holds grows with the addresses and Hosts, not with the calls."""
    def held(n: int) -> int:
        builder = RolesBuilder(Options(), "-")
        tracemalloc.start()
        try:
            for i in range(n):
                builder.add(_made("10.0.0.9", f"10.0.0.{i % 4}", 80, authority=f"h{i % 3}", frame=i))
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert held(20_000) - held(200) < 1024  # a few larger counts
