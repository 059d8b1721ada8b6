"""The fused recurrent cells: gradients against finite differences and against PyTorch's cells."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable
from tinygrad_nlp.gradcheck import gradient_check

N, D, H = 3, 4, 5


def _inputs(blocks, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H)),
            rng.normal(size=(D, blocks * H)) * 0.6, rng.normal(size=(H, blocks * H)) * 0.6,
            rng.normal(size=blocks * H), rng.normal(size=blocks * H))


def test_rnn_cell_and_step_gradients():
    x, h, _, W_x, W_h, b, _ = _inputs(1)
    assert gradient_check(F.rnn_cell, x, h, W_x, W_h, b)
    assert gradient_check(F.rnn_step, x @ W_x + b, h, W_h)
    np.testing.assert_allclose(F.rnn_cell(x, h, W_x, W_h, b).data, np.tanh(x @ W_x + h @ W_h + b), rtol=1e-12)


@pytest.mark.parametrize("use", ["h", "c", "both"])
def test_lstm_cell_gradients_through_either_output(use):
    x, h, c, W_x, W_h, b, _ = _inputs(4)

    def f(*args):
        h2, c2 = F.lstm_cell(*args)
        return {"h": h2, "c": c2, "both": h2 * 2.0 + c2 * c2}[use]

    assert gradient_check(f, x, h, c, W_x, W_h, b)


def test_lstm_step_gradients():
    x, h, c, W_x, W_h, b, _ = _inputs(4, seed=1)
    assert gradient_check(lambda *a: F.lstm_step(*a)[0] + F.lstm_step(*a)[1], x @ W_x + b, h, c, W_h)


def test_gru_cell_and_step_gradients():
    x, h, _, W_x, W_h, b_x, b_h = _inputs(3, seed=2)
    assert gradient_check(F.gru_cell, x, h, W_x, W_h, b_x, b_h)
    assert gradient_check(F.gru_step, x @ W_x + b_x, h, W_h, b_h)


def _lstm_by_hand(x, h, c, W_x, W_h, b):
    """The book's formulas, with its gate order rearranged to i, f, g, o."""
    a = x @ W_x + h @ W_h + b
    s = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = s(a[:, :H]), s(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), s(a[:, 3 * H:])
    c2 = f * c + i * g
    return o * np.tanh(c2), c2


def test_lstm_cell_matches_the_formulas_and_keeps_float32():
    x, h, c, W_x, W_h, b, _ = _inputs(4, seed=3)
    h2, c2 = F.lstm_cell(x, h, c, W_x, W_h, b)
    eh, ec = _lstm_by_hand(x, h, c, W_x, W_h, b)
    np.testing.assert_allclose(h2.data, eh, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c2.data, ec, rtol=1e-12, atol=1e-14)
    args32 = [a.astype(np.float32) for a in (x, h, c, W_x, W_h, b)]
    vs = [Variable(a) for a in args32]
    h3, c3 = F.lstm_cell(*vs)
    (h3.sum() + c3.sum()).backward()
    assert h3.dtype == c3.dtype == np.float32
    assert all(v.grad.dtype == np.float32 for v in vs)


def _torch_grads(torch, cell, x, state, w):
    tx = torch.tensor(x, requires_grad=True)
    ts = tuple(torch.tensor(s, requires_grad=True) for s in state)
    out = cell(tx, ts if len(ts) == 2 else ts[0])
    outs = out if isinstance(out, tuple) else (out,)
    sum((o * torch.tensor(wi)).sum() for o, wi in zip(outs, w)).backward()
    return [o.detach().numpy() for o in outs], tx.grad.numpy(), [s.grad.numpy() for s in ts]


