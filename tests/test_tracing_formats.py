"""Jaeger, x-ot-span-context, grpc-trace-bin, Cloud Trace, Datadog, sw8, X-Ray and baggage."""

from __future__ import annotations

import base64

import pytest

from analyzer.records import Header
from analyzer.tracing import TraceContext, extract, same_trace

H = Header.of
TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"


def contexts(*pairs: tuple[str, str | bytes]) -> tuple[TraceContext, ...]:
    return extract([H(n.encode(), v if isinstance(v, bytes) else v.encode("latin-1")) for n, v in pairs])


def one(name: str, value: str | bytes) -> TraceContext:
    (context,) = contexts((name, value))
    return context


# -- Jaeger uber-trace-id ---------------------------------------------------------------


def test_jaeger_full() -> None:
    c = one("uber-trace-id", f"{TID}:{SID}:0:1")
    assert c.format == "jaeger"
    assert (c.trace_id, c.span_id, c.parent_span_id, c.sampled) == (TID, SID, None, True)
    assert c.violations == ()


def test_jaeger_short_ids_are_padded_without_violation() -> None:
    c = one("uber-trace-id", "abc:1:2:0")
    assert c.trace_id == "0" * 29 + "abc"
    assert c.span_id == "0" * 15 + "1"
    assert c.parent_span_id == "0" * 15 + "2"
    assert c.sampled is False
    assert c.violations == ()


def test_jaeger_url_encoded() -> None:
    c = one("uber-trace-id", f"{TID}%3A{SID}%3a0%3A3")
    assert (c.trace_id, c.span_id, c.sampled) == (TID, SID, True)
    assert c.violations == ()
    assert c.raw == f"{TID}%3A{SID}%3a0%3A3"


def test_jaeger_upper_case_is_accepted_silently() -> None:
    c = one("uber-trace-id", f"{TID.upper()}:{SID.upper()}:0:1")
    assert (c.trace_id, c.span_id) == (TID, SID)
    assert c.violations == ()


@pytest.mark.parametrize(
    ("flags", "sampled"), [("0", False), ("1", True), ("2", False), ("ff", True), ("03", True)]
)
def test_jaeger_flags(flags: str, sampled: bool) -> None:
    c = one("uber-trace-id", f"{TID}:{SID}:0:{flags}")
    assert c.sampled is sampled
    assert c.violations == ()


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        (f"{TID}:{SID}:0", ("uber-trace-id: must be trace-id:span-id:parent-span-id:flags, got 3 fields",)),
        ("", ("uber-trace-id: must be trace-id:span-id:parent-span-id:flags, got 1 field",)),
        (f"{TID}0:{SID}:0:1", ("uber-trace-id: trace-id must be 1 to 32 hex digits, not 33",)),
        (f"0:{SID}:0:1", ("uber-trace-id: all-zero trace-id is invalid",)),
        (f"{TID}:0:0:1", ("uber-trace-id: all-zero span-id is invalid",)),
        (f"{TID}:{SID}0:0:1", ("uber-trace-id: span-id must be 1 to 16 hex digits, not 17",)),
        (f"{TID}:x{SID[1:]}:0:1", ("uber-trace-id: span-id must be hex digits",)),
        (f"{TID}:{SID}::1", ("uber-trace-id: parent-span-id is empty (use 0 for none)",)),
        (f"{TID}:{SID}:0:", ('uber-trace-id: flags must be one byte in hex, not ""',)),
        (f"{TID}:{SID}:0:100", ('uber-trace-id: flags must be one byte in hex, not "100"',)),
    ],
)
def test_jaeger_violations(value: str, violations: tuple[str, ...]) -> None:
    assert one("uber-trace-id", value).violations == violations


def test_jaeger_bad_trace_id_keeps_the_rest() -> None:
    c = one("uber-trace-id", f"xyz:{SID}:0:1")
    assert (c.trace_id, c.span_id, c.sampled) == (None, SID, True)


# -- x-ot-span-context --------------------------------------------------------------------


def test_ot_span_context_envoy_shape_is_parsed() -> None:
    c = one("x-ot-span-context", f"{TID};{SID};0000000000000000;cs")
    assert c.format == "ot-span-context"
    assert (c.trace_id, c.span_id, c.parent_span_id) == (TID, SID, None)
    assert c.violations == ()
    c = one("x-ot-span-context", f"{SID};{SID};00f067aa0ba902b7")
    assert (c.trace_id, c.span_id, c.parent_span_id) == ("0" * 16 + SID, SID, "00f067aa0ba902b7")


