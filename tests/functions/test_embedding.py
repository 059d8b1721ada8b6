"""tinygrad_nlp.functions.embedding: Embedding, EmbeddingBag and EmbeddingDot, dense and row-sparse,
checked against finite differences, the book's printed numbers and its hand-written layers
(re-implemented here as an independent reference), on both backends."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, SparseRows, Variable, viz
from tinygrad_nlp.gradcheck import directional_check, gradient_check

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

rng = np.random.default_rng(7)

# ----- the book's EmbeddingDot example -----
BOOK_W_OUT = np.array([
    [1.64, -0.14, -0.19],
    [1.00, -0.91, -1.34],
    [0.87, -0.31, 0.93],
    [-0.32, 0.11, -0.40],
    [0.68, 2.03, -0.42],
    [0.90, -2.56, 0.92],
    [1.79, 0.95, 0.99],
])
BOOK_TARGET = np.array([1, 2, 3, 4, 1, 5])
BOOK_TARGET_W = np.array([
    [1.00, -0.91, -1.34],
    [0.87, -0.31, 0.93],
    [-0.32, 0.11, -0.40],
    [0.68, 2.03, -0.42],
    [1.00, -0.91, -1.34],
    [0.90, -2.56, 0.92],
])
BOOK_DS = np.array([-1.60212118, -0.86946314, 1.3290934, 0.94355095, 0.34452969, -0.05639633])


def book_embedding_backward(idx, dout, V):
    """The book's Embedding.backward loop: dW[word_id] += dout[i]."""
    dW = np.zeros((V, dout.shape[-1]))
    for i, word_id in enumerate(idx):
        dW[word_id] += dout[i]
    return dW


def test_the_books_embedding_gathers_the_printed_rows():
    out = F.embedding(Variable(BOOK_W_OUT), BOOK_TARGET)
    assert out.shape == (6, 3)
    assert np.array_equal(out.data, BOOK_TARGET_W)


@pytest.mark.parametrize("sparse", [False, True])
def test_the_books_embedding_dot_forward_and_backward_by_the_books_formulas(sparse):
    h = rng.normal(size=(6, 3)).round(2)
    W = Parameter(BOOK_W_OUT.copy())
    hv = Variable(h)
    s = F.embedding_dot(W, hv, BOOK_TARGET, sparse=sparse)
    assert s.shape == (6,)
    assert np.allclose(s.data, np.sum(BOOK_TARGET_W * h, axis=1))
    s.grad = Variable(BOOK_DS)
    s.backward()
    ds = BOOK_DS.reshape(6, 1)
    assert np.allclose(hv.grad.data, ds * BOOK_TARGET_W)  # dh = dout * W_target
    dtarget_W = ds * h  # dW_target = dout * h
    expected_dW = book_embedding_backward(BOOK_TARGET, dtarget_W, 7)
    got = W.grad.to_dense() if sparse else W.grad.data
    assert isinstance(W.grad, SparseRows) == sparse
    assert got.shape == (7, 3)
    assert np.allclose(got, expected_dW)
    # id 1 appears twice: its row gets both contributions; ids 0 and 6 get nothing.
    assert np.allclose(got[1], BOOK_DS[0] * h[0] + BOOK_DS[4] * h[4])
    assert np.all(got[[0, 6]] == 0)


# ----- embedding -----


@pytest.mark.parametrize("idx_shape", [(5,), (4, 3), (2, 3, 2), ()])
@pytest.mark.parametrize("sparse", [False, True])
def test_embedding_gradients_any_index_shape(idx_shape, sparse):
    W = rng.normal(size=(6, 4))
    idx = rng.integers(0, 6, size=idx_shape)
    gradient_check(lambda w: F.embedding(w, idx, sparse=sparse), W)
    assert F.embedding(Variable(W), idx).shape == idx_shape + (4,)


def test_embedding_repeated_ids_sum_and_match_the_book_loop():
    W = Parameter(np.zeros((5, 2)))
    idx = np.array([3, 3, 0, 3, 1])
    dout = rng.normal(size=(5, 2))
    y = F.embedding(W, idx)
    y.grad = Variable(dout)
    y.backward()
    assert np.allclose(W.grad.data, book_embedding_backward(idx, dout, 5))


