"""diff: path templating, every change value, headers and formats, exit statuses."""

from __future__ import annotations

import json

import pytest

from analyzer.analysis.diff import diff, path_template
from analyzer.analysis.model import Finding, Outcome, Result
from tests.fixtures import CAPTURES
from tests.test_analysis import B3, XRID, call
from tests.test_cli import run


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/reviews/0", "/reviews/{n}"),
        ("/reviews/17?x=1", "/reviews/{n}"),
        ("/orders/4c1f8a2e-55aa-9e2b-8d3c-0a1b2c3d4e5f/items", "/orders/{uuid}/items"),
        ("/blobs/deadbeef01", "/blobs/{hex}"),
        ("/pkg.Svc/Method", "/pkg.Svc/Method"),
        ("/deadbeef", "/deadbeef"),  # a word made of hex letters is not an id
        (None, "<unknown path>"),
    ],
)
def test_path_template(path: str | None, template: str) -> None:
    assert path_template(path) == template


def outcome(path: str, broken: str | None = None, headers: dict[str, str] | None = None,
            target: str = "reviews:9080") -> Outcome:
    c = call(headers if headers is not None else B3, path=path)
    c.authority = target
    fs = []
    if broken:
        fs.append(Finding(broken, None, XRID, "productpage", target, [], {}, {}, "x-request-id",
                          "certain", c, c))
    return Outcome(c, "productpage", target, fs, True, True)


def result(outcomes: list[Outcome]) -> Result:
    return Result(["x.pcap"], [], [], [], [f for o in outcomes for f in o.findings], [], [],
                  [o.call for o in outcomes], outcomes)


def changes(before: list[Outcome], after: list[Outcome]) -> dict[str, str]:
    return {f"{h.target} {h.path}": h.change for h in diff(result(before), result(after)).hops}


def test_every_change_value() -> None:
    before = [
        outcome("/a/1", "missing"), outcome("/a/2"),  # fixed
        outcome("/b/1", "partial"), outcome("/b/2", "partial"), outcome("/b/3"),  # improved
        outcome("/c/1", "partial"), outcome("/c/2"), outcome("/c/3"),  # regressed
        outcome("/d/1"),  # broken
        outcome("/e/1"),  # unchanged
        outcome("/g/1"),  # gone
    ]
    after = [
        outcome("/a/5"), outcome("/a/6"),
        outcome("/b/1", "partial"), outcome("/b/2"), outcome("/b/3"),
        outcome("/c/1", "partial"), outcome("/c/2", "changed"), outcome("/c/3"),
        outcome("/d/9", "malformed"),
        outcome("/e/2"),
        outcome("/n/1"),  # new
    ]
    assert changes(before, after) == {
        "reviews:9080 /a/{n}": "fixed", "reviews:9080 /b/{n}": "improved",
        "reviews:9080 /c/{n}": "regressed", "reviews:9080 /d/{n}": "broken",
        "reviews:9080 /e/{n}": "unchanged", "reviews:9080 /g/{n}": "gone",
        "reviews:9080 /n/{n}": "new",
    }
    d = diff(result(before), result(after))
    assert d.differs and d.regressed
    assert [h.change for h in d.hops][:2] == ["regressed", "broken"]  # worse first


def test_headers_and_format_switch() -> None:
    w3c = {"x-request-id": XRID, "traceparent": f"00-{B3['x-b3-traceid']}-362f46f3eb57a3b6-01"}
    d = diff(result([outcome("/a/1")]), result([outcome("/a/1", headers=w3c)]))
    (h,) = d.hops
    assert h.change == "unchanged"
    assert h.headers_added == ["traceparent"]
    assert h.headers_removed == ["x-b3-parentspanid", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]
    assert (h.formats_before, h.formats_after) == (["b3-multi", "x-request-id"], ["w3c", "x-request-id"])
    assert d.differs and not d.regressed


def test_same_result_does_not_differ() -> None:
    r = result([outcome("/a/1", "missing"), outcome("/b/1")])
    d = diff(r, r)
    assert not d.differs and not d.regressed
    assert {h.change for h in d.hops} == {"unchanged"}


def test_unknown_authority_matched_by_cluster_ip() -> None:
    a = outcome("/a/1", target="x")
    a.call.authority = None
    a.call.nat_reply_from = "10.96.0.11:9080"
    b = outcome("/a/2", target="x")
    b.call.authority = None
    b.call.nat_reply_from = "10.96.0.11:9080"
    (h,) = diff(result([a]), result([b])).hops
    assert h.change == "unchanged" and "ClusterIP" in h.matched_by
    assert h.target == "unknown (10.96.0.11:9080)"  # the one spelling (analysis.naming)


