"""The suite report's figures: the critical-difference diagram and the heat map of effects.

Like :mod:`regsearch.report.figures`, each function builds a :class:`matplotlib.figure.Figure`
on an Agg canvas (no pyplot state, no display needed).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from regsearch.comparison import higher_is_better
from regsearch.comparison.formatting import signed
from regsearch.suite.stats import outcome

__all__ = ["cd_diagram", "cliques", "effects_heatmap"]


def cliques(ranks: list[float], cd: float) -> list[tuple[int, int]]:
    """Maximal runs of sorted average ranks closer than ``cd``: (first, last) positions.

    Candidates in one run are not distinguishable by the Nemenyi test; a diagram joins them
    with a bar. Runs inside a longer one are dropped.

    Example:
        >>> cliques([1.0, 1.5, 2.0, 3.5, 3.9], cd=1.0)  # 2.0 − 1.0 is not below the CD
        [(0, 1), (1, 2), (3, 4)]
        >>> cliques([1.0, 3.0], cd=1.0)
        []
    """
    found: list[tuple[int, int]] = []
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not (found and found[-1][1] >= j):
            found.append((i, j))
    return found


def cd_diagram(ranks: pd.Series, cd: float | None) -> Figure:
    """Average ranks on an axis (1 = best, left), names on either side, bars joining groups
    whose ranks differ by less than the critical difference ``cd`` (Demšar 2006, Fig. 1).

    Args:
        ranks: Average rank per candidate.
        cd: Nemenyi critical difference; None draws the ranks without groups.
    """
    order = ranks.sort_values()
    names, values = [str(n) for n in order.index], order.to_numpy(dtype=float)
    k = len(values)
    top = max(k, 2)
    half = (k + 1) // 2
    groups = cliques(list(values), cd) if cd is not None else []
    fig = Figure(figsize=(9.0, 1.5 + 0.3 * half + 0.1 * len(groups)))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    span = (top - 1) / 0.5  # the rank axis takes the middle half, names the sides
    ax.set_xlim(1 - 0.25 * span, top + 0.25 * span)
    rows_y = [0.45 + 0.25 * j for j in range(half)]
    ax.set_ylim(max(rows_y) + 0.25, -0.6)
    ax.axis("off")
    ax.hlines(0.0, 1, top, color="0.2", lw=1.2)
    for tick in range(1, top + 1):
        ax.vlines(tick, -0.06, 0.0, color="0.2", lw=1)
        ax.text(tick, -0.1, str(tick), ha="center", va="bottom", fontsize=9)
    for i, (name, value) in enumerate(zip(names, values, strict=True)):
        left = i < half
        y = rows_y[i if left else k - 1 - i]
        end = 1 - 0.05 * span if left else top + 0.05 * span
        ax.plot([value, value, end], [0.0, y, y], color="0.35", lw=1)
        label = f"{name} ({value:.2f})" if left else f"({value:.2f}) {name}"
        ax.text(end, y, label, ha="right" if left else "left", va="center", fontsize=9.5)
    for g, (i, j) in enumerate(groups):
        y = 0.12 + 0.08 * g
        ax.hlines(y, values[i] - 0.03, values[j] + 0.03, color="black", lw=3)
    if cd is not None and math.isfinite(cd):
        ax.hlines(-0.42, 1, min(1 + cd, top + 0.25 * span), color="C3", lw=2)
        ax.text(1, -0.46, f"CD = {cd:.2f}", ha="left", va="bottom", fontsize=9, color="C3")
    return fig


def effects_heatmap(records: pd.DataFrame, datasets: list[str], families: list[str]) -> Figure:
    """Each data set's effect (candidate − baseline) per family, coloured by improvement.

    Green is better than the baseline, pink worse, on one symmetric scale (the 95th percentile
    of the absolute effects, so one extreme set does not wash out the rest); bold numbers are
    wins or losses (the data set's interval excludes 0), plain ones ties.
    """
    rows = records[~records["baseline"].astype(bool)]
    metric = str(rows["metric"].iloc[0]) if not rows.empty else "val_loss"
    sign = 1.0 if higher_is_better(metric) else -1.0
    effect = rows.pivot_table(index="dataset", columns="candidate", values="effect", sort=False)
    effect = effect.reindex(index=[d for d in datasets if d in effect.index], columns=families)
    gain = sign * effect
    finite = np.abs(gain.to_numpy(dtype=float))
    finite = finite[np.isfinite(finite)]
    vmax = float(np.quantile(finite, 0.95)) if finite.size else 1.0
    height = 1.6 + 0.38 * len(effect)
    fig = Figure(figsize=(max(6.0, 1.1 * len(families) + 2.5), height), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = effect.map(lambda v: "" if pd.isna(v) else signed(float(v)))
    sns.heatmap(
        gain,
        ax=ax,
        cmap="PiYG",
        center=0.0,
        vmin=-(vmax or 1.0),
        vmax=vmax or 1.0,
        annot=labels.to_numpy(),
        fmt="",
        annot_kws={"fontsize": 8.5},
        linewidths=0.5,
        linecolor="white",
        cbar_kws={"label": f"{'' if sign > 0 else '−'}Δ {metric}", "shrink": 0.9},
    )
    _bold_decided(ax, rows, effect, metric)
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_title(f"Δ {metric} against the baseline (green: better)", fontsize=11)
    return fig


def _bold_decided(ax: object, rows: pd.DataFrame, effect: pd.DataFrame, metric: str) -> None:
    """Bold the annotations of cells whose interval excludes 0 (wins and losses)."""
    better = higher_is_better(metric)
    decided = set()
    cells = zip(rows["dataset"], rows["candidate"], rows["low"], rows["high"], strict=True)
    for dataset, candidate, low, high in cells:
        if outcome(float(low), float(high), better) != "tie":
            decided.add((str(dataset), str(candidate)))
    texts = iter(getattr(ax, "texts", []))
    for dataset in effect.index:
        for family in effect.columns:
            if pd.isna(effect.loc[dataset, family]):
                continue
            text = next(texts, None)
            if text is not None and (dataset, family) in decided:
                text.set_fontweight("bold")
