import pytest
import torch

from companion.data import N_TEST, check_images, load_digits


def test_split_sizes_add_up_to_the_1797_bundled_images():
    (xtr, ytr), (xte, yte), (xall, _) = (load_digits(s) for s in ("train", "test", "all"))
    assert xtr.shape == (1347, 1, 8, 8) and ytr.shape == (1347,)
    assert xte.shape == (N_TEST, 1, 8, 8) and yte.shape == (N_TEST,)
    assert xall.shape[0] == 1797 == xtr.shape[0] + xte.shape[0]


def test_pixels_are_scaled_to_minus_one_one_and_hit_both_ends():
    x, _ = load_digits("all")
    assert x.dtype == torch.float32
    assert x.min().item() == -1.0 and x.max().item() == 1.0


def test_split_is_fixed_and_stratified():
    a, ya = load_digits("test")
    b, _ = load_digits("test")
    assert torch.equal(a, b)
    # Stratified: each class holds its overall share of the 450 test images, to within one.
    overall = torch.bincount(load_digits("all")[1], minlength=10).double()
    expected = overall / overall.sum() * N_TEST
    counts = torch.bincount(ya, minlength=10).double()
    assert (counts - expected).abs().max() < 1


def test_train_and_test_splits_share_no_image():
    xtr, _ = load_digits("train")
    xte, _ = load_digits("test")
    # Compare rows as bytes: the 1,797 bundled images are pairwise distinct.
    train_rows = {bytes(r.numpy().tobytes()) for r in xtr.flatten(1)}
    duplicated = sum(bytes(r.numpy().tobytes()) in train_rows for r in xte.flatten(1))
    assert duplicated == 0


def test_returned_tensors_are_copies_the_caller_may_modify():
    x, _ = load_digits("train")
    x.zero_()
    assert load_digits("train")[0].abs().sum() > 0


def test_unknown_split_names_the_accepted_values():
    with pytest.raises(ValueError, match="accepted: 'train', 'test', 'all'"):
        load_digits("validation")


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (torch.zeros(3, 8, 8), ValueError, r"shape \(N, 1, 8, 8\)"),
        (torch.zeros(3, 1, 16, 16), ValueError, r"shape \(N, 1, 8, 8\)"),
        (torch.zeros(0, 1, 8, 8), ValueError, r"N >= 1"),
        (torch.full((2, 1, 8, 8), 1.5), ValueError, r"\[-1, 1\]"),
        (torch.full((2, 1, 8, 8), float("nan")), ValueError, "NaN"),
        (torch.zeros(2, 1, 8, 8, dtype=torch.int64), TypeError, "floating dtype"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_check_images_rejects_bad_input_with_a_clear_message(bad, error, message):
    with pytest.raises(error, match=message):
        check_images(bad)


def test_device_argument_is_validated():
    with pytest.raises(ValueError, match="accepted: 'cpu'"):
        load_digits("train", device="gpu")


@pytest.mark.parametrize("atol", [-1, 1, float("inf"), "0"])
def test_check_images_tolerance_must_be_small_and_non_negative(atol):
    with pytest.raises(ValueError, match=r"atol must be a number in \[0, 1\)"):
        check_images(torch.zeros(1, 1, 8, 8), atol=atol)
