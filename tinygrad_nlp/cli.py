"""The ``tinygrad-nlp`` command: train word vectors, inspect them, render model graphs.

    tinygrad-nlp demo                                   # CBOW on the built-in corpus, in seconds
    tinygrad-nlp train --corpus ptb --model cbow --out runs/ptb
    tinygrad-nlp similar runs/ptb/vectors.txt president
    tinygrad-nlp analogy runs/ptb/vectors.txt man king woman
    tinygrad-nlp evaluate runs/ptb/vectors.txt --analogies questions-words.txt --word-pairs wordsim353.tsv
    tinygrad-nlp graph --model cbow --out cbow.svg
    tinygrad-nlp lm train --corpus ptb --out runs/lm   # language models: see tinygrad_nlp.cli_lm
    tinygrad-nlp seq2seq train --data addition --model peeky --reverse --out runs/add
    tinygrad-nlp seq2seq predict runs/dates "march 3, 1999" --plot
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

__all__ = ["main", "RECIPES"]

# Training recipes: defaults per corpus, every value overridable on the command line.
RECIPES = {
    "demo": dict(model="cbow", epochs=3, batch_size=100, hidden=50, window=2, negative=5,
                 optimizer="adam", lr=0.01, decay=False, dynamic_window=False, min_count=1, max_vocab=None),
    # PTB: Adam with the learning rate decayed linearly to zero over the run, big batches, and
    # word2vec's shrunk window (see docs/training.md for how this recipe was chosen).
    "ptb": dict(model="cbow", epochs=10, batch_size=1000, hidden=100, window=5, negative=5,
                optimizer="adam", lr=0.0075, decay=True, dynamic_window=True, min_count=1, max_vocab=None),
    "text": dict(model="cbow", epochs=5, batch_size=1000, hidden=100, window=5, negative=5,
                 optimizer="adam", lr=0.0075, decay=True, dynamic_window=True, min_count=5, max_vocab=None),
}

# Optimizer recipes (``--recipe``), laid over a corpus recipe. "sgd" is word2vec's own: plain SGD
# with the learning rate decayed linearly to zero over the run. The loss is a mean over a batch
# of 1,000 targets and CBOW averages its contexts, so a step moves a row by lr / 1,000 per target
# (W_out) and lr / (1,000 x contexts) (W_in), where word2vec moves both by 0.025 per target:
# lr 80 sits between the two. On PTB after 3 epochs: lr 20 -> 0.38 % analogies, 40 -> 0.81 %,
# 80 -> 1.68 % (WordSim-353 0.17); lr 160 diverges in the first epoch. Adam's recipe does better
# at this batch size (docs/training.md); this one is there for comparison with word2vec. The
# learning rate is given per target and multiplied by the batch size (80 at batch 1,000), so a
# row's step per target stays the same at any batch size (--lr sets it outright).
SGD_LR_PER_TARGET = 0.08
OPTIMIZER_RECIPES = {
    "adam": {},
    "sgd": dict(optimizer="sgd", lr=None, decay=True),  # lr: SGD_LR_PER_TARGET x batch size
}

DEMO_QUERIES = ("monday", "paris", "violin", "red", "mother")


def _print(*args, **kwargs):
    print(*args, **kwargs, flush=True)


# ----- data -----
def load_corpus(spec, ptb_dir=None, min_count=1, max_vocab=None, encoding="utf-8", errors="strict"):
    """``(corpus, word_to_id, id_to_word, name)`` for "demo", "ptb" or a path to a text file."""
    from tinygrad_nlp import text

    if spec == "demo":
        return (*text.load_demo(), "demo")
    if spec == "ptb":
        return (*text.load_ptb("train", data_dir=ptb_dir), "ptb")
    if spec.startswith("ptb:"):
        return (*text.load_ptb(spec.split(":", 1)[1], data_dir=ptb_dir), spec)
    corpus, w2i, i2w = text.load_text(spec, min_count=min_count, max_size=max_vocab, encoding=encoding, errors=errors)
    return corpus, w2i, i2w, "text"


ID_FILE = "corpus.ids.npy"


def stream_corpus(spec, out, min_count=1, max_vocab=None, encoding="utf-8", errors="strict"):
    """``(corpus, words, counts, name)`` for a text file: one streaming pass writes its ids to
    ``out/corpus.ids.npy``, which is memory-mapped; memory does not grow with the text."""
    from tinygrad_nlp.text import stream

    path = os.path.join(out, ID_FILE)
    vocab, _ = stream.build_id_file(spec, path, min_count=min_count, max_size=max_vocab, encoding=encoding,
                                    errors=errors)
    return stream.open_id_file(path), list(vocab.id_to_word), np.asarray(vocab.counts), "text"


# ----- building blocks -----
def build_model(kind, vocab_size, hidden, window, corpus, negative, seed, dynamic_window=False, counts=None):
    from tinygrad_nlp.models import CBOW, SimpleCBOW, SkipGram

    if kind == "cbow":
        return CBOW(vocab_size, hidden, window, corpus, sample_size=negative, seed=seed, dynamic_window=dynamic_window,
                    counts=counts)
    if kind == "skipgram":
        return SkipGram(vocab_size, hidden, window, corpus, sample_size=negative, seed=seed,
                        dynamic_window=dynamic_window, counts=counts)
    if kind == "simple-cbow":
        return SimpleCBOW(vocab_size, hidden, window_size=window, seed=seed)
    raise ValueError(f"unknown model {kind!r}: choose cbow, skipgram or simple-cbow")


def build_optimizer(kind, lr, decay, clip_norm=None):
    from tinygrad_nlp import optimizers as O

    classes = {"adam": O.Adam, "sgd": O.SGD, "adagrad": O.AdaGrad, "momentum": O.MomentumSGD}
    if kind not in classes:
        raise ValueError(f"unknown optimizer {kind!r}: choose {', '.join(classes)}")
    schedule = O.LinearDecay(lr) if decay else lr
    return classes[kind](lr=schedule, clip_norm=clip_norm)


def render_graph(model, contexts, target, out_dir, rankdir="TB"):
    """Render the model's graph for a 2-row batch to graph.svg (graph.dot without Graphviz)."""
    return start_graph(model, contexts, target, out_dir, rankdir)()


