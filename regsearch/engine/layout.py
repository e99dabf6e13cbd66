"""The layout of a population stack's tensors: its layers, and parameters in one flat buffer.

Each parameter of the MLP is stacked over the K members of a stack, and all of them live in
one flat buffer (one ``[K, *shape]`` block per parameter, :class:`Blocks`), so the optimizer
step is a handful of elementwise ops over the whole stack. :func:`pitch` says how a member's
slice is aligned in exact mode; :class:`Layer` and :func:`structure` map the MLP's layers to
blocks; the remaining helpers place the data and the dropout streams.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from regsearch.models import ModelSpec
from regsearch.tasks.bundle import TaskData

__all__ = ["Blocks", "Layer", "Saved", "columns", "pitch", "seed_stream", "split_rows", "structure"]


def seed_stream(seed: int, layer: int) -> int:
    """A 64-bit seed for the dropout generator of (member seed, hidden layer) (splitmix64)."""
    z = (seed * 0x9E3779B97F4A7C15 + (layer + 1) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (z ^ (z >> 31)) & (2**63 - 1)


@dataclass
class Layer:
    """One Linear (+ BatchNorm1d + activation + dropout for hidden layers) of the stack."""

    fan_in: int
    fan_out: int
    weight: int  # block index of the [K, fan_out, fan_in] weight
    bias: int | None  # block index of the [K, fan_out, 1] bias
    bn: tuple[int, int, int, int] | None = None  # blocks: gamma, beta, running mean, running var
    rate: Tensor | None = None  # [K, 1, 1] dropout rate; None when no member drops here
    scale: Tensor | None = None  # [K, 1, 1] 1/(1 - rate)
    generators: list[torch.Generator] = field(default_factory=list)  # one per stream


def structure(
    spec: ModelSpec, batch_norm: bool
) -> tuple[list[Layer], list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Layers, parameter shapes (in ``net.parameters()`` order of models.build_mlp) and
    batch-norm statistic shapes of the MLP."""
    layers: list[Layer] = []
    shapes: list[tuple[int, ...]] = []
    stat_shapes: list[tuple[int, ...]] = []
    widths = spec.widths
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        w = len(shapes)
        shapes.append((fan_out, fan_in))
        b = None
        if spec.bias:
            b = len(shapes)
            shapes.append((fan_out, 1))
        layer = Layer(fan_in, fan_out, w, b)
        if batch_norm and i < len(widths) - 2:
            g, s = len(shapes), len(stat_shapes)
            shapes += [(fan_out,), (fan_out,)]
            stat_shapes += [(fan_out,), (fan_out,)]
            layer.bn = (g, g + 1, s, s + 1)
        layers.append(layer)
    return layers, shapes, stat_shapes


