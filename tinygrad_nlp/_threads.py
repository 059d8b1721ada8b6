"""A small shared thread pool for numpy work that releases the GIL.

numpy's element-wise kernels and scipy's sparse products run without the GIL, so independent
pieces of a training step (the two embedding tables' optimizer updates, halves of a large
scatter-add) can use a second core. ``TINYGRAD_NLP_NUM_THREADS`` (or ``set_num_threads``) caps
the number of threads; 1 turns the parallel paths off.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = ["num_threads", "set_num_threads", "pool", "run_parallel", "serial"]


def _default_threads():
    env = os.environ.get("TINYGRAD_NLP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"TINYGRAD_NLP_NUM_THREADS must be an integer, got {env!r}") from None
    return max(1, min(4, os.cpu_count() or 1))


_num_threads = _default_threads()
_pool = None
_local = threading.local()


def num_threads():
    """How many threads the parallel paths may use (1 = everything runs in the caller)."""
    return _num_threads


def set_num_threads(n):
    """Set the number of threads for the parallel paths (takes effect for new work)."""
    global _num_threads, _pool
    if int(n) < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    _num_threads = int(n)
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def pool():
    """The shared executor (created on first use) with ``num_threads() - 1`` workers: the caller
    always does one share of the work itself."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, _num_threads - 1), thread_name_prefix="tinygrad_nlp")
    return _pool


def run_parallel(tasks):
    """Run zero-argument callables, spreading them over the pool; returns their results in order.

    The first task runs in the calling thread. Exceptions propagate to the caller.
    """
    tasks = list(tasks)
    if len(tasks) <= 1 or _num_threads < 2 or getattr(_local, "serial", False):
        return [t() for t in tasks]
    ex = pool()
    err = np.geterr()  # numpy's error settings are per thread: carry the caller's over

    def with_errstate(task):
        with np.errstate(**err):
            return task()

    futures = [ex.submit(with_errstate, t) for t in tasks[1:]]
    first = tasks[0]()
    return [first] + [f.result() for f in futures]


@contextmanager
def serial() -> Iterator[None]:
    """Within the block, ``run_parallel`` in this thread runs every task itself.

    For threads that already keep a core busy each (the Trainer's Hogwild workers): handing
    half of a step to the pool would only queue it behind the other workers' halves."""
    previous = getattr(_local, "serial", False)
    _local.serial = True
    try:
        yield
    finally:
        _local.serial = previous
