"""What a capture may show a reader: credentials redacted, untrusted text made inert.

Strategy: a capture is written by whoever sent the packets and its output is pasted into
terminals, tickets and spreadsheets. So every display string built from capture bytes
passes through this module, once, before any text is made of it:

- ``Policy.value`` decides whether a header value is shown: by the header's name (a fixed
  list, a rule on name parts, the user's ``--redact`` names, an allow-list that keeps the
  tracing headers visible), and for HTTP/2 names the capture cannot show (an HPACK entry
  older than the capture) or only guessed from the value's shape, by corroboration;
- ``Policy.url`` redacts credential parameters in query strings and userinfo passwords;
- ``escape`` shows terminal control bytes as ``\\x1b``; ``csv_cell`` defuses spreadsheet
  formulas; ``md_code`` puts text in a Markdown code span it cannot leave.

A redacted value keeps its length ("<redacted, 41 bytes>"): that is often what a reader
debugging a proxy needs, and it says nothing of the value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote

from analyzer.protocols.hpack_state import guess_name
from analyzer.records import Header
from analyzer.tracing import TRACING_HEADER_NAMES, TraceContext

SECRET_HEADERS = frozenset(
    (
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"set-cookie2",
        b"x-api-key",
        b"api-key",
        b"x-auth-token",
        b"x-access-token",
        b"x-csrf-token",
        b"x-xsrf-token",
        b"x-amz-security-token",
        b"x-goog-iap-jwt-assertion",
        b"x-forwarded-client-cert",  # Envoy's XFCC carries the peer's certificate details
        b"x-istio-attributes",
        b"x-envoy-peer-metadata",
        b"x-jwt-payload",
        b"grpc-metadata-authorization",
        b"ocp-apim-subscription-key",
        b"x-functions-key",
        b"x-goog-api-key",
        b"x-vault-token",
        b"baggage",  # W3C baggage and Jaeger's uberctx-* carry user data (ids, emails, tokens)
    )
)
# A name that contains one of these is a credential's, whoever invented it
# (x-forwarded-authorization, x-my-service-token, x-amz-security-token, ...). "auth" does
# not match ":authority", which names the target, not a secret.
_SECRET_RULE: Final = re.compile(
    rb"auth(?!ority)|token|secret|passw|pwd|session|cookie|api-key|apikey|api_key"
    rb"|signature|credential|private|jwt|assertion|csrf|xsrf|subscription-key|access-key"
    rb"|^uberctx-"
)
# Never redacted by the rule (only by an explicit --redact): the headers this tool exists
# to show. None of them matches the rule today; the list keeps it so when either changes.
ALLOWED: Final = frozenset(n.encode("ascii") for n in TRACING_HEADER_NAMES if n != "baggage") | frozenset(
    (b":authority", b":path", b":method", b":scheme", b":status", b":protocol", b"host")
)

# Query parameters that carry credentials (OAuth, API keys, signed URLs of S3, GCS and
# Azure SAS), compared lower-cased after percent-decoding; names matching the header rule
# above or starting with a cloud signing prefix are included too.
SECRET_PARAMS: Final = frozenset(
    (
        "access_token", "token", "id_token", "refresh_token", "api_key", "apikey", "key",
        "sig", "signature", "password", "passwd", "pwd", "pass", "secret", "client_secret",
        "code", "auth", "session", "sessionid", "session_id", "jsessionid", "phpsessid",
        "credential", "credentials", "private_token", "assertion", "client_assertion",
        "otp", "ticket", "state", "jwt", "bearer",
    )
)
_SIGNING_PREFIXES: Final = ("x-amz-", "x-goog-", "x-ms-")
_PARAM_RULE: Final = re.compile(
    r"auth|token|secret|passw|session|api-?_?key|signature|credential|private|jwt|assertion"
)

_verdicts: Final[dict[bytes, bool]] = {}  # Final: read directly in compiled code, not via the module dict
_VERDICTS_MAX: Final = 4096


def is_secret(lname: bytes | None) -> bool:
    """Whether a lower-cased header name is a credential's by the fixed list and the rule."""
    if lname is None:
        return False
    verdict = _verdicts.get(lname)
    if verdict is None:
        verdict = lname not in ALLOWED and (
            lname in SECRET_HEADERS or _SECRET_RULE.search(lname) is not None
        )
        # Names repeat; a hostile capture can grow this neither in entries nor in bytes.
        if len(_verdicts) < _VERDICTS_MAX and len(lname) <= 128:
            _verdicts[lname] = verdict
    return verdict


def _param_is_secret(name: str) -> bool:
    n = unquote(name).strip().lower()
    return (
        n in SECRET_PARAMS
        or n.startswith(_SIGNING_PREFIXES)
        or _PARAM_RULE.search(n) is not None
    )


def marker(n: int) -> str:
    """What stands for a redacted value: its length, never its bytes."""
    return _MARKERS[n] if 0 <= n < len(_MARKERS) else f"<redacted, {n} bytes>"


