"""Figure helpers shared by the chapters, so that cells stay short and look alike.

Nothing here selects a matplotlib backend: the notebook kernel or the test runner does.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch

BOOK_STYLE = {
    "figure.dpi": 100,
    "figure.figsize": (6.4, 3.6),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 10,
}


def use_book_style() -> None:
    """Apply the book's plot style (sizes, grid, no top/right spines) to matplotlib."""
    plt.rcParams.update(BOOK_STYLE)


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 10, pad: int = 1) -> np.ndarray:
    """Tile ``(N, 1, H, W)`` images in [-1, 1] into one ``(rows*(H+pad), nrow*(W+pad))`` array.

    Pixels are mapped to [0, 1] for display; padding is drawn white.
    """
    x = images.detach().float().cpu().numpy() if isinstance(images, torch.Tensor) else images
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {x.shape}")
    if nrow < 1 or pad < 0:
        raise ValueError("nrow must be >= 1 and pad >= 0")
    n, _, h, w = x.shape
    rows = math.ceil(n / nrow)
    grid = np.ones((rows * (h + pad) + pad, nrow * (w + pad) + pad))
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = (x[i, 0] + 1) / 2
    return grid


def show_images(
    images: torch.Tensor | np.ndarray, nrow: int = 10, ax=None, title: str | None = None
):
    """Draw an image grid (dark digits on white) and return the axes."""
    if ax is None:
        n = images.shape[0]
        _, ax = plt.subplots(figsize=(0.5 * min(n, nrow) + 0.5, 0.5 * math.ceil(n / nrow) + 0.5))
    ax.imshow(1 - image_grid(images, nrow), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
