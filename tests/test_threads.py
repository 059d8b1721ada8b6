"""tinygrad_nlp._threads: the shared pool (run_parallel, and serial() for threads that keep a core
busy each), and large matrix products split across it with BLAS kept to one thread."""

import threading

import numpy as np
import pytest
import threadpoolctl

from tinygrad_nlp import _threads


def blas_threads():
    return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_threads(monkeypatch):
    old = _threads.num_threads()
    _threads.set_num_threads(2)
    monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 1)  # split even these small products
    yield
    _threads.set_num_threads(old)


@pytest.mark.parametrize("sa, sb", [((70, 9), (9, 33)), ((9, 70), (70, 130)), ((131, 17), (17, 5))])
def test_matmul_split_across_threads_equals_numpy(two_threads, sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa).astype(np.float32), rng.standard_normal(sb).astype(np.float32)
    for left, right in ((a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b)), (a.T.copy().T, b[:, ::1])):
        out = _threads.matmul(left, right)
        assert out.dtype == np.float32 and out.shape == (sa[0], sb[1])
        np.testing.assert_allclose(out, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)
    exact = rng.integers(-4, 5, sa).astype(np.float64), rng.integers(-4, 5, sb).astype(np.float64)
    np.testing.assert_array_equal(_threads.matmul(*exact), exact[0] @ exact[1])  # small integers: exact sums


def test_matmul_below_the_threshold_or_on_one_thread_is_numpys(monkeypatch):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((8, 4)), rng.standard_normal((4, 6))
    np.testing.assert_array_equal(_threads.matmul(a, b), a @ b)
    old = _threads.num_threads()
    _threads.set_num_threads(1)
    monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 1)
    try:
        np.testing.assert_array_equal(_threads.matmul(a, b), a @ b)
    finally:
        _threads.set_num_threads(old)


def test_single_threaded_blas_restores_the_count_after_the_last_user():
    """Threads enter and leave in any order (the first to enter is not the main thread): BLAS
    runs on one thread while any of them is inside, and on as many as before once all left."""
    libraries = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not _threads._blas_libraries():
        pytest.skip("no OpenBLAS with its own thread pool here")
    with libraries.limit(limits=2):
        before = blas_threads()
        inside, entered, release = [], threading.Barrier(3), threading.Event()

        def user():
            with _threads.single_threaded_blas():
                entered.wait()
                inside.append(blas_threads())
                release.wait()

        workers = [threading.Thread(target=user, daemon=True) for _ in range(2)]
        for w in workers:
            w.start()
        try:
            entered.wait(timeout=30)  # both inside at once
            with _threads.single_threaded_blas():
                assert blas_threads() == [1] * len(before)
            assert blas_threads() == [1] * len(before)  # the two workers are still inside
        finally:
            release.set()
            for w in workers:
                w.join(timeout=30)
        assert inside == [[1] * len(before)] * 2
        assert blas_threads() == before


# ----- run_parallel and serial() -----
def _where(n):
    return [lambda: threading.get_ident() for _ in range(n)]


def test_run_parallel_hands_all_but_the_first_task_to_the_pool(two_threads):
    me = threading.get_ident()
    where = _threads.run_parallel(_where(3))
    assert where[0] == me and all(w != me for w in where[1:])


def test_serial_runs_every_task_in_the_calling_thread_and_is_undone_after(two_threads):
    me = threading.get_ident()
    with _threads.serial():
        assert _threads.run_parallel(_where(3)) == [me] * 3
        with _threads.serial():  # nested blocks keep it on until the outer one ends
            pass
        assert _threads.run_parallel(_where(2)) == [me] * 2
    assert _threads.run_parallel(_where(2))[1] != me


def test_serial_is_per_thread(two_threads):
    seen = {}

    def other():
        seen["where"] = _threads.run_parallel(_where(2))
        seen["me"] = threading.get_ident()

    with _threads.serial():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen["where"][1] != seen["me"]


def test_serial_is_undone_when_the_block_raises(two_threads):
    with pytest.raises(KeyError), _threads.serial():
        raise KeyError("x")
    assert _threads.run_parallel(_where(2))[1] != threading.get_ident()


def test_run_parallel_keeps_the_callers_numpy_error_settings(two_threads):
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError):
            _threads.run_parallel([lambda: 0, lambda: np.float64(1) / np.float64(0)])


def test_threadpool_limits_still_work_after_products_split_in_another_thread(monkeypatch):
    """A product split from a worker thread leaves threadpoolctl's limits usable from the main
    thread afterwards (threadpoolctl lets only the thread that first set a limit set others)."""
    if not _threads._blas_libraries():
        pytest.skip("no OpenBLAS with its own thread pool here")
    old = _threads.num_threads()
    _threads.set_num_threads(2)
    monkeypatch.setattr(_threads, "PARALLEL_MIN_MACS", 1)
    try:
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            a = np.ones((40, 8), np.float32)
            done, release = threading.Event(), threading.Event()

            def work():  # a product, then the thread stays alive (as a training thread does)
                _threads.matmul(a, a.T)
                done.set()
                release.wait(timeout=30)

            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            try:
                assert done.wait(timeout=30)
                with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
                    assert blas_threads() == [1] * len(blas_threads())
                assert set(blas_threads()) == {2}
            finally:
                release.set()
                worker.join(timeout=30)
    finally:
        _threads.set_num_threads(old)


def test_by_rows_covers_the_rows_once_in_blocks_on_the_threads(two_threads, monkeypatch):
    monkeypatch.setattr(_threads, "ROWS_MIN_MACS", 1)
    monkeypatch.setattr(_threads, "ROWS_MIN_BLOCK", 3)
    seen, names, inside = [], set(), []

    def task(rows):
        seen.append((rows.start, rows.stop))
        names.add(threading.current_thread().name)
        inside.append(blas_threads())

    _threads.by_rows(task, 7, step_macs=10)
    assert sorted(seen) == [(0, 3), (3, 7)]
    assert len(names) == 2
    if _threads._blas_libraries():
        assert all(counts == [1] * len(counts) for counts in inside)


@pytest.mark.parametrize("n, macs, threads", [(7, 10, 1), (5, 10, 2), (7, 1, 2)])
def test_by_rows_is_one_call_on_one_thread_few_rows_or_little_work(monkeypatch, n, macs, threads):
    monkeypatch.setattr(_threads, "ROWS_MIN_MACS", 1)
    monkeypatch.setattr(_threads, "ROWS_MIN_BLOCK", 3)
    monkeypatch.setattr(_threads, "_num_threads", threads)
    calls = []
    _threads.by_rows(lambda rows: calls.append((rows, threading.current_thread().name)), n, macs)
    assert calls == [(slice(None), threading.current_thread().name)]
