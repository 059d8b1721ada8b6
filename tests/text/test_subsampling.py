"""tinygrad_nlp.text.subsampling: word2vec's subsampling of frequent words."""

import numpy as np
import pytest
from scipy import stats

from tinygrad_nlp.text import UnigramSampler, keep_probabilities, subsample

# ----- subsampling -----

SUB_COUNTS = np.array([300_000, 60_000, 20_000, 2_000, 200])
SUB_T = 1e-3


def _shuffled_corpus(counts, seed=0):
    corpus = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    np.random.default_rng(seed).shuffle(corpus)
    return corpus


def test_keep_probabilities_follow_word2vec_c_formula():
    f = SUB_COUNTS / SUB_COUNTS.sum()
    expected = np.minimum((np.sqrt(f / SUB_T) + 1) * SUB_T / f, 1.0)
    np.testing.assert_allclose(keep_probabilities(SUB_COUNTS, SUB_T), expected, rtol=1e-12)
    keep = keep_probabilities(np.array([10, 0, 1]), t=0.5)  # rare and unseen words: always kept
    assert keep.tolist() == [1.0, 1.0, 1.0]


def _kept_fraction_z(kept, counts, keep_p):
    """z-score of each word's observed kept count against Binomial(counts, keep_p)."""
    n_kept = np.bincount(kept, minlength=len(counts))
    sd = np.sqrt(counts * keep_p * (1 - keep_p))
    return (n_kept - counts * keep_p) / np.where(sd > 0, sd, 1)


def test_subsample_statistics_match_formula_and_reject_the_papers():
    corpus = _shuffled_corpus(SUB_COUNTS)
    kept = subsample(corpus, SUB_COUNTS, t=SUB_T, seed=1)
    assert kept.dtype == np.int32 and kept.ndim == 1
    z = _kept_fraction_z(kept, SUB_COUNTS, keep_probabilities(SUB_COUNTS, SUB_T))
    assert np.abs(z).max() < 5, z
    # The paper's keep probability sqrt(t / f) is a different rule: these statistics tell them apart.
    f = SUB_COUNTS / SUB_COUNTS.sum()
    z_paper = _kept_fraction_z(kept, SUB_COUNTS, np.minimum(np.sqrt(SUB_T / f), 1.0))
    assert np.abs(z_paper).max() > 8, z_paper
    # the frequent word really is thinned out, the rare ones are untouched
    n_kept = np.bincount(kept, minlength=5)
    assert n_kept[0] < 0.05 * SUB_COUNTS[0] and n_kept[4] == SUB_COUNTS[4]


def test_subsample_keeps_order_and_is_reproducible():
    corpus = _shuffled_corpus(np.array([5000, 50, 40]), seed=3)
    kept = subsample(corpus, t=1e-2, seed=7)  # counts=None: counted from the corpus
    np.testing.assert_array_equal(kept, subsample(corpus, np.bincount(corpus), t=1e-2, seed=7))
    assert not np.array_equal(kept, subsample(corpus, t=1e-2, seed=8))
    assert len(kept) < 0.2 * len(corpus)  # word 0 (keep probability 0.11) is thinned out
    # words 1 and 2 are always kept, so their sequence is unchanged
    np.testing.assert_array_equal(kept[kept > 0], corpus[corpus > 0])
    # kept is a subsequence of corpus
    pos = 0
    for w in kept.tolist():
        while corpus[pos] != w:
            pos += 1
        pos += 1
    assert subsample(np.zeros(0, dtype=np.int32), t=1e-3).shape == (0,)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"t": 0}, "t must be a finite number > 0, got 0"),
        ({"t": -1e-5}, "got -1e-05"),
        ({"counts": np.array([5, 5])}, "word id 2 but counts has only 2 entries"),
        ({"counts": np.array([5, -1, 5])}, ">= 0"),
        ({"counts": np.zeros(3, dtype=np.int64)}, "sum to 0"),
    ],
)
def test_subsample_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        subsample(np.array([0, 1, 2, 1]), **kwargs)


# ----- UnigramSampler: distribution -----