# Made once: an h2 capture with unknown HPACK names redacts most values, and formatting the
# number cost 3-4 % of its `messages` in the compiled build (issue 10).
_MARKERS: Final = tuple([f"<redacted, {n} bytes>" for n in range(512)])


_SCHEME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]{0,31}://")
_AUTHORITY_END: Final = re.compile(r"[/?#]")


def _userinfo(s: str) -> str:
    """``scheme://user:password@host...`` or ``user:password@host`` with the password
    redacted. Plain string searches (no backtracking regex): linear in a hostile value."""
    m = _SCHEME.match(s)
    start = m.end() if m is not None else 2 if s.startswith("//") else 0
    e = _AUTHORITY_END.search(s, start)
    end = e.start() if e is not None else len(s)
    at = s.rfind("@", start, end)
    if at < 0:
        return s
    colon = s.find(":", start, at)
    if colon < 0:
        return s
    return f"{s[: colon + 1]}{marker(len(s[colon + 1 : at].encode()))}{s[at:]}"


def redact_url(s: str) -> str:
    """A path, URL or authority with credential query values and userinfo passwords
    redacted; parameter names and everything else kept. Linear in the length of ``s``."""
    if "@" in s:
        s = _userinfo(s)
    q = s.find("?")
    if q < 0:
        return s
    head, query = s[: q + 1], s[q + 1 :]
    frag = ""
    h = query.find("#")
    if h >= 0:
        query, frag = query[:h], query[h:]
    changed = False
    parts = re.split(r"([&;])", query)
    for i in range(0, len(parts), 2):
        name, eq, value = parts[i].partition("=")
        if eq and value and _param_is_secret(name):
            parts[i] = f"{name}={marker(len(value.encode()))}"
            changed = True
    return head + "".join(parts) + frag if changed else s


def redact_urls_in(s: str) -> str:
    """Free text (a note, a rule) with the query string of any path in it redacted: each
    whitespace-separated word holding a "?" is redacted as a URL."""
    if "?" not in s:
        return s
    parts = re.split(r"(\s+)", s)
    return "".join(redact_url(p) if "?" in p or "@" in p else p for p in parts)


def text(value: bytes) -> str:
    """Bytes as text without losing any: UTF-8, undecodable bytes shown as \\xNN escapes."""
    return value.decode("utf-8", "backslashreplace")


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def binary_value(value: bytes) -> str:
    """A gRPC ``-bin`` value as base64: as sent when it is base64 text already; the raw
    bytes encoded when it came as true binary (a leading NUL marks that)."""
    if value[:1] == b"\x00":
        return base64.b64encode(value[1:]).decode("ascii")
    if _B64.issuperset(value):
        return value.decode("ascii")
    return base64.b64encode(value).decode("ascii")


# Headers whose value is a URL or a path: their query strings are redacted like :path's.
_URL_HEADERS: Final = frozenset(
    (b"referer", b"location", b"content-location", b"origin", b"x-envoy-original-path",
     b"x-original-url", b"x-original-uri", b"x-forwarded-uri", b"x-rewrite-url", b"link",
     b"x-forwarded-prefix", b":path", b"host", b":authority", b"x-forwarded-host")
)

Confirms = Callable[[bytes], bool]
_H: Final = frozenset((b"h", b"H"))
_NO_NAMES: Final[set[bytes]] = set()  # no name known beside a value (guess_name only reads it)


