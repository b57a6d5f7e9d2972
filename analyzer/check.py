"""Propagation expectations: what verdict each hop of a recorded scenario is expected to get,
kept in a JSON file beside the captures, and the comparison of a new analysis with it
(``tracewire check``, the pytest plugin).

An expectation file (``NAME.tracewire.json``) is meant to be read and edited by people and to
survive re-recording the same scenario: hops are keyed as ``tracewire diff`` keys them
(source, target, protocol, method, path template), never by frame numbers, ports or ids::

    {
      "schema_version": 1,
      "captures": ["productpage.pcap", "reviews.pcap"],
      "hops": [
        {"source": "productpage", "target": "details:9080", "protocol": "http/1.1",
         "method": "GET", "path": "/details/{n}", "verdict": "ok"},
        {"source": "productpage", "target": "reviews:9080", "protocol": "http/1.1",
         "method": "GET", "path": "/reviews/{n}", "verdict": "broken",
         "breaks": [{"kind": "changed", "headers": ["x-b3-traceid"], "count": 2}]}
      ]
    }

A hop's verdict is ``ok`` (some call was judged, none broke), ``broken`` (one entry per
finding kind: the headers concerned, and how many calls when ``count`` is given; leave
``count`` out to accept any number) or ``unjudged`` (no call of the hop could be judged: a
root call, a request served since before the capture, headers the capture cannot show). The
last one exists because a capture that cannot show a verdict must not be written down as
"ok". ``note`` strings, at the top or in a hop, are for people and are ignored.

``captures`` are paths relative to the file. Where the file is found (``expectation_path``):
one capture ``D/NAME.pcap`` has ``D/NAME.tracewire.json``; several captures of one scenario
(one per pod, all in one directory ``D``) share ``D/<name of D>.tracewire.json``; anything
else needs ``--expect FILE``. A file found by name must list the captures given, so that a
pod's own file and its scenario's file are never confused.

The file holds what the captures show, so it is written as every output is: a credential in
a hop's path (a password in an absolute request target) is redacted in the key itself, and
controls and bidi marks are JSON escapes. ``analyzer.report.check`` shows a ``CheckResult``;
``analyzer.pytest_plugin`` runs each file as a test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.analysis.diff import hop_key
from analyzer.analysis.legs import Options
from analyzer.analysis.model import KINDS, Outcome, Result
from analyzer.errors import AnalyzerError
from analyzer.report.redact import json_safe, redact_url

__all__ = [
    "CHANGES",
    "SCHEMA_VERSION",
    "SUFFIX",
    "VERDICTS",
    "Break",
    "CheckResult",
    "Difference",
    "Expectation",
    "ExpectationError",
    "HopVerdict",
    "capture_paths",
    "check",
    "dumps",
    "expectation_of",
    "expectation_path",
    "load",
    "loads",
    "observe",
    "write_expect",
]

SCHEMA_VERSION = 1
SUFFIX = ".tracewire.json"
VERDICTS = ("ok", "broken", "unjudged")
# What can differ for one hop, worst first (the order ``check`` reports them in):
#   broken    expected ok (or unjudged), now has broken calls
#   differs   broken as expected, but with other kinds, headers or counts
#   new       a hop the expectation does not list
#   gone      a hop the expectation lists and the captures no longer show
#   fixed     expected broken, now ok
#   unjudged  expected a verdict, and no call of the hop can be judged now
#   judged    expected unjudged, now judged ok
CHANGES = ("broken", "differs", "new", "gone", "fixed", "unjudged", "judged")
# the file name's capture suffixes, longest first (NAME.pcap.gz -> NAME)
CAPTURE_SUFFIXES = (".pcapng.gz", ".pcap.gz", ".cap.gz", ".pcapng", ".pcap", ".cap", ".gz")

Key = tuple[str, str, str, str, str]
KEY_FIELDS = ("source", "target", "protocol", "method", "path")


class ExpectationError(AnalyzerError):
    """An expectation file that cannot be used: missing, not JSON, or a field that breaks the
    schema. The message is one line naming the file and the field."""


@dataclass(frozen=True, slots=True)
class Break:
    """The calls of one finding kind on a hop: the headers concerned (the union over those
    calls) and how many calls; ``count`` None in an expectation accepts any number."""

    kind: str
    headers: tuple[str, ...]
    count: int | None = None


@dataclass(frozen=True, slots=True)
class HopVerdict:
    """One hop's verdict, expected (from a file) or found (from an analysis, with ``calls``)."""

    key: Key
    verdict: str
    breaks: tuple[Break, ...] = ()
    calls: int | None = None  # found only: the hop's outbound calls
    note: str | None = None  # expected only: the person's comment, kept on rewrite

    def by_kind(self) -> dict[str, Break]:
        return {b.kind: b for b in self.breaks}


