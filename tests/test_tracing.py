"""analyzer.tracing: the public API, extract's grouping, x-request-id, and cross-format ids.

Per-format rules live in tests/test_tracing_b3.py, test_tracing_w3c.py and
test_tracing_formats.py.
"""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer.tracing as tracing
from analyzer.records import Header
from analyzer.tracing import (
    FORMATS,
    TRACING_HEADER_NAMES,
    TraceContext,
    extract,
    request_id_key,
    same_trace,
)

H = Header.of
UUID = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def one(name: str, value: str | bytes) -> TraceContext:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    contexts = extract([H(name.encode("latin-1"), raw)])
    assert len(contexts) == 1
    return contexts[0]


# -- the public API -----------------------------------------------------------------


def test_all_names_the_public_api() -> None:
    assert sorted(tracing.__all__) == sorted(
        [
            "FORMATS",
            "TRACING_HEADER_NAMES",
            "TraceContext",
            "extract",
            "request_id_key",
            "same_trace",
        ]
    )
    for name in tracing.__all__:
        assert getattr(tracing, name) is not None


def test_formats_are_the_documented_ones() -> None:
    assert FORMATS == (
        "x-request-id",
        "b3-multi",
        "b3-single",
        "w3c",
        "tracestate",
        "jaeger",
        "ot-span-context",
        "grpc-trace-bin",
        "cloud-trace",
        "datadog",
        "sw8",
        "aws-xray",
        "baggage",
    )


def test_tracing_header_names() -> None:
    assert (
        frozenset(
            {
                "x-request-id",
                "x-b3-traceid",
                "x-b3-spanid",
                "x-b3-parentspanid",
                "x-b3-sampled",
                "x-b3-flags",
                "b3",
                "traceparent",
                "tracestate",
                "uber-trace-id",
                "x-ot-span-context",
                "grpc-trace-bin",
                "x-cloud-trace-context",
                "x-datadog-trace-id",
                "x-datadog-parent-id",
                "x-datadog-sampling-priority",
                "x-datadog-origin",
                "x-datadog-tags",
                "sw8",
                "x-amzn-trace-id",
                "baggage",
            }
        )
        == TRACING_HEADER_NAMES
    )
    assert all(name == name.lower() for name in TRACING_HEADER_NAMES)


def test_every_header_name_yields_a_context_of_a_known_format() -> None:
    for name in sorted(TRACING_HEADER_NAMES):
        context = one(name, "1")
        assert context.format in FORMATS
        assert context.headers == (name,)
        # grpc-trace-bin's raw is the base64 of its binary value, here the byte "1".
        assert context.raw == ("MQ==" if name == "grpc-trace-bin" else "1")


def test_trace_context_is_a_value() -> None:
    # Not frozen since issue 10 (a frozen dataclass's construction was three times as
    # slow), but still a value: equal by its fields, hashable, and slotted (no stray
    # attribute can be added to one).
    context, again = one("traceparent", TP), one("traceparent", TP)
    assert context == again and context is not again
    assert hash(context) == hash(again) and len({context, again}) == 1
    assert context != one("traceparent", TP.replace("-01", "-00"))
    with pytest.raises(AttributeError):
        context.note = "x"  # type: ignore[attr-defined]


# -- extract: grouping, order, unknown and guessed headers ---------------------------


def test_no_tracing_header_gives_an_empty_tuple() -> None:
    headers = [H(b":method", b"GET"), H(b"host", b"example"), H(b"x-forwarded-for", b"10.0.0.1")]
    assert extract(headers) == ()
    assert extract([]) == ()


def test_contexts_come_in_wire_order_of_their_first_header() -> None:
    contexts = extract(
        [
            H(b"x-b3-sampled", b"1"),
            H(b"X-Request-Id", UUID.encode()),
            H(b"traceparent", TP.encode()),
            H(b"x-b3-traceid", b"0af7651916cd43dd8448eb211c80319c"),
            H(b"x-b3-spanid", b"b7ad6b7169203331"),
        ]
    )
    assert [c.format for c in contexts] == ["b3-multi", "x-request-id", "w3c"]
    b3 = contexts[0]
    assert b3.headers == ("x-b3-sampled", "x-b3-traceid", "x-b3-spanid")
    assert b3.raw == (
        "x-b3-sampled=1; x-b3-traceid=0af7651916cd43dd8448eb211c80319c; x-b3-spanid=b7ad6b7169203331"
    )
    assert b3.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert b3.sampled is True
    assert b3.violations == ()
    assert same_trace(b3.trace_id, contexts[2].trace_id)


def test_unknown_hpack_entries_are_ignored() -> None:
    headers = [
        Header(None, None, None, unknown="entry #62 of the client's table"),
        Header(b"traceparent", None, b"traceparent", unknown="value of entry #63"),
        Header(None, TP.encode(), None, unknown="name of entry #64"),
    ]
    assert extract(headers) == ()


