"""Message records as JSON objects, CSV rows and table rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from analyzer.decode.packet import format_endpoint
from analyzer.records import Anomaly, Header, Message
from analyzer.report.redact import display_value, is_secret, text
from analyzer.tracing import TraceContext

_last_second: list[object] = [None, ""]


def rfc3339(ts_ns: int) -> str:
    """UTC timestamp with all nine fractional digits: 2026-11-25T06:54:46.123456789Z."""
    sec, ns = divmod(ts_ns, 1_000_000_000)
    if _last_second[0] != sec:  # messages come in bursts within one second
        _last_second[0] = sec
        _last_second[1] = dt.datetime.fromtimestamp(sec, tz=dt.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%S"
        )
    return f"{_last_second[1]}.{ns:09d}Z"


def anomaly_dict(a: Anomaly) -> dict[str, Any]:
    return {"kind": a.kind, "frame": a.frame, "detail": a.detail, "flow": a.flow}


def context_dict(c: TraceContext) -> dict[str, Any]:
    return {
        "format": c.format,
        "headers": list(c.headers),
        "raw": c.raw,
        "trace_id": c.trace_id,
        "span_id": c.span_id,
        "parent_span_id": c.parent_span_id,
        "sampled": c.sampled,
        "request_id": c.request_id,
        "violations": list(c.violations),
        "guessed": c.guessed,
    }


def header_list(fields: tuple[Header, ...], show_secrets: bool) -> list[dict[str, Any]]:
    """Fields in wire order as {"name", "value"}; unknown parts are null, with "unknown"."""
    headers: list[dict[str, Any]] = []
    for h in fields:
        name, value = h.name, h.value
        if h.unknown is None and name is not None and value is not None and not name.endswith(b"-bin"):
            # the common case, kept short: a fully known field
            if not show_secrets and is_secret(h.lname):
                shown = f"<redacted, {len(value)} bytes>"
            else:
                shown = value.decode("utf-8", "backslashreplace")
            headers.append({"name": name.decode("utf-8", "backslashreplace"), "value": shown})
            continue
        item: dict[str, Any] = {
            "name": None if name is None else text(name),
            "value": display_value(h.lname, value, show_secrets),
        }
        if h.unknown is not None:
            item["unknown"] = h.unknown
        if h.guessed:
            item["guessed"] = True
        headers.append(item)
    return headers


def message_dict(m: Message, show_secrets: bool = False) -> dict[str, Any]:
    ep = m.endpoints
    return {
        "capture": m.capture,
        "frame": m.frame,
        "first_frame": m.first_frame,
        "ts": rfc3339(m.ts_ns),
        "protocol": m.protocol,
        "kind": m.kind,
        "connection": {"src": ep.src, "sport": ep.sport, "dst": ep.dst, "dport": ep.dport},
        "stream": m.stream,
        "method": None if m.method is None else text(m.method),
        "path": None if m.path is None else text(m.path),
        "authority": None if m.authority is None else text(m.authority),
        "status": m.status,
        "headers": header_list(m.headers, show_secrets),
        "trailers": header_list(m.trailers, show_secrets),
        "trace": [context_dict(c) for c in m.trace],
        "anomalies": [anomaly_dict(a) for a in m.anomalies],
    }


def request_id(m: Message) -> str | None:
    for c in m.trace:
        if c.format == "x-request-id":
            return c.raw
    return None


def trace_id(m: Message) -> str | None:
    for c in m.trace:
        if c.trace_id is not None:
            return c.trace_id
    return None


CSV_FIELDS = (
    "capture",
    "frame",
    "first_frame",
    "ts",
    "protocol",
    "kind",
    "src",
    "sport",
    "dst",
    "dport",
    "stream",
    "method",
    "path",
    "authority",
    "status",
    "x_request_id",
    "trace_id",
    "trace_formats",
    "violations",
    "headers",
    "anomalies",
)


def csv_row(m: Message, show_secrets: bool = False) -> list[Any]:
    d = message_dict(m, show_secrets)
    c = d["connection"]
    headers = "\n".join(
        f"{h['name'] if h['name'] is not None else '<unknown>'}: "
        f"{h['value'] if h['value'] is not None else '<unknown>'}"
        for h in d["headers"]
    )
    return [
        d["capture"],
        d["frame"],
        d["first_frame"],
        d["ts"],
        d["protocol"],
        d["kind"],
        c["src"],
        c["sport"],
        c["dst"],
        c["dport"],
        "" if d["stream"] is None else d["stream"],
        d["method"] or "",
        d["path"] or "",
        d["authority"] or "",
        "" if d["status"] is None else d["status"],
        request_id(m) or "",
        trace_id(m) or "",
        " ".join(t["format"] for t in d["trace"]),
        "; ".join(v for t in d["trace"] for v in t["violations"]),
        headers,
        "; ".join(f"{a['kind']}@{a['frame']}" for a in d["anomalies"]),
    ]


def _short(s: str | None, n: int) -> str:
    if not s:
        return "-"
    return s if len(s) <= n else s[: n - 1] + "…"


def short_trace_id(tid: str | None) -> str:
    """A 64-bit id padded to 128 bits shows as its 16 digits; a 128-bit one shortened."""
    if not tid:
        return "-"
    if tid.startswith("0" * 16):
        return tid[16:]
    return _short(tid, 17)


def table_row(m: Message) -> list[str]:
    ep = m.endpoints
    flow = f"{format_endpoint(ep.src, ep.sport)} → {format_endpoint(ep.dst, ep.dport)}"
    if m.kind == "request":
        # an HPACK entry older than the capture can hide the method or the path
        what = f"{text(m.method or b'<?>')} {text(m.path or b'<unknown path>')}"
    else:
        what = f"← {m.status}"
    if m.stream is not None:
        what = f"#{m.stream} {what}"
    sec = (m.ts_ns // 1_000_000_000) % 86400
    ms = (m.ts_ns // 1_000_000) % 1000
    clock = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{ms:03d}"
    marks = ""
    if any(c.violations for c in m.trace):
        marks += "!"
    if m.anomalies:
        marks += "?"
    return [
        str(m.frame),
        clock,
        _short(flow, TABLE_WIDTHS[2]),
        _short(what, TABLE_WIDTHS[3]),
        _short(request_id(m), TABLE_WIDTHS[4]),
        short_trace_id(trace_id(m)) + marks,
    ]


# frame, time, connection, message, x-request-id (shortened), trace id (shortened) + marks:
# 120 columns with two spaces between cells. "!" marks a tracing-header violation, "?" an
# anomaly; full values are in --format jsonl.
TABLE_WIDTHS = (6, 12, 36, 28, 9, 19)
TABLE_HEADERS = ["frame", "time (UTC)", "connection", "message", "req-id", "trace id"]
