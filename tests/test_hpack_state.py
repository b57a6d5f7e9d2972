"""protocols/hpack_state: the golden corpus from the start and from the middle, unknown
identities, eviction certainty, desync, guesses, and robustness on arbitrary bytes."""

from __future__ import annotations

import json
import random
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hpack import Encoder, HPACKDecodingError
from hpack.hpack import decode_integer, encode_integer
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.protocols.hpack_state import HPACKDecoder, guess_name, huffman_decode
from analyzer.records import Header

DATA = Path(__file__).parent / "data" / "hpack-test-case"
# The whole corpus (three implementations, every story), packed: tar of the JSON files, xz.
FULL = DATA / "corpus.tar.xz"
IMPLS = ("nghttp2", "go-hpack", "python-hpack")

Block = tuple[bytes, int | None, list[tuple[bytes, bytes]]]  # wire, header_table_size, headers


def load(path: Path) -> list[Block]:
    cases = json.loads(path.read_text())["cases"]
    return [
        (
            bytes.fromhex(c["wire"]),
            c.get("header_table_size"),
            [(k.encode(), v.encode()) for h in c["headers"] for k, v in h.items()],
        )
        for c in cases
    ]


def stories(root: Path) -> list[Path]:
    return sorted(p for impl in IMPLS for p in (root / impl).glob("story_*.json"))


SUBSET = stories(DATA)


def ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" for p in paths]


# -- a truth decoder with provenance ------------------------------------------------------


@dataclass
class Truth:
    """One header as a decoder with the whole story sees it, and where each part came from:
    ``name_src``/``value_src`` is the serial of the pre-K table entry it was copied from,
    or None when it is knowable from block K on."""

    name: bytes
    value: bytes
    name_src: int | None
    value_src: int | None


@dataclass
class Entry:
    name: bytes
    value: bytes
    name_src: int | None
    value_src: int | None
    size: int


class TruthDecoder:
    """RFC 7541 straight from hpack's primitives, with the provenance of every part."""

    def __init__(self) -> None:
        self.table: list[Entry] = []  # newest first
        self.size_max = 4096
        self.serial = 0

    def evict(self) -> None:
        while sum(e.size for e in self.table) > self.size_max:
            self.table.pop()

    def capture_starts(self) -> None:
        """Everything in the table from now on is older than the capture."""
        for e in self.table:
            self.serial += 1
            e.name_src = e.value_src = self.serial

    def integer(self, wire: bytes, i: int, prefix: int) -> tuple[int, int]:
        v, used = decode_integer(memoryview(wire)[i:], prefix)
        return v, i + used

    def string(self, wire: bytes, i: int) -> tuple[bytes, int]:
        n, j = self.integer(wire, i, 7)
        raw = wire[j:j + n]
        return (decode_huffman(raw) if wire[i] & 0x80 else raw), j + n

    def entry(self, idx: int) -> Truth:
        static = HeaderTable.STATIC_TABLE
        if idx <= len(static):
            n, v = static[idx - 1]
            return Truth(n, v, None, None)
        e = self.table[idx - len(static) - 1]
        return Truth(e.name, e.value, e.name_src, e.value_src)

    def decode(self, wire: bytes) -> list[Truth]:
        heads: list[Truth] = []
        i = 0
        while i < len(wire):
            b = wire[i]
            if b & 0x80:
                idx, i = self.integer(wire, i, 7)
                heads.append(self.entry(idx))
            elif b & 0x40 or not b & 0x20:
                idx, i = self.integer(wire, i, 6 if b & 0x40 else 4)
                if idx:
                    src = self.entry(idx)
                    name, name_src = src.name, src.name_src
                else:
                    name, i = self.string(wire, i)
                    name_src = None
                value, i = self.string(wire, i)
                heads.append(Truth(name, value, name_src, None))
                if b & 0x40:
                    size = 32 + len(name) + len(value)
                    if size > self.size_max:
                        self.table.clear()
                    else:
                        self.table.insert(0, Entry(name, value, name_src, None, size))
                        self.evict()
            else:
                self.size_max, i = self.integer(wire, i, 5)
                self.evict()
        return heads


def truth_from(blocks: list[Block], k: int) -> list[list[Truth]]:
    """Decode every block with full knowledge; report blocks >= k with provenance."""
    dec = TruthDecoder()
    out: list[list[Truth]] = []
    for bi, (wire, hts, _) in enumerate(blocks):
        if hts is not None:
            dec.size_max = hts
            dec.evict()
        if bi == k:
            dec.capture_starts()
        heads = dec.decode(wire)
        if bi >= k:
            out.append(heads)
    return out


