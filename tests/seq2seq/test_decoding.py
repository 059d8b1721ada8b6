"""Greedy decoding and beam search: against step-by-step teacher forcing, against exhaustive
search over every answer, batched rows independent of each other, and bad arguments."""

import itertools

import numpy as np
import pytest

from tinygrad_nlp.seq2seq import MODELS

V, D, H = 4, 3, 5


def log_prob(model, x, answer, start):
    """Total log-probability of ``answer`` under teacher forcing (one question)."""
    ts = np.array([[start, *answer]])
    state, memory = model.encode(x[None])
    scores, _, _ = model.decode(ts[:, :-1], state, memory)
    s = scores.data[0].astype(np.float64)
    logp = s - np.log(np.exp(s - s.max(1, keepdims=True)).sum(1, keepdims=True)) - s.max(1, keepdims=True)
    return float(sum(logp[t, a] for t, a in enumerate(answer)))


@pytest.mark.parametrize("kind", ["plain", "peeky", "attention"])
def test_greedy_equals_argmax_of_teacher_forcing_on_its_own_output(kind):
    model = MODELS[kind](V, D, H, seed=0, dtype=np.float64)
    xs = np.random.default_rng(0).integers(0, V, size=(6, 5))
    out = model.generate(xs, 0, 4)
    assert out.shape == (6, 4) and out.dtype == np.int64
    ts = np.concatenate([np.zeros((6, 1), int), out], axis=1)
    state, memory = model.encode(xs)
    scores, _, _ = model.decode(ts[:, :-1], state, memory)
    assert np.array_equal(scores.data.argmax(axis=2), out)
    # rows are independent: one question alone gives its row of the batch
    assert np.array_equal(model.generate(xs[2], 0, 4), out[2])


@pytest.mark.parametrize("kind", ["plain", "attention"])
def test_beam_search_finds_the_best_answer_and_beam_1_is_greedy(kind):
    model = MODELS[kind](V, D, H, seed=3, dtype=np.float64)
    rng = np.random.default_rng(1)
    # sharpen the output layer so that greedy and the best answer often differ
    model.decoder.affine.W.data *= 6
    xs = rng.integers(0, V, size=(8, 5))
    L = 3
    best = np.array([max(itertools.product(range(V), repeat=L), key=lambda a: log_prob(model, x, a, 0)) for x in xs])
    exhaustive = model.beam_search(xs, 0, L, beam=V ** L)
    assert np.array_equal(exhaustive, best)
    greedy = model.generate(xs, 0, L)
    assert np.array_equal(model.beam_search(xs, 0, L, beam=1), greedy)
    beam5 = model.beam_search(xs, 0, L, beam=5)
    for x, g, b, e in zip(xs, greedy, beam5, best):
        assert log_prob(model, x, b, 0) >= log_prob(model, x, g, 0) - 1e-12
        assert log_prob(model, x, e, 0) >= log_prob(model, x, b, 0) - 1e-12
    assert not np.array_equal(greedy, best)  # the test is not vacuous: greedy misses some
    assert np.array_equal(model.beam_search(xs[3], 0, L, beam=5), beam5[3])


def test_attention_weights_of_greedy_decoding_are_kept():
    model = MODELS["attention"](V, D, H, seed=0)
    xs = np.random.default_rng(0).integers(0, V, size=(2, 6))
    model.generate(xs, 1, 3)
    w = model.last_attention
    assert w.shape == (2, 3, 6) and np.allclose(w.sum(axis=2), 1)
    model = MODELS["plain"](V, D, H, seed=0)
    model.generate(xs, 1, 3)
    assert model.last_attention is None


@pytest.mark.parametrize("args, message", [
    (dict(start_id=4), r"start_id must be an id in \[0, 4\)"),
    (dict(length=0), "length must be a positive integer"),
    (dict(beam=0), "beam must be a positive integer"),
    (dict(xs=np.zeros((0, 3), int)), r"N >= 1"),
    (dict(xs=np.full((1, 3), 9)), "question id"),
])
def test_bad_arguments_are_named(args, message):
    model = MODELS["peeky"](V, D, H, seed=0)
    call = dict(xs=np.zeros((2, 3), int), start_id=0, length=2, beam=2)
    call.update(args)
    with pytest.raises(ValueError, match=message):
        model.beam_search(call["xs"], call["start_id"], call["length"], beam=call["beam"])
    if "beam" not in args:
        with pytest.raises(ValueError, match=message):
            model.generate(call["xs"], call["start_id"], call["length"])
