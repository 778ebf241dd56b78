import numpy as np
import pytest
import torch
from scipy import linalg

from companion.data import N_TEST, load_digits
from companion.evaluate import (
    ClassifierConfig,
    DigitsEvaluator,
    frechet_distance,
    gaussian_stats,
)


@pytest.fixture(scope="module")
def evaluator():
    return DigitsEvaluator.train("cpu", ClassifierConfig(epochs=30), progress=False)


def test_frechet_distance_of_1d_gaussians_is_the_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    d = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert d == pytest.approx((1 + 2) ** 2 + (2 - 3) ** 2, rel=1e-12)


def test_frechet_distance_matches_scipy_sqrtm_formula():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    (m1, c1), (m2, c2) = gaussian_stats(a), gaussian_stats(b)
    # The textbook form with the non-symmetric square root (Dowson and Landau, 1982).
    expected = ((m1 - m2) ** 2).sum() + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_distribution_to_itself_is_zero():
    c = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(np.zeros(2), c, np.zeros(2), c) == pytest.approx(0, abs=1e-10)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_classifier_reaches_97_percent_on_the_held_out_split(evaluator):
    assert evaluator.test_accuracy >= 0.97


def test_floor_is_far_below_the_noise_ceiling(evaluator):
    floor = evaluator.floor(seeds=3)
    assert len(floor.values) == 3 and floor.std > 0
    assert 10 * floor.mean < evaluator.ceiling()


def test_fdd_demands_exactly_as_many_samples_as_the_test_split(evaluator):
    x, _ = load_digits("train")
    with pytest.raises(ValueError, match=f"exactly {N_TEST} samples"):
        evaluator.fdd(x[:100])


def test_fdd_rejects_out_of_range_samples_instead_of_clipping(evaluator):
    x, _ = load_digits("train")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        evaluator.fdd(x[:N_TEST] * 1.1)


def test_coverage_counts_classes_with_a_minimum_share(evaluator):
    x, y = load_digits("test")
    report = evaluator.coverage(x)
    assert report.covered == 10 and sum(report.counts) == N_TEST
    only_threes = x[y == 3]
    assert evaluator.coverage(only_threes, min_share=0.1).covered == 1


@pytest.mark.parametrize("share", [0, 1, -0.1, 2])
def test_coverage_share_must_lie_in_the_open_unit_interval(evaluator, share):
    with pytest.raises(ValueError, match=r"min_share must lie in \(0, 1\)"):
        evaluator.coverage(load_digits("test")[0], min_share=share)


def test_memorisation_flags_training_images_and_passes_held_out_ones(evaluator):
    train, _ = load_digits("train")
    copied = evaluator.memorisation(train[:N_TEST])
    assert copied.exact_copies == N_TEST and copied.looks_memorised
    fresh = evaluator.memorisation(evaluator.test_images)
    assert fresh.exact_copies == 0 and not fresh.looks_memorised
    assert fresh.share_below_test_p5 == pytest.approx(0.05, abs=0.01)


def test_accuracy_checks_label_shape(evaluator):
    x, y = load_digits("test")
    with pytest.raises(ValueError, match="labels must have shape"):
        evaluator.accuracy(x, y[:-1])


def test_seeds_must_allow_a_spread(evaluator):
    with pytest.raises(ValueError, match="seeds must be an int >= 2"):
        evaluator.floor(seeds=1)


def test_predictions_come_back_on_cpu_as_int64(evaluator):
    pred = evaluator.predict(torch.zeros(2, 1, 8, 8))
    assert pred.dtype == torch.int64 and pred.device.type == "cpu"
