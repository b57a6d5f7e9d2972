"""Message records as JSON objects, CSV rows and table rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from analyzer.decode.packet import format_endpoint
from analyzer.records import Anomaly, Header, Message
from analyzer.report.redact import DEFAULT, Confirms, Policy, csv_cell, escape, marker, text
from analyzer.report.term import wrap, wrap_list
from analyzer.tracing import TraceContext

# The last second formatted and its text (messages come in bursts within one second), and
# the last timestamp and its whole text (HTTP/2 messages often share a frame's timestamp).
# Typed and Final so that compiled code reads them directly.
_last_second: Final[list[int]] = [0]
_last_text: Final[list[str]] = ["1970-01-01T00:00:00"]
_last_ts: Final[list[int]] = [0]
_last_full: Final[list[str]] = ["1970-01-01T00:00:00.000000000Z"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# datetime shows years 1 to 9999 only (pcapng if_tsoffset/if_tsresol can say anything)
_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799


def rfc3339(ts_ns: int) -> str:
    """UTC timestamp with all nine fractional digits: 2026-11-25T06:54:46.123456789Z.

    A timestamp outside years 1-9999 is shown as its raw number of nanoseconds since 1970
    (the pipeline records it as a ``bad-timestamp`` anomaly): it never raises.
    """
    if ts_ns == _last_ts[0]:
        return _last_full[0]
    sec, ns = divmod(ts_ns, 1_000_000_000)
    if _last_second[0] != sec:
        if not _FIRST_SECOND <= sec <= _LAST_SECOND:
            return str(ts_ns)
        # timedelta, not fromtimestamp: no platform time_t limits; fields formatted by hand
        # because strftime's %Y does not pad years before 1000
        d = _EPOCH + dt.timedelta(seconds=sec)
        _last_second[0] = sec
        _last_text[0] = (
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
        )
    # 0 <= ns < 10**9: the nine digits, zero-padded, without a format spec (``:09d`` went
    # through the locale-aware formatter, about 2 % of compiled h2 `messages`)
    full = f"{_last_text[0]}.{str(1_000_000_000 + ns)[1:]}Z"
    _last_ts[0] = ts_ns
    _last_full[0] = full
    return full


def anomaly_dict(a: Anomaly) -> dict[str, Any]:
    return {"kind": a.kind, "frame": a.frame, "detail": a.detail, "flow": a.flow}


def _policy(p: Policy | bool) -> Policy:
    """A Policy, or the old ``show_secrets`` flag of library callers."""
    return p if isinstance(p, Policy) else Policy(show_secrets=p)


def context_dict(c: TraceContext, policy: Policy | bool = DEFAULT,
                 confirms: Confirms | None = None) -> dict[str, Any]:
    """A tracing context; one built from a redacted header (baggage, a --redact name) or
    from an uncorroborated guessed name shows no value, id or violation text (those quote
    the value), only its format, its headers and how many rules it breaks."""
    if _policy(policy).context_hidden(c, confirms):
        return hidden_context_dict(c)
    return shown_context_dict(c)


def shown_context_dict(c: TraceContext) -> dict[str, Any]:
    """What ``context_dict`` shows of a context that is not hidden: all of it."""
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


def hidden_context_dict(c: TraceContext) -> dict[str, Any]:
    """What ``context_dict`` shows of a hidden context: made of its format, headers, the
    length of its value, how many rules it breaks and whether it was guessed, nothing else."""
    n = len(c.violations)
    broken = [f"{c.format}: {n} rule{'s' if n > 1 else ''} broken (value redacted)"] if n else []
    return {
        "format": c.format,
        "headers": list(c.headers),
        "raw": marker(len(c.raw.encode("latin-1"))),
        "trace_id": None,
        "span_id": None,
        "parent_span_id": None,
        "sampled": None,
        "request_id": None,
        "violations": broken,
        "guessed": c.guessed,
    }


def header_list(fields: tuple[Header, ...], policy: Policy | bool = DEFAULT,
                confirms: Confirms | None = None) -> list[dict[str, Any]]:
    """Fields in wire order as {"name", "value"}; unknown parts are null, with "unknown"."""
    policy = _policy(policy)
    return [header_dict(h, policy, confirms) for h in fields]


def header_dict(h: Header, policy: Policy, confirms: Confirms | None) -> dict[str, Any]:
    """One field of ``header_list``."""
    # The dict is built whole (keys in this order: name, value, unknown, guessed), and a
    # value the capture does not show skips the policy: on a capture that starts
    # mid-connection most fields are HPACK entries older than it, nameless and valueless.
    name = h.name
    shown = None if name is None else _name_text(name)
    value = None if h.value is None else policy.value(h, confirms)
    unknown = h.unknown
    if unknown is None:
        if h.guessed:
            return {"name": shown, "value": value, "guessed": True}
        return {"name": shown, "value": value}
    if h.guessed:
        return {"name": shown, "value": value, "unknown": unknown, "guessed": True}
    return {"name": shown, "value": value, "unknown": unknown}


# Header names repeat in every message (HPACK entries, the same few dozen names): their
# display text is made once. Bounded in entries and in key length.
_NAME_TEXTS: Final[dict[bytes, str]] = {}
_NAME_TEXTS_MAX: Final = 4096


def _name_text(name: bytes) -> str:
    shown = _NAME_TEXTS.get(name)
    if shown is None:
        shown = text(name)
        if len(name) <= 128:
            if len(_NAME_TEXTS) >= _NAME_TEXTS_MAX:
                _NAME_TEXTS.clear()
            _NAME_TEXTS[name] = shown
    return shown


def same_ids(m: Message, confirms: Confirms | None) -> Confirms | None:
    """``confirms``, extended to the guessed contexts whose trace and span ids a context
    read under known names in the same message carries too (a guessed grpc-trace-bin beside
    its traceparent): their values show nothing the message does not show already."""
    guessed = [c for c in m.trace if c.guessed and c.trace_id is not None]
    if not guessed:
        return confirms
    known = {(c.trace_id, c.span_id) for c in m.trace if not c.guessed and c.trace_id is not None}
    names = {n.encode("latin-1") for c in guessed if (c.trace_id, c.span_id) in known for n in c.headers}
    if not names:
        return confirms
    local = {h.value for h in m.headers if h.guessed and h.lname in names and h.value is not None}
    local.update(c.raw.encode("latin-1") for c in guessed if (c.trace_id, c.span_id) in known)

    def check(value: bytes) -> bool:
        return value in local or (confirms is not None and confirms(value))

    return check


def message_dict(m: Message, policy: Policy | bool = DEFAULT,
                 confirms: Confirms | None = None) -> dict[str, Any]:
    """One message as a JSON object. ``confirms`` (a Corroboration's) decides whether a
    guessed or unnamed tracing value may be shown; without it none is (but for one whose
    ids the message shows under known names, ``same_ids``)."""
    policy = _policy(policy)
    confirms = same_ids(m, confirms)
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
        "path": None if m.path is None else policy.url(text(m.path)),
        "authority": None if m.authority is None else policy.url(text(m.authority)),
        "status": m.status,
        "headers": header_list(m.headers, policy, confirms),
        "trailers": header_list(m.trailers, policy, confirms),
        "trace": [context_dict(c, policy, confirms) for c in m.trace],
        "anomalies": [anomaly_dict(a) for a in m.anomalies],
    }


def request_id(m: Message, policy: Policy = DEFAULT, confirms: Confirms | None = None) -> str | None:
    for c in policy.visible(m.trace, confirms):
        if c.format == "x-request-id":
            return c.raw
    return None


def trace_id(m: Message, policy: Policy = DEFAULT, confirms: Confirms | None = None) -> str | None:
    for c in policy.visible(m.trace, confirms):
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
_HEADERS_CELL = CSV_FIELDS.index("headers")


def csv_row(m: Message, policy: Policy | bool = DEFAULT, confirms: Confirms | None = None) -> list[Any]:
    """One CSV row: every text cell escaped and defused against formulas (``csv_cell``);
    the headers cell has one line per field."""
    policy = _policy(policy)
    confirms = same_ids(m, confirms)
    d = message_dict(m, policy, confirms)
    c = d["connection"]
    headers = "\n".join(
        escape(f"{h['name'] if h['name'] is not None else '<unknown>'}: "
               f"{h['value'] if h['value'] is not None else '<unknown>'}")
        for h in d["headers"]
    )
    row = [
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
        request_id(m, policy, confirms) or "",
        trace_id(m, policy, confirms) or "",
        " ".join(t["format"] for t in d["trace"]),
        "; ".join(v for t in d["trace"] for v in t["violations"]),
        headers,
        "; ".join(f"{a['kind']}@{a['frame']}" for a in d["anomalies"]),
    ]
    return [csv_cell(v if i == _HEADERS_CELL or not isinstance(v, str) else escape(v))
            for i, v in enumerate(row)]


# -- the table, laid out for the terminal ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageTable:
    """The message table for a width known before the first message (rows stream): frame,
    time, connection and message, with the full x-request-id and trace id in columns of
    their own when there is room, on a line under the message otherwise. A long connection
    or message wraps onto continuation lines; nothing is cut."""

    connection: int
    message: int
    inline_ids: bool

    def head(self) -> str:
        cells = ["frame".rjust(6), "time (UTC)".ljust(12), "connection".ljust(self.connection),
                 "message".ljust(self.message)]
        if self.inline_ids:
            cells += ["x-request-id".ljust(ID_WIDTH), "trace id"]
        return "  ".join(cells).rstrip()

    def lines(self, m: Message, policy: Policy = DEFAULT, confirms: Confirms | None = None) -> list[str]:
        frame, clock, flow, what = table_row(m, policy)
        rid, tid, marks = _ids(m, policy, confirms)
        total = 22 + self.connection + 2 + self.message
        below: list[str] = []
        if not self.inline_ids and len(what) > self.message:
            # too long for its column: the message gets a line of its own, the width of the table
            below, what = wrap(what, total, " " * 22, " " * 22, split=True), ""
        cols = [wrap(flow, self.connection), wrap(what, self.message, split=True)]
        if self.inline_ids:
            cols += [[rid or "-"], [(tid or "-") + marks]]
        height = max(len(c) for c in cols)
        widths = [self.connection, self.message, ID_WIDTH, 0][: len(cols)]
        out = []
        for k in range(height):
            lead = f"{frame:>6}  {clock:12}" if k == 0 else " " * 20
            cells = [(c[k] if k < len(c) else "").ljust(w) for c, w in zip(cols, widths, strict=True)]
            out.append("  ".join([lead, *cells]).rstrip())
        out += below
        if not self.inline_ids and (rid or tid or marks):
            ids = ([f"x-request-id {rid}"] if rid else []) + [f"trace {tid or '-'}{marks}"]
            out += wrap_list(ids, total, " " * 22, " " * 22, sep="  ")
        return out


ID_WIDTH: Final = 36  # an x-request-id UUID; a trace id is at most 32 hex digits and 2 marks


def message_table(cols: int) -> MessageTable:
    """The layout for ``cols`` columns: 20 for frame and time, the rest shared."""
    rest = cols - 20 - 2
    if rest - 2 * (ID_WIDTH + 2) >= 54:  # room for a useful connection and message beside the ids
        rest -= 2 * (ID_WIDTH + 2)
        conn = min(36, rest - 26)
        return MessageTable(conn, rest - conn - 2, True)
    conn = min(36, max(20, rest - 18))  # a v4 connection on one line first: it repeats most
    return MessageTable(conn, max(10, rest - conn - 2), False)


def _ids(m: Message, policy: Policy, confirms: Confirms | None) -> tuple[str, str, str]:
    marks = ("!" if any(c.violations for c in m.trace) else "") + ("?" if m.anomalies else "")
    tid = trace_id(m, policy, confirms)
    return (escape(request_id(m, policy, confirms) or ""),
            # a 64-bit id padded to 128 bits as its 16 digits; nothing else shortened
            escape(tid[16:] if tid and tid.startswith("0" * 16) else tid or ""), marks)


def table_row(m: Message, policy: Policy = DEFAULT) -> list[str]:
    """Frame, time, connection and message of a table line, each escaped and none shortened
    (the table wraps them): nothing from the capture reaches a terminal raw."""
    ep = m.endpoints
    flow = f"{format_endpoint(ep.src, ep.sport)} → {format_endpoint(ep.dst, ep.dport)}"
    if m.kind == "request":
        # an HPACK entry older than the capture can hide the method or the path
        path = policy.url(text(m.path)) if m.path is not None else "<unknown path>"
        what = f"{text(m.method or b'<?>')} {path}"
    else:
        what = f"← {m.status}"
    if m.stream is not None:
        what = f"#{m.stream} {what}"
    sec = (m.ts_ns // 1_000_000_000) % 86400
    ms = (m.ts_ns // 1_000_000) % 1000
    clock = f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{ms:03d}"
    return [str(m.frame), clock, escape(flow), escape(what)]
