"""Optimizers: exact update rules, sparse == dense on touched rows, lazy state, clipping, schedules."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, SparseRows, Variable
from tinygrad_nlp.optimizers import (
    SGD, AdaGrad, Adam, AdamW, LinearDecay, MomentumSGD, Optimizer, RMSprop, clip_grad_norm,
)

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

ALL = [SGD, MomentumSGD, AdaGrad, RMSprop, Adam, AdamW]
rng = np.random.default_rng(11)


def set_grad(p, g):
    p.grad = Variable(np.asarray(g, p.data.dtype))


def book_adam(params, grads, steps, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7):
    """The book's Adam, run on a list of arrays."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for it in range(1, steps + 1):
        lr_t = lr * np.sqrt(1.0 - beta2 ** it) / (1.0 - beta1 ** it)
        for i, p in enumerate(params):
            g = grads[it - 1][i]
            m[i] += (1 - beta1) * (g - m[i])
            v[i] += (1 - beta2) * (g ** 2 - v[i])
            p -= lr_t * m[i] / (np.sqrt(v[i]) + eps)
    return params


def test_adam_matches_the_seed_implementation():
    W0 = rng.normal(size=(4, 3))
    grads = [[rng.normal(size=(4, 3))] for _ in range(5)]
    W = Parameter(W0.copy())
    opt = Adam(lr=0.01, eps=1e-7).setup([W])
    for g in grads:
        set_grad(W, g[0])
        opt.update()
    (ref,) = book_adam([W0.copy()], grads, 5, lr=0.01)
    assert np.allclose(W.data, ref)


@pytest.mark.parametrize(
    "make, reference",
    [
        (lambda: SGD(lr=0.1), lambda w, gs: w - 0.1 * sum(gs)),
        (lambda: AdaGrad(lr=0.1, eps=1e-8), None),
        (lambda: MomentumSGD(lr=0.1, momentum=0.9), None),
    ],
)
def test_dense_rules(make, reference):
    w0 = rng.normal(size=5)
    gs = [rng.normal(size=5) for _ in range(3)]
    p = Parameter(w0.copy())
    opt = make().setup([p])
    for g in gs:
        set_grad(p, g)
        opt.update()
    if isinstance(opt, SGD):
        expected = reference(w0, gs)
    elif isinstance(opt, AdaGrad):
        expected, h = w0.copy(), np.zeros(5)
        for g in gs:
            h += g * g
            expected -= 0.1 * g / (np.sqrt(h) + 1e-8)
    else:
        expected, vel = w0.copy(), np.zeros(5)
        for g in gs:
            vel = 0.9 * vel - 0.1 * g
            expected += vel
    assert np.allclose(p.data, expected)


@pytest.mark.parametrize("cls", ALL)
def test_sparse_update_equals_dense_update_when_every_row_is_touched(cls):
    V, H = 6, 3
    W0 = rng.normal(size=(V, H)).astype(np.float32)
    grads = [rng.normal(size=(V, H)).astype(np.float32) for _ in range(4)]
    dense, sparse = Parameter(W0.copy()), Parameter(W0.copy())
    o1, o2 = cls(lr=0.05).setup([dense]), cls(lr=0.05).setup([sparse])
    for g in grads:
        set_grad(dense, g)
        sparse.grad = SparseRows(np.arange(V), g, (V, H), coalesced=True)
        o1.update()
        o2.update()
    assert sparse.data.dtype == np.float32
    assert np.allclose(dense.data, sparse.data, atol=1e-6)


@pytest.mark.parametrize("cls", ALL)
def test_sparse_update_touches_only_its_rows_and_keeps_other_state(cls):
    V, H = 8, 2
    W = Parameter(rng.normal(size=(V, H)))
    opt = cls(lr=0.1).setup([W])
    W.grad = SparseRows(np.array([1, 5]), np.ones((2, H)), (V, H))
    opt.update()
    after_first = W.data.copy()
    state_before = {k: v.copy() for k, v in opt.state[id(W)].items()}
    W.grad = SparseRows(np.array([5]), np.ones((1, H)), (V, H))
    opt.update()
    untouched = [i for i in range(V) if i != 5]
    assert np.array_equal(W.data[untouched], after_first[untouched])  # row 1 keeps its value (lazy)
    for k, v in opt.state[id(W)].items():
        assert np.array_equal(v[untouched], state_before[k][untouched])  # its state is not decayed


