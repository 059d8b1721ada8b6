"""The reference implementation of the backend primitives: numpy and scipy, no compiled code.

Every function here has a twin of the same name and signature in
``tinygrad_nlp.backend.compiled``; the tests hold the two to the same answers. This one runs
when numba is missing or ``TINYGRAD_NLP_JIT=0``, and for inputs a compiled loop does not take.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as _sp

NAME = "numpy"

__all__ = ["update_rows", "gather_rows", "gather_sum", "gather_dot", "scatter_sum", "search_cdf"]


def all_finite(a):
    """True when every element of ``a`` is finite: its min and max are (numpy's min and max
    propagate NaN), two fast reductions instead of a scan that builds a mask."""
    if not a.size:
        return True
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def update_rows(rule, data, states, rows, grad, hyper):
    """Apply an optimizer's element-wise ``rule`` to ``rows`` of ``data`` and its state tables,
    all or nothing.

    ``rule(w, g, *state, hyper)`` returns the new weight (and the new state values, in order);
    here it runs on whole arrays of gathered rows. ``rows`` is None for the whole array, else
    sorted unique int64 ids with ``grad`` (R, ...) their gradient rows. ``hyper`` is the rule's
    scalars in ``data``'s dtype, the last one the L2 weight decay added to the gradient first.
    Returns True when written, False when some new value was not finite (nothing written).
    """
    if rows is None:
        w, old = data, states
    else:
        w, old = data[rows], [s[rows] for s in states]
    decay = hyper[-1]
    if decay:
        grad = grad + decay * w
    with np.errstate(all="ignore"):  # a non-finite result is refused below, not warned about
        new = rule(w, grad, *old, hyper)
    if type(new) is not tuple:
        new = (new,)
    if not all(all_finite(a) for a in new):
        return False
    for table, values in zip((data, *states), new):
        if rows is None:
            table[...] = values
        else:
            table[rows] = values
    return True


def gather_rows(table, ids):
    """``table[ids]`` for a 2-D ``table`` and integer ``ids`` of any shape."""
    return table.take(ids, axis=0)


def _by_group(ids, weights, group, shape):
    """The sparse matrix with ``group`` consecutive entries per row: row n holds ids
    ``ids[n*group:(n+1)*group]`` with entries ``weights``, ``shape`` (n, num_columns)."""
    ids = np.ascontiguousarray(ids).ravel()
    indptr = np.arange(0, ids.size + 1, group, dtype=np.int64)
    return _sp.csr_matrix((np.ascontiguousarray(weights).ravel(), ids.astype(np.int64, copy=False), indptr),
                          shape=shape)


def gather_sum(table, ids, weights, group):
    """``out[n] = sum_c weights[n*group + c] * table[ids[n*group + c]]``: (ids.size // group, H)."""
    n = ids.size // group
    return np.asarray(_by_group(ids, weights, group, (n, table.shape[0])) @ table, dtype=table.dtype)


def gather_dot(table, ids, h):
    """``out[n, k] = table[ids[n, k]] . h[n]`` for (N,) or (N, K) ``ids`` and (N, H) ``h``;
    ``out`` has ``ids``' shape."""
    ids = np.asarray(ids)
    if h.shape != (ids.shape[0], table.shape[1]):
        raise ValueError(f"gather_dot: h must have shape ({ids.shape[0]}, {table.shape[1]}), got {h.shape}")
    rows = table.take(ids, axis=0)
    if ids.ndim == 1:
        return np.einsum("nh,nh->n", rows, h)
    return np.matmul(rows, h[:, :, None])[..., 0]


def scatter_sum(values, ids, weights, group, num_rows):
    """``out[ids[k]] += weights[k] * values[k // group]`` for every k: a (num_rows, H) array."""
    n = values.shape[0]
    return np.asarray(_by_group(ids, weights, group, (n, num_rows)).T @ values, dtype=values.dtype)


def search_cdf(cdf, keys, cache):
    """``np.searchsorted(cdf, keys, side="right")`` for keys in [0, 1) (a sampler's draw).
    ``cache`` is a dict the caller keeps per table (unused here)."""
    keys = np.asarray(keys)
    if keys.size < 512:
        return np.searchsorted(cdf, keys, side="right")
    # Binary searches for sorted keys walk the table in order: 2-3x faster than for random keys
    # (and far more at V = 1,000,000, where random probes miss the cache).
    flat = keys.ravel()
    order = np.argsort(flat)
    idx = np.empty(flat.shape, dtype=np.intp)
    idx[order] = np.searchsorted(cdf, flat[order], side="right")
    return idx.reshape(keys.shape)
