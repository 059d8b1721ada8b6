"""Negative sampling speed: UnigramSampler vs the book's per-row ``np.random.choice(p=...)`` loop.

For V = 10,000 and V = 1,000,000 (Zipf-like counts) this times one call drawing 1,000 x 5
negatives that exclude each row's target, with tinygrad_nlp.text.UnigramSampler (cumulative
table built once + np.searchsorted) and with the book's loop, which copies p, zeroes the target,
renormalises and calls np.random.choice for every row -- O(V) work per row. The two are measured
in the same run and printed as a ratio.

The book's loop is exactly linear in the rows, so at V = 1,000,000 it is timed on fewer rows
(``--book-rows``, default 20) and scaled to 1,000; ``--book-rows 1000`` times it in full
(about a minute). The book draws each row without replacement (``replace=False``); the sampler
draws with replacement, as word2vec does. Table construction time is printed separately.

    python benchmarks/bench_sampler.py [--repeat 7] [--book-rows 20]
"""

import argparse
import time

import numpy as np

from tinygrad_nlp.text import UnigramSampler
from _timing import best_of

BATCH, SAMPLE_SIZE, POWER = 1000, 5, 0.75


def book_negative_sample(word_p, target, sample_size):
    """The book's CPU version, written out: one O(V) renormalisation and choice per row."""
    batch_size = target.shape[0]
    out = np.zeros((batch_size, sample_size), dtype=np.int32)
    for i in range(batch_size):
        p = word_p.copy()
        p[target[i]] = 0
        p /= p.sum()
        out[i, :] = np.random.choice(len(word_p), size=sample_size, replace=False, p=p)
    return out




def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="best of this many timings")
    parser.add_argument("--book-rows", type=int, default=20,
                        help="rows of the book's loop timed at V=1,000,000 (scaled to 1,000)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    np.random.seed(0)
    print(f"negative sampling, {BATCH} x {SAMPLE_SIZE} draws excluding the target, power {POWER}")
    print(f"{'V':>10} {'build ms':>9} {'sampler ms':>11} {'book ms':>12} {'book/sampler':>13}")
    for V in (10_000, 1_000_000):
        counts = rng.zipf(1.3, size=V).clip(max=10**7)
        t0 = time.perf_counter()
        sampler = UnigramSampler.from_counts(counts, power=POWER, sample_size=SAMPLE_SIZE, seed=0)
        build = time.perf_counter() - t0
        target = rng.integers(0, V, size=BATCH)
        ours = best_of(lambda: sampler.get_negative_sample(target), args.repeat)

        rows = BATCH if V <= 10_000 else max(1, min(args.book_rows, BATCH))
        book_repeat = args.repeat if rows * V <= 10**8 else 1
        book = best_of(lambda: book_negative_sample(sampler.p.copy(), target[:rows], SAMPLE_SIZE), book_repeat)
        book *= BATCH / rows
        note = "" if rows == BATCH else f"  (timed on {rows} rows, scaled)"
        print(f"{V:>10,} {build * 1e3:>9.1f} {ours * 1e3:>11.3f} {book * 1e3:>12.1f} {book / ours:>12.0f}x{note}")


if __name__ == "__main__":
    main()
