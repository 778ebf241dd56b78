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

import math

import numpy as np
import torch

from companion.text import is_integer, is_real


def check_decoding(
    temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> tuple[float, int | None, float | None]:
    """Raise unless ``temperature`` is finite and > 0, ``top_k >= 1`` and ``0 < top_p <= 1``.

    Python and NumPy numbers are accepted (``top_k`` an integer); bools are not.
    ``TypeError`` for a temperature that is not a number, ``ValueError`` otherwise.
    Returns the settings as plain ``(float, int or None, float or None)``.
    """
    if not is_real(temperature):
        raise TypeError(f"temperature must be a finite number > 0, got {temperature!r}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (not is_integer(top_k) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and (not is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")
    return (
        float(temperature),
        None if top_k is None else int(top_k),
        None if top_p is None else float(top_p),
    )


def filter_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """Steps 1-3 on ``(B, V)`` logits; removed tokens get ``-inf``. Returns ``(B, V)``.

    Raises ``TypeError`` for logits that are not a floating-point tensor and
    ``ValueError`` for another shape or for NaN logits.
    """
    temperature, top_k, top_p = check_decoding(temperature, top_k, top_p)
    check_logits(logits, finite_rows=False)
    return _filter(logits, temperature, top_k, top_p)


def check_logits(logits: torch.Tensor, finite_rows: bool = True) -> None:
    """Raise unless ``logits`` is a ``(B, V)`` floating-point tensor with ``B, V >= 1``.

    NaN is always rejected; with ``finite_rows`` so is ``+inf`` and a row without a
    finite value (every token removed), which leaves nothing to draw from. ``-inf``
    marks a removed token and is accepted. One device synchronisation.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a (B, V) float tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a (B, V) float tensor, got dtype {logits.dtype}")
    if logits.ndim != 2 or 0 in logits.shape:
        raise ValueError(
            f"logits must have shape (B, V) with B, V >= 1, got {tuple(logits.shape)}"
        )
    if finite_rows:
        bad = (torch.isnan(logits) | (logits == math.inf)).any()
        bad = bad | ~torch.isfinite(logits).any(dim=-1).all()
        if bad:
            raise ValueError(
                "logits must not contain NaN or +inf, and every row needs at least one "
                "finite value (-inf marks a removed token)"
            )
    elif torch.isnan(logits).any():
        raise ValueError("logits must not contain NaN")


def _filter(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None
) -> torch.Tensor:
    """:func:`filter_logits` without the checks (for callers that made them)."""
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
    Every argument is validated, also with ``greedy=True`` (see :func:`check_decoding`
    and :func:`check_logits`).
    """
    temperature, top_k, top_p = check_decoding(temperature, top_k, top_p)
    greedy = check_greedy(greedy)
    check_logits(logits)
    check_generator(generator, logits.device)
    return _sample_next(logits, temperature, top_k, top_p, greedy, generator)


def check_greedy(greedy: bool) -> bool:
    """Raise ``TypeError`` unless ``greedy`` is a bool (or ``numpy.bool_``); return a bool.

    Ints such as 0 and 1 are rejected: they are more likely a misplaced ``top_k``.
    """
    if not isinstance(greedy, (bool, np.bool_)):
        raise TypeError(f"greedy must be True or False, got {greedy!r}")
    return bool(greedy)


def check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    """Raise unless ``generator`` is ``None`` or a ``torch.Generator`` on ``device``."""
    if generator is None:
        return
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be None or a torch.Generator, got {type(generator).__name__}"
        )
    index, wanted = generator.device.index, device.index
    if generator.device.type != device.type or (
        index is not None and wanted is not None and index != wanted
    ):
        raise ValueError(
            f"generator lives on {generator.device} but the logits on {device}; create it "
            f"with torch.Generator(device={str(device)!r})"
        )


def _sample_next(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    greedy: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """:func:`sample_next` without the checks: the per-token step of ``generate``.

    The callers validate the decoding settings once; checking each step's logits would
    cost a device synchronisation per generated token.
    """
    if greedy:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(_filter(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator)  # 4. draw
