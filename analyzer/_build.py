"""Which build of tracewire is running: compiled with mypyc or pure Python, and which HPACK
Huffman kernel (C or Python) it decodes with. ``tracewire --version`` prints it, and the
test suite checks it against what CI asked for (tests/test_build.py).

setup.py installs all modules compiled or none (cli.py, __main__.py, pytest_plugin.py and
the package's __init__.py always stay Python), so whether this module is compiled says it for all.
"""

from __future__ import annotations

import types

__all__ = ["build_info", "compiled", "huffman_kernel"]


def _probe() -> None:
    """A function whose type tells: mypyc turns it into a built-in function."""


def compiled() -> bool:
    """True when the package runs compiled by mypyc."""
    return not isinstance(_probe, types.FunctionType)


def huffman_kernel() -> str:
    """``C`` (analyzer/_huffman.c) or ``Python`` (the fallback in hpack_state)."""
    # imported here so that ``import analyzer`` does not load the HTTP/2 stage
    from analyzer.protocols.hpack_state import HUFFMAN_KERNEL

    return HUFFMAN_KERNEL


def build_info() -> str:
    """One line, e.g. ``compiled with mypyc, Huffman kernel: C``."""
    build = "compiled with mypyc" if compiled() else "pure Python"
    return f"{build}, Huffman kernel: {huffman_kernel()}"
