"""The gradient checkers themselves: they pass correct gradients and catch wrong ones."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Function
from tinygrad_nlp.gradcheck import directional_check, gradient_check, numerical_grad


class WrongSin(Function):
    """sin with a deliberately wrong derivative (cos(x) + 0.1)."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        return gy * (F.cos(self.inputs[0]) + 0.1)


class FastPathDisagrees(Function):
    """Correct recorded backward, wrong ndarray fast path."""

    def forward(self, x):
        return x * 3

    def backward(self, gy):
        return gy * 3

    def backward_arrays(self, gy):
        return gy * 2


def test_numerical_grad_matches_known_derivative():
    x = np.array([0.3, -1.2, 2.0])
    g = numerical_grad(lambda v: F.sin(v), x)
    assert g.dtype == np.float64
    assert np.allclose(g, np.cos(x), atol=1e-8)
    g = numerical_grad(lambda v: v * v, x, weights=np.array([1.0, 0.0, 2.0]))
    assert np.allclose(g, [0.6, 0.0, 8.0], atol=1e-6)


def test_numerical_grad_accepts_float32_and_computes_in_float64():
    x = np.array([0.5], np.float32)
    assert numerical_grad(lambda v: v ** 3, x).dtype == np.float64


def test_gradient_check_passes_and_reports_failures():
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    assert gradient_check(F.sin, x) is True
    with pytest.raises(AssertionError, match=r"input 0 \(shape \(2, 3\)\).*max abs error.*at index"):
        gradient_check(lambda v: WrongSin()(v), x)


def test_gradient_check_names_which_input_is_wrong():
    def f(a, b):
        return a * 2 + WrongSin()(b)

    with pytest.raises(AssertionError, match="input 1"):
        gradient_check(f, np.ones(3), np.ones(3))


def test_gradient_check_catches_fast_path_disagreement():
    with pytest.raises(AssertionError, match="disagree"):
        gradient_check(lambda v: FastPathDisagrees()(v), np.ones(3))


def test_gradient_check_passes_integer_inputs_through():
    idx = np.array([2, 0, 2])
    assert gradient_check(lambda W, i: W[i], np.random.default_rng(0).normal(size=(3, 2)), idx)
    with pytest.raises(ValueError, match="none of the inputs"):
        gradient_check(lambda i: i, idx)


def test_softmax_like_outputs_are_checked_with_random_weights():
    # sum(x / sum(x)) is constant, so a plain-sum check could not see this bug.
    class BadNormalize(Function):
        def forward(self, x):
            return x / x.sum()

        def backward(self, gy):
            return gy * 0.0

    with pytest.raises(AssertionError):
        gradient_check(lambda v: BadNormalize()(v), np.array([1.0, 2.0, 3.0]))


def test_directional_check_on_a_large_matrix_is_cheap_and_catches_errors():
    rng = np.random.default_rng(0)
    W = rng.normal(size=(300, 200))
    x = rng.normal(size=(10, 300))
    assert directional_check(lambda a, b: F.tanh(a @ b), x, W, n_directions=3)
    with pytest.raises(AssertionError, match="random direction"):
        directional_check(lambda a: WrongSin()(a), W)


def test_transposed_inputs_are_perturbed_in_place():
    """A Fortran-ordered (transposed) input is differentiated like its C-ordered copy: the
    perturbations reach f, where a flat reshape would have perturbed a copy and given zeros."""
    W = np.arange(6.0).reshape(2, 3).T  # (3, 2), Fortran order
    assert W.flags.f_contiguous and not W.flags.c_contiguous
    np.testing.assert_allclose(numerical_grad(lambda v: F.sum(v * v), W), 2 * W, rtol=1e-6)
    assert gradient_check(lambda v: F.sum(v * v), W)
    assert gradient_check(lambda a, b: F.matmul(a, b), W, np.arange(8.0).reshape(4, 2).T)
