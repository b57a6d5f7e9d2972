"""Expectation files and ``tracewire check``: the committed expectations of the recorded
fixtures match (and say what the recordings' truth files say), an edited expectation exits 1
with a readable difference per hop, a bad file exits 2 with one line naming the file and
the field, ``--write-expect`` round-trips, and nothing depends on the order of hops or
captures."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from analyzer import check as expectations
from analyzer.analysis import analyze
from analyzer.analysis.diff import diff, path_template
from analyzer.report import check as report
from tests.fixtures import CAPTURES, run_cli

FILES = sorted(CAPTURES.rglob("*" + expectations.SUFFIX))
PODS = CAPTURES / "pods"
POD_CAPTURES = [str(PODS / "productpage.pcap"), str(PODS / "reviews.pcap")]
TRUTH_KIND = json.loads((CAPTURES / "diff" / "EXPECTED.json").read_text())["finding_kinds"]


def _copy(tmp_path: Path, *names: str, folder: Path = PODS) -> list[str]:
    out = []
    for n in names:
        shutil.copy(folder / n, tmp_path / n)
        out.append(str(tmp_path / n))
    return out


def _pods(tmp_path: Path) -> tuple[list[str], Path]:
    """The two pod captures and their committed expectation, copied to a scenario folder."""
    folder = tmp_path / "pods"
    folder.mkdir()
    caps = _copy(folder, "productpage.pcap", "reviews.pcap")
    shutil.copy(PODS / "pods.tracewire.json", folder / "pods.tracewire.json")
    return caps, folder / "pods.tracewire.json"


def _edit(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


def _hop(doc: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    return next(h for h in doc["hops"] if h["source"] == source and h["target"] == target)


# -- the committed expectations -------------------------------------------------------------


def test_the_recorded_fixtures_have_expectations() -> None:
    names = {str(f.relative_to(CAPTURES)) for f in FILES}
    assert {"pods/pods.tracewire.json", "mesh/mesh.tracewire.json", "diff/productpage-fixed.tracewire.json",
            "diff/productpage-newbug.tracewire.json", "productpage-http1.tracewire.json",
            "productpage-http1-nat.tracewire.json"} <= names


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(CAPTURES)) for f in FILES])
def test_every_committed_expectation_matches(path: Path) -> None:
    status, out, err = run_cli("check", "--expect", str(path))
    assert (status, err) == (0, ""), out
    assert out.endswith(f"matches the expectation ({len(json.loads(path.read_text())['hops'])} hops)\n"
                        .replace("(1 hops)", "(1 hop)"))
    # found by name from its captures too, and written as committed (the file is the verdict)
    e = expectations.load(str(path))
    caps = expectations.capture_paths(e)
    assert run_cli("check", *caps)[0] == 0
    assert expectations.dumps(expectations.expectation_of(analyze(caps), str(path), e)) == path.read_text()


def _truth_breaks(findings: list[dict[str, Any]],
                  calls: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """(source, target, protocol) -> {kind: (count, headers)} from a truth file's findings;
    hops with only correct calls -> {}. The truth says grpc where tracewire's hops say h2."""
    def hop_of(c: dict[str, Any]) -> tuple[str, str, str]:
        return c["source"], c["target"], {"grpc": "h2"}.get(c["protocol"], c["protocol"])

    out: dict[tuple[str, str, str], dict[str, tuple[int, set[str]]]] = defaultdict(dict)
    for c in calls:
        out[hop_of(c)]  # a hop with no break
    for f in findings:
        hop = out[hop_of(f)]
        n, headers = hop.get(f["kind"], (0, set()))
        hop[f["kind"]] = (n + 1, headers | set(f["headers"]))
    return dict(out)


def _file_breaks(path: Path) -> dict[tuple[str, str, str], Any]:
    out: dict[tuple[str, str, str], dict[str, tuple[int, set[str]]]] = defaultdict(dict)
    for h in json.loads(path.read_text())["hops"]:
        hop = out[(h["source"], h["target"], h["protocol"])]
        for b in h.get("breaks", []):
            n, headers = hop.get(b["kind"], (0, set()))
            hop[b["kind"]] = (n + b["count"], headers | set(b["headers"]))
    return dict(out)


