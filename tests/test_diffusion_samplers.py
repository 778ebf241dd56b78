"""DDPM and DDIM samplers and classifier-free guidance, checked against diffusers."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from companion.diffusion.ddim import ddim_sample, ddim_sigma, ddim_steps, ddim_timesteps
from companion.diffusion.ddpm import (
    check_shape,
    ddpm_sample,
    ddpm_steps,
    p_mean_variance,
    renoise_step_mean,
    simple_loss,
)
from companion.diffusion.guidance import drop_labels, guided_eps_model
from companion.diffusion.schedules import NoiseSchedule, make_betas

SHAPE = (4, 1, 8, 8)


def toy_eps(x, t):
    """A fixed, smooth stand-in for a trained network: deterministic in (x, t)."""
    return torch.tanh(x) * (t.float() / 1000)[:, None, None, None]


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule.from_name("linear", 1000)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
@pytest.mark.parametrize("n", [10, 20, 50, 100, 1000])
def test_timestep_spacing_matches_diffusers(spacing, n):
    ref = DDIMScheduler(1000, timestep_spacing=spacing, steps_offset=0)
    ref.set_timesteps(n)
    assert ddim_timesteps(1000, n, spacing).tolist() == ref.timesteps.tolist()


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_matches_diffusers(schedule, eta):
    # The first of 50 trailing steps (index 999 to 979), from the same x_T. We re-derive eps
    # from the clamped x0_hat, which diffusers does with use_clipped_model_output=True.
    ref = DDIMScheduler(1000, timestep_spacing="trailing", clip_sample=True)
    ref.set_timesteps(50)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=g)
    t0 = int(ref.timesteps[0])
    eps = toy_eps(x, torch.full((SHAPE[0],), t0))
    ref_gen = torch.Generator().manual_seed(7)
    expected = ref.step(
        eps, t0, x, eta=eta, use_clipped_model_output=True, generator=ref_gen
    ).prev_sample
    ours = next(
        ddim_steps(
            toy_eps,
            schedule,
            SHAPE,
            50,
            eta,
            "trailing",
            torch.Generator().manual_seed(7),
            x_T=x,
            progress=False,
        )
    )
    # With eta > 0 both draw the same N(0, I) noise from a generator seeded 7.
    torch.testing.assert_close(ours[1], expected, atol=1e-5, rtol=1e-4)


def test_ddpm_step_matches_diffusers(schedule):
    ref = DDPMScheduler(1000, clip_sample=True, variance_type="fixed_small")
    ref.set_timesteps(1000)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(SHAPE, generator=g)
    for i in (999, 500, 3, 0):
        t = torch.full((SHAPE[0],), i)
        eps = toy_eps(x, t)
        z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3))
        expected = ref.step(eps, i, x, generator=torch.Generator().manual_seed(3)).prev_sample
        mean, log_var, _ = p_mean_variance(schedule, x, t, eps)
        ours = mean + (0.5 * log_var).exp() * z if i > 0 else mean
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


def test_ddim_with_eta_zero_is_deterministic(schedule):
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    a = ddim_sample(
        toy_eps,
        schedule,
        SHAPE,
        20,
        0.0,
        x_T=x_T,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    b = ddim_sample(
        toy_eps,
        schedule,
        SHAPE,
        20,
        0.0,
        x_T=x_T,
        generator=torch.Generator().manual_seed(2),
        progress=False,
    )
    assert torch.equal(a, b)
    c = ddim_sample(
        toy_eps,
        schedule,
        SHAPE,
        20,
        1.0,
        x_T=x_T,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    assert not torch.equal(a, c)


def test_ddim_eta_one_over_every_step_is_the_posterior_variance():
    # In float64: beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t), Ho et al. eq. 7.
    betas = make_betas("linear", 1000)
    abar = torch.cumprod(1 - betas, 0)
    sigma2 = ddim_sigma(abar[1:], abar[:-1], 1.0) ** 2
    beta_tilde = betas[1:] * (1 - abar[:-1]) / (1 - abar[1:])
    torch.testing.assert_close(sigma2, beta_tilde, rtol=1e-10, atol=0)


def test_ddpm_yields_every_step_and_ends_in_range(schedule):
    short = NoiseSchedule.from_name("linear", 30)
    steps = list(
        ddpm_steps(toy_eps, short, SHAPE, torch.Generator().manual_seed(0), progress=False)
    )
    assert [s[0] for s in steps] == list(range(29, -1, -1))
    final = steps[-1][1]
    assert final.shape == SHAPE and final.abs().max() <= 1.0


def test_renoise_step_mean_differs_from_the_posterior_mean(schedule):
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    t = torch.full((SHAPE[0],), 10)
    right, _, _ = p_mean_variance(schedule, x, t, eps, clip_x0=False)
    wrong = renoise_step_mean(schedule, x, t, eps)
    assert (right - wrong).abs().mean() > 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eta": -0.1}, r"eta must be a number in \[0, 1\]"),
        ({"spacing": "uniform"}, "accepted: 'linspace', 'leading', 'trailing'"),
        ({"num_steps": 0}, r"num_steps must be an int in \[1, 1000\]"),
        ({"shape": (4, 8, 8)}, r"shape must be \(N, C, H, W\)"),
    ],
)
def test_bad_sampler_arguments_say_what_is_accepted(schedule, kwargs, message):
    args = {"shape": SHAPE, "num_steps": 10, "eta": 0.0, "spacing": "trailing"} | kwargs
    with pytest.raises(ValueError, match=message):
        ddim_sample(toy_eps, schedule, progress=False, **args)


def test_guidance_scale_zero_and_one_recover_the_two_predictions():
    def model(x, t, y):
        return x * 0 + y.float()[:, None, None, None]  # eps = the label, to read it back

    x, t, y = torch.zeros(SHAPE), torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 4])
    assert torch.all(guided_eps_model(model, y, 0.0, null_label=10)(x, t) == 10)
    assert torch.equal(guided_eps_model(model, y, 1.0, null_label=10)(x, t)[:, 0, 0, 0], y.float())
    # s = 3: 10 + 3 (y - 10)
    out = guided_eps_model(model, y, 3.0, null_label=10)(x, t)[:, 0, 0, 0]
    assert torch.equal(out, 10 + 3 * (y.float() - 10))
    with pytest.raises(ValueError, match=">= 0"):
        guided_eps_model(model, y, -1.0, null_label=10)


def test_drop_labels_drops_about_the_requested_share():
    y = torch.zeros(10_000, dtype=torch.long)
    dropped = drop_labels(y, 0.1, 10, torch.Generator().manual_seed(0))
    assert set(dropped.unique().tolist()) == {0, 10}
    assert (dropped == 10).float().mean().item() == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        drop_labels(y, 1.5, 10)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_steps": True}, ValueError, r"num_steps must be an int in \[1, 1000\]"),
        ({"eta": float("nan")}, ValueError, r"eta must be a number in \[0, 1\]"),
        ({"eta": True}, ValueError, r"eta must be a number in \[0, 1\]"),
        ({"shape": (True, 1, 8, 8)}, ValueError, "positive ints"),
        ({"shape": 4}, TypeError, r"shape must be a tuple \(N, C, H, W\)"),
        ({"x_T": [0.0]}, TypeError, "x_T must be a floating-point torch.Tensor"),
        ({"generator": 0}, TypeError, "CPU torch.Generator"),
    ],
)
def test_more_bad_sampler_arguments(schedule, kwargs, error, message):
    args = {"shape": SHAPE, "num_steps": 10} | kwargs
    with pytest.raises(error, match=message):
        ddim_sample(toy_eps, schedule, progress=False, **args)


def test_samplers_reject_a_noise_prediction_of_the_wrong_shape(schedule):
    def flat(x, t):
        return torch.zeros(1)

    with pytest.raises(ValueError, match=r"shape of xt \(4, 1, 8, 8\), got \(1,\)"):
        ddpm_sample(flat, schedule, SHAPE, progress=False)
    with pytest.raises(ValueError, match=r"shape of xt \(4, 1, 8, 8\), got \(1,\)"):
        ddim_sample(flat, schedule, SHAPE, 5, progress=False)
    with pytest.raises(TypeError, match="must be callable"):
        next(ddpm_steps(None, schedule, SHAPE, progress=False))


def test_simple_loss_and_the_step_means_reject_a_broadcast_eps(schedule):
    x, t, eps = torch.zeros(SHAPE), torch.full((4,), 10), torch.zeros(4, 1, 1, 1)
    with pytest.raises(ValueError, match=r"shape of x_t \(4, 1, 8, 8\), got \(4, 1, 1, 1\)"):
        simple_loss(lambda x, t: torch.zeros(x.shape[0], 1, 1, 1), schedule, x)
    with pytest.raises(ValueError, match=r"got \(4, 1, 1, 1\)"):
        renoise_step_mean(schedule, x, t, eps)
    with pytest.raises(ValueError, match=r"got \(4, 1, 1, 1\)"):
        p_mean_variance(schedule, x, t, eps)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10, True), r"num_steps must be an int in \[1, 10\]"),
        ((10.5, 3, "linspace"), "num_train_steps .* must be an int >= 1"),
        ((True, 1), "num_train_steps .* must be an int >= 1"),
    ],
)
def test_ddim_timesteps_need_ints(args, message):
    with pytest.raises(ValueError, match=message):
        ddim_timesteps(*args)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_ddim_timesteps_are_int64(spacing):
    assert ddim_timesteps(1000, 20, spacing).dtype == torch.int64


@pytest.mark.parametrize(
    "eta",
    [float("nan"), 5, -0.5, True, "0", np.bool_(False), np.float32("nan"), torch.tensor(2.0)],
)
def test_ddim_sigma_checks_eta(eta):
    with pytest.raises(ValueError, match=r"eta must be a number in \[0, 1\]"):
        ddim_sigma(torch.tensor(0.5), torch.tensor(0.6), eta)


def test_check_shape_rejects_bools():
    with pytest.raises(ValueError, match="positive ints"):
        check_shape((True, 1, 8, 8))


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -1.0, True, "2"])
def test_guidance_scale_must_be_a_finite_number(scale):
    with pytest.raises(ValueError, match="finite number >= 0"):
        guided_eps_model(toy_eps, torch.tensor([1]), scale, null_label=10)


def test_guidance_and_label_dropout_check_their_labels():
    with pytest.raises(TypeError, match="int32 or int64"):
        guided_eps_model(toy_eps, torch.tensor([1.0]), 2.0, null_label=10)
    with pytest.raises(ValueError, match="null_label must be an int >= 0"):
        guided_eps_model(toy_eps, torch.tensor([1]), 2.0, null_label=True)
    with pytest.raises(ValueError, match=r"p_uncond must be a number in \[0, 1\]"):
        drop_labels(torch.tensor([1]), float("nan"), 10)


def test_ddim_accepts_numpy_scalars_and_0d_tensors(schedule):
    a_t, a_s = torch.tensor(0.5), torch.tensor(0.6)
    ref = ddim_sigma(a_t, a_s, 0.5)
    for eta in (np.float32(0.5), np.float64(0.5), torch.tensor(0.5)):
        assert torch.equal(ddim_sigma(a_t, a_s, eta), ref)
    assert torch.equal(
        ddim_timesteps(num_train_steps=np.int64(1000), num_steps=np.int64(20)),
        ddim_timesteps(1000, 20),
    )
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0))
    runs = [
        ddim_sample(
            toy_eps,
            schedule,
            SHAPE,
            num_steps=n,
            eta=eta,
            generator=torch.Generator().manual_seed(1),
            x_T=x_T,
            progress=False,
        )
        for n, eta in ((np.int64(5), np.float32(0.5)), (5, torch.tensor(0.5)), (5, 0.5))
    ]
    assert torch.equal(runs[0], runs[2]) and torch.equal(runs[1], runs[2])
    assert check_shape((np.int64(4), 1, 8, 8)) == SHAPE


@pytest.mark.parametrize("null", [np.int64(10), torch.tensor(10), torch.tensor([10])[0]])
def test_guidance_accepts_numpy_and_0d_tensor_null_labels(null):
    def model(x, t, y):
        return x * 0 + y.float()[:, None, None, None]

    x, t, y = torch.zeros(SHAPE), torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 4])
    ref = guided_eps_model(model, y, 3.0, null_label=10)(x, t)
    assert torch.equal(guided_eps_model(model, y, np.float32(3.0), null_label=null)(x, t), ref)
    dropped = drop_labels(y, np.float32(0.5), null, torch.Generator().manual_seed(0))
    assert torch.equal(dropped, drop_labels(y, 0.5, 10, torch.Generator().manual_seed(0)))


def test_guidance_with_the_models_own_null_label():
    from companion.diffusion.unet import TinyUNet, UNetConfig

    torch.manual_seed(0)
    model = TinyUNet(UNetConfig(channels=(8, 16), num_classes=10))
    x, t, y = torch.zeros(SHAPE), torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 4])
    null = model.null_labels(1, x.device)[0]  # a 0-d int64 tensor
    assert torch.equal(
        guided_eps_model(model, y, 2.0, null)(x, t), guided_eps_model(model, y, 2.0, 10)(x, t)
    )


@pytest.mark.parametrize(
    "null", [np.bool_(True), torch.tensor(True), torch.tensor(10.0), torch.tensor([10]), -1]
)
def test_null_label_still_rejects_bools_floats_and_vectors(null):
    with pytest.raises(ValueError, match="null_label must be an int >= 0"):
        guided_eps_model(toy_eps, torch.tensor([1]), 2.0, null_label=null)
