"""``tracewire diff`` output: JSON, a terminal table (worse first) and Markdown.

Hop names, paths and capture names come from the captures: paths pass the redaction
policy, table cells are escaped and Markdown cells are code spans (``redact``).
"""

from __future__ import annotations

from typing import Any

from tabulate import tabulate

from analyzer.analysis.diff import WORSE, DiffResult, HopDiff, Side, Totals
from analyzer.analysis.model import KINDS
from analyzer.report.redact import DEFAULT, Policy, escape, md_code
from analyzer.report.term import PLAIN, Column, Paint, plural, wrap, wrap_list
from analyzer.report.term import table as grid
from analyzer.report.term import width as term_width

BETTER = frozenset(("fixed", "improved"))


def _side(s: Side | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "calls": s.calls,
        "propagated": s.propagated,
        "broken": dict(s.broken),
        "x_request_id": s.with_request_id,
        "formats": sorted(s.formats),
    }


def _totals(t: Totals) -> dict[str, Any]:
    return {
        "captures": t.captures,
        "traces": t.traces,
        "broken_traces": t.broken_traces,
        "findings": t.findings,
        "formats": t.formats,
        "anomalies": t.anomalies,
    }


def hop_dict(h: HopDiff, policy: Policy = DEFAULT) -> dict[str, Any]:
    return {
        "source": h.source,
        "target": h.target,
        "protocol": h.protocol,
        "method": h.method,
        "path": policy.url(h.path),
        "change": h.change,
        "before": _side(h.before),
        "after": _side(h.after),
        "headers_added": h.headers_added,
        "headers_removed": h.headers_removed,
        "format_switch": None if h.formats_before == h.formats_after or not (
            h.before and h.after) else {"before": h.formats_before, "after": h.formats_after},
        "matched_by": h.matched_by,
    }


def diff_dict(d: DiffResult, policy: Policy = DEFAULT) -> dict[str, Any]:
    return {
        "before": _totals(d.before),
        "after": _totals(d.after),
        "differs": d.differs,
        "regressed": d.regressed,
        "hops": [hop_dict(h, policy) for h in d.hops],
    }


SHORT = {"missing": "miss", "changed": "chg", "partial": "part", "malformed": "malf"}


def _stat(s: Side | None, detailed: bool = False) -> str:
    if s is None:
        return "-"
    if not detailed:
        return f"{s.propagated}/{s.calls} ok" + (f", {s.broken_calls} broken" if s.broken_calls else "")
    broken = " ".join(f"{s.broken[k]} {SHORT[k]}" for k in KINDS if s.broken[k])
    return f"{s.propagated}/{s.calls} ok" + (f", {broken}" if broken else "")


def _detail(h: HopDiff) -> str:
    parts = []
    if h.headers_added:
        parts.append("+" + " +".join(h.headers_added))
    if h.headers_removed:
        parts.append("-" + " -".join(h.headers_removed))
    if h.before and h.after and h.formats_before != h.formats_after:
        parts.append(f"formats {','.join(h.formats_before)} → {','.join(h.formats_after)}")
    if h.matched_by != "authority":
        parts.append(f"matched by {h.matched_by}")
    return "; ".join(parts)


def _rows(hops: list[HopDiff], wide: bool = False, policy: Policy = DEFAULT) -> list[list[str]]:
    if wide:  # markdown: no terminal to fit, and every capture string in a code span
        return [[h.change, md_code(f"{h.source} → {h.target}", True),
                 md_code(f"{h.method} {policy.url(h.path)}", True),
                 _stat(h.before, True), _stat(h.after, True), md_code(_detail(h), True) if _detail(h) else ""]
                for h in hops]
    return [[h.change, escape(f"{h.source} → {h.target}"), escape(f"{h.method} {policy.url(h.path)}"),
             _stat(h.before), _stat(h.after), escape(_detail(h))] for h in hops]