@dataclass(slots=True)
class Expectation:
    """What an expectation file says; ``path`` is where it was read from or goes to."""

    captures: list[str]  # as written: relative to the file's directory
    hops: dict[Key, HopVerdict]
    path: str | None = None
    note: str | None = None
    options: Options = field(default_factory=Options)


@dataclass(frozen=True, slots=True)
class Difference:
    """One hop whose verdict differs from the expectation: ``change`` (``CHANGES``), what was
    expected and found (None when the hop is on one side only), and what differs, in words."""

    change: str
    key: Key
    expected: HopVerdict | None
    found: HopVerdict | None
    details: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.key[0]

    @property
    def target(self) -> str:
        return self.key[1]

    @property
    def protocol(self) -> str:
        return self.key[2]

    @property
    def method(self) -> str:
        return self.key[3]

    @property
    def path(self) -> str:
        return self.key[4]


@dataclass(slots=True)
class CheckResult:
    """An analysis compared with an expectation: ``differences`` worst first, and how many
    hops matched. ``matches`` decides the exit status of ``tracewire check``."""

    captures: list[str]
    expectation: str | None
    differences: list[Difference]
    matching: int

    @property
    def matches(self) -> bool:
        return not self.differences


# -- the verdict an analysis gives ----------------------------------------------------------


def _key(o: Outcome) -> Key:
    """diff's own key, so that a hop here is the hop ``tracewire diff`` shows; a credential in
    its path (``http://user:secret@host/...``) or its target (a Host ``user:secret@host``)
    redacted, so that it never reaches the file (and a new password is not a new hop)."""
    source, target, protocol, method, path = hop_key(o)[0]
    return source, redact_url(target), protocol, method, redact_url(path)


def observe(result: Result) -> dict[Key, HopVerdict]:
    """Every hop of ``result`` with its verdict, broken calls counted per kind. One pass over
    the outcomes; memory grows with hops and kinds, not calls."""
    calls: dict[Key, int] = {}
    judged: set[Key] = set()
    counts: dict[Key, dict[str, int]] = {}
    headers: dict[Key, dict[str, set[str]]] = {}
    for o in result.outcomes:
        key = _key(o)
        calls[key] = calls.get(key, 0) + 1
        if o.verdict == "judged":
            judged.add(key)
        for f in o.findings:
            kinds = counts.setdefault(key, {})
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
            headers.setdefault(key, {}).setdefault(f.kind, set()).update(f.headers)
    out: dict[Key, HopVerdict] = {}
    for key in sorted(calls):
        if key in counts:
            breaks = tuple(Break(k, tuple(sorted(headers[key][k])), counts[key][k])
                           for k in KINDS if k in counts[key])
            out[key] = HopVerdict(key, "broken", breaks, calls[key])
        else:
            out[key] = HopVerdict(key, "ok" if key in judged else "unjudged", (), calls[key])
    return out


