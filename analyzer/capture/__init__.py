"""Capture stage: turns a pcap, pcapng or gzip file (or stdin) into a stream of frames.

The format is chosen from the magic number, never from the file name. Fatal problems (not a
capture, unreadable, empty) raise ``CaptureError``; damage inside a capture (a record cut short
by Ctrl-C, a corrupt block) becomes an ``Anomaly`` and everything before it is kept.
"""

from __future__ import annotations

from analyzer.capture.reader import CaptureReader, Frame, open_capture

__all__ = ["CaptureReader", "Frame", "open_capture"]
