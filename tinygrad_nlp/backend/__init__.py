"""The one seam between the framework and the loops numpy cannot fuse.

A handful of array primitives (gather rows, gather-sum, gather-dot, scatter-sum, an optimizer's
row update checked all or nothing, the sampler's table search) are all the compiled code the
project has. Each exists twice, with one signature: in [`numpy_backend`][tinygrad_nlp.backend.numpy_backend]
(plain numpy and scipy, the reference) and in ``compiled`` (numba
loops). One of them is chosen once, at import, and is ``backend.ops``; Functions and optimizers
call ``backend.ops.<primitive>(...)`` and never ask which one runs.

The compiled implementation is the default when numba imports; ``TINYGRAD_NLP_JIT=0`` in the
environment, or ``use("numpy")``, selects the reference. ``docs/design.md`` says how a GPU
implementation (CuPy) would be a third module with the same functions.
"""

from __future__ import annotations

import os

from tinygrad_nlp.backend import numpy_backend

__all__ = ["ops", "use", "name", "available", "IMPLEMENTATIONS"]

IMPLEMENTATIONS = ("compiled", "numpy")


def _load(which):
    if which == "numpy":
        return numpy_backend
    from tinygrad_nlp.backend import compiled

    if not compiled.AVAILABLE:
        raise RuntimeError("the compiled backend needs numba: pip install numba")
    return compiled


def available() -> tuple[str, ...]:
    """The implementations that can run here: ``("compiled", "numpy")``, or ``("numpy",)`` without numba."""
    try:
        _load("compiled")
    except RuntimeError:
        return ("numpy",)
    return IMPLEMENTATIONS


def _from_env():
    value = os.environ.get("TINYGRAD_NLP_JIT", "1").strip().lower()
    if value in ("0", "false", "no", "off"):
        return "numpy"
    if value in ("1", "true", "yes", "on", ""):
        return "compiled" if "compiled" in available() else "numpy"
    raise ValueError(f"TINYGRAD_NLP_JIT must be 0 or 1, got {value!r}")


ops = _load(_from_env())


def name() -> str:
    """Which implementation ``ops`` is: "compiled" or "numpy"."""
    return ops.NAME


def use(which: str) -> str:
    """Make ``which`` ("compiled" or "numpy") the implementation; returns the previous name.

    Meant for tests and benchmarks that compare the two; a program chooses once, at start."""
    global ops
    if which not in IMPLEMENTATIONS:
        raise ValueError(f"backend must be one of {IMPLEMENTATIONS}, got {which!r}")
    previous, ops = ops.NAME, _load(which)
    return previous
