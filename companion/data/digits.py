"""scikit-learn's bundled 8x8 handwritten digits, as tensors in [-1, 1].

The data ships inside scikit-learn (1,797 greyscale images of the digits 0-9, pixel
intensities 0-16), so it loads offline. The split is fixed once for the whole book: 450
images, stratified by class, are held out as the test split that every image chapter
scores its samples against (see the chapter ``measuring-generative-models``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from companion.device import as_device

Split = Literal["train", "test", "all"]
SPLITS = ("train", "test", "all")
DIGITS_SHAPE = (1, 8, 8)  # channels, height, width
N_TEST = 450  # held-out images: the size every FDD comparison uses on both sides
SPLIT_SEED = 0  # fixes the train/test split for the whole book
_MAX_PIXEL = 16.0  # scikit-learn stores intensities as integers 0..16


@lru_cache(maxsize=1)
def _split_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    # Scale 0..16 to [-1, 1]: x / 8 - 1 maps 0 to -1 and 16 to 1.
    images = (bunch.images.astype(np.float32) / (_MAX_PIXEL / 2) - 1.0)[:, None]  # (N, 1, 8, 8)
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=N_TEST, stratify=labels, random_state=SPLIT_SEED
    )
    return {"train": (x_tr, y_tr), "test": (x_te, y_te), "all": (images, labels)}


def load_digits(
    split: Split = "train", device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(images, labels)`` of one split.

    ``images`` is float32 of shape ``(N, 1, 8, 8)`` with values in ``[-1, 1]``; ``labels``
    is int64 of shape ``(N,)``. ``split`` is ``"train"`` (1,347 images), ``"test"`` (450)
    or ``"all"`` (1,797). The same call always returns the same images in the same order.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; accepted: {', '.join(map(repr, SPLITS))}")
    device = as_device(device)
    x, y = _split_arrays()[split]
    return torch.from_numpy(x.copy()).to(device), torch.from_numpy(y.copy()).to(device)


def check_images(images: torch.Tensor, name: str = "images", atol: float = 1e-4) -> None:
    """Raise if ``images`` is not a float tensor of shape ``(N, 1, 8, 8)`` in ``[-1, 1]``.

    Values outside the range are an error, not something to clip: a sampler that wants to
    clamp its output does so explicitly before scoring it. ``atol`` allows for float
    round-off at the ends of the range.
    """
    if not isinstance(atol, (int, float)) or not 0 <= atol < 1:
        raise ValueError(f"atol must be a number in [0, 1), got {atol!r}")
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {images.dtype}")
    if images.ndim != 4 or tuple(images.shape[1:]) != DIGITS_SHAPE or images.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N, 1, 8, 8) with N >= 1, got {tuple(images.shape)}"
        )
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = images.min().item(), images.max().item()
    if lo < -1 - atol or hi > 1 + atol:
        raise ValueError(
            f"{name} must lie in [-1, 1], got values in [{lo:.4f}, {hi:.4f}]; "
            "clamp the samples explicitly if your model can overshoot"
        )
