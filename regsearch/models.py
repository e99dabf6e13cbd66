"""The MLP the reference engine trains: Linear → [BatchNorm1d] → activation → [Dropout]."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from regsearch.activations import ACTIVATIONS, TORCH_CLASSES

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_MODULES",
    "InitSpec",
    "ModelSpec",
    "build_mlp",
    "init_parameters_",
]

#: Activation name → module class; resolved here so a misspelt class fails on import.
ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    name: getattr(nn, cls) for name, cls in TORCH_CLASSES.items()
}


@dataclass(frozen=True)
class ModelSpec:
    """Architecture shared by every member of a sweep (regularization is per member).

    ``hidden=()`` gives a linear model, as in the d2l regression setups.
    """

    in_features: int
    out_features: int
    hidden: tuple[int, ...] = (20, 3)
    activation: str = "relu"
    bias: bool = True
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    init: str = "default"  # default | normal | xavier | kaiming
    init_std: float = 1.0  # std for init="normal"

    @property
    def widths(self) -> list[int]:
        """Layer widths from input to output."""
        return [self.in_features, *self.hidden, self.out_features]


def build_mlp(
    spec: ModelSpec,
    *,
    dropout: Sequence[float] = (),
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Build the MLP and initialize it from ``generator``.

    Args:
        spec: Architecture.
        dropout: One inverted-dropout rate per hidden layer (empty = none).
        batch_norm: Insert BatchNorm1d between each hidden Linear and its activation.
        generator: Source of the initial weights, so a member's init depends on its seed only.

    Example:
        >>> net = build_mlp(ModelSpec(2, 1, hidden=(8,)), dropout=[0.2])
        >>> net(torch.zeros(4, 2)).shape
        torch.Size([4, 1])
    """
    if dropout and len(dropout) != len(spec.hidden):
        raise ValueError(
            f"{len(dropout)=} must equal the number of hidden layers {len(spec.hidden)}"
        )
    layers: list[nn.Module] = []
    widths = spec.widths
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths[:-1])):
        # BN's own shift makes the Linear bias redundant, but keeping it keeps layer shapes
        # identical with BN on and off, which the population engine relies on.
        layers.append(nn.Linear(fan_in, fan_out, bias=spec.bias))
        if batch_norm:
            layers.append(nn.BatchNorm1d(fan_out, eps=spec.bn_eps, momentum=spec.bn_momentum))
        layers.append(ACTIVATION_MODULES[spec.activation]())
        if dropout and dropout[i] > 0:
            layers.append(nn.Dropout(dropout[i]))
    layers.append(nn.Linear(widths[-2], widths[-1], bias=spec.bias))
    net = nn.Sequential(*layers)
    init_parameters_(net, spec, generator)
    return net


class InitSpec(Protocol):
    """What :func:`init_parameters_` reads of a model spec."""

    @property
    def init(self) -> str: ...
    @property
    def init_std(self) -> float: ...


def init_parameters_(net: nn.Module, spec: InitSpec, generator: torch.Generator | None) -> None:
    """Draw every Linear's and Conv1d/2d's weight and bias in layer order from ``generator``.

    ``default`` reproduces torch's own init (kaiming-uniform with a=√5, bias U(±1/√fan_in))
    but from an explicit generator; ``normal`` is the textbooks' N(0, init_std) with zero bias.
    A conv weight's fan-in is in_channels × kernel, its fan-out out_channels × kernel.
    """
    with torch.no_grad():
        for layer in net.modules():
            if not isinstance(layer, nn.Linear | nn.Conv1d | nn.Conv2d):
                continue
            w, b = layer.weight, layer.bias
            fan_in = w[0].numel()
            if spec.init == "normal":
                w.normal_(0.0, spec.init_std, generator=generator)
                bound = 0.0
            elif spec.init == "xavier":
                a = math.sqrt(6.0 / (fan_in + w.shape[0] * w[0, 0].numel()))
                w.uniform_(-a, a, generator=generator)
                bound = 0.0
            elif spec.init == "kaiming":
                w.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                bound = 0.0
            else:
                a = 1.0 / math.sqrt(fan_in)  # kaiming_uniform with a=√5 reduces to this bound
                w.uniform_(-a, a, generator=generator)
                bound = a
            if b is not None:
                if bound > 0:
                    b.uniform_(-bound, bound, generator=generator)
                else:
                    b.zero_()
