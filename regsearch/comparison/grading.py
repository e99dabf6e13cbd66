"""The graded answer: where each candidate stands against the baseline, and the verdict's tier.

Per candidate, on the decision metric's paired differences (maybe trimmed, see
:class:`~regsearch.comparison.rules.DecisionRule`):

- the *clear* claim: the two-sided test adjusted across the candidates (max-t step-down or
  Holm) rejects "no difference" at α and the effect is in the better direction — the strict
  claim, its family-wise error controlled;
- the posterior of the Bayesian correlated t-test (:mod:`.bayesian`): P(better by more than
  the margin), P(equivalent: within ±margin), P(worse by more than it).

Standing of a candidate, first match wins:

=============  ================================================================
clear          the clear claim holds, on at least MIN_PAIRS pairs
likely         P(better) ≥ rule.likely (or 1 − one-sided adjusted p, family-wise)
worse          significantly worse after adjustment, or P(worse) ≥ rule.decided
equivalent     P(equivalent) ≥ rule.decided
not better     P(better) ≤ 1 − rule.decided (equivalent or worse, not which)
undecided      anything else
=============  ================================================================

Tier of the verdict: *clear* when any candidate is clear (the recommendation is the best mean
effect among them); else *likely* (the likely candidate with the highest P(better)); else
*equivalent* when every candidate is equivalent, not better or worse (keep the baseline); else
*undecided*, with what would settle it (:func:`settle`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import pandas as pd

from regsearch.comparison.bayesian import Posterior, needed_se, posterior
from regsearch.comparison.manytoone import max_t_adjusted
from regsearch.comparison.records import MIN_PAIRS, Candidate, Tier
from regsearch.comparison.rules import DecisionRule
from regsearch.comparison.stats import Difference, holm, trimmed_difference
from regsearch.records import lr_control_of

__all__ = ["grade", "settle", "tier"]


def grade(
    cands: list[Candidate],
    tables: Mapping[str, pd.DataFrame],
    baseline: str,
    decide: str,
    *,
    better_is_higher: bool,
    rule: DecisionRule,
    alpha: float,
    ratio: float | None,
    margin: float,
) -> list[Candidate]:
    """Each non-baseline candidate with its decision difference, adjusted p-values, posterior
    and standing; the baseline unchanged."""
    # Learning-rate controls (baseline@<family>) explain a candidate; they are not one.
    tested = [c for c in cands if decide in c.vs_baseline and lr_control_of(c.name) is None]
    if not tested:
        return cands
    base = tables[baseline][decide].astype(float)
    paired = {c.name: tables[c.name][decide].astype(float) - base for c in tested}
    decisive = {
        c.name: trimmed_difference(
            tables[c.name][decide].astype(float), base, rule.trim, val_train_ratio=ratio
        )
        or c.vs_baseline[decide]
        for c in tested
    }
    sign = 1.0 if better_is_higher else -1.0
    gains = {n: sign * d.mean for n, d in decisive.items()}
    two, one = _adjusted(decisive, paired, sign, rule.adjust)
    graded = {}
    for c in tested:
        post = posterior(decisive[c.name], margin, better_is_higher)
        p2, p1 = two[c.name], one[c.name]
        better = p2 is not None and p2 < alpha and gains[c.name] > 0
        worse = p2 is not None and p2 < alpha and gains[c.name] < 0
        place = _standing(better, worse, post, p1, rule)
        if place == "clear" and decisive[c.name].n < MIN_PAIRS:
            place = (
                "likely" if post is not None and post.better >= (rule.likely or 1) else "undecided"
            )
        graded[c.name] = dataclasses.replace(
            c,
            decision=decisive[c.name],
            posterior=post,
            p_adjusted=p2,
            p_one_sided=p1,
            better=better,
            standing=place,
        )
    return [graded.get(c.name, c) for c in cands]


def _adjusted(
    decisive: Mapping[str, Difference],
    paired: Mapping[str, pd.Series],
    sign: float,
    adjust: str,
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Two-sided and one-sided ("better") adjusted p-values per candidate."""
    names = list(decisive)
    if adjust == "holm":
        two = holm([decisive[n].p_value for n in names])
        one = holm([_one_sided(decisive[n], sign) for n in names])
        return dict(zip(names, two, strict=True)), dict(zip(names, one, strict=True))
    stats = [decisive[n].t for n in names]
    dfs = [df for n in names if (df := decisive[n].df)]
    if not dfs:
        return dict.fromkeys(names), dict.fromkeys(names)
    matrix = pd.concat(paired, axis=1)
    df = min(dfs)
    two = max_t_adjusted(matrix, stats, df)
    better = [None if t is None else sign * t for t in stats]
    one = max_t_adjusted(matrix, better, df, two_sided=False)
    return dict(zip(names, two, strict=True)), dict(zip(names, one, strict=True))


