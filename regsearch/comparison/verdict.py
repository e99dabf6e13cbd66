"""The comparison in words: the verdict sentence and how it was decided.

Example:
    >>> print(compare(trials, "classification").verdict)  # doctest: +SKIP
    dropout (dropout=0.31) beat baseline on val_loss by -0.041 [-0.06, -0.022] (Holm-adjusted
    p=0.003, corrected resampled t, 25 seed×fold pairs); gap -0.05 (generalizes better); test
    agrees (test_loss -0.03, test_acc +0.02).
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
    """The verdict: the winner (or that none beat the baseline, and the closest), with numbers.

    Starts with :func:`constant_line` when the baseline does not beat a constant predictor.
    """
    others = [c for c in found.candidates if c.name != found.baseline]
    if found.baseline is None:
        text = _no_baseline(found, others)
    elif found.focus is None:
        text = f"Only {found.baseline} finished the re-evaluation, so there is nothing to compare."
    elif found.winner is not None:
        text = _winner(found, found.candidate(found.winner))
    else:
        text = _no_winner(found, found.candidate(found.focus))
    if found.n_failed:
        text += f" {found.n_failed} failed member{'s' * (found.n_failed != 1)} left out."
    line = constant_line(found)
    return f"{line}\n{text}" if line else text


def constant_line(found: Comparison) -> str:
    """One line when the baseline does not beat the constant predictor; else empty."""
    if found.learnable or found.constant is None or found.baseline is None:
        return ""
    base = found.candidate(found.baseline).metrics[found.metric].mean
    return (
        f"The baseline does not beat a constant predictor ({found.metric} {base:.3g} vs "
        f"{found.constant:.3g} for predicting the training mean or majority class), so no "
        "regularizer verdict is meaningful."
    )


def rule(found: Comparison) -> str:
    """How the answer was decided: metric, pairing, test, correction, alpha, use of test data."""
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
    m = sum(1 for c in found.candidates if c.p_adjusted is not None)
    return (
        f"Decided on {found.metric} ({why}), paired against {found.baseline or 'the baseline'} "
        f"on the same {pairs}, with {test}; p-values Holm-adjusted across the {m} "
        f"candidate{'s' * (m != 1)} at α={found.alpha}. The winner is the candidate with the "
        "best mean effect among those significantly better after adjustment; below "
        f"{MIN_PAIRS} pairs the evidence is weak. The gap (Δtrain, Δval, Δgap) explains, "
        f"never decides. Test data (the {test_rows}' test split, paired on seed) confirms in "
        "sign and never chooses."
    )


def _winner(found: Comparison, win: Candidate) -> str:
    diff = win.vs_baseline[found.metric]
    text = (
        f"{_who(win)} beat {found.baseline} on {found.metric} by "
        f"{format_effect(diff)} ({_evidence(found, win, diff)}); {_explain(found, win)}."
    )
    if diff.n < MIN_PAIRS:
        n = f"{diff.n} pair{'s' * (diff.n != 1)}"
        return f"Weak evidence: {text} Only {n}: more sweep.final_seeds would settle it."
    return text


def _no_winner(found: Comparison, near: Candidate) -> str:
    diff = near.vs_baseline[found.metric]
    text = (
        f"No regularizer beat {found.baseline} on {found.metric} (Holm-adjusted, "
        f"α={found.alpha}): keep {found.baseline}. Closest: {_who(near)}, "
        f"{found.metric} {format_effect(diff)} ({_evidence(found, near, diff)}); "
        f"{_explain(found, near)}."
    )
    if diff.n < MIN_PAIRS:
        text += " So few pairs are weak evidence either way; raise sweep.final_seeds."
    return text


def _who(cand: Candidate) -> str:
    return f"{cand.name} ({cand.params_text})" if cand.params else cand.name


def _evidence(found: Comparison, cand: Candidate, diff: Difference) -> str:
    if found.method == CORRECTED_T:
        pairs = f"{diff.n} seed×fold pair{'s' * (diff.n != 1)}"
    else:
        pairs = f"{diff.n} paired seed{'s' * (diff.n != 1)}"
    if cand.p_adjusted is None:
        return f"no test with a single pair, {pairs}"
    return f"Holm-adjusted {format_p(cand.p_adjusted)}, {found.method}, {pairs}"


def _explain(found: Comparison, cand: Candidate) -> str:
    """``"gap -0.05 (generalizes better); test agrees (test_loss -0.03)"``."""
    gap = cand.vs_baseline.get(f"gap_{found.basis}")
    gap_text = f"gap {signed(gap.mean)}" if gap is not None else "gap not measured"
    return f"{gap_text} ({cand.diagnosis}); {_test_text(found, cand)}"


def _test_text(found: Comparison, cand: Candidate) -> str:
    if cand.test is None or cand.test.diff is None:
        return "test not available"
    parts = [f"{cand.test.metric} {signed(cand.test.diff.mean)}"]
    extra = cand.vs_baseline.get("test_acc") if found.basis == "loss" else None
    if extra is not None:  # accuracy is what a classification user reads
        parts.append(f"test_acc {signed(extra.mean)}")
    return f"test {cand.test.status} ({', '.join(parts)})"


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