def test_sparse_adam_lazy_semantics_against_a_hand_computation():
    W = Parameter(np.zeros((3, 1)))
    opt = Adam(lr=0.1, eps=1e-12).setup([W])  # eps > 0 is required; this one is below the tolerance
    W.grad = SparseRows(np.array([0, 2]), np.array([[1.0], [2.0]]), (3, 1))
    opt.update()
    # Step 1: m = 0.1 g, v = 0.001 g^2, step size = lr * sqrt(1 - 0.999) / (1 - 0.9); update = lr * sign(g).
    assert np.allclose(W.data.ravel(), [-0.1, 0.0, -0.1])
    W.grad = SparseRows(np.array([2]), np.array([[2.0]]), (3, 1))
    opt.update()
    m = 0.9 * 0.2 + 0.1 * 2.0
    v = 0.999 * 0.004 + 0.001 * 4.0
    step = 0.1 * np.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2)
    assert np.allclose(W.data.ravel(), [-0.1, 0.0, -0.1 - step * m / np.sqrt(v)])


def test_update_does_not_modify_the_gradients():
    W = Parameter(rng.normal(size=(4, 2)))
    values = np.ones((2, 2))
    W.grad = SparseRows(np.array([0, 3]), values.copy(), (4, 2), coalesced=True)
    Adam(lr=0.1).setup([W]).update()
    assert np.array_equal(W.grad.values, values)
    dense = Parameter(rng.normal(size=3))
    dense.grad = Variable(np.ones(3))
    SGD(lr=0.1).setup([dense]).update()
    assert np.array_equal(dense.grad.data, np.ones(3))


