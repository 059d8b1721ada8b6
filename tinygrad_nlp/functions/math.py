"""Element-wise arithmetic and activation Functions (with numpy broadcasting).

Each operation is a ``Function`` subclass plus a lowercase helper (``Exp`` / ``exp``). Binary
operations broadcast like numpy; their backward reduces each gradient back to its input's shape
with ``sum_to``, so ``x + b`` with ``b`` of shape (H,) gives ``b.grad`` of shape (H,).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from tinygrad_nlp.core import Function, Variable, as_variable
from tinygrad_nlp.functions.shape import sum_to, sum_to_array

__all__ = [
    "add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow", "rpow",
    "exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "clip",
    "Add", "Sub", "Mul", "Div", "Neg", "Pow", "PowConst", "Exp", "Log", "Sin", "Cos",
    "Tanh", "Sigmoid", "ReLU", "Sqrt", "Clip", "Cast", "cast",
]


def _broadcast_error(func, x0, x1):
    return ValueError(f"{type(func).__name__}: shapes {np.shape(x0)} and {np.shape(x1)} cannot be broadcast together")


class _Binary(Function):
    """Shared broadcasting bookkeeping of two-input element-wise operations."""

    def _reduce(self, gx0, gx1):
        x0, x1 = self.inputs
        if gx0.shape != x0.data.shape:
            gx0 = sum_to(gx0, x0.data.shape)
        if gx1.shape != x1.data.shape:
            gx1 = sum_to(gx1, x1.data.shape)
        return gx0, gx1

    def _reduce_arrays(self, gx0, gx1):
        x0, x1 = self.inputs
        if gx0.shape != x0.data.shape:
            gx0 = sum_to_array(gx0, x0.data.shape)
        if gx1.shape != x1.data.shape:
            gx1 = sum_to_array(gx1, x1.data.shape)
        return gx0, gx1


class Add(_Binary):
    """``x0 + x1`` with numpy broadcasting; each input's gradient is summed back to its shape."""

    def forward(self, x0, x1):
        try:
            return x0 + x1
        except ValueError:
            raise _broadcast_error(self, x0, x1) from None

    def backward(self, gy):
        return self._reduce(gy, gy)

    def backward_arrays(self, gy):
        return self._reduce_arrays(gy, gy)