@pytest.mark.parametrize("scenario", ["pods", "mesh"])
def test_scenario_expectations_say_what_the_truth_says(scenario: str) -> None:
    # the truth (record_pods.py, record_mesh.py, from tshark) per hop and kind: broken calls
    # and the headers concerned; hops whose calls were all correct are expected ok
    truth = json.loads((CAPTURES / scenario / "EXPECTED.json").read_text())
    findings = [f for c in truth["captures"] for f in c["findings"]]
    correct = [f for c in truth["captures"] for f in c["correct_calls"]]
    path = CAPTURES / scenario / f"{scenario}.tracewire.json"
    assert _file_breaks(path) == _truth_breaks(findings, correct)
    doc = json.loads(path.read_text())
    assert {h["verdict"] for h in doc["hops"] if not h.get("breaks")} <= {"ok"}


@pytest.mark.parametrize("variant", ["buggy", "fixed", "newbug"])
def test_productpage_expectations_say_what_the_diff_truth_says(variant: str) -> None:
    v = json.loads((CAPTURES / "diff" / "EXPECTED.json").read_text())["variants"][variant]
    path = CAPTURES / v["file"].replace(".pcap", expectations.SUFFIX)
    doc = json.loads(path.read_text())
    got = {(h["source"], h["target"], h["protocol"], h["method"], h["path"]):
           (h["verdict"], {b["kind"]: b["count"] for b in h.get("breaks", [])}) for h in doc["hops"]}
    want: dict[tuple[str, ...], tuple[str, dict[str, int]]] = {}
    for h in v["hops"]:
        kinds: dict[str, int] = {}
        for name, n in h["breaks"].items():
            kinds[TRUTH_KIND[name]] = kinds.get(TRUTH_KIND[name], 0) + n
        want[(h["source"], h["target"], h["protocol"], h["method"], h["path"])] = (
            "broken" if h["broken_calls"] else "ok", kinds)
    assert got == want


# -- differences ----------------------------------------------------------------------------


def test_an_edited_expectation_exits_1_with_one_readable_line_per_hop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    caps, path = _pods(tmp_path)

    def edit(doc: dict[str, Any]) -> None:
        _hop(doc, "reviews", "ratings:9080")["verdict"] = "unjudged"  # judged now
        ratings = _hop(doc, "reviews", "ratings:50051")  # broken, expected ok
        ratings["verdict"] = "ok"
        del ratings["breaks"]
        reviews = _hop(doc, "productpage", "reviews:9080")
        reviews["breaks"][0]["count"] = 5  # changed: 5 expected, 2 found
        reviews["breaks"][1]["headers"].append("tracestate")  # partial: one header fewer
        doc["hops"].remove(_hop(doc, "productpage", "details:9080"))  # new
        doc["hops"].append({"source": "productpage", "target": "ratings:9080", "protocol": "http/1.1",
                            "method": "GET", "path": "/ratings/{n}", "verdict": "ok"})  # gone

    _edit(path, edit)
    monkeypatch.setenv("COLUMNS", "250")
    status, out, err = run_cli("check", *caps)
    assert (status, err) == (1, "")
    lines = [" ".join(x.split()) for x in out.splitlines()]
    assert lines[0] == f"expect: {path}"
    assert lines[1] == f"check: {caps[0]}, {caps[1]}"
    assert "worse:" in lines and "better:" in lines and "other changes:" in lines
    assert ("differs productpage → reviews:9080 GET /reviews/{n} 5 chg, 2 part 15 calls: 2 chg, 2 part "
            "changed 5 → 2 calls; partial headers -tracestate") in lines
    assert ("broken reviews → ratings:50051 POST <unknown path> ok 14 calls: 2 part "
            "partial: x-b3-parentspanid x-b3-sampled x-b3-spanid x-b3-traceid") in lines
    assert ("new productpage → details:9080 GET /details/{n} - 15 calls: 2 miss, 2 malf "
            "missing: x-b3-parentspanid x-b3-sampled x-b3-spanid x-b3-traceid x-request-id; "
            "malformed: x-b3-spanid") in lines
    assert "judged reviews → ratings:9080 GET /ratings/{n} unjudged 1 call: ok" in lines
    assert "gone productpage → ratings:9080 GET /ratings/{n} ok -" in lines
    assert lines[-1] == "differs from the expectation: 5 hops differ, 0 match"
    # worse first: newly broken, then broken otherwise, then a new broken hop
    changes = [x.split()[0] for x in lines[:-1] if x.split() and x.split()[0] in expectations.CHANGES]
    assert changes == ["broken", "differs", "new", "judged", "gone"]


