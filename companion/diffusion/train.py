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
from companion.diffusion.schedules import (
    NoiseSchedule,
    _describe,
    _is_finite,
    _is_int,
    _plain,
)
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
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the accepted values for the first bad field.

        Valid NumPy scalars become plain ints and floats, and ``snapshot_steps`` (any
        iterable of ints: a tuple, list or range) a tuple, so later code and the cache key
        see the same values as for the plain Python ones.
        """
        for name, low in (("steps", 1), ("batch_size", 1), ("warmup_steps", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
            setattr(self, name, _plain(value))
        if not _is_int(self.seed) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be a non-negative int below 2**63, got {self.seed!r}")
        self.seed = _plain(self.seed)
        for name, ok, accepted in (
            ("lr", lambda v: v > 0, "> 0"),
            ("grad_clip", lambda v: v > 0, "> 0"),
            ("lr_floor", lambda v: 0 < v <= 1, "in (0, 1]"),
            ("ema_decay", lambda v: 0 <= v < 1, "in [0, 1)"),
            ("p_uncond", lambda v: 0 <= v <= 1, "in [0, 1]"),
        ):
            value = getattr(self, name)
            if not _is_finite(value) or not ok(value):
                raise ValueError(f"{name} must be a finite number {accepted}, got {value!r}")
            setattr(self, name, _plain(value))
        snaps = self.snapshot_steps
        message = (
            f"snapshot_steps must be an iterable (tuple, list, range) of ints in "
            f"[1, {self.steps}], got {snaps!r}"
        )
        if isinstance(snaps, str | bytes | bytearray):
            raise ValueError(message)
        try:
            steps = tuple(snaps)
        except TypeError:
            raise ValueError(message) from None
        if any(not _is_int(s) or not 1 <= s <= self.steps for s in steps):
            raise ValueError(message)
        self.snapshot_steps = tuple(_plain(s) for s in steps)


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
    """Linear warm-up to ``lr``, then cosine decay to ``lr_floor * lr`` at the last step.

    ``step`` counts from 0; the loop uses ``0 .. steps - 1`` and ``step = steps``, where the
    decay ends, gives the floor.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not _is_int(step) or not 0 <= step <= config.steps:
        raise ValueError(f"step must be an int in [0, {config.steps}], got {step!r}")
    step = int(step)
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    cos = 0.5 * (1 + math.cos(math.pi * (step - config.warmup_steps) / span))
    return config.lr * (config.lr_floor + (1 - config.lr_floor) * cos)


def check_training_inputs(
    model: nn.Module,
    schedule: NoiseSchedule,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    config: TrainConfig,
) -> None:
    """Raise unless the arguments of :func:`train_diffusion` are usable (``config`` not None).

    ``images`` must be a finite floating tensor ``(N, C, H, W)`` with ``N >= 1``; ``labels``,
    if given, an integer tensor ``(N,)`` of classes in ``[0, null - 1]``, where ``null`` is
    the model's "no label" index (``model.null_labels``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    config.validate()  # again, in case a field was changed after construction
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor, got {_describe(images)}")
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(
            f"images must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    if labels is None:
        return
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"labels must be an int32 or int64 tensor, got {_describe(labels)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    if not callable(getattr(model, "null_labels", None)):
        raise TypeError("labels need a class-conditional model with a null_labels(n, device)")
    null = int(model.null_labels(1, labels.device)[0])
    if labels.min() < 0 or labels.max() >= null:
        raise ValueError(
            f"labels must lie in [0, {null - 1}] (the model's classes; {null} means no label)"
        )


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
    config = TrainConfig() if config is None else config
    check_training_inputs(model, schedule, images, labels, config)
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
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(
                f"training loss became {losses[-1]} at step {step + 1} of {config.steps}; "
                f"try a lower lr (now {config.lr}) or grad_clip (now {config.grad_clip})"
            )
        if step + 1 in config.snapshot_steps:
            snapshots[step + 1] = {
                k: v.detach().cpu().clone() for k, v in ema.state_dict().items()
            }
    seconds = time.perf_counter() - start
    weights = [*model.parameters(), *ema.parameters()]
    if weights and not torch.stack([torch.isfinite(p).all() for p in weights]).all():
        raise FloatingPointError("training left NaN or infinite weights after the last step")
    return TrainResult(model, ema, losses, seconds, snapshots)
