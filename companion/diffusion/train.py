"""Training a noise predictor with ``L_simple`` and an EMA of its weights (chapter
``ddpm-digits``; label dropout for guidance in chapter ``guidance``).

The loop knows only that ``model(x_t, t)`` (or ``model(x_t, t, y)`` when labels are given)
returns a tensor shaped like ``x_t``; it works for any such network.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from companion.diffusion.ddpm import simple_loss
from companion.diffusion.guidance import drop_labels
from companion.diffusion.schedules import NoiseSchedule
from companion.progress import tqdm


@dataclass
class TrainConfig:
    steps: int = 1500  # optimiser steps; about 140 passes over the 1,347 digits at batch 128
    batch_size: int = 128  # images per step, drawn with replacement
    lr: float = 2e-3  # Adam peak learning rate; tiny nets on tiny images tolerate a large one
    warmup_steps: int = 100  # linear warm-up, then cosine decay to lr_floor * lr
    lr_floor: float = 0.05  # final learning rate as a share of the peak
    ema_decay: float = 0.995  # EMA half-life of about 140 steps, short enough for 1.5k steps
    grad_clip: float = 1.0  # max gradient norm; guards the early, noisy steps
    p_uncond: float = 0.1  # share of labels replaced by "no label" (conditional models only)
    seed: int = 0  # fixes the batches, timesteps, noise and label drops
    snapshot_steps: tuple[int, ...] = field(default_factory=tuple)  # keep EMA weights here

    def __post_init__(self):
        for name in ("steps", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.lr <= 0 or not 0 <= self.ema_decay < 1 or not 0 <= self.p_uncond <= 1:
            raise ValueError("need lr > 0, ema_decay in [0, 1) and p_uncond in [0, 1]")
        if not 0 < self.lr_floor <= 1 or self.warmup_steps < 0 or self.grad_clip <= 0:
            raise ValueError("need lr_floor in (0, 1], warmup_steps >= 0 and grad_clip > 0")
        if any(not 1 <= s <= self.steps for s in self.snapshot_steps):
            raise ValueError(f"snapshot_steps must lie in [1, {self.steps}]")


@dataclass
class TrainResult:
    model: nn.Module  # the raw weights after the last step
    ema_model: nn.Module  # the exponential moving average: sample from this one
    losses: list[float]  # L_simple per step
    seconds: float  # wall time of the loop
    snapshots: dict[int, dict[str, torch.Tensor]]  # step -> EMA state_dict (CPU copies)

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.seconds


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr_floor * lr`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * (step - config.warmup_steps) / span))
    return config.lr * (config.lr_floor + (1 - config.lr_floor) * cos)


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameter by parameter."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p, 1 - decay)


def train_diffusion(
    model: nn.Module,
    schedule: NoiseSchedule,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` (in place) on ``images (N, C, H, W)`` and return it with its EMA.

    With ``labels (N,)``, the model is called as ``model(x_t, t, y)`` and a share
    ``p_uncond`` of labels is replaced by ``model.null_labels`` (classifier-free guidance).
    """
    config = config or TrainConfig()
    if images.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if labels is not None and labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    device = schedule.device
    images = images.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model.to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses, snapshots = [], {}
    start = time.perf_counter()
    for step in tqdm(range(config.steps), desc="diffusion training", disable=not progress):
        # 1. A batch of clean images (and labels, some dropped to "no label").
        idx = torch.randint(0, images.shape[0], (config.batch_size,), generator=generator)
        x0 = images[idx.to(device)]
        if labels is None:
            eps_model = model
        else:
            null = int(model.null_labels(1, device)[0])
            y = drop_labels(labels[idx].to(device), config.p_uncond, null, generator)

            def eps_model(x, t, y=y):
                return model(x, t, y)

        # 2. L_simple on that batch (timesteps and noise drawn inside).
        loss = simple_loss(eps_model, schedule, x0, generator)
        # 3. A clipped Adam step at the scheduled learning rate.
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, config)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        # 4. Move the average towards the new weights.
        ema_update(ema, model, config.ema_decay)
        losses.append(loss.item())
        if step + 1 in config.snapshot_steps:
            snapshots[step + 1] = {
                k: v.detach().cpu().clone() for k, v in ema.state_dict().items()
            }
    return TrainResult(model, ema, losses, time.perf_counter() - start, snapshots)
