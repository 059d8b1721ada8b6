"""Render every image the documentation shows into docs/images/.

    python docs/make_images.py                 # rewrite docs/images/ (commit the result)
    python docs/make_images.py --out /tmp/img  # render somewhere else (the test suite does this)

Graph diagrams come from the same code the pages show (tinygrad_nlp.viz and Model.plot: the
Graphviz ``dot`` program when installed, else its WebAssembly build); the two loss curves come from short, seeded training runs
(matplotlib). Everything is deterministic, so re-running only changes files when the code that
draws them changed. The whole run takes a few seconds.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np

import tinygrad_nlp as tg
import tinygrad_nlp.functions as F
from tinygrad_nlp.io import write_bytes_atomic
from tinygrad_nlp.models import CBOW, SimpleCBOW, SkipGram
from tinygrad_nlp.optimizers import Adam
from tinygrad_nlp.text import create_contexts_target, load_demo, preprocess
from tinygrad_nlp.train import Trainer
from tinygrad_nlp.viz import plot_dot_graph, render_dot

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "images")
SENTENCE = "You say goodbye and I say hello."

# The architecture diagram of docs/design.md: modules as boxes, data as ellipses.
ARCHITECTURE_DOT = r"""
digraph architecture {
  rankdir=TB;
  node [fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=9, color="gray30"];
  text  [label="raw text / PTB files", shape=note, style=filled, fillcolor="#eeeeee"];
  ids   [label="text: preprocess, load_ptb,\nVocabulary -> corpus (L,) int32", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  ctx   [label="text: create_contexts_target\ncontexts (N, 2w), target (N,)", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  neg   [label="text: UnigramSampler\nnegatives (N, K)", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  model [label="models: CBOW / SkipGram forward\n(functions: EmbeddingBag, EmbeddingDot,\nSigmoidCrossEntropy)", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  loss  [label="loss: scalar Variable", shape=ellipse, style=filled, fillcolor="#ffe0b2", color="#e65100"];
  back  [label="core: loss.backward()\nheap by generation, weakref outputs,\nbackward_arrays fast path", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  grads [label="sparse: SparseRows gradients\n(rows, values) of W_in, W_out", shape=ellipse, style=filled, fillcolor="#ffe0b2", color="#e65100"];
  opt   [label="optimizers: Adam.update()\nupdates only the touched rows", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  params [label="Parameters W_in, W_out (V, H)", shape=ellipse, peripheries=2, style="filled,bold", fillcolor="#c8e6c9", color="#2e7d32"];
  out   [label="vectors: WordVectors\nevaluate, save_word2vec_format", shape=box, style=filled, fillcolor="#bbdefb", color="#0d47a1"];
  trainer [label="train: Trainer\n(prefetch thread, progress,\ncheckpoints via io.atomic_write)", shape=component, style=filled, fillcolor="#fff9c4", color="#f57f17"];
  text -> ids -> ctx -> model;
  ctx -> neg [label="prefetch thread"];
  neg -> model;
  params -> model;
  model -> loss -> back -> grads -> opt -> params;
  params -> out [style=dashed, label="after training"];
  trainer -> model [style=dotted, arrowhead=none];
  trainer -> opt [style=dotted, arrowhead=none];
}
"""


def seed_batch(window=1):
    """The book's sentence as (corpus, word_to_id, contexts, target)."""
    corpus, word_to_id, _ = preprocess(SENTENCE)
    contexts, target = create_contexts_target(corpus, window)
    return corpus, word_to_id, contexts, target


# ----- Autograd in 10 minutes -----
def autograd_images(out):
    x = tg.Variable(np.array([[1.0, 2.0]]), name="x")
    w = tg.Parameter(np.array([[0.5], [0.25]]), name="w")
    b = tg.Parameter(np.array([0.1]), name="b")
    y = F.tanh(x @ w + b)
    y.name = "y"
    plot_dot_graph(y, to_file=os.path.join(out, "autograd_tanh.svg"))

    x = tg.Variable(np.array(2.0), name="x")
    y = x ** 4
    y.backward(create_graph=True)
    gx = x.grad
    gx.name = "gx"
    plot_dot_graph(gx, to_file=os.path.join(out, "autograd_x4_grad.svg"))


# ----- The NLP Functions -----
def function_images(out):
    rng = np.random.default_rng(0)
    W = tg.Parameter(rng.standard_normal((7, 3)).astype(np.float32), name="W")
    h = F.embedding(W, np.array([1, 2, 3, 4, 1, 5]))
    h.name = "out"
    plot_dot_graph(h, to_file=os.path.join(out, "fn_embedding.svg"), rankdir="LR")

    contexts = np.array([[0, 2], [1, 3], [2, 4], [3, 1], [4, 5], [1, 6]])
    h = F.embedding_bag(W, contexts)
    h.name = "h"
    plot_dot_graph(h, to_file=os.path.join(out, "fn_embedding_bag.svg"), rankdir="LR")

    W_out = tg.Parameter(rng.standard_normal((7, 3)).astype(np.float32), name="W_out")
    hv = tg.Variable(rng.standard_normal((6, 3)).astype(np.float32), name="h")
    s = F.embedding_dot(W_out, hv, np.array([1, 2, 3, 4, 1, 5]))
    s.name = "s"
    plot_dot_graph(s, to_file=os.path.join(out, "fn_embedding_dot.svg"), rankdir="LR")

    score = tg.Variable(rng.standard_normal((6, 7)).astype(np.float32), name="score")
    loss = F.softmax_cross_entropy(score, np.array([1, 2, 3, 4, 1, 5]))
    loss.name = "loss"
    plot_dot_graph(loss, to_file=os.path.join(out, "fn_softmax_cross_entropy.svg"), rankdir="LR")

    s = tg.Variable(rng.standard_normal(6).astype(np.float32), name="s")
    loss = F.sigmoid_cross_entropy(s, np.ones(6, np.float32))
    loss.name = "loss"
    plot_dot_graph(loss, to_file=os.path.join(out, "fn_sigmoid_cross_entropy.svg"), rankdir="LR")

    negatives = np.array([[0, 6], [5, 1], [2, 0], [6, 3], [3, 2], [4, 0]])
    loss = F.negative_sampling_loss(hv, W_out, np.array([1, 2, 3, 4, 1, 5]), negatives)
    plot_dot_graph(loss, to_file=os.path.join(out, "fn_negative_sampling.svg"), rankdir="LR")


# ----- CBoW declaratively -----
def model_images(out):
    corpus, word_to_id, contexts, target = seed_batch()
    V = len(word_to_id)
    SimpleCBOW(V, 5, seed=0).plot(contexts[:3], target[:3], to_file=os.path.join(out, "model_simple_cbow.svg"))
    CBOW(V, 3, 1, corpus, sample_size=2, seed=0).plot(contexts[:2], target[:2], to_file=os.path.join(out, "model_cbow.svg"))
    SkipGram(V, 3, 1, corpus, sample_size=2, seed=0).plot(contexts[:2], target[:2], to_file=os.path.join(out, "model_skipgram.svg"))


def train_simple_cbow(steps=1000, batch_size=3, hidden=5, seed=0, report=None):
    """The book's SimpleCBOW example, Adam(0.001), batches of 3 drawn at random.

    Returns the list of per-step losses (1.95 at the start, about 0.6-0.7 after 1,000 steps).
    """
    corpus, word_to_id, contexts, target = seed_batch()
    model = SimpleCBOW(len(word_to_id), hidden, seed=seed)
    optimizer = Adam().setup(model)
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        idx = rng.choice(len(contexts), batch_size)
        loss = model(contexts[idx], target[idx])
        model.cleargrads()
        loss.backward()
        optimizer.update()
        losses.append(float(loss.data))
        if report is not None and step % 100 == 0:
            report(step, losses[-1])
    return losses


def save_loss_plot(losses, path, title):
    """A small PNG of per-step losses with a moving average (the book's plot, annotated)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = np.asarray(losses)
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
    ax.plot(np.arange(len(losses)), losses, lw=0.6, alpha=0.5, label="loss per step")
    window = 50
    if len(losses) > window:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(losses)), smooth, lw=1.8, label=f"moving average ({window} steps)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def loss_images(out):
    losses = train_simple_cbow()
    save_loss_plot(losses, os.path.join(out, "loss_simple_cbow.png"), "SimpleCBOW on \"You say goodbye and I say hello.\"")

    corpus, word_to_id, _ = load_demo()
    contexts, target = create_contexts_target(corpus, 2)
    model = CBOW(len(word_to_id), 50, 2, corpus, sample_size=5, seed=0)
    trainer = Trainer(model, Adam(lr=0.01).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=1, batch_size=100, seed=0)
    save_loss_plot(trainer.loss_history, os.path.join(out, "loss_cbow_demo.png"),
                   "CBOW + negative sampling on the demo corpus (1 epoch)")


# ----- Recurrent language models -----
# Truncated backpropagation through time: the corpus as parallel streams read window by window.
BPTT_DOT = r"""
digraph bptt {
  rankdir=LR;
  node [fontname="Helvetica", fontsize=11];
  edge [fontname="Helvetica", fontsize=9];
  corpus [label="corpus: w0 w1 w2 ... w(L-1)\nsplit into N streams of L/N words", shape=note, style=filled, fillcolor="#eeeeee"];
  subgraph cluster_w1 { label="window 1: words 0..T-1 of every stream"; style="rounded,filled"; fillcolor="#f5f5f5"; color="#9e9e9e";
    a0 [label="step 0", shape=box, style=filled, fillcolor="#bbdefb"]; a1 [label="step 1", shape=box, style=filled, fillcolor="#bbdefb"];
    a2 [label="...", shape=plaintext]; a3 [label="step T-1", shape=box, style=filled, fillcolor="#bbdefb"];
    l1 [label="loss 1 -> backward,\nupdate", shape=ellipse, style=filled, fillcolor="#ffe0b2"];
    a0 -> a1 -> a2 -> a3; a3 -> l1 [style=dotted, arrowhead=none]; }
  subgraph cluster_w2 { label="window 2: words T..2T-1"; style="rounded,filled"; fillcolor="#f5f5f5"; color="#9e9e9e";
    s2 [label="carried (h, c)\n(leaf: values only)", shape=ellipse, style="dashed,bold", color="#c62828", fontcolor="#c62828"];
    b0 [label="step 0", shape=box, style=filled, fillcolor="#bbdefb"]; b1 [label="...", shape=plaintext];
    b2 [label="step T-1", shape=box, style=filled, fillcolor="#bbdefb"];
    l2 [label="loss 2 -> backward,\nupdate", shape=ellipse, style=filled, fillcolor="#ffe0b2"];
    s2 -> b0 -> b1 -> b2; b2 -> l2 [style=dotted, arrowhead=none]; }
  corpus -> a0;
  a3 -> s2 [style=dashed, color="#c62828", fontcolor="#c62828", label="forward: state values\nbackward: cut (no gradient)"];
}
"""


def lm_images(out):
    from tinygrad_nlp import unrolled
    from tinygrad_nlp.models import LSTMLM
    from tinygrad_nlp.viz import recurrent_dot

    render_dot(BPTT_DOT, os.path.join(out, "lm_bptt.svg"))
    model = LSTMLM(12, 4, 4, seed=0)
    ids = np.arange(6).reshape(2, 3)
    model(ids, ids + 1)  # window 1; window 2 starts from its cut state
    with unrolled():  # one cell node per time step, drawn as clusters
        loss = model(ids + 3, ids + 4)
    recurrent_dot(loss, verbose=False).save(os.path.join(out, "model_lstmlm.svg"))


def design_images(out):
    render_dot(ARCHITECTURE_DOT, os.path.join(out, "architecture.svg"))


GROUPS = (autograd_images, function_images, model_images, loss_images, lm_images, design_images)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Render the documentation's images.")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: docs/images)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.perf_counter()
    for group in GROUPS:
        group(args.out)
    names = sorted(os.listdir(args.out))
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in names)
    print(f"wrote {len(names)} images ({total / 1024:.0f} KiB) to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
