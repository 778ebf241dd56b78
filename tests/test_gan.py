"""Unit tests for companion.gan: models, losses, gradient penalty and training steps."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from companion.gan import (
    DCGANDiscriminator,
    DCGANGenerator,
    GANTrainConfig,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    discriminator_loss,
    discriminator_step,
    generator_loss,
    generator_step,
    gradient_penalty,
    sample,
    train_gan,
)


def _pair(norm="batch"):
    torch.manual_seed(0)
    return DCGANGenerator(latent_dim=8, width=8), DCGANDiscriminator(width=8, norm=norm)


def test_dcgan_shapes_and_range():
    g, d = _pair()
    x = g(torch.randn(5, 8))
    assert x.shape == (5, 1, 8, 8)
    assert x.abs().max() < 1
    assert d(x).shape == (5,)


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_discriminator_step_leaves_generator_gradients_untouched(norm):
    g, d = _pair(norm)
    g_before = [p.detach().clone() for p in g.parameters()]
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    d_before = [p.detach().clone() for p in d.parameters()]
    loss = "non-saturating" if norm == "batch" else "wgan-gp"
    discriminator_step(g, d, opt_d, torch.rand(6, 1, 8, 8) * 2 - 1, GANTrainConfig(loss=loss))
    assert all(p.grad is None for p in g.parameters())
    assert all(torch.equal(a, p) for a, p in zip(g_before, g.parameters(), strict=True))
    assert any(not torch.equal(a, p) for a, p in zip(d_before, d.parameters(), strict=True))


def test_generator_step_reaches_generator_and_spares_discriminator():
    g, d = _pair()
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    d_before = [p.detach().clone() for p in d.parameters()]
    generator_step(g, d, opt_g, 6, GANTrainConfig(), "cpu")
    grads = [p.grad for p in g.parameters()]
    assert all(gr is not None for gr in grads)
    assert sum(gr.abs().sum().item() for gr in grads) > 0
    assert all(p.grad is None for p in d.parameters())
    assert all(torch.equal(a, p) for a, p in zip(d_before, d.parameters(), strict=True))
    assert all(p.requires_grad for p in d.parameters())  # unfrozen again afterwards


def _linear_critic(norm: float) -> nn.Module:
    critic = nn.Sequential(nn.Flatten(), nn.Linear(64, 1, bias=False))
    with torch.no_grad():
        w = torch.randn(1, 64)
        critic[1].weight.copy_(norm * w / w.norm())
    return lambda x: critic(x).squeeze(1)


@pytest.mark.parametrize(("norm", "expected"), [(1.0, 0.0), (2.0, 10.0)])
def test_gradient_penalty_of_linear_critic(norm, expected):
    # A linear critic f(x) = w.x has gradient w everywhere, so GP = 10 * (|w| - 1)^2.
    real, fake = torch.randn(16, 1, 8, 8), torch.randn(16, 1, 8, 8)
    gp = gradient_penalty(_linear_critic(norm), real, fake, weight=10.0)
    assert gp.item() == pytest.approx(expected, abs=1e-4)


def test_gradient_penalty_is_differentiable_in_critic_parameters():
    critic = MLPDiscriminator(data_dim=2, hidden=16)
    gp = gradient_penalty(critic, torch.randn(8, 2), torch.randn(8, 2))
    gp.backward()
    assert all(p.grad is not None for p in critic.net[0].parameters())


def test_gradient_penalty_is_per_sample():
    # Critic f(x) = |x|^2 / 2 has gradient x: the penalty uses each sample's own norm,
    # so it equals the mean of (|x_hat_i| - 1)^2, not (|mean gradient| - 1)^2.
    real = torch.tensor([[3.0, 0.0], [-3.0, 0.0]])
    gp = gradient_penalty(lambda x: 0.5 * (x**2).sum(1), real, real.clone(), weight=1.0)
    assert gp.item() == pytest.approx(4.0)  # (3 - 1)^2 for both samples


def test_gradient_penalty_rejects_bad_arguments():
    real = torch.randn(4, 2)
    with pytest.raises(ValueError, match=">= 0"):
        gradient_penalty(lambda x: x.sum(1), real, real, weight=-1.0)
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(lambda x: x.sum(1), real, torch.randn(3, 2))


def test_losses_match_their_formulas():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sig = torch.sigmoid
    want_d = -(sig(r).log().mean() + (1 - sig(f)).log().mean())
    assert discriminator_loss(r, f).item() == pytest.approx(want_d.item(), rel=1e-6)
    smooth = -(0.9 * sig(r).log() + 0.1 * (1 - sig(r)).log()).mean() - (1 - sig(f)).log().mean()
    assert discriminator_loss(r, f, real_label=0.9).item() == pytest.approx(smooth.item())
    assert generator_loss(f).item() == pytest.approx(-sig(f).log().mean().item(), rel=1e-6)
    assert generator_loss(torch.tensor([0.0])).item() == pytest.approx(math.log(2))


def test_minibatch_std_feature():
    h = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    out = MinibatchStdDev()(h)
    assert out.shape == (2, 3)
    assert torch.allclose(out[:, 2], torch.tensor([0.5, 0.5]))  # mean of stds (1, 0)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: DCGANGenerator(latent_dim=-1), "latent_dim"),
        (lambda: DCGANGenerator(width=0), "width"),
        (lambda: DCGANDiscriminator(norm="layer"), "'batch', 'none'"),
        (lambda: MLPGenerator(hidden=0), "hidden"),
        (lambda: GANTrainConfig(gp_weight=-0.1).validate(), "gp_weight"),
        (lambda: GANTrainConfig(loss="hinge").validate(), "'non-saturating', 'wgan-gp'"),
        (lambda: GANTrainConfig(steps=-5).validate(), "steps"),
        (lambda: GANTrainConfig(seed=-1).validate(), "seed"),
        (lambda: discriminator_loss(torch.zeros(1), torch.zeros(1), 0.3), r"\(0.5, 1\]"),
    ],
)
def test_invalid_arguments_say_what_is_accepted(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_wrong_image_shapes_are_rejected():
    g, d = _pair()
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        d(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        g(torch.zeros(2, 7))


def test_train_gan_records_losses_and_snapshots():
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=16), MLPDiscriminator(hidden=16)
    cfg = GANTrainConfig(steps=20, batch_size=8, log_every=5, ema_decay=0.9)
    fixed = torch.randn(4, 2)
    h = train_gan(
        g, d, torch.randn(64, 2), cfg, fixed_z=fixed, snapshot_steps=(0, 20), progress=False
    )
    assert h.steps == [5, 10, 15, 20] and len(h.d_loss) == len(h.g_loss) == 4
    assert set(h.snapshots) == {0, 20} and h.snapshots[20].shape == (4, 2)
    assert h.sampler is not g  # the EMA copy
    assert sample(h.sampler, 5, "cpu").shape == (5, 2)


def test_wgan_gp_training_runs_with_several_critic_steps():
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=16), MLPDiscriminator(hidden=16)
    cfg = GANTrainConfig(loss="wgan-gp", steps=5, batch_size=8, n_critic=3, log_every=1)
    h = train_gan(g, d, torch.randn(64, 2), cfg, progress=False)
    assert len(h.d_loss) == 5 and all(math.isfinite(v) for v in h.d_loss)


def _train_toy(seed: int, global_seed: int):
    """A few WGAN-GP steps on a 2-D toy; returns the trained generator's weights."""
    torch.manual_seed(0)  # the same initial weights in every call
    g, d = MLPGenerator(hidden=16), MLPDiscriminator(hidden=16)
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(global_seed)  # must not matter: train_gan draws from its own stream
    cfg = GANTrainConfig(loss="wgan-gp", steps=5, batch_size=8, n_critic=2, seed=seed)
    train_gan(g, d, data, cfg, progress=False)
    return [p.detach().clone() for p in g.parameters()]


