"""Compiled kernels for the one hot loop numpy cannot fuse: the optimizers' row-sparse updates.

In numpy, a lazy Adam step over the R rows a batch touched is three row gathers, about a dozen
element-wise passes, a finiteness check and three scatters: each one a trip through memory. On
PTB's CBOW that was 60 % of a training step. Compiled with numba, an update is one pass over the
touched elements that writes their new weight and state in place, keeping the old values aside;
if any new value is not finite, the old ones are put back. That keeps the optimizers' guarantee
(a parameter is updated whole or not at all, never with NaN or inf) at a fraction of numpy's
cost.

numba is a dependency. Where it cannot be imported, or with ``TINYGRAD_NLP_JIT=0`` in the
environment, or after ``set_jit(False)``, :func:`jit_enabled` is False and the optimizers use
their numpy code, which is also the reference the tests hold these kernels to. The kernels are
compiled on first use, once per dtype (about half a second each), and cached on disk.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["jit_available", "jit_enabled", "set_jit", "fits", "sparse_sgd", "sparse_momentum",
           "sparse_adagrad", "sparse_adam"]


def _jit_from_env():
    value = os.environ.get("TINYGRAD_NLP_JIT", "1").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on", ""):
        return True
    raise ValueError(f"TINYGRAD_NLP_JIT must be 0 or 1, got {value!r}")


try:
    import numba as _numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    _numba = None

_enabled = _numba is not None and _jit_from_env()


def jit_available():
    """True when numba could be imported."""
    return _numba is not None


def jit_enabled():
    """True when the optimizers use the compiled kernels."""
    return _enabled


def set_jit(enabled):
    """Turn the compiled kernels on or off (off: numpy code). Returns the previous setting.

    Raises ``RuntimeError`` when asked to turn them on without numba installed."""
    global _enabled
    if enabled and _numba is None:
        raise RuntimeError("the compiled kernels need numba: pip install numba")
    previous, _enabled = _enabled, bool(enabled)
    return previous


def fits(data, grad):
    """True when a kernel can update ``data`` in place from ``grad`` (R, H): the JIT is on, both
    are 2-D C-contiguous float32 or float64 arrays of one dtype."""
    return (
        _enabled
        and data.ndim == 2
        and grad.ndim == 2
        and data.dtype == grad.dtype
        and data.dtype in (np.float32, np.float64)
        and data.flags.c_contiguous
        and data.flags.writeable
        and grad.flags.c_contiguous
    )


def _jit(fn):
    if _numba is None:  # pragma: no cover
        return fn
    # nogil: the two embedding tables are updated on two threads at once. No fastmath: it would
    # assume away the NaN and inf the finiteness check looks for.
    return _numba.njit(nogil=True, cache=True)(fn)


# Each kernel: rows (R,) int64, sorted and unique; grad (R, H). One pass writes the new values in
# place and keeps the old ones in ``old`` (R, S, H), summing ``new * 0`` on the way: 0 when every
# new value is finite, NaN otherwise. In that (rare) case a second pass puts the old values back.
# Measured inside PTB training this costs 5-15 % more than an unchecked update; computing into a
# scratch buffer and copying it over, or checking in a first pass, cost 40-70 % more (two trips
# through the cold table rows). Every scalar argument arrives in the tables' dtype, so float32
# stays float32.


@_jit
def _restore(old, rows, tables):
    for i in range(rows.size):
        r = rows[i]
        for s in range(len(tables)):
            table = tables[s]
            for j in range(table.shape[1]):
                table[r, j] = old[i, s, j]


@_jit
def _sgd(data, rows, grad, lr, decay, old):
    zero = data.dtype.type(0)
    bad = zero
    for i in range(rows.size):
        r = rows[i]
        for j in range(data.shape[1]):
            w = data[r, j]
            old[i, 0, j] = w
            w_new = w - lr * (grad[i, j] + decay * w)
            data[r, j] = w_new
            bad += w_new * zero
    if bad != zero:
        _restore(old, rows, (data,))
        return False
    return True


@_jit
def _momentum(data, vel, rows, grad, lr, mu, decay, old):
    zero = data.dtype.type(0)
    bad = zero
    for i in range(rows.size):
        r = rows[i]
        for j in range(data.shape[1]):
            w, v = data[r, j], vel[r, j]
            old[i, 0, j] = w
            old[i, 1, j] = v
            v_new = mu * v - lr * (grad[i, j] + decay * w)
            w_new = w + v_new
            data[r, j] = w_new
            vel[r, j] = v_new
            bad += (v_new + w_new) * zero
    if bad != zero:
        _restore(old, rows, (data, vel))
        return False
    return True


@_jit
def _adagrad(data, hist, rows, grad, lr, eps, decay, old):
    zero = data.dtype.type(0)
    bad = zero
    for i in range(rows.size):
        r = rows[i]
        for j in range(data.shape[1]):
            w, h = data[r, j], hist[r, j]
            old[i, 0, j] = w
            old[i, 1, j] = h
            g = grad[i, j] + decay * w
            h_new = h + g * g
            w_new = w - lr * g / (math.sqrt(h_new) + eps)
            data[r, j] = w_new
            hist[r, j] = h_new
            bad += (h_new + w_new) * zero
    if bad != zero:
        _restore(old, rows, (data, hist))
        return False
    return True


@_jit
def _adam(data, m, v, rows, grad, beta1, beta2, eps, step_size, decay, old):
    zero = data.dtype.type(0)
    one = data.dtype.type(1)
    c1, c2 = one - beta1, one - beta2
    bad = zero
    for i in range(rows.size):
        r = rows[i]
        for j in range(data.shape[1]):
            w, mo, vo = data[r, j], m[r, j], v[r, j]
            old[i, 0, j] = w
            old[i, 1, j] = mo
            old[i, 2, j] = vo
            g = grad[i, j] + decay * w
            m_new = beta1 * mo + c1 * g
            v_new = beta2 * vo + c2 * (g * g)
            w_new = w - step_size * (m_new / (math.sqrt(v_new) + eps))
            data[r, j] = w_new
            m[r, j] = m_new
            v[r, j] = v_new
            bad += (m_new + v_new + w_new) * zero
    if bad != zero:
        _restore(old, rows, (data, m, v))
        return False
    return True


def _buffer(grad, slots):
    return np.empty((grad.shape[0], slots, grad.shape[1]), dtype=grad.dtype)


def _rows(rows):
    return np.ascontiguousarray(rows, dtype=np.int64)


# The public wrappers take Python floats and return True when the update was written, False
# when some new value was not finite (then nothing was written). Callers check :func:`fits` first.

def sparse_sgd(data, rows, grad, lr, weight_decay=0.0):
    """``data[rows] -= lr * (grad + weight_decay * data[rows])``, all or nothing."""
    dt = data.dtype.type
    return bool(_sgd(data, _rows(rows), grad, dt(lr), dt(weight_decay), _buffer(grad, 1)))


def sparse_momentum(data, velocity, rows, grad, lr, momentum, weight_decay=0.0):
    """``v = momentum * v - lr * g; data += v`` on ``rows``, all or nothing."""
    dt = data.dtype.type
    return bool(_momentum(data, velocity, _rows(rows), grad, dt(lr), dt(momentum), dt(weight_decay),
                          _buffer(grad, 2)))


def sparse_adagrad(data, history, rows, grad, lr, eps, weight_decay=0.0):
    """``h += g * g; data -= lr * g / (sqrt(h) + eps)`` on ``rows``, all or nothing."""
    dt = data.dtype.type
    return bool(_adagrad(data, history, _rows(rows), grad, dt(lr), dt(eps), dt(weight_decay), _buffer(grad, 2)))


def sparse_adam(data, m, v, rows, grad, beta1, beta2, eps, step_size, weight_decay=0.0):
    """Adam's moment updates and ``data -= step_size * m / (sqrt(v) + eps)`` on ``rows``, all or
    nothing (``step_size`` includes the bias correction)."""
    dt = data.dtype.type
    return bool(_adam(data, m, v, _rows(rows), grad, dt(beta1), dt(beta2), dt(eps), dt(step_size),
                      dt(weight_decay), _buffer(grad, 3)))
