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

from companion.diffusion.schedules import (
    _check_generator,
    _describe,
    _is_finite,
    _is_int,
    _plain,
)

LabelledModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _check_labels(labels, null_label) -> int:
    """Raise unless ``labels`` is an integer tensor ``(N,)`` and ``null_label`` an int >= 0.

    ``null_label`` may be a Python or NumPy int or a 0-d integer tensor (as
    ``model.null_labels(1, device)[0]`` gives); it comes back as a plain ``int``.
    """
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"labels must be an int32 or int64 tensor, got {_describe(labels)}")
    if labels.ndim != 1:
        raise ValueError(f"labels must have shape (N,), got {tuple(labels.shape)}")
    null = null_label
    if (
        isinstance(null, torch.Tensor)
        and null.ndim == 0
        and not null.is_floating_point()
        and not null.is_complex()
        and null.dtype != torch.bool
    ):
        null = null.item()
    if not _is_int(null) or null < 0:
        raise ValueError(
            "null_label must be an int >= 0 (the 'no label' index; a Python or NumPy int or "
            f"a 0-d integer tensor), got {null_label!r}"
        )
    return int(null)


def drop_labels(
    labels: torch.Tensor,
    p_uncond: float,
    null_label: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each label ``(N,)`` by ``null_label`` with probability ``p_uncond``."""
    null_label = _check_labels(labels, null_label)
    if not _is_finite(p_uncond) or not 0 <= p_uncond <= 1:
        raise ValueError(f"p_uncond must be a number in [0, 1], got {p_uncond!r}")
    p_uncond = _plain(p_uncond)
    _check_generator(generator)
    drop = torch.rand(labels.shape, generator=generator).to(labels.device) < p_uncond
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def guided_eps_model(
    model: LabelledModel, labels: torch.Tensor, scale: float, null_label: int
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``eps_model(x_t, t)`` for the samplers that applies guidance for ``labels (N,)``.

    The conditional and unconditional predictions share one forward pass of batch ``2N``.
    ``scale`` is a finite number >= 0 (0: unconditional, 1: conditional, > 1: guided).
    """
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t, y), got {model!r}")
    null_label = _check_labels(labels, null_label)
    if not _is_finite(scale) or scale < 0:
        raise ValueError(
            f"guidance scale must be a finite number >= 0 (0: unconditional, 1: conditional), "
            f"got {scale!r}"
        )
    scale = _plain(scale)

    def eps_model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        nulls = torch.full_like(labels, null_label)
        eps = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, nulls]))  # (2N, ...)
        eps_cond, eps_uncond = eps[:n], eps[n:]  # (N, ...) each
        return eps_uncond + scale * (eps_cond - eps_uncond)

    return eps_model