class PlaceholderDecoder:
    """The simple way: entries inserted since the start are known, everything beyond them
    is an unknown placeholder; no sizes, no identities, no partial knowledge kept."""

    def __init__(self) -> None:
        self.table: list[tuple[bytes | None, bytes | None]] = []

    def decode(self, wire: bytes) -> list[tuple[bytes | None, bytes | None]]:
        static = HeaderTable.STATIC_TABLE
        mv = memoryview(wire)
        out: list[tuple[bytes | None, bytes | None]] = []
        i = 0

        def get(idx: int) -> tuple[bytes | None, bytes | None]:
            if idx <= len(static):
                return static[idx - 1]
            d = idx - len(static) - 1
            return self.table[d] if d < len(self.table) else (None, None)

        def string(i: int) -> tuple[bytes, int]:
            n, used = decode_integer(mv[i:], 7)
            raw = wire[i + used:i + used + n]
            return (decode_huffman(raw) if wire[i] & 0x80 else raw), i + used + n

        while i < len(wire):
            b = wire[i]
            if b & 0x80:
                idx, used = decode_integer(mv[i:], 7)
                i += used
                out.append(get(idx))
            elif b & 0x40 or not b & 0x20:
                idx, used = decode_integer(mv[i:], 6 if b & 0x40 else 4)
                i += used
                name: bytes | None
                if idx:
                    name = get(idx)[0]
                else:
                    name, i = string(i)
                value, i = string(i)
                out.append((name, value))
                if b & 0x40:
                    self.table.insert(0, (name, value) if name is not None else (None, None))
            else:
                _, used = decode_integer(mv[i:], 5)
                i += used
        return out


# -- from the start -------------------------------------------------------------------------


def decode_story(blocks: list[Block], dec: HPACKDecoder) -> list[tuple[tuple[Header, ...], list[str]]]:
    res = []
    for wire, hts, _ in blocks:
        if hts is not None:
            dec.set_max_table_size(hts)
        res.append(dec.decode(wire))
    return res


def check_synced(path: Path) -> None:
    blocks = load(path)
    dec = HPACKDecoder("client", synced=True)
    for (headers, anomalies), (_, _, expected) in zip(decode_story(blocks, dec), blocks, strict=True):
        assert anomalies == []
        assert [(h.name, h.value) for h in headers] == expected
        assert all(h.unknown is None and not h.guessed and h.lname == h.name for h in headers)
    assert dec.synced


@pytest.mark.parametrize("path", SUBSET, ids=ids(SUBSET))
def test_corpus_from_start(path: Path) -> None:
    check_synced(path)


def test_subset_present() -> None:
    assert len(SUBSET) == 16
    assert (DATA / "LICENSE").exists() and (DATA / "SOURCE").exists()


# -- from the middle ------------------------------------------------------------------------


@dataclass
class Stats:
    headers: int = 0
    known: int = 0
    partial: int = 0
    unknown: int = 0
    placeholder_known: int = 0
    guesses_right: int = 0
    guesses_wrong: int = 0


def check_mid(blocks: list[Block], k: int, stats: Stats, dec: HPACKDecoder | None = None) -> None:
    """Start an unsynced decoder at block k and hold every statement it makes to the truth
    (``dec``: one that has decoded other blocks, then lost the thread)."""
    truth = truth_from(blocks, k)
    if dec is None:
        dec = HPACKDecoder("client", synced=False)
    simple = PlaceholderDecoder()
    label_of: dict[int, str] = {}  # pre-capture entry serial -> its identity
    serial_of: dict[str, int] = {}
    for (wire, hts, expected), tr in zip(blocks[k:], truth, strict=True):
        if hts is not None:
            dec.set_max_table_size(hts)
        headers, anomalies = dec.decode(wire)
        assert anomalies == []
        assert len(headers) == len(tr) == len(expected)
        known_here = 0
        for h, t, (name, value) in zip(headers, tr, expected, strict=True):
            assert (t.name, t.value) == (name, value)
            stats.headers += 1
            # Values: known exactly when knowable, and then right.
            assert (h.value is None) == (t.value_src is not None)
            if h.value is not None:
                assert h.value == value
            # Names: known (not guessed) exactly when knowable, and then right.
            assert (h.name is None or h.guessed) == (t.name_src is not None)
            if h.guessed:
                assert h.value is not None and h.unknown is not None
                if h.name == name:
                    stats.guesses_right += 1
                else:
                    stats.guesses_wrong += 1
            elif h.name is not None:
                assert h.name == name and h.lname == name.lower()
            # Unknowns name their entry, and one entry always gets one identity.
            src = t.value_src if t.value_src is not None else t.name_src
            if src is None:
                assert h.unknown is None
                known_here += 1
                continue
            assert h.unknown is not None
            label = h.unknown.removeprefix("name of ")
            assert h.unknown.startswith("name of ") == (t.value_src is None)
            assert label_of.setdefault(src, label) == label
            assert serial_of.setdefault(label, src) == src
            if h.value is None:
                stats.unknown += 1
            else:
                stats.partial += 1
        stats.known += known_here
        simple_known = sum(n is not None and v is not None for n, v in simple.decode(wire))
        assert known_here >= simple_known
        stats.placeholder_known += simple_known


