"""The README's first lines are the commands a new user runs; CI must run the same test command."""

from __future__ import annotations

from tests.fixtures import ROOT


def _commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()[:12]
    return [line.strip() for line in lines if line.startswith("    ")]


def test_readme_opens_with_install_and_test_commands() -> None:
    install, test = _commands()[:2]
    assert "pip install" in install and "tracewire " in install and "captures/" in install
    assert "tshark" in test and "pytest" in test


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test = _commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines()
    assert "ruff check" in ci and "mypy --strict analyzer" in ci


def test_readme_example_capture_exists() -> None:
    install = _commands()[0]
    capture = install.rsplit(" ", 1)[1]
    assert (ROOT / capture).is_file()
