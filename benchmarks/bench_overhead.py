"""Autograd overhead per small op: forward + backward of a chain of tiny ops vs plain numpy.

Builds a chain of N operations on 4x4 float32 arrays (cycling add, mul, tanh, sub, sin with a
shared weight), times forward + backward through tinygrad_nlp, and prints microseconds per op
beside the same forward ops in plain numpy measured in the same run. The ratio is the number to
compare with other frameworks (the issue quotes PyTorch eager at about 14x, DeZero at about 27x).

    python benchmarks/bench_overhead.py [--ops 2000] [--rounds 5] [--no-torch]
"""

import argparse

import numpy as np

import tinygrad_nlp as tg
from _timing import best_of


def chain(x, w, n, tanh, sin):
    """The benchmark's chain: add, mul, tanh, sub, sin with a shared weight, repeated."""
    y = x
    for i in range(n):
        k = i % 5
        if k == 0:
            y = y + w
        elif k == 1:
            y = y * w
        elif k == 2:
            y = tanh(y)
        elif k == 3:
            y = y - w
        else:
            y = sin(y)
    return y


def numpy_chain(x, w, n):
    return chain(x, w, n, np.tanh, np.sin)


def tg_chain(x, w, n):
    return chain(x, w, n, tg.functions.tanh, tg.functions.sin)


def torch_chain_runner(x0, w0, n):
    import torch

    torch.set_num_threads(1)

    def run_torch():
        x = torch.tensor(x0, requires_grad=True)
        w = torch.tensor(w0, requires_grad=True)
        chain(x, w, n, torch.tanh, torch.sin).sum().backward()

    return run_torch


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=5, help="timings per round (the best is kept)")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds over the implementations")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    args = p.parse_args()
    n = args.ops
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((4, 4)).astype(np.float32)
    w0 = (1 + 0.01 * rng.standard_normal((4, 4))).astype(np.float32)

    def run_numpy():
        numpy_chain(x0, w0, n)

    def run_tg_forward():
        with tg.no_grad():
            tg_chain(tg.Variable(x0), tg.Variable(w0), n)

    def run_tg():
        x, w = tg.Parameter(x0), tg.Parameter(w0)
        y = tg_chain(x, w, n)
        y.backward()

    runners = {"numpy": run_numpy, "no_grad": run_tg_forward, "autograd": run_tg}
    # Why PyTorch has no row, when it has none: skipped on request is not "not installed".
    no_torch = "(PyTorch skipped: --no-torch)"
    if not args.no_torch:
        try:
            runners["torch"] = torch_chain_runner(x0, w0, n)
        except ImportError as err:
            no_torch = (f"(PyTorch not importable ({err}): pip install 'tinygrad_nlp[bench]' "
                        "to time it in the same run)")
    best = {k: float("inf") for k in runners}
    for _ in range(args.rounds):  # alternate so that machine noise hits every implementation alike
        for name, fn in runners.items():
            best[name] = min(best[name], best_of(fn, args.repeat))
    us = lambda t: 1e6 * t / n  # noqa: E731
    base = best["numpy"]
    print(f"chain of {n} ops on 4x4 float32 (add, mul, tanh, sub, sin), best of {args.rounds} x {args.repeat}")
    print(f"  numpy forward only             {us(base):7.2f} us/op   1.0x")
    print(f"  tinygrad_nlp forward, no_grad  {us(best['no_grad']):7.2f} us/op  {best['no_grad'] / base:5.1f}x")
    print(f"  tinygrad_nlp forward+backward  {us(best['autograd']):7.2f} us/op  {best['autograd'] / base:5.1f}x"
          "   <- autograd overhead ratio")
    if "torch" in best:
        print(f"  PyTorch eager forward+backward {us(best['torch']):7.2f} us/op  {best['torch'] / base:5.1f}x")
    else:
        print("  " + no_torch)


if __name__ == "__main__":
    main()
