"""tracewire: find where tracing headers stop propagating, from packet captures of a mesh.

The package is a pipeline of stages (see README "Architecture"): capture -> decode ->
reassembly -> protocols -> tracing -> analysis -> report. Each stage is importable alone.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