def test_a_guessed_header_is_parsed_and_marked() -> None:
    guessed = Header(None, TP.encode(), b"traceparent", unknown="entry #70", guessed=True)
    contexts = extract([H(b"x-request-id", UUID.encode()), guessed])
    assert [c.format for c in contexts] == ["x-request-id", "w3c"]
    assert contexts[0].guessed is False
    assert contexts[1].guessed is True
    assert contexts[1].trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_a_guessed_header_marks_the_whole_group() -> None:
    contexts = extract(
        [
            H(b"x-b3-traceid", b"463ac35c9f6413ad48485a3953bb6124"),
            Header(None, b"a2fb4a1d1a96d312", b"x-b3-spanid", guessed=True),
        ]
    )
    assert len(contexts) == 1
    assert contexts[0].guessed is True
    assert contexts[0].span_id == "a2fb4a1d1a96d312"


def test_a_guessed_header_without_a_value_is_ignored() -> None:
    assert extract([Header(None, None, b"traceparent", guessed=True)]) == ()


def test_similar_names_are_not_tracing_headers() -> None:
    for name in (b"trace-parent", b"trace.parent", b"x-b3", b"uberctx", b"x-request-ids"):
        assert extract([H(name, b"1")]) == ()


# -- x-request-id and request_id_key ------------------------------------------------


def test_request_id_uuid_is_kept_lower_cased() -> None:
    context = one("X-Request-ID", UUID.upper())
    assert context.format == "x-request-id"
    assert context.request_id == UUID
    assert context.raw == UUID.upper()
    assert context.trace_id is None
    assert context.violations == ()


def test_request_id_not_a_uuid_is_kept_with_a_violation() -> None:
    context = one("x-request-id", "req-42")
    assert context.request_id == "req-42"
    assert context.violations == ("x-request-id: not a UUID (8-4-4-4-12 hex digits)",)


@pytest.mark.parametrize(
    "value",
    [
        "3a1c4f1e5d2b4c3a9f8e1a2b3c4d5e6f",  # no dashes
        "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6",  # one digit short
        "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6g",  # not hex
        "{3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f}",
    ],
)
def test_request_id_shapes_that_are_not_uuids(value: str) -> None:
    context = one("x-request-id", value)
    assert context.request_id == value.lower()
    assert "x-request-id: not a UUID (8-4-4-4-12 hex digits)" in context.violations


def test_request_id_empty_and_repeated() -> None:
    assert one("x-request-id", "").violations == ("x-request-id: value is empty",)
    (context,) = extract([H(b"x-request-id", UUID.encode()), H(b"x-request-id", b"other")])
    assert context.request_id == UUID
    assert context.violations == ("x-request-id: sent 2 times, only one is allowed",)


def test_request_id_key_masks_envoy_trace_reason() -> None:
    fresh = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"  # '4': as generated
    sampled = "3a1c4f1e-5d2b-9c3a-9f8e-1a2b3c4d5e6f"
    forced = "3a1c4f1e-5d2b-ac3a-9f8e-1a2b3c4d5e6f"
    client = "3a1c4f1e-5d2b-bc3a-9f8e-1a2b3c4d5e6f"
    assert fresh[14] == "4" and sampled[14] == "9"
    keys = {request_id_key(v) for v in (fresh, sampled, forced, client, sampled.upper())}
    assert keys == {"3a1c4f1e-5d2b-*c3a-9f8e-1a2b3c4d5e6f"}


def test_request_id_key_keeps_every_other_character() -> None:
    a = "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
    b = "3a1c4f1e-5d2b-4c3b-9f8e-1a2b3c4d5e6f"
    assert request_id_key(a) != request_id_key(b)


def test_request_id_key_leaves_ids_envoy_does_not_touch() -> None:
    # Envoy reads and writes the trace reason only on 36-character ids.
    assert request_id_key("Req-42") == "req-42"
    assert request_id_key("3a1c4f1e5d2b4c3a9f8e1a2b3c4d5e6f") == "3a1c4f1e5d2b4c3a9f8e1a2b3c4d5e6f"


def test_request_id_key_on_extracted_ids() -> None:
    inbound = one("x-request-id", "3a1c4f1e-5d2b-9c3a-9f8e-1a2b3c4d5e6f")
    outbound = one("x-request-id", "3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f")
    assert inbound.request_id is not None and outbound.request_id is not None
    assert inbound.request_id != outbound.request_id
    assert request_id_key(inbound.request_id) == request_id_key(outbound.request_id)


# -- same_trace ---------------------------------------------------------------------