def test_a_hop_fixed_while_expected_broken_and_the_kinds_that_changed() -> None:
    result = analyze(POD_CAPTURES)
    e = expectations.expectation_of(result)
    details = e.hops[("productpage", "details:9080", "http/1.1", "GET", "/details/{n}")]
    reviews = e.hops[("productpage", "reviews:9080", "http/1.1", "GET", "/reviews/{n}")]
    ok = e.hops[("reviews", "ratings:9080", "http/1.1", "GET", "/ratings/{n}")]
    e.hops[ok.key] = expectations.HopVerdict(ok.key, "broken",
                                             (expectations.Break("missing", ("x-request-id",)),))
    # kinds swapped on one hop: one gone, one new; a count left out accepts any number
    e.hops[details.key] = expectations.HopVerdict(details.key, "broken", (
        expectations.Break("missing", details.breaks[0].headers), expectations.Break("partial", ("b3",), 9)))
    e.hops[reviews.key] = expectations.HopVerdict(reviews.key, "broken", tuple(
        expectations.Break(b.kind, b.headers) for b in reviews.breaks))
    r = expectations.check(result, e)
    assert [(d.change, d.key[1], d.details) for d in r.differences] == [
        ("differs", "details:9080", ("-partial", "+malformed (2: x-b3-spanid)")),
        ("fixed", "ratings:9080", ()),
    ]
    assert r.matching == 2 and not r.matches


def _first_frames(src: Path, n: int, dst: Path) -> str:
    """The first ``n`` frames of a little-endian pcap, as a shorter recording would have them."""
    raw = src.read_bytes()
    assert raw[:4] == b"\xd4\xc3\xb2\xa1"
    out, off = [raw[:24]], 24
    for _ in range(n):
        size = 16 + int.from_bytes(raw[off + 8 : off + 12], "little")
        out.append(raw[off : off + size])
        off += size
    dst.write_bytes(b"".join(out))
    return str(dst)


def test_a_hop_no_call_of_which_is_judged_is_unjudged_never_ok(tmp_path: Path) -> None:
    # frontend's first 30 frames: one call to orders, made while serving a request that began
    # before the capture. The capture cannot say whether it carried the context on.
    short = _first_frames(CAPTURES / "mesh" / "frontend.pcap", 30, tmp_path / "frontend.pcap")
    result = analyze([short])
    assert [o.verdict for o in result.outcomes] == ["not-in-capture"]
    status, out, err = run_cli("check", "--write-expect", short)
    assert (status, err) == (0, "")
    assert out.endswith("1 hop: 0 ok, 0 broken, 0 unjudged\n".replace("0 unjudged", "1 unjudged"))
    doc = json.loads((tmp_path / "frontend.tracewire.json").read_text())
    assert [h["verdict"] for h in doc["hops"]] == ["unjudged"]
    # the whole capture judges that hop: a difference ("judged" when it is ok, here broken)
    shutil.copy(CAPTURES / "mesh" / "frontend.pcap", short)
    status, out, _ = run_cli("check", short)
    assert status == 1
    assert [x.split()[0] for x in out.splitlines() if x.startswith("broken ")] == ["broken"]


