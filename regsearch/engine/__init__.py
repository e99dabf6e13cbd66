"""Training engines behind one contract (see :mod:`regsearch.engine.members`)."""

from __future__ import annotations

from collections.abc import Callable

from regsearch.config import ConfigError
from regsearch.engine.members import (
    EpochReport,
    Hyperparams,
    Member,
    MemberResult,
    OnEpoch,
    Schedule,
)

__all__ = [
    "EpochReport",
    "Hyperparams",
    "Member",
    "MemberResult",
    "OnEpoch",
    "Schedule",
    "resolve_engine",
]

Engine = Callable[..., list[MemberResult]]


def resolve_engine(name: str) -> tuple[str, Engine]:
    """(resolved name, train function) for ``engine=`` auto | reference | population."""
    if name == "population":
        raise ConfigError(
            "engine='population': the vectorized population engine is not built yet; "
            "allowed today: auto, reference"
        )
    if name not in ("auto", "reference"):
        raise ConfigError(f"engine={name!r}: allowed: auto, reference, population")
    from regsearch.engine.reference import train

    return "reference", train
