"""tinygrad_nlp.backend.compiled against the numpy backend it must match: optimizer updates (all or
nothing), gathers, scatters and the sampler's search; and the switch between them."""

import os
import subprocess
import sys

import numpy as np
import pytest

from tinygrad_nlp import backend, kernels
from tinygrad_nlp.backend import compiled
from tinygrad_nlp.core import Parameter, Variable
from tinygrad_nlp.optimizers import SGD, AdaGrad, Adam, AdamW, MomentumSGD, RMSprop
from tinygrad_nlp.sparse import SparseRows

OPTIMIZERS = [
    (SGD, {"lr": 0.1}),
    (MomentumSGD, {"lr": 0.05, "momentum": 0.8}),
    (AdaGrad, {"lr": 0.1}),
    (RMSprop, {"lr": 0.05}),
    (Adam, {"lr": 0.01}),
    (Adam, {"lr": 0.01, "weight_decay": 0.1}),
    (AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    (SGD, {"lr": 0.1, "weight_decay": 0.05}),
]


@pytest.fixture
def jit(request):
    """Run the test body with the kernels on or off, restoring the setting afterwards."""
    previous = kernels.set_jit(request.param)
    yield request.param
    kernels.set_jit(previous)


def _train(cls, kwargs, dtype, sparse=True, steps=6, seed=1):
    rng = np.random.default_rng(seed)
    W = Parameter(rng.standard_normal((40, 7)).astype(dtype), name="W")
    opt = cls(**kwargs).setup([W])
    for _ in range(steps):
        if sparse:
            rows = np.unique(rng.integers(0, 40, 15))
            W.grad = SparseRows(rows, rng.standard_normal((rows.size, 7)).astype(dtype), W.shape, coalesced=True)
        else:
            W.grad = Variable(rng.standard_normal((40, 7)).astype(dtype))
        opt.update()
    return W.data.copy(), {k: v.copy() for k, v in opt.state[id(W)].items()}


def test_numba_is_there_and_on_by_default():
    assert kernels.jit_available()
    assert kernels.jit_enabled() == (os.environ.get("TINYGRAD_NLP_JIT", "1") != "0")


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS)
def test_compiled_update_is_bitwise_equal_to_the_numpy_update(cls, kwargs, dtype, sparse, monkeypatch):
    previous = backend.use("numpy")
    try:
        reference = _train(cls, kwargs, dtype, sparse)
        backend.use("compiled")
        # The compiled run must not hand its work to the numpy code it is compared with.
        monkeypatch.setattr(compiled._reference, "update_rows", None)
        got = _train(cls, kwargs, dtype, sparse)
    finally:
        backend.use(previous)
    assert got[0].dtype == dtype
    np.testing.assert_array_equal(got[0], reference[0])
    assert got[1].keys() == reference[1].keys()
    for key in reference[1]:
        np.testing.assert_array_equal(got[1][key], reference[1][key])


