"""The U-Net, the training loop with EMA, and the training cache (companion.diffusion)."""

import pytest
import torch

from companion.data import load_digits
from companion.diffusion.cache import cached_train
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
