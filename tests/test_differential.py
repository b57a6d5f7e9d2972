"""Differential test: Wireshark's HTTP dissector (tshark through pyshark) and tracewire must
agree on every HTTP/1.x request and response of every fixture, header by header.

tshark is told not to reassemble bodies and to reassemble out-of-order segments, so it
reports each message in the frame that completes its head, as tracewire does; it is told to
decode as HTTP every port on which tracewire found HTTP (tshark needs telling, tracewire
decides from content).

Where tshark cannot see a message that tracewire reports, the fixture is listed in
TSHARK_MISSES with the reason; every other message must match exactly, frame included.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pyshark
import pytest
from pyshark.capture.capture import TSharkCrashException

from analyzer.pipeline import read_messages
from tests.fixtures import CAPTURES, readable_captures

Key = tuple[Any, ...]


# fixture -> (frames of messages only tracewire reports, why tshark misses them)
TSHARK_MISSES: dict[str, tuple[set[int], str]] = {
    "edge/tcp-gap-body.pcap": (
        {10},
        "after 100 bytes lost inside a Content-Length body, tshark's reassembly waits for them "
        "forever; tracewire counts the gap inside the body and stays in step",
    ),
    "edge/tcp-gap-headers.pcap": (
        {8},
        "80 bytes of the first request's head were never captured; tshark holds everything "
        "after the hole and shows no request, tracewire drops the broken head and resynchronises "
        "at the next request line",
    ),
    "edge/tcp-overlap-conflict.pcap": (
        {10},
        "a retransmission with different bytes overlaps the first response's body; tshark marks "
        "the segments illegal and loses the next response, tracewire keeps the first copy",
    ),
    "edge/tcp-no-syn-midmessage.pcap": (
        {4},
        "the capture starts inside a response; tshark takes the next response for a "
        "continuation of the first, tracewire resynchronises at its status line",
    ),
}


def _tshark(path: str, ports: set[int]) -> list[Key]:
    cap = pyshark.FileCapture(
        path,
        display_filter="http",
        decode_as={f"tcp.port=={p}": "http" for p in sorted(ports)},
        override_prefs={
            "http.desegment_body": "FALSE",
            "tcp.desegment_tcp_streams": "TRUE",
            "tcp.reassemble_out_of_order": "TRUE",
        },
    )
    out: list[Key] = []
    try:
        for pkt in cap:
            for layer in pkt.get_multiple_layers("http"):
                method = layer.get_field("request_method")
                code = layer.get_field("response_code")
                if method is None and code is None:
                    continue  # a continuation tshark could not place: not a message head
                lines = layer.get_field("request_line") or layer.get_field("response_line")
                headers: list[tuple[str, str]] = []
                for f in lines.all_fields if lines is not None else []:
                    line = bytes.fromhex(f.raw_value).decode("latin-1").rstrip("\r\n")
                    name, _, value = line.partition(":")
                    headers.append((name, value.strip(" \t")))
                if method is not None:
                    out.append((int(pkt.number), "request", str(method),
                                str(layer.get_field("request_uri")), tuple(headers)))
                else:
                    out.append((int(pkt.number), "response", int(str(code)), tuple(headers)))
    except TSharkCrashException as err:
        # tshark exits 2 on a capture whose last record is cut short, after dissecting
        # everything before it: the messages it printed stand.
        if "cut short" not in str(err):
            raise
    finally:
        with contextlib.suppress(TSharkCrashException):
            cap.close()
    return out


def _tracewire(path: str, ports: set[int]) -> list[Key]:
    out: list[Key] = []
    for m in read_messages(path):
        if m.protocol == "h2":
            continue  # tests/test_differential_h2.py compares those
        ports.add(m.endpoints.dport if m.kind == "request" else m.endpoints.sport)
        headers = tuple(
            ((h.name or b"").decode("latin-1"), (h.value or b"").decode("latin-1"))
            for h in m.headers
        )
        if m.kind == "request":
            out.append((m.frame, "request", (m.method or b"").decode(), (m.path or b"").decode(),
                        headers))
        else:
            out.append((m.frame, "response", m.status, headers))
    return out


@pytest.mark.parametrize("name", readable_captures())
def test_same_messages_as_tshark(name: str) -> None:
    path = str(CAPTURES / name)
    ports: set[int] = set()
    ours = _tracewire(path, ports)
    theirs = _tshark(path, ports)
    missed, _why = TSHARK_MISSES.get(name, (set(), ""))
    assert {k[0] for k in ours} >= missed
    assert sorted(k for k in ours if k[0] not in missed) == sorted(theirs)
