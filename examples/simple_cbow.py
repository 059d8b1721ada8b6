"""The book's SimpleCBOW example on "You say goodbye and I say hello.", written forward-only.

The book trains its simple CBoW (two context words -> Embedding -> average ->
MatMul -> softmax cross-entropy) with Adam on batches of 3 for 1,000 steps and print the loss
every 100 steps: it falls from 1.95 (log 7: seven equally likely words) to about 0.7. Here the
model is tinygrad_nlp.models.SimpleCBOW; its backward pass is not written anywhere.

    python examples/simple_cbow.py                    # 1,000 steps, about a second
    python examples/simple_cbow.py --steps 200 --out /tmp/simple_cbow

Writes OUT/loss.png (needs matplotlib) and OUT/graph.svg (needs Graphviz's dot; else graph.dot).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from tinygrad_nlp import no_grad
from tinygrad_nlp.models import SimpleCBOW
from tinygrad_nlp.optimizers import Adam
from tinygrad_nlp.text import create_contexts_target, preprocess
from tinygrad_nlp.viz import GraphvizNotFoundError

TEXT = "You say goodbye and I say hello."


def save_loss_curve(losses, path):
    """The book's plot of the loss per step, with a moving average on top."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print('note: no loss plot without matplotlib (pip install "tinygrad_nlp[plot]")')
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(len(losses)), losses, lw=0.7, alpha=0.6, label="loss per step")
    window = min(50, max(1, len(losses) // 10))
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(range(window - 1, len(losses)), smooth, lw=2, label=f"moving average ({window})")
    ax.set_xlabel("Iterations")
    ax.set_ylabel("Loss")
    ax.set_title("SimpleCBOW with Embedding (tinygrad_nlp)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="training steps (the book: 1,000)")
    p.add_argument("--batch-size", type=int, default=3, help="contexts per step, drawn at random (the book: 3)")
    p.add_argument("--hidden", type=int, default=5, help="hidden size H (the book: 5)")
    p.add_argument("--lr", type=float, default=0.001, help="Adam's learning rate (the book: Adam's default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the batches")
    p.add_argument("--out", default=os.path.join("out", "simple_cbow"), help="folder for loss.png and graph.svg")
    args = p.parse_args(argv)

    corpus, word_to_id, id_to_word = preprocess(TEXT)
    contexts, target = create_contexts_target(corpus, window_size=1)   # (6, 2) and (6,)
    model = SimpleCBOW(len(word_to_id), args.hidden, window_size=1, seed=args.seed)
    optimizer = Adam(lr=args.lr).setup(model)
    rng = np.random.default_rng(args.seed)

    losses = []
    for step in range(args.steps):
        idx = rng.choice(len(contexts), args.batch_size)
        loss = model(contexts[idx], target[idx])   # forward: the only code the model has
        model.cleargrads()
        loss.backward()                            # backward: automatic
        optimizer.update()
        losses.append(float(loss.data))
        if step % 100 == 0:
            print(f"Epoch {step}, Loss: {losses[-1]}")

    # What did it learn? The most likely centre word for each context pair.
    with no_grad():
        predicted = model.predict(contexts).data.argmax(axis=1)
    for (left, right), guess, truth in zip(contexts, predicted, target):
        mark = "ok" if guess == truth else f"(truth: {id_to_word[int(truth)]})"
        print(f"  {id_to_word[int(left)]:>8s} ___ {id_to_word[int(right)]:<8s} -> {id_to_word[int(guess)]} {mark}")

    os.makedirs(args.out, exist_ok=True)
    written = []
    plot = save_loss_curve(losses, os.path.join(args.out, "loss.png"))
    if plot:
        written.append(plot)
    graph = os.path.join(args.out, "graph.svg")
    try:
        model.plot(contexts[:3], target[:3], to_file=graph)
        written.append(graph)
    except GraphvizNotFoundError as err:
        print(f"note: {err}")
        written.append(os.path.join(args.out, "graph.dot"))
    print(f"final loss (mean of the last 100 steps): {np.mean(losses[-100:]):.4f}")
    print("wrote " + ", ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
