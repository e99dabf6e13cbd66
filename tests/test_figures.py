"""Tests for the report's figures (regsearch.report.figures): what each draws, against its data.

Every figure function returns a figure, also when it has nothing to draw; the tests check the
axes, series, labels and candidates against the data of one tiny real compare sweep, and that
each failure path is a placeholder (:func:`placeholder_reason`) that says why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

import regsearch
from regsearch.comparison import Comparison, compare, compare_sweep
from regsearch.outputs import SweepResult
from regsearch.report.boundaries_fig import decision_boundaries
from regsearch.report.comparison_fig import comparison_chart
from regsearch.report.curves import curve_groups, learning_curves
from regsearch.report.gap import gap_by_family, gap_vs_params, param_kind
from regsearch.report.history import val_metric_history
from regsearch.report.importance import (
    importance_chart,
    importance_skip_reason,
    param_importance,
)
from regsearch.report.panels import placeholder_reason
from regsearch.report.penalty import penalty_effects
from regsearch.report.strength import weakest_trial
from regsearch.results import load_sweep
from tests.test_report import final_summary, made_study, make_final, make_trials

#: Baseline + three families on moons: l2 gets 5 trials (enough for fANOVA), the others 3;
#: holdout (no folds) and 3 final seeds keep it at a few seconds.
FAMILIES = ["baseline", "l2", "dropout", "early_stopping"]
SWEEP = [
    "+sweep=compare",
    "train.max_epochs=40",
    "train.eval_every=10",
    "search.cv=0",
    "tracking=none",
    "report=true",  # also writes boundaries.npz
    "sweep.final_seeds=3",
    "~sweep.families.l1",
    "~sweep.families.weight_decay",
    "~sweep.families.batchnorm",
    "sweep.families.l2.n_trials=5",
    "sweep.families.dropout.n_trials=3",
    "sweep.families.early_stopping.n_trials=3",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    return regsearch.run(*SWEEP, root=tmp_path_factory.mktemp("sweeps"))


@pytest.fixture(scope="module")
def tune(sweep: SweepResult) -> pd.DataFrame:
    """Complete tuning members of the sweep."""
    trials = sweep.trials
    return trials.loc[(trials["phase"] == "tune") & (trials["state"] == "complete")]


@pytest.fixture(scope="module")
def final(sweep: SweepResult) -> pd.DataFrame:
    """Complete members of the final phase (the candidates retrained on fresh seeds)."""
    trials = without_controls(sweep.trials)
    return trials.loc[(trials["phase"] == "final") & (trials["state"] == "complete")]


def without_controls(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of the candidates: the report leaves the learning-rate controls
    (``baseline@<family>``) out of its figures, and so do these tests."""
    return frame.loc[~frame["family"].astype(str).str.startswith("baseline@")]


def panels(fig: Figure) -> list[Axes]:
    """The visible data panels (no colour bars, no unused grid cells, no notes)."""
    return [
        ax for ax in fig.axes if ax.get_visible() and ax.axison and ax.get_label() != "<colorbar>"
    ]