def expectation_of(result: Result, path: str | None = None,
                   previous: Expectation | None = None, options: Options | None = None) -> Expectation:
    """The expectation that ``result`` matches exactly (counts included), for a file at
    ``path``: captures relative to its directory. Notes of a ``previous`` expectation stay
    with their hops."""
    base = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    hops = observe(result)
    notes = {} if previous is None else {k: h.note for k, h in previous.hops.items() if h.note}
    hops = {k: HopVerdict(k, h.verdict, h.breaks, None, notes.get(k)) for k, h in hops.items()}
    rel = sorted(_relative(c, base) for c in result.captures)  # the order given is no part of it
    opts = options if options is not None else Options()
    if opts.names:
        opts = Options(opts.pod_ip, opts.app_ports, opts.outbound_port, opts.include_noise,
                       tuple((pod, _relative(c, base)) for pod, c in opts.names))
    return Expectation(rel, hops, path, previous.note if previous else None, opts)


def _relative(capture: str, base: str) -> str:
    return os.path.relpath(os.path.abspath(capture), base).replace(os.sep, "/")


# -- comparing ------------------------------------------------------------------------------


def _compare_breaks(want: HopVerdict, got: HopVerdict) -> list[str]:
    out: list[str] = []
    w, g = want.by_kind(), got.by_kind()
    for kind in KINDS:
        a, b = w.get(kind), g.get(kind)
        if a is None and b is None:
            continue
        if a is None and b is not None:
            out.append(f"+{kind} ({b.count}: {' '.join(b.headers)})")
        elif b is None and a is not None:
            out.append(f"-{kind}")
        elif a is not None and b is not None:
            added = [h for h in b.headers if h not in a.headers]
            removed = [h for h in a.headers if h not in b.headers]
            if added or removed:
                out.append(f"{kind} headers " + " ".join([*(f"+{h}" for h in added),
                                                          *(f"-{h}" for h in removed)]))
            if a.count is not None and a.count != b.count:
                out.append(f"{kind} {a.count} → {b.count} calls")
    return out


def _difference(key: Key, want: HopVerdict | None, got: HopVerdict | None) -> Difference | None:
    if want is None:
        return Difference("new", key, None, got)
    if got is None:
        return Difference("gone", key, want, None)
    if want.verdict == got.verdict == "broken":
        details = _compare_breaks(want, got)
        return Difference("differs", key, want, got, tuple(details)) if details else None
    if want.verdict == got.verdict:
        return None
    if got.verdict == "broken":
        return Difference("broken", key, want, got)
    if want.verdict == "broken" and got.verdict == "ok":
        return Difference("fixed", key, want, got)
    if got.verdict == "unjudged":
        return Difference("unjudged", key, want, got)
    return Difference("judged", key, want, got)


def check(result: Result, expectation: Expectation) -> CheckResult:
    """``result`` compared with ``expectation``, hop by hop (linear in hops)."""
    found = observe(result)
    rank = {c: n for n, c in enumerate(CHANGES)}
    diffs: list[Difference] = []
    matching = 0
    for key in sorted(set(found) | set(expectation.hops)):
        d = _difference(key, expectation.hops.get(key), found.get(key))
        if d is None:
            matching += 1
        else:
            diffs.append(d)
    diffs.sort(key=lambda d: (rank[d.change], d.key))
    return CheckResult(list(result.captures), expectation.path, diffs, matching)


# -- where the file is ----------------------------------------------------------------------


def _stem(capture: str) -> str:
    name = os.path.basename(capture)
    for suffix in CAPTURE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def expectation_path(captures: Sequence[str]) -> str:
    """The expectation file of these captures when no --expect names it: ``NAME.tracewire.json``
    beside the one capture ``NAME.pcap``, or ``D/<D's name>.tracewire.json`` for several
    captures in one directory D (one scenario, one pod per capture)."""
    if any(c == "-" for c in captures):
        raise ExpectationError("a capture read from standard input has no expectation file beside it: "
                               "give --expect FILE")
    if len(captures) == 1:
        c = captures[0]
        return os.path.join(os.path.dirname(c), _stem(c) + SUFFIX)
    folders = {os.path.dirname(os.path.abspath(c)) for c in captures}
    if len(folders) != 1:
        raise ExpectationError("captures in different directories share no expectation file by name: "
                               "give --expect FILE")
    folder = os.path.dirname(captures[0])
    return os.path.join(folder, os.path.basename(folders.pop()) + SUFFIX)


