import numpy as np
import pytest
import torch

from companion.device import describe_device, pick_device, seed_everything


def test_cpu_is_always_available(monkeypatch):
    monkeypatch.delenv("COMPANION_DEVICE", raising=False)
    assert pick_device("cpu") == torch.device("cpu")


def test_environment_variable_overrides_the_automatic_choice(monkeypatch):
    monkeypatch.setenv("COMPANION_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_automatic_choice_prefers_cuda_when_present(monkeypatch):
    monkeypatch.delenv("COMPANION_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else None
    device = pick_device()
    if expected:
        assert device.type == expected
    else:
        assert device.type in ("mps", "cpu")


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cuda:x", "tpu", "cpu:1"])
def test_unknown_device_names_are_rejected_with_the_accepted_values(name):
    with pytest.raises(ValueError, match="accepted: 'cpu', 'mps', 'cuda' or 'cuda:N'"):
        pick_device(name)


def test_unavailable_device_is_an_error_not_a_silent_fallback():
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")  # pragma: no cover
    with pytest.raises(RuntimeError, match="not available"):
        pick_device("cuda:7")


def test_seed_everything_makes_draws_repeat():
    seed_everything(3)
    a = torch.rand(4), np.random.rand(2)
    seed_everything(3)
    b = torch.rand(4), np.random.rand(2)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_must_be_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(seed)


def test_describe_device_names_the_type():
    assert describe_device(torch.device("cpu")).startswith("cpu (")


def test_a_torch_device_is_accepted():
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["", "cpu\n", " cpu"])
def test_empty_or_padded_names_are_errors_not_a_silent_fallback(name):
    with pytest.raises(ValueError, match="accepted"):
        pick_device(name)


@pytest.mark.parametrize("value", [0, False, 1.0])
def test_non_string_devices_are_type_errors(value):
    with pytest.raises(TypeError, match="str or torch.device"):
        pick_device(value)


def test_seeds_beyond_64_bits_are_rejected_with_the_range():
    with pytest.raises(ValueError, match="below 2\\*\\*63"):
        seed_everything(2**64)


def test_mps_0_is_the_name_torch_gives_an_mps_tensors_device():
    # Accepted as a name; whether it is available depends on the machine.
    if torch.backends.mps.is_available():
        assert pick_device("mps:0").type == "mps"
    else:
        with pytest.raises(RuntimeError, match="'mps:0' was requested but is not available"):
            pick_device("mps:0")
    with pytest.raises(ValueError, match="accepted"):
        pick_device("mps:1")


def test_cpu_0_means_cpu():
    assert pick_device("cpu:0").type == "cpu"
    assert pick_device(torch.device("cpu", 0)).type == "cpu"