def test_cells_match_pytorch_with_transposed_weights():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    x, h, c = (rng.normal(size=s).astype(np.float32) for s in ((N, D), (N, H), (N, H)))
    for kind in ("rnn", "lstm", "gru"):
        cell = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind](D, H)
        W_x = Variable(cell.weight_ih.detach().numpy().T.copy())
        W_h = Variable(cell.weight_hh.detach().numpy().T.copy())
        b_ih, b_hh = cell.bias_ih.detach().numpy(), cell.bias_hh.detach().numpy()
        xv, hv, cv = Variable(x), Variable(h), Variable(c)
        if kind == "lstm":
            b = Variable(b_ih + b_hh)
            outs = F.lstm_cell(xv, hv, cv, W_x, W_h, b)
            state = (h, c)
        elif kind == "gru":
            b, b2 = Variable(b_ih), Variable(b_hh)
            outs = [F.gru_cell(xv, hv, W_x, W_h, b, b2)]
            state = (h,)
        else:
            b = Variable(b_ih + b_hh)
            outs = [F.rnn_cell(xv, hv, W_x, W_h, b)]
            state = (h,)
        w = [rng.normal(size=(N, H)).astype(np.float32) for _ in outs]
        loss = sum((o * wi).sum() for o, wi in zip(outs, w))
        loss.backward()
        t_outs, t_gx, t_gs = _torch_grads(torch, cell, x, state, w)
        for o, t in zip(outs, t_outs):
            np.testing.assert_allclose(o.data, t, rtol=1e-5, atol=1e-6, err_msg=kind)
        np.testing.assert_allclose(xv.grad.data, t_gx, rtol=1e-4, atol=1e-5, err_msg=kind)
        np.testing.assert_allclose(hv.grad.data, t_gs[0], rtol=1e-4, atol=1e-5, err_msg=kind)
        if kind == "lstm":
            np.testing.assert_allclose(cv.grad.data, t_gs[1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(W_x.grad.data, cell.weight_ih.grad.numpy().T, rtol=1e-4, atol=1e-5, err_msg=kind)
        np.testing.assert_allclose(W_h.grad.data, cell.weight_hh.grad.numpy().T, rtol=1e-4, atol=1e-5, err_msg=kind)
        np.testing.assert_allclose(b.grad.data, cell.bias_ih.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=kind)


def test_each_cell_is_one_node():
    x, h, c, W_x, W_h, b, _ = _inputs(4)
    h2, c2 = F.lstm_cell(x, h, c, Variable(W_x), Variable(W_h), Variable(b))
    assert h2.creator is c2.creator and isinstance(h2.creator, F.LSTMCell)
    assert all(v.creator is None for v in h2.creator.inputs)


def test_second_derivative_is_refused_clearly():
    x, h, c, W_x, W_h, b, _ = _inputs(1)
    xv = Variable(x)
    y = F.rnn_cell(xv, h, W_x, W_h, b)
    y.sum().backward(create_graph=True)
    gx = xv.grad
    xv.cleargrad()
    with pytest.raises(NotImplementedError, match="differentiable once"):
        gx.sum().backward()


@pytest.mark.parametrize("call, message", [
    (lambda: F.lstm_cell(np.ones((3, 4)), np.ones((3, 5)), np.ones((3, 5)), np.ones((4, 16)), np.ones((5, 20)),
                         np.ones(20)), r"W_x must have shape \(4, 20\)"),
    (lambda: F.lstm_cell(np.ones((3, 4)), np.ones((3, 5)), np.ones((2, 5)), np.ones((4, 20)), np.ones((5, 20)),
                         np.ones(20)), r"c must have shape \(3, 5\)"),
    (lambda: F.gru_cell(np.ones((3, 4)), np.ones((3, 5)), np.ones((4, 15)), np.ones((5, 15)), np.ones(15),
                        np.ones(5)), r"b_h must have shape \(15,\)"),
    (lambda: F.rnn_cell(np.ones((2, 4)), np.ones((3, 5)), np.ones((4, 5)), np.ones((5, 5)), np.ones(5)),
     r"x must have shape \(3, \?\)"),
    (lambda: F.lstm_step(np.ones((3, 19)), np.ones((3, 5)), np.ones((3, 5)), np.ones((5, 20))),
     r"projected input"),
])
def test_bad_shapes_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_unbind_splits_and_its_gradient_stacks_back():
    x = np.random.default_rng(5).normal(size=(2, 3, 4))
    parts = F.unbind(x, axis=1)
    assert len(parts) == 3 and all(p.shape == (2, 4) for p in parts)
    np.testing.assert_array_equal(parts[1].data, x[:, 1])
    # Only two of the three slices used: the third gets a zero gradient.
    assert gradient_check(lambda v: F.unbind(v, axis=1)[0] * 3.0 + F.unbind(v, axis=1)[2], x)
    with pytest.raises(ValueError, match="empty"):
        F.unbind(np.ones((2, 0, 3)), axis=1)
