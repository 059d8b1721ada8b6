"""Training batches of context windows cut from a corpus of ids as they are needed.

[`create_contexts_target`][tinygrad_nlp.text.create_contexts_target] builds the windows of a whole corpus at once:
``2 * window_size + 1`` ids per token, 44 bytes a token at window 5, so a corpus of 100 M tokens
would need 4.4 GB before training starts. ``ContextWindows`` builds each batch's windows
when the batch is drawn, from a block of the corpus read at that moment. The corpus may be an
ndarray or a read-only memory map of an id file
([`open_id_file`][tinygrad_nlp.text.stream.open_id_file]); memory stays that of one block whatever the
corpus length.

Shuffling: the corpus is cut into blocks of ``block_size`` tokens visited in random order, and
the targets of a block are visited in random order. A corpus no longer than one block (PTB's
929,589 tokens with the default 2**21) is therefore shuffled globally, and its batches are
exactly those of ``create_contexts_target`` followed by a permutation.

Frequent-word subsampling (``keep``, word2vec's rule, see
[`keep_probabilities`][tinygrad_nlp.text.keep_probabilities]) is drawn afresh for every block of every epoch
before the windows are cut, so the windows reach over the removed words, as in word2vec.
"""

from __future__ import annotations

import mmap
import numbers

from collections.abc import Iterator

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ContextWindows", "BLOCK_SIZE"]

#: Tokens read and shuffled together (8 MB of int32 ids).
BLOCK_SIZE = 1 << 21


class ContextWindows:
    """``(contexts, target)`` batches of a 1-D id corpus, built one block at a time.

    Args:
        corpus: 1-D integer array (L,) of ids, or a memory map of one. Not copied.
        window_size: W >= 1; contexts are the W ids before and W after each target, in the
            order of ``create_contexts_target``.
        keep: optional (V,) keep probability of each id for frequent-word subsampling.
        block_size: tokens per block (the unit of memory and of shuffling).

    ``batches(batch_size, rng, shuffle=True)`` yields (B, 2W) int32 contexts and (B,) int32
    targets; [`num_targets`][num_targets] is the (expected, with ``keep``) number of targets per epoch.
    """

    def __init__(self, corpus: ArrayLike, window_size: int, keep: ArrayLike | None = None,
                 block_size: int = BLOCK_SIZE) -> None:
        if getattr(corpus, "ndim", None) != 1:
            corpus = np.asarray(corpus)
        if corpus.ndim != 1:
            raise ValueError(f"corpus must be a 1-D array of word ids, got shape {corpus.shape}")
        if corpus.dtype.kind not in "iu":
            raise ValueError(f"corpus must hold integer word ids, got dtype {corpus.dtype}")
        if isinstance(window_size, bool) or not isinstance(window_size, numbers.Integral) or window_size < 1:
            raise ValueError(f"window_size must be an integer >= 1, got {window_size!r}")
        if isinstance(block_size, bool) or not isinstance(block_size, numbers.Integral) or block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
        W = int(window_size)
        if corpus.shape[0] < 2 * W + 1:
            raise ValueError(f"corpus has {corpus.shape[0]} word ids, fewer than 2 * window_size + 1 = {2 * W + 1}")
        if keep is not None:
            keep = np.asarray(keep, dtype=np.float64)
            if keep.ndim != 1 or not np.all((keep >= 0) & (keep <= 1)):
                raise ValueError("keep must be a 1-D array of probabilities in [0, 1], one per word id")
        self.corpus, self.window_size, self.keep, self.block_size = corpus, W, keep, int(block_size)
        self.offsets = np.concatenate([np.arange(-W, 0), np.arange(1, W + 1)])

    @property
    def num_targets(self) -> int:
        """Targets per epoch: exact without subsampling, else the expected number."""
        L, W = self.corpus.shape[0], self.window_size
        if self.keep is None:
            return L - 2 * W
        return max(1, int(round(self._expected_kept())) - 2 * W)

    def _expected_kept(self):
        if getattr(self, "_kept", None) is not None:
            return self._kept
        total = 0.0
        for a in range(0, self.corpus.shape[0], self.block_size):
            block = self._read(a, min(a + self.block_size, self.corpus.shape[0]))
            total += float(self.keep[block].sum())
        self._kept = total
        return total

    def num_batches(self, batch_size: int) -> int:
        """Batches per epoch at ``batch_size`` (expected, with subsampling)."""
        return -(-self.num_targets // batch_size)

    def _read(self, a, b):
        """Ids ``a:b`` copied into memory; a memory map's pages are then released."""
        block = np.array(self.corpus[a:b], dtype=np.int32)
        base = getattr(self.corpus, "_mmap", None)
        if isinstance(base, mmap.mmap) and hasattr(base, "madvise"):
            itemsize = self.corpus.itemsize
            start = self.corpus.offset + a * itemsize
            page = mmap.PAGESIZE
            lo, hi = start // page * page, -(-(start + (b - a) * itemsize) // page) * page
            try:
                base.madvise(mmap.MADV_DONTNEED, lo, min(hi, len(base)) - lo)
            except (OSError, ValueError):  # only a hint: memory is released later instead
                pass
        return block

    def block_targets(self, a: int, b: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, positions)``: the ids around block ``a:b`` (after subsampling) and the
        positions in them of the block's targets that have W ids on each side."""
        L, W = self.corpus.shape[0], self.window_size
        lo, hi = max(0, a - W), min(L, b + W)
        ids = self._read(lo, hi)
        inside = np.arange(lo, hi)
        inside = (inside >= a) & (inside < b)
        if self.keep is not None:
            kept = rng.random(ids.shape[0]) < self.keep[ids]
            ids, inside = ids[kept], inside[kept]
        positions = np.flatnonzero(inside)
        positions = positions[(positions >= W) & (positions < ids.shape[0] - W)]
        return ids, positions

    def batches(self, batch_size: int, rng: np.random.Generator,
                shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(contexts, target)`` batches of one epoch (the last of a block may be smaller
        when there are several blocks)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        L = self.corpus.shape[0]
        starts = np.arange(0, L, self.block_size)
        if shuffle and starts.size > 1:
            starts = starts[rng.permutation(starts.size)]
        offsets = self.offsets
        for a in starts.tolist():
            ids, positions = self.block_targets(a, min(a + self.block_size, L), rng)
            if shuffle:
                positions = positions[rng.permutation(positions.size)]
            for i in range(0, positions.size, batch_size):
                p = positions[i:i + batch_size]
                yield ids[p[:, None] + offsets], ids[p]