def test_ot_span_context_other_shapes_are_opaque() -> None:
    c = one("x-ot-span-context", "CgwIARCAgICAgICAgAE=")
    assert (c.trace_id, c.span_id, c.violations) == (None, None, ())
    assert c.raw == "CgwIARCAgICAgICAgAE="


def test_ot_span_context_violations_and_case() -> None:
    assert one("x-ot-span-context", "").violations == ("x-ot-span-context: value is empty",)
    c = one("x-ot-span-context", f"{TID.upper()};{SID}")
    assert c.trace_id == TID
    assert c.violations == ()
    c = one("x-ot-span-context", f"{'0' * 32};{SID}")
    assert (c.trace_id, c.span_id) == (None, SID)
    assert c.violations == ("x-ot-span-context: all-zero trace id is invalid",)


def test_ot_span_context_near_miss_is_opaque() -> None:
    c = one("x-ot-span-context", f"{TID};abc")
    assert (c.trace_id, c.span_id, c.violations) == (None, None, ())
    assert c.raw == f"{TID};abc"


# -- grpc-trace-bin ------------------------------------------------------------------------

BINARY = b"\x00\x00" + bytes.fromhex(TID) + b"\x01" + bytes.fromhex(SID) + b"\x02\x01"


@pytest.mark.parametrize(
    "value",
    [
        base64.b64encode(BINARY),
        base64.b64encode(BINARY).rstrip(b"="),  # gRPC may drop the padding
        BINARY,  # already decoded by an h2 layer
    ],
)
def test_grpc_trace_bin_spellings(value: bytes) -> None:
    c = one("grpc-trace-bin", value)
    assert c.format == "grpc-trace-bin"
    assert (c.trace_id, c.span_id, c.sampled) == (TID, SID, True)
    assert c.violations == ()
    assert c.raw == base64.b64encode(BINARY).decode()


def test_grpc_trace_bin_without_options_and_with_unknown_trailing_field() -> None:
    c = one("grpc-trace-bin", BINARY[:-2])
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == (TID, SID, None, ())
    c = one("grpc-trace-bin", BINARY[:-1] + b"\x00" + b"\x07whatever")
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == (TID, SID, False, ())


@pytest.mark.parametrize(
    ("value", "violations", "trace_id"),
    [
        (b"", ("grpc-trace-bin: value is empty",), None),
        (b"\x01" + BINARY[1:], ("grpc-trace-bin: unknown version 1, only 0 is defined",), None),
        (BINARY[:10], ("grpc-trace-bin: truncated in the trace id field",), None),
        (BINARY[:22], ("grpc-trace-bin: truncated in the span id field",), TID),
        (BINARY[:-1], ("grpc-trace-bin: truncated in the options field",), TID),
        (
            b"\x00\x01" + bytes.fromhex(SID) + b"\x00" + bytes.fromhex(TID),
            ("grpc-trace-bin: field 0 is out of order",),
            None,
        ),
        (
            b"\x00\x02\x01",
            ("grpc-trace-bin: trace id field is missing", "grpc-trace-bin: span id field is missing"),
            None,
        ),
        (
            b"\x00\x00" + bytes(16) + b"\x01" + bytes.fromhex(SID),
            ("grpc-trace-bin: all-zero trace id is invalid",),
            None,
        ),
    ],
)
def test_grpc_trace_bin_violations(value: bytes, violations: tuple[str, ...], trace_id: str | None) -> None:
    c = one("grpc-trace-bin", value)
    assert c.violations == violations
    assert c.trace_id == trace_id


def test_grpc_trace_bin_same_trace_as_traceparent() -> None:
    grpc, w3c = contexts(("grpc-trace-bin", base64.b64encode(BINARY)), ("traceparent", f"00-{TID}-{SID}-01"))
    assert same_trace(grpc.trace_id, w3c.trace_id)


# -- x-cloud-trace-context -------------------------------------------------------------


def test_cloud_trace_full() -> None:
    c = one("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/1;o=1")
    assert c.format == "cloud-trace"
    assert c.trace_id == "105445aa7843bc8bf206b12000100000"
    assert c.span_id == "0000000000000001"
    assert c.sampled is True
    assert c.violations == ()