RULES = {
    "sgd": (SGD.rule, 0, [0.5]),
    "momentum": (MomentumSGD.rule, 1, [0.5, 0.9]),
    "adagrad": (AdaGrad.rule, 1, [0.5, 1e-8]),
    "adam": (Adam.rule, 2, [0.9, 0.999, 0.1, 0.001, 1e-8, 0.5]),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_value_late_in_the_pass_restores_every_row(name, bad, dtype, impl):
    rule, n_state, scalars = RULES[name]
    hyper = np.array(scalars + [0.0], dtype)
    rng = np.random.default_rng(0)
    tables = [rng.standard_normal((30, 5)).astype(dtype)] + [rng.random((30, 5)).astype(dtype) for _ in range(n_state)]
    before = [t.copy() for t in tables]
    rows = np.array([2, 9, 11, 17, 29])
    grad = np.ones((5, 5), dtype)
    grad[-1, 3] = bad  # the last row: four rows were already written when it is reached
    assert backend.ops.update_rows(rule, tables[0], tables[1:], rows, grad, hyper) is False
    for t, b in zip(tables, before):
        np.testing.assert_array_equal(t, b)
    grad[-1, 3] = 1
    assert backend.ops.update_rows(rule, tables[0], tables[1:], rows, grad, hyper) is True
    untouched = np.setdiff1d(np.arange(30), rows)
    assert not np.array_equal(tables[0][rows], before[0][rows])
    np.testing.assert_array_equal(tables[0][untouched], before[0][untouched])


def test_an_update_that_overflows_from_finite_gradients_is_refused_whole(impl):
    W = np.ones((6, 3), np.float32)
    huge = np.full((2, 3), np.finfo(np.float32).max, np.float32)
    with np.errstate(over="ignore"):
        assert backend.ops.update_rows(SGD.rule, W, [], np.array([1, 4]), huge, np.array([10.0, 0.0], np.float32)) is False
    np.testing.assert_array_equal(W, np.ones((6, 3), np.float32))


@pytest.mark.parametrize("jit", [True], indirect=True)
def test_optimizer_refusal_through_the_kernel_keeps_weights_and_state(jit):
    W = Parameter(np.ones((4, 2), np.float32), name="W")
    opt = Adam(lr=0.1).setup([W])
    W.grad = SparseRows(np.array([0, 3]), np.ones((2, 2), np.float32), W.shape)
    opt.update()
    weights, state = W.data.copy(), {k: v.copy() for k, v in opt.state[id(W)].items()}
    W.grad = SparseRows(np.array([0, 2]), np.array([[1.0, 1.0], [np.nan, 1.0]], np.float32), W.shape)
    with pytest.raises(FloatingPointError, match="gradient of parameter 'param0'"):
        opt.update()
    np.testing.assert_array_equal(W.data, weights)
    for key, value in state.items():
        np.testing.assert_array_equal(opt.state[id(W)][key], value)
    sgd = SGD(lr=3e38).setup([W])  # a finite gradient whose step overflows float32
    W.grad = SparseRows(np.array([1]), np.full((1, 2), 10.0, np.float32), W.shape)
    with pytest.raises(FloatingPointError, match="would make parameter 'param0'"):
        sgd.update()
    np.testing.assert_array_equal(W.data, weights)


def test_arrays_a_kernel_cannot_take_are_handed_to_the_numpy_code(monkeypatch):
    calls = []
    real = compiled._reference.update_rows
    monkeypatch.setattr(compiled._reference, "update_rows", lambda *a: calls.append(1) or real(*a))
    previous = backend.use("compiled")
    try:
        cases = [
            (np.asfortranarray(np.ones((5, 3))), np.ones((2, 3))),  # not C-contiguous
            (np.ones((5, 3), np.float16), np.ones((2, 3), np.float16)),  # no float16 loop
        ]
        for data, grad in cases:
            W = Parameter(data, name="W")
            W.grad = SparseRows(np.array([1, 3]), grad, W.shape, coalesced=True)
            SGD(lr=0.5).setup([W]).update()
            expected = np.ones((5, 3))
            expected[[1, 3]] = 0.5
            np.testing.assert_array_equal(W.data, expected)
        assert len(calls) == 2
        W = Parameter(np.ones((5, 3), np.float32))
        W.grad = SparseRows(np.array([1, 3]), np.ones((2, 3), np.float32), W.shape)
        SGD(lr=0.5).setup([W]).update()
        assert len(calls) == 2  # a float32 C-contiguous table is the loop's
    finally:
        backend.use(previous)


def test_set_jit_returns_the_previous_setting():
    previous = kernels.set_jit(False)
    try:
        assert not kernels.jit_enabled()
        assert kernels.set_jit(True) is False
        assert kernels.jit_enabled()
    finally:
        kernels.set_jit(previous)


def _import_with_env(value):
    env = dict(os.environ, TINYGRAD_NLP_JIT=value)
    code = "from tinygrad_nlp import kernels; print(kernels.jit_enabled())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_environment_variable_turns_the_kernels_off_and_names_a_bad_value():
    off = _import_with_env("0")
    assert off.returncode == 0 and off.stdout.strip() == "False"
    bad = _import_with_env("maybe")
    assert bad.returncode != 0 and "TINYGRAD_NLP_JIT must be 0 or 1, got 'maybe'" in bad.stderr


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("group", [1, 3])
def test_gather_and_scatter_kernels_match_scipys_sparse_products(dtype, group):
    from tinygrad_nlp.sparse import scatter_add_dense, scatter_add_rows

    rng = np.random.default_rng(3)
    table = rng.standard_normal((50, 6)).astype(dtype)
    ids = rng.integers(0, 50, (40, group))
    weights = rng.random((40, group)).astype(dtype)
    values = rng.standard_normal((40, 6)).astype(dtype)
    results = {}
    for jit in (True, False):
        previous = kernels.set_jit(jit)
        try:
            results[jit] = (backend.ops.gather_sum(table, ids, weights, group),
                            scatter_add_dense(ids, values, 50, weights=weights, group=group),
                            scatter_add_rows(ids, values, weights=weights, group=group))
        finally:
            kernels.set_jit(previous)
    (bag, dense, (rows, summed)), (bag_ref, dense_ref, (rows_ref, summed_ref)) = results[True], results[False]
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for got, want in ((bag, bag_ref), (dense, dense_ref), (summed, summed_ref)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(rows, rows_ref)
    # and both against a plain loop, the definition
    expected = np.zeros((40, 6))
    for n in range(40):
        for c in range(group):
            expected[n] += weights[n, c] * table[ids[n, c]]
    np.testing.assert_allclose(bag, expected, rtol=10 * tol, atol=10 * tol)


def test_gather_and_scatter_kernels_really_run(monkeypatch):
    import tinygrad_nlp.functions as F
    from tinygrad_nlp.core import Parameter as P

    calls = []
    for name in ("gather_sum", "scatter_sum"):
        real = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    previous = kernels.set_jit(True)
    try:
        W = P(np.ones((10, 4), np.float32))
        F.embedding_bag(W, np.array([[1, 2], [3, 3]]), sparse=True).backward()
    finally:
        kernels.set_jit(previous)
    assert calls == ["gather_sum", "scatter_sum"]
    np.testing.assert_array_equal(W.grad.rows, [1, 2, 3])
    np.testing.assert_allclose(W.grad.values, [[0.5] * 4, [0.5] * 4, [1.0] * 4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(0,), (1,), (37,), (12, 6), (3, 4, 5)])
def test_gather_rows_is_numpys_take(dtype, shape):
    rng = np.random.default_rng(4)
    table = rng.standard_normal((61, 7)).astype(dtype)  # 28- or 56-byte rows: not line-aligned
    ids = rng.integers(0, 61, shape)
    ids.flat[: min(ids.size, 2)] = [0, 60][: min(ids.size, 2)]  # the first and the last row
    got = kernels.gather_rows(table, ids)
    assert got.shape == shape + (7,) and got.dtype == dtype
    np.testing.assert_array_equal(got, table.take(ids, axis=0))
    strided = np.asfortranarray(table)  # any layout, read in place
    np.testing.assert_array_equal(kernels.gather_rows(strided, ids.astype(np.uint32)), table.take(ids, axis=0))
    np.testing.assert_array_equal(kernels.gather_rows(table[::-2], ids % 31), table[::-2].take(ids % 31, axis=0))


def test_the_gather_kernels_never_copy_the_table():
    """Work follows the ids, not V: a strided (V, H) table is read in place, not made contiguous."""
    import tracemalloc

    table = np.asfortranarray(np.ones((20_000, 50)))  # 8 MB, not C-contiguous
    ids = np.array([[3, 19_999], [0, 7]])
    weights = np.ones(ids.shape)
    kernels.gather_rows(table, ids), kernels.gather_sum(table, ids, weights, 2)  # compile first
    tracemalloc.start()
    try:
        kernels.gather_rows(table, ids)
        kernels.gather_sum(table, ids, weights, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100_000


@pytest.mark.parametrize("bad", [-1, 61, 10**9])
def test_the_gather_kernels_name_an_id_out_of_range_instead_of_reading_past_the_table(bad):
    table = np.ones((61, 4), np.float32)
    ids = np.array([[3, 5], [7, bad]])
    with pytest.raises(IndexError, match=f"id {bad} is out of range for a table of 61 rows"):
        kernels.gather_rows(table, ids)
    with pytest.raises(IndexError, match=f"id {bad} is out of range for a table of 61 rows"):
        kernels.gather_sum(table, ids, np.ones(ids.shape, np.float32), 2)


def test_prefetch_row_is_only_a_hint():
    """Prefetching every row (the last one, unaligned rows, empty rows) changes nothing."""
    import numba

    @numba.njit
    def touch_all(table, ids):
        total = 0.0
        for k in range(ids.size):
            kernels.prefetch_row(table, ids[k])
            total += table[ids[k]].sum()
        return total

    for table in (np.arange(3 * 13, dtype=np.float32).reshape(3, 13), np.zeros((5, 0)), np.ones((4, 3))[:, ::2]):
        before = table.copy()
        ids = np.arange(table.shape[0])[::-1]
        assert touch_all(table, ids) == pytest.approx(float(table.sum()))
        np.testing.assert_array_equal(table, before)


def test_embedding_forwards_gather_through_the_kernel_and_match_without_it(monkeypatch):
    import tinygrad_nlp.functions as F
    from tinygrad_nlp.core import Parameter as P

    rng = np.random.default_rng(5)
    W = P(rng.standard_normal((30, 5)).astype(np.float32))
    h = rng.standard_normal((4, 5)).astype(np.float32)
    ids = rng.integers(0, 30, (4, 3))
    calls = []
    for name in ("gather_rows", "gather_dot", "gather_sum"):
        real = getattr(compiled, name)
        monkeypatch.setattr(compiled, name, lambda *a, _real=real, _name=name: calls.append(_name) or _real(*a))
    results = {}
    for jit in (True, False):
        previous = kernels.set_jit(jit)
        try:
            W.cleargrad()
            scores = F.embedding_dot(W, h, ids, sparse=True)
            (scores * np.arange(12, dtype=np.float32).reshape(4, 3)).sum().backward()
            results[jit] = (F.embedding(W, ids).data, scores.data, W.grad.to_dense())
        finally:
            kernels.set_jit(previous)
    # with the JIT on only: embedding_dot's scores, then its dh in backward, then embedding
    assert calls == ["gather_dot", "gather_sum", "gather_rows"]
    np.testing.assert_array_equal(results[True][0], W.data[ids])
    np.testing.assert_array_equal(results[True][0], results[False][0])
    np.testing.assert_allclose(results[True][1], results[False][1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[True][2], results[False][2], rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(9,), (9, 4), (1, 1)])
def test_gather_dot_scores_each_row_against_its_hidden_vector(dtype, shape):
    rng = np.random.default_rng(6)
    table = rng.standard_normal((40, 37)).astype(dtype)  # H = 37: vector lanes plus a remainder
    ids = rng.integers(0, 40, shape)
    h = rng.standard_normal((shape[0], 37)).astype(dtype)
    got = kernels.gather_dot(table, ids, h)
    rows = table[ids]
    expected = (rows * (h if ids.ndim == 1 else h[:, None, :])).astype(np.float64).sum(axis=-1)
    assert got.shape == shape and got.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
    with pytest.raises(IndexError, match="id 40 is out of range"):
        kernels.gather_dot(table, np.full(shape, 40), h)
    with pytest.raises(ValueError, match=r"h must have shape"):
        kernels.gather_dot(table, ids, h[:, :5])


def test_gather_dot_keeps_nan_and_inf():
    """Only reassociation is allowed, not fast math: a NaN or inf row still gives NaN or inf."""
    table = np.ones((3, 20), np.float32)
    table[1, 7], table[2, 0] = np.nan, np.inf
    got = kernels.gather_dot(table, np.array([[0, 1, 2]]), np.ones((1, 20), np.float32))
    assert got[0, 0] == 20 and np.isnan(got[0, 1]) and got[0, 2] == np.inf


def _zipf_cdf(V, rng):
    w = 1.0 / np.arange(1, V + 1)
    w[rng.random(V) < 0.1] = 0  # zero-probability words: flat stretches in the table
    w[0] = 1
    cdf = np.cumsum(w / w.sum())
    cdf[np.flatnonzero(w)[-1]:] = 1.0
    return cdf


@pytest.mark.parametrize("V", [2, 10, 1000, 200_000])
@pytest.mark.parametrize("buckets", [None, 7])
def test_guided_search_gives_exactly_searchsorted(V, buckets):
    rng = np.random.default_rng(V)
    cdf = _zipf_cdf(V, rng)
    guide = kernels.build_guide(cdf, buckets)
    # random keys, keys equal to table entries and just below them, and both ends of [0, 1)
    keys = np.concatenate([rng.random(50_000), cdf[:-1][:2000], np.nextafter(cdf[:2000], 0),
                           [0.0, np.nextafter(1.0, 0)]])
    np.testing.assert_array_equal(kernels.guided_search(cdf, guide, keys), np.searchsorted(cdf, keys, side="right"))


def test_sampler_draws_the_same_negatives_with_and_without_the_jit():
    from tinygrad_nlp.text import UnigramSampler

    counts = np.random.default_rng(0).integers(0, 50, 5000)
    target = np.random.default_rng(1).integers(0, 5000, 3000)
    target = target[counts[target] > 0]
    draws = {}
    for jit in (True, False):
        previous = kernels.set_jit(jit)
        try:
            sampler = UnigramSampler.from_counts(counts, sample_size=5, seed=42)
            draws[jit] = (sampler.get_negative_sample(target), sampler.sample((700,)))
        finally:
            kernels.set_jit(previous)
    np.testing.assert_array_equal(draws[True][0], draws[False][0])
    np.testing.assert_array_equal(draws[True][1], draws[False][1])
    assert not np.any(draws[True][0] == target[:, None])


# ----- recurrent gate primitives -----
from tinygrad_nlp.backend import numpy_backend  # noqa: E402


def _gate_arrays(kind, N, H, dtype, seed=0):
    """Inputs of one gate primitive, in its argument order (outputs as empty buffers)."""
    rng = np.random.default_rng(seed)
    r = lambda *shape: (rng.standard_normal(shape) * 2).astype(dtype)  # noqa: E731
    e = lambda *shape: np.empty(shape, dtype)  # noqa: E731
    return {
        "lstm_gates": lambda: [r(N, 4 * H), r(N, 4 * H), r(N, H), e(N, H), e(N, H), e(N, H)],
        "gru_gates": lambda: [r(N, 3 * H), r(N, 3 * H), r(3 * H), r(N, H), e(N, 3 * H), e(N, H)],
        "rnn_gates": lambda: [r(N, H), r(N, H)],
    }[kind]()


def _forward(module, kind, args):
    args = [a.copy() for a in args]
    getattr(module, kind)(*args)
    return args


def _backward_args(kind, fwd, rng, dtype):
    """Inputs of the backward primitive from a forward's results, outputs as empty buffers."""
    r = lambda shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    if kind == "lstm_gates":
        a, _, c_prev, _, tanh_c, _ = fwd
        return [a, c_prev, tanh_c, r(c_prev.shape), r(c_prev.shape), np.empty_like(a)]
    if kind == "gru_gates":
        hw, _, _, h_prev, gates, _ = fwd
        return [gates, hw, h_prev, r(h_prev.shape), np.empty_like(gates), np.empty_like(gates), np.empty_like(h_prev)]
    a, _ = fwd
    return [a, r(a.shape), np.empty_like(a)]


@pytest.mark.parametrize("N, H", [(1, 1), (3, 5), (16, 33)])
@pytest.mark.parametrize("kind", ["lstm_gates", "gru_gates", "rnn_gates"])
def test_compiled_gates_match_numpy(kind, N, H, monkeypatch):
    args = _gate_arrays(kind, N, H, np.float32)
    want = _forward(numpy_backend, kind, args)
    monkeypatch.setattr(compiled, "_reference", None)  # the compiled loops must not hand float32 over
    got = _forward(compiled, kind, args)
    for g, w in zip(got, want):
        assert g.dtype == np.float32
        # numpy's float32 tanh is within 1.4 units in the last place, the loops' within 0.62
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    back = _backward_args(kind, want, np.random.default_rng(1), np.float32)
    want_b = _forward(numpy_backend, kind + "_backward", back)
    got_b = _forward(compiled, kind + "_backward", back)
    for g, w in zip(got_b, want_b):  # no tanh in a backward: the same operations in the same order
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("kind", ["lstm_gates", "gru_gates", "rnn_gates"])
def test_gates_in_float64_and_mixed_dtypes_give_numpy_answers(kind):
    args = _gate_arrays(kind, 4, 6, np.float64)
    for g, w in zip(_forward(compiled, kind, args), _forward(numpy_backend, kind, args)):
        np.testing.assert_array_equal(g, w)  # the float64 forward is numpy's
    back = _backward_args(kind, _forward(numpy_backend, kind, args), np.random.default_rng(2), np.float64)
    for g, w in zip(_forward(compiled, kind + "_backward", back), _forward(numpy_backend, kind + "_backward", back)):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, w)
    mixed = _gate_arrays(kind, 4, 6, np.float32)
    mixed[1] = mixed[1].astype(np.float64)
    for g, w in zip(_forward(compiled, kind, mixed), _forward(numpy_backend, kind, mixed)):
        np.testing.assert_array_equal(g, w)


def test_compiled_tanh_is_within_one_unit_in_the_last_place_and_keeps_nan():
    import numba

    @numba.njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = compiled._tanh(x[i])

    x = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-30, 20, 20_001),
                        [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(np.float32)
    x = np.concatenate([x, -x])
    out = np.empty_like(x)
    apply(x, out)
    exact = np.tanh(x.astype(np.float64))
    finite = np.isfinite(x)
    ulps = np.abs(out[finite] - exact[finite]) / np.spacing(np.abs(exact[finite]).astype(np.float32))
    assert ulps.max() < 1.0
    np.testing.assert_array_equal(out[x == np.inf], 1.0)
    np.testing.assert_array_equal(out[x == -np.inf], -1.0)
    assert np.isnan(out[np.isnan(x)]).all()
    # a NaN reaching a gate reaches the state (anomaly mode looks for it there)
    a, xw, c_prev, c, tanh_c, h = _gate_arrays("lstm_gates", 2, 3, np.float32)
    xw[1, 4] = np.nan  # row 1, forget gate of unit 1
    compiled.lstm_gates(a, xw, c_prev, c, tanh_c, h)
    assert np.isnan(h[1, 1]) and np.isnan(c[1, 1]) and np.isfinite(np.delete(h.ravel(), 4)).all()
