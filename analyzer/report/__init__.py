"""Report stage: the only place that turns record bytes into display strings.

It also owns redaction: credentials in headers never reach an output unless asked for.
"""

from __future__ import annotations

from analyzer.report.redact import SECRET_HEADERS, display_value, is_secret

__all__ = ["SECRET_HEADERS", "display_value", "is_secret"]
