"""Classifier-free guidance (Ho and Salimans 2021; chapter ``guidance``).

One network learns both ``eps(x_t, t, y)`` and ``eps(x_t, t, null)`` because its label is
replaced by the "no label" token at random during training (:func:`drop_labels`). At
sampling time the two predictions are combined as

    eps_guided = eps(x_t, t, null) + s (eps(x_t, t, y) - eps(x_t, t, null)),

where ``s`` is the guidance scale: ``s = 0`` is unconditional, ``s = 1`` plainly
conditional, ``s > 1`` pushes further towards the class. (Ho and Salimans write
``(1 + w) eps_c - w eps_u``, so their ``w`` is ``s - 1``.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LabelledModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def drop_labels(
    labels: torch.Tensor,
    p_uncond: float,
    null_label: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each label ``(N,)`` by ``null_label`` with probability ``p_uncond``."""
    if not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must lie in [0, 1], got {p_uncond!r}")
    drop = torch.rand(labels.shape, generator=generator).to(labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def guided_eps_model(
    model: LabelledModel, labels: torch.Tensor, scale: float, null_label: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``eps_model(x_t, t)`` for the samplers that applies guidance for ``labels (N,)``.

    The conditional and unconditional predictions share one forward pass of batch ``2N``.
    """
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale < 0:
        raise ValueError(f"guidance scale must be a number >= 0, got {scale!r}")

    def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        nulls = torch.full_like(labels, null_label)
        eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, nulls]))  # (2N, ...)
        eps_cond, eps_uncond = eps[:n], eps[n:]  # (N, ...) each
        return eps_uncond + scale * (eps_cond - eps_uncond)

    return eps_model
