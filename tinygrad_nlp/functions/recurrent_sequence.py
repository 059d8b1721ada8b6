"""A whole LSTM sequence as one Function: ``lstm_sequence(xw, h, c, W_h) -> (hs, h_T, c_T)``.

The per-step cells ([`lstm_step`][tinygrad_nlp.functions.rnn.lstm_step]) make one graph node per time
step, and each step's backward computes its own ``h_{t-1}^T @ dA_t`` for ``W_h``'s gradient.
Here the time loop runs inside one node: the forward keeps every step's gates in one (T, N, 4H)
buffer, and the backward walks the steps in reverse computing only what must be sequential
(``dA_t`` and ``dA_t @ W_h^T``), then gets ``W_h``'s gradient for all steps from a single
(H, T*N) @ (T*N, 4H) product. The arithmetic is the same; the matrix products are fewer and
larger, and the graph has one node instead of T (measured 1.25x faster on the book's Peeky
training step). Gate order i, f, g, o, as ``lstm_step`` and PyTorch.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Function, Variable
from tinygrad_nlp.functions.rnn import _activate_lstm_gates_, _data, _lstm_gate_grads, _vars

__all__ = ["lstm_sequence", "LSTMSequence"]


class _Gradients(Function):
    """The backward node of an LSTMSequence: its forward computes every input gradient."""

    def __init__(self, sequence):
        self.sequence = sequence

    def forward(self, g_hs, g_h, g_c):
        return self.sequence._grads(g_hs, g_h, g_c)

    def backward(self, *ggs):
        raise NotImplementedError("lstm_sequence is differentiable once: its gradient cannot be differentiated again")


class LSTMSequence(Function):
    """LSTM over T steps of a projected input ``xw`` (N, T, 4H) from ``(h, c)`` (N, H) each.

    Outputs ``hs`` (N, T, H), the final ``h`` and the final ``c`` (N, H).
    """

    def forward(self, xw, h0, c0, W_h):
        N, T, H4 = xw.shape
        H = H4 // 4
        gates = np.empty((T, N, H4), dtype=xw.dtype)
        cs = np.empty((T + 1, N, H), dtype=xw.dtype)
        hs = np.empty((T + 1, N, H), dtype=xw.dtype)
        tanh_c = np.empty((T, N, H), dtype=xw.dtype)
        cs[0], hs[0] = c0, h0
        for t in range(T):
            a = gates[t]
            np.matmul(hs[t], W_h, out=a)
            a += xw[:, t]
            i, f, g, o = _activate_lstm_gates_(a)
            np.multiply(f, cs[t], out=cs[t + 1])
            cs[t + 1] += i * g
            np.tanh(cs[t + 1], out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=hs[t + 1])
        self.gates, self.cs, self.hs, self.tanh_c = gates, cs, hs, tanh_c
        return np.ascontiguousarray(hs[1:].transpose(1, 0, 2)), hs[T].copy(), cs[T].copy()

    def _grads(self, g_hs, g_h, g_c):
        gates, cs, hs, tanh_c = self.gates, self.cs, self.hs, self.tanh_c
        W_h = self.inputs[3].data
        T, N, H4 = gates.shape
        H = H4 // 4
        dA = np.empty_like(gates)
        dh = g_h + g_hs[:, T - 1]
        dc = g_c.astype(gates.dtype, copy=True)
        for t in range(T - 1, -1, -1):
            a = gates[t]
            f, o = a[:, H : 2 * H], a[:, 3 * H :]
            d, tc = dA[t], tanh_c[t]
            # dL/dc_t: what arrives at c_t directly plus what comes through h_t = o * tanh(c_t)
            dc += dh * o * (1 - tc * tc)
            _lstm_gate_grads(d, a, cs[t], tc, dc, dh)
            dc *= f
            dh = d @ W_h.T
            if t:
                dh += g_hs[:, t - 1]
        g_W = hs[:-1].reshape(T * N, H).T @ dA.reshape(T * N, H4)
        return np.ascontiguousarray(dA.transpose(1, 0, 2)), dh, dc, g_W

    def backward_arrays(self, g_hs, g_h, g_c):
        return self._grads(g_hs, g_h, g_c)

    def backward(self, g_hs, g_h, g_c):
        return tuple(_Gradients(self)(g_hs, g_h, g_c))


def lstm_sequence(xw: Variable | ArrayLike, h: Variable | ArrayLike, c: Variable | ArrayLike,
                  W_h: Variable | ArrayLike) -> tuple[Variable, Variable, Variable]:
    """Run an LSTM over a whole sequence in one graph node.

    Args:
        xw: (N, T, 4H) input projection ``x @ W_x + b`` of every step (gate blocks i, f, g, o).
        h, c: (N, H) initial hidden and cell state.
        W_h: (H, 4H) recurrent weights.

    Returns:
        ``(hs, h_T, c_T)``: (N, T, H) hidden states of every step and the final (N, H) ``h`` and
        ``c`` - the values a loop of [`lstm_step`][tinygrad_nlp.functions.rnn.lstm_step] gives.
    """
    xs, hs_, cs_, ws = (np.shape(_data(v)) for v in (xw, h, c, W_h))
    if len(xs) != 3 or xs[1] == 0 or xs[2] % 4:
        raise ValueError(f"lstm_sequence: xw must have shape (N, T >= 1, 4H), got {xs}")
    N, H = xs[0], xs[2] // 4
    for what, shape, want in (("h", hs_, (N, H)), ("c", cs_, (N, H)), ("W_h", ws, (H, 4 * H))):
        if shape != want:
            raise ValueError(f"lstm_sequence: {what} must have shape {want} for xw of shape {xs}, got {shape}")
    return tuple(LSTMSequence()(*_vars(xw, h, c, W_h)))
