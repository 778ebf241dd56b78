"""Unit tests for companion.data.toy2d: the ring of Gaussians and its mode coverage."""

import math

import numpy as np
import pytest
import torch

from companion.data.toy2d import GaussianRing


def test_centres_lie_on_the_circle_evenly():
    ring = GaussianRing(n_modes=8, radius=2.0)
    c = ring.centres()
    assert c.shape == (8, 2)
    assert torch.allclose(c.norm(dim=1), torch.full((8,), 2.0))
    assert torch.allclose(c[2], torch.tensor([0.0, 2.0]), atol=1e-6)  # 90 degrees


def test_samples_are_reproducible_and_near_their_modes():
    ring = GaussianRing()
    x, m = ring.sample(4000, seed=1)
    x2, _ = ring.sample(4000, seed=1)
    assert torch.equal(x, x2)
    dist = (x - ring.centres()[m]).norm(dim=1)
    # |noise| / std is chi with 2 degrees of freedom: mean sqrt(pi/2) = 1.2533.
    assert (dist / ring.std).mean().item() == pytest.approx(math.sqrt(math.pi / 2), rel=0.03)


def test_true_samples_cover_every_mode_with_high_quality():
    ring = GaussianRing()
    report = ring.coverage(ring.sample(8000)[0])
    assert report.covered == 8
    # P(chi_2 <= 3) = 1 - exp(-9/2) = 0.9889
    assert report.high_quality_share == pytest.approx(1 - math.exp(-4.5), abs=0.005)


def test_collapsed_samples_cover_one_mode():
    ring = GaussianRing()
    x = ring.centres()[3].expand(100, 2).clone()
    report = ring.coverage(x)
    assert report.covered == 1 and report.counts[3] == 100


def test_min_share_threshold_and_far_points():
    ring = GaussianRing()
    c = ring.centres()
    x = torch.cat([c[0].expand(99, 2), c[1][None], torch.zeros(100, 2)])  # 200 points
    report = ring.coverage(x, min_share=0.01)  # needs 2 points per mode
    assert report.counts[0] == 99 and report.counts[1] == 1
    assert report.covered == 1
    assert report.high_quality_share == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: GaussianRing(n_modes=1), "n_modes"),
        (lambda: GaussianRing(std=-1.0), "std"),
        (lambda: GaussianRing().sample(-3), "positive int"),
        (lambda: GaussianRing().coverage(torch.zeros(5, 3)), r"\(N, 2\)"),
        (lambda: GaussianRing().coverage(torch.zeros(5, 2), min_share=2.0), r"\(0, 1\)"),
    ],
)
def test_invalid_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: GaussianRing(radius=math.inf), "radius must be a finite number > 0"),
        (lambda: GaussianRing(radius=math.nan), "radius must be a finite number > 0"),
        (lambda: GaussianRing(radius=True), "radius must be a finite number > 0"),
        (lambda: GaussianRing(std=math.inf), "std must be a finite number > 0"),
        (lambda: GaussianRing().sample(5, seed=1.5), "seed must be a non-negative int"),
        (lambda: GaussianRing().sample(5, seed=-1), "seed must be a non-negative int"),
        (lambda: GaussianRing().sample(5, seed=True), "seed must be a non-negative int"),
        (lambda: GaussianRing().coverage(torch.full((3, 2), math.nan)), "NaN or infinite"),
        (lambda: GaussianRing().coverage(torch.zeros(5, 2), min_share=True), r"\(0, 1\)"),
        (lambda: GaussianRing().coverage(torch.zeros(5, 2), n_std=math.inf), "n_std"),
    ],
)
def test_non_finite_and_bool_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_coverage_rejects_bool_samples():
    with pytest.raises(TypeError, match="real numbers"):
        GaussianRing().coverage(torch.zeros(5, 2, dtype=torch.bool))


def test_numpy_scalars_are_accepted_wherever_python_numbers_are():
    ring = GaussianRing(n_modes=np.int64(8), radius=np.float32(2.0), std=np.float64(0.05))
    assert ring == GaussianRing() and type(ring.n_modes) is int and type(ring.radius) is float
    points, modes = ring.sample(np.int32(50), seed=np.int64(1))
    ref_points, ref_modes = GaussianRing().sample(50, seed=1)
    assert torch.equal(points, ref_points) and torch.equal(modes, ref_modes)
    report = ring.coverage(points, min_share=np.float32(0.125), n_std=np.float64(3.0))
    assert report == GaussianRing().coverage(ref_points, min_share=0.125, n_std=3.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: GaussianRing(n_modes=np.bool_(True)), "n_modes must be an int >= 2"),
        (lambda: GaussianRing(radius=np.bool_(True)), "radius must be a finite number > 0"),
        (lambda: GaussianRing(std=np.float32("nan")), "std must be a finite number > 0"),
        (lambda: GaussianRing().sample(5, seed=np.bool_(False)), "seed must be a non-negative"),
        (lambda: GaussianRing().sample(5, seed=np.float64(1.0)), "seed must be a non-negative"),
        (lambda: GaussianRing().sample(np.bool_(True)), "n must be a positive int"),
        (lambda: GaussianRing().coverage(torch.zeros(5, 2), n_std=np.float64("inf")), "n_std"),
    ],
)
def test_numpy_bools_and_non_finite_numpy_numbers_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
