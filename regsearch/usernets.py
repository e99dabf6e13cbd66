"""A user's own network (``model=custom model._target_=my_pkg.nets.make_net``).

The contract: the callable is called with keyword arguments ``input_shape`` (one example's
shape, a tuple) and ``n_outputs`` (one logit/value, or one per class), the other keys under
``model``, and ``batch_norm=True/False`` when it takes that argument; it returns an
``nn.Module`` mapping ``[batch, *input_shape]`` to ``[batch, n_outputs]``. regsearch owns the
rate of every ``nn.Dropout`` in it: the member's rate (0 unless ``model.dropout`` sets one or
the sweep searches it). Penalties and weight decay act on every parameter with two or more
dimensions (conv and linear weights), never on biases or norm parameters.

:func:`inspect_custom` checks a callable against the data before anything is written.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from regsearch.dropout import MemberDropout, own_dropout_
from regsearch.errors import ConfigError

__all__ = ["CustomFacts", "CustomSpec", "build_custom", "inspect_custom", "load_callable"]


@dataclass(frozen=True)
class CustomSpec:
    """A user's network: the callable's dotted path and what it is called with."""

    target: str  # "package.module.function"
    input_shape: tuple[int, ...]
    out_features: int
    kwargs: dict[str, Any] = field(default_factory=dict)  # the other keys under `model`

    @property
    def n_dropout(self) -> int:
        """One rate, set on every nn.Dropout of the module."""
        return 1


@dataclass(frozen=True)
class CustomFacts:
    """What a sweep may vary on a user's network, found by building it once."""

    has_dropout: bool  # the module holds at least one nn.Dropout
    takes_batch_norm: bool  # the callable has a batch_norm argument (or **kwargs)
    n_parameters: int


def load_callable(target: str) -> Callable[..., Any]:
    """Import ``package.module.function``.

    Raises:
        ConfigError: It cannot be imported or is not callable; the line names the fix.
    """
    module_name, _, name = target.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"model._target_={target!r}: cannot import it ({type(err).__name__}: {err}); put "
            "its package on PYTHONPATH (or pip install it) and name module.function"
        ) from None
    if not callable(found):
        raise ConfigError(f"model._target_={target!r}: not callable; name a function or class")
    return found


def _takes_batch_norm(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: assume it does not
        return False
    return any(p.name == "batch_norm" or p.kind is p.VAR_KEYWORD for p in params)


def build_custom(
    spec: CustomSpec,
    *,
    dropout: Sequence[float] = (),
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Call the user's callable and set its dropout rates; rows arrive flat and are reshaped.

    torch's global generator is seeded from ``generator`` while the module is built (the
    user's layers use torch's own init), and restored afterwards.

    Raises:
        ConfigError: The callable cannot be imported, or does not return an nn.Module.
    """
    fn = load_callable(spec.target)
    kwargs = {"input_shape": spec.input_shape, "n_outputs": spec.out_features, **spec.kwargs}
    if _takes_batch_norm(fn):
        kwargs["batch_norm"] = batch_norm
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = fn(**kwargs)
    if not isinstance(module, nn.Module):
        raise ConfigError(
            f"model._target_={spec.target!r}: returned {type(module).__name__}, not a "
            "torch.nn.Module; return the network"
        )
    # The member's rate and masks: see regsearch.dropout.
    own_dropout_(module, dropout[0] if dropout else 0.0)
    return nn.Sequential(nn.Unflatten(1, spec.input_shape), module)


def inspect_custom(spec: CustomSpec) -> CustomFacts:
    """Build the network once and check it against the contract on a batch of zeros.

    Raises:
        ConfigError: One line naming the fix: an import error, a result that is not a
            module, an error in its forward pass, or an output of the wrong shape.
    """
    net = build_custom(spec, generator=torch.Generator().manual_seed(0))
    batch = torch.zeros(2, *spec.input_shape)
    net.eval()
    try:
        with torch.no_grad():
            out = net[1](batch)
    except Exception as err:  # the user's code: any error is a contract failure
        raise ConfigError(
            f"model._target_={spec.target!r}: its forward pass fails on a batch of shape "
            f"{tuple(batch.shape)} ({type(err).__name__}: {err}); it must map "
            f"[batch, *input_shape] to [batch, {spec.out_features}]"
        ) from None
    want = (2, spec.out_features)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(
            f"model._target_={spec.target!r}: returns {got} for a batch of shape "
            f"{tuple(batch.shape)}; it must return [batch, n_outputs] = {list(want)}"
        )
    return CustomFacts(
        has_dropout=any(isinstance(m, MemberDropout) for m in net.modules()),
        takes_batch_norm=_takes_batch_norm(load_callable(spec.target)),
        n_parameters=sum(p.numel() for p in net.parameters()),
    )
