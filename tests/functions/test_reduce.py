"""tinygrad_nlp.functions.reduce: sum, mean, max and min, their gradients and axis errors."""

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
