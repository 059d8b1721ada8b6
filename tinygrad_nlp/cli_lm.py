"""``tinygrad-nlp lm``: train, sample from and evaluate recurrent language models.

    tinygrad-nlp lm train --corpus ptb --cell lstm --epochs 4 --out runs/lm
    tinygrad-nlp lm generate runs/lm --start "the company" --length 40 --seed 0
    tinygrad-nlp lm evaluate runs/lm --corpus ptb:test

``lm train`` writes ``weights.npz``, ``vocab.json``, ``model.json`` (the model's settings),
``summary.json`` (train/valid/test perplexity, wall time, words/s), ``perplexity.png``,
``graph.svg`` (the model unrolled over a few steps) and, after every epoch,
``checkpoint.npz`` (``--resume`` continues from it exactly).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np

__all__ = ["add_lm_parser", "LM_DEFAULTS"]

# The book's Rnnlm settings (its ch06 train_rnnlm.py): SGD, lr 20, clip 0.25, batch 20, time 35.
LM_DEFAULTS = dict(cell="lstm", layers=1, wordvec=100, hidden=100, dropout=0.0, tie_weights=False, epochs=4,
                   batch_size=20, time_size=35, lr=20.0, clip_norm=0.25, optimizer="sgd", schedule="constant",
                   decay=4.0, decay_after=0, init_scale=None)

MODEL_KEYS = ("vocab_size", "wordvec_size", "hidden_size", "num_layers", "dropout", "tie_weights", "cell")
# The flags whose values model.json (and summary.json) hold under the model's own names.
SETTINGS_IN_CONFIG = ("wordvec", "hidden", "layers", "dropout", "tie_weights", "cell")


def _print(*args):
    print(*args, flush=True)


def _positive(name, value, allow_zero=False):
    if value is None:
        return
    if (value < 0) if allow_zero else (value <= 0):
        raise ValueError(f"--{name} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def _read_split(spec, ptb_dir, vocab=None):
    """``(corpus, vocabulary)`` for "ptb", "ptb:valid", "ptb:test" or a text file; with ``vocab`` the
    words are encoded with it (unknown words become its unk token)."""
    from tinygrad_nlp import text
    from tinygrad_nlp.text import Vocabulary

    if spec == "ptb" or spec.startswith("ptb:"):
        split = "train" if spec == "ptb" else spec.split(":", 1)[1]
        if split not in ("train", "valid", "test"):
            raise ValueError(f"--corpus {spec}: the PTB splits are ptb (train), ptb:valid and ptb:test")
        corpus, w2i, i2w = text.load_ptb(split, data_dir=ptb_dir)
    elif vocab is None:
        corpus, w2i, i2w = text.load_text(spec)
    else:
        return _encode_text(spec, vocab), vocab
    words = [i2w[i] for i in range(len(i2w))]
    counts = np.bincount(np.asarray(corpus), minlength=len(words))
    built = Vocabulary(words, counts, unk="<unk>" if "<unk>" in w2i else None)
    if vocab is not None and list(vocab) != words:
        raise ValueError(f"--corpus {spec}: its vocabulary differs from the model's")
    return np.asarray(corpus), built


def _encode_text(path, vocab):
    """A text file (one sentence per line) as ids of ``vocab``, ``<eos>`` after each line, as
    ``load_text`` reads a training file."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().lower().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"text corpus {path} not found") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    tokens = []
    for line in lines:
        words = line.split()
        if words:
            tokens.extend(words)
            tokens.append("<eos>")
    if not tokens:
        raise ValueError(f"{path} holds no tokens (empty or blank file)")
    try:
        return np.asarray(vocab.encode(tokens))
    except KeyError as err:
        raise ValueError(f"{path}: {err.args[0]}") from None


def _build_model(config, seed=0, init_scale=None):
    from tinygrad_nlp.models import LSTMLM

    return LSTMLM(**{k: config[k] for k in MODEL_KEYS}, init_scale=init_scale, seed=seed)


def _optimizer(kind, lr, clip_norm):
    from tinygrad_nlp import optimizers as O

    classes = {"sgd": O.SGD, "momentum": O.MomentumSGD, "adam": O.Adam, "adagrad": O.AdaGrad}
    return classes[kind](lr=lr, clip_norm=clip_norm)


