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


def resolve_engine(name: str, stacked_mlp: bool = True) -> tuple[str, Engine]:
    """(resolved name, train function) for ``engine=`` auto | reference | population.

    ``auto`` is the population engine: the hand-stacked MLP engine for ``model=mlp``
    (``stacked_mlp``), the ``torch.func`` engine for any other network (cnn, custom), which
    itself trains a network it cannot stack on the reference engine, saying so.
    ``reference`` is the plain one-member-at-a-time oracle.
    """
    if name in ("auto", "population") and stacked_mlp:
        from regsearch.engine.population import train as population_train

        return "population", population_train
    if name in ("auto", "population"):
        from regsearch.engine.functional import train as functional_train

        return "population", functional_train
    if name == "reference":
        from regsearch.engine.reference import train as reference_train

        return "reference", reference_train
    raise ConfigError(f"engine={name!r}: allowed: auto, reference, population")