def test_clip_grad_norm_dense_and_sparse_together():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros((4, 1)))
    a.grad = Variable(np.array([3.0, 0.0]))
    b.grad = SparseRows(np.array([1]), np.array([[4.0]]), (4, 1))
    norm = clip_grad_norm([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    assert np.allclose(a.grad.data, [0.6, 0.0])
    assert np.allclose(b.grad.values, [[0.8]])
    assert clip_grad_norm([a, b], 10.0) == pytest.approx(1.0)  # under the limit: unchanged
    assert np.allclose(a.grad.data, [0.6, 0.0])


def test_optimizer_clip_norm_option_and_weight_decay():
    p = Parameter(np.array([1.0, -1.0]))
    set_grad(p, [30.0, 40.0])
    SGD(lr=1.0, clip_norm=5.0).setup([p]).update()
    assert np.allclose(p.data, [1.0 - 3.0, -1.0 - 4.0])
    q = Parameter(np.array([2.0]))
    set_grad(q, [0.0])
    SGD(lr=0.5, weight_decay=0.1).setup([q]).update()
    assert np.allclose(q.data, [2.0 - 0.5 * 0.1 * 2.0])
    r = Parameter(np.full((3, 1), 2.0))
    r.grad = SparseRows(np.array([1]), np.zeros((1, 1)), (3, 1))
    SGD(lr=0.5, weight_decay=0.1).setup([r]).update()
    assert np.allclose(r.data.ravel(), [2.0, 1.9, 2.0])  # decay only on the touched row


def test_linear_decay_schedule():
    sched = LinearDecay(1.0, 0.0, total_steps=10)
    assert sched(0) == 1.0 and sched(5) == 0.5 and sched(10) == 0.0 and sched(20) == 0.0
    p = Parameter(np.zeros(1))
    opt = SGD(lr=LinearDecay(1.0, 0.0)).setup([p])
    opt.set_total_steps(4)
    lrs = []
    for _ in range(4):
        lrs.append(opt.lr)
        set_grad(p, [1.0])
        opt.update()
    assert lrs == [1.0, 0.75, 0.5, 0.25]
    assert np.allclose(p.data, [-2.5])
    with pytest.raises(ValueError):
        LinearDecay(0.0)


def test_bad_hyperparameters_and_missing_setup():
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        SGD(lr=0)
    with pytest.raises(ValueError, match="weight_decay"):
        Adam(weight_decay=-1)
    with pytest.raises(RuntimeError, match="setup"):
        SGD().update()


def test_adam_minimises_a_quadratic():
    target = np.array([3.0, -2.0])
    x = Parameter(np.zeros(2))
    opt = Adam(lr=0.1).setup([x])
    for _ in range(500):
        x.cleargrad()
        F.sum((x - target) ** 2).backward()
        opt.update()
    assert np.allclose(x.data, target, atol=1e-3)


def test_state_dict_round_trip():
    from tinygrad_nlp.layers import Embedding

    emb = Embedding(5, 2, sparse=True, rng=0)
    opt = Adam(lr=0.1).setup(emb)
    emb.W.grad = SparseRows(np.array([1, 2]), np.ones((2, 2)), (5, 2))
    opt.update()
    state = opt.state_dict()
    assert set(state) == {"__step__", "W/m", "W/v"}
    opt2 = Adam(lr=0.1).setup(emb)
    opt2.load_state_dict(state)
    assert opt2.step == 1 and np.array_equal(opt2.state[id(emb.W)]["m"], opt.state[id(emb.W)]["m"])
    with pytest.raises(ValueError, match="unknown parameter"):
        opt2.load_state_dict({"__step__": np.array(1), "nope/m": np.zeros(1)})


@pytest.mark.parametrize("cls", ALL)
def test_update_never_writes_non_finite_weights(cls):
    W = Parameter(np.ones((4, 2)), name="W")
    other = Parameter(np.ones(2), name="b")
    opt = cls(lr=0.1).setup([W, other])
    W.grad = SparseRows(np.array([0, 2]), np.array([[1.0, np.nan], [1.0, 1.0]]), (4, 2))
    other.grad = Variable(np.ones(2))
    state_before = {k: v.copy() for k, v in opt.init_state(W).items()}
    with pytest.raises(FloatingPointError, match="gradient of parameter 'param0'"):
        opt.update()
    assert np.all(W.data == 1)  # the refused parameter keeps its weights and its state
    assert all(np.array_equal(opt.state.get(id(W), state_before)[k], v) for k, v in state_before.items())
    assert np.all(np.isfinite(other.data))
    if cls is SGD:  # a finite gradient whose update overflows
        opt = SGD(lr=1e308).setup([W, other])
        W.grad = Variable(np.full((4, 2), 1e308))
        with pytest.raises(FloatingPointError, match="would make parameter 'param0'"):
            with np.errstate(over="ignore"):
                opt.update()
        assert np.all(W.data == 1) and np.all(np.isfinite(other.data))


def _torch_steps(make_torch, w0, grads):
    torch = pytest.importorskip("torch")
    w = torch.tensor(w0.copy(), requires_grad=True)
    opt = make_torch(torch, [w])
    for g in grads:
        w.grad = torch.tensor(g)
        opt.step()
    return w.detach().numpy()


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("ours, theirs", [
    (lambda: RMSprop(lr=0.01, alpha=0.9, eps=1e-8), lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-8)),
    # eps far below sqrt(v): PyTorch adds it after the bias correction, Adam's efficient form before.
    (lambda: AdamW(lr=0.01, weight_decay=0.1, eps=1e-12),
     lambda torch, ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-12)),
])
def test_rmsprop_and_adamw_match_pytorch(ours, theirs, sparse):
    w0 = rng.normal(size=(6, 4))
    grads = [rng.normal(size=(6, 4)) for _ in range(5)]
    W = Parameter(w0.copy())
    opt = ours().setup([W])
    for g in grads:  # every row touched: the lazy sparse update is the dense one
        W.grad = SparseRows(np.arange(6), g, W.shape) if sparse else Variable(g)
        opt.update()
    np.testing.assert_allclose(W.data, _torch_steps(theirs, w0, grads), rtol=1e-7, atol=1e-9)


def test_adamw_decay_is_decoupled_from_the_moments():
    """With a zero gradient Adam's moments stay 0 and only the decay moves the weights."""
    W = Parameter(np.full((2, 3), 2.0))
    opt = AdamW(lr=0.1, weight_decay=0.5).setup([W])
    W.grad = Variable(np.zeros((2, 3)))
    opt.update()
    np.testing.assert_allclose(W.data, 2.0 * (1 - 0.1 * 0.5))
    assert not opt.state[id(W)]["m"].any() and not opt.state[id(W)]["v"].any()


class SignSGD(Optimizer):
    """A newcomer's optimizer: a state, one rule, no kernel code."""

    def __init__(self, lr=0.1, beta=0.5):
        super().__init__(lr)
        self.beta = beta

    def init_state(self, param):
        return {"m": np.zeros_like(param.data)}

    def hyper(self, lr):
        return lr, self.beta

    @staticmethod
    def rule(w, g, m, h):
        m = m * h[1] + g
        return w - h[0] * ((m > 0) * 1.0 - (m < 0) * 1.0), m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_new_optimizer_is_a_state_and_a_rule(dtype):
    W = Parameter(np.zeros((5, 2), dtype))
    opt = SignSGD(lr=0.25).setup([W])
    W.grad = SparseRows(np.array([1, 3]), np.array([[1.0, -2.0], [0.0, 3.0]], dtype), W.shape)
    opt.update()
    W.grad = Variable(np.full((5, 2), -0.1, dtype))  # then a dense step
    opt.update()
    assert W.data.dtype == dtype
    np.testing.assert_allclose(W.data, [[0.25, 0.25], [-0.5, 0.5], [0.25, 0.25], [0.25, -0.5], [0.25, 0.25]])
    np.testing.assert_allclose(opt.state[id(W)]["m"][1], [0.4, -1.1], rtol=1e-6)


