"""Seq2seq training speed against the NLP book's code and PyTorch CPU, in the same run.

    python benchmarks/bench_seq2seq.py --book PATH     # PATH: a checkout of the book's repository
    python benchmarks/bench_seq2seq.py --task dates --steps 20 --rounds 3

Two tasks at the book's settings, Adam with gradients clipped to norm 5, batch 128:

* ``addition``: PeekySeq2seq, wordvec 16, hidden 128, questions of 7 symbols, answers of 4;
* ``dates``: AttentionSeq2seq, wordvec 16, hidden 256, questions of 29 symbols, answers of 10.

Each round times ``--steps`` training steps (forward, backward, clipping, update) of every
implementation on the same batches, alternating, and keeps each one's best round: ratios of one
run survive a busy machine. A last row times only the matrix products of the book's formulation,
one numpy call each: what that formulation costs on this BLAS before any other work (tinygrad_nlp
computes a narrow input inside each step's product, so it does not run exactly these). The epoch
time is the time per step times the book's 351 steps
(45,000 questions, batch 128). The book's code (``oreilly-japan/deep-learning-from-scratch-2``,
MIT) is not part of this project: pass a checkout of it with ``--book`` (skipped without one).
BLAS and PyTorch use ``--threads`` threads (default 1: on a shared 2-core machine several BLAS
threads per process slow every one of them down).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--task", choices=["addition", "dates", "both"], default="both")
ap.add_argument("--book", default=None, help="checkout of the book's repository (its ch07/ch08 and common/)")
ap.add_argument("--data-dir", default=None, help="folder with addition.txt and date.txt "
                "(default $TINYGRAD_NLP_SHARED_DATA/seq, else ../shared/data/seq)")
ap.add_argument("--steps", type=int, default=30, help="training steps per round")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--no-torch", action="store_true")
args = ap.parse_args()

for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.threads)
os.environ.setdefault("TINYGRAD_NLP_NUM_THREADS", str(args.threads))

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tinygrad_nlp.models import AttentionSeq2seq, PeekySeq2seq  # noqa: E402
from tinygrad_nlp.optimizers import Adam  # noqa: E402
from tinygrad_nlp.text import load_seq  # noqa: E402

SHARED = os.environ.get("TINYGRAD_NLP_SHARED_DATA", os.path.join(os.path.dirname(HERE), "..", "shared", "data"))
DATA = args.data_dir or os.path.join(SHARED, "seq")
TASKS = {
    "addition": dict(file="addition.txt", model=PeekySeq2seq, book=("ch07", "peeky_seq2seq", "PeekySeq2seq"),
                     wordvec=16, hidden=128),
    "dates": dict(file="date.txt", model=AttentionSeq2seq, book=("ch08", "attention_seq2seq", "AttentionSeq2seq"),
                  wordvec=16, hidden=256),
}
BATCH, CLIP, STEPS_PER_EPOCH = 128, 5.0, 45_000 // 128


def ours(task, V):
    model = task["model"](V, task["wordvec"], task["hidden"], seed=0)
    opt = Adam(lr=0.001, clip_norm=CLIP).setup(model)

    def step(x, t):
        loss = model(x, t)
        model.cleargrads()
        loss.backward()
        opt.update()
    return step


def book(task, V):
    root = os.path.abspath(args.book)
    for p in (root, os.path.join(root, task["book"][0])):
        if p not in sys.path:
            sys.path.insert(0, p)
    module = __import__(task["book"][1])
    from common.optimizer import Adam as BookAdam
    from common.util import clip_grads

    model = getattr(module, task["book"][2])(V, task["wordvec"], task["hidden"])
    opt = BookAdam()

    def step(x, t):
        model.forward(x, t)
        model.backward()
        clip_grads(model.grads, CLIP)  # the book's Trainer also merges shared weights: there are none
        opt.update(model.params, model.grads)
    return step


def pytorch(task, V):
    import torch
    from torch import nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    D, H = task["wordvec"], task["hidden"]
    peeky = task["model"] is PeekySeq2seq

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc_embed, self.dec_embed = nn.Embedding(V, D), nn.Embedding(V, D)
            self.enc = nn.LSTM(D, H, batch_first=True)
            self.dec = nn.LSTM(D + H if peeky else D, H, batch_first=True)
            self.out = nn.Linear(2 * H, V)

        def forward(self, x, t):
            hs, (h, c) = self.enc(self.enc_embed(x))
            inp = t[:, :-1]
            e = self.dec_embed(inp)
            if peeky:
                peek = h[0][:, None, :].expand(-1, inp.shape[1], -1)
                ys, _ = self.dec(torch.cat([peek, e], 2), (h, c))
                out = torch.cat([peek, ys], 2)
            else:
                ys, _ = self.dec(e, (h, c))
                w = torch.softmax(ys @ hs.transpose(1, 2), dim=2)
                out = torch.cat([w @ hs, ys], 2)
            return nn.functional.cross_entropy(self.out(out).reshape(-1, V), t[:, 1:].reshape(-1))

    model = Model()
    opt = torch.optim.Adam(model.parameters(), lr=0.001)

    def step(x, t):
        loss = model(torch.from_numpy(x), torch.from_numpy(t))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
    return step


def book_products(task, V, Te, Td):
    """A step doing only the matrix products of the book's formulation, forward and backward, in
    numpy: every product of the encoder and decoder LSTMs (input projections, one (N, H) x (H, 4H)
    product per step forward and one per step backward, the recurrent weight gradient), the
    output layer and, for attention, the scores and weighted sums. No gates, no softmax, no
    optimizer: the model's arithmetic as the book and PyTorch lay it out, on this BLAS.
    """
    rng = np.random.default_rng(0)
    D, H, N = task["wordvec"], task["hidden"], BATCH
    peeky = task["model"] is PeekySeq2seq
    shapes = []

    def layer(m, k, n):  # forward x @ W, backward g @ W^T and x^T @ g
        shapes.extend([(m, k, n), (m, n, k), (k, m, n)])

    for T, d in ((Te, D), (Td, D + H if peeky else D)):
        layer(N * T, d, 4 * H)
        shapes.extend([(N, H, 4 * H)] * T + [(N, 4 * H, H)] * T + [(H, N * T, 4 * H)])
    layer(N * Td, 2 * H, V)
    pairs = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)) for m, k, n in shapes]
    if not peeky:  # scores hs_dec @ hs_enc^T and weights @ hs_enc, each with two backward products
        a, b = rng.random((N, Td, H), dtype=np.float32), rng.random((N, H, Te), dtype=np.float32)
        w, e = rng.random((N, Td, Te), dtype=np.float32), rng.random((N, Te, H), dtype=np.float32)
        pairs += [(a, b), (w, e), (a.transpose(0, 2, 1), w), (w, e), (a, b), (w.transpose(0, 2, 1), a)]

    def step(x, t):
        for p, q in pairs:
            np.matmul(p, q)
    return step


def run(name):
    task = TASKS[name]
    (x, t), _, vocab = load_seq(os.path.join(DATA, task["file"]), reverse=True)
    x, t = x.astype(np.int64), t.astype(np.int64)
    V = len(vocab)
    impls = {"tinygrad_nlp": ours(task, V)}
    if args.book:
        impls["book"] = book(task, V)
    if not args.no_torch:
        impls["PyTorch"] = pytorch(task, V)
    impls["the book's products alone"] = book_products(task, V, x.shape[1], t.shape[1] - 1)
    batches = [(x[i * BATCH:(i + 1) * BATCH], t[i * BATCH:(i + 1) * BATCH]) for i in range(args.steps)]
    for step in impls.values():  # warm up (first-call costs, numba compilation)
        for b in batches[:3]:
            step(*b)
    best = {k: float("inf") for k in impls}
    for _ in range(args.rounds):
        for k, step in impls.items():
            t0 = time.perf_counter()
            for b in batches:
                step(*b)
            best[k] = min(best[k], (time.perf_counter() - t0) / len(batches))
    print(f"\n{name}: {task['model'].__name__}, wordvec {task['wordvec']}, hidden {task['hidden']}, batch {BATCH}, "
          f"{args.threads} thread(s), best of {args.rounds} rounds of {args.steps} steps")
    print("| implementation | ms per step | s per epoch (351 steps) | tinygrad_nlp speed-up |")
    print("| --- | --- | --- | --- |")
    for k, v in best.items():
        print(f"| {k} | {1e3 * v:.2f} | {v * STEPS_PER_EPOCH:.2f} | {v / best['tinygrad_nlp']:.2f}x |")


print(f"load average before: {os.getloadavg()[0]:.2f}")
for name in (["addition", "dates"] if args.task == "both" else [args.task]):
    run(name)
print(f"load average after: {os.getloadavg()[0]:.2f}")
