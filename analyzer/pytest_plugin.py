"""A pytest plugin that turns recorded captures into propagation regression tests.

Opt-in: it does nothing unless ``--tracewire-captures DIR`` is given or the ini file says
``tracewire_captures = DIR``. Then every expectation file under DIR (``*.tracewire.json``,
see ``analyzer.check``) is one test item, named after the file (``pods.tracewire.json`` is
``pods``), which analyses the captures the file lists and fails when a hop's verdict differs
from it, with the differences as ``tracewire check`` prints them. ``--tracewire-update``
rewrites each collected file from the current verdict instead (notes kept).

Where DIR is collected from: the command-line option always adds DIR to what pytest
collects; the ini option adds it only when no paths were named on the command line (so that
``pytest tests/test_x.py`` runs just that file). ``-k``, ``--collect-only``, the usual
reports and pytest-xdist work as for any test: items are re-collected on each worker from the
same files, and a failure's report is plain text.

pytest imports this module through the ``pytest11`` entry point ``tracewire``; pytest is not a
dependency of tracewire, and nothing else imports this module. The module stays Python in the
compiled build (setup.py): its classes subclass pytest's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

    from analyzer.check import CheckResult

SUFFIX = ".tracewire.json"  # analyzer.check.SUFFIX; not imported, so pytest starts without tracewire
_ROOT = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracewire", "propagation tests from recorded captures (tracewire)")
    group.addoption("--tracewire-captures", dest="tracewire_captures", metavar="DIR", default=None,
                    help="Collect every expectation file (*.tracewire.json) under DIR as a test "
                    "of the captures it lists.")
    group.addoption("--tracewire-update", dest="tracewire_update", action="store_true", default=False,
                    help="Rewrite the collected expectation files from the current verdict "
                    "instead of checking them.")
    parser.addini("tracewire_captures", "Directory of captures with expectation files to collect "
                  "as tests (relative to the ini file); as --tracewire-captures DIR.", default="")


def _root(config: pytest.Config) -> tuple[Path, bool] | None:
    """The captures' directory, and whether the command line gave it."""
    given = config.getoption("tracewire_captures")
    if given:
        return Path(given).resolve(), True
    ini = str(config.getini("tracewire_captures") or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return (base / ini).resolve(), False
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def pytest_configure(config: pytest.Config) -> None:
    root = _root(config)
    if root is None:
        return
    folder, from_command_line = root
    if not folder.is_dir():
        raise pytest.UsageError(f"tracewire_captures: {folder} is not a directory")
    config.stash[_ROOT] = folder
    named = config.args_source == pytest.Config.ArgsSource.ARGS
    if named and not from_command_line:
        return
    # Collected once however often configure runs (xdist's workers receive these args):
    # skip when DIR, or a directory holding it, is already among them.
    existing = [Path(a.split("::", 1)[0]).resolve() for a in config.args]
    if not any(_inside(folder, p) for p in existing):
        config.args.append(os.fspath(folder))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    folder = parent.config.stash.get(_ROOT, None)
    if folder is None or not file_path.name.endswith(SUFFIX) or len(file_path.name) == len(SUFFIX):
        return None
    if not _inside(file_path.resolve(), folder):
        return None
    return ExpectationFile.from_parent(parent, path=file_path)


class ExpectationFile(pytest.File):
    """One expectation file: one item, the scenario it describes."""

    def collect(self) -> Iterator[pytest.Item]:
        yield PropagationCheck.from_parent(self, name=self.path.name[: -len(SUFFIX)])


class Mismatch(Exception):
    """The captures' verdict differs from the expectation; the report is ``check``'s table."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(f"{len(result.differences)} hops differ from {result.expectation}")
        self.result = result


class Unusable(Exception):
    """The expectation file or a capture it lists cannot be used: one line, as the CLI says it."""


class PropagationCheck(pytest.Item):
    """``tracewire check --expect FILE``, as a test."""

    def runtest(self) -> None:
        from analyzer import check as expectations
        from analyzer.analysis import analyze
        from analyzer.errors import AnalyzerError

        # relative to where pytest was started, as the captures are then named in a failure
        path = os.path.relpath(self.path, self.config.invocation_params.dir)
        try:
            expected = expectations.load(path)
            options = expectations.options_for(expected)
            result = analyze(expectations.capture_paths(expected), options)
            if self.config.getoption("tracewire_update"):
                expectations.write_expect(result, path, expected.options)
                return
        except AnalyzerError as err:
            raise Unusable(str(err)) from None
        checked = expectations.check(result, expected)
        if not checked.matches:
            raise Mismatch(checked)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: str | None = None) -> str | TerminalRepr:
        err = excinfo.value
        if isinstance(err, Mismatch):
            from analyzer.report.check import table, verdict_line
            from analyzer.report.term import width

            # the first line is what pytest's short summary shows
            return (f"{verdict_line(err.result)}\n\n{table(err.result, width=width())}"
                    "(pytest --tracewire-update rewrites the expectation from this verdict)")
        if isinstance(err, Unusable):
            return f"tracewire: {err}"
        return super().repr_failure(excinfo)  # a bug in tracewire: pytest's traceback

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"tracewire check {self.name}"
