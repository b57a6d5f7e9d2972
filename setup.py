"""Build tracewire compiled with mypyc where it can be, pure Python where it cannot.

Metadata, dependencies and entry points are in setup.cfg; this file only decides what
``build_ext`` builds.

- ``pip install .`` with a C compiler and Python's headers: every module of ``analyzer``
  compiled by mypyc (except cli.py and __main__.py: click sets attributes on the command
  functions, which compiled functions do not allow; and __init__.py, whose docstring mypyc
  would drop) plus the C Huffman kernel
  (analyzer/_huffman.c). The .py files are installed too; Python imports the compiled
  module first.
- All or nothing: when any part fails (no compiler, no headers, a type error that mypyc
  rejects, a module that does not compile), every extension already built is deleted and
  the package installs as pure Python, with a warning. Half a compiled package would mix two
  builds whose speed and behaviour nobody tested together.
- Pure Python on purpose: ``TRACEWIRE_PURE=1``, and always for an editable install
  (``pip install -e``): compiled modules would shadow the sources being edited.
- ``TRACEWIRE_REQUIRE_COMPILED=1`` turns the fallback into a failed install: CI uses it so
  that a build that quietly went pure cannot pass for the compiled one.

``tracewire --version`` says which build is installed.
"""

from __future__ import annotations

import glob
import os
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
# click sets attributes on the functions it decorates; mypyc's native functions refuse them.
# The package's __init__ only imports, and its docstring documents the Python API: mypyc
# drops module docstrings. The pytest plugin's classes subclass pytest's (not native), and
# pytest is no dependency of the package.
UNCOMPILED = {"analyzer/cli.py", "analyzer/__main__.py", "analyzer/__init__.py",
              "analyzer/pytest_plugin.py"}
HUFFMAN = Extension("analyzer._huffman", sources=["analyzer/_huffman.c"])


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _mypyc_sources() -> list[str]:
    paths = glob.glob("analyzer/**/*.py", recursive=True)
    return sorted(p for p in (Path(p).as_posix() for p in paths) if p not in UNCOMPILED)


class BuildExt(build_ext):
    """build_ext that builds everything compiled, or nothing."""

    def run(self) -> None:
        given = ("build_lib", "build_temp", "force", "parallel", "debug", "plat_name")
        self._given = {name: getattr(self, name) for name in given}
        self._remove_stale()
        if self.inplace or getattr(self, "editable_mode", False):
            self.announce("tracewire: editable install, pure Python", level=2)
            return
        if _flag("TRACEWIRE_PURE"):
            self.announce("tracewire: TRACEWIRE_PURE is set, pure Python", level=2)
            return
        built: list[Extension] = []
        try:
            # The Huffman kernel first: a small real check that a compiler and Python's
            # headers are there, before mypyc spends a minute generating C.
            built = [HUFFMAN]
            self._build([HUFFMAN])
            from mypyc.build import mypycify

            compiled = mypycify(_mypyc_sources(), opt_level="3")
            built = [HUFFMAN, *compiled]
            self._build(built)
        except (Exception, SystemExit) as err:  # SystemExit: mypycify exits on type errors
            for ext in built:
                self._remove(ext)
            if _flag("TRACEWIRE_REQUIRE_COMPILED"):
                raise
            self.warn(f"tracewire: the compiled build failed ({err!r}); installing pure Python")
            self.extensions = []

    def _build(self, extensions: list[Extension]) -> None:
        # finalize_options computes each extension's output path from ext_modules; it runs
        # on fresh options (a second pass would split lists it already split), given back
        # the ones set on the command line or by a parent command (bdist_wheel's build_lib).
        self.distribution.ext_modules = extensions
        self.initialize_options()
        for name, value in self._given.items():
            setattr(self, name, value)
        self.finalize_options()
        super().run()

    def _remove(self, ext: Extension) -> None:
        path = Path(self.get_ext_fullpath(ext.name))
        if path.exists():
            path.unlink()

    def _remove_stale(self) -> None:
        """Delete extensions left by an earlier build in the same build directory (pip builds
        in the checkout's build/), so that a pure build never ships an old compiled module."""
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        roots = [Path(self.build_lib)]
        if self.inplace or getattr(self, "editable_mode", False):
            roots.append(HERE)
        for root in roots:
            for path in [*root.glob(f"analyzer/**/*{suffix}"), *root.glob(f"*__mypyc{suffix}")]:
                path.unlink()


setup(ext_modules=[HUFFMAN], cmdclass={"build_ext": BuildExt})
