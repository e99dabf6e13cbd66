"""regsearch: which regularizer, at which strength, makes a network generalize better?

Run a preset with ``python -m regsearch +sweep=dropout`` or, from Python,
``regsearch.run("+sweep=dropout", "task=wine")``; see README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regsearch.api import run
    from regsearch.config import ConfigError
    from regsearch.outputs import SweepResult

__all__ = ["ConfigError", "SweepResult", "__version__", "run"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The API on first use: ``import regsearch`` stays cheap (no torch, Hydra or MLflow)."""
    if name == "run":
        from regsearch.api import run

        return run
    if name == "ConfigError":
        from regsearch.config import ConfigError

        return ConfigError
    if name == "SweepResult":
        from regsearch.outputs import SweepResult

        return SweepResult
    raise AttributeError(f"module 'regsearch' has no attribute {name!r}")
