"""Report stage: the only place that turns record bytes into display strings.

It also owns what a reader may see: ``Policy`` decides once how each header value, path
and tracing context is shown (credentials redacted, unknown or guessed HTTP/2 names shown
only when corroborated), and ``escape``/``csv_cell``/``md_code`` make capture text inert in
terminals, spreadsheets and Markdown.
"""

from __future__ import annotations

from analyzer.report.redact import (
    SECRET_HEADERS,
    Policy,
    csv_cell,
    display_value,
    escape,
    is_secret,
    md_code,
    redact_url,
)

__all__ = ["SECRET_HEADERS", "Policy", "csv_cell", "display_value", "escape", "is_secret", "md_code",
           "redact_url"]
