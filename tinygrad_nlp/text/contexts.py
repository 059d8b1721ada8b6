"""Context windows around each target word (the input/label pairs of CBoW and skip-gram)."""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["create_contexts_target", "check_corpus"]

_INT32_MAX = np.iinfo(np.int32).max


def check_corpus(corpus: ArrayLike, name: str = "corpus") -> np.ndarray:
    """Validate a corpus of word ids and return it as a 1-D integer ndarray (no copy if possible).

    Raises ValueError (naming the problem and the offending value) when the array is not 1-D, is
    not of an integer dtype, or holds ids outside ``[0, 2**31 - 1]``. An empty corpus is allowed
    here; callers that need tokens check the length themselves.
    """
    arr = np.asarray(corpus)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of word ids, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int32, copy=False) if arr.dtype.kind not in "iu" else arr
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer word ids, got dtype {arr.dtype}")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ValueError(f"{name} holds a negative word id ({lo}); ids must be >= 0")
    if hi > _INT32_MAX:
        raise ValueError(f"{name} holds word id {hi}, which does not fit in int32")
    return arr


def create_contexts_target(corpus: ArrayLike, window_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The book's ``create_contexts_target``, vectorised.

    For every position ``i`` with ``window_size`` words on both sides, the target is
    ``corpus[i]`` and the contexts are the ``window_size`` words before it followed by the
    ``window_size`` words after it (the book's order).

    Args:
        corpus: 1-D integer array of word ids, length L >= 2 * window_size + 1.
        window_size: int >= 1, words taken on each side.

    Returns:
        contexts: ``np.int32`` array of shape (L - 2 * window_size, 2 * window_size).
        target: ``np.int32`` array of shape (L - 2 * window_size,).

    Built from one ``sliding_window_view`` (no Python loop over the corpus), so the cost is a
    single pass of copying proportional to the output.
    """
    if isinstance(window_size, bool) or not isinstance(window_size, numbers.Integral):
        raise ValueError(f"window_size must be an integer, got {window_size!r}")
    window_size = int(window_size)
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    corpus = check_corpus(corpus)
    if corpus.size == 0:
        raise ValueError("corpus is empty; need at least 2 * window_size + 1 word ids")
    span = 2 * window_size + 1
    if corpus.size < span:
        raise ValueError(
            f"corpus has {corpus.size} word ids, fewer than 2 * window_size + 1 = {span} "
            f"(window_size={window_size})"
        )
    windows = np.lib.stride_tricks.sliding_window_view(corpus, span)  # (N, span), a view
    contexts = np.empty((windows.shape[0], 2 * window_size), dtype=np.int32)
    contexts[:, :window_size] = windows[:, :window_size]
    contexts[:, window_size:] = windows[:, window_size + 1:]
    target = windows[:, window_size].astype(np.int32)  # astype copies: no view into corpus
    return contexts, target
