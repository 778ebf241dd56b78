"""Unit tests for companion.vae: KL, reparameterisation, ELBO, training helpers."""

import math
import re

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from companion.data.digits import load_digits
from companion.vae import (
    LEVELS,
    UNIFORM_NATS,
    VAE,
    VAEConfig,
    VAETrainConfig,
    active_units,
    evaluate_nelbo,
    interpolate,
    kl_standard_normal,
    levels_to_pixels,
    negative_elbo,
    pixels_to_levels,
    reparameterise,
    sample_images,
    train_vae,
)


def test_kl_known_values():
    # Closed form 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2):
    zero = kl_standard_normal(torch.zeros(1, 2), torch.zeros(1, 2))
    assert zero.item() == pytest.approx(0.0)
    ones = kl_standard_normal(torch.ones(1, 2), torch.zeros(1, 2))
    assert ones.item() == pytest.approx(1.0)


def test_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 3), torch.randn(5, 3)
    ref = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl_standard_normal(mu, logvar), ref, atol=1e-5)


def test_reparameterise_uses_standard_deviation():
    mu, logvar = torch.full((200000, 1), 1.5), torch.full((200000, 1), math.log(4.0))
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    assert z.mean().item() == pytest.approx(1.5, abs=0.02)
    assert z.std().item() == pytest.approx(2.0, abs=0.02)  # sqrt(4), not 4


def test_reparameterise_is_differentiable():
    mu, logvar = torch.zeros(3, 2, requires_grad=True), torch.zeros(3, 2, requires_grad=True)
    reparameterise(mu, logvar).sum().backward()
    assert torch.equal(mu.grad, torch.ones(3, 2)) and logvar.grad is not None


def test_levels_round_trip_on_real_digits():
    x, _ = load_digits("test")
    levels = pixels_to_levels(x)
    assert levels.min() >= 0 and levels.max() == LEVELS - 1
    assert torch.equal(levels_to_pixels(levels), x)


def test_off_grid_pixels_are_rejected_not_rounded():
    with pytest.raises(ValueError, match="k/8 - 1"):
        pixels_to_levels(torch.full((1, 1, 8, 8), 0.01))


def test_uniform_decoder_scores_64_log_17():
    model = VAE(VAEConfig(latent_dim=2, hidden=8))
    with torch.no_grad():
        last = model.decoder[-1]
        last.weight.zero_()
        last.bias.zero_()
    x, _ = load_digits("test")
    terms = negative_elbo(model, x[:10])
    assert terms.reconstruction[0].item() == pytest.approx(64 * math.log(17), rel=1e-5)
    assert UNIFORM_NATS == pytest.approx(181.33, abs=0.01)


def test_negative_elbo_terms_and_beta():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=3, hidden=16))
    x, _ = load_digits("test")
    g = torch.Generator().manual_seed(0)
    t1 = negative_elbo(model, x[:7], beta=1.0, generator=g)
    g = torch.Generator().manual_seed(0)
    t0 = negative_elbo(model, x[:7], beta=0.0, generator=g)
    assert t1.reconstruction.shape == t1.kl.shape == (7,)
    assert (t1.kl >= 0).all()
    assert t1.loss.item() == pytest.approx((t1.reconstruction + t1.kl).mean().item())
    assert t0.loss.item() == pytest.approx(t1.reconstruction.mean().item())