# -- bad files ------------------------------------------------------------------------------


def _one_hop(**fields: Any) -> str:
    """An expectation file's text with one hop: a valid one, with ``fields`` changed."""
    hop = {"source": "a", "target": "b", "protocol": "h2", "method": "GET", "path": "/", "verdict": "ok",
           **fields}
    return json.dumps({"schema_version": 1, "captures": ["a.pcap"], "hops": [hop]})


HOP = '{"source": "a", "target": "b", "protocol": "h2", "method": "GET", "path": "/", "verdict": "ok"}'
TOP = "unknown field (allowed: captures, hops, note, options, schema_version)"
BAD = [
    ("{", "line 1: not JSON: Expecting property name enclosed in double quotes"),
    ("[]", "the document: expected an object, found a list"),
    ('{"captures": ["a.pcap"], "hops": []}', "schema_version: missing"),
    ('{"schema_version": 2, "captures": ["a.pcap"], "hops": []}',
     "schema_version: 2 is not a version this tracewire reads (1)"),
    ('{"schema_version": 1, "captures": [], "hops": []}', "captures: lists no capture"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "hops": {}}', "hops: expected a list, found an object"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "hops": [], "hop": []}', f"hop: {TOP}"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "hops": [{"source": "a"}]}', "hops[0].target: missing"),
    (_one_hop(verdict="fine"), "hops[0].verdict: 'fine' is not one of ok, broken, unjudged"),
    (_one_hop(verdict="broken"), "hops[0].breaks: missing (a broken hop lists its kinds)"),
    (_one_hop(breaks=[]), "hops[0].breaks: only a broken hop lists breaks (verdict is 'ok')"),
    (_one_hop(verdict="broken", breaks=[{"kind": "lost", "headers": []}]),
     "hops[0].breaks[0].kind: 'lost' is not one of missing, changed, partial, malformed"),
    (_one_hop(verdict="broken", breaks=[{"kind": "missing", "headers": ["b3"], "count": 0}]),
     "hops[0].breaks[0].count: expected a whole number from 1, found 0"),
    (_one_hop(verdict="broken", breaks=[{"kind": "missing", "headers": "b3"}]),
     "hops[0].breaks[0].headers: expected a list of strings, found a string"),
    (_one_hop(verdict="broken", breaks=[{"kind": "partial", "headers": []}] * 2),
     "hops[0].breaks[1].kind: 'partial' is listed twice"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "hops": [' + HOP + ", " + HOP + "]}",
     "hops[1]: the same hop (source, target, protocol, method, path) is listed twice"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "options": {"app_ports": [70000]}, "hops": []}',
     "options.app_ports[0]: expected a whole number from 1 to 65535, found 70000"),
    ('{"schema_version": 1, "captures": ["a.pcap"], "hops": [], "\\u001b[2J": 1}', f"\\x1b[2J: {TOP}"),
    ("[" * 100_000, "the document: nested too deeply"),
    ('{"note": "\udcff"}', "byte 10: not UTF-8"),  # written as the byte 0xff
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(":")[0] for _, m in BAD])
def test_an_invalid_expectation_exits_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    caps = _copy(tmp_path, "reviews.pcap")
    path = tmp_path / "reviews.tracewire.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    status, out, err = run_cli("check", *caps)
    assert (status, out) == (2, "")
    assert err == f"tracewire: {path}: {message}\n"
    with pytest.raises(expectations.ExpectationError, match="^" + json.dumps(str(path))[1:-1]):
        expectations.load(str(path))


def test_a_missing_expectation_exits_2_and_says_how_to_write_one(tmp_path: Path) -> None:
    caps = _copy(tmp_path, "reviews.pcap")
    status, out, err = run_cli("check", *caps)
    assert (status, out) == (2, "")
    assert err == (f"tracewire: {tmp_path / 'reviews.tracewire.json'}: no expectation file: No such file "
                   "or directory (tracewire check --write-expect writes it)\n")


