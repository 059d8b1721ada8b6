"""Checks of hyperparameters where they are given: one ``ValueError`` naming the owner and the
argument (``Adam: lr must be > 0 (got -1)``) instead of a failure far from the cause.

Used by the optimizers, layers, models and the Trainer; the command line checks its flags the
same way before any data is read (``cli``).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["size", "positive", "non_negative", "fraction", "optional_positive", "float_dtype", "flag"]

#: Floating dtypes the models and layers compute in (float16 has no kernels, and its range is too
#: small for the losses' intermediate values).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def size(owner, name, value, minimum=1):
    """An integer >= ``minimum`` (sizes, counts, epochs); returns it as an ``int``."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum} (got {value!r})")
    return int(value)


def positive(owner, name, value):
    """A finite real number > 0 (learning rates, eps); returns it as a ``float``."""
    if not _is_real(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a finite number > 0 (got {value!r})")
    return float(value)


def optional_positive(owner, name, value):
    """None, or a finite real number > 0 (``clip_norm``)."""
    return None if value is None else positive(owner, name, value)


def non_negative(owner, name, value):
    """A finite real number >= 0 (weight decay, init scales)."""
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0 (got {value!r})")
    return float(value)


def fraction(owner, name, value):
    """A real number in [0, 1) (momentum, Adam's betas)."""
    if not _is_real(value) or not 0 <= value < 1:
        raise ValueError(f"{owner}: {name} must be in [0, 1) (got {value!r})")
    return float(value)


def flag(owner, name, value):
    """A bool (numpy's too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{owner}: {name} must be True or False (got {value!r})")
    return bool(value)


def float_dtype(owner, value, name="dtype"):
    """float32 or float64, as a numpy dtype."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        dtype = None
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{owner}: {name} must be float32 or float64 (got {dtype.name if dtype is not None else repr(value)})")
    return dtype
