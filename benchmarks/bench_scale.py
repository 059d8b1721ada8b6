"""Corpora larger than memory: peak memory and speed of `tinygrad-nlp train` against corpus length.

Builds text corpora of the requested lengths by repeating PTB's training text (kept under
``--data-dir``, never in the repository), trains one epoch on each through the command line, in
a fresh process each, and prints tokens/s, the time spent before training, and the process's
peak resident memory. The corpus is streamed into an id file and batches are cut from it as they
are needed, so the peak should not grow with the corpus (goal: 100 M tokens within 1.10x of
10 M).

    python benchmarks/bench_scale.py --data-dir /tmp/scale --tokens 10000000 100000000
    python benchmarks/bench_scale.py --data-dir /tmp/scale --load-text 50   # load_text's peak on a 50 MB file

``--load-text MB`` measures the in-memory reader instead (:func:`tinygrad_nlp.text.load_text`):
the peak of what it allocates (tracemalloc, which numpy reports to) against the final id array
and the vocabulary (goal: at most twice the id array plus the vocabulary).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")
PTB_TOKENS = 929_589


def repeated_ptb(ptb_dir, data_dir, tokens):
    """A text file of about ``tokens`` tokens: PTB's training text repeated (built once)."""
    copies = max(1, round(tokens / PTB_TOKENS))
    path = os.path.join(data_dir, f"ptb_x{copies}.txt")
    if not os.path.exists(path):
        with open(os.path.join(ptb_dir, "ptb.train.txt"), "rb") as f:
            text = f.read()
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            for _ in range(copies):
                f.write(text)
        os.replace(tmp, path)
    return path, copies * PTB_TOKENS


def run_cli_measured(corpus, out, extra):
    """One CLI training in a child process: (summary dict, wall seconds, the child's peak RSS in bytes)."""
    cmd = [sys.executable, "-m", "tinygrad_nlp.cli", "train", "--corpus", corpus, "--epochs", "1", "--quiet",
           "--out", out, *extra]
    t0 = time.perf_counter()
    with open(os.path.join(os.path.dirname(out) or ".", os.path.basename(out) + ".log"), "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"training failed, see {log.name}")
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    return summary, wall, usage.ru_maxrss * 1024


def bench_load_text(ptb_dir, data_dir, megabytes):
    import tracemalloc

    import numpy as np

    from tinygrad_nlp.text import load_text

    path, _ = repeated_ptb(ptb_dir, data_dir, megabytes * 2**20 / 5_101_618 * PTB_TOKENS)
    size = os.path.getsize(path)
    tracemalloc.start()
    t0 = time.perf_counter()
    corpus, w2i, i2w = load_text(path)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    ids = corpus.nbytes
    vocab = held - ids  # what stays allocated besides the ids: the two vocabulary dicts
    print(f"load_text on {size / 2**20:.0f} MB ({len(corpus):,} tokens, {len(w2i):,} words) in {seconds:.1f} s")
    print(f"  final id array {ids / 2**20:.1f} MB, vocabulary (dicts kept) {vocab / 2**20:.1f} MB")
    print(f"  peak allocated while reading {peak / 2**20:.1f} MB = {peak / (2 * ids + vocab):.2f}x "
          f"(2 x ids + vocabulary) (goal <= 1.00x)")
    assert np.all(corpus >= 0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ptb-dir", default=os.environ.get("TINYGRAD_NLP_PTB_DIR", os.path.join(SHARED, "ptb")))
    p.add_argument("--data-dir", required=True, help="where the big corpora and runs go (not the repository)")
    p.add_argument("--tokens", type=int, nargs="*", default=[10_000_000, 100_000_000])
    p.add_argument("--load-text", type=int, default=None, metavar="MB", help="measure load_text on a file this big")
    p.add_argument("extra", nargs="*", help="more `tinygrad-nlp train` options (after --)")
    args = p.parse_args()
    os.makedirs(args.data_dir, exist_ok=True)
    if args.load_text:
        bench_load_text(args.ptb_dir, args.data_dir, args.load_text)
        return
    rows = []
    for tokens in args.tokens:
        path, n = repeated_ptb(args.ptb_dir, args.data_dir, tokens)
        out = os.path.join(args.data_dir, f"run_{n}")
        summary, wall, peak = run_cli_measured(path, out, args.extra)
        rows.append((n, os.path.getsize(path), summary, wall, peak))
        print(f"{n:>12,} tokens ({os.path.getsize(path) / 2**20:,.0f} MB): wall {wall:7.1f} s, before training "
              f"{summary['setup_seconds']:6.1f} s, training {summary['train_seconds']:7.1f} s "
              f"({summary['targets_per_second']:,} targets/s, {summary['workers']} workers), "
              f"peak RSS {peak / 2**20:,.0f} MB", flush=True)
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(f"peak RSS at {large[0]:,} tokens is {large[4] / small[4]:.3f}x that at {small[0]:,} "
              f"({large[0] / small[0]:.1f}x the tokens; goal <= 1.10x)")
    print(f"machine load (1/5/15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
