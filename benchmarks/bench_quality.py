"""Word-vector quality on PTB: `tinygrad-nlp train` (CBOW, the PTB recipe) against the references.

Trains through the command line exactly as a user would, then scores the vectors on the analogy
questions restricted to the PTB vocabulary (4,716 questions) and on WordSim-353 (Spearman), and
prints them beside gensim's and the book's figures. With ``--gensim`` (needs the ``bench``
extra) gensim 4's Word2Vec is trained in the same run with the same settings and scored by the
same evaluator.

    python benchmarks/bench_quality.py --ptb-dir ../shared/data/ptb --eval-dir ../shared/data/eval [--gensim]

Goal (the models issue): analogy >= 4.5 % and WordSim-353 >= 0.21 within 10 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")

REFERENCES = [  # measured on this kind of machine (../shared/data/README.md)
    ("gensim 4.4 Word2Vec (per-word SGD, lr 0.025 decayed)", 0.042, 0.198),
    ("the book's published CBOW vectors (Adam, batch 100)", 0.016, 0.147),
]


def score(vectors, eval_dir):
    a = vectors.evaluate_analogies(os.path.join(eval_dir, "questions-words.txt"))
    w = vectors.evaluate_word_pairs(os.path.join(eval_dir, "wordsim353.tsv"))
    return a, w


def run_gensim(ptb_dir, eval_dir, seed):
    from gensim.models import Word2Vec

    from tinygrad_nlp.vectors import WordVectors

    with open(os.path.join(ptb_dir, "ptb.train.txt"), encoding="utf-8") as f:
        sentences = [line.split() for line in f if line.strip()]
    t0 = time.perf_counter()
    model = Word2Vec(sentences, vector_size=100, window=5, negative=5, sg=0, min_count=1, sample=0,
                     epochs=10, workers=2, seed=seed)
    seconds = time.perf_counter() - t0
    kv = model.wv
    return WordVectors(kv.vectors, list(kv.index_to_key)), seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ptb-dir", default=os.environ.get("TINYGRAD_NLP_PTB_DIR", os.path.join(SHARED, "ptb")))
    p.add_argument("--eval-dir", default=os.path.join(SHARED, "eval"))
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--gensim", action="store_true", help="also train gensim's Word2Vec in the same run")
    p.add_argument("--out", default=None, help="keep the runs here (default: a temporary directory)")
    p.add_argument("train_args", nargs="*", help="extra options for tinygrad-nlp train (after --)")
    args = p.parse_args()

    from tinygrad_nlp.vectors import WordVectors

    out_root = args.out or tempfile.mkdtemp(prefix="bench_quality_")
    rows = []
    for seed in args.seeds:
        out = os.path.join(out_root, f"seed{seed}")
        cmd = [sys.executable, "-m", "tinygrad_nlp.cli", "train", "--corpus", "ptb", "--ptb-dir", args.ptb_dir,
               "--out", out, "--seed", str(seed), "--quiet", *args.train_args]
        print("$ " + " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        summary = json.load(open(os.path.join(out, "summary.json")))
        vectors = WordVectors.load_word2vec_format(os.path.join(out, "vectors.txt"))
        a, w = score(vectors, args.eval_dir)
        model = {"cbow": "CBOW", "skipgram": "SkipGram", "simple-cbow": "SimpleCBOW"}.get(summary["model"], summary["model"])
        rows.append((f"tinygrad_nlp {model}, seed {seed}", a, w, wall, summary))
    print()
    print(f"{'trainer':58s} {'analogy':>16s} {'WordSim-353':>12s} {'time':>8s}")
    for name, a, w, wall, summary in rows:
        print(f"{name:58s} {a.accuracy * 100:6.2f} % ({a.correct:4d}/{a.total}) {w.spearman:12.3f} {wall:7.0f}s")
    if rows:
        s = rows[0][4]
        print(f"  recipe: {s['model']}, {s['optimizer']} lr {s['lr']} (decay {s['decay']}), batch {s['batch_size']}, "
              f"hidden {s['hidden']}, window {s['window']} (dynamic {s['dynamic_window']}), {s['negative']} negatives, "
              f"{s['epochs']} epochs; {s['targets_per_second']:,} targets/s")
    if args.gensim:
        vectors, seconds = run_gensim(args.ptb_dir, args.eval_dir, args.seeds[0])
        a, w = score(vectors, args.eval_dir)
        print(f"{'gensim Word2Vec, this run (2 workers)':58s} {a.accuracy * 100:6.2f} % ({a.correct:4d}/{a.total}) "
              f"{w.spearman:12.3f} {seconds:7.0f}s")
    for name, acc, rho in REFERENCES:
        print(f"{name:58s} {acc * 100:6.2f} %              {rho:12.3f}")


if __name__ == "__main__":
    main()
