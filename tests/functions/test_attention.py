"""Dot-product attention: values and gradients against finite differences, the book's per-step
layers re-derived in numpy, and PyTorch; masking of padded encoder positions; bad input."""

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable
from tinygrad_nlp.gradcheck import gradient_check

rng = np.random.default_rng(7)


def book_attention(hs_enc, hs_dec, dc, da):
    """The book's Attention layer re-derived, one decoder step at a time: forward
    (weights, context) and backward of ``sum(dc * context) + sum(da * weights)``."""
    N, Te, H = hs_enc.shape
    Td = hs_dec.shape[1]
    context, weights = np.zeros((N, Td, H)), np.zeros((N, Td, Te))
    g_enc, g_dec = np.zeros_like(hs_enc), np.zeros_like(hs_dec)
    for t in range(Td):
        h = hs_dec[:, t]
        s = (hs_enc * h[:, None, :]).sum(axis=2)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        a = e / e.sum(axis=1, keepdims=True)
        context[:, t] = (hs_enc * a[:, :, None]).sum(axis=1)
        weights[:, t] = a
        # WeightSum backward, then AttentionWeight backward (softmax, then the dot products)
        g_enc += dc[:, t][:, None, :] * a[:, :, None]
        g_a = (dc[:, t][:, None, :] * hs_enc).sum(axis=2) + da[:, t]
        g_s = a * (g_a - (a * g_a).sum(axis=1, keepdims=True))
        g_enc += g_s[:, :, None] * h[:, None, :]
        g_dec[:, t] = (g_s[:, :, None] * hs_enc).sum(axis=1)
    return context, weights, g_enc, g_dec


def run_ours(hs_enc, hs_dec, dc, da, mask=None):
    enc, dec = Variable(hs_enc), Variable(hs_dec)
    context, weights = F.attention(enc, dec, mask)
    loss = F.sum(context * dc) + F.sum(weights * da)
    loss.backward()
    return context.data, weights.data, enc.grad.data, dec.grad.data


@pytest.mark.parametrize("N, Te, Td, H", [(1, 1, 1, 1), (2, 5, 3, 4), (3, 7, 4, 6)])
def test_gradients_against_finite_differences(N, Te, Td, H):
    hs_enc, hs_dec = rng.standard_normal((N, Te, H)), rng.standard_normal((N, Td, H))
    gradient_check(lambda e, d: F.attention(e, d)[0], hs_enc, hs_dec)
    gradient_check(lambda e, d: F.attention(e, d)[1], hs_enc, hs_dec)
    # both outputs used at once, the context twice
    gradient_check(lambda e, d: F.concat([F.attention(e, d)[0], F.attention(e, d)[1]], axis=2), hs_enc, hs_dec)


def test_masked_gradients_against_finite_differences():
    hs_enc, hs_dec = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 2, 4))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 1, 0, 1, 0]], bool)
    gradient_check(lambda e, d: F.attention(e, d, mask)[0], hs_enc, hs_dec)
    gradient_check(lambda e, d: F.attention(e, d, mask)[1], hs_enc, hs_dec)


def test_matches_the_books_step_by_step_layers():
    N, Te, Td, H = 4, 6, 5, 8
    hs_enc, hs_dec = rng.standard_normal((N, Te, H)), rng.standard_normal((N, Td, H))
    dc, da = rng.standard_normal((N, Td, H)), rng.standard_normal((N, Td, Te))
    for ours, ref in zip(run_ours(hs_enc, hs_dec, dc, da), book_attention(hs_enc, hs_dec, dc, da)):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_matches_pytorch_with_and_without_mask():
    torch = pytest.importorskip("torch")
    N, Te, Td, H = 3, 6, 4, 5
    hs_enc = rng.standard_normal((N, Te, H)).astype(np.float32)
    hs_dec = rng.standard_normal((N, Td, H)).astype(np.float32)
    dc = rng.standard_normal((N, Td, H)).astype(np.float32)
    da = rng.standard_normal((N, Td, Te)).astype(np.float32)
    for mask in (None, np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 0, 1]], bool)):
        e = torch.tensor(hs_enc, requires_grad=True)
        d = torch.tensor(hs_dec, requires_grad=True)
        scores = d @ e.transpose(1, 2)
        if mask is not None:
            scores = scores.masked_fill(~torch.tensor(mask)[:, None, :], float("-inf"))
        w = torch.softmax(scores, dim=2)
        c = w @ e
        ((c * torch.tensor(dc)).sum() + (w * torch.tensor(da)).sum()).backward()
        ours = run_ours(hs_enc, hs_dec, dc, da, mask)
        for got, ref in zip(ours, (c, w, e.grad, d.grad)):
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, ref.detach().numpy(), rtol=2e-5, atol=2e-6)


