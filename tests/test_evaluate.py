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


@pytest.mark.parametrize(
    "cov, message",
    [
        (-10 * np.eye(2), "positive semi-definite"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (np.array([[np.nan, 0], [0, 1]]), "NaN or infinite"),
    ],
)
def test_frechet_distance_refuses_matrices_that_are_not_covariances(cov, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(np.zeros(2), cov, np.zeros(2), np.eye(2))


def test_frechet_distance_refuses_complex_and_scalar_input():
    with pytest.raises(TypeError, match="real numbers"):
        frechet_distance(np.zeros(1, complex), np.eye(1), np.zeros(1), np.eye(1))
    with pytest.raises(ValueError, match=r"shape \(D,\)"):
        frechet_distance(np.float64(0), np.eye(1), 0.0, np.eye(1))


def test_gaussian_stats_accepts_torch_and_refuses_nan():
    mu, cov = gaussian_stats(torch.ones(5, 2, requires_grad=True))
    assert mu.tolist() == [1.0, 1.0] and np.allclose(cov, 0)
    with pytest.raises(ValueError, match="NaN"):
        gaussian_stats(np.array([[np.nan, 1.0], [0.0, 1.0]]))


def test_float64_samples_are_scored_like_float32(evaluator):
    x = evaluator.test_images
    assert np.allclose(evaluator.features(x.double()), evaluator.features(x))


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: DigitsEvaluator(None), TypeError),
        (lambda: DigitsEvaluator.train("cpu", {"epochs": 1}), TypeError),
        (lambda: ClassifierConfig(epochs=1.5), ValueError),
        (lambda: ClassifierConfig(lr=0), ValueError),
        (lambda: ClassifierConfig(lr=float("inf")), ValueError),
        (lambda: ClassifierConfig(lr=float("nan")), ValueError),
        (lambda: ClassifierConfig(lr=True), ValueError),
        (lambda: ClassifierConfig(weight_decay=float("inf")), ValueError),
        (lambda: ClassifierConfig(weight_decay=False), ValueError),
    ],
)
def test_bad_construction_arguments_say_what_is_accepted(make, error):
    with pytest.raises(error, match="must be"):
        make()


def test_bad_method_arguments_say_what_is_accepted(evaluator):
    x, y = load_digits("test")
    with pytest.raises(TypeError, match="integer torch.Tensor"):
        evaluator.accuracy(x, y.numpy())
    with pytest.raises(ValueError, match="digits 0-9"):
        evaluator.accuracy(x, torch.full_like(y, 99))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        evaluator.features(x, batch_size=0)
    with pytest.raises(ValueError, match="min_share"):
        evaluator.coverage(x, min_share="0.1")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        evaluator.ceiling(seed=-1)


def test_accuracy_rejects_bool_labels(evaluator):
    x, _ = load_digits("test")
    with pytest.raises(TypeError, match=r"integer torch.Tensor of digits 0-9 \(not bool\)"):
        evaluator.accuracy(x[:2], torch.tensor([True, False]))


def test_numpy_scalars_are_accepted_wherever_python_numbers_are(evaluator):
    config = ClassifierConfig(width=np.int64(8), epochs=np.int32(1), lr=np.float32(2**-9),
                              weight_decay=np.float64(1e-4), seed=np.int64(2))  # fmt: skip
    assert config == ClassifierConfig(width=8, epochs=1, lr=2**-9, weight_decay=1e-4, seed=2)
    assert type(config.width) is int and type(config.lr) is float and type(config.seed) is int
    assert evaluator.ceiling(seed=np.int64(1)) == evaluator.ceiling(seed=1)
    assert evaluator.floor(seeds=np.int64(2)).values == evaluator.floor(seeds=2).values
    x, _ = load_digits("test")
    assert evaluator.coverage(x, min_share=np.float32(0.125)) == evaluator.coverage(x, 0.125)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ClassifierConfig(lr=np.bool_(True)),
        lambda: ClassifierConfig(lr=np.float32("nan")),
        lambda: ClassifierConfig(weight_decay=np.float64("inf")),
        lambda: ClassifierConfig(seed=np.bool_(False)),
        lambda: ClassifierConfig(seed=2**63),
        lambda: ClassifierConfig(epochs=np.float64(3.0)),
    ],
)
def test_numpy_bools_and_non_finite_numpy_numbers_are_rejected(make):
    with pytest.raises(
        ValueError, match="must be a (finite number|non-negative int|positive int)"
    ):
        make()


def test_evaluator_seeds_reject_numpy_bools(evaluator):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        evaluator.ceiling(seed=np.bool_(False))
    with pytest.raises(ValueError, match="seeds must be an int >= 2"):
        evaluator.floor(seeds=np.float64(3.0))
    with pytest.raises(ValueError, match=r"min_share must lie in \(0, 1\)"):
        evaluator.coverage(load_digits("test")[0], min_share=np.float64("nan"))
