"""A variational autoencoder for the 8x8 digits (chapter ``vae``).

The decoder is a categorical distribution over the 17 intensity levels of every pixel
(the digits store integers 0..16), so ``-log p(x | z)`` is a proper discrete likelihood
and the negative ELBO is an upper bound on ``-log p(x)`` in nats per image. For
reference, a model that puts equal mass on every level scores ``64 * log 17 = 181.3``
nats per image.

Notation: ``N`` batch size, ``Z`` latent size, ``P = 64`` pixels, ``L = 17`` levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from companion.checks import check_number as _check_number
from companion.checks import check_positive_int as _check_positive_int
from companion.checks import is_integer as _is_int
from companion.data.digits import DIGITS_SHAPE, check_images
from companion.device import as_device
from companion.progress import tqdm

N_PIXELS = 64  # 8 x 8
LEVELS = 17  # scikit-learn's digits store intensities 0..16
HALF_RANGE = (LEVELS - 1) / 2  # level k <-> pixel value k / 8 - 1 in [-1, 1]


def _check_seed(seed: object) -> int:
    if not _is_int(seed) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative int (below 2**63), got {seed!r}")
    return int(seed)


def pixels_to_levels(x: torch.Tensor) -> torch.Tensor:
    """Images ``(N, 1, 8, 8)`` in [-1, 1] -> intensity levels ``(N, 64)`` int64 in 0..16.

    Raises ``ValueError`` if a pixel is not on the grid ``k / 8 - 1`` (within 1e-4): the
    likelihood is defined for the data's 17 levels only, and nothing is rounded silently.
    """
    check_images(x)
    scaled = (x.flatten(1) + 1) * HALF_RANGE  # (N, 64) in [0, 16]
    levels = scaled.round()
    if (scaled - levels).abs().max().item() > 1e-4 * HALF_RANGE:
        raise ValueError("pixels must take the values k/8 - 1 for k = 0..16, as the digits do")
    return levels.long()


def levels_to_pixels(levels: torch.Tensor) -> torch.Tensor:
    """Levels ``(N, 64)`` (int or expected float) -> images ``(N, 1, 8, 8)`` in [-1, 1].

    Levels must lie in [0, 16] (within 1e-4 for float round-off); others are an error.
    """
    if not isinstance(levels, torch.Tensor) or levels.dtype == torch.bool or levels.is_complex():
        raise TypeError("levels must be an integer or floating torch.Tensor of levels 0..16")
    if levels.ndim != 2 or levels.shape[1] != N_PIXELS:
        raise ValueError(f"levels must have shape (N, {N_PIXELS}), got {tuple(levels.shape)}")
    if not ((levels >= -1e-4) & (levels <= LEVELS - 1 + 1e-4)).all():
        raise ValueError("levels must lie in [0, 16] (and be finite), the range of the digits")
    return (levels.float() / HALF_RANGE - 1).view(-1, *DIGITS_SHAPE)  # (N, 64) -> (N, 1, 8, 8)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per row, ``(N, Z) -> (N,)``, in nats.

    ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)``, derived in sympy in chapter ``vae``.
    """
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(
            f"mu and logvar must have the same shape (N, Z); got {tuple(mu.shape)}, "
            f"{tuple(logvar.shape)}"
        )
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def reparameterise(
    mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``z = mu + sigma * eps`` with ``sigma = exp(logvar / 2)`` (a standard deviation,
    not the variance) and ``eps ~ N(0, I)``; differentiable in ``mu`` and ``logvar``.

    ``logvar`` has ``mu``'s shape or one that broadcasts to it, such as a variance shared
    by all rows, ``(Z,)`` or ``()``; ``z`` and ``eps`` have ``mu``'s shape.
    """
    try:
        broadcast = torch.broadcast_shapes(mu.shape, logvar.shape)
    except RuntimeError:
        broadcast = None
    if broadcast != mu.shape:
        raise ValueError(
            "logvar must have mu's shape or one that broadcasts to it; got mu "
            f"{tuple(mu.shape)}, logvar {tuple(logvar.shape)}"
        )
    eps = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps


@dataclass
class VAEConfig:
    latent_dim: int = 8  # size of z; small data, so a few dimensions suffice
    hidden: int = 256  # width of the two hidden layers of encoder and decoder


class VAE(nn.Module):
    """MLP encoder ``q(z | x) = N(mu, diag sigma^2)`` and categorical pixel decoder."""

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        self.config = config = config or VAEConfig()
        self.latent_dim, h = _check_positive_int(
            latent_dim=config.latent_dim, hidden=config.hidden
        )
        self.encoder = nn.Sequential(
            nn.Flatten(),  # (N, 1, 8, 8) -> (N, 64)
            nn.Linear(N_PIXELS, h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, 2 * self.latent_dim),  # (N, 2Z): mu and log-variance
        )
        self.decoder = nn.Sequential(
            nn.Linear(self.latent_dim, h),
            nn.ReLU(),
            nn.Linear(h, h),
            nn.ReLU(),
            nn.Linear(h, N_PIXELS * LEVELS),  # (N, P*L)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images ``(N, 1, 8, 8)`` -> ``(mu, logvar)``, each ``(N, Z)``."""
        check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (N, 2Z) -> 2 x (N, Z)
        return mu, logvar

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(N, Z)`` -> per-pixel level logits ``(N, P, L)``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z).view(-1, N_PIXELS, LEVELS)  # (N, P*L) -> (N, P, L)

    @staticmethod
    def mean_image(logits: torch.Tensor) -> torch.Tensor:
        """Expected intensity under the decoder, ``(N, P, L) -> (N, 1, 8, 8)`` in [-1, 1]."""
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            raise TypeError("logits must be a floating torch.Tensor of shape (N, 64, 17)")
        if logits.ndim != 3 or tuple(logits.shape[1:]) != (N_PIXELS, LEVELS):
            raise ValueError(
                f"logits must have shape (N, {N_PIXELS}, {LEVELS}), got {tuple(logits.shape)}"
            )
        levels = torch.arange(LEVELS, device=logits.device, dtype=logits.dtype)  # (L,)
        return levels_to_pixels(logits.softmax(dim=-1) @ levels)  # (N, P, L) @ (L,) -> (N, P)


