"""Seq2seq, PeekySeq2seq and AttentionSeq2seq: the teacher-forced loss and every gradient against
PyTorch with the same weights, finite differences, the graph's clusters, weights on disk, and
errors for bad input."""

import re

import numpy as np
import pytest

from tinygrad_nlp import Variable, unrolled
from tinygrad_nlp.gradcheck import directional_check
from tinygrad_nlp.models import AttentionSeq2seq, PeekySeq2seq, Seq2seq
from tinygrad_nlp.seq2seq import MODELS

V, D, H, N, TE, TA = 7, 5, 6, 3, 4, 4


def batch(seed=0, n=N):
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, V, size=(n, TE))
    ts = rng.integers(0, V, size=(n, TA))
    ts[:, 0] = 0  # start symbol
    return xs, ts


def torch_loss(model, xs, ts):
    """The same model written with torch.nn modules and the model's weights; returns the loss
    and the gradients by our parameter names."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    params = model.named_params()
    tensors = {k: torch.tensor(p.data.astype(np.float64), requires_grad=True) for k, p in params.items()}

    def lstm(prefix, x, state):
        Wx, Wh, b = (tensors[f"{prefix}.rnn.cell0.{n}"] for n in ("W_x", "W_h", "b"))
        h, c = state
        hs = []
        for t in range(x.shape[1]):
            a = x[:, t] @ Wx + h @ Wh + b
            i, f, g, o = a.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, 1), (h, c)

    def lstm_nn(prefix, x, state):  # torch.nn.LSTM itself, for the encoder
        m = nn.LSTM(x.shape[2], H, batch_first=True).double()
        with torch.no_grad():
            m.weight_ih_l0.copy_(tensors[f"{prefix}.rnn.cell0.W_x"].T)
            m.weight_hh_l0.copy_(tensors[f"{prefix}.rnn.cell0.W_h"].T)
            m.bias_ih_l0.copy_(tensors[f"{prefix}.rnn.cell0.b"])
            m.bias_hh_l0.zero_()
        return m, m(x, None if state is None else (state[0][None], state[1][None]))

    x_t, t_t = torch.tensor(xs), torch.tensor(ts)
    emb = tensors["encoder.embed.W"][x_t]
    hs_enc, (h, c) = lstm("encoder", emb, (torch.zeros(N, H, dtype=torch.float64),) * 2)
    # torch.nn.LSTM gives the same encoder states
    _, (hs_nn, (h_nn, c_nn)) = lstm_nn("encoder", emb.detach(), None)
    np.testing.assert_allclose(hs_nn.detach().numpy(), hs_enc.detach().numpy(), rtol=1e-10, atol=1e-12)
    dec_emb = tensors["decoder.embed.W"][t_t[:, :-1]]
    T = dec_emb.shape[1]
    if isinstance(model, PeekySeq2seq):
        peek = h[:, None, :].expand(N, T, H)
        hs_dec, _ = lstm("decoder", torch.cat([peek, dec_emb], 2), (h, c))
        out = torch.cat([peek, hs_dec], 2)
    elif isinstance(model, AttentionSeq2seq):
        hs_dec, _ = lstm("decoder", dec_emb, (h, c))
        w = torch.softmax(hs_dec @ hs_enc.transpose(1, 2), dim=2)
        out = torch.cat([w @ hs_enc, hs_dec], 2)
    else:
        hs_dec, _ = lstm("decoder", dec_emb, (h, c))
        out = hs_dec
    scores = out @ tensors["decoder.affine.W"] + tensors["decoder.affine.b"]
    loss = nn.functional.cross_entropy(scores.reshape(-1, V), t_t[:, 1:].reshape(-1))
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in tensors.items()}


@pytest.mark.parametrize("kind", ["plain", "peeky", "attention"])
def test_loss_and_gradients_match_pytorch(kind):
    model = MODELS[kind](V, D, H, seed=1, dtype=np.float64)
    xs, ts = batch()
    loss = model(xs, ts)
    model.cleargrads()
    loss.backward()
    ref_loss, ref_grads = torch_loss(model, xs, ts)
    assert loss.data.dtype == np.float64
    np.testing.assert_allclose(float(loss.data), ref_loss, rtol=1e-10)
    params = model.named_params()
    assert set(params) == set(ref_grads)
    for name, p in params.items():
        g = p.grad.to_dense() if hasattr(p.grad, "to_dense") else p.grad.data
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("kind", ["plain", "peeky", "attention"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_gradients_against_finite_differences(kind, cell):
    model = MODELS[kind](V, D, H, cell=cell, seed=2, dtype=np.float64)
    xs, ts = batch(1)
    names = list(model.named_params())
    originals = [p.data.copy() for p in model.params()]

    def through(*ws):  # the loss as a function of every parameter at once
        return _forward_with(model, dict(zip(names, ws)), xs, ts)

    directional_check(through, *originals, n_directions=3, rtol=1e-5, atol=1e-8)


def _forward_with(model, mapping, xs, ts):
    """The model's loss with its parameters replaced by the given Variables (for gradient checks)."""
    params = model.named_params()
    saved = {}
    owners = {}
    for name in params:
        owner = model
        *path, leaf = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        owners[name] = (owner, leaf)
        saved[name] = owner.__dict__[leaf]
        owner.__dict__[leaf] = mapping[name]
    try:
        return model(xs, ts)
    finally:
        for name, (owner, leaf) in owners.items():
            owner.__dict__[leaf] = saved[name]


