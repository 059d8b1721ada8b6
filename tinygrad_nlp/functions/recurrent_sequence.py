"""Whole recurrent sequences as single Functions: ``lstm_sequence``, ``gru_sequence``, ``rnn_sequence``.

The per-step cells ([`lstm_step`][tinygrad_nlp.functions.rnn.lstm_step] and its siblings) make one
graph node per time step, and each step's backward computes its own ``h_{t-1}^T @ dA_t`` for
``W_h``'s gradient. Here the time loop runs inside one node, which is what the recurrent layers
run by default:

* the forward keeps every step's gates and states in (T, N, ...) buffers allocated once; a step is
  one matrix product ``h_{t-1} @ W_h`` written into its slice of the gate buffer, then one call of
  the backend's gate primitive (``backend.ops.lstm_gates`` etc.) doing all the element-wise work
  of the step in place;
* the backward walks the steps in reverse doing only what must be sequential (the gate
  primitive's backward and ``dA_t @ W_h^T``), then gets ``W_h``'s gradient for all steps from a
  single (H, T*N) @ (T*N, kH) product;
* with several threads, both time loops of a large sequence run as blocks of rows side by side
  (``_threads.by_rows``): a row of the batch never meets another in a
  recurrence, so the blocks need no meeting point between steps.

Sequences are **time-major**, (T, N, ...), as PyTorch's recurrent layers are by default: a time
step is then a contiguous (N, ...) block, and neither the forward nor the backward copies a
transposed array. The inputs are the projected inputs ``xw = x @ W_x + b`` of every step (gate
blocks in PyTorch's order, as the cells). The values are those of a loop of the step cells,
which call the same gate primitives.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import _threads, backend
from tinygrad_nlp.core import Variable
from tinygrad_nlp.functions.rnn import _data, _DifferentiableOnce, _vars

__all__ = ["lstm_sequence", "gru_sequence", "rnn_sequence", "LSTMSequence", "GRUSequence", "RNNSequence"]


def _transposed(W):
    """``W.T`` as a C-contiguous copy: the backward's T products ``dA_t @ W^T`` run 10 % faster
    on it than on the transposed view (OpenBLAS, (128, 1024) @ (1024, 256)), for one copy of W."""
    return np.ascontiguousarray(W.T)


class _Sequence(_DifferentiableOnce):
    """Shared by the sequence Functions (graph diagrams tell them from the per-step cells)."""


class LSTMSequence(_Sequence):
    """LSTM over T steps from ``(h, c)`` (N, H) each, with recurrent weights ``W_h`` (H, 4H).

    Inputs ``(xw, h, c, W_h)`` for a projected input ``xw`` (T, N, 4H) (``projected=True``), or
    ``(x, h, c, W_h, W_x, b)`` for an input ``x`` (T, N, D) with its weights ``W_x`` (D, 4H) and
    bias ``b``, (4H,) or one row per sequence (N, 4H). Unprojected, each step is one product
    ``[h_{t-1} | x_t] @ [W_h ; W_x]``: for an input much narrower than the state (an embedding of
    16 feeding H = 256) that skips writing and reading back the (T, N, 4H) projection, which cost
    more than the D extra rows add to the step's product.

    Outputs ``hs`` (T, N, H), the final ``h`` and the final ``c`` (N, H).
    """

    def __init__(self, projected=True):
        self.projected = projected

    def forward(self, x, h0, c0, W_h, W_x=None, b=None):
        T, N = x.shape[:2]
        H4 = W_h.shape[1]
        H = H4 // 4
        dtype = x.dtype if self.projected else W_h.dtype
        hs = np.empty((T + 1, N, H), dtype=dtype)
        hs[0] = h0
        if self.projected:
            W, left, added = W_h, hs, x  # step t: left[t] @ W, then the gate primitive adds added[t]
        else:
            # left[t] = [h_{t-1} | x_t | 1]: the product reads all but the 1, whose column gives the
            # bias gradient in the backward's weight-gradient product. The gate primitive writes
            # h_t into hs (contiguous rows, which its loops need to vectorise); it is copied on.
            D = x.shape[2]
            left = np.empty((T, N, H + D + 1), dtype=dtype)
            left[0, :, :H] = h0
            left[:, :, H : H + D] = x
            left[:, :, H + D] = 1
            W = np.concatenate([W_h, W_x]).astype(dtype, copy=False)
            added = [np.ascontiguousarray(np.broadcast_to(b, (N, H4)), dtype=dtype)] * T
        K = W.shape[0]
        gates = np.empty((T, N, H4), dtype=dtype)
        cs = np.empty((T + 1, N, H), dtype=dtype)
        tanh_c = np.empty((T, N, H), dtype=dtype)
        cs[0] = c0
        lstm_gates = backend.ops.lstm_gates
        copy_on = not self.projected

        def run(r):  # this block's rows of every buffer, sliced once: a step then indexes by t alone
            lft, lft_h, g, add = left[:, r, :K], left[:, r, :H], gates[:, r], [a[r] for a in added]
            c, tc, h = cs[:, r], tanh_c[:, r], hs[:, r]
            for t in range(T):
                np.matmul(lft[t], W, out=g[t])
                lstm_gates(g[t], add[t], c[t], c[t + 1], tc[t], h[t + 1])
                if copy_on and t + 1 < T:
                    lft_h[t + 1] = h[t + 1]

        _threads.by_rows(run, N, N * K * H4)
        self.gates, self.cs, self.left, self.tanh_c, self.W = gates, cs, left, tanh_c, W
        return hs[1:], hs[T].copy(), cs[T].copy()

    def _grads(self, g_hs, g_h, g_c):
        gates, cs, left, tanh_c = self.gates, self.cs, self.left, self.tanh_c
        W_T = _transposed(self.W)
        T, N, H4 = gates.shape
        H, K = H4 // 4, W_T.shape[1]
        dA = np.empty_like(gates)
        d_left = np.empty((T, N, K), dtype=gates.dtype)  # [dh_{t-1} | dx_t] of every step
        dh = g_h + g_hs[T - 1]
        dc = np.array(g_c, dtype=gates.dtype)
        backward = backend.ops.lstm_gates_backward

        def run(r):
            g, c, tc, d_a, d_l, d_lh = gates[:, r], cs[:, r], tanh_c[:, r], dA[:, r], d_left[:, r], d_left[:, r, :H]
            d_h, d_c, g_h_r = dh[r], dc[r], g_hs[:, r]
            for t in range(T - 1, -1, -1):
                backward(g[t], c[t], tc[t], d_h, d_c, d_a[t])
                np.matmul(d_a[t], W_T, out=d_l[t])
                if t:
                    np.add(d_lh[t], g_h_r[t - 1], out=d_h)

        _threads.by_rows(run, N, N * H4 * K)
        # A large product, split across our threads as Linear's are. Left to BLAS's own threads it
        # woke them, and they spun for the next ~0.1 s on the cores where the optimizer update and
        # the next window's softmax ran on our threads: a language model's step at 2 threads took
        # 54 ms, now 34. Unprojected, its rows are the gradients of [W_h ; W_x ; b].
        g_W = _threads.matmul(left[:T].reshape(T * N, -1).T, dA.reshape(T * N, H4))
        if self.projected:
            return dA, d_left[0], dc, g_W
        b = self.inputs[5].data
        g_b = g_W[K] if b.ndim == 1 else dA.sum(axis=0)
        g_x = np.ascontiguousarray(d_left[:, :, H:])
        return g_x, np.ascontiguousarray(d_left[0, :, :H]), dc, g_W[:H], g_W[H:K], g_b


class GRUSequence(_Sequence):
    """GRU over T steps of a projected input ``xw`` (T, N, 3H) (``x @ W_x + b_x``) from ``h``
    (N, H), with recurrent weights ``W_h`` (H, 3H) and bias ``b_h`` (3H,).

    Outputs ``hs`` (T, N, H) and the final ``h`` (N, H).
    """

    def forward(self, xw, h0, W_h, b_h):
        T, N, H3 = xw.shape
        H = H3 // 3
        hw = np.empty((T, N, H3), dtype=xw.dtype)
        gates = np.empty((T, N, H3), dtype=xw.dtype)
        hs = np.empty((T + 1, N, H), dtype=xw.dtype)
        hs[0] = h0
        gru_gates = backend.ops.gru_gates

        def run(r):
            h, a, x, g = hs[:, r], hw[:, r], xw[:, r], gates[:, r]
            for t in range(T):
                np.matmul(h[t], W_h, out=a[t])
                gru_gates(a[t], x[t], b_h, h[t], g[t], h[t + 1])

        _threads.by_rows(run, N, N * H * H3)
        self.hw, self.gates, self.hs = hw, gates, hs
        return hs[1:], hs[T].copy()

    def _grads(self, g_hs, g_h):
        hw, gates, hs = self.hw, self.gates, self.hs
        W_hT = _transposed(self.inputs[2].data)
        T, N, H3 = gates.shape
        d_xw, d_hw = np.empty_like(gates), np.empty_like(gates)
        dh = g_h + g_hs[T - 1]
        dh_prev, g_h0, product = np.empty_like(dh), np.empty_like(dh), np.empty_like(dh)
        backward = backend.ops.gru_gates_backward

        def run(r):
            g, a, h, d_x, d_a, g_h_r = gates[:, r], hw[:, r], hs[:, r], d_xw[:, r], d_hw[:, r], g_hs[:, r]
            d, d_prev, prod = dh[r], dh_prev[r], product[r]  # d and d_prev swap each step
            for t in range(T - 1, -1, -1):
                backward(g[t], a[t], h[t], d, d_x[t], d_a[t], d_prev)
                d_prev += np.matmul(d_a[t], W_hT, out=prod)
                d, d_prev = d_prev, d
                if t:
                    d += g_h_r[t - 1]
            g_h0[r] = d

        _threads.by_rows(run, N, N * H3 * (H3 // 3))
        flat = d_hw.reshape(T * N, H3)
        return d_xw, g_h0, _threads.matmul(hs[:-1].reshape(T * N, -1).T, flat), flat.sum(axis=0)


class RNNSequence(_Sequence):
    """Elman RNN over T steps of a projected input ``xw`` (T, N, H) from ``h`` (N, H).

    Outputs ``hs`` (T, N, H) and the final ``h`` (N, H).
    """

    def forward(self, xw, h0, W_h):
        T, N, H = xw.shape
        hs = np.empty((T + 1, N, H), dtype=xw.dtype)
        hs[0] = h0
        rnn_gates = backend.ops.rnn_gates

        def run(r):
            h, x = hs[:, r], xw[:, r]
            for t in range(T):
                np.matmul(h[t], W_h, out=h[t + 1])
                rnn_gates(h[t + 1], x[t])

        _threads.by_rows(run, N, N * H * H)
        self.hs = hs
        return hs[1:], hs[T].copy()

    def _grads(self, g_hs, g_h):
        hs = self.hs
        W_hT = _transposed(self.inputs[2].data)
        T, N, H = g_hs.shape
        dA = np.empty((T, N, H), dtype=hs.dtype)
        dh = g_h + g_hs[T - 1]
        g_h0 = np.empty_like(dh)
        backward = backend.ops.rnn_gates_backward

        def run(r):
            h, d_a, d_h, g_h_r = hs[:, r], dA[:, r], dh[r], g_hs[:, r]
            for t in range(T - 1, -1, -1):
                backward(h[t + 1], d_h, d_a[t])
                np.matmul(d_a[t], W_hT, out=d_h if t else g_h0[r])
                if t:
                    d_h += g_h_r[t - 1]

        _threads.by_rows(run, N, N * H * H)
        return dA, g_h0, _threads.matmul(hs[:-1].reshape(T * N, H).T, dA.reshape(T * N, H))


def _check(name, xw, blocks, states, W_h, b_h=None):
    """Validate the shapes of a sequence call; returns (T, N, H)."""
    xs = np.shape(_data(xw))
    if len(xs) != 3 or xs[0] == 0 or xs[2] % blocks:
        want = f"(T >= 1, N, {blocks}H)" if blocks > 1 else "(T >= 1, N, H)"
        raise ValueError(f"{name}: xw must have shape {want}, got {xs}")
    T, N, H = xs[0], xs[1], xs[2] // blocks
    wants = [(what, v, (N, H)) for what, v in states] + [("W_h", W_h, (H, blocks * H))]
    if b_h is not None:
        wants.append(("b_h", b_h, (blocks * H,)))
    for what, v, want in wants:
        if np.shape(_data(v)) != want:
            raise ValueError(f"{name}: {what} must have shape {want} for xw of shape {xs}, got {np.shape(_data(v))}")
    return T, N, H


def lstm_sequence(xw: Variable | ArrayLike, h: Variable | ArrayLike, c: Variable | ArrayLike,
                  W_h: Variable | ArrayLike, *, W_x: Variable | ArrayLike | None = None,
                  b: Variable | ArrayLike | None = None) -> tuple[Variable, Variable, Variable]:
    """Run an LSTM over a whole time-major sequence in one graph node.

    Args:
        xw: (T, N, 4H) input projection ``x @ W_x + b`` of every step (gate blocks i, f, g, o);
            or, when ``W_x`` and ``b`` are given, the input ``x`` (T, N, D) itself.
        h, c: (N, H) initial hidden and cell state.
        W_h: (H, 4H) recurrent weights.
        W_x, b: (D, 4H) input weights and a bias, (4H,) or (N, 4H) (one row per sequence, such
            as a Peeky decoder's projected encoder state). Each step's product is then
            ``[h_{t-1} | x_t] @ [W_h ; W_x]``, which for a narrow ``x`` is faster than projecting
            it first (see ``LSTMSequence``); the values are the same up to rounding.

    Returns:
        ``(hs, h_T, c_T)``: (T, N, H) hidden states of every step and the final (N, H) ``h`` and
        ``c`` - the values a loop of [`lstm_step`][tinygrad_nlp.functions.rnn.lstm_step] gives.
    """
    if (W_x is None) != (b is None):
        raise ValueError("lstm_sequence: give W_x and b together (an unprojected input), or neither")
    if W_x is None:
        _check("lstm_sequence", xw, 4, (("h", h), ("c", c)), W_h)
        return tuple(LSTMSequence()(*_vars(xw, h, c, W_h)))
    xs, ws = np.shape(_data(xw)), np.shape(_data(W_h))
    if len(ws) != 2 or ws[1] != 4 * ws[0]:
        raise ValueError(f"lstm_sequence: W_h must have shape (H, 4H), got {ws}")
    H = ws[0]
    if len(xs) != 3 or xs[0] == 0:
        raise ValueError(f"lstm_sequence: x must have shape (T >= 1, N, D), got {xs}")
    T, N, D = xs
    for what, v, want in (("h", h, [(N, H)]), ("c", c, [(N, H)]), ("W_x", W_x, [(D, 4 * H)]),
                          ("b", b, [(4 * H,), (N, 4 * H)])):
        if np.shape(_data(v)) not in want:
            raise ValueError(f"lstm_sequence: {what} must have shape {' or '.join(map(str, want))} for x of shape "
                             f"{xs} and W_h of shape {ws}, got {np.shape(_data(v))}")
    return tuple(LSTMSequence(projected=False)(*_vars(xw, h, c, W_h, W_x, b)))


def gru_sequence(xw: Variable | ArrayLike, h: Variable | ArrayLike, W_h: Variable | ArrayLike,
                 b_h: Variable | ArrayLike) -> tuple[Variable, Variable]:
    """Run a GRU over a whole time-major sequence in one graph node.

    Args:
        xw: (T, N, 3H) input projection ``x @ W_x + b_x`` of every step (blocks r, z, n).
        h: (N, H) initial hidden state.
        W_h: (H, 3H) recurrent weights. b_h: (3H,) recurrent bias (inside ``r * (h W_hn + b_hn)``).

    Returns:
        ``(hs, h_T)``: (T, N, H) hidden states of every step and the final (N, H) ``h`` - the
        values a loop of [`gru_step`][tinygrad_nlp.functions.rnn.gru_step] gives.
    """
    _check("gru_sequence", xw, 3, (("h", h),), W_h, b_h)
    return tuple(GRUSequence()(*_vars(xw, h, W_h, b_h)))


def rnn_sequence(xw: Variable | ArrayLike, h: Variable | ArrayLike,
                 W_h: Variable | ArrayLike) -> tuple[Variable, Variable]:
    """Run an Elman RNN over a whole time-major sequence in one graph node.

    Args:
        xw: (T, N, H) input projection ``x @ W_x + b`` of every step.
        h: (N, H) initial hidden state.
        W_h: (H, H) recurrent weights.

    Returns:
        ``(hs, h_T)``: (T, N, H) hidden states of every step and the final (N, H) ``h`` - the
        values a loop of [`rnn_step`][tinygrad_nlp.functions.rnn.rnn_step] gives.
    """
    _check("rnn_sequence", xw, 1, (("h", h),), W_h)
    return tuple(RNNSequence()(*_vars(xw, h, W_h)))
