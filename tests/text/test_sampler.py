"""tinygrad_nlp.text.sampler: the negative (unigram) sampler."""

import numpy as np
import pytest
from scipy import stats

from tinygrad_nlp.text import UnigramSampler, keep_probabilities, subsample

# ----- subsampling -----

SUB_COUNTS = np.array([300_000, 60_000, 20_000, 2_000, 200])
SUB_T = 1e-3


COUNTS = np.array([50, 30, 10, 5, 3, 2, 0])  # a zero-count word last: must never be drawn


def _expected_without(counts, power, target):
    w = np.where(counts > 0, counts.astype(float) ** power, 0.0)
    w[target] = 0.0
    return w / w.sum()


def _chi2_pvalue(draws, expected):
    """Pearson chi-square of draw counts against ``expected`` over its support."""
    observed = np.bincount(draws.ravel(), minlength=len(expected))
    support = expected > 0
    assert observed[~support].sum() == 0, "drew a word outside the expected support"
    n = observed.sum()
    stat = ((observed[support] - n * expected[support]) ** 2 / (n * expected[support])).sum()
    return stats.chi2.sf(stat, support.sum() - 1)


def test_sampler_probabilities():
    sampler = UnigramSampler.from_counts(COUNTS)
    w = np.where(COUNTS > 0, COUNTS ** 0.75, 0)
    np.testing.assert_allclose(sampler.p, w / w.sum(), rtol=1e-12)
    assert sampler.p.dtype == np.float64 and sampler.vocab_size == 7
    with pytest.raises(ValueError):
        sampler.p[0] = 1.0  # read-only
    corpus = np.repeat(np.arange(6), COUNTS[:6])
    np.testing.assert_allclose(UnigramSampler(corpus).p, sampler.p[:6] / sampler.p[:6].sum())
    # power 0 is uniform over the words that occur, not over every id
    np.testing.assert_allclose(UnigramSampler.from_counts(COUNTS, power=0).p, [1 / 6] * 6 + [0])


def test_sampler_chi_square_and_wrong_variants_fail():
    """200,000 draws with target 0 (the most frequent word) against the renormalised
    counts**0.75 without the target; a sampler with power 1.0 or without exclusion must fail
    the same test, and so must the right draws tested against the wrong expectation."""
    batch = np.zeros(40_000, dtype=np.int64)  # x 5 negatives = 200,000 draws
    expected = _expected_without(COUNTS, 0.75, 0)
    draws = UnigramSampler.from_counts(COUNTS, seed=0).get_negative_sample(batch)
    assert _chi2_pvalue(draws, expected) > 1e-4

    wrong_power = UnigramSampler.from_counts(COUNTS, power=1.0, seed=0).get_negative_sample(batch)
    assert _chi2_pvalue(wrong_power, expected) < 1e-12
    no_exclusion = UnigramSampler.from_counts(COUNTS, exclude_target=False, seed=0).get_negative_sample(batch)
    with pytest.raises(AssertionError, match="outside the expected support"):
        _chi2_pvalue(no_exclusion, expected)
    assert _chi2_pvalue(draws, _expected_without(COUNTS, 1.0, 0)) < 1e-12
    # without exclusion the draws follow p itself (target 0 included)
    assert _chi2_pvalue(no_exclusion, UnigramSampler.from_counts(COUNTS).p) > 1e-4


def test_sampler_each_row_follows_its_own_target():
    """Mixed targets: the draws of the rows with target k follow p without k, for every k."""
    rng = np.random.default_rng(5)
    targets = rng.integers(0, 7, size=60_000)  # includes the zero-count word 6 as a target
    draws = UnigramSampler.from_counts(COUNTS, seed=1).get_negative_sample(targets)
    for k in range(7):
        rows = draws[targets == k]
        assert not (rows == k).any()
        assert _chi2_pvalue(rows, _expected_without(COUNTS, 0.75, k)) > 1e-5, k


def test_sampler_exclusion_with_a_dominant_target():
    counts = np.array([10_000_000, 1, 1])  # p[0] ~ 0.99999
    sampler = UnigramSampler.from_counts(counts, sample_size=3, seed=0)
    draws = sampler.get_negative_sample(np.zeros(2000, dtype=np.int32))
    assert set(np.unique(draws).tolist()) == {1, 2}
    draws = sampler.get_negative_sample(np.ones(2000, dtype=np.int32))
    assert not (draws == 1).any() and (draws == 0).mean() > 0.999


def test_sampler_redraws_entries_that_hit_their_target(monkeypatch):
    """The loop that catches draws landing on their own target (from float rounding) redraws
    exactly those entries until none is left."""
    sampler = UnigramSampler.from_counts(COUNTS, seed=0)
    real = sampler._draw_excluding
    calls = []

    def first_hits_target(t):
        calls.append(t.size)
        out = real(t)
        if len(calls) <= 2:
            out[::2] = t[::2]  # pretend half the entries hit their target, twice
        return out

    monkeypatch.setattr(sampler, "_draw_excluding", first_hits_target)
    target = np.array([0, 1, 2, 3])
    draws = sampler.get_negative_sample(target)
    assert not (draws == target[:, None]).any()
    assert calls == [20, 10, 5]  # only the offending entries were redrawn


