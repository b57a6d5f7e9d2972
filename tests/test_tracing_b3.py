"""B3 multi-header (x-b3-*) and single-header (b3) rules, with the examples of
openzipkin/b3-propagation's README."""

from __future__ import annotations

import pytest

from analyzer.records import Header
from analyzer.tracing import TraceContext, extract, same_trace

H = Header.of
T128 = "463ac35c9f6413ad48485a3953bb6124"
T64 = "a3ce929d0e0e4736"
SPAN = "a2fb4a1d1a96d312"
PARENT = "0020000000000001"


def multi(*pairs: tuple[str, str]) -> TraceContext:
    (context,) = extract([H(n.encode(), v.encode("latin-1")) for n, v in pairs])
    assert context.format == "b3-multi"
    return context


def single(value: str) -> TraceContext:
    (context,) = extract([H(b"b3", value.encode("latin-1"))])
    assert context.format == "b3-single"
    return context


# -- multi ----------------------------------------------------------------------------


def test_multi_spec_example() -> None:
    c = multi(
        ("X-B3-TraceId", T128),
        ("X-B3-ParentSpanId", PARENT),
        ("X-B3-SpanId", SPAN),
        ("X-B3-Sampled", "1"),
    )
    assert c.trace_id == T128
    assert c.span_id == SPAN
    assert c.parent_span_id == PARENT
    assert c.sampled is True
    assert c.violations == ()
    assert c.headers == ("x-b3-traceid", "x-b3-parentspanid", "x-b3-spanid", "x-b3-sampled")


def test_multi_64_bit_trace_id_is_padded_and_equals_its_128_bit_form() -> None:
    c64 = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN))
    c128 = multi(("x-b3-traceid", "0" * 16 + T64), ("x-b3-spanid", SPAN))
    assert c64.trace_id == "0000000000000000a3ce929d0e0e4736"
    assert c64.trace_id == c128.trace_id
    assert same_trace(c64.trace_id, c128.trace_id)
    assert c64.violations == c128.violations == ()


def test_multi_sampled_zero_is_a_deny_decision() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN), ("x-b3-sampled", "0"))
    assert c.sampled is False
    assert c.violations == ()


def test_multi_each_header_may_stand_alone() -> None:
    c = multi(("x-b3-sampled", "0"))
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == (None, None, False, ())
    c = multi(("x-b3-flags", "1"))
    assert (c.trace_id, c.sampled, c.violations) == (None, True, ())


def test_multi_true_false_are_understood_but_violations() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN), ("x-b3-sampled", "true"))
    assert c.sampled is True
    assert c.violations == ('x-b3-sampled: "true" is not allowed, the spec says "1"',)
    c = multi(("x-b3-sampled", "False"))
    assert c.sampled is False
    assert c.violations == ('x-b3-sampled: "False" is not allowed, the spec says "0"',)


def test_multi_other_sampled_values_are_violations() -> None:
    c = multi(("x-b3-sampled", "yes"))
    assert c.sampled is None
    assert c.violations == ('x-b3-sampled: must be "1" or "0", not "yes"',)


def test_multi_debug_flag_implies_sampled() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN), ("x-b3-flags", "1"))
    assert c.sampled is True
    assert c.violations == ()
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN), ("x-b3-flags", "0"))
    assert c.sampled is None
    assert c.violations == ()
    c = multi(("x-b3-flags", "2"))
    assert c.sampled is None
    assert c.violations == ('x-b3-flags: must be "1" (debug), not "2"',)


def test_multi_upper_case_is_a_violation_but_the_id_is_kept_lower_case() -> None:
    c = multi(("x-b3-traceid", T128.upper()), ("x-b3-spanid", SPAN.upper()))
    assert c.trace_id == T128
    assert c.span_id == SPAN
    assert c.violations == (
        "x-b3-traceid: upper-case hex is not allowed",
        "x-b3-spanid: upper-case hex is not allowed",
    )


@pytest.mark.parametrize(
    ("value", "violation"),
    [
        ("463ac35c9f6413ad48485a3953bb612", "x-b3-traceid: trace id must be 16 or 32 hex digits, not 31"),
        ("a3ce929d0e0e47", "x-b3-traceid: trace id must be 16 or 32 hex digits, not 14"),
        ("a3ce929d0e0e473g", "x-b3-traceid: trace id must be hex digits"),
        ("0" * 32, "x-b3-traceid: all-zero trace id is invalid"),
        ("0" * 16, "x-b3-traceid: all-zero trace id is invalid"),
        ("", "x-b3-traceid: trace id is empty"),
    ],
)
def test_multi_bad_trace_ids(value: str, violation: str) -> None:
    c = multi(("x-b3-traceid", value), ("x-b3-spanid", SPAN))
    assert c.trace_id is None
    assert c.span_id == SPAN
    assert c.violations == (violation,)


