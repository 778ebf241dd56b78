"""Noise schedules, the forward process and its posterior (chapters ``forward-process`` and
``noise-schedules``).

Notation (Ho et al. 2020), with the paper's timestep ``t = 1..T`` stored at array index
``i = t - 1``, so index 0 is the first noising step and index ``T - 1`` the last:

=========================  ==============================  ===============================
symbol                     attribute                       meaning
=========================  ==============================  ===============================
``beta_t``                 ``betas[i]``                    variance added at step t
``alpha_t``                ``alphas[i]``                   ``1 - beta_t``
``alpha_bar_t``            ``alphas_cumprod[i]``           ``prod_{s <= t} alpha_s``
``alpha_bar_{t-1}``        ``alphas_cumprod_prev[i]``      exactly 1 at the first step
``beta_tilde_t``           ``posterior_variance[i]``       variance of q(x_{t-1} | x_t, x_0)
=========================  ==============================  ===============================

Every table is computed in float64 and stored as float32.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import numpy as np
import torch

from companion.device import as_device

ScheduleName = Literal["linear", "scaled_linear", "cosine"]
SCHEDULES = ("linear", "scaled_linear", "cosine")
COSINE_S = 0.008  # Nichol and Dhariwal's offset: keeps beta_1 from being vanishingly small
MAX_BETA = 0.999  # their clip: the last cosine betas would otherwise reach 1


def _is_bool(value) -> bool:
    """A Python or NumPy bool (``numbers.Integral`` would let ``True`` through as 1)."""
    return isinstance(value, bool | np.bool_)


def _is_int(value) -> bool:
    """An integer, Python's or NumPy's (any ``numbers.Integral``), that is not a bool."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_finite(value) -> bool:
    """A finite real number, Python's or NumPy's (any ``numbers.Real``), that is not a bool."""
    if not isinstance(value, numbers.Real) or _is_bool(value):
        return False
    return isinstance(value, numbers.Integral) or math.isfinite(value)


def _plain(value):
    """A number that passed :func:`_is_int` or :func:`_is_finite` as a plain Python number.

    Python ints and floats come back unchanged (so configurations hash as before); other
    integers (``numpy.int64``) become ``int`` and other reals (``numpy.float32``) ``float``.
    """
    if type(value) in (int, float):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def _check_generator(generator) -> None:
    """Raise unless ``generator`` is ``None`` or a CPU ``torch.Generator``."""
    if generator is not None and (
        not isinstance(generator, torch.Generator) or generator.device.type != "cpu"
    ):
        raise TypeError(f"generator must be a CPU torch.Generator or None, got {generator!r}")