def test_cloud_trace_decimal_span_and_no_options() -> None:
    c = one("x-cloud-trace-context", f"{TID}/{int(SID, 16)}")
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == (TID, SID, None, ())
    assert one("x-cloud-trace-context", f"{TID}/{int(SID, 16)};o=0").sampled is False


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        (TID, ("x-cloud-trace-context: span id is missing (TRACE_ID/SPAN_ID)",)),
        (f"{TID}/{SID}", ("x-cloud-trace-context: span id must be an unsigned decimal integer",)),
        (f"{TID}/{2**64}", ("x-cloud-trace-context: span id does not fit in 64 bits",)),
        (f"{TID}/1;sampled", ('x-cloud-trace-context: options must be o=<decimal>, not "sampled"',)),
        (f"{TID[:16]}/1;o=1", ("x-cloud-trace-context: trace id must be 32 hex digits, not 16",)),
    ],
)
def test_cloud_trace_violations(value: str, violations: tuple[str, ...]) -> None:
    assert one("x-cloud-trace-context", value).violations == violations


# -- Datadog ------------------------------------------------------------------------------


def test_datadog_decimal_ids() -> None:
    (c,) = contexts(
        ("x-datadog-trace-id", "1234567890123456789"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-origin", "synthetics"),
    )
    assert c.format == "datadog"
    assert c.trace_id == "0" * 16 + f"{1234567890123456789:016x}"
    assert c.span_id == f"{987654321:016x}"
    assert c.sampled is True
    assert c.violations == ()
    assert c.headers == (
        "x-datadog-trace-id",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
        "x-datadog-origin",
    )
    assert c.raw.startswith("x-datadog-trace-id=1234567890123456789; x-datadog-parent-id=")


@pytest.mark.parametrize(("priority", "sampled"), [("-1", False), ("0", False), ("1", True), ("2", True)])
def test_datadog_sampling_priority(priority: str, sampled: bool) -> None:
    assert one("x-datadog-sampling-priority", priority).sampled is sampled


def test_datadog_128_bit_via_tags() -> None:
    (c,) = contexts(
        ("x-datadog-trace-id", str(int(TID[16:], 16))),
        ("x-datadog-tags", f"_dd.p.dm=-4,_dd.p.tid={TID[:16]}"),
    )
    assert c.trace_id == TID
    assert c.violations == ()
    assert same_trace(c.trace_id, one("traceparent", f"00-{TID}-{SID}-01").trace_id)


@pytest.mark.parametrize(
    ("pairs", "violations"),
    [
        (
            (("x-datadog-trace-id", "0x1f"),),
            ("x-datadog-trace-id: trace id must be an unsigned decimal integer",),
        ),
        ((("x-datadog-trace-id", "0"),), ("x-datadog-trace-id: 0 is not a valid trace id",)),
        ((("x-datadog-trace-id", str(2**64)),), ("x-datadog-trace-id: trace id does not fit in 64 bits",)),
        ((("x-datadog-trace-id", "1" * 5000),), ("x-datadog-trace-id: trace id does not fit in 64 bits",)),
        (
            (("x-datadog-parent-id", "12"),),
            ("x-datadog-parent-id: sent without x-datadog-trace-id",),
        ),
        (
            (("x-datadog-trace-id", "12"), ("x-datadog-parent-id", "-3")),
            ("x-datadog-parent-id: parent id must be an unsigned decimal integer",),
        ),
        (
            (("x-datadog-sampling-priority", "keep"),),
            ('x-datadog-sampling-priority: must be an integer, not "keep"',),
        ),
        (
            (("x-datadog-trace-id", "12"), ("x-datadog-tags", "_dd.p.tid=XYZ")),
            ("x-datadog-tags: _dd.p.tid must be 16 lower-case hex digits",),
        ),
        (
            (("x-datadog-trace-id", "12"), ("x-datadog-trace-id", "13")),
            ("x-datadog-trace-id: sent more than once, only one is allowed",),
        ),
    ],
)
def test_datadog_violations(pairs: tuple[tuple[str, str], ...], violations: tuple[str, ...]) -> None:
    (c,) = contexts(*pairs)
    assert c.violations == violations


def test_datadog_bad_tid_falls_back_to_64_bits() -> None:
    (c,) = contexts(("x-datadog-trace-id", "12"), ("x-datadog-tags", "_dd.p.tid=XYZ"))
    assert c.trace_id == "0" * 31 + "c"


# -- SkyWalking sw8 ---------------------------------------------------------------------


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def sw8(sample: str = "1", trace: str = TID, span: str = "3") -> str:
    parts = [
        sample,
        b64(trace),
        b64("segment-1"),
        span,
        b64("svc"),
        b64("inst"),
        b64("/api"),
        b64("10.0.0.1:80"),
    ]
    return "-".join(parts)


def test_sw8_hex_trace_id() -> None:
    c = one("sw8", sw8())
    assert c.format == "sw8"
    assert c.trace_id == TID
    assert c.sampled is True
    assert c.span_id is None
    assert c.violations == ()


def test_sw8_other_trace_ids_are_kept_raw_only() -> None:
    value = sw8(sample="0", trace="a1b2c3d4e5f6.123.16565656565650001")
    c = one("sw8", value)
    assert c.trace_id is None
    assert c.sampled is False
    assert c.raw == value
    assert c.violations == ()


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        ("1-abc", ("sw8: must have 8 '-'-separated fields, not 2",)),
        (sw8(sample="2"), ('sw8: sample must be "0" or "1", not "2"',)),
        (sw8(span="x"), ('sw8: span id must be a decimal integer, not "x"',)),
        (sw8().replace(b64("svc"), "***"), ("sw8: parent service is not valid base64",)),
        (sw8().replace(b64("svc"), ""), ("sw8: parent service is empty",)),
    ],
)
def test_sw8_violations(value: str, violations: tuple[str, ...]) -> None:
    assert one("sw8", value).violations == violations


