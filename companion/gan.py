"""Generative adversarial networks: DCGAN for 8x8 digits, MLPs for 2-D toys, WGAN-GP.

The losses follow the chapters that derive them:

* ``gan-theory``: the discriminator minimises binary cross-entropy on logits (real -> 1,
  fake -> 0); the generator minimises the non-saturating loss ``-log D(G(z))``.
* ``wgan-gp``: the critic minimises ``E[f(fake)] - E[f(real)] + lambda * GP``, with the
  gradient penalty taken per sample on random interpolates between real and fake.
* ``dcgan``: the architecture and the training step for digits.

Notation: ``N`` batch size, ``Z`` latent size, ``w`` base channel width, ``D`` data size.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from companion.checks import check_number as _check_number
from companion.checks import check_positive_int as _check_positive_int
from companion.checks import is_integer as _is_int
from companion.device import as_device
from companion.progress import tqdm

Norm = Literal["batch", "none"]
NORMS = ("batch", "none")
Loss = Literal["non-saturating", "wgan-gp"]
LOSSES = ("non-saturating", "wgan-gp")


def _check_input(name: str, x: object, dims: tuple[int | None, ...], like: torch.Tensor) -> None:
    """Raise unless ``x`` is a floating tensor of shape ``dims`` (``None``: any size, at least
    1) with the dtype of the model parameter ``like``, or any floating dtype under autocast."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != len(dims) or any(
        n < 1 or d not in (None, n) for d, n in zip(dims, x.shape, strict=True)
    ):
        shape = ", ".join("N" if d is None else str(d) for d in dims)
        raise ValueError(f"{name} must have shape ({shape}), got {tuple(x.shape)}")
    autocast = torch.is_autocast_enabled(x.device.type)
    if not x.is_floating_point() or (x.dtype != like.dtype and not autocast):
        raise TypeError(
            f"{name} must have the model's dtype {like.dtype} (any floating dtype under "
            f"autocast), got {x.dtype}"
        )


def _check_rng(rng: object) -> None:
    if rng is not None and not isinstance(rng, torch.Generator):
        raise TypeError(f"rng must be a torch.Generator or None, got {type(rng).__name__}")


def _randn(
    rng: torch.Generator | None, shape: tuple[int, ...], device: torch.device | str
) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn from ``rng`` if given.

    ``rng`` may live on another device than the result (train_gan passes a CPU one, so
    that every device sees the same numbers); ``None`` uses the global stream of ``device``.
    """
    _check_rng(rng)
    if rng is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=rng, device=rng.device).to(device)


def _check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; accepted: {', '.join(map(repr, NORMS))}")


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; accepted: {', '.join(map(repr, LOSSES))}")


# ----------------------------------------------------------------------------- models


class DCGANGenerator(nn.Module):
    """Map noise ``(N, Z)`` to digits ``(N, 1, 8, 8)`` in (-1, 1) (chapter ``dcgan``)."""

    def __init__(self, latent_dim: int = 32, width: int = 64):
        super().__init__()
        _check_positive_int(latent_dim=latent_dim, width=width)
        self.latent_dim, self.width = latent_dim, width
        # The linear layer feeds batch norm, which has its own shift: no bias needed.
        self.project = nn.Linear(latent_dim, 2 * width * 4 * 4, bias=False)  # (N, 2w*16)
        self.body = nn.Sequential(
            nn.BatchNorm2d(2 * width),  # (N, 2w, 4, 4)
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),  # (N,w,8,8)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 1, 3, padding=1),  # (N, 1, 8, 8)
            nn.Tanh(),  # pixels in (-1, 1), the range of the data
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_input("z", z, (None, self.latent_dim), self.project.weight)
        h = self.project(z).view(-1, 2 * self.width, 4, 4)  # (N, 2w*16) -> (N, 2w, 4, 4)
        return self.body(h)


class DCGANDiscriminator(nn.Module):
    """Score digits ``(N, 1, 8, 8)`` with one logit each, ``(N,)`` (chapter ``dcgan``).

    ``norm="batch"`` is the DCGAN discriminator; ``norm="none"`` is a WGAN-GP critic,
    whose per-sample gradient penalty batch norm would break (it mixes samples).
    """

    def __init__(self, width: int = 64, norm: Norm = "batch"):
        super().__init__()
        _check_positive_int(width=width)
        _check_norm(norm)

        def normalise(channels: int) -> nn.Module:
            return nn.BatchNorm2d(channels) if norm == "batch" else nn.Identity()

        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),  # (N, w, 8, 8)
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),  # (N, 2w, 4, 4)
            normalise(2 * width),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1),  # (N, 4w, 2, 2)
            normalise(4 * width),
            nn.LeakyReLU(0.2),
            nn.Flatten(),  # (N, 16w)
            nn.Linear(16 * width, 1),  # (N, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("x", x, (None, 1, 8, 8), self.body[0].weight)
        return self.body(x).squeeze(1)  # (N, 1) -> (N,)


class MLPGenerator(nn.Module):
    """Map noise ``(N, Z)`` to points ``(N, D)``; a small generator for 2-D toy data."""

    def __init__(self, latent_dim: int = 2, data_dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        _check_positive_int(latent_dim=latent_dim, data_dim=data_dim, hidden=hidden, depth=depth)
        self.latent_dim = latent_dim
        layers: list[nn.Module] = []
        size = latent_dim
        for _ in range(depth):
            layers += [nn.Linear(size, hidden), nn.ReLU()]
            size = hidden
        self.net = nn.Sequential(*layers, nn.Linear(size, data_dim))  # (N, D), unbounded

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        _check_input("z", z, (None, self.latent_dim), self.net[0].weight)
        return self.net(z)


class MinibatchStdDev(nn.Module):
    """Append the batch's mean feature standard deviation as one extra feature.

    A remedy for mode collapse (chapter ``wgan-gp``): a batch of near-identical fakes has
    a tell-tale small spread that the discriminator can see. ``(N, F) -> (N, F + 1)``,
    ``N, F >= 1``; a batch of one sample has spread 0.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if not isinstance(h, torch.Tensor) or h.ndim != 2 or 0 in h.shape:
            shape = tuple(h.shape) if isinstance(h, torch.Tensor) else type(h).__name__
            raise ValueError(f"h must have shape (N, F) with N, F >= 1, got {shape}")
        spread = h.std(dim=0, unbiased=False).mean()  # scalar: mean over F of per-feature std
        return torch.cat([h, spread.expand(h.shape[0], 1)], dim=1)  # (N, F + 1)


