"""Models written forward-only: the book's SimpleCBOW, CBOW and SkipGram with negative sampling."""

import os

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import SparseRows
from tinygrad_nlp.functions import InvalidIdError
from tinygrad_nlp.gradcheck import gradient_check
from tinygrad_nlp.models import CBOW, Model, SimpleCBOW, SkipGram
from tinygrad_nlp.optimizers import Adam
from tinygrad_nlp.text import create_contexts_target, preprocess


def seed_data():
    corpus, word_to_id, id_to_word = preprocess("You say goodbye and I say hello.")
    contexts, target = create_contexts_target(corpus, window_size=1)
    return corpus, word_to_id, id_to_word, contexts, target


def test_no_model_defines_backward():
    for cls in (Model, SimpleCBOW, CBOW, SkipGram):
        for klass in cls.__mro__:
            if klass.__module__.startswith("tinygrad_nlp.models"):
                assert "backward" not in vars(klass), klass


def test_simple_cbow_reproduces_the_seed_run():
    """The book's SimpleCBOW example: window 1, hidden 5, batch 3, Adam, 1,000 steps: loss 1.9459 -> about 0.7."""
    corpus, word_to_id, _, contexts, target = seed_data()
    model = SimpleCBOW(len(word_to_id), 5, seed=0)
    opt = Adam().setup(model)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(1000):
        idx = rng.choice(len(contexts), 3)
        loss = model(contexts[idx], target[idx])
        model.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.data))
    # The weights start at 0.01 * N(0, 1): every word is equally likely, loss = ln 7 = 1.9459 (seed: 1.94587).
    assert losses[0] == pytest.approx(np.log(7), abs=2e-3)
    assert np.mean(losses[-100:]) < 1.1  # the book's curve is at 0.96 at step 800 and 0.71 at step 900
    assert np.mean(losses[-100:]) < np.mean(losses[:100]) - 0.7
    assert model.word_vecs.shape == (7, 5) and model.word_vecs.dtype == np.float32


def test_simple_cbow_accepts_one_hot_targets_like_the_seed():
    _, word_to_id, _, contexts, target = seed_data()
    model = SimpleCBOW(7, 5, seed=1)
    onehot = np.eye(7, dtype=np.float32)[target]
    assert float(model(contexts, target).data) == pytest.approx(float(model(contexts, onehot).data), rel=1e-6)


def test_simple_cbow_gradients():
    _, _, _, contexts, target = seed_data()
    model = SimpleCBOW(7, 4, seed=2, dtype=np.float64)

    def loss(W_in, W_out):
        model.in_embed.W.data, model.out.W.data = W_in.data, W_out.data
        h = F.mean(F.embedding(W_in, contexts), axis=1)
        return F.softmax_cross_entropy(F.matmul(h, W_out), target)

    gradient_check(loss, model.in_embed.W.data, model.out.W.data)


def book_cbow_loss(W_in, W_out, contexts, target, negatives):
    """The book's CBOW: average the context rows, then K+1 SigmoidWithLoss layers summed."""
    h = W_in[contexts].mean(axis=1)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    loss = -np.log(sig(np.sum(W_out[target] * h, axis=1))).mean()
    for k in range(negatives.shape[1]):
        loss += -np.log(1 - sig(np.sum(W_out[negatives[:, k]] * h, axis=1))).mean()
    return loss


def make_ns_data(V=30, N=40, window=2, seed=0):
    rng = np.random.default_rng(seed)
    corpus = rng.integers(0, V, size=N + 2 * window)
    contexts, target = create_contexts_target(corpus, window)
    return corpus, contexts, target


