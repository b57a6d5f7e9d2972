"""The shell contract of every command: exit statuses said in --help, a bad option in one
line with a hint, validated options, Ctrl-C and closed pipes, and what an empty capture says."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from analyzer.cli import cli
from tests.fixtures import ROOT, interrupt_while_reading, run_cli

COMMANDS = ("messages", "info", "analyze", "diff", "export", "check")
MAIN = "captures/productpage-http1.pcap"
POD = "captures/pods/productpage.pcap"
EMPTY = "captures/edge/header-only.pcap"  # a pcap header and no record
NO_HTTP = "captures/edge/non-http-port-80.pcap"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


run = run_cli


# -- --help tells the exit statuses -------------------------------------------------------

ONE = {
    "messages": "never (messages lists, it does not judge)",
    "info": "never (info describes, it does not judge)",
    "analyze": "with --fail-on-broken when a finding is reported",
    "export": "never (export writes what it finds)",
    "diff": "when something differs (with --fail-on-regression: only when something got worse)",
    "check": "when the verdict differs from the expectation (a missing or invalid expectation file "
             "is trouble: 2)",
}


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_help_ends_with_the_exit_statuses(command: str | None) -> None:
    code, out, _ = run(*([command] if command else []), "--help")
    assert code == 0
    one = ONE.get(command or "", "when analyze --fail-on-broken finds a break, diff finds a difference "
                  "or check finds the verdict differs from its expectation")
    # click wraps the epilog to the terminal; the words are what counts
    tail = " ".join(out.split()).split("Exit status: ", 1)[1]
    assert tail == (f"0 fine; 1 {one}; 2 trouble (a capture that cannot be read, a bad option, "
                    "output that cannot be written); 130 interrupted (Ctrl-C). A closed pipe "
                    "(| head) ends quietly with status 0.")


def test_every_command_and_option_has_help() -> None:
    for name, command in cli.commands.items():
        assert command.help, name
        for p in command.params:
            if isinstance(p, click.Option):
                assert p.help, (name, p.name)


# -- a bad command line: one line, and where help is ----------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_one_line_and_a_hint(command: str) -> None:
    code, out, err = run(command, "--no-such-option", MAIN)
    assert (code, out) == (2, "")
    assert err == f"tracewire: No such option '--no-such-option'.\nTry 'tracewire {command} --help'.\n"


@pytest.mark.parametrize(("args", "line"), [
    (("nosuch",), "No such command 'nosuch'."),
    (("--nope",), "No such option '--nope'."),
    (("analyze",), "Missing argument 'CAPTURE...'."),
    (("analyze", "--format", "xml", MAIN),
     "Invalid value for '--format': 'xml' is not one of 'table', 'json', 'markdown', 'jsonl', 'csv', "
     "'html'."),
    (("analyze", "--pod-ip", "10.0.0.300", MAIN),
     "Invalid value for '--pod-ip': '10.0.0.300' is not an IP address"),
    (("export", "--to", "zipkin", "--pod-ip", "pod-a", MAIN),
     "Invalid value for '--pod-ip': 'pod-a' is not an IP address"),
    (("analyze", "--app-port", "0", MAIN),
     "Invalid value for '--app-port': 0 is not in the range 1<=x<=65535."),
    (("diff", "--app-port", "65536", MAIN, MAIN),
     "Invalid value for '--app-port': 65536 is not in the range 1<=x<=65535."),
    (("analyze", "--outbound-port", "70000", MAIN),
     "Invalid value for '--outbound-port': 70000 is not in the range 1<=x<=65535."),
    (("analyze", "--pod-ip", "\x1b[2J", MAIN),  # escaped: the terminal is not cleared
     "Invalid value for '--pod-ip': '\\x1b[2J' is not an IP address"),
])
def test_bad_command_lines_exactly(args: tuple[str, ...], line: str) -> None:
    code, out, err = run(*args)
    where = "tracewire" if args[0].startswith("-") or args[0] == "nosuch" else f"tracewire {args[0]}"
    assert (code, out, err) == (2, "", f"tracewire: {line}\nTry '{where} --help'.\n")


def test_addresses_are_compared_as_written_in_reports() -> None:
    """An IPv6 --pod-ip given in another spelling still matches the capture's."""
    code, _, err = run("analyze", "--pod-ip", "10.244.1.10", "--app-port", "9080", POD)
    assert (code, err) == (0, "")
    code, _, err = run("analyze", "--pod-ip", " 10.244.1.10 ", POD)
    assert (code, err) == (0, "")


