"""CBOW with negative sampling on the Penn Treebank with the PTB recipe, then an evaluation.

The recipe is the one ``tinygrad-nlp train --corpus ptb`` uses (tinygrad_nlp.cli.RECIPES["ptb"]):
Adam with a linearly decayed learning rate, batches of 1,000, H = 100, a window of 5 (randomly
shrunk per target for CBOW, as in word2vec), 5 negatives, 10 epochs. After training the vectors are scored on Mikolov's analogy questions
and on WordSim-353, saved in word2vec format (gensim reads them), and a few words' nearest
neighbours are printed.

    python examples/cbow_ptb.py --ptb-dir /path/to/ptb                    # the full recipe
    python examples/cbow_ptb.py --ptb-dir /path/to/ptb --epochs 1 --max-steps 20 --out /tmp/cbow

``--max-steps N`` trains each epoch on the first N batches only (seconds instead of minutes).
The evaluation files default to the copies gensim ships (``--analogies none`` skips one).
Writes OUT/vectors.txt, OUT/weights.npz, OUT/loss.png, OUT/graph.svg and OUT/summary.json;
with ``--checkpoint`` also OUT/checkpoint.npz after every epoch (``--resume`` continues).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tinygrad_nlp.cli import RECIPES
from tinygrad_nlp.io import write_text_atomic
from tinygrad_nlp.models import CBOW, SkipGram
from tinygrad_nlp.optimizers import Adam, LinearDecay
from tinygrad_nlp.text import create_contexts_target, load_ptb
from tinygrad_nlp.train import Trainer
from tinygrad_nlp.vectors import WordVectors
from tinygrad_nlp.viz import GraphvizNotFoundError

MODELS = {"cbow": CBOW, "skipgram": SkipGram}
QUERIES = ("you", "year", "car", "toyota", "good")


def gensim_data(name):
    """Path of an evaluation file that gensim ships (questions-words.txt, wordsim353.tsv), or None."""
    try:
        from gensim.test.utils import datapath
    except ImportError:
        return None
    path = datapath(name)
    return path if os.path.exists(path) else None


def resolve(choice, gensim_name):
    if choice == "none":
        return None
    if choice == "auto":
        path = gensim_data(gensim_name)
        if path is None:
            print(f"note: no {gensim_name} (install gensim or pass a path); skipping that evaluation")
        return path
    return choice


def build_parser(model_name):
    recipe = RECIPES["ptb"]
    p = argparse.ArgumentParser(description=f"{model_name} on PTB with the recipe of `tinygrad-nlp train --corpus ptb`, then evaluation.")
    p.add_argument("--ptb-dir", default=None, help="folder with ptb.train.txt (else $TINYGRAD_NLP_PTB_DIR, the cache, download)")
    p.add_argument("--epochs", type=int, default=recipe["epochs"])
    p.add_argument("--max-steps", type=int, default=None, metavar="N", help="train each epoch on the first N batches only")
    p.add_argument("--batch-size", type=int, default=recipe["batch_size"])
    p.add_argument("--hidden", type=int, default=recipe["hidden"])
    p.add_argument("--window", type=int, default=recipe["window"])
    p.add_argument("--negative", type=int, default=recipe["negative"])
    p.add_argument("--lr", type=float, default=recipe["lr"])
    p.add_argument("--decay", action=argparse.BooleanOptionalAction, default=recipe["decay"],
                   help="decay the learning rate linearly over the run")
    if model_name == "cbow":
        p.add_argument("--dynamic-window", action=argparse.BooleanOptionalAction, default=recipe["dynamic_window"],
                       help="average only the contexts within a random distance 1..window per target (word2vec)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join("runs", f"{model_name}_ptb"))
    p.add_argument("--analogies", default="auto", metavar="PATH", help="questions-words.txt ('auto': gensim's copy, 'none': skip)")
    p.add_argument("--word-pairs", default="auto", metavar="PATH", help="wordsim353.tsv ('auto': gensim's copy, 'none': skip)")
    p.add_argument("--checkpoint", action="store_true", help="save OUT/checkpoint.npz after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run(model_name, argv=None):
    args = build_parser(model_name).parse_args(argv)
    t0 = time.perf_counter()

    # 1. Data: word ids, then (contexts, target) windows.
    corpus, word_to_id, id_to_word = load_ptb("train", data_dir=args.ptb_dir)
    contexts, target = create_contexts_target(corpus, window_size=args.window)
    if args.max_steps is not None:
        n = min(len(target), args.max_steps * args.batch_size)
        contexts, target = contexts[:n], target[:n]
    V = len(word_to_id)
    print(f"PTB: {len(corpus):,} tokens, {V:,} words; training on {len(target):,} targets")

    # 2. Model and optimizer.
    options = {"dynamic_window": args.dynamic_window} if model_name == "cbow" else {}
    model = MODELS[model_name](V, args.hidden, args.window, corpus, sample_size=args.negative, seed=args.seed, **options)
    lr = LinearDecay(args.lr) if args.decay else args.lr   # Trainer.fit tells the schedule the run's length
    optimizer = Adam(lr=lr).setup(model)

    # 3. Train.
    os.makedirs(args.out, exist_ok=True)
    trainer = Trainer(model, optimizer, progress=not args.quiet)
    trainer.fit(contexts, target, max_epoch=args.epochs, batch_size=args.batch_size, seed=args.seed,
                checkpoint_dir=args.out if (args.checkpoint or args.resume) else None, resume=args.resume)
    print(f"trained {trainer.epoch} epochs in {trainer.seconds:.1f} s "
          f"({trainer.targets_per_second:,.0f} targets/s); loss per epoch: "
          + ", ".join(f"{x:.4f}" for x in trainer.epoch_loss))

    # 4. Evaluate.
    vectors = WordVectors.from_ids(model.word_vecs, id_to_word)
    summary = {"model": model_name, "epochs": trainer.epoch, "targets": int(len(target)), "settings": vars(args),
               "epoch_loss": trainer.epoch_loss, "train_seconds": round(trainer.seconds, 2),
               "targets_per_second": round(trainer.targets_per_second)}
    analogies = resolve(args.analogies, "questions-words.txt")
    if analogies:
        result = vectors.evaluate_analogies(analogies)
        print(result.summary())
        summary.update(analogy_accuracy=result.accuracy, analogy_correct=result.correct, analogy_total=result.total)
    word_pairs = resolve(args.word_pairs, "wordsim353.tsv")
    if word_pairs:
        result = vectors.evaluate_word_pairs(word_pairs)
        print("WordSim-353:", result.summary())
        summary.update(wordsim_spearman=result.spearman, wordsim_pairs=result.pairs_used)
    for query in QUERIES:
        neighbours = ", ".join(f"{w} ({s:.2f})" for w, s in vectors.most_similar(query, topn=5))
        print(f"  {query:>8s} -> {neighbours}")

    # 5. Save.
    written = [os.path.join(args.out, name) for name in ("vectors.txt", "weights.npz", "summary.json")]
    vectors.save_word2vec_format(written[0])
    model.save_weights(written[1])
    try:
        loss_png = os.path.join(args.out, "loss.png")
        trainer.plot(loss_png, title=f"{type(model).__name__} on PTB")
        written.append(loss_png)
    except ImportError as err:
        print(f"note: {err}")
    try:
        model.plot(contexts[:2], target[:2], to_file=os.path.join(args.out, "graph.svg"))
        written.append(os.path.join(args.out, "graph.svg"))
    except GraphvizNotFoundError as err:
        print(f"note: {err}")
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    write_text_atomic(written[2], json.dumps(summary, indent=2, default=float) + "\n")
    print("wrote " + ", ".join(written))
    return 0


def main(argv=None):
    return run("cbow", argv)


if __name__ == "__main__":
    sys.exit(main())
