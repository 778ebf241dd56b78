"""Device selection and seeding, in one place for the whole book.

Every notebook calls :func:`pick_device` once and passes the result on. The environment
variable ``COMPANION_DEVICE`` overrides the automatic choice, so a reader can force
``cpu`` on a machine with a GPU (for example, to reproduce the CPU timings on the status
page) without editing a notebook.
"""

from __future__ import annotations

import os
import random
import re

import numpy as np
import torch

ENV_VAR = "COMPANION_DEVICE"
_DEVICE_PATTERN = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def _available(name: str) -> bool:
    if name == "cpu":
        return True
    if name == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    # "cuda" or "cuda:N"
    if not torch.cuda.is_available():
        return False
    index = int(name.split(":")[1]) if ":" in name else 0
    return index < torch.cuda.device_count()


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device the book runs on.

    Order of precedence: ``prefer`` if given, then the ``COMPANION_DEVICE`` environment
    variable, then the first available of CUDA, Apple MPS and CPU.

    Raises ``ValueError`` for a name other than ``cpu``, ``mps``, ``cuda`` or ``cuda:N``,
    and ``RuntimeError`` when the requested device is not available on this machine.
    """
    requested = prefer if prefer is not None else os.environ.get(ENV_VAR, "").strip()
    if requested:
        if not isinstance(requested, str) or not _DEVICE_PATTERN.match(requested):
            raise ValueError(
                f"unknown device {requested!r}; accepted: 'cpu', 'mps', 'cuda' or 'cuda:N'"
            )
        if not _available(requested):
            raise RuntimeError(f"device {requested!r} was requested but is not available here")
        return torch.device(requested)
    for name in ("cuda", "mps"):
        if _available(name):
            return torch.device(name)
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a CPU generator.

    CPU and CUDA draw different random streams even from the same seed, so results that
    the book asserts are chosen to hold on both, not to match bit for bit.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def describe_device(device: torch.device) -> str:
    """A one-line, human-readable description such as ``cuda (NVIDIA H200)``."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "mps (Apple silicon)"
    return f"cpu ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"