def test_where_the_expectation_is_looked_for(tmp_path: Path) -> None:
    assert expectations.expectation_path(["a/b/productpage.pcap"]) == "a/b/productpage.tracewire.json"
    assert expectations.expectation_path(["x.pcapng.gz"]) == "x.tracewire.json"
    assert expectations.expectation_path(["a/pods/p.pcap", "a/pods/r.pcap"]) == "a/pods/pods.tracewire.json"
    for bad, why in ((["a/p.pcap", "b/r.pcap"], "captures in different directories"),
                     (["-"], "standard input")):
        with pytest.raises(expectations.ExpectationError, match=why):
            expectations.expectation_path(bad)
    status, out, err = run_cli("check", str(PODS / "reviews.pcap"), str(CAPTURES / "curl-basic.pcap"))
    assert (status, out) == (2, "")
    assert err == ("tracewire: captures in different directories share no expectation file by name: "
                   "give --expect FILE\n")
    assert run_cli("check")[2] == ("tracewire: give CAPTURE..., or --expect FILE to check the captures "
                                   "it lists\n")


def test_a_file_found_by_name_must_be_for_the_captures_given(tmp_path: Path) -> None:
    caps, path = _pods(tmp_path)
    shutil.copy(caps[0], Path(caps[0]).parent / "details.pcap")
    status, out, err = run_cli("check", caps[0], str(Path(caps[0]).parent / "details.pcap"))
    assert (status, out) == (2, "")
    assert err == (f"tracewire: {path}: captures: lists productpage.pcap, reviews.pcap, not the captures "
                   "given (--expect FILE uses it for others)\n")
    # named with --expect, the file's hops are compared with any captures
    assert run_cli("check", "--expect", str(path), *reversed(caps))[0] == 0


# -- writing --------------------------------------------------------------------------------


def test_write_expect_round_trip(tmp_path: Path) -> None:
    caps = _copy(tmp_path, "productpage.pcap", "reviews.pcap")
    path = tmp_path / f"{tmp_path.name}.tracewire.json"
    status, out, err = run_cli("check", "--write-expect", *caps)
    assert (status, err) == (0, "")
    assert out == (f"wrote {path}: 4 hops: 1 ok, 3 broken (missing, changed, partial, malformed), "
                   "0 unjudged\n")
    text = path.read_text()
    assert text == (PODS / "pods.tracewire.json").read_text()  # the same scenario, the same file
    assert expectations.dumps(expectations.load(str(path))) == text
    assert run_cli("check", *caps)[0] == 0
    # a person's notes survive a rewrite; the file's captures are used when none are given
    _edit(path, lambda d: (d.update(note="bookinfo, B3"), d["hops"][0].update(note="bug 12: fix pending")))
    assert run_cli("check", "--write-expect", "--expect", str(path))[0] == 0
    doc = json.loads(path.read_text())
    assert doc["note"] == "bookinfo, B3" and doc["hops"][0]["note"] == "bug 12: fix pending"
    assert run_cli("check", "--expect", str(path))[0] == 0


def test_the_expectation_does_not_depend_on_order(tmp_path: Path) -> None:
    caps = _copy(tmp_path, "productpage.pcap", "reviews.pcap")
    run_cli("check", "--write-expect", *caps)
    path = tmp_path / f"{tmp_path.name}.tracewire.json"
    first = path.read_text()
    run_cli("check", "--write-expect", *reversed(caps))
    assert path.read_text() == first
    # hops, breaks and headers shuffled by hand still match
    _edit(path, lambda d: (d["hops"].reverse(), [(h.get("breaks", []).reverse(),
                                                  [b["headers"].reverse() for b in h.get("breaks", [])])
                                                 for h in d["hops"]]))
    assert path.read_text() != first
    assert run_cli("check", *caps)[0] == 0
    assert run_cli("check", *reversed(caps))[0] == 0


