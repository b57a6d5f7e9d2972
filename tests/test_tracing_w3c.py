"""W3C traceparent and tracestate, with the header strings of the W3C Trace Context test
suite (w3c/trace-context @ acab820be9db, test/test.py and tracecontext/*; see
tests/data/w3c-trace-context/SOURCE and LICENSE.md)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.records import Header
from analyzer.tracing import TraceContext, extract, w3c

H = Header.of
TID = "12345678901234567890123456789012"
PID = "1234567890123456"
VALID = f"00-{TID}-{PID}-01"


def contexts(*pairs: tuple[str, str]) -> tuple[TraceContext, ...]:
    return extract([H(n.encode(), v.encode("latin-1")) for n, v in pairs])


def traceparent(value: str) -> TraceContext:
    (context,) = contexts(("traceparent", value))
    assert context.format == "w3c"
    return context


def tracestate(*values: str) -> TraceContext:
    (context,) = contexts(*(("tracestate", v) for v in values))
    assert context.format == "tracestate"
    return context


# -- traceparent: valid -----------------------------------------------------------------


def test_traceparent_valid() -> None:
    c = traceparent(VALID)
    assert c.trace_id == TID
    assert c.span_id == PID
    assert c.parent_span_id is None
    assert c.sampled is True
    assert c.violations == ()
    assert c.raw == VALID
    assert c.headers == ("traceparent",)


@pytest.mark.parametrize("name", ["TraceParent", "TrAcEpArEnT", "TRACEPARENT"])
def test_traceparent_header_name_casing(name: str) -> None:
    (c,) = contexts((name, VALID))
    assert c.format == "w3c"
    assert c.trace_id == TID
    assert c.violations == ()


@pytest.mark.parametrize("name", ["trace-parent", "trace.parent"])
def test_traceparent_wrong_names_are_not_traceparent(name: str) -> None:
    assert contexts((name, VALID)) == ()


@pytest.mark.parametrize(
    ("flags", "sampled"), [("00", False), ("01", True), ("02", False), ("03", True), ("ff", True)]
)
def test_traceparent_flags(flags: str, sampled: bool) -> None:
    c = traceparent(f"00-{TID}-{PID}-{flags}")
    assert c.sampled is sampled
    assert c.violations == ()


@pytest.mark.parametrize(
    "value",
    [
        f" 00-{TID}-{PID}-01",
        f"\t00-{TID}-{PID}-01",
        f"00-{TID}-{PID}-01 ",
        f"00-{TID}-{PID}-01\t",
        f"\t 00-{TID}-{PID}-01 \t",
    ],
)
def test_traceparent_ows_is_allowed(value: str) -> None:
    c = traceparent(value)
    assert c.trace_id == TID
    assert c.violations == ()
    assert c.raw == value


@pytest.mark.parametrize(
    "value",
    [
        f"cc-{TID}-{PID}-01",
        f"cc-{TID}-{PID}-01-what-the-future-will-be-like",
        f"01-{TID}-{PID}-00",
        f"02-{TID}-{PID}-00",
    ],
)
def test_traceparent_future_versions_parse_the_first_four_fields(value: str) -> None:
    c = traceparent(value)
    assert c.trace_id == TID
    assert c.span_id == PID
    assert c.violations == ()


def test_traceparent_all_f_ids_are_valid() -> None:
    c = traceparent(f"00-{'f' * 32}-{'f' * 16}-00")
    assert (c.trace_id, c.span_id, c.sampled, c.violations) == ("f" * 32, "f" * 16, False, ())


# -- traceparent: invalid ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "violations"),
    [
        (f"ff-{TID}-{PID}-01", ("traceparent: version ff is invalid",)),
        (f".0-{TID}-{PID}-01", ("traceparent: version must be 2 lower-case hex digits",)),
        (f"0.-{TID}-{PID}-01", ("traceparent: version must be 2 lower-case hex digits",)),
        (f"000-{TID}-{PID}-01", ("traceparent: version must be 2 lower-case hex digits",)),
        (f"0000-{TID}-{PID}-01", ("traceparent: version must be 2 lower-case hex digits",)),
        (f"0-{TID}-{PID}-01", ("traceparent: version must be 2 lower-case hex digits",)),
        (
            f"00-{TID}-{PID}-01.",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
        (
            f"00-{TID}-{PID}-01-what-the-future-will-be-like",
            ("traceparent: version 00 allows nothing after the flags",),
        ),
        (
            f"cc-{TID}-{PID}-01.what-the-future-will-be-like",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
        (
            f"00-{TID}-{PID}-.0",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
        (
            f"00-{TID}-{PID}-0.",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
        (
            f"00-{TID}-{PID}-001",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
        (
            f"00-{TID}-{PID}-1",
            ("traceparent: trace-flags must be 2 lower-case hex digits",),
        ),
    ],
)
def test_traceparent_bad_version_or_flags(value: str, violations: tuple[str, ...]) -> None:
    c = traceparent(value)
    assert c.violations == violations
    assert c.trace_id == TID  # the id field itself is well formed: kept for correlation


@pytest.mark.parametrize(
    ("value", "violation"),
    [
        (f"00-{'0' * 32}-{PID}-01", "traceparent: all-zero trace-id is invalid"),
        (
            f"00-.2345678901234567890123456789012-{PID}-01",
            "traceparent: trace-id must be hex digits",
        ),
        (
            f"00-1234567890123456789012345678901.-{PID}-01",
            "traceparent: trace-id must be hex digits",
        ),
        (
            f"00-123456789012345678901234567890123-{PID}-01",
            "traceparent: trace-id must be 32 hex digits, not 33",
        ),
        (
            f"00-1234567890123456789012345678901-{PID}-01",
            "traceparent: trace-id must be 32 hex digits, not 31",
        ),
    ],
)
def test_traceparent_bad_trace_id(value: str, violation: str) -> None:
    c = traceparent(value)
    assert c.trace_id is None
    assert c.span_id == PID
    assert c.violations == (violation,)


@pytest.mark.parametrize(
    ("value", "violation"),
    [
        (f"00-{TID}-0000000000000000-01", "traceparent: all-zero parent-id is invalid"),
        (f"00-{TID}-.234567890123456-01", "traceparent: parent-id must be hex digits"),
        (f"00-{TID}-123456789012345.-01", "traceparent: parent-id must be hex digits"),
        (
            f"00-{TID}-12345678901234567-01",
            "traceparent: parent-id must be 16 hex digits, not 17",
        ),
        (
            f"00-{TID}-123456789012345-01",
            "traceparent: parent-id must be 16 hex digits, not 15",
        ),
    ],
)
def test_traceparent_bad_parent_id(value: str, violation: str) -> None:
    c = traceparent(value)
    assert c.trace_id == TID
    assert c.span_id is None
    assert c.violations == (violation,)


def test_traceparent_upper_case_is_invalid_but_understood() -> None:
    c = traceparent(f"00-{'ABCDEF' * 5}AB-{PID}-0A")
    assert c.trace_id == ("abcdef" * 5) + "ab"
    assert c.sampled is False
    assert c.violations == ("traceparent: upper-case hex is not allowed",)


def test_traceparent_too_few_fields() -> None:
    c = traceparent(f"00-{TID}-{PID}")
    assert (c.trace_id, c.span_id, c.sampled) == (None, None, None)
    assert c.violations == ("traceparent: must be version-traceid-parentid-flags",)
    assert traceparent("").violations == ("traceparent: must be version-traceid-parentid-flags",)


def test_traceparent_duplicated() -> None:
    (c,) = contexts(
        ("traceparent", "00-12345678901234567890123456789011-1234567890123456-01"),
        ("traceparent", "00-12345678901234567890123456789012-1234567890123456-01"),
    )
    assert c.headers == ("traceparent", "traceparent")
    assert c.raw == (
        "traceparent=00-12345678901234567890123456789011-1234567890123456-01; "
        "traceparent=00-12345678901234567890123456789012-1234567890123456-01"
    )
    assert c.violations == ("traceparent: sent 2 times, only one is allowed",)
    assert c.trace_id == "12345678901234567890123456789011"


# -- tracestate -------------------------------------------------------------------------


def test_tracestate_is_its_own_context_without_trace_id() -> None:
    tp, ts = contexts(("traceparent", VALID), ("tracestate", "foo=1,bar=2"))
    assert tp.format == "w3c"
    assert ts.format == "tracestate"
    assert ts.trace_id is None and ts.span_id is None and ts.sampled is None
    assert ts.raw == "foo=1,bar=2"
    assert ts.violations == ()


@pytest.mark.parametrize("name", ["TraceState", "TrAcEsTaTe", "TRACESTATE"])
def test_tracestate_header_name_casing(name: str) -> None:
    (c,) = contexts((name, "foo=1"))
    assert c.format == "tracestate"
    assert c.headers == ("tracestate",)


@pytest.mark.parametrize("name", ["trace-state", "trace.state"])
def test_tracestate_wrong_names(name: str) -> None:
    assert contexts((name, "foo=1")) == ()


# Every tracestate case of the W3C Trace Context test suite (test/test.py), plus the
# reference parser's own (tracecontext/test_tracestate.py). tests/test_verdict_rules.py
# judges propagation with the same strings.
TRACESTATE_VALID: list[tuple[str, ...]] = [
    ("foo=1",),
    ("foo=1,bar=2",),
    ("foo=1,bar=2", "rojo=1,congo=2", "baz=3"),
    ("",),
    ("foo=1", ""),
    ("", "foo=1"),
    ("foo=1 \t , \t bar=2, \t baz=3",),
    ("foo=1\t \t,\t \tbar=2,\t \tbaz=3",),
    (" foo=1",),
    ("\tfoo=1",),
    ("foo=1 ",),
    ("foo=1\t",),
    ("\t foo=1 \t",),
    ("foo=1, \t bar=2",),
    ("foo@=1,bar=2",),
    ("foo@@bar=1,bar=2",),
    ("foo@bar@baz=1,bar=2",),
    ("foo=1", "z" * 256 + "=1"),
    ("foo=1", "t" * 241 + "@" + "v" * 14 + "=1"),
    ("foo=1", "t" * 242 + "@v=1"),
    ("foo=1", "t@" + "v" * 15 + "=1"),
    ("special@vendor=abracadabra,1special=abracadabra",),
    ("foo=" + "x" * 256,),
]


@pytest.mark.parametrize("values", TRACESTATE_VALID)
def test_tracestate_valid(values: tuple[str, ...]) -> None:
    c = tracestate(*values)
    assert c.violations == ()
    assert c.headers == ("tracestate",) * len(values)


def test_tracestate_all_allowed_characters() -> None:
    key = "".join(map(chr, range(0x61, 0x7B))) + "0123456789_-*/"
    value = (
        "".join(map(chr, range(0x20, 0x2C)))
        + "".join(map(chr, range(0x2D, 0x3D)))
        + "".join(map(chr, range(0x3E, 0x7F)))
    )
    assert tracestate(key + "=" + value).violations == ()
    assert tracestate(key + "@a-z0-9_-*/=" + value).violations == ()


def test_tracestate_32_members_are_allowed_33_are_not() -> None:
    base = (
        "bar01=01,bar02=02,bar03=03,bar04=04,bar05=05,bar06=06,bar07=07,bar08=08,bar09=09,bar10=10",
        "bar11=11,bar12=12,bar13=13,bar14=14,bar15=15,bar16=16,bar17=17,bar18=18,bar19=19,bar20=20",
        "bar21=21,bar22=22,bar23=23,bar24=24,bar25=25,bar26=26,bar27=27,bar28=28,bar29=29,bar30=30",
    )
    assert tracestate(*base, "bar31=31,bar32=32").violations == ()
    assert tracestate(*base, "bar31=31,bar32=32,bar33=33").violations == (
        "tracestate: 33 list-members, at most 32 allowed",
    )


TRACESTATE_INVALID: list[tuple[tuple[str, ...], str]] = [
    (("foo =1",), 'tracestate: key "foo " is not a valid key'),
    (("FOO=1",), 'tracestate: key "FOO" is not a valid key'),
    (("foo.bar=1",), 'tracestate: key "foo.bar" is not a valid key'),
    (("@foo=1,bar=2",), 'tracestate: key "@foo" is not a valid key'),
    (("foo=1", "z" * 257 + "=1"), f'tracestate: key "{"z" * 40}..." is not a valid key'),
    (
        ("foo=bar=baz",),
        'tracestate: value of "foo" must be 1-256 printable ASCII characters'
        " without ',' or '=', not ending in a space",
    ),
    (("foo=,bar=3",), 'tracestate: value of "foo" is empty'),
    (("foobarbaz",), "tracestate: list-member \"foobarbaz\" has no '='"),
    (("foo=1,foo=1",), 'tracestate: key "foo" appears more than once'),
    (("foo=1,foo=2",), 'tracestate: key "foo" appears more than once'),
    (("foo=1", "foo=1"), 'tracestate: key "foo" appears more than once'),
    (("foo=1", "foo=2"), 'tracestate: key "foo" appears more than once'),
    (
        ("foo=" + "x" * 257,),
        'tracestate: value of "foo" must be 1-256 printable ASCII characters'
        " without ',' or '=', not ending in a space",
    ),
]


@pytest.mark.parametrize(("values", "violation"), TRACESTATE_INVALID)
def test_tracestate_invalid(values: tuple[str, ...], violation: str) -> None:
    assert tracestate(*values).violations == (violation,)


def test_tracestate_without_traceparent_is_still_reported() -> None:
    (c,) = contexts(("tracestate", "foo=1"))
    assert c.format == "tracestate"
    assert c.violations == ()


# -- the canonical traceparent read by position -------------------------------------------

_HEXISH = st.sampled_from(list("0123456789abcdefABCDEF-x 0"))


@settings(max_examples=400, deadline=None)
@given(version=st.text(_HEXISH, min_size=0, max_size=3), tid=st.text(_HEXISH, min_size=30, max_size=33),
       pid=st.text(_HEXISH, min_size=15, max_size=17), flags=st.text(_HEXISH, min_size=1, max_size=3),
       zeros=st.sampled_from(["", "tid", "pid"]))
def test_the_fast_read_of_a_traceparent_gives_the_general_parsers_context(
        version: str, tid: str, pid: str, flags: str, zeros: str) -> None:
    # mostly near-canonical values: the fast read must take exactly the valid ones
    if zeros == "tid":
        tid = "0" * 32
    elif zeros == "pid":
        pid = "0" * 16
    for value in (f"{version}-{tid}-{pid}-{flags}", f"00-{tid}-{pid}-{flags}", f"00-{TID}-{pid}-01",
                  f"00-{tid}-{PID}-{flags}"):
        fields = [("traceparent", value.encode("latin-1"))]
        assert w3c.parse_traceparent(fields) == w3c._parse_traceparent(fields), value


def test_the_fast_read_takes_canonical_values_only() -> None:
    value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    fields = [("traceparent", value.encode())]
    assert w3c._canonical(fields) == w3c._parse_traceparent(fields)
    for other in (value.upper(), " " + value, value + "-00", value[:3] + "0" * 32 + value[35:],
                  value[:36] + "0" * 16 + value[52:], "01" + value[2:]):
        assert w3c._canonical([("traceparent", other.encode())]) is None, other
    assert w3c._canonical(fields * 2) is None  # sent twice: a violation