def test_float32_stays_float32_and_seed_fixes_weights():
    model = AttentionSeq2seq(V, D, H, seed=3)
    assert all(p.data.dtype == np.float32 for p in model.params())
    loss = model(*batch())
    assert loss.data.dtype == np.float32
    loss.backward()
    assert all(p.grad.data.dtype == np.float32 for p in model.params())
    again = AttentionSeq2seq(V, D, H, seed=3)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(model.params(), again.params()))


def test_weights_round_trip(tmp_path):
    model = PeekySeq2seq(V, D, H, seed=4)
    xs, ts = batch()
    model.save_weights(tmp_path / "w.npz")
    other = PeekySeq2seq(V, D, H, seed=5)
    assert float(other(xs, ts).data) != float(model(xs, ts).data)
    other.load_weights(tmp_path / "w.npz")
    assert float(other(xs, ts).data) == float(model(xs, ts).data)
    with pytest.raises(ValueError, match="weights do not match AttentionSeq2seq"):
        AttentionSeq2seq(V, D, H).load_weights(tmp_path / "w.npz")


def test_graph_draws_encoder_and_decoder_as_clusters():
    model = AttentionSeq2seq(V, D, H, seed=0)
    dot = model.graph(*batch(n=1))
    clusters = re.findall(r'subgraph cluster_\d+ \{\n\s+label="([^"]+)"', dot)
    assert clusters == ["encoder", "decoder (AttentionDecoder)"]
    enc = dot.split("subgraph cluster_0")[1].split("subgraph cluster_1")[0]
    dec = dot.split("subgraph cluster_1")[1].split("\n  }\n")[0]
    assert enc.count('label="LSTMSequence"') == 1 and dec.count('label="LSTMSequence"') == 1
    assert 'label="AttentionWeights"' in dec and 'label="WeightedSum"' in dec
    assert 'label="hs_enc' in enc and 'label="scores' in dec
    outside = dot.split("\n  }\n")[-1]
    assert 'label="SoftmaxCrossEntropy"' in outside and 'label="loss' in outside
    # unrolled, each cluster holds one cell node per time step instead of the sequence node
    xs, ts = batch(n=1)
    with unrolled():
        dot = model.graph(xs, ts)
    enc = dot.split("subgraph cluster_0")[1].split("subgraph cluster_1")[0]
    dec = dot.split("subgraph cluster_1")[1].split("\n  }\n")[0]
    assert "LSTMSequence" not in dot
    assert enc.count('label="LSTMCell"') == xs.shape[1] and dec.count('label="LSTMCell"') == ts.shape[1] - 1


@pytest.mark.parametrize("xs, ts, message", [
    (np.full((2, 3), 7), np.zeros((2, 3), int), r"question id"),
    (np.zeros((2, 3), int), np.full((2, 3), -1), r"answer id"),
    (np.zeros((2, 3)), np.zeros((2, 3), int), r"questions must be integer ids"),
    (np.zeros((2, 3), int), np.zeros((3, 3), int), r"need matching rows"),
    (np.zeros((2, 3), int), np.zeros((2, 1), int), r"Ta >= 2"),
])
def test_bad_batches_are_named(xs, ts, message):
    with pytest.raises(ValueError, match=message):
        Seq2seq(V, D, H)(xs, ts)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="cell must be one of lstm, gru, rnn"):
        Seq2seq(V, D, H, cell="transformer")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        PeekySeq2seq(V, D, 0)
