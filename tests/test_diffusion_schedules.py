"""Schedules, the forward process and the posterior (companion.diffusion.schedules)."""

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from companion.diffusion.schedules import NoiseSchedule, make_betas


def test_linear_endpoints_follow_ho_et_al():
    # Golden values from the derivation: alpha_bar_1 = 1 - beta_1 = 0.9999 and
    # alpha_bar_T = prod_t (1 - beta_t) = 4.0358e-5 (float64, evaluated by hand in sympy).
    s = NoiseSchedule.from_name("linear", 1000, 1e-4, 0.02)
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    assert s.alphas_cumprod[0].item() == pytest.approx(0.9999, abs=1e-7)
    assert s.alphas_cumprod[-1].item() == pytest.approx(4.0358e-5, rel=1e-4)
    assert s.betas.dtype == torch.float32


@pytest.mark.parametrize(
    ("ours", "theirs", "start", "end"),
    [
        ("linear", "linear", 1e-4, 0.02),
        ("scaled_linear", "scaled_linear", 0.00085, 0.012),
        ("cosine", "squaredcos_cap_v2", 1e-4, 0.02),
    ],
)
def test_alphas_cumprod_match_diffusers(ours, theirs, start, end):
    # diffusers computes in float32, we in float64: agree to float32 round-off.
    ref = DDPMScheduler(1000, start, end, beta_schedule=theirs).alphas_cumprod
    s = NoiseSchedule.from_name(ours, 1000, start, end)
    torch.testing.assert_close(s.alphas_cumprod, ref, rtol=2e-5, atol=1e-7)


def test_edges_of_the_tables():
    s = NoiseSchedule.from_name("linear", 1000)
    assert s.alphas_cumprod_prev[0].item() == 1.0
    assert s.posterior_variance[0].item() == 0.0
    assert torch.isfinite(s.posterior_log_variance_clipped).all()
    assert s.posterior_log_variance_clipped[0] == s.posterior_log_variance_clipped[1]
    cos = NoiseSchedule.from_name("cosine", 1000)
    assert cos.alphas_cumprod[0].item() < 1.0
    assert cos.betas.max().item() == pytest.approx(0.999)  # the clip binds at the end


def test_cosine_alpha_bar_is_the_closed_form_before_the_clip():
    t = torch.arange(1, 1001, dtype=torch.float64)

    def f(u):
        return torch.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    closed = f(t) / f(torch.zeros(1, dtype=torch.float64))
    ours = NoiseSchedule.from_name("cosine", 1000).alphas_cumprod.double()
    torch.testing.assert_close(ours[:990], closed[:990], rtol=1e-5, atol=1e-7)


