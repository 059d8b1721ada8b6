"""Decoding without teacher forcing: greedy and beam search, batched over questions.

Both run the model's decoder one step at a time from the encoder's state, feeding each chosen
symbol back as the next input. All N questions (times ``beam`` hypotheses) advance together,
so a step is a few (N*beam, H) matrix products, not N separate ones. Decoding runs without
recording a graph and in test mode (no dropout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.core import Variable, no_grad, test_mode

if TYPE_CHECKING:
    from tinygrad_nlp.seq2seq.networks import Seq2seq

__all__ = ["greedy", "beam_search"]


def _take(x, rows):
    """Rows ``rows`` of a state/memory: a Variable, a tuple or list of them, or None."""
    if x is None:
        return None
    if isinstance(x, (tuple, list)):
        return type(x)(_take(v, rows) for v in x)
    return Variable(x.data[rows])


def _prepare(model, xs, start_id, length):
    xs = model.check_ids(xs)
    single = xs.ndim == 1
    if single:
        xs = xs[None]
    if xs.ndim != 2 or xs.shape[0] == 0:
        raise ValueError(f"questions must have shape (N, Te) with N >= 1 (or (Te,) for one), got {xs.shape}")
    if isinstance(start_id, bool) or not isinstance(start_id, (int, np.integer)) or not 0 <= start_id < model.vocab_size:
        raise ValueError(f"start_id must be an id in [0, {model.vocab_size}), got {start_id!r}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    return xs, single


def greedy(model: Seq2seq, xs: ArrayLike, start_id: int, length: int) -> np.ndarray:
    """The most likely symbol at each step, fed back as the next input.

    Args:
        model: a seq2seq model (``encode``/``decode``, see [`tinygrad_nlp.seq2seq.networks`][tinygrad_nlp.seq2seq.networks]).
        xs: (N, Te) question ids, or (Te,) for one question.
        start_id: the start symbol's id (the first decoder input).
        length: how many symbols to write.

    Returns:
        (N, length) int64 ids ((length,) for a 1-D question). For an attention model the
        weights of every step are left in ``model.last_attention`` (N, length, Te).
    """
    xs, single = _prepare(model, xs, start_id, length)
    N = xs.shape[0]
    out = np.empty((N, length), dtype=np.int64)
    weights = []
    with no_grad(), test_mode():
        state, memory = model.encode(xs)
        ids = np.full((N, 1), start_id, dtype=np.int64)
        for t in range(length):
            scores, state, w = model.decode(ids, state, memory)
            out[:, t] = scores.data[:, -1].argmax(axis=1)
            ids = out[:, t : t + 1]
            if w is not None:
                weights.append(w.data[:, -1])
    model.last_attention = np.stack(weights, axis=1) if weights else None
    return out[0] if single else out


def _log_softmax(scores):
    s = scores.astype(np.float64)
    s -= s.max(axis=1, keepdims=True)
    s -= np.log(np.exp(s).sum(axis=1, keepdims=True))
    return s


def beam_search(model: Seq2seq, xs: ArrayLike, start_id: int, length: int, beam: int = 5) -> np.ndarray:
    """Keep the ``beam`` partial answers of highest total log-probability at every step.

    All answers have the same ``length`` (the tasks here pad answers to a fixed width), so the
    winner is the hypothesis of highest summed log-probability after ``length`` steps. Ties are
    broken towards the earlier hypothesis and the smaller id; ``beam=1`` is greedy decoding.

    Returns:
        (N, length) int64 ids ((length,) for a 1-D question).
    """
    if isinstance(beam, bool) or not isinstance(beam, (int, np.integer)) or beam < 1:
        raise ValueError(f"beam must be a positive integer, got {beam!r}")
    xs, single = _prepare(model, xs, start_id, length)
    N, B, V = xs.shape[0], int(beam), model.vocab_size
    with no_grad(), test_mode():
        state, memory = model.encode(xs)
        rows = np.repeat(np.arange(N), B)  # hypothesis n*B + b belongs to question n
        state, memory = _take(state, rows), _take(memory, rows)
        total = np.full((N, B), -np.inf)
        total[:, 0] = 0.0  # one live hypothesis at the start: the others are copies
        history = np.zeros((N, B, 0), dtype=np.int64)
        ids = np.full((N * B, 1), start_id, dtype=np.int64)
        for t in range(length):
            scores, state, _ = model.decode(ids, state, memory)
            cand = (total[:, :, None] + _log_softmax(scores.data[:, -1]).reshape(N, B, V)).reshape(N, B * V)
            best = np.argsort(-cand, axis=1, kind="stable")[:, :B]
            total = np.take_along_axis(cand, best, axis=1)
            parent, token = best // V, best % V
            history = np.concatenate([np.take_along_axis(history, parent[:, :, None], axis=1), token[:, :, None]], axis=2)
            state = _take(state, (np.arange(N)[:, None] * B + parent).ravel())
            ids = token.reshape(N * B, 1)
    out = history[:, 0]
    return out[0] if single else out
