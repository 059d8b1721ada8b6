"""lstm_sequence, gru_sequence, rnn_sequence: one node for a whole time-major sequence, equal to
a loop of the step cells in values and every gradient, checked against finite differences and
torch.nn.LSTM / GRU / RNN, on both backend implementations of the gate primitives."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable
from tinygrad_nlp.gradcheck import gradient_check

rng = np.random.default_rng(3)

# name -> (sequence function, step function, gate blocks, has c, has b_h)
CELLS = {
    "lstm": (F.lstm_sequence, F.lstm_step, 4),
    "gru": (F.gru_sequence, F.gru_step, 3),
    "rnn": (F.rnn_sequence, F.rnn_step, 1),
}


def inputs(cell, N=3, T=4, H=5, dtype=np.float64):
    """``(xw, h[, c], W_h[, b_h])`` for ``cell``, in its sequence function's argument order."""
    k = CELLS[cell][2]
    shapes = [(T, N, k * H), (N, H)] + ([(N, H)] if cell == "lstm" else []) + [(H, k * H)]
    shapes += [(k * H,)] if cell == "gru" else []
    return [rng.standard_normal(s).astype(dtype) * 0.7 for s in shapes]


def stepwise(cell, xw, *rest):
    """The same sequence as a loop of the step cells: ``(hs, h_T[, c_T])``."""
    step = CELLS[cell][1]
    if cell == "lstm":
        h, c, W_h = rest
        hs = []
        for x in F.unbind(xw, axis=0):
            h, c = step(x, h, c, W_h)
            hs.append(h)
        return F.stack(hs, axis=0), h, c
    h, *weights = rest
    hs = []
    for x in F.unbind(xw, axis=0):
        h = step(x, h, *weights)
        hs.append(h)
    return F.stack(hs, axis=0), h


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("T", [1, 2, 5])
def test_gradients_against_finite_differences(cell, T, impl):
    sequence = CELLS[cell][0]
    args = inputs(cell, T=T)
    n_out = 3 if cell == "lstm" else 2
    for k in range(n_out):  # each output alone, so a missing output gradient is exercised too
        gradient_check(lambda *a, k=k: sequence(*a)[k], *args)
    gradient_check(lambda *a: F.concat([sequence(*a)[0][-1], sequence(*a)[-1]], axis=1), *args)


@pytest.mark.parametrize("cell", CELLS)
def test_equals_the_per_step_cells_in_values_and_gradients(cell, impl):
    args = inputs(cell, N=4, T=6, H=8, dtype=np.float32)
    n_out = 3 if cell == "lstm" else 2
    weights = [rng.standard_normal(s).astype(np.float32) for s in ((6, 4, 8), (4, 8), (4, 8))[:n_out]]
    results = []
    for fn in (CELLS[cell][0], lambda *a: stepwise(cell, *a)):
        vs = [Variable(a.copy()) for a in args]
        outs = fn(*vs)
        loss = sum(F.sum(o * w) for o, w in zip(outs, weights))
        loss.backward()
        results.append(([o.data for o in outs], [v.grad.data for v in vs]))
    (o1, g1), (o2, g2) = results
    for a, b in zip(o1, o2):  # the same gate primitives and products: the same forward values
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    for a, b in zip(g1, g2):  # W_h's gradient is one product here, a sum of T products there
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_the_two_backends_agree(impl):
    from tinygrad_nlp import backend

    for cell in CELLS:
        args = inputs(cell, N=5, T=7, H=6, dtype=np.float32)
        got = []
        for which in ("numpy", impl):
            previous = backend.use(which)
            try:
                vs = [Variable(a.copy()) for a in args]
                outs = CELLS[cell][0](*vs)
                F.sum(sum(F.sum(o * o) for o in outs)).backward()
                got.append([o.data for o in outs] + [v.grad.data for v in vs])
            finally:
                backend.use(previous)
        for a, b in zip(*got):
            assert b.dtype == np.float32
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def _torch_run(cell, x, W_x, W_h, b_x, b_h, h0, c0):
    """torch.nn.LSTM/GRU/RNN (time-major) with our weights transposed in; outputs and the
    gradients of ``sum(outputs * 1)`` for x, h0 (and c0), W_h and, for a GRU, b_h."""
    torch = pytest.importorskip("torch")
    T, N, D = x.shape
    H = h0.shape[1]
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](D, H).double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.tensor(W_x.T))
        module.weight_hh_l0.copy_(torch.tensor(W_h.T))
        module.bias_ih_l0.copy_(torch.tensor(b_x))
        module.bias_hh_l0.copy_(torch.tensor(b_h))
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    if cell == "lstm":
        c0t = torch.tensor(c0[None], requires_grad=True)
        ys, (hT, cT) = module(xt, (h0t, c0t))
        outs = [ys, hT[0], cT[0]]
    else:
        ys, hT = module(xt, h0t)
        outs = [ys, hT[0]]
    sum(o.sum() for o in outs).backward()
    grads = [xt.grad.numpy(), h0t.grad[0].numpy()] + ([c0t.grad[0].numpy()] if cell == "lstm" else [])
    grads += [module.weight_hh_l0.grad.numpy().T, module.bias_hh_l0.grad.numpy()]
    return [o.detach().numpy() for o in outs], grads


