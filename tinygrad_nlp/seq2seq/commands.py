"""What ``tinygrad-nlp seq2seq train`` and ``tinygrad-nlp seq2seq predict`` do.

A training run writes to its output directory:

* ``weights.npz`` - the model's Parameters (no pickle);
* ``vocab.json`` - the character vocabulary;
* ``summary.json`` - the model's settings (enough to rebuild it), the data, the accuracy after
  every epoch and at the end (greedy and beam search), the training time per epoch;
* ``accuracy.png`` - test accuracy per epoch;
* ``graph.svg`` - the model's graph, encoder and decoder as clusters (``graph.dot`` without
  Graphviz);
* ``attention.png`` - for attention models, the weights for the first test question.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from tinygrad_nlp.io import PathLike, read_json, write_bytes_atomic, write_text_atomic

if TYPE_CHECKING:
    from tinygrad_nlp.seq2seq.networks import Seq2seq
    from tinygrad_nlp.text.vocab import Vocabulary

__all__ = ["DATA_SIZE", "RECIPES", "build_data", "train", "load_run", "predict_text", "add_seq2seq_parser"]

#: Lines generated for ``--data addition`` / ``--data dates`` (the size of the book's files).
DATA_SIZE = 50_000

#: Defaults per task (the book's settings); every value can be overridden.
RECIPES = {
    "addition": dict(model="peeky", wordvec=16, hidden=128, epochs=25, batch_size=128, lr=0.001, clip=5.0,
                     reverse=True),
    "dates": dict(model="attention", wordvec=16, hidden=256, epochs=10, batch_size=128, lr=0.001, clip=5.0,
                  reverse=True),
    "file": dict(model="attention", wordvec=16, hidden=128, epochs=10, batch_size=128, lr=0.001, clip=5.0,
                 reverse=True),
}


def _print(*args):
    print(*args, flush=True)


def build_data(spec: str, reverse: bool, data_seed: int = 1984, size: int = DATA_SIZE,
               test_fraction: float = 0.1,
               ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Vocabulary, str]:
    """``(train, test, vocab, name)`` for ``"addition"``, ``"dates"`` (generated) or a file path."""
    from tinygrad_nlp.text import sequences

    if spec == "addition":
        lines, name = sequences.addition(size, seed=data_seed), "addition"
    elif spec == "dates":
        lines, name = sequences.dates(size, seed=data_seed), "dates"
    else:
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"--data: no such file {spec!r} (or use 'addition' or 'dates')")
        return (*sequences.load_seq(spec, test_fraction=test_fraction, reverse=reverse), os.path.abspath(spec))
    return (*sequences.split_seq(lines, test_fraction=test_fraction, reverse=reverse, source=spec), name)


def _plot_accuracy(path, history, title):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.6), dpi=100)
    ax = fig.add_subplot()
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [100 * h["accuracy"] for h in history], marker="o", label="greedy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    write_bytes_atomic(path, buf.getvalue())


def _render_graph(model, x, t, out):
    from tinygrad_nlp.viz import GraphvizNotFoundError

    path = os.path.join(out, "graph.svg")
    try:
        model.plot(x[:1], t[:1], to_file=path, rankdir="LR")
        return path
    except GraphvizNotFoundError as err:
        _print(f"note: {err}")
        return os.path.join(out, "graph.dot")


def _decode(vocab, ids):
    return "".join(vocab.id_to_word[i] for i in ids)


def train(data: str, model_kind: str | None = None, cell: str = "lstm", reverse: bool | None = None,
          wordvec: int | None = None, hidden: int | None = None, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, clip: float | None = None, beam: int | None = 5,
          seed: int = 0, data_seed: int = 1984, out: PathLike = "runs/seq2seq", quiet: bool = False,
          samples: int = 10, size: int = DATA_SIZE, decay: bool = False) -> dict[str, Any]:
    """Train a seq2seq model on a task and write the run's files to ``out``; returns the summary."""
    from tinygrad_nlp.optimizers import Adam, LinearDecay
    from tinygrad_nlp.seq2seq import MODELS, accuracy, format_samples
    from tinygrad_nlp.train import Trainer

    recipe = dict(RECIPES[data if data in ("addition", "dates") else "file"])
    for key, value in (("model", model_kind), ("wordvec", wordvec), ("hidden", hidden), ("epochs", epochs),
                       ("batch_size", batch_size), ("lr", lr), ("clip", clip), ("reverse", reverse)):
        if value is not None:
            recipe[key] = value
    for key in ("wordvec", "hidden", "epochs", "batch_size"):
        if recipe[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be >= 1, got {recipe[key]}")
    if recipe["lr"] <= 0:
        raise ValueError(f"--lr must be positive, got {recipe['lr']}")
    if recipe["model"] not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {recipe['model']!r}")
    t_start = time.perf_counter()
    (x, t), (xt, tt), vocab, name = build_data(data, recipe["reverse"], data_seed, size=size)
    if len(xt) == 0:
        raise ValueError(f"--data {data}: too few lines to hold out a test set")
    _print(f"data {name}: {len(x):,} training and {len(xt):,} test questions, {len(vocab)} symbols; "
           f"questions {x.shape[1]} symbols{' (reversed)' if recipe['reverse'] else ''}, answers {t.shape[1] - 1}")
    model = MODELS[recipe["model"]](len(vocab), recipe["wordvec"], recipe["hidden"], cell=cell, seed=seed)
    schedule = LinearDecay(recipe["lr"]) if decay else recipe["lr"]  # decayed to 0.01 % over the run
    optimizer = Adam(lr=schedule, clip_norm=recipe["clip"] or None).setup(model)
    epoch_seconds = []

    def eval_fn(m, epoch):
        epoch_seconds.append(trainer.seconds - sum(epoch_seconds))
        acc = accuracy(m, xt, tt)
        _print(f"epoch {epoch}: test accuracy {100 * acc:.2f} % (train {epoch_seconds[-1]:.1f} s)")
        return {"accuracy": acc}

    trainer = Trainer(model, optimizer, progress=not quiet, eval_fn=eval_fn)
    trainer.fit(x, t, max_epoch=recipe["epochs"], batch_size=recipe["batch_size"], seed=seed)
    acc, guess = accuracy(model, xt, tt, return_predictions=True)
    beam_acc = accuracy(model, xt, tt, beam=beam) if beam and beam > 1 else None
    _print(format_samples(xt, tt, guess, vocab, reverse=recipe["reverse"], limit=samples))
    _print(f"test accuracy: greedy {100 * acc:.2f} %" + (f", beam {beam} {100 * beam_acc:.2f} %" if beam_acc is not None else ""))

    os.makedirs(out, exist_ok=True)
    model.save_weights(os.path.join(out, "weights.npz"))
    vocab.save(os.path.join(out, "vocab.json"))
    files = [os.path.join(out, "weights.npz"), os.path.join(out, "vocab.json")]
    try:
        _plot_accuracy(os.path.join(out, "accuracy.png"), trainer.eval_history,
                       f"{type(model).__name__} on {os.path.basename(name)}")
        files.append(os.path.join(out, "accuracy.png"))
    except ImportError as err:
        _print(f"note: no accuracy.png ({err})")
    files.append(_render_graph(model, x, t, out))
    if recipe["model"] == "attention":
        try:
            files.append(plot_answer(model, vocab, xt[0], int(tt[0, 0]), tt.shape[1] - 1, recipe["reverse"],
                                     os.path.join(out, "attention.png")))
        except ImportError as err:
            _print(f"note: no attention.png ({err})")
    summary = {
        "format": "tinygrad_nlp.seq2seq", "version": 1,
        "data": name, "model": recipe["model"], "cell": cell, "vocab_size": len(vocab),
        "wordvec": recipe["wordvec"], "hidden": recipe["hidden"], "reverse": recipe["reverse"],
        "question_width": int(x.shape[1]), "answer_width": int(t.shape[1] - 1), "start": vocab.id_to_word[int(t[0, 0])],
        "epochs": recipe["epochs"], "batch_size": recipe["batch_size"], "lr": recipe["lr"], "decay": bool(decay),
        "clip": recipe["clip"],
        "seed": seed, "data_seed": data_seed, "train_size": int(len(x)), "test_size": int(len(xt)),
        "accuracy_per_epoch": [h["accuracy"] for h in trainer.eval_history],
        "train_seconds_per_epoch": [round(s, 3) for s in epoch_seconds],
        "accuracy": acc, "beam": beam if beam_acc is not None else None, "beam_accuracy": beam_acc,
        "epoch_loss": trainer.epoch_loss, "seconds": round(time.perf_counter() - t_start, 2),
    }
    write_text_atomic(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    files.append(os.path.join(out, "summary.json"))
    _print("wrote " + ", ".join(files))
    return summary


def plot_answer(model, vocab, question_ids, start_id, length, reverse, path=None):
    """Answer one (reversed if ``reverse``) question greedily and draw its attention weights;
    the source axis shows the question in reading order. Returns ``path`` (or the Figure)."""
    from tinygrad_nlp.viz import plot_attention

    answer = model.generate(question_ids, start_id, length)
    weights = model.last_attention[0]
    source = _decode(vocab, question_ids)
    if reverse:
        source, weights = source[::-1], weights[:, ::-1]
    fig = plot_attention(weights, source, _decode(vocab, answer), path=path,
                         title=f"{source.strip()} -> {_decode(vocab, answer).strip()}")
    return path if path is not None else fig


def load_run(directory: PathLike) -> tuple[Seq2seq, Vocabulary, dict[str, Any]]:
    """``(model, vocab, summary)`` of a training run's directory, every file checked."""
    from tinygrad_nlp.seq2seq import MODELS
    from tinygrad_nlp.text import Vocabulary

    summary_path = os.path.join(directory, "summary.json")
    summary = read_json(summary_path,
                        missing=f"{directory}: no summary.json: is this the --out directory of 'seq2seq train'?")
    if not isinstance(summary, dict) or summary.get("format") != "tinygrad_nlp.seq2seq":
        raise ValueError(f"{summary_path}: not a seq2seq run summary")
    need = {"model": str, "cell": str, "vocab_size": int, "wordvec": int, "hidden": int, "reverse": bool,
            "question_width": int, "answer_width": int, "start": str}
    for key, kind in need.items():
        if not isinstance(summary.get(key), kind):
            raise ValueError(f"{summary_path}: '{key}' must be a {kind.__name__}, got {summary.get(key)!r}")
    if summary["model"] not in MODELS:
        raise ValueError(f"{summary_path}: unknown model {summary['model']!r}")
    vocab = Vocabulary.load(os.path.join(directory, "vocab.json"))
    if len(vocab) != summary["vocab_size"] or summary["start"] not in vocab:
        raise ValueError(f"{directory}: vocab.json does not match summary.json")
    model = MODELS[summary["model"]](summary["vocab_size"], summary["wordvec"], summary["hidden"], cell=summary["cell"])
    model.load_weights(os.path.join(directory, "weights.npz"))
    return model, vocab, summary


def predict_text(directory: PathLike, questions: Iterable[str], beam: int | None = None,
                 plot: PathLike | None = None) -> list[str]:
    """Answers (str, padding stripped) to questions in writing, by the model of a training run.

    ``plot``: a path for the attention heatmap of the first question (attention models only).
    """
    from tinygrad_nlp.text.sequences import encode_questions

    model, vocab, summary = load_run(directory)
    x = encode_questions(list(questions), vocab, summary["question_width"], reverse=summary["reverse"])
    start = vocab.word_to_id[summary["start"]]
    length = summary["answer_width"]
    ids = model.beam_search(x, start, length, beam=beam) if beam and beam > 1 else model.generate(x, start, length)
    answers = [_decode(vocab, row).strip() for row in np.atleast_2d(ids)]
    if plot is not None:
        if summary["model"] != "attention":
            raise ValueError(f"--plot: the {summary['model']} model has no attention weights to draw")
        plot_answer(model, vocab, x[0], start, length, summary["reverse"], plot)
    return answers


# ----- the command line (tinygrad-nlp seq2seq ...) -----
def cmd_seq2seq_train(args):
    train(args.data, model_kind=args.model, cell=args.cell, reverse=args.reverse, wordvec=args.wordvec,
                   hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, clip=args.clip,
                   beam=args.beam, seed=args.seed, data_seed=args.data_seed, out=args.out, quiet=args.quiet,
                   size=args.size, decay=args.decay)
    return 0


def cmd_seq2seq_predict(args):
    plot = None
    if args.plot is not None:
        plot = args.plot or os.path.join(args.run, "attention-predict.png")
    for question, answer in zip(args.question, predict_text(args.run, args.question, beam=args.beam, plot=plot)):
        _print(f"{question}\t{answer}" if len(args.question) > 1 else answer)
    if plot is not None:
        _print(f"wrote {plot}")
    return 0


def add_seq2seq_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``seq2seq train`` and ``seq2seq predict`` to the ``tinygrad-nlp`` subcommands ``sub``.

    Both are registered with ``add_command`` and declare their flags
    with its checking types: a bad value is refused, naming the flag, before any data is read."""
    from tinygrad_nlp.cli_args import add_command, count, existing_file, output_dir, output_file, positive

    def data_spec(text):
        """"addition", "dates" (generated) or a file of question_answer lines that exists."""
        return text if text in ("addition", "dates") else existing_file(text)

    def plot_path(text):
        """A file to draw into (its directory must exist), or "" for RUN/attention-predict.png."""
        return text if text == "" else output_file(text)

    p = sub.add_parser("seq2seq", help="encoder-decoder models on the addition and date tasks",
                       description="Encoder-decoder models on the addition and date tasks.")
    s2s = p.add_subparsers(dest="seq2seq_command", required=True, metavar="COMMAND", help="what to do")
    t = add_command(s2s, "train", cmd_seq2seq_train,
                    help="train; writes weights.npz, vocab.json, summary.json, accuracy.png, graph.svg")
    t.add_argument("--data", required=True, type=data_spec,
                   help='"addition", "dates" (generated) or a file of question_answer lines')
    t.add_argument("--model", choices=["plain", "peeky", "attention"], default=None,
                   help="default: peeky for addition, attention otherwise")
    t.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm", help="the recurrent cell")
    t.add_argument("--reverse", action=argparse.BooleanOptionalAction, default=None,
                   help="feed the questions reversed (default: on)")
    t.add_argument("--wordvec", type=count(1), default=None, help="symbol embedding size (default: 16)")
    t.add_argument("--hidden", type=count(1), default=None, help="recurrent state size (default: 128; 256 for dates)")
    t.add_argument("--epochs", type=count(1), default=None,
                   help="epochs to train (default: 25 for addition, 10 otherwise)")
    t.add_argument("--batch-size", dest="batch_size", type=count(1), default=None,
                   help="questions per step (default: 128)")
    t.add_argument("--lr", type=positive, default=None, help="Adam's learning rate (default: 0.001)")
    t.add_argument("--clip-norm", dest="clip", type=positive, default=None,
                   help="clip gradients to this global norm (default: 5)")
    t.add_argument("--decay", action="store_true", help="decay the learning rate linearly to 0.01%% of it over the run")
    t.add_argument("--beam", type=count(1), default=5, help="beam width of the final evaluation (1: greedy only)")
    t.add_argument("--seed", type=count(0), default=0, help="initial weights and shuffling")
    t.add_argument("--data-seed", dest="data_seed", type=count(0), default=1984, help="generated data and the split")
    t.add_argument("--size", type=count(1), default=50_000, help="lines generated for --data addition/dates")
    t.add_argument("--out", default="runs/seq2seq", type=output_dir, help="output directory")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    q = add_command(s2s, "predict", cmd_seq2seq_predict, help="answer questions with a trained model")
    q.add_argument("run", help="the --out directory of 'seq2seq train'")
    q.add_argument("question", nargs="+", help='questions in writing, e.g. "march 3, 1999" or "12+345"')
    q.add_argument("--beam", type=count(1), default=None, help="beam search of this width (default: greedy)")
    q.add_argument("--plot", nargs="?", const="", default=None, metavar="PATH", type=plot_path,
                   help="draw the first question's attention weights (default: RUN/attention-predict.png)")
