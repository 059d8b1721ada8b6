"""The NLP Functions: Embedding, EmbeddingBag, EmbeddingDot, softmax / sigmoid cross-entropy and
negative sampling, checked against finite differences, the seed documents' numbers and the
book's hand-written layers (re-implemented here as an independent reference)."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, SparseRows, Variable, viz
from tinygrad_nlp.gradcheck import directional_check, gradient_check

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

rng = np.random.default_rng(7)

# ----- the seed document 002's example -----
SEED_W_OUT = np.array([
    [1.64, -0.14, -0.19],
    [1.00, -0.91, -1.34],
    [0.87, -0.31, 0.93],
    [-0.32, 0.11, -0.40],
    [0.68, 2.03, -0.42],
    [0.90, -2.56, 0.92],
    [1.79, 0.95, 0.99],
])
SEED_TARGET = np.array([1, 2, 3, 4, 1, 5])
SEED_TARGET_W = np.array([
    [1.00, -0.91, -1.34],
    [0.87, -0.31, 0.93],
    [-0.32, 0.11, -0.40],
    [0.68, 2.03, -0.42],
    [1.00, -0.91, -1.34],
    [0.90, -2.56, 0.92],
])
SEED_DS = np.array([-1.60212118, -0.86946314, 1.3290934, 0.94355095, 0.34452969, -0.05639633])


def book_embedding_backward(idx, dout, V):
    """The seed's Embedding.backward loop: dW[word_id] += dout[i]."""
    dW = np.zeros((V, dout.shape[-1]))
    for i, word_id in enumerate(idx):
        dW[word_id] += dout[i]
    return dW


def test_seed_002_embedding_gathers_the_printed_rows():
    out = F.embedding(Variable(SEED_W_OUT), SEED_TARGET)
    assert out.shape == (6, 3)
    assert np.array_equal(out.data, SEED_TARGET_W)


@pytest.mark.parametrize("sparse", [False, True])
def test_seed_002_embedding_dot_forward_and_backward_by_the_seeds_formulas(sparse):
    h = rng.normal(size=(6, 3)).round(2)
    W = Parameter(SEED_W_OUT.copy())
    hv = Variable(h)
    s = F.embedding_dot(W, hv, SEED_TARGET, sparse=sparse)
    assert s.shape == (6,)
    assert np.allclose(s.data, np.sum(SEED_TARGET_W * h, axis=1))
    s.grad = Variable(SEED_DS)
    s.backward()
    ds = SEED_DS.reshape(6, 1)
    assert np.allclose(hv.grad.data, ds * SEED_TARGET_W)  # dh = dout * W_target
    dtarget_W = ds * h  # dW_target = dout * h
    expected_dW = book_embedding_backward(SEED_TARGET, dtarget_W, 7)
    got = W.grad.to_dense() if sparse else W.grad.data
    assert isinstance(W.grad, SparseRows) == sparse
    assert got.shape == (7, 3)
    assert np.allclose(got, expected_dW)
    # id 1 appears twice: its row gets both contributions; ids 0 and 6 get nothing.
    assert np.allclose(got[1], SEED_DS[0] * h[0] + SEED_DS[4] * h[4])
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

def test_softmax_and_log_softmax_values_and_gradients():
    x = rng.normal(size=(4, 5))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    assert np.allclose(F.softmax(x).data, e / e.sum(axis=1, keepdims=True))
    assert np.allclose(F.log_softmax(x).data, np.log(e / e.sum(axis=1, keepdims=True)))
    for axis in (0, 1, -1):
        gradient_check(lambda v: F.softmax(v, axis), x)
        gradient_check(lambda v: F.log_softmax(v, axis), x)