def test_same_trace_basics() -> None:
    t = "0af7651916cd43dd8448eb211c80319c"
    assert same_trace(t, t)
    assert same_trace(t, t.upper())
    assert not same_trace(t, "1af7651916cd43dd8448eb211c80319c")
    assert not same_trace(None, None)
    assert not same_trace(t, None)
    assert not same_trace(None, t)
    assert not same_trace("", "")
    assert not same_trace("0" * 32, "0" * 16)
    assert same_trace("a3ce929d0e0e4736", "0000000000000000a3ce929d0e0e4736")
    assert not same_trace("a3ce929d0e0e4736", "0000000000000001a3ce929d0e0e4736")
    assert same_trace("1-5759e988-bd862e3fe1be46a994272793", "5759e988bd862e3fe1be46a994272793")
    assert same_trace("not-hex-id", "NOT-HEX-ID")
    assert not same_trace("not-hex-id", "other")


def test_same_trace_b3_64_bit_and_w3c_padded() -> None:
    b3 = one("x-b3-traceid", "a3ce929d0e0e4736")
    w3c = one("traceparent", "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert b3.trace_id == w3c.trace_id == "0000000000000000a3ce929d0e0e4736"
    assert same_trace(b3.trace_id, w3c.trace_id)


def test_same_trace_jaeger_short_id_and_w3c() -> None:
    jaeger = one("uber-trace-id", "abc:1:0:1")
    w3c = one("traceparent", "00-00000000000000000000000000000abc-0000000000000001-01")
    assert jaeger.trace_id == "00000000000000000000000000000abc"
    assert same_trace(jaeger.trace_id, w3c.trace_id)


def test_same_trace_grpc_trace_bin_and_traceparent() -> None:
    tid = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    sid = bytes.fromhex("b7ad6b7169203331")
    binary = b"\x00\x00" + tid + b"\x01" + sid + b"\x02\x01"
    grpc = one("grpc-trace-bin", base64.b64encode(binary))
    w3c = one("traceparent", TP)
    assert same_trace(grpc.trace_id, w3c.trace_id)
    assert grpc.span_id == w3c.span_id == "b7ad6b7169203331"
    assert grpc.sampled is w3c.sampled is True


def test_same_trace_xray_datadog_and_w3c() -> None:
    xray = one("x-amzn-trace-id", "Root=1-5759e988-bd862e3fe1be46a994272793")
    w3c = one("traceparent", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
    assert same_trace(xray.trace_id, w3c.trace_id)
    (dd,) = extract(
        [
            H(b"x-datadog-trace-id", str(0xBD862E3FE1BE46A9).encode()),
            H(b"x-datadog-tags", b"_dd.p.dm=-1,_dd.p.tid=5759e988bd862e3f"),
        ]
    )
    assert dd.trace_id == "5759e988bd862e3fbd862e3fe1be46a9"
    assert not same_trace(dd.trace_id, w3c.trace_id)
    assert same_trace(dd.trace_id, "5759e988bd862e3fbd862e3fe1be46a9")


# -- the property: extract never raises ----------------------------------------------

_NAMES = [*sorted(TRACING_HEADER_NAMES), "uberctx-user", "uberctx-", "content-type"]
_ID_CHARS = "0123456789abcdefABCDEF-:;=,/%.@ \t_"
_IDS = re.compile(r"[0-9a-f]+")


def _values() -> st.SearchStrategy[bytes]:
    near_miss = st.text(alphabet=_ID_CHARS, max_size=80).map(lambda s: s.encode("ascii"))
    return st.one_of(st.binary(max_size=120), near_miss)


_HEADERS = st.lists(
    st.builds(
        Header,
        st.none(),
        st.one_of(st.none(), _values()),
        st.one_of(st.none(), st.sampled_from(_NAMES).map(str.encode)),
        st.none(),
        st.booleans(),
    ),
    max_size=8,
)


@settings(max_examples=400, deadline=None)
@given(_HEADERS)
def test_extract_never_raises_and_keeps_its_invariants(headers: list[Header]) -> None:
    contexts = extract(headers)
    assert isinstance(contexts, tuple)
    formats = [c.format for c in contexts]
    assert len(formats) == len(set(formats))
    for context in contexts:
        assert context.format in FORMATS
        assert context.headers
        for ids, size in (
            ((context.trace_id,), 32),
            ((context.span_id, context.parent_span_id), 16),
        ):
            for value in ids:
                assert value is None or (len(value) == size and _IDS.fullmatch(value))
        assert all(isinstance(v, str) and v for v in context.violations)
        assert (context.request_id is not None) == (context.format == "x-request-id")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_NAMES), _values())
def test_one_header_with_any_bytes_never_raises(name: str, value: bytes) -> None:
    contexts = extract([H(name.encode(), value)])
    if name == "content-type":
        assert contexts == ()
    else:
        assert len(contexts) == 1
        assert contexts[0].headers == (name,)


