"""The pytest plugin, run by pytest itself (``pytester``) on copies of the recorded fixtures:
opt-in, one item per expectation file named after it, a failure shown as ``tracewire check``
shows it, ``--tracewire-update``, ``-k``, the ini option, and xdist.

Each run loads the plugin with ``-p`` and with plugin autoloading off, so that it is the
plugin of this checkout that runs whether or not the installed package's ``pytest11`` entry
point is up to date (the entry point itself is checked in setup.cfg).
"""

from __future__ import annotations

import configparser
import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures import CAPTURES, ROOT, run_cli

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "analyzer.pytest_plugin")


@pytest.fixture
def captures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with two scenarios and their committed expectations: captures/pods (two
    pods, one file) and captures/productpage-http1.pcap, plus one ordinary test."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("COLUMNS", "200")
    root = pytester.path / "captures"
    (root / "pods").mkdir(parents=True)
    for name in ("productpage.pcap", "reviews.pcap", "pods.tracewire.json"):
        shutil.copy(CAPTURES / "pods" / name, root / "pods" / name)
    for name in ("productpage-http1.pcap", "productpage-http1.tracewire.json"):
        shutil.copy(CAPTURES / name, root / name)
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    return root


def _break_pods(root: Path) -> None:
    path = root / "pods" / "pods.tracewire.json"
    doc = json.loads(path.read_text())
    hop = next(h for h in doc["hops"] if h["target"] == "reviews:9080")
    hop["breaks"][0]["count"] = 5
    path.write_text(json.dumps(doc))


def test_the_entry_point_is_declared() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert cfg["options.entry_points"]["pytest11"].split() == ["tracewire", "=", "analyzer.pytest_plugin"]


def test_nothing_is_collected_without_the_option(pytester: pytest.Pytester, captures: Path) -> None:
    r = pytester.runpytest(*PLUGIN, "captures", "test_plain.py")
    r.assert_outcomes(passed=1)
    assert "tracewire" not in r.stdout.str()


def test_a_matching_capture_passes(pytester: pytest.Pytester, captures: Path) -> None:
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "-v")
    r.assert_outcomes(passed=3)
    r.stdout.fnmatch_lines([
        "captures/pods/pods.tracewire.json::pods PASSED*",
        "captures/productpage-http1.tracewire.json::productpage-http1 PASSED*",
    ])


def test_an_edited_expectation_fails_showing_what_check_prints(pytester: pytest.Pytester,
                                                                 captures: Path) -> None:
    _break_pods(captures)
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures")
    r.assert_outcomes(passed=2, failed=1)
    out = r.stdout.str()
    # the failure is check's output, line for line, under a first line for the short summary
    status, shown, _ = run_cli("check", "--expect", "captures/pods/pods.tracewire.json")
    assert status == 1
    assert shown.splitlines()[-1] == "differs from the expectation: 1 hop differs, 3 match"
    r.stdout.fnmatch_lines(["*_ tracewire check pods _*", shown.splitlines()[-1], "",
                            *(x.replace("[", "[[]") for x in shown.splitlines()),
                            "(pytest --tracewire-update rewrites the expectation from this verdict)"])
    assert "changed 5 → 2 calls" in out
    # the short summary names the item and says what is wrong in one line
    r.stdout.fnmatch_lines(["FAILED captures/pods/pods.tracewire.json::pods - differs from the "
                            "expectation: 1 hop differs, 3 match"])


def test_update_rewrites_the_expectations(pytester: pytest.Pytester, captures: Path) -> None:
    _break_pods(captures)
    path = captures / "pods" / "pods.tracewire.json"
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "--tracewire-update")
    r.assert_outcomes(passed=3)
    assert path.read_text() == (CAPTURES / "pods" / "pods.tracewire.json").read_text()
    pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures").assert_outcomes(passed=3)


def test_k_selects_one_capture(pytester: pytest.Pytester, captures: Path) -> None:
    _break_pods(captures)
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "-k", "productpage-http1", "-v")
    r.assert_outcomes(passed=1, deselected=2)
    r.stdout.fnmatch_lines(["captures/productpage-http1.tracewire.json::productpage-http1 PASSED*"])
    pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "-k", "pods").assert_outcomes(
        failed=1, deselected=2)


def test_the_ini_option(pytester: pytest.Pytester, captures: Path) -> None:
    pytester.makeini("[pytest]\ntracewire_captures = captures\n")
    r = pytester.runpytest(*PLUGIN, "--collect-only", "-q")
    r.stdout.fnmatch_lines(["captures/pods/pods.tracewire.json::pods",
                            "captures/productpage-http1.tracewire.json::productpage-http1",
                            "test_plain.py::test_plain"])
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=3)
    # paths named on the command line are what runs: the ini's captures are not added to them
    pytester.runpytest(*PLUGIN, "test_plain.py").assert_outcomes(passed=1)
    # the directory itself named, or one file in it: collected once
    pytester.runpytest(*PLUGIN, "captures").assert_outcomes(passed=2)
    pytester.runpytest(*PLUGIN, "captures/pods/pods.tracewire.json").assert_outcomes(passed=1)


def test_the_directory_given_twice_is_collected_once(pytester: pytest.Pytester, captures: Path) -> None:
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "captures")
    r.assert_outcomes(passed=2)


def test_an_unusable_expectation_fails_in_one_line(pytester: pytest.Pytester, captures: Path) -> None:
    (captures / "pods" / "pods.tracewire.json").write_text('{"schema_version": 1, "captures": []}')
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures")
    r.assert_outcomes(passed=2, failed=1)
    r.stdout.fnmatch_lines(["tracewire: captures/pods/pods.tracewire.json: hops: missing"])
    (captures / "productpage-http1.pcap").unlink()
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "captures", "-k", "productpage")
    r.assert_outcomes(failed=1, deselected=2)
    r.stdout.fnmatch_lines(["tracewire: captures/productpage-http1.pcap: *"])


def test_a_directory_that_is_not_one(pytester: pytest.Pytester, captures: Path) -> None:
    r = pytester.runpytest(*PLUGIN, "--tracewire-captures", "nosuch")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines(["*tracewire_captures: */nosuch is not a directory"])


def test_xdist(pytester: pytest.Pytester, captures: Path) -> None:
    # pytest-xdist is a test dependency (setup.cfg); each worker collects the items again
    _break_pods(captures)
    r = pytester.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2", "--tracewire-captures", "captures")
    r.assert_outcomes(passed=2, failed=1)
    r.stdout.fnmatch_lines(["*tracewire check pods*", "differs from the expectation: 1 hop differs, 3 match",
                            "*changed 5 → 2 calls*"])
    r = pytester.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2", "--tracewire-captures", "captures",
                                      "-k", "productpage-http1")
    r.assert_outcomes(passed=1)
