"""Exact-match accuracy (greedy and beam, in chunks) and the printed sample with mistakes marked."""

import numpy as np
import pytest

from tinygrad_nlp.seq2seq import MODELS, accuracy, format_samples, predict
from tinygrad_nlp.text import Vocabulary


def test_accuracy_counts_whole_answers_in_any_chunking():
    model = MODELS["attention"](6, 4, 8, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, size=(37, 5))
    guess = model.generate(x, 0, 3)
    t = np.concatenate([np.zeros((37, 1), int), guess], axis=1)
    t[:10, 2] = (t[:10, 2] + 1) % 6  # ten answers wrong in one symbol
    assert accuracy(model, x, t) == pytest.approx(27 / 37)
    acc, pred = accuracy(model, x, t, batch_size=8, return_predictions=True)
    assert acc == pytest.approx(27 / 37) and np.array_equal(pred, guess)
    beam = model.beam_search(x, 0, 3, beam=3)
    expected = np.mean(np.all(beam == t[:, 1:], axis=1))
    assert accuracy(model, x, t, beam=3, batch_size=5) == pytest.approx(expected)
    assert np.array_equal(predict(model, x, 0, 3, beam=1), guess)


def test_accuracy_rejects_bad_sets():
    model = MODELS["plain"](6, 4, 8, seed=0)
    with pytest.raises(ValueError, match="need matching rows"):
        accuracy(model, np.zeros((3, 4), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match="empty test set"):
        accuracy(model, np.zeros((0, 4), int), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        predict(model, np.zeros((2, 4), int), 0, 2, batch_size=0)


def test_format_samples_marks_mistakes():
    vocab = Vocabulary(list("_0123456789+ "))
    ids = lambda s: [vocab.word_to_id[c] for c in s]
    x = np.array([ids("2+1"[::-1]), ids("9+9"[::-1])])
    t = np.array([ids("_3 "), ids("_18")])
    guess = np.array([ids("3 "), ids("19")])
    text = format_samples(x, t, guess, vocab, reverse=True)
    assert text.splitlines() == ["Q     2+1", "T     3 ", "[ok]  3 ", "Q     9+9", "T     18", "[XX]  19", "       ^"]
    assert format_samples(x, t, guess, vocab, limit=1).splitlines()[0] == "Q     1+2"
