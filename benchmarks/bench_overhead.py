"""Autograd overhead per small op: forward + backward of a chain of tiny ops vs plain numpy.

Builds a chain of N operations on 4x4 float32 arrays (cycling add, mul, tanh, sub, sin with a
shared weight), times forward + backward through tinygrad_nlp, and prints microseconds per op
beside the same forward ops in plain numpy measured in the same run. The ratio is the number to
compare with other frameworks (the issue quotes PyTorch eager at about 14x, DeZero at about 27x).

    python benchmarks/bench_overhead.py [--ops 2000] [--repeat 7] [--torch]
"""

import argparse
import time

import numpy as np

import tinygrad_nlp as tg


def numpy_chain(x, w, n):
    y = x
    for i in range(n):
        k = i % 5
        if k == 0:
            y = y + w
        elif k == 1:
            y = y * w
        elif k == 2:
            y = np.tanh(y)
        elif k == 3:
            y = y - w
        else:
            y = np.sin(y)
    return y


def tg_chain(x, w, n):
    y = x
    for i in range(n):
        k = i % 5
        if k == 0:
            y = y + w
        elif k == 1:
            y = y * w
        elif k == 2:
            y = tg.functions.tanh(y)
        elif k == 3:
            y = y - w
        else:
            y = tg.functions.sin(y)
    return y


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--torch", action="store_true", help="also time PyTorch eager (if installed)")
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

    rows = []
    for _ in range(2):  # alternate the measurements so machine noise hits all of them alike
        rows.append((best_of(run_numpy, args.repeat), best_of(run_tg_forward, args.repeat), best_of(run_tg, args.repeat)))
    t_np = min(r[0] for r in rows)
    t_fwd = min(r[1] for r in rows)
    t_tg = min(r[2] for r in rows)
    us = lambda t: 1e6 * t / n  # noqa: E731
    print(f"chain of {n} ops on 4x4 float32")
    print(f"  numpy forward              {us(t_np):7.2f} us/op   1.0x")
    print(f"  tinygrad_nlp no_grad fwd   {us(t_fwd):7.2f} us/op  {t_fwd / t_np:5.1f}x")
    print(f"  tinygrad_nlp fwd+backward  {us(t_tg):7.2f} us/op  {t_tg / t_np:5.1f}x   <- autograd overhead ratio")
    if args.torch:
        try:
            import torch
        except ImportError:
            print("  torch not installed")
            return
        torch.set_num_threads(1)

        def run_torch():
            x = torch.tensor(x0, requires_grad=True)
            w = torch.tensor(w0, requires_grad=True)
            y = x
            for i in range(n):
                k = i % 5
                y = y + w if k == 0 else y * w if k == 1 else torch.tanh(y) if k == 2 else y - w if k == 3 else torch.sin(y)
            y.sum().backward()

        t_torch = best_of(run_torch, args.repeat)
        print(f"  torch eager fwd+backward   {us(t_torch):7.2f} us/op  {t_torch / t_np:5.1f}x")


if __name__ == "__main__":
    main()
