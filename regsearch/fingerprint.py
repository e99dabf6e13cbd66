"""What defines an experiment, as a short hash of its settings: the one definition that resumed
studies (:mod:`regsearch.search.identity`) and suite folders (:mod:`regsearch.suite.state`)
compare, so neither can continue with a config that computes something else.

Settings are the resolved config flattened to dotted keys (``task.name``, ``model.hidden``);
each caller names the prefixes that do not change what a trial computes (where things are
written, how they are shown, the budget).

Example:
    >>> fp = fingerprint("seed: 0\\npaths: {root: x}\\n", ignored=("paths.",))
    >>> fp.settings, len(fp.digest)
    ({'seed': '0'}, 8)
    >>> fp.differences({"seed": "1"})
    ['seed=0 (stored: 1)']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Fingerprint", "fingerprint"]


@dataclass(frozen=True)
class Fingerprint:
    """A config's settings that matter (dotted key → JSON text) and their 8-hex-digit hash."""

    digest: str
    settings: dict[str, str]

    def differences(self, stored: Mapping[str, str], label: str = "stored") -> list[str]:
        """``key=now (<label>: then)`` for each setting that differs from ``stored``, sorted."""
        keys = sorted(k for k in {*stored, *self.settings} if stored.get(k) != self.settings.get(k))
        return [f"{k}={self.settings.get(k, '-')} ({label}: {stored.get(k, '-')})" for k in keys]


def fingerprint(config_yaml: str, ignored: Iterable[str]) -> Fingerprint:
    """The fingerprint of a resolved config's YAML, leaving out keys starting with ``ignored``
    or lying under one (``paths`` drops ``paths.root``; ``*`` stands for one key level)."""
    from regsearch.outputs import flat_params  # pandas and Optuna: not at the CLI's start-up

    patterns = tuple(ignored)
    settings = {
        k: json.dumps(v, sort_keys=True, default=str)
        for k, v in sorted(flat_params(config_yaml).items())
        if not any(_matches(k, p) for p in patterns)
    }
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return Fingerprint(digest[:8], settings)


def _matches(key: str, pattern: str) -> bool:
    """Whether ``key`` is ``pattern`` or lies under it; ``*`` matches one level.

    Example:
        >>> _matches("sweep.families.l2.n_trials", "sweep.families.*.n_trials")
        True
        >>> _matches("train.l2", "train.l1")
        False
    """
    parts, want = key.split("."), pattern.rstrip(".").split(".")
    return len(parts) >= len(want) and all(w in ("*", p) for w, p in zip(want, parts, strict=False))