def test_train_gan_randomness_comes_from_config_seed_alone():
    # Batch order, noise and penalty weights all come from a CPU stream seeded by
    # config.seed, so the global stream (which differs between CPU and CUDA) plays no part.
    first = _train_toy(seed=3, global_seed=0)
    again = _train_toy(seed=3, global_seed=12345)
    other = _train_toy(seed=4, global_seed=0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_gan_gives_the_same_weights_on_cpu_and_cuda():
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=16), MLPDiscriminator(hidden=16)
    g_cuda, d_cuda = copy.deepcopy(g).cuda(), copy.deepcopy(d).cuda()
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    cfg = GANTrainConfig(loss="wgan-gp", steps=5, batch_size=8, n_critic=2)
    train_gan(g, d, data, cfg, progress=False)
    train_gan(g_cuda, d_cuda, data.cuda(), cfg, progress=False)
    for a, b in zip(g.parameters(), g_cuda.parameters(), strict=True):
        assert torch.allclose(a, b.cpu(), atol=1e-4)  # kernels round differently, no more


def test_noise_can_come_from_a_cpu_generator():
    g = MLPGenerator(hidden=8)
    a = sample(g, 5, "cpu", rng=torch.Generator().manual_seed(7))
    b = sample(g, 5, "cpu", rng=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    real = torch.randn(4, 2)
    gp = [
        gradient_penalty(
            lambda x: (x**2).sum(1), real, -real, generator=torch.Generator().manual_seed(2)
        )
        for _ in range(2)
    ]
    assert gp[0].item() == gp[1].item()


def test_rng_must_be_a_torch_generator():
    g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8)
    opt = torch.optim.Adam(d.parameters())
    with pytest.raises(TypeError, match="torch.Generator or None"):
        discriminator_step(g, d, opt, torch.randn(4, 2), GANTrainConfig(), rng=0)
    with pytest.raises(TypeError, match="torch.Generator or None"):
        sample(g, 3, "cpu", rng="seed")


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GANTrainConfig(lr_g=math.nan).validate(), "lr_g must be a finite number > 0"),
        (lambda: GANTrainConfig(lr_d=math.inf).validate(), "lr_d must be a finite number > 0"),
        (lambda: GANTrainConfig(gp_weight=math.nan).validate(), "gp_weight must be a finite"),
        (lambda: GANTrainConfig(betas=(2, 3)).validate(), r"betas\[0\] .* in \[0, 1\)"),
        (lambda: GANTrainConfig(betas=(0.5,)).validate(), "betas must be a pair"),
        (lambda: GANTrainConfig(real_label=True).validate(), r"real_label .* \(0.5, 1\]"),
        (lambda: GANTrainConfig(ema_decay=math.nan).validate(), "ema_decay"),
        (lambda: discriminator_loss(torch.zeros(1), torch.zeros(1), True), r"\(0.5, 1\]"),
        (lambda: discriminator_loss(torch.zeros(1), torch.zeros(1), math.nan), r"\(0.5, 1\]"),
    ],
)
def test_non_finite_and_bool_numbers_are_rejected(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("weight", [math.nan, math.inf, True])
def test_gradient_penalty_weight_must_be_finite(weight):
    real = torch.randn(4, 2)
    with pytest.raises(ValueError, match="finite number >= 0"):
        gradient_penalty(lambda x: x.sum(1), real, real, weight=weight)


def test_training_steps_check_the_loss_and_batch_size():
    g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8)
    opt = torch.optim.Adam(g.parameters())
    bogus = GANTrainConfig(loss="bogus")
    with pytest.raises(ValueError, match="'non-saturating', 'wgan-gp'"):
        generator_step(g, d, opt, 4, bogus, "cpu")
    with pytest.raises(ValueError, match="'non-saturating', 'wgan-gp'"):
        discriminator_step(g, d, opt, torch.randn(4, 2), bogus)
    for batch_size in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            generator_step(g, d, opt, batch_size, GANTrainConfig(), "cpu")