class MLPDiscriminator(nn.Module):
    """Score points ``(N, D)`` with one logit (or critic value) each, ``(N,)``.

    No normalisation layers, so it serves as a WGAN-GP critic too. ``minibatch_std``
    inserts :class:`MinibatchStdDev` before the last layer.
    """

    def __init__(
        self, data_dim: int = 2, hidden: int = 128, depth: int = 3, minibatch_std: bool = False
    ):
        super().__init__()
        _check_positive_int(data_dim=data_dim, hidden=hidden, depth=depth)
        self.data_dim = data_dim
        layers: list[nn.Module] = []
        size = data_dim
        for _ in range(depth):
            layers += [nn.Linear(size, hidden), nn.LeakyReLU(0.2)]
            size = hidden
        if minibatch_std:
            layers.append(MinibatchStdDev())
            size += 1
        self.net = nn.Sequential(*layers, nn.Linear(size, 1))  # (N, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input("x", x, (None, self.data_dim), self.net[0].weight)
        return self.net(x).squeeze(1)  # (N,)


# ----------------------------------------------------------------------------- losses


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float = 1.0
) -> torch.Tensor:
    """BCE-with-logits: real towards ``real_label``, fake towards 0 (chapter ``gan-theory``).

    ``real_label`` below 1 is one-sided label smoothing (0.9 is usual); it must lie in
    (0.5, 1]. Both logits are ``(N,)``; returns a scalar.
    """
    real_label = _check_number("real_label", real_label, lambda v: 0.5 < v <= 1.0, "in (0.5, 1]")
    real = F.binary_cross_entropy_with_logits(
        real_logits, torch.full_like(real_logits, real_label)
    )
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-E[log D(G(z))]`` from logits ``(N,)``."""
    # -log sigmoid(l) = softplus(-l), computed stably.
    return F.softplus(-fake_logits).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``weight * E[(||grad f(x_hat)||_2 - 1)^2]`` (chapter ``wgan-gp``).

    1. Draw one ``eps ~ U(0, 1)`` per sample.
    2. Interpolate ``x_hat = eps * real + (1 - eps) * fake`` (shape of ``real``).
    3. Take the gradient of the critic at ``x_hat``, keeping the graph so the penalty
       itself can be differentiated with respect to the critic's parameters.
    4. Penalise each sample's gradient norm for departing from 1, then average.

    ``real`` and ``fake`` have the same shape ``(N, ...)``; ``generator`` makes ``eps``
    reproducible; it may live on the CPU while ``real`` is elsewhere (``eps`` is drawn on
    the generator's device and moved). Returns a scalar.
    """
    _check_rng(generator)
    weight = _check_number("weight (lambda)", weight, lambda v: v >= 0, ">= 0")
    if real.shape != fake.shape or real.ndim < 2:
        raise ValueError(
            "real and fake must have the same shape (N, ...); "
            f"got {tuple(real.shape)} and {tuple(fake.shape)}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)  # (N, 1, ..., 1)
    eps_device = real.device if generator is None else generator.device
    eps = torch.rand(eps_shape, device=eps_device, dtype=real.dtype, generator=generator)
    eps = eps.to(real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(x_hat)  # (N,)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)  # shape of real
    norms = grad.flatten(1).norm(dim=1)  # (N,)
    return weight * ((norms - 1) ** 2).mean()


# ----------------------------------------------------------------------------- training


@dataclass
class GANTrainConfig:
    """How to train a GAN. The optimiser defaults are the DCGAN recipe (Adam, 2e-4, 0.5)."""

    loss: Loss = "non-saturating"  # "wgan-gp" for the Wasserstein critic with penalty
    steps: int = 2000  # generator updates
    batch_size: int = 128  # real and fake samples per step, each
    lr_g: float = 2e-4  # Adam step size, generator
    lr_d: float = 2e-4  # Adam step size, discriminator / critic
    betas: tuple[float, float] = (0.5, 0.999)  # beta1 = 0.5 damps the adversarial oscillation
    n_critic: int = 1  # discriminator updates per generator update (5 is usual for WGAN-GP)
    gp_weight: float = 10.0  # lambda of the gradient penalty (wgan-gp only)
    real_label: float = 1.0  # < 1 is one-sided label smoothing (non-saturating only)
    ema_decay: float = 0.0  # > 0 keeps an exponential moving average of the generator
    log_every: int = 10  # record losses every this many generator steps
    seed: int = 0  # CPU stream for batch order, noise z and GP weights: same on every device

    def validate(self) -> None:
        """Raise naming the accepted values for the first bad field; NumPy scalars are
        accepted and converted in place to Python ints and floats (the same values)."""
        _check_loss(self.loss)
        self.steps, self.batch_size, self.n_critic, self.log_every = _check_positive_int(
            steps=self.steps,
            batch_size=self.batch_size,
            n_critic=self.n_critic,
            log_every=self.log_every,
        )
        for name, ok, accepted in (
            ("lr_g", lambda v: v > 0, "> 0"),
            ("lr_d", lambda v: v > 0, "> 0"),
            ("gp_weight", lambda v: v >= 0, ">= 0"),
            ("real_label", lambda v: 0.5 < v <= 1.0, "in (0.5, 1]"),
            ("ema_decay", lambda v: 0 <= v < 1, "in [0, 1)"),
        ):
            setattr(self, name, _check_number(name, getattr(self, name), ok, accepted))
        if not isinstance(self.betas, tuple | list) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair of numbers in [0, 1), got {self.betas!r}")
        self.betas = tuple(
            _check_number(f"betas[{i}]", beta, lambda v: 0 <= v < 1, "in [0, 1)")
            for i, beta in enumerate(self.betas)
        )
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative int (below 2**63), got {self.seed!r}")
        self.seed = int(self.seed)


def discriminator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    config: GANTrainConfig,
    rng: torch.Generator | None = None,
) -> float:
    """One update of the discriminator (or critic); returns its loss.

    The fakes are detached: this step must not build a graph through, or leave gradients
    on, the generator. ``rng`` (any device) draws the noise and the penalty's ``eps``;
    ``None`` uses the global stream of ``real``'s device.
    """
    _check_loss(config.loss)  # the rest of config is checked where it is used
    z = _randn(rng, (real.shape[0], generator.latent_dim), real.device)  # (N, Z)
    with torch.no_grad():
        fake = generator(z)  # same shape as real, no graph back to the generator
    real_scores, fake_scores = discriminator(real), discriminator(fake)  # (N,), (N,)
    if config.loss == "wgan-gp":
        loss = fake_scores.mean() - real_scores.mean()
        loss = loss + gradient_penalty(discriminator, real, fake, config.gp_weight, rng)
    else:
        loss = discriminator_loss(real_scores, fake_scores, config.real_label)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    config: GANTrainConfig,
    device: torch.device | str,
    rng: torch.Generator | None = None,
) -> float:
    """One update of the generator through a frozen discriminator; returns its loss.

    ``rng`` (any device) draws the noise; ``None`` uses the global stream of ``device``.
    """
    _check_rng(rng)
    (batch_size,) = _check_positive_int(batch_size=batch_size)
    _check_loss(config.loss)
    discriminator.requires_grad_(False)  # gradients flow through D to G, not into D
    try:
        z = _randn(rng, (batch_size, generator.latent_dim), device)  # (N, Z)
        scores = discriminator(generator(z))  # (N,)
        loss = -scores.mean() if config.loss == "wgan-gp" else generator_loss(scores)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    finally:
        discriminator.requires_grad_(True)
    return loss.item()


