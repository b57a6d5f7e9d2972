"""The hot records' written-out ``__init__`` (see analyzer/records.py; the analysis's records
made once per call too) takes exactly the dataclass fields, in order, with their defaults: a
field added to one of them and not to its ``__init__`` would be left unset, a changed
default would change every record, and a field whose default is a factory gets a new value
each time, as the generated one gave."""

from __future__ import annotations

import dataclasses

import pytest

from analyzer.analysis.breaks import Attribution
from analyzer.analysis.model import Call, Outcome, Span
from analyzer.capture.reader import Frame
from analyzer.decode.packet import SYN, Segment
from analyzer.protocols._http1_syntax import Framing, Side
from analyzer.protocols.h2 import HeaderBlock, StreamEnd
from analyzer.protocols.http1 import MessageEnd, MessageHead
from analyzer.reassembly import Reassembler
from analyzer.reassembly.tcp import Data, End, Flow, Gap
from analyzer.records import Anomaly, Endpoints, Header, Message
from analyzer.tracing.context import TraceContext

WRITTEN_OUT = [Frame, Segment, Data, Gap, End, HeaderBlock, StreamEnd, MessageHead, MessageEnd,
               Framing, TraceContext, Anomaly, Header, Endpoints, Message, Call, Outcome, Span,
               Attribution]


def a_call(frame: int) -> Call:
    t = TraceContext("x-request-id", ("x-request-id",), "r", None, None, None, None, "r", ())
    return Call("c.pcap", frame, 5, "http/1.1", "a", 1, "b", 2, 3, None, "GET", "/", "svc", (t,),
                ("x-request-id",), {"x-request-id": "r"})


def a_flow() -> Flow:
    r = Reassembler()
    r.add(Segment(1, 0, b"\x7f\x00\x00\x01", 1000, b"\x7f\x00\x00\x02", 80, 0, 0, SYN, memoryview(b"")))
    return next(iter(r.flows.values()))


def samples(cls: type) -> list[object]:
    """One value per field, distinct, of the field's type (the compiled build checks types)."""
    flow = a_flow()
    out: list[object] = []
    for i, f in enumerate(dataclasses.fields(cls)):
        # a string under ``from __future__ import annotations``, the type itself when compiled
        t = f.type if isinstance(f.type, str) else (
            f.type.__name__ if isinstance(f.type, type) else str(f.type))
        t = t.removesuffix(" | None")
        if t == "int":
            out.append(1000 + i)
        elif t == "bytes":
            out.append(b"v%d" % i)
        elif t == "str":
            out.append(f"v{i}")
        elif t == "Side":
            out.append(list(Side)[i % 2])
        elif t == "bool":
            out.append(i % 2 == 0)
        elif t == "memoryview":
            out.append(memoryview(b"v%d" % i))
        elif t.startswith("tuple"):
            out.append((f"v{i}",))
        elif t.startswith("list"):
            out.append([i])
        elif t.startswith("dict"):
            out.append({f"k{i}": f"v{i}"})
        elif t == "Call":
            out.append(a_call(i))
        elif t == "Flow":
            out.append(flow)
        elif t == "Endpoints":
            out.append(Endpoints("a", i, "b", i, i))
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
    by_name = cls(**{f.name: v for f, v in zip(fields, values, strict=True)})
    assert by_name == positional
    required = [f for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    assert fields[:len(required)] == tuple(required)
    fewest, again = cls(*values[:len(required)]), cls(*values[:len(required)])
    for f in fields[len(required):]:
        if f.default_factory is not dataclasses.MISSING:
            assert getattr(fewest, f.name) == f.default_factory(), f.name
            assert getattr(fewest, f.name) is not getattr(again, f.name), f.name  # not shared
        else:
            assert getattr(fewest, f.name) == f.default, f.name
    with pytest.raises(TypeError):
        cls(*values, values[0])


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_records_are_values(cls: type) -> None:
    fields = dataclasses.fields(cls)
    a, b = cls(*samples(cls)), cls(*samples(cls))
    if cls in (Data, Gap, End):  # they hold a Flow, which compares by identity
        b = cls(*[a.flow, *samples(cls)[1:]])
    assert a == b
    if cls.__hash__ is not None:  # the records that were frozen keep hashing by value
        assert hash(a) == hash(b)
    other = samples(cls)[-1]
    c = dataclasses.replace(a, **{fields[-1].name: other})
    assert getattr(c, fields[-1].name) == other