def test_forward_noising_keeps_unit_variance_at_every_t():
    s = NoiseSchedule.from_name("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(20_000, 1, 1, 1, generator=g)
    torch.testing.assert_close(
        s.alphas_cumprod + s.sqrt_one_minus_alphas_cumprod**2, torch.ones(1000), atol=1e-6, rtol=0
    )
    for i in range(0, 1000, 37):
        t = torch.full((x0.shape[0],), i)
        xt = s.q_sample(x0, t, torch.randn(x0.shape, generator=g))
        assert xt.var().item() == pytest.approx(1.0, abs=0.05)


def test_posterior_matches_product_of_gaussians():
    # Completing the square independently: precision = 1/(1 - abar_prev) + alpha/beta.
    s = NoiseSchedule.from_name("linear", 1000)
    b = make_betas("linear", 1000).double()
    abar = torch.cumprod(1 - b, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    t = torch.tensor([1, 10, 500, 999])
    x0, xt = torch.tensor([0.3, -0.7, 0.1, 0.9]), torch.tensor([1.2, 0.4, -1.5, 0.2])
    prec = 1 / (1 - abar_prev[t]) + (1 - b[t]) / b[t]
    mean = (abar_prev[t].sqrt() * x0 / (1 - abar_prev[t]) + (1 - b[t]).sqrt() * xt / b[t]) / prec
    got_mean, got_var, _ = s.q_posterior(x0[:, None], xt[:, None], t)
    torch.testing.assert_close(got_mean[:, 0].double(), mean, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got_var[:, 0].double(), 1 / prec, rtol=1e-4, atol=1e-10)


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule.from_name("cosine", 1000)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.rand(8, 1, 8, 8, generator=g) * 2 - 1, torch.randn(8, 1, 8, 8, generator=g)
    t = torch.tensor([0, 1, 5, 50, 200, 400, 600, 800])
    torch.testing.assert_close(s.predict_x0(s.q_sample(x0, t, eps), t, eps), x0, atol=1e-3, rtol=0)


def test_timesteps_drawn_lie_in_range():
    s = NoiseSchedule.from_name("linear", 50)
    t = s.sample_timesteps(10_000, torch.Generator().manual_seed(0))
    assert t.min().item() == 0 and t.max().item() == 49


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "linear", "num_steps": 0}, ">= 1"),
        ({"name": "quadratic"}, "accepted: 'linear', 'scaled_linear', 'cosine'"),
        ({"name": "linear", "beta_start": 0.0}, r"\(0, 1\)"),
        ({"name": "scaled_linear", "beta_end": 1.5}, r"\(0, 1\)"),
    ],
)
def test_bad_schedule_arguments_say_what_is_accepted(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_betas(**kwargs)


def test_betas_outside_unit_interval_are_rejected():
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        NoiseSchedule(torch.tensor([0.1, 1.0]))
    with pytest.raises(ValueError, match="timesteps must lie"):
        NoiseSchedule.from_name("linear", 10).q_sample(torch.zeros(2, 1), torch.tensor([0, 10]))


@pytest.mark.parametrize(
    ("device", "error", "message"),
    [("gpu", ValueError, "accepted: 'cpu', 'mps', 'cuda'"), (0, TypeError, "str or torch.device")],
)
def test_schedule_device_names_the_accepted_devices(device, error, message):
    with pytest.raises(error, match=message):
        NoiseSchedule([0.1], device=device)
    with pytest.raises(error, match=message):
        NoiseSchedule.from_name("linear", 10).to(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_schedule_on_a_missing_device_says_so():
    with pytest.raises(RuntimeError, match="not available here"):
        NoiseSchedule([0.1], device="cuda")


@pytest.mark.parametrize("n", [-1, 2.5, True, np.bool_(True), np.float64(2.0)])
def test_sample_timesteps_needs_a_count(n):
    with pytest.raises(ValueError, match="must be an int >= 0"):
        NoiseSchedule.from_name("linear", 10).sample_timesteps(n)


def test_sample_timesteps_rejects_a_non_cpu_generator():
    with pytest.raises(TypeError, match="CPU torch.Generator"):
        NoiseSchedule.from_name("linear", 10).sample_timesteps(2, generator=0)


def test_q_sample_needs_a_batch():
    s = NoiseSchedule.from_name("linear", 10)
    with pytest.raises(ValueError, match=r"\(N, \.\.\.\)"):
        s.q_sample(torch.tensor(1.0), torch.tensor([1]))
    with pytest.raises(TypeError, match="floating-point"):
        s.q_sample(torch.zeros(2, 3, dtype=torch.long), torch.tensor([1, 2]))


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (2, 1, 1, 1), (2, 1, 8)])
def test_predict_x0_never_broadcasts_eps(shape):
    s = NoiseSchedule.from_name("linear", 10)
    xt, t = torch.zeros(2, 1, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"shape of xt \(2, 1, 8, 8\), got"):
        s.predict_x0(xt, t, torch.zeros(shape))


def test_make_betas_rejects_non_numbers():
    with pytest.raises(TypeError, match=r"numbers in \(0, 1\)"):
        make_betas("linear", 10, "a")
    with pytest.raises(TypeError, match=r"numbers in \(0, 1\)"):
        make_betas("linear", 10, True)
    with pytest.raises(ValueError, match=r"lie in \(0, 1\)"):
        make_betas("linear", 10, 1e-4, math.nan)
    with pytest.raises(TypeError, match=r"numbers in \(0, 1\)"):
        make_betas("linear", 10, np.bool_(True))


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "cosine"])
def test_make_betas_accepts_numpy_scalars(name):
    start, end = np.float32(1e-4), np.float32(0.02)
    assert torch.equal(
        make_betas(name, np.int64(10), start, end), make_betas(name, 10, float(start), float(end))
    )


def test_sample_timesteps_accepts_a_numpy_count():
    s = NoiseSchedule.from_name("linear", 10)
    a = s.sample_timesteps(np.int64(5), torch.Generator().manual_seed(0))
    assert torch.equal(a, s.sample_timesteps(5, torch.Generator().manual_seed(0)))