def test_cbow_loss_equals_the_books_layers_and_grads_are_sparse():
    corpus, contexts, target = make_ns_data()
    model = CBOW(30, 8, 2, corpus, seed=0, dtype=np.float64)
    rng = np.random.default_rng(5)
    model.out_embed.W.data = rng.normal(size=(30, 8)) * 0.3
    negatives = model.sample_negatives(target)
    assert negatives.shape == (len(target), 5) and not np.any(negatives == target[:, None])
    loss = model(contexts, target, negatives=negatives)
    ref = book_cbow_loss(model.in_embed.W.data, model.out_embed.W.data, contexts, target, negatives)
    assert float(loss.data) == pytest.approx(ref)
    loss.backward()
    assert isinstance(model.in_embed.W.grad, SparseRows) and isinstance(model.out_embed.W.grad, SparseRows)
    assert set(model.in_embed.W.grad.rows) == set(np.unique(contexts))


def test_cbow_gradient_check_with_fixed_negatives():
    corpus, contexts, target = make_ns_data(V=12, N=6)
    model = CBOW(12, 3, 2, corpus, sample_size=3, seed=1, dtype=np.float64)
    negatives = model.sample_negatives(target)

    def loss(W_in, W_out):
        h = F.embedding_bag(W_in, contexts, sparse=True)
        return F.negative_sampling_loss(h, W_out, target, negatives, sparse=True)

    gradient_check(loss, model.in_embed.W.data, np.random.default_rng(0).normal(size=(12, 3)))


def test_skipgram_loss_equals_the_books_sum_over_context_positions():
    corpus, contexts, target = make_ns_data(V=25, N=10, window=2)
    model = SkipGram(25, 6, 2, corpus, sample_size=4, seed=3, dtype=np.float64)
    model.out_embed.W.data = np.random.default_rng(1).normal(size=(25, 6)) * 0.3
    C = contexts.shape[1]
    negatives = model.sample_negatives(contexts.reshape(-1))
    loss = model(contexts, target, negatives=negatives)
    W_in, W_out = model.in_embed.W.data, model.out_embed.W.data
    h = W_in[target]
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    neg = negatives.reshape(len(target), C, -1)
    ref = 0.0
    for c in range(C):
        ref += -np.log(sig(np.sum(W_out[contexts[:, c]] * h, axis=1))).mean()
        for k in range(neg.shape[2]):
            ref += -np.log(1 - sig(np.sum(W_out[neg[:, c, k]] * h, axis=1))).mean()
    assert float(loss.data) == pytest.approx(ref)
    loss.backward()
    assert set(model.in_embed.W.grad.rows) == set(np.unique(target))


def test_models_validate_their_inputs():
    corpus, contexts, target = make_ns_data()
    model = CBOW(30, 4, 2, corpus, seed=0)
    with pytest.raises(ValueError, match="window_size=2 needs 4"):
        model(contexts[:, :2], target)
    with pytest.raises(ValueError, match="target has 3 rows but contexts have"):
        model(contexts, target[:3])
    with pytest.raises(ValueError, match="window_size must be >= 1, got 0"):
        CBOW(30, 4, 0, corpus)
    with pytest.raises(ValueError, match="corpus holds id 30"):
        CBOW(30, 4, 2, np.append(corpus, 30))
    with pytest.raises(F.InvalidIdError, match="context id 99"):
        model(np.full_like(contexts, 99), target)


def test_model_graph_shows_parameter_names(tmp_path):
    corpus, contexts, target = make_ns_data()
    model = CBOW(30, 4, 2, corpus, seed=0)
    dot = model.graph(contexts, target)
    for name in ("W_in", "W_out", "EmbeddingBag", "EmbeddingDot", "SigmoidCrossEntropy"):
        assert name in dot
    simple = SimpleCBOW(7, 5, seed=0)
    _, _, _, c, t = seed_data()
    dot = simple.graph(c, t)
    for name in ("W_in", "W_out", "Embedding", "Mean", "Linear", "SoftmaxCrossEntropy"):
        assert name in dot
    model.plot(contexts, target, to_file=tmp_path / "cbow.dot")
    assert (tmp_path / "cbow.dot").read_text().startswith("digraph")


def test_seeded_models_are_reproducible():
    corpus, contexts, target = make_ns_data()
    a, b = CBOW(30, 4, 2, corpus, seed=7), CBOW(30, 4, 2, corpus, seed=7)
    assert np.array_equal(a.word_vecs, b.word_vecs)
    assert np.array_equal(a.sample_negatives(target), b.sample_negatives(target))
    assert float(a(contexts, target).data) == float(b(contexts, target).data)


