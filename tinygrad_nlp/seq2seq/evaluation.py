"""Scoring a seq2seq model: exact-match accuracy, and a printed sample with the mistakes marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from tinygrad_nlp.seq2seq.networks import Seq2seq
    from tinygrad_nlp.text.vocab import Vocabulary

__all__ = ["predict", "accuracy", "format_samples"]


def _check_pair(x, t):
    x, t = np.asarray(x), np.asarray(t)
    if x.ndim != 2 or t.ndim != 2 or len(x) != len(t) or t.shape[1] < 2:
        raise ValueError(f"questions (N, Te) and answers (N, Ta >= 2) need matching rows, got {x.shape} and {t.shape}")
    return x, t


def predict(model: Seq2seq, x: ArrayLike, start_id: int, length: int, beam: int | None = None,
            batch_size: int = 1000) -> np.ndarray:
    """(N, length) answers to the questions ``x``, decoded greedily (``beam=None`` or 1) or by
    beam search of width ``beam``, ``batch_size`` questions at a time."""
    x = np.asarray(x)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        if beam is None or beam == 1:
            parts.append(model.generate(chunk, start_id, length))
        else:
            parts.append(model.beam_search(chunk, start_id, length, beam=beam))
    return np.concatenate(parts) if parts else np.zeros((0, length), dtype=np.int64)


def accuracy(model: Seq2seq, x: ArrayLike, t: ArrayLike, beam: int | None = None, batch_size: int = 1000,
             return_predictions: bool = False) -> float | tuple[float, np.ndarray]:
    """Share of questions whose whole answer is right (every symbol, padding included).

    Args:
        x: (N, Te) questions. t: (N, Ta) answers whose first column is the start symbol.
        beam: None for greedy decoding, else the beam width.
        return_predictions: also return the (N, Ta - 1) predicted ids.
    """
    x, t = _check_pair(x, t)
    if len(x) == 0:
        raise ValueError("accuracy of an empty test set is undefined")
    guess = predict(model, x, int(t[0, 0]), t.shape[1] - 1, beam=beam, batch_size=batch_size)
    acc = float(np.mean(np.all(guess == t[:, 1:], axis=1)))
    return (acc, guess) if return_predictions else acc


def format_samples(x: ArrayLike, t: ArrayLike, guess: ArrayLike, vocab: Vocabulary, reverse: bool = False,
                   limit: int = 10) -> str:
    """Text showing question, right answer and prediction for the first ``limit`` rows.

    Right predictions are marked ``[ok]``; wrong ones ``[XX]`` with a ``^`` under every wrong
    symbol. ``reverse=True`` shows questions that were fed reversed in reading order.
    """
    x, t = _check_pair(x, t)
    words = vocab.id_to_word
    lines = []
    for q, a, g in zip(x[:limit], t[:limit], np.asarray(guess)[:limit]):
        q = q[::-1] if reverse else q
        right = "".join(words[i] for i in a[1:])
        said = "".join(words[i] for i in g)
        lines.append(f"Q     {''.join(words[i] for i in q)}")
        lines.append(f"T     {right}")
        if said == right:
            lines.append(f"[ok]  {said}")
        else:
            lines.append(f"[XX]  {said}")
            lines.append("      " + "".join("^" if a_ != g_ else " " for a_, g_ in zip(right, said)).rstrip())
    return "\n".join(lines)
