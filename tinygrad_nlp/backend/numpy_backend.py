"""The reference implementation of the backend primitives: numpy and scipy, no compiled code.

Every function here has a twin of the same name and signature in
``tinygrad_nlp.backend.compiled``; the tests hold the two to the same answers. This one runs
when numba is missing or ``TINYGRAD_NLP_JIT=0``, and for inputs a compiled loop does not take.
"""

from __future__ import annotations

import numpy as np

NAME = "numpy"

__all__ = ["update_rows", "gather_rows", "gather_sum", "gather_dot", "scatter_sum", "search_cdf",
           "lstm_gates", "lstm_gates_backward", "gru_gates", "gru_gates_backward", "rnn_gates", "rnn_gates_backward"]


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
    import scipy.sparse as _sp  # here, not at import: the compiled backend never needs scipy

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


# ----------------------------------------------------------------------------- recurrent gates
# The element-wise work of one time step of a recurrent cell, between the matrix products that
# stay in BLAS. ``a``/``hw`` arrive holding ``h_prev @ W_h`` and are finished in place; every
# other output is written into the buffer the caller passes, so a time loop allocates nothing.
# All arrays are (N, ...) slices of one dtype; the blocks of a gate row follow PyTorch's order.

def _sigmoid_(a):
    """Logistic sigmoid in place, as ``0.5 * tanh(a / 2) + 0.5`` (no overflow for any ``a``)."""
    a *= 0.5
    np.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def lstm_gates(a, xw, c_prev, c, tanh_c, h):
    """One LSTM step forward. ``a`` (N, 4H) holds ``h_prev @ W_h``; adds the input projection
    ``xw`` and activates the gates i, f, g, o in place (sigmoid, sigmoid, tanh, sigmoid), then
    writes ``c = f * c_prev + i * g``, ``tanh_c = tanh(c)`` and ``h = o * tanh_c`` (N, H)."""
    H = c.shape[1]
    a += xw
    _sigmoid_(a[:, : 2 * H])
    np.tanh(a[:, 2 * H : 3 * H], out=a[:, 2 * H : 3 * H])
    _sigmoid_(a[:, 3 * H :])
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    np.multiply(f, c_prev, out=c)
    c += i * g
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)


def lstm_gates_backward(gates, c_prev, tanh_c, dh, dc, dA):
    """One LSTM step backward from its activated ``gates`` (N, 4H), ``c_prev`` and ``tanh_c``.

    ``dh`` is dL/dh of the step; ``dc`` arrives holding what reaches its ``c`` from later steps
    and leaves holding dL/dc_prev. ``dA`` (N, 4H) receives dL/d(gate pre-activations)."""
    H = c_prev.shape[1]
    i, f, g, o = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    dc += dh * o * (1 - tanh_c * tanh_c)  # what comes through h = o * tanh(c)
    dA[:, :H] = dc * g * i * (1 - i)
    dA[:, H : 2 * H] = dc * c_prev * f * (1 - f)
    dA[:, 2 * H : 3 * H] = dc * i * (1 - g * g)
    dA[:, 3 * H :] = dh * tanh_c * o * (1 - o)
    dc *= f


def gru_gates(hw, xw, b_h, h_prev, gates, h):
    """One GRU step forward. ``hw`` (N, 3H) holds ``h_prev @ W_h`` and gets ``b_h`` added in
    place (its n block is then ``hn = h_prev W_hn + b_hn``, which the backward needs); ``gates``
    (N, 3H) receives ``r, z`` and ``n = tanh(xw_n + r * hn)``; ``h = (1 - z) * n + z * h_prev``."""
    H = h.shape[1]
    hw += b_h
    rz = gates[:, : 2 * H]
    np.add(xw[:, : 2 * H], hw[:, : 2 * H], out=rz)
    _sigmoid_(rz)
    r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    np.multiply(r, hw[:, 2 * H :], out=n)
    n += xw[:, 2 * H :]
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n  # (1 - z) * n + z * h_prev


def gru_gates_backward(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev):
    """One GRU step backward from its ``gates`` (r, z, n) and ``hw`` (``hn`` in its n block).

    Writes dL/d(xw) into ``d_xw`` and dL/d(hw) into ``d_hw`` (N, 3H), and the direct part of
    dL/dh_prev, ``dh * z``, into ``dh_prev`` (the caller adds ``d_hw @ W_h^T``)."""
    H = dh.shape[1]
    r, z, n, hn = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :], hw[:, 2 * H :]
    dn = dh * (1 - z)
    dn *= 1 - n * n  # dL/d(pre-activation of n)
    d_xw[:, :H] = dn * hn * r * (1 - r)
    d_xw[:, H : 2 * H] = dh * (h_prev - n) * z * (1 - z)
    d_xw[:, 2 * H :] = dn
    d_hw[:, : 2 * H] = d_xw[:, : 2 * H]
    np.multiply(dn, r, out=d_hw[:, 2 * H :])
    np.multiply(dh, z, out=dh_prev)


def rnn_gates(a, xw):
    """One Elman RNN step forward: ``a`` (N, H) holds ``h_prev @ W_h`` and becomes ``tanh(a + xw)``."""
    a += xw
    np.tanh(a, out=a)


def rnn_gates_backward(h, dh, dA):
    """One Elman RNN step backward: ``dA = dh * (1 - h^2)`` for the step's output ``h``."""
    np.multiply(h, h, out=dA)
    np.subtract(1, dA, out=dA)
    dA *= dh