HEADERS = ["change", "hop", "call", "before", "after", "headers"]
# Laid out for the terminal: a hop, a call or a list of headers wraps at its spaces, never cut.
COLUMNS = (Column("change"), Column("hop", wraps=True, sep=" "), Column("call", wraps=True, sep=" "),
           Column("before", wraps=True), Column("after", wraps=True), Column("headers", wraps=True, sep=" "))


def _totals_line(t: Totals) -> str:
    """Traces and findings said apart: a broken trace can hold several findings."""
    kinds = ", ".join(f"{t.findings[k]} {k}" for k in KINDS if t.findings[k])
    total = sum(t.findings[k] for k in KINDS)
    return (f"{plural(t.traces, 'trace')}, {t.broken_traces} broken; "
            f"{plural(total, 'finding')}" + (f" ({kinds})" if kinds else "")
            + f"; formats {', '.join(t.formats) or '-'}; {plural(t.anomalies, 'anomaly')}")


def _summary(d: DiffResult, cols: int = 10**9) -> list[str]:
    b, a = d.before, d.after
    return [
        *wrap_list([escape(c) for c in b.captures], cols, "        ", "before: "),
        *wrap(_totals_line(b), cols, "    ", "  "),
        *wrap_list([escape(c) for c in a.captures], cols, "        ", "after:  "),
        *wrap(_totals_line(a), cols, "    ", "  "),
    ]


def _grid(hops: list[HopDiff], cols: int, policy: Policy, paint: Paint, style: str) -> list[str]:
    head, body = grid(COLUMNS, _rows(hops, policy=policy), cols)
    return head + [paint(style, x) for lines in body for x in lines]


def table(d: DiffResult, show_all: bool = False, policy: Policy = DEFAULT, *,
          width: int | None = None, paint: Paint = PLAIN) -> str:
    """The diff for a terminal of ``width`` columns (the terminal's by default), worse first."""
    cols = term_width() if width is None else width
    out = _summary(d, cols)
    groups = [
        ("worse", "broken", [h for h in d.hops if h.change in WORSE or (h.change == "new" and h.after
                             and h.after.broken_calls)]),
        ("better", "ok", [h for h in d.hops if h.change in BETTER]),
        ("other changes", "", [h for h in d.hops if h.change in ("new", "gone") and not (
            h.change == "new" and h.after and h.after.broken_calls)]),
    ]
    unchanged = [h for h in d.hops if h.change == "unchanged"]
    for title, style, hops in groups:
        if hops:
            out += ["", f"{title}:", *_grid(hops, cols, policy, paint, style)]
    if unchanged:
        out.append("")
        if show_all:
            out += ["unchanged:", *_grid(unchanged, cols, policy, paint, "")]
        else:
            out.append(f"{plural(len(unchanged), 'unchanged hop')} (--all shows them)")
    out.append("")
    out.append("nothing differs" if not d.differs else
               paint("broken", "regressions found") if d.regressed else "differences found, no regression")
    return "\n".join(out) + "\n"


def markdown(d: DiffResult, show_all: bool = False, policy: Policy = DEFAULT) -> str:
    out = ["### tracewire diff", ""]
    out += [f"- before: {', '.join(md_code(c) for c in d.before.captures)}: {_totals_line(d.before)}",
            f"- after: {', '.join(md_code(c) for c in d.after.captures)}: {_totals_line(d.after)}"]
    rows = [h for h in d.hops if show_all or h.change != "unchanged"]
    out.append("")
    if rows:
        out.append(tabulate(_rows(rows, True, policy), headers=HEADERS, tablefmt="github"))
    unchanged = sum(1 for h in d.hops if h.change == "unchanged")
    if unchanged and not show_all:
        out += ["", f"<details><summary>{plural(unchanged, 'unchanged hop')}</summary>", "",
                tabulate(_rows([h for h in d.hops if h.change == "unchanged"], True, policy), headers=HEADERS,
                         tablefmt="github"), "", "</details>"]
    out += ["", "**Result:** " + ("nothing differs" if not d.differs else
                                  "regressions found" if d.regressed else "differences, no regression")]
    return "\n".join(out) + "\n"