def start_graph(model, contexts, target, out_dir, rankdir="TB"):
    """Build the model's graph for a 2-row batch now, render it to graph.svg on a thread of its own.

    Returns ``finish()``, which waits for the drawing and returns its path (graph.dot when no
    Graphviz can draw it). The forward pass runs here, before training, so it draws the same
    random numbers whenever it is called; Graphviz (about a second when it runs as WebAssembly)
    then works while the model trains instead of before.
    """
    from tinygrad_nlp.viz import GraphvizNotFoundError

    path = os.path.join(out_dir, "graph.svg")
    graph = model.graph(contexts[:2], target[:2], rankdir=rankdir)
    result = {}

    def draw():
        try:
            graph.save(path)
            result["path"] = path
        except GraphvizNotFoundError as err:
            result["note"] = str(err)
            result["path"] = os.path.join(out_dir, "graph.dot")
        except BaseException as err:  # handed to finish()
            result["error"] = err

    thread = threading.Thread(target=draw, daemon=True, name="tinygrad_nlp-graph")
    thread.start()

    def finish():
        thread.join()
        if "error" in result:
            raise result["error"]
        if "note" in result:
            _print(f"note: {result['note']}")
        return result["path"]

    return finish


def save_vocab(path, words, counts):
    from tinygrad_nlp.text import Vocabulary

    Vocabulary(words, counts, unk="<unk>" if "<unk>" in words else None).save(path)


def default_workers(batch_size):
    """Every core this process may run on, for batches of at least ``PREFETCH_MIN_BATCH`` rows;
    1 for smaller ones, whose steps are mostly Python (threads would only take turns)."""
    from tinygrad_nlp.train import PREFETCH_MIN_BATCH

    if batch_size < PREFETCH_MIN_BATCH:
        return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ----- commands -----
