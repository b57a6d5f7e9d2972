"""The README's first lines are the commands a new user runs; CI must run the same test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import ROOT


def _commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()[:12]
    return [line.strip() for line in lines if line.startswith("    ")]


def test_readme_opens_with_install_and_test_commands() -> None:
    install, test = _commands()[:2]
    assert "pip install" in install and "tracewire " in install and "captures/" in install
    assert "tshark" in test and "pytest" in test
    # the compiled build needs a C compiler and Python's headers, and so does the suite
    # (tests/test_huffman.py builds the C kernel): a fresh Debian has neither
    for command in (install, test):
        assert "gcc" in command.split() and "python3-dev" in command.split()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test = _commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()
    assert "ruff check" in ci and "mypy --strict analyzer" in ci
    # and the whole suite again on the compiled build, which must not quietly go pure
    assert "TRACEWIRE_REQUIRE_COMPILED=1" in ci and "TRACEWIRE_EXPECT_BUILD=compiled" in ci


def test_readme_example_capture_exists() -> None:
    install = _commands()[0]
    capture = install.rsplit(" ", 1)[1]
    assert (ROOT / capture).is_file()


def _ci_with(first_step: str, root: Path) -> subprocess.CompletedProcess[str]:
    """Run a copy of .ci/run in ``root`` whose README step is ``first_step`` instead."""
    test = _commands()[1]
    script = (ROOT / ".ci" / "run").read_text()
    assert script.count(test) == 1
    (root / ".ci").mkdir()
    (root / ".ci" / "run").write_text(script.replace(test, first_step))
    return subprocess.run(["bash", str(root / ".ci" / "run")], capture_output=True, text=True,
                          check=False, timeout=120)


@pytest.mark.parametrize(("first_step", "status"), [
    ("false && touch reached", 1),  # the apt-get case: the first link of a chain fails
    ("true && (exit 3) && touch reached", 3),  # a link in the middle
    ("false | cat && touch reached", 1),  # a pipeline whose first command fails
    (f"mkdir empty && {sys.executable} -m pytest -q -p no:cacheprovider empty && touch reached", 5),
])
def test_ci_fails_when_any_link_of_the_readme_command_fails(
    first_step: str, status: int, tmp_path: Path
) -> None:
    p = _ci_with(first_step, tmp_path)
    assert p.returncode == status, p.stderr
    assert not (tmp_path / "reached").exists()
    assert f"ci: failed with status {status}: {first_step}" in p.stderr
    assert "ruff check" not in p.stderr  # no later step ran


def test_ci_goes_on_to_ruff_and_mypy_when_the_readme_command_passes(tmp_path: Path) -> None:
    p = _ci_with("touch reached", tmp_path)
    assert (tmp_path / "reached").exists()
    # ruff is not installed in the copy: its step runs, fails, and fails the run
    assert "ci: .venv/bin/ruff check .\n" in p.stderr
    assert p.returncode == 127 and "ci: failed with status 127: .venv/bin/ruff check ." in p.stderr