def points(ax: Axes) -> list[np.ndarray]:
    """The (x, y) offsets of each scatter/strip collection of a panel."""
    return [np.asarray(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def xs(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_xdata(), dtype=float)]


def ys(line: Line2D) -> list[float]:
    return [float(v) for v in np.asarray(line.get_ydata(), dtype=float)]


def legend(ax: Axes) -> list[str]:
    found = ax.get_legend()
    assert found is not None, "the panel has no legend"
    return [t.get_text() for t in found.get_texts()]


def levels(collection: Any) -> list[float]:
    assert isinstance(collection, ContourSet)
    return [float(v) for v in collection.levels]


def test_the_sweep_has_what_the_figures_need(sweep: SweepResult, tune: pd.DataFrame) -> None:
    assert list(dict.fromkeys(tune["family"])) == FAMILIES
    assert sweep.summary["params"] == ["lr", "l2", "dropout", "patience"]
    assert (sweep.run_dir / "boundaries.npz").is_file()


# --- gap_vs_params ---------------------------------------------------------------------------


def test_gap_vs_params_draws_each_parameter_against_the_gap(
    sweep: SweepResult, tune: pd.DataFrame
) -> None:
    params, log_params = sweep.summary["params"], sweep.summary["log_params"]
    fig = gap_vs_params(sweep.trials, params, log_params, "classification")
    assert placeholder_reason(fig) is None
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == params
    for ax, param in zip(drawn, params, strict=True):
        is_log = param in log_params
        assert ax.get_xlabel() == (f"{param} (log)" if is_log else param)
        assert ax.get_ylabel() == "gap_acc"
        assert ax.get_xscale() == ("log" if is_log else "linear")
        rows = tune.loc[tune[param].notna()]
        (xy,) = points(ax)  # one point per member that searched the parameter
        assert sorted(xy[:, 0]) == pytest.approx(sorted(rows[param]))
        assert sorted(xy[:, 1]) == pytest.approx(sorted(rows["gap_acc"]))
        zero = [line for line in ax.lines if line.get_linestyle() == "--"]
        assert len(zero) == 1 and set(ys(zero[0])) == {0.0}
    colour_bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert [ax.get_ylabel() for ax in colour_bars] == ["val_acc"] * len(params)


def test_gap_vs_params_boxes_on_off_flags_and_names_absent_ones(tmp_path: Path) -> None:
    # Reading back turns the on/off flag with gaps into an object column of bools.
    make_trials().to_csv(tmp_path / "t.csv", index=False)
    trials = pd.read_csv(tmp_path / "t.csv")
    fig = gap_vs_params(trials, ["l2_on", "absent"], ["l2"], "regression")
    flag, absent = panels(fig)
    assert [t.get_text() for t in flag.get_xticklabels()] == ["off", "on"]
    complete = trials.loc[trials["state"] == "complete"]
    strips = points(flag)
    assert sum(len(xy) for xy in strips) == len(complete)
    assert flag.get_ylabel() == "gap_loss"
    assert absent.get_title() == "absent"
    assert [t.get_text() for t in absent.texts] == ["not searched in these trials"]
    assert placeholder_reason(fig) is None  # one panel without data is not a placeholder


@pytest.mark.parametrize(
    ("trials", "params", "reason"),
    [
        (make_trials().assign(state="failed"), ["dropout"], "no complete trials"),
        (pd.DataFrame(), ["dropout"], "no complete trials"),
        (make_trials(), [], "no searched parameters"),
    ],
)
def test_gap_vs_params_placeholder_says_why(
    trials: pd.DataFrame, params: list[str], reason: str
) -> None:
    fig = gap_vs_params(trials, params, [], "classification")
    assert placeholder_reason(fig) == reason
    assert texts(fig) == [reason]


# --- val_metric_history ----------------------------------------------------------------------


def test_history_draws_each_family_with_its_best_so_far(
    sweep: SweepResult, tune: pd.DataFrame
) -> None:
    fig = val_metric_history(sweep.trials, "val_loss", "minimize")
    assert placeholder_reason(fig) is None
    (ax,) = panels(fig)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("trial", "val_loss")
    assert legend(ax) == FAMILIES
    members, *means = points(ax)
    assert len(members) == len(tune)
    assert len(ax.lines) == len(FAMILIES)
    for family, mean, line in zip(FAMILIES, means, ax.lines, strict=True):
        per_trial = tune.loc[tune["family"] == family].groupby("trial")["val_loss"].mean()
        assert mean[:, 1] == pytest.approx(per_trial.to_numpy())
        assert xs(line) == list(per_trial.index)
        assert ys(line) == pytest.approx(per_trial.cummin().to_list())


def test_history_of_one_family_maximizing(tune: pd.DataFrame) -> None:
    l2 = tune.loc[tune["family"] == "l2"]
    fig = val_metric_history(l2, "val_acc", "maximize")
    (ax,) = panels(fig)
    assert legend(ax) == ["mean", "best so far"]
    (best,) = ax.lines
    per_trial = l2.groupby("trial")["val_acc"].mean()
    assert ys(best) == pytest.approx(per_trial.cummax().to_list())
    assert ax.get_ylabel() == "val_acc"


def test_history_placeholder_and_bad_direction() -> None:
    fig = val_metric_history(make_trials().assign(state="pruned"), "val_loss", "maximize")
    assert placeholder_reason(fig) == "no complete trials"
    assert placeholder_reason(val_metric_history(make_trials(), "absent", "minimize"))
    with pytest.raises(ValueError, match="direction"):
        val_metric_history(make_trials(), "val_loss", "up")


# --- gap_by_family ---------------------------------------------------------------------------


def test_gap_by_family_uses_the_final_members(sweep: SweepResult, final: pd.DataFrame) -> None:
    fig = gap_by_family(without_controls(sweep.trials), "classification")
    assert placeholder_reason(fig) is None
    (ax,) = panels(fig)
    assert ax.get_title() == "gap_acc by family (final members)"
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == sorted(FAMILIES)
    strips = points(ax)  # one strip per family, one point per final member
    assert [len(xy) for xy in strips] == [int((final["family"] == n).sum()) for n in names]
    for name, xy in zip(names, strips, strict=True):
        gaps = final.loc[final["family"] == name, "gap_acc"]
        assert sorted(xy[:, 1]) == pytest.approx(sorted(gaps))
    assert ax.get_ylabel() == "gap_acc"


def test_gap_by_family_falls_back_to_tuning_members(tune: pd.DataFrame) -> None:
    ax = panels(gap_by_family(tune, "regression"))[0]
    assert ax.get_title() == "gap_loss by family (tune members)"
    assert sum(len(xy) for xy in points(ax)) == len(tune)


@pytest.mark.parametrize(
    ("trials", "reason"),
    [
        (make_trials().assign(state="failed"), "no complete trials"),
        (pd.DataFrame(), "no complete trials"),
        (make_trials().drop(columns="family"), "no family column (a sweep of one family)"),
    ],
)
def test_gap_by_family_placeholder_says_why(trials: pd.DataFrame, reason: str) -> None:
    assert placeholder_reason(gap_by_family(trials, "regression")) == reason


# --- learning_curves -------------------------------------------------------------------------


def test_learning_curves_draw_train_and_val_of_each_candidate(sweep: SweepResult) -> None:
    curves, trials = without_controls(sweep.curves), without_controls(sweep.trials)
    params = sweep.summary["params"]
    groups = curve_groups(curves, trials, params)
    assert list(groups) == FAMILIES  # the baseline first, then in the order they were run
    fig = learning_curves(curves, trials, params)
    assert placeholder_reason(fig) is None
    drawn = panels(fig)
    assert [ax.get_title().split(" · ")[0] for ax in drawn] == FAMILIES
    final_curves = curves.loc[curves["phase"] == "final"]
    for ax, family in zip(drawn, FAMILIES, strict=True):
        assert ax.get_title().endswith(" · 3 seeds")
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("epoch", "loss")
        assert [(line.get_label(), line.get_color()) for line in ax.lines] == [
            ("train", "C0"),
            ("val", "C1"),
        ]
        rows = final_curves.loc[final_curves["family"] == family]
        for line, split in zip(ax.lines, ("train", "val"), strict=True):
            mean = rows.groupby("epoch")[f"{split}_loss"].mean()
            assert xs(line) == [10, 20, 30, 40] == list(mean.index)
            assert ys(line) == pytest.approx(mean.to_list())
    assert legend(drawn[0]) == ["train", "val"]
    tuned = drawn[1].get_title()
    assert "l2=" in tuned and "lr=" in tuned  # each panel names its parameter values


def test_learning_curves_of_accuracy(sweep: SweepResult) -> None:
    fig = learning_curves(sweep.curves, sweep.trials, sweep.summary["params"], metric="acc")
    assert {ax.get_ylabel() for ax in panels(fig)} == {"acc"}
    with pytest.raises(ValueError, match="metric"):
        learning_curves(sweep.curves, metric="auc")


def test_learning_curves_of_a_tuning_sweep_pick_best_and_weakest() -> None:
    rows = []
    for trial, l2 in enumerate([0.1, 0.001, 0.01]):
        for epoch in (10, 20):
            rows.append(
                {"trial": trial, "seed": 0, "family": "l2", "phase": "tune", "state": "complete"}
                | {"epoch": epoch, "train_loss": 0.5 - l2, "val_loss": 0.6, "gap_loss": 0.1 + l2}
            )
    curves = pd.DataFrame(rows)
    trials = curves.drop_duplicates("trial").assign(l2=[0.1, 0.001, 0.01])
    groups = curve_groups(curves, trials, ["l2"], best=("l2", 2))
    assert list(groups) == ["weakest regularization (trial 1)", "best (trial 2)"]
    fig = learning_curves(curves, trials, ["l2"], best=("l2", 2))
    weakest, best = panels(fig)
    assert weakest.get_title() == "weakest regularization (trial 1) · l2=0.001 · 1 seed"
    assert best.get_title() == "best (trial 2) · l2=0.01 · 1 seed"
    assert ys(weakest.lines[0]) == pytest.approx([0.499, 0.499])


def early_stopped_curves() -> pd.DataFrame:
    """Four seeds of one candidate: three stop at epoch 30 with a high loss, one trains on to
    epoch 100 with a low one, as early stopping leaves them."""
    rows = []
    for seed in range(4):
        base, last = (0.2, 100) if seed == 3 else (1.0 + 0.1 * seed, 30)
        for epoch in range(10, last + 1, 10):
            rows.append(
                {"phase": "final", "family": "early_stopping", "trial": 0, "seed": seed}
                | {"fold": -1, "state": "complete", "epoch": epoch}
                | {"train_loss": base + 1 / epoch, "val_loss": base + 2 / epoch}
            )
    return pd.DataFrame(rows)


def test_learning_curves_average_only_where_every_run_has_a_value() -> None:
    curves = early_stopped_curves()
    (ax,) = panels(learning_curves(curves))
    means = [line for line in ax.lines if line.get_label() in ("train", "val")]
    assert [line.get_label() for line in means] == ["train", "val"]
    shared = curves.loc[curves["epoch"] <= 30]
    for line, split in zip(means, ("train", "val"), strict=True):
        # The one run that lasted is not the mean of four: no drop after epoch 30.
        assert xs(line) == [10, 20, 30]
        assert ys(line) == pytest.approx(shared.groupby("epoch")[f"{split}_loss"].mean().to_list())
    single = [line for line in ax.lines if line.get_gid() == "single run"]
    assert [line.get_color() for line in single] == ["C0", "C1"]
    lasted = curves.loc[curves["seed"] == 3]
    for line, split in zip(single, ("train", "val"), strict=True):
        assert xs(line) == list(range(30, 101, 10))  # joined to the mean at the last shared epoch
        assert ys(line) == pytest.approx(lasted.loc[lasted["epoch"] >= 30, f"{split}_loss"])
        alpha = line.get_alpha()
        assert alpha is not None and alpha < 1
        assert line.get_linewidth() < means[0].get_linewidth()
    assert [t.get_text() for t in ax.texts] == ["1 of 4 runs still training after epoch 30"]
    assert legend(ax) == ["train", "val"]


def test_learning_curves_of_runs_that_all_lasted_need_no_note() -> None:
    curves = early_stopped_curves()
    curves = curves.loc[curves["epoch"] <= 30]
    (ax,) = panels(learning_curves(curves))
    assert len(ax.texts) == 0 and all(line.get_gid() != "single run" for line in ax.lines)


def test_learning_curves_placeholder_says_why(sweep: SweepResult) -> None:
    empty = learning_curves(sweep.curves.iloc[0:0])
    assert placeholder_reason(empty) == "no learning curves recorded"
    no_val = sweep.curves.drop(columns="val_loss")
    assert placeholder_reason(learning_curves(no_val)) == "no learning curves recorded"


# --- comparison_chart ------------------------------------------------------------------------


def test_comparison_chart_of_the_sweep(sweep: SweepResult) -> None:
    found = sweep.comparison
    assert found is not None and found.baseline == "baseline"
    fig = comparison_chart(found)
    assert placeholder_reason(fig) is None
    left, right = panels(fig)
    expected = [c.name for c in found.candidates if c.name != found.baseline]
    assert [t.get_text() for t in left.get_yticklabels()] == expected
    assert left.get_title() == f"Δ {found.metric} (lower is better)"
    dots = [line for line in left.get_lines() if line.get_marker() == "o"]
    means = [found.candidate(name).vs_baseline[found.metric].mean for name in expected]
    assert [xs(d)[0] for d in dots] == pytest.approx(means)
    assert fig.get_suptitle().startswith("Candidate − baseline over up to 3 paired runs")
    assert right.get_title().startswith(f"Δ gap_{found.basis}")


def test_comparison_chart_shows_paired_differences() -> None:
    found = compare_sweep(make_final(), final_summary())
    assert isinstance(found, Comparison)
    fig = comparison_chart(found)
    left, right = fig.axes[:2]
    assert [t.get_text() for t in left.get_yticklabels()] == ["dropout", "l1"]
    assert left.get_title() == "Δ val_loss (lower is better)"
    assert right.get_title().startswith("Δ gap_loss")
    dots = [line for line in left.get_lines() if line.get_marker() == "o"]
    assert [xs(d)[0] for d in dots] == pytest.approx([-0.05, 0.02], abs=1e-3)
    assert dots[0].get_color() == "C2" and dots[1].get_color() == "C0"  # winner in green
    gap_dots = [line for line in right.get_lines() if line.get_marker() == "o"]
    assert xs(gap_dots[1])[0] == pytest.approx(0.02 - 0.25)


def test_comparison_chart_without_a_baseline_says_so() -> None:
    trials = make_final()
    found = compare(trials.loc[trials["family"] != "baseline"], "classification")
    assert found is not None and found.baseline is None
    assert placeholder_reason(comparison_chart(found)) == "no baseline to pair with"


# --- param_importance ------------------------------------------------------------------------


def test_param_importance_of_the_sweeps_studies(sweep: SweepResult) -> None:
    studies = load_sweep(sweep.run_dir).studies
    l2 = studies["l2"]
    assert importance_skip_reason(l2) is None
    fig = param_importance(l2)
    assert placeholder_reason(fig) is None
    (ax,) = panels(fig)
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == ["l2", "lr"]
    widths = [bar.get_width() for bar in ax.patches if isinstance(bar, Rectangle)]
    assert len(widths) == 2
    assert widths == sorted(widths) and sum(widths) == pytest.approx(1.0)  # largest on top
    assert ax.get_title() == l2.study_name
    assert ax.get_xlabel() == "importance (fANOVA, sums to 1)"
    # Three trials of dropout, and the baseline searched lr alone: notes, not bars.
    assert placeholder_reason(param_importance(studies["dropout"])) == (
        "importance needs 5+ complete trials"
    )
    assert placeholder_reason(param_importance(studies["baseline"])) == (
        "importance needs 2+ parameters searched in every complete trial"
    )


def test_param_importance_ranks_the_parameter_that_matters() -> None:
    def objective(trial: optuna.Trial) -> float:
        return 10 * trial.suggest_float("l2", 0, 1) + trial.suggest_float("dropout", 0, 1) * 0.1

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=12)
    labels = [t.get_text() for t in param_importance(study).axes[0].get_yticklabels()]
    assert labels == ["dropout", "l2"]  # drawn last = largest bar on top


