"""``--jobs N`` (issue 10 item 7): captures read in processes of their own give the output
one process gives, byte for byte; errors and Ctrl-C end the command as always."""

from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.analysis import Options
from analyzer.analysis.engine import _read_portable, _read_state
from analyzer.analysis.parallel import (
    WORTH_A_WORKER,
    RemoteTraceback,
    WorkerError,
    auto_jobs,
    default_jobs,
    flatten,
    read_captures,
    rebuild,
)
from analyzer.analysis.store import CallLog
from analyzer.cli import cli
from analyzer.errors import CaptureError
from tests.fixtures import CAPTURES, interrupt_while_reading, run_cli

MESH = sorted(str(p) for p in (CAPTURES / "mesh").glob("*.pcap"))
PODS = sorted(str(p) for p in (CAPTURES / "pods").glob("*.pcap"))


def _both(*args: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    return run_cli(*args, "--jobs", "1"), run_cli(*args, "--jobs", "2")


@pytest.mark.parametrize("captures", [MESH, PODS], ids=["mesh", "pods"])
def test_analyze_json_is_the_same_with_workers(captures: list[str]) -> None:
    one, two = _both("analyze", "--format", "json", "--show-secrets", *captures)
    assert one[0] == 0 and '"findings"' in one[1]
    assert two == one


def test_analyze_table_and_csv_are_the_same_with_workers() -> None:
    for fmt in ("table", "csv"):
        one, two = _both("analyze", "--format", fmt, "--all", *MESH) if fmt == "table" else \
            _both("analyze", "--format", fmt, *MESH)
        assert one[1] and two == one


def test_diff_and_export_are_the_same_with_workers() -> None:
    one, two = _both("diff", "--format", "json", "--before", MESH[0], "--before", MESH[1],
                     "--after", MESH[2], "--after", MESH[3])
    assert one[1] and two == one
    one, two = _both("export", "--to", "zipkin", *PODS)
    assert one[1].startswith("[") and two == one


def test_standard_input_is_read_in_its_place(tmp_path: Path) -> None:
    """``-`` is read by the command's own process, in the order the captures were given."""
    stdin = (CAPTURES / "pods" / "reviews.pcap").read_bytes()
    runs = [CliRunner().invoke(cli, ["analyze", "--format", "json", PODS[0], "-", "--jobs", j], input=stdin)
            for j in ("1", "2")]
    assert runs[0].exit_code == 0 and '"captures": [' in runs[0].stdout
    assert runs[1].stdout == runs[0].stdout


def test_a_capture_that_fails_in_a_worker_is_one_line_and_status_2(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_bytes(b"not a capture at all\n" * 10)
    one, two = _both("analyze", MESH[0], str(bad), MESH[1])
    assert one[0] == 2 and one[2].count("\n") == 1 and str(bad) in one[2]
    assert two == one


def test_the_same_capture_given_twice_is_warned_about_once(tmp_path: Path) -> None:
    copy = tmp_path / "copy.pcap"
    shutil.copy(MESH[0], copy)
    one, two = _both("analyze", "--format", "json", MESH[0], str(copy), MESH[1])
    assert "given twice" in one[2]
    assert two == one


def _crash(path: str, opts: Options) -> str:
    raise KeyError(path)


def _name(path: str, opts: Options) -> str:
    if path.endswith("bad"):
        raise CaptureError(f"{path}: not a capture")
    return f"{path} read with outbound port {opts.outbound_port}"


@pytest.mark.parametrize("capture", ["pods/reviews.pcap", "grpc-cold.pcap", "mesh/frontend.pcap"])
def test_a_capture_read_elsewhere_comes_back_equal(capture: str) -> None:
    """What a worker sends is plain data, built again into equal records (the compiled
    build's records cannot be pickled as they are); its calls travel as the rows of its log,
    which a log here gives back as the calls the worker made."""
    path = str(CAPTURES / capture)
    state = _read_portable(path, Options())  # as a worker reads it
    back = rebuild(pickle.loads(pickle.dumps(flatten(state))))
    assert back == state
    summary, _, rows, _, known = back
    assert type(summary.not_tcp) is type(state[0].not_tcp)
    here = _read_state(path, Options())
    assert rows and list(CallLog.of_rows(rows)) == list(here[2])
    assert known == here[4].keys()  # the values known headers carried, in the order seen


def test_flatten_refuses_what_it_cannot_rebuild() -> None:
    with pytest.raises(TypeError, match="cannot send a"):
        flatten([object()])


def test_read_captures_keeps_the_order_and_reads_stdin_here() -> None:
    paths = ["a", "-", "b", "c"]
    assert read_captures(paths, Options(outbound_port=15001), 2, _name) == [
        f"{p} read with outbound port 15001" for p in paths]


def test_an_error_in_a_worker_is_raised_as_itself() -> None:
    with pytest.raises(CaptureError, match=r"^b\.bad: not a capture$"):
        read_captures(["a", "b.bad", "c"], Options(), 2, _name)


def test_an_unexpected_error_in_a_worker_names_where_and_keeps_its_traceback() -> None:
    with pytest.raises(WorkerError) as info:
        read_captures(["a", "b"], Options(), 2, _crash)
    # no capture was being read; the innermost line of tracewire's own code is named (the
    # compiled build has no Python lines to name: "?", as the command's own line says then)
    assert re.fullmatch(r"internal error \(KeyError at (analyzer/analysis/parallel\.py:\d+|\?)\)",
                        info.value.where), info.value.where
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback) and "KeyError: 'a'" in str(cause)


def test_default_jobs() -> None:
    assert default_jobs() >= 1
    assert auto_jobs(MESH) == 1  # the fixtures are far too small to repay a worker
    assert sum(Path(p).stat().st_size for p in MESH) < WORTH_A_WORKER
    assert auto_jobs(["-", "/no/such/file"]) == 1


def test_every_reading_command_has_jobs() -> None:
    for command in ("analyze", "diff", "export"):
        code, out, _ = run_cli(command, "--help")
        assert code == 0 and "--jobs N" in out


def test_ctrl_c_with_workers_exits_130_quietly() -> None:
    code, err = interrupt_while_reading(["analyze", "--jobs", "2", MESH[0], MESH[1], "-"],
                                        CAPTURES / "pods" / "reviews.pcap")
    assert code == 130
    assert err == b"tracewire: interrupted\n"