def render_lm_graph(model, path, steps=3):
    """Draw ``model`` unrolled over ``steps`` words of a 2-stream batch, after one earlier window
    (so the cut state is visible), to ``path``; returns the path written."""
    from tinygrad_nlp.core import unrolled
    from tinygrad_nlp.viz import recurrent_dot

    rng = np.random.default_rng(0)
    saved = model.rnn.state
    try:
        model.reset_state()
        model(rng.integers(0, model.vocab_size, (2, steps)), rng.integers(0, model.vocab_size, (2, steps)))
        with unrolled():
            loss = model(rng.integers(0, model.vocab_size, (2, steps)), rng.integers(0, model.vocab_size, (2, steps)))
        graph = recurrent_dot(loss)
    finally:
        model.rnn.state = saved
    return graph.save(path)


def cmd_lm_train(args):
    from tinygrad_nlp.io import write_text_atomic
    from tinygrad_nlp.train import LMTrainer, perplexity

    s = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in LM_DEFAULTS.items()}
    for name in ("layers", "wordvec", "hidden", "epochs", "batch_size", "time_size", "lr"):
        _positive(name.replace("_", "-"), s[name])
    _positive("clip-norm", s["clip_norm"])
    _positive("max-steps", args.max_steps)
    if not 0 <= s["dropout"] < 1:
        raise ValueError(f"--dropout must be in [0, 1), got {s['dropout']}")
    if s["tie_weights"] and s["wordvec"] != s["hidden"]:
        raise ValueError(f"--tie-weights needs --wordvec equal to --hidden, got {s['wordvec']} and {s['hidden']}")
    t_start = time.perf_counter()
    train, vocab = _read_split(args.corpus, args.ptb_dir)
    is_ptb = args.corpus == "ptb"
    valid_spec = args.valid or ("ptb:valid" if is_ptb else None)
    test_spec = args.test or ("ptb:test" if is_ptb else None)
    valid = _read_split(valid_spec, args.ptb_dir, vocab)[0] if valid_spec else None
    test = _read_split(test_spec, args.ptb_dir, vocab)[0] if test_spec else None
    if s["schedule"] == "plateau" and valid is None:
        raise ValueError("--schedule plateau needs a validation corpus: give --valid PATH")
    config = {"vocab_size": len(vocab), "wordvec_size": s["wordvec"], "hidden_size": s["hidden"],
              "num_layers": s["layers"], "dropout": s["dropout"], "tie_weights": s["tie_weights"], "cell": s["cell"]}
    model = _build_model(config, seed=args.seed, init_scale=s["init_scale"])
    optimizer = _optimizer(s["optimizer"], s["lr"], s["clip_norm"]).setup(model)
    out = args.out
    os.makedirs(out, exist_ok=True)
    write_text_atomic(os.path.join(out, "model.json"), json.dumps(config, indent=2) + "\n")
    vocab.save(os.path.join(out, "vocab.json"))
    graph_path = render_lm_graph(model, os.path.join(out, "graph.svg"))
    _print(f"corpus {args.corpus}: {len(train):,} tokens, {len(vocab):,} words; {s['cell']} "
           f"{s['layers']} x {s['hidden']}, {sum(p.data.size for p in model.params()):,} parameters")

    trainer = LMTrainer(model, optimizer, progress=not args.quiet)
    trainer.fit(train, max_epoch=s["epochs"], batch_size=s["batch_size"], time_size=s["time_size"],
                valid_corpus=valid, schedule=s["schedule"], decay_factor=s["decay"], decay_after=s["decay_after"],
                checkpoint_dir=out, resume=args.resume, max_steps=args.max_steps)
    for r in trainer.history["eval"]:
        valid_text = f", valid perplexity {r['valid_perplexity']:.2f}" if "valid_perplexity" in r else ""
        _print(f"  epoch {r['epoch']}: train perplexity {r['train_perplexity']:.2f}{valid_text}, next lr {r['lr']:g}")
    model.save_weights(os.path.join(out, "weights.npz"))
    # The model's settings under its constructor's names (model.json's), then the training settings.
    summary = {"corpus": args.corpus, "tokens": int(len(train)), **config,
               **{k: s[k] for k in LM_DEFAULTS if k not in SETTINGS_IN_CONFIG},
               "seed": args.seed, "max_steps": args.max_steps, "epochs_done": trainer.epoch,
               "train_perplexity": trainer.history["eval"][-1]["train_perplexity"]}
    if valid is not None:
        summary["valid_perplexity"] = perplexity(model, valid)
    if test is not None:
        summary["test_perplexity"] = perplexity(model, test)
    summary.update(words_trained=trainer.targets_seen, train_seconds=round(trainer.seconds, 2), wall_seconds=round(time.perf_counter() - t_start, 2),
                   words_per_second=round(trainer.words_per_second), history=trainer.history["eval"])
    plot_path = os.path.join(out, "perplexity.png")
    try:
        trainer.plot(plot_path, title=f"{s['cell'].upper()} language model on {args.corpus}")
    except ImportError as err:
        plot_path = None
        _print(f"note: {err}")
    write_text_atomic(os.path.join(out, "summary.json"), json.dumps(summary, indent=2) + "\n")
    parts = [f"{k.split('_')[0]} perplexity {summary[k]:.2f}" for k in ("valid_perplexity", "test_perplexity") if k in summary]
    _print(f"trained {trainer.epoch} epochs in {trainer.seconds:.1f} s ({trainer.words_per_second:,.0f} words/s)"
           + (": " + ", ".join(parts) if parts else ""))
    _print("wrote " + ", ".join(p for p in (os.path.join(out, "weights.npz"), os.path.join(out, "vocab.json"),
                                             os.path.join(out, "summary.json"), plot_path, graph_path) if p))
    return 0


