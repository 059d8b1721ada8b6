"""Embedding lookups, the word2vec building blocks.

* ``embedding(W, idx)`` gathers rows ``W[idx]`` (the book's Embedding layer). Its backward
  scatter-adds the output gradient into ``W``'s rows, summing repeated ids.
* ``embedding_bag(W, idx)`` gathers and averages (or sums) the rows of each row of ``idx`` in one
  node: CBoW's "average the context vectors" without materialising the (N, C, H) gather.
* ``embedding_dot(W, h, idx)`` scores ``out[n] = W[idx[n]] . h[n]`` (the book's EmbeddingDot):
  with ``idx`` of shape (N, K) one node scores a positive and its negatives at once.

With ``sparse=True`` the gradient of ``W`` is a [`SparseRows`][tinygrad_nlp.sparse.SparseRows] holding
only the touched rows, so a step costs O(batch x H) rather than O(V x H).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import backend
from tinygrad_nlp.core import Function, Variable
from tinygrad_nlp.sparse import (  # noqa: F401 - check_ids and InvalidIdError are part of this module's API
    Ids, InvalidIdError, SparseRows, check_ids, scatter_add_dense, scatter_add_rows,
)

__all__ = [
    "embedding", "embedding_bag", "embedding_dot", "check_ids", "InvalidIdError",
    "Embedding", "EmbeddingBag", "EmbeddingDot", "EmbeddingGrad",
]


def _unique_of(ids):
    """The cached (unique, inverse) of an [`Ids`][Ids], else None (computed when needed)."""
    return ids.unique_inverse() if isinstance(ids, Ids) else None


def _sparse_grad(ids, rows_values, shape, weights=None, group=1, unique=None):
    rows, values = scatter_add_rows(ids, rows_values, weights=weights, group=group, unique=unique)
    return SparseRows(rows, values, shape, coalesced=True)


class EmbeddingGrad(Function):
    """Dense scatter-add of row gradients into a (V, H) matrix; the recorded backward of the
    embedding Functions, itself differentiable (its backward is a gather)."""

    def __init__(self, idx, num_rows, weights=None, group=1):
        self.idx, self.num_rows, self.weights, self.group = idx, num_rows, weights, group

    def forward(self, g):
        H = g.shape[-1]
        return scatter_add_dense(self.idx, g.reshape(-1, H), self.num_rows, weights=self.weights, group=self.group)

    def backward(self, gW):
        if self.group == 1:
            return embedding(gW, self.idx)
        return _bag_forward_variable(gW, self.idx, self.weights)


class Embedding(Function):
    """``W[idx]``: (V, H) weights and integer ids of any shape give ``idx.shape + (H,)``."""

    def __init__(self, idx, sparse=False, unique=None):
        self.idx, self.sparse, self.unique = idx, sparse, unique

    def forward(self, W):
        return backend.ops.gather_rows(W, self.idx)

    def backward_arrays(self, gy):
        W = self.inputs[0].data
        ids = self.idx.ravel()
        rows = gy.reshape(ids.size, W.shape[1])
        if self.sparse:
            return _sparse_grad(ids, rows, W.shape, unique=self.unique)
        return scatter_add_dense(ids, rows, W.shape[0])

    def backward(self, gy):
        # The recorded path (create_graph=True) is always dense so it can be differentiated.
        W = self.inputs[0]
        return EmbeddingGrad(self.idx, W.shape[0])(gy)


def embedding(W: Variable, idx: Ids | ArrayLike, sparse: bool = False) -> Variable:
    """Gather rows of ``W``.

    Args:
        W: (V, H) Variable/Parameter (float32 or float64).
        idx: integer array of any shape with values in ``[0, V)`` (or an
            [`Ids`][tinygrad_nlp.sparse.Ids], whose checks and sort are reused); a negative,
            too large or non-integer id raises [`InvalidIdError`][InvalidIdError] naming it.
        sparse: make ``W``'s gradient a row-sparse [`SparseRows`][SparseRows] (only the touched rows).

    Returns:
        Variable of shape ``idx.shape + (H,)``. Repeated ids get their gradients summed.
    """
    if W.ndim != 2:
        raise ValueError(f"embedding: W must be a (V, H) matrix, got shape {W.shape}")
    unique = _unique_of(idx)
    idx = check_ids(idx, W.shape[0])
    return Embedding(idx, sparse, unique)(W)


def _bag_weights(idx, mode, dtype):
    C = idx.shape[1]
    value = 1.0 / C if mode == "mean" else 1.0
    return np.full(idx.shape, value, dtype=dtype)


def _bag_forward_variable(W, idx, weights):
    """Recorded (differentiable) gather-and-weight: sum_c weights[n, c] * W[idx[n, c]]."""
    from tinygrad_nlp.functions.reduce import sum as _sum

    rows = embedding(W, idx)
    return _sum(rows * weights[..., None], axis=1)


class EmbeddingBag(Function):
    """Weighted sum of gathered rows per bag: ``out[n] = sum_c w[n, c] * W[idx[n, c]]``."""

    def __init__(self, idx, weights, sparse=False, unique=None):
        self.idx, self.weights, self.sparse, self.unique = idx, weights, sparse, unique

    def forward(self, W):
        return backend.ops.gather_sum(W, self.idx, self.weights, self.idx.shape[1])

    def backward_arrays(self, gy):
        W = self.inputs[0].data
        C = self.idx.shape[1]
        if self.sparse:
            return _sparse_grad(self.idx, gy, W.shape, weights=self.weights, group=C, unique=self.unique)
        return scatter_add_dense(self.idx, gy, W.shape[0], weights=self.weights, group=C)

    def backward(self, gy):
        W = self.inputs[0]
        return EmbeddingGrad(self.idx, W.shape[0], weights=self.weights, group=self.idx.shape[1])(gy)


def embedding_bag(W: Variable, idx: Ids | ArrayLike, mode: str = "mean", sparse: bool = False,
                  weights: Variable | ArrayLike | None = None) -> Variable:
    """Gather the rows named in each row of ``idx`` and average (or sum) them, in one node.

    Equivalent to ``F.mean(F.embedding(W, idx), axis=1)`` (``mode="mean"``) or its sum, but the
    (N, C, H) gathered tensor is never built: forward and backward are sparse matrix products.

    Args:
        W: (V, H) weights. idx: (N, C) integer ids in ``[0, V)``. mode: "mean" or "sum".
        sparse: make ``W``'s gradient row-sparse.
        weights: optional (N, C) non-negative float array weighting each id (0 leaves it out):
            "sum" gives ``sum_c weights[n, c] * W[idx[n, c]]``, "mean" divides by each row's
            weight total (a row whose weights are all 0 gives zeros). word2vec's randomly
            shrunk window is a 0/1 mask here.

    Returns:
        Variable of shape (N, H).
    """
    if W.ndim != 2:
        raise ValueError(f"embedding_bag: W must be a (V, H) matrix, got shape {W.shape}")
    if mode not in ("mean", "sum"):
        raise ValueError(f"embedding_bag: mode must be 'mean' or 'sum', got {mode!r}")
    unique = _unique_of(idx)
    idx = check_ids(idx, W.shape[0])
    if idx.ndim != 2 or idx.shape[1] == 0:
        raise ValueError(f"embedding_bag: idx must have shape (N, C) with C >= 1, got {idx.shape}")
    if weights is None:
        return EmbeddingBag(idx, _bag_weights(idx, mode, W.dtype), sparse, unique)(W)
    weights = np.asarray(weights.data if isinstance(weights, Variable) else weights)
    if weights.shape != idx.shape:
        raise ValueError(f"embedding_bag: weights of shape {weights.shape} must match idx of shape {idx.shape}")
    if weights.dtype.kind not in "fiub" or (weights.size and weights.min() < 0):
        raise ValueError("embedding_bag: weights must be non-negative numbers")
    weights = weights.astype(W.dtype)
    if mode == "mean":
        totals = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(totals > 0, totals, 1)
    return EmbeddingBag(idx, weights, sparse, unique)(W)


class EmbeddingDot(Function):
    """Row-wise dot products of gathered rows with hidden vectors.

    ``idx`` (N,) gives ``out[n] = W[idx[n]] . h[n]``; ``idx`` (N, K) gives
    ``out[n, k] = W[idx[n, k]] . h[n]``. Backward (the book's derivation): ``dh = dout * W_target`` (summed
    over k) and ``dW_target = dout * h``, scattered back into ``W`` by id.
    """

    def __init__(self, idx, sparse=False, unique=None):
        self.idx, self.sparse, self.unique = idx, sparse, unique

    def forward(self, W, h):
        # Each score straight from W's row: no (N, K, H) array of gathered rows (13 MB per
        # SkipGram step on PTB) with the compiled backend.
        return backend.ops.gather_dot(W, self.idx, h)

    def backward_arrays(self, gy):
        W, h = self.inputs[0].data, self.inputs[1].data
        idx = self.idx
        group = 1 if idx.ndim == 1 else idx.shape[1]
        dh = backend.ops.gather_sum(W, idx, gy.astype(W.dtype, copy=False), group)  # sum_k gy[n, k] W[idx[n, k]]
        # dW_target[n, k] = gy[n, k] * h[n], scattered to row idx[n, k]: a product of h with a
        # sparse matrix holding gy, so the (N, K, H) outer product is never materialised.
        if self.sparse:
            return _sparse_grad(idx, h, W.shape, weights=gy, group=group, unique=self.unique), dh
        return scatter_add_dense(idx, h, W.shape[0], weights=gy, group=group), dh

    def backward(self, gy):
        from tinygrad_nlp.functions.reduce import sum as _sum

        W, h = self.inputs
        target_W = embedding(W, self.idx)
        if self.idx.ndim == 1:
            g = gy.reshape((-1, 1))
            dh = g * target_W
            dtarget = g * h
        else:
            g = gy.reshape(gy.shape + (1,))
            dh = _sum(g * target_W, axis=1)
            dtarget = g * h.reshape((h.shape[0], 1, h.shape[1]))
        dW = EmbeddingGrad(self.idx, W.shape[0])(dtarget)
        return dW, dh


def embedding_dot(W: Variable, h: Variable | ArrayLike, idx: Ids | ArrayLike, sparse: bool = False) -> Variable:
    """Score each hidden vector against the rows of ``W`` named by ``idx``, in one node.

    Args:
        W: (V, H) output weights (the book's ``W_out`` stored row-per-word).
        h: (N, H) hidden vectors.
        idx: (N,) or (N, K) integer ids in ``[0, V)``.
        sparse: make ``W``'s gradient row-sparse.

    Returns:
        Variable of shape ``idx.shape``.
    """
    if W.ndim != 2:
        raise ValueError(f"embedding_dot: W must be a (V, H) matrix, got shape {W.shape}")
    if h.ndim != 2 or h.shape[1] != W.shape[1]:
        raise ValueError(f"embedding_dot: h must have shape (N, {W.shape[1]}) to match W {W.shape}, got {h.shape}")
    unique = _unique_of(idx)
    idx = check_ids(idx, W.shape[0])
    if idx.ndim not in (1, 2) or idx.shape[0] != h.shape[0]:
        raise ValueError(f"embedding_dot: idx must have shape (N,) or (N, K) with N={h.shape[0]}, got {idx.shape}")
    return EmbeddingDot(idx, sparse, unique)(W, h)