@dataclass
class ELBOTerms:
    reconstruction: torch.Tensor  # (N,) -E_q[log p(x | z)], one-sample estimate, nats
    kl: torch.Tensor  # (N,) KL(q(z | x) || p(z)), exact, nats
    loss: torch.Tensor  # scalar: mean of reconstruction + beta * kl


def negative_elbo(
    model: VAE, x: torch.Tensor, beta: float = 1.0, generator: torch.Generator | None = None
) -> ELBOTerms:
    """The (beta-weighted) negative ELBO of images ``x`` ``(N, 1, 8, 8)``, chapter ``vae``.

    1. Encode: ``mu, logvar = encoder(x)``.
    2. Reparameterise: ``z = mu + exp(logvar / 2) * eps``.
    3. Decode: per-pixel categorical logits ``(N, P, L)``.
    4. Reconstruction: ``-log p(x | z)``, the cross-entropy summed over the 64 pixels.
    5. KL to the prior ``N(0, I)`` in closed form.
    6. Loss: batch mean of ``reconstruction + beta * kl``; ``beta = 1`` is the ELBO.
    """
    beta = _check_number("beta (the KL weight)", beta, lambda v: v >= 0, ">= 0")
    targets = pixels_to_levels(x)  # (N, P)
    mu, logvar = model.encode(x)  # (N, Z), (N, Z)
    z = reparameterise(mu, logvar, generator)  # (N, Z)
    logits = model.decode_logits(z)  # (N, P, L)
    recon = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(dim=1)  # (N,)
    kl = kl_standard_normal(mu, logvar)  # (N,)
    return ELBOTerms(recon, kl, (recon + beta * kl).mean())


@dataclass
class VAETrainConfig:
    epochs: int = 150  # passes over the 1,347 training digits
    batch_size: int = 128
    lr: float = 1e-3  # Adam step size
    beta: float = 1.0  # KL weight; 1 trains on the ELBO itself
    seed: int = 0  # minibatch order


@dataclass
class VAEHistory:
    epochs: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)  # mean training loss per epoch
    kl: list[float] = field(default_factory=list)  # mean KL per epoch, nats