def _load_run(run_dir):
    """The model (weights loaded) and vocabulary saved by ``lm train`` in ``run_dir``."""
    from tinygrad_nlp.io import read_json
    from tinygrad_nlp.text import Vocabulary

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir}: no such run directory (train one with 'tinygrad-nlp lm train')")
    path = os.path.join(run_dir, "model.json")
    config = read_json(path, missing=f"{path} not found: {run_dir} is not a directory written by 'lm train'")
    missing = [k for k in MODEL_KEYS if not isinstance(config, dict) or k not in config]
    if missing:
        raise ValueError(f"{path}: missing settings {missing}")
    vocab = Vocabulary.load(os.path.join(run_dir, "vocab.json"))
    if len(vocab) != config["vocab_size"]:
        raise ValueError(f"{run_dir}: vocab.json holds {len(vocab)} words but model.json says {config['vocab_size']}")
    try:
        model = _build_model(config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: invalid settings ({err})") from None
    model.load_weights(os.path.join(run_dir, "weights.npz"))
    return model, vocab


def cmd_lm_generate(args):
    model, vocab = _load_run(args.run_dir)
    words = args.start.lower().split()
    if not words:
        raise ValueError("--start must hold at least one word")
    unknown = [w for w in words if w not in vocab]
    if unknown:
        raise ValueError(f"--start: word {unknown[0]!r} is not in the model's vocabulary")
    _positive("length", args.length, allow_zero=True)
    if args.temperature < 0:
        raise ValueError(f"--temperature must be >= 0, got {args.temperature}")
    if args.top_k is not None and not 1 <= args.top_k <= len(vocab):
        raise ValueError(f"--top-k must be in 1..{len(vocab)}, got {args.top_k}")
    ids = model.generate(vocab.encode(words), args.length, temperature=args.temperature, top_k=args.top_k,
                         seed=args.seed)
    text = " ".join(words + vocab.decode(ids)).replace(" <eos>", "\n").replace("<eos>", "\n")
    _print(text)
    return 0


def cmd_lm_evaluate(args):
    from tinygrad_nlp.train import perplexity

    model, vocab = _load_run(args.run_dir)
    corpus, _ = _read_split(args.corpus, args.ptb_dir, vocab)
    _positive("batch-size", args.batch_size)
    _positive("time-size", args.time_size)
    ppl = perplexity(model, corpus, batch_size=args.batch_size, time_size=args.time_size)
    _print(f"perplexity {ppl:.2f} on {args.corpus} ({len(corpus):,} tokens)")
    if not math.isfinite(ppl):
        return 1
    return 0


def add_lm_parser(sub):
    """Add the ``lm`` command (train / generate / evaluate) to the main parser's subcommands.

    Each subcommand is registered with ``add_command`` and its flags carry
    the checking types of ``cli_args``, so a bad value is refused, naming the flag,
    before any data is read."""
    from tinygrad_nlp.cli_args import (add_command, corpus_spec, count, existing_dir, fraction, non_negative,
                                       output_dir, positive)

    d = LM_DEFAULTS
    lm = sub.add_parser("lm", help="recurrent language models: train, generate, evaluate",
                        description="Recurrent language models: train, generate, evaluate.")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True, metavar="COMMAND", help="what to do")

    p = add_command(lm_sub, "train", cmd_lm_train, help="train an LSTM/GRU/RNN language model (truncated BPTT)")
    p.add_argument("--corpus", required=True, type=corpus_spec,
                   help='"ptb" (Penn Treebank train split; see --ptb-dir) or a text file')
    p.add_argument("--valid", default=None, type=corpus_spec, help="validation corpus (default for ptb: ptb:valid)")
    p.add_argument("--test", default=None, type=corpus_spec, help="test corpus (default for ptb: ptb:test)")
    p.add_argument("--ptb-dir", default=None, type=existing_dir, help="directory with ptb.*.txt")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=None, help=f"recurrent cell (default: {d['cell']})")
    p.add_argument("--layers", type=count(1), default=None, help=f"stacked recurrent layers (default: {d['layers']})")
    p.add_argument("--wordvec", type=count(1), default=None, help=f"embedding size (default: {d['wordvec']})")
    p.add_argument("--hidden", type=count(1), default=None, help=f"hidden size (default: {d['hidden']})")
    p.add_argument("--dropout", type=fraction, default=None,
                   help=f"dropout on embeddings, between layers and before the output (default: {d['dropout']})")
    p.add_argument("--tie-weights", dest="tie_weights", action="store_true", default=None,
                   help="score with the embedding matrix (needs --wordvec == --hidden)")
    p.add_argument("--epochs", type=count(1), default=None, help=f"epochs to train (default: {d['epochs']})")
    p.add_argument("--batch-size", dest="batch_size", type=count(1), default=None,
                   help=f"parallel streams (default: {d['batch_size']})")
    p.add_argument("--time-size", dest="time_size", type=count(1), default=None,
                   help=f"steps per window (default: {d['time_size']})")
    p.add_argument("--lr", type=positive, default=None, help=f"learning rate (default: {d['lr']:g}, SGD on a mean loss)")
    p.add_argument("--clip-norm", dest="clip_norm", type=positive, default=None,
                   help=f"global gradient norm (default: {d['clip_norm']})")
    p.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "adagrad"], default=None,
                   help=f"the optimizer (default: {d['optimizer']})")
    p.add_argument("--schedule", choices=["constant", "plateau", "step"], default=None,
                   help="plateau: divide lr by --decay when validation perplexity stops improving (the book); "
                        "step: divide it by --decay after every epoch from --decay-after on (Zaremba et al.) "
                        f"(default: {d['schedule']})")
    p.add_argument("--decay", type=positive, default=None, help=f"the schedule's divisor (default: {d['decay']:g})")
    p.add_argument("--decay-after", dest="decay_after", type=count(0), default=None,
                   help=f"step schedule: the first epoch after which lr is divided (default: {d['decay_after']})")
    p.add_argument("--init-scale", dest="init_scale", type=positive, default=None,
                   help="initialise every weight from U(-s, s) (default: the book's initialisation)")
    p.add_argument("--max-steps", dest="max_steps", type=count(1), default=None,
                   help="train each epoch on its first N windows only, a quick look at a big model (default: all)")
    p.add_argument("--seed", type=count(0), default=0, help="seeds the weights, dropout and batches")
    p.add_argument("--out", default="runs/lm", type=output_dir, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.npz")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add_command(lm_sub, "generate", cmd_lm_generate, help="sample text from a trained model")
    p.add_argument("run_dir", type=existing_dir, help="directory written by 'lm train'")
    p.add_argument("--start", required=True, help='the first words, e.g. "the company"')
    p.add_argument("--length", type=count(0), default=40, help="words to generate")
    p.add_argument("--temperature", type=non_negative, default=1.0, help="0 picks the most likely word each time")
    p.add_argument("--top-k", dest="top_k", type=count(1), default=None,
                   help="sample among the k most likely words (default: all)")
    p.add_argument("--seed", type=count(0), default=None, help="seeds the sampling (default: fresh randomness)")

    p = add_command(lm_sub, "evaluate", cmd_lm_evaluate, help="perplexity of a trained model on a corpus")
    p.add_argument("run_dir", type=existing_dir, help="directory written by 'lm train'")
    p.add_argument("--corpus", required=True, type=corpus_spec, help='a text file, or "ptb:valid" / "ptb:test"')
    p.add_argument("--ptb-dir", default=None, type=existing_dir, help="directory with ptb.*.txt")
    p.add_argument("--batch-size", dest="batch_size", type=count(1), default=10, help="parallel streams")
    p.add_argument("--time-size", dest="time_size", type=count(1), default=35, help="steps per window")
    return lm
