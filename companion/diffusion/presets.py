"""Named, CPU-sized configurations for the digits chapters, and one call to get a model.

The DDPM, DDIM and guidance chapters and the ``diffusion`` benchmark all train through
:func:`digits_model`, so they share the same network and training run (and, through
:mod:`companion.diffusion.cache`, the same weights once one of them has trained them).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from companion.data import load_digits
from companion.diffusion.cache import cached_train
from companion.diffusion.schedules import NoiseSchedule
from companion.diffusion.train import TrainConfig, TrainResult
from companion.diffusion.unet import TinyUNet, UNetConfig

NUM_TRAIN_STEPS = 1000  # T, as in Ho et al.
DIGITS_UNET = UNetConfig(channels=(16, 32))  # about 0.1 M parameters
DIGITS_TRAIN = TrainConfig(steps=3000, snapshot_steps=(100, 300, 1000, 3000))
# The guidance chapter's conditional model: labels make the task easier, and its page
# has no snapshots to show, so 2,000 steps keep the book within its CPU budget.
DIGITS_COND_TRAIN = TrainConfig(steps=2000)
MODEL_SEED = 0  # initial weights


def digits_schedule(device: torch.device | str = "cpu") -> NoiseSchedule:
    """The linear schedule (1e-4 to 0.02, T = 1000) every digits chapter uses."""
    return NoiseSchedule.from_name("linear", NUM_TRAIN_STEPS, 1e-4, 0.02, device=device)


def digits_model(
    device: torch.device | str = "cpu",
    conditional: bool = False,
    config: TrainConfig | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> tuple[TrainResult, NoiseSchedule, bool]:
    """Train (or load) the digits U-Net; returns ``(result, schedule, loaded_from_cache)``.

    ``conditional=True`` gives a class-conditional model trained with label dropout for
    classifier-free guidance (chapter ``guidance``); by default it trains with
    ``DIGITS_COND_TRAIN``, the unconditional model with ``DIGITS_TRAIN``.
    """
    if not isinstance(conditional, bool):
        raise TypeError(f"conditional must be True or False, got {conditional!r}")
    schedule = digits_schedule(device)
    images, labels = load_digits("train")
    unet_config = replace(DIGITS_UNET, num_classes=10 if conditional else None)

    def build() -> TinyUNet:
        torch.manual_seed(MODEL_SEED)
        return TinyUNet(unet_config)

    result, loaded = cached_train(
        build,
        schedule,
        images,
        labels if conditional else None,
        config if config is not None else DIGITS_COND_TRAIN if conditional else DIGITS_TRAIN,
        progress,
        use_cache,
    )
    return result, schedule, loaded
