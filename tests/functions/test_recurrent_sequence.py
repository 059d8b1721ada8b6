"""lstm_sequence: one node for a whole LSTM sequence, equal to a loop of lstm_step in values and
every gradient, checked against finite differences and torch.nn.LSTM."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable
from tinygrad_nlp.gradcheck import gradient_check

rng = np.random.default_rng(3)


def inputs(N=3, T=4, H=5, dtype=np.float64):
    return [rng.standard_normal(s).astype(dtype) * 0.7 for s in ((N, T, 4 * H), (N, H), (N, H), (H, 4 * H))]


def stepwise(xw, h, c, W_h):
    hs = []
    for x in F.unbind(xw, axis=1):
        h, c = F.lstm_step(x, h, c, W_h)
        hs.append(h)
    return F.stack(hs, axis=1), h, c


@pytest.mark.parametrize("T", [1, 2, 5])
def test_gradients_against_finite_differences(T):
    args = inputs(T=T)
    for k in range(3):  # each output alone, so a missing output gradient is exercised too
        gradient_check(lambda *a, k=k: F.lstm_sequence(*a)[k], *args)
    gradient_check(lambda *a: F.concat([F.lstm_sequence(*a)[0][:, -1], F.lstm_sequence(*a)[2]], axis=1), *args)


def test_equals_the_per_step_cells_in_values_and_gradients():
    args = inputs(N=4, T=6, H=8, dtype=np.float32)
    weights = [rng.standard_normal(s).astype(np.float32) for s in ((4, 6, 8), (4, 8), (4, 8))]
    results = []
    for fn in (F.lstm_sequence, stepwise):
        vs = [Variable(a.copy()) for a in args]
        outs = fn(*vs)
        loss = sum(F.sum(o * w) for o, w in zip(outs, weights))
        loss.backward()
        results.append(([o.data for o in outs], [v.grad.data for v in vs]))
    (o1, g1), (o2, g2) = results
    for a, b in zip(o1 + g1, o2 + g2):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_matches_torch_lstm():
    torch = pytest.importorskip("torch")
    N, T, D, H = 2, 5, 3, 4
    x = rng.standard_normal((N, T, D))
    W_x, W_h, b = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    m = torch.nn.LSTM(D, H, batch_first=True).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.tensor(W_x.T))
        m.weight_hh_l0.copy_(torch.tensor(W_h.T))
        m.bias_ih_l0.copy_(torch.tensor(b))
        m.bias_hh_l0.zero_()
    ys, (hT, cT) = m(torch.tensor(x), (torch.tensor(h0)[None], torch.tensor(c0)[None]))
    hs, h, c = F.lstm_sequence(x @ W_x + b, h0, c0, W_h)
    np.testing.assert_allclose(hs.data, ys.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.data, hT[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c.data, cT[0].detach().numpy(), rtol=1e-10, atol=1e-12)


def test_bad_shapes_and_second_derivatives():
    xw, h, c, W = inputs()
    with pytest.raises(ValueError, match=r"xw must have shape \(N, T >= 1, 4H\)"):
        F.lstm_sequence(xw[:, :, :-1], h, c, W)
    with pytest.raises(ValueError, match=r"c must have shape \(3, 5\)"):
        F.lstm_sequence(xw, h, c[:, :4], W)
    with pytest.raises(ValueError, match=r"W_h must have shape \(5, 20\)"):
        F.lstm_sequence(xw, h, c, W.T)
    v = Variable(xw)
    hs, _, _ = F.lstm_sequence(v, h, c, W)
    F.sum(hs).backward(create_graph=True)
    with pytest.raises(NotImplementedError, match="differentiable once"):
        F.sum(v.grad * v.grad).backward()