class Blocks:
    """Stacked tensors living in one flat buffer, one ``[K, *shape]`` block each.

    Padded blocks give each member's slice a pitch that is a multiple of 32 elements (see
    :func:`pitch`) and come first, so every member's slice starts on a 128-byte boundary; the
    buffer's length is a multiple of 64 elements.
    """

    def __init__(self, k: int, shapes: list[tuple[int, ...]], padded: list[bool]) -> None:
        self.k, self.shapes, self.padded = k, shapes, padded
        self.sizes = [math.prod(s) for s in shapes]
        self.pitches = [pitch(n) if pad else n for n, pad in zip(self.sizes, padded, strict=True)]
        order = sorted(range(len(shapes)), key=lambda j: not padded[j])
        self.offsets = [0] * len(shapes)
        end = 0
        for j in order:
            self.offsets[j], end = end, end + k * self.pitches[j]
        self.numel = -(-end // 64) * 64

    def pack(
        self, tensors: Sequence[Sequence[Tensor]], dtype: torch.dtype, device: str | torch.device
    ) -> Tensor:
        """One flat buffer from each member's list of tensors (one per block)."""
        flat = torch.empty(self.numel, dtype=dtype, device=device)
        if not tensors:
            return flat
        with torch.no_grad():
            for view, column in zip(self.views(flat), zip(*tensors, strict=True), strict=True):
                view.copy_(torch.stack([t.detach().reshape(view.shape[1:]) for t in column]))
        return flat

    def views(self, flat: Tensor) -> list[Tensor]:
        return [
            rows[:, :n].view(self.k, *s)
            for rows, n, s in zip(self.rows(flat), self.sizes, self.shapes, strict=True)
        ]

    def rows(self, flat: Tensor) -> list[Tensor]:
        """Each block as ``[K, pitch]``: one row per member, padding included."""
        return [
            flat[o : o + self.k * p].view(self.k, p)
            for o, p in zip(self.offsets, self.pitches, strict=True)
        ]

    def per_element(self, values: Tensor, mask: list[bool] | None = None) -> Tensor:
        """Expand per-member ``values`` [K] to the flat layout, zero in blocks not in mask."""
        out = values.new_zeros(self.numel)
        for j, (o, p) in enumerate(zip(self.offsets, self.pitches, strict=True)):
            if mask is None or mask[j]:
                out[o : o + self.k * p] = values.repeat_interleave(p)
        return out

    def gather(self, parts: Sequence[tuple[Blocks, Tensor, Tensor | None]]) -> Tensor:
        """A buffer in this layout whose member rows are, in order, the rows ``positions``
        (None: all) of each ``(layout, flat, positions)`` part; pitches must agree."""
        out = parts[0][1].new_empty(self.numel)
        targets = self.rows(out)
        start = 0
        for blocks, flat, positions in parts:
            count = blocks.k if positions is None else len(positions)
            for target, source in zip(targets, blocks.rows(flat), strict=True):
                rows = source if positions is None else source.index_select(0, positions)
                target[start : start + count].copy_(rows)
            start += count
        assert start == self.k, "the parts fill the stack"
        return out


def pitch(n: int) -> int:
    """Member pitch of a stacked block of ``n`` elements in exact mode: ``n`` rounded up to 32.

    Why: a member's numbers must not depend on where it sits in the stack, and without care
    they do, by a rounding: MKL's batched product rounds a member's result differently when
    its output slice is not 64-byte aligned, and torch's vectorized elementwise kernels compute
    a tail shorter than 32 floats with scalar code that rounds transcendental functions (exp,
    gelu) differently. With this pitch every member slice is aligned; where it pads, outputs
    are no longer contiguous, so torch multiplies member by member (as for a lone member) and
    iterates each member's elements as their own row. Sigmoid and softmax at the output (and
    gelu in exact mode) are computed in float64, whose rounding to float32 hides the rest.
    """
    return -(-n // 32) * 32


@dataclass
class Saved:
    """What the backward pass needs from one layer's forward pass."""

    inputs: Tensor  # the layer's input (dropout-masked, unscaled)
    weight: Tensor  # the weight it was multiplied with (input dropout scale folded in)
    scale: Tensor | None  # [K, 1, 1] dropout scale of the input, None without dropout
    z: Tensor | None = None  # Linear output before batch norm
    bn: tuple | None = None  # batch-norm tensors for native_batch_norm_backward
    keep: Tensor | None = None  # activation output (input for gelu) for its backward
    dropped: Tensor | None = None  # -1/0 dropout indicator, when the backward needs it


def split_rows(views: list[TaskData]) -> dict[str, tuple[Tensor, Tensor]]:
    """Each split's (x, y) with a leading member axis: ``[1, n, ...]`` (a view, no copy) when
    every member has the same tensor, else the members' rows stacked, ``[K, n, ...]``."""
    out = {}
    for split in ("train", "val", "test"):
        pair = []
        for name in (f"x_{split}", f"y_{split}"):
            tensors = [getattr(v, name) for v in views]
            same = all(t is tensors[0] for t in tensors)
            pair.append(tensors[0].unsqueeze(0) if same else torch.stack(tensors))
        out[split] = (pair[0], pair[1])
    return out


def columns(t: Tensor, idx: Tensor) -> Tensor:
    """``t`` [1 or K, features, n] at each member's own column positions ``idx`` [K, b]."""
    k, features = idx.shape[0], t.shape[1]
    return t.expand(k, -1, -1).gather(2, idx.unsqueeze(1).expand(-1, features, -1))