def test_cbow_dynamic_window_weights_follow_word2vec():
    corpus, contexts, target = make_ns_data(V=30, N=40, window=3)
    model = CBOW(30, 4, 3, corpus, seed=0, dynamic_window=True)
    w = model.window_weights(20000)
    assert w.shape == (20000, 6) and set(np.unique(w)) == {0.0, 1.0}
    # Columns are offsets -3, -2, -1, +1, +2, +3: distance d is kept with probability (4 - d) / 3.
    assert np.allclose(w.mean(axis=0), [1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3], atol=0.02)
    assert np.array_equal(w[:, :3], w[:, ::-1][:, :3])  # symmetric: both sides share one reach
    batch = model.prepare(contexts, target)
    assert batch.weights.shape == contexts.shape and batch.negatives.shape == (len(target), 5)
    loss = model(contexts, target, batch=batch)
    h = F.embedding_bag(model.in_embed.W, contexts, weights=batch.weights)
    ref = F.negative_sampling_loss(h, model.out_embed.W, target, batch.negatives)
    assert float(loss.data) == pytest.approx(float(ref.data))
    assert "window" in model.random_generators() and "sampler" in model.random_generators()


def test_skipgram_dynamic_window_drops_far_pairs():
    corpus, contexts, target = make_ns_data(V=25, N=12, window=2)
    model = SkipGram(25, 6, 2, corpus, sample_size=3, seed=4, dynamic_window=True, dtype=np.float64)
    model.out_embed.W.data = np.random.default_rng(2).normal(size=(25, 6)) * 0.3
    negatives = model.sample_negatives(contexts.reshape(-1))
    weights = model.window_weights(len(target))
    keep = weights.reshape(-1) > 0
    assert 0 < keep.sum() < keep.size
    loss = model(contexts, target, negatives=negatives, weights=weights)
    centres = np.repeat(target, 4)[keep]
    h = F.embedding(model.in_embed.W, centres)
    ref = F.negative_sampling_loss(h, model.out_embed.W, contexts.reshape(-1)[keep], negatives[keep])
    assert float(loss.data) == pytest.approx(float(ref.data) * keep.sum() / len(target))
    all_kept = model(contexts, target, negatives=negatives, weights=np.ones_like(weights))
    model.dynamic_window = False
    assert float(all_kept.data) == pytest.approx(float(model(contexts, target, negatives=negatives).data))
    model.dynamic_window = True
    from tinygrad_nlp.train import Trainer

    Trainer(model, Adam().setup(model), progress=False).fit(contexts, target, max_epoch=1, batch_size=5)
    with pytest.raises(ValueError, match="weights of shape"):
        model(contexts, target, weights=np.ones((3, 3)))


