"""Softmax and the losses of word2vec: softmax / sigmoid cross-entropy and negative sampling.

All are computed from log-sum-exp and softplus forms, so logits of +-1000 give exact, finite
losses and gradients without overflow warnings. The softmax cross-entropy gradient
``(softmax(x) - onehot(t)) / N`` is formed by subtracting 1 at the label positions: no
``eye(C)[t]`` matrix is ever built.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import _threads
from tinygrad_nlp.core import Function, Variable, as_variable
from tinygrad_nlp.functions.embedding import check_ids, embedding_dot
from tinygrad_nlp.sparse import Ids

__all__ = [
    "softmax", "log_softmax", "softmax_cross_entropy", "sigmoid_cross_entropy", "negative_sampling_loss",
    "Softmax", "LogSoftmax", "SoftmaxCrossEntropy", "SigmoidCrossEntropy",
]


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """``exp(x) / sum(exp(x))`` along ``axis`` for ``x`` of any shape (float); same shape and dtype."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        return _softmax(x, self.axis)

    def backward(self, gy):
        from tinygrad_nlp.functions.reduce import sum as _sum

        y = self.outputs[0]()
        gx = y * gy
        return gx - y * _sum(gx, axis=self.axis, keepdims=True)

    def backward_arrays(self, gy):
        y = self.outputs[0]().data
        gx = y * gy
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return gx


