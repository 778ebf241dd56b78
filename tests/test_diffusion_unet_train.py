"""The U-Net, the training loop with EMA, and the training cache (companion.diffusion)."""

import dataclasses

import numpy as np
import pytest
import torch

from companion.data import load_digits
from companion.diffusion.cache import cache_key, cached_train
from companion.diffusion.schedules import NoiseSchedule
from companion.diffusion.train import TrainConfig, ema_update, learning_rate, train_diffusion
from companion.diffusion.unet import TinyUNet, UNetConfig, timestep_embedding


def test_unet_maps_noisy_images_to_noise_shape():
    torch.manual_seed(0)
    model = TinyUNet(UNetConfig(channels=(8, 16)))
    x, t = torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 10, 500, 999])
    out = model(x, t)
    assert out.shape == x.shape
    assert torch.all(out == 0)  # zero-initialised output layer: the first loss is Var(eps)


def test_conditional_unet_uses_its_label_and_has_a_null_token():
    torch.manual_seed(0)
    model = TinyUNet(UNetConfig(channels=(8, 16), num_classes=10))
    torch.nn.init.normal_(model.conv_out.weight)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([100, 100])
    a, b = model(x, t, torch.tensor([3, 3])), model(x, t, torch.tensor([7, 7]))
    assert not torch.allclose(a, b)
    assert torch.equal(model(x, t), model(x, t, model.null_labels(2, x.device)))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda m: m(torch.zeros(2, 1, 7, 7), torch.zeros(2, dtype=torch.long)),
            r"\(N, 1, 8, 8\)",
        ),
        (lambda m: m(torch.zeros(2, 1, 8, 8), torch.zeros(3, dtype=torch.long)), r"\(2,\)"),
        (
            lambda m: m(
                torch.zeros(1, 1, 8, 8),
                torch.zeros(1, dtype=torch.long),
                torch.zeros(1, dtype=torch.long),
            ),
            "unconditional",
        ),
    ],
)
def test_unet_rejects_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call(TinyUNet(UNetConfig(channels=(8, 16))))


def test_unet_config_errors_name_the_constraint():
    with pytest.raises(ValueError, match="must divide"):
        TinyUNet(UNetConfig(channels=(12, 16), groups=8))
    with pytest.raises(ValueError, match="multiple of 4"):
        TinyUNet(UNetConfig(image_size=6))


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0, 3]), 8)
    assert emb.shape == (2, 8)
    torch.testing.assert_close(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert emb[1, 0].item() == pytest.approx(torch.cos(torch.tensor(3.0)).item())


def test_ema_update_is_a_convex_step():
    a, b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        a.weight.fill_(1.0)
        b.weight.fill_(3.0)
    ema_update(a, b, decay=0.75)
    torch.testing.assert_close(a.weight, torch.full((1, 2), 1.5))


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, lr_floor=0.1)
    assert learning_rate(0, cfg) == pytest.approx(0.1)
    assert learning_rate(10, cfg) == pytest.approx(1.0)
    assert learning_rate(100, cfg) == pytest.approx(0.1)


def test_training_lowers_the_loss_and_keeps_snapshots():
    schedule = NoiseSchedule.from_name("linear", 100)
    images, _ = load_digits("train")
    images = images[:64]
    torch.manual_seed(0)
    cfg = TrainConfig(steps=60, batch_size=32, lr=3e-3, warmup_steps=5, snapshot_steps=(30,))
    result = train_diffusion(
        TinyUNet(UNetConfig(channels=(8, 16))), schedule, images, config=cfg, progress=False
    )
    assert len(result.losses) == 60 and set(result.snapshots) == {30}
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.8 * first


def test_training_config_rejects_bad_values():
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="p_uncond"):
        TrainConfig(p_uncond=1.5)


