"""The error hierarchy: what is fatal (reaches the CLI) and what becomes an anomaly."""

from __future__ import annotations


class AnalyzerError(Exception):
    """Root of every error tracewire raises on purpose."""


class CaptureError(AnalyzerError):
    """The input is not a capture tracewire can read: fatal, one line, exit status 2."""


class DecodeError(AnalyzerError):
    """A packet could not be decoded; the owning stage records it as an anomaly."""


class ProtocolError(AnalyzerError):
    """A byte stream broke its protocol's rules; recorded as an anomaly, parsing goes on."""