@pytest.mark.parametrize("steps", [(999,), (-1,), (1.0,), (True,)])
def test_snapshot_steps_must_lie_in_the_run(steps):
    g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8)
    cfg = GANTrainConfig(steps=5, batch_size=8)
    with pytest.raises(ValueError, match=r"snapshot_steps must be ints in \[0, steps=5\]"):
        train_gan(g, d, torch.randn(16, 2), cfg, torch.randn(2, 2), steps, progress=False)


def test_model_inputs_are_checked_for_shape_and_dtype():
    with pytest.raises(ValueError, match=r"\(N, F\) with N, F >= 1"):
        MinibatchStdDev()(torch.randn(4))
    with pytest.raises(ValueError, match=r"\(N, F\) with N, F >= 1"):
        MinibatchStdDev()(torch.randn(0, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\)"):
        MLPDiscriminator(data_dim=2)(torch.randn(4, 3))
    with pytest.raises(TypeError, match="float32"):
        DCGANGenerator(latent_dim=8, width=8)(torch.randn(2, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        MLPGenerator()(torch.zeros(2, 2, dtype=torch.int64))


def test_sample_checks_the_device():
    with pytest.raises(ValueError, match="'cpu', 'mps', 'cuda' or 'cuda:N'"):
        sample(MLPGenerator(hidden=8), 2, "gpu")


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_d_of_g_runs_under_bf16_autocast_on_cpu(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8, minibatch_std=True)
    else:
        g, d = _pair()
    z = torch.randn(4, g.latent_dim)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = g(z)
        assert fake.dtype == torch.bfloat16  # so D sees an input that is not its float32
        scores = d(fake)
        with pytest.raises(TypeError, match="float32 .*any floating dtype under autocast"):
            d(fake.long())  # integers are never accepted, autocast or not
    assert scores.shape == (4,) and torch.isfinite(scores).all()
    with pytest.raises(TypeError, match="model's dtype torch.float32"):
        d(fake)  # outside autocast the dtype must match the model's


def test_minibatch_std_of_a_single_sample_is_zero_and_batch_size_1_trains():
    out = MinibatchStdDev()(torch.tensor([[3.0, -1.0, 2.0]]))
    assert torch.equal(out, torch.tensor([[3.0, -1.0, 2.0, 0.0]]))
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8, minibatch_std=True)
    history = train_gan(
        g, d, torch.randn(4, 2), GANTrainConfig(steps=2, batch_size=1), progress=False
    )
    assert all(math.isfinite(v) for v in history.d_loss + history.g_loss)


def _train_tiny(config, snapshot_steps):
    torch.manual_seed(0)
    g, d = MLPGenerator(hidden=8), MLPDiscriminator(hidden=8)
    data = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    z = torch.zeros(2, 2)
    return g, train_gan(g, d, data, config, z, snapshot_steps, progress=False)


def test_numpy_scalars_are_accepted_wherever_python_numbers_are():
    # Values exact in float16, so the two configs hold the same numbers; mixed NumPy and
    # Python betas would fail inside Adam if they were not converted.
    plain = dict(loss="wgan-gp", steps=2, batch_size=4, lr_g=2**-10, lr_d=2**-9,
                 betas=(0.5, 0.875), n_critic=2, gp_weight=5.0, real_label=0.75,
                 ema_decay=0.5, log_every=1, seed=3)  # fmt: skip
    numpy = dict(loss="wgan-gp", steps=np.int64(2), batch_size=np.int32(4),
                 lr_g=np.float32(2**-10), lr_d=np.float64(2**-9),
                 betas=(np.float32(0.5), 0.875), n_critic=np.uint8(2), gp_weight=np.float16(5),
                 real_label=np.float32(0.75), ema_decay=np.float64(0.5),
                 log_every=np.int16(1), seed=np.int64(3))  # fmt: skip
    config = GANTrainConfig(**numpy)
    config.validate()
    assert config == GANTrainConfig(**plain)
    assert type(config.steps) is int and type(config.seed) is int and type(config.lr_g) is float
    assert all(type(b) is float for b in config.betas)
    g_np, h_np = _train_tiny(config, (np.int64(0), np.int32(2)))
    g_py, h_py = _train_tiny(GANTrainConfig(**plain), (0, 2))
    assert h_np.d_loss == h_py.d_loss and sorted(h_np.snapshots) == [0, 2]
    for a, b in zip(g_np.parameters(), g_py.parameters(), strict=True):
        assert torch.equal(a, b)
    opt = torch.optim.Adam(g_np.parameters())
    assert math.isfinite(
        generator_step(g_np, MLPDiscriminator(hidden=8), opt, np.int64(3), config, "cpu")
    )
    assert sample(g_np, np.int64(3), "cpu", batch_size=np.int16(2)).shape == (3, 2)
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    assert discriminator_loss(r, f, np.float64(0.9)) == discriminator_loss(r, f, 0.9)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("seed", np.bool_(True), "seed must be a non-negative int"),
        ("seed", 2**63, "below 2\\*\\*63"),
        ("batch_size", np.bool_(True), "batch_size must be a positive int"),
        ("steps", np.float64(2.0), "steps must be a positive int"),
        ("lr_g", np.bool_(True), "lr_g must be a finite number > 0"),
        ("lr_d", np.float32("nan"), "lr_d must be a finite number > 0"),
        ("gp_weight", np.float64("inf"), "gp_weight must be a finite number >= 0"),
    ],
)
def test_numpy_bools_and_non_finite_numpy_numbers_are_rejected(field, value, match):
    with pytest.raises(ValueError, match=match):
        GANTrainConfig(**{field: value}).validate()
