"""Dot-product attention over encoder states, for a whole decoder sequence at once.

``attention(hs_enc, hs_dec)`` scores every decoder state against every encoder state
(``hs_dec @ hs_enc^T``), turns each row of scores into weights with a softmax over the encoder
positions, and returns the weighted sums of encoder states (the context vectors) with the
weights. The book computes the same thing one decoder step at a time with four small layers
(``AttentionWeight``, ``WeightSum``, each repeated per step); here it is two Functions, each
one batched matrix product forward and two backward, whatever the sequence lengths.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Function, Variable
from tinygrad_nlp.functions.nn import matmul
from tinygrad_nlp.functions.reduce import sum as _sum
from tinygrad_nlp.functions.shape import transpose

__all__ = ["attention", "attention_weights", "weighted_sum", "AttentionWeights", "WeightedSum"]

_SWAP = (0, 2, 1)


def _mT(a):
    return a.transpose(_SWAP)


class AttentionWeights(Function):
    """``softmax(hs_dec @ hs_enc^T)`` over the encoder axis: (N, Te, H), (N, Td, H) -> (N, Td, Te).

    ``mask`` (N, Te) bool marks the encoder positions that exist (True) or are padding (False):
    padded positions get weight exactly 0 and no gradient.
    """

    def __init__(self, mask=None):
        self.mask = mask

    def forward(self, hs_enc, hs_dec):
        s = np.matmul(hs_dec, _mT(hs_enc))
        if self.mask is not None:
            s[np.broadcast_to(~self.mask[:, None, :], s.shape)] = -np.inf
        s -= s.max(axis=2, keepdims=True)
        np.exp(s, out=s)
        s /= s.sum(axis=2, keepdims=True)
        return s

    def backward_arrays(self, ga):
        hs_enc, hs_dec = self.inputs[0].data, self.inputs[1].data
        a = self.outputs[0]().data
        ds = a * ga
        ds -= a * ds.sum(axis=2, keepdims=True)  # softmax backward: a * (ga - sum(a * ga))
        return np.matmul(_mT(ds), hs_dec), np.matmul(ds, hs_enc)

    def backward(self, ga):
        hs_enc, hs_dec = self.inputs
        a = self.outputs[0]()
        ds = a * ga
        ds = ds - a * _sum(ds, axis=2, keepdims=True)
        return matmul(transpose(ds, _SWAP), hs_dec), matmul(ds, hs_enc)


class WeightedSum(Function):
    """Context vectors ``weights @ hs_enc``: (N, Te, H), (N, Td, Te) -> (N, Td, H)."""

    def forward(self, hs_enc, weights):
        return np.matmul(weights, hs_enc)

    def backward_arrays(self, gc):
        hs_enc, a = self.inputs[0].data, self.inputs[1].data
        return np.matmul(_mT(a), gc), np.matmul(gc, _mT(hs_enc))

    def backward(self, gc):
        hs_enc, a = self.inputs
        return matmul(transpose(a, _SWAP), gc), matmul(gc, transpose(hs_enc, _SWAP))


def _shape(x):
    return x.data.shape if isinstance(x, Variable) else np.shape(x)


def _dtype(x):
    return x.data.dtype if isinstance(x, Variable) else np.asarray(x).dtype


def _check(hs_enc, hs_dec, mask):
    enc, dec = _shape(hs_enc), _shape(hs_dec)
    if len(enc) != 3 or len(dec) != 3:
        raise ValueError(f"attention: hs_enc (N, Te, H) and hs_dec (N, Td, H) must be 3-D, got shapes {enc} and {dec}")
    if enc[0] != dec[0] or enc[2] != dec[2]:
        raise ValueError(f"attention: hs_enc {enc} and hs_dec {dec} must agree on the batch N and the size H")
    if enc[1] == 0:
        raise ValueError("attention: hs_enc has no positions (Te = 0) to attend to")
    for name, x in (("hs_enc", hs_enc), ("hs_dec", hs_dec)):
        if _dtype(x).kind != "f":
            raise ValueError(f"attention: {name} must be floating point, got dtype {_dtype(x)}")
    if mask is None:
        return None
    mask = mask.data if isinstance(mask, Variable) else np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"attention: mask must be boolean (True where an encoder position exists), got dtype {mask.dtype}")
    if mask.shape != (enc[0], enc[1]):
        raise ValueError(f"attention: mask of shape {mask.shape} must have shape (N, Te) = {(enc[0], enc[1])}")
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(f"attention: mask leaves row {int(empty[0])} without any encoder position to attend to")
    return mask


def attention_weights(hs_enc: Variable | ArrayLike, hs_dec: Variable | ArrayLike,
                      mask: ArrayLike | None = None) -> Variable:
    """The (N, Td, Te) attention weights alone; see [`attention`][attention]."""
    return AttentionWeights(_check(hs_enc, hs_dec, mask))(hs_enc, hs_dec)


def weighted_sum(hs_enc: Variable | ArrayLike, weights: Variable | ArrayLike) -> Variable:
    """(N, Td, H) sums of the encoder states ``hs_enc`` (N, Te, H) weighted by ``weights`` (N, Td, Te)."""
    enc, w = _shape(hs_enc), _shape(weights)
    if len(enc) != 3 or len(w) != 3 or enc[0] != w[0] or enc[1] != w[2]:
        raise ValueError(f"weighted_sum: hs_enc (N, Te, H) and weights (N, Td, Te) do not fit: {enc} and {w}")
    return WeightedSum()(hs_enc, weights)


def attention(hs_enc: Variable | ArrayLike, hs_dec: Variable | ArrayLike,
              mask: ArrayLike | None = None) -> tuple[Variable, Variable]:
    """Dot-product attention of every decoder state over the encoder states.

    Args:
        hs_enc: (N, Te, H) encoder states. hs_dec: (N, Td, H) decoder states.
        mask: optional (N, Te) bool, False at padded encoder positions (they get weight 0).

    Returns:
        ``(context, weights)``: (N, Td, H) weighted sums of encoder states and the (N, Td, Te)
        weights (each row sums to 1). Both are graph nodes: a loss on either backpropagates
        into ``hs_enc`` and ``hs_dec``.
    """
    weights = attention_weights(hs_enc, hs_dec, mask)
    return WeightedSum()(hs_enc, weights), weights