def test_dense_and_sparse_embedding_grads_agree_on_a_big_batch():
    V, H = 1000, 16
    W0 = rng.normal(size=(V, H)).astype(np.float32)
    idx = rng.integers(0, V, size=(500, 10))
    dout = rng.normal(size=(500, 10, H)).astype(np.float32)
    grads = []
    for sparse in (False, True):
        W = Parameter(W0)
        y = F.embedding(W, idx, sparse=sparse)
        y.grad = Variable(dout)
        y.backward()
        grads.append(W.grad)
    dense, sparse = grads
    assert isinstance(sparse, SparseRows) and sparse.values.dtype == np.float32
    assert np.array_equal(sparse.rows, np.unique(idx))
    assert np.allclose(sparse.to_dense(), dense.data, atol=1e-5)
    ref = np.zeros((V, H), np.float32)
    np.add.at(ref, idx.ravel(), dout.reshape(-1, H))
    assert np.allclose(dense.data, ref, atol=1e-5)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (np.array([0, -1, 2]), r"id -1 at position \(1,\) is out of range for V=5"),
        (np.array([[0, 1], [5, 2]]), r"id 5 at position \(1, 0\) is out of range for V=5"),
        (np.array([0.0, 1.5]), r"must be integers.*1\.5.*V=5"),
        (np.array([0.0, 1.0]), r"must be integers.*float64.*V=5"),
    ],
)
def test_embedding_rejects_bad_ids_naming_them(bad, pattern):
    W = Variable(np.ones((5, 2)))
    for fn in (
        lambda: F.embedding(W, bad),
        lambda: F.embedding_dot(W, Variable(np.ones((bad.shape[0], 2))), bad),
    ):
        with pytest.raises(F.InvalidIdError, match=pattern):
            fn()
    with pytest.raises(IndexError):
        F.embedding(W, bad)
    with pytest.raises(ValueError):
        F.embedding(W, bad)


def test_embedding_bag_equals_gather_then_mean_or_sum():
    W = rng.normal(size=(9, 5))
    idx = rng.integers(0, 9, size=(7, 4))
    idx[0] = [2, 2, 2, 2]
    ref = W[idx].mean(axis=1)
    assert np.allclose(F.embedding_bag(Variable(W), idx).data, ref)
    assert np.allclose(F.embedding_bag(Variable(W), idx, mode="sum").data, W[idx].sum(axis=1))
    for sparse in (False, True):
        for mode in ("mean", "sum"):
            gradient_check(lambda w: F.embedding_bag(w, idx, mode=mode, sparse=sparse), W)
    with pytest.raises(ValueError, match="mode"):
        F.embedding_bag(Variable(W), idx, mode="max")
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        F.embedding_bag(Variable(W), np.array([1, 2]))


def test_embedding_bag_float32_and_second_derivative():
    W = Parameter(rng.normal(size=(6, 3)).astype(np.float32))
    idx = rng.integers(0, 6, size=(4, 2))
    y = F.embedding_bag(W, idx)
    assert y.dtype == np.float32
    loss = F.sum(y ** 2)
    loss.backward(create_graph=True)
    g = W.grad
    W.cleargrad()
    F.sum(g).backward()
    # d/dW sum(dL/dW) where L = sum(bag(W)^2): = 2 * A^T A 1, with A the averaging matrix.
    A = np.zeros((4, 6))
    for n in range(4):
        for c in idx[n]:
            A[n, c] += 0.5
    assert np.allclose(W.grad.data, 2 * A.T @ A @ np.ones((6, 3)), atol=1e-6)


# ----- embedding_dot -----


@pytest.mark.parametrize("k", [None, 1, 6])
@pytest.mark.parametrize("sparse", [False, True])
def test_embedding_dot_gradients(k, sparse):
    W = rng.normal(size=(8, 5))
    h = rng.normal(size=(4, 5))
    idx = rng.integers(0, 8, size=(4,) if k is None else (4, k))
    gradient_check(lambda w, hh: F.embedding_dot(w, hh, idx, sparse=sparse), W, h)
    out = F.embedding_dot(Variable(W), Variable(h), idx)
    assert out.shape == idx.shape
    ref = np.einsum("nh,nh->n", W[idx], h) if k is None else np.einsum("nkh,nh->nk", W[idx], h)
    assert np.allclose(out.data, ref)


def test_embedding_dot_shape_errors():
    W, h = Variable(np.ones((8, 5))), Variable(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"h must have shape \(N, 5\)"):
        F.embedding_dot(W, Variable(np.ones((4, 3))), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"N=4, got \(3,\)"):
        F.embedding_dot(W, h, np.zeros(3, int))


# ----- sparse gradient accumulation -----


def test_sparse_grads_from_ten_uses_accumulate_without_densifying():
    V, H = 50, 4
    W = Parameter(rng.normal(size=(V, H)))
    ctx = rng.integers(0, V, size=(6, 10))
    h = sum(F.embedding(W, ctx[:, i], sparse=True) for i in range(10)) * 0.1
    loss = F.sum(h ** 2)
    loss.backward()
    assert isinstance(W.grad, SparseRows)
    assert W.grad._parts is not None and len(W.grad._parts) == 10  # kept lazily, not densified
    ref_W = Parameter(W.data.copy())
    ref = F.sum((F.embedding(ref_W, ctx).sum(axis=1) * 0.1) ** 2)
    ref.backward()
    assert np.allclose(W.grad.to_dense(), ref_W.grad.data)
    assert np.array_equal(W.grad.rows, np.unique(ctx))


def test_sparse_plus_dense_gradient_accumulates_correctly():
    W = Parameter(rng.normal(size=(6, 3)))
    idx = np.array([0, 4, 4])
    loss = F.sum(F.embedding(W, idx, sparse=True) ** 2) + F.sum(W * 3.0)
    loss.backward()
    expected = np.full((6, 3), 3.0)
    for i in idx:
        expected[i] += 2 * W.data[i]
    got = W.grad.to_dense() if isinstance(W.grad, SparseRows) else W.grad.data
    assert np.allclose(got, expected)


