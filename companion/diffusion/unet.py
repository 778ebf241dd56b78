"""A small U-Net that predicts the noise in an 8x8 image (chapter ``ddpm-digits``).

The network maps a noisy image ``x_t`` of shape ``(N, 1, 8, 8)``, its timestep ``t`` of
shape ``(N,)`` and, optionally, a class label ``y`` of shape ``(N,)`` to a prediction of the
noise ``epsilon`` with the shape of ``x_t``. Resolutions go 8 -> 4 -> 2 and back, with a
skip connection at each resolution. The timestep enters through a sinusoidal embedding and
an MLP, and is added to every residual block; a class label, when the model is
class-conditional, is embedded and added to the same vector. Label ``num_classes`` is the
"no label" token that classifier-free guidance trains with (chapter ``guidance``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn import functional as F

from companion.diffusion.schedules import _describe, _is_finite, _is_int, _plain


@dataclass
class UNetConfig:
    image_channels: int = 1  # greyscale digits
    image_size: int = 8  # height = width; must be divisible by 4 (two downsamplings)
    channels: tuple[int, int] = (16, 32)  # widths at 8x8 and at 4x4 (2x2 reuses the second)
    time_dim: int = 64  # size of the timestep (and class) embedding vector
    groups: int = 8  # GroupNorm groups; must divide both widths
    num_classes: int | None = None  # None: unconditional; 10 for class-conditional digits


def _check_config(config: UNetConfig) -> UNetConfig:
    """Raise unless ``config`` is usable; return it, with NumPy ints made plain ints.

    A config of plain Python ints comes back as the same object.
    """
    if not isinstance(config, UNetConfig):
        raise TypeError(f"config must be a UNetConfig or None, got {type(config).__name__}")
    for name in ("image_channels", "image_size", "time_dim", "groups"):
        value = getattr(config, name)
        if not _is_int(value) or value < 1:
            raise ValueError(f"UNetConfig.{name} must be a positive int, got {value!r}")
    channels = config.channels
    if (
        not isinstance(channels, tuple | list)
        or len(channels) != 2
        or any(not _is_int(c) or c < 1 for c in channels)
    ):
        raise ValueError(f"channels must be two positive ints, got {channels!r}")
    if config.image_size < 4 or config.image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4, got {config.image_size}")
    if any(c % config.groups for c in config.channels):
        raise ValueError(f"groups ({config.groups}) must divide channels {config.channels}")
    if config.time_dim % 2:
        raise ValueError(f"time_dim must be even (sine and cosine halves), got {config.time_dim}")
    if config.num_classes is not None and (
        not _is_int(config.num_classes) or config.num_classes < 1
    ):
        raise ValueError(f"num_classes must be None or a positive int, got {config.num_classes!r}")
    names = ("image_channels", "image_size", "time_dim", "groups", "num_classes")
    numpy_ints = {
        name: int(value)
        for name in names
        if (value := getattr(config, name)) is not None and type(value) is not int
    }
    if any(type(c) is not int for c in channels):
        numpy_ints["channels"] = type(channels)(int(c) for c in channels)
    return replace(config, **numpy_ints) if numpy_ints else config


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(N, dim)`` of integer timesteps ``t`` of shape ``(N,)``.

    Half the entries are ``cos(t * f_k)`` and half ``sin(t * f_k)`` with frequencies
    ``f_k = max_period ** (-k / (dim / 2))``, as in the Transformer's position encoding.
    ``dim`` must be an even positive int.
    """
    if not isinstance(t, torch.Tensor) or t.ndim != 1:
        raise ValueError(f"t must be a 1-d tensor (N,) of timesteps, got {_describe(t)}")
    if not _is_int(dim) or dim < 2 or dim % 2:
        raise ValueError(f"dim must be an even int >= 2 (sine and cosine halves), got {dim!r}")
    if not _is_finite(max_period) or max_period <= 0:
        raise ValueError(f"max_period must be a finite number > 0, got {max_period!r}")
    dim, max_period = int(dim), _plain(max_period)
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )  # (half,)
    args = t.float()[:, None] * freqs[None]  # (N, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)  # (N, dim)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the embedding added in between, plus a skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (N, c_out, H, W)
        h = h + self.emb(emb)[:, :, None, None]  # broadcast (N, c_out) over H, W
        h = self.conv2(F.silu(self.norm2(h)))  # (N, c_out, H, W)
        return h + self.skip(x)


