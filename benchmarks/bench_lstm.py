"""LSTM language-model training speed and memory: tinygrad_nlp against PyTorch CPU and the book's code.

    python benchmarks/bench_lstm.py [--threads 2] [--book PATH] [--hidden 100 --layers 1 ...]
    python benchmarks/bench_lstm.py --memory
    python benchmarks/bench_lstm.py --output-layer [--threads 2]

Trains the same network - embedding, LSTM, affine, softmax cross-entropy, SGD with global-norm
clipping - on the same PTB windows (batch 20, time 35, the book's ``Rnnlm`` settings by
default) with:

* tinygrad_nlp's ``LSTMLM``;
* PyTorch (``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear`` + ``cross_entropy``,
  ``clip_grad_norm_``, ``optim.SGD``) with ``torch.set_num_threads(threads)``;
* with ``--book PATH`` (a checkout of the book's repository, not part of this project), the
  book's ``ch06/rnnlm.py`` ``Rnnlm`` trained the way its ``RnnlmTrainer`` does.

The runs alternate in rounds of ``--steps`` windows and each reports its best round, so the
ratios hold on a busy machine. BLAS threads and tinygrad_nlp's own threads are set from
``--threads`` before numpy loads.
``--memory`` prints the peak memory numpy allocates during one training step (tracemalloc) for
several batch x time sizes and corpus lengths: it follows batch x time x (hidden + V) and not
the corpus. ``--output-layer`` times the output layer alone (``Linear`` and softmax cross-entropy,
forward and backward, on random (batch, time, hidden) inputs) with its large products split
across tinygrad_nlp's threads (BLAS on one thread meanwhile) and left to BLAS's own threads,
alternating in one process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
SHARED = os.path.join(HERE, "..", "..", "shared", "data")


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ptb-dir", default=os.environ.get("TINYGRAD_NLP_PTB_DIR", os.path.join(SHARED, "ptb")))
    p.add_argument("--book", default=None, help="path of a checkout of the book's code (deep-learning-from-scratch-2)")
    p.add_argument("--wordvec", type=int, default=100)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--time", type=int, default=35)
    p.add_argument("--steps", type=int, default=20, help="windows per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--memory", action="store_true", help="report peak memory per step instead of speed")
    p.add_argument("--output-layer", action="store_true",
                   help="time the output layer with its products split across our threads and with BLAS's threads")
    return p.parse_args()


ARGS = parse()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TINYGRAD_NLP_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402


def windows(corpus, args, count, start=0):
    from tinygrad_nlp.train import stream_windows

    w = stream_windows(corpus, args.batch, args.time)
    return [(np.ascontiguousarray(x), np.ascontiguousarray(t)) for x, t in w[start : start + count]]


def ours(V, args):
    from tinygrad_nlp.models import LSTMLM
    from tinygrad_nlp.optimizers import SGD

    model = LSTMLM(V, args.wordvec, args.hidden, num_layers=args.layers, seed=0)
    opt = SGD(lr=20.0, clip_norm=0.25).setup(model)

    def step(xs, ts):
        loss = model(xs, ts)
        model.cleargrads()
        loss.backward()
        opt.update()
        return float(loss.data)

    return step


def pytorch(V, args):
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, args.wordvec)
    lstm = torch.nn.LSTM(args.wordvec, args.hidden, args.layers, batch_first=True)
    head = torch.nn.Linear(args.hidden, V)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=20.0)
    state = [None]

    def step(xs, ts):
        x, t = torch.from_numpy(xs.astype(np.int64)), torch.from_numpy(ts.astype(np.int64))
        ys, s = lstm(emb(x), state[0])
        state[0] = tuple(v.detach() for v in s)
        loss = torch.nn.functional.cross_entropy(head(ys).reshape(-1, V), t.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.25)
        opt.step()
        return loss.item()

    return step


def book(V, args):
    import importlib.util

    sys.path.insert(0, args.book)
    from common.optimizer import SGD
    from common.util import clip_grads
    from common.base_model import BaseModel  # noqa: F401  (Rnnlm's base)

    spec = importlib.util.spec_from_file_location("book_rnnlm", os.path.join(args.book, "ch06", "rnnlm.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from common.trainer import remove_duplicate

    np.random.seed(0)
    model = module.Rnnlm(V, args.wordvec, args.hidden)
    opt = SGD(lr=20.0)

    def step(xs, ts):
        loss = model.forward(xs, ts)
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        clip_grads(grads, 0.25)
        opt.update(params, grads)
        return float(loss)

    return step


def speed(args):
    from tinygrad_nlp import text

    corpus, w2i, _ = text.load_ptb("train", data_dir=args.ptb_dir)
    V = len(w2i)
    runs = {"tinygrad_nlp": ours(V, args)}
    if not args.no_torch:
        runs["PyTorch"] = pytorch(V, args)
    if args.book:
        if args.layers != 1:
            raise SystemExit("--book: the book's Rnnlm has one LSTM layer")
        runs["the book's Rnnlm"] = book(V, args)
    data = windows(corpus, args, args.steps * (args.rounds + 1))
    best = {k: float("inf") for k in runs}
    best_cpu = {k: float("inf") for k in runs}
    for name, step in runs.items():  # warm up (JIT, allocator, BLAS threads)
        for xs, ts in data[:3]:
            step(xs, ts)
    for r in range(args.rounds):
        batch = data[(r + 1) * args.steps : (r + 2) * args.steps]
        for name, step in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for xs, ts in batch:
                step(xs, ts)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(batch))
            best_cpu[name] = min(best_cpu[name], (time.process_time() - c0) / len(batch))
    words = args.batch * args.time
    print(f"LSTM LM: V={V}, wordvec {args.wordvec}, hidden {args.hidden}, {args.layers} layer(s), batch {args.batch}, "
          f"time {args.time}, {args.threads} thread(s); best of {args.rounds} rounds of {args.steps} windows")
    # CPU seconds (all threads of the process) are far less sensitive to other programs' load
    # than wall-clock seconds; with one thread they measure each implementation's work.
    print("| | s per window | words/s | x tinygrad_nlp | CPU s per window | words per CPU s | x tinygrad_nlp |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t in best.items():
        c = best_cpu[name]
        print(f"| {name} | {t:.4f} | {words / t:,.0f} | {best['tinygrad_nlp'] / t:.2f} | {c:.4f} | {words / c:,.0f} | "
              f"{best_cpu['tinygrad_nlp'] / c:.2f} |")


def memory(args):
    import tracemalloc

    from tinygrad_nlp.models import LSTMLM
    from tinygrad_nlp.optimizers import SGD

    rng = np.random.default_rng(0)
    V = 10000
    print("| batch x time | corpus words | peak MiB during a step | MiB per (batch x time) |")
    print("| --- | --- | --- | --- |")
    for (B, T), length in [((20, 35), 100_000), ((20, 35), 1_000_000), ((40, 35), 100_000), ((20, 70), 100_000)]:
        corpus = rng.integers(0, V, length).astype(np.int32)
        model = LSTMLM(V, args.wordvec, args.hidden, num_layers=args.layers, seed=0)
        opt = SGD(lr=1.0, clip_norm=0.25).setup(model)
        from tinygrad_nlp.train import stream_windows

        ws = stream_windows(corpus, B, T)
        for xs, ts in ws[:2]:  # the optimizer's state and the carried state exist before measuring
            loss = model(xs, ts)
            model.cleargrads()
            loss.backward()
            opt.update()
        del loss
        tracemalloc.start()
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        xs, ts = ws[2]
        loss = model(xs, ts)
        model.cleargrads()
        loss.backward()
        opt.update()
        del loss
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        print(f"| {B} x {T} | {length:,} | {peak / 2**20:.1f} | {peak / 2**20 / (B * T):.3f} |")


def output_layer(args):
    import tinygrad_nlp as tg
    import tinygrad_nlp.functions as F
    from tinygrad_nlp import _threads

    rng = np.random.default_rng(0)
    V = 10000
    h = rng.standard_normal((args.batch, args.time, args.hidden)).astype(np.float32)
    W = tg.Parameter((rng.standard_normal((args.hidden, V)) / np.sqrt(args.hidden)).astype(np.float32))
    b = tg.Parameter(np.zeros(V, np.float32))
    t = rng.integers(0, V, (args.batch, args.time))
    split_at = _threads.PARALLEL_MIN_MACS

    def step(split):
        _threads.PARALLEL_MIN_MACS = split_at if split else 2**62
        loss = F.softmax_cross_entropy(F.linear(tg.Variable(h), W, b), t)
        W.cleargrad()
        b.cleargrad()
        loss.backward()

    runs = {"products split across tinygrad_nlp's threads": True, "products on BLAS's threads": False}
    best = {k: float("inf") for k in runs}
    best_cpu = dict(best)
    for split in runs.values():
        step(split)
    for _ in range(args.rounds):
        for name, split in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(split)
            best[name] = min(best[name], (time.perf_counter() - t0) / args.steps)
            best_cpu[name] = min(best_cpu[name], (time.process_time() - c0) / args.steps)
    print(f"output layer: ({args.batch}, {args.time}, {args.hidden}) -> V={V}, forward and backward, "
          f"{args.threads} thread(s); best of {args.rounds} rounds of {args.steps}")
    print("| | ms per step | CPU ms per step |")
    print("| --- | --- | --- |")
    for name in runs:
        print(f"| {name} | {best[name] * 1e3:.1f} | {best_cpu[name] * 1e3:.1f} |")


if __name__ == "__main__":
    if ARGS.memory:
        memory(ARGS)
    elif ARGS.output_layer:
        output_layer(ARGS)
    else:
        speed(ARGS)
