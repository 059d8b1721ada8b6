"""The ``tinygrad-nlp`` command: train word vectors, inspect them, render model graphs.

    tinygrad-nlp demo                                   # CBOW on the built-in corpus, in seconds
    tinygrad-nlp train --corpus ptb --model cbow --out runs/ptb
    tinygrad-nlp similar runs/ptb/vectors.txt president
    tinygrad-nlp analogy runs/ptb/vectors.txt man king woman
    tinygrad-nlp evaluate runs/ptb/vectors.txt --analogies questions-words.txt --word-pairs wordsim353.tsv
    tinygrad-nlp graph runs/ptb --out cbow.svg           # a trained run's model (or --model for a toy one)
    tinygrad-nlp lm train --corpus ptb --out runs/lm   # language models: see tinygrad_nlp.cli_lm
    tinygrad-nlp seq2seq train --data addition --model peeky --reverse --out runs/add
    tinygrad-nlp seq2seq predict runs/dates "march 3, 1999" --plot

How a subcommand gets its checks (follow this when adding one):

* Register it with ``add_command`` (``add_command(sub, "name", cmd_name, help=...)``): it gets
  ``--debug``, help text that shows every option's default, and the error handling of
  ``main``.
* Give every option ``help=`` and a checking ``type=`` from ``cli_args``
  (re-exported here): ``count`` (integers >= a minimum), ``positive``,
  ``non_negative``, ``fraction``, ``text_encoding``, ``existing_file``,
  ``existing_dir``, ``output_file``, ``output_dir``, or ``choices=``. A bad value
  stops the command before any data is read, with one line naming the flag as the user typed it
  (``tinygrad-nlp train: error: --clip-norm must be > 0 (got -1)``) and exit status 2.
* Checks that involve several flags go in a ``check(args)`` function passed to ``add_command``;
  it runs before the command and raises ``UsageError`` naming the flag.
* In the command itself raise ``ValueError``/``KeyError``/``FileNotFoundError`` naming the file,
  line or word for bad data (exit 2); anything else is a runtime failure (exit 1, one line;
  ``--debug`` prints the traceback). Ctrl-C exits with 130. No user mistake prints a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import threading
import time
import traceback

import numpy as np

from tinygrad_nlp.cli_args import (PROG, UsageError, _HelpFormatter, _Parser, add_command, corpus_spec, count,
                                   existing_dir, existing_file, fraction, non_negative, output_dir, output_file,
                                   positive, text_encoding)
from tinygrad_nlp.cli_plot import LossPlotter

__all__ = ["main", "build_parser", "add_command", "UsageError", "RECIPES", "count", "positive", "non_negative",
           "fraction", "text_encoding", "existing_file", "existing_dir", "output_file", "close_words"]

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

# Recipes named by ``--recipe``, laid over a corpus recipe. "sgd" is word2vec's own: plain SGD
# with the learning rate decayed linearly to zero over the run. The loss is a mean over a batch
# of 1,000 targets and CBOW averages its contexts, so a step moves a row by lr / 1,000 per target
# (W_out) and lr / (1,000 x contexts) (W_in), where word2vec moves both by 0.025 per target:
# lr 80 sits between the two. On PTB after 3 epochs: lr 20 -> 0.38 % analogies, 40 -> 0.81 %,
# 80 -> 1.68 % (WordSim-353 0.17); lr 160 diverges in the first epoch. Adam's recipe does better
# at this batch size (docs/training.md); this one is there for comparison with word2vec. The
# learning rate is given per target and multiplied by the batch size (80 at batch 1,000), so a
# row's step per target stays the same at any batch size (--lr sets it outright).
SGD_LR_PER_TARGET = 0.08
# "fast" reaches gensim's 10-epoch PTB scores (CBOW, window 5, 5 negatives) in less time than gensim
# takes: Adam at lr 0.03 on batches of 4,000 for 5 epochs. On PTB a batch of 4,000 targets
# updates about 1.5 distinct rows of each table per target where one of 1,000 updates 2.7 (the
# optimizer's work), and spends a quarter of the Python per target; the larger learning rate
# makes up for the fewer steps. On PTB (seeds 0-3
# with 1 worker, 0-2 with 2) it gives 4.1-5.1 % analogies and WordSim-353 0.23-0.37, against
# gensim's 3.8-4.2 % and 0.20-0.25; the corpus recipe's 10 epochs give more (5.9 %,
# docs/training.md).
OPTIMIZER_RECIPES = {
    "adam": {},
    "sgd": dict(optimizer="sgd", lr=None, decay=True),  # lr: SGD_LR_PER_TARGET x batch size
    "fast": dict(optimizer="adam", lr=0.03, decay=True, batch_size=4000, epochs=5),
}

DEMO_QUERIES = ("monday", "paris", "violin", "red", "mother")
# The files a training run writes as one set (FileSet): summary.json last, as the set's seal.
RUN_FILES = ("vectors.txt", "weights.npz", "vocab.json", "loss.png", "graph.svg", "graph.dot", "summary.json")
MODELS = ("cbow", "skipgram", "simple-cbow")
MODEL_CLASSES = {"cbow": "CBOW", "skipgram": "SkipGram", "simple-cbow": "SimpleCBOW"}


def _print(*args, **kwargs):
    print(*args, **kwargs, flush=True)


def _version():
    from tinygrad_nlp import __version__

    return __version__


def close_words(word, vocabulary, n=3):
    """Up to ``n`` words of ``vocabulary`` close to ``word``: other cases first, then similar spellings."""
    vocabulary = vocabulary if isinstance(vocabulary, (set, dict, frozenset)) else set(vocabulary)
    found = [w for w in dict.fromkeys((word.lower(), word.capitalize(), word.upper(), word.title()))
             if w != word and w in vocabulary]
    lowered = word.lower()
    size = len(word)
    candidates = [w for w in vocabulary if abs(len(w) - size) <= 2]
    for w in difflib.get_close_matches(lowered, candidates, n=n + len(found), cutoff=0.75):
        if w not in found and w != word:
            found.append(w)
    return found[:n]


def _unknown_word(word, vectors):
    hint = close_words(word, vectors.index)
    return f"word {word!r} is not in the vocabulary of {len(vectors):,} words" + (
        f"; did you mean {', '.join(repr(w) for w in hint)}?" if hint else "")


# ----- data -----
def load_corpus(spec, ptb_dir=None, min_count=1, max_vocab=None, encoding="utf-8", errors="strict"):
    """``(corpus, word_to_id, id_to_word, name)`` for "demo", "ptb" or a path to a text file."""
    from tinygrad_nlp import text

    if spec == "demo":
        return (*text.load_demo(), "demo")
    if spec == "ptb" or spec.startswith("ptb:"):
        split = spec.split(":", 1)[1] if ":" in spec else "train"
        try:
            return (*text.load_ptb(split, data_dir=ptb_dir), spec)
        except text.DownloadError as err:
            problem = getattr(err, "problem", None) or str(err)
            raise text.DownloadError(f"{problem}; pass --ptb-dir DIR, a directory holding ptb.train.txt, "
                                     f"ptb.valid.txt and ptb.test.txt (or set ${text.PTB_DIR_ENV})") from None
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
    raise ValueError(f"unknown model {kind!r}: choose {', '.join(MODELS)}")


def build_optimizer(kind, lr, decay, clip_norm=None):
    from tinygrad_nlp import optimizers as O

    classes = {"adam": O.Adam, "sgd": O.SGD, "adagrad": O.AdaGrad, "momentum": O.MomentumSGD}
    if kind not in classes:
        raise ValueError(f"unknown optimizer {kind!r}: choose {', '.join(classes)}")
    schedule = O.LinearDecay(lr) if decay else lr
    return classes[kind](lr=schedule, clip_norm=clip_norm)


def render_graph(model, contexts, target, path, rankdir="TB", out_dir=None):
    """Render the model's graph for a 2-row batch to ``path`` (an .svg); returns the name of the
    file written (graph.dot beside it when Graphviz is missing)."""
    return start_graph(model, contexts, target, path, rankdir, out_dir)()


def start_graph(model, contexts, target, path, rankdir="TB", out_dir=None):
    """Build the model's graph for a 2-row batch now, render it to ``path`` (an .svg) on a thread
    of its own.

    Returns ``finish()``, which waits for the drawing and returns the name of the file written
    (graph.dot when no Graphviz can draw it; ``out_dir`` is where the note says it will be). The
    forward pass runs here, before training, so it draws the same random numbers whenever it is
    called; Graphviz (about a second when it runs as WebAssembly) then works while the model
    trains instead of before.
    """
    from tinygrad_nlp.viz import GraphvizNotFoundError

    graph = model.graph(contexts[:2], target[:2], rankdir=rankdir)
    result = {}

    def draw():
        try:
            graph.save(path)
            result["name"] = os.path.basename(path)
        except GraphvizNotFoundError:
            dot = os.path.splitext(os.path.basename(path))[0] + ".dot"
            where = os.path.join(out_dir or os.path.dirname(path), dot)
            result["note"] = (f"note: no Graphviz could draw the graph, so it was saved as {where}; render it with "
                              f"'dot -Tsvg {where} -o {where[:-4]}.svg'")
            result["name"] = dot
        except BaseException as err:  # handed to finish()
            result["error"] = err

    thread = threading.Thread(target=draw, daemon=True, name="tinygrad_nlp-graph")
    thread.start()

    def finish():
        thread.join()
        if "error" in result:
            raise result["error"]
        if "note" in result:
            _print(result["note"])
        return result["name"]

    finish.join = thread.join  # for a command that fails before it needs the drawing
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
def _recipe(args):
    kind = "demo" if args.corpus == "demo" else "ptb" if args.corpus.startswith("ptb") else "text"
    recipe = dict(RECIPES[kind])
    if getattr(args, "recipe", None):
        recipe.update(OPTIMIZER_RECIPES[args.recipe])
    for key in recipe:
        value = getattr(args, key, None)
        if value is not None:
            recipe[key] = value
    if recipe["model"] == "simple-cbow":
        recipe["dynamic_window"] = False  # SimpleCBOW averages a fixed window
    if recipe["lr"] is None:
        recipe["lr"] = SGD_LR_PER_TARGET * recipe["batch_size"]
    return recipe


def check_train(args):
    """Flag combinations of ``train``/``demo``, checked before any data is read."""
    from tinygrad_nlp.train import CHECKPOINT_NAME
    from tinygrad_nlp.vectors import WordVectors

    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint (the run continues from DIR/checkpoint.npz and keeps writing it)")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite contradict each other: choose one")
    checkpoint = os.path.join(args.out, CHECKPOINT_NAME)
    if args.checkpoint and not args.resume and not args.overwrite and os.path.exists(checkpoint):
        raise UsageError(f"--checkpoint: {checkpoint} already holds a run's checkpoint; pass --resume to continue it "
                         f"or --overwrite to start again from scratch")
    if args.ptb_dir and (args.corpus == "ptb" or args.corpus.startswith("ptb:")):
        name = f"ptb.{args.corpus.split(':', 1)[1] if ':' in args.corpus else 'train'}.txt"
        if not os.path.isfile(os.path.join(args.ptb_dir, name)):
            raise UsageError(f"--ptb-dir {args.ptb_dir} holds no {name}")
    # Evaluation files are read and checked now, not after the first epoch.
    probe = WordVectors(np.zeros((1, 1), np.float32), ["<probe>"])
    for flag, path, evaluate in (("--eval-analogies", args.eval_analogies, probe.evaluate_analogies),
                                 ("--eval-word-pairs", args.eval_word_pairs, probe.evaluate_word_pairs)):
        if path:
            try:
                evaluate(path)
            except (ValueError, OSError) as err:
                raise UsageError(f"{flag}: {err}") from None


def cmd_train(args):
    recipe = _recipe(args)
    t_start = time.perf_counter()
    with LossPlotter() as plotter:  # imports matplotlib in a helper process while the corpus is read
        return _train(args, recipe, t_start, plotter)


def _train(args, recipe, t_start, plotter):
    from tinygrad_nlp import text
    from tinygrad_nlp.io import FileSet, to_json, write_text_atomic
    from tinygrad_nlp.train import Trainer
    from tinygrad_nlp.vectors import WordVectors

    out = args.out
    window = recipe["window"]
    if args.corpus == "demo" or args.corpus.startswith("ptb"):
        corpus, w2i, i2w, name = load_corpus(args.corpus, args.ptb_dir, recipe["min_count"], recipe["max_vocab"],
                                             args.encoding, args.encoding_errors)
        words = [i2w[i] for i in range(len(i2w))]
        counts = np.bincount(corpus, minlength=len(words))
    else:  # any size: streamed once into an id file, memory-mapped
        os.makedirs(out, exist_ok=True)
        corpus, words, counts, name = stream_corpus(args.corpus, out, recipe["min_count"], recipe["max_vocab"],
                                                    args.encoding, args.encoding_errors)
        i2w = dict(enumerate(words))
    V = len(words)
    if len(corpus) < 2 * window + 1:
        raise UsageError(f"--window {window} needs at least {2 * window + 1} tokens; the corpus has {len(corpus)}")
    keep = text.keep_probabilities(counts, t=args.subsample) if args.subsample else None
    data = text.ContextWindows(corpus, window, keep=keep)
    _print(f"corpus {name}: {len(corpus):,} tokens, {V:,} words; {data.num_targets:,} training targets"
           + (" (expected, after subsampling)" if keep is not None else ""))
    model = build_model(recipe["model"], V, recipe["hidden"], window, None, recipe["negative"], args.seed,
                        dynamic_window=recipe["dynamic_window"], counts=counts)
    optimizer = build_optimizer(recipe["optimizer"], recipe["lr"], recipe["decay"], args.clip_norm).setup(model)
    sample_contexts, sample_target = text.create_contexts_target(np.array(corpus[:2 * window + 2]), window)

    eval_fn = None
    if args.eval_analogies or args.eval_word_pairs:
        def eval_fn(m, epoch):
            result = evaluate_vectors(WordVectors.from_ids(m.word_vecs, i2w), args.eval_analogies, args.eval_word_pairs)
            _print(f"  epoch {epoch}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float)))
            return result

    workers = args.workers if args.workers is not None else default_workers(recipe["batch_size"])
    trainer = Trainer(model, optimizer, progress=not args.quiet, eval_fn=eval_fn, workers=workers)
    loss_path = None
    # The run's files appear together or not at all: written into a staging folder (the graph
    # while the model trains), renamed into place once all of them are complete.
    with FileSet(out, owns=RUN_FILES) as files:
        finish_graph = start_graph(model, sample_contexts, sample_target, files.path("graph.svg"), args.rankdir,
                                   out_dir=out)
        try:
            setup_seconds = time.perf_counter() - t_start
            trainer.fit(data, max_epoch=recipe["epochs"], batch_size=recipe["batch_size"], seed=args.seed,
                        checkpoint_dir=out if args.checkpoint else None, resume=args.resume)
            plotter.draw(trainer.loss_history, files.path("loss.png"), f"{type(model).__name__} on {name}")
            vectors = WordVectors.from_ids(model.word_vecs, i2w)  # written while the helper draws
            vectors.save_word2vec_format(files.path("vectors.txt"))
            model.save_weights(files.path("weights.npz"))
            save_vocab(files.path("vocab.json"), words, counts)
            try:
                plotter.finish()
                loss_path = os.path.join(out, "loss.png")
            except ImportError as err:
                _print(f"note: {err}")
            summary = {
                "corpus": name, "tokens": int(len(corpus)), "vocab_size": V, "targets": int(data.num_targets),
                **recipe, "seed": args.seed, "subsample": args.subsample, "workers": trainer.workers,
                "seconds": round(time.perf_counter() - t_start, 2), "setup_seconds": round(setup_seconds, 2),
                "train_seconds": round(trainer.seconds, 2), "targets_per_second": round(trainer.targets_per_second),
                "final_loss": trainer.epoch_loss[-1], "epoch_loss": trainer.epoch_loss, "eval": trainer.eval_history,
            }
            summary["epochs"] = trainer.epoch
            write_text_atomic(files.path("summary.json"), to_json(summary, indent=2, default=str) + "\n")
            graph_name = finish_graph()
        except BaseException:
            finish_graph.join()  # no drawing outlives the command (nor runs beside the next one)
            raise
    _print(f"trained {trainer.epoch} epochs in {trainer.seconds:.1f} s ({trainer.targets_per_second:,.0f} targets/s), "
           f"final loss {trainer.epoch_loss[-1]:.4f}")
    queries = args.query or (DEMO_QUERIES if name == "demo" else ("you", "year", "car", "toyota", "good"))
    _print_neighbours(vectors, queries, 5, explicit=bool(args.query))
    written = [os.path.join(out, n) for n in ("vectors.txt", "weights.npz", "vocab.json")]
    written += [loss_path, os.path.join(out, graph_name), os.path.join(out, "summary.json")]
    _print("wrote " + ", ".join(p for p in written if p))
    return 0


def _print_neighbours(vectors, queries, topn, explicit=False):
    for q in queries:
        if q not in vectors:
            if explicit:
                _print(f"  {q:>10s} -> not in the vocabulary" + (
                    f" (did you mean {', '.join(close_words(q, vectors.index))}?)" if close_words(q, vectors.index) else ""))
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


def _check_known(vectors, *words):
    for word in words:
        if word not in vectors:
            raise KeyError(_unknown_word(word, vectors))


def cmd_similar(args):
    vectors = _load_vectors(args.vectors, args.binary)
    _check_known(vectors, args.word)
    for word, score in vectors.most_similar(args.word, topn=args.topn):
        _print(f"{word}\t{score:.4f}")
    return 0


def cmd_analogy(args):
    vectors = _load_vectors(args.vectors, args.binary)
    _check_known(vectors, args.a, args.b, args.c)
    for word, score in vectors.analogy(args.a, args.b, args.c, topn=args.topn):
        _print(f"{word}\t{score:.4f}")
    return 0


def check_evaluate(args):
    if not args.analogies and not args.word_pairs:
        raise UsageError("give --analogies PATH and/or --word-pairs PATH")


def cmd_evaluate(args):
    vectors = _load_vectors(args.vectors, args.binary)
    if args.analogies:
        r = vectors.evaluate_analogies(args.analogies)
        _print(r.summary())
    if args.word_pairs:
        r = vectors.evaluate_word_pairs(args.word_pairs)
        _print(r.summary())
    return 0


def check_graph(args):
    if args.run is not None:
        given = [flag for flag, value in (("--model", args.model), ("--hidden", args.hidden), ("--window", args.window),
                                          ("--negative", args.negative)) if value is not None]
        if given:
            raise UsageError(f"{given[0]} does not apply to a trained run: {args.run} says which model it trained")
        if not os.path.isfile(os.path.join(args.run, "summary.json")):
            raise UsageError(f"RUN {args.run} has no summary.json: give the --out directory of a finished "
                             f"'tinygrad-nlp train' run")
    elif (args.window or 1) > 3:
        raise UsageError(f"--window {args.window} is too wide for the 8-token example sentence (at most 3)")


def _run_model(run):
    """The model a finished training run trained, with its weights, and a 2-row batch to draw it on."""
    from tinygrad_nlp.text import Vocabulary

    summary_path = os.path.join(run, "summary.json")
    try:
        with open(summary_path, encoding="utf-8-sig") as f:
            summary = json.load(f)
        kind, V, H, window = summary["model"], int(summary["vocab_size"]), int(summary["hidden"]), int(summary["window"])
        negative, dynamic = int(summary.get("negative", 5)), bool(summary.get("dynamic_window", False))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{summary_path}: not a training run's summary ({type(err).__name__}: {err})") from None
    if kind not in MODELS or V < 1 or H < 1 or window < 1 or negative < 1:
        raise ValueError(f"{summary_path}: not a training run's summary (model {kind!r}, vocab_size {V}, hidden {H}, "
                         f"window {window}, negative {negative})")
    vocab = Vocabulary.load(os.path.join(run, "vocab.json"))
    if len(vocab) != V:
        raise ValueError(f"{run}: vocab.json holds {len(vocab)} words but summary.json says {V}")
    ids = np.arange(V)
    model = build_model(kind, V, H, window, ids, negative, 0, dynamic_window=dynamic)
    model.load_weights(os.path.join(run, "weights.npz"))
    row = np.resize(ids, 2 * window + 1)
    contexts = np.stack([np.delete(row, window)] * 2)
    target = np.array([row[window]] * 2)
    return model, contexts, target


def cmd_graph(args):
    from tinygrad_nlp.text import create_contexts_target, preprocess
    from tinygrad_nlp.viz import GraphvizNotFoundError

    if args.run is not None:
        model, contexts, target = _run_model(args.run)
    else:
        corpus, w2i, _ = preprocess("You say goodbye and I say hello.")
        contexts, target = create_contexts_target(corpus, args.window or 1)
        model = build_model(args.model or "cbow", len(w2i), args.hidden or 3, args.window or 1, corpus,
                            args.negative or 2, 0)
    try:
        model.plot(contexts[:2], target[:2], to_file=args.out, verbose=not args.brief, rankdir=args.rankdir)
    except GraphvizNotFoundError as err:
        _print(f"note: {err}")
        return 1
    _print(f"wrote {args.out}")
    return 0


# ----- argument parsing -----
def _recipe_help(text, key):
    def show(value):
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    values = ", ".join(f"{kind} {show(RECIPES[kind][key])}" for kind in RECIPES)
    return f"{text} (default per corpus: {values})"


def _add_train_options(p, demo=False):
    recipe_help = _recipe_help
    p.add_argument("--corpus", default="demo" if demo else None, required=not demo, type=corpus_spec,
                   help='"demo" (built in), "ptb" (Penn Treebank; see --ptb-dir), "ptb:valid", or a text file')
    p.add_argument("--ptb-dir", default=None, type=existing_dir,
                   help="directory with ptb.*.txt (else $TINYGRAD_NLP_PTB_DIR, the cache, download)")
    p.add_argument("--model", choices=MODELS, default=None, help=recipe_help("the model to train", "model"))
    p.add_argument("--epochs", type=count(1), default=None,
                   help=recipe_help("epochs to train (with --resume: in total)", "epochs"))
    p.add_argument("--batch-size", dest="batch_size", type=count(1), default=None,
                   help=recipe_help("targets per step", "batch_size"))
    p.add_argument("--hidden", type=count(1), default=None, help=recipe_help("vector size H", "hidden"))
    p.add_argument("--window", type=count(1), default=None, help=recipe_help("context words on each side", "window"))
    p.add_argument("--negative", type=count(1), default=None,
                   help=recipe_help("negative samples per target", "negative"))
    p.add_argument("--optimizer", choices=["adam", "sgd", "adagrad", "momentum"], default=None,
                   help=recipe_help("the optimizer", "optimizer"))
    p.add_argument("--lr", type=positive, default=None, help=recipe_help("learning rate", "lr"))
    p.add_argument("--decay", action=argparse.BooleanOptionalAction, default=None,
                   help=recipe_help("decay the learning rate linearly to 0.01%% of it over the run", "decay"))
    p.add_argument("--dynamic-window", dest="dynamic_window", action=argparse.BooleanOptionalAction, default=None,
                   help=recipe_help("CBOW: average the contexts within a random distance 1..window per target, as "
                                    "word2vec", "dynamic_window"))
    p.add_argument("--clip-norm", type=positive, default=None,
                   help="clip gradients to this global L2 norm (default: no clipping)")
    p.add_argument("--min-count", dest="min_count", type=count(1), default=None,
                   help=recipe_help("text corpora: rarer words become <unk>", "min_count"))
    p.add_argument("--max-vocab", dest="max_vocab", type=count(1), default=None,
                   help="text corpora: keep only the most frequent words (default: all)")
    p.add_argument("--sample", "--subsample", dest="subsample", type=positive, default=None, metavar="T",
                   help="subsample frequent words with threshold T, redrawn every epoch, as word2vec's -sample "
                        "(e.g. 1e-3; default: off)")
    p.add_argument("--workers", type=count(1), default=None,
                   help="threads that train at once on the shared weights (default: every core for batches of "
                        "500 or more, else 1)")
    p.add_argument("--recipe", choices=sorted(OPTIMIZER_RECIPES), default=None,
                   help="sgd: word2vec's recipe, plain SGD with the learning rate decayed linearly to zero; "
                        "fast: Adam at lr 0.03 on batches of 4,000 for 5 epochs, gensim's quality on PTB in "
                        "less time than gensim (default: the corpus's recipe, Adam)")
    p.add_argument("--encoding", default="utf-8", type=text_encoding, help="text corpora: the file's encoding")
    p.add_argument("--encoding-errors", default="strict", choices=["strict", "replace", "ignore"],
                   help="text corpora: what to do with bytes the encoding cannot decode")
    p.add_argument("--seed", type=count(0), default=0, help="seeds the weights, negatives and shuffling")
    p.add_argument("--out", default="demo-out" if demo else "runs/latest", type=output_dir, help="output directory")
    p.add_argument("--eval-analogies", default=None, metavar="PATH", type=existing_file,
                   help="questions-words file to score after every epoch (default: none)")
    p.add_argument("--eval-word-pairs", default=None, metavar="PATH", type=existing_file,
                   help="word-pair similarity file (WordSim-353) to score after every epoch (default: none)")
    p.add_argument("--checkpoint", action="store_true", help="write DIR/checkpoint.npz after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--overwrite", action="store_true", help="with --checkpoint: replace an existing checkpoint")
    p.add_argument("--query", nargs="*", default=None,
                   help="words whose nearest neighbours are printed at the end (default: a few common words)")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"], help="graph layout direction")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser():
    """The ``tinygrad-nlp`` argument parser with every subcommand."""
    parser = _Parser(prog=PROG, description="Train and inspect word vectors with tinygrad_nlp.",
                     formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = add_command(sub, "demo", cmd_train, check=check_train,
                    help="train CBOW on the built-in corpus and show nearest neighbours (seconds)")
    _add_train_options(p, demo=True)

    p = add_command(sub, "train", cmd_train, check=check_train,
                    help="train word vectors; writes vectors.txt, weights.npz, vocab.json, loss.png, graph.svg, "
                         "summary.json")
    _add_train_options(p)

    for name, helptext in (("similar", "nearest neighbours of a word"), ("analogy", "a : b = c : ?"),
                           ("evaluate", "analogy accuracy and word-pair correlation")):
        p = add_command(sub, name, {"similar": cmd_similar, "analogy": cmd_analogy, "evaluate": cmd_evaluate}[name],
                        help=helptext, check=check_evaluate if name == "evaluate" else None)
        p.add_argument("vectors", type=existing_file,
                       help="word2vec-format file (text, or binary with --binary / a .bin name)")
        p.add_argument("--binary", action="store_true", default=None,
                       help="the file is word2vec's binary format (default: when the name ends in .bin)")
        if name == "similar":
            p.add_argument("word", help="the word whose neighbours are listed")
            p.add_argument("--topn", type=count(1), default=10, help="how many neighbours")
        elif name == "analogy":
            p.add_argument("a", help="a in a : b = c : ?")
            p.add_argument("b", help="b in a : b = c : ?")
            p.add_argument("c", help="c in a : b = c : ?")
            p.add_argument("--topn", type=count(1), default=5, help="how many answers")
        else:
            p.add_argument("--analogies", default=None, metavar="PATH", type=existing_file,
                           help="questions-words file (word2vec's analogy test set)")
            p.add_argument("--word-pairs", default=None, metavar="PATH", type=existing_file,
                           help="word-pair similarity file, word1<TAB>word2<TAB>score (WordSim-353)")

    p = add_command(sub, "graph", cmd_graph, check=check_graph,
                    help="render a model's computational graph (svg/png/pdf/dot by extension)",
                    description="Render the graph of a trained run's model (RUN, the --out directory of "
                                "'tinygrad-nlp train') or of a toy model on an 8-token sentence.")
    p.add_argument("run", nargs="?", default=None, metavar="RUN", type=existing_dir,
                   help="a training run's output directory (default: draw a toy model)")
    p.add_argument("--model", choices=MODELS, default=None, help="toy model to draw (default: cbow)")
    p.add_argument("--hidden", type=count(1), default=None, help="toy model: vector size (default: 3)")
    p.add_argument("--window", type=count(1), default=None, help="toy model: context words on each side (default: 1)")
    p.add_argument("--negative", type=count(1), default=None, help="toy model: negative samples (default: 2)")
    p.add_argument("--out", default="graph.svg", type=output_file,
                   help="file to write; its directory must exist; format by extension: svg, png, pdf or dot")
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"], help="layout direction: top-bottom or left-right")
    p.add_argument("--brief", action="store_true", help="omit shapes and dtypes from the labels")

    from tinygrad_nlp.cli_lm import add_lm_parser

    add_lm_parser(sub)

    from tinygrad_nlp.seq2seq.commands import add_seq2seq_parser

    add_seq2seq_parser(sub)
    return parser


# ----- running a command -----
_USER_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)


def _describe(err):
    """``(exit status, one-line message)`` for an exception that ended a command."""
    if isinstance(err, KeyError):
        return 2, str(err.args[0]) if err.args else "unknown key"
    if isinstance(err, (UsageError, UnicodeError, LookupError)):
        return 2, str(err)
    if isinstance(err, _USER_OS_ERRORS):
        return 2, _os_message(err)
    if isinstance(err, ValueError):
        return 2, str(err)
    if isinstance(err, MemoryError):
        return 1, f"out of memory{': ' + str(err) if str(err) else ''} (a smaller --batch-size, --hidden or --max-vocab needs less)"
    if isinstance(err, OSError):
        return 1, _os_message(err)
    if isinstance(err, FloatingPointError):
        return 1, str(err)
    return 1, f"unexpected {type(err).__name__}: {err} (this is a bug; rerun with --debug and report the traceback)"


def _os_message(err):
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


def main(argv=None):
    """Entry point of the ``tinygrad-nlp`` console script; returns the exit status.

    0 success, 1 a runtime failure, 2 a usage or data mistake, 130 interrupted (Ctrl-C). Errors
    are one line on stderr; ``--debug`` adds the traceback.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 2
    prog = getattr(args, "prog", f"{PROG} {args.command}")
    debug = getattr(args, "debug", False)
    try:
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
        return args.func(args)
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # noqa: BLE001 - the command line's last line of defence
        status, message = _describe(err)
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return status


if __name__ == "__main__":
    sys.exit(main())
