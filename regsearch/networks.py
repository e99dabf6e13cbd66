"""One entry point for every model kind: the spec a config and task give, and its network.

``model=mlp`` → :class:`~regsearch.models.ModelSpec` (both engines), ``model=cnn`` →
:class:`~regsearch.convnets.CnnSpec` and ``model=custom`` →
:class:`~regsearch.usernets.CustomSpec` (stacked through ``torch.func``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from regsearch.config import ModelConfig
from regsearch.convnets import CnnSpec, build_cnn
from regsearch.models import ModelSpec, build_mlp
from regsearch.usernets import CustomSpec, build_custom

__all__ = ["NetSpec", "build_net", "mlp_stack", "net_spec"]

NetSpec = ModelSpec | CnnSpec | CustomSpec


def net_spec(model: ModelConfig, input_shape: tuple[int, ...], n_outputs: int) -> NetSpec:
    """The spec of ``model`` for data whose examples have ``input_shape``.

    Example:
        >>> net_spec(ModelConfig(name="cnn"), (40,), 10).channels
        (25, 25, 25)
    """
    common = {
        "activation": model.activation,
        "bias": model.bias,
        "bn_momentum": model.bn_momentum,
        "bn_eps": model.bn_eps,
        "init": model.init,
        "init_std": model.init_std,
    }
    if model.name == "cnn":
        return CnnSpec(
            input_shape=tuple(input_shape),
            out_features=n_outputs,
            channels=tuple(model.channels),
            kernel_size=tuple(model.kernel_size),
            pool=model.pool,
            pool_kind=model.pool_kind,
            padding=model.padding,
            head=tuple(model.head),
            **common,  # type: ignore[arg-type]
        )
    if model.name == "custom":
        assert model._target_ is not None  # validate() refuses a custom model without one
        return CustomSpec(model._target_, tuple(input_shape), n_outputs, dict(model.kwargs))
    features = 1
    for n in input_shape:
        features *= n
    return ModelSpec(features, n_outputs, hidden=tuple(model.hidden), **common)  # type: ignore[arg-type]


def mlp_stack(spec: NetSpec) -> bool:
    """True for the MLP, which the hand-stacked population engine trains; every other network
    stacks through ``torch.func`` (:mod:`regsearch.engine.functional`)."""
    return isinstance(spec, ModelSpec)


def build_net(
    spec: NetSpec,
    *,
    dropout: Sequence[float] = (),
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """The network of ``spec`` for one member, initialized from ``generator``."""
    if isinstance(spec, CnnSpec):
        return build_cnn(spec, dropout=dropout, batch_norm=batch_norm, generator=generator)
    if isinstance(spec, CustomSpec):
        return build_custom(spec, dropout=dropout, batch_norm=batch_norm, generator=generator)
    return build_mlp(spec, dropout=dropout, batch_norm=batch_norm, generator=generator)