def test_padded_positions_get_zero_weight_and_no_gradient():
    hs_enc, hs_dec = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 3, 3))
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    garbage = hs_enc.copy()
    garbage[0, 2:] = 1e6  # what padding holds must not matter
    c1, w1, ge1, gd1 = run_ours(hs_enc, hs_dec, np.ones((2, 3, 3)), np.zeros((2, 3, 4)), mask)
    c2, w2, ge2, gd2 = run_ours(garbage, hs_dec, np.ones((2, 3, 3)), np.zeros((2, 3, 4)), mask)
    assert np.all(w1[0, :, 2:] == 0) and np.allclose(w1.sum(axis=2), 1)
    np.testing.assert_allclose(c1, c2)
    np.testing.assert_allclose(gd1, gd2)
    assert np.all(ge1[0, 2:] == 0) and np.all(ge2[0, 2:] == 0)
    # the first row equals attention over its two real positions alone
    c3, w3 = F.attention(hs_enc[:1, :2], hs_dec[:1])
    np.testing.assert_allclose(c1[:1], c3.data)
    np.testing.assert_allclose(w1[0, :, :2], w3.data[0])


def test_large_scores_stay_finite():
    hs_enc = np.full((1, 3, 2), 100.0, np.float32)
    hs_enc[0, 1] = -100.0
    hs_dec = np.full((1, 1, 2), 100.0, np.float32)
    with np.errstate(over="raise", invalid="raise"):
        c, w = F.attention(hs_enc, hs_dec)
    assert np.allclose(w.data, [[[0.5, 0.0, 0.5]]])


@pytest.mark.parametrize("enc, dec, mask, message", [
    ((2, 3, 4), (2, 4), None, r"must be 3-D, got shapes \(2, 3, 4\) and \(2, 4\)"),
    ((2, 3, 4), (3, 1, 4), None, "must agree on the batch N and the size H"),
    ((2, 3, 4), (2, 1, 5), None, "must agree on the batch N and the size H"),
    ((2, 0, 4), (2, 1, 4), None, "no positions"),
    ((2, 3, 4), (2, 1, 4), np.ones((2, 3)), "mask must be boolean"),
    ((2, 3, 4), (2, 1, 4), np.ones((2, 4), bool), r"mask of shape \(2, 4\) must have shape \(N, Te\) = \(2, 3\)"),
    ((2, 3, 4), (2, 1, 4), np.array([[1, 0, 0], [0, 0, 0]], bool), "row 1 without any encoder position"),
])
def test_bad_input_is_named(enc, dec, mask, message):
    with pytest.raises(ValueError, match=message):
        F.attention(np.zeros(enc, np.float32), np.zeros(dec, np.float32), mask)


def test_integer_states_and_weighted_sum_shapes_rejected():
    with pytest.raises(ValueError, match="hs_enc must be floating point"):
        F.attention(np.zeros((1, 2, 3), int), np.zeros((1, 1, 3)))
    with pytest.raises(ValueError, match="weighted_sum: hs_enc .* do not fit"):
        F.weighted_sum(np.zeros((1, 2, 3)), np.zeros((1, 1, 4)))
