"""Analogy evaluation speed: WordVectors.evaluate_analogies on the full questions-words file.

Uses random float32 vectors (10,000 x 100 by default) for the PTB vocabulary (the book's word
ids: first appearance in ptb.train.txt), so 4,716 of the 19,544 questions are answerable. If
gensim is importable, its KeyedVectors.evaluate_word_analogies runs on the same vectors in the
same run, its counts are checked against ours, and the time ratio is printed.

    python benchmarks/bench_vectors.py [--data ../shared/data] [--dim 100] [--repeat 3]

On a busy machine gensim's thousands of small BLAS calls suffer most from thread contention;
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 gives steadier (single-core) figures for both.
"""

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from tinygrad_nlp.vectors import WordVectors

REPO = Path(__file__).resolve().parents[1]


def ptb_vocabulary(ptb_train):
    text = Path(ptb_train).read_text(encoding="utf-8")
    return list(dict.fromkeys(text.replace("\n", " <eos> ").split()))


def best_of(fn, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main():
    default_data = os.environ.get("TINYGRAD_NLP_SHARED_DATA", str(REPO.parent / "shared" / "data"))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=default_data, help="folder holding ptb/ and eval/")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    data = Path(args.data)
    questions = data / "eval" / "questions-words.txt"
    vocab = ptb_vocabulary(data / "ptb" / "ptb.train.txt")
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((len(vocab), args.dim)).astype(np.float32)
    wv = WordVectors(matrix, vocab)
    wv.unit_vectors  # normalise once, as any caller evaluating repeatedly would

    t_ours, r = best_of(lambda: wv.evaluate_analogies(questions), args.repeat)
    print(f"{len(vocab)} x {args.dim} float32, {r.total} of {r.total + r.skipped} questions answerable, "
          f"best of {args.repeat}")
    print(f"  tinygrad_nlp evaluate_analogies      {t_ours:7.3f} s   accuracy {r.accuracy:.4%}")
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        print("  gensim not installed: no comparison")
        return
    logging.getLogger("gensim").setLevel(logging.WARNING)
    kv = KeyedVectors(args.dim)
    kv.add_vectors(vocab, matrix)
    kv.fill_norms()
    t_gensim, (score, sections) = best_of(
        lambda: kv.evaluate_word_analogies(str(questions), restrict_vocab=len(vocab)), args.repeat)
    total = sections[-1]
    n_correct, n_total = len(total["correct"]), len(total["correct"]) + len(total["incorrect"])
    same = "same counts" if (n_correct, n_total) == (r.correct, r.total) else "COUNTS DIFFER"
    print(f"  gensim evaluate_word_analogies       {t_gensim:7.3f} s   accuracy {score:.4%} ({same})")
    print(f"  gensim / tinygrad_nlp time ratio     {t_gensim / t_ours:7.1f}x")


if __name__ == "__main__":
    main()
