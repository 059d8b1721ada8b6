"""The book's chapter 8 experiment: attention learns to rewrite dates, and shows where it looks.

AttentionSeq2seq reads a date written in one of many forms ("march 3, 1999", "3/3/99",
"Wednesday, March 3, 1999", ...), reversed, and writes it in ISO form (1999-03-03). Each decoder
step attends over every encoder state; the heatmap drawn at the end shows which characters of the
question each character of the answer was read from (the year digits from the year, the month
from the month's name).

    python examples/attention_dates.py --data ../shared/data/seq/date.txt   # the book's file, ~99.9 %
    python examples/attention_dates.py --fast --out /tmp/dates              # seconds, a rough model

Writes OUT/weights.npz, summary.json, accuracy.png, attention.png and, for each of a few new
questions, OUT/attention-N.png.
"""

from __future__ import annotations

import argparse
import os

from tinygrad_nlp.seq2seq.commands import predict_text, train

QUESTIONS = ["march 3, 1999", "Sunday, July 4, 2010", "12/25/84"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="dates", help='"dates" (generated, ten written forms) or the book\'s date.txt')
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--fast", action="store_true", help="1,000 generated dates, 2 epochs, hidden 32")
    p.add_argument("--out", default="runs/attention-dates")
    args = p.parse_args(argv)
    size, epochs, hidden = (1000, 2, 32) if args.fast else (50_000, args.epochs, args.hidden)
    train(args.data, model_kind="attention", reverse=True, wordvec=16, hidden=hidden, epochs=epochs, batch_size=128,
          lr=0.001, clip=5.0, beam=5, out=args.out, quiet=True, size=size, samples=5)
    for i, question in enumerate(QUESTIONS):
        plot = os.path.join(args.out, f"attention-{i}.png")
        answer = predict_text(args.out, [question], plot=plot)[0]
        print(f"{question!r} -> {answer!r} (attention drawn in {plot})")


if __name__ == "__main__":
    main()