def test_softmax_stable_with_huge_logits():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        p = F.softmax(x).data
        lp = F.log_softmax(x).data
    assert np.allclose(p, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    assert lp[0, 0] == 0 and lp[0, 1] == -2000 and np.all(np.isfinite(lp))


def book_softmax_cross_entropy(x, t):
    """The seed's SoftmaxCrossEntropy with a one-hot target (its +1e-7 aside)."""
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(x.shape[1])[t]
    return -np.sum(onehot * np.log(y)) / x.shape[0], (y - onehot) / x.shape[0]


def test_softmax_cross_entropy_matches_the_book_with_labels_and_one_hot():
    x = rng.normal(size=(6, 7))
    t = rng.integers(0, 7, size=6)
    ref_loss, ref_grad = book_softmax_cross_entropy(x, t)
    for target in (t, np.eye(7)[t]):
        xv = Variable(x)
        loss = F.softmax_cross_entropy(xv, target)
        loss.backward()
        assert loss.shape == ()
        assert float(loss.data) == pytest.approx(ref_loss)
        assert np.allclose(xv.grad.data, ref_grad)


def test_softmax_cross_entropy_accepts_the_seeds_int32_one_hot():
    x = rng.normal(size=(4, 3)).astype(np.float32)
    t = np.array([1, 2, 0, 2])
    onehot = np.eye(3, dtype=np.int32)[t]  # what the seed's convert_one_hot returns
    a = F.softmax_cross_entropy(x, onehot)
    b = F.softmax_cross_entropy(x, t)
    assert a.dtype == np.float32 and float(a.data) == pytest.approx(float(b.data), rel=1e-6)


def test_softmax_cross_entropy_gradients_and_ignore_index():
    x = rng.normal(size=(5, 4))
    t = np.array([0, 3, -100, 1, -100])
    gradient_check(lambda v: F.softmax_cross_entropy(v, t, ignore_index=-100), x)
    keep = t != -100
    ref, _ = book_softmax_cross_entropy(x[keep], t[keep])
    assert float(F.softmax_cross_entropy(x, t, ignore_index=-100).data) == pytest.approx(ref)
    all_ignored = F.softmax_cross_entropy(x, np.full(5, -100), ignore_index=-100)
    assert float(all_ignored.data) == 0.0
    gradient_check(lambda v: F.softmax_cross_entropy(v, rng.dirichlet(np.ones(4), 5) * 0 + 0.25), x)
    gradient_check(lambda v: F.softmax_cross_entropy(v, np.array([[0, 1], [2, 3]])), rng.normal(size=(2, 2, 4)))


def test_softmax_cross_entropy_stable_with_huge_logits():
    x = Variable(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]], np.float32))
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = F.softmax_cross_entropy(x, np.array([0, 0]))
        loss.backward()
    assert loss.dtype == np.float32
    assert float(loss.data) == pytest.approx(1000.0)  # row 0 exact (0), row 1 costs 2000
    assert np.allclose(x.grad.data, [[0, 0], [-0.5, 0.5]])


@pytest.mark.parametrize(
    "t, pattern",
    [
        (np.array([0, 5, 1]), r"label 5 at position \(1,\) is out of range for V=5"),
        (np.array([0, -2, 1]), r"label -2"),
        (np.array([0, 1]), r"labels of shape \(2,\) do not match logits of shape \(3, 5\)"),
        (np.array([0.0, 1.0, 2.0]), r"must be integers"),
        (np.ones((3, 4)), r"labels of shape \(3, 4\)"),
        (np.array([["a"] * 5] * 3), r"must be numbers"),
    ],
)
def test_softmax_cross_entropy_rejects_bad_labels(t, pattern):
    with pytest.raises(ValueError, match=pattern):
        F.softmax_cross_entropy(Variable(np.zeros((3, 5))), t)


def book_sigmoid_with_loss(x, t):
    """The book's SigmoidWithLoss: sigmoid, then the two-class cross-entropy, mean over N."""
    y = 1 / (1 + np.exp(-x))
    loss = -np.sum(t * np.log(y) + (1 - t) * np.log(1 - y)) / x.shape[0]
    return loss, (y - t) / x.shape[0]


def test_sigmoid_cross_entropy_matches_the_book_and_gradients():
    x = rng.normal(size=(8,))
    t = (rng.random(8) > 0.5).astype(float)
    ref_loss, ref_grad = book_sigmoid_with_loss(x, t)
    xv = Variable(x)
    loss = F.sigmoid_cross_entropy(xv, t)
    loss.backward()
    assert float(loss.data) == pytest.approx(ref_loss)
    assert np.allclose(xv.grad.data, ref_grad)
    for reduction in ("mean", "sum", "batchmean"):
        gradient_check(lambda v: F.sigmoid_cross_entropy(v, (rng.random((3, 4)) * 0 + 1) * (np.arange(12).reshape(3, 4) % 2), reduction), rng.normal(size=(3, 4)))
    none = F.sigmoid_cross_entropy(x, t, reduction="none")
    assert none.shape == (8,) and float(none.data.mean()) == pytest.approx(ref_loss)


