"""Check analytic gradients against finite differences.

``gradient_check`` compares every element of every input's gradient with a central difference
computed in float64; ``directional_check`` compares the derivative along a few random directions
instead, which needs only two forward passes per direction and so stays cheap for large matrices.

Both reduce a non-scalar output to a scalar with fixed random weights, ``L = sum(w * f(x))``:
a plain sum would hide errors in functions whose outputs sum to a constant (softmax).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Variable, no_grad
from tinygrad_nlp.sparse import SparseRows

__all__ = ["numerical_grad", "gradient_check", "directional_check"]


def _to_array(y):
    return y.data if isinstance(y, Variable) else np.asarray(y)


def numerical_grad(f: Callable[[Variable], Variable | ArrayLike], x: Variable | ArrayLike, eps: float = 1e-6,
                   weights: ArrayLike | None = None) -> np.ndarray:
    """Central-difference gradient of ``sum(weights * f(x))`` with respect to ``x``, in float64.

    Args:
        f: callable taking one Variable and returning a Variable (or array).
        x: ndarray or Variable; it is copied to float64 and not modified.
        eps: step size.
        weights: array broadcastable to ``f(x)``'s shape (default: ones, i.e. the plain sum).

    Returns:
        float64 ndarray of ``x``'s shape.
    """
    x = np.array(_to_array(x), dtype=np.float64)
    grad = np.zeros_like(x)
    with no_grad():
        # Indexed in place, not through a flat reshape: that would be a copy for a transposed
        # (Fortran-ordered) input, and the perturbations would never reach ``f``.
        for i in np.ndindex(x.shape):
            orig = x[i]
            x[i] = orig + eps
            y1 = _to_array(f(Variable(x.copy())))
            x[i] = orig - eps
            y2 = _to_array(f(Variable(x.copy())))
            x[i] = orig
            diff = y1.astype(np.float64) - y2.astype(np.float64)
            grad[i] = np.sum(diff if weights is None else diff * weights) / (2 * eps)
    return grad


def _prepare(inputs):
    """float64 leaf Variables for floating inputs; other inputs (integer ids) pass through."""
    prepared, float_positions = [], []
    for i, x in enumerate(inputs):
        arr = _to_array(x)
        if arr.dtype.kind == "f":
            prepared.append(np.array(arr, dtype=np.float64))
            float_positions.append(i)
        else:
            prepared.append(x)
    return prepared, float_positions


def _call(f, arrays, float_positions):
    args = [Variable(a.copy()) if i in float_positions else a for i, a in enumerate(arrays)]
    return args, f(*args)


def _weights_for(y, seed):
    return np.random.default_rng(seed).standard_normal(np.shape(_to_array(y)))


def _backprop(f, arrays, float_positions, weights, create_graph):
    args, y = _call(f, arrays, float_positions)
    if not isinstance(y, Variable):
        raise TypeError(f"gradient check: f must return a Variable, got {type(y).__name__}")
    if weights is None:
        weights = _weights_for(y, 0)
    loss = (y * weights).sum() if y.ndim else y * weights
    loss.backward(create_graph=create_graph)
    grads = {}
    for i in float_positions:
        g = args[i].grad
        if isinstance(g, SparseRows):
            g = g.to_dense()
        elif g is not None:
            g = g.data
        grads[i] = np.zeros_like(arrays[i]) if g is None else np.asarray(g, dtype=np.float64)
    return grads, weights


def _analytic(f, arrays, float_positions, seed):
    """Gradients by backprop, computed twice: on ndarrays (the fast path, ``backward_arrays``)
    and on Variables (``backward`` as recorded with ``create_graph=True``); they must agree."""
    args, y = _call(f, arrays, float_positions)
    weights = _weights_for(y, seed)
    grads, _ = _backprop(f, arrays, float_positions, weights, create_graph=False)
    recorded, _ = _backprop(f, arrays, float_positions, weights, create_graph=True)
    for i in float_positions:
        if not np.allclose(grads[i], recorded[i], rtol=1e-7, atol=1e-10):
            err = float(np.max(np.abs(grads[i] - recorded[i])))
            raise AssertionError(
                f"gradient check: for input {i} the fast backward (backward_arrays) and the recorded "
                f"backward (create_graph=True) disagree by up to {err:.3g}"
            )
    return grads, weights


def _loss_at(f, arrays, float_positions, weights):
    with no_grad():
        _, y = _call(f, arrays, float_positions)
    return float(np.sum(_to_array(y).astype(np.float64) * weights))


def gradient_check(f: Callable[..., Variable | ArrayLike], *inputs: Variable | ArrayLike, rtol: float = 1e-4, atol: float = 1e-6,
                   eps: float = 1e-6, seed: int = 0) -> bool:
    """Assert that backward through ``f(*inputs)`` matches central differences, element by element.

    Floating inputs are converted to float64 leaves; integer inputs (ids, labels) are passed to
    ``f`` unchanged. Raises ``AssertionError`` naming the input, its shape, the largest error and
    where it occurred. Returns True when every gradient matches.
    """
    arrays, float_positions = _prepare(inputs)
    if not float_positions:
        raise ValueError("gradient_check: none of the inputs is a floating-point array")
    grads, weights = _analytic(f, arrays, float_positions, seed)
    for i in float_positions:
        x = arrays[i]
        numeric = np.zeros_like(x)
        for j in np.ndindex(x.shape):  # in place, whatever the memory order (see numerical_grad)
            orig = x[j]
            x[j] = orig + eps
            up = _loss_at(f, arrays, float_positions, weights)
            x[j] = orig - eps
            down = _loss_at(f, arrays, float_positions, weights)
            x[j] = orig
            numeric[j] = (up - down) / (2 * eps)
        _compare(i, grads[i], numeric, rtol, atol)
    return True


def _compare(i, analytic, numeric, rtol, atol):
    if analytic.shape != numeric.shape:
        raise AssertionError(f"gradient check: input {i} has shape {numeric.shape} but its gradient has shape {analytic.shape}")
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if np.all(excess <= 0) and np.all(np.isfinite(analytic)):
        return
    bad = np.unravel_index(int(np.argmax(np.where(np.isfinite(excess), excess, np.inf))), numeric.shape)
    err = float(np.max(np.abs(analytic - numeric)))
    raise AssertionError(
        f"gradient check failed for input {i} (shape {numeric.shape}): max abs error {err:.3g}; "
        f"at index {tuple(int(b) for b in bad)} analytic {analytic[bad]:.6g} vs numerical {numeric[bad]:.6g} "
        f"(rtol={rtol}, atol={atol})"
    )


def directional_check(f: Callable[..., Variable | ArrayLike], *inputs: Variable | ArrayLike, n_directions: int = 3, rtol: float = 1e-4,
                      atol: float = 1e-6, eps: float = 1e-6, seed: int = 0) -> bool:
    """Assert that the derivative of ``f`` along random directions matches finite differences.

    For each random unit direction ``v`` (spanning all floating inputs at once) the analytic
    value ``sum_i <grad_i, v_i>`` is compared with ``(L(x + eps v) - L(x - eps v)) / (2 eps)``.
    Two forward passes per direction, whatever the inputs' size.
    """
    arrays, float_positions = _prepare(inputs)
    if not float_positions:
        raise ValueError("directional_check: none of the inputs is a floating-point array")
    grads, weights = _analytic(f, arrays, float_positions, seed)
    rng = np.random.default_rng(seed + 1)
    for d in range(n_directions):
        dirs = {i: rng.standard_normal(arrays[i].shape) for i in float_positions}
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in dirs.values()))
        dirs = {i: v / norm for i, v in dirs.items()}
        analytic = sum(float(np.sum(grads[i] * dirs[i])) for i in float_positions)
        shifted = [a.copy() if i in float_positions else a for i, a in enumerate(arrays)]
        for i in float_positions:
            shifted[i] = arrays[i] + eps * dirs[i]
        up = _loss_at(f, shifted, float_positions, weights)
        for i in float_positions:
            shifted[i] = arrays[i] - eps * dirs[i]
        down = _loss_at(f, shifted, float_positions, weights)
        numeric = (up - down) / (2 * eps)
        if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
            raise AssertionError(
                f"directional check failed along random direction {d}: analytic derivative "
                f"{analytic:.8g} vs numerical {numeric:.8g} (abs error {abs(analytic - numeric):.3g}, "
                f"rtol={rtol}, atol={atol})"
            )
    return True
