"""Every basic Function: values, gradients against finite differences (both backward paths),
broadcasting, and the errors for bad shapes."""

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

def test_reshape_transpose_gradients():
    x = rand(2, 3, 4)
    gradient_check(lambda v: F.reshape(v, (4, 6)), x)
    gradient_check(lambda v: F.reshape(v, (-1,)), x)
    gradient_check(lambda v: F.transpose(v), x)
    gradient_check(lambda v: F.transpose(v, (1, 0, 2)), x)
    gradient_check(lambda v: F.transpose(v, (2, 0, 1)), x)
    assert F.transpose(Variable(x), (2, 0, 1)).shape == (4, 2, 3)


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        F.reshape(Variable(np.ones((2, 3))), (4, 2))


def test_broadcast_to_and_sum_to():
    x = rand(1, 3)
    gradient_check(lambda v: F.broadcast_to(v, (4, 3)), x)
    gradient_check(lambda v: F.sum_to(v, (1, 3)), rand(4, 3))
    gradient_check(lambda v: F.sum_to(v, (3,)), rand(2, 4, 3))
    assert np.allclose(F.sum_to(Variable(np.ones((2, 4, 3))), (4, 1)).data, np.full((4, 1), 6.0))
    with pytest.raises(ValueError, match=r"\(2,\) to \(3,\)"):
        F.broadcast_to(Variable(np.ones(2)), (3,))


@pytest.mark.parametrize(
    "index",
    [1, (slice(None), 1), slice(1, 3), (Ellipsis, 0), np.array([0, 2, 2, 1, 0]), [2, 2, 2],
     (np.array([0, 1, 1]), np.array([2, 0, 2])), np.array([True, False, True]), (None, 1)],
)
def test_get_item_gradients_including_repeats(index):
    x = rand(3, 4)
    gradient_check(lambda v: F.get_item(v, index), x)
    assert np.array_equal(F.get_item(Variable(x), index).data, x[index if not isinstance(index, list) else np.array(index)])


def test_get_item_repeated_rows_sum_gradients():
    x = Variable(np.zeros((4, 2)))
    x[np.array([1, 1, 3, 1])].sum().backward()
    assert np.array_equal(x.grad.data[:, 0], [0.0, 3.0, 0.0, 1.0])


def test_get_item_negative_integer_array():
    gradient_check(lambda v: v[np.array([-1, 0, -1])], rand(3, 2))


def test_concat_and_stack():
    a, b, c = rand(2, 3), rand(4, 3), rand(2, 3)
    gradient_check(lambda x, y: F.concat([x, y], axis=0), a, b)
    gradient_check(lambda x, y: F.concat([x, y], axis=-1), a, c)
    gradient_check(lambda x, y: F.stack([x, y], axis=0), a, c)
    gradient_check(lambda x, y: F.stack([x, y], axis=2), a, c)
    assert F.stack([Variable(a), c], axis=1).shape == (2, 2, 3)
    with pytest.raises(ValueError, match=r"incompatible shapes \(2, 3\), \(4, 2\)"):
        F.concat([a, rand(4, 2)], axis=0)
    with pytest.raises(ValueError, match="share one shape"):
        F.stack([a, b])


# ----- reductions -----

@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_mean_gradients(axis, keepdims):
    x = rand(2, 3, 4)
    gradient_check(lambda v: F.sum(v, axis, keepdims), x)
    gradient_check(lambda v: F.mean(v, axis, keepdims), x)
    assert np.allclose(F.mean(Variable(x), axis, keepdims).data, x.mean(axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1), -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_max_min_route_gradient_to_argmax(axis, keepdims):
    x = rng.permutation(24).reshape(2, 3, 4).astype(np.float64)  # distinct values: no ties
    gradient_check(lambda v: F.max(v, axis, keepdims), x)
    gradient_check(lambda v: F.min(v, axis, keepdims), x)
    assert np.array_equal(F.max(Variable(x), axis, keepdims).data, x.max(axis=axis, keepdims=keepdims))


def test_max_with_ties_gives_whole_gradient_to_first():
    x = Variable(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]]))
    F.max(x, axis=1).sum().backward()
    assert np.array_equal(x.grad.data, [[0, 1, 0], [1, 0, 0]])


def test_reduction_axis_out_of_range():
    with pytest.raises(ValueError, match="axis 3 is out of"):
        F.sum(Variable(np.ones((2, 3))), axis=3).backward()


# ----- nn -----

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


def test_functions_accept_parameters_and_arrays():
    W = Parameter(np.eye(2))
    y = F.matmul(np.array([[1.0, 2.0]]), W)
    y.backward()
    assert np.array_equal(W.grad.data, [[1.0, 1.0], [2.0, 2.0]])
