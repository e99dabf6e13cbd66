"""Training engines behind one contract (see :mod:`regsearch.engine.members`)."""

from __future__ import annotations

from collections.abc import Callable

from regsearch.config import ConfigError
from regsearch.engine.members import OnEpoch, OnResult, Probe, Refill, Schedule
from regsearch.records import EpochReport, Hyperparams, Member, MemberResult

__all__ = [
    "EpochReport",
    "Hyperparams",
    "Member",
    "MemberResult",
    "OnEpoch",
    "OnResult",
    "Probe",
    "Refill",
    "Schedule",
    "resolve_engine",
]

Engine = Callable[..., list[MemberResult]]


def resolve_engine(name: str, vectorizable: bool = True) -> tuple[str, Engine]:
    """(resolved name, train function) for ``engine=`` auto | reference | population.

    ``auto`` is the population engine, which vectorizes the MLP; ``reference`` is the plain
    one-member-at-a-time oracle. A model the population engine cannot stack (not
    ``vectorizable``: cnn, custom) trains on the reference engine whatever ``name`` says.
    """
    if name in ("auto", "population") and vectorizable:
        from regsearch.engine.population import train as population_train

        return "population", population_train
    if name in ("auto", "population", "reference"):
        from regsearch.engine.reference import train as reference_train

        return "reference", reference_train
    raise ConfigError(f"engine={name!r}: allowed: auto, reference, population")
