"""``python -m analyzer`` runs the tracewire command."""

from __future__ import annotations

try:
    from analyzer.cli import main
except KeyboardInterrupt:  # Ctrl-C while the modules load: the same quiet status as later
    raise SystemExit(130) from None

main()