def train_vae(
    model: VAE, data: torch.Tensor, config: VAETrainConfig | None = None, progress: bool = True
) -> VAEHistory:
    """Fit ``model`` to images ``data`` ``(N, 1, 8, 8)`` in place; returns the loss curves."""
    config = config or VAETrainConfig()
    epochs, batch_size = _check_positive_int(epochs=config.epochs, batch_size=config.batch_size)
    lr = _check_number("lr", config.lr, lambda v: v > 0, "> 0")
    beta = _check_number("beta (the KL weight)", config.beta, lambda v: v >= 0, ">= 0")
    seed = _check_seed(config.seed)
    check_images(data, "data")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order_rng = torch.Generator().manual_seed(seed)
    history = VAEHistory()
    n = data.shape[0]
    model.train()
    for epoch in tqdm(range(1, epochs + 1), desc="VAE", disable=not progress):
        order = torch.randperm(n, generator=order_rng).to(data.device)
        total, total_kl = 0.0, 0.0
        for start in range(0, n, batch_size):
            batch = data[order[start : start + batch_size]]
            terms = negative_elbo(model, batch, beta)
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            opt.step()
            total += terms.loss.item() * batch.shape[0]
            total_kl += terms.kl.sum().item()
        history.epochs.append(epoch)
        history.loss.append(total / n)
        history.kl.append(total_kl / n)
    return history


@torch.no_grad()
def evaluate_nelbo(model: VAE, x: torch.Tensor, n_samples: int = 10, seed: int = 0) -> dict:
    """Mean negative ELBO (beta = 1) of ``x`` in nats per image, averaged over
    ``n_samples`` draws of ``z`` per image; also its reconstruction and KL parts."""
    (n_samples,) = _check_positive_int(n_samples=n_samples)
    seed = _check_seed(seed)
    model.eval()
    g = torch.Generator(device=x.device).manual_seed(seed)
    recon = kl = 0.0
    for _ in range(n_samples):
        terms = negative_elbo(model, x, 1.0, generator=g)
        recon += terms.reconstruction.mean().item() / n_samples
        kl += terms.kl.mean().item() / n_samples
    return {"nelbo": recon + kl, "reconstruction": recon, "kl": kl}


@torch.no_grad()
def active_units(model: VAE, x: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Latent dimensions whose posterior mean varies with the input (Burda et al., 2016).

    Unit ``j`` is active when ``Var_x(E_q[z_j | x]) > threshold``. Returns the count and
    the per-unit variances ``(Z,)``.
    """
    threshold = _check_number("threshold", threshold, lambda v: v > 0, "> 0")
    check_images(x, "x")
    if x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 images for a variance, got {x.shape[0]}")
    model.eval()
    mu, _ = model.encode(x)  # (N, Z)
    variances = mu.var(dim=0).cpu()  # (Z,)
    return int((variances > threshold).sum()), variances


@torch.no_grad()
def sample_images(model: VAE, n: int, device: torch.device | str) -> torch.Tensor:
    """Decode ``n`` prior draws ``z ~ N(0, I)`` to mean images ``(n, 1, 8, 8)`` in [-1, 1]."""
    (n,) = _check_positive_int(n=n)
    device = as_device(device)
    model.eval()
    z = torch.randn(n, model.latent_dim, device=device)  # (n, Z)
    return model.mean_image(model.decode_logits(z))


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Mean image decoded from the posterior mean of each image ``(N, 1, 8, 8)``."""
    model.eval()
    mu, _ = model.encode(x)
    return model.mean_image(model.decode_logits(mu))


@torch.no_grad()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Decode ``steps`` points on the line between the posterior means of two images.

    ``x_a`` and ``x_b`` are ``(1, 1, 8, 8)``; returns ``(steps, 1, 8, 8)``.
    """
    if not _is_int(steps) or steps < 2:
        raise ValueError(f"steps must be an int >= 2, got {steps!r}")
    if x_a.shape != (1, *DIGITS_SHAPE) or x_b.shape != (1, *DIGITS_SHAPE):
        raise ValueError(f"x_a and x_b must each have shape (1, 1, 8, 8), got {x_a.shape}")
    model.eval()
    mu_a, mu_b = model.encode(x_a)[0], model.encode(x_b)[0]  # (1, Z) each
    t = torch.linspace(0, 1, int(steps), device=mu_a.device)[:, None]  # (steps, 1)
    return model.mean_image(model.decode_logits((1 - t) * mu_a + t * mu_b))  # (steps, Z)


UNIFORM_NATS = N_PIXELS * math.log(LEVELS)  # 181.3: the score of a uniform decoder
