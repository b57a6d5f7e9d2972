"""``python -m analyzer`` runs the tracewire command."""

from __future__ import annotations

from analyzer.cli import main

main()
