"""Stream-level fuzzing: the protocol stage fed mutated, re-chunked TCP byte streams.

Strategy: a mutated capture spends most of its time in the reader, decode and reassembly,
and one damaged byte reaches one connection. Here the fixtures are reassembled once, every
connection's events (data, gaps, ends, both directions in capture order) are kept, and each
input replays one connection into a fresh protocol ``Session`` after mutating its events:
bytes flipped or replaced by parser-hostile tokens, events split at random points (TCP may
cut anywhere), merged, dropped (a gap of the same size instead), gaps inserted, the stream
cut short. Offsets are recomputed, so the session sees a stream reassembly could produce.
Every message that comes out goes through every message report.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from analyzer.capture import open_capture
from analyzer.decode import Segment, decode_frame
from analyzer.errors import CaptureError
from analyzer.protocols.session import Session
from analyzer.reassembly import Data, End, Gap, Reassembler
from analyzer.reassembly.tcp import Connection, Flow
from analyzer.records import Message
from analyzer.report.messages import csv_row, message_dict, message_table
from tests.fuzz.mutate import TOKENS


@dataclass(slots=True)
class Ev:
    """One stream event, detached from the reassembler: ``data`` for Data, ``gap`` for Gap,
    neither for End."""

    flow: Flow
    data: bytes | None
    gap: int
    frame: int
    ts: int


@dataclass(slots=True)
class Recorded:
    source: str
    conn: Connection
    events: list[Ev]


def record(path: Path, name: str) -> list[Recorded]:
    """Reassemble one capture and keep each connection's events (bytes copied)."""
    conns: dict[int, Recorded] = {}
    reasm = Reassembler()
    last_frame = last_ts = 0

    def keep(events: list[Data | Gap | End]) -> None:
        for ev in events:
            conn = ev.flow.conn
            rec = conns.setdefault(id(conn), Recorded(name, conn, []))
            if isinstance(ev, Data):
                rec.events.append(Ev(ev.flow, bytes(ev.data), 0, ev.frame, ev.ts_ns))
            elif isinstance(ev, Gap):
                rec.events.append(Ev(ev.flow, None, ev.n, ev.frame, ev.ts_ns))
            else:
                rec.events.append(Ev(ev.flow, None, 0, ev.frame, ev.ts_ns))

    with open_capture(path) as reader:
        for frame in reader:
            last_frame, last_ts = frame.number, frame.ts_ns
            seg = decode_frame(frame)
            if isinstance(seg, Segment):
                keep(reasm.add(seg))
        keep(reasm.finish(last_frame, last_ts))
    return [r for r in conns.values() if any(e.data for e in r.events)]


def _is_end(e: Ev) -> bool:
    return e.data is None and not e.gap


def mutate_events(rnd: random.Random, events: list[Ev]) -> list[Ev]:
    out = [Ev(e.flow, e.data, e.gap, e.frame, e.ts) for e in events]
    for _ in range(rnd.choice((1, 1, 2, 3, 5))):
        datas = [i for i, e in enumerate(out) if e.data]
        if not datas:
            break
        i = rnd.choice(datas)
        e = out[i]
        assert e.data is not None
        d = bytearray(e.data)
        op = rnd.randrange(9)
        if op == 0:
            for _ in range(rnd.randrange(1, 6)):
                d[rnd.randrange(len(d))] ^= 1 << rnd.randrange(8)
        elif op == 1:
            k = rnd.randrange(len(d) + 1)
            d[k:k] = rnd.choice(TOKENS)
        elif op == 2:
            k = rnd.randrange(len(d))
            del d[k : k + rnd.randrange(1, 64)]
        elif op == 3:
            k = rnd.randrange(len(d))
            d[k] = rnd.choice((0x00, 0x0A, 0x0D, 0x20, 0x3A, 0x7F, 0x80, 0xFF))
        elif op == 4 and len(d) > 1:
            # TCP may cut anywhere: split into several events
            cuts = sorted(rnd.sample(range(1, len(d)), min(len(d) - 1, rnd.randrange(1, 8))))
            parts = [bytes(d[a:b]) for a, b in zip([0, *cuts], [*cuts, len(d)], strict=True)]
            out[i : i + 1] = [Ev(e.flow, p, 0, e.frame, e.ts) for p in parts]
            continue
        elif op == 5:
            out[i] = Ev(e.flow, None, len(d) or 1, e.frame, e.ts)  # lost in the capture
            continue
        elif op == 6:
            out.insert(i, Ev(e.flow, None, rnd.choice((1, 7, 1000, 1 << 20, 1 << 31)), e.frame, e.ts))
            continue
        elif op == 7:
            j = max(0, i - rnd.randrange(1, 4))  # replay a few events (the same bytes again)
            out[i + 1 : i + 1] = [Ev(x.flow, x.data, x.gap, x.frame, x.ts) for x in out[j : i + 1]
                                  if not _is_end(x)]
            continue
        else:
            del out[i + 1 :]  # the capture stops here: no ends
            continue
        out[i] = Ev(e.flow, bytes(d), 0, e.frame, e.ts)
    return out


def replay(rec: Recorded, events: list[Ev]) -> list[Message]:
    """Feed ``events`` into a fresh session of the recorded connection; end both directions."""
    conn = rec.conn
    sess = Session(rec.source, conn)
    offsets: dict[int, int] = {}
    out: list[Message] = []
    ended: set[int] = set()
    for e in events:
        key = id(e.flow)
        off = offsets.get(key, 0)
        if e.data is not None:
            out += sess.data(e.flow, memoryview(e.data), off, e.frame, e.ts)
            offsets[key] = off + len(e.data)
        elif e.gap:
            out += sess.gap(e.flow, e.gap, off, e.frame, e.ts)
            offsets[key] = off + e.gap
        elif key not in ended:
            ended.add(key)
            out += sess.end(e.flow)
    for flow in (conn.a, conn.b):
        if flow is not None and id(flow) not in ended:
            out += sess.end(flow)
    for m in out:
        json.dumps(message_dict(m))
        csv_row(m)
        message_table(80).lines(m)
    return out


def recorded_sources(sources: list[tuple[str, bytes]], captures: Path) -> list[Recorded]:
    """Every connection with data, of every source that is a capture."""
    out: list[Recorded] = []
    for name, _ in sources:
        with contextlib.suppress(CaptureError):  # the deliberately broken fixtures
            out += record(captures / name, name)
    return out


def to_json(recs: list[Recorded], rec: Recorded, events: list[Ev]) -> str:
    """A stream input as a corpus file: the source, which of its connections, the events."""
    same = [r for r in recs if r.source == rec.source]
    return json.dumps({
        "source": rec.source,
        "connection": same.index(rec),
        "events": [{"dir": "a" if e.flow is rec.conn.a else "b",
                    "data": None if e.data is None else e.data.hex(), "gap": e.gap,
                    "frame": e.frame, "ts": e.ts} for e in events],
    }, indent=0)


def from_json(text: str, captures: Path) -> tuple[Recorded, list[Ev]]:
    d = json.loads(text)
    rec = record(captures / d["source"], d["source"])[d["connection"]]
    flows = {"a": rec.conn.a, "b": rec.conn.b}
    events = []
    for e in d["events"]:
        flow = flows[e["dir"]]
        assert flow is not None
        events.append(Ev(flow, None if e["data"] is None else bytes.fromhex(e["data"]), e["gap"],
                         e["frame"], e["ts"]))
    return rec, events
