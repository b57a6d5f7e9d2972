"""analyzer.report.jsonout: orjson's text is the stdlib json text, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.pipeline import read_messages
from analyzer.report import jsonout
from analyzer.report.messages import message_dict
from analyzer.tracing.corroborate import Corroboration
from tests.fixtures import CAPTURES, ROOT, readable_captures
from tests.test_cli import GOLDEN, run

STDLIB_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def stdlib_indent2(obj: object) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


def floats_in(obj: object, where: str = "$") -> list[str]:
    """Paths of the floats in a document: orjson writes some of them differently."""
    if isinstance(obj, float):
        return [where]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in floats_in(v, f"{where}.{k}")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in floats_in(v, f"{where}[{i}]")]
    return []


# Text with every kind of character the encoders treat apart: C0 controls and their short
# escapes, quote and backslash, DEL, C1 controls, bidi marks, U+2028, astral characters,
# and lone surrogates (which orjson refuses, so those documents take the fallback).
TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=24) | st.sampled_from(
    ["", '"', "\\", "\x00\x1f\x7f\x85\x9b", "\u2028\u2029\u202e\u200f", "\ud800", "a\udcff", "😀\t\n\r\b\f"]
)
SCALARS = st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70) | TEXT
DOCS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5)
    | st.lists(inner, max_size=5).map(tuple)
    | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(DOCS)
def test_same_text_as_the_stdlib(doc: object) -> None:
    assert jsonout.compact(doc) == STDLIB_COMPACT(doc)
    assert jsonout.indent2(doc) == stdlib_indent2(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {2: "int key", None: "null key", True: "bool key"},  # orjson refuses non-str keys
        {"big": 1 << 64, "small": -(1 << 63) - 1},  # beyond 64 bits
        {"lone": "\udc80"},  # a lone surrogate
        [],
        {},
        {"a": [], "b": {}, "c": [[]], "d": ({"e": ()},)},
    ],
)
def test_what_orjson_refuses_or_lays_out_alone_is_the_stdlib_text(doc: object) -> None:
    assert jsonout.compact(doc) == STDLIB_COMPACT(doc)
    assert jsonout.indent2(doc) == stdlib_indent2(doc)


def test_nesting_deeper_than_orjson_goes_falls_back() -> None:
    doc: list[Any] = []
    inner = doc
    for _ in range(300):  # orjson stops at 254 levels
        inner.append([])
        inner = inner[0]
    assert jsonout.compact(doc) == STDLIB_COMPACT(doc)
    assert jsonout.indent2(doc) == stdlib_indent2(doc)


def test_messages_of_every_fixture_encode_alike_and_hold_no_float() -> None:
    n = 0
    for name in readable_captures():
        seen = Corroboration()
        for m in read_messages(CAPTURES / name):
            seen.see(m.headers)
            d = message_dict(m, False, seen.confirms)
            assert floats_in(d) == [], name
            assert jsonout.compact(d) == STDLIB_COMPACT(d)
            n += 1
    assert n > 100  # the fixtures do hold HTTP


@pytest.mark.parametrize(
    "args",
    [
        ("analyze", "--format", "json", "--all", "captures/productpage-http1.pcap"),
        ("analyze", "--format", "json", "--all", "captures/pods/productpage.pcap",
         "captures/pods/reviews.pcap"),
        ("diff", "--format", "json", "captures/productpage-http1.pcap",
         "captures/diff/productpage-newbug.pcap"),
        ("info", "--format", "json", "captures/grpc-warm.pcap"),
    ],
)
def test_documents_of_the_commands_are_the_stdlib_text_and_hold_no_float(
    args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run(*args)
    assert code in (0, 1), err
    doc = json.loads(out)
    assert floats_in(doc) == []
    assert out == stdlib_indent2(doc) + "\n"


def test_golden_json_documents_hold_no_float() -> None:
    checked = 0
    for path in sorted(GOLDEN.iterdir()):
        if path.suffix == ".json":
            docs = [json.loads(path.read_text())]
        elif path.suffix == ".jsonl":
            docs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        else:
            continue
        for doc in docs:
            assert floats_in(doc) == [], path.name
            checked += 1
    assert checked > 100