def test_multi_bad_span_and_parent_ids() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", "0" * 16), ("x-b3-parentspanid", "abc"))
    assert c.trace_id == "0" * 16 + T64
    assert c.span_id is None
    assert c.parent_span_id is None
    assert c.violations == (
        "x-b3-spanid: all-zero span id is invalid",
        "x-b3-parentspanid: parent span id must be 16 hex digits, not 3",
    )
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", T128))
    assert c.span_id is None
    assert c.violations == ("x-b3-spanid: span id must be 16 hex digits, not 32",)


def test_multi_missing_span_id_with_trace_id() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-sampled", "1"))
    assert c.trace_id == "0" * 16 + T64
    assert c.violations == ("x-b3-spanid: missing, it is required with x-b3-traceid",)


def test_multi_ids_without_trace_id() -> None:
    c = multi(("x-b3-spanid", SPAN), ("x-b3-parentspanid", PARENT))
    assert c.trace_id is None
    assert c.span_id == SPAN
    assert c.violations == (
        "x-b3-spanid: sent without x-b3-traceid",
        "x-b3-parentspanid: sent without x-b3-traceid",
    )


def test_multi_repeated_header_keeps_the_first() -> None:
    c = multi(("x-b3-traceid", T64), ("x-b3-spanid", SPAN), ("x-b3-traceid", T128))
    assert c.trace_id == "0" * 16 + T64
    assert c.violations == ("x-b3-traceid: sent more than once, only one is allowed",)


def test_multi_and_single_together_are_two_contexts() -> None:
    contexts = extract([H(b"b3", f"{T128}-{SPAN}-1".encode()), H(b"x-b3-traceid", T128.encode())])
    assert [c.format for c in contexts] == ["b3-single", "b3-multi"]
    assert same_trace(contexts[0].trace_id, contexts[1].trace_id)


# -- single ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "sampled"), [("1", True), ("0", False), ("d", True)])
def test_single_sampling_state_only(value: str, sampled: bool) -> None:
    c = single(value)
    assert c.sampled is sampled
    assert (c.trace_id, c.span_id, c.parent_span_id) == (None, None, None)
    assert c.violations == ()
    assert c.raw == value


def test_single_trace_and_span_only() -> None:
    c = single(f"{T64}-{SPAN}")
    assert c.trace_id == "0" * 16 + T64
    assert c.span_id == SPAN
    assert c.sampled is None
    assert c.violations == ()


def test_single_with_sampling() -> None:
    c = single(f"{T128}-{SPAN}-1")
    assert (c.trace_id, c.span_id, c.sampled, c.parent_span_id) == (T128, SPAN, True, None)
    assert c.violations == ()
    assert single(f"{T128}-{SPAN}-0").sampled is False


def test_single_debug_with_parent() -> None:
    c = single(f"{T128}-{SPAN}-d-{PARENT}")
    assert (c.trace_id, c.span_id, c.sampled, c.parent_span_id) == (T128, SPAN, True, PARENT)
    assert c.violations == ()


def test_single_spec_examples() -> None:
    c = single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
    assert c.trace_id == "80f198ee56343ba864fe8b2a57d3eff7"
    assert c.span_id == "e457b5a2e4d86bd1"
    assert c.parent_span_id == "05e3ac9a4f6e3b90"
    assert c.sampled is True
    assert c.violations == ()


def test_single_64_bit_equals_multi_128_bit() -> None:
    s = single(f"{T64}-{SPAN}-1")
    m = multi(("x-b3-traceid", "0" * 16 + T64), ("x-b3-spanid", SPAN))
    assert same_trace(s.trace_id, m.trace_id)


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        ("", ("b3: value is empty",)),
        ("2", ('b3: sampling state must be "1", "0" or "d", not "2"',)),
        ("true", ('b3: sampling state must be "1", "0" or "d", not "true"',)),
        (f"{T64}-{SPAN}-x", ('b3: sampling state must be "1", "0" or "d", not "x"',)),
        (f"{T64}-{SPAN}-1-{PARENT}-extra", ("b3: has 5 fields, at most 4 are allowed",)),
        (f"{T64}-{SPAN}-1-abc", ("b3: parent span id must be 16 hex digits, not 3",)),
        (f"{T64}-", ("b3: span id is empty",)),
        (f"{T64.upper()}-{SPAN}", ("b3: upper-case hex is not allowed",)),
        (f"{'0' * 32}-{SPAN}-1", ("b3: all-zero trace id is invalid",)),
        (f"{T64}-{'0' * 16}", ("b3: all-zero span id is invalid",)),
    ],
)
def test_single_violations(value: str, violations: tuple[str, ...]) -> None:
    assert single(value).violations == violations


def test_single_upper_case_keeps_the_id() -> None:
    c = single(f"{T128.upper()}-{SPAN}-1")
    assert c.trace_id == T128
    assert c.violations == ("b3: upper-case hex is not allowed",)


def test_single_bad_trace_id_length_drops_it_but_keeps_the_rest() -> None:
    c = single(f"{T64[:15]}-{SPAN}-1")
    assert c.trace_id is None
    assert c.span_id == SPAN
    assert c.sampled is True
    assert c.violations == ("b3: trace id must be 16 or 32 hex digits, not 15",)