def capture_paths(expectation: Expectation) -> list[str]:
    """The expectation's captures as paths a reader can open (relative to the file)."""
    base = os.path.dirname(expectation.path) if expectation.path else ""
    return [os.path.join(base, c) for c in expectation.captures]


def options_for(expectation: Expectation) -> Options:
    """The analysis options the file keeps, with --name captures made paths again."""
    o = expectation.options
    if not o.names:
        return o
    base = os.path.dirname(expectation.path) if expectation.path else ""
    return Options(o.pod_ip, o.app_ports, o.outbound_port, o.include_noise,
                   tuple((pod, os.path.join(base, c)) for pod, c in o.names))


# -- the file -------------------------------------------------------------------------------


def _hop_dict(h: HopVerdict) -> dict[str, Any]:
    d: dict[str, Any] = dict(zip(KEY_FIELDS, h.key, strict=True))
    d["verdict"] = h.verdict
    if h.note:
        d["note"] = h.note
    if h.breaks:
        breaks = []
        for b in h.breaks:
            bd: dict[str, Any] = {"kind": b.kind, "headers": list(b.headers)}
            if b.count is not None:
                bd["count"] = b.count
            breaks.append(bd)
        d["breaks"] = breaks
    return d


def to_dict(e: Expectation) -> dict[str, Any]:
    d: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    if e.note:
        d["note"] = e.note
    d["captures"] = list(e.captures)
    o = e.options
    opts: dict[str, Any] = {}
    if o.pod_ip is not None:
        opts["pod_ip"] = o.pod_ip
    if o.app_ports:
        opts["app_ports"] = list(o.app_ports)
    if o.outbound_port != Options().outbound_port:
        opts["outbound_port"] = o.outbound_port
    if o.names:
        opts["names"] = {pod: c for pod, c in o.names}
    if opts:
        d["options"] = opts
    d["hops"] = [_hop_dict(e.hops[k]) for k in sorted(e.hops)]
    return d


def dumps(e: Expectation) -> str:
    """The file's text: sorted hops, one field per line and one break per line, so that a
    re-recording changes only the lines whose verdict changed and a person edits a line."""
    def one(v: object) -> str:
        return json.dumps(v, ensure_ascii=False)

    d = to_dict(e)
    lines = ["{"]
    for name in ("schema_version", "note", "captures", "options"):
        if name in d:
            lines.append(f"  {one(name)}: {one(d[name])},")
    hops = []
    for h in d["hops"]:
        fields = [f"      {one(k)}: {one(v)}" for k, v in h.items() if k != "breaks"]
        if "breaks" in h:  # last: after the verdict and the note that explains it
            breaks = ",\n".join(f"        {one(b)}" for b in h["breaks"])
            fields.append(f'      "breaks": [\n{breaks}\n      ]')
        hops.append("    {\n" + ",\n".join(fields) + "\n    }")
    lines.append('  "hops": [' + ("\n" + ",\n".join(hops) + "\n  ]" if hops else "]"))
    lines.append("}")
    return json_safe("\n".join(lines)) + "\n"  # bidi marks and C1 controls as \\u escapes


def write_expect(result: Result, path: str | None = None, options: Options | None = None) -> Expectation:
    """Write the expectation ``result`` matches to ``path`` (``expectation_path`` of its
    captures by default), keeping the notes of the file it replaces; returns it."""
    if "-" in result.captures:  # the file lists its captures, and a pipe has no name
        raise ExpectationError("a capture read from standard input cannot be listed in an expectation "
                               "file: give the capture as a file")
    target = path if path is not None else expectation_path(result.captures)
    previous = None
    if os.path.exists(target):
        try:
            previous = load(target)
        except ExpectationError:
            previous = None  # an invalid file is being replaced: nothing of it to keep
    e = expectation_of(result, target, previous, options)
    try:
        with open(target, "w", encoding="utf-8") as f:
            f.write(dumps(e))
    except OSError as err:
        raise ExpectationError(f"{_shown(target)}: cannot write: {err.strerror or err}") from err
    return e