@dataclass
class GANHistory:
    """What :func:`train_gan` returns: losses, snapshots and the generator to sample from."""

    steps: list[int] = field(default_factory=list)  # generator step of each logged loss
    d_loss: list[float] = field(default_factory=list)  # discriminator / critic loss
    g_loss: list[float] = field(default_factory=list)
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)  # step -> samples (CPU)
    sampler: nn.Module | None = None  # the EMA generator if ema_decay > 0, else the generator


@torch.no_grad()
def _update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)  # batch-norm running statistics follow the live generator


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    data: torch.Tensor,
    config: GANTrainConfig | None = None,
    fixed_z: torch.Tensor | None = None,
    snapshot_steps: Iterable[int] = (),
    progress: bool = True,
) -> GANHistory:
    """Train ``generator`` against ``discriminator`` on ``data`` ``(N, ...)`` in place.

    ``generator`` needs a ``latent_dim`` attribute. Minibatches are drawn without
    replacement, reshuffling after each pass. Batch order, noise and penalty weights all
    come from one CPU generator seeded with ``config.seed`` and are moved to ``data``'s
    device, so CPU and CUDA train on the same numbers (up to their kernels' rounding); the
    initial weights are the caller's to seed. At each step in ``snapshot_steps`` (0 = before
    training) the sampler's output on ``fixed_z`` ``(M, Z)`` is stored on the CPU.
    """
    config = config or GANTrainConfig()
    config.validate()
    if not hasattr(generator, "latent_dim"):
        raise TypeError("generator must have a latent_dim attribute (the size of z)")
    if data.ndim < 2 or data.shape[0] < config.batch_size:
        raise ValueError(
            f"data must have shape (N, ...) with N >= batch_size={config.batch_size}, "
            f"got {tuple(data.shape)}"
        )
    snapshot_steps = tuple(snapshot_steps)
    if not all(_is_int(s) and 0 <= s <= config.steps for s in snapshot_steps):
        raise ValueError(
            f"snapshot_steps must be ints in [0, steps={config.steps}], got {snapshot_steps!r}"
        )
    if snapshot_steps and fixed_z is None:
        raise ValueError("snapshot_steps needs fixed_z, the noise to render at each snapshot")
    device = data.device
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=config.betas)
    ema = copy.deepcopy(generator).requires_grad_(False) if config.ema_decay > 0 else None
    history = GANHistory(sampler=ema if ema is not None else generator)
    rng = torch.Generator().manual_seed(config.seed)  # CPU: the same stream on any device
    order, cursor = torch.randperm(data.shape[0], generator=rng), 0

    def next_batch() -> torch.Tensor:
        nonlocal order, cursor
        if cursor + config.batch_size > order.shape[0]:
            order, cursor = torch.randperm(data.shape[0], generator=rng), 0
        idx = order[cursor : cursor + config.batch_size].to(device)
        cursor += config.batch_size
        return data[idx]

    def snapshot(step: int) -> None:
        if step in snapshot_steps:
            sampler = history.sampler
            was_training = sampler.training
            sampler.eval()
            with torch.no_grad():
                history.snapshots[step] = sampler(fixed_z.to(device)).cpu()
            sampler.train(was_training)

    generator.train()
    discriminator.train()
    snapshot(0)
    for step in tqdm(
        range(1, config.steps + 1), desc=f"GAN ({config.loss})", disable=not progress
    ):
        for _ in range(config.n_critic):
            d_loss = discriminator_step(generator, discriminator, opt_d, next_batch(), config, rng)
        g_loss = generator_step(
            generator, discriminator, opt_g, config.batch_size, config, device, rng
        )
        if ema is not None:
            _update_ema(ema, generator, config.ema_decay)
        if step % config.log_every == 0:
            history.steps.append(step)
            history.d_loss.append(d_loss)
            history.g_loss.append(g_loss)
        snapshot(step)
    return history


@torch.no_grad()
def sample(
    generator: nn.Module,
    n: int,
    device: torch.device | str,
    batch_size: int = 512,
    rng: torch.Generator | None = None,
):
    """Draw ``n`` samples from ``generator`` in eval mode; returns ``(n, ...)`` on ``device``.

    ``rng`` (e.g. a seeded CPU generator, for the same noise on every device) draws the
    noise; ``None`` uses the global stream of ``device``.
    """
    n, batch_size = _check_positive_int(n=n, batch_size=batch_size)
    _check_rng(rng)
    device = as_device(device)
    was_training = generator.training
    generator.eval()
    out = [
        generator(_randn(rng, (min(batch_size, n - i), generator.latent_dim), device))
        for i in range(0, n, batch_size)
    ]
    generator.train(was_training)
    return torch.cat(out)
