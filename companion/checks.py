"""Argument checks shared by the modules of ``companion``.

Python and NumPy numbers are accepted alike; bools never count as numbers. Each ``check_*``
returns the value as a plain Python ``int`` or ``float`` so callers use one type.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np


def is_integer(value: object) -> bool:
    """True for a Python or NumPy integer (any ``numbers.Integral``), False for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """True for a Python or NumPy real number (any ``numbers.Real``), False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_positive_int(**values: object) -> list[int]:
    """Return the values as Python ints if each is an int >= 1 (not a bool); else raise."""
    for name, value in values.items():
        if not is_integer(value) or value < 1:
            raise ValueError(f"{name} must be a positive int (>= 1), got {value!r}")
    return [int(value) for value in values.values()]


def check_number(name: str, value: object, ok: Callable[[float], bool], accepted: str) -> float:
    """Return ``value`` as a Python float if it is a finite real number (Python or NumPy, not
    a bool) for which ``ok`` holds; raise otherwise."""
    if not (is_real(value) and math.isfinite(value) and ok(value)):
        raise ValueError(f"{name} must be a finite number {accepted}, got {value!r}")
    return float(value)
