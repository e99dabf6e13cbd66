"""Learning-rate controls: what the regularizer does at the learning rate it was tuned with.

With the learning rate tuned in every arm, a regularized best can beat the baseline through its
learning rate alone. The final phase then also trains ``baseline@<family>`` (the unregularized
model at that family's learning rate; :data:`regsearch.records.LR_CONTROL`) on the same seeds
and folds. The paired difference *family − baseline@family* isolates the regularizer: when it
is not likely better (posterior below ½, see :mod:`.bayesian`), the family's gain over the
baseline is credited to the learning rate.

Controls are not candidates of the verdict (they are not regularizers); they explain one.

Example:
    >>> cands = with_controls(cands, tables, "val_loss", ratio=0.25, margin=0.01,
    ...                       better_is_higher=False)  # doctest: +SKIP
    >>> cands[1].notes[0]  # doctest: +SKIP
    'Against baseline@l1 (lr=0.0064), l1 itself changes val_loss by -0.001 [...]: ...'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import pandas as pd

from regsearch.comparison.bayesian import posterior
from regsearch.comparison.formatting import format_effect, short
from regsearch.comparison.records import Candidate
from regsearch.comparison.stats import paired_difference
from regsearch.records import LR_CONTROL, lr_control_of

__all__ = ["is_control", "with_controls"]


def is_control(name: str) -> bool:
    """Whether a candidate name is a learning-rate control (``baseline@<family>``)."""
    return lr_control_of(name) is not None


def with_controls(
    cands: Sequence[Candidate],
    tables: Mapping[str, pd.DataFrame],
    decide: str,
    *,
    ratio: float | None,
    margin: float,
    better_is_higher: bool,
) -> list[Candidate]:
    """Each graded candidate that has a control, with a note on its own effect against it
    (and ``off`` set when the learning rate takes the credit)."""
    out = []
    for cand in cands:
        control = LR_CONTROL.format(cand.name)
        if not cand.standing or control not in tables or cand.name not in tables:
            out.append(cand)
            continue
        diff = paired_difference(
            tables[cand.name][decide].astype(float),
            tables[control][decide].astype(float),
            val_train_ratio=ratio,
        )
        post = None if diff is None else posterior(diff, margin, better_is_higher)
        if diff is None or post is None:
            out.append(cand)
            continue
        lr = cand.params.get("lr")
        where = f"{control} (lr={short(lr)})" if lr is not None else control
        own = (
            f"Against {where}, {cand.name} itself changes {decide} by {format_effect(diff)} "
            f"(P(better) = {post.better:.2f})"
        )
        if post.better < 0.5:
            note = f"{own}: the gain over the baseline belongs to the learning rate."
            out.append(dataclasses.replace(cand, notes=(note, *cand.notes), off=cand.name))
        else:
            out.append(dataclasses.replace(cand, notes=(f"{own}.", *cand.notes)))
    return out
