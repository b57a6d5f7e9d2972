"""report/message_json: each line is exactly ``jsonout.compact(message_dict(m))``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from analyzer.pipeline import read_messages
from analyzer.records import Endpoints, Header, Message
from analyzer.report import jsonout
from analyzer.report.message_json import message_json
from analyzer.report.messages import message_dict
from analyzer.report.redact import Policy
from analyzer.tracing import extract
from analyzer.tracing.corroborate import Corroboration
from tests.fixtures import CAPTURES, ROOT, readable_captures

POLICIES = [Policy(), Policy(show_secrets=True), Policy.of(names=["x-request-id", "x-b3-traceid"])]


def test_every_fixture_gives_the_same_lines_under_every_policy() -> None:
    # The fragments are kept across captures and policies, as in one long process: a line
    # must never show another policy's text or a stale corroboration.
    n = 0
    for policy in POLICIES:
        for name in readable_captures():
            seen = Corroboration()
            for m in read_messages(CAPTURES / name):
                seen.see(m.headers)
                assert message_json(m, policy, seen.confirms) == jsonout.compact(
                    message_dict(m, policy, seen.confirms)), name
                n += 1
    assert n > 300


def _message(headers: tuple[Header, ...], capture: str = "c.pcap") -> Message:
    ep = Endpoints("10.0.0.1", 1234, "10.0.0.2", 80, 1)
    return Message(capture, 1, 1, 1_700_000_000_000_000_000, "h2", "request", ep, 1, b"GET", b"/a",
                   b"h", None, headers, extract(headers), ())


def test_a_guessed_value_follows_corroboration_as_it_grows() -> None:
    tid = b"4bf92f3577b34da6a3ce929d0e0736"
    guessed = Header(b"x-request-id", b"0af7651916cd43dd8448eb211c80319c", b"x-request-id",
                     "name of entry #3 of the client's table", True)
    nameless = Header(None, b"00-" + tid + b"aa-00f067aa0ba902b7-01", None,
                      "name of entry #4 of the client's table")
    m = _message((guessed, nameless))
    seen = Corroboration()
    before = message_json(m, Policy(), seen.confirms)
    assert "<redacted" in before
    seen.see([Header.of(b"x-request-id", guessed.value or b""),
              Header.of(b"traceparent", nameless.value or b"")])
    after = message_json(m, Policy(), seen.confirms)
    assert after == jsonout.compact(message_dict(m, Policy(), seen.confirms))
    assert "<redacted" not in after and after != before


def test_the_same_header_object_under_another_policy_is_shown_by_that_policy() -> None:
    secret = Header.of(b"authorization", b"Bearer abc")
    m = _message((secret, secret))
    for _ in range(2):
        for policy in (Policy(), Policy(show_secrets=True), False, True):
            assert message_json(m, policy) == jsonout.compact(message_dict(m, policy))
    assert "Bearer abc" not in message_json(m, Policy())
    assert "Bearer abc" in message_json(m, True)


def test_what_orjson_refuses_is_written_by_the_stdlib() -> None:
    # a capture name with a lone surrogate (os.fsdecode of an undecodable file name)
    m = _message((Header.of(b"x", b"y"),), capture="bad\udcff.pcap")
    assert message_json(m) == jsonout.compact(message_dict(m))
    assert "bad\udcff.pcap" in message_json(m)  # as the stdlib writes it (ensure_ascii off)


def test_control_characters_and_long_values_come_out_as_message_dict_has_them() -> None:
    long = Header.of(b"x-long", b"v" * 5000)
    m = _message((Header.of(b"x-\x1b[2J", b"\x00\x7f\xc2\x9b"), long, long))
    assert message_json(m) == jsonout.compact(message_dict(m))


def test_a_grpc_capture_from_mid_connection_gives_the_same_lines(tmp_path: Path) -> None:
    # gRPC over h2c from mid-connection (bench/gen_h2_capture.py): most fields are HPACK
    # entries older than the capture, tracing values come under guessed names, and their
    # contexts are hidden until a value is corroborated
    path = tmp_path / "h2.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_h2_capture.py"), str(path), "--size-mb", "0.3",
                    "--seed", "5", "-q"], check=True)
    seen = Corroboration()
    hidden = n = 0
    for m in read_messages(path):
        seen.see(m.headers)
        line = message_json(m, Policy(), seen.confirms)
        assert line == jsonout.compact(message_dict(m, Policy(), seen.confirms))
        hidden += line.count('"raw":"<redacted')
        n += 1
    assert n > 500 and hidden > 100


def test_a_kept_fragment_costs_about_its_text() -> None:
    # orjson's bytes hold a 2 KiB buffer whatever their length: a fragment keeps a copy
    import tracemalloc

    m = _message(tuple(Header.of(b"x-%d" % k, b"v") for k in range(200)))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    message_json(m)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 200 * 600  # ~2 KiB each before