def test_importance_of_every_family_is_one_figure() -> None:
    studies = {
        "l2": made_study("l2", 12, {"l2": 10.0, "lr": 0.1}),
        "dropout": made_study("dropout", 12, {"l2": 0.1, "lr": 10.0}),
        "early_stopping": made_study("early_stopping", 3, {"l2": 1.0, "lr": 1.0}),
    }
    fig = importance_chart(studies)
    assert placeholder_reason(fig) is None
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == ["l2", "dropout"]  # one panel per ranked family
    for ax, top in zip(drawn, ("l2", "lr"), strict=True):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert sorted(labels) == ["l2", "lr"] and labels[-1] == top  # largest bar on top
        widths = [bar.get_width() for bar in ax.patches if isinstance(bar, Rectangle)]
        assert sum(widths) == pytest.approx(1.0)
        assert ax.get_xlim() == (0.0, 1.0)  # one scale: the bars compare across families
    assert drawn[-1].get_xlabel() == "importance (fANOVA, sums to 1)"
    assert texts(fig) == ["not ranked: early_stopping (importance needs 5+ complete trials)"]


@pytest.mark.parametrize(
    ("n_studies", "reason"),
    [
        (0, "no studies"),
        (1, "importance needs 5+ complete trials"),
        (2, "no family can be ranked: a, b (importance needs 5+ complete trials)"),
    ],
)
def test_importance_chart_placeholder_says_why(n_studies: int, reason: str) -> None:
    names = ["a", "b"][:n_studies]
    studies = {n: made_study(n, 3, {"l2": 1.0, "lr": 1.0}) for n in names}
    assert placeholder_reason(importance_chart(studies)) == reason


