"""Negative sampling: draw word ids from the smoothed unigram distribution counts**power."""

from __future__ import annotations

import copy
import numbers

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import backend
from tinygrad_nlp.text.contexts import check_corpus

__all__ = ["UnigramSampler"]


class UnigramSampler:
    """Draw negative samples from ``counts ** power`` (normalised), as word2vec does.

    Args:
        corpus: 1-D integer array of word ids (shape (L,), L >= 1); counted with ``np.bincount``,
            so V = corpus.max() + 1. Use [`from_counts`][from_counts] to give counts (and V) directly.
        power: float >= 0 (0.75 in word2vec). Words with a zero count get probability 0 for
            every power, including 0.
        sample_size: int >= 1, negatives per target.
        exclude_target: if True, no row ever contains its own target: such draws are redrawn,
            so each row's marginal is ``p`` renormalised without the target.
        seed: None, an int, or a ``np.random.Generator`` (same seed, same draws).

    Attributes:
        p: read-only ``np.float64`` array of shape (V,), the sampling probabilities.
        vocab_size: V.

    Sampling uses the cumulative table of ``p`` (built once, O(V)) and ``np.searchsorted`` on
    uniform draws, so a call costs O(B * sample_size * log V) whatever V is; with the compiled
    backend (``tinygrad_nlp.backend``), a guide table into the cumulative table
    finds the same ids in expected O(1) per draw, nearly as fast at V = 1,000,000 as at 10,000.
    With ``exclude_target`` the target's interval of the table is cut out of the uniform draw, which
    samples the renormalised distribution directly; the rare draw that still lands on the target
    through floating-point rounding is redrawn, and only those entries are. (The book instead
    copies and renormalises p for every row, O(B * V) per call.)

    One sampler owns one ``np.random.Generator``, which must not be used by two threads at
    once: give each thread its own sampler (or a lock) when drawing in parallel.
    """

    def __init__(self, corpus: ArrayLike, power: float = 0.75, sample_size: int = 5, exclude_target: bool = True,
                 seed: int | np.random.Generator | None = None) -> None:
        corpus = check_corpus(corpus)
        if corpus.size == 0:
            raise ValueError("corpus is empty; the sampler needs at least one word id")
        self._setup(np.bincount(corpus), power, sample_size, exclude_target, seed)

    @classmethod
    def from_counts(cls, counts: ArrayLike, power: float = 0.75, sample_size: int = 5, exclude_target: bool = True,
                    seed: int | np.random.Generator | None = None) -> UnigramSampler:
        """Build from word counts (1-D array of shape (V,), non-negative, e.g. ``Vocabulary.counts``)."""
        self = cls.__new__(cls)
        self._setup(counts, power, sample_size, exclude_target, seed)
        return self

    def _setup(self, counts, power, sample_size, exclude_target, seed):
        if isinstance(power, bool) or not isinstance(power, numbers.Real) or not np.isfinite(power) or power < 0:
            raise ValueError(f"power must be a finite number >= 0, got {power!r}")
        if isinstance(sample_size, bool) or not isinstance(sample_size, numbers.Integral) or sample_size < 1:
            raise ValueError(f"sample_size must be an integer >= 1, got {sample_size!r}")
        counts = np.asarray(counts)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError(f"counts must be a non-empty 1-D array, got shape {counts.shape}")
        if counts.dtype.kind not in "iuf":
            raise ValueError(f"counts must be numbers, got dtype {counts.dtype}")
        counts = counts.astype(np.float64)
        if not np.all(np.isfinite(counts)):
            raise ValueError("counts must be finite")
        if counts.min() < 0:
            raise ValueError(f"counts must be >= 0, got {counts.min()} (a negative word id or count?)")
        positive = counts > 0
        n_positive = int(np.count_nonzero(positive))
        if n_positive == 0:
            raise ValueError("all counts are 0; there is nothing to sample")
        if exclude_target and n_positive < 2:
            raise ValueError(
                f"exclude_target=True needs at least 2 words with positive probability, got {n_positive}"
            )
        weights = np.zeros_like(counts)
        weights[positive] = counts[positive] ** float(power)
        p = weights / weights.sum()
        cdf = np.cumsum(p)
        # Rounding can leave cdf[-1] a hair below 1; a uniform draw in that gap would select a
        # trailing zero-probability word. Pin everything from the last positive word on to 1.
        last = int(np.flatnonzero(positive)[-1])
        cdf[last:] = 1.0
        p.flags.writeable = False
        cdf.flags.writeable = False
        self._p = p
        self._cdf = cdf
        self._last = last
        self._search_cache = {}  # what the backend keeps per table (the compiled one: a guide table)
        self.power = float(power)
        self.sample_size = int(sample_size)
        self.exclude_target = bool(exclude_target)
        self.rng = np.random.default_rng(seed)

    def with_seed(self, seed: int | np.random.SeedSequence | np.random.Generator | None) -> UnigramSampler:
        """The same distribution with a generator of its own (the tables are shared, not
        copied): one per thread that draws at once."""
        twin = copy.copy(self)
        twin.rng = np.random.default_rng(seed)
        return twin

    @property
    def p(self) -> np.ndarray:
        """Sampling probabilities, read-only ``np.float64`` array of shape (V,)."""
        return self._p

    @property
    def vocab_size(self) -> int:
        """Number of word ids V (``len(p)``)."""
        return self._p.shape[0]

    def __repr__(self):
        return (
            f"UnigramSampler(vocab_size={self.vocab_size}, power={self.power}, "
            f"sample_size={self.sample_size}, exclude_target={self.exclude_target})"
        )

    def _lookup(self, u):
        idx = backend.ops.search_cdf(self._cdf, u, self._search_cache)
        np.minimum(idx, self._last, out=idx)  # u is < 1, so this only guards against rounding
        return idx

    def sample(self, shape: int | tuple[int, ...]) -> np.ndarray:
        """Plain draws (no exclusion): ``np.int32`` array of the given shape."""
        return self._lookup(self.rng.random(shape)).astype(np.int32)

    def get_negative_sample(self, target: ArrayLike) -> np.ndarray:
        """Negative samples for a batch of targets.

        Args:
            target: integer array of shape (N,) with ids in [0, V) (any shape works: the result
                has shape ``target.shape + (sample_size,)``).

        Returns:
            ``np.int32`` array of shape (N, sample_size), drawn with replacement from ``p``;
            with ``exclude_target`` row i never contains ``target[i]``.
        """
        target = np.asarray(target)
        if target.size and target.dtype.kind not in "iu":
            raise ValueError(f"target must hold integer word ids, got dtype {target.dtype}")
        V = self.vocab_size
        if target.size:
            lo_id, hi_id = int(target.min()), int(target.max())
            if lo_id < 0 or hi_id >= V:
                bad = lo_id if lo_id < 0 else hi_id
                raise ValueError(f"target id {bad} is outside [0, {V})")
        shape = target.shape + (self.sample_size,)
        if not self.exclude_target:
            return self.sample(shape)
        # Row-major layout of (N, sample_size): each target repeated sample_size times.
        flat_t = np.repeat(target.astype(np.intp).reshape(-1), self.sample_size)
        out = self._draw_excluding(flat_t)
        bad = np.flatnonzero(out == flat_t)
        rounds = 0
        while bad.size:  # only entries that hit their target (float rounding) are redrawn
            rounds += 1
            if rounds > 1000:  # cannot happen with >= 2 positive words; never hang silently
                raise RuntimeError("negative sampling failed to avoid the target after 1000 redraws")
            out[bad] = self._draw_excluding(flat_t[bad])
            bad = bad[out[bad] == flat_t[bad]]
        return out.reshape(shape).astype(np.int32)

    def _draw_excluding(self, t):
        """One draw per entry of ``t`` (intp array) from p with t's interval cut out."""
        cdf = self._cdf
        hi = cdf[t]
        lo = np.where(t > 0, cdf[np.maximum(t - 1, 0)], 0.0)
        width = hi - lo
        v = self.rng.random(t.shape) * (1.0 - width)
        v += np.where(v >= lo, width, 0.0)
        return self._lookup(v)
