"""Recurrent cells as single fused Functions: ``rnn_cell``, ``lstm_cell``, ``gru_cell``.

Each cell is one graph node whose forward computes every gate of one time step and whose
backward computes every gradient of that step in one go (the book's hand-written ``LSTM``
layer, here behind the engine), instead of a chain of fifteen small nodes. Gate blocks follow
PyTorch's order, so the weights of ``torch.nn.LSTMCell`` / ``GRUCell`` map over by a transpose:

* LSTM, blocks ``i, f, g, o`` of ``W_x`` (D, 4H), ``W_h`` (H, 4H), ``b`` (4H,)::

      a = x W_x + h W_h + b;  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
      c' = f * c + i * g;     h' = o * tanh(c')

* GRU, blocks ``r, z, n`` of ``W_x`` (D, 3H), ``W_h`` (H, 3H), biases ``b_x``, ``b_h`` (3H,)::

      r, z = sigmoid(x W_x[r,z] + b_x[r,z] + h W_h[r,z] + b_h[r,z])
      n = tanh(x W_xn + b_xn + r * (h W_hn + b_hn));   h' = (1 - z) * n + z * h

* plain RNN: ``h' = tanh(x W_x + h W_h + b)``.

Unrolled, recurrent layers project the whole (N, T, D) input with one matrix product before
the time loop and run the ``*_step`` variants, which take that projection ``x W_x + b`` of one
step instead of ``x``; ``unbind`` splits the projection into its T steps in one node.

The gradients are first-order: one call computes all of a cell's input gradients from the
saved gates. ``create_graph=True`` records that call as one node of its own, but differentiating
a cell twice raises ``NotImplementedError``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import backend
from tinygrad_nlp.core import Function, Variable, as_variable

__all__ = [
    "CarriedState", "rnn_cell", "lstm_cell", "gru_cell", "rnn_step", "lstm_step", "gru_step", "unbind",
    "RNNCell", "LSTMCell", "GRUCell", "Unbind",
]


class CarriedState(Variable):
    """A recurrent state carried over from the previous window of truncated backpropagation:
    a leaf holding the values only, so no gradient crosses back into that window (graph
    diagrams draw it as the cut)."""

    __slots__ = ()


def _data(x):
    return x.data if isinstance(x, Variable) else np.asarray(x)


def _check_2d(name, what, x, rows=None, cols=None):
    shape = np.shape(_data(x))
    if len(shape) != 2 or (rows is not None and shape[0] != rows) or (cols is not None and shape[1] != cols):
        want = f"({'N' if rows is None else rows}, {'?' if cols is None else cols})"
        raise ValueError(f"{name}: {what} must have shape {want}, got {shape}")


def _check_cell(name, x, h, W_x, W_h, blocks, c=None):
    """Validate shapes of one cell call; returns (N, H)."""
    h_shape = np.shape(_data(h))
    if len(h_shape) != 2:
        raise ValueError(f"{name}: h must have shape (N, H), got {h_shape}")
    N, H = h_shape
    _check_2d(name, "W_h", W_h, H, blocks * H)
    if W_x is not None:
        _check_2d(name, "x", x, N)
        _check_2d(name, "W_x", W_x, np.shape(_data(x))[1], blocks * H)
    else:
        _check_2d(name, "the projected input x W_x + b", x, N, blocks * H)
    if c is not None and np.shape(_data(c)) != (N, H):
        raise ValueError(f"{name}: c must have shape {(N, H)} like h, got {np.shape(_data(c))}")
    return N, H


def _check_bias(name, what, b, size):
    if np.shape(_data(b)) != (size,):
        raise ValueError(f"{name}: {what} must have shape ({size},), got {np.shape(_data(b))}")


class _FirstOrder(Function):
    """The backward node of a cell or a sequence Function (``owner``): its forward computes all
    of the owner's input gradients, and it cannot be differentiated itself."""

    def __init__(self, owner):
        self.owner = owner

    def forward(self, *gys):
        return self.owner._grads(*gys)

    def backward(self, *ggs):
        raise NotImplementedError(
            f"{type(self.owner).__name__} is differentiable once: its gradient cannot be differentiated again"
        )


class _DifferentiableOnce(Function):
    """A Function whose ``_grads(*gys)`` computes all its input gradients at once from what its
    forward saved (the cells here, the sequence Functions): the arrays come straight from
    ``_grads`` when no graph is recorded, else through one ``_FirstOrder`` node."""

    def backward_arrays(self, *gys):
        return self._grads(*gys)

    def backward(self, *gys):
        return tuple(_FirstOrder(self)(*gys))