# --- decision_boundaries ---------------------------------------------------------------------


def test_decision_boundaries_of_each_candidate(sweep: SweepResult) -> None:
    path = sweep.run_dir / "boundaries.npz"
    with np.load(path) as npz:
        x, y = npz["x"], npz["y"]
        stored = [k.removeprefix("prob__") for k in npz.files if k.startswith("prob__")]
    assert sorted(stored) == sorted(FAMILIES)
    fig = decision_boundaries(path)
    assert placeholder_reason(fig) is None
    drawn = panels(fig)
    assert [ax.get_title() for ax in drawn] == ["baseline", *(n for n in stored if n != "baseline")]
    for ax in drawn:
        filled, boundary, train = ax.collections
        assert levels(boundary) == [0.5]  # the black line is the 0.5 level
        assert np.asarray(train.get_offsets()) == pytest.approx(x)
        assert sorted(set(np.asarray(train.get_array()))) == sorted(set(y))
        assert len(levels(filled)) == 11


def test_decision_boundaries_from_arrays() -> None:
    xx, yy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4))
    arrays = {
        "xx": xx,
        "yy": yy,
        "x": np.array([[0.0, 0.0], [0.5, 0.5]]),
        "y": np.array([0.0, 1.0]),
        "prob__dropout": 1 / (1 + np.exp(-xx)),
        "prob__none": 1 / (1 + np.exp(-yy)),
    }
    assert [ax.get_title() for ax in panels(decision_boundaries(arrays))] == ["none", "dropout"]
    empty = decision_boundaries({"xx": xx})
    assert placeholder_reason(empty) == "no decision boundaries recorded"