class TinyUNet(nn.Module):
    """Noise predictor ``eps_theta(x_t, t[, y])`` for ``(N, C, S, S)`` images, S = image_size."""

    def __init__(self, config: UNetConfig | None = None):
        super().__init__()
        config = _check_config(UNetConfig() if config is None else config)
        self.config = config
        (c, d), e, g = config.channels, config.time_dim, config.groups
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        # One extra row for the "no label" token used by classifier-free guidance.
        self.label_emb = (
            nn.Embedding(config.num_classes + 1, e) if config.num_classes is not None else None
        )
        self.conv_in = nn.Conv2d(config.image_channels, c, 3, padding=1)  # (N, c, 8, 8)
        self.down1 = ResBlock(c, c, e, g)  # (N, c, 8, 8), kept as skip
        self.pool1 = nn.Conv2d(c, c, 3, stride=2, padding=1)  # (N, c, 4, 4)
        self.down2 = ResBlock(c, d, e, g)  # (N, d, 4, 4), kept as skip
        self.pool2 = nn.Conv2d(d, d, 3, stride=2, padding=1)  # (N, d, 2, 2)
        self.mid = ResBlock(d, d, e, g)  # (N, d, 2, 2)
        self.up2 = ResBlock(2 * d, d, e, g)  # in: cat with skip (N, 2d, 4, 4)
        self.up1 = ResBlock(d + c, c, e, g)  # in: cat with skip (N, d + c, 8, 8)
        self.norm_out = nn.GroupNorm(g, c)
        self.conv_out = nn.Conv2d(c, config.image_channels, 3, padding=1)  # (N, C, 8, 8)
        # Start as a zero predictor, so the first loss is the noise's variance (about 1).
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def null_labels(self, n: int, device: torch.device) -> torch.Tensor:
        """``(n,)`` labels that all mean "no label" (index ``num_classes``)."""
        if self.config.num_classes is None:
            raise ValueError("this model is unconditional (num_classes=None): it has no labels")
        if not _is_int(n) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        return torch.full((int(n),), self.config.num_classes, dtype=torch.long, device=device)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict the noise in ``x (N, C, S, S)`` at timesteps ``t (N,)``.

        ``x`` must be floating-point with the weights' dtype (float32 unless the model was
        converted), except under ``torch.autocast`` for ``x``'s device type, which casts
        per operation (e.g. bfloat16 ``x`` into a float32 model). A
        conditional model takes labels ``y (N,)`` in ``[0, num_classes]``, where
        ``num_classes`` means "no label" (also what ``y=None`` gives).
        """
        cfg = self.config
        shape = (cfg.image_channels, cfg.image_size, cfg.image_size)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {_describe(x)}")
        if x.ndim != 4 or tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"x must have shape (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}"
            )
        dtype = self.conv_in.weight.dtype
        if not x.is_floating_point():
            raise TypeError(
                f"x must be a floating-point tensor ({dtype} like the model's weights), "
                f"got {x.dtype}"
            )
        if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(
                f"x must be {dtype} like the model's weights (or any floating dtype under "
                f"torch.autocast for {x.device.type!r}), got {x.dtype}"
            )
        n = x.shape[0]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be a torch.Tensor, got {_describe(t)}")
        if t.shape != (n,):
            raise ValueError(f"t must have shape ({n},), got {tuple(t.shape)}")
        emb = self.time_mlp(timestep_embedding(t, cfg.time_dim))  # (N, e)
        if self.label_emb is not None:
            y = self.null_labels(n, x.device) if y is None else y
            if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int32, torch.int64):
                raise TypeError(f"y must be an int32 or int64 tensor, got {_describe(y)}")
            if y.shape != (n,):
                raise ValueError(f"y must have shape ({n},), got {tuple(y.shape)}")
            if n and ((y < 0) | (y > cfg.num_classes)).any():
                raise ValueError(
                    f"y must lie in [0, {cfg.num_classes}] ({cfg.num_classes} means no label)"
                )
            emb = emb + self.label_emb(y)  # (N, e)
        elif y is not None:
            raise ValueError("this model is unconditional (num_classes=None); pass y=None")
        h = self.conv_in(x)  # (N, c, 8, 8)
        h1 = self.down1(h, emb)  # (N, c, 8, 8)
        h2 = self.down2(self.pool1(h1), emb)  # (N, d, 4, 4)
        h = self.mid(self.pool2(h2), emb)  # (N, d, 2, 2)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (N, d, 4, 4)
        h = self.up2(torch.cat([h, h2], dim=1), emb)  # (N, d, 4, 4)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")  # (N, d, 8, 8)
        h = self.up1(torch.cat([h, h1], dim=1), emb)  # (N, c, 8, 8)
        return self.conv_out(F.silu(self.norm_out(h)))  # (N, C, 8, 8)
