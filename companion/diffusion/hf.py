"""The digits task done the way a ``diffusers`` user would (chapter ``diffusers-comparison``).

``UNet2DModel`` as the network, ``DDPMScheduler.add_noise`` for the forward process,
``diffusers.training_utils.EMAModel`` for the average, and the library's pipelines for
sampling. Only the glue lives here; the chapter puts it next to ``companion``'s own code.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler, UNet2DModel
from diffusers.training_utils import EMAModel
from torch.nn import functional as F

from companion.progress import tqdm


@dataclass
class DiffusersConfig:
    block_out_channels: tuple[int, ...] = (16, 32, 32)  # 8x8, 4x4, 2x2, like TinyUNet
    layers_per_block: int = 1  # one resnet per level going down (two coming up)
    norm_num_groups: int = 8  # GroupNorm groups, as in TinyUNet


def diffusers_unet(config: DiffusersConfig | None = None) -> UNet2DModel:
    """A ``UNet2DModel`` for ``(N, 1, 8, 8)`` images with plain (attention-free) blocks."""
    config = config or DiffusersConfig()
    n = len(config.block_out_channels)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        layers_per_block=config.layers_per_block,
        block_out_channels=config.block_out_channels,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
        norm_num_groups=config.norm_num_groups,
    )


@dataclass
class DiffusersTrainResult:
    ema_unet: UNet2DModel
    losses: list[float]
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return len(self.losses) / self.seconds


def train_diffusers(
    unet: UNet2DModel,
    scheduler: DDPMScheduler,
    images: torch.Tensor,
    max_steps: int,
    max_seconds: float | None = None,
    batch_size: int = 128,
    lr: float = 2e-3,
    ema_decay: float = 0.995,
    seed: int = 0,
    progress: bool = True,
) -> DiffusersTrainResult:
    """Train ``unet`` on ``images (N, 1, 8, 8)`` for ``max_steps`` or ``max_seconds``.

    The loop is the one in the diffusers training examples, cut to its essentials: add noise
    with the scheduler, predict it, regress, step, update the EMA. Whichever limit comes
    first ends training, so two models can be given the same wall-clock budget.
    """
    if max_steps < 1 or (max_seconds is not None and max_seconds <= 0):
        raise ValueError("max_steps must be >= 1 and max_seconds None or > 0")
    device = images.device
    generator = torch.Generator().manual_seed(seed)
    unet.to(device).train()
    ema = EMAModel(unet.parameters(), decay=ema_decay, use_ema_warmup=False)
    opt = torch.optim.Adam(unet.parameters(), lr=lr)
    losses = []
    start = time.perf_counter()
    for _ in tqdm(range(max_steps), desc="diffusers training", disable=not progress):
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
        x0 = images[idx.to(device)]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(
            0, scheduler.config.num_train_timesteps, (batch_size,), generator=generator
        ).to(device)
        noisy = scheduler.add_noise(x0, noise, t)
        loss = F.mse_loss(unet(noisy, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        ema.step(unet.parameters())
        losses.append(loss.item())
        if max_seconds is not None and time.perf_counter() - start >= max_seconds:
            break
    seconds = time.perf_counter() - start
    ema_unet = copy.deepcopy(unet).eval()
    ema.copy_to(ema_unet.parameters())
    return DiffusersTrainResult(ema_unet, losses, seconds)


def pipeline_images_to_tensor(images) -> torch.Tensor:
    """Pipeline output (``output_type="np"``: ``(N, H, W, 1)`` in [0, 1]) to ``(N, 1, H, W)``
    in [-1, 1], the range the evaluator expects."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"expected (N, H, W, 1) images, got {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2) * 2 - 1  # (N, 1, H, W)