def test_sigmoid_cross_entropy_stable_at_1000():
    x = Variable(np.array([1000.0, -1000.0, 1000.0, -1000.0], np.float32))
    t = np.array([1.0, 0.0, 0.0, 1.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        loss = F.sigmoid_cross_entropy(x, t)
        loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    assert float(loss.data) == pytest.approx(500.0)  # two exact, two wrong by 1000 each, mean of 4
    assert np.allclose(x.grad.data, [0, 0, 0.25, -0.25])


def test_sigmoid_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"targets of shape \(2,\) must match logits of shape \(3,\)"):
        F.sigmoid_cross_entropy(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"\[0, 1\], got 2"):
        F.sigmoid_cross_entropy(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction"):
        F.sigmoid_cross_entropy(np.zeros(3), np.zeros(3), reduction="avg")


# ----- negative sampling -----

def book_negative_sampling(h, W, target, negatives):
    """The book's NegativeSamplingLoss: K+1 EmbeddingDot + SigmoidWithLoss layers, summed."""
    N = h.shape[0]
    loss = 0.0
    dh = np.zeros_like(h)
    dW = np.zeros_like(W)
    columns = [(target, 1.0)] + [(negatives[:, k], 0.0) for k in range(negatives.shape[1])]
    for ids, label in columns:
        score = np.sum(W[ids] * h, axis=1)
        l, ds = book_sigmoid_with_loss(score, np.full(N, label))
        loss += l
        dh += ds[:, None] * W[ids]
        for i, word_id in enumerate(ids):
            dW[word_id] += ds[i] * h[i]
    return loss, dh, dW


@pytest.mark.parametrize("sparse", [False, True])
def test_negative_sampling_loss_equals_the_books_sum_of_layers(sparse):
    V, H, N, K = 20, 6, 9, 5
    W = Parameter(rng.normal(size=(V, H)) * 0.5)
    h = Variable(rng.normal(size=(N, H)))
    target = rng.integers(0, V, size=N)
    negatives = rng.integers(0, V, size=(N, K))
    loss = F.negative_sampling_loss(h, W, target, negatives, sparse=sparse)
    loss.backward()
    ref_loss, ref_dh, ref_dW = book_negative_sampling(h.data, W.data, target, negatives)
    assert float(loss.data) == pytest.approx(ref_loss)
    assert np.allclose(h.grad.data, ref_dh)
    got = W.grad.to_dense() if sparse else W.grad.data
    assert np.allclose(got, ref_dW)
    gradient_check(lambda hh, w: F.negative_sampling_loss(hh, w, target, negatives), h.data, W.data)


def test_negative_sampling_loss_is_two_nodes_in_the_diagram():
    W = Parameter(rng.normal(size=(10, 4)), name="W_out")
    h = Variable(rng.normal(size=(3, 4)), name="h")
    loss = F.negative_sampling_loss(h, W, np.array([1, 2, 3]), np.array([[4, 5], [6, 7], [8, 9]]))
    dot = viz.get_dot_graph(loss)
    assert dot.count('label="EmbeddingDot"') == 1 and dot.count('label="SigmoidCrossEntropy"') == 1
    assert 'label="W_out' in dot


def test_negative_sampling_shape_errors():
    W, h = Variable(np.ones((10, 4))), Variable(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"target must be \(N,\) and negatives \(N, K\)"):
        F.negative_sampling_loss(h, W, np.array([1, 2, 3]), np.array([4, 5, 6]))


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


def test_negative_sampling_with_prepared_scored_ids():
    from tinygrad_nlp.sparse import Ids

    W = Parameter(rng.normal(size=(20, 3)))
    h = Variable(rng.normal(size=(4, 3)))
    target, neg = np.array([1, 2, 3, 4]), rng.integers(0, 20, size=(4, 2))
    ref = F.negative_sampling_loss(h, W, target, neg)
    scored = Ids(np.concatenate([target[:, None], neg], axis=1))
    assert float(F.negative_sampling_loss(h, W, target, neg, scored=scored).data) == pytest.approx(float(ref.data))
    with pytest.raises(ValueError, match="scored ids must be"):
        F.negative_sampling_loss(h, W, target[::-1].copy(), neg, scored=scored)
    with pytest.raises(ValueError, match="scored ids must be"):  # same targets, other negatives
        F.negative_sampling_loss(h, W, target, (neg + 1) % 20, scored=scored)


def test_softmax_cross_entropy_over_sequences_with_ignored_positions():
    """(N, T, V) scores with (N, T) labels: the mean over the kept positions, and their gradient,
    equal the flat (N*T, V) computation restricted to those rows (compared with PyTorch too)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 6)).astype(np.float32)
    t = rng.integers(0, 6, (2, 4))
    t[0, 1] = t[1, 3] = -1
    keep = t.ravel() != -1
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, t, ignore_index=-1)
    loss.backward()
    flat = x.reshape(-1, 6)[keep].astype(np.float64)
    logp = flat - flat.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert loss.dtype == np.float32
    assert float(loss.data) == pytest.approx(-logp[np.arange(keep.sum()), t.ravel()[keep]].mean(), rel=1e-6)
    g = xv.grad.data.reshape(-1, 6)
    assert np.all(g[~keep] == 0)
    expected = np.exp(logp)
    expected[np.arange(keep.sum()), t.ravel()[keep]] -= 1
    np.testing.assert_allclose(g[keep], expected / keep.sum(), rtol=1e-5, atol=1e-7)
    assert gradient_check(lambda v: F.softmax_cross_entropy(v, t, ignore_index=-1), x.astype(np.float64))
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.cross_entropy(torch.tensor(x).reshape(-1, 6), torch.tensor(t).reshape(-1), ignore_index=-1)
    assert float(loss.data) == pytest.approx(ref.item(), rel=1e-6)
    # A second backward over the same graph (the kept softmax was consumed) gives the same gradient.
    first = xv.grad.data.copy()
    xv.cleargrad()
    loss.backward()
    np.testing.assert_allclose(xv.grad.data, first, rtol=1e-6)
