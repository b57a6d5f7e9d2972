"""``tracewire check`` output: what differs from the expectation, as a terminal table in the
``diff`` style (worse first) or JSON; the same text is the pytest plugin's failure report.

Hop names, paths, capture and expectation file names come from captures or from an edited
file: paths pass the redaction policy and every table cell is escaped (``redact``).
"""

from __future__ import annotations

from typing import Any

from analyzer.analysis.model import KINDS
from analyzer.check import Break, CheckResult, Difference, Expectation, HopVerdict
from analyzer.report.diff import SHORT
from analyzer.report.redact import DEFAULT, Policy, escape
from analyzer.report.term import PLAIN, Column, Paint, plural, wrap_list
from analyzer.report.term import table as grid

__all__ = ["check_dict", "table", "verdict_line", "written"]

# the groups of the diff table: what got worse, what got better, the rest
WORSE = frozenset(("broken", "differs"))
BETTER = frozenset(("fixed", "judged"))


def _break_dict(b: Break) -> dict[str, Any]:
    d: dict[str, Any] = {"kind": b.kind, "headers": list(b.headers)}
    if b.count is not None:
        d["count"] = b.count
    return d


def _verdict_dict(h: HopVerdict | None) -> dict[str, Any] | None:
    if h is None:
        return None
    d: dict[str, Any] = {"verdict": h.verdict, "breaks": [_break_dict(b) for b in h.breaks]}
    if h.calls is not None:
        d["calls"] = h.calls
    return d


def difference_dict(d: Difference, policy: Policy = DEFAULT) -> dict[str, Any]:
    return {
        "change": d.change,
        "source": d.source,
        "target": d.target,
        "protocol": d.protocol,
        "method": d.method,
        "path": policy.url(d.path),
        "expected": _verdict_dict(d.expected),
        "found": _verdict_dict(d.found),
        "details": _details(d, policy),
    }


def check_dict(r: CheckResult, policy: Policy = DEFAULT) -> dict[str, Any]:
    return {
        "expectation": r.expectation,
        "captures": r.captures,
        "matches": r.matches,
        "matching_hops": r.matching,
        "differences": [difference_dict(d, policy) for d in r.differences],
    }


def _breaks(h: HopVerdict) -> str:
    return ", ".join((f"{b.count} " if b.count is not None else "") + SHORT[b.kind] for b in h.breaks)


def _cell(h: HopVerdict | None) -> str:
    """A verdict in a few words: ``ok``, ``unjudged``, ``2 chg, 1 miss`` (a kind without a
    count accepts any number); found verdicts say of how many calls."""
    if h is None:
        return "-"
    text = _breaks(h) if h.verdict == "broken" else h.verdict
    return text if h.calls is None else f"{plural(h.calls, 'call')}: {text}"


def _headers(h: HopVerdict) -> list[str]:
    return [f"{b.kind}: {' '.join(b.headers) or '-'}" for b in h.breaks]


def _details(d: Difference, policy: Policy = DEFAULT) -> list[str]:
    """What differs, in words: the comparison's own details, or the headers a newly broken
    (or new broken) hop lost."""
    if d.details:
        return list(d.details)
    if d.change in ("broken", "new") and d.found is not None:
        return _headers(d.found)
    return []


def _rows(diffs: list[Difference], policy: Policy) -> list[list[str]]:
    return [[d.change, escape(f"{d.source} → {d.target}"), escape(f"{d.method} {policy.url(d.path)}"),
             escape(_cell(d.expected)), escape(_cell(d.found)), escape("; ".join(_details(d, policy)))]
            for d in diffs]


COLUMNS = (Column("change"), Column("hop", wraps=True, sep=" "), Column("call", wraps=True, sep=" "),
           Column("expected", wraps=True), Column("found", wraps=True),
           Column("details", wraps=True, sep=" "))


def _groups(r: CheckResult) -> list[tuple[str, str, list[Difference]]]:
    def worse(d: Difference) -> bool:
        return d.change in WORSE or (d.change == "new" and d.found is not None
                                     and d.found.verdict == "broken")

    return [
        ("worse", "broken", [d for d in r.differences if worse(d)]),
        ("better", "ok", [d for d in r.differences if d.change in BETTER]),
        ("other changes", "", [d for d in r.differences if not worse(d) and d.change not in BETTER]),
    ]


def table(r: CheckResult, policy: Policy = DEFAULT, *, width: int = 10**9, paint: Paint = PLAIN) -> str:
    """The differences for a terminal of ``width`` columns, worse first, and a last line that
    says whether the captures match the expectation."""
    out = [*wrap_list([escape(r.expectation or "-")], width, "        ", "expect: "),
           *wrap_list([escape(c) for c in r.captures], width, "        ", "check:  ")]
    for title, style, diffs in _groups(r):
        if diffs:
            head, body = grid(COLUMNS, _rows(diffs, policy), width)
            out += ["", f"{title}:", *head, *(paint(style, x) for lines in body for x in lines)]
    out.append("")
    if r.matches:
        out.append(verdict_line(r))
    else:
        out.append(paint("broken", verdict_line(r)))
    return "\n".join(out) + "\n"


def verdict_line(r: CheckResult) -> str:
    """The last line of the table, and the pytest plugin's one-line summary of a failure."""
    if r.matches:
        return f"matches the expectation ({plural(r.matching, 'hop')})"
    n = len(r.differences)
    return (f"differs from the expectation: {plural(n, 'hop')} {'differs' if n == 1 else 'differ'}, "
            f"{r.matching} {'matches' if r.matching == 1 else 'match'}")


def written(e: Expectation) -> str:
    """The line ``--write-expect`` prints: where, and how many hops of each verdict."""
    n = {v: 0 for v in ("ok", "broken", "unjudged")}
    for h in e.hops.values():
        n[h.verdict] += 1
    kinds = sorted({b.kind for h in e.hops.values() for b in h.breaks}, key=KINDS.index)
    return (f"wrote {escape(e.path or '-')}: {plural(len(e.hops), 'hop')}: {n['ok']} ok, {n['broken']} broken"
            + (f" ({', '.join(kinds)})" if kinds else "") + f", {n['unjudged']} unjudged\n")
