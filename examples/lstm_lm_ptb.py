"""The book's LSTM language model on the Penn Treebank: train, report perplexity, sample text.

Trains ``LSTMLM`` with the book's ``Rnnlm`` settings (1 layer, wordvec 100, hidden 100, batch 20,
time 35, SGD lr 20, global-norm clipping at 0.25, 4 epochs) by truncated backpropagation through
time, prints the validation perplexity after every epoch and the test perplexity at the end, and
samples a sentence starting with "the company".

    python examples/lstm_lm_ptb.py --ptb-dir /path/to/ptb                 # the full run (book: test ppl 137.2)
    python examples/lstm_lm_ptb.py --ptb-dir /path/to/ptb --fast --out /tmp/lm   # seconds

``--fast`` trains a small model on the first 20,000 words for one epoch and evaluates on the
first 5,000 validation and test words. Writes OUT/weights.npz, OUT/perplexity.png and
OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import os

from tinygrad_nlp.io import write_text_atomic
from tinygrad_nlp.models import LSTMLM
from tinygrad_nlp.optimizers import SGD
from tinygrad_nlp.text import load_ptb
from tinygrad_nlp.train import LMTrainer, perplexity


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ptb-dir", default=None, help="directory with ptb.*.txt (else $TINYGRAD_NLP_PTB_DIR, the cache)")
    p.add_argument("--fast", action="store_true", help="a small model on 20,000 words for one epoch")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--out", default="runs/lstm-lm-ptb")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args()

    train, word_to_id, id_to_word = load_ptb("train", data_dir=args.ptb_dir)
    valid, _, _ = load_ptb("valid", data_dir=args.ptb_dir)
    test, _, _ = load_ptb("test", data_dir=args.ptb_dir)
    size, epochs = (32, 1) if args.fast else (100, 4)
    if args.fast:
        train, valid, test = train[:20_000], valid[:5_000], test[:5_000]
    epochs = args.epochs or epochs
    V = len(word_to_id)
    print(f"PTB: {len(train):,} training words, vocabulary {V:,}; LSTM 1 x {size}, {epochs} epoch(s)")

    model = LSTMLM(V, wordvec_size=size, hidden_size=size, seed=args.seed)
    optimizer = SGD(lr=20.0, clip_norm=0.25).setup(model)
    trainer = LMTrainer(model, optimizer, progress=not args.quiet)
    trainer.fit(train, max_epoch=epochs, batch_size=20, time_size=35, valid_corpus=valid)
    for record in trainer.history["eval"]:
        print(f"epoch {record['epoch']}: train perplexity {record['train_perplexity']:.1f}, "
              f"valid perplexity {record['valid_perplexity']:.1f}")
    test_ppl = perplexity(model, test)
    print(f"test perplexity {test_ppl:.1f} ({trainer.words_per_second:,.0f} words/s)")

    start = [word_to_id["the"], word_to_id["company"]]
    ids = model.generate(start, 30, top_k=50, seed=args.seed)
    print("sample: the company " + " ".join(id_to_word[int(i)] for i in ids).replace("<eos>", "."))

    os.makedirs(args.out, exist_ok=True)
    model.save_weights(os.path.join(args.out, "weights.npz"))
    trainer.plot(os.path.join(args.out, "perplexity.png"))
    summary = {"epochs": epochs, "hidden": size, "test_perplexity": test_ppl, "history": trainer.history["eval"],
               "train_seconds": trainer.seconds, "words_per_second": trainer.words_per_second}
    write_text_atomic(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