@pytest.fixture
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures import ROOT

    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("_at_root")
@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_diff_against_itself_exits_0(fmt: str) -> None:
    p = "captures/productpage-http1.pcap"
    code, out, err = run("diff", "--format", fmt, p, p)
    assert code == 0, err
    if fmt == "json":
        d = json.loads(out)
        assert d["differs"] is False and {h["change"] for h in d["hops"]} == {"unchanged"}
        assert set(d["hops"][0]) >= {"source", "target", "protocol", "method", "path", "change",
                                     "before", "after", "headers_added", "headers_removed"}
    else:
        assert "nothing differs" in out


@pytest.mark.usefixtures("_at_root")
def test_diff_usage_errors_are_trouble() -> None:
    code, _, err = run("diff", "captures/productpage-http1.pcap")
    assert code == 2 and err == "tracewire: give BEFORE AFTER, or --before CAPTURE... --after CAPTURE...\n"
    code, _, err = run("diff", "--before", "captures/edge/empty.pcap", "--after",
                       "captures/productpage-http1.pcap")
    assert code == 2 and "not a capture" in err


DIFF_EXPECTED = json.loads((CAPTURES / "diff" / "EXPECTED.json").read_text())


@pytest.mark.usefixtures("_at_root")
@pytest.mark.parametrize("pair", DIFF_EXPECTED["pairs"], ids=lambda p: f"{p['before']}->{p['after']}")
def test_recorded_pairs(pair: dict[str, object]) -> None:
    """The same flow recorded with the bugs, fixed, and with a new bug: every change value."""
    before, after = f"captures/{pair['before_file']}", f"captures/{pair['after_file']}"
    code, out, err = run("diff", "--format", "json", before, after)
    assert code == 1, err  # something differs
    d = json.loads(out)
    got = {(h["target"], h["method"], h["path"]): h for h in d["hops"]}
    want = {(h["target"], h["method"], h["path"]): h for h in pair["hops"]}  # type: ignore[attr-defined]
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert (g["source"], g["protocol"], g["change"]) == (w["source"], w["protocol"], w["change"]), key
        assert g["headers_added"] == w["headers_added"] and g["headers_removed"] == w["headers_removed"]
        for side in ("before", "after"):
            if w[side] is None:
                assert g[side] is None
            else:
                assert g[side]["calls"] == w[side]["calls"]
                assert sum(g[side]["broken"].values()) == w[side]["broken_calls"]
    assert d["regressed"] == pair["worse"]
    code, _, _ = run("diff", "--fail-on-regression", before, after)
    assert code == (1 if pair["worse"] else 0)


def test_every_change_value_is_recorded() -> None:
    assert set(DIFF_EXPECTED["coverage"]) == {"fixed", "improved", "regressed", "broken", "unchanged",
                                              "new", "gone"}


@pytest.mark.usefixtures("_at_root")
@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_diff_golden(fmt: str, update_golden: bool) -> None:
    from tests.test_cli import GOLDEN

    code, out, _ = run("diff", "--format", fmt, "--all", "captures/productpage-http1.pcap",
                       "captures/diff/productpage-newbug.pcap")
    assert code == 1
    golden = GOLDEN / f"diff-buggy-newbug.{fmt}"
    if update_golden:
        golden.write_text(out)
    assert out == golden.read_text()


def test_inferred_target_matches_the_same_hop_with_its_authority() -> None:
    """Before: a cold gRPC channel shows :authority ratings:50051. After: the channel is warm,
    the authority unknown, and naming infers ratings:50051 from the ClusterIP. One hop, and
    the diff says the match rests on an inference."""
    before = outcome("/a/1", target="ratings:50051")
    after = outcome("/a/2", target="ratings:50051")
    after.call.authority = None
    after.call.nat_reply_from = "10.96.0.13:50051"
    after.call.target, after.call.target_source = "ratings:50051", "ClusterIP"
    (h,) = diff(result([before]), result([after])).hops
    assert (h.target, h.change) == ("ratings:50051", "unchanged")
    assert h.matched_by == "ratings:50051 inferred from ClusterIP (authority unknown)"
    (h,) = diff(result([after]), result([before])).hops
    assert "inferred from ClusterIP" in h.matched_by
