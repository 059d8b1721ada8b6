"""The engine: Variables, Functions, the backward pass, configuration and graph lifetime."""

import gc
import weakref

import numpy as np
import pytest

import tinygrad_nlp as tg
import tinygrad_nlp.functions as F
from tinygrad_nlp import Function, Parameter, Variable, no_grad, using_config


# ----- Variable basics -----

def test_variable_wraps_scalars_as_0d_arrays():
    v = Variable(3.0)
    assert isinstance(v.data, np.ndarray) and v.data.shape == () and v.dtype == np.float64
    assert v.grad is None and v.creator is None and v.name is None


def test_variable_properties_and_len():
    v = Variable(np.zeros((3, 4), np.float32), name="x")
    assert v.shape == (3, 4) and v.ndim == 2 and v.size == 12 and v.dtype == np.float32
    assert len(v) == 3
    assert "x" in repr(v) and "float32" in repr(v)
    with pytest.raises(TypeError):
        len(Variable(1.0))


def test_variable_rejects_object_arrays_and_nested_variables():
    with pytest.raises(TypeError, match="object"):
        Variable(np.array([None, 1], dtype=object))
    with pytest.raises(TypeError, match="already a Variable"):
        Variable(Variable(1.0))


def test_parameter_is_variable_and_needs_float():
    p = Parameter(np.ones(2, np.float32), name="W")
    assert isinstance(p, Variable)
    with pytest.raises(TypeError, match="floating dtype"):
        Parameter(np.arange(3), name="ids")


# ----- operators -----

@pytest.mark.parametrize(
    "expr, expected",
    [
        (lambda x: x + 2, 5.0), (lambda x: 2 + x, 5.0), (lambda x: x - 2, 1.0), (lambda x: 2 - x, -1.0),
        (lambda x: x * 2, 6.0), (lambda x: 2 * x, 6.0), (lambda x: x / 2, 1.5), (lambda x: 6 / x, 2.0),
        (lambda x: x ** 2, 9.0), (lambda x: 2 ** x, 8.0), (lambda x: -x, -3.0),
        (lambda x: np.array(2.0) + x, 5.0), (lambda x: x + np.array(2.0), 5.0),
        (lambda x: np.array(2.0) * x, 6.0), (lambda x: np.array(1.0) - x, -2.0),
    ],
)
def test_operators_with_scalars_and_arrays_on_either_side(expr, expected):
    y = expr(Variable(np.array(3.0)))
    assert isinstance(y, Variable)
    assert float(y.data) == pytest.approx(expected)


def test_matmul_operator_both_sides():
    a = Variable(np.arange(6.0).reshape(2, 3))
    b = np.ones((3, 2))
    assert np.allclose((a @ b).data, a.data @ b)
    assert np.allclose((b.T @ a.T).data, b.T @ a.data.T)


def test_variable_methods_build_nodes():
    x = Variable(np.arange(6.0).reshape(2, 3))
    assert x.reshape(3, 2).shape == (3, 2)
    assert x.reshape((6,)).shape == (6,)
    assert x.T.shape == (3, 2)
    assert x.transpose(1, 0).shape == (3, 2)
    assert x.sum().data == 15.0
    assert np.array_equal(x.sum(axis=0, keepdims=True).data, [[3.0, 5.0, 7.0]])
    assert x[1, 2].data == 5.0
    assert np.array_equal(x[np.array([1, 1, 0])].data, x.data[[1, 1, 0]])


# ----- backward -----

def test_square_exp_square_chain_rule():
    x = Variable(np.array(0.5))
    y = F.exp(x ** 2) ** 2
    y.backward()
    # d/dx exp(x^2)^2 = 4x exp(2x^2)
    assert float(x.grad.data) == pytest.approx(4 * 0.5 * np.exp(2 * 0.25))


def test_reused_node_gradients_are_summed():
    x = Variable(np.array(3.0))
    b = x + x
    c = b + b
    c.backward()
    assert float(x.grad.data) == 4.0