def test_grpc_trace_bin_true_binary_form() -> None:
    """grpcio with SETTINGS 0xFE03 sends -bin metadata as a NUL byte and the raw bytes."""
    from analyzer.report.redact import display_value

    ctx = bytes([0, 0]) + bytes.fromhex("1513d2e06df6dace420b92106d4d5993") + bytes([1]) \
        + bytes.fromhex("d41125d8d37b5d08") + bytes([2, 1])
    (c,) = extract([Header.of(b"grpc-trace-bin", b"\x00" + ctx)])
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == (
        "1513d2e06df6dace420b92106d4d5993", "d41125d8d37b5d08", True, ())
    assert display_value(b"grpc-trace-bin", b"\x00" + ctx, False) == base64.b64encode(ctx).decode()
    assert display_value(b"x-custom-bin", b"AAEC", False) == "AAEC"  # base64 text, as sent
    assert display_value(b"x-custom-bin", b"\xff\x01", False) == "/wE="


# -- the shared field checks -----------------------------------------------------------


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.text("0123456789abcdefABCDEFxX_ -\t\n+²٣", max_size=40),
    st.text(max_size=12),
))
def test_field_checks_answer_as_their_regex(s: str) -> None:
    """is_hex, is_lower_hex and is_decimal strip characters instead of matching a regex
    (cheaper): they must accept exactly what the regex's fullmatch accepts."""
    from analyzer.tracing import context

    assert context.is_hex(s) == (re.fullmatch(r"[0-9a-fA-F]+", s) is not None)
    assert context.is_lower_hex(s) == (re.fullmatch(r"[0-9a-f]+", s) is not None)
    assert context.is_decimal(s) == (re.fullmatch(r"[0-9]+", s) is not None)


def test_field_checks_edges() -> None:
    from analyzer.tracing.context import is_decimal, is_hex, is_lower_hex

    assert not is_hex("") and not is_lower_hex("") and not is_decimal("")
    assert is_hex("0aF9") and not is_lower_hex("0aF9") and is_lower_hex("0af9")
    assert not is_hex("0x1f") and not is_hex(" 1f") and not is_hex("1f\n")
    assert is_decimal("0123") and not is_decimal("1_0") and not is_decimal("²") and not is_decimal("٣")


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.text("0123456789abcdef-", min_size=36, max_size=36),
    st.text("0123456789abcdefA-g ", min_size=30, max_size=40),
    st.text(max_size=40),
))
def test_is_uuid_answers_as_the_regex(s: str) -> None:
    from analyzer.tracing import requestid

    assert requestid.is_uuid(s) == (requestid._UUID.fullmatch(s) is not None)


def test_is_uuid_edges() -> None:
    from analyzer.tracing.requestid import is_uuid

    assert is_uuid(UUID)
    assert not is_uuid(UUID.upper()) and not is_uuid(UUID[:-1]) and not is_uuid(UUID + "0")
    assert not is_uuid(UUID.replace("-", "0", 1)[:35] + "-")  # a dash moved to the end
    assert not is_uuid("-" * 36) and not is_uuid("")


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.text("0123456789abcdef-", min_size=36, max_size=36),
    st.text("0123456789abcdefA-g \t", min_size=34, max_size=38),
    st.text(max_size=40),
), st.integers(1, 2))
def test_the_fast_read_of_a_request_id_gives_the_general_parsers_context(s: str, times: int) -> None:
    from analyzer.tracing import requestid

    for value in (s, UUID, UUID.upper(), f" {UUID}"):
        fields = [("x-request-id", value.encode("utf-8"))] * times
        assert requestid.parse_request_id(fields) == requestid._parse_request_id(fields), value


_SHAPE_ALPHABET = "0123456789abcdefABCxyz-:/ \x00\xff"


@settings(max_examples=2000, deadline=None)
@given(st.one_of(
    st.text("0123456789abcdef-", min_size=36, max_size=36),
    st.text("0123456789abcdef-", min_size=55, max_size=55).map(lambda s: "00-" + s[3:]),
    st.text(_SHAPE_ALPHABET, max_size=60),
), st.data())
def test_the_byte_shape_checks_answer_as_the_regexes(s: str, data: st.DataObject) -> None:
    from analyzer.tracing import context

    v = s.encode("latin-1")
    # the build's own checks, and the compiled build's way whichever build runs
    for uuid, traceparent in ((context.uuid_shaped, context.traceparent_shaped),
                              (context.uuid_loop, context.traceparent_loop)):
        assert uuid(v) == (re.fullmatch(
            rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", v) is not None)
        assert traceparent(v) == (re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", v) is not None)
    start = data.draw(st.integers(0, len(v)))
    end = data.draw(st.integers(start, len(v)))
    hexes = re.fullmatch(rb"[0-9a-f]*", v[start:end]) is not None
    assert context.lower_hex_run(v, start, end) == hexes
    assert context.hex_loop(v, start, end) == hexes