# ----- UnigramSampler: shapes, seeds, errors, scale -----


def test_sampler_shapes_and_dtypes():
    sampler = UnigramSampler(np.array([0, 1, 2, 2, 3, 3, 3]), sample_size=4, seed=0)
    out = sampler.get_negative_sample(np.array([0, 1, 2]))
    assert out.shape == (3, 4) and out.dtype == np.int32
    assert sampler.get_negative_sample(np.zeros(0, dtype=np.int64)).shape == (0, 4)
    assert sampler.get_negative_sample(np.zeros((2, 3), dtype=np.int64)).shape == (2, 3, 4)
    plain = UnigramSampler(np.array([0, 1, 2]), exclude_target=False, sample_size=2, seed=0)
    assert plain.get_negative_sample(np.array([0, 0])).shape == (2, 2)
    assert sampler.sample((5, 2)).dtype == np.int32


def test_sampler_seeds_are_reproducible():
    target = np.arange(6).repeat(50)
    a = UnigramSampler.from_counts(COUNTS, seed=42).get_negative_sample(target)
    b = UnigramSampler.from_counts(COUNTS, seed=42).get_negative_sample(target)
    c = UnigramSampler.from_counts(COUNTS, seed=43).get_negative_sample(target)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    gen = np.random.default_rng(42)
    np.testing.assert_array_equal(UnigramSampler.from_counts(COUNTS, seed=gen).get_negative_sample(target), a)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: UnigramSampler(np.array([0, 1]), power=-0.5), "power must be a finite number >= 0, got -0.5"),
        (lambda: UnigramSampler(np.array([0, 1]), power=float("nan")), "got nan"),
        (lambda: UnigramSampler(np.array([0, 1]), sample_size=0), "sample_size must be an integer >= 1, got 0"),
        (lambda: UnigramSampler(np.array([0, 1]), sample_size=2.5), "got 2.5"),
        (lambda: UnigramSampler(np.zeros(0, dtype=np.int32)), "corpus is empty"),
        (lambda: UnigramSampler(np.array([0, -1, 2])), r"negative word id \(-1\)"),
        (lambda: UnigramSampler(np.array([3, 3, 3])), "at least 2 words with positive probability, got 1"),
        (lambda: UnigramSampler.from_counts(np.array([0, 0])), "all counts are 0"),
        (lambda: UnigramSampler.from_counts(np.array([4, -1])), ">= 0, got -1"),
        (lambda: UnigramSampler.from_counts(np.zeros(0)), "non-empty 1-D"),
    ],
)
def test_sampler_construction_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sampler_target_errors_name_the_id():
    sampler = UnigramSampler.from_counts(COUNTS)
    with pytest.raises(ValueError, match=r"target id 7 is outside \[0, 7\)"):
        sampler.get_negative_sample(np.array([0, 7]))
    with pytest.raises(ValueError, match=r"target id -1 is outside \[0, 7\)"):
        sampler.get_negative_sample(np.array([-1, 3]))
    with pytest.raises(ValueError, match="integer word ids"):
        sampler.get_negative_sample(np.array([0.5]))
    # a single word is fine when no exclusion is needed
    single = UnigramSampler(np.array([2, 2]), exclude_target=False, seed=0)
    assert single.get_negative_sample(np.array([0, 1, 2])).tolist() == [[2] * 5] * 3


def test_sampler_one_million_words_cost_follows_the_batch():
    """V = 1,000,000: the table is built once; each 1,000 x 5 call is a searchsorted, so many
    calls run quickly (the book's per-row renormalisation would be 1,000 x O(V) per call)."""
    counts = np.random.default_rng(0).zipf(1.3, size=1_000_000).clip(max=10**7)
    sampler = UnigramSampler.from_counts(counts, seed=0)
    assert sampler.vocab_size == 1_000_000
    rng = np.random.default_rng(1)
    for _ in range(20):
        target = rng.integers(0, 1_000_000, size=1000)
        target[:10] = np.argmax(counts)  # the most frequent word as a target too
        out = sampler.get_negative_sample(target)
        assert out.shape == (1000, 5) and out.dtype == np.int32
        assert not (out == target[:, None]).any()
        assert out.min() >= 0 and out.max() < 1_000_000


def test_with_seed_gives_the_same_distribution_with_a_generator_of_its_own():
    sampler = UnigramSampler.from_counts(np.array([5, 1, 3, 0, 9]), sample_size=3, seed=0)
    state = sampler.rng.bit_generator.state
    a, b = sampler.with_seed(4), sampler.with_seed(4)
    assert a.rng is not sampler.rng and a.p is sampler.p
    targets = np.array([0, 2, 4] * 200)
    np.testing.assert_array_equal(a.get_negative_sample(targets), b.get_negative_sample(targets))
    assert sampler.rng.bit_generator.state == state  # the original's generator did not move
    np.testing.assert_array_equal(sampler.with_seed(9).get_negative_sample(targets),
                                  UnigramSampler.from_counts(np.array([5, 1, 3, 0, 9]), sample_size=3,
                                                             seed=9).get_negative_sample(targets))
