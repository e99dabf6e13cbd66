"""The comparison in words: the verdict sentence and how it was decided.

Example:
    >>> print(compare(trials, "classification").verdict)  # doctest: +SKIP
    Clear winner: dropout (dropout=0.31) beat baseline on val_loss by -0.041 [-0.06, -0.022]
    (max-t-adjusted p=0.003, corrected resampled t, 25 seed×fold pairs); gap -0.05
    (generalizes better); test agrees (test_loss -0.03 [-0.04, -0.02], test_acc +0.02).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regsearch.comparison.formatting import format_effect, format_p, short, signed
from regsearch.comparison.records import MIN_PAIRS, Candidate, Comparison
from regsearch.comparison.stats import CORRECTED_T

if TYPE_CHECKING:
    from regsearch.comparison.stats import Difference

__all__ = ["constant_line", "rule", "sentence"]


def sentence(found: Comparison) -> str:
    """The verdict, by tier: the recommendation (or keep the baseline), with numbers.

    Starts with :func:`constant_line` when the constant predictor matters to the reading.
    """
    others = [c for c in found.candidates if c.name != found.baseline]
    if found.baseline is None:
        text = _no_baseline(found, others)
    elif found.focus is None:
        text = f"Only {found.baseline} finished the re-evaluation, so there is nothing to compare."
    elif found.tier == "clear":
        text = _clear(found, found.candidate(found.recommended or found.focus))
    elif found.tier == "likely":
        text = _likely(found, found.candidate(found.recommended or found.focus))
    elif found.tier == "equivalent":
        text = _equivalent(found, found.candidate(found.focus))
    else:
        text = _undecided(found, found.candidate(found.focus))
    if found.n_failed:
        text += f" {found.n_failed} failed member{'s' * (found.n_failed != 1)} left out."
    line = constant_line(found)
    return f"{line}\n{text}" if line else text


def constant_line(found: Comparison) -> str:
    """One line when no candidate beats the constant predictor (no verdict then), or when
    the baseline is overconfident (the verdict follows); else empty."""
    if found.constant is None or found.baseline is None:
        return ""
    base = found.candidate(found.baseline).metrics.get(found.metric)
    if not found.learnable:
        acc = f", val_acc {found.constant_acc:.3g}" if found.constant_acc is not None else ""
        return (
            f"No candidate beats a constant predictor ({found.metric} {found.constant:.3g}{acc} "
            "for predicting the training mean or majority class): the verdict below ranks the "
            "regularizers, but none of these models is useful yet (train longer, or widen the "
            "ranges)."
        )
    if found.overconfident and base is not None and found.constant_acc is not None:
        base_acc = found.candidate(found.baseline).metrics["val_acc"].mean
        return (
            f"The baseline is overconfident: its {found.metric} {base.mean:.3g} is worse than a "
            f"constant predictor's {found.constant:.3g} while its val_acc {base_acc:.3g} beats the "
            f"constant's {found.constant_acc:.3g}. That is the symptom regularization treats."
        )
    return ""


def rule(found: Comparison) -> str:
    """How the answer was decided: metric, pairing, test, adjustment, tiers, use of test data."""
    why = "the sweep's objective"
    if found.objective != found.metric:
        why = (
            f"the sweep optimized {found.objective}, but a gap also closes when the model fits "
            "worse, so validation loss decides"
        )
    folds = [f for f in found.folds if f >= 0]
    if found.method == CORRECTED_T:
        test = (
            f"the corrected resampled t-test (Nadeau & Bengio 2003): the variance of the mean "
            f"difference is s²·(1/J + n_val/n_train) with n_val/n_train = "
            f"{found.val_train_ratio:.3g}, because folds share training rows"
        )
        pairs, test_rows = f"{len(found.seeds)} seeds × {len(folds)} folds", "refit rows"
    else:
        test, pairs, test_rows = "the paired t-test", f"{len(found.seeds)} seeds", "runs"
    m = sum(1 for c in found.candidates if c.standing)
    adjust = _ADJUSTMENTS.get(found.adjustment, found.adjustment)
    return (
        f"Decided on {found.metric} ({why}), paired against {found.baseline or 'the baseline'} "
        f"on the same {pairs}, with {test}. Rule: {found.rule_name}. Clear winner: better "
        f"after the {adjust} across the {m} candidate{'s' * (m != 1)} at α={found.alpha} "
        "(family-wise error controlled). Likely better: the posterior of the Bayesian "
        "correlated t-test (Corani & Benavoli 2015; same standard error) gives P(better by "
        f"more than the margin ±{short(found.margin)}) of at least the rule's threshold. "
        "Practically equivalent: every candidate is within the margin, or worse, with "
        "probability ≥ 0.95: keep the baseline. Otherwise undecided, with what would settle "
        f"it; below {MIN_PAIRS} pairs the evidence is weak. The gap (Δtrain, Δval, Δgap) "
        f"explains, never decides. Test data (the {test_rows}' test split, paired on seed) "
        "confirms when the difference stands out of its own noise and the margin, and never "
        "chooses. Thresholds chosen on benchmarks/bench_calibration.py (docs/comparison.md)."
    )


_ADJUSTMENTS = {
    "max-t": "step-down max-t adjustment for many-to-one comparisons (Dunnett 1955)",
    "holm": "Holm adjustment (Holm 1979)",
}


def _clear(found: Comparison, win: Candidate) -> str:
    diff = win.vs_baseline[found.metric]
    text = (
        f"Clear winner{_off(win)}: {_who(win)} beat {found.baseline} on {found.metric} by "
        f"{format_effect(diff)} ({_evidence(found, win, diff)}); {_explain(found, win)}."
    )
    text += _notes(win)
    if diff.n < MIN_PAIRS:
        n = f"{diff.n} pair{'s' * (diff.n != 1)}"
        return f"Weak evidence: {text} Only {n}: more sweep.final_seeds would settle it."
    return text


def _likely(found: Comparison, cand: Candidate) -> str:
    diff = cand.vs_baseline[found.metric]
    chance = cand.posterior.better if cand.posterior else float("nan")
    text = (
        f"Likely better{_off(cand)}: {_who(cand)}, {found.metric} {format_effect(diff)} vs "
        f"{found.baseline}; P(better by more than ±{short(found.margin)}) = {chance:.2f}, "
        f"not a clear winner ({_evidence(found, cand, diff)}); {_explain(found, cand)}. "
        f"Recommended with that probability." + _notes(cand)
    )
    if diff.n < MIN_PAIRS:
        n = f"{diff.n} pair{'s' * (diff.n != 1)}"
        text += f" Only {n}: weak evidence; more sweep.final_seeds would settle it."
    return text


def _equivalent(found: Comparison, near: Candidate) -> str:
    diff = near.vs_baseline[found.metric]
    return (
        f"Keep {found.baseline}: no regularizer improves {found.metric} by more than "
        f"±{short(found.margin)} (each is equivalent or worse with P ≥ 0.95). Closest: "
        f"{_who(near)}, {found.metric} {format_effect(diff)} ({_evidence(found, near, diff)}); "
        f"{_explain(found, near)}."
    )


def _undecided(found: Comparison, near: Candidate) -> str:
    diff = near.vs_baseline[found.metric]
    post = near.posterior
    odds = (
        ""
        if post is None
        else (f"P(better) = {post.better:.2f}, P(equivalent) = {post.equivalent:.2f}, ")
    )
    text = (
        f"Undecided: no regularizer is clearly better than {found.baseline} on {found.metric}, "
        f"nor shown equivalent within ±{short(found.margin)}; keep {found.baseline} until "
        f"settled. Most promising: {_who(near)}, {found.metric} {format_effect(diff)} "
        f"({odds}{_evidence(found, near, diff)}); {_explain(found, near)}."
    )
    text += _notes(near)
    if diff.n < MIN_PAIRS:
        return text + " So few pairs are weak evidence either way; raise sweep.final_seeds."
    return f"{text} {found.settle}".rstrip()


def _off(cand: Candidate) -> str:
    return f" (through the learning rate, not {cand.off})" if cand.off else ""


def _notes(cand: Candidate) -> str:
    return "".join(f" {note}" for note in cand.notes)


def _who(cand: Candidate) -> str:
    return f"{cand.name} ({cand.params_text})" if cand.params else cand.name


def _evidence(found: Comparison, cand: Candidate, diff: Difference) -> str:
    if found.method == CORRECTED_T:
        pairs = f"{diff.n} seed×fold pair{'s' * (diff.n != 1)}"
    else:
        pairs = f"{diff.n} paired seed{'s' * (diff.n != 1)}"
    if cand.p_adjusted is None:
        return f"no test with a single pair, {pairs}"
    adjust = "Holm" if found.adjustment == "holm" else "max-t"
    return f"{adjust}-adjusted {format_p(cand.p_adjusted)}, {found.method}, {pairs}"


def _explain(found: Comparison, cand: Candidate) -> str:
    """``"gap -0.05 (generalizes better); test agrees (test_loss -0.03)"``."""
    gap = cand.vs_baseline.get(f"gap_{found.basis}")
    gap_text = f"gap {signed(gap.mean)}" if gap is not None else "gap not measured"
    return f"{gap_text} ({cand.diagnosis}); {_test_text(found, cand)}"


def _test_text(found: Comparison, cand: Candidate) -> str:
    if cand.test is None or cand.test.diff is None:
        return "test not available"
    parts = [f"{cand.test.metric} {format_effect(cand.test.diff)}"]
    extra = cand.vs_baseline.get("test_acc") if found.basis == "loss" else None
    if extra is not None:  # accuracy is what a classification user reads
        parts.append(f"test_acc {signed(extra.mean, resolution=_ACC_RESOLUTION)}")
    text = f"test {cand.test.status} ({', '.join(parts)})"
    if cand.test.other is not None:
        text += "; test_acc points the other way"
    return text


#: Accuracy differences below this are float noise (a share of rows), not effects.
_ACC_RESOLUTION = 1e-6


def _no_baseline(found: Comparison, others: list[Candidate]) -> str:
    text = "No unregularized candidate ('baseline' or 'none') finished, so nothing is tested"
    scored = [c for c in others if found.metric in c.metrics]
    if scored:
        sign = -1.0 if found.metric.endswith("_acc") else 1.0
        best = min(scored, key=lambda c: sign * c.metrics[found.metric].mean)
        text += (
            f"; the best {found.metric} was {best.name}'s ({best.params_text}): "
            f"{short(best.metrics[found.metric].mean)}"
        )
    return text + "."
