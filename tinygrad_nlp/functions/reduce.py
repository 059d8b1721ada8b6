"""Reductions: sum, mean, max and min over any axes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Function, Variable
from tinygrad_nlp.functions.shape import broadcast_to, reshape

__all__ = ["sum", "mean", "max", "min", "Sum", "Mean", "Max", "Min"]


def _normalize_axis(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for an array with {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(out))


def _keepdims_shape(in_shape, axis):
    axes = _normalize_axis(axis, len(in_shape))
    return tuple(1 if i in axes else n for i, n in enumerate(in_shape))


def _expand_grad(gy, in_shape, axis, keepdims):
    """Reshape a reduced gradient so it broadcasts back over the reduced axes."""
    if keepdims or gy.ndim == len(in_shape):
        return gy
    return reshape(gy, _keepdims_shape(in_shape, axis))


def _expand_array(gy, in_shape, axis, keepdims):
    if keepdims or gy.ndim == len(in_shape):
        return gy
    return gy.reshape(_keepdims_shape(in_shape, axis))


class Sum(Function):
    """Sum over ``axis`` (int, tuple or None for all); the backward broadcasts ``gy`` back to ``x``'s shape."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        shape = self.inputs[0].data.shape
        return broadcast_to(_expand_grad(gy, shape, self.axis, self.keepdims), shape)

    def backward_arrays(self, gy):
        shape = self.inputs[0].data.shape
        return np.broadcast_to(_expand_array(gy, shape, self.axis, self.keepdims), shape)


def sum(x: Variable | ArrayLike, axis: int | tuple[int, ...] | None = None,  # noqa: A001 - mirrors numpy's name
        keepdims: bool = False) -> Variable:
    """Sum over ``axis`` (an int, a tuple, or None for all)."""
    return Sum(axis, keepdims)(x)


class Mean(Function):
    """Mean over ``axis`` (int, tuple or None for all); the backward spreads ``gy / count`` over ``x``'s shape."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        y = x.mean(axis=self.axis, keepdims=self.keepdims)
        self.count = x.size // y.size if y.size else 1
        return y

    def backward(self, gy):
        shape = self.inputs[0].data.shape
        return broadcast_to(_expand_grad(gy, shape, self.axis, self.keepdims), shape) * (1.0 / self.count)

    def backward_arrays(self, gy):
        shape = self.inputs[0].data.shape
        return np.broadcast_to(_expand_array(gy, shape, self.axis, self.keepdims) * (1.0 / self.count), shape)


def mean(x: Variable | ArrayLike, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
    """Arithmetic mean over ``axis``."""
    return Mean(axis, keepdims)(x)


def _arg_mask(x, axis, pick):
    """0/1 array marking, for each reduced slice of ``x``, the first position of its max (or min)."""
    axes = _normalize_axis(axis, x.ndim)
    keep = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, keep + list(axes))
    flat = moved.reshape(moved.shape[: len(keep)] + (-1,))
    where = pick(flat, axis=-1)[..., None]
    mask = np.zeros(flat.shape, dtype=x.dtype)
    np.put_along_axis(mask, where, 1, axis=-1)
    mask = mask.reshape(moved.shape)
    return np.transpose(mask, np.argsort(keep + list(axes)))


class Max(Function):
    """Maximum over ``axis``; the whole gradient goes to the first arg-max of each slice."""

    _reduce, _pick = staticmethod(np.max), staticmethod(np.argmax)

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{type(self).__name__.lower()} of an empty array of shape {x.shape}")
        return self._reduce(x, axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0].data
        mask = _arg_mask(x, self.axis, self._pick)
        return broadcast_to(_expand_grad(gy, x.shape, self.axis, self.keepdims), x.shape) * mask

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        return _expand_array(gy, x.shape, self.axis, self.keepdims) * _arg_mask(x, self.axis, self._pick)


class Min(Max):
    """Minimum over ``axis``; the whole gradient goes to the first arg-min of each slice."""

    _reduce, _pick = staticmethod(np.min), staticmethod(np.argmin)


def max(x: Variable | ArrayLike, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Variable:
    """Maximum over ``axis`` (gradient routed to the arg-max)."""
    return Max(axis, keepdims)(x)


def min(x: Variable | ArrayLike, axis: int | tuple[int, ...] | None = None,  # noqa: A001
        keepdims: bool = False) -> Variable:
    """Minimum over ``axis`` (gradient routed to the arg-min)."""
    return Min(axis, keepdims)(x)