@pytest.mark.parametrize("dynamic_window", [False, True])
@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_a_prepared_batch_holds_sorted_checked_ids_and_gives_the_unprepared_step(cls, dynamic_window):
    """The ids a step scatters into are checked and sorted by ``prepare`` (the Trainer's
    prefetch thread); the loss and gradients are those of ``model(contexts, target)``."""
    corpus, contexts, target = make_ns_data(V=25, N=12, window=2)
    model = cls(25, 6, 2, corpus, sample_size=3, seed=4, dynamic_window=dynamic_window, dtype=np.float64)
    model.out_embed.W.data = np.random.default_rng(2).normal(size=(25, 6)) * 0.3
    negatives = model.sample_negatives(model._positives(contexts, target))
    weights = model.window_weights(len(target)) if dynamic_window else None
    batch = model.prepare(contexts, target, negatives, weights)
    keep = (weights.reshape(-1) > 0) if dynamic_window else np.ones(contexts.size, bool)
    if cls is SkipGram:
        np.testing.assert_array_equal(batch.inputs.array, np.repeat(target, 4)[keep])
        np.testing.assert_array_equal(batch.scored.array[:, 0], contexts.reshape(-1)[keep])
    else:
        np.testing.assert_array_equal(batch.inputs.array, contexts)
        np.testing.assert_array_equal(batch.scored.array[:, 0], target)
    np.testing.assert_array_equal(batch.scored.array[:, 1:], batch.negatives)
    for ids in batch.ids():
        assert ids.checked_rows == 25 and ids._unique is not None
    grads = []
    for kwargs in ({"batch": batch}, {"negatives": negatives, "weights": weights}):
        model.cleargrads()
        loss = model(contexts, target, **kwargs)
        loss.backward()
        grads.append((float(loss.data), model.in_embed.W.grad.to_dense(), model.out_embed.W.grad.to_dense()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-12)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(grads[0][2], grads[1][2], rtol=1e-12, atol=1e-15)
    other = model.prepare(contexts[::-1].copy(), target[::-1].copy())
    with pytest.raises(ValueError, match="batch must be the one prepared from these"):
        model(contexts, target, batch=other)
    assert model.prepare_batch(contexts, target)["batch"].holds(contexts, target)


@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_given_negatives_are_checked_and_named(cls):
    corpus, contexts, target = make_ns_data(V=25, N=12, window=2)
    model = cls(25, 6, 2, corpus, sample_size=3, seed=0)
    rows = len(target) if cls is CBOW else contexts.size
    bad = np.zeros((rows, 3), np.int64)
    bad[1, 2] = 25
    with pytest.raises(InvalidIdError, match=r"negative id 25 at position \(1, 2\)"):
        model(contexts, target, negatives=bad)
    with pytest.raises(ValueError, match=rf"negatives must have shape \({rows}, K\)"):
        model(contexts, target, negatives=np.zeros((rows + 1, 3), np.int64))


def test_the_models_forward_is_the_maths_alone():
    """CBOW's and SkipGram's forward take a prepared batch and are a few lines each."""
    import inspect

    for cls in (CBOW, SkipGram):
        body = [line for line in inspect.getsource(cls.forward).splitlines()[1:]
                if line.strip() and not line.strip().startswith(('"""', '#')) and '"""' not in line]
        assert len(body) <= 8, body
        assert list(inspect.signature(cls.forward).parameters) == ["self", "batch"]


@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_prepare_batch_names_a_bad_id_as_a_context_or_target_id(cls):
    corpus, contexts, target = make_ns_data(V=25, N=12, window=2)
    model = cls(25, 6, 2, corpus, seed=0)
    bad_target = target.copy()
    bad_target[3] = 25
    with pytest.raises(InvalidIdError, match=r"target id 25 at position \(3,\)"):
        model.prepare_batch(contexts, bad_target)
    bad_contexts = contexts.copy()
    bad_contexts[2, 1] = -1
    with pytest.raises(InvalidIdError, match=r"context id -1 at position \(2, 1\)"):
        model.prepare_batch(bad_contexts, target)


def test_model_plot_writes_no_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus, contexts, target = make_ns_data()
    model = CBOW(30, 4, 2, corpus, seed=0)
    graph = model.plot(contexts, target)
    assert os.listdir(tmp_path) == []
    assert "EmbeddingDot" in graph and hasattr(graph, "_repr_mimebundle_")
    assert graph == model.graph(contexts, target)


# ----- recurrent language models -----
from tinygrad_nlp.models import LSTMLM  # noqa: E402


def _torch_lm(torch, model):
    """The same network in PyTorch (nn.Embedding + nn.LSTM/GRU/RNN + nn.Linear), weights copied."""
    V, D, H, L = model.vocab_size, model.wordvec_size, model.hidden_size, model.num_layers
    emb = torch.nn.Embedding(V, D)
    rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[model.cell](D, H, L, batch_first=True)
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(model.embed.W.data))
        for i, cell in enumerate(model.rnn.cells):
            getattr(rnn, f"weight_ih_l{i}").copy_(torch.tensor(cell.W_x.data.T))
            getattr(rnn, f"weight_hh_l{i}").copy_(torch.tensor(cell.W_h.data.T))
            getattr(rnn, f"bias_ih_l{i}").copy_(torch.tensor(cell.b.data))
            b_h = cell.b_h.data if model.cell == "gru" else np.zeros_like(cell.b.data)
            getattr(rnn, f"bias_hh_l{i}").copy_(torch.tensor(b_h))
    if model.tie_weights:
        out_b = torch.nn.Parameter(torch.tensor(model.out_b.data))
        head = lambda h: h @ emb.weight.T + out_b  # noqa: E731
        head_params = {"out_b": out_b}
    else:
        lin = torch.nn.Linear(H, V)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(model.out.W.data.T))
            lin.bias.copy_(torch.tensor(model.out.b.data))
        head, head_params = lin, {"out.W": lin.weight, "out.b": lin.bias}
    return emb, rnn, head, head_params


