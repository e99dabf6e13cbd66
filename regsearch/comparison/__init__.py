"""Head-to-head comparison of re-evaluated candidates: who generalizes better, and why.

A compare sweep (and an experiment preset) ends with a ``final`` phase: several named
candidates (``baseline`` or ``none`` for the unregularized model, then e.g. each family's best)
retrained on the same fresh seeds, and on every cross-validation fold when the sweep uses
folds. This package turns those rows of the trials frame into a decision (docs/comparison.md):

**Decision.** The decision metric is the sweep's validation objective (``search.metric``:
val_loss or val_acc); a sweep that optimized a gap is decided on val_loss, because a gap also
closes when the model fits worse. Each candidate is paired with the baseline on the
(seed, fold) pairs both completed. With folds the test is the corrected resampled t-test
(Nadeau & Bengio 2003; Bouckaert & Frank 2004 for r×K: variance × (1/J + n_val/n_train)),
else the plain paired t-test; p-values are Holm-adjusted across the non-baseline candidates.
**Winner:** among candidates significantly better than the baseline after adjustment
(adjusted p < alpha, effect in the better direction), the best mean effect. With none, the
verdict says so and names the *closest* (best mean effect). Fewer than :data:`MIN_PAIRS`
pairs is weak evidence.

**Diagnosis.** Δtrain, Δval and Δgap per candidate, labelled by :func:`diagnose` (e.g.
"closes the gap by fitting worse": smaller gap, worse training fit, validation not better).

**Test.** The paired test-metric difference over seeds (refit rows with folds) confirms in
sign and never chooses: "agrees", "disagrees" or "not available".

Module map: :mod:`.stats` (intervals, tests, Holm, probability of improvement), :mod:`.rows`
(the frame's decision and test tables), :mod:`.decision` (the rules and :func:`compare`),
:mod:`.verdict` (the sentences), :mod:`.records` (the result types), :mod:`.formatting`.

Example:
    >>> result = compare(trials, "classification", metric="val_loss")  # doctest: +SKIP
    >>> result.winner, result.candidate(result.winner).diagnosis  # doctest: +SKIP
    ('dropout', 'generalizes better')
"""

from __future__ import annotations

from regsearch.comparison import (
    bayesian,
    decision,
    formatting,
    manytoone,
    records,
    rules,
    stats,
)
from regsearch.comparison.bayesian import *  # noqa: F403
from regsearch.comparison.decision import *  # noqa: F403
from regsearch.comparison.formatting import *  # noqa: F403
from regsearch.comparison.manytoone import *  # noqa: F403
from regsearch.comparison.records import *  # noqa: F403
from regsearch.comparison.rules import *  # noqa: F403
from regsearch.comparison.stats import *  # noqa: F403

# Each module's public names, listed once there.
__all__ = [
    *decision.__all__,
    *formatting.__all__,
    *manytoone.__all__,
    *bayesian.__all__,
    *records.__all__,
    *rules.__all__,
    *stats.__all__,
]