def _shown(path: str) -> str:
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in path)


def load(path: str) -> Expectation:
    """Read and validate an expectation file; ``ExpectationError`` says what is wrong in one
    line naming the file and the field."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except OSError as err:
        what = "no expectation file" if isinstance(err, FileNotFoundError) else "cannot read"
        hint = " (tracewire check --write-expect writes it)" if isinstance(err, FileNotFoundError) else ""
        raise ExpectationError(f"{_shown(path)}: {what}: {err.strerror or err}{hint}") from err
    if len(raw) > _MAX_BYTES:
        raise ExpectationError(f"{_shown(path)}: larger than {_MAX_BYTES // 2**20} MiB: "
                               "not an expectation file")
    return loads(raw, path)


# An expectation lists hops, not calls: a few kilobytes. The bound keeps a wrong file (a
# capture given as --expect) from being read whole.
_MAX_BYTES = 16 * 2**20


class _Field:
    """Validation with the field's place in the file: ``hops[3].breaks[0].count``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, what: str) -> ExpectationError:
        return ExpectationError(f"{_shown(self.path)}: {where or 'the document'}: {what}")

    def obj(self, v: object, where: str, allowed: Iterable[str], required: Iterable[str]) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise self.fail(where, f"expected an object, found {_json_type(v)}")
        allowed_set = set(allowed)
        for k in v:
            if k not in allowed_set:
                raise self.fail(f"{where}.{_shown(k)}" if where else _shown(k),
                                f"unknown field (allowed: {', '.join(sorted(allowed_set))})")
        for k in required:
            if k not in v:
                raise self.fail(f"{where}.{k}" if where else k, "missing")
        return v

    def text(self, v: object, where: str) -> str:
        if not isinstance(v, str):
            raise self.fail(where, f"expected a string, found {_json_type(v)}")
        return v

    def texts(self, v: object, where: str) -> list[str]:
        if not isinstance(v, list):
            raise self.fail(where, f"expected a list of strings, found {_json_type(v)}")
        return [self.text(x, f"{where}[{n}]") for n, x in enumerate(v)]

    def count(self, v: object, where: str, low: int = 1, high: int = 2**63 - 1) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise self.fail(where, f"expected a whole number from {low}" + (
                f" to {high}" if high < 2**63 - 1 else "") + f", found {_json_value(v)}")
        return v


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true or false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(v), type(v).__name__)


def _json_value(v: object) -> str:
    if isinstance(v, bool | int | float) or v is None:
        return json.dumps(v)
    return _json_type(v)


