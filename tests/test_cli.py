"""The tracewire command: output formats, redaction, exact error lines and exit statuses."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from analyzer.capture.reader import Frame
from analyzer.cli import cli
from tests.fixtures import ROOT, interrupt_while_reading, recorded_captures

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


def _secret_values(rows: list[dict[str, Any]]) -> list[str]:
    return [str(h["value"]) for r in rows for h in r["headers"] if str(h["name"]).lower() in SECRETS]


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


# --- how a command ends: output kept, one line, the right status ---------------------------

def _fail_at_frame(monkeypatch: pytest.MonkeyPatch, number: int, exc: BaseException) -> None:
    """Fault injection: decoding frame ``number`` raises ``exc`` (the code after it is real)."""
    import analyzer.pipeline as pipeline

    real = pipeline.decode_frame  # type: ignore[attr-defined]  # the name pipeline calls, counted

    def decode(frame: Frame) -> object:
        if frame.number == number:
            raise exc
        return real(frame)

    monkeypatch.setattr(pipeline, "decode_frame", decode)


def _messages_before(frame: int) -> int:
    _, out, _ = run("messages", "--format", "jsonl", MAIN)
    return sum(1 for line in out.splitlines() if json.loads(line)["frame"] < frame)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_output_decoded_before_trouble_reaches_the_output(fmt: str) -> None:
    # 52 good messages, then a file that is no capture: all 52 are written, then one line
    code, out, err = run("messages", "--format", fmt, MAIN, "captures/edge/not-a-capture.pcap")
    assert code == 2
    assert err.startswith("tracewire: captures/edge/not-a-capture.pcap: not a capture")
    assert err.count("\n") == 1
    if fmt == "jsonl":
        assert len(out.splitlines()) == 52
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(out)))) == 52
    else:
        # "== capture" and the column heads first; a message's ids may continue on lines of their own
        assert len([x for x in out.splitlines() if not x.startswith(" " * 20)]) == 2 + 52


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "table"])
def test_unexpected_error_is_one_line_naming_capture_and_frame(
    fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _messages_before(100)
    assert 20 < before < 52
    _fail_at_frame(monkeypatch, 100, ValueError("boom"))
    code, out, err = run("messages", "--format", fmt, MAIN)
    assert code == 2
    assert re.fullmatch(
        rf"tracewire: {MAIN}: frame 100: internal error \(ValueError at analyzer/pipeline\.py:\d+\); "
        r"a bug: --debug shows the traceback\n", err), err
    rows = (list(csv.reader(io.StringIO(out))) if fmt == "csv" else
            [x for x in out.splitlines() if not x.startswith(" " * 20)])  # not a row's continuation
    assert len(rows) == before + (fmt != "jsonl")  # csv and table: a line of column heads


def test_unexpected_error_in_analyze_names_the_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_at_frame(monkeypatch, 7, KeyError("x"))
    code, out, err = run("analyze", "--format", "json", MAIN)
    assert code == 2 and out == ""
    assert err.startswith(f"tracewire: {MAIN}: frame 7: internal error (KeyError at analyzer/")
    assert err.count("\n") == 1


@pytest.mark.parametrize("how", [("--debug",), ()])
def test_debug_shows_the_traceback(how: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    if not how:
        monkeypatch.setenv("TRACEWIRE_DEBUG", "1")
    _fail_at_frame(monkeypatch, 100, ValueError("boom"))
    code, _, err = run(*how, "messages", "--format", "jsonl", MAIN)
    assert code == 2
    assert err.startswith("Traceback (most recent call last):")
    assert err.rstrip().endswith("ValueError: boom")


def test_ctrl_c_is_one_line_and_status_130(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _messages_before(100)
    _fail_at_frame(monkeypatch, 100, KeyboardInterrupt())
    code, out, err = run("messages", "--format", "jsonl", MAIN)
    assert (code, err) == (130, "tracewire: interrupted\n")
    assert len(out.splitlines()) == before  # what was decoded is not lost either


def test_export_into_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "spans.json"
    code, out, err = run("export", "--to", "jaeger", "-o", str(target), MAIN)
    assert (code, out) == (2, "")
    assert err == f"tracewire: {target}: cannot write: No such file or directory\n"
    code, _, _ = run("export", "--to", "jaeger", "-o", str(tmp_path / "spans.json"), MAIN)
    assert code == 0 and json.loads((tmp_path / "spans.json").read_text())["data"]


def _sh(script: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACEWIRE_DEBUG"}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env=env, check=False, stdin=stdin, timeout=300)


TW = f"{sys.executable} -m analyzer"


@pytest.mark.parametrize("command", [
    f"messages --format jsonl {MAIN} > /dev/full",
    f"messages {MAIN} > /dev/full",
    f"info --format json {MAIN} > /dev/full",
    f"analyze --format json {MAIN} > /dev/full",
    f"export --to otlp {MAIN} > /dev/full",
])
def test_full_disk_is_one_line_and_status_2(command: str) -> None:
    p = _sh(f"{TW} {command}")
    assert (p.returncode, p.stderr) == (2, "tracewire: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("command", [f"info {MAIN}", f"messages --format jsonl {MAIN}"])
def test_closed_stdout_is_one_line_and_status_2(command: str) -> None:
    p = _sh(f"{TW} {command} >&-")
    assert (p.returncode, p.stderr) == (2, "tracewire: cannot write the output: standard output is closed\n")


def test_closed_stdin_is_one_line_and_status_2() -> None:
    p = _sh(f"{TW} messages - <&-")
    assert (p.returncode, p.stderr) == (2, "tracewire: -: cannot read: standard input is closed\n")


def test_full_disk_for_an_output_file() -> None:
    p = _sh(f"{TW} export --to zipkin -o /dev/full {MAIN}")
    assert (p.returncode, p.stderr) == (2, "tracewire: /dev/full: cannot write: No space left on device\n")


@pytest.mark.parametrize("command", [
    f"messages --format jsonl {MAIN} {MAIN} captures/pods/productpage.pcap",
    "messages --format csv captures/pods/productpage.pcap captures/pods/reviews.pcap",
    "messages captures/pods/productpage.pcap captures/pods/reviews.pcap",
    "info captures/pods/productpage.pcap",
    "analyze --format json --all captures/pods/productpage.pcap captures/pods/reviews.pcap",
])
def test_closed_pipe_ends_quietly_with_status_0(command: str) -> None:
    p = _sh(f'{TW} {command} | head -1 > /dev/null; echo "status ${{PIPESTATUS[0]}}" >&2')
    assert p.stderr == "status 0\n"


def test_real_ctrl_c_while_reading_stdin() -> None:
    """SIGINT while the command waits for more capture bytes: one line, status 130."""
    assert interrupt_while_reading(["messages", "--format", "jsonl", "-"], ROOT / MAIN) == (
        130, b"tracewire: interrupted\n")


def test_timestamps_no_date_can_show_do_not_stop_any_command(tmp_path: Path) -> None:
    from tests.test_robustness import RETIMINGS, _retimed

    path = tmp_path / "far-future.pcapng"
    path.write_bytes(_retimed("edge/pcapng-named.pcap", RETIMINGS["offset-far-future"]))
    for command in (["info"], ["info", "--format", "json"], ["messages"], ["analyze"],
                    ["messages", "--format", "csv"], ["export", "--to", "otlp"]):
        code, out, err = run(*command, str(path))
        assert (code, err) == (0, ""), command
    _, out, _ = run("info", str(path))
    assert re.search(r"time span    \d{20,} \.\. \d{20,} \(", out)
    assert "frame 1: bad-timestamp: timestamp " in out
    _, out, _ = run("messages", "--format", "jsonl", str(path))
    assert all(json.loads(line)["ts"].isdigit() for line in out.splitlines())
