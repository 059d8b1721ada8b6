"""tinygrad_nlp.text.contexts: context windows and targets."""

import json
import os

import numpy as np
import pytest

from tinygrad_nlp.text import Vocabulary, create_contexts_target, preprocess, tokenize

BOOK_TEXT = "You say goodbye and I say hello."


# ----- preprocess -----


def test_contexts_target_book_values_window_1():
    corpus, _, _ = preprocess(BOOK_TEXT)
    contexts, target = create_contexts_target(corpus, window_size=1)
    assert contexts.dtype == np.int32 and target.dtype == np.int32
    assert contexts.tolist() == [[0, 2], [1, 3], [2, 4], [3, 1], [4, 5], [1, 6]]
    assert target.tolist() == [1, 2, 3, 4, 1, 5]


def _loop_reference(corpus, w):
    """The book's loop, written out plainly."""
    contexts, target = [], []
    for i in range(w, len(corpus) - w):
        contexts.append([corpus[i + k] for k in range(-w, w + 1) if k != 0])
        target.append(corpus[i])
    return np.array(contexts), np.array(target)


@pytest.mark.parametrize("window_size", [1, 2, 3, 4, 5])
def test_contexts_target_equals_loop_reference(window_size):
    rng = np.random.default_rng(window_size)
    for length in (2 * window_size + 1, 2 * window_size + 2, 37, 500):
        corpus = rng.integers(0, 50, size=length)  # int64 input
        contexts, target = create_contexts_target(corpus, window_size)
        ref_c, ref_t = _loop_reference(corpus, window_size)
        assert contexts.shape == (length - 2 * window_size, 2 * window_size)
        assert target.shape == (length - 2 * window_size,)
        assert contexts.dtype == np.int32 and target.dtype == np.int32
        np.testing.assert_array_equal(contexts, ref_c)
        np.testing.assert_array_equal(target, ref_t)


def test_contexts_target_outputs_do_not_alias_the_corpus():
    corpus = np.arange(10, dtype=np.int32)
    contexts, target = create_contexts_target(corpus, 2)
    contexts[:] = -1
    target[:] = -1
    assert corpus.tolist() == list(range(10))
    assert contexts.flags.writeable and target.flags.writeable


def test_contexts_target_accepts_numpy_integer_window():
    contexts, _ = create_contexts_target(np.arange(7), np.int64(3))
    assert contexts.tolist() == [[0, 1, 2, 4, 5, 6]]


@pytest.mark.parametrize(
    "corpus, window, match",
    [
        (np.arange(10), 0, "window_size must be >= 1, got 0"),
        (np.arange(10), -2, "got -2"),
        (np.arange(10), 1.5, "integer, got 1.5"),
        (np.arange(10), "2", "integer, got '2'"),
        (np.arange(10), True, "integer, got True"),
        (np.zeros(0, dtype=np.int32), 1, "empty"),
        (np.arange(4), 2, r"4 word ids, fewer than 2 \* window_size \+ 1 = 5"),
        (np.arange(2), 1, "2 word ids"),
        (np.arange(12).reshape(3, 4), 1, r"1-D.*\(3, 4\)"),
        (np.array([0.0, 1.0, 2.0]), 1, "integer word ids, got dtype float64"),
        (np.array([0, -3, 2, 1]), 1, r"negative word id \(-3\)"),
    ],
)
def test_contexts_target_errors_name_the_value(corpus, window, match):
    with pytest.raises(ValueError, match=match):
        create_contexts_target(corpus, window)


# ----- Vocabulary -----
