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

__all__ = ["num_threads", "set_num_threads", "pool", "run_parallel", "serial", "single_threaded_blas", "matmul", "by_rows"]


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


# ----------------------------------------------------------------------------- matrix products
# A BLAS library runs a large product on threads of its own, and OpenBLAS's threads wait for the
# next product by spinning on their core for about 0.1 s. Between the products of a training
# step (a language model's (700, 100) @ (100, 10,000) scores and their two gradients) run numpy
# passes that this module's threads share out; on a core where a BLAS thread spins they ran at
# half speed, slower than on one thread. So a large product is split here instead, by rows or
# columns, across these threads, each calling BLAS with one thread: one set of threads for the
# whole step, and idle ones sleep.

# Products of at least this many multiply-adds are split (a few milliseconds of work; below, a
# thread hand-off costs more than it saves).
PARALLEL_MIN_MACS = 20_000_000

_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = None  # [(library controller, its thread count before the first user)]
_blas_controllers = None


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries, when all of them are OpenBLAS
    with its own (process-wide) thread pool, as numpy's wheels ship it; else [] and products are
    left whole (MKL, BLIS or an OpenMP build keep their threads as they are)."""
    global _blas_controllers
    if _blas_controllers is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency; products then stay whole
            _blas_controllers = []
        else:
            found = list(ThreadpoolController().select(user_api="blas").lib_controllers)
            ok = found and all(lib.internal_api == "openblas" and getattr(lib, "threading_layer", "") == "pthreads"
                               for lib in found)
            _blas_controllers = found if ok else []
    return _blas_controllers


def _set_blas_threads(lib, n):
    # threadpoolctl lets only the first thread that set a limit set others (and silently ignores
    # the rest); the pool is process-wide and _blas_lock orders our changes, so any thread may.
    # The claim is released again afterwards, so that a later threadpool_limits block in any
    # thread of the program (the main one, typically) still takes effect.
    clear = getattr(type(lib), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)
    lib.set_num_threads(n)
    if clear is not None:
        clear(force=True)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block BLAS uses one thread; the thread counts are restored when the last of
    the threads inside such a block leaves it (the count is process-wide)."""
    global _blas_users, _blas_saved
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
            for lib, n in _blas_saved:
                if n != 1:
                    _set_blas_threads(lib, 1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for lib, n in _blas_saved:
                    if n != 1:
                        _set_blas_threads(lib, n)
                _blas_saved = None


def _splits(workers):
    """True when work may be split across ``workers`` threads here: two or more, outside
    ``serial()``, beside OpenBLAS's own thread pool (which ``single_threaded_blas`` can hold)."""
    return workers >= 2 and not getattr(_local, "serial", False) and bool(_blas_libraries())


def matmul(a, b):
    """``a @ b`` for 2-D arrays; a product of ``PARALLEL_MIN_MACS`` multiply-adds or more is split
    across the threads (by rows of ``a``, or by columns of ``b`` when ``b`` is the wider), each
    part computed by BLAS on one thread into its slice of the (M, N) result."""
    m, k = a.shape
    n = b.shape[1]
    workers = min(_num_threads, 8)
    if m * n * k < PARALLEL_MIN_MACS or not _splits(workers):
        return a @ b
    out = np.empty((m, n), dtype=np.result_type(a, b))
    if m >= n:
        bounds = np.linspace(0, m, workers + 1).astype(np.int64)
        tasks = [lambda r=r, s=s: np.matmul(a[r:s], b, out=out[r:s]) for r, s in zip(bounds[:-1], bounds[1:])]
    else:
        # Column blocks of whole cache lines (16 float32), so two threads never write one line.
        bounds = (np.linspace(0, n, workers + 1) // 16 * 16).astype(np.int64)
        bounds[-1] = n
        tasks = [lambda c=c, d=d: np.matmul(a, b[:, c:d], out=out[:, c:d]) for c, d in zip(bounds[:-1], bounds[1:])]
    with single_threaded_blas():
        run_parallel(tasks)
    return out


# ----------------------------------------------------------------------------- independent rows
# A recurrence couples the steps of a sequence but never two of its rows: row n of h_t depends on
# row n of h_{t-1} alone. So a whole recurrent loop splits into blocks of rows that run side by
# side with no meeting point between the steps - each thread multiplies its (N/k, H) slice of
# h_{t-1} by W_h on one BLAS thread and does its rows' gate work. Left to BLAS, each step's
# (N, H) @ (H, 4H) product was split afresh across BLAS's threads, and the gate work between the
# products ran on one core while BLAS's other threads spun.

# A block's share of one step's product must be at least this many multiply-adds (about 0.1 ms
# on one core), in blocks of at least this many rows. Below, the threads' hand-offs of the GIL
# between steps cost more than the second core gives: Peeky's addition step (N=128, H=128: 4.2
# million a block, 4.7 with its input inside the product) took 10.1 ms split against 8.6 whole,
# the attention step on dates (N=128, H=256: 16.8 million) 58 against 79 ms.
ROWS_MIN_MACS = 8_000_000
ROWS_MIN_BLOCK = 16


def by_rows(task, n, step_macs):
    """Call ``task(rows)`` for blocks of rows (slices) covering ``range(n)``, the blocks spread
    over the threads with BLAS on one thread each. ``step_macs`` is the multiply-adds of one
    step's product over all ``n`` rows. One call ``task(slice(None))`` in this thread when there is
    one thread, when ``n`` is too small to give each block ``ROWS_MIN_BLOCK`` rows, or when a
    block's share of a step is under ``ROWS_MIN_MACS``. ``task`` must touch only its rows of
    shared arrays."""
    workers = min(_num_threads, n // ROWS_MIN_BLOCK, 8)
    if step_macs < ROWS_MIN_MACS * workers or not _splits(workers):
        task(slice(None))
        return
    bounds = np.linspace(0, n, workers + 1).astype(np.int64)
    with single_threaded_blas():
        run_parallel([lambda r=slice(a, b): task(r) for a, b in zip(bounds[:-1], bounds[1:])])
