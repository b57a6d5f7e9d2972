"""The analysis records built once per call (``Call``, ``Outcome``, ``Span``,
``Attribution``) have a written-out ``__init__`` (see analyzer/records.py): it takes exactly
the dataclass fields, in order, with their defaults, and a field whose default is a factory
gets a new value each time, as the generated one gave."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from analyzer.analysis.breaks import Attribution
from analyzer.analysis.model import Call, Outcome, Span
from analyzer.tracing.context import TraceContext

WRITTEN_OUT: list[type] = [Call, Outcome, Span, Attribution]


def a_call(frame: int = 1) -> Call:
    t = TraceContext("x-request-id", ("x-request-id",), "r", None, None, None, None, "r", ())
    return Call("c.pcap", frame, 5, "http/1.1", "a", 1, "b", 2, 3, None, "GET", "/", "svc", (t,),
                ("x-request-id",), {"x-request-id": "r"})


def samples(cls: type) -> list[Any]:
    """One value per field, distinct, of the field's type (the compiled build checks types)."""
    out: list[Any] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        # a string under ``from __future__ import annotations``, the type itself when compiled
        t = f.type if isinstance(f.type, str) else (
            f.type.__name__ if isinstance(f.type, type) else str(f.type))
        t = t.removesuffix(" | None")
        if t == "int":
            out.append(1000 + i)
        elif t == "str":
            out.append(f"v{i}")
        elif t == "bool":
            out.append(i % 2 == 0)
        elif t.startswith("tuple"):
            out.append((f"v{i}",))
        elif t.startswith("list"):
            out.append([i])
        elif t.startswith("dict"):
            out.append({f"k{i}": f"v{i}"})
        elif t == "Call":
            out.append(a_call(i))
        elif t == "type" and not isinstance(f.type, str):
            out.append(None)  # compiled: an optional field's type reads as ``type``
        else:
            raise AssertionError(f"{cls.__name__}.{f.name}: no sample for {t}")
    return out


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    # through construction, not inspect: a compiled __init__ has no signature to read
    fields = dataclasses.fields(cls)
    values = samples(cls)
    positional = cls(*values)
    assert [getattr(positional, f.name) for f in fields] == values
    assert cls(**{f.name: v for f, v in zip(fields, values, strict=True)}) == positional
    required = [f for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert fields[:len(required)] == tuple(required)
    fewest, other = cls(*values[:len(required)]), cls(*values[:len(required)])
    for f in fields[len(required):]:
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(fewest, f.name) == f.default_factory(), f.name
            assert getattr(fewest, f.name) is not getattr(other, f.name), f.name  # not shared
        else:
            assert getattr(fewest, f.name) == f.default, f.name
    with pytest.raises(TypeError):
        cls(*values, values[0])


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_records_are_values(cls: type) -> None:
    fields = dataclasses.fields(cls)
    a, b = cls(*samples(cls)), cls(*samples(cls))
    assert a == b
    last = samples(cls)[-1]
    other: Any = [99] if isinstance(last, list) else "other"
    c = dataclasses.replace(a, **{fields[-1].name: other})
    assert getattr(c, fields[-1].name) == other and c != a
