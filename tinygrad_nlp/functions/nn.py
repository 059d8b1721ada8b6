"""Neural-network building blocks: matrix products, affine layers and dropout."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import _threads
from tinygrad_nlp.core import Config, Function, Variable
from tinygrad_nlp.functions.shape import reshape, sum_to, sum_to_array, transpose

__all__ = ["matmul", "linear", "dropout", "MatMul", "Linear", "Dropout"]


def _shape_of(x):
    return x.data.shape if isinstance(x, Variable) else np.shape(x)


def _check_matmul(a_shape, b_shape, what="matmul"):
    if len(a_shape) == 0 or len(b_shape) == 0:
        raise ValueError(f"{what}: operands must have at least one dimension, got shapes {a_shape} and {b_shape}")
    k_a = a_shape[-1]
    k_b = b_shape[0] if len(b_shape) == 1 else b_shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"{what}: shapes {a_shape} and {b_shape} are not aligned: "
            f"the last axis of the first ({k_a}) must equal the "
            f"{'only' if len(b_shape) == 1 else 'second-to-last'} axis of the second ({k_b})"
        )
    if len(a_shape) > 2 or len(b_shape) > 2:
        try:
            np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        except ValueError:
            raise ValueError(
                f"{what}: shapes {a_shape} and {b_shape} have batch dimensions {a_shape[:-2]} and "
                f"{b_shape[:-2]} that cannot be broadcast together"
            ) from None


def _mT(x):
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    """Matrix product with numpy's ``@`` semantics (1-D operands and batch broadcasting)."""

    def forward(self, a, b):
        _check_matmul(a.shape, b.shape)
        return a @ b

    def backward(self, gy):
        a, b = self.inputs
        a2 = reshape(a, (1, -1)) if a.ndim == 1 else a
        b2 = reshape(b, (-1, 1)) if b.ndim == 1 else b
        if a.ndim == 1 or b.ndim == 1:
            out_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1])
            gy = reshape(gy, out_shape)
        ga = matmul(gy, _mT(b2))
        gb = matmul(_mT(a2), gy)
        return sum_to(ga, a2.shape).reshape(a.shape), sum_to(gb, b2.shape).reshape(b.shape)

    def backward_arrays(self, gy):
        a, b = self.inputs[0].data, self.inputs[1].data
        if a.ndim == 2 and b.ndim == 2:
            return gy @ b.T, a.T @ gy
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        gy = gy.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        ga = sum_to_array(gy @ np.swapaxes(b2, -1, -2), a2.shape)
        gb = sum_to_array(np.swapaxes(a2, -1, -2) @ gy, b2.shape)
        return ga.reshape(a.shape), gb.reshape(b.shape)


def matmul(a: Variable | ArrayLike, b: Variable | ArrayLike) -> Variable:
    """``a @ b``; a shape mismatch raises ``ValueError`` naming both shapes."""
    return MatMul()(a, b)


# From this many outputs (rows x out) on, the bias rides inside the matrix product: ``[x | 1] @
# [W ; b]`` costs one more column of ``x`` and one more row of ``W`` to copy, and saves a pass
# over the outputs (a language model's (700, 10,000) scores: 28 MB read and written again, about
# 2 ms); the backward then gets ``gW`` and ``gb`` from one product, ``[x | 1]^T @ gy``, and saves
# the pass of ``gy.sum(0)``. Below it, the copies cost more than the pass.
FOLD_BIAS_MIN_OUTPUTS = 100_000