def test_diamond_graph_runs_each_backward_once():
    calls = []

    class Spy(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            calls.append(1)
            return gy * 2

    x = Variable(np.array(2.0))
    a = Spy()(x)
    y = a ** 2 + a ** 3  # a used twice
    y.backward()
    assert len(calls) == 1
    # y = (2x)^2 + (2x)^3 -> dy/dx = 8x + 24x^2
    assert float(x.grad.data) == pytest.approx(8 * 2 + 24 * 4)


def test_gradients_accumulate_across_backward_calls_until_cleargrad():
    x = Variable(np.array(2.0))
    (x * 3).backward()
    (x * 3).backward()
    assert float(x.grad.data) == 6.0
    x.cleargrad()
    (x * 3).backward()
    assert float(x.grad.data) == 3.0


def test_non_scalar_output_is_seeded_with_ones():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = x * x
    y.backward()
    assert np.allclose(x.grad.data, 2 * x.data)


def test_preset_output_grad_is_used_as_seed():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3
    y.grad = Variable(np.array([10.0, 100.0]))
    y.backward()
    assert np.allclose(x.grad.data, [30.0, 300.0])


def test_intermediate_grads_dropped_unless_retained():
    x = Variable(np.array(2.0))
    a = x * 3
    y = a * a
    y.backward()
    assert a.grad is None and y.grad is None and x.grad is not None
    x.cleargrad()
    a = x * 3
    y = a * a
    y.backward(retain_grad=True)
    assert float(a.grad.data) == pytest.approx(2 * 6.0)
    assert float(y.grad.data) == 1.0


def test_backward_of_a_leaf_sets_ones():
    x = Variable(np.array([1.0, 2.0]))
    x.backward()
    assert np.array_equal(x.grad.data, [1.0, 1.0])


def test_deep_chain_of_100000_ops_is_iterative():
    x = Variable(np.array(1.0))
    y = x
    for _ in range(100_000):
        y = y + 1e-6
    y.backward()
    assert float(x.grad.data) == 1.0
    del y  # freeing a 100,000-deep graph must not overflow the C stack either


def test_second_derivative_of_x4_at_2_is_48():
    x = Variable(np.array(2.0))
    y = x ** 4
    y.backward(create_graph=True)
    gx = x.grad
    assert float(gx.data) == 32.0
    x.cleargrad()
    gx.backward()
    assert float(x.grad.data) == 48.0


def test_third_derivative_of_sin():
    x = Variable(np.array(0.7))
    y = F.sin(x)
    grads = []
    for _ in range(3):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
        grads.append(float(y.data))
    assert grads == pytest.approx([np.cos(0.7), -np.sin(0.7), -np.cos(0.7)])


def test_newton_method_with_second_derivative():
    # f(x) = x^4 - 2x^2 has a minimum at x = 1.
    x = Variable(np.array(2.0))
    for _ in range(10):
        y = x ** 4 - 2 * x ** 2
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        x.data = x.data - gx.data / x.grad.data
    assert float(x.data) == pytest.approx(1.0)


def test_create_graph_false_records_nothing_for_grads():
    x = Variable(np.array(2.0))
    y = x ** 3
    y.backward()
    assert x.grad.creator is None


def test_function_returning_wrong_gradient_shape_is_named():
    class Broken(Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy):
            return gy  # should be broadcast to x's shape

    x = Variable(np.ones(3))
    with pytest.raises(ValueError, match="Broken.backward returned a gradient of shape"):
        Broken()(x).backward()


def test_integer_variable_cannot_get_a_gradient():
    ids = Variable(np.array([1, 2, 3]), name="ids")
    with pytest.raises(TypeError, match="'ids'.*int64.*\\(3,\\)"):
        (ids * 2.0).sum().backward()


def test_integer_arrays_as_constants_are_fine():
    x = Variable(np.ones(3))
    mask = np.array([1, 0, 1])
    (x * mask).sum().backward()
    assert np.array_equal(x.grad.data, [1.0, 0.0, 1.0])


# ----- multi-output functions -----

class Split2(Function):
    """Two outputs: the first and second half of a vector."""

    def forward(self, x):
        n = x.shape[0] // 2
        return x[:n] * 1, x[n:] * 1

    def backward(self, g0, g1):
        return F.concat([g0, g1])


def test_multi_output_function_with_one_output_unused_or_dropped():
    x = Variable(np.arange(4.0))
    a, b = Split2()(x)
    del b  # dropped: its gradient counts as zero
    (a * 3).sum().backward()
    assert np.array_equal(x.grad.data, [3.0, 3.0, 0.0, 0.0])
    x.cleargrad()
    a, b = Split2()(x)
    (a * 3).sum().backward(create_graph=True)
    assert np.array_equal(x.grad.data, [3.0, 3.0, 0.0, 0.0])


# ----- config -----

def test_no_grad_records_nothing():
    x = Variable(np.array(2.0))
    with no_grad():
        y = x * 2
    assert y.creator is None
    with using_config("enable_backprop", False):
        z = x * 2
    assert z.creator is None
    assert (x * 2).creator is not None  # restored after the block


def test_using_config_restores_on_error_and_rejects_unknown_names():
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError
    assert tg.Config.enable_backprop is True
    with pytest.raises(AttributeError, match="no setting"):
        with using_config("enable_backprops", False):
            pass


def test_detect_anomaly_names_the_function():
    x = Variable(np.array([-1.0, 1.0]))
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="Log.forward"):
            with np.errstate(invalid="ignore"):
                F.log(x)
    y = Variable(np.array([0.0, 1.0]))
    with tg.detect_anomaly():
        z = F.sqrt(y)
        with pytest.raises(FloatingPointError, match="Sqrt.backward"):
            with np.errstate(divide="ignore"):
                z.sum().backward()


