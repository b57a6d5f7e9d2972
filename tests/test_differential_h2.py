"""Differential test for HTTP/2: every header field Wireshark's HTTP/2 dissector decodes
(tshark through pyshark, told the ports with decode-as), tracewire decodes identically, in
the same HEADERS frame and stream. Where tshark cannot decode a field (an HPACK entry older
than the capture), tracewire may know less but must not say something else.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from pathlib import Path

import pyshark
import pytest
from pyshark.capture.capture import TSharkCrashException

from analyzer.pipeline import read_messages
from analyzer.records import Header
from tests.fixtures import CAPTURES

H2_FIXTURES = sorted(
    str(p.relative_to(CAPTURES))
    for p in [*CAPTURES.glob("grpc-*.pcap"), *CAPTURES.glob("h2c-*.pcap"),
              *(CAPTURES / "public" / "grpc-go").glob("*.pcapng")]
)

Field = tuple[bytes | None, bytes | None]
Blocks = dict[tuple[int, int], list[list[Field]]]  # (frame, stream) -> header blocks


def _raw(f: object) -> bytes:
    raw = getattr(f, "raw_value", None)
    return bytes.fromhex(raw) if raw else b""


def _tshark(path: str, ports: set[int]) -> Blocks:
    cap = pyshark.FileCapture(
        path,
        display_filter="http2.type==1",
        decode_as={f"tcp.port=={p}": "http2" for p in sorted(ports)},
        override_prefs={"tcp.reassemble_out_of_order": "TRUE"},
    )
    out: Blocks = defaultdict(list)
    try:
        for pkt in cap:
            for layer in pkt.get_multiple_layers("http2"):
                typ = layer.get_field("type")
                if typ is None or [f.raw_value for f in typ.all_fields] != ["01"]:
                    continue
                names = layer.get_field("header_name")
                values = layer.get_field("header_value")
                if names is None:
                    continue
                sid = int(str(layer.get_field("streamid")))
                pairs: list[Field] = []
                vals = values.all_fields if values is not None else []
                for i, n in enumerate(names.all_fields):
                    name = _raw(n) if n.raw_value else None
                    value = _raw(vals[i]) if i < len(vals) else None
                    if name in (None, b"<unknown>") or str(n.show) == "<unknown>":
                        name, value = None, None
                    pairs.append((name, value))
                out[(int(pkt.number), sid)].append(pairs)
    except TSharkCrashException as err:
        if "cut short" not in str(err):
            raise
    finally:
        with contextlib.suppress(TSharkCrashException):
            cap.close()
    return out


def _fields(headers: tuple[Header, ...]) -> list[Field]:
    return [(h.name if not h.guessed else None, h.value) for h in headers]


@pytest.mark.parametrize("name", H2_FIXTURES)
def test_h2_headers_match_tshark(name: str) -> None:
    path = str(CAPTURES / name)
    ports: set[int] = set()
    ours: Blocks = defaultdict(list)
    trailers: list[list[Field]] = []
    every = list(read_messages(path))
    # tshark finds HTTP/2 after an HTTP/1.1 Upgrade by itself; decode-as would break that
    upgraded = {m.endpoints.connection for m in every if m.protocol != "h2"}
    messages = [m for m in every if m.protocol == "h2"]
    assert messages, "no HTTP/2 found"
    for m in messages:
        if m.endpoints.connection not in upgraded:
            ports.add(m.endpoints.dport if m.kind == "request" else m.endpoints.sport)
        assert m.stream is not None
        if m.headers:
            ours[(m.frame, m.stream)].append(_fields(m.headers))
        if m.trailers:
            trailers.append(_fields(m.trailers))
    theirs = _tshark(path, ports)
    matched = 0
    for key, blocks in theirs.items():
        for block in blocks:
            candidates = ours.get(key, []) + trailers
            assert any(_agrees(block, mine) for mine in candidates), (name, key, block, ours.get(key))
            matched += 1
    # and tshark saw as many head blocks as tracewire reports
    assert matched >= sum(len(b) for b in ours.values())
    # tracewire recovers at least every field tshark recovers
    known = sum(1 for blocks in [*ours.values(), [t for t in trailers]] for b in blocks
                for n, v in b if n is not None and v is not None)
    theirs_known = sum(1 for blocks in theirs.values() for b in blocks for n, _ in b if n is not None)
    assert known >= theirs_known


def _agrees(theirs: list[Field], mine: list[Field]) -> bool:
    """Same length; where tshark knows a field, tracewire states the same one (it may also
    know it only partly, or not at all, never differently)."""
    if len(theirs) != len(mine):
        return False
    for (tn, tv), (mn, mv) in zip(theirs, mine, strict=True):
        if tn is None:
            continue  # tshark could not decode it
        if (mn is not None and mn != tn) or (mv is not None and mv != tv):
            return False
    return True


def test_fixtures_found() -> None:
    assert len(H2_FIXTURES) >= 4
    assert Path(CAPTURES / "public" / "grpc-go" / "grpc-go-unary.pcapng").is_file()
