"""The build: the package is compiled whole or not at all, ``--version`` says which, CI's
compiled run really imports the compiled package, and setup.py falls back to pure Python
(deleting what it had built) when any part of the compiled build fails.

CI runs this suite twice (.ci/run): on the editable install of the README's test command
(always pure Python) and on a wheel installed in a second venv with
TRACEWIRE_EXPECT_BUILD=compiled.
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import analyzer
from analyzer import __version__
from analyzer._build import build_info, compiled, huffman_kernel
from tests.fixtures import ROOT

EXT = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
# click decorates their functions; the package's docstring is the API's (mypyc drops it);
# the pytest plugin's classes subclass pytest's
ALWAYS_PYTHON = {"analyzer.cli", "analyzer.__main__", "analyzer", "analyzer.pytest_plugin"}


def _modules() -> list[str]:
    names = ["analyzer"]
    for info in pkgutil.walk_packages(analyzer.__path__, "analyzer."):
        if info.name != "analyzer._huffman":
            names.append(info.name)
    return names


def test_the_build_is_the_one_ci_asked_for() -> None:
    expected = os.environ.get("TRACEWIRE_EXPECT_BUILD")
    running = "compiled" if compiled() else "pure"
    if expected:
        assert running == expected, (build_info(), analyzer.__path__)
    if Path(importlib.import_module("analyzer.records").__file__ or "").resolve().is_relative_to(ROOT):
        # the checkout itself (editable install, or run from the source tree) is pure:
        # compiled modules there would shadow the sources being edited
        assert running == "pure", analyzer.__file__


def test_every_module_is_compiled_or_none_is() -> None:
    kinds: dict[str, bool] = {}
    for name in _modules():
        # the file an import would load (importing __main__ would run the command)
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, name
        kinds[name] = spec.origin.endswith(EXT)
    assert len(kinds) > 40
    for name, is_compiled in kinds.items():
        assert is_compiled == (compiled() and name not in ALWAYS_PYTHON), name
    assert huffman_kernel() == ("C" if compiled() else "Python")


def test_version_names_the_build_the_command_runs() -> None:
    # a separate process, as a user runs it: it must import the same build as this one
    p = subprocess.run([sys.executable, "-m", "analyzer", "--version"], capture_output=True,
                       text=True, cwd=ROOT, check=False, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"tracewire, version {__version__} ({build_info()})\n"
    assert build_info() in (
        "compiled with mypyc, Huffman kernel: C",
        "pure Python, Huffman kernel: Python",
    )


# -- setup.py's fallback, on a small package of the same shape ----------------------------------


def _package(root: Path, bad: bool) -> Path:
    """A copy of setup.py beside a two-module ``analyzer`` with the real Huffman kernel;
    with ``bad``, one module has a type error that mypyc rejects."""
    shutil.copy(ROOT / "setup.py", root / "setup.py")
    pkg = root / "analyzer"
    pkg.mkdir()
    shutil.copy(ROOT / "analyzer" / "_huffman.c", pkg / "_huffman.c")
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("import sys\n")
    (pkg / "good.py").write_text("def double(x: int) -> int:\n    return 2 * x\n")
    if bad:
        (pkg / "bad.py").write_text("def f() -> int:\n    return 'not an int'\n")
    return root


def _build_ext(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TRACEWIRE_PURE", "TRACEWIRE_REQUIRE_COMPILED")}
    return subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--build-lib", "out", "--build-temp", "tmp"],
        cwd=root, capture_output=True, text=True, check=False, timeout=600, env={**clean, **env})


def _built(root: Path) -> list[str]:
    return sorted(p.relative_to(root / "out").as_posix() for p in (root / "out").rglob(f"*{EXT}"))


def test_a_module_mypyc_rejects_drops_the_whole_compiled_build(tmp_path: Path) -> None:
    root = _package(tmp_path, bad=True)
    p = _build_ext(root)
    assert p.returncode == 0, p.stderr
    assert "the compiled build failed" in p.stderr and "installing pure Python" in p.stderr
    # the Huffman kernel had compiled before mypyc failed: it is gone too
    assert "_huffman" in p.stdout + p.stderr
    assert _built(root) == []


def test_the_fallback_is_an_error_when_ci_requires_the_compiled_build(tmp_path: Path) -> None:
    root = _package(tmp_path, bad=True)
    p = _build_ext(root, TRACEWIRE_REQUIRE_COMPILED="1")
    assert p.returncode != 0
    assert _built(root) == []


def test_no_compiler_means_pure_python_before_mypyc_runs(tmp_path: Path) -> None:
    root = _package(tmp_path, bad=False)
    p = _build_ext(root, CC="/bin/false")
    assert p.returncode == 0, p.stderr
    assert "the compiled build failed" in p.stderr
    assert not (root / "build").exists()  # mypyc's C (its build/) never generated: no minute lost
    assert _built(root) == []


def test_tracewire_pure_builds_nothing_and_removes_an_earlier_build(tmp_path: Path) -> None:
    root = _package(tmp_path, bad=False)
    stale = root / "out" / "analyzer" / f"good{EXT}"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an extension left by an earlier compiled build")
    p = _build_ext(root, TRACEWIRE_PURE="1")
    assert p.returncode == 0, p.stderr
    assert _built(root) == []


@pytest.mark.slow
def test_a_good_package_compiles_whole(tmp_path: Path) -> None:
    root = _package(tmp_path, bad=False)
    p = _build_ext(root, TRACEWIRE_REQUIRE_COMPILED="1")
    assert p.returncode == 0, p.stderr
    built = _built(root)
    names = {b.split(".")[0] for b in built}
    # every module but cli.py and __init__.py, plus the kernel (and mypyc's own library)
    assert {"analyzer/good", "analyzer/_huffman"} <= names
    assert not {"analyzer/cli", "analyzer/__init__"} & names
