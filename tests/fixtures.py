"""Where the fixture captures are, and which of them hold HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "captures"


def manifest() -> list[dict[str, Any]]:
    return list(json.loads((CAPTURES / "MANIFEST.json").read_text()))


def readable_captures() -> list[str]:
    """Every fixture that is a capture (not the deliberately broken inputs)."""
    return sorted(e["file"] for e in manifest() if not e.get("error"))


def recorded_captures() -> list[str]:
    return sorted(
        e["file"] for e in manifest() if not e.get("error") and e.get("made_by", "").startswith("record_")
    )