@pytest.mark.parametrize("cell, tie", [("lstm", False), ("lstm", True), ("gru", False), ("rnn", True)])
def test_lstmlm_loss_and_gradients_match_pytorch_over_two_windows(cell, tie):
    torch = pytest.importorskip("torch")
    V, D = 30, 8
    model = LSTMLM(V, D, D, num_layers=2, tie_weights=tie, cell=cell, seed=0, init_scale=0.3)
    emb, rnn, head, head_params = _torch_lm(torch, model)
    rng = np.random.default_rng(1)
    windows = [(rng.integers(0, V, (3, 5)), rng.integers(0, V, (3, 5))) for _ in range(2)]
    state = None
    for xs, ts in windows:  # the second window starts from the first one's state, cut
        loss = model(xs, ts)
        model.cleargrads()
        loss.backward()
        for p in [emb.weight, *rnn.parameters(), *head_params.values()]:
            p.grad = None
        ys, state = rnn(emb(torch.tensor(xs)), state)
        t_loss = torch.nn.functional.cross_entropy(head(ys).reshape(-1, V), torch.tensor(ts).reshape(-1))
        t_loss.backward()
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        assert float(loss.data) == pytest.approx(t_loss.item(), rel=1e-5)
        g = model.embed.W.grad
        g = g.to_dense() if isinstance(g, SparseRows) else g.data
        np.testing.assert_allclose(g, emb.weight.grad.numpy(), rtol=1e-4, atol=1e-6)
        for i, c in enumerate(model.rnn.cells):
            np.testing.assert_allclose(c.W_h.grad.data, getattr(rnn, f"weight_hh_l{i}").grad.numpy().T,
                                       rtol=1e-4, atol=1e-6)
        if tie:
            np.testing.assert_allclose(model.out_b.grad.data, head_params["out_b"].grad.numpy(), rtol=1e-4, atol=1e-7)
        else:
            np.testing.assert_allclose(model.out.W.grad.data, head_params["out.W"].grad.numpy().T, rtol=1e-4, atol=1e-6)


def test_lstmlm_generate_is_seeded_greedy_and_leaves_the_state():
    model = LSTMLM(20, 6, 6, seed=0)
    rng = np.random.default_rng(0)
    model(rng.integers(0, 20, (2, 4)), rng.integers(0, 20, (2, 4)))
    carried = [tuple(v.data.copy() for v in s) for s in model.rnn.state]
    a = model.generate([3, 4], 12, seed=7)
    assert a.shape == (12,) and a.dtype == np.int64 and a.min() >= 0 and a.max() < 20
    np.testing.assert_array_equal(a, model.generate([3, 4], 12, seed=7))
    greedy = model.generate([3, 4], 12, temperature=0)
    np.testing.assert_array_equal(model.generate([3, 4], 12, top_k=1, seed=1), greedy)
    for s, saved in zip(model.rnn.state, carried):
        for v, d in zip(s, saved):
            np.testing.assert_array_equal(v.data, d)
    # Greedy decoding re-derived step by step from the scores.
    model.reset_state()
    ids, want = [3, 4], []
    for _ in range(12):
        model.reset_state()
        with __import__("tinygrad_nlp").no_grad():
            want.append(int(np.argmax(model.scores(np.array([ids])).data[0, -1])))
        ids.append(want[-1])
    np.testing.assert_array_equal(greedy, want)


