"""The activations a population stack trains, forward and backward written out.

Every activation :func:`regsearch.models.build_mlp` offers: the forward in place where the
backward can be computed from the (dropout-masked) output alone (:data:`IN_PLACE`), else into
a buffer (:data:`INTO`); the backward in place in the incoming gradient (:data:`GRAD`).
:data:`IMPLEMENTED` must equal ``models.ACTIVATIONS`` (tested).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from regsearch.models import ACTIVATIONS

__all__ = ["GRAD", "IMPLEMENTED", "INTO", "IN_PLACE", "LEAKY_SLOPE"]

aten = torch.ops.aten

LEAKY_SLOPE = 0.01  # nn.LeakyReLU's default, which models.build_mlp uses


def _gelu_into(y: Tensor, out: Tensor, exact: bool) -> Tensor:
    if exact:  # torch's gelu rounds by position in the tensor; float64 hides that
        return out.copy_(F.gelu(y.double()))
    return aten.gelu.out(y, out=out)


#: In place; the sign of the output (masked or not) is all the backward needs.
IN_PLACE: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu_,
    "leaky_relu": lambda y: F.leaky_relu_(y, LEAKY_SLOPE),
    "identity": lambda y: y,
}
#: Into an aligned buffer ``out``; ``exact`` asks for position-independent rounding.
INTO: dict[str, Callable[[Tensor, Tensor, bool], Tensor]] = {
    "tanh": lambda y, out, exact: torch.tanh(y, out=out),
    "sigmoid": lambda y, out, exact: torch.sigmoid(y, out=out),
    "elu": lambda y, out, exact: aten.elu.out(y, 1.0, 1, 1, out=out),
    "gelu": _gelu_into,
}


def _gelu_grad(g: Tensor, keep: Tensor, exact: bool) -> Tensor:
    if exact:  # float64: see _gelu_into
        return g.copy_(aten.gelu_backward(g.double(), keep.double()))
    return aten.gelu_backward.grad_input(g, keep, grad_input=g)


#: Gradient through the activation, in place in ``g``; ``keep`` is the activation's output
#: (its input for gelu). For relu the dropout-masked output has the sign of the unmasked one
#: wherever the mask is non-zero, and is zero where the gradient must be zero; for the others
#: ``g`` is masked first.
GRAD: dict[str, Callable[[Tensor, Tensor, bool], Tensor]] = {
    "relu": lambda g, keep, exact: aten.threshold_backward.grad_input(g, keep, 0.0, grad_input=g),
    "leaky_relu": lambda g, keep, exact: aten.leaky_relu_backward.grad_input(
        g, keep, LEAKY_SLOPE, True, grad_input=g
    ),
    "identity": lambda g, keep, exact: g,
    "tanh": lambda g, keep, exact: aten.tanh_backward.grad_input(g, keep, grad_input=g),
    "sigmoid": lambda g, keep, exact: aten.sigmoid_backward.grad_input(g, keep, grad_input=g),
    "elu": lambda g, keep, exact: aten.elu_backward.grad_input(
        g, 1.0, 1, 1, True, keep, grad_input=g
    ),
    "gelu": _gelu_grad,
}

#: The activations the stack can train: forward and backward both written out.
IMPLEMENTED: tuple[str, ...] = tuple(
    a for a in ACTIVATIONS if a in GRAD and a in {*IN_PLACE, *INTO}
)