def _check_batch(x, name: str) -> None:
    """Raise unless ``x`` is a floating tensor ``(N, ...)``."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {_describe(x)}")
    if x.ndim < 1:
        raise ValueError(f"{name} must have shape (N, ...), got a 0-d tensor")


def _check_eps(eps, x: torch.Tensor, name: str = "x_t") -> None:
    """Raise unless the noise (prediction) ``eps`` is a tensor of exactly the shape of ``x``."""
    if not isinstance(eps, torch.Tensor):
        raise TypeError(f"eps (the noise prediction) must be a torch.Tensor, got {_describe(eps)}")
    if eps.shape != x.shape:
        raise ValueError(
            f"eps (the noise prediction) must have the shape of {name} {tuple(x.shape)}, "
            f"got {tuple(eps.shape)}"
        )


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor"
    return type(x).__name__


def make_betas(
    name: ScheduleName,
    num_steps: int = 1000,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """``(num_steps,)`` float64 betas of a named schedule.

    * ``linear``: ``beta_t`` evenly spaced from ``beta_start`` (t = 1, index 0) to
      ``beta_end`` (t = T, index T - 1), both endpoints included (Ho et al. 2020).
    * ``scaled_linear``: the square roots evenly spaced, then squared (the latent diffusion
      / Stable Diffusion schedule, usually with ``beta_start=0.00085, beta_end=0.012``).
    * ``cosine``: ``alpha_bar(t) = f(t) / f(0)``, ``f(t) = cos^2(pi/2 (t/T + s)/(1 + s))``,
      ``s = 0.008``, ``beta_t = min(1 - alpha_bar(t)/alpha_bar(t-1), 0.999)`` (Nichol and
      Dhariwal 2021). ``beta_start`` and ``beta_end`` are not used.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; accepted: {', '.join(map(repr, SCHEDULES))}")
    if not _is_int(num_steps) or num_steps < 1:
        raise ValueError(f"num_steps (T) must be an int >= 1, got {num_steps!r}")
    num_steps = int(num_steps)
    if name == "cosine":

        def f(t: torch.Tensor) -> torch.Tensor:
            return torch.cos((t / num_steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2

        t = torch.arange(num_steps + 1, dtype=torch.float64)  # 0, 1, ..., T
        return (1 - f(t[1:]) / f(t[:-1])).clamp(max=MAX_BETA)  # the documented clip
    if not all(isinstance(b, numbers.Real) and not _is_bool(b) for b in (beta_start, beta_end)):
        raise TypeError(
            f"beta_start and beta_end must be numbers in (0, 1), got {beta_start!r}, {beta_end!r}"
        )
    beta_start, beta_end = _plain(beta_start), _plain(beta_end)
    if not (0 < beta_start < 1 and 0 < beta_end < 1):
        raise ValueError(
            f"beta_start and beta_end must lie in (0, 1), got {beta_start!r}, {beta_end!r}"
        )
    if name == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    root = torch.linspace(beta_start**0.5, beta_end**0.5, num_steps, dtype=torch.float64)
    return root**2


def _gather(table: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
    """``table[t]`` reshaped to ``(N, 1, ..., 1)`` to broadcast over an ``ndim``-d batch."""
    return table[t].reshape(-1, *([1] * (ndim - 1)))


class NoiseSchedule:
    """The tables of a schedule, and the forward process and posterior built on them.

    ``betas`` is any 1-d sequence in (0, 1); use :meth:`from_name` for the named ones.
    Tables live on ``device`` as float32 tensors of shape ``(T,)``.
    """

    def __init__(self, betas: torch.Tensor, device: torch.device | str = "cpu"):
        device = as_device(device)
        try:
            betas = torch.as_tensor(betas, dtype=torch.float64).cpu()
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"betas must be a 1-d sequence of numbers in (0, 1): {err}") from None
        if betas.ndim != 1 or betas.numel() < 1:
            raise ValueError(f"betas must be a non-empty 1-d sequence, got shape {betas.shape}")
        if not ((betas > 0) & (betas < 1)).all():
            raise ValueError(
                f"every beta must lie in (0, 1); got values in [{betas.min():.4g}, "
                f"{betas.max():.4g}]"
            )
        self.num_steps = betas.numel()
        self.device = device
        alphas = 1 - betas
        abar = torch.cumprod(alphas, dim=0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])  # alpha_bar_0 = 1
        post_var = betas * (1 - abar_prev) / (1 - abar)  # beta_tilde_t; exactly 0 at index 0
        tables = {
            "betas": betas,
            "alphas": alphas,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "sqrt_alphas_cumprod": abar.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1 - abar).sqrt(),
            "posterior_variance": post_var,
            # log(0) at index 0 is -inf: use beta_tilde at index 1 there instead. Only the
            # log-variance is clipped; posterior_variance keeps its exact 0.
            "posterior_log_variance_clipped": torch.log(
                torch.cat([post_var[1:2], post_var[1:]]) if self.num_steps > 1 else betas
            ),
            "posterior_mean_coef1": betas * abar_prev.sqrt() / (1 - abar),  # multiplies x_0
            "posterior_mean_coef2": (1 - abar_prev) * alphas.sqrt() / (1 - abar),  # x_t
        }
        for name, table in tables.items():
            setattr(self, name, table.to(torch.float32).to(self.device))

    @classmethod
    def from_name(
        cls,
        name: ScheduleName = "linear",
        num_steps: int = 1000,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        device: torch.device | str = "cpu",
    ) -> NoiseSchedule:
        return cls(make_betas(name, num_steps, beta_start, beta_end), device)

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """A copy of this schedule with its tables on ``device``."""
        return NoiseSchedule(self.betas.double(), device)

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ``alpha_bar_t / (1 - alpha_bar_t)``, shape ``(T,)``."""
        return self.alphas_cumprod / (1 - self.alphas_cumprod)

    def check_timesteps(self, t: torch.Tensor, n: int) -> None:
        """Raise unless ``t`` is an integer tensor ``(n,)`` with values in ``[0, T - 1]``."""
        if not isinstance(t, torch.Tensor) or t.dtype not in (torch.int32, torch.int64):
            raise TypeError("timesteps must be an int32 or int64 tensor")
        if t.shape != (n,):
            raise ValueError(f"timesteps must have shape ({n},), got {tuple(t.shape)}")
        if n and (t.min() < 0 or t.max() >= self.num_steps):
            raise ValueError(f"timesteps must lie in [0, {self.num_steps - 1}] (index t - 1)")

    def sample_timesteps(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``(n,)`` int64 indices drawn uniformly from ``{0, ..., T - 1}``, on ``device``."""
        if not _is_int(n) or n < 0:
            raise ValueError(f"n (the number of timesteps) must be an int >= 0, got {n!r}")
        _check_generator(generator)
        return torch.randint(0, self.num_steps, (int(n),), generator=generator).to(self.device)

    def q_sample(
        self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)``.

        ``x0`` and ``noise`` are ``(N, ...)``; ``t`` is ``(N,)`` int indices. Same shape out.
        """
        _check_batch(x0, "x0")
        self.check_timesteps(t, x0.shape[0])
        noise = torch.randn_like(x0) if noise is None else noise
        if not isinstance(noise, torch.Tensor):
            raise TypeError(f"noise must be a torch.Tensor or None, got {_describe(noise)}")
        if noise.shape != x0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} != x0 shape {tuple(x0.shape)}")
        a = _gather(self.sqrt_alphas_cumprod, t, x0.ndim)
        b = _gather(self.sqrt_one_minus_alphas_cumprod, t, x0.ndim)
        return a * x0 + b * noise

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and clipped log-variance of ``q(x_{t-1} | x_t, x_0)``.

        ``mean = coef1_t x_0 + coef2_t x_t`` has the shape of ``x0``; the variance and
        log-variance come back as ``(N, 1, ..., 1)`` to broadcast.
        """
        _check_batch(x0, "x0")
        _check_batch(xt, "xt")
        if x0.shape != xt.shape:
            raise ValueError(f"x0 shape {tuple(x0.shape)} != xt shape {tuple(xt.shape)}")
        self.check_timesteps(t, x0.shape[0])
        mean = (
            _gather(self.posterior_mean_coef1, t, x0.ndim) * x0
            + _gather(self.posterior_mean_coef2, t, x0.ndim) * xt
        )
        var = _gather(self.posterior_variance, t, x0.ndim)
        log_var = _gather(self.posterior_log_variance_clipped, t, x0.ndim)
        return mean, var, log_var

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Invert ``q_sample``: ``x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``.

        ``eps`` must have exactly the shape of ``xt``; it is never broadcast.
        """
        _check_batch(xt, "xt")
        _check_eps(eps, xt, "xt")
        self.check_timesteps(t, xt.shape[0])
        a = _gather(self.sqrt_alphas_cumprod, t, xt.ndim)
        b = _gather(self.sqrt_one_minus_alphas_cumprod, t, xt.ndim)
        return (xt - b * eps) / a
