"""The switch between compiled and numpy code, under its earlier name.

The primitives themselves live in ``tinygrad_nlp.backend``; these functions turn the compiled
implementation on and off (``set_jit(False)`` is ``backend.use("numpy")``) for code written
against this module.
"""

from __future__ import annotations

from tinygrad_nlp import backend
from tinygrad_nlp.backend.compiled import (  # noqa: F401
    build_guide, fits_rows as _fits_rows, gather_dot, gather_rows, gather_sum, guided_search, prefetch_row,
    scatter_sum,
)

__all__ = ["jit_available", "jit_enabled", "set_jit", "fits_rows", "gather_sum", "gather_rows", "gather_dot",
           "scatter_sum", "build_guide", "guided_search"]


def jit_available():
    """True when numba could be imported."""
    return "compiled" in backend.available()


def jit_enabled():
    """True when the compiled backend is the one in use."""
    return backend.name() == "compiled"


def set_jit(enabled):
    """Use the compiled backend (True) or the numpy one (False); returns the previous setting.

    Raises ``RuntimeError`` when asked to turn it on without numba installed."""
    return backend.use("compiled" if enabled else "numpy") == "compiled"


def fits_rows(table, ids, weights=None):
    """True when the compiled gathers are in use and can take these arrays."""
    return jit_enabled() and _fits_rows(table, ids, weights)
