"""tinygrad_nlp._threads: run_parallel spreads tasks over the pool, except inside serial()."""

import threading

import numpy as np
import pytest

from tinygrad_nlp import _threads


@pytest.fixture
def two_threads():
    old = _threads.num_threads()
    _threads.set_num_threads(2)
    yield
    _threads.set_num_threads(old)


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