def test_an_optimizer_without_a_rule_says_so():
    class Nothing(Optimizer):
        pass

    W = Parameter(np.ones(3))
    W.grad = Variable(np.ones(3))
    with pytest.raises(TypeError, match="Nothing defines no rule"):
        Nothing(lr=0.1).setup([W]).update()


@pytest.mark.parametrize("make", [lambda: SGD(lr=0.5), lambda: MomentumSGD(lr=0.1), lambda: AdaGrad(lr=0.1),
                                  lambda: Adam(lr=0.01), lambda: RMSprop(lr=0.01), lambda: AdamW(lr=0.01),
                                  lambda: SGD(lr=0.5, clip_norm=0.01, weight_decay=0.1)])
def test_a_tied_weight_gets_the_sum_of_its_sparse_and_dense_gradients(make):
    """An embedding tied to an output layer: its Parameter receives a row-sparse gradient (the
    lookup) plus a dense one (the scores); every optimizer must apply the sum, as with dense
    lookups."""
    V, H = 12, 4
    W0 = rng.normal(size=(V, H)).astype(np.float32)
    ids = np.array([[1, 3, 3], [0, 11, 3]])
    labels = np.array([[2, 3, 4], [5, 6, 7]])
    results = []
    for sparse in (True, False):
        W = Parameter(W0.copy(), name="W")
        opt = make().setup([W])
        for _ in range(3):
            h = F.tanh(F.embedding(W, ids, sparse=sparse))
            loss = F.softmax_cross_entropy(F.matmul(h, F.transpose(W)), labels)
            W.cleargrad()
            loss.backward()
            assert W.grad.shape == (V, H)
            opt.update()
        results.append(W.data.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(results[0], W0)


# ----- hyperparameters are checked where they are given -----
@pytest.mark.parametrize("make, pattern", [
    (lambda: Adam(clip_norm=-1), "Adam: clip_norm must be a finite number > 0 \\(got -1\\)"),
    (lambda: SGD(clip_norm=0), "SGD: clip_norm must be a finite number > 0 \\(got 0\\)"),
    (lambda: SGD(lr=float("nan")), "SGD: lr must be a finite number > 0 \\(got nan\\)"),
    (lambda: Adam(lr=float("inf")), "Adam: lr must be a finite number > 0"),
    (lambda: Adam(lr="0.1"), "Adam: lr must be a finite number > 0"),
    (lambda: Adam(beta1=1.0), "Adam: beta1 must be in \\[0, 1\\) \\(got 1.0\\)"),
    (lambda: Adam(beta2=-0.1), "Adam: beta2 must be in \\[0, 1\\)"),
    (lambda: Adam(eps=0), "Adam: eps must be a finite number > 0"),
    (lambda: AdaGrad(eps=-1e-8), "AdaGrad: eps must be a finite number > 0"),
    (lambda: RMSprop(alpha=1.5), "RMSprop: alpha must be in \\[0, 1\\)"),
    (lambda: MomentumSGD(momentum=1.0), "MomentumSGD: momentum must be in \\[0, 1\\)"),
    (lambda: SGD(weight_decay=-0.1), "SGD: weight_decay must be a finite number >= 0"),
    (lambda: AdamW(weight_decay=float("nan")), "AdamW: weight_decay must be a finite number >= 0"),
    (lambda: LinearDecay(0.1, total_steps=0), "LinearDecay: total_steps must be an integer >= 1"),
    (lambda: LinearDecay(float("inf")), "LinearDecay: start must be a finite number > 0"),
])
def test_optimizers_check_their_hyperparameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


# ----- a step is all or nothing when a gradient is not finite -----
@pytest.mark.parametrize("cls", ALL)
def test_a_non_finite_gradient_changes_no_parameter_state_or_step(cls):
    a = Parameter(np.ones((3, 2), np.float32), name="a")
    b = Parameter(np.ones((4, 2), np.float32), name="b")
    opt = cls(lr=0.1).setup([a, b])
    set_grad(a, np.full((3, 2), 0.5))
    set_grad(b, np.full((4, 2), 0.5))
    opt.update()
    before = (a.data.copy(), b.data.copy(), {k: {f: v.copy() for f, v in st.items()} for k, st in opt.state.items()})
    set_grad(a, np.full((3, 2), 0.25))  # a comes first and is fine; b's gradient is not finite
    bad = np.full((4, 2), 0.25)
    bad[2, 1] = np.nan
    set_grad(b, bad)
    with pytest.raises(FloatingPointError, match="parameter 'param1'.*no parameter was updated"):
        opt.update()
    assert np.array_equal(a.data, before[0]) and np.array_equal(b.data, before[1])
    assert opt.step == 1
    for k, st in opt.state.items():
        for f, v in st.items():
            assert np.array_equal(v, before[2][k][f])


def test_a_sparse_non_finite_gradient_changes_nothing():
    dense = Parameter(np.ones((2, 2), np.float32))
    table = Parameter(np.ones((5, 2), np.float32))
    opt = Adam(lr=0.1).setup([dense, table])
    set_grad(dense, np.ones((2, 2)))
    table.grad = SparseRows(np.array([1, 3]), np.array([[1.0, np.inf], [1.0, 1.0]], np.float32), (5, 2))
    with pytest.raises(FloatingPointError, match="no parameter was updated"):
        opt.update()
    assert np.array_equal(dense.data, np.ones((2, 2))) and opt.step == 0 and not opt.state


# ----- state loading: what a run could have saved -----
def _adam_state():
    a = Parameter(np.ones((3, 2), np.float32), name="a")
    opt = Adam(lr=0.1).setup([a])
    set_grad(a, np.full((3, 2), 0.5))
    opt.update()
    return opt.state_dict(), a


@pytest.mark.parametrize("change, pattern", [
    (lambda s: s.pop("param0/m"), "'param0/m' is missing"),
    (lambda s: s.update({"__step__": np.array(-1)}), "'__step__' must be a non-negative integer"),
    (lambda s: s.update({"__step__": np.array([1, 2])}), "'__step__' must be a non-negative integer"),
    (lambda s: s.update({"param0/v": s["param0/v"].astype(np.complex64)}), "'param0/v' holds complex64"),
    (lambda s: s.update({"param0/m": np.full((3, 2), np.nan, np.float32)}), "'param0/m' holds NaN"),
    (lambda s: s.update({"param0/m": np.full((3, 2), 1e300)}), "beyond the range of float32"),
    (lambda s: s.update({"param0/m": np.zeros((2, 2), np.float32)}), "'param0/m' has shape \\(2, 2\\)"),
    (lambda s: s.update({"param0/x": np.zeros((3, 2), np.float32)}), "Adam keeps no 'x'"),
])
def test_load_state_dict_refuses_what_no_run_saves_and_changes_nothing(change, pattern):
    saved, a = _adam_state()
    change(saved)
    b = Parameter(np.ones((3, 2), np.float32), name="a")
    opt = Adam(lr=0.1).setup([b])
    with pytest.raises(ValueError, match=pattern):
        opt.load_state_dict(saved)
    assert opt.step == 0 and opt.state == {}


@pytest.mark.parametrize("sizes, sparse, pooled", [
    ((300_000, 300_000), False, False),  # dense and below PARALLEL_MIN_DENSE_ELEMENTS: one thread
    ((300_000, 300_000), True, True),    # sparse rows wait on memory: a second thread overlaps them
    ((50_000, 50_000), True, False),     # below PARALLEL_MIN_ELEMENTS: one thread
])
def test_updates_share_the_threads_only_where_it_pays(sizes, sparse, pooled, monkeypatch):
    from tinygrad_nlp import _threads, optimizers

    monkeypatch.setattr(_threads, "_num_threads", 2)
    calls = []
    real = _threads.run_parallel
    monkeypatch.setattr(_threads, "run_parallel", lambda tasks: calls.append(1) or real(tasks))
    params = [Parameter(np.zeros((n // 100, 100), dtype=np.float32)) for n in sizes]
    for p in params:
        rows = np.arange(p.shape[0])
        g = np.ones(p.shape, dtype=np.float32)
        p.grad = SparseRows(rows, g, p.shape) if sparse else Variable(g)
    Adam(lr=0.1).setup(params).update()
    assert bool(calls) is pooled
    assert all(np.allclose(p.data, -0.1) for p in params)
    monkeypatch.setattr(optimizers, "PARALLEL_MIN_DENSE_ELEMENTS", 500_000)
    if not sparse and sum(sizes) >= 500_000:
        calls.clear()
        Adam(lr=0.1).setup(params).update()
        assert calls
