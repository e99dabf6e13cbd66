"""Tests for regsearch.console: the verdict and the per-candidate table printed after a sweep."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regsearch.comparison import compare
from regsearch.console import comparison_lines

BASE = [0.50, 0.52, 0.54, 0.51, 0.53]


def make_final(shifts: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Holdout final rows on 5 seeds: per candidate (Δval_loss, Δtrain_loss) vs the baseline."""
    rows: list[dict[str, Any]] = []
    for trial, (name, (dval, dtrain)) in enumerate(shifts.items()):
        for i, base in enumerate(BASE):
            val, train = base + dval + 0.002 * (i % 2) * trial, 0.2 + dtrain
            row = {"trial": trial, "seed": i, "fold": -1, "state": "complete", "family": name}
            row |= {"phase": "final", "val_loss": val, "train_loss": train}
            rows.append(row | {"gap_loss": val - train, "test_loss": val + 0.01})
    return pd.DataFrame(rows)


def test_comparison_lines_lead_with_the_verdict_then_the_table() -> None:
    shifts = {"baseline": (0.0, 0.0), "dropout": (-0.05, 0.0), "l1": (0.02, 0.25)}
    found = compare(make_final(shifts), "regression", metric="val_loss")
    assert found is not None and found.winner == "dropout"
    lines = comparison_lines(found)
    assert lines[0] == f"verdict: {found.verdict}" and "\n" not in found.verdict
    head = lines[1].split()
    assert head[:4] == ["candidate", "pairs", "val_loss", "Δ"]
    assert "adj" in head and "P(better)" in head and "standing" in head and head[-1] == "test"
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert list(rows) == ["baseline", "dropout", "l1"]
    assert rows["baseline"].split()[1:] == ["5", "0.52", "±", "0.02"]
    dropout = rows["dropout"].split()
    assert dropout[1:8] == ["*", "5", "0.471", "±", "0.019", "-0.049", "p<0.001"]
    assert dropout[8:] == ["1.00", "clear", "1", "0", "-0.049", "generalizes", "better", "agrees"]
    assert rows["l1"].endswith("closes the gap by fitting worse  agrees")
    assert "worse" in rows["l1"].split()[:10]  # its standing
    assert "+0.25" in rows["l1"].split()  # Δtrain: it fits the training data worse
    assert lines[-1].startswith("  * recommended (clear winner on val_loss; max-t-adjusted")


def test_the_star_marks_a_likely_candidate_and_nothing_when_keeping_the_baseline() -> None:
    noisy = make_final({"baseline": (0.0, 0.0), "l2": (0.0, 0.0)})
    l2 = noisy["family"] == "l2"
    # Better by 0.034 on average, not on every seed: not significant, P(better) ≈ 0.93.
    noisy.loc[l2, "val_loss"] += np.array([-0.06, -0.02, -0.05, 0.01, -0.05])
    found = compare(noisy, "regression")
    assert found is not None and found.tier == "likely" and found.recommended == "l2"
    lines = comparison_lines(found)
    assert any(line.split()[:2] == ["l2", "*"] for line in lines)
    assert lines[-1].startswith("  * recommended (likely better on val_loss")
    same = compare(make_final({"baseline": (0.0, 0.0), "l1": (0.0005, 0.0)}), "regression")
    assert same is not None and same.tier == "equivalent" and same.recommended is None
    assert not any(" * " in line or line.endswith("*") for line in comparison_lines(same))


def test_comparison_lines_indent_a_constant_predictor_warning() -> None:
    shifts = {"baseline": (0.0, 0.0), "dropout": (-0.05, 0.0)}
    found = compare(make_final(shifts), "regression", constant={"val_loss": 0.3})
    assert found is not None and not found.learnable
    lines = comparison_lines(found)
    assert lines[0].startswith("verdict: No candidate beats a constant predictor")
    # The verdict's second line is indented under the first, before the table.
    assert lines[1].startswith("  Clear winner: dropout beat baseline on val_loss by -0.049")
    assert lines[2].split()[0] == "candidate"
