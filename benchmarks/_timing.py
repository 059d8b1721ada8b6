"""Timing helper shared by the benchmark scripts."""

import time


def best_of(fn, repeat):
    """Shortest of ``repeat`` timings of ``fn()`` in seconds: the least noisy estimate of its cost."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