# ----- lifetime -----

def test_graph_is_freed_when_output_dropped_even_without_gc():
    gc.disable()
    try:
        x = Variable(np.ones(3))
        y = F.exp(x * 2) + 1
        func_ref = weakref.ref(y.creator)
        inner_ref = weakref.ref(y.creator.inputs[0])
        del y
        assert func_ref() is None and inner_ref() is None
    finally:
        gc.enable()


def test_outputs_are_weak_references():
    x = Variable(np.ones(3))
    y = x * 2
    f = y.creator
    assert isinstance(f.outputs[0], weakref.ref) and f.outputs[0]() is y


# ----- dtype -----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved_in_forward_and_backward(dtype):
    x = Parameter(np.linspace(0.1, 1, 6).reshape(2, 3).astype(dtype))
    W = Parameter(np.ones((3, 2), dtype))
    b = Parameter(np.zeros(2, dtype))
    h = F.tanh(F.linear(x * 2.0 + 1, W, b)) / 3.0 - 0.5
    y = F.sigmoid(h) ** 2 + F.exp(-h) * F.log(x.sum() + 1.5)
    loss = F.mean(y)
    assert loss.dtype == dtype
    loss.backward()
    for p in (x, W, b):
        assert p.grad.dtype == dtype, p


def test_float32_create_graph_stays_float32():
    x = Parameter(np.array([0.5, 1.5], np.float32))
    y = (x ** 3 * 2.0).sum()
    y.backward(create_graph=True)
    g = x.grad
    x.cleargrad()
    g.sum().backward()
    assert g.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.allclose(x.grad.data, 12 * x.data)


def test_unchain_backward_cuts_the_whole_history_and_keeps_values():
    import tinygrad_nlp.functions as F

    x = Variable(np.array([1.0, 2.0]))
    a = F.exp(x)
    b = a * 3.0
    y = F.sin(b)
    y.unchain_backward()
    assert y.creator is not None  # y itself keeps its creator: it is what the next step reads
    assert b.creator is None and a.creator is None
    z = (y * 2.0).sum()
    z.backward()
    assert x.grad is None  # nothing reaches behind the cut
    np.testing.assert_allclose(b.grad.data, 2 * np.cos(b.data))  # b became a leaf
    np.testing.assert_allclose(y.data, np.sin(3 * np.exp([1.0, 2.0])))


def test_config_is_per_thread():
    """A backward pass in one thread turns graph recording off for itself only."""
    import threading

    from tinygrad_nlp import Config, no_grad

    seen = {}
    with no_grad():
        t = threading.Thread(target=lambda: seen.setdefault("other", Config.enable_backprop))
        t.start()
        t.join()
        assert Config.enable_backprop is False
    assert seen["other"] is True and Config.enable_backprop is True
    settings = Config.settings()
    assert settings == {"enable_backprop": True, "train": True, "anomaly": False, "unrolled": False}


# ----- habits from numpy and PyTorch -----


def test_comparisons_give_boolean_arrays_without_gradient():
    x = Variable(np.array([1.0, -2.0, 3.0]))
    for got, want in ((x > 0, [True, False, True]), (x >= 3, [False, False, True]), (x < -2, [False, False, False]),
                      (x <= Variable(np.array([1.0, 0.0, 0.0])), [True, True, False]),
                      (np.zeros(3) < x, [True, False, True])):
        assert type(got) is np.ndarray and got.dtype == bool
        np.testing.assert_array_equal(got, want)
    y = (x * (x > 0)).sum()  # the mask is a constant: relu's gradient
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 1.0])
    assert bool(Variable(np.array(2.0)) > 1)


def test_equality_stays_identity_so_variables_are_dict_keys():
    a, b = Variable(np.ones(2)), Variable(np.ones(2))
    assert a == a and a != b and (a == b) is False
    assert {a: 1, b: 2}[b] == 2 and a in [a] and b not in [a]


def test_bool_is_the_truth_of_one_element():
    assert bool(Variable(1.0)) is True and bool(Variable(np.array([0.0]))) is False
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Variable(np.array([1.0, 0.0])))


def test_asarray_and_numpy_give_the_values_never_an_object_array():
    x = Variable(np.arange(3.0))
    assert np.asarray(x) is x.data and x.numpy() is x.data
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    copied = np.array(x)
    assert copied.dtype == np.float64 and not np.shares_memory(copied, x.data)
    stacked = np.array([x, x])
    assert stacked.dtype == np.float64 and stacked.shape == (2, 3)
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(x, dtype=np.float32, copy=False)


