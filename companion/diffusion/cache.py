"""An on-disk cache of trained diffusion models, so chapters can share one training run.

A result is stored as safetensors (weights, EMA snapshots, losses) under a key that
hashes everything that decides it: the model and training configurations, the schedule's
betas, the training images and labels, the device type, the torch version and the source
code of the modules that build and train the model. Change any of them and the key
changes, so a stale model is never loaded. The cache lives in ``$COMPANION_CACHE`` if set,
else in ``_build/companion_cache`` at the repository root (ignored by git). It is only a
speed-up: every chapter also runs, within its time budget, from an empty cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from companion.diffusion.schedules import NoiseSchedule
from companion.diffusion.train import (
    TrainConfig,
    TrainResult,
    check_training_inputs,
    train_diffusion,
)

ENV_VAR = "COMPANION_CACHE"
_PACKAGE = Path(__file__).resolve().parent
_SOURCES = ("schedules.py", "ddpm.py", "guidance.py", "train.py", "cache.py")


def cache_dir() -> Path:
    """Where results go: ``$COMPANION_CACHE`` or ``<repo>/_build/companion_cache``."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env) if env else _PACKAGE.parent.parent / "_build" / "companion_cache"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:24]


def cache_key(
    model: nn.Module,
    schedule: NoiseSchedule,
    images: torch.Tensor,
    labels: torch.Tensor | None,
    config: TrainConfig,
) -> str:
    """A hex key for one training run (see the module docstring for what it covers)."""
    check_training_inputs(model, schedule, images, labels, config)
    model_config = getattr(model, "config", None)
    described = {
        "model": type(model).__module__ + "." + type(model).__qualname__,
        "model_config": dataclasses.asdict(model_config)
        if dataclasses.is_dataclass(model_config)
        else repr(model_config),
        "train_config": dataclasses.asdict(config),
        "device": schedule.device.type,
        "torch": torch.__version__,
    }
    sources = [(_PACKAGE / name).read_bytes() for name in _SOURCES]
    sources.append(Path(inspect.getfile(type(model))).read_bytes())  # the network's source
    data = [images.detach().cpu().contiguous().numpy().tobytes()]
    if labels is not None:
        data.append(labels.detach().cpu().contiguous().numpy().tobytes())
    return _digest(
        json.dumps(described, sort_keys=True, default=str).encode(),
        schedule.betas.detach().cpu().numpy().tobytes(),
        *data,
        *sources,
    )


def cached_train(
    build_model: Callable[[], nn.Module],
    schedule: NoiseSchedule,
    images: torch.Tensor,
    labels: torch.Tensor | None = None,
    config: TrainConfig | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> tuple[TrainResult, bool]:
    """Train ``build_model()`` with :func:`train_diffusion`, or load the same run from disk.

    Returns ``(result, loaded)``; ``loaded`` says whether it came from the cache. A loaded
    result has the EMA weights, snapshots, losses and the seconds of the original run; its
    ``model`` is the EMA model too, since raw weights are not stored.
    """
    config = TrainConfig() if config is None else config
    if isinstance(build_model, nn.Module) or not callable(build_model):
        raise TypeError(
            "build_model must be a callable that returns a new model, "
            f"got {type(build_model).__name__}"
        )
    if not isinstance(use_cache, bool):
        raise TypeError(f"use_cache must be True or False, got {use_cache!r}")
    model = build_model()
    key = cache_key(model, schedule, images, labels, config)
    path = cache_dir() / f"diffusion-{key}.safetensors"
    if use_cache and path.is_file():
        tensors = load_file(path, device="cpu")
        with safe_open(path, framework="pt") as fh:  # the metadata holds the wall time
            meta = fh.metadata() or {}
        ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
        model.load_state_dict(ema_state)
        model.to(schedule.device).eval()
        snapshots: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("snap."):
                _, step, name = k.split(".", 2)
                snapshots.setdefault(int(step), {})[name] = v
        losses = tensors["losses"].tolist()
        return TrainResult(model, model, losses, float(meta["seconds"]), snapshots), True
    result = train_diffusion(model, schedule, images, labels, config, progress)
    if use_cache:
        tensors = {
            f"ema.{k}": v.detach().cpu().contiguous()
            for k, v in result.ema_model.state_dict().items()
        }
        for step, state in result.snapshots.items():
            tensors.update({f"snap.{step}.{k}": v.contiguous() for k, v in state.items()})
        tensors["losses"] = torch.tensor(result.losses, dtype=torch.float32)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata={"seconds": repr(result.seconds)})
        os.replace(tmp, path)
    return result, False
