"""Language-model quality on PTB: train an ``LSTMLM`` with a published recipe, report test perplexity.

    python benchmarks/bench_lm_quality.py --recipe book      # the book's Rnnlm: goal test ppl <= 137.2
    python benchmarks/bench_lm_quality.py --recipe zaremba-small   # Zaremba et al. 2014 small: <= 115

Recipes (losses are means over the N*T words of a window, so Zaremba et al.'s lr 1 and clip 5 on
a loss summed over the T = 20 steps become lr 20 and clip 0.25 here):

* ``book``: 1-layer LSTM, wordvec 100, hidden 100, batch 20, time 35, SGD lr 20, clip 0.25,
  4 epochs, the book's initialisation (the book's ch06 ``train_rnnlm.py``).
* ``zaremba-small``: 2 layers x 200, time 20, batch 20, U(-0.1, 0.1) init, SGD lr 20 (= 1 x T)
  divided by 2 after every epoch from the 5th, clip 0.25 (= 5 / T), 13 epochs, no dropout.
* ``better``: the book's ``BetterRnnlm``: 2 layers x 650, dropout 0.5, tied weights, lr 20
  divided by 4 when validation perplexity stops improving, clip 0.25, time 35, batch 20.

Writes ``summary.json`` and a per-epoch checkpoint to ``--out``; run again with ``--resume`` to
continue an interrupted run exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")

RECIPES = {
    "book": dict(wordvec=100, hidden=100, layers=1, dropout=0.0, tie=False, batch=20, time=35, lr=20.0,
                 clip=0.25, epochs=4, init_scale=None, schedule="constant", decay=4.0, decay_after=0),
    "zaremba-small": dict(wordvec=200, hidden=200, layers=2, dropout=0.0, tie=False, batch=20, time=20, lr=20.0,
                          clip=0.25, epochs=13, init_scale=0.1, schedule="step", decay=2.0, decay_after=4),
    "better": dict(wordvec=650, hidden=650, layers=2, dropout=0.5, tie=True, batch=20, time=35, lr=20.0,
                   clip=0.25, epochs=40, init_scale=None, schedule="plateau", decay=4.0, decay_after=0),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", choices=sorted(RECIPES), default="book")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epoch count")
    p.add_argument("--ptb-dir", default=os.environ.get("TINYGRAD_NLP_PTB_DIR", os.path.join(SHARED, "ptb")))
    p.add_argument("--out", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from tinygrad_nlp import text
    from tinygrad_nlp.models import LSTMLM
    from tinygrad_nlp.optimizers import SGD
    from tinygrad_nlp.train import LMTrainer, perplexity

    r = dict(RECIPES[args.recipe])
    if args.epochs is not None:
        r["epochs"] = args.epochs
    out = args.out or os.path.join("runs", f"lm-{args.recipe}")
    os.makedirs(out, exist_ok=True)
    train, w2i, _ = text.load_ptb("train", data_dir=args.ptb_dir)
    valid, _, _ = text.load_ptb("valid", data_dir=args.ptb_dir)
    test, _, _ = text.load_ptb("test", data_dir=args.ptb_dir)
    model = LSTMLM(len(w2i), r["wordvec"], r["hidden"], num_layers=r["layers"], dropout=r["dropout"],
                   tie_weights=r["tie"], init_scale=r["init_scale"], seed=args.seed)
    opt = SGD(lr=r["lr"], clip_norm=r["clip"]).setup(model)
    trainer = LMTrainer(model, opt, progress=sys.stderr.isatty())

    t_start = time.perf_counter()
    t_epoch = [time.perf_counter(), 0]

    def log(trainer, epoch, step, loss):  # a line every 100 steps when the output is a file
        if step == 1:
            t_epoch[:] = [time.perf_counter(), 0]
        t_epoch[1] += r["batch"] * r["time"]
        if step % 100 == 0 and not sys.stderr.isatty():
            rate = t_epoch[1] / (time.perf_counter() - t_epoch[0])
            print(f"epoch {epoch} step {step} loss {loss:.3f} words/s {rate:,.0f} lr {trainer.optimizer.lr:g}", flush=True)

    trainer.fit(train, max_epoch=r["epochs"], batch_size=r["batch"], time_size=r["time"], valid_corpus=valid,
                schedule=r["schedule"], decay_factor=r["decay"], decay_after=r["decay_after"],
                checkpoint_dir=out, resume=args.resume, callback=log)
    for rec in trainer.history["eval"]:
        print(json.dumps(rec), flush=True)
    test_ppl = perplexity(model, test, batch_size=10, time_size=35)
    summary = {"recipe": args.recipe, **r, "test_perplexity": test_ppl, "epochs_done": trainer.epoch,
               "train_seconds": trainer.seconds, "wall_seconds_this_run": time.perf_counter() - t_start,
               "words_per_second": trainer.words_per_second, "history": trainer.history["eval"]}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{args.recipe}: test perplexity {test_ppl:.2f} after {trainer.epoch} epochs, "
          f"{trainer.seconds:.0f} s of training, {trainer.words_per_second:,.0f} words/s")


if __name__ == "__main__":
    main()