class Linear(Function):
    """``x @ W + b`` in one node; ``x`` is (..., in), ``W`` is (in, out), ``b`` is (out,)."""

    def forward(self, x, W, b=None):
        _check_matmul(x.shape, W.shape, "linear")
        out_shape = x.shape[:-1] + (W.shape[1],)
        if b is not None and b.shape not in ((W.shape[1],), (1, W.shape[1])):
            raise ValueError(f"linear: bias of shape {b.shape} does not fit outputs of shape {out_shape}: "
                             f"it must have shape ({W.shape[1]},)")
        # (..., in) as one (rows, in) matrix: one BLAS call instead of numpy's loop over the
        # leading axes (3.5x faster for a (20, 35, 100) @ (100, 10000) language-model output).
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim > 2 else x
        self.x_one = None
        if (b is not None and x.ndim >= 2 and x2.shape[0] * W.shape[1] >= FOLD_BIAS_MIN_OUTPUTS
                and x.dtype == W.dtype == b.dtype):
            rows, k = x2.shape
            self.x_one = np.empty((rows, k + 1), dtype=x.dtype)  # [x | 1], kept for the backward
            self.x_one[:, :k] = x2
            self.x_one[:, k] = 1
            if W.flags.f_contiguous and not W.flags.c_contiguous:  # a transposed (out, in) table (tied weights)
                W_b = np.empty((W.shape[1], k + 1), dtype=W.dtype)  # built as [W^T | b], copied row by row
                W_b[:, :k] = W.T
                W_b[:, k] = b.reshape(-1)
                W_b = W_b.T
            else:
                W_b = np.empty((k + 1, W.shape[1]), dtype=W.dtype)
                W_b[:k] = W
                W_b[k] = b.reshape(-1)
            return _threads.matmul(self.x_one, W_b).reshape(out_shape)
        y = _threads.matmul(x2, W).reshape(out_shape) if x.ndim >= 2 else x @ W
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        gx = matmul(gy, W.T)
        x2 = x if x.ndim == 2 else reshape(x, (-1, x.shape[-1]))
        gy2 = gy if gy.ndim == 2 else reshape(gy, (-1, gy.shape[-1]))
        gW = matmul(x2.T, gy2)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, sum_to(gy, self.inputs[2].data.shape)

    def backward_arrays(self, gy):
        x, W = self.inputs[0].data, self.inputs[1].data
        gy2 = gy.reshape(-1, gy.shape[-1])
        gx = _threads.matmul(gy2, W.T).reshape(x.shape)
        if getattr(self, "x_one", None) is not None:
            g_Wb = _threads.matmul(self.x_one.T, gy2)  # (in + 1, out): gW on top, the bias gradient below
            return gx, g_Wb[:-1], g_Wb[-1].reshape(self.inputs[2].data.shape)
        gW = _threads.matmul(x.reshape(-1, x.shape[-1]).T, gy2)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, sum_to_array(gy, self.inputs[2].data.shape)


def linear(x: Variable | ArrayLike, W: Variable | ArrayLike, b: Variable | ArrayLike | None = None) -> Variable:
    """Affine map ``x @ W + b`` (``b`` optional), one graph node."""
    if W.ndim != 2:
        raise ValueError(f"linear: W must be 2-D (in, out), got shape {_shape_of(W)}")
    return Linear()(x, W) if b is None else Linear()(x, W, b)


class Dropout(Function):
    """Inverted dropout: zero each element with probability ``ratio`` and scale the rest by
    ``1 / (1 - ratio)`` so the expected value is unchanged."""

    def __init__(self, ratio, rng):
        self.ratio, self.rng = ratio, rng

    def forward(self, x):
        keep = (self.rng.random(x.shape) >= self.ratio) if self.rng is not None else (np.random.rand(*x.shape) >= self.ratio)
        self.mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.ratio))
        return x * self.mask

    def backward(self, gy):
        return gy * self.mask

    def backward_arrays(self, gy):
        return gy * self.mask


def dropout(x: Variable | ArrayLike, ratio: float = 0.5, rng: np.random.Generator | None = None) -> Variable:
    """Dropout while ``Config.train`` is on (see ``test_mode()``); the identity otherwise.

    ``rng`` is an optional ``np.random.Generator``; by default numpy's global random state is
    used, so ``np.random.seed`` makes runs reproducible.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"dropout ratio must be in [0, 1), got {ratio}")
    if not Config.train or ratio == 0.0:
        return x if isinstance(x, Variable) else Variable(np.asarray(x))
    return Dropout(ratio, rng)(x)