def test_an_address_or_port_the_capture_never_shows_is_a_warning() -> None:
    code, out, err = run("analyze", "--format", "json", "--pod-ip", "10.9.9.9", "--app-port", "1234",
                         "--app-port", "9080", POD)
    assert code == 0 and json.loads(out)["captures"] == [POD]
    assert err == ("tracewire: warning: --pod-ip 10.9.9.9: no HTTP message in the capture has this "
                   "address\ntracewire: warning: --app-port 1234: no HTTP message in the capture "
                   "has this port\n")


# -- what an empty or HTTP-less capture says -------------------------------------------------


def test_an_empty_capture_says_what_it_saw() -> None:
    code, out, err = run("analyze", EMPTY, NO_HTTP)  # not a terminal: no colour
    assert (code, err) == (0, "")
    assert out == (f"\n{EMPTY}: 0 HTTP messages in 0 frames\n{NO_HTTP}: 0 HTTP messages in 11 frames\n"
                   "no outbound calls found\n\n")


def test_an_empty_capture_in_markdown() -> None:
    code, out, _ = run("analyze", "--format", "markdown", EMPTY)
    assert code == 0
    assert f"`{EMPTY}`: 0 HTTP messages in 0 frames\n\nno outbound calls found\n" in out


@pytest.mark.parametrize("target", ["jaeger", "zipkin", "otlp"])
def test_an_export_with_no_traces_says_so(target: str) -> None:
    code, out, err = run("export", "--to", target, EMPTY, NO_HTTP)
    assert code == 0 and json.loads(out) is not None
    assert err == (f"tracewire: warning: no traces found: {EMPTY}: 0 HTTP messages in 0 frames; "
                   f"{NO_HTTP}: 0 HTTP messages in 11 frames\n")
    code, _, err = run("export", "--to", target, MAIN)
    assert "no traces found" not in err


# -- info takes several captures ------------------------------------------------------------


def test_info_takes_several_captures() -> None:
    caps = (MAIN, EMPTY, NO_HTTP)
    alone = [run("info", c) for c in caps]
    assert all(code == 0 for code, _, _ in alone)
    code, out, _ = run("info", *caps)
    assert (code, out) == (0, "\n".join(o for _, o, _ in alone))
    docs = [json.loads(run("info", "--format", "json", c)[1]) for c in caps]
    code, out, _ = run("info", "--format", "json", *caps)
    assert (code, json.loads(out)) == (0, docs)


# -- Ctrl-C and a closed pipe, for every command --------------------------------------------


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "TRACEWIRE_DEBUG"}


ARGS = {
    "messages": ["messages", "--format", "jsonl", "-"],
    "info": ["info", "-"],
    "analyze": ["analyze", "-"],
    "export": ["export", "--to", "jaeger", "-"],
    "diff": ["diff", MAIN, "-"],
}


@pytest.mark.parametrize("command", ["info", "analyze", "export", "diff"])
def test_ctrl_c_exits_130_in_one_line(command: str) -> None:
    """SIGINT while the command waits for more capture bytes on stdin (messages: test_cli)."""
    assert interrupt_while_reading(ARGS[command], ROOT / MAIN) == (130, b"tracewire: interrupted\n")


@pytest.mark.parametrize("command", [
    f"export --to jaeger {POD} captures/pods/reviews.pcap",
    f"diff --all --format json {POD} {POD}",  # nothing differs: 0
    f"analyze --format jsonl {POD} captures/pods/reviews.pcap",
    f"info {POD} captures/pods/reviews.pcap",
])
def test_a_closed_pipe_ends_quietly_with_status_0(command: str) -> None:
    p = subprocess.run(["bash", "-c", f'{sys.executable} -m analyzer {command} | head -c 1 > /dev/null; '
                        'echo "status ${PIPESTATUS[0]}" >&2'], capture_output=True, text=True,
                       cwd=ROOT, env=_env(), check=False, timeout=300)
    assert p.stderr.splitlines()[-1] == "status 0"
    assert "Traceback" not in p.stderr and "Error" not in p.stderr
