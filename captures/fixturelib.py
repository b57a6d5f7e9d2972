"""Helpers shared by the fixture scripts: MANIFEST.json upkeep, reading captures with tshark,
and what every recording script does the same way (logging, commands, seeded ids, tcpdump,
a network namespace of its own). The emulated multi-pod meshes share more: ``meshlib.py``.

Not part of the `analyzer` package and deliberately independent of it: the fixtures are the
ground truth the package is tested against, so they are described by what tshark (Wireshark's
dissectors) shows, and by what the crafting script knows it wrote.

tshark runs with its default preferences plus ``tcp.reassemble_out_of_order:TRUE``
(``TSHARK_OPTS``). It reports an HTTP message in the frame that completes the whole message
(head and body); the manifest records the frame that completes the message *head*, found here
from the segments tshark lists for the reassembled message: the latest-numbered of those that
carry the head's bytes. (``http.desegment_body:FALSE`` would put
tshark itself there, but then it takes a JSON body sent in its own segment for the start of a
message and loses the next response on that connection.)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

CAPTURES = Path(__file__).resolve().parent
MANIFEST = CAPTURES / "MANIFEST.json"

TSHARK_OPTS = ["-o", "tcp.reassemble_out_of_order:TRUE"]

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", "us"),
    b"\xa1\xb2\xc3\xd4": (">", "us"),
    b"\x4d\x3c\xb2\xa1": ("<", "ns"),
    b"\xa1\xb2\x3c\x4d": (">", "ns"),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D


def read_bytes(path: Path) -> tuple[bytes, bool]:
    """The file's bytes, gunzipped when it is gzip; and whether it was."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw), True
    return raw, False


def describe_format(path: Path) -> dict[str, Any]:
    """format (pcap/pcapng/None), gzip, and the link types declared by the file's headers.

    For pcapng the link types are those of the Interface Description Blocks, in file order,
    without repeats. Parsing stops quietly at the first thing that does not fit.
    """
    data, gz = read_bytes(path)
    out: dict[str, Any] = {"format": None, "gzip": gz, "linktypes": []}
    if data[:4] in PCAP_MAGICS and len(data) >= 24:
        endian, _ = PCAP_MAGICS[data[:4]]
        out["format"] = "pcap"
        out["linktypes"] = [struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF]
        return out
    if len(data) >= 12 and struct.unpack("<I", data[:4])[0] == PCAPNG_SHB:
        out["format"] = "pcapng"
        linktypes: list[int] = []
        pos = 0
        endian = "<"
        while pos + 12 <= len(data):
            btype_le = struct.unpack("<I", data[pos : pos + 4])[0]
            if btype_le == PCAPNG_SHB:
                endian = "<" if struct.unpack("<I", data[pos + 8 : pos + 12])[0] == PCAPNG_BOM else ">"
            btype, blen = struct.unpack(endian + "II", data[pos : pos + 8])
            if blen < 12 or pos + blen > len(data):
                break
            if btype == 1:
                lt = struct.unpack(endian + "H", data[pos + 8 : pos + 10])[0]
                if lt not in linktypes:
                    linktypes.append(lt)
            pos += blen
        out["linktypes"] = linktypes
    return out


def run_tshark(path: Path, extra: list[str] | None = None) -> tuple[int, list[dict[str, list[str]]], str]:
    """Run tshark with the standard options; return (exit status, per-frame layers, stderr)."""
    fields = [
        "frame.number",
        "frame.time_epoch",
        "tcp.stream",
        "tcp.payload",
        "tcp.segment",
        "tcp.reassembled.data",
        "http.request.method",
        "http.request.uri",
        "http.response.code",
        "http.request.line",
        "http.response.line",
    ]
    cmd = ["tshark", "-n", "-r", str(path), *TSHARK_OPTS, *(extra or []), "-T", "json"]
    for f in fields:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    frames: list[dict[str, list[str]]] = []
    if proc.stdout.strip():
        for pkt in json.loads(proc.stdout):
            frames.append(pkt["_source"]["layers"])
    return proc.returncode, frames, proc.stderr