def test_options_are_kept_in_the_file(tmp_path: Path) -> None:
    caps = _copy(tmp_path, "productpage.pcap", "reviews.pcap")
    status, _, err = run_cli("check", "--write-expect", "--app-port", "9080", "--name",
                             f"frontpage={caps[0]}", *caps)
    assert (status, err) == (0, "")
    path = tmp_path / f"{tmp_path.name}.tracewire.json"
    doc = json.loads(path.read_text())
    assert doc["options"] == {"app_ports": [9080], "names": {"frontpage": "productpage.pcap"}}
    assert {h["source"] for h in doc["hops"]} == {"frontpage", "reviews"}
    # checked with the file's options (the pod keeps the name given), from anywhere
    assert run_cli("check", "--expect", str(path))[0] == 0
    assert run_cli("check", *caps)[0] == 0


# -- output ---------------------------------------------------------------------------------


def test_json_output(tmp_path: Path) -> None:
    caps, path = _pods(tmp_path)
    _edit(path, lambda d: _hop(d, "productpage", "reviews:9080")["breaks"].pop())
    status, out, _ = run_cli("check", "--format", "json", *caps)
    assert status == 1
    doc = json.loads(out)
    assert doc["matches"] is False and doc["matching_hops"] == 3
    assert doc["differences"] == [{
        "change": "differs", "source": "productpage", "target": "reviews:9080", "protocol": "http/1.1",
        "method": "GET", "path": "/reviews/{n}",
        "expected": {"verdict": "broken", "breaks": [{"kind": "changed", "headers": ["x-b3-traceid"],
                                                      "count": 2}]},
        "found": {"verdict": "broken", "calls": 15, "breaks": [
            {"kind": "changed", "headers": ["x-b3-traceid"], "count": 2},
            {"kind": "partial", "count": 2,
             "headers": ["x-b3-parentspanid", "x-b3-sampled", "x-b3-spanid", "x-b3-traceid"]}]},
        "details": ["+partial (2: x-b3-parentspanid x-b3-sampled x-b3-spanid x-b3-traceid)"],
    }]
    assert json.loads(run_cli("check", "--format", "json", "--expect", str(PODS / "pods.tracewire.json"))[1])[
        "differences"] == []


def test_hostile_names_are_escaped_and_credentials_redacted(tmp_path: Path) -> None:
    caps, path = _pods(tmp_path)
    evil = "evil\x1b]0;owned\x07\u202e"
    _edit(path, lambda d: d["hops"].append({
        "source": evil, "target": "b\x1b[2J", "protocol": "http/1.1", "method": "GET",
        "path": "/login?access_token=s3cr3t", "verdict": "ok", "note": "\x1b[31m"}))
    status, out, err = run_cli("check", *caps)
    assert status == 1 and err == ""
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "s3cr3t" not in out and r"evil\x1b]0;owned\x07" in out
    status, out, _ = run_cli("check", "--format", "json", *caps)
    assert "\x1b" not in out and "\u202e" not in out and "s3cr3t" not in out
    assert json.loads(out)["differences"][0]["source"] == evil
    assert "s3cr3t" in run_cli("check", "--show-secrets", *caps)[1]


def test_hop_keys_are_diffs_keys() -> None:
    result = analyze([str(CAPTURES / "diff" / "productpage-newbug.pcap")])
    e = expectations.expectation_of(result)
    assert sorted(e.hops) == sorted((h.source, h.target, h.protocol, h.method, h.path)
                                    for h in diff(result, result).hops)
    assert {k[4] for k in e.hops} == {path_template(o.call.path) for o in result.outcomes}


def test_the_table_wraps_for_a_narrow_terminal() -> None:
    result = analyze(POD_CAPTURES)
    e = expectations.expectation_of(result)
    e.hops = {}
    text = report.table(expectations.check(result, e), width=80)
    lines = text.splitlines()
    # the table fits (the captures' paths above it wrap between paths, a path is never cut)
    assert max(len(x) for x in lines[lines.index(""):]) <= 80
    assert text.splitlines()[-1] == "differs from the expectation: 4 hops differ, 0 match"


