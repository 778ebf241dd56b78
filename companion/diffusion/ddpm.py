"""The DDPM training loss and ancestral sampler (chapters ``forward-process``, ``ddpm-digits``).

Samplers take any noise predictor ``eps_model(x_t, t) -> eps`` with ``x_t`` of shape
``(N, C, H, W)`` and integer ``t`` of shape ``(N,)`` (index ``t - 1`` of the paper's step,
see :mod:`companion.diffusion.schedules`); they know nothing about the network.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.nn import functional as F

from companion.diffusion.schedules import (
    NoiseSchedule,
    _check_batch,
    _check_eps,
    _check_generator,
    _gather,
    _is_int,
)
from companion.progress import tqdm

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Raise unless ``shape`` is ``(N, C, H, W)`` of positive ints; return it as a tuple."""
    if not isinstance(shape, tuple | list):  # torch.Size is a tuple
        raise TypeError(f"shape must be a tuple (N, C, H, W) of positive ints, got {shape!r}")
    shape = tuple(shape)
    if len(shape) != 4 or any(not _is_int(s) or s < 1 for s in shape):
        raise ValueError(f"shape must be (N, C, H, W) of positive ints, got {shape!r}")
    return tuple(int(s) for s in shape)


def _check_schedule(schedule) -> None:
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")


def _check_sampler_args(eps_model, schedule, generator) -> None:
    if not callable(eps_model):
        raise TypeError(f"eps_model must be callable as eps_model(x_t, t), got {eps_model!r}")
    _check_schedule(schedule)
    _check_generator(generator)


def simple_loss(
    eps_model: EpsModel,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``L_simple``: mean squared error between the true and predicted noise (Ho et al. eq. 14).

    ``x0`` is a batch ``(N, C, H, W)`` of clean images, ``N >= 1``; returns a scalar tensor.
    The prediction must have exactly the shape of ``x0``; it is never broadcast.
    """
    _check_sampler_args(eps_model, schedule, generator)
    _check_batch(x0, "x0")
    if x0.ndim != 4 or x0.shape[0] < 1:
        raise ValueError(f"x0 must have shape (N, C, H, W) with N >= 1, got {tuple(x0.shape)}")
    # 1. A timestep per image, uniform over {0, ..., T - 1}.
    t = schedule.sample_timesteps(x0.shape[0], generator)
    # 2. The noise the network must recover.
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    # 3. Jump straight to x_t with the closed form of q(x_t | x_0).
    xt = schedule.q_sample(x0, t, noise)
    # 4. Regress the network's prediction on the noise.
    eps = eps_model(xt, t)
    _check_eps(eps, xt)
    return F.mse_loss(eps, noise)


def p_mean_variance(
    schedule: NoiseSchedule,
    xt: torch.Tensor,
    t: torch.Tensor,
    eps: torch.Tensor,
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, log-variance and ``x0_hat`` of ``p(x_{t-1} | x_t)`` given predicted noise ``eps``.

    The mean is the posterior mean of ``q(x_{t-1} | x_t, x_0)`` with ``x_0`` replaced by
    ``x0_hat`` (optionally clamped to [-1, 1], the data range, when ``clip_x0``); the
    variance is the posterior variance ``beta_tilde_t``. ``eps`` must have the shape of ``xt``.
    """
    _check_schedule(schedule)
    x0_hat = schedule.predict_x0(xt, t, eps)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
    mean, _, log_var = schedule.q_posterior(x0_hat, xt, t)
    return mean, log_var, x0_hat


def ddpm_steps(
    eps_model: EpsModel,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    progress: bool = True,
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """Ancestral sampling (Ho et al. Algorithm 2), yielding ``(t, x_{t-1}, x0_hat)`` per step.

    ``t`` runs from ``T - 1`` down to 0 (indices); the last ``x_{t-1}`` yielded is the
    sample. Noise is drawn on the CPU from ``generator`` and moved to the schedule's device.
    The arguments are checked when iteration starts, before any noise is drawn.
    """
    _check_sampler_args(eps_model, schedule, generator)
    shape = check_shape(shape)
    device = schedule.device
    # 1. Start from pure noise x_T ~ N(0, I).
    x = torch.randn(shape, generator=generator).to(device)
    for i in tqdm(range(schedule.num_steps - 1, -1, -1), desc="DDPM", disable=not progress):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        with torch.no_grad():
            # 2. Predict the noise in x_t.
            eps = eps_model(x, t)
        # 3. Posterior mean with x_0 replaced by its prediction, and the posterior variance.
        mean, log_var, x0_hat = p_mean_variance(schedule, x, t, eps, clip_x0)
        # 4. Add fresh noise, except at the last step (t = 1 in the paper), where it is 0.
        z = torch.randn(shape, generator=generator).to(device)
        x = mean + (0.5 * log_var).exp() * z if i > 0 else mean
        yield i, x, x0_hat


def ddpm_sample(
    eps_model: EpsModel,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    clip_x0: bool = True,
    progress: bool = True,
) -> torch.Tensor:
    """Run :func:`ddpm_steps` to the end and return the samples ``shape``."""
    x = None
    for _, x_prev, _ in ddpm_steps(eps_model, schedule, shape, generator, clip_x0, progress):
        x = x_prev  # keep only the latest, so memory does not grow with T
    return x


def renoise_step_mean(
    schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """The mean of a mistaken "denoise step", kept only to compare with the right one.

    The step ``x_{t-1} = sqrt(alpha_bar_{t-1}) x0_hat + sqrt(1 - alpha_bar_{t-1}) eps
    + sigma_t z`` re-noises the predicted clean image to level ``t - 1`` with the predicted
    noise and then adds fresh noise too. Its mean differs from the posterior mean
    (chapter ``ddpm-digits``): its ``eps`` weight lacks the ``- sigma_t^2`` under the root.
    """
    _check_schedule(schedule)
    x0_hat = schedule.predict_x0(xt, t, eps)
    a_prev = _gather(schedule.alphas_cumprod_prev, t, xt.ndim)
    return a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps
