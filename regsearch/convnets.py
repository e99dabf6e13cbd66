"""The built-in convolutional model (``model=cnn``): conv blocks and an MLP head.

Each block is conv → [batch norm] → activation → max-pool → dropout (a
:class:`~regsearch.dropout.MemberDropout`, identity at rate 0); the head is the MLP of
:mod:`regsearch.models` on the flattened features. Rows arrive flat (``[n, features]``, as
every task stores them) and are reshaped to the task's ``input_shape`` by the first layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from regsearch.dropout import MemberDropout
from regsearch.models import ACTIVATION_MODULES, init_parameters_

__all__ = ["CnnSpec", "build_cnn", "conv_shape"]


@dataclass(frozen=True)
class CnnSpec:
    """Architecture of the CNN every member of a sweep shares (regularization is per member)."""

    input_shape: tuple[int, ...]  # one example: (L,), (C, L) or (C, H, W)
    out_features: int
    channels: tuple[int, ...] = (25, 25, 25)  # one conv block per entry
    kernel_size: tuple[int, ...] = (5,)  # one size for every block, or one per block
    pool: int = 2  # pooling window and stride (1 = none)
    pool_kind: str = "max"  # max | avg
    padding: str = "same"  # same: k//2 zeros keep the length (odd k); valid: none
    head: tuple[int, ...] = ()  # hidden widths of the MLP head
    activation: str = "relu"
    bias: bool = True
    bn_momentum: float = 0.1
    bn_eps: float = 1e-5
    init: str = "default"
    init_std: float = 1.0

    @property
    def n_dropout(self) -> int:
        """Dropout rates the model takes: one per block, then one per head layer."""
        return len(self.channels) + len(self.head)

    def kernels(self) -> list[int]:
        sizes = list(self.kernel_size)
        return sizes * len(self.channels) if len(sizes) == 1 else sizes


def conv_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """The (channels, *spatial) shape the convs see: a bare sequence (L,) is one channel.

    Raises:
        ValueError: A shape that is neither 1-D nor 2-D data.

    Example:
        >>> conv_shape((40,)), conv_shape((1, 8, 8))
        ((1, 40), (1, 8, 8))
    """
    shape = tuple(int(n) for n in input_shape)
    if len(shape) == 1:
        return (1, *shape)
    if len(shape) in (2, 3):
        return shape
    raise ValueError(
        f"model=cnn needs inputs of shape (L,), (C, L) or (C, H, W), not {shape}; "
        "use model=mlp or model=custom for this task"
    )


def _block(
    spec: CnnSpec, dims: int, c_in: int, c_out: int, k: int, bn: bool, rate: float
) -> list[nn.Module]:
    conv = nn.Conv1d if dims == 1 else nn.Conv2d
    norm = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
    pools = {"max": (nn.MaxPool1d, nn.MaxPool2d), "avg": (nn.AvgPool1d, nn.AvgPool2d)}
    pool = pools[spec.pool_kind][dims - 1]
    layers: list[nn.Module] = [conv(c_in, c_out, k, padding=_pad(spec, k), bias=spec.bias)]
    if bn:
        layers.append(norm(c_out, eps=spec.bn_eps, momentum=spec.bn_momentum))
    layers.append(ACTIVATION_MODULES[spec.activation]())
    if spec.pool > 1:
        # ceil_mode: an odd or tiny size keeps its last column instead of shrinking to zero.
        layers.append(pool(spec.pool, ceil_mode=True))
    # Always present (identity at rate 0), so every member of a sweep has one structure.
    layers.append(MemberDropout(rate))
    return layers


def _pad(spec: CnnSpec, k: int) -> int:
    # "same": k//2 keeps the length for odd kernels, so only pooling shrinks the input.
    return k // 2 if spec.padding == "same" else 0


def _spatial_after(spec: CnnSpec, spatial: list[int], k: int) -> list[int]:
    after_conv = [n + 2 * _pad(spec, k) - k + 1 for n in spatial]
    if min(after_conv) < 1:
        raise ValueError(
            f"a kernel of {k} does not fit an input of {spatial} without padding; use "
            "model.padding=same or smaller kernels"
        )
    return [math.ceil(n / spec.pool) for n in after_conv]


def build_cnn(
    spec: CnnSpec,
    *,
    dropout: Sequence[float] = (),
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Build the CNN and initialize it from ``generator`` (``spec.init``, as the MLP).

    Args:
        spec: Architecture.
        dropout: One rate per block, then per head layer (empty = none).
        batch_norm: BatchNorm after every conv and head Linear, before the activation.
        generator: Source of the initial weights, so a member's init depends on its seed only.

    Example:
        >>> net = build_cnn(CnnSpec((1, 8, 8), 10, channels=(4, 4)), dropout=[0.1, 0.2])
        >>> net(torch.zeros(3, 64)).shape
        torch.Size([3, 10])
    """
    if dropout and len(dropout) != spec.n_dropout:
        raise ValueError(f"{len(dropout)=} must equal the blocks + head layers {spec.n_dropout}")
    rates = list(dropout) or [0.0] * spec.n_dropout
    shape = conv_shape(spec.input_shape)
    dims, c_in, spatial = len(shape) - 1, shape[0], list(shape[1:])
    layers: list[nn.Module] = [nn.Unflatten(1, shape)]
    for c_out, k, rate in zip(spec.channels, spec.kernels(), rates, strict=False):
        layers += _block(spec, dims, c_in, c_out, k, batch_norm, rate)
        c_in, spatial = c_out, _spatial_after(spec, spatial, k)
    layers.append(nn.Flatten())
    widths = [c_in * math.prod(spatial), *spec.head]
    for fan_in, fan_out, rate in zip(widths, widths[1:], rates[len(spec.channels) :], strict=False):
        layers.append(nn.Linear(fan_in, fan_out, bias=spec.bias))
        if batch_norm:
            layers.append(nn.BatchNorm1d(fan_out, eps=spec.bn_eps, momentum=spec.bn_momentum))
        layers.append(ACTIVATION_MODULES[spec.activation]())
        layers.append(MemberDropout(rate))
    layers.append(nn.Linear(widths[-1], spec.out_features, bias=spec.bias))
    net = nn.Sequential(*layers)
    init_parameters_(net, spec, generator)
    return net