def loads(text: str | bytes, path: str = "<expectation>") -> Expectation:
    """An expectation from its JSON text (``path`` names it in errors and anchors its captures)."""
    v = _Field(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ExpectationError(f"{_shown(path)}: line {err.lineno}: not JSON: {err.msg}") from None
    except UnicodeDecodeError as err:
        raise ExpectationError(f"{_shown(path)}: byte {err.start}: not UTF-8") from None
    except RecursionError:  # a hostile file: nothing in an expectation nests more than 4 deep
        raise ExpectationError(f"{_shown(path)}: the document: nested too deeply") from None
    top = v.obj(doc, "", ("schema_version", "note", "captures", "options", "hops"),
                ("schema_version", "captures", "hops"))
    version = top["schema_version"]
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise v.fail("schema_version", f"{_json_value(version)} is not a version this tracewire reads "
                     f"({SCHEMA_VERSION})")
    note = v.text(top["note"], "note") if "note" in top else None
    captures = v.texts(top["captures"], "captures")
    if not captures:
        raise v.fail("captures", "lists no capture")
    for n, c in enumerate(captures):
        # Any name a file can have: --write-expect lists the captures it was given, and a name
        # with a control in it is still that file (every output shows it escaped). NUL is none.
        if not c or "\x00" in c:
            raise v.fail(f"captures[{n}]", "not a file name")
    options = _options(v, top.get("options"))
    hops_v = top["hops"]
    if not isinstance(hops_v, list):
        raise v.fail("hops", f"expected a list, found {_json_type(hops_v)}")
    hops: dict[Key, HopVerdict] = {}
    for n, h in enumerate(hops_v):
        hop = _hop(v, h, f"hops[{n}]")
        if hop.key in hops:
            raise v.fail(f"hops[{n}]", "the same hop (source, target, protocol, method, path) "
                         "is listed twice")
        hops[hop.key] = hop
    return Expectation(captures, hops, path, note, options)


def _options(v: _Field, raw: object) -> Options:
    if raw is None:
        return Options()
    o = v.obj(raw, "options", ("pod_ip", "app_ports", "outbound_port", "names"), ())
    pod_ip = v.text(o["pod_ip"], "options.pod_ip") if "pod_ip" in o else None
    ports_v = o.get("app_ports", [])
    if not isinstance(ports_v, list):
        raise v.fail("options.app_ports", f"expected a list of ports, found {_json_type(ports_v)}")
    ports = tuple(v.count(p, f"options.app_ports[{n}]", 1, 65535) for n, p in enumerate(ports_v))
    outbound = (v.count(o["outbound_port"], "options.outbound_port", 1, 65535) if "outbound_port" in o
                else Options().outbound_port)
    names_v = o.get("names", {})
    if not isinstance(names_v, dict):
        raise v.fail("options.names", f"expected an object POD: CAPTURE, found {_json_type(names_v)}")
    names = tuple((pod, v.text(c, f"options.names.{_shown(pod)}")) for pod, c in names_v.items())
    return Options(pod_ip, ports, outbound, names=names)


def _hop(v: _Field, raw: object, where: str) -> HopVerdict:
    h = v.obj(raw, where, (*KEY_FIELDS, "verdict", "breaks", "note"), (*KEY_FIELDS, "verdict"))
    key = tuple(v.text(h[k], f"{where}.{k}") for k in KEY_FIELDS)
    verdict = v.text(h["verdict"], f"{where}.verdict")
    if verdict not in VERDICTS:
        raise v.fail(f"{where}.verdict", f"{verdict!r} is not one of {', '.join(VERDICTS)}")
    note = v.text(h["note"], f"{where}.note") if "note" in h else None
    breaks: list[Break] = []
    if verdict == "broken":
        if "breaks" not in h:
            raise v.fail(f"{where}.breaks", "missing (a broken hop lists its kinds)")
        raw_breaks = h["breaks"]
        if not isinstance(raw_breaks, list) or not raw_breaks:
            raise v.fail(f"{where}.breaks", "expected a list of at least one {kind, headers, count}")
        seen: set[str] = set()
        for n, b in enumerate(raw_breaks):
            at = f"{where}.breaks[{n}]"
            bd = v.obj(b, at, ("kind", "headers", "count"), ("kind", "headers"))
            kind = v.text(bd["kind"], f"{at}.kind")
            if kind not in KINDS:
                raise v.fail(f"{at}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
            if kind in seen:
                raise v.fail(f"{at}.kind", f"{kind!r} is listed twice")
            seen.add(kind)
            headers = v.texts(bd["headers"], f"{at}.headers")
            count = v.count(bd["count"], f"{at}.count") if "count" in bd else None
            breaks.append(Break(kind, tuple(sorted({x.lower() for x in headers})), count))
    elif "breaks" in h:
        raise v.fail(f"{where}.breaks", f"only a broken hop lists breaks (verdict is {verdict!r})")
    breaks.sort(key=lambda b: KINDS.index(b.kind))
    return HopVerdict((key[0], key[1], key[2], key[3], key[4]), verdict, tuple(breaks), None, note)