def test_cache_returns_the_same_ema_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    schedule = NoiseSchedule.from_name("linear", 50)
    images = torch.rand(16, 1, 8, 8) * 2 - 1
    labels = torch.arange(16) % 10
    cfg = TrainConfig(steps=3, batch_size=4, warmup_steps=1, snapshot_steps=(2,))

    def build():
        torch.manual_seed(0)
        return TinyUNet(UNetConfig(channels=(8, 16), num_classes=10))

    first, loaded_first = cached_train(build, schedule, images, labels, cfg, progress=False)
    second, loaded_second = cached_train(build, schedule, images, labels, cfg, progress=False)
    assert (loaded_first, loaded_second) == (False, True)
    for (k, v), (k2, v2) in zip(
        first.ema_model.state_dict().items(), second.ema_model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)
    assert second.losses == pytest.approx(first.losses) and set(second.snapshots) == {2}
    other, loaded_other = cached_train(build, schedule, images, None, cfg, progress=False)
    assert not loaded_other  # different inputs, different key


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((torch.tensor([0, 3]), 5), "even int >= 2"),
        ((torch.tensor([0, 3]), 0), "even int >= 2"),
        ((torch.tensor([0, 3]), True), "even int >= 2"),
        ((torch.tensor(3), 4), r"1-d tensor \(N,\)"),
    ],
)
def test_timestep_embedding_rejects_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        timestep_embedding(*args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": True}, "groups must be a positive int"),
        ({"num_classes": True}, "num_classes must be None or a positive int"),
        ({"image_size": 8.0}, "image_size must be a positive int"),
        ({"image_channels": True}, "image_channels must be a positive int"),
        ({"channels": 16}, "channels must be two positive ints"),
    ],
)
def test_unet_config_rejects_bools_floats_and_scalars(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TinyUNet(UNetConfig(**kwargs))


@pytest.mark.parametrize("config", ["cfg", "", {}])
def test_unet_needs_a_unet_config(config):
    with pytest.raises(TypeError, match="UNetConfig or None"):
        TinyUNet(config)


@pytest.mark.parametrize("y", [[11, 0], [-1, 0]])
def test_conditional_unet_names_the_label_range(y):
    model = TinyUNet(UNetConfig(channels=(8, 16), num_classes=10))
    x, t = torch.zeros(2, 1, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"\[0, 10\] \(10 means no label\)"):
        model(x, t, torch.tensor(y))
    model(x, t, torch.tensor([10, 0]))  # the "no label" token is a valid label
    with pytest.raises(TypeError, match="int32 or int64"):
        model(x, t, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        model.null_labels(-1, x.device)


def test_unet_input_must_match_the_weights_dtype():
    with pytest.raises(TypeError, match="must be torch.float32"):
        TinyUNet(UNetConfig(channels=(8, 16)))(torch.zeros(1, 1, 8, 8).double(), torch.tensor([1]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_steps": float("nan")}, "warmup_steps must be an int >= 0"),
        ({"warmup_steps": 2.5}, "warmup_steps must be an int >= 0"),
        ({"grad_clip": float("nan")}, "grad_clip must be a finite number > 0"),
        ({"lr": float("inf")}, "lr must be a finite number > 0"),
        ({"lr": "a"}, "lr must be a finite number > 0"),
        ({"ema_decay": True}, r"ema_decay must be a finite number in \[0, 1\)"),
        ({"lr_floor": 0.0}, r"lr_floor must be a finite number in \(0, 1\]"),
        ({"seed": 1.5}, "seed must be a non-negative int"),
        (
            {"snapshot_steps": (1.5,)},
            r"snapshot_steps must be an iterable .* of ints in \[1, 1500\]",
        ),
        ({"snapshot_steps": 100}, r"snapshot_steps must be an iterable \(tuple, list, range\)"),
        ({"snapshot_steps": "12"}, "snapshot_steps must be an iterable"),
        ({"snapshot_steps": (np.bool_(True),)}, "snapshot_steps must be an iterable"),
        ({"seed": np.bool_(False)}, "seed must be a non-negative int"),
        ({"lr": np.float32("nan")}, "lr must be a finite number > 0"),
        ({"steps": True}, "steps must be an int >= 1"),
        ({"batch_size": 2.0}, "batch_size must be an int >= 1"),
    ],
)
def test_training_config_rejects_nonsense(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("step", [-5, 101, 1.5, True])
def test_learning_rate_needs_a_step_of_the_schedule(step):
    with pytest.raises(ValueError, match=r"step must be an int in \[0, 100\]"):
        learning_rate(step, TrainConfig(steps=100))


def _tiny(num_classes=None):
    torch.manual_seed(0)
    return TinyUNet(UNetConfig(channels=(8, 16), num_classes=num_classes))


def test_train_diffusion_checks_its_inputs():
    s, images = NoiseSchedule.from_name("linear", 10), torch.zeros(4, 1, 8, 8)
    cfg = TrainConfig(steps=2, batch_size=2)
    with pytest.raises(TypeError, match="TrainConfig or None"):
        train_diffusion(_tiny(), s, images, config={})
    with pytest.raises(ValueError, match=r"N >= 1, got \(0, 1, 8, 8\)"):
        train_diffusion(_tiny(), s, torch.zeros(0, 1, 8, 8), config=cfg)
    with pytest.raises(ValueError, match="NaN or infinite"):
        train_diffusion(_tiny(), s, torch.full((4, 1, 8, 8), float("nan")), config=cfg)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\]"):
        train_diffusion(_tiny(10), s, images, torch.full((4,), 42), cfg, progress=False)
    with pytest.raises(ValueError, match="unconditional"):
        train_diffusion(_tiny(), s, images, torch.zeros(4, dtype=torch.long), cfg)
    cfg.lr = float("nan")  # changed after construction: checked again before training
    with pytest.raises(ValueError, match="lr must be a finite number"):
        train_diffusion(_tiny(), s, images, config=cfg)


def test_training_that_diverges_raises_instead_of_returning_nan(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE", str(tmp_path))
    s, images = NoiseSchedule.from_name("linear", 10), torch.rand(4, 1, 8, 8) * 2 - 1
    cfg = TrainConfig(steps=20, batch_size=2, lr=1e30, grad_clip=1e30, warmup_steps=0)
    with pytest.raises(FloatingPointError, match="training loss became .* at step"):
        train_diffusion(_tiny(), s, images, config=cfg, progress=False)
    with pytest.raises(FloatingPointError):
        cached_train(_tiny, s, images, config=cfg, progress=False)
    assert not list(tmp_path.iterdir())  # nothing was cached


def test_cached_train_checks_its_arguments():
    s, images = NoiseSchedule.from_name("linear", 10), torch.zeros(4, 1, 8, 8)
    with pytest.raises(TypeError, match="TrainConfig or None"):
        cached_train(_tiny, s, images, config={})
    with pytest.raises(TypeError, match="build_model must be a callable"):
        cached_train(_tiny(), s, images)
    with pytest.raises(TypeError, match="use_cache must be True or False"):
        cached_train(_tiny, s, images, use_cache="yes")


def test_training_config_accepts_numpy_scalars_as_plain_numbers():
    cfg = TrainConfig(
        steps=np.int64(10), seed=np.int64(1), lr=np.float32(1e-3), snapshot_steps=(np.int64(2),)
    )
    plain = TrainConfig(steps=10, seed=1, lr=float(np.float32(1e-3)), snapshot_steps=(2,))
    assert cfg == plain
    assert type(cfg.steps) is int and type(cfg.seed) is int and type(cfg.lr) is float
    assert type(cfg.snapshot_steps[0]) is int
    for step in range(11):
        assert learning_rate(np.int64(step), cfg) == learning_rate(step, plain)


@pytest.mark.parametrize("steps", [range(2, 11, 4), [2, 6, 10], (s for s in (2, 6, 10))])
def test_snapshot_steps_take_any_iterable_of_ints_and_keep_the_cache_key(steps):
    cfg = TrainConfig(steps=10, snapshot_steps=steps)
    assert cfg.snapshot_steps == (2, 6, 10)  # stored as a tuple
    assert dataclasses.asdict(cfg) == dataclasses.asdict(
        TrainConfig(steps=10, snapshot_steps=(2, 6, 10))
    )
    s, images = NoiseSchedule.from_name("linear", 10), torch.zeros(4, 1, 8, 8)
    tuple_cfg = TrainConfig(steps=10, snapshot_steps=(2, 6, 10))
    assert cache_key(_tiny(), s, images, None, cfg) == cache_key(
        _tiny(), s, images, None, tuple_cfg
    )


def test_unet_and_embedding_accept_numpy_ints():
    model = _tiny(10)
    assert torch.equal(model.null_labels(np.int64(3), "cpu"), model.null_labels(3, "cpu"))
    t = torch.tensor([0, 3, 999])
    assert torch.equal(
        timestep_embedding(t, np.int64(16), np.float32(1e4)), timestep_embedding(t, 16, 1e4)
    )
    config = UNetConfig(channels=(np.int64(8), np.int64(16)), time_dim=np.int64(32))
    assert TinyUNet(config).config == UNetConfig(channels=(8, 16), time_dim=32)
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        model.null_labels(np.bool_(True), "cpu")
    with pytest.raises(ValueError, match="even int >= 2"):
        timestep_embedding(t, np.bool_(True))
    with pytest.raises(ValueError, match="max_period must be a finite number > 0"):
        timestep_embedding(t, 16, np.float32("inf"))


def test_unet_forward_works_under_autocast():
    model = _tiny(10)
    torch.nn.init.normal_(model.conv_out.weight)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 500])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x.bfloat16(), t)
        out32 = model(x, t)  # a float32 x too
    assert out.shape == x.shape and out.dtype == torch.bfloat16
    ref = model(x, t)  # float32, outside autocast
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()  # bfloat16 round-off
    assert out32.dtype == torch.bfloat16
    with pytest.raises(TypeError, match="must be torch.float32 .* under torch.autocast"):
        model(x.bfloat16(), t)  # autocast off: the dtype must match the weights
    for autocast in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            with pytest.raises(TypeError, match="floating-point tensor"):
                model(torch.zeros(2, 1, 8, 8, dtype=torch.long), t)
