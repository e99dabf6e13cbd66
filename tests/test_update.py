"""The population stack's optimizer step (regsearch.engine.update) against torch.optim."""

from __future__ import annotations

import pytest
import torch

from regsearch.engine.update import adam_step, sgd_step

LRS = (0.1, 0.01, 0.3)  # three members, one learning rate each


def members_and_grads(steps: int) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(5, generator=gen) for _ in LRS]
    grads = [[torch.randn(5, generator=gen) for _ in LRS] for _ in range(steps)]
    return start, grads


def flat_lr() -> torch.Tensor:
    return torch.cat([torch.full((5,), -lr) for lr in LRS])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_step_is_torch_optim_sgd_per_member(momentum: float) -> None:
    start, grads = members_and_grads(4)
    alone = [p.clone().requires_grad_() for p in start]
    optims = [
        torch.optim.SGD([p], lr=lr, momentum=momentum) for p, lr in zip(alone, LRS, strict=True)
    ]
    flat = torch.cat(start)
    buf = torch.zeros_like(flat) if momentum else None
    mom = torch.full_like(flat, momentum) if momentum else None
    for g in grads:
        for p, opt, gk in zip(alone, optims, g, strict=True):
            p.grad = gk.clone()
            opt.step()
        sgd_step(flat, torch.cat(g), buf, mom, flat_lr(), None)
    assert torch.allclose(flat, torch.cat([p.detach() for p in alone]), atol=1e-7)


def test_adam_step_is_torch_optim_adam_per_member_even_when_members_joined_later() -> None:
    start, grads = members_and_grads(5)
    alone = [p.clone().requires_grad_() for p in start]
    optims = [torch.optim.Adam([p], lr=lr) for p, lr in zip(alone, LRS, strict=True)]
    flat = torch.cat(start)
    moments = (torch.zeros_like(flat), torch.zeros_like(flat))
    member_of_element = torch.arange(3).repeat_interleave(5)
    # The third member joined two steps after the others: it is at an earlier step of its own
    # (its state stays zero and its parameters unchanged until then).
    for step, g in enumerate(grads, start=1):
        joined = [True, True, step > 2]
        for p, opt, gk, on in zip(alone, optims, g, joined, strict=True):
            if on:
                p.grad = gk.clone()
                opt.step()
        counts = [step, step, max(step - 2, 0)]
        active = torch.cat([torch.full((5,), on) for on in joined])
        g_flat = torch.cat([gk if on else torch.zeros(5) for gk, on in zip(g, joined, strict=True)])
        adam_step(
            flat,
            g_flat,
            moments,
            (0.9, 0.999, 1e-8),
            [max(c, 1) for c in counts],
            member_of_element,
            flat_lr(),
            active,
        )
    assert torch.allclose(flat, torch.cat([p.detach() for p in alone]), atol=1e-6)