def test_lstmlm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tie_weights needs wordvec_size == hidden_size"):
        LSTMLM(10, 4, 5, tie_weights=True)
    with pytest.raises(ValueError, match="cell must be one of lstm, gru, rnn"):
        LSTMLM(10, cell="transformer")
    model = LSTMLM(10, 4, 4, seed=0)
    with pytest.raises(InvalidIdError, match="word id 10"):
        model(np.array([[1, 10]]), np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"must have shape \(N, T\)"):
        model(np.array([1, 2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="top_k must be in 1..10"):
        model.generate([1], 3, top_k=0)
    with pytest.raises(ValueError, match="at least one word id"):
        model.generate([], 3)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(hidden_size=0), "hidden_size must be an integer >= 1 \\(got 0\\)"),
    (dict(vocab_size=0), "vocab_size must be an integer >= 1"),
    (dict(sample_size=0), "sample_size must be an integer >= 1"),
    (dict(sample_size=2.5), "sample_size must be an integer"),
    (dict(power=float("nan")), "power must be a finite number >= 0"),
    (dict(dtype=np.float16), "dtype must be float32 or float64 \\(got float16\\)"),
    (dict(dtype=np.int32), "dtype must be float32 or float64 \\(got int32\\)"),
    (dict(dynamic_window="yes"), "dynamic_window must be True or False"),
])
@pytest.mark.parametrize("cls", ["CBOW", "SkipGram"])
def test_negative_sampling_models_check_their_hyperparameters(cls, kwargs, pattern):
    import tinygrad_nlp.models as M

    args = dict(vocab_size=10, hidden_size=4, window_size=1, corpus=np.arange(10))
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"{cls}: {pattern}"):
        getattr(M, cls)(**args)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(hidden_size=0), "hidden_size must be an integer >= 1"),
    (dict(vocab_size=-1), "vocab_size must be an integer >= 1"),
    (dict(dtype=np.float16), "dtype must be float32 or float64"),
])
def test_simple_cbow_checks_its_hyperparameters(kwargs, pattern):
    from tinygrad_nlp.models import SimpleCBOW

    args = dict(vocab_size=10, hidden_size=4, window_size=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"SimpleCBOW: {pattern}"):
        SimpleCBOW(**args)


@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_a_worker_copy_shares_the_weights_and_draws_from_generators_of_its_own(cls):
    corpus = np.arange(60) % 12
    model = cls(12, 4, 2, corpus, seed=0, dynamic_window=True)
    state = {k: g.bit_generator.state for k, g in model.random_generators().items()}
    twins = [model.worker_copy(7), model.worker_copy(7), model.worker_copy(8)]
    for twin in twins:
        assert all(p.data is q.data for p, q in zip(model.params(), twin.params()))
        assert twin.sampler._cdf is model.sampler._cdf  # the sampler's tables are not copied
        assert not set(map(id, twin.random_generators().values())) & set(map(id, model.random_generators().values()))
    targets = np.arange(12) % 12
    draws = [(t.sample_negatives(targets), t.window_weights(12)) for t in twins]
    np.testing.assert_array_equal(draws[0][0], draws[1][0])  # the same seed draws the same
    np.testing.assert_array_equal(draws[0][1], draws[1][1])
    assert not np.array_equal(draws[0][0], draws[2][0])  # another seed draws otherwise
    assert {k: g.bit_generator.state for k, g in model.random_generators().items()} == state  # untouched
    twins[0](np.zeros((2, 4), np.int64), np.ones(2, np.int64)).backward()
    assert all(p.grad is None for p in model.params())  # gradients of its own


def test_a_model_without_generators_worker_copy_is_its_shared_copy():
    model = SimpleCBOW(10, 3, 1, seed=0)
    twin = model.worker_copy(1)
    assert all(p.data is q.data and p is not q for p, q in zip(model.params(), twin.params()))
