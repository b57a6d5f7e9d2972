"""The C Huffman kernel (analyzer/_huffman.c) against the pure-Python decoder it replaces:
identical bytes for every valid string and the identical error for every invalid one, on
every Huffman literal of the whole hpack-test-case corpus and on random input.

The kernel is compiled here from the source file, so that the pure build's suite (the
editable install has no compiled modules) checks it too; in the compiled build the
installed kernel is checked as well.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hpack.hpack import decode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analyzer._build import compiled, huffman_kernel
from analyzer.protocols import hpack_state
from analyzer.protocols.hpack_state import huffman_decode_py
from tests.fixtures import ROOT

CORPUS = ROOT / "tests" / "data" / "hpack-test-case" / "corpus.tar.xz"
SOURCE = ROOT / "analyzer" / "_huffman.c"
ENCODE = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode

_BUILD = """
import sys
from setuptools import Distribution, Extension
dist = Distribution({"ext_modules": [Extension("_huffman", [sys.argv[1]])]})
cmd = dist.get_command_obj("build_ext")
cmd.build_lib, cmd.build_temp = sys.argv[2], sys.argv[3]
cmd.ensure_finalized()
cmd.run()
print(cmd.get_ext_fullpath("_huffman"))
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """analyzer/_huffman.c as it is in the checkout, compiled with the build's flags."""
    out = tmp_path_factory.mktemp("huffman")
    p = subprocess.run([sys.executable, "-c", _BUILD, str(SOURCE), str(out), str(out / "tmp")],
                       capture_output=True, text=True, check=False, timeout=300)
    assert p.returncode == 0, p.stderr
    spec = importlib.util.spec_from_file_location("_huffman", p.stdout.strip().splitlines()[-1])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernels(kernel: ModuleType) -> list[Callable[[bytes], bytes]]:
    """The kernel built here and, in the compiled build, the one installed with the package."""
    found: list[Callable[[bytes], bytes]] = [kernel.decode]
    if huffman_kernel() == "C":
        found.append(hpack_state.huffman_decode)
    return found


Outcome = tuple[str, bytes | str]


def outcome(decode: Callable[[bytes], bytes], raw: bytes) -> Outcome:
    try:
        return ("ok", decode(raw))
    except ValueError as err:  # anything else escapes and fails the test
        return (type(err).__name__, str(err))


def same(kernel: ModuleType, raw: bytes) -> Outcome:
    want = outcome(huffman_decode_py, raw)
    for decode in kernels(kernel):
        assert outcome(decode, raw) == want, raw.hex()
    return want


# -- every Huffman literal of the corpus ------------------------------------------------------


def literals(block: bytes) -> Iterator[bytes]:
    """The Huffman-coded string literals of one header block (RFC 7541 §6)."""
    i = 0
    while i < len(block):
        b = block[i]
        if b & 0x80:  # §6.1 indexed
            _, n = decode_integer(block[i:], 7)
            i += n
            continue
        if b & 0xE0 == 0x20:  # §6.3 table size update
            _, n = decode_integer(block[i:], 5)
            i += n
            continue
        prefix = 6 if b & 0x40 else 4  # §6.2.1 incremental indexing, else §6.2.2/§6.2.3
        index, n = decode_integer(block[i:], prefix)
        i += n
        for _ in range(1 if index else 2):  # a new name has its own literal before the value
            huffman = block[i] & 0x80
            length, n = decode_integer(block[i:], 7)
            i += n
            if huffman:
                yield block[i:i + length]
            i += length


def corpus_literals() -> list[bytes]:
    found: dict[bytes, None] = {}
    with tarfile.open(CORPUS) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member) if member.name.endswith(".json") else None
            if f is None:
                continue
            for case in json.load(f)["cases"]:
                found.update(dict.fromkeys(literals(bytes.fromhex(case["wire"]))))
    return list(found)


def test_every_huffman_literal_of_the_corpus_decodes_identically(kernel: ModuleType) -> None:
    strings = corpus_literals()
    assert len(strings) > 5000  # three implementations' stories: thousands of distinct strings
    for raw in strings:
        kind, value = same(kernel, raw)
        assert kind == "ok"
        assert value == decode_huffman(raw)  # and both agree with the hpack package


# -- random input -----------------------------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=64))
@example(b"")  # the empty string is valid
@example(b"\xff\xff\xff\xff")  # 30 ones: EOS, a decoding error (§5.2)
@example(b"\xff")  # 8 bits of padding: more than 7 (§5.2)
@example(b"\x1f")  # '0' is 00000, then 3 ones of padding: valid
@example(b"\x18")  # '0' then 3 zeros: padding that is not the EOS prefix
def test_arbitrary_bytes_give_the_same_result_or_error(kernel: ModuleType, raw: bytes) -> None:
    same(kernel, raw)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 3), st.binary(max_size=2))
def test_encoded_strings_and_broken_tails(kernel: ModuleType, text: bytes, cut: int,
                                          tail: bytes) -> None:
    wire = ENCODE(text)
    assert same(kernel, wire) == ("ok", text)
    # cut at the end (incomplete codes), extra padding or garbage after it
    same(kernel, wire[:len(wire) - cut])
    same(kernel, wire + tail)
    if wire:
        same(kernel, wire[:-1] + bytes((wire[-1] & 0xF0,)))  # padding bits zeroed


def test_errors_say_which_kind(kernel: ModuleType) -> None:
    assert same(kernel, b"\xff\xff\xff\xff") == ("ValueError", "invalid Huffman code")
    assert same(kernel, b"\xff") == ("ValueError", "incomplete Huffman code")
    assert same(kernel, ENCODE(b"x-request-id")) == ("ok", b"x-request-id")


def test_kernel_in_use_matches_the_build() -> None:
    """The compiled build decodes with the C kernel; the pure one with Python."""
    assert huffman_kernel() == ("C" if compiled() else "Python")
    if compiled():
        assert hpack_state.huffman_decode is not huffman_decode_py
        assert Path(sys.modules["analyzer._huffman"].__file__ or "").suffix in (".so", ".pyd")
    else:
        assert hpack_state.huffman_decode is huffman_decode_py
