"""regsearch: which regularizer, at which strength, closes the train/validation gap?

Run a preset with ``python -m regsearch +sweep=dropout``; see README.md.
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
