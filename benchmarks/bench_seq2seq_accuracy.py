"""Seq2seq accuracy on the book's addition.txt and date.txt (its split), through the CLI's training.

    python benchmarks/bench_seq2seq_accuracy.py book-addition    # Peeky, reversed, the book's settings
    python benchmarks/bench_seq2seq_accuracy.py book-dates       # attention, reversed, the book's settings
    python benchmarks/bench_seq2seq_accuracy.py recipe-addition  # our recipe for addition (docs/seq2seq.md)
    python benchmarks/bench_seq2seq_accuracy.py --report runs/bench-seq2seq/*   # table of finished runs

Each experiment is one ``tinygrad-nlp seq2seq train`` run (the command is printed) writing to
``--out-root/NAME``; its summary.json holds the test accuracy after every epoch, greedy and beam
(width 5) accuracy of the final weights, and the training seconds per epoch. The book reports
about 98 % for the first and 99.9 % for the second. Long: run in the background with ``nice``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SHARED = os.environ.get("TINYGRAD_NLP_SHARED_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))

EXPERIMENTS = {
    "book-addition": ["--data", "{seq}/addition.txt", "--model", "peeky", "--reverse", "--wordvec", "16",
                      "--hidden", "128", "--batch-size", "128", "--epochs", "25", "--lr", "0.001", "--clip-norm", "5"],
    "book-dates": ["--data", "{seq}/date.txt", "--model", "attention", "--reverse", "--wordvec", "16",
                   "--hidden", "256", "--batch-size", "128", "--epochs", "10", "--lr", "0.001", "--clip-norm", "5"],
    # Ours: attention instead of Peeky, a larger first learning rate decayed linearly to zero.
    "recipe-addition": ["--data", "{seq}/addition.txt", "--model", "attention", "--reverse", "--wordvec", "16",
                        "--hidden", "128", "--batch-size", "128", "--epochs", "25", "--lr", "0.002", "--decay",
                        "--clip-norm", "5"],
}


def report(dirs):
    print("| run | model | epochs | greedy | beam 5 | best epoch (greedy) | train s/epoch (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d in dirs:
        path = os.path.join(d, "summary.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
        per_epoch = s["accuracy_per_epoch"]
        best = max(range(len(per_epoch)), key=per_epoch.__getitem__)
        secs = sorted(s["train_seconds_per_epoch"])
        beam = f"{100 * s['beam_accuracy']:.2f} %" if s.get("beam_accuracy") is not None else "-"
        print(f"| {os.path.basename(d)} | {s['model']} h{s['hidden']}{' decay' if s.get('decay') else ''} | "
              f"{s['epochs']} | {100 * s['accuracy']:.2f} % | {beam} | {best + 1}: {100 * per_epoch[best]:.2f} % | "
              f"{secs[len(secs) // 2]:.1f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", nargs="?", choices=sorted(EXPERIMENTS))
    ap.add_argument("--out-root", default="runs/bench-seq2seq")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report", nargs="*", default=None, metavar="DIR")
    args = ap.parse_args()
    if args.report is not None:
        report(args.report)
        return 0
    if args.experiment is None:
        ap.error("name an experiment or use --report")
    from tinygrad_nlp.cli import main as cli

    argv = ["seq2seq", "train", *(a.format(seq=os.path.join(SHARED, "seq")) for a in EXPERIMENTS[args.experiment]),
            "--seed", str(args.seed), "--out", os.path.join(args.out_root, args.experiment), "--quiet"]
    print("tinygrad-nlp " + " ".join(shlex.quote(a) for a in argv), flush=True)
    status = cli(argv)
    report([os.path.join(args.out_root, args.experiment)])
    return status


if __name__ == "__main__":
    sys.exit(main())
