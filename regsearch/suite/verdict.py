"""The suite's answer in words: which regularizer beat the baseline across data sets.

Example:
    >>> print(suite_sentence(stats))  # doctest: +SKIP
    Across 12 data sets, early_stopping beat baseline on val_loss: median Δ -0.041 [-0.08,
    -0.012], 8 wins / 3 ties / 1 loss, Wilcoxon signed-rank over data sets p=0.012 (Holm).
"""

from __future__ import annotations

from regsearch.comparison.formatting import format_p, signed
from regsearch.comparison.records import TIERS
from regsearch.suite.stats import FamilyStats, SuiteStats

__all__ = ["MIN_WILCOXON", "family_text", "suite_rule", "suite_sentence"]

#: Fewer data sets than this and no two-sided Wilcoxon signed-rank test reaches p < 0.05
#: (with 5 the smallest exact p is 2/2⁵ = 0.0625).
MIN_WILCOXON = 6


def family_text(fam: FamilyStats) -> str:
    """``median Δ -0.04 [-0.08, -0.012], 8 wins / 3 ties / 1 loss, Holm p=0.012``."""
    parts = []
    if fam.median is not None:
        bounds = fam.low is not None and fam.high is not None
        interval = f" [{signed(fam.low or 0.0)}, {signed(fam.high or 0.0)}]" if bounds else ""
        parts.append(f"median Δ {signed(fam.median)}{interval}")
    parts.append(
        f"{fam.wins} win{'s' * (fam.wins != 1)} / {fam.ties} tie{'s' * (fam.ties != 1)} / "
        f"{fam.losses} loss{'es' * (fam.losses != 1)}"
    )
    p = format_p(fam.p_holm)
    parts.append(f"Holm {p}" if p else "no test (no effect differs from 0)")
    return ", ".join(parts)


def suite_sentence(stats: SuiteStats) -> str:
    """The verdict across data sets: the families that beat the baseline (Wilcoxon + Holm), or
    that none did and the closest; those that did worse; caveats on few or unlearnable sets."""
    n = len(stats.datasets)
    where = f"{n} data set{'s' * (n != 1)}"
    winners = stats.winners
    if winners:
        best = winners[0]
        text = (
            f"Across {where}, {best.name} beat {stats.baseline} on {stats.metric}: "
            f"{family_text(best)}."
        )
        if len(winners) > 1:
            rest = "; ".join(f"{f.name} ({family_text(f)})" for f in winners[1:])
            text += f" Also better: {rest}."
    else:
        text = (
            f"No regularizer beat {stats.baseline} consistently across {where} on {stats.metric}."
        )
        closest = stats.closest
        if closest is not None:
            text += f" Closest: {closest.name}, {family_text(closest)}."
    worse = [f for f in stats.families if f.worse]
    if worse:
        text += (
            " Worse than the baseline: "
            + "; ".join(f"{f.name} ({family_text(f)})" for f in worse)
            + "."
        )
    if n < MIN_WILCOXON:
        text += (
            f" With fewer than {MIN_WILCOXON} data sets no two-sided Wilcoxon test can reach "
            "p<0.05: a smoke test, not evidence."
        )
    if stats.unlearnable:
        names = ", ".join(stats.unlearnable)
        text += f" On {names} no model beat a constant predictor."
    return text + per_set_text(stats)


def per_set_text(stats: SuiteStats) -> str:
    """How the data sets' own verdicts read, and how often they agree with the result across
    data sets (a per-set recommendation of a family that won across data sets)."""
    if not stats.per_set:
        return ""
    tiers = [tier for _, tier, _ in stats.per_set]
    counts = ", ".join(f"{tiers.count(t)} {t}" for t in TIERS if tiers.count(t))
    text = f" Per data set: {counts}."
    winners = {f.name for f in stats.winners}
    if winners:
        agree = sum(1 for _, _, chosen in stats.per_set if chosen in winners)
        names = ", ".join(sorted(winners))
        text += (
            f" {agree} of {len(stats.per_set)} data sets recommend one of the families that "
            f"won across data sets ({names})."
        )
    return text


def suite_rule(stats: SuiteStats) -> str:
    """How the suite's answer was decided, in one paragraph."""
    better = "higher" if stats.higher_better else "lower"
    return (
        f"Each data set's compare sweep pairs every family's tuned best with the baseline on "
        f"the same fresh seeds (and folds) and gives the effect on {stats.metric} ({better} "
        "is better) with its 95% interval. Across data sets, per family: a win where that "
        "interval lies wholly on the better side of 0, a loss where it lies on the worse side, "
        "a tie where it includes 0; the median effect with a percentile bootstrap interval "
        f"over data sets ({stats.n_resamples} resamples, seed {stats.seed}); and a two-sided "
        "Wilcoxon signed-rank test of the effects over data sets, p-values Holm-adjusted "
        f"across the {len(stats.families)} families at α={stats.alpha}. A family beat the "
        "baseline when its adjusted p is below α and its median effect is better. The "
        "average ranks (Friedman test, Nemenyi critical difference; Demšar 2006) describe all "
        "candidates at once; the Wilcoxon tests decide (Benavoli et al. 2016)."
    )
