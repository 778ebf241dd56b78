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

from companion.device import as_device
from companion.progress import tqdm
from companion.text import check_count, check_ids, is_integer, is_real, random_batch

# math.exp overflows a float above this mean negative log-likelihood (about 709.78 nats).
_MAX_EXP_ARG = math.log(1.7976931348623157e308)


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
        # Python and NumPy numbers are accepted and stored as plain int and float.
        for name in ("steps", "batch_size", "block_size", "eval_every", "eval_chars"):
            value = getattr(self, name)
            if not is_integer(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))
        self.warmup_steps = check_count(self.warmup_steps, "warmup_steps", minimum=0)
        if not is_integer(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")
        self.seed = int(self.seed)
        for name in ("lr", "min_lr_ratio", "weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not is_real(value):
                raise TypeError(f"{name} must be a finite number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            setattr(self, name, float(value))
        if not self.lr > 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be > 0 and min_lr_ratio in [0, 1]")
        if self.grad_clip <= 0 or self.weight_decay < 0:
            raise ValueError("grad_clip > 0 and weight_decay >= 0 required")


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
    step = check_count(step, "step", minimum=0)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(1, config.steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1 + math.cos(math.pi * progress))


def bits_from_nats(nats: float | torch.Tensor) -> float | torch.Tensor:
    """Nats per character to bits per character: divide by ``ln 2``.

    ``nats`` is a Python or NumPy number (a ``float`` comes back) or a real tensor (a
    tensor comes back, divided elementwise). Bools, non-numbers and NaN raise.
    """
    if isinstance(nats, torch.Tensor):
        if nats.dtype == torch.bool or nats.is_complex():
            raise TypeError(f"nats must be a number or a real tensor, got dtype {nats.dtype}")
        if torch.isnan(nats).any():
            raise ValueError("nats must not be NaN")
        return nats / math.log(2)
    if not is_real(nats):
        raise TypeError(f"nats must be a number or a real tensor, got {nats!r}")
    nats = float(nats)
    if math.isnan(nats):
        raise ValueError("nats must be a number, got nan")
    return nats / math.log(2)


def perplexity(token_nlls: list[list[float]] | list[torch.Tensor]) -> float:
    """``exp`` of the mean negative log-likelihood (nats) over every predicted token.

    ``token_nlls`` holds one list (or 1-D tensor) of per-token values per sequence, or is
    a ``(B, T)`` float tensor with one row per sequence. The mean is over tokens, not
    over sequences: sequences of different length weigh by length.
    This is not the mean of the per-sequence perplexities (chapter
    ``autoregressive-likelihood`` shows the difference).

    Every value must be a finite number >= 0 (a negative log-likelihood of a probability);
    ``ValueError`` otherwise. A mean above about 709.78 nats has a perplexity too large for
    a float: that raises ``ValueError`` too, rather than returning ``inf`` for a finite
    quantity (report bits per character instead).
    """
    if isinstance(token_nlls, torch.Tensor):
        if token_nlls.ndim != 2 or not token_nlls.is_floating_point():
            raise TypeError(
                "token_nlls must be a list of sequences (lists of numbers or 1-D tensors) or "
                f"a (B, T) float tensor, got a tensor of shape {tuple(token_nlls.shape)} and "
                f"dtype {token_nlls.dtype}"
            )
    elif isinstance(token_nlls, (str, bytes)) or not hasattr(token_nlls, "__iter__"):
        raise TypeError(
            "token_nlls must be a list of sequences (lists of numbers or 1-D tensors) or a "
            f"(B, T) float tensor, got {type(token_nlls).__name__}"
        )
    values = []
    for seq in token_nlls:
        if isinstance(seq, torch.Tensor):
            if seq.ndim != 1 or not seq.is_floating_point():
                raise TypeError(
                    "each sequence must be a list of numbers or a 1-D float tensor, got a "
                    f"tensor of shape {tuple(seq.shape)} and dtype {seq.dtype}"
                )
        elif isinstance(seq, (str, bytes)) or not hasattr(seq, "__iter__"):
            raise TypeError(
                "each sequence must be a list of numbers or a 1-D float tensor, got "
                f"{type(seq).__name__}"
            )
        elif not all(_is_nll(v) for v in seq):
            raise TypeError(
                "token negative log-likelihoods must be numbers (Python or NumPy, or 0-d "
                f"float tensors; not bools), got {seq!r}"
            )
        values.extend(float(v) for v in seq)
    if not values:
        raise ValueError("token_nlls must contain at least one token")
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad:
        raise ValueError(
            f"negative log-likelihoods must be finite numbers >= 0 (nats), got {bad[:5]}"
        )
    mean = sum(values) / len(values)
    if mean > _MAX_EXP_ARG:
        raise ValueError(
            f"mean negative log-likelihood {mean:.6g} nats exceeds {_MAX_EXP_ARG:.2f}: its "
            "perplexity exp(mean) is too large for a float; report bits per character instead"
        )
    return math.exp(mean)


def _is_nll(value: object) -> bool:
    """A Python or NumPy real number, or a 0-d floating-point tensor (not a bool)."""
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and value.is_floating_point()
    return is_real(value)


def next_char_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in nats of ``(B, T, V)`` logits against ``(B, T)`` targets.

    ``logits`` must be a float tensor and ``targets`` an int64 tensor of ids in
    ``[0, V)`` with the same ``(B, T)``; ``TypeError``/``ValueError`` otherwise.
    """
    _check_loss_shapes(logits, targets)
    check_ids(targets, "targets", vocab_size=logits.shape[-1], dtypes=(torch.int64,))
    return _next_char_loss(logits, targets)


def _check_loss_shapes(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """The checks of :func:`next_char_loss` that need no device synchronisation."""
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("logits must be a (B, T, V) float tensor")
    if not isinstance(targets, torch.Tensor) or targets.dtype != torch.int64:
        raise TypeError("targets must be a (B, T) int64 tensor of token ids")
    if logits.ndim != 3 or targets.shape != logits.shape[:2] or logits.shape[-1] < 1:
        raise ValueError(
            f"logits must have shape (B, T, V) and targets (B, T) with the same B and T; "
            f"got logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        )


def _next_char_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """:func:`next_char_loss` without the checks: the per-step loss of :func:`train_lm`."""
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
    ``context`` and ``batch_size`` are integers >= 1 (Python or NumPy); ``ids`` must lie
    in ``[0, V)``.
    """
    _check_model(model)
    check_ids(ids, dtypes=(torch.int64,))
    if ids.ndim != 1 or len(ids) < 2:
        raise ValueError("ids must be 1-D with at least 2 elements")
    context = check_count(context, "context")
    batch_size = check_count(batch_size, "batch_size")
    device = as_device(device)
    checked = False

    def score(x: torch.Tensor, y: torch.Tensor) -> float:
        nonlocal checked
        logits = model(x).float()  # (b, T, V)
        if not checked:  # once: the model's vocabulary is known from its first output
            _check_loss_shapes(logits, y)
            check_ids(ids, "ids", vocab_size=logits.shape[-1])
            checked = True
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()

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
        total_nats += score(x, y)
    rest = n_targets - n_full * context
    if rest:
        x = ids[n_full * context : n_full * context + rest][None].to(device)  # (1, rest)
        y = ids[n_full * context + 1 :][None].to(device)  # (1, rest)
        total_nats += score(x, y)
    model.train(was_training)
    return total_nats / n_targets / math.log(2)


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


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
    ``device`` is checked by :func:`companion.device.as_device`; the ids must be 1-D
    int64 tensors, ``train_ids`` longer than ``block_size`` and ``val_ids`` at least 2 long.
    """
    _check_model(model)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    for name, ids, least in (
        ("train_ids", train_ids, config.block_size + 1),
        ("val_ids", val_ids, 2),
    ):
        check_ids(ids, name, dtypes=(torch.int64,))
        if ids.ndim != 1 or len(ids) < least:
            raise ValueError(f"{name} must be 1-D with at least {least} elements")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    device = as_device(device)
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
        logits = model(x)
        if step == 0:  # once: the model's vocabulary is known from its first output
            _check_loss_shapes(logits, y)
            check_ids(train_ids, "train_ids", vocab_size=logits.shape[-1])
            check_ids(val_ids, "val_ids", vocab_size=logits.shape[-1])
        loss = _next_char_loss(logits, y)
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
