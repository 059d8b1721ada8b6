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


def _row_blocks(size, rows):
    """``[(start, stop), ...]`` row ranges: one per thread for large inputs, else one."""
    workers = _threads.num_threads()
    if size < PARALLEL_MIN_SCORES or workers < 2 or rows < 2:
        return [(0, rows)]
    bounds = np.linspace(0, rows, min(workers, rows) + 1).astype(np.int64)
    return list(zip(bounds[:-1], bounds[1:]))


def _softmax_nll_rows(x, t, p, losses, keep_probs):
    """For rows ``x`` (n, V) and labels ``t`` (n,): ``losses = -log softmax(x)[t]`` and, when
    ``keep_probs``, ``p = softmax(x)``; ``p`` is used as scratch either way."""
    top = x.max(axis=1, keepdims=True)
    np.subtract(x, top, out=p)
    picked = p[np.arange(t.size), t]  # x[t] - max, before p is exponentiated in place
    np.exp(p, out=p)
    sums = p.sum(axis=1)
    np.subtract(np.log(sums), picked, out=losses)
    if keep_probs:
        p /= sums[:, None]


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
        # One exp pass gives both the loss and the softmax the backward needs; the softmax is kept
        # (only when a graph is recorded) so the backward does not exponentiate (N, V) again.
        t = self.t.ravel()
        keep = None if self.ignore_index is None else (t != self.ignore_index)
        if keep is not None:
            t = np.where(keep, t, 0)
        keep_probs = Config.enable_backprop
        p = np.empty_like(x2)
        losses = np.empty(t.size, dtype=x2.dtype)
        parts = _row_blocks(x2.size, x2.shape[0])
        _threads.run_parallel([lambda a=a, b=b: _softmax_nll_rows(x2[a:b], t[a:b], p[a:b], losses[a:b], keep_probs)
                               for a, b in parts])
        if keep is not None:
            losses = losses[keep]
        self.count = losses.size
        total = losses.sum(dtype=x.dtype)
        if keep_probs:
            self.probs = p
        return np.asarray(total / max(self.count, 1), dtype=x.dtype)

    def _grad_rows(self, x, gy):
        """(softmax(x) - target) * gy / count as an ndarray, without a one-hot matrix."""
        x2 = self._rows(x)
        g = getattr(self, "probs", None)
        self.probs = None  # consumed: modified in place below
        if g is None:
            g = _softmax(x2, axis=1)
        if self.is_label:
            t = self.t.ravel()
            rows = np.arange(t.size)
            if self.ignore_index is None:
                g[rows, t] -= 1
            else:
                keep = t != self.ignore_index
                g[rows[keep], t[keep]] -= 1
                g[~keep] = 0
        else:
            g -= self.t.reshape(x2.shape)
        g *= gy / max(self.count, 1)
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
