"""A ring of Gaussians in the plane, and how many of its modes a generator covers.

The toy on which mode collapse is easy to see (chapter ``wgan-gp``): ``n_modes`` isotropic
Gaussians of standard deviation ``std``, centred evenly on a circle of radius ``radius``,
mixed in equal proportions. Samples are generated deterministically from a seed; nothing
here downloads.

A generated point is *high quality* when it lies within ``n_std`` standard deviations of
some mode's centre; a mode is *covered* when at least ``min_share`` of all samples are high
quality points of that mode.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_positive_number(name: str, value: object) -> float:
    """Return ``value`` as a Python float if it is a finite real number > 0 (Python or
    NumPy, not a bool); raise otherwise."""
    if not (_is_real(value) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


@dataclass
class ModeReport:
    """Mode coverage of a set of 2-D samples."""

    counts: list[int]  # high-quality samples per mode, index = mode
    n_samples: int  # all samples scored
    min_count: int  # a mode is covered with at least this many high-quality samples

    @property
    def covered(self) -> int:
        return sum(c >= self.min_count for c in self.counts)

    @property
    def high_quality_share(self) -> float:
        return sum(self.counts) / self.n_samples


@dataclass(frozen=True)
class GaussianRing:
    """``n_modes`` Gaussians of standard deviation ``std`` on a circle of radius ``radius``."""

    n_modes: int = 8  # the classic toy has eight
    radius: float = 2.0  # distance of every centre from the origin
    std: float = 0.05  # per-coordinate standard deviation; 3 std = 0.15, far below the gap

    def __post_init__(self):  # NumPy scalars are stored as the equal Python int / float
        if not _is_int(self.n_modes) or self.n_modes < 2:
            raise ValueError(f"n_modes must be an int >= 2, got {self.n_modes!r}")
        object.__setattr__(self, "n_modes", int(self.n_modes))
        object.__setattr__(self, "radius", _check_positive_number("radius", self.radius))
        object.__setattr__(self, "std", _check_positive_number("std", self.std))

    def centres(self) -> torch.Tensor:
        """Mode centres ``(n_modes, 2)`` float32, the first on the positive x-axis."""
        angles = torch.arange(self.n_modes, dtype=torch.float64) * (2 * math.pi / self.n_modes)
        return (self.radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(points, modes)``: ``(n, 2)`` float32 and ``(n,)`` int64, reproducible."""
        if not _is_int(n) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        if not _is_int(seed) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be a non-negative int (below 2**63), got {seed!r}")
        n, g = int(n), torch.Generator().manual_seed(int(seed))
        modes = torch.randint(0, self.n_modes, (n,), generator=g)  # (n,)
        noise = torch.randn(n, 2, generator=g) * self.std  # (n, 2)
        return self.centres()[modes] + noise, modes

    def coverage(
        self, samples: torch.Tensor, min_share: float = 0.01, n_std: float = 3.0
    ) -> ModeReport:
        """Count high-quality samples per mode; see the module docstring.

        ``samples`` is ``(N, 2)``. A point within ``n_std * std`` of a centre is assigned to
        that mode (the balls do not overlap for the default ring).
        """
        if not isinstance(samples, torch.Tensor) or samples.ndim != 2 or samples.shape[1] != 2:
            shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples)
            raise ValueError(f"samples must be a tensor of shape (N, 2), got {shape}")
        if samples.shape[0] == 0:
            raise ValueError("samples must hold at least one point")
        if samples.dtype == torch.bool or samples.is_complex():
            raise TypeError(f"samples must hold real numbers, got dtype {samples.dtype}")
        if not torch.isfinite(samples).all():
            raise ValueError("samples contain NaN or infinite values")
        if not (_is_real(min_share) and 0 < min_share < 1):
            raise ValueError(f"min_share must lie in (0, 1), got {min_share!r}")
        n_std = _check_positive_number("n_std", n_std)
        dist = torch.cdist(samples.detach().float().cpu(), self.centres())  # (N, n_modes)
        nearest_dist, nearest = dist.min(dim=1)  # (N,), (N,)
        good = nearest_dist <= n_std * self.std
        counts = torch.bincount(nearest[good], minlength=self.n_modes).tolist()
        n = samples.shape[0]
        return ModeReport(counts, n, max(1, math.ceil(float(min_share) * n)))
