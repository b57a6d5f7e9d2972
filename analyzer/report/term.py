"""The terminal a text report is written for: its width, wrapping, plurals and colour.

Text reports are laid out for the width of the terminal (or ``COLUMNS``) and wrap long values
onto continuation lines instead of cutting them: a trace id, a header name or a value is
never shortened, only moved to the next line (a single word longer than the line stays whole).
Colour is added last, to text that ``redact.escape`` has made inert already, so capture text
can never carry an escape sequence of its own to the terminal.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Final

# Narrower than this, a table has no room for its numbers: lines are allowed to overflow.
MIN_WIDTH: Final = 40
DEFAULT_WIDTH: Final = 80


def width() -> int:
    """Columns to lay out for: ``COLUMNS`` when set, else the terminal's, else 80."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return max(MIN_WIDTH, int(cols))
    return max(MIN_WIDTH, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 anomaly``, ``2 anomalies``: the count with its noun agreeing."""
    if n == 1:
        return f"{n} {word}"
    if many is None:
        many = word[:-1] + "ies" if word.endswith("y") and word[-2:-1] not in "aeiou" else word + "s"
    return f"{n} {many}"


def wrap(text: str, cols: int, indent: str = "", first: str = "", split: bool = False) -> list[str]:
    """``first`` + ``text`` in lines of at most ``cols`` columns, later lines led by
    ``indent``. Lines break at spaces only: a word (an id, a header name) is never split,
    unless ``split`` allows it (a long URL path in a narrow column)."""
    line = first + text
    if len(line) <= cols:
        return [line]
    return textwrap.wrap(text, cols, initial_indent=first, subsequent_indent=indent,
                         break_long_words=split, break_on_hyphens=False,
                         drop_whitespace=True) or [first.rstrip()]


def wrap_list(items: Sequence[str], cols: int, indent: str = "", first: str = "",
              sep: str = ", ") -> list[str]:
    """Items joined by ``sep``, broken only between items (a value with spaces in it stays
    on one line when it fits)."""
    lines: list[str] = []
    cur = first
    fresh = True  # nothing but the lead on the current line yet
    for i, item in enumerate(items):
        piece = item + (sep.rstrip() if i < len(items) - 1 else "")
        add = piece if fresh else " " + piece if sep.endswith(" ") else piece
        if not fresh and len(cur) + len(add) > cols:
            lines.append(cur)
            cur, fresh = indent + piece, False
        else:
            cur, fresh = cur + add, False
    lines.append(cur)
    return lines


# -- tables ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Column:
    title: str
    right: bool = False  # numbers: right-aligned, title too
    wraps: bool = False  # may wrap onto continuation lines when the table is too wide
    sep: str = ", "  # where a wrapping cell may break (between list items)


def table(columns: Sequence[Column], rows: Sequence[Sequence[object]], cols: int,
          gap: int = 2) -> tuple[list[str], list[list[str]]]:
    """A plain table in at most ``cols`` columns: wrapping columns give up room, widest
    first, and their cells continue on the next lines; other cells are never narrowed.
    Returns the header lines (titles and rule) and each row's lines, so callers can colour
    a row."""
    cells = [["" if v is None else str(v) for v in r] for r in rows]
    natural = [max([len(c.title)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    widths = list(natural)
    shrunk: list[int] = []
    total = sum(widths) + gap * (len(widths) - 1)
    # the narrowest a wrapping column gets: its longest unbreakable piece, and its title
    floor = [max([len(c.title)] + [len(p) for r in cells for p in _pieces(r[i], c.sep)])
             if c.wraps else widths[i] for i, c in enumerate(columns)]
    while total > cols:
        movable = [i for i, c in enumerate(columns) if c.wraps and widths[i] > floor[i]]
        if not movable:
            break
        i = max(movable, key=lambda j: widths[j])
        # straight to the widest its cells wrap to one column narrower: no width a wrap
        # would leave unused, and so no word pushed alone onto a line of its own early
        c, w = columns[i], widths[i] - 1
        tight = max([floor[i]] + [len(x) for r in cells for x in _wrap_cell(r[i], w, c)])
        if tight >= widths[i]:  # its cells wrap no narrower (a separator stays on its line)
            floor[i] = widths[i]
            continue
        total -= widths[i] - tight
        widths[i] = tight
        shrunk.append(i)
    # a jump may free more than needed: give the room back, last shrunk first
    for i in reversed(dict.fromkeys(shrunk)):
        room = min(natural[i], widths[i] + cols - total)
        if room > widths[i]:
            tight = max([floor[i]] + [len(x) for r in cells for x in _wrap_cell(r[i], room, columns[i])])
            total += tight - widths[i]
            widths[i] = tight
    pad = " " * gap
    head = [pad.join(_fit(c.title, w, c.right) for c, w in zip(columns, widths, strict=True)).rstrip(),
            pad.join("-" * w for w in widths)]
    body: list[list[str]] = []
    for r in cells:
        parts = [_wrap_cell(v, w, c) for v, w, c in zip(r, widths, columns, strict=True)]
        height = max(len(p) for p in parts)
        body.append([pad.join(_fit(p[k] if k < len(p) else "", w, c.right)
                              for p, w, c in zip(parts, widths, columns, strict=True)).rstrip()
                     for k in range(height)])
    return head, body


def _pieces(s: str, sep: str) -> list[str]:
    return [p for chunk in s.split(sep) for p in chunk.split(" ")] if s else [""]


def _wrap_cell(s: str, w: int, c: Column) -> list[str]:
    if len(s) <= w or not c.wraps:
        return [s]
    items = s.split(c.sep)
    out = wrap_list(items, w, sep=c.sep) if len(items) > 1 else [s]
    # an item still too wide (a long name with spaces) breaks at its spaces
    return [x for line in out for x in (wrap(line, w) if len(line) > w else [line])]


def _fit(s: str, w: int, right: bool) -> str:
    return s.rjust(w) if right else s.ljust(w)


# -- colour ----------------------------------------------------------------------------------

_SGR: Final = {
    "missing": "31",  # red
    "changed": "35",  # magenta
    "partial": "33",  # yellow
    "malformed": "36",  # cyan
    "broken": "1;31",  # bold red
    "ok": "32",  # green
    "dim": "2",
    "bold": "1",
}


@dataclass(slots=True)
class Paint:
    """SGR colour, or none. Given only text that ``escape`` has made inert: the one escape
    sequence in a coloured line is the one added here."""

    on: bool = False

    def __call__(self, style: str, text: str) -> str:
        code = _SGR.get(style)
        if not self.on or code is None or not text:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


PLAIN: Final = Paint(False)


def colour_wanted(choice: str, stream: IO[str] | None = None) -> bool:
    """``--color``: always, never, or auto (a terminal that is not dumb, NO_COLOR unset:
    https://no-color.org; an explicit ``always`` overrides it, as that page allows)."""
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a file
        return False
