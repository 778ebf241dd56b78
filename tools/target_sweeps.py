"""Sweeps behind the closing notes of the quality targets that the book does not meet.

Each sweep prints one line per setting: the setting, its wall time and its FDD (mean over
several draws of 450 samples) as a multiple of the held-out floor. They are experiments,
not tests: slow (minutes each on a 2-core CPU) and run by hand.

    python tools/target_sweeps.py ddim          # DDIM-20: spacing x eta, one trained model
    python tools/target_sweeps.py diffusion     # DDPM and DDIM-20 after other training runs
    python tools/target_sweeps.py dcgan         # DCGAN: steps, width, EMA decay

``--draws`` sets the number of draws per FDD (default 8 for DDIM, 3 for DDPM, 5 for the
DCGAN); ``--only NAME`` runs one setting of a sweep.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace
from unittest import mock

import numpy as np
import torch

from companion.data import N_TEST, load_digits
from companion.device import seed_everything
from companion.diffusion import train as diffusion_train
from companion.diffusion.ddim import SPACINGS, ddim_sample
from companion.diffusion.ddpm import ddpm_sample
from companion.diffusion.presets import DIGITS_TRAIN, DIGITS_UNET, digits_model, digits_schedule
from companion.diffusion.unet import TinyUNet
from companion.evaluate import DigitsEvaluator
from companion.gan import DCGANDiscriminator, DCGANGenerator, GANTrainConfig, sample, train_gan

SHAPE = (N_TEST, 1, 8, 8)


def fdd_ratio(evaluator, floor, draw, draws: int) -> tuple[float, list[float]]:
    """Mean FDD over ``draws`` calls of ``draw(seed)``, divided by the floor."""
    values = [evaluator.fdd(draw(100 + seed)) for seed in range(draws)]
    return float(np.mean(values)) / floor, [round(v, 1) for v in values]


def ddim_sweep(evaluator, floor, draws: int, only: str | None) -> None:
    """Spacing and eta of 20-step DDIM on the chapters' cached model."""
    result, schedule, _ = digits_model("cpu", progress=False)
    model = result.ema_model.eval()
    for spacing in SPACINGS:
        for eta in (0.0, 0.5, 1.0):
            name = f"{spacing}-eta{eta}"
            if only and only != name:
                continue
            start = time.perf_counter()
            ratio, values = fdd_ratio(
                evaluator,
                floor,
                lambda s, sp=spacing, e=eta: ddim_sample(
                    model,
                    schedule,
                    SHAPE,
                    20,
                    eta=e,
                    spacing=sp,
                    generator=torch.Generator().manual_seed(s),
                    progress=False,
                ),
                draws,
            )
            print(
                f"{name:22s} {time.perf_counter() - start:6.1f} s  DDIM-20/floor {ratio:.3f}"
                f"  {values}",
                flush=True,
            )


def _min_snr_loss(gamma: float):
    """``L_simple`` with each image weighted by ``min(SNR_t, gamma) / SNR_t``.

    The min-SNR-gamma weighting of Hang et al. (2023) for an epsilon-predicting network.
    """

    def loss(eps_model, schedule, x0, generator=None):
        t = schedule.sample_timesteps(x0.shape[0], generator)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        xt = schedule.q_sample(x0, t, noise)
        per_image = ((eps_model(xt, t) - noise) ** 2).mean(dim=(1, 2, 3))
        a = schedule.alphas_cumprod[t]
        snr = a / (1 - a)
        return (snr.clamp(max=gamma) / snr * per_image).mean()

    return loss


DIFFUSION_RUNS = {
    "preset": {},  # the chapters' recipe: 3,000 steps at lr 2e-3
    "steps4500": {"steps": 4500},
    "lr4e-3": {"lr": 4e-3},
    "min-snr5": {"min_snr": 5.0},
}


def diffusion_sweep(evaluator, floor, draws: int, only: str | None) -> None:
    """Retrain the digits U-Net with other recipes; score DDPM-1000 and DDIM-20."""
    schedule = digits_schedule("cpu")
    images = load_digits("train")[0]
    for name, run in DIFFUSION_RUNS.items():
        if only and only != name:
            continue
        run = dict(run)
        gamma = run.pop("min_snr", None)
        config = replace(DIGITS_TRAIN, snapshot_steps=(), **run)
        torch.manual_seed(0)
        weighted = mock.patch.object(diffusion_train, "simple_loss", _min_snr_loss(gamma))
        with weighted if gamma else contextlib.nullcontext():
            result = diffusion_train.train_diffusion(
                TinyUNet(DIGITS_UNET), schedule, images, config=config, progress=False
            )
        model = result.ema_model.eval()
        ddpm, ddpm_values = fdd_ratio(
            evaluator,
            floor,
            lambda s, model=model: ddpm_sample(
                model, schedule, SHAPE, torch.Generator().manual_seed(s), progress=False
            ),
            draws,
        )
        ddim, _ = fdd_ratio(
            evaluator,
            floor,
            lambda s, model=model: ddim_sample(
                model,
                schedule,
                SHAPE,
                20,
                generator=torch.Generator().manual_seed(s),
                progress=False,
            ),
            max(draws, 8),
        )
        print(
            f"{name:10s} train {result.seconds:5.1f} s  DDPM/floor {ddpm:.3f} {ddpm_values}"
            f"  DDIM-20/floor {ddim:.3f}  DDIM/DDPM {ddim / ddpm:.3f}",
            flush=True,
        )


DCGAN_RUNS = {
    "chapter": {},  # 1,500 steps, width 32, EMA 0.99
    "ema0.999": {"ema_decay": 0.999},
    "gen-width64": {"g_width": 64},
    "steps3000": {"steps": 3000},
}


def dcgan_sweep(evaluator, floor, draws: int, only: str | None) -> None:
    """The chapter's DCGAN with one change at a time."""
    images = load_digits("train")[0]
    for name, run in DCGAN_RUNS.items():
        if only and only != name:
            continue
        seed_everything(0)
        generator = DCGANGenerator(32, run.get("g_width", 32))
        discriminator = DCGANDiscriminator(32, "batch")
        config = GANTrainConfig(steps=run.get("steps", 1500), ema_decay=run.get("ema_decay", 0.99))
        start = time.perf_counter()
        history = train_gan(generator, discriminator, images, config, progress=False)
        seconds = time.perf_counter() - start
        ratio, values = fdd_ratio(
            evaluator,
            floor,
            lambda s, h=history: sample(
                h.sampler, N_TEST, "cpu", rng=torch.Generator().manual_seed(s)
            ),
            draws,
        )
        print(f"{name:12s} train {seconds:5.1f} s  FDD/floor {ratio:.3f}  {values}", flush=True)


SWEEPS = {"ddim": (ddim_sweep, 8), "diffusion": (diffusion_sweep, 3), "dcgan": (dcgan_sweep, 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=sorted(SWEEPS))
    parser.add_argument("--draws", type=int, default=None, help="draws of 450 per FDD")
    parser.add_argument("--only", default=None, help="run only the setting of this name")
    args = parser.parse_args()
    sweep, default_draws = SWEEPS[args.sweep]
    draws = args.draws or default_draws
    if draws < 1:
        parser.error("--draws must be at least 1")
    evaluator = DigitsEvaluator.train("cpu", progress=False)
    floor = evaluator.floor().mean
    print(f"floor {floor:.2f} (mean FDD of 5 real training subsets)", flush=True)
    sweep(evaluator, floor, draws, args.only)


if __name__ == "__main__":
    main()
