"""DDIM sampling (Song, Meng and Ermon 2021) on a DDPM-trained model (chapter ``ddim``).

The update, their eq. (12), for a step from index ``t`` to an earlier index ``s``:

    x_s = sqrt(alpha_bar_s) x0_hat
          + sqrt(1 - alpha_bar_s - sigma^2) eps_hat + sigma z,
    sigma = eta sqrt((1 - alpha_bar_s) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_s),

with ``alpha_bar_s = 1`` past the first step (``s = -1``). ``eta = 0`` is deterministic;
``eta = 1`` over every step gives ``sigma^2 = beta_tilde_t``, DDPM's posterior variance.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch

from companion.diffusion.ddpm import EpsModel, _check_sampler_args, check_shape
from companion.diffusion.schedules import (
    NoiseSchedule,
    _describe,
    _is_finite,
    _is_int,
    _plain,
)
from companion.progress import tqdm

Spacing = Literal["linspace", "leading", "trailing"]
SPACINGS = ("linspace", "leading", "trailing")


def _check_eta(eta):
    """Raise unless ``eta`` is a number in [0, 1]; return it as it will be used.

    A Python or NumPy number comes back as a plain int or float; a 0-d real tensor comes
    back unchanged, so the noise scale is computed in its dtype as it always was.
    """
    value = eta
    if (
        isinstance(eta, torch.Tensor)
        and eta.ndim == 0
        and not eta.is_complex()
        and eta.dtype != torch.bool
    ):
        value = eta.item()
    if not _is_finite(value) or not 0 <= value <= 1:
        raise ValueError(
            "eta must be a number in [0, 1] (0: deterministic, 1: DDPM; a Python or NumPy "
            f"number or a 0-d tensor), got {eta!r}"
        )
    return eta if isinstance(eta, torch.Tensor) else _plain(eta)


def ddim_timesteps(num_train_steps: int, num_steps: int, spacing: Spacing = "trailing"):
    """``(num_steps,)`` int64 indices in ``[0, T - 1]``, descending, that the sampler visits.

    * ``linspace``: ``round(linspace(0, T - 1, n))``: both ends included.
    * ``leading``: ``k * (T // n)`` for ``k = 0..n-1``: starts at 0, never reaches ``T - 1``.
    * ``trailing``: ``round(T - k T / n) - 1`` for ``k = 0..n-1``: starts at ``T - 1``.
    """
    if spacing not in SPACINGS:
        raise ValueError(
            f"unknown spacing {spacing!r}; accepted: {', '.join(map(repr, SPACINGS))}"
        )
    if not _is_int(num_train_steps) or num_train_steps < 1:
        raise ValueError(
            f"num_train_steps (the training T) must be an int >= 1, got {num_train_steps!r}"
        )
    if not _is_int(num_steps) or not 1 <= num_steps <= num_train_steps:
        raise ValueError(
            f"num_steps must be an int in [1, {num_train_steps}] (the training T), "
            f"got {num_steps!r}"
        )
    T, n = int(num_train_steps), int(num_steps)
    if spacing == "linspace":
        steps = torch.linspace(0, T - 1, n, dtype=torch.float64).round().long()
    elif spacing == "leading":
        steps = torch.arange(n, dtype=torch.long) * (T // n)
    else:
        steps = (T - torch.arange(n, dtype=torch.float64) * T / n).round().long() - 1
    return steps.sort(descending=True).values


def ddim_sigma(alpha_bar_t: torch.Tensor, alpha_bar_s: torch.Tensor, eta: float) -> torch.Tensor:
    """The noise scale ``sigma`` of a step from level ``t`` to the earlier level ``s``.

    ``eta`` is a number in [0, 1]: 0 is deterministic, 1 gives DDPM's posterior variance.
    """
    eta = _check_eta(eta)
    return eta * ((1 - alpha_bar_s) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_s)).sqrt()


def ddim_steps(
    eps_model: EpsModel,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    num_steps: int = 50,
    eta: float = 0.0,
    spacing: Spacing = "trailing",
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    x_T: torch.Tensor | None = None,
    progress: bool = True,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """DDIM sampling, yielding ``(t, x_s, x0_hat)`` after each of ``num_steps`` steps.

    ``x_T`` fixes the starting noise (otherwise drawn from ``generator``); with ``eta = 0``
    the whole trajectory is then a deterministic function of ``x_T``.
    """
    _check_sampler_args(eps_model, schedule, generator)
    shape = check_shape(shape)
    eta = _check_eta(eta)
    if x_T is not None and (not isinstance(x_T, torch.Tensor) or not x_T.is_floating_point()):
        raise TypeError(f"x_T must be a floating-point torch.Tensor or None, got {_describe(x_T)}")
    device = schedule.device
    steps = ddim_timesteps(schedule.num_steps, num_steps, spacing).tolist()
    # 1. Start from pure noise x_T ~ N(0, I).
    x = torch.randn(shape, generator=generator).to(device) if x_T is None else x_T.to(device)
    if tuple(x.shape) != shape:
        raise ValueError(f"x_T must have shape {shape}, got {tuple(x.shape)}")
    one = torch.ones((), device=device)
    for k, i in enumerate(tqdm(steps, desc=f"DDIM {num_steps}", disable=not progress)):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        a_t = schedule.alphas_cumprod[i]
        a_s = schedule.alphas_cumprod[steps[k + 1]] if k + 1 < len(steps) else one
        with torch.no_grad():
            # 2. Predict the noise, then the clean image it implies (eq. 9).
            eps = eps_model(x, t)
        x0_hat = schedule.predict_x0(x, t, eps)
        if clip_x0:
            x0_hat = x0_hat.clamp(-1, 1)
            # Keep eps consistent with the clamped x0_hat, so the step stays on the line
            # x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps.
            eps = (x - a_t.sqrt() * x0_hat) / (1 - a_t).sqrt()
        # 3. The noise scale of this step (eq. 16).
        sigma = ddim_sigma(a_t, a_s, eta)
        # 4. Point back towards x_t ("direction pointing to x_t" in eq. 12). For eta <= 1
        # the radicand is >= 0 in exact arithmetic; the clamp only absorbs float round-off.
        direction = (1 - a_s - sigma**2).clamp(min=0).sqrt() * eps
        # 5. Step to level s, adding fresh noise only when eta > 0.
        x = a_s.sqrt() * x0_hat + direction
        if eta > 0:
            x = x + sigma * torch.randn(shape, generator=generator).to(device)
        yield i, x, x0_hat


def ddim_sample(
    eps_model: EpsModel,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    num_steps: int = 50,
    eta: float = 0.0,
    spacing: Spacing = "trailing",
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    x_T: torch.Tensor | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Run :func:`ddim_steps` to the end and return the samples ``shape``."""
    x = None
    for _, x_prev, _ in ddim_steps(
        eps_model, schedule, shape, num_steps, eta, spacing, generator, clip_x0, x_T, progress
    ):
        x = x_prev  # keep only the latest, so memory does not grow with the step count
    return x
