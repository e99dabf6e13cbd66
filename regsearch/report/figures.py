"""Seaborn figures of a finished sweep, one function per figure, gathered from their modules.

Each figure lives in the module of its part of the data flow: :mod:`.curves` (learning
curves), :mod:`.gap` (the gap against the parameters and per family), :mod:`.history` (the
objective per trial), :mod:`.penalty` (weights against λ), :mod:`.importance`,
:mod:`.comparison_fig` and :mod:`.boundaries_fig`; :mod:`.panels` holds what they are drawn on
and :mod:`.members` which rows they read. This module names them all in one place for notebooks
and older imports.

Every function returns a figure, also when its data is missing: it then draws a placeholder
that says why, and :func:`placeholder_reason` tells such a figure apart from a drawn one.

Example:
    >>> import pandas as pd
    >>> fig = gap_by_family(pd.DataFrame(), "classification")
    >>> placeholder_reason(fig)
    'no complete trials'
"""

from __future__ import annotations

from regsearch.report.boundaries_fig import decision_boundaries
from regsearch.report.comparison_fig import comparison_chart
from regsearch.report.curves import curve_groups, learning_curves
from regsearch.report.gap import gap_by_family, gap_vs_params, param_kind
from regsearch.report.history import val_metric_history
from regsearch.report.importance import (
    MIN_IMPORTANCE_TRIALS,
    importance_chart,
    importance_skip_reason,
    param_importance,
)
from regsearch.report.members import complete_rows, gap_column, val_column
from regsearch.report.panels import PLACEHOLDER, placeholder_reason
from regsearch.report.penalty import PENALTY_PARAMS, penalty_effects
from regsearch.report.strength import STRENGTH_SIGN, weakest_trial

__all__ = [
    "MIN_IMPORTANCE_TRIALS",
    "PENALTY_PARAMS",
    "PLACEHOLDER",
    "STRENGTH_SIGN",
    "comparison_chart",
    "complete_rows",
    "curve_groups",
    "decision_boundaries",
    "gap_by_family",
    "gap_column",
    "gap_vs_params",
    "importance_chart",
    "importance_skip_reason",
    "learning_curves",
    "param_importance",
    "param_kind",
    "penalty_effects",
    "placeholder_reason",
    "val_column",
    "val_metric_history",
    "weakest_trial",
]
