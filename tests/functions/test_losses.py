"""tinygrad_nlp.functions.losses: softmax, softmax / sigmoid cross-entropy and negative sampling,
checked against finite differences and the book's hand-written layers, on both backends."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, Variable, viz
from tinygrad_nlp.gradcheck import gradient_check

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

rng = np.random.default_rng(7)


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
    """The book's SoftmaxCrossEntropy with a one-hot target (its +1e-7 aside)."""
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


def test_softmax_cross_entropy_accepts_the_books_int32_one_hot():
    x = rng.normal(size=(4, 3)).astype(np.float32)
    t = np.array([1, 2, 0, 2])
    onehot = np.eye(3, dtype=np.int32)[t]  # what the book's convert_one_hot returns
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


def test_softmax_cross_entropy_split_across_threads_equals_one_thread():
    from tinygrad_nlp import _threads
    from tinygrad_nlp.functions.losses import PARALLEL_MIN_SCORES

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(101, PARALLEL_MIN_SCORES // 100 + 7)) * 3).astype(np.float32)  # above the threshold
    t = rng.integers(0, x.shape[1], 101)
    results = []
    old = _threads.num_threads()
    try:
        for n in (1, 2):
            _threads.set_num_threads(n)
            xv = Variable(x)
            loss = F.softmax_cross_entropy(xv, t)
            loss.backward()
            results.append((float(loss.data), xv.grad.data))
    finally:
        _threads.set_num_threads(old)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    logp = x.astype(np.float64) - x.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert results[0][0] == pytest.approx(-logp[np.arange(101), t].mean(), rel=1e-5)


def _reference_cross_entropy(x, t):
    """Loss and gradient in float64 by the textbook route (subtract the row maximum first)."""
    x = x.astype(np.float64)
    logp = x - x.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    grad = np.exp(logp)
    grad[np.arange(len(t)), t] -= 1
    return -logp[np.arange(len(t)), t].mean(), grad / len(t)


def test_softmax_cross_entropy_rows_exponentiated_as_they_are_or_shifted():
    """Most rows are exponentiated without subtracting their maximum; rows whose sum would overflow
    (scores above ~88 in float32) or underflow (every score below ~-44) are shifted. Both kinds,
    mixed in one batch, give the textbook loss and gradient, without a floating-point warning."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 50)).astype(np.float32)
    x[1] += 95        # exp overflows
    x[2] -= 120       # every exp underflows to zero
    x[3] -= 60        # the sum is a denormal-range number: not trusted
    x[4, 7] = 88.5    # one large score: its sum is finite, but 1 / sum would be denormal
    x[5, 9] = 43.0    # large, and kept as it is
    t = np.array([0, 1, 2, 3, 7, 49])
    xv = Variable(x)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # tiny probabilities may underflow
        loss = F.softmax_cross_entropy(xv, t)
        (loss * 3.0).backward()  # an upstream gradient other than 1 scales the result
    ref_loss, ref_grad = _reference_cross_entropy(x, t)
    assert loss.dtype == xv.grad.dtype == np.float32
    assert float(loss.data) == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(xv.grad.data, 3 * ref_grad, rtol=1e-5, atol=1e-8)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(t))
    (ref * 3).backward()
    assert float(loss.data) == pytest.approx(ref.item(), rel=1e-6)
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_softmax_cross_entropy_without_a_graph_and_with_nan_scores():
    """Under no_grad the loss is the same and no (N, C) array is kept for a backward; a NaN score
    gives a NaN loss (for the Trainer's guard to catch), not an exception."""
    import tinygrad_nlp as tg

    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 30)).astype(np.float32)
    t = rng.integers(0, 30, 40)
    with tg.no_grad():
        loss = F.softmax_cross_entropy(x, t)
    assert loss.creator is None and float(loss.data) == float(F.softmax_cross_entropy(x, t).data)
    assert float(loss.data) == pytest.approx(_reference_cross_entropy(x, t)[0], rel=1e-6)
    x[5, 3] = np.nan
    with np.errstate(invalid="raise"):
        assert np.isnan(float(F.softmax_cross_entropy(x, t).data))


def test_softmax_cross_entropy_chunks_and_threads_over_a_language_model_batch():
    """(N, T, V) scores above the parallel threshold, rows not a multiple of the chunk: loss and
    gradient equal the float64 textbook values, with and without ignored positions."""
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(3, 37, 10_007)) * 4).astype(np.float32)
    t = rng.integers(0, 10_007, (3, 37))
    ref_loss, ref_grad = _reference_cross_entropy(x.reshape(-1, 10_007), t.ravel())
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, t)
    loss.backward()
    assert float(loss.data) == pytest.approx(ref_loss, rel=1e-6)
    np.testing.assert_allclose(xv.grad.data.reshape(-1, 10_007), ref_grad, rtol=1e-4, atol=1e-9)
    t[1, 5:9] = -100
    keep = t.ravel() != -100
    ref_loss, ref_grad = _reference_cross_entropy(x.reshape(-1, 10_007)[keep], t.ravel()[keep])
    xv = Variable(x)
    loss = F.softmax_cross_entropy(xv, t, ignore_index=-100)
    loss.backward()
    assert float(loss.data) == pytest.approx(ref_loss, rel=1e-6)
    g = xv.grad.data.reshape(-1, 10_007)
    assert np.all(g[~keep] == 0)
    np.testing.assert_allclose(g[keep], ref_grad, rtol=1e-4, atol=1e-9)
