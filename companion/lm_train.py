"""Training and evaluation shared by every character language model (chapter ``lstm-generator``).

Nothing here knows which model it trains: a model is any ``nn.Module`` that maps ``(B, T)``
int64 ids to ``(B, T, V)`` logits. The loss is the mean cross-entropy of each next
character, which is the negative log-likelihood per character in nats derived in the
chapter ``autoregressive-likelihood``; dividing by ``ln 2`` gives bits per character.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from companion.progress import tqdm
from companion.text import random_batch


@dataclass
class TrainConfig:
    steps: int = 600  # optimiser steps
    batch_size: int = 32  # windows per step
    block_size: int = 128  # characters per window (the model's context)
    lr: float = 3e-3  # peak learning rate: small models tolerate a large one
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * min_lr_ratio
    warmup_steps: int = 30  # linear warm-up keeps the first Adam steps stable
    weight_decay: float = 0.01  # AdamW decay on matrices only (not biases, norms)
    grad_clip: float = 1.0  # clip the global gradient norm to this
    eval_every: int = 100  # steps between validation measurements
    eval_chars: int = 8_192  # validation characters scored at each measurement
    seed: int = 0  # batch order and initial weights' random stream

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "block_size", "eval_every", "eval_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be > 0 and min_lr_ratio in [0, 1]")
        if self.warmup_steps < 0 or self.grad_clip <= 0 or self.weight_decay < 0:
            raise ValueError("warmup_steps >= 0, grad_clip > 0 and weight_decay >= 0 required")


@dataclass
class History:
    """What a training run returns: curves in bits per character, and timing."""

    steps: list[int] = field(default_factory=list)  # step at each validation measurement
    train_bpc: list[float] = field(default_factory=list)  # mean training bpc since last one
    val_bpc: list[float] = field(default_factory=list)  # bpc on the first eval_chars of val
    seconds: float = 0.0  # wall time of the optimiser steps, evaluation excluded
    tokens: int = 0  # characters the model was trained on

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else float("nan")


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * progress))


def bits_from_nats(nats: float) -> float:
    """Nats per character to bits per character: divide by ``ln 2``."""
    return nats / math.log(2)


def perplexity(token_nlls: list[list[float]] | list[torch.Tensor]) -> float:
    """``exp`` of the mean negative log-likelihood (nats) over every predicted token.

    ``token_nlls`` holds one list (or tensor) of per-token values per sequence. The mean
    is over tokens, not over sequences: sequences of different length weigh by length.
    This is not the mean of the per-sequence perplexities (chapter
    ``autoregressive-likelihood`` shows the difference).
    """
    values = [float(v) for seq in token_nlls for v in seq]
    if not values:
        raise ValueError("token_nlls must contain at least one token")
    return math.exp(sum(values) / len(values))


def next_char_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats of ``(B, T, V)`` logits against ``(B, T)`` targets."""
    B, T, V = logits.shape
    return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))


@torch.no_grad()
def bits_per_char(
    model: nn.Module, ids: torch.Tensor, context: int, device: torch.device, batch_size: int = 64
) -> float:
    """Mean ``-log2 p(x_t | window)`` over every target ``ids[1:]``.

    The text is cut into consecutive windows of ``context`` inputs; a window's targets are
    its inputs shifted by one, so each character after the first is scored exactly once,
    with the characters before it in its window as context (the last window may be
    shorter). The same characters are scored as by ``CharNGram.bits_per_char``.
    """
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError("ids must be 1-D with at least 2 elements")
    was_training = model.training
    model.eval()
    n_targets = len(ids) - 1
    n_full = n_targets // context
    total_nats = 0.0
    full = ids[: n_full * context + 1]
    x_all = full[:-1].view(n_full, context)  # (N, T)
    y_all = full[1:].view(n_full, context)  # (N, T)
    for i in range(0, n_full, batch_size):
        x = x_all[i : i + batch_size].to(device)
        y = y_all[i : i + batch_size].to(device)
        logits = model(x).float()  # (b, T, V)
        total_nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
    rest = n_targets - n_full * context
    if rest:
        x = ids[n_full * context : n_full * context + rest][None].to(device)  # (1, rest)
        y = ids[n_full * context + 1 :][None].to(device)  # (1, rest)
        logits = model(x).float()
        total_nats += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
    model.train(was_training)
    return total_nats / n_targets / math.log(2)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) and none on vectors."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def train_lm(
    model: nn.Module,
    train_ids: torch.Tensor,
    val_ids: torch.Tensor,
    config: TrainConfig,
    device: torch.device,
    progress: bool = True,
) -> History:
    """Train ``model`` on random windows of ``train_ids``; returns a :class:`History`.

    Validation bits per character on the first ``eval_chars`` of ``val_ids`` is measured
    every ``eval_every`` steps and after the last step. The model is left in eval mode.
    """
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device).train()
    optimizer = make_optimizer(model, config)
    val_head = val_ids[: config.eval_chars + 1]
    history = History()
    running, count = 0.0, 0
    bar = tqdm(range(config.steps), disable=not progress, desc="training", leave=False)
    for step in bar:
        start = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, config)
        x, y = random_batch(train_ids, config.batch_size, config.block_size, generator)
        x, y = x.to(device), y.to(device)
        loss = next_char_loss(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        value = loss.item()  # also waits for the device, so the timing below is honest
        history.seconds += time.perf_counter() - start
        history.tokens += x.numel()
        if not math.isfinite(value):
            raise FloatingPointError(f"training loss became {value} at step {step}")
        running, count = running + value, count + 1
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            history.steps.append(step + 1)
            history.train_bpc.append(running / count / math.log(2))
            history.val_bpc.append(bits_per_char(model, val_head, config.block_size, device))
            model.train()
            running, count = 0.0, 0
            bar.set_postfix(val_bpc=f"{history.val_bpc[-1]:.3f}")
    model.eval()
    return history
