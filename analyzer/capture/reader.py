"""Open a capture source and dispatch on its magic number to the pcap or pcapng reader."""

from __future__ import annotations

import io
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from analyzer.errors import CaptureError
from analyzer.records import Anomaly

GZIP_MAGIC = b"\x1f\x8b"
PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # little-endian, microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),  # big-endian, microseconds
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # little-endian, nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),  # big-endian, nanoseconds
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
READ_BUFFER = 1 << 20


@dataclass(slots=True, unsafe_hash=True, init=False)  # not frozen: see analyzer/records.py
class Frame:
    """One captured packet: its Wireshark frame number (1-based) and its bytes."""

    number: int
    ts_ns: int
    linktype: int
    data: bytes
    orig_len: int
    interface: int = 0

    # Written out, not generated: see analyzer/records.py (init=False: else dataclass
    # still builds one, through exec, at import, to throw it away: ~1 ms a class).
    def __init__(
        self,
        number: int,
        ts_ns: int,
        linktype: int,
        data: bytes,
        orig_len: int,
        interface: int = 0,
    ) -> None:
        self.number = number
        self.ts_ns = ts_ns
        self.linktype = linktype
        self.data = data
        self.orig_len = orig_len
        self.interface = interface


@dataclass(slots=True)
class CaptureReader:
    """Iterates over the frames of one capture, collecting anomalies as it goes.

    ``format`` is "pcap" or "pcapng" (with "+gzip" when compressed); ``linktypes`` and
    ``frames`` fill in while iterating.
    """

    name: str
    stream: BinaryIO
    format: str
    anomalies: list[Anomaly] = field(default_factory=list)
    linktypes: set[int] = field(default_factory=set)
    frames: int = 0
    _iter: Iterator[Frame] | None = None

    def __iter__(self) -> Iterator[Frame]:
        from analyzer.capture import pcap, pcapng

        if self._iter is None:
            if self.format.startswith("pcapng"):
                self._iter = pcapng.read_frames(self)
            else:
                self._iter = pcap.read_frames(self)
        return self._guarded(self._iter)

    def _guarded(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """Turn a decompression failure in mid-file into an anomaly: keep what came before."""
        try:
            for frame in frames:
                self.frames = frame.number
                yield frame
        except (EOFError, zlib.error, OSError) as err:  # (gzip.BadGzipFile is an OSError)
            self.anomalies.append(
                Anomaly("truncated-file", self.frames + 1, f"reading stopped: {err}")
            )

    def note(self, kind: str, frame: int | None, detail: str) -> None:
        self.anomalies.append(Anomaly(kind, frame, detail))

    def close(self) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Rewound(io.RawIOBase):
    """A raw stream that first replays bytes already read (the magic), then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        # read1 returns what one step decompressed, so a gzip stream cut short still
        # yields everything before the cut instead of failing the whole read.
        read1 = getattr(self._rest, "read1", None)
        data = read1(len(buf)) if read1 is not None else self._rest.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n

    def close(self) -> None:
        self._rest.close()
        super().close()


def _read_magic(stream: BinaryIO, n: int) -> bytes:
    head = b""
    while len(head) < n:
        chunk = stream.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_capture(path: str | Path) -> CaptureReader:
    """Open ``path`` ("-" for stdin) and identify its format from the first bytes."""
    name = str(path)
    raw: BinaryIO
    if name == "-":
        if sys.stdin is None:  # started with stdin closed (<&-): Python has none
            raise CaptureError(f"{name}: cannot read: standard input is closed")
        raw = sys.stdin.buffer
    else:
        try:
            raw = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
        except OSError as err:
            raise CaptureError(f"{name}: cannot read: {err.strerror or err}") from err
    try:
        head = _read_magic(raw, 4)
    except OSError as err:
        raise CaptureError(f"{name}: cannot read: {err.strerror or err}") from err
    compressed = ""
    stream: BinaryIO = io.BufferedReader(_Rewound(head, raw), READ_BUFFER)
    if head[:2] == GZIP_MAGIC:
        import gzip  # here: most captures are not compressed, and it costs ~1.5 ms

        compressed = "+gzip"
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[assignment]
        try:
            head = _read_magic(stream, 4)
        except (OSError, EOFError, zlib.error) as err:
            raise CaptureError(f"{name}: not a capture: corrupt gzip data ({err})") from err
        stream = io.BufferedReader(_Rewound(head, stream), READ_BUFFER)
    if not head:
        raise CaptureError(f"{name}: not a capture: the file is empty")
    if head in PCAP_MAGICS:
        return CaptureReader(name, stream, "pcap" + compressed)
    if head == PCAPNG_MAGIC:
        return CaptureReader(name, stream, "pcapng" + compressed)
    stream.close()
    raise CaptureError(
        f"{name}: not a capture: no pcap or pcapng magic number (starts with {head.hex()})"
    )
