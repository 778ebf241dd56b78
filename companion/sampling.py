"""Decoding knobs shared by every language model (chapter ``lstm-generator``).

One step of sampling turns the logits for the next token into a choice:

1. divide the logits by the temperature ``tau`` (``tau < 1`` sharpens, ``tau > 1`` flattens);
2. top-k: keep the ``k`` most likely tokens;
3. top-p (nucleus): keep the smallest set of most likely tokens whose probability mass
   reaches ``p`` (Holtzman et al., 2020);
4. renormalise what is kept and draw one token.

Greedy decoding skips the draw and takes the arg-max of the logits.
"""

from __future__ import annotations

import torch


def check_decoding(
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> None:
    """Raise ``ValueError`` unless ``temperature > 0``, ``top_k >= 1`` and ``0 < top_p <= 1``."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f"temperature must be a number > 0, got {temperature!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1
    ):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Steps 1-3 on ``(B, V)`` logits; removed tokens get ``-inf``. Returns ``(B, V)``."""
    check_decoding(temperature, top_k, top_p)
    logits = logits / temperature  # 1. temperature
    if top_k is not None and top_k < logits.shape[-1]:  # 2. top-k
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:  # 3. top-p
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V) each
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
        drop_sorted = mass_before >= top_p  # the most likely token is never dropped
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Choose the next token from ``(B, V)`` logits; returns ``(B, 1)`` int64 ids.

    ``generator`` must live on the logits' device (or be ``None`` for the global stream).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (B, V), got {tuple(logits.shape)}")
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)  # 4. draw
