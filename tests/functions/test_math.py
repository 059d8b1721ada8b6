"""tinygrad_nlp.functions.math: element-wise Functions, their values, gradients against finite
differences, broadcasting, and the errors for bad shapes."""

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


SHAPES = [(), (3,), (2, 3), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "fn, low, high",
    [
        (F.exp, -1, 1), (F.log, 0.5, 2), (F.sin, -2, 2), (F.cos, -2, 2), (F.tanh, -2, 2),
        (F.sigmoid, -3, 3), (F.sqrt, 0.5, 2), (F.neg, -1, 1),
        (lambda x: F.relu(x), 0.1, 1), (lambda x: F.relu(x), -1, -0.1),
        (lambda x: F.pow(x, 3), -1, 1), (lambda x: F.pow(x, 2), -1, 1), (lambda x: F.pow(x, 0.5), 0.5, 2),
        (lambda x: F.clip(x, -0.5, 0.5), -1, 1),
    ],
)
def test_unary_gradients(fn, low, high, shape):
    x = rand(*shape, low=low, high=high)
    x = np.where(np.abs(np.abs(x) - 0.5) < 1e-3, x + 0.01, x)  # keep away from clip's kinks
    gradient_check(fn, x)


def test_unary_values():
    x = np.array([0.2, 0.7])
    assert np.allclose(F.sigmoid(x).data, 1 / (1 + np.exp(-x)))
    assert np.allclose(F.relu(np.array([-1.0, 2.0])).data, [0.0, 2.0])
    assert np.allclose(F.clip(np.array([-2.0, 0.3, 5.0]), -1, 1).data, [-1.0, 0.3, 1.0])
    assert np.allclose(F.clip(np.array([-2.0, 5.0]), None, 1).data, [-2.0, 1.0])


def test_sigmoid_is_stable_for_huge_inputs():
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = F.sigmoid(np.array([-1000.0, 0.0, 1000.0], np.float32))
    assert np.array_equal(y.data, np.array([0.0, 0.5, 1.0], np.float32))


@pytest.mark.parametrize(
    "s0, s1",
    [((2, 3), (2, 3)), ((2, 3), (3,)), ((3,), (2, 3)), ((2, 1), (1, 3)), ((2, 3), ()), ((), (4,)),
     ((4, 1, 3), (2, 1))],
)
@pytest.mark.parametrize("fn", [F.add, F.sub, F.mul, F.div])
def test_binary_gradients_with_broadcasting_both_ways(fn, s0, s1):
    a = rand(*s0, low=0.5, high=1.5)
    b = rand(*s1, low=0.5, high=1.5)
    gradient_check(fn, a, b)
    y = fn(Variable(a), Variable(b))
    assert y.shape == np.broadcast_shapes(s0, s1)


def test_pow_with_variable_exponent_and_rpow():
    gradient_check(lambda a, b: a ** b, rand(2, 3, low=0.5, high=2), rand(3, low=0.5, high=2))
    gradient_check(lambda a: 2.0 ** a, rand(3))


def test_broadcast_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"Add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        Variable(np.ones((2, 3))) + Variable(np.ones(4))
    with pytest.raises(ValueError, match=r"Mul: shapes \(2, 3\) and \(2,\)"):
        Variable(np.ones((2, 3))) * np.ones(2)


# ----- shape functions -----


def test_functions_accept_parameters_and_arrays():
    W = Parameter(np.eye(2))
    y = F.matmul(np.array([[1.0, 2.0]]), W)
    y.backward()
    assert np.array_equal(W.grad.data, [[1.0, 1.0], [2.0, 2.0]])
