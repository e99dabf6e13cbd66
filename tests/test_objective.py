"""regsearch.search.objective: the one rule for the best trial, on real studies and tables."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from regsearch.results import best_trial, trials_frame
from regsearch.search.objective import Objective, best_index

NAN = math.nan


@pytest.mark.parametrize(
    ("scores", "direction", "best"),
    [
        ([0.5, 0.25, 0.75], "minimize", 1),
        ([0.5, 0.25, 0.75], "maximize", 2),
        ([0.25, 0.5, 0.25], "minimize", 0),  # ties: the earliest
        ([0.75, 0.5, 0.75], "maximize", 0),
        ([NAN, 0.5, NAN], "minimize", 1),  # no score: never best
        ([-math.inf, 0.5], "minimize", 1),
        ([-0.25, 0.125], "minimize", 0),  # a signed gap: the most negative wins when minimized
        ([NAN], "maximize", None),
        ([], "minimize", None),
    ],
)
def test_best_index(scores: list[float], direction: str, best: int | None) -> None:
    assert best_index(scores, direction) == best


def test_best_index_names_a_bad_direction() -> None:
    with pytest.raises(ValueError, match="direction='lowest'"):
        best_index([1.0], "lowest")


def _trial(
    members: list[float], metric: str, state: TrialState = TrialState.COMPLETE
) -> optuna.trial.FrozenTrial:
    """A finished trial whose objective value is the mean of its members' ``metric``."""
    records = [
        {"seed": s, "fold": -1, "state": "complete", metric: v} for s, v in enumerate(members)
    ]
    value = sum(members) / len(members) if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params={"x": members[0]},
        distributions={"x": optuna.distributions.FloatDistribution(-10, 10)},
        user_attrs={"family": "f", "members": records},
    )


@pytest.mark.parametrize(
    ("metric", "direction", "winner"),
    # Trial means: 0.6, 0.25, 0.925, -0.3 (a pruned -9 and a failed 0 never count).
    [("val_loss", "minimize", 3), ("val_acc", "maximize", 2), ("gap_loss", "minimize", 3)],
)
def test_the_study_and_the_table_pick_the_same_best_trial(
    metric: str, direction: str, winner: int
) -> None:
    study = optuna.create_study(direction=direction)
    trials = [
        _trial([0.5, 0.7], metric),
        _trial([0.2, 0.3], metric),
        _trial([0.9, 0.95], metric),
        _trial([-0.4, -0.2], metric),
        _trial([-9.0, -9.0], metric, TrialState.PRUNED),  # never best, in either flavour
        _trial([9.0, -9.0], metric, TrialState.FAIL),
    ]
    study.add_trials(trials)
    best = Objective((metric,), (direction,)).best(study.trials)
    assert best is not None
    frame = trials_frame([(study, "tune")], params=["x"])
    row = best_trial(frame, metric, direction)
    assert row is not None
    assert best.number == row["trial"] == winner


def test_no_complete_trial_means_no_best() -> None:
    study = optuna.create_study()
    study.add_trial(_trial([0.1], "val_loss", TrialState.PRUNED))
    assert Objective(("val_loss",), ("minimize",)).best(study.trials) is None
    frame = trials_frame([(study, "tune")], params=["x"])
    assert best_trial(frame, "val_loss", "minimize") is None


def test_the_first_objective_decides_for_two_objectives() -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    for loss, gap in [(0.5, 0.0), (0.3, 0.4), (0.4, 0.1)]:
        study.add_trial(optuna.trial.create_trial(values=[loss, gap]))
    objective = Objective(("val_loss", "gap_loss"), ("minimize", "minimize"))
    best = objective.best(study.trials)
    assert best is not None and best.number == 1