@dataclass(frozen=True, slots=True)
class Policy:
    """How credentials are treated in one command's output.

    ``names``: lower-cased header names the user asked to redact (``--redact``); they win
    over the allow-list. ``show_secrets`` shows everything as captured.
    """

    show_secrets: bool = False
    names: frozenset[bytes] = field(default_factory=frozenset)

    @classmethod
    def of(cls, show_secrets: bool = False, names: Iterable[str] = ()) -> Policy:
        return cls(show_secrets, frozenset(n.strip().lower().encode("utf-8") for n in names if n.strip()))

    def secret(self, lname: bytes | None) -> bool:
        """Whether values under this (lower-cased) name are hidden."""
        if self.show_secrets or lname is None:
            return False
        return lname in self.names or is_secret(lname)

    def value(self, h: Header, confirms: Confirms | None = None) -> str | None:
        """The one decision on how a header value is shown; None when the capture cannot
        show it. ``confirms`` tells whether a value was seen under a known tracing name
        (a ``Corroboration``); without it nothing guessed or unnamed is shown."""
        value = h.value
        if value is None:
            return None
        lname = h.lname
        if not self.show_secrets:
            if lname is None:
                # The name is an HPACK entry older than the capture: the value may be
                # anyone's credential. Only a tracing-shaped value seen elsewhere under a
                # known name is shown (it says nothing new then).
                if self.nameless_hidden(value) or confirms is None or not confirms(value):
                    return marker(len(value))
                return text(value)
            if h.guessed and (confirms is None or not confirms(value)):
                return marker(len(value))
            if lname in self.names or is_secret(lname):
                return marker(len(value))
            # (the first byte first: slicing and lower-casing four bytes of every value cost
            # more than the rest of this decision)
            first = value[:1]
            if lname in _URL_HEADERS or first == b"/" or (first in _H and value[:4].lower() == b"http"):
                return redact_url(text(value))
        if lname is not None and lname.endswith(b"-bin"):
            return binary_value(value)
        return text(value)

    def nameless_hidden(self, value: bytes) -> bool:
        """Whether a value under a name the capture does not show is redacted whatever
        corroborates it: it has no tracing shape (unless secrets are shown)."""
        return not self.show_secrets and guess_name(value, _NO_NAMES) is None

    def url(self, s: str | None) -> str | None:
        """A path, URL or authority as shown: credential parameters redacted."""
        if s is None or self.show_secrets:
            return s
        return redact_url(s)

    def context_hidden(self, c: TraceContext, confirms: Confirms | None = None) -> bool:
        """Whether a tracing context's values (raw, ids, violation texts) are hidden: it
        came from a redacted header (baggage, a --redact name) or from a guessed name not
        corroborated."""
        if self.show_secrets:
            return False
        if c.guessed and (confirms is None or not confirms(c.raw.encode("latin-1"))):
            return True
        if c.format == "baggage":  # baggage and uberctx-*: user data, redacted by name
            return True
        # Every other format's names are on the allow-list: only --redact can hide them.
        return bool(self.names) and any(n.encode("latin-1") in self.names for n in c.headers)

    def prose(self, s: str) -> str:
        """A sentence the analysis wrote about capture content (a note, a rule)."""
        return s if self.show_secrets else redact_urls_in(s)

    def visible(self, contexts: Sequence[TraceContext], confirms: Confirms | None = None
                ) -> list[TraceContext]:
        """The contexts whose ids may be shown or exported."""
        return [c for c in contexts if not self.context_hidden(c, confirms)]


DEFAULT: Final = Policy()


def display_value(lname: bytes | None, value: bytes | None, show_secrets: bool) -> str | None:
    """A known header's value as shown (kept for library callers; ``Policy.value`` decides)."""
    return Policy(show_secrets).value(Header(None if lname is None else lname, value, lname))


# -- text that cannot act on a reader ---------------------------------------------------------

# C0 controls (TAB, LF, CR, ESC, BEL...), DEL, C1 controls (U+0080-U+009F: CSI, OSC... in
# terminals that take 8-bit controls), bidirectional overrides and isolates (they reorder
# what a reader sees: "Trojan Source"), line and paragraph separators, and the BOM.
_MARKS: Final = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff"
_UNSAFE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f{_MARKS}]")
_JSON_UNSAFE: Final = re.compile(f"[\x7f-\x9f{_MARKS}]")


def _escaped(m: re.Match[str]) -> str:
    o = ord(m.group())
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def escape(s: str) -> str:
    """Untrusted text for a terminal, a table cell or a Markdown line: every control
    character shown as an escape (ESC as ``\\x1b``), so it cannot move the cursor,
    rewrite the window title, break a line or reorder the text."""
    return _UNSAFE.sub(_escaped, s) if _UNSAFE.search(s) else s


def _json_escaped(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


def json_safe(encoded: str) -> str:
    """JSON text with C1 controls and bidi marks written as \\u escapes: the encoder already
    escapes C0 controls but passes these through when ``ensure_ascii`` is off. They can
    only occur inside JSON strings, where \\uXXXX means the same character."""
    if encoded.isascii() and "\x7f" not in encoded:
        # Nothing to escape (all but DEL are beyond ASCII), told in O(1) + a memchr-speed
        # scan: the regex search cost 7 us a message line, 6-9 % of `messages` (issue 10).
        return encoded
    return _JSON_UNSAFE.sub(_json_escaped, encoded) if _JSON_UNSAFE.search(encoded) else encoded


_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(v: object) -> object:
    """A CSV cell that a spreadsheet cannot run (OWASP: a cell starting with = + - @ TAB
    or CR is prefixed with a single quote), its control characters escaped except the line
    breaks the report put between fields of one cell. Numbers stay numbers."""
    if not isinstance(v, str):
        return v
    if _UNSAFE.search(v):
        v = "\n".join(map(escape, v.split("\n")))
    if v.startswith(_FORMULA_START):
        return "'" + v
    return v


def md_code(s: str | None, table: bool = False) -> str:
    """Untrusted text as an inline Markdown code span it cannot leave: a fence longer than
    any run of backticks inside, so no link, image, emphasis or HTML can come of it; in a
    table cell a pipe is escaped too (GFM splits cells before code spans)."""
    if s is None or s == "":
        return "-"
    s = escape(s)
    if table:
        s = s.replace("|", "\\|")
    longest = max((len(r) for r in re.findall("`+", s)), default=0)
    fence = "`" * (longest + 1)
    if longest or s[0] == " " or s[-1] == " ":
        return f"{fence} {s} {fence}"
    return f"{fence}{s}{fence}"