def softmax(x: Variable | ArrayLike, axis: int = -1) -> Variable:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed after subtracting the maximum."""
    return Softmax(axis)(x)


class LogSoftmax(Function):
    """``x - logsumexp(x)`` along ``axis`` for ``x`` of any shape (float); same shape and dtype."""

    def __init__(self, axis=-1):
        self.axis = axis

    def forward(self, x):
        return _log_softmax(x, self.axis)

    def backward(self, gy):
        from tinygrad_nlp.functions.math import exp
        from tinygrad_nlp.functions.reduce import sum as _sum

        y = self.outputs[0]()
        return gy - exp(y) * _sum(gy, axis=self.axis, keepdims=True)

    def backward_arrays(self, gy):
        y = self.outputs[0]().data
        return gy - np.exp(y) * gy.sum(axis=self.axis, keepdims=True)


def log_softmax(x: Variable | ArrayLike, axis: int = -1) -> Variable:
    """``log(softmax(x))`` along ``axis`` without ever taking the log of a rounded-to-zero value."""
    return LogSoftmax(axis)(x)


def _check_labels(x_shape, t):
    """Classify ``t`` as integer labels or probabilities for logits of ``x_shape``; validate."""
    t = t.data if isinstance(t, Variable) else np.asarray(t)
    C = x_shape[-1]
    if t.shape == x_shape and len(x_shape) > 0:
        # Probabilities or one-hot rows (the book's convert_one_hot gives int32 ones).
        if t.dtype.kind not in "fiub":
            raise ValueError(f"softmax_cross_entropy: target rows must be numbers, got dtype {t.dtype}")
        if t.dtype.kind != "f":
            t = t.astype(np.float64)
        return t, False
    if t.shape == x_shape[:-1]:
        if t.dtype.kind not in "iu":
            raise ValueError(
                f"softmax_cross_entropy: labels of shape {t.shape} must be integers (class ids), got dtype "
                f"{t.dtype}; pass probabilities with the logits' shape {x_shape} instead"
            )
        return t, True
    raise ValueError(
        f"softmax_cross_entropy: labels of shape {t.shape} do not match logits of shape {x_shape}: expected "
        f"integer labels of shape {x_shape[:-1]} or probabilities of shape {x_shape} (C={C} classes)"
    )


# Softmax cross-entropy over at least this many scores is split by rows across the threads
# (numpy's element-wise kernels release the GIL): a language model's (700, 10,000) scores.
PARALLEL_MIN_SCORES = 1_000_000

# Rows are exponentiated and summed this many at a time, so that a block of exponentials is
# still in the core's cache when it is summed: 16 rows of 10,000 float32 scores are 640 KB.
CHUNK_ROWS = 16


def _row_blocks(size, rows):
    """``[(start, stop), ...]`` row ranges: one per thread for large inputs, else one."""
    workers = _threads.num_threads()
    if size < PARALLEL_MIN_SCORES or workers < 2 or rows < 2:
        return [(0, rows)]
    bounds = np.linspace(0, rows, min(workers, rows) + 1).astype(np.int64)
    return list(zip(bounds[:-1], bounds[1:]))


def _exp_rows(x, e, sums, shift):
    """For rows ``x`` (n, C): ``e = exp(x - shift)`` and ``sums = e.sum(1)``, with ``shift`` (n,)
    zero wherever that is exact and the row's maximum elsewhere. ``e`` may be None when only the
    sums are wanted (no graph recorded): a chunk of scratch then stands in for it.

    Most rows are exponentiated as they are: one pass for ``exp`` and one for the sum, instead of
    the five of the textbook form (max, subtract, exp, sum, divide). A row whose sum lies outside
    ``[sqrt(tiny), sqrt(max)]`` of its dtype (in float32 about ``[1e-19, 2e19]``: some score above
    ~44, or every score below ~-44, where overflow, or underflowed terms, or a denormal
    ``1 / sum`` could cost precision), or is NaN, is done again after subtracting its maximum, as
    the textbook does. A language model's scores stay well inside that range.
    """
    scratch = np.empty((min(CHUNK_ROWS, x.shape[0]), x.shape[1]), x.dtype) if e is None else None
    with np.errstate(over="ignore", under="ignore"):
        for a in range(0, x.shape[0], CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, x.shape[0])
            dst = e[a:b] if e is not None else scratch[: b - a]
            np.exp(x[a:b], out=dst)
            dst.sum(axis=1, out=sums[a:b])
    shift[:] = 0
    info = np.finfo(x.dtype)
    redo = ~((sums >= np.sqrt(info.tiny)) & (sums <= np.sqrt(info.max)))
    if redo.any():
        rows = np.flatnonzero(redo)
        top = x[rows].max(axis=1, keepdims=True)
        shifted = x[rows] - top
        with np.errstate(under="ignore"):
            np.exp(shifted, out=shifted)
        if e is not None:
            e[rows] = shifted
        sums[rows] = shifted.sum(axis=1)
        shift[rows] = top[:, 0]


class SoftmaxCrossEntropy(Function):
    """Mean over rows of ``-log softmax(x)[t]`` (integer labels) or ``-sum t * log softmax(x)``."""

    def __init__(self, t, is_label, ignore_index=None):
        self.t, self.is_label, self.ignore_index = t, is_label, ignore_index

    def _rows(self, x):
        C = x.shape[-1]
        return x.reshape(-1, C)

    def forward(self, x):
        from tinygrad_nlp.core import Config

        x2 = self._rows(x)
        if not self.is_label:
            logp = _log_softmax(x2, axis=1)
            self.count = x2.shape[0]
            total = -(self.t.reshape(x2.shape) * logp).sum(dtype=x.dtype)
            return np.asarray(total / max(self.count, 1), dtype=x.dtype)
        # One exp pass gives both the loss and the exponentials the backward needs; they are kept
        # (only when a graph is recorded) with their row sums, so the backward does not
        # exponentiate (N, V) again and normalises them in the pass that scales the gradient.
        t = self.t.ravel()
        keep = None if self.ignore_index is None else (t != self.ignore_index)
        if keep is not None:
            t = np.where(keep, t, 0)
        n = x2.shape[0]
        e = np.empty_like(x2) if Config.enable_backprop else None
        sums, shift = np.empty(n, dtype=x2.dtype), np.empty(n, dtype=x2.dtype)
        _threads.run_parallel([
            lambda a=a, b=b: _exp_rows(x2[a:b], None if e is None else e[a:b], sums[a:b], shift[a:b])
            for a, b in _row_blocks(x2.size, n)])
        losses = np.log(sums)
        losses += shift
        losses -= x2[np.arange(n), t]
        if keep is not None:
            losses = losses[keep]
        self.count = losses.size
        total = losses.sum(dtype=x.dtype)
        if e is not None:
            self.exps, self.sums = e, sums
        return np.asarray(total / max(self.count, 1), dtype=x.dtype)

    def _grad_rows(self, x, gy):
        """(softmax(x) - target) * gy / count as an ndarray, without a one-hot matrix."""
        x2 = self._rows(x)
        scale = np.asarray(gy, dtype=x.dtype) / x.dtype.type(max(self.count, 1))
        if not self.is_label:
            g = _softmax(x2, axis=1)
            g -= self.t.reshape(x2.shape)
            g *= scale
            return g.reshape(x.shape)
        g, sums = getattr(self, "exps", None), getattr(self, "sums", None)
        self.exps = self.sums = None  # consumed: scaled in place below
        if g is None:  # a second backward over the same graph
            n = x2.shape[0]
            g, sums, shift = np.empty_like(x2), np.empty(n, dtype=x2.dtype), np.empty(n, dtype=x2.dtype)
            _exp_rows(x2, g, sums, shift)
        factor = scale / sums  # (n,): softmax's normaliser and the gradient's scale in one product
        t = self.t.ravel()
        rows = np.arange(t.size)
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            factor[~keep] = 0
            rows, t = rows[keep], t[keep]
        _threads.run_parallel([lambda a=a, b=b: np.multiply(g[a:b], factor[a:b, None], out=g[a:b])
                               for a, b in _row_blocks(g.size, g.shape[0])])
        g[rows, t] -= scale
        if self.ignore_index is not None:
            g[~keep] = 0  # exact zeros, even where an ignored row's scores were not finite
        return g.reshape(x.shape)

    def backward_arrays(self, gy):
        return self._grad_rows(self.inputs[0].data, gy)

    def backward(self, gy):
        # Recorded path: (softmax(x) - target) * gy / count, differentiable in x and gy.
        x = self.inputs[0]
        target = np.zeros(x.shape, dtype=x.dtype) if self.is_label else self.t.reshape(x.shape).astype(x.dtype)
        if self.is_label:
            flat = target.reshape(-1, x.shape[-1])
            t = self.t.ravel()
            keep = np.ones(t.size, bool) if self.ignore_index is None else t != self.ignore_index
            flat[np.arange(t.size)[keep], t[keep]] = 1
            mask = keep.reshape(x.shape[:-1] + (1,)).astype(x.dtype)
        else:
            mask = 1.0
        return (softmax(x) * mask - target) * (gy * (1.0 / max(self.count, 1)))


def softmax_cross_entropy(x: Variable | ArrayLike, t: Variable | ArrayLike,
                          ignore_index: int | None = None) -> Variable:
    """Softmax followed by cross-entropy, averaged over the (non-ignored) rows, as one node.

    Args:
        x: (N, C) logits (or (..., C)).
        t: integer class ids of shape (N,) (``x.shape[:-1]``), or probabilities / one-hot rows of
            ``x``'s shape.
        ignore_index: with integer labels, rows whose label equals it contribute nothing (and are
            not counted in the mean). If every row is ignored the loss is 0.

    Returns:
        A scalar Variable in ``x``'s dtype. Labels out of ``[0, C)`` or of a wrong shape raise
        ``ValueError`` naming the label and shapes.
    """
    x = as_variable(x)
    if x.ndim < 1:
        raise ValueError("softmax_cross_entropy: logits need at least one dimension (classes)")
    t, is_label = _check_labels(x.shape, t)
    if not is_label:
        if t.size and not (t.min() >= 0 and np.all(np.isfinite(t))):
            raise ValueError("softmax_cross_entropy: probability targets must be finite and >= 0")
        if x.dtype.kind == "f":
            t = t.astype(x.dtype, copy=False)
    if is_label:
        check = t if ignore_index is None else t[t != ignore_index]
        check_ids(check, x.shape[-1], what="label")
    return SoftmaxCrossEntropy(t, is_label, ignore_index)(x)


def _softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


REDUCTIONS = ("mean", "sum", "batchmean", "none")


class SigmoidCrossEntropy(Function):
    """Binary cross-entropy on logits: ``softplus(x) - t * x`` per element, then reduced."""

    def __init__(self, t, reduction="mean"):
        self.t, self.reduction = t, reduction

    def _scale(self, x):
        if self.reduction == "mean":
            return 1.0 / max(x.size, 1)
        if self.reduction == "batchmean":
            return 1.0 / max(x.shape[0] if x.ndim else 1, 1)
        return 1.0

    def forward(self, x):
        loss = _softplus(x) - self.t * x
        if self.reduction == "none":
            return loss
        return np.asarray(loss.sum(dtype=x.dtype) * x.dtype.type(self._scale(x)), dtype=x.dtype)

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        g = np.tanh(x * 0.5) * 0.5 + 0.5  # sigmoid(x), overflow-free
        g -= self.t
        g *= gy * x.dtype.type(self._scale(x)) if self.reduction != "none" else gy
        return g

    def backward(self, gy):
        from tinygrad_nlp.functions.math import sigmoid

        x = self.inputs[0]
        g = sigmoid(x) - self.t
        if self.reduction == "none":
            return g * gy
        return g * (gy * self._scale(x.data))


def sigmoid_cross_entropy(x: Variable | ArrayLike, t: Variable | ArrayLike, reduction: str = "mean") -> Variable:
    """Sigmoid followed by binary cross-entropy, stable for any logit (|x| = 1000 included).

    Args:
        x: logits of any shape.
        t: targets of the same shape, 0/1 (or probabilities in [0, 1]).
        reduction: "mean" over all elements (default), "sum", "batchmean" (sum divided by
            ``x.shape[0]``) or "none" (element-wise losses).
    """
    x = as_variable(x)
    t = t.data if isinstance(t, Variable) else np.asarray(t)
    if t.shape != x.shape:
        raise ValueError(f"sigmoid_cross_entropy: targets of shape {t.shape} must match logits of shape {x.shape}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"sigmoid_cross_entropy: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if t.size:
        lo, hi = t.min(), t.max()
        if not (lo >= 0 and hi <= 1):  # NaN fails both comparisons
            bad = lo if not lo >= 0 else hi
            raise ValueError(f"sigmoid_cross_entropy: targets must lie in [0, 1], got {bad.item()!r}")
    if x.dtype.kind == "f":
        t = t.astype(x.dtype, copy=False)
    return SigmoidCrossEntropy(t, reduction)(x)


def negative_sampling_loss(h: Variable | ArrayLike, W: Variable, target: Variable | ArrayLike,
                           negatives: Variable | ArrayLike, sparse: bool = False,
                           scored: Ids | None = None) -> Variable:
    """word2vec's negative-sampling loss, averaged over the batch.

    ``mean_n[ -log sigmoid(W[t_n] . h_n) - sum_k log sigmoid(-W[neg_nk] . h_n) ]``: the book's
    sum of K+1 ``SigmoidWithLoss`` layers. Built as an ``EmbeddingDot`` (one positive and K
    negatives scored in one node) followed by a ``SigmoidCrossEntropy``.

    Args:
        h: (N, H) hidden vectors. W: (V, H) output weights.
        target: (N,) integer ids. negatives: (N, K) integer ids.
        sparse: make ``W``'s gradient row-sparse.
        scored: optionally the (N, K+1) ids ``[target | negatives]`` already built as an
            [`Ids`][tinygrad_nlp.sparse.Ids] (checked and sorted ahead, by a data pipeline).
    """
    target = target.data if isinstance(target, Variable) else np.asarray(target)
    negatives = negatives.data if isinstance(negatives, Variable) else np.asarray(negatives)
    if target.ndim != 1 or negatives.ndim != 2 or negatives.shape[0] != target.shape[0]:
        raise ValueError(
            f"negative_sampling_loss: target must be (N,) and negatives (N, K); got {target.shape} and {negatives.shape}"
        )
    if scored is not None:
        expected = (target.shape[0], negatives.shape[1] + 1)
        # The whole array, not just the targets: a prepared batch with other negatives would
        # otherwise train on them silently (a compare costs microseconds; the sort it saves, more).
        if (scored.shape != expected or not np.array_equal(scored.array[:, 0], target)
                or not np.array_equal(scored.array[:, 1:], negatives)):
            raise ValueError(f"negative_sampling_loss: scored ids must be [target | negatives] of shape {expected}")
        idx = scored
    else:
        V = W.shape[0]
        check_ids(target, V, what="target id")  # before concatenating: bools would become ids 0/1
        check_ids(negatives, V, what="negative id")
        idx = Ids(np.concatenate([target[:, None], negatives], axis=1))
        idx.checked_rows = V  # both parts were just checked: embedding_dot need not scan again
    scores = embedding_dot(W, h, idx, sparse=sparse)
    scores.name = "scores"
    labels = np.zeros(scores.shape, dtype=scores.dtype)
    labels[:, 0] = 1
    return SigmoidCrossEntropy(labels, "batchmean")(scores)  # labels are valid by construction