# --- penalty_effects -------------------------------------------------------------------------


def test_penalty_effects_draw_norm_and_sparsity_against_lambda(
    sweep: SweepResult, tune: pd.DataFrame, final: pd.DataFrame
) -> None:
    fig = penalty_effects(sweep.trials, {"l2"})
    assert placeholder_reason(fig) is None
    norm, sparsity = panels(fig)  # one column: l2 is the only penalty searched
    l2 = tune.loc[tune["l2"] > 0]
    baseline = final.loc[final["family"] == "baseline"]
    for ax, stat in ((norm, "weight_norm"), (sparsity, "sparsity")):
        assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == ("l2 (λ)", stat, "log")
        (xy,) = points(ax)
        assert sorted(xy[:, 0]) == pytest.approx(sorted(l2["l2"]))
        assert sorted(xy[:, 1]) == pytest.approx(sorted(l2[stat]))
        (line,) = ax.lines
        assert line.get_label() == "unregularized"
        assert ys(line) == pytest.approx([baseline[stat].mean()] * 2)


@pytest.mark.parametrize(
    ("drop", "reason"),
    [
        (["l2"], "no penalty strength (l1, l2, weight_decay) searched"),
        (["weight_norm", "sparsity"], "no weight_norm or sparsity recorded"),
    ],
)
def test_penalty_effects_placeholder_says_why(drop: list[str], reason: str) -> None:
    fig = penalty_effects(make_trials().drop(columns=drop))
    assert placeholder_reason(fig) == reason and texts(fig) == [reason]


