"""Functions that move values around without arithmetic: reshape, transpose, broadcasting,
indexing, concatenation and stacking."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Function, Variable, as_variable
from tinygrad_nlp.sparse import scatter_add_dense

__all__ = [
    "reshape", "transpose", "broadcast_to", "sum_to", "get_item", "concat", "stack",
    "Reshape", "Transpose", "BroadcastTo", "SumTo", "GetItem", "GetItemGrad", "Concat", "Stack",
    "sum_to_array",
]


def sum_to_array(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum the ndarray ``x`` over the axes that broadcasting added to reach ``x.shape`` from ``shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    y = x.sum(axis=axes, keepdims=True)
    if lead > 0:
        y = y.reshape(y.shape[lead:])
    return y


class Reshape(Function):
    """``x.reshape(shape)``; the gradient is reshaped back to ``x``'s shape."""

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape an array of shape {x.shape} (size {x.size}) into {self.shape}") from None

    def backward(self, gy):
        return reshape(gy, self.inputs[0].data.shape)

    def backward_arrays(self, gy):
        return gy.reshape(self.inputs[0].data.shape)


def reshape(x: Variable | ArrayLike, shape: tuple[int, ...]) -> Variable:
    """Reshape to ``shape`` (one dimension may be -1). A no-op when the shape already matches."""
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if isinstance(x, Variable) and x.data.shape == shape:
        return x
    return Reshape(shape)(x)


class Transpose(Function):
    """``x.transpose(axes)`` (all axes reversed when ``axes`` is None); the backward applies the inverse permutation."""

    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(axes)

    def forward(self, x):
        return np.transpose(x, self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        return transpose(gy, self._inverse())

    def _inverse(self):
        return tuple(int(i) for i in np.argsort([a % len(self.axes) for a in self.axes]))

    def backward_arrays(self, gy):
        return np.transpose(gy, None if self.axes is None else self._inverse())


def transpose(x: Variable | ArrayLike, axes: tuple[int, ...] | list[int] | None = None) -> Variable:
    """Permute the axes of ``x`` (reverse them when ``axes`` is None)."""
    return Transpose(axes)(x)


class BroadcastTo(Function):
    """``np.broadcast_to(x, shape)``; the gradient is summed back to ``x``'s shape (``SumTo``)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        try:
            return np.broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {self.shape}") from None

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].data.shape)

    def backward_arrays(self, gy):
        return sum_to_array(gy, self.inputs[0].data.shape)


def broadcast_to(x: Variable | ArrayLike, shape: tuple[int, ...]) -> Variable:
    """Broadcast ``x`` to ``shape`` (a no-op when it already has it); the gradient is summed back."""
    shape = tuple(shape)
    if isinstance(x, Variable) and x.data.shape == shape:
        return x
    return BroadcastTo(shape)(x)


class SumTo(Function):
    """Sum ``x`` over its broadcast axes down to ``shape``; the backward is ``BroadcastTo``."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        try:
            reachable = np.broadcast_shapes(self.shape, x.shape) == x.shape
        except ValueError:
            reachable = False
        if not reachable:
            raise ValueError(f"sum_to: an array of shape {x.shape} cannot be summed to shape {self.shape} "
                             f"(shape {self.shape} does not broadcast to {x.shape})")
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].data.shape)

    def backward_arrays(self, gy):
        return np.broadcast_to(gy, self.inputs[0].data.shape)


def sum_to(x: Variable | ArrayLike, shape: tuple[int, ...]) -> Variable:
    """Sum ``x`` down to ``shape`` (the reverse of broadcasting)."""
    shape = tuple(shape)
    if isinstance(x, Variable) and x.data.shape == shape:
        return x
    return SumTo(shape)(x)


def _is_basic_index(index):
    """True when ``index`` selects without advanced (array) indexing, so no element repeats."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _plain_index(index):
    """Replace Variables inside an index by their arrays."""
    if isinstance(index, Variable):
        return index.data
    if isinstance(index, list):
        arr = np.asarray(index)
        return arr if arr.dtype.kind in "iub" else index
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Variable) else i for i in index)
    return index


class GetItem(Function):
    """``x[index]`` for any numpy index, including integer arrays with repeated entries."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.inputs[0].data.shape)(gy)

    def backward_arrays(self, gy):
        return GetItemGrad(self.index, self.inputs[0].data.shape).forward(gy)


class GetItemGrad(Function):
    """Scatter-add of ``gy`` into zeros of the input's shape (the backward of ``GetItem``)."""

    def __init__(self, index, in_shape):
        self.index = index
        self.in_shape = in_shape

    def forward(self, gy):
        index = self.index
        if _is_basic_index(index):
            gx = np.zeros(self.in_shape, dtype=gy.dtype)
            gx[index] = gy
            return gx
        if isinstance(index, np.ndarray) and index.dtype.kind in "iu" and len(self.in_shape) >= 1:
            # Rows picked by an integer array (embedding-style): a sparse product instead of add.at.
            ids = index.ravel() % self.in_shape[0] if index.size and index.min() < 0 else index
            row = int(np.prod(self.in_shape[1:], dtype=np.int64))
            out = scatter_add_dense(ids, gy.reshape(-1, row), self.in_shape[0])
            return out.reshape(self.in_shape)
        gx = np.zeros(self.in_shape, dtype=gy.dtype)
        np.add.at(gx, index, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.index)

    def backward_arrays(self, ggx):
        return ggx[self.index]


def get_item(x: Variable | ArrayLike, index: Any) -> Variable:
    """``x[index]``; the gradient of repeated picks is summed."""
    return GetItem(_plain_index(index))(x)


class Concat(Function):
    """Join several inputs along an existing ``axis``; the gradient is split back into their shapes."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return np.concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(f"concat along axis {self.axis}: incompatible shapes {shapes}") from None

    def _slices(self, ndim):
        axis = self.axis % ndim
        start = 0
        for x in self.inputs:
            n = x.data.shape[axis]
            yield (slice(None),) * axis + (slice(start, start + n),)
            start += n

    def backward(self, gy):
        return tuple(get_item(gy, index) for index in self._slices(gy.ndim))


def concat(xs: Sequence[Variable | ArrayLike], axis: int = 0) -> Variable:
    """Join a sequence of Variables/arrays along an existing ``axis``."""
    xs = list(xs)
    if not xs:
        raise ValueError("concat needs at least one input")
    like = next((x for x in xs if isinstance(x, Variable)), None)
    return Concat(axis)(*[as_variable(x, like) for x in xs])


class Stack(Function):
    """Join same-shaped inputs along a new ``axis``; the gradient is split back along it."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        try:
            return np.stack(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(f"stack: inputs must share one shape, got {shapes}") from None

    def backward(self, gy):
        axis = self.axis % gy.ndim
        return tuple(get_item(gy, (slice(None),) * axis + (i,)) for i in range(len(self.inputs)))


def stack(xs: Sequence[Variable | ArrayLike], axis: int = 0) -> Variable:
    """Join a sequence of same-shaped Variables/arrays along a new ``axis``."""
    xs = list(xs)
    if not xs:
        raise ValueError("stack needs at least one input")
    like = next((x for x in xs if isinstance(x, Variable)), None)
    return Stack(axis)(*[as_variable(x, like) for x in xs])