def test_sparse_grads_accumulate_across_backward_calls():
    W = Parameter(np.ones((5, 2)))
    F.sum(F.embedding(W, np.array([1]), sparse=True)).backward()
    F.sum(F.embedding(W, np.array([1, 3]), sparse=True)).backward()
    assert isinstance(W.grad, SparseRows)
    assert np.array_equal(W.grad.rows, [1, 3])
    assert np.array_equal(W.grad.values, [[2.0, 2.0], [1.0, 1.0]])


def test_sparse_grad_into_a_non_leaf_is_densified():
    W0 = Parameter(rng.normal(size=(5, 2)))
    W = W0 * 2.0
    F.sum(F.embedding(W, np.array([2, 2]), sparse=True)).backward()
    expected = np.zeros((5, 2))
    expected[2] = 4.0
    assert np.allclose(W0.grad.data, expected)


# ----- softmax family -----


def test_large_embedding_dot_directional_check_float32_dtype():
    V, H, N, K = 3000, 64, 256, 6
    W = rng.normal(size=(V, H)) * 0.1
    h = rng.normal(size=(N, H))
    idx = rng.integers(0, V, size=(N, K))
    directional_check(lambda w, hh: F.embedding_dot(w, hh, idx, sparse=True), W, h)
    W32 = Parameter(W.astype(np.float32))
    h32 = Variable(h.astype(np.float32))
    out = F.embedding_dot(W32, h32, idx, sparse=True)
    F.sum(out).backward()
    assert out.dtype == np.float32 and W32.grad.dtype == np.float32 and h32.grad.dtype == np.float32


def test_sparse_and_dense_grads_meeting_at_a_non_leaf():
    W0 = Parameter(rng.normal(size=(5, 2)))
    W = W0 * 2.0
    loss = F.sum(F.embedding(W, np.array([1, 1]), sparse=True)) + F.sum(W * 3.0)
    loss.backward()
    expected = np.full((5, 2), 6.0)
    expected[1] += 4.0
    assert np.allclose(W0.grad.data, expected)


def test_embedding_bag_with_weights():
    W = rng.normal(size=(9, 4))
    idx = rng.integers(0, 9, size=(5, 4))
    weights = (rng.random((5, 4)) > 0.4).astype(float)
    weights[0] = 0  # a row with nothing kept gives zeros
    weights[1] = [0.5, 2.0, 0.0, 1.0]
    total = weights.sum(axis=1, keepdims=True)
    expected_mean = np.einsum("nc,nch->nh", weights / np.where(total > 0, total, 1), W[idx])
    assert np.allclose(F.embedding_bag(Variable(W), idx, weights=weights).data, expected_mean)
    assert np.allclose(F.embedding_bag(Variable(W), idx, mode="sum", weights=weights).data, np.einsum("nc,nch->nh", weights, W[idx]))
    assert np.all(F.embedding_bag(Variable(W), idx, weights=weights).data[0] == 0)
    for sparse in (False, True):
        gradient_check(lambda w: F.embedding_bag(w, idx, sparse=sparse, weights=weights), W)
    with pytest.raises(ValueError, match=r"weights of shape \(5, 3\) must match idx of shape \(5, 4\)"):
        F.embedding_bag(Variable(W), idx, weights=np.ones((5, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        F.embedding_bag(Variable(W), idx, weights=-np.ones((5, 4)))


def test_prepared_ids_give_the_same_results_and_are_checked_once():
    from tinygrad_nlp.sparse import Ids

    V, H = 30, 4
    W0 = rng.normal(size=(V, H))
    ctx = rng.integers(0, V, size=(8, 4))
    h0 = rng.normal(size=(8, H))
    scored = rng.integers(0, V, size=(8, 3))
    results = []
    for prepared in (False, True):
        W = Parameter(W0.copy())
        hv = Variable(h0)
        c = Ids(ctx).prepare(V) if prepared else ctx
        s = Ids(scored).prepare(V) if prepared else scored
        loss = F.sum(F.embedding_bag(W, c, sparse=True)) + F.sum(F.embedding_dot(W, hv, s, sparse=True) ** 2)
        loss += F.sum(F.embedding(W, c, sparse=True))
        loss.backward()
        results.append((float(loss.data), W.grad.to_dense(), hv.grad.data))
    assert results[0][0] == pytest.approx(results[1][0])
    assert np.allclose(results[0][1], results[1][1]) and np.allclose(results[0][2], results[1][2])
    bad = Ids(np.array([[0, V]]))
    with pytest.raises(F.InvalidIdError, match=f"id {V}"):
        F.embedding_bag(Variable(W0), bad)
    ok = Ids(ctx)
    F.embedding_bag(Variable(W0), ok)
    assert ok.checked_rows == V  # remembered: the next use skips the range check
