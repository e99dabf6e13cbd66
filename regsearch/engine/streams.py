"""The random streams of a population stack: dropout masks and minibatch orders.

A member's random numbers must be those it would draw trained alone, wherever it sits and
whoever shares its stack. Dropout draws one generator per (stream, hidden layer), a stream
being the members that joined the stack together with one seed (they share masks: common
random numbers); minibatch order has one generator per generation (members that joined
together). A rebuilt stack carries the generators of the streams it keeps, so each continues
its own sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from regsearch.engine.layout import Layer, seed_stream
from regsearch.records import Hyperparams

if TYPE_CHECKING:
    from regsearch.engine.stack import Entry

__all__ = ["DropoutStreams", "dropout_streams", "order_streams"]

#: (stream blocks: each stream's [start, end) of member positions, each member's stream
#: index, the generator per (born, seed, hidden layer)).
DropoutStreams = tuple[list[tuple[int, int]], Tensor, dict[tuple[int, int, int], torch.Generator]]


def dropout_streams(
    entries: Sequence[Entry],
    layers: list[Layer],
    hps: list[Hyperparams],
    carried: Mapping[tuple[int, int, int], torch.Generator],
    dtype: torch.dtype,
    device: str | torch.device,
) -> DropoutStreams:
    """Per-layer rates (set on ``layers``) and one generator per (stream, hidden layer);
    ``carried`` streams keep their generators (and so their place in their sequence)."""
    streams = [e.stream for e in entries]
    distinct = list(dict.fromkeys(streams))
    blocks = [(streams.index(s), len(streams) - streams[::-1].index(s)) for s in distinct]
    assert sum(end - start for start, end in blocks) == len(entries), (
        "each stream's members sit side by side"
    )
    of_member = torch.tensor(
        [b for b, (start, end) in enumerate(blocks) for _ in range(start, end)],
        dtype=torch.long,
        device=device,
    )
    generators: dict[tuple[int, int, int], torch.Generator] = {}
    for h, layer in enumerate(layers[:-1]):
        rates = [hp.dropout[h] if hp.dropout else 0.0 for hp in hps]
        if not any(rates):
            continue
        rate = torch.tensor(rates, dtype=dtype, device=device).view(-1, 1, 1)
        layer.rate = rate
        layer.scale = torch.where(rate < 1, 1 / (1 - rate), torch.zeros_like(rate))
        for born, seed in distinct:
            gen = carried.get((born, seed, h))
            if gen is None:  # a new stream (or one whose members never drop here)
                gen = torch.Generator(device=device).manual_seed(seed_stream(seed, h))
            generators[born, seed, h] = gen
            layer.generators.append(gen)
    return blocks, of_member, generators


def order_streams(
    entries: Sequence[Entry],
    carried: Mapping[int, torch.Generator],
    order_seed: int,
    device: str | torch.device,
) -> tuple[dict[int, torch.Generator], Tensor | None]:
    """One minibatch-order generator per generation, so each member sees the batch order of
    its own epochs as when trained alone; and each member's generation when there are
    several (None: one)."""
    births = sorted({e.born for e in entries})
    orders = {
        born: carried.get(born) or torch.Generator().manual_seed(order_seed) for born in births
    }
    if len(births) == 1:
        return orders, None
    generation = [births.index(e.born) for e in entries]
    return orders, torch.tensor(generation, dtype=torch.long, device=device)