def epoch_ns(text: str) -> int:
    """tshark's frame.time_epoch ("1717243200.000000137") as integer nanoseconds, exactly."""
    sec, _, frac = text.partition(".")
    return int(sec) * 10**9 + int((frac + "000000000")[:9])


def _header_dict(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        name, _, value = line.rstrip("\r\n").partition(":")
        out.setdefault(name.strip().lower(), value.strip())
    return out


def tshark_summary(
    path: Path, extra: list[str] | None = None, trace_headers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """frames, tcp_connections and http_messages as tshark shows them.

    With ``trace_headers`` each message also carries those headers (when present) under
    "headers"; this only works when a frame holds at most one HTTP message, as in the recorded
    captures.
    """
    status, frames, stderr = run_tshark(path, extra)
    payloads = {
        int(layers["frame.number"][0]): bytes.fromhex(layers.get("tcp.payload", [""])[0].replace(":", ""))
        for layers in frames
    }

    def head_frame(layers: dict[str, list[str]], single: bool) -> int:
        # tshark names the frames of a reassembled message (in sequence order) and its bytes;
        # the first frame may hold the end of the previous message, so find where this one
        # starts in it, then count bytes until the head's blank line is covered.
        number = int(layers["frame.number"][0])
        segments = [int(x) for x in layers.get("tcp.segment", [])]
        pdu = bytes.fromhex(layers.get("tcp.reassembled.data", [""])[0].replace(":", ""))
        end = pdu.find(b"\r\n\r\n")
        if not single or len(segments) < 2 or end < 0:
            return number
        first = payloads.get(segments[0], b"")
        skip = next((k for k in range(len(first)) if pdu.startswith(first[k:])), len(first))
        have, used = len(first) - skip, [segments[0]]
        for seg in segments[1:]:
            if have >= end + 4:
                break
            used.append(seg)
            have += len(payloads.get(seg, b""))
        return max(used)  # out of order: the head is complete when its last piece arrives

    streams: set[str] = set()
    messages: list[dict[str, Any]] = []
    for layers in frames:
        single = len(layers.get("http.request.method", [])) + len(layers.get("http.response.code", [])) == 1
        number = head_frame(layers, single)
        streams.update(layers.get("tcp.stream", []))
        methods = layers.get("http.request.method", [])
        uris = layers.get("http.request.uri", [])
        for i, method in enumerate(methods):
            msg: dict[str, Any] = {"kind": "request", "method": method}
            msg["path"] = uris[i] if i < len(uris) else None
            msg["frame"] = number
            if trace_headers and len(methods) == 1:
                hdrs = _header_dict(layers.get("http.request.line", []))
                if any(h in hdrs for h in trace_headers):
                    msg["headers"] = {h: hdrs[h] for h in trace_headers if h in hdrs}
            messages.append(msg)
        codes = layers.get("http.response.code", [])
        for code in codes:
            msg = {"kind": "response", "status": int(code), "frame": number}
            if trace_headers and len(codes) == 1:
                hdrs = _header_dict(layers.get("http.response.line", []))
                if any(h in hdrs for h in trace_headers):
                    msg["headers"] = {h: hdrs[h] for h in trace_headers if h in hdrs}
            messages.append(msg)
    messages.sort(key=lambda m: int(m["frame"]))  # stable: same-frame messages keep their order
    times = [epoch_ns(layers["frame.time_epoch"][0]) for layers in frames if "frame.time_epoch" in layers]
    return {
        "first_ts_ns": times[0] if times else None,
        "last_ts_ns": times[-1] if times else None,
        "status": status,
        "stderr": stderr.strip(),
        "frames": len(frames),
        "tcp_connections": len(streams),
        "http_messages": messages,
    }


def update_manifest(entries: list[dict[str, Any]], owner: str | None = None) -> None:
    """Add or replace ``entries``; with ``owner`` (a script name) also drop that script's
    other entries (files it no longer makes). Everyone else's entries are kept."""
    current: list[dict[str, Any]] = []
    if MANIFEST.exists():
        current = json.loads(MANIFEST.read_text())
    new_files = {e["file"] for e in entries}
    kept = [
        e
        for e in current
        if e["file"] not in new_files and not (owner and str(e.get("made_by", "")).startswith(owner))
    ]
    merged = sorted(kept + entries, key=lambda e: e["file"])
    MANIFEST.write_text(json.dumps(merged, indent=1) + "\n")


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json object hook keeping repeated keys: tshark -T json repeats a key once per item
    (several "http2.stream" in one frame, several "http2.header" in one block)."""
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for key, value in pairs:
        if key not in out:
            out[key] = value
        elif key in repeated:
            out[key].append(value)
        else:
            out[key] = [out[key], value]
            repeated.add(key)
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def tshark_h2_summary(
    path: Path, extra: list[str] | None = None, shown_headers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The HTTP/2 messages tshark decodes, in capture order, and how many header fields it
    could not name.

    ``extra`` must make tshark dissect the h2 ports (``-d tcp.port==N,http2``, or ``http``
    for a port where HTTP/1.1 upgrades to h2c). One message per request or response HEADERS
    frame: ``{"kind", "protocol": "h2", "method", "path" | "status", "stream", "frame"}``;
    a request has a ``:method``, a response a ``:status``. A later HEADERS frame on a stream
    that had a response (trailers: neither pseudo-header) goes into that response as
    ``"trailers": {"frame", "headers", "unknown_headers"}``, the way tracewire reports
    trailers; trailers whose response is not in the capture would be a message of kind
    "trailers". ``frame`` is the frame whose TCP segment completes the HEADERS frame, the one
    tshark dissects it in. A field that tshark cannot resolve (an HPACK index into a dynamic
    table filled before the capture started) has the name ``<unknown>`` (and an empty value,
    unless the value was a literal); each message counts them under ``unknown_headers``.
    ``shown_headers`` adds a "headers" object with those fields, as tshark shows them, when
    present and named. CONTINUATION frames do not occur in the recordings and are not
    joined here.
    """
    cmd = ["tshark", "-n", "-r", str(path), *TSHARK_OPTS, *(extra or []), "-Y", "http2.type == 1",
           "-T", "json", "-J", "frame tcp http2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    packets = json.loads(proc.stdout, object_pairs_hook=_json_pairs) if proc.stdout.strip() else []
    messages: list[dict[str, Any]] = []
    answered: dict[tuple[str, int], dict[str, Any]] = {}  # (tcp.stream, h2 stream) -> response
    unknown_total = 0
    for pkt in packets:
        layers = pkt["_source"]["layers"]
        frame = int(_as_list(layers["frame"])[0]["frame.number"])
        conn = str(_as_list(layers["tcp"])[0]["tcp.stream"])
        for layer in _as_list(layers.get("http2")):
            for h2frame in _as_list(layer.get("http2.stream")):
                if h2frame.get("http2.type") != "1":
                    continue
                stream = int(h2frame["http2.streamid"])
                fields = [(h.get("http2.header.name", ""), h.get("http2.header.value", ""))
                          for h in _as_list(h2frame.get("http2.header"))]
                unknown = sum(1 for name, _ in fields if name == "<unknown>")
                unknown_total += unknown
                known = {name: value for name, value in reversed(fields) if name != "<unknown>"}
                shown = {h: known[h] for h in shown_headers if h in known}
                response = answered.get((conn, stream))
                if ":method" not in known and ":status" not in known and response is not None:
                    trailers: dict[str, Any] = {"frame": frame, "headers": shown}
                    if unknown:
                        trailers["unknown_headers"] = unknown
                    response["trailers"] = trailers
                    continue
                msg: dict[str, Any]
                if ":method" in known:
                    msg = {"kind": "request", "protocol": "h2", "method": known[":method"],
                           "path": known.get(":path")}
                elif ":status" in known:
                    msg = {"kind": "response", "protocol": "h2", "status": int(known[":status"])}
                    answered[(conn, stream)] = msg
                else:
                    msg = {"kind": "trailers", "protocol": "h2"}
                msg["stream"] = stream
                msg["frame"] = frame
                if shown:
                    msg["headers"] = shown
                if unknown:
                    msg["unknown_headers"] = unknown
                messages.append(msg)
    return {"status": proc.returncode, "stderr": proc.stderr.strip(), "http_messages": messages,
            "unknown_headers": unknown_total}


# --------------------------------------------------------------------------- recording

_log_lock = threading.Lock()
_actor = "record"


def set_actor(name: str) -> None:
    """Name this process in its log lines (a mesh's actors log to the recorder's stderr)."""
    global _actor
    _actor = name


def log(msg: str) -> None:
    with _log_lock:  # threads of one actor must not interleave half lines
        print(f"[{_actor}] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class Ids:
    """Deterministic Envoy-shaped identifiers from a seeded generator: one draw per id."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def bits(self, n: int) -> int:
        return self.rng.getrandbits(n)

    def request_id(self) -> str:
        # Envoy writes its sampling decision into character 14 (the UUID version digit): '9'.
        s = str(uuid.UUID(int=self.bits(128), version=4))
        return s[:14] + "9" + s[15:]

    def trace_id(self) -> str:
        return f"{self.bits(128):032x}"

    def trace_id64(self) -> str:
        return f"{self.bits(64):016x}"

    def span_id(self) -> str:
        return f"{self.bits(64):016x}"

    def token(self, n: int = 24) -> str:
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


class SafeIds(Ids):
    """Ids usable from several threads: one draw at a time (the order of concurrent draws is
    the threads' own)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.lock = threading.Lock()

    def bits(self, n: int) -> int:
        with self.lock:
            return super().bits(n)


@contextlib.contextmanager
def tcpdump(targets: Mapping[str | None, Path], bpf: Sequence[str] = ()) -> Iterator[None]:
    """``tcpdump -i any -U -w FILE`` as ksniff runs it, one per network namespace in
    ``targets`` (None: this process's), all at once as ``kubectl sniff -p`` does for several
    pods; stopped with SIGINT (Ctrl-C)."""
    procs: dict[str | None, subprocess.Popen[str]] = {}
    try:
        for ns, path in targets.items():
            path.unlink(missing_ok=True)
            cmd = ["tcpdump", "-i", "any", "-U", "-Z", "root", "-w", str(path), *bpf]
            procs[ns] = subprocess.Popen(
                cmd if ns is None else ["ip", "netns", "exec", ns, *cmd], stderr=subprocess.PIPE, text=True
            )
        deadline = time.monotonic() + 10
        for ns, path in targets.items():
            while not path.exists():
                if procs[ns].poll() is not None or time.monotonic() > deadline:
                    err = procs[ns].stderr
                    raise RuntimeError(f"tcpdump in {ns or 'this namespace'} did not start: "
                                       f"{err.read() if err else ''}")
                time.sleep(0.05)
        time.sleep(1.0)  # tcpdump creates the file before the socket is really capturing
        yield
        # tcpdump reads a TPACKET_V3 ring whose blocks are handed over when full or after its
        # 1 s timeout: stopping sooner would lose the last packets ("0 packets captured").
        time.sleep(2.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for ns, proc in procs.items():
            try:
                _, err_text = proc.communicate(timeout=10)
                lines = " / ".join(line for line in err_text.splitlines() if line)
                log(f"tcpdump{' ' + ns if ns else ''}: {lines}")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_in_netns(netns: str, argv: Sequence[str]) -> None:
    """Run ``python argv`` (this script again, in its inside mode) in a network namespace
    made for it: a leftover of an interrupted run is deleted first, and the namespace with
    every address, rule and socket in it is deleted afterwards, also after a failure."""
    run("ip", "netns", "del", netns, check=False)
    run("ip", "netns", "add", netns)
    try:
        subprocess.run(["ip", "netns", "exec", netns, sys.executable, *argv], check=True)
    finally:
        run("ip", "netns", "del", netns, check=False)