def _one_sided(diff: Difference, sign: float) -> float | None:
    """P-value of "better" from the two-sided one: half of it in the better direction."""
    if diff.p_value is None:
        return None
    return diff.p_value / 2 if sign * diff.mean > 0 else 1 - diff.p_value / 2


def _standing(
    better: bool, worse: bool, post: Posterior | None, p_one: float | None, rule: DecisionRule
) -> str:
    if better:
        return "clear"
    if post is None:
        return "undecided"
    if rule.likely is not None:
        chance = 1 - p_one if rule.likely_family_wise and p_one is not None else post.better
        if chance >= rule.likely and post.better > post.worse:
            return "likely"
    if worse or post.worse >= rule.decided:
        return "worse"
    if post.equivalent >= rule.decided:
        return "equivalent"
    if post.better <= 1 - rule.decided:
        return "not better"
    return "undecided"


def tier(cands: Sequence[Candidate], decide: str, rule: DecisionRule) -> tuple[Tier, str | None]:
    """The verdict's tier and the recommended candidate (None: keep the baseline)."""
    others = [c for c in cands if c.standing]
    if not others:
        return "none", None
    clear = [c for c in others if c.standing == "clear" and c.decision is not None]
    if clear:
        sign = -1.0 if decide.endswith("_acc") else 1.0
        return "clear", min(clear, key=lambda c: sign * c.decision.mean).name  # type: ignore[union-attr]
    likely = [c for c in others if c.standing == "likely" and c.posterior is not None]
    if likely:
        return "likely", max(likely, key=lambda c: c.posterior.better).name  # type: ignore[union-attr]
    settled = all(c.standing in ("equivalent", "not better", "worse") for c in others)
    return ("equivalent" if settled and rule.equivalence else "undecided"), None


def settle(
    cand: Candidate, ratio: float | None, folds: int, seeds: int, margin: float, rule: DecisionRule
) -> str:
    """What would decide an undecided candidate, from its observed effect and spread.

    The corrected standard error is s·√(1/J + n_val/n_train): more seeds shrink only the 1/J
    term, so when n_val/n_train alone keeps it above what the decision needs, only more
    folds (a smaller n_val/n_train) or more data can settle it. The decision aimed at is the
    one the observed effect points to: better (beyond the margin), equivalent, or worse.
    """
    diff, post = cand.decision, cand.posterior
    if diff is None or diff.se is None or diff.df is None or post is None or diff.se <= 0:
        return "More sweep.final_seeds would settle it."
    rho = ratio or 0.0
    spread = diff.se / math.sqrt(1 / diff.n + rho)
    size = abs(diff.mean)
    if size > margin and post.better >= post.worse:
        target = rule.likely or rule.decided
        need, aim = needed_se(size, margin, target, diff.df), f"P(better) ≥ {target:g}"
    elif size < margin:
        need, aim = needed_se(margin, size, rule.decided, diff.df), "equivalence"
    else:
        need, aim = needed_se(size, margin, rule.decided, diff.df), "P(worse) ≥ 0.95"
    return _seeds_text(spread, need, rho, folds, seeds, aim)


def _seeds_text(spread: float, need: float, rho: float, folds: int, seeds: int, aim: str) -> str:
    per_seed = max(folds, 1)
    if need <= 0:
        return "The observed effect sits on the equivalence margin: more seeds or folds will tell."
    if need * need <= spread * spread * rho * 1.0001:
        extra = ""
        if folds and folds < 10 and need * need > spread * spread / 9:
            extra = f" (search.final_cv=10 cuts the n_val/n_train term from {rho:.2g} to 0.11)"
        return (
            f"More seeds cannot settle it at this pool size: the n_val/n_train = {rho:.2g} term "
            f"alone keeps the standard error above the {need:.2g} that {aim} needs; more data "
            f"or more folds would{extra}."
        )
    pairs = math.ceil(1 / (need * need / (spread * spread) - rho))
    total = max(seeds + 1, math.ceil(pairs / per_seed))
    return (
        f"If the effect holds, about {total} final seeds (sweep.final_seeds={total}, now "
        f"{seeds}) would reach {aim}."
    )
