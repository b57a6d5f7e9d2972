"""analyzer.tracing.corroborate: a guessed value counts only when seen under a known name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.records import Header
from analyzer.tracing.corroborate import Corroboration

H = Header.of
RID = b"3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def guessed(name: bytes, value: bytes) -> Header:
    return Header(name, value, name, "entry #3 of the client's table", True)


def test_value_under_a_known_tracing_name_confirms() -> None:
    c = Corroboration()
    c.see([H(b"X-Request-Id", RID), H(b"traceparent", TP)])
    assert c.confirms(RID)
    assert c.confirms(TP)
    assert not c.confirms(b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203332-01")


def test_guessed_unknown_and_non_tracing_headers_never_confirm() -> None:
    c = Corroboration()
    c.see(
        [
            guessed(b"x-request-id", RID),  # a guess must not corroborate itself
            Header(None, TP, None, "entry #9 of the client's table"),
            Header(b"traceparent", None, b"traceparent", "entry #2 of the client's table"),
            H(b"x-api-key", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02"),
            H(b"baggage", b"k=v"),  # user data, not an id
        ]
    )
    assert len(c) == 0
    assert not c.confirms(RID)
    assert not c.confirms(TP)
    assert not c.confirms(b"k=v")


def test_envoy_trace_reason_and_case_and_ows_do_not_matter() -> None:
    c = Corroboration()
    c.see([H(b"x-request-id", b" " + RID.upper() + b"\t")])
    sampled = RID[:14] + b"9" + RID[15:]  # the sidecar rewrote character 14
    assert c.confirms(sampled)
    assert c.confirms(RID)
    assert not c.confirms(RID[:13] + b"9" + RID[14:])  # any other character still differs


def test_oldest_value_is_forgotten_beyond_the_limit_and_seeing_refreshes() -> None:
    c = Corroboration(limit=3)
    ids = [b"%016x" % n for n in range(1, 6)]
    for v in ids[:3]:
        c.see([H(b"x-b3-spanid", v)])
    c.see([H(b"x-b3-spanid", ids[0])])  # seen again: now the youngest
    c.see([H(b"x-b3-spanid", ids[3])])  # evicts ids[1], the least recently seen
    assert len(c) == 3
    assert [c.confirms(v) for v in ids] == [True, False, True, True, False]


def test_memory_does_not_grow_with_value_size_or_count() -> None:
    c = Corroboration(limit=1000)
    for n in range(5000):
        c.see([H(b"x-request-id", b"%d" % n + b"x" * 10_000)])
    assert len(c) == 1000
    assert c.confirms(b"4999" + b"x" * 10_000)
    assert not c.confirms(b"0" + b"x" * 10_000)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Corroboration(limit=0)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80) | st.text(" \tabcdefABCDEF0123456789-", max_size=70).map(str.encode))
def test_the_key_is_the_hash_of_the_normalised_value(value: bytes) -> None:
    from analyzer.tracing import corroborate

    v = value.strip(b" \t").lower()
    if len(v) == 36:
        v = v[:14] + b"*" + v[15:]
    assert corroborate._key(value) == hash(v)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=12), min_size=1, max_size=4), st.integers(1, 40))
def test_what_one_remembered_another_takes_as_if_seen_in_order(runs: list[list[int]], limit: int) -> None:
    """``add(other.keys())`` is ``other``'s values seen again in the order it remembers them:
    captures read apart and joined are the captures read one after the other whenever
    nothing was forgotten (``analysis.engine._known``), and it forgets as ``see`` does."""
    def values(run: list[int]) -> list[Header]:
        return [Header.of(b"x-request-id", b"id-%d" % v) for v in run]

    apart = []
    for run in runs:
        c = Corroboration(limit)
        c.see(values(run))
        apart.append(c)
    joined = Corroboration(limit)
    for c in apart:
        joined.add(c.keys())
    in_order = Corroboration(limit)
    for run in runs:
        in_order.see(values(run))
    if sum(len(c) for c in apart) <= limit:
        assert joined.keys() == in_order.keys()
    assert len(joined) <= limit
    # and one taken whole is the same one
    again = Corroboration(limit)
    again.add(in_order.keys())
    assert again.keys() == in_order.keys()
