r"""The population stack's optimizer step: torch.optim's SGD and Adam over one flat buffer.

Every member's parameters, gradients and optimizer state live in flat buffers of one layout
(:class:`regsearch.engine.layout.Blocks`); per-member hyperparameters are per-element
factors in the same layout, so one step is a few elementwise ops over the whole stack. With
:math:`\gamma` a member's learning rate, :math:`\lambda_1, \lambda_2` its penalties and
:math:`w` its decoupled weight decay, the stack first forms

.. math::
    g \leftarrow g + \lambda_2\,\theta + \lambda_1\,\operatorname{sign}\theta, \qquad
    \theta \leftarrow (1 - \gamma w)\,\theta

(the penalties and decay on weight matrices only, unless ``decay_all``), then takes
torch.optim's step with the same operations in the same order:

- SGD: :math:`b \leftarrow \mu b + g` (with momentum :math:`\mu`, else :math:`b = g`), then
  :math:`\theta \leftarrow \theta - \gamma b`;
- Adam, at a member's own step count :math:`t`: :math:`m \leftarrow m + (1-\beta_1)(g - m)`,
  :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`, then
  :math:`\theta \leftarrow \theta - \frac{\gamma}{1-\beta_1^t}\,
  \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^t} + \epsilon}`.

Members that are not active (stopped, awaiting a rebuild) get a zero update; the caller
restores their batch-norm statistics.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["adam_step", "sgd_step"]


def sgd_step(
    p: Tensor,
    g: Tensor,
    buf: Tensor | None,
    momentum: Tensor | None,
    neg_lr: Tensor,
    active: Tensor | None,
) -> None:
    """SGD with momentum in place; ``neg_lr`` is −γ per element, ``active`` the elements of
    members that train (None: all)."""
    update = g
    if buf is not None and momentum is not None:
        update = buf.mul_(momentum).add_(g)
    if active is not None:
        update = torch.where(active, update, 0.0)
    p.addcmul_(neg_lr, update)


def adam_step(
    p: Tensor,
    g: Tensor,
    moments: tuple[Tensor, Tensor],
    hyper: tuple[float, float, float],
    counts: list[int],
    member_of_element: Tensor | None,
    neg_lr: Tensor,
    active: Tensor | None,
) -> None:
    """Adam in place; ``moments`` are (m, v), ``hyper`` (β1, β2, ε), ``counts`` each
    member's step count (its steps since it joined, this one included) and
    ``member_of_element`` each element's member, None when all counts are equal."""
    (exp_avg, exp_avg_sq), (beta1, beta2, eps) = moments, hyper
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    if member_of_element is None:  # every member at the same step
        t = counts[0]
        bias1, bias2_sqrt = 1 - beta1**t, math.sqrt(1 - beta2**t)
        denom = exp_avg_sq.sqrt().div_(bias2_sqrt).add_(eps)
        update = torch.div(exp_avg, denom, out=denom)
        if active is not None:
            update = torch.where(active, update, 0.0)
        p.addcmul_(neg_lr, update, value=1 / bias1)
        return
    # Members that joined later are at an earlier step of their own. The per-member factors
    # are rounded to float32 as the scalars above are, and multiplied in the same order, so a
    # member's numbers are those it would have alone.
    inv_bias1 = [1 / (1 - beta1**t) for t in counts]
    bias2_sqrts = [math.sqrt(1 - beta2**t) for t in counts]
    per_member = torch.tensor([inv_bias1, bias2_sqrts], dtype=p.dtype, device=p.device)
    inv_bias1_t, bias2_t = per_member[:, member_of_element]
    denom = exp_avg_sq.sqrt().div_(bias2_t).add_(eps)
    update = torch.div(exp_avg, denom, out=denom)
    if active is not None:
        update = torch.where(active, update, 0.0)
    p.addcmul_(inv_bias1_t.mul_(neg_lr), update)