def add(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x0 + x1`` with broadcasting."""
    return Add()(x0, x1)


class Sub(_Binary):
    """``x0 - x1`` with numpy broadcasting."""

    def forward(self, x0, x1):
        try:
            return x0 - x1
        except ValueError:
            raise _broadcast_error(self, x0, x1) from None

    def backward(self, gy):
        return self._reduce(gy, -gy)

    def backward_arrays(self, gy):
        return self._reduce_arrays(gy, -gy)


def sub(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x0 - x1`` with broadcasting."""
    return Sub()(x0, x1)


def rsub(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x1 - x0`` (reflected subtraction: ``2.0 - x``)."""
    return Sub()(x1, x0) if isinstance(x1, Variable) else Sub()(as_variable(x1, x0), x0)


class Mul(_Binary):
    """``x0 * x1`` element-wise with numpy broadcasting."""

    def forward(self, x0, x1):
        try:
            return x0 * x1
        except ValueError:
            raise _broadcast_error(self, x0, x1) from None

    def backward(self, gy):
        x0, x1 = self.inputs
        return self._reduce(gy * x1, gy * x0)

    def backward_arrays(self, gy):
        x0, x1 = self.inputs
        return self._reduce_arrays(gy * x1.data, gy * x0.data)


def mul(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x0 * x1`` with broadcasting."""
    return Mul()(x0, x1)


class Div(_Binary):
    """``x0 / x1`` element-wise with numpy broadcasting."""

    def forward(self, x0, x1):
        try:
            return x0 / x1
        except ValueError:
            raise _broadcast_error(self, x0, x1) from None

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        return self._reduce(gx0, -gx0 * x0 / x1)

    def backward_arrays(self, gy):
        x0, x1 = self.inputs[0].data, self.inputs[1].data
        gx0 = gy / x1
        return self._reduce_arrays(gx0, -gx0 * x0 / x1)


def div(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x0 / x1`` with broadcasting."""
    return Div()(x0, x1)


def rdiv(x0: Variable | ArrayLike, x1: Variable | ArrayLike) -> Variable:
    """``x1 / x0`` (reflected division: ``1.0 / x``)."""
    return Div()(as_variable(x1, x0), x0)


class Neg(Function):
    """``-x``; same shape and dtype as ``x``."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def backward_arrays(self, gy):
        return -gy


def neg(x: Variable | ArrayLike) -> Variable:
    """``-x``."""
    return Neg()(x)


class PowConst(Function):
    """``x ** c`` for a constant exponent ``c`` (a Python or numpy scalar)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        c = self.c
        if c == 2:
            return x * x
        return x ** c

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        if c == 2:
            return gy * x * 2
        return gy * (x ** (c - 1)) * c

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        c = self.c
        if c == 2:
            return gy * x * 2
        return gy * (x ** (c - 1)) * c


class Pow(_Binary):
    """``x0 ** x1`` where the exponent is itself a Variable (both get gradients)."""

    def backward(self, gy):
        x0, x1 = self.inputs
        y = self.outputs[0]()
        gx0 = gy * x1 * x0 ** (x1 - 1)
        gx1 = gy * y * log(x0)
        return self._reduce(gx0, gx1)

    def forward(self, x0, x1):
        try:
            return x0 ** x1
        except ValueError:
            raise _broadcast_error(self, x0, x1) from None


def pow(x: Variable | ArrayLike, c: float) -> Variable:  # noqa: A001 - the public name mirrors the operator
    """``x ** c``; ``c`` may be a constant scalar or a Variable/array (then it gets a gradient too)."""
    if isinstance(c, Variable) or isinstance(c, np.ndarray) and c.ndim > 0:
        return Pow()(x, c)
    if isinstance(c, (np.generic, np.ndarray)):
        c = c.item()  # a numpy scalar would upcast float32 data; a Python number does not
    return PowConst(c)(x)


def rpow(x: Variable | ArrayLike, c: Variable | ArrayLike) -> Variable:
    """``c ** x`` for a constant base ``c``."""
    return Pow()(as_variable(c, x), x)


class Exp(Function):
    """``e ** x`` element-wise; same shape and dtype as ``x``."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * self.outputs[0]()

    def backward_arrays(self, gy):
        return gy * self.outputs[0]().data


def exp(x: Variable | ArrayLike) -> Variable:
    """Element-wise ``e ** x``."""
    return Exp()(x)


class Log(Function):
    """Natural logarithm element-wise (``x > 0``); same shape and dtype as ``x``."""

    def forward(self, x):
        return np.log(x)

    def backward(self, gy):
        return gy / self.inputs[0]

    def backward_arrays(self, gy):
        return gy / self.inputs[0].data


def log(x: Variable | ArrayLike) -> Variable:
    """Element-wise natural logarithm."""
    return Log()(x)


class Sin(Function):
    """``sin(x)`` element-wise; same shape and dtype as ``x``."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])

    def backward_arrays(self, gy):
        return gy * np.cos(self.inputs[0].data)


def sin(x: Variable | ArrayLike) -> Variable:
    """Element-wise sine of a Variable/array of any shape (float); same shape and dtype."""
    return Sin()(x)


class Cos(Function):
    """``cos(x)`` element-wise; same shape and dtype as ``x``."""

    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        return gy * -sin(self.inputs[0])


def cos(x: Variable | ArrayLike) -> Variable:
    """Element-wise cosine of a Variable/array of any shape (float); same shape and dtype."""
    return Cos()(x)


class Tanh(Function):
    """``tanh(x)`` element-wise; same shape and dtype as ``x``."""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)

    def backward_arrays(self, gy):
        y = self.outputs[0]().data
        return gy * (1 - y * y)


def tanh(x: Variable | ArrayLike) -> Variable:
    """Element-wise hyperbolic tangent of any shape (float); same shape and dtype."""
    return Tanh()(x)


class Sigmoid(Function):
    """``1 / (1 + exp(-x))`` element-wise, without overflow; same shape and dtype as ``x``."""

    def forward(self, x):
        # 0.5 * tanh(x / 2) + 0.5 equals 1 / (1 + exp(-x)) and never overflows.
        return np.tanh(x * 0.5) * 0.5 + 0.5

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * y * (1 - y)

    def backward_arrays(self, gy):
        y = self.outputs[0]().data
        return gy * y * (1 - y)


def sigmoid(x: Variable | ArrayLike) -> Variable:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, stable for any ``x``."""
    return Sigmoid()(x)


class ReLU(Function):
    """``max(x, 0)`` element-wise; same shape and dtype as ``x``."""

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * (x.data > 0).astype(gy.dtype)

    def backward_arrays(self, gy):
        return gy * (self.inputs[0].data > 0)


def relu(x: Variable | ArrayLike) -> Variable:
    """``max(x, 0)`` element-wise."""
    return ReLU()(x)


class Sqrt(Function):
    """``sqrt(x)`` element-wise (``x >= 0``); same shape and dtype as ``x``."""

    def forward(self, x):
        return np.sqrt(x)

    def backward(self, gy):
        return gy * 0.5 / self.outputs[0]()

    def backward_arrays(self, gy):
        return gy * 0.5 / self.outputs[0]().data


def sqrt(x: Variable | ArrayLike) -> Variable:
    """Element-wise square root of non-negative values of any shape (float); same shape and dtype."""
    return Sqrt()(x)


class Clip(Function):
    """Clamp to ``[x_min, x_max]``; the gradient passes only where ``x`` was inside the range."""

    def __init__(self, x_min, x_max):
        self.x_min, self.x_max = x_min, x_max

    def forward(self, x):
        return np.clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        x = self.inputs[0].data
        mask = (x >= self.x_min) & (x <= self.x_max)
        return gy * mask.astype(gy.dtype)


def clip(x: Variable | ArrayLike, x_min: float | None, x_max: float | None) -> Variable:
    """Clamp ``x`` to ``[x_min, x_max]`` (``None`` leaves a side open)."""
    lo = -np.inf if x_min is None else x_min
    hi = np.inf if x_max is None else x_max
    return Clip(lo, hi)(x)


class Cast(Function):
    """``x`` converted to a floating ``dtype``; the gradient is converted back to ``x``'s dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "fc":
            raise TypeError(f"Cast: {self.dtype} is not a floating dtype, so it cannot carry a gradient")

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.inputs[0].data.dtype)

    def backward_arrays(self, gy):
        return gy.astype(self.inputs[0].data.dtype, copy=False)


def cast(x: Variable | ArrayLike, dtype: DTypeLike) -> Variable:
    """``x`` as ``dtype`` (float16/32/64): a graph node, so gradients flow through the cast."""
    return Cast(dtype)(x)