def test_numpy_reductions_and_reshapes_build_graph_nodes():
    x = Variable(np.arange(6.0).reshape(2, 3))
    s = np.sum(x)
    assert isinstance(s, Variable) and s.data == 15.0
    s.backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    x.cleargrad()
    m = np.mean(x, axis=1, keepdims=True)
    assert isinstance(m, Variable) and m.shape == (2, 1)
    m.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 1 / 3))
    assert np.reshape(x, (3, 2)).shape == (3, 2) and np.transpose(x).shape == (3, 2)
    assert isinstance(np.reshape(x, (6,)), Variable)
    assert (np.shape(x), np.ndim(x), np.size(x), np.size(x, 1)) == ((2, 3), 2, 6, 3)
    with pytest.raises(TypeError, match="only axis and keepdims, not out"):
        np.sum(x, out=np.zeros(()))


def test_other_numpy_functions_say_what_to_do_instead():
    x = Variable(np.ones(3))
    with pytest.raises(TypeError, match=r"numpy\.concatenate\(\) got a Variable.*x\.data"):
        np.concatenate([x, x])
    with pytest.raises(TypeError, match=r"numpy\.allclose\(\)"):
        np.allclose(x, 1.0)
    np.testing.assert_array_equal(np.concatenate([x.data, x.numpy()]), np.ones(6))
    with pytest.raises(TypeError, match="ufunc"):
        np.exp(x)  # element-wise numpy functions: use F.exp


def test_detach_shares_data_and_stops_the_gradient():
    x = Variable(np.array([2.0, 3.0]))
    y = x * x
    d = y.detach()
    assert d.creator is None and d.data is y.data and type(d) is Variable
    (d * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 9.0])  # d counts as a constant
    assert type(Parameter(np.ones(2)).detach()) is Variable


def test_astype_casts_through_the_graph_for_floats_and_leaves_it_for_ints():
    x = Variable(np.array([1.5, -2.25]))
    assert x.astype(np.float64) is x
    y = x.astype(np.float32)
    assert y.dtype == np.float32 and y.creator is not None
    (y * y).sum().backward()
    assert x.grad.dtype == np.float64
    np.testing.assert_array_equal(x.grad.data, [3.0, -4.5])
    x.cleargrad()
    z = x.astype(np.float32)
    z.backward(create_graph=True)  # higher-order path: the cast's Variable backward
    assert x.grad.dtype == np.float64 and x.grad.creator is not None
    i = x.astype(np.int64)
    assert i.dtype == np.int64 and i.creator is None
    np.testing.assert_array_equal(i.data, [1, -2])
    with pytest.raises(TypeError, match="not a floating dtype"):
        F.cast(x, np.int32)


@pytest.mark.parametrize("sparse_first", [True, False])
def test_a_parameter_used_by_a_sparse_lookup_and_a_dense_product_gets_their_sum(sparse_first):
    """Weight tying: the table's row-sparse gradient and the dense one of ``h @ W.T`` add up."""
    import tinygrad_nlp.functions as F

    rng = np.random.default_rng(3)
    W0 = rng.standard_normal((6, 3))
    ids = np.array([[1, 4], [4, 0]])

    def loss(W, sparse):
        h = F.sum(F.embedding(W, ids, sparse=sparse), axis=1)           # (2, 3), sparse in W
        logits = F.matmul(h, W.T) if sparse_first else F.matmul(h.data, W.T)  # dense in W
        return F.sum(logits * logits)

    W = Parameter(W0.copy())
    loss(W, sparse=True).backward()
    assert type(W.grad) is Variable and W.grad.dtype == W0.dtype
    reference = Parameter(W0.copy())
    loss(reference, sparse=False).backward()
    np.testing.assert_allclose(W.grad.data, reference.grad.data, rtol=1e-12)


def test_leaf_gradients_accumulate_sparse_then_dense_and_dense_then_sparse():
    import tinygrad_nlp.functions as F

    for order in ([True, False], [False, True]):
        W = Parameter(np.arange(8.0).reshape(4, 2))
        for sparse in order:  # two backward passes into one .grad
            F.sum(F.embedding(W, np.array([1, 1, 3]), sparse=sparse)).backward()
        expected = np.zeros((4, 2))
        expected[1], expected[3] = 4.0, 2.0
        assert type(W.grad) is Variable
        np.testing.assert_array_equal(W.grad.data, expected)


def test_the_engine_names_no_gradient_type():
    from pathlib import Path

    source = Path(tg.core.__file__).read_text(encoding="utf-8")
    assert "SparseRows" not in source and "tinygrad_nlp.sparse" not in source