@pytest.mark.parametrize("cell", CELLS)
def test_matches_torch(cell, impl):
    T, N, D, H = 5, 2, 3, 4
    k = CELLS[cell][2]
    x = rng.standard_normal((T, N, D))
    W_x, W_h = rng.standard_normal((D, k * H)) * 0.5, rng.standard_normal((H, k * H)) * 0.5
    b_x, b_h = rng.standard_normal(k * H), rng.standard_normal(k * H)
    h0, c0 = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    want_outs, want_grads = _torch_run(cell, x, W_x, W_h, b_x, b_h, h0, c0)
    xv, h0v, c0v, W_hv, b_hv = Variable(x), Variable(h0), Variable(c0), Variable(W_h), Variable(b_h)
    if cell == "gru":  # b_h stays apart: it sits inside r * (h W_hn + b_hn)
        outs = F.gru_sequence(F.linear(xv, W_x, b_x), h0v, W_hv, b_hv)
        leaves = [xv, h0v, W_hv, b_hv]
    else:  # the two biases of torch are one here
        seq = F.lstm_sequence if cell == "lstm" else F.rnn_sequence
        states = (h0v, c0v) if cell == "lstm" else (h0v,)
        outs = seq(F.linear(xv, W_x, b_x + b_hv), *states, W_hv)
        leaves = [xv, *states, W_hv, b_hv]
    sum(F.sum(o) for o in outs).backward()
    for got, want in zip([o.data for o in outs] + [v.grad.data for v in leaves], want_outs + want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("cell", CELLS)
def test_bad_shapes_are_one_line_errors(cell):
    sequence, _, k = CELLS[cell]
    name = sequence.__name__
    xw, h, *rest = inputs(cell)
    with pytest.raises(ValueError, match=rf"^{name}: xw must have shape \(T >= 1, N, .*\), got \(3, {5 * k}\)$"):
        sequence(xw[0], h, *rest)
    with pytest.raises(ValueError, match=rf"^{name}: xw must have shape"):
        sequence(xw[:0], h, *rest)
    with pytest.raises(ValueError, match=rf"^{name}: h must have shape \(3, 5\) for xw of shape \(4, 3, {5 * k}\), got \(3, 4\)$"):
        sequence(xw, h[:, :4], *rest)
    bad_W = [r[:4] if r.ndim == 2 else r for r in rest]
    with pytest.raises(ValueError, match=rf"^{name}: W_h must have shape \(5, {5 * k}\)"):
        sequence(xw, h, *bad_W)
    if cell == "lstm":
        with pytest.raises(ValueError, match=r"^lstm_sequence: c must have shape \(3, 5\)"):
            sequence(xw, h, rest[0][:, :4], rest[1])
    if cell == "gru":
        with pytest.raises(ValueError, match=r"^gru_sequence: b_h must have shape \(15,\)"):
            sequence(xw, h, rest[0], rest[1][:-1])
    if k > 1:
        with pytest.raises(ValueError, match=rf"^{name}: xw must have shape"):
            sequence(xw[:, :, :-1], h, *rest)


@pytest.mark.parametrize("cell", CELLS)
def test_second_derivatives_are_refused(cell):
    xw, *rest = inputs(cell)
    v = Variable(xw)
    hs = CELLS[cell][0](v, *rest)[0]
    F.sum(hs).backward(create_graph=True)
    with pytest.raises(NotImplementedError, match="differentiable once"):
        F.sum(v.grad * v.grad).backward()


@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_weight_gradient_split_across_threads_is_the_same(cell, monkeypatch):
    """``W_h``'s gradient, one (H, T*N) @ (T*N, kH) product, is split across tinygrad_nlp's
    threads when large (as Linear's products are): every gradient is the same as unsplit."""
    from tinygrad_nlp import _threads

    if not _threads._blas_libraries():
        pytest.skip("products are split only beside OpenBLAS's own thread pool")
    args = inputs(cell, N=4, T=6, H=8, dtype=np.float32)
    grads = []
    for split in (False, True):
        monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 1 if split else 10**15)
        monkeypatch.setattr(_threads, "_num_threads", 2)
        vs = [Variable(a.copy()) for a in args]
        F.sum(CELLS[cell][0](*vs)[0] ** 2).backward()
        grads.append([v.grad.data for v in vs])
    for a, b in zip(*grads):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_rows_split_across_threads_give_the_same_values_and_gradients(cell, impl, monkeypatch):
    """With two threads a large sequence runs as blocks of rows side by side, forward and backward
    (rows never meet in a recurrence): values and every gradient are those of the one-block run,
    also for a batch that does not divide evenly."""
    from tinygrad_nlp import _threads

    if not _threads._blas_libraries():
        pytest.skip("rows are split only beside OpenBLAS's own thread pool")
    args = inputs(cell, N=7, T=5, H=6, dtype=np.float32)
    blocks = []
    real_run_parallel = _threads.run_parallel

    def counting_run_parallel(tasks):
        tasks = list(tasks)
        blocks.append(len(tasks))
        return real_run_parallel(tasks)

    monkeypatch.setattr(_threads, "run_parallel", counting_run_parallel)
    monkeypatch.setattr(_threads, "_num_threads", 2)
    runs = []
    for split in (False, True):
        monkeypatch.setattr(_threads, "ROWS_MIN_MACS", 1 if split else 10**15)
        monkeypatch.setattr(_threads, "ROWS_MIN_BLOCK", 2)
        blocks.clear()
        vs = [Variable(a.copy()) for a in args]
        outs = CELLS[cell][0](*vs)
        loss = F.sum(outs[0] ** 2)  # every output gets a gradient: the states of every step, the final ones
        for i, final in enumerate(outs[1:]):
            loss = loss + F.sum(final) * (i + 2.0)
        loss.backward()
        runs.append(([o.data for o in outs], [v.grad.data for v in vs]))
        assert blocks.count(2) == (2 if split else 0)  # the forward's and the backward's time loops
    (values, grads), (split_values, split_grads) = runs
    for a, b in zip(values + grads, split_values + split_grads):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


