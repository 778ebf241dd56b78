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
# "cpu:0" and "mps:0" (how PyTorch may name the device of a tensor) mean "cpu" and "mps".
_DEVICE_PATTERN = re.compile(r"^(cpu(:0)?|mps(:0)?|cuda(:\d+)?)$")
_ACCEPTED = "accepted: 'cpu', 'mps', 'cuda' or 'cuda:N' ('cpu:0' and 'mps:0' mean 'cpu' and 'mps')"


def _available(name: str) -> bool:
    if name in ("cpu", "cpu:0"):
        return True
    if name in ("mps", "mps:0"):
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    # "cuda" or "cuda:N"
    if not torch.cuda.is_available():
        return False
    index = int(name.split(":")[1]) if ":" in name else 0
    return index < torch.cuda.device_count()


def _check_name(requested) -> str:
    if isinstance(requested, torch.device):
        requested = str(requested)
    if not isinstance(requested, str):
        raise TypeError(
            f"device must be a str or torch.device, got {type(requested).__name__}; {_ACCEPTED}"
        )
    if not _DEVICE_PATTERN.fullmatch(requested):
        raise ValueError(f"unknown device {requested!r}; {_ACCEPTED}")
    return requested


def as_device(device: torch.device | str | None) -> torch.device:
    """Validate a device argument of a public function; ``None`` means the CPU.

    Raises ``ValueError``/``TypeError`` for a name that is not a device and
    ``RuntimeError`` for a device this machine does not have.
    """
    if device is None:
        return torch.device("cpu")
    name = _check_name(device)
    if not _available(name):
        raise RuntimeError(f"device {name!r} was requested but is not available here")
    return torch.device(name)


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the device the book runs on.

    Order of precedence: ``prefer`` if given, then the ``COMPANION_DEVICE`` environment
    variable, then the first available of CUDA, Apple MPS and CPU.

    Raises ``ValueError`` for a name other than ``cpu``, ``mps``, ``cuda`` or ``cuda:N``,
    and ``RuntimeError`` when the requested device is not available on this machine.
    """
    if prefer is not None:
        return as_device(prefer)
    from_env = os.environ.get(ENV_VAR, "").strip()  # unset or empty: choose automatically
    if from_env:
        return as_device(from_env)
    for name in ("cuda", "mps"):
        if _available(name):
            return torch.device(name)
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices) and return a CPU generator.

    CPU and CUDA draw different random streams even from the same seed, so results that
    the book asserts are chosen to hold on both, not to match bit for bit.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative int below 2**63, got {seed!r}")
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
