"""Figure helpers shared by the chapters, so that cells stay short and look alike.

Nothing here selects a matplotlib backend: the notebook kernel or the test runner does.
"""

from __future__ import annotations

import math
import re

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


def _as_image_array(images) -> np.ndarray:
    if isinstance(images, torch.Tensor):
        images = images.detach().float().cpu().numpy()
    if not isinstance(images, np.ndarray) or images.dtype.kind != "f":
        raise TypeError("images must be a float torch.Tensor or NumPy array of shape (N, 1, H, W)")
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[0] == 0:
        raise ValueError(f"images must have shape (N, 1, H, W) with N >= 1, got {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("images contain NaN or infinite values")
    lo, hi = images.min(), images.max()
    if lo < -1 - 1e-4 or hi > 1 + 1e-4:
        raise ValueError(
            f"images must lie in [-1, 1], got values in [{lo:.3f}, {hi:.3f}]; "
            "clamp or rescale them explicitly before plotting"
        )
    return images


def image_grid(
    images: torch.Tensor | np.ndarray, nrow: int = 10, pad: int = 1, pad_value: float = 1.0
) -> np.ndarray:
    """Tile ``(N, 1, H, W)`` images in [-1, 1] into one 2-D array.

    The result has shape ``(rows * (H + pad) + pad, nrow * (W + pad) + pad)`` with
    ``rows = ceil(N / nrow)``. Pixels are mapped to [0, 1] for display; padding takes
    ``pad_value`` (1, the brightest value, by default).
    """
    x = _as_image_array(images)
    for name, value, low in (("nrow", nrow, 1), ("pad", pad, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    n, _, h, w = x.shape
    rows = math.ceil(n / nrow)
    if not isinstance(pad_value, (int, float)) or not 0 <= pad_value <= 1:
        raise ValueError(f"pad_value must be a number in [0, 1], got {pad_value!r}")
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad), float(pad_value))
    for i in range(n):
        r, c = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = (x[i, 0] + 1) / 2
    return grid


def show_images(
    images: torch.Tensor | np.ndarray, nrow: int = 10, ax=None, title: str | None = None
):
    """Draw an image grid (dark digits on white) and return the axes."""
    # Ink is drawn dark on white: invert the pixels, and pad with 0 so that the inverted
    # padding is white too. image_grid validates the images before a figure is made.
    grid = image_grid(images, nrow, pad_value=0.0)
    if ax is None:
        n = images.shape[0]
        _, ax = plt.subplots(figsize=(0.5 * min(n, nrow) + 0.5, 0.5 * math.ceil(n / nrow) + 0.5))
    ax.imshow(1 - grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


# matplotlib's HTML animation links Font Awesome 4 from a CDN for its button icons. The
# book's theme already ships Font Awesome (whose ``fa`` classes cover those icons), and
# pages must work offline, so the link is dropped.
_FONT_AWESOME_CDN = re.compile(r"<link[^>]*font-awesome[^>]*>\n?")


def animation_html(anim) -> str:
    """HTML (JavaScript player) for a ``matplotlib.animation.Animation``, with no CDN link."""
    from matplotlib import animation

    if not isinstance(anim, animation.Animation):
        raise TypeError(f"anim must be a matplotlib Animation, got {type(anim).__name__}")
    return _FONT_AWESOME_CDN.sub("", anim.to_jshtml())
