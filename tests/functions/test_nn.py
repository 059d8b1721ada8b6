"""tinygrad_nlp.functions.nn: matmul, linear and dropout."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, Variable, test_mode
from tinygrad_nlp.gradcheck import gradient_check

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

rng = np.random.default_rng(1234)


def rand(*shape, low=-1.0, high=1.0):
    return rng.uniform(low, high, size=shape)


@pytest.mark.parametrize(
    "sa, sb",
    [((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)), ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)),
     ((2, 3), (6, 3, 4))],
)
def test_matmul_gradients(sa, sb):
    a, b = rand(*sa), rand(*sb)
    gradient_check(F.matmul, a, b)
    assert np.allclose(F.matmul(a, b).data, a @ b)


def test_matmul_shape_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        F.matmul(Variable(np.ones((2, 3))), Variable(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        Variable(np.ones((2, 3))) @ np.ones((4, 5))


def test_linear_gradients_with_and_without_bias():
    x, W, b = rand(4, 3), rand(3, 2), rand(2)
    gradient_check(F.linear, x, W, b)
    gradient_check(F.linear, x, W)
    gradient_check(F.linear, rand(2, 4, 3), W, b)
    assert np.allclose(F.linear(x, W, b).data, x @ W + b)
    with pytest.raises(ValueError, match=r"linear: shapes \(4, 3\) and \(2, 2\)"):
        F.linear(x, Variable(np.ones((2, 2))))


@pytest.mark.parametrize("layout", ["C", "transposed"])
def test_linear_with_the_bias_inside_the_product(monkeypatch, layout):
    """Past FOLD_BIAS_MIN_OUTPUTS the bias rides in the product ``[x | 1] @ [W ; b]`` and the
    backward takes gW and gb from one product: same values and gradients as ``x @ W + b``, float32
    kept, for a plain (in, out) W and for a transposed (out, in) table (tied embeddings)."""
    import tinygrad_nlp.functions.nn as nn

    x = rng.standard_normal((3, 70, 20)).astype(np.float32)
    W = rng.standard_normal((20, 500)).astype(np.float32)
    W = np.ascontiguousarray(W.T).T if layout == "transposed" else W
    b = rng.standard_normal(500).astype(np.float32)
    gy = rng.standard_normal((3, 70, 500)).astype(np.float32)
    results = []
    from tinygrad_nlp import _threads

    # The plain path, the folded one (just at its threshold), and the folded one with its
    # products split across two threads.
    for threshold, split in ((10**12, False), (3 * 70 * 500, False), (3 * 70 * 500, True)):
        monkeypatch.setattr(nn, "FOLD_BIAS_MIN_OUTPUTS", threshold)
        monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 1 if split else 10**15)
        monkeypatch.setattr(_threads, "_num_threads", 2)
        xv, Wv, bv = Variable(x), Parameter(W), Parameter(b)
        y = F.linear(xv, Wv, bv)
        (y * Variable(gy)).sum().backward()
        assert y.dtype == xv.grad.dtype == Wv.grad.dtype == bv.grad.dtype == np.float32
        assert bv.grad.shape == (500,) and Wv.grad.shape == (20, 500)
        results.append([y.data, xv.grad.data, Wv.grad.data, bv.grad.data])
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    expected = [x64 @ W64 + b, gy.astype(np.float64) @ W64.T, x64.reshape(-1, 20).T @ gy.reshape(-1, 500).astype(np.float64),
                gy.astype(np.float64).sum((0, 1))]
    for plain, folded, split, exact in zip(*results, expected):
        np.testing.assert_allclose(folded, exact, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(folded, plain, rtol=1e-5, atol=1e-4)  # float32 sums of up to 500 terms
        np.testing.assert_allclose(split, folded, rtol=1e-5, atol=1e-4)
    monkeypatch.setattr(nn, "FOLD_BIAS_MIN_OUTPUTS", 1)
    assert gradient_check(F.linear, rand(2, 4, 3), rand(3, 2), rand(2))  # both backward paths agree


def test_dropout_train_and_test_mode():
    x = np.ones((1000,), np.float32)
    y = F.dropout(x, 0.3, rng=np.random.default_rng(0))
    kept = y.data != 0
    assert y.dtype == np.float32
    assert 0.62 < kept.mean() < 0.78
    assert np.allclose(y.data[kept], 1 / 0.7)
    with test_mode():
        assert np.array_equal(F.dropout(x, 0.3).data, x)
    gradient_check(lambda v: F.dropout(v, 0.5, rng=np.random.default_rng(3)), rand(5, 4))
    with pytest.raises(ValueError, match="ratio"):
        F.dropout(x, 1.0)
