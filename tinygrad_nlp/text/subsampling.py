"""Subsampling of frequent words (Mikolov et al., 2013), as word2vec.c implements it."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.text.contexts import check_corpus

__all__ = ["subsample", "keep_probabilities"]


def keep_probabilities(counts: ArrayLike, t: float = 1e-5) -> np.ndarray:
    """Probability of keeping each word under word2vec.c's subsampling rule.

    With ``f = counts / counts.sum()`` the relative frequency, word2vec.c keeps an occurrence
    with probability ``(sqrt(f / t) + 1) * t / f`` (clipped to 1). This is the formula used here
    (gensim uses the same one); it differs from the paper's discard probability
    ``1 - sqrt(t / f)`` by the extra ``t / f`` term, which keeps slightly more of every word.
    Words with ``f <= 2.618 * t`` (the golden ratio squared, where the expression reaches 1) are
    always kept, and so are words with a zero count.

    Args:
        counts: 1-D array of non-negative integers (or floats), shape (V,).
        t: float > 0, the threshold (1e-5 in word2vec.c's default; 1e-3 in gensim's).

    Returns:
        ``np.float64`` array of shape (V,) with values in (0, 1].
    """
    if isinstance(t, bool) or not isinstance(t, numbers.Real) or not np.isfinite(t) or t <= 0:
        raise ValueError(f"t must be a finite number > 0, got {t!r}")
    counts = np.asarray(counts)
    if counts.ndim != 1:
        raise ValueError(f"counts must be 1-D (one count per word id), got shape {counts.shape}")
    if counts.size and counts.dtype.kind not in "iuf":
        raise ValueError(f"counts must be numbers, got dtype {counts.dtype}")
    counts = counts.astype(np.float64)
    if counts.size and (not np.all(np.isfinite(counts)) or counts.min() < 0):
        raise ValueError("counts must be finite and >= 0")
    total = counts.sum()
    if total <= 0:
        raise ValueError("counts sum to 0; nothing to subsample")
    f = counts / total
    keep = np.ones_like(f)
    pos = f > 0
    ratio = t / f[pos]
    keep[pos] = np.minimum((np.sqrt(1.0 / ratio) + 1.0) * ratio, 1.0)
    return keep


def subsample(corpus: ArrayLike, counts: ArrayLike | None = None, t: float = 1e-5,
              seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Randomly drop occurrences of frequent words from ``corpus``.

    Each token of word ``w`` is kept independently with probability
    ``min(1, (sqrt(f_w / t) + 1) * t / f_w)`` (word2vec.c's rule, see
    [`keep_probabilities`][keep_probabilities]), where ``f_w = counts[w] / counts.sum()``.

    Args:
        corpus: 1-D integer array of word ids, shape (L,).
        counts: 1-D array (V,) of word counts aligned with ids, V > corpus.max(), e.g.
            ``Vocabulary.counts``; None counts the corpus itself (``np.bincount``).
        t: threshold > 0. Smaller t drops more.
        seed: None, an int, or a ``np.random.Generator`` (reproducible when given).

    Returns:
        A new 1-D ``np.int32`` array with the kept tokens in their original order, shape (L',),
        L' <= L. Apply it before building context windows, as word2vec.c does, so the windows
        reach over the removed words.
    """
    corpus = check_corpus(corpus)
    if counts is None:
        if corpus.size == 0:
            return np.zeros(0, dtype=np.int32)
        counts = np.bincount(corpus)
    keep = keep_probabilities(counts, t)
    if corpus.size == 0:
        return np.zeros(0, dtype=np.int32)
    if int(corpus.max()) >= keep.shape[0]:
        raise ValueError(
            f"corpus holds word id {int(corpus.max())} but counts has only {keep.shape[0]} entries"
        )
    rng = np.random.default_rng(seed)
    mask = rng.random(corpus.shape[0]) < keep[corpus]
    return corpus[mask].astype(np.int32, copy=False)
