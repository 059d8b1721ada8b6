"""Embedding backward: dense and row-sparse scatter-add against ``np.add.at``, same data, same run.

A batch of 10,000 rows x 10 ids gathers from a 10,000 x 100 float32 matrix; the backward must
sum 100,000 gradient rows into the matrix's rows. Prints milliseconds per backward and the
speed-up over ``np.add.at`` (the goal: sparse >= 10x).

    python benchmarks/bench_embedding.py [--rows 10000] [--ids 10] [--vocab 10000] [--dim 100]
"""

import argparse

import numpy as np

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, Variable
from _timing import best_of


def best_ms(fn, repeat):
    fn()  # warm up
    return 1e3 * best_of(fn, repeat)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--ids", type=int, default=10)
    p.add_argument("--vocab", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((args.vocab, args.dim)).astype(np.float32)
    idx = rng.integers(0, args.vocab, size=(args.rows, args.ids))
    dout = rng.standard_normal((args.rows, args.ids, args.dim)).astype(np.float32)

    def add_at():
        dW = np.zeros_like(W0)
        np.add.at(dW, idx.ravel(), dout.reshape(-1, args.dim))
        return dW

    graphs = {}
    for sparse in (False, True):  # build each graph once: only the backward pass is timed
        W = Parameter(W0)
        y = F.embedding(W, idx, sparse=sparse)
        y.grad = Variable(dout)
        graphs[sparse] = (W, y)

    def backward(sparse):
        W, y = graphs[sparse]
        W.cleargrad()
        y.backward()
        if sparse:
            W.grad.rows  # noqa: B018 - make sure the rows are summed (coalesced) inside the timing
        return W.grad

    ref = add_at()
    assert np.allclose(backward(False).data, ref, atol=1e-4)
    assert np.allclose(backward(True).to_dense(), ref, atol=1e-4)

    results = {"np.add.at": [], "dense": [], "sparse": []}
    for _ in range(2):  # alternate so that machine noise affects all three alike
        results["np.add.at"].append(best_ms(add_at, args.repeat))
        results["dense"].append(best_ms(lambda: backward(False), args.repeat))
        results["sparse"].append(best_ms(lambda: backward(True), args.repeat))
    base = min(results["np.add.at"])
    print(f"embedding backward: {args.rows} x {args.ids} ids into {args.vocab} x {args.dim} float32")
    for name, ms in results.items():
        t = min(ms)
        print(f"  {name:10s} {t:8.2f} ms   {base / t:5.1f}x faster than np.add.at")


if __name__ == "__main__":
    main()
