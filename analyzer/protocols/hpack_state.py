"""HPACK decoding state for one direction of an HTTP/2 connection seen passively.

Owns the dynamic table model, including the part of it that is unknown because the
capture started mid-connection or lost bytes, and the guessing of tracing-header names
from the shape of their values. The wire primitives (integers, Huffman, static table)
come from the ``hpack`` package (its integer decoder, static table and Huffman table).

Strategy. A passive decoder cannot ask for the table it missed, so it keeps only what it
can prove. The table is the entries inserted since decoding (re)started, newest first,
followed, when the start was not seen, by an *unknown tail* of indefinite length. The
index -> entry mapping depends only on the sequence of insertions (evictions only cut the
oldest end), so an index within the inserted entries is known exactly even when eviction
is uncertain, and an index beyond them names a pre-capture entry: it is reported as
UNKNOWN with a stable identity, ``#k`` = the 1-based dynamic-table index the entry had
when decoding (re)started (the same entry keeps its number as new entries push it down).
Sizes are tracked as lower bounds so that an entry is only dropped when its eviction is
certain; the unknown tail gets an upper bound on how many of its entries can remain.
After a gap (``desync``) everything known becomes unknown again under a new generation,
so that identities from before and after the gap are never confused.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import deque
from collections.abc import Callable
from typing import Final

from hpack.huffman_table import HUFFMAN_COMPLETE, HUFFMAN_EMIT_SYMBOL, HUFFMAN_FAIL, HUFFMAN_TABLE
from hpack.table import HeaderTable

from analyzer.records import Header
from analyzer.tracing.context import LOOPS, lower_hex_run, traceparent_shaped, uuid_shaped

__all__ = [
    "ENTRY_OVERHEAD", "HUFFMAN_KERNEL", "HPACKDecoder", "guess_name", "huffman_decode", "huffman_decode_py",
]

# RFC 7541 §4.1: an entry's size is its name and value lengths plus 32.
ENTRY_OVERHEAD: Final = 32
DEFAULT_TABLE_SIZE: Final = 4096
# tracewire's own bounds, so that a hostile or corrupt stream cannot grow memory without
# limit: entries beyond these are dropped (and referenced as unknown, never guessed).
MAX_ENTRIES: Final = 4096
MAX_TABLE_BYTES: Final = 256 * 1024  # per table, whatever SETTINGS_HEADER_TABLE_SIZE allows
MAX_HEADERS_PER_BLOCK: Final = 10_000
# A block's decoded header list (RFC 9113 §6.5.2's measure: name + value + 32 per field) is
# kept up to this size: indexed references make a 10 KB block decode to 40 MB otherwise.
# Envoy's default limit is 60 KiB; beyond this the rest of the block is decoded (the table
# must stay in step) but not kept.
MAX_HEADER_LIST: Final = 256 * 1024
# Problems reported per block: one byte can reference an evicted entry, so a block of 10 KB
# could otherwise make 10,000 anomalies. The rest are counted.
MAX_PROBLEMS_PER_BLOCK: Final = 8

# RFC 7541 Appendix A, 1-based (slot 0 is never looked up: index 0 is a decoding error).
_STATIC: Final[tuple[Header, ...]] = (
    Header(None, None, None),
    *(Header.of(n, v) for n, v in HeaderTable.STATIC_TABLE),
)
_NSTATIC: Final = len(HeaderTable.STATIC_TABLE)  # 61

# Huffman strings repeat a lot (gRPC paths, content types, user agents): cache short ones.
# Final (never rebound, only cleared): mypyc reads a Final global directly, a plain one
# through the module's dict on every use.
_HUFF_CACHE: Final[dict[bytes, bytes]] = {}
_HUFF_CACHE_MAX: Final = 4096
_HUFF_CACHE_KEY_MAX: Final = 256


class _BlockError(Exception):
    """The rest of a header block cannot be parsed (truncated, bad integer, bad Huffman)."""


# Huffman decoding a byte at a time. hpack's table (nghttp2's) steps a nibble at a time;
# trace ids and request ids are unique per request, so no cache helps them, and stepping
# a byte at a time halves the work of the hottest loop of a gRPC capture. Built from
# hpack's table on first use (about 50 ms): _HUFF_NEXT[state << 8 | byte] is the next
# state << 1 | "may end here", or -1 for an invalid code; _HUFF_OUT the symbols emitted.
_HUFF_NEXT: Final[list[int]] = []
_HUFF_OUT: Final[list[bytes]] = []


def _build_huffman() -> None:
    singles = [bytes((i,)) for i in range(256)]
    doubles: dict[int, bytes] = {}
    nxt: list[int] = []
    out: list[bytes] = []
    table = HUFFMAN_TABLE
    for state in range(len(table) // 16):
        for byte in range(256):
            s1, f1, o1 = table[state * 16 + (byte >> 4)]
            s2, f2, o2 = table[s1 * 16 + (byte & 15)]
            if (f1 | f2) & HUFFMAN_FAIL:
                nxt.append(-1)
                out.append(b"")
                continue
            if f1 & HUFFMAN_EMIT_SYMBOL and f2 & HUFFMAN_EMIT_SYMBOL:
                sym = doubles.setdefault(o1 << 8 | o2, bytes((o1, o2)))
            elif f1 & HUFFMAN_EMIT_SYMBOL:
                sym = singles[o1]
            elif f2 & HUFFMAN_EMIT_SYMBOL:
                sym = singles[o2]
            else:
                sym = b""
            nxt.append(s2 << 1 | (1 if f2 & HUFFMAN_COMPLETE else 0))
            out.append(sym)
    _HUFF_OUT[:] = out
    _HUFF_NEXT[:] = nxt


def huffman_decode_py(raw: bytes) -> bytes:
    """RFC 7541 §5.2 Huffman string; ValueError when invalid or incomplete.

    The pure-Python decoder: the fallback of the C kernel, and the reference it is tested
    against (tests/test_huffman.py).
    """
    if not _HUFF_NEXT:
        _build_huffman()
    nxt, emit = _HUFF_NEXT, _HUFF_OUT
    state = 0
    x = 1
    out = bytearray()
    for b in raw:
        i = state << 8 | b
        x = nxt[i]
        if x < 0:
            raise ValueError("invalid Huffman code")
        out += emit[i]
        state = x >> 1
    if not x & 1:
        raise ValueError("incomplete Huffman code")
    return bytes(out)


# The C kernel (analyzer/_huffman.c) is built with the compiled build and gives the same
# bytes and the same errors about ten times faster; without a C compiler it is absent.
huffman_decode: Callable[[bytes], bytes] = huffman_decode_py
HUFFMAN_KERNEL = "Python"
try:
    from analyzer import _huffman
except ImportError:
    pass
else:
    huffman_decode = _huffman.decode
    HUFFMAN_KERNEL = "C"


def _integer(data: bytes, i: int, prefix: int) -> tuple[int, int]:
    """RFC 7541 §5.1 integer at ``data[i]``: (value, index after it)."""
    mask = (1 << prefix) - 1
    v = data[i] & mask
    i += 1
    if v < mask:
        return v, i
    shift = 0
    n = len(data)
    while True:
        if i >= n:
            raise _BlockError("integer runs past the block end")
        b = data[i]
        i += 1
        v += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i
        if shift > 28:  # RFC 7541 §5.1: implementations bound integers; 2**28 is ample
            raise _BlockError(f"integer too large at byte {i}")


def _string(data: bytes, i: int) -> tuple[bytes, int]:
    """RFC 7541 §5.2 string literal at ``data[i]``: (octets, index after it)."""
    if i >= len(data):
        raise _BlockError("block ends before a string literal")
    huffman = data[i] & 0x80
    length, i = _integer(data, i, 7)
    end = i + length
    if end > len(data):
        raise _BlockError(f"string literal of {length} bytes runs past the block end")
    raw = data[i:end]
    if not huffman:
        return raw, end
    cached = _HUFF_CACHE.get(raw)
    if cached is not None:
        return cached, end
    try:
        text = huffman_decode(raw)
    except ValueError as err:
        raise _BlockError(f"invalid Huffman string at byte {i}") from err
    if length <= _HUFF_CACHE_KEY_MAX:
        if len(_HUFF_CACHE) >= _HUFF_CACHE_MAX:
            _HUFF_CACHE.clear()
        _HUFF_CACHE[raw] = text
    return text, end


class HPACKDecoder:
    """Decodes the header blocks of one direction, tolerating an unknown starting table.

    ``side`` ("client" or "server") is the encoder whose blocks this decodes; it only
    appears in the labels of unknown headers. ``synced`` says whether the table is known
    to start empty (the connection start was captured). ``max_table_size`` is the
    SETTINGS_HEADER_TABLE_SIZE the peer allows this encoder (an upper bound of its table).

    Unknown identities: ``"entry #k of the client's table"`` where k is the 1-based
    dynamic-table index the entry had when decoding started (k = 1: the newest entry then;
    wire index 61 + k). After each ``desync`` the generation is appended:
    ``"entry #k of the client's table (resync 2)"``. A literal whose name refers to such an
    entry has ``unknown="name of entry #k of the client's table"``.
    """

    __slots__ = (
        "_certain",
        "_decoded",
        "_dropped",
        "_entries",
        "_generation",
        "_has_tail",
        "_inserted",
        "_limit",
        "_lo_sum",
        "_name_labels",
        "_size",
        "_tail_max",
        "_unknowns",
        "side",
    )

    def __init__(self, side: str, *, synced: bool, max_table_size: int = DEFAULT_TABLE_SIZE) -> None:
        self.side = side
        self._limit = max(0, max_table_size)
        # Upper bound of the encoder's current table size (exact once a size update is seen).
        self._size = self._limit
        # Entries inserted since decoding (re)started, newest first: (header, minimal size).
        # A header whose name is unknown has name None and ``unknown`` naming where it came from.
        self._entries: deque[tuple[Header, int]] = deque()
        self._lo_sum = 0  # sum of the entries' minimal sizes
        self._inserted = 0  # entries inserted since decoding (re)started
        self._dropped = 0  # of those, how many were dropped (evicted, or over tracewire's bounds)
        self._certain = 0  # of those, how many (the oldest) are certainly evicted
        # Whether entries older than decoding's start may exist (the "unknown tail"), and
        # an upper bound of how many of them can remain.
        self._has_tail = not synced
        self._tail_max = 0 if synced else self._size // ENTRY_OVERHEAD
        self._generation = 0
        # k -> its Header, for the current generation (emptied when it changes): an int key
        # hashes for free, where a (generation, k) tuple was built and hashed per reference.
        self._unknowns: dict[int, Header] = {}
        self._name_labels: dict[int, str] = {}  # k -> "name of entry #k ...", the same way
        # Whether a block was decoded since the start or the last desync: a desync before
        # any decoding changes nothing, as identities are anchored at the first decoded block.
        self._decoded = synced

    # -- state --------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True when no entry of unknown content can be referenced any more."""
        return self._tail_max == 0 and all(h.name is not None for h, _ in self._entries)

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def max_table_size(self) -> int:
        return self._limit

    def set_max_table_size(self, n: int) -> None:
        """The peer's SETTINGS_HEADER_TABLE_SIZE changed (once acknowledged, for a decrease)."""
        self._limit = max(0, n)
        # A decrease: the encoder must shrink to at most the new limit before its next
        # block. An increase: it may grow up to it (an upper bound, so fewer certainties).
        self._size = self._limit
        self._evict()

    def desync(self) -> None:
        """Header blocks of this direction may have been lost: forget what the table holds."""
        if not self._decoded:
            return
        self._generation += 1
        self._unknowns.clear()
        self._name_labels.clear()
        self._entries.clear()
        self._lo_sum = self._inserted = self._dropped = self._certain = 0
        self._size = self._limit
        self._has_tail = True
        self._tail_max = self._size // ENTRY_OVERHEAD
        self._decoded = False

    def _label(self, k: int) -> str:
        base = f"entry #{k} of the {self.side}'s table"
        return base if self._generation == 0 else f"{base} (resync {self._generation})"

    def _reset_empty(self) -> None:
        """The table is certainly empty: fully synchronised from here on."""
        self._entries.clear()
        self._lo_sum = self._inserted = self._dropped = self._certain = self._tail_max = 0
        self._has_tail = False

    def _evict(self) -> None:
        """Drop the entries whose eviction is certain; bound what the unknown tail keeps."""
        entries = self._entries
        while entries and (self._lo_sum > self._size or len(entries) > MAX_ENTRIES
                           or self._lo_sum > MAX_TABLE_BYTES):
            # The oldest known entry. When every newer one plus itself is already too big,
            # it is certainly evicted, and so is all that is older. Otherwise only
            # tracewire's own bounds drop it: the encoder may still refer to it (unknown).
            certain = self._lo_sum > self._size
            _, lo = entries.pop()
            self._lo_sum -= lo
            self._dropped += 1
            if certain:
                self._certain = self._dropped
                self._tail_max = 0
        if self._tail_max:
            room = self._size - self._lo_sum
            self._tail_max = min(self._tail_max, max(room, 0) // ENTRY_OVERHEAD)

    def _insert(self, header: Header, lo: int) -> None:
        if lo > self._size:
            # RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self._reset_empty()
            return
        self._entries.appendleft((header, lo))
        self._lo_sum += lo
        self._inserted += 1
        if (self._lo_sum > self._size or len(self._entries) > MAX_ENTRIES or self._tail_max
                or self._lo_sum > MAX_TABLE_BYTES):
            self._evict()

    def _size_update(self, n: int, anomalies: list[str]) -> None:
        if n > self._limit:
            anomalies.append(
                f"{self.side}'s table size update to {n} exceeds the {self._limit} allowed by SETTINGS"
            )
        self._size = n
        if n == 0:
            self._reset_empty()
        else:
            self._evict()

    # -- lookups ------------------------------------------------------------------------

    def _indexed(self, idx: int, anomalies: list[str]) -> Header:
        if idx <= _NSTATIC:
            return _STATIC[idx]
        d = idx - _NSTATIC
        if d <= len(self._entries):
            return self._entries[d - 1][0]
        k = d - self._inserted
        if self._has_tail and 0 < k <= self._tail_max:
            # The common unknown: a pre-capture entry, the same object each time it is used.
            cached = self._unknowns.get(k)
            if cached is None:
                if len(self._unknowns) >= 4096:
                    self._unknowns.clear()
                cached = self._unknowns[k] = Header(None, None, None, self._label(k))
            return cached
        return Header(None, None, None, self._missing(idx, d, anomalies))

    def _missing(self, idx: int, d: int, anomalies: list[str]) -> str:
        """The identity of a dynamic index beyond the known entries (and why it is odd)."""
        if d <= self._inserted:
            # Identified by the nth insertion since decoding (re)started, which does not
            # change as newer entries push it down, unlike its index.
            nth = self._inserted - d + 1
            if nth > self._certain:
                # Dropped by tracewire's bounds only: unknown, with a stable identity.
                base = f"inserted entry {nth} of the {self.side}'s table (beyond tracewire's bound)"
            else:
                anomalies.append(f"index {idx} refers to an entry of the {self.side}'s table already evicted")
                base = f"evicted entry {nth} of the {self.side}'s table"
            return base if self._generation == 0 else f"{base} (resync {self._generation})"
        if not self._has_tail:
            anomalies.append(f"index {idx} is beyond the {self.side}'s table")
            return f"index {idx} beyond the {self.side}'s table"
        k = d - self._inserted
        if k > self._tail_max:
            anomalies.append(
                f"index {idx} refers to {self._label(k)}, which cannot still be in a table of "
                f"{self._size} bytes"
            )
        return self._label(k)

    # -- decoding -----------------------------------------------------------------------

    def decode(self, block: bytes | bytearray | memoryview) -> tuple[tuple[Header, ...], list[str]]:
        """Decode one complete header block: (headers in wire order, anomaly details).

        Never raises. When the block cannot be parsed to its end, the headers before the
        fault are returned and the table is treated as lost (``desync``).
        """
        # (a block is bytes already on the usual path: no call to copy or convert it)
        data = block if isinstance(block, bytes) else bytes(block)
        headers: list[Header] = []
        anomalies: list[str] = []
        self._decoded = True
        n = len(data)
        i = 0
        seen_field = False
        overflow = False
        room = MAX_HEADER_LIST  # of the decoded header list, what may still be kept
        more = 0  # problems beyond MAX_PROBLEMS_PER_BLOCK
        nameless = False  # a field with a value but no name: names may be guessed
        try:
            while i < n:
                b = data[i]
                if b & 0x80:  # §6.1 indexed field
                    if b != 0xFF:  # the index fits the 7-bit prefix
                        idx = b & 0x7F
                        i += 1
                    else:
                        idx, i = _integer(data, i, 7)
                    if idx == 0:
                        raise _BlockError("index 0")
                    h = self._indexed(idx, anomalies)
                elif b & 0x40:  # §6.2.1 literal with incremental indexing
                    idx, i = _integer(data, i, 6)
                    h, i = self._literal(data, idx, i, anomalies)
                    name = h.name
                    if name is not None:
                        self._insert(h, ENTRY_OVERHEAD + len(name) + len(h.value or b""))
                    else:
                        # A literal's value is always known; an unknown name has >= 0 bytes.
                        self._insert(h, ENTRY_OVERHEAD + len(h.value or b""))
                elif b & 0x20:  # §6.3 dynamic table size update
                    size, i = _integer(data, i, 5)
                    if seen_field:
                        anomalies.append("dynamic table size update after a header field")
                    self._size_update(size, anomalies)
                    continue
                else:  # §6.2.2/§6.2.3 literal without indexing / never indexed
                    idx, i = _integer(data, i, 4)
                    h, i = self._literal(data, idx, i, anomalies)
                seen_field = True
                if h.name is None and h.value is not None:
                    nameless = True
                if len(anomalies) > MAX_PROBLEMS_PER_BLOCK:
                    more += len(anomalies) - MAX_PROBLEMS_PER_BLOCK
                    del anomalies[MAX_PROBLEMS_PER_BLOCK:]
                if not overflow:
                    room -= ENTRY_OVERHEAD + len(h.name or b"") + len(h.value or b"")
                    if len(headers) < MAX_HEADERS_PER_BLOCK and room >= 0:
                        headers.append(h)
                    else:
                        overflow = True
                        anomalies.append(
                            f"more than {MAX_HEADERS_PER_BLOCK} headers or {MAX_HEADER_LIST} bytes "
                            f"decoded in one block; the first {len(headers)} headers are kept"
                        )
        except _BlockError as err:
            anomalies.append(f"undecodable {self.side} header block ({err}); table state lost")
            self.desync()
        except (IndexError, ValueError) as err:  # defensive: never let a parser error escape
            anomalies.append(f"undecodable {self.side} header block ({err!r}); table state lost")
            self.desync()
        if len(anomalies) > MAX_PROBLEMS_PER_BLOCK:
            more += len(anomalies) - MAX_PROBLEMS_PER_BLOCK
            del anomalies[MAX_PROBLEMS_PER_BLOCK:]
        if more:
            anomalies.append(f"{more} more problems in this {self.side} header block")
        if nameless:  # (a flag: any() over a generator was an object per block, compiled)
            _apply_guesses(headers)
        return tuple(headers), anomalies

    def _literal(self, data: bytes, idx: int, i: int, anomalies: list[str]) -> tuple[Header, int]:
        # A name taken from a table entry comes with its lower-cased form (every entry's
        # lname is its name lower-cased), so only a literal name is lower-cased here.
        lname: bytes | None = None
        if idx:
            if idx <= _NSTATIC:
                src = _STATIC[idx]
                name: bytes | None = src.name
                lname = src.lname
                label = None
            else:
                d = idx - _NSTATIC
                if d <= len(self._entries):
                    src = self._entries[d - 1][0]
                    name, lname, label = src.name, src.lname, (src.unknown if src.name is None else None)
                else:
                    name = None
                    k = d - self._inserted
                    if self._has_tail and 0 < k <= self._tail_max:
                        # The common case of _missing (a pre-capture entry), its label made
                        # once per entry and generation rather than formatted per literal.
                        label = self._name_labels.get(k)
                        if label is None:
                            if len(self._name_labels) >= 4096:
                                self._name_labels.clear()
                            label = self._name_labels[k] = "name of " + self._label(k)
                    else:
                        label = "name of " + self._missing(idx, d, anomalies)
        else:
            name, i = _string(data, i)
            label = None
        value, i = _string(data, i)
        if name is None:
            return Header(None, value, None, label), i
        return Header(name, value, name.lower() if lname is None else lname), i


# -- guessing names from values --------------------------------------------------------

_TRACEPARENT: Final = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_UUID: Final = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_B3_SINGLE: Final = re.compile(rb"(?:[0-9a-f]{32}|[0-9a-f]{16})-[0-9a-f]{16}-[01d](?:-[0-9a-f]{16})?")
_UBER: Final = re.compile(rb"[0-9a-f]{1,32}:[0-9a-f]{1,16}:[0-9a-f]{1,16}:[0-9a-f]{1,2}")
_CLOUD: Final = re.compile(rb"[0-9a-f]{32}/[0-9]{1,20}(?:;o=[01])?")
_TRACEID: Final = b"x-b3-traceid"
_SPANID: Final = b"x-b3-spanid"
_PARENT: Final = b"x-b3-parentspanid"
_SAMPLED: Final = b"x-b3-sampled"


# The dashes where the shape has them and nowhere else, and nothing but lower-case hex
# around them: the same answer as _UUID's and _TRACEPARENT's fullmatch (tests compare
# them), checked by position (tracing.context) without starting a regex match or calling
# a bytes method for each value offered. A 16- or 32-byte value is a hex id likewise.


def _uuid_shaped(v: bytes) -> bool:
    """``_UUID.fullmatch`` of a 36-byte value."""
    return uuid_shaped(v)


def _traceparent_shaped(v: bytes) -> bool:
    """``_TRACEPARENT.fullmatch`` of a 55-byte value (version 00)."""
    return traceparent_shaped(v)


def _has_colon(v: bytes) -> bool:
    """``b":" in v`` for a short value, by a loop: cheaper than a bytes method call in the
    compiled build (see tracing.context), and so is any() over a generator."""
    if not LOOPS:
        return v.find(b":") >= 0
    for i in range(len(v)):  # noqa: SIM110
        if v[i] == 58:
            return True
    return False


def _is_trace_bin(value: bytes) -> bool:
    """The base64 of an OpenCensus binary trace context: version 0, then field 0 (16-byte
    trace id), field 1 (8-byte span id), field 2 (1-byte options): 29 bytes in all."""
    try:
        raw = base64.b64decode(value + b"=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 29 and raw[0] == 0 and raw[1] == 0 and raw[18] == 1 and raw[27] == 2


def guess_name(value: bytes, known_names: set[bytes]) -> bytes | None:
    """The tracing header a value unmistakably belongs to, or None.

    ``known_names`` are the lower-cased names known (not guessed) in the same block. A
    name already present is never guessed again. Conservative by design: shapes shared by
    several headers (a lone 16-hex id) give no guess unless the block's other B3 headers
    leave exactly one candidate.
    """
    # Dispatched on the length first: most values offered are short or 16/32-hex ids, and
    # below 34 bytes only the Jaeger shape (which has a colon) or a hex id can match; the
    # names known are looked at before a regex runs. Same answers as trying every shape in
    # the order below, at a third of the cost in the compiled build (issue 10).
    guess: bytes | None = None
    n = len(value)
    if n < 34:
        if n < 7:
            return None
        if _has_colon(value):
            if _UBER.fullmatch(value):
                guess = b"uber-trace-id"
        elif n == 32:
            if (_SPANID in known_names or _SAMPLED in known_names) and lower_hex_run(value, 0, 32):
                guess = _TRACEID
        elif n == 16:
            # Only when the block's other B3 ids leave exactly one 16-hex slot open.
            t, s, p = _TRACEID not in known_names, _SPANID not in known_names, _PARENT not in known_names
            if t + s + p == 1 and lower_hex_run(value, 0, 16):
                guess = _TRACEID if t else _SPANID if s else _PARENT
        else:
            return None
    elif n == 55 and _traceparent_shaped(value):
        guess = b"traceparent"
    elif n == 36 and _uuid_shaped(value):
        guess = b"x-request-id"
    elif n >= 35 and _B3_SINGLE.fullmatch(value):
        guess = b"b3"
    elif value.find(b":") >= 0 and _UBER.fullmatch(value):
        guess = b"uber-trace-id"
    elif value.find(b"/") >= 0 and _CLOUD.fullmatch(value):
        guess = b"x-cloud-trace-context"
    elif 38 <= n <= 40 and _is_trace_bin(value):
        guess = b"grpc-trace-bin"
    if guess is None or guess in known_names:
        return None
    return guess


def _apply_guesses(headers: list[Header]) -> None:
    """Offer names for unknown-name headers; two headers wanting one name get neither."""
    known: set[bytes] = set()
    for h in headers:
        ln = h.lname
        if ln is not None and not h.guessed:
            known.add(ln)
    # (position, name) in wire order; one pass, plain loops (compiled, each comprehension
    # and enumerate was an object of its own)
    guesses: list[tuple[int, bytes]] = []
    for pos in range(len(headers)):
        h = headers[pos]
        value = h.value
        if h.name is None and value is not None:
            g = guess_name(value, known)
            if g is not None:
                guesses.append((pos, g))
    if not guesses:
        return
    taken = [g for _, g in guesses]
    for pos, g in guesses:
        if len(taken) == 1 or taken.count(g) == 1:
            h = headers[pos]
            headers[pos] = Header(g, h.value, g, h.unknown, True)