# --- pure helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "is_log", "expected"),
    [
        (pd.Series([True, False]), False, "categorical"),
        (pd.Series([True, None, False], dtype=object), False, "categorical"),
        (pd.Series(["relu", "tanh"]), False, "categorical"),
        (pd.Series([0.1, None, 0.3]), False, "numeric"),
        (pd.Series([1e-5, 1e-2]), True, "log"),
        (pd.Series([3, 5, 10]), False, "numeric"),
    ],
)
def test_param_kind(values: pd.Series, is_log: bool, expected: str) -> None:
    assert param_kind(values, is_log) == expected


@pytest.mark.parametrize(
    ("columns", "params", "expected"),
    [
        ({"l2": [0.1, 0.001, 0.01]}, ["l2"], 1),
        ({"patience": [5, 30, np.nan]}, ["patience"], 2),  # off (NaN) is weakest
        ({"dropout": [0.5, 0.0, 0.2], "l2_on": [True, False, False]}, ["dropout", "l2_on"], 1),
        ({"batch_norm": ["True", "False", "True"]}, ["batch_norm"], 1),
        ({"lr": [0.1, 0.2, 0.3]}, ["lr"], None),  # not a regularization strength
    ],
)
def test_weakest_trial(
    columns: dict[str, list[Any]], params: list[str], expected: int | None
) -> None:
    trials = pd.DataFrame({"trial": [0, 1, 2], "state": "complete", "family": "f", **columns})
    pick = weakest_trial(trials, params)
    assert (pick[1] if pick else None) == expected


def test_placeholder_reason_is_none_for_a_plain_figure() -> None:
    assert placeholder_reason(Figure()) is None


def test_figures_names_every_figure_from_its_module() -> None:
    # Notebooks import the figures from regsearch.report.figures; the split keeps that working.
    from regsearch.report import figures

    for name in figures.__all__:
        found = getattr(figures, name)
        if callable(found):
            assert found.__module__ != "regsearch.report.figures", name