def starts(n: int) -> list[int]:
    return sorted({k for k in (1, 2, 3, 5, n // 2, n - 1) if 0 < k < n})


@pytest.mark.parametrize("path", SUBSET, ids=ids(SUBSET))
def test_corpus_mid_connection(path: Path) -> None:
    blocks = load(path)
    stats = Stats()
    for k in starts(len(blocks)):
        check_mid(blocks, k, stats)
    assert stats.guesses_wrong == 0


def test_corpus_mid_connection_totals() -> None:
    stats = Stats()
    for path in SUBSET:
        blocks = load(path)
        for k in starts(len(blocks)):
            check_mid(blocks, k, stats)
    # The stories refer back to older entries, and partial knowledge is kept.
    assert stats.unknown > 100 and stats.partial > 10
    assert stats.known >= stats.placeholder_known


@pytest.mark.slow
def test_full_corpus(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with tarfile.open(FULL) as tar:
        tar.extractall(tmp_path, filter="data")
    stats = Stats()
    full = stories(tmp_path)
    assert len(full) == 96
    for path in full:
        check_synced(path)
        blocks = load(path)
        for k in starts(len(blocks)):
            check_mid(blocks, k, stats)
    with capsys.disabled():
        print(f"\nhpack mid-connection over the full corpus: {stats}")
    assert stats.known >= stats.placeholder_known
    assert stats.guesses_wrong == 0


# -- identities, eviction, size updates, desync ---------------------------------------------


def lit_inc_new(name: bytes, value: bytes) -> bytes:
    return b"\x40" + bytes(encode_integer(len(name), 7)) + name + bytes(encode_integer(len(value), 7)) + value


def lit_inc_name(idx: int, value: bytes) -> bytes:
    first = encode_integer(idx, 6)
    first[0] |= 0x40
    return bytes(first) + bytes(encode_integer(len(value), 7)) + value


def lit_plain_name(idx: int, value: bytes) -> bytes:
    return bytes(encode_integer(idx, 4)) + bytes(encode_integer(len(value), 7)) + value


def indexed(idx: int) -> bytes:
    first = encode_integer(idx, 7)
    first[0] |= 0x80
    return bytes(first)


def size_update(n: int) -> bytes:
    first = encode_integer(n, 5)
    first[0] |= 0x20
    return bytes(first)


def test_same_unknown_entry_keeps_its_identity() -> None:
    dec = HPACKDecoder("client", synced=False)
    (h,), _ = dec.decode(indexed(62 + 6))  # the 7th newest entry at capture start
    assert h == Header(None, None, None, "entry #7 of the client's table")
    dec.decode(lit_inc_new(b"a", b"1") + lit_inc_new(b"b", b"2"))
    (h2,), _ = dec.decode(indexed(62 + 8))
    dec.decode(lit_inc_new(b"c", b"3"))
    (h3, known), an = dec.decode(indexed(62 + 9) + indexed(62))
    assert h2 == h3 == h
    assert known == Header.of(b"c", b"3") and an == []


def test_literal_with_unknown_name_and_partial_entries() -> None:
    dec = HPACKDecoder("server", synced=False)
    (h,), _ = dec.decode(lit_inc_name(62 + 2, b"v1"))
    assert h == Header(None, b"v1", None, "name of entry #3 of the server's table")
    # The partially known entry it inserted is now index 62, and #3 has moved to 62 + 3.
    (a, b, c), an = dec.decode(indexed(62) + lit_plain_name(62 + 3, b"v2") + indexed(62 + 3))
    assert a == h
    assert b == Header(None, b"v2", None, "name of entry #3 of the server's table")
    assert c == Header(None, None, None, "entry #3 of the server's table")
    assert an == [] and not dec.synced


def test_size_update_zero_synchronises() -> None:
    dec = HPACKDecoder("client", synced=False)
    assert not dec.synced
    dec.decode(size_update(0) + size_update(4096) + lit_inc_new(b"x-a", b"1"))
    assert dec.synced
    (h,), an = dec.decode(indexed(62))
    assert h == Header.of(b"x-a", b"1") and an == []
    (h,), an = dec.decode(indexed(63))
    assert h.value is None and h.unknown == "index 63 beyond the client's table"
    assert an and "beyond" in an[0]


def test_eviction_makes_old_entries_certainly_gone() -> None:
    dec = HPACKDecoder("client", synced=False, max_table_size=256)
    # 256 bytes hold at most 8 entries of unknown content.
    _, an = dec.decode(indexed(62 + 7))
    assert an == []
    _, an = dec.decode(indexed(62 + 8))
    assert an and "cannot still be" in an[0]
    # Two known entries of 100 bytes leave room for one unknown at most: #1 may remain, #2 not.
    dec.decode(lit_inc_new(b"n", b"v" * 67) + lit_inc_new(b"m", b"w" * 67))
    (h,), an = dec.decode(indexed(62 + 2))
    assert h.unknown == "entry #1 of the client's table" and an == []
    (h,), an = dec.decode(indexed(62 + 3))
    assert h.unknown == "entry #2 of the client's table" and an
    # A third one evicts the first known entry, certainly.
    dec.decode(lit_inc_new(b"o", b"x" * 67))
    (h, old), an = dec.decode(indexed(62 + 1) + indexed(62 + 2))
    assert h == Header.of(b"m", b"w" * 67)
    assert old.value is None and an and "evicted" in an[0]
    assert dec.synced


def test_settings_decrease_evicts() -> None:
    dec = HPACKDecoder("client", synced=True)
    dec.decode(lit_inc_new(b"a", b"x" * 100) + lit_inc_new(b"b", b"y" * 100))
    dec.set_max_table_size(140)
    (b, a), an = dec.decode(size_update(140) + indexed(62) + indexed(63))
    assert b == Header.of(b"b", b"y" * 100)
    assert a.value is None and an
    assert dec.max_table_size == 140


def test_entry_larger_than_table_empties_it() -> None:
    dec = HPACKDecoder("client", synced=False, max_table_size=100)
    (h,), _ = dec.decode(lit_inc_new(b"big", b"z" * 100))
    assert h == Header.of(b"big", b"z" * 100)
    assert dec.synced
    (h,), an = dec.decode(indexed(62))
    assert h.value is None and an


def test_desync_renames_everything() -> None:
    dec = HPACKDecoder("client", synced=True)
    dec.decode(lit_inc_new(b"a", b"1"))
    dec.desync()
    dec.desync()  # nothing decoded in between: the same generation
    assert dec.generation == 1
    (h, g), _ = dec.decode(indexed(62) + lit_inc_name(62, b"2"))
    assert h == Header(None, None, None, "entry #1 of the client's table (resync 1)")
    assert g.unknown == "name of entry #1 of the client's table (resync 1)"


def test_bad_blocks_never_raise() -> None:
    for block in (b"\x80", b"\x41", b"\x40\x05ab", b"\x00\x81\xff\x01a", b"\xff\xff\xff\xff\xff\xff\xff\x01",
                  indexed(5) + b"\x3f\xff\xff\xff\xff\xff\xff\x01"):
        dec = HPACKDecoder("client", synced=True)
        dec.decode(lit_inc_new(b"a", b"1"))
        headers, an = dec.decode(block)
        assert an
        assert all(h.name is not None or h.unknown for h in headers)
    dec = HPACKDecoder("client", synced=True)
    (h,), an = dec.decode(indexed(2) + indexed(0))
    assert h == Header.of(b":method", b"GET") and "index 0" in an[0]
    assert dec.generation == 1


def test_size_update_after_field_and_over_limit() -> None:
    dec = HPACKDecoder("client", synced=True)
    _, an = dec.decode(indexed(2) + size_update(100))
    assert an == ["dynamic table size update after a header field"]
    _, an = dec.decode(size_update(10_000))
    assert an and "exceeds" in an[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=6), st.booleans())
def test_random_blocks_never_raise(blocks: list[bytes], synced: bool) -> None:
    dec = HPACKDecoder("server", synced=synced, max_table_size=512)
    for block in blocks:
        headers, anomalies = dec.decode(block)
        assert isinstance(anomalies, list)
        for h in headers:
            assert (h.name is None) == (h.lname is None) or h.guessed
            assert (h.name is not None and h.value is not None) or h.unknown is not None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_huffman_matches_hpack(raw: bytes) -> None:
    encoded = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(raw)
    assert huffman_decode(encoded) == decode_huffman(encoded) == raw
    # Arbitrary bytes: both accept or both refuse, and agree when they accept.
    try:
        expected: bytes | None = decode_huffman(raw)
    except HPACKDecodingError:
        expected = None
    try:
        got: bytes | None = huffman_decode(raw)
    except ValueError:
        got = None
    assert got == expected


# -- guesses ----------------------------------------------------------------------------------

TP = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
RID = b"6c3a6b2e-94d4-4c2f-9b3e-1f2a3b4c5d6e"


@pytest.mark.parametrize(
    ("value", "known", "guess"),
    [
        (TP, set(), b"traceparent"),
        (TP, {b"traceparent"}, None),
        (TP.upper(), set(), None),
        (b"01-" + TP[3:], set(), None),
        (RID, set(), b"x-request-id"),
        (RID.upper(), set(), None),
        (b"0af7651916cd43dd8448eb211c80319c", set(), None),
        (b"0af7651916cd43dd8448eb211c80319c", {b"x-b3-spanid"}, b"x-b3-traceid"),
        (b"0af7651916cd43dd8448eb211c80319c", {b"x-b3-sampled"}, b"x-b3-traceid"),
        (b"b7ad6b7169203331", set(), None),
        (b"b7ad6b7169203331", {b"x-b3-spanid"}, None),
        (b"b7ad6b7169203331", {b"x-b3-traceid", b"x-b3-spanid"}, b"x-b3-parentspanid"),
        (b"b7ad6b7169203331", {b"x-b3-traceid", b"x-b3-parentspanid"}, b"x-b3-spanid"),
        (b"b7ad6b7169203331", {b"x-b3-traceid", b"x-b3-spanid", b"x-b3-parentspanid"}, None),
        (b"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1", set(), b"b3"),
        (b"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1-05e3ac9a4f6e3b90", set(), b"b3"),
        (b"5af7183fb1d4cf5f:6fc0a7e5c1d3b09f:0:1", set(), b"uber-trace-id"),
        (b"105445aa7843bc8bf206b12000100000/1;o=1", set(), b"x-cloud-trace-context"),
        (b"1", {b"x-b3-traceid"}, None),
        (b"", set(), None),
    ],
)
def test_guess_name(value: bytes, known: set[bytes], guess: bytes | None) -> None:
    assert guess_name(value, known) == guess


def guess_in_order(value: bytes, known: set[bytes]) -> bytes | None:
    """guess_name's rule written plainly: every shape tried in order, the first that
    matches decides (guess_name dispatches on the length first, for speed)."""
    from analyzer.protocols import hpack_state as hs

    n = len(value)
    guess: bytes | None = None
    if n == 55 and hs._TRACEPARENT.fullmatch(value):
        guess = b"traceparent"
    elif n == 36 and hs._UUID.fullmatch(value):
        guess = b"x-request-id"
    elif n >= 35 and hs._B3_SINGLE.fullmatch(value):
        guess = b"b3"
    elif n >= 7 and b":" in value and hs._UBER.fullmatch(value):
        guess = b"uber-trace-id"
    elif n >= 34 and b"/" in value and hs._CLOUD.fullmatch(value):
        guess = b"x-cloud-trace-context"
    elif 38 <= n <= 40 and hs._is_trace_bin(value):
        guess = b"grpc-trace-bin"
    elif n == 32 and re.fullmatch(rb"[0-9a-f]{32}", value):
        if b"x-b3-spanid" in known or b"x-b3-sampled" in known:
            guess = b"x-b3-traceid"
    elif n == 16 and re.fullmatch(rb"[0-9a-f]{16}", value):
        missing = [m for m in (b"x-b3-traceid", b"x-b3-spanid", b"x-b3-parentspanid") if m not in known]
        if len(missing) == 1:
            guess = missing[0]
    return None if guess is None or guess in known else guess


# values near every shape: hex ids of the lengths that matter, with colons, slashes, dashes
_SHAPED = st.text("0123456789abcdefABC:/-;o=", min_size=0, max_size=60).map(str.encode)
_KNOWN = st.sets(st.sampled_from([b"x-b3-traceid", b"x-b3-spanid", b"x-b3-parentspanid",
                                  b"x-b3-sampled", b"traceparent", b"x-request-id", b"b3",
                                  b"uber-trace-id", b"x-cloud-trace-context", b"grpc-trace-bin"]))


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        _SHAPED,
        st.sampled_from([16, 32, 36, 55]).flatmap(
            lambda n: st.text("0123456789abcdef-:", min_size=n, max_size=n).map(str.encode)),
        st.binary(max_size=64),
    ),
    _KNOWN,
)
def test_guess_name_is_the_rule_in_order(value: bytes, known: set[bytes]) -> None:
    assert guess_name(value, known) == guess_in_order(value, known)


def test_guess_name_is_the_rule_in_order_on_every_shape() -> None:
    ids = [b"0af7651916cd43dd", b"0af7651916cd43dd8448eb211c80319c", TP, RID,
           b"0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1", b"5af7:6fc0:0:1",
           b"105445aa7843bc8bf206b12000100000/1;o=1", b"AAABAgMEBQYHCAkKCwwNDg8QAQABAgMEBQYHAgE"]
    for value in ids:
        for known in ({b"x-b3-spanid"}, {b"x-b3-traceid", b"x-b3-spanid"}, set()):
            assert guess_name(value, known) == guess_in_order(value, known)
    assert guess_name(b"AAABAgMEBQYHCAkKCwwNDg8QAQABAgMEBQYHAgE", set()) == b"grpc-trace-bin"


def envoy_story(n: int, seed: int) -> list[Block]:
    """Requests as an Envoy sidecar sends them upstream, encoded by the hpack package."""
    rng = random.Random(seed)
    enc = Encoder()
    blocks: list[Block] = []
    for i in range(n):
        hx = "".join(rng.choice("0123456789abcdef") for _ in range(64))
        rid = f"{hx[:8]}-{hx[8:12]}-4{hx[13:16]}-9{hx[17:20]}-{hx[20:32]}"
        hs = [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/pkg.Svc/Call%d" % (i % 3)),
            (b":authority", b"reviews:9080"), (b"content-type", b"application/grpc"), (b"te", b"trailers"),
            (b"x-request-id", rid.encode()),
            (b"traceparent", f"00-{hx[:32]}-{hx[32:48]}-01".encode()),
            (b"x-b3-traceid", hx[:32].encode()), (b"x-b3-spanid", hx[32:48].encode()),
            (b"x-b3-parentspanid", hx[48:64].encode()), (b"x-b3-sampled", b"1"),
            (b"x-envoy-attempt-count", b"1"),
        ]
        if i % 4 == 0:
            hs.append((b"x-correlation-id", rid[::-1].encode()))
        blocks.append((enc.encode(hs), None, hs))
    return blocks


def test_guesses_on_envoy_requests(capsys: pytest.CaptureFixture[str]) -> None:
    stats = Stats()
    for seed in range(3):
        blocks = envoy_story(40, seed)
        check_synced_blocks(blocks)
        for k in (1, 5, 20):
            check_mid(blocks, k, stats)
    with capsys.disabled():
        print(f"\nhpack guesses on Envoy-like requests started mid-connection: {stats}")
    assert stats.guesses_right > 0
    assert stats.guesses_wrong == 0


def check_synced_blocks(blocks: list[Block]) -> None:
    dec = HPACKDecoder("client", synced=True)
    for (headers, an), (_, _, expected) in zip(decode_story(blocks, dec), blocks, strict=True):
        assert an == [] and [(h.name, h.value) for h in headers] == expected


def test_guess_grpc_trace_bin_from_its_shape() -> None:
    import base64

    ctx = bytes([0, 0]) + bytes(range(1, 17)) + bytes([1]) + bytes(range(8)) + bytes([2, 1])
    value = base64.b64encode(ctx).rstrip(b"=")
    assert guess_name(value, set()) == b"grpc-trace-bin"
    assert guess_name(base64.b64encode(ctx), set()) == b"grpc-trace-bin"
    assert guess_name(base64.b64encode(b"\x01" + ctx[1:]), set()) is None  # not version 0
    assert guess_name(b"not base64 at all, but 38 bytes long!!", set()) is None


# -- tracewire's own bounds: table bytes, decoded header list ------------------------------


def test_table_bytes_are_bounded_and_what_is_dropped_stays_unknown() -> None:
    """A peer may allow a table of 4 GiB; tracewire keeps MAX_TABLE_BYTES of it. An entry
    dropped for that bound is unknown with a stable identity, never "evicted"."""
    from analyzer.protocols import hpack_state

    dec = HPACKDecoder("client", synced=True, max_table_size=1 << 32)
    value = b"v" * 1000
    n = hpack_state.MAX_TABLE_BYTES // 1000 + 20
    for k in range(n):
        dec.decode(lit_inc_new(b"x-%05d" % k, value))
    kept = sum(lo for _, lo in dec._entries)
    assert kept <= hpack_state.MAX_TABLE_BYTES
    (newest, oldest), an = dec.decode(indexed(62) + indexed(61 + n))
    assert newest == Header.of(b"x-%05d" % (n - 1), value)
    assert oldest == Header(None, None, None,
                            "inserted entry 1 of the client's table (beyond tracewire's bound)")
    assert an == []
    # The same entry referenced again (two insertions later: two indexes further) is the same.
    dec.decode(lit_inc_new(b"a", b"1") + lit_inc_new(b"b", b"2"))
    (again,), an = dec.decode(indexed(61 + n + 2))
    assert again == oldest and an == []
    # A name taken from it is unknown too, with the entry's identity.
    (lit,), an = dec.decode(lit_plain_name(61 + n + 2, b"x"))
    assert lit == Header(None, b"x", None, f"name of {oldest.unknown}") and an == []


def test_decoded_header_list_is_bounded_and_the_table_stays_in_step() -> None:
    """Indexed references make a small block decode to a huge list: it is cut at
    MAX_HEADER_LIST, with an anomaly, and insertions after the cut still count."""
    from analyzer.protocols import hpack_state

    dec = HPACKDecoder("server", synced=True)
    dec.decode(lit_inc_new(b"big", b"b" * 4000))
    refs = 10 * hpack_state.MAX_HEADER_LIST // 4000
    block = indexed(62) * refs + lit_inc_new(b"late", b"1")
    headers, an = dec.decode(block)
    assert len(block) < 3 * refs
    kept = sum(32 + len(h.name or b"") + len(h.value or b"") for h in headers)
    assert 0 < kept <= hpack_state.MAX_HEADER_LIST
    assert {h.name for h in headers} == {b"big"}
    assert len(an) == 1 and f"the first {len(headers)} headers are kept" in an[0]
    (late, big), an = dec.decode(indexed(62) + indexed(63))
    assert late == Header.of(b"late", b"1") and big.name == b"big" and an == []


@pytest.mark.parametrize("path", SUBSET[::4], ids=ids(SUBSET[::4]))
def test_corpus_after_a_gap(path: Path) -> None:
    """A decoder in step from the start loses some blocks (a gap in the capture): from there
    on it decodes nothing wrongly, and each entry older than the gap keeps one identity,
    of the new generation, never confused with those from before the gap."""
    blocks = load(path)
    n = len(blocks)
    for j, m in ((1, 1), (n // 3, 2), (n // 2, 1)):
        if not 0 < j < j + m < n:
            continue
        dec = _Recording("client", synced=True)
        for wire, hts, expected in blocks[:j]:
            if hts is not None:
                dec.set_max_table_size(hts)
            headers, anomalies = dec.decode(wire)
            assert anomalies == [] and [(h.name, h.value) for h in headers] == expected
        dec.desync()  # blocks j .. j+m-1 are lost
        dec.labels.clear()
        stats = Stats()
        check_mid(blocks, j + m, stats, dec)
        assert dec.generation == 1
        assert all(label.endswith("(resync 1)") for label in dec.labels)


class _Recording(HPACKDecoder):
    """A decoder that notes the identities of the unknown headers it returns."""

    __slots__ = ("labels",)

    def __init__(self, side: str, *, synced: bool) -> None:
        super().__init__(side, synced=synced)
        self.labels: set[str] = set()

    def decode(self, block: bytes | bytearray | memoryview) -> tuple[tuple[Header, ...], list[str]]:
        headers, anomalies = super().decode(block)
        self.labels.update(h.unknown for h in headers if h.unknown is not None)
        return headers, anomalies


def test_evicted_entry_keeps_one_identity() -> None:
    """An encoder referring to an entry certainly evicted is wrong (an anomaly each time),
    and the entry keeps one identity while newer entries push it down."""
    dec = HPACKDecoder("client", synced=True, max_table_size=100)
    dec.decode(lit_inc_new(b"a", b"x" * 60) + lit_inc_new(b"b", b"y" * 60))  # a is evicted
    (first,), an1 = dec.decode(indexed(63))
    dec.decode(lit_inc_new(b"c", b"1"))
    (second,), an2 = dec.decode(indexed(64))
    assert first == second == Header(None, None, None, "evicted entry 1 of the client's table")
    assert len(an1) == len(an2) == 1 and "already evicted" in an1[0]


def test_problems_per_block_are_bounded_and_counted() -> None:
    """A block of one-byte references to evicted entries: a few problems and a count,
    not one anomaly per byte; every reference still decodes (as unknown)."""
    from analyzer.protocols import hpack_state

    dec = HPACKDecoder("client", synced=True, max_table_size=100)
    dec.decode(lit_inc_new(b"a", b"x" * 60) + lit_inc_new(b"b", b"y" * 60))
    headers, an = dec.decode(indexed(63) * 5000)
    assert len(headers) == 5000 and all(h.unknown == "evicted entry 1 of the client's table"
                                        for h in headers)
    limit = hpack_state.MAX_PROBLEMS_PER_BLOCK
    assert len(an) == limit + 1
    assert an[-1] == f"{5000 - limit} more problems in this client header block"


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.text("0123456789abcdef-", min_size=36, max_size=36).map(str.encode),
    st.text("0123456789abcdef-", min_size=55, max_size=55).map(lambda s: ("00-" + s)[:55].encode()),
    st.text("0123456789abcdef-", min_size=55, max_size=55).map(str.encode),
    st.binary(min_size=36, max_size=36),
    st.binary(min_size=55, max_size=55),
))
def test_shape_checks_answer_as_their_regex(value: bytes) -> None:
    """guess_name checks the UUID and traceparent shapes without a regex; same answers."""
    from analyzer.protocols import hpack_state as hs

    if len(value) == 36:
        assert hs._uuid_shaped(value) == (hs._UUID.fullmatch(value) is not None)
    else:
        assert hs._traceparent_shaped(value) == (hs._TRACEPARENT.fullmatch(value) is not None)


def test_shape_checks_on_real_values() -> None:
    from analyzer.protocols import hpack_state as hs

    tp = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    rid = b"3a1c4f1e-5d2b-4c3a-9f8e-1a2b3c4d5e6f"
    assert hs._traceparent_shaped(tp) and hs._uuid_shaped(rid)
    assert not hs._traceparent_shaped(b"01" + tp[2:]) and not hs._uuid_shaped(rid.upper())
    assert not hs._traceparent_shaped(tp[:54] + b"-") and not hs._uuid_shaped(rid[:35] + b"-")


def test_unknown_labels_are_made_once_per_generation() -> None:
    """Labels of pre-capture entries are kept per generation (not formatted per use): the
    same entry gives the same label, a resync gives new ones, and a reference the table
    cannot hold still gets its anomaly every time."""
    dec = HPACKDecoder("client", synced=False, max_table_size=64)  # 2 unknown entries at most
    (a, b, c), an = dec.decode(lit_plain_name(62, b"1") + lit_plain_name(62, b"2") + indexed(62))
    assert a.unknown == b.unknown == "name of entry #1 of the client's table" and an == []
    assert c == Header(None, None, None, "entry #1 of the client's table")
    for _ in range(2):
        (h,), an = dec.decode(lit_plain_name(62 + 2, b"3"))  # #3 cannot be in 64 bytes
        assert h.unknown == "name of entry #3 of the client's table"
        assert an and "cannot still be" in an[0]
    dec.desync()
    (a, c), an = dec.decode(lit_plain_name(62, b"1") + indexed(62))
    assert a.unknown == "name of entry #1 of the client's table (resync 1)"
    assert c.unknown == "entry #1 of the client's table (resync 1)" and an == []
