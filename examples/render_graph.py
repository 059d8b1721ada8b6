"""Draw computational graphs: a few expressions, a second derivative, and the three word2vec models.

Every graph is whatever one forward pass built; plot_dot_graph (or Model.plot) walks it and hands
the DOT text to Graphviz. Parameters are green double ellipses, constants dashed, Functions blue
boxes.

    python examples/render_graph.py                      # SVG files in out/graphs/
    python examples/render_graph.py --format png --rankdir LR --out /tmp/graphs
    python examples/render_graph.py --format dot         # only the DOT text (no Graphviz needed)
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tinygrad_nlp as tg
import tinygrad_nlp.functions as F
from tinygrad_nlp.models import CBOW, SimpleCBOW, SkipGram
from tinygrad_nlp.text import create_contexts_target, preprocess
from tinygrad_nlp.viz import GraphvizNotFoundError, plot_dot_graph


def expressions():
    """(name, output Variable) pairs of small expressions."""
    x = tg.Variable(np.array(2.0), name="x")
    y = x ** 4 - 3 * x
    y.name = "y"

    # The derivative of x**4 as a graph of its own (create_graph=True records the backward pass).
    x2 = tg.Variable(np.array(2.0), name="x")
    (x2 ** 4).backward(create_graph=True)
    gx = x2.grad
    gx.name = "dy/dx"

    # A one-unit neuron.
    inp = tg.Variable(np.array([[1.0, 2.0]]), name="x")
    w = tg.Parameter(np.array([[0.5], [0.25]]), name="w")
    b = tg.Parameter(np.array([0.1]), name="b")
    neuron = F.tanh(inp @ w + b)
    neuron.name = "y"

    # Softmax cross-entropy on a (2, 4) batch of scores.
    score = tg.Variable(np.zeros((2, 4)), name="score")
    loss = F.softmax_cross_entropy(score, np.array([1, 3]))
    loss.name = "loss"
    return [("polynomial", y), ("derivative_x4", gx), ("neuron", neuron), ("softmax_cross_entropy", loss)]


def models():
    """(name, model, contexts, target) for the three models on the book's sentence."""
    corpus, word_to_id, _ = preprocess("You say goodbye and I say hello.")
    contexts, target = create_contexts_target(corpus, window_size=1)
    V = len(word_to_id)
    return [
        ("simple_cbow", SimpleCBOW(V, 5, seed=0), contexts[:3], target[:3]),
        ("cbow", CBOW(V, 3, 1, corpus, sample_size=2, seed=0), contexts[:2], target[:2]),
        ("skipgram", SkipGram(V, 3, 1, corpus, sample_size=2, seed=0), contexts[:2], target[:2]),
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join("out", "graphs"), help="output folder")
    p.add_argument("--format", default="svg", choices=["svg", "png", "pdf", "dot"])
    p.add_argument("--rankdir", default="TB", choices=["TB", "LR"], help="top-to-bottom or left-to-right")
    p.add_argument("--brief", action="store_true", help="leave shapes and dtypes out of the labels")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    written = []
    try:
        for name, output in expressions():
            path = os.path.join(args.out, f"{name}.{args.format}")
            plot_dot_graph(output, to_file=path, verbose=not args.brief, rankdir=args.rankdir)
            written.append(path)
        for name, model, contexts, target in models():
            path = os.path.join(args.out, f"{name}.{args.format}")
            model.plot(contexts, target, to_file=path, verbose=not args.brief, rankdir=args.rankdir)
            written.append(path)
    except GraphvizNotFoundError as err:
        print(f"error: {err}\n(use --format dot to write the DOT text only)", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
