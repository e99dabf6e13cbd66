"""The one error type of bad config or input (exit status 2, no traceback)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """Bad config or input; the message is one line: the key, the value, what is allowed."""