# -- AWS X-Ray --------------------------------------------------------------------------

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def test_xray_full_any_order() -> None:
    c = one(
        "x-amzn-trace-id",
        f"Sampled=1;Parent=53995c3f42cd8ad8;Root={ROOT};Self=1-67891234-12456789abcdef012345678",
    )
    assert c.format == "aws-xray"
    assert c.trace_id == "5759e988bd862e3fe1be46a994272793"
    assert c.span_id == "53995c3f42cd8ad8"
    assert c.sampled is True
    assert c.violations == ()


@pytest.mark.parametrize(("flag", "sampled"), [("0", False), ("1", True), ("?", None)])
def test_xray_sampled(flag: str, sampled: bool | None) -> None:
    c = one("x-amzn-trace-id", f"Root={ROOT};Sampled={flag}")
    assert c.sampled is sampled
    assert c.violations == ()


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        ("Parent=53995c3f42cd8ad8", ("x-amzn-trace-id: Root is missing",)),
        (
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            ("x-amzn-trace-id: Root must be 1-<8 hex digits>-<24 hex digits>",),
        ),
        (
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            ("x-amzn-trace-id: Root must be 1-<8 hex digits>-<24 hex digits>",),
        ),
        (f"Root={ROOT};Parent=xyz", ("x-amzn-trace-id: Parent must be hex digits",)),
        (f"Root={ROOT};Sampled=yes", ('x-amzn-trace-id: Sampled must be "0", "1" or "?", not "yes"',)),
        (f"Root={ROOT};garbage", ('x-amzn-trace-id: "garbage" is not key=value',)),
        (f"Root={ROOT};Root={ROOT}", ('x-amzn-trace-id: "Root" appears more than once',)),
    ],
)
def test_xray_violations(value: str, violations: tuple[str, ...]) -> None:
    assert one("x-amzn-trace-id", value).violations == violations


# -- baggage ----------------------------------------------------------------------------


def test_baggage_valid() -> None:
    c = one("baggage", "userId=alice, serverNode=DF%2028 ; p1 ;p2=v, isProduction=false")
    assert c.format == "baggage"
    assert c.trace_id is None
    assert c.violations == ()


def test_baggage_and_uberctx_form_one_context() -> None:
    contexts_ = contexts(
        ("uberctx-tenant", "acme"), ("traceparent", f"00-{TID}-{SID}-01"), ("baggage", "k=v")
    )
    assert [c.format for c in contexts_] == ["baggage", "w3c"]
    bag = contexts_[0]
    assert bag.headers == ("uberctx-tenant", "baggage")
    assert bag.raw == "uberctx-tenant=acme; baggage=k=v"
    assert bag.violations == ()


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        ("novalue", ("baggage: list-member 1 has no '='",)),
        ("a=1,,b=2", ("baggage: empty list-member",)),
        ("(bad)=1", ("baggage: the key of list-member 1 is not a token",)),
        ('k="quoted"', ('baggage: value of "k" has a character that must be percent-encoded',)),
        ("k=a b", ('baggage: value of "k" has a character that must be percent-encoded',)),
        ("k=v;(p)", ('baggage: a property of "k" is malformed',)),
        ("k=v;p=a\\b", ('baggage: a property of "k" is malformed',)),
    ],
)
def test_baggage_violations(value: str, violations: tuple[str, ...]) -> None:
    assert one("baggage", value).violations == violations


def test_uberctx_without_a_key() -> None:
    assert one("uberctx-", "x").violations == ("uberctx-: header name carries no baggage key",)