# ----- the LSTM's unprojected form: lstm_sequence(x, h, c, W_h, W_x=..., b=...) -----
def unprojected_inputs(N=3, T=4, D=2, H=5, per_sequence_bias=False, dtype=np.float64):
    """``(x, h, c, W_h, W_x, b)``; ``b`` (4H,), or (N, 4H) with ``per_sequence_bias``."""
    shapes = [(T, N, D), (N, H), (N, H), (H, 4 * H), (D, 4 * H), (N, 4 * H) if per_sequence_bias else (4 * H,)]
    return [rng.standard_normal(s).astype(dtype) * 0.7 for s in shapes]


def unprojected(x, h, c, W_h, W_x, b):
    return F.lstm_sequence(x, h, c, W_h, W_x=W_x, b=b)


@pytest.mark.parametrize("per_sequence_bias", [False, True])
@pytest.mark.parametrize("T", [1, 3])
def test_unprojected_gradients_against_finite_differences(per_sequence_bias, T, impl):
    args = unprojected_inputs(T=T, per_sequence_bias=per_sequence_bias)
    for k in range(3):
        gradient_check(lambda *a, k=k: unprojected(*a)[k], *args)


@pytest.mark.parametrize("per_sequence_bias", [False, True])
def test_unprojected_equals_projecting_first(per_sequence_bias, impl):
    """``[h | x] @ [W_h ; W_x]`` per step gives what ``lstm_sequence(x @ W_x + b, ...)`` gives,
    in values and in the gradients of all six inputs (float32, up to rounding)."""
    args = unprojected_inputs(N=4, T=6, D=3, H=8, per_sequence_bias=per_sequence_bias, dtype=np.float32)
    weights = [rng.standard_normal(s).astype(np.float32) for s in ((6, 4, 8), (4, 8), (4, 8))]
    results = []
    for fused in (True, False):
        vs = [Variable(a.copy()) for a in args]
        x, h, c, W_h, W_x, b = vs
        outs = unprojected(*vs) if fused else F.lstm_sequence(F.linear(x, W_x) + b, h, c, W_h)
        sum(F.sum(o * w) for o, w in zip(outs, weights)).backward()
        results.append([o.data for o in outs] + [v.grad.data for v in vs])
    for a, b in zip(*results):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)