def test_short_training_lowers_the_test_bound_and_helpers_work():
    torch.manual_seed(0)
    x, _ = load_digits("train")
    xt, _ = load_digits("test")
    model = VAE(VAEConfig(latent_dim=4, hidden=64))
    before = evaluate_nelbo(model, xt, n_samples=2)["nelbo"]
    history = train_vae(model, x, VAETrainConfig(epochs=3), progress=False)
    after = evaluate_nelbo(model, xt, n_samples=2)
    assert len(history.loss) == 3
    assert after["nelbo"] < before - 20
    assert after["nelbo"] == pytest.approx(after["reconstruction"] + after["kl"])
    count, variances = active_units(model, xt)
    assert variances.shape == (4,) and 0 <= count <= 4
    assert sample_images(model, 5, "cpu").shape == (5, 1, 8, 8)
    path = interpolate(model, xt[:1], xt[1:2], steps=6)
    assert path.shape == (6, 1, 8, 8)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: VAE(VAEConfig(latent_dim=-2)), "latent_dim"),
        (lambda: negative_elbo(VAE(), torch.zeros(2, 1, 8, 8), beta=-1.0), ">= 0"),
        (lambda: VAE().encode(torch.zeros(2, 1, 28, 28)), r"\(N, 1, 8, 8\)"),
        (lambda: kl_standard_normal(torch.zeros(2, 3), torch.zeros(2, 4)), "same shape"),
        (lambda: sample_images(VAE(), -1, "cpu"), "positive int"),
        (lambda: train_vae(VAE(), torch.zeros(4, 1, 8, 8), VAETrainConfig(epochs=0)), "epochs"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


_X = torch.zeros(4, 1, 8, 8)  # valid images: pixel 0 is level 8


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: negative_elbo(VAE(), torch.zeros(2, 1, 8, 8), beta=math.nan), "finite number"),
        (lambda: negative_elbo(VAE(), torch.zeros(2, 1, 8, 8), beta=math.inf), "finite number"),
        (lambda: levels_to_pixels(torch.zeros(2, 63)), r"shape \(N, 64\)"),
        (lambda: levels_to_pixels(torch.full((1, 64), 100)), r"\[0, 16\]"),
        (lambda: levels_to_pixels(torch.full((1, 64), -1.0)), r"\[0, 16\]"),
        (lambda: levels_to_pixels(torch.full((1, 64), math.nan)), r"\[0, 16\]"),
        (lambda: VAE.mean_image(torch.randn(2, 64, 16)), r"shape \(N, 64, 17\)"),
        (
            lambda: reparameterise(torch.zeros(4, 2), torch.zeros(4, 3)),
            r"mu \(4, 2\), logvar \(4, 3\)",
        ),
        (lambda: train_vae(VAE(), _X, VAETrainConfig(seed=1.5)), "non-negative int"),
        (lambda: train_vae(VAE(), _X, VAETrainConfig(seed=-1)), "non-negative int"),
        (lambda: train_vae(VAE(), _X, VAETrainConfig(lr=math.nan)), "lr must be a finite"),
        (lambda: train_vae(VAE(), _X, VAETrainConfig(beta=-1.0)), "beta"),
        (lambda: evaluate_nelbo(VAE(), _X, seed=1.5), "non-negative int"),
        (lambda: active_units(VAE(), _X[:1]), "at least 2 images"),
        (lambda: active_units(VAE(), _X, threshold=math.inf), "threshold"),
        (lambda: sample_images(VAE(), 2, "gpu"), "'cpu', 'mps', 'cuda' or 'cuda:N'"),
    ],
)
def test_more_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_levels_to_pixels_rejects_bool_levels_and_accepts_the_end_points():
    with pytest.raises(TypeError, match="integer or floating"):
        levels_to_pixels(torch.zeros(1, 64, dtype=torch.bool))
    ends = levels_to_pixels(torch.tensor([[0] * 32 + [16] * 32]))
    assert ends.min().item() == -1.0 and ends.max().item() == 1.0


@pytest.mark.parametrize("shape", [(3,), (), (1, 3), (5, 1)])
def test_reparameterise_broadcasts_a_shared_logvar(shape):
    mu = torch.randn(5, 3)
    logvar = torch.randn(shape, requires_grad=True)
    z = reparameterise(mu, logvar, torch.Generator().manual_seed(0))
    full = reparameterise(mu, logvar.expand(5, 3), torch.Generator().manual_seed(0))
    assert z.shape == (5, 3) and torch.equal(z, full)
    z.sum().backward()
    assert logvar.grad.shape == shape


@pytest.mark.parametrize("shape", [(4,), (2, 5, 3), (5, 3, 1)])
def test_reparameterise_rejects_logvar_that_does_not_broadcast_to_mu(shape):
    message = (
        f"logvar must have mu's shape or one that broadcasts to it; got mu (5, 3), logvar {shape}"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        reparameterise(torch.zeros(5, 3), torch.zeros(shape))


def test_numpy_scalars_are_accepted_wherever_python_numbers_are():
    x, _ = load_digits("train")
    x = x[:40]

    def run(epochs, batch_size, lr, beta, seed, latent_dim):
        torch.manual_seed(0)
        model = VAE(VAEConfig(latent_dim=latent_dim, hidden=16))
        config = VAETrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, beta=beta, seed=seed)
        return model, train_vae(model, x, config, progress=False)

    # Values exact in float32, so both runs see the same numbers.
    model, history = run(
        np.int64(2), np.int32(16), np.float32(2**-10), np.float64(0.5), np.int64(1), np.int64(2)
    )
    _, reference = run(2, 16, 2**-10, 0.5, 1, 2)
    assert history == reference
    assert evaluate_nelbo(model, x, np.int64(2), np.int64(4)) == evaluate_nelbo(model, x, 2, 4)
    assert active_units(model, x, np.float32(0.5))[0] == active_units(model, x, 0.5)[0]
    assert negative_elbo(model, x, np.float32(0.5)).kl.shape == (40,)
    assert sample_images(model, np.int64(3), "cpu").shape == (3, 1, 8, 8)
    assert interpolate(model, x[:1], x[1:2], np.int64(3)).shape == (3, 1, 8, 8)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: train_vae(VAE(), _X, VAETrainConfig(seed=np.bool_(True))), "non-negative int"),
        (
            lambda: train_vae(VAE(), _X, VAETrainConfig(lr=np.float32("nan"))),
            "lr must be a finite",
        ),
        (lambda: train_vae(VAE(), _X, VAETrainConfig(epochs=np.bool_(True))), "positive int"),
        (lambda: evaluate_nelbo(VAE(), _X, seed=np.float64(1.0)), "non-negative int"),
        (lambda: active_units(VAE(), _X, threshold=np.bool_(True)), "threshold must be a finite"),
        (lambda: interpolate(VAE(), _X[:1], _X[:1], np.bool_(True)), "steps must be an int >= 2"),
    ],
)
def test_numpy_bools_and_non_finite_numpy_numbers_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
