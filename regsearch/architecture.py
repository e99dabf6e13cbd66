"""What the report's setup says about the network: its layers and parameter counts.

Example:
    >>> from regsearch.convnets import CnnSpec
    >>> arch = describe(CnnSpec((1, 8, 8), 10, channels=(4,)))
    >>> arch.layers[:3], arch.n_parameters
    (('Conv2d(1→4, k5)', 'ReLU', 'MaxPool2d(2)'), 754)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from regsearch.dropout import MemberDropout
from regsearch.networks import NetSpec, build_net

__all__ = ["Architecture", "describe", "layer_text"]


@dataclass(frozen=True)
class Architecture:
    """A network as the report lists it."""

    layers: tuple[str, ...]  # leaf modules in order, one short text each
    n_parameters: int
    n_penalized: int  # in weights with ≥ 2 dimensions: what L1/L2/weight decay act on


def describe(spec: NetSpec, batch_norm: bool = False) -> Architecture:
    """The layers and parameter counts of ``spec``'s network (batch norm on or off)."""
    net = build_net(spec, batch_norm=batch_norm)
    leaves = [m for m in net.modules() if not list(m.children())]
    texts = [layer_text(m) for m in leaves if not isinstance(m, nn.Unflatten | nn.Identity)]
    params = list(net.parameters())
    return Architecture(
        layers=tuple(texts),
        n_parameters=sum(p.numel() for p in params),
        n_penalized=sum(p.numel() for p in params if p.dim() >= 2),
    )


def layer_text(module: nn.Module) -> str:
    """One layer in a few characters: ``Conv1d(1→25, k5)``, ``Linear(64→10)``, ``Dropout``."""
    name = type(module).__name__
    if isinstance(module, nn.modules.conv._ConvNd):
        sizes = module.kernel_size
        k = str(sizes[0]) if len(set(sizes)) == 1 else "×".join(str(n) for n in sizes)
        return f"{name}({module.in_channels}→{module.out_channels}, k{k})"
    if isinstance(module, nn.Linear):
        return f"{name}({module.in_features}→{module.out_features})"
    if isinstance(module, nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AvgPoolNd):
        size = module.kernel_size
        return f"{name}({size if isinstance(size, int) else next(iter(size))})"  # type: ignore[arg-type]
    if isinstance(module, MemberDropout | nn.Dropout):
        return "Dropout"
    return name