def test_the_readme_shows_what_check_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (CAPTURES.parent / "README.md").read_text()
    section = readme[readme.index("### Propagation tests in CI"):]
    command = next(x for x in section.splitlines() if x.startswith("$ COLUMNS=100 tracewire check "))
    shown = section[section.index(command) + len(command) + 1:].split("```", 1)[0]
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.chdir(CAPTURES.parent)
    status, out, err = run_cli(*command.split()[3:])
    assert (status, out, err) == (1, shown, "")
    # and the file it shows is one tracewire reads
    example = section[section.index("```json\n") + 8:].split("```", 1)[0]
    e = expectations.loads(example, "example.tracewire.json")
    assert [h.note for h in e.hops.values()] == ["bug 1432: the new client drops B3; fixed in 2.4"]


def test_hostile_capture_content_in_the_file_and_the_table(tmp_path: Path) -> None:
    from tests.test_output_safety import RAW, hostile_capture

    capture = str(hostile_capture(tmp_path / "frontend.pcap"))
    assert run_cli("check", "--write-expect", capture)[0] == 0
    text = (tmp_path / "frontend.tracewire.json").read_text()
    assert not any(ch in text for ch in RAW)  # JSON escapes, bidi and C1 as \u escapes too
    assert run_cli("check", capture)[0] == 0  # and it reads back to the same hops
    _edit(tmp_path / "frontend.tracewire.json", lambda d: d.update(hops=[]))
    status, out, _ = run_cli("check", capture)
    assert status == 1 and "new " in out
    assert not any(ch in out for ch in RAW)


def test_a_password_in_a_path_never_reaches_the_file(tmp_path: Path) -> None:
    from tests.packets import Conn, pcap, sll2

    b3 = {"x-request-id": "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f",
          "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312"}
    inbound = Conn("127.0.0.6", 40000, "10.244.1.10", 9080)
    outbound = Conn("10.244.1.10", 42000, "127.0.0.1", 15001, cisn=7000, sisn=9000)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    head = "GET /p HTTP/1.1\r\nHost: front:9080\r\n" + "".join(f"{k}: {v}\r\n" for k, v in b3.items())
    call = b"GET http://admin:hunter2@reviews:9080/r/7 HTTP/1.1\r\nHost: reviews:9080\r\n\r\n"
    packets = [*inbound.handshake(), inbound.send(head.encode() + b"\r\n"),
               *outbound.handshake(), outbound.send(call),
               outbound.send(ok, from_client=False), inbound.send(ok, from_client=False)]
    capture = tmp_path / "front.pcap"
    capture.write_bytes(pcap([(1_700_000_000_000_000_000 + n * 1_000_000, sll2(p))
                              for n, p in enumerate(packets)]))
    assert run_cli("check", "--write-expect", str(capture))[0] == 0
    doc = json.loads((tmp_path / "front.tracewire.json").read_text())
    assert [h["verdict"] for h in doc["hops"]] == ["broken"]
    assert "hunter2" not in json.dumps(doc) and "admin" in doc["hops"][0]["path"]
    assert run_cli("check", str(capture))[0] == 0


def test_standard_input_needs_expect_and_cannot_be_written(tmp_path: Path) -> None:
    with open(PODS / "reviews.pcap", "rb") as f:
        from click.testing import CliRunner

        from analyzer.cli import cli

        r = CliRunner().invoke(cli, ["check", "--write-expect", "--expect", str(tmp_path / "x.json"), "-"],
                               input=f.read())
    assert (r.exit_code, r.stdout) == (2, "")
    assert r.stderr == ("tracewire: a capture read from standard input cannot be listed in an expectation "
                        "file: give the capture as a file\n")
    assert run_cli("check", "-")[2] == ("tracewire: a capture read from standard input has no expectation "
                                        "file beside it: give --expect FILE\n")
    assert not (tmp_path / "x.json").exists()
