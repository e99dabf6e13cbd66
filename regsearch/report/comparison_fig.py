"""The head-to-head on fresh seeds: each candidate's paired difference to the baseline."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from regsearch.comparison import Comparison, higher_is_better
from regsearch.report.panels import note_figure

__all__ = ["comparison_chart"]


def comparison_chart(comparison: Comparison) -> Figure:
    """Each candidate's paired difference to the baseline, with its 95% interval.

    Left panel: the decision metric (the comparison's test: plain or corrected t); right
    panel: the gap on the same metric family, which explains the decision. One row per
    non-baseline candidate, in the order they were run; the recommended one is green, the rest
    blue; a dashed line marks "no difference". A candidate with one pair has no error bar.

    Args:
        comparison: From :func:`regsearch.comparison.compare`.

    Returns:
        The figure; nothing is shown.

    Example:
        >>> fig = comparison_chart(compare(trials, "classification"))  # doctest: +SKIP
        >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]  # doctest: +SKIP
        ['l2', 'dropout']
    """
    metric, gap = comparison.metric, f"gap_{comparison.basis}"
    cands = [c for c in comparison.candidates if metric in c.vs_baseline]
    if not cands:
        why = "no baseline to pair with" if comparison.baseline is None else "no paired candidates"
        return note_figure(why)
    fig = Figure(figsize=(10.0, max(2.6, 0.45 * len(cands) + 1.4)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    colors = ["C2" if c.name == comparison.recommended else "C0" for c in cands]
    better = "higher" if higher_is_better(metric) else "lower"
    titles = (f"Δ {metric} ({better} is better)", f"Δ {gap} (lower: smaller gap)")
    for ax, key, title in zip(axes, (metric, gap), titles, strict=True):
        for y, (cand, color) in enumerate(zip(cands, colors, strict=True)):
            diff = cand.vs_baseline.get(key)
            if diff is None:
                continue
            err = None if diff.low is None or diff.high is None else (diff.high - diff.low) / 2
            ax.errorbar(diff.mean, y, xerr=err, fmt="o", color=color, capsize=4, ms=7, lw=2)
        ax.axvline(0.0, color="0.55", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", color="0.9")
        ax.xaxis.set_major_locator(MaxNLocator(5))  # half-width panels: fewer, legible ticks
    axes[0].set_yticks(range(len(cands)), [c.name for c in cands])
    axes[0].invert_yaxis()
    n = max(c.vs_baseline[metric].n for c in cands)
    fig.suptitle(
        f"Candidate − {comparison.baseline} over up to {n} paired runs: mean and 95% interval "
        f"({comparison.method})",
        fontsize=11,
    )
    return fig