def cmd_train(args, demo=False):
    from tinygrad_nlp import text
    from tinygrad_nlp.io import write_text_atomic
    from tinygrad_nlp.train import Trainer
    from tinygrad_nlp.vectors import WordVectors

    corpus_kind = "demo" if args.corpus == "demo" else "ptb" if args.corpus.startswith("ptb") else "text"
    recipe = dict(RECIPES[corpus_kind])
    if getattr(args, "recipe", None):
        recipe.update(OPTIMIZER_RECIPES[args.recipe])
    for key in recipe:
        value = getattr(args, key, None)
        if value is not None:
            recipe[key] = value
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1 (got {args.workers})")
    if args.subsample is not None and not (args.subsample > 0 and np.isfinite(args.subsample)):
        raise ValueError(f"--sample must be a number > 0 (got {args.subsample:g})")
    if recipe["lr"] is None:
        recipe["lr"] = SGD_LR_PER_TARGET * recipe["batch_size"]
    t_start = time.perf_counter()
    out = args.out
    os.makedirs(out, exist_ok=True)
    if corpus_kind == "text":  # any size: streamed once into an id file, memory-mapped
        corpus, words, counts, name = stream_corpus(args.corpus, out, recipe["min_count"], recipe["max_vocab"],
                                                    args.encoding, args.encoding_errors)
        i2w = dict(enumerate(words))
    else:
        corpus, w2i, i2w, name = load_corpus(args.corpus, args.ptb_dir, recipe["min_count"], recipe["max_vocab"],
                                             args.encoding, args.encoding_errors)
        words = [i2w[i] for i in range(len(i2w))]
        counts = np.bincount(corpus, minlength=len(words))
    V = len(words)
    keep = text.keep_probabilities(counts, t=args.subsample) if args.subsample else None
    data = text.ContextWindows(corpus, recipe["window"], keep=keep)
    _print(f"corpus {name}: {len(corpus):,} tokens, {V:,} words; {data.num_targets:,} training targets"
           + (" (expected, after subsampling)" if keep is not None else ""))
    if recipe["model"] == "simple-cbow":
        recipe["dynamic_window"] = False  # SimpleCBOW averages a fixed window
    model = build_model(recipe["model"], V, recipe["hidden"], recipe["window"], None, recipe["negative"], args.seed,
                        dynamic_window=recipe["dynamic_window"], counts=counts)
    optimizer = build_optimizer(recipe["optimizer"], recipe["lr"], recipe["decay"], args.clip_norm).setup(model)
    sample_contexts, sample_target = text.create_contexts_target(np.array(corpus[:2 * recipe["window"] + 2]),
                                                                 recipe["window"])
    finish_graph = start_graph(model, sample_contexts, sample_target, out, args.rankdir)

    eval_fn = None
    if args.eval_analogies or args.eval_word_pairs:
        def eval_fn(m, epoch):
            result = evaluate_vectors(WordVectors.from_ids(m.word_vecs, i2w), args.eval_analogies, args.eval_word_pairs)
            _print(f"  epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float)))
            return result

    workers = args.workers if args.workers is not None else default_workers(recipe["batch_size"])
    trainer = Trainer(model, optimizer, progress=not args.quiet, eval_fn=eval_fn, workers=workers)
    setup_seconds = time.perf_counter() - t_start
    trainer.fit(data, max_epoch=recipe["epochs"], batch_size=recipe["batch_size"], seed=args.seed,
                checkpoint_dir=out if args.checkpoint else None, resume=args.resume)
    vectors = WordVectors.from_ids(model.word_vecs, i2w)
    vectors.save_word2vec_format(os.path.join(out, "vectors.txt"))
    model.save_weights(os.path.join(out, "weights.npz"))
    save_vocab(os.path.join(out, "vocab.json"), words, counts)
    loss_path = os.path.join(out, "loss.png")
    try:
        trainer.plot(loss_path, title=f"{type(model).__name__} on {name}")
    except ImportError as err:
        loss_path = None
        _print(f"note: {err}")
    summary = {
        "corpus": name, "tokens": int(len(corpus)), "vocab_size": V, "targets": int(data.num_targets),
        **recipe, "seed": args.seed, "subsample": args.subsample, "workers": trainer.workers,
        "seconds": round(time.perf_counter() - t_start, 2), "setup_seconds": round(setup_seconds, 2),
        "train_seconds": round(trainer.seconds, 2), "targets_per_second": round(trainer.targets_per_second),
        "final_loss": trainer.epoch_loss[-1], "epoch_loss": trainer.epoch_loss, "eval": trainer.eval_history,
    }
    write_text_atomic(os.path.join(out, "summary.json"), json.dumps(summary, indent=2, default=str) + "\n")
    graph_path = finish_graph()
    _print(f"trained {recipe['epochs']} epochs in {trainer.seconds:.1f} s ({trainer.targets_per_second:,.0f} targets/s), "
           f"final loss {trainer.epoch_loss[-1]:.4f}")
    queries = args.query or (DEMO_QUERIES if name == "demo" else ("you", "year", "car", "toyota", "good"))
    _print_neighbours(vectors, queries, 5)
    _print("wrote " + ", ".join(p for p in (os.path.join(out, "vectors.txt"), os.path.join(out, "weights.npz"),
                                             os.path.join(out, "vocab.json"), loss_path, graph_path,
                                             os.path.join(out, "summary.json")) if p))
    return 0


def _print_neighbours(vectors, queries, topn):
    for q in queries:
        if q not in vectors:
            continue
        neighbours = ", ".join(f"{w} ({s:.2f})" for w, s in vectors.most_similar(q, topn=topn))
        _print(f"  {q:>10s} -> {neighbours}")


def evaluate_vectors(vectors, analogies=None, word_pairs=None):
    result = {}
    if analogies:
        r = vectors.evaluate_analogies(analogies)
        result.update(analogy_accuracy=float(r.accuracy), analogy_correct=int(r.correct), analogy_total=int(r.total),
                      analogy_skipped=int(r.skipped))
    if word_pairs:
        r = vectors.evaluate_word_pairs(word_pairs)
        result.update(word_pairs_spearman=float(r.spearman), word_pairs_oov_ratio=float(r.oov_ratio))
    return result


def _load_vectors(path, binary):
    from tinygrad_nlp.vectors import WordVectors

    binary = binary if binary is not None else path.endswith(".bin")
    return WordVectors.load_word2vec_format(path, binary=binary)


def cmd_similar(args):
    vectors = _load_vectors(args.vectors, args.binary)
    for word, score in vectors.most_similar(args.word, topn=args.topn):
        _print(f"{word}\t{score:.4f}")
    return 0


def cmd_analogy(args):
    vectors = _load_vectors(args.vectors, args.binary)
    for word, score in vectors.analogy(args.a, args.b, args.c, topn=args.topn):
        _print(f"{word}\t{score:.4f}")
    return 0


def cmd_evaluate(args):
    if not args.analogies and not args.word_pairs:
        raise ValueError("give --analogies PATH and/or --word-pairs PATH")
    vectors = _load_vectors(args.vectors, args.binary)
    if args.analogies:
        r = vectors.evaluate_analogies(args.analogies)
        _print(r.summary())
    if args.word_pairs:
        r = vectors.evaluate_word_pairs(args.word_pairs)
        _print(r.summary())
    return 0


def cmd_graph(args):
    from tinygrad_nlp.text import create_contexts_target, preprocess
    from tinygrad_nlp.viz import GraphvizNotFoundError

    corpus, w2i, _ = preprocess("You say goodbye and I say hello.")
    window = args.window
    if len(corpus) < 2 * window + 1:
        raise ValueError(f"--window {window} is too wide for the 8-token example sentence (at most 3)")
    contexts, target = create_contexts_target(corpus, window)
    model = build_model(args.model, len(w2i), args.hidden, window, corpus, args.negative, 0)
    try:
        model.plot(contexts[:2], target[:2], to_file=args.out, verbose=not args.brief, rankdir=args.rankdir)
    except GraphvizNotFoundError as err:
        _print(f"note: {err}")
        return 1
    _print(f"wrote {args.out}")
    return 0


# ----- argument parsing -----
def _add_train_options(p, demo=False):
    p.add_argument("--corpus", default="demo" if demo else None, required=not demo,
                   help='"demo" (built in), "ptb" (Penn Treebank; see --ptb-dir), "ptb:valid", or a text file')
    p.add_argument("--ptb-dir", default=None, help="directory with ptb.*.txt (else $TINYGRAD_NLP_PTB_DIR, the cache, download)")
    p.add_argument("--model", choices=["cbow", "skipgram", "simple-cbow"], default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    p.add_argument("--hidden", type=int, default=None, help="vector size H")
    p.add_argument("--window", type=int, default=None, help="context words on each side")
    p.add_argument("--negative", type=int, default=None, help="negative samples per target")
    p.add_argument("--optimizer", choices=["adam", "sgd", "adagrad", "momentum"], default=None)
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--decay", action=argparse.BooleanOptionalAction, default=None,
                   help="decay the learning rate linearly to 0.01%% of it over the run (PTB default: on)")
    p.add_argument("--dynamic-window", dest="dynamic_window", action=argparse.BooleanOptionalAction, default=None,
                   help="CBOW: average the contexts within a random distance 1..window per target, as word2vec (PTB default: on)")
    p.add_argument("--clip-norm", type=float, default=None, help="clip gradients to this global L2 norm")
    p.add_argument("--min-count", dest="min_count", type=int, default=None, help="text corpora: rarer words become <unk>")
    p.add_argument("--max-vocab", dest="max_vocab", type=int, default=None, help="text corpora: keep the most frequent words")
    p.add_argument("--sample", "--subsample", dest="subsample", type=float, default=None, metavar="T",
                   help="subsample frequent words, redrawn every epoch, as word2vec's -sample (e.g. 1e-3)")
    p.add_argument("--workers", type=int, default=None,
                   help="threads that train at once on the shared weights (default: every core for batches of "
                        "500 or more, else 1)")
    p.add_argument("--recipe", choices=sorted(OPTIMIZER_RECIPES), default=None,
                   help="word2vec's recipe: plain SGD with the learning rate decayed linearly to zero")
    p.add_argument("--encoding", default="utf-8")
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="demo-out" if demo else "runs/latest", help="output directory")
    p.add_argument("--eval-analogies", default=None, metavar="PATH", help="questions-words file to score every epoch")
    p.add_argument("--eval-word-pairs", default=None, metavar="PATH", help="word-pair similarity file (WordSim-353)")
    p.add_argument("--checkpoint", action="store_true", help="write DIR/checkpoint.npz after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--query", nargs="*", default=None, help="words whose nearest neighbours are printed at the end")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"], help="graph layout direction")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser():
    parser = argparse.ArgumentParser(prog="tinygrad-nlp", description="Train and inspect word vectors with tinygrad_nlp.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train CBOW on the built-in corpus and show nearest neighbours (seconds)")
    _add_train_options(p, demo=True)
    p.set_defaults(func=lambda a: cmd_train(a, demo=True))

    p = sub.add_parser("train", help="train word vectors; writes vectors.txt, weights.npz, vocab.json, loss.png, graph.svg")
    _add_train_options(p)
    p.set_defaults(func=cmd_train)

    for name, helptext in (("similar", "nearest neighbours of a word"), ("analogy", "a : b = c : ?"),
                           ("evaluate", "analogy accuracy and word-pair correlation")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("vectors", help="word2vec-format file (text, or binary with --binary / a .bin name)")
        p.add_argument("--binary", action="store_true", default=None)
        if name == "similar":
            p.add_argument("word")
            p.add_argument("--topn", type=int, default=10)
            p.set_defaults(func=cmd_similar)
        elif name == "analogy":
            p.add_argument("a")
            p.add_argument("b")
            p.add_argument("c")
            p.add_argument("--topn", type=int, default=5)
            p.set_defaults(func=cmd_analogy)
        else:
            p.add_argument("--analogies", default=None, metavar="PATH")
            p.add_argument("--word-pairs", default=None, metavar="PATH")
            p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("graph", help="render a model's computational graph (svg/png/pdf/dot by extension)")
    p.add_argument("--model", choices=["cbow", "skipgram", "simple-cbow"], default="cbow")
    p.add_argument("--hidden", type=int, default=3)
    p.add_argument("--window", type=int, default=1)
    p.add_argument("--negative", type=int, default=2)
    p.add_argument("--out", default="graph.svg")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"])
    p.add_argument("--brief", action="store_true", help="omit shapes and dtypes from the labels")
    p.set_defaults(func=cmd_graph)

    from tinygrad_nlp.cli_lm import add_lm_parser

    add_lm_parser(sub)

    from tinygrad_nlp.seq2seq.commands import add_seq2seq_parser

    add_seq2seq_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``tinygrad-nlp`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError, OSError, FloatingPointError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"tinygrad-nlp {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