def test_unprojected_matches_torch(impl):
    T, N, D, H = 5, 2, 3, 4
    x, h0, c0, W_h, W_x, b = unprojected_inputs(N=N, T=T, D=D, H=H)
    want_outs, want_grads = _torch_run("lstm", x, W_x, W_h, b, np.zeros(4 * H), h0, c0)
    vs = [Variable(a) for a in (x, h0, c0, W_h, W_x, b)]
    outs = unprojected(*vs)
    sum(F.sum(o) for o in outs).backward()
    got = [o.data for o in outs] + [vs[0].grad.data, vs[1].grad.data, vs[2].grad.data, vs[3].grad.data,
                                    vs[5].grad.data]  # torch's b_hh gradient is the bias gradient
    for g, w in zip(got, want_outs + want_grads):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)


def test_unprojected_bad_input_is_a_one_line_error():
    x, h, c, W_h, W_x, b = unprojected_inputs()
    with pytest.raises(ValueError, match=r"^lstm_sequence: give W_x and b together"):
        F.lstm_sequence(x, h, c, W_h, W_x=W_x)
    with pytest.raises(ValueError, match=r"^lstm_sequence: W_x must have shape \(2, 20\) for x of shape \(4, 3, 2\)"):
        unprojected(x, h, c, W_h, W_x[:1], b)
    with pytest.raises(ValueError, match=r"^lstm_sequence: b must have shape \(20,\) or \(3, 20\) .*got \(19,\)$"):
        unprojected(x, h, c, W_h, W_x, b[:-1])
    with pytest.raises(ValueError, match=r"^lstm_sequence: x must have shape \(T >= 1, N, D\), got \(0, 3, 2\)$"):
        unprojected(x[:0], h, c, W_h, W_x, b)
    with pytest.raises(ValueError, match=r"^lstm_sequence: c must have shape \(3, 5\)"):
        unprojected(x, h, c[:, :4], W_h, W_x, b)
    with pytest.raises(ValueError, match=r"^lstm_sequence: W_h must have shape \(H, 4H\), got \(5, 19\)$"):
        unprojected(x, h, c, W_h[:, :-1], W_x, b)


@pytest.mark.parametrize("per_sequence_bias", [False, True])
def test_unprojected_rows_split_across_threads_are_the_same(per_sequence_bias, impl, monkeypatch):
    from tinygrad_nlp import _threads

    if not _threads._blas_libraries():
        pytest.skip("rows are split only beside OpenBLAS's own thread pool")
    args = unprojected_inputs(N=7, T=5, D=3, H=6, per_sequence_bias=per_sequence_bias, dtype=np.float32)
    monkeypatch.setattr(_threads, "_num_threads", 2)
    monkeypatch.setattr(_threads, "ROWS_MIN_BLOCK", 2)
    runs = []
    for split in (False, True):
        monkeypatch.setattr(_threads, "ROWS_MIN_MACS", 1 if split else 10**15)
        vs = [Variable(a.copy()) for a in args]
        outs = unprojected(*vs)
        (F.sum(outs[0] ** 2) + F.sum(outs[1]) * 2.0 + F.sum(outs[2]) * 3.0).backward()
        runs.append([o.data for o in outs] + [v.grad.data for v in vs])
    for a, b in zip(*runs):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)
