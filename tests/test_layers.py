"""Layers: parameter collection, forward passes and safe weight files."""

import zipfile

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, SparseRows
from tinygrad_nlp.gradcheck import gradient_check
from tinygrad_nlp.layers import Embedding, Layer, Linear, load_npz, save_npz


class TwoLayer(Layer):
    def __init__(self):
        super().__init__()
        self.l1 = Linear(3, 4, rng=0)
        self.l2 = Linear(4, 2, nobias=True, rng=1)
        self.scale = Parameter(np.ones(1, np.float32), name="scale")
        self.not_a_param = np.zeros(3)

    def forward(self, x):
        return self.l2(F.tanh(self.l1(x))) * self.scale


def test_layer_collects_parameters_recursively_in_order():
    net = TwoLayer()
    names = list(net.named_params())
    assert names == ["l1.W", "l1.b", "l2.W", "scale"]
    assert len(list(net.params())) == 4
    del net.scale
    assert "scale" not in net.named_params()


def test_layer_without_super_init_is_explained():
    class Bad(Layer):
        def __init__(self):
            self.W = Parameter(np.ones(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Bad()


def test_cleargrads_resets_every_parameter():
    net = TwoLayer()
    F.sum(net(np.ones((2, 3), np.float32))).backward()
    assert all(p.grad is not None for p in net.params())
    net.cleargrads()
    assert all(p.grad is None for p in net.params())


def test_linear_values_and_gradients():
    lin = Linear(3, 2, W=np.arange(6.0).reshape(3, 2), dtype=np.float64)
    x = np.array([[1.0, 0.0, -1.0]])
    assert np.allclose(lin(x).data, x @ lin.W.data)
    gradient_check(lambda W, b, xx: F.linear(xx, W, b), lin.W.data, np.ones(2), np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"W must have shape \(3, 2\)"):
        Linear(3, 2, W=np.ones((2, 3)))


def test_embedding_layer_lookup_bag_and_dot():
    emb = Embedding(6, 3, sparse=True, rng=0)
    assert emb.W.dtype == np.float32 and emb.W.shape == (6, 3)
    ids = np.array([[0, 5], [2, 2]])
    assert np.allclose(emb(ids).data, emb.W.data[ids])
    assert np.allclose(emb.bag(ids).data, emb.W.data[ids].mean(axis=1))
    h = np.ones((2, 3), np.float32)
    assert np.allclose(emb.dot(h, np.array([1, 4])).data, emb.W.data[[1, 4]].sum(axis=1))
    F.sum(emb.bag(ids)).backward()
    assert isinstance(emb.W.grad, SparseRows)
    with pytest.raises(ValueError, match=r"\(6, 3\)"):
        Embedding(6, 3, W=np.ones((3, 6)))


def test_save_and_load_weights_round_trip(tmp_path):
    net = TwoLayer()
    path = tmp_path / "w.npz"
    net.save_weights(path)
    other = TwoLayer()
    for p in other.params():
        p.data = np.zeros_like(p.data)
    other.load_weights(path)
    for (k, a), (_, b) in zip(net.named_params().items(), other.named_params().items()):
        assert np.array_equal(a.data, b.data) and a.data.dtype == b.data.dtype, k


def test_load_weights_names_missing_extra_and_wrong_shapes(tmp_path):
    net = TwoLayer()
    path = tmp_path / "w.npz"
    arrays = {k: p.data for k, p in net.named_params().items()}
    arrays.pop("scale")
    arrays["l1.W"] = np.zeros((5, 5), np.float32)
    arrays["bogus"] = np.zeros(1)
    save_npz(path, arrays)
    before = {k: p.data.copy() for k, p in net.named_params().items()}
    with pytest.raises(ValueError) as info:
        net.load_weights(path)
    msg = str(info.value)
    assert str(path) in msg and "missing ['scale']" in msg and "unexpected ['bogus']" in msg and "l1.W" in msg
    for k, p in net.named_params().items():  # nothing was modified
        assert np.array_equal(p.data, before[k])


def test_loading_refuses_pickled_object_arrays(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_npz(path)
    with pytest.raises(TypeError, match="pickle"):
        save_npz(tmp_path / "o.npz", {"x": np.array([None], dtype=object)})


def test_loading_corrupt_truncated_or_missing_files(tmp_path):
    net = TwoLayer()
    good = tmp_path / "good.npz"
    net.save_weights(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        net.load_weights(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        net.load_weights(garbage)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        net.load_weights(tmp_path / "nope.npz")
    assert zipfile.is_zipfile(good)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "w.npz"
    save_npz(path, {"a": np.ones(3)})
    before = path.read_bytes()

    class Exploding:
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_npz(path, {"a": np.zeros(3), "b": Exploding()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left behind


# ----- recurrent layers -----
from tinygrad_nlp import Variable, test_mode  # noqa: E402
from tinygrad_nlp.layers import GRU, LSTM, RNN  # noqa: E402

RECURRENT = [LSTM, GRU, RNN]


def _copy_into_torch(torch, layer, module):
    with torch.no_grad():
        for i, cell in enumerate(layer.cells):
            getattr(module, f"weight_ih_l{i}").copy_(torch.tensor(cell.W_x.data.T))
            getattr(module, f"weight_hh_l{i}").copy_(torch.tensor(cell.W_h.data.T))
            getattr(module, f"bias_ih_l{i}").copy_(torch.tensor(cell.b.data))
            b_h = cell.b_h.data if isinstance(layer, GRU) else np.zeros_like(cell.b.data)
            getattr(module, f"bias_hh_l{i}").copy_(torch.tensor(b_h))


@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_layers_match_pytorch_over_two_layers(cls):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    N, T, D, H = 3, 5, 4, 6
    xs = rng.normal(size=(N, T, D)).astype(np.float32)
    layer = cls(D, H, num_layers=2, rng=1, init_scale=0.5)
    module = {LSTM: torch.nn.LSTM, GRU: torch.nn.GRU, RNN: torch.nn.RNN}[cls](D, H, num_layers=2, batch_first=True)
    _copy_into_torch(torch, layer, module)
    x = Variable(xs)
    ys = layer(x)
    assert ys.shape == (N, T, H) and ys.dtype == np.float32
    w = rng.normal(size=ys.shape).astype(np.float32)
    (ys * w).sum().backward()
    tx = torch.tensor(xs, requires_grad=True)
    ty, _ = module(tx)
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ys.data, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    for i, cell in enumerate(layer.cells):
        np.testing.assert_allclose(cell.W_h.grad.data, getattr(module, f"weight_hh_l{i}").grad.numpy().T,
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cell.W_x.grad.data, getattr(module, f"weight_ih_l{i}").grad.numpy().T,
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cell.b.grad.data, getattr(module, f"bias_ih_l{i}").grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_layer_gradients_against_finite_differences(cls):
    xs = np.random.default_rng(2).normal(size=(2, 3, 3))
    layer = cls(3, 4, num_layers=2, dtype=np.float64, rng=3)
    assert gradient_check(lambda v: layer(v), xs)
    h0 = np.random.default_rng(4).normal(size=(2, 4))
    state = (lambda h: [(h, h * 0.5), (h, h)]) if cls is LSTM else (lambda h: [h, h * 2.0])
    assert gradient_check(lambda h: layer(xs, state=state(h)), h0)


@pytest.mark.parametrize("cls", RECURRENT)
def test_state_contract_one_call_equals_two_halves(cls):
    xs = np.random.default_rng(5).normal(size=(2, 6, 3)).astype(np.float32)
    full = cls(3, 4, num_layers=2, rng=0)
    ys = full(xs).data
    assert len(full.state) == 2
    for s in full.state:
        parts = s if cls is LSTM else (s,)
        assert isinstance(s, tuple) == (cls is LSTM)
        assert all(isinstance(p, Variable) and p.shape == (2, 4) for p in parts)
    np.testing.assert_allclose((full.state[-1][0] if cls is LSTM else full.state[-1]).data, ys[:, -1])
    # Passing the state explicitly, and carrying it with stateful=True, both continue the sequence.
    halves = cls(3, 4, num_layers=2, rng=0)
    first = halves(xs[:, :3]).data
    second = halves(xs[:, 3:], state=halves.state).data
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), ys, rtol=1e-5, atol=1e-6)
    stateful = cls(3, 4, num_layers=2, rng=0, stateful=True)
    got = np.concatenate([stateful(xs[:, :3]).data, stateful(xs[:, 3:]).data], axis=1)
    np.testing.assert_allclose(got, ys, rtol=1e-5, atol=1e-6)
    stateful.reset_state()
    np.testing.assert_allclose(stateful(xs[:, :3]).data, first, rtol=1e-6)


@pytest.mark.parametrize("cls", RECURRENT)
def test_stateful_layer_cuts_all_carried_state(cls):
    layer = cls(3, 4, stateful=True, rng=0)
    x1 = Variable(np.ones((2, 2, 3), np.float32))
    layer(x1)
    carried = layer.state[0] if cls is LSTM else (layer.state[0],)
    assert all(v.creator is None for v in carried)  # h and, for an LSTM, c as well
    x2 = Variable(np.ones((2, 2, 3), np.float32))
    layer(x2).sum().backward()
    assert x1.grad is None and x2.grad is not None


def test_non_stateful_state_stays_live_for_an_encoder_decoder():
    enc, dec = LSTM(3, 4, rng=0), LSTM(3, 4, rng=1)
    x = Variable(np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32))
    enc(x)
    h, c = enc.state[0]
    assert h.creator is not None and c.creator is not None
    dec(np.ones((2, 3, 3), np.float32), state=enc.state).sum().backward()
    assert x.grad is not None and np.abs(x.grad.data).sum() > 0
    # A bare (h, c) is accepted for one layer and gives the same result as the list form.
    np.testing.assert_allclose(dec(np.ones((2, 3, 3)), state=(h, c)).data,
                               dec(np.ones((2, 3, 3)), state=[(h, c)]).data)


def test_recurrent_layer_rejects_bad_input_and_state():
    layer = LSTM(3, 4, num_layers=2, stateful=True, rng=0)
    with pytest.raises(ValueError, match=r"input must have shape \(N, T, 3\)"):
        layer(np.ones((2, 5, 2)))
    with pytest.raises(ValueError, match="must be a list of 2 entries"):
        layer(np.ones((2, 5, 3)), state=(np.zeros((2, 4)), np.zeros((2, 4))))
    layer(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=r"needs \(1, 4\); call reset_state\(\)"):
        layer(np.ones((1, 5, 3)))
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        GRU(3, 0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        RNN(3, 4, dropout=1.0)


def _window_results(cls, unrolled_mode, stateful, D=3, H=5):
    """Two windows of a two-layer layer with dropout, from the same seeds: the outputs, the last
    states, and the gradients of the inputs and every weight after the second window."""
    from contextlib import nullcontext

    from tinygrad_nlp import unrolled

    rng = np.random.default_rng(7)
    layer = cls(D, H, num_layers=2, dropout=0.3, stateful=stateful, rng=11)
    xs = [Variable(rng.normal(size=(2, 4, D)).astype(np.float32)) for _ in range(2)]
    w = rng.normal(size=(2, 4, H)).astype(np.float32)
    outs = []
    with unrolled() if unrolled_mode else nullcontext():
        for x in xs:  # the second window continues the first: carried (stateful) or passed live
            ys = layer(x) if stateful or not outs else layer(x, state=layer.state)
            outs.append(ys.data.copy())
        (ys * w).sum().backward()
    states = [v.data for s in layer.state for v in (s if isinstance(s, tuple) else (s,))]
    grads = [x.grad.data for x in xs if x.grad is not None] + [p.grad.data for p in layer.params()]
    nodes = {type(f).__name__ + ("" if getattr(f, "projected", True) else " unprojected") for f in _creators(ys)}
    return outs, states, grads, nodes


def _creators(v):
    seen, stack = [], [v.creator]
    while stack:
        f = stack.pop()
        if f is None or any(f is g for g in seen):
            continue
        seen.append(f)
        stack.extend(x.creator for x in f.inputs)
    return seen


@pytest.mark.parametrize("stateful", [False, True])
@pytest.mark.parametrize("cls", RECURRENT)
def test_unrolled_mode_gives_the_values_and_gradients_of_the_sequence_node(cls, stateful, impl):
    seq_outs, seq_states, seq_grads, seq_nodes = _window_results(cls, False, stateful)
    unr_outs, unr_states, unr_grads, unr_nodes = _window_results(cls, True, stateful)
    name = cls.__name__
    assert f"{name}Sequence" in seq_nodes and f"{name}Cell" not in seq_nodes
    assert f"{name}Cell" in unr_nodes and f"{name}Sequence" not in unr_nodes
    # the same gate primitives on the same products: the forward values are equal bit for bit
    for a, b in zip(seq_outs + seq_states, unr_outs + unr_states):
        np.testing.assert_array_equal(a, b)
    # a stateful layer cuts the graph between windows: only the second window's input has a
    # gradient; a live state passed on lets it reach the first window's input too
    n_params = len(list(cls(3, 5, num_layers=2).params()))
    assert len(seq_grads) == len(unr_grads) == n_params + (1 if stateful else 2)
    for a, b in zip(seq_grads, unr_grads):  # W_h's gradient: one product against a sum of T
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stateful", [False, True])
def test_an_lstm_with_a_narrow_input_puts_it_into_each_steps_product(stateful, impl):
    """An input of at most H/8 features skips the projection (``lstm_sequence(x, ..., W_x=, b=)``);
    the second layer, H wide, is projected first. Values and gradients are those of the unrolled
    cells up to rounding: the product sums ``x W_x`` and ``h W_h`` in one go."""
    seq = _window_results(LSTM, False, stateful, D=2, H=16)
    unr = _window_results(LSTM, True, stateful, D=2, H=16)
    assert {"LSTMSequence unprojected", "LSTMSequence"} <= seq[3]
    for a, b in zip(seq[0] + seq[1] + seq[2], unr[0] + unr[1] + unr[2]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_narrow_lstm_input_beside_a_constant_equals_joining_it_to_every_step():
    rng = np.random.default_rng(9)
    N, T, C, D, H = 3, 4, 5, 2, 16
    layer = LSTM(C + D, H, rng=1, dtype=np.float64)
    xs, constant = rng.normal(size=(N, T, D)), rng.normal(size=(N, C))
    joined = np.concatenate([np.broadcast_to(constant[:, None], (N, T, C)), xs], axis=2)
    ys = layer(xs, constant=constant)
    assert not ys.creator.inputs[0].creator.projected  # the constant became a bias row per sequence
    np.testing.assert_allclose(ys.data, layer(joined).data, rtol=1e-12, atol=1e-13)
    assert gradient_check(lambda c, x: layer(x, constant=c), constant, xs)
    grads = []
    for inputs in ((xs,), (joined,)):  # joined: 7 features, projected first
        layer.cleargrads()
        layer(*inputs, constant=constant if inputs[0] is xs else None).sum().backward()
        grads.append([p.grad.data.copy() for p in layer.params()])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cls", RECURRENT)
def test_a_constant_input_equals_joining_it_to_every_step(cls):
    rng = np.random.default_rng(8)
    N, T, C, D, H = 3, 4, 2, 3, 5
    layer = cls(C + D, H, num_layers=2, rng=1, dtype=np.float64)
    xs, constant = rng.normal(size=(N, T, D)), rng.normal(size=(N, C))
    joined = np.concatenate([np.broadcast_to(constant[:, None], (N, T, C)), xs], axis=2)
    np.testing.assert_allclose(layer(xs, constant=constant).data, layer(joined).data, rtol=1e-12, atol=1e-13)
    assert gradient_check(lambda c: layer(xs, constant=c), constant)
    with pytest.raises(ValueError, match=r"input must have shape \(N, T, 3\) \(input_size 5 minus the constant's 2\)"):
        layer(joined, constant=constant)
    with pytest.raises(ValueError, match=r"constant must have shape \(N, C\) with N = 3 rows"):
        layer(xs, constant=constant[:2])


def test_dropout_acts_between_layers_in_training_only():
    xs = np.random.default_rng(1).normal(size=(4, 3, 5)).astype(np.float32)
    plain = LSTM(5, 8, num_layers=2, rng=0)
    dropped = LSTM(5, 8, num_layers=2, dropout=0.5, rng=0)
    with test_mode():
        np.testing.assert_allclose(dropped(xs).data, plain(xs).data)
    assert not np.allclose(dropped(xs).data, plain(xs).data)
    one = LSTM(5, 8, num_layers=1, dropout=0.5, rng=0)  # nothing between layers to drop
    np.testing.assert_allclose(one(xs).data, LSTM(5, 8, rng=0)(xs).data)
@pytest.mark.parametrize("make, pattern", [
    (lambda: Linear(0, 3), "Linear: in_size must be an integer >= 1 \\(got 0\\)"),
    (lambda: Linear(3, 2.0), "Linear: out_size must be an integer"),
    (lambda: Linear(3, 2, dtype=np.float16), "Linear: dtype must be float32 or float64 \\(got float16\\)"),
    (lambda: Embedding(0, 3), "Embedding: vocab_size must be an integer >= 1"),
    (lambda: Embedding(5, -1), "Embedding: dim must be an integer >= 1"),
    (lambda: Embedding(5, 3, dtype="int64"), "Embedding: dtype must be float32 or float64"),
    (lambda: Embedding(5, 3, scale=float("inf")), "Embedding: scale must be a finite number >= 0"),
    (lambda: Embedding(5, 3, sparse="yes"), "Embedding: sparse must be True or False"),
])
def test_layers_check_their_sizes_and_dtype(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize("value, pattern", [
    (np.nan, "'W' holds NaN or infinite values"),
    (np.inf, "'W' holds NaN or infinite values"),
    (1e300, "'W' holds values beyond the range of float32"),
    (1 + 2j, "wrong shape/dtype: W: file \\(4, 3\\) complex128"),
])
def test_load_weights_refuses_values_no_run_saves_and_changes_nothing(tmp_path, value, pattern):
    layer = Embedding(4, 3, rng=0)
    before = layer.W.data.copy()
    bad = np.zeros((4, 3), dtype=np.complex128 if isinstance(value, complex) else np.float64)
    bad[2, 1] = value
    save_npz(tmp_path / "w.npz", {"W": bad})
    with pytest.raises(ValueError, match=pattern):
        layer.load_weights(tmp_path / "w.npz")
    assert np.array_equal(layer.W.data, before)
