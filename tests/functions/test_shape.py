"""tinygrad_nlp.functions.shape: reshape, transpose, broadcast_to / sum_to, get_item, concat and
stack, against finite differences."""

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
