"""The tracewire command: output formats, redaction, exact error lines and exit statuses."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from analyzer.cli import cli
from tests.fixtures import ROOT, recorded_captures

GOLDEN = Path(__file__).resolve().parent / "golden"
MAIN = "captures/productpage-http1.pcap"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # capture paths in the output are as given: relative to the repository root
    monkeypatch.chdir(ROOT)


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), input=input)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def test_every_command_and_option_has_help() -> None:
    assert cli.help
    for name, cmd in cli.commands.items():
        assert cmd.help, name
        for p in cmd.params:
            if isinstance(p, click.Option):
                assert p.help, f"{name} {p.opts}"
        code, out, _ = run(name, "--help")
        assert code == 0 and "Usage: " in out


@pytest.mark.parametrize("name", recorded_captures())
def test_messages_jsonl_golden(name: str, update_golden: bool) -> None:
    code, out, err = run("messages", "--format", "jsonl", f"captures/{name}")
    assert code == 0, err
    golden = GOLDEN / (Path(name).name + ".jsonl")
    if update_golden:
        golden.write_text(out)
    assert out == golden.read_text()


def test_jsonl_schema_fields() -> None:
    _, out, _ = run("messages", "--format", "jsonl", MAIN)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows
    keys = {"capture", "frame", "first_frame", "ts", "protocol", "kind", "connection", "stream",
            "method", "path", "authority", "status", "headers", "trace", "anomalies"}
    for r in rows:
        assert keys <= set(r)
        assert r["capture"] == MAIN
        assert r["protocol"] == "http/1.1" and r["stream"] is None
        assert set(r["connection"]) == {"src", "sport", "dst", "dport"}
        assert r["ts"].endswith("Z") and len(r["ts"].split(".")[1]) == 10  # 9 digits + Z
        assert r["first_frame"] <= r["frame"]
    first = rows[0]
    assert (first["kind"], first["method"], first["authority"]) == ("request", "GET", "productpage:9080")
    formats = {c["format"] for r in rows for c in r["trace"]}
    assert {"x-request-id", "b3-multi"} <= formats
    # the app's deliberate bug: an upper-case x-b3-traceid is reported as a violation
    violations = [v for r in rows for c in r["trace"] for v in c["violations"]]
    assert "x-b3-traceid: upper-case hex is not allowed" in violations


SECRETS = ("authorization", "cookie", "set-cookie")


def _secret_values(rows: list[dict[str, object]]) -> list[str]:
    return [
        str(h["value"])  # type: ignore[index]
        for r in rows
        for h in r["headers"]  # type: ignore[attr-defined]
        if str(h["name"]).lower() in SECRETS  # type: ignore[index]
    ]


def test_secrets_redacted_in_every_format_unless_asked() -> None:
    _, out, _ = run("messages", "--format", "jsonl", MAIN)
    values = _secret_values([json.loads(line) for line in out.splitlines()])
    assert values and all(v.startswith("<redacted, ") and v.endswith(" bytes>") for v in values)
    assert "Bearer" not in out
    _, out_csv, _ = run("messages", "--format", "csv", MAIN)
    assert "Bearer" not in out_csv and "<redacted, 68 bytes>" in out_csv
    _, out_table, _ = run("messages", MAIN)
    assert "Bearer" not in out_table
    _, shown, _ = run("messages", "--format", "jsonl", "--show-secrets", MAIN)
    values = _secret_values([json.loads(line) for line in shown.splitlines()])
    assert any(v.startswith("Bearer ") for v in values)
    assert not any(v.startswith("<redacted") for v in values)


def test_csv_has_a_row_per_message() -> None:
    _, out, _ = run("messages", "--format", "csv", MAIN)
    rows = list(csv.DictReader(io.StringIO(out)))
    _, jl, _ = run("messages", "--format", "jsonl", MAIN)
    assert len(rows) == len(jl.splitlines())
    assert rows[0]["method"] == "GET" and rows[0]["x_request_id"]


def test_table_fits_120_columns() -> None:
    code, out, _ = run("messages", MAIN)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["frame", "time", "(UTC)"]
    assert all(len(line) <= 120 for line in lines[:-1])
    assert lines[-1].startswith(f"{MAIN}: 52 messages in 126 frames")


def test_stdin_and_several_captures() -> None:
    data = (ROOT / "captures/curl-basic.pcap").read_bytes()
    code, out, _ = run("messages", "--format", "jsonl", "-", input=data)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 6 and {r["capture"] for r in rows} == {"-"}
    code, out, _ = run("messages", "--format", "jsonl", "captures/curl-basic.pcap", MAIN)
    caps = [json.loads(line)["capture"] for line in out.splitlines()]
    assert caps == ["captures/curl-basic.pcap"] * 6 + [MAIN] * 52


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("captures/edge/not-a-capture.pcap",
         "tracewire: captures/edge/not-a-capture.pcap: not a capture: no pcap or pcapng magic "
         "number (starts with {magic})"),
        ("captures/edge/empty.pcap",
         "tracewire: captures/edge/empty.pcap: not a capture: the file is empty"),
        ("captures/no-such-file.pcap",
         "tracewire: captures/no-such-file.pcap: cannot read: No such file or directory"),
        ("captures", "tracewire: captures: cannot read: Is a directory"),
    ],
)
@pytest.mark.parametrize("command", ["messages", "info"])
def test_trouble_is_one_line_and_status_2(path: str, line: str, command: str) -> None:
    if "{magic}" in line:
        line = line.format(magic=(ROOT / path).read_bytes()[:4].hex())
    code, out, err = run(command, path)
    assert code == 2
    assert err == line + "\n"
    assert "Traceback" not in out + err


def test_header_only_capture_is_fine() -> None:
    code, out, err = run("messages", "--format", "jsonl", "captures/edge/header-only.pcap")
    assert (code, out, err) == (0, "", "")


def test_truncated_capture_keeps_messages_and_exits_0() -> None:
    code, out, _ = run("messages", "--format", "jsonl", "captures/edge/truncated-record.pcap")
    assert code == 0 and len(out.splitlines()) == 4
    code, out, _ = run("info", "--format", "json", "captures/edge/truncated-record.pcap")
    info = json.loads(out)
    assert [(a["kind"], a["frame"]) for a in info["anomalies"]] == [("truncated-record", 10)]


def test_info_json() -> None:
    code, out, _ = run("info", "--format", "json", "captures/productpage-http1-nat.pcap")
    assert code == 0
    d = json.loads(out)
    assert d["format"] == "pcap" and d["frames"] == 126 and d["messages"] == 52
    assert d["linktypes"] == [{"id": 276, "name": "Linux cooked v2 (SLL2)"}]
    assert d["protocols"] == {"http/1": 6}
    servers = [c["server"] for c in d["connections"]]
    assert any(s == "127.0.0.1:15001 (replies from 10.96.12.34:9080)" for s in servers)


def test_info_table_names_protocols() -> None:
    code, out, _ = run("info", "captures/edge/non-http-port-80.pcap")
    assert code == 0
    assert "connections  1 (other 1)" in out


def test_python_dash_m_and_broken_pipe() -> None:
    p = subprocess.run([sys.executable, "-m", "analyzer", "--version"], capture_output=True,
                       text=True, cwd=ROOT, check=False)
    assert p.returncode == 0 and p.stdout.startswith("tracewire, version ")
    # a reader that leaves early (| head) is not trouble and prints no traceback
    p = subprocess.run(
        f"{sys.executable} -m analyzer messages --format jsonl {MAIN} {MAIN} {MAIN} | head -c 10",
        shell=True, capture_output=True, text=True, cwd=ROOT, check=False)
    assert "Traceback" not in p.stderr