class _Cell(_DifferentiableOnce):
    """Shared by the cells: ``projected`` takes the step's input projection ``xw`` in place of
    ``x`` and its weights ``W_x, b``."""

    def __init__(self, projected=False):
        self.projected = projected


# ----- plain RNN -----
class RNNCell(_Cell):
    """``tanh(x W_x + h W_h + b)``, or ``tanh(xw + h W_h)`` when ``projected``."""

    def forward(self, *xs):
        if self.projected:
            xw, h, W_h = xs
        else:
            x, h, W_x, W_h, b = xs
            xw = x @ W_x
            xw += b
        a = h @ W_h
        backend.ops.rnn_gates(a, xw)
        self.h_next = a
        return a

    def _grads(self, gy):
        ins = [v.data for v in self.inputs]
        dA = np.empty_like(self.h_next)
        backend.ops.rnn_gates_backward(self.h_next, gy, dA)
        if self.projected:
            xw, h, W_h = ins
            return dA, dA @ W_h.T, h.T @ dA
        x, h, W_x, W_h, b = ins
        return dA @ W_x.T, dA @ W_h.T, x.T @ dA, h.T @ dA, dA.sum(axis=0)


def rnn_cell(x: Variable | ArrayLike, h: Variable | ArrayLike, W_x: Variable | ArrayLike,
             W_h: Variable | ArrayLike, b: Variable | ArrayLike) -> Variable:
    """One step of an Elman RNN: ``tanh(x @ W_x + h @ W_h + b)``.

    Args:
        x: (N, D) input. h: (N, H) previous hidden state. W_x: (D, H). W_h: (H, H). b: (H,).

    Returns:
        (N, H) next hidden state, one graph node.
    """
    N, H = _check_cell("rnn_cell", x, h, W_x, W_h, 1)
    _check_bias("rnn_cell", "b", b, H)
    return RNNCell()(*_vars(x, h, W_x, W_h, b))


def rnn_step(xw: Variable | ArrayLike, h: Variable | ArrayLike, W_h: Variable | ArrayLike) -> Variable:
    """``tanh(xw + h @ W_h)``: a step whose input projection ``xw = x @ W_x + b`` (N, H) was
    computed ahead for the whole sequence."""
    _check_cell("rnn_step", xw, h, None, W_h, 1)
    return RNNCell(projected=True)(*_vars(xw, h, W_h))


def _vars(*xs):
    like = next((x for x in xs if isinstance(x, Variable)), None)
    return tuple(as_variable(x, like) for x in xs)


# ----- LSTM -----
class LSTMCell(_Cell):
    """The LSTM cell (gates i, f, g, o); outputs ``(h_next, c_next)``."""

    def forward(self, *xs):
        if self.projected:
            xw, h, c, W_h = xs
        else:
            x, h, c, W_x, W_h, b = xs
            xw = x @ W_x
            xw += b
        a = h @ W_h
        c_next, tanh_c, h_next = (np.empty_like(a, shape=c.shape) for _ in range(3))
        backend.ops.lstm_gates(a, xw, c, c_next, tanh_c, h_next)
        self.gates, self.tanh_c = a, tanh_c
        return h_next, c_next

    def _grads(self, gh, gc):
        ins = [v.data for v in self.inputs]
        dA = np.empty_like(self.gates)
        dc = np.array(gc, dtype=dA.dtype)  # leaves holding dL/dc_prev
        backend.ops.lstm_gates_backward(self.gates, ins[2], self.tanh_c, gh, dc, dA)
        if self.projected:
            xw, h, c, W_h = ins
            return dA, dA @ W_h.T, dc, h.T @ dA
        x, h, c, W_x, W_h, b = ins
        return dA @ W_x.T, dA @ W_h.T, dc, x.T @ dA, h.T @ dA, dA.sum(axis=0)


def lstm_cell(x: Variable | ArrayLike, h: Variable | ArrayLike, c: Variable | ArrayLike,
              W_x: Variable | ArrayLike, W_h: Variable | ArrayLike,
              b: Variable | ArrayLike) -> tuple[Variable, Variable]:
    """One LSTM step, gate blocks in PyTorch's order i, f, g, o.

    ``torch.nn.LSTMCell``'s ``weight_ih`` is ``W_x.T``, its ``weight_hh`` is ``W_h.T`` and its
    ``bias_ih + bias_hh`` is ``b``.

    Args:
        x: (N, D) input. h, c: (N, H) previous hidden and cell state.
        W_x: (D, 4H). W_h: (H, 4H). b: (4H,).

    Returns:
        ``(h_next, c_next)``, each (N, H), outputs of one graph node.
    """
    N, H = _check_cell("lstm_cell", x, h, W_x, W_h, 4, c=c)
    _check_bias("lstm_cell", "b", b, 4 * H)
    return LSTMCell()(*_vars(x, h, c, W_x, W_h, b))


def lstm_step(xw: Variable | ArrayLike, h: Variable | ArrayLike, c: Variable | ArrayLike,
              W_h: Variable | ArrayLike) -> tuple[Variable, Variable]:
    """An LSTM step on a projected input ``xw = x @ W_x + b`` (N, 4H); returns ``(h_next, c_next)``."""
    _check_cell("lstm_step", xw, h, None, W_h, 4, c=c)
    return LSTMCell(projected=True)(*_vars(xw, h, c, W_h))


# ----- GRU -----
class GRUCell(_Cell):
    """The GRU cell (blocks r, z, n, PyTorch's formula with ``r`` applied to ``h W_hn + b_hn``)."""

    def forward(self, *xs):
        if self.projected:
            xw, h, W_h, b_h = xs
        else:
            x, h, W_x, W_h, b_x, b_h = xs
            xw = x @ W_x
            xw += b_x
        hw = h @ W_h
        gates, h_next = np.empty_like(hw), np.empty_like(hw, shape=h.shape)
        backend.ops.gru_gates(hw, xw, b_h, h, gates, h_next)
        self.gates, self.hw = gates, hw
        return h_next

    def _grads(self, gy):
        ins = [v.data for v in self.inputs]
        h = ins[1]
        d_xw, d_hw, gh = np.empty_like(self.gates), np.empty_like(self.gates), np.empty_like(h)
        backend.ops.gru_gates_backward(self.gates, self.hw, h, gy, d_xw, d_hw, gh)
        W_h = ins[2] if self.projected else ins[3]
        gh += d_hw @ W_h.T
        gW_h, gb_h = h.T @ d_hw, d_hw.sum(axis=0)
        if self.projected:
            return d_xw, gh, gW_h, gb_h
        x, W_x = ins[0], ins[2]
        return d_xw @ W_x.T, gh, x.T @ d_xw, gW_h, d_xw.sum(axis=0), gb_h


def gru_cell(x: Variable | ArrayLike, h: Variable | ArrayLike, W_x: Variable | ArrayLike,
             W_h: Variable | ArrayLike, b_x: Variable | ArrayLike, b_h: Variable | ArrayLike) -> Variable:
    """One GRU step, PyTorch's formula and block order r, z, n.

    ``torch.nn.GRUCell``'s weights map over as ``weight_ih.T``, ``weight_hh.T``, ``bias_ih`` and
    ``bias_hh``; the two biases stay separate because ``b_hn`` sits inside ``r * (h W_hn + b_hn)``.

    Args:
        x: (N, D). h: (N, H). W_x: (D, 3H). W_h: (H, 3H). b_x, b_h: (3H,).

    Returns:
        (N, H) next hidden state ``(1 - z) * n + z * h``, one graph node.
    """
    N, H = _check_cell("gru_cell", x, h, W_x, W_h, 3)
    _check_bias("gru_cell", "b_x", b_x, 3 * H)
    _check_bias("gru_cell", "b_h", b_h, 3 * H)
    return GRUCell()(*_vars(x, h, W_x, W_h, b_x, b_h))


def gru_step(xw: Variable | ArrayLike, h: Variable | ArrayLike, W_h: Variable | ArrayLike,
             b_h: Variable | ArrayLike) -> Variable:
    """A GRU step on a projected input ``xw = x @ W_x + b_x`` (N, 3H)."""
    N, H = _check_cell("gru_step", xw, h, None, W_h, 3)
    _check_bias("gru_step", "b_h", b_h, 3 * H)
    return GRUCell(projected=True)(*_vars(xw, h, W_h, b_h))


# ----- splitting a sequence into steps -----
class Unbind(Function):
    """Split ``x`` along ``axis`` into its slices (one output each); the backward stacks the
    slices' gradients back (zeros for slices that received none)."""

    def __init__(self, axis=1):
        self.axis = axis

    def forward(self, x):
        axis = self.axis % x.ndim
        index = (slice(None),) * axis
        return tuple(x[index + (t,)] for t in range(x.shape[axis]))

    def backward(self, *gys):
        from tinygrad_nlp.functions.shape import stack

        return stack(gys, axis=self.axis)


def unbind(x: Variable | ArrayLike, axis: int = 1) -> list[Variable]:
    """The slices of ``x`` along ``axis`` as a list of Variables, from one graph node
    (a (N, T, D) sequence gives T Variables of shape (N, D))."""
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError("unbind: a 0-d value has no axis to split")
    if x.shape[axis] == 0:
        raise ValueError(f"unbind: axis {axis} of shape {x.shape} is empty")
    out = Unbind(axis)(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]
