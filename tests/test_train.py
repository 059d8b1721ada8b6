"""Trainer: shuffled batches, history, reproducibility, checkpoints and exact resume, errors."""

import numpy as np
import pytest

from tinygrad_nlp.models import CBOW, SimpleCBOW, SkipGram
from tinygrad_nlp.optimizers import SGD, Adam, LinearDecay
from tinygrad_nlp.text import create_contexts_target
from tinygrad_nlp.train import CHECKPOINT_NAME, Trainer


def data(V=40, N=600, window=2, seed=0):
    rng = np.random.default_rng(seed)
    # A corpus with structure: word i tends to be followed by word i+1.
    corpus = np.cumsum(rng.integers(0, 3, size=N + 2 * window)) % V
    contexts, target = create_contexts_target(corpus, window)
    return corpus, contexts, target


def make(seed=0, lr=0.05):
    corpus, contexts, target = data()
    model = CBOW(40, 8, 2, corpus, seed=seed)
    return model, Adam(lr=lr).setup(model), contexts, target


def test_fit_reduces_loss_and_records_history():
    model, opt, contexts, target = make()
    trainer = Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=4, batch_size=50, seed=0)
    steps = int(np.ceil(len(target) / 50))
    assert len(trainer.loss_history) == 4 * steps and len(trainer.epoch_loss) == 4
    assert trainer.epoch_loss[-1] < trainer.epoch_loss[0] - 0.3
    assert trainer.epoch == 4 and trainer.targets_seen == 4 * len(target)
    assert trainer.targets_per_second > 0


def test_seeded_runs_are_reproducible_with_and_without_prefetch():
    results = []
    for prefetch in (True, True, False):
        model, opt, contexts, target = make(seed=3)
        Trainer(model, opt, progress=False, prefetch=prefetch).fit(contexts, target, max_epoch=2, batch_size=64, seed=9)
        results.append(model.word_vecs.copy())
    assert np.array_equal(results[0], results[1])
    assert np.array_equal(results[0], results[2])


def make_dynamic(seed=0):
    corpus, contexts, target = data()
    model = CBOW(40, 8, 2, corpus, seed=seed, dynamic_window=True)
    return model, Adam(lr=0.05).setup(model), contexts, target


@pytest.mark.parametrize("build", [make, make_dynamic])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path, build):
    model, opt, contexts, target = build(seed=1)
    full = Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=3, batch_size=64, seed=5)
    expected_w, expected_losses = model.word_vecs.copy(), list(full.loss_history)

    model, opt, contexts, target = build(seed=1)
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=2, batch_size=64, seed=5, checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_NAME).exists()
    # A new process: fresh model and optimizer (a different initial seed even), then resume.
    model2, opt2, _, _ = build(seed=99)
    resumed = Trainer(model2, opt2, progress=False).fit(
        contexts, target, max_epoch=3, batch_size=64, seed=5, checkpoint_dir=tmp_path, resume=True
    )
    assert resumed.epoch == 3
    assert np.array_equal(model2.word_vecs, expected_w)
    assert resumed.loss_history == expected_losses


class Crash(Exception):
    pass


def crash_at(epoch):
    def callback(trainer, e, step, loss):
        if e == epoch:
            raise Crash

    return callback


def test_resume_after_a_crash_with_linear_decay_sgd_is_exact(tmp_path):
    def setup(seed_model):
        corpus, contexts, target = data()
        model = CBOW(40, 8, 2, corpus, seed=seed_model)
        return model, SGD(lr=LinearDecay(1.0, 0.01)).setup(model), contexts, target

    model, opt, contexts, target = setup(0)
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=3, batch_size=100, seed=2)
    full = model.word_vecs.copy()

    model, opt, contexts, target = setup(0)
    with pytest.raises(Crash):  # the run dies in its third epoch; epoch 2's checkpoint survives
        Trainer(model, opt, progress=False).fit(
            contexts, target, max_epoch=3, batch_size=100, seed=2, checkpoint_dir=tmp_path, callback=crash_at(3)
        )
    model, opt, contexts, target = setup(42)
    trainer = Trainer(model, opt, progress=False)
    trainer.fit(contexts, target, max_epoch=3, batch_size=100, seed=2, checkpoint_dir=tmp_path, resume=True)
    assert trainer.epoch == 3
    assert np.array_equal(model.word_vecs, full)


def test_non_finite_loss_names_epoch_and_step_and_leaves_weights_alone():
    model, opt, contexts, target = make()
    model.in_embed.W.data[:] = 1e30
    model.out_embed.W.data[:] = 1e30  # the first forward overflows: scores are inf
    before = model.word_vecs.copy()
    with pytest.raises(FloatingPointError, match=r"epoch 1, step 1"):
        with np.errstate(all="ignore"):
            Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=64)
    assert np.array_equal(model.word_vecs, before)  # no update was applied with the bad loss


def test_eval_callback_and_step_callback():
    model, opt, contexts, target = make()
    seen_steps = []
    trainer = Trainer(model, opt, progress=False, eval_fn=lambda m, epoch: {"norm": float(np.linalg.norm(m.word_vecs))})
    trainer.fit(contexts, target, max_epoch=2, batch_size=200, callback=lambda tr, e, s, l: seen_steps.append((e, s)))
    assert [r["epoch"] for r in trainer.eval_history] == [1, 2]
    assert all(r["norm"] > 0 for r in trainer.eval_history)
    assert seen_steps[0] == (1, 1) and seen_steps[-1] == (2, 3)


def test_plot_returns_a_figure_writes_only_when_asked_and_keeps_the_backend(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    backend = matplotlib.get_backend()
    model, opt, contexts, target = make()
    trainer = Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=5)
    fig = trainer.plot()
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    line = fig.axes[0].lines[0]
    np.testing.assert_array_equal(line.get_ydata(), trainer.loss_history)
    window = len(trainer.loss_history) // 50
    smooth = np.convolve(trainer.loss_history, np.ones(window) / window, mode="valid")
    np.testing.assert_allclose(fig.axes[0].lines[1].get_ydata(), smooth)
    host = Figure()
    ax = host.add_subplot(1, 2, 2)
    assert trainer.plot(ax=ax, title="mine") is host and ax.get_title() == "mine"
    assert matplotlib.get_backend() == backend
    trainer.plot("loss.svg")
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()[:400]
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.pdf"):
        trainer.plot("loss.jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.svg"]


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    model, opt, contexts, target = make()
    trainer = Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=50)
    out = tmp_path / "loss.png"
    trainer.plot(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no loss history"):
        Trainer(model, opt).plot(tmp_path / "x.png")


def test_progress_bar_prints_loss_and_speed(capsys):
    model, opt, contexts, target = make()
    Trainer(model, opt, progress=True).fit(contexts, target, max_epoch=1, batch_size=50)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "targets/s=" in err


def test_fit_argument_errors(tmp_path):
    model, opt, contexts, target = make()
    trainer = Trainer(model, opt, progress=False)
    with pytest.raises(ValueError, match="rows but target has"):
        trainer.fit(contexts, target[:-1])
    with pytest.raises(ValueError, match="batch_size"):
        trainer.fit(contexts, target, batch_size=0)
    with pytest.raises(ValueError, match="nothing to train"):
        trainer.fit(contexts[:0], target[:0])
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(contexts, target, resume=True)


def test_corrupt_checkpoint_is_reported(tmp_path):
    model, opt, contexts, target = make()
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match=CHECKPOINT_NAME):
        Trainer(model, opt, progress=False).fit(contexts, target, checkpoint_dir=tmp_path, resume=True)


def test_checkpoint_of_a_different_model_is_refused(tmp_path):
    model, opt, contexts, target = make()
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=100, checkpoint_dir=tmp_path)
    other = SimpleCBOW(40, 8, window_size=2, seed=0)
    with pytest.raises(ValueError, match="does not match the model"):
        Trainer(other, Adam().setup(other), progress=False).load_checkpoint(tmp_path / CHECKPOINT_NAME)


def test_simple_cbow_trains_through_the_trainer():
    corpus, contexts, target = data(V=15, N=300)
    model = SimpleCBOW(40, 6, window_size=2, seed=0)
    trainer = Trainer(model, Adam(lr=0.05).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=5, batch_size=30, seed=0)
    assert trainer.epoch_loss[-1] < trainer.epoch_loss[0] - 0.5


# ----- data sources and worker threads -----
def test_fit_on_context_windows_equals_fit_on_the_arrays():
    from tinygrad_nlp.text import ContextWindows

    corpus, contexts, target = data()
    results = []
    for source in ((contexts, target), (ContextWindows(corpus, 2),)):
        model = CBOW(40, 8, 2, corpus, seed=1)
        Trainer(model, Adam(lr=0.05).setup(model), progress=False).fit(*source, max_epoch=2, batch_size=64, seed=4)
        results.append(model.word_vecs.copy())
    np.testing.assert_array_equal(results[0], results[1])


def test_two_workers_train_shared_weights_and_count_every_step():
    corpus, contexts, target = data(N=3000)
    model = CBOW(40, 8, 2, corpus, seed=0)
    opt = Adam(lr=LinearDecay(0.05)).setup(model)
    before = model.word_vecs.copy()
    threads = set()
    trainer = Trainer(model, opt, progress=False, workers=2).fit(
        contexts, target, max_epoch=3, batch_size=50, seed=0,
        callback=lambda *_: threads.add(__import__("threading").current_thread().name))
    assert len(threads) == 2  # both threads stepped
    steps = 3 * int(np.ceil(len(target) / 50))
    assert opt.step == steps and len(trainer.loss_history) == steps  # one step number per update
    assert trainer.targets_seen == 3 * len(target)
    assert trainer.epoch_loss[-1] < trainer.epoch_loss[0] - 0.3  # it learns
    assert not np.array_equal(model.word_vecs, before)  # the model's own arrays were trained
    # every optimizer state array is the one the single optimizer owns (saved by checkpoints)
    state = opt.state_dict()
    assert state["in_embed.W/m"].shape == model.in_embed.W.data.shape and np.abs(state["in_embed.W/m"]).sum() > 0


def test_workers_update_in_their_own_threads_without_the_pool(monkeypatch):
    # Each worker keeps a core busy: its optimizer updates must not queue behind the other
    # worker's on the shared pool (a single pool thread on two cores).
    from tinygrad_nlp import _threads, optimizers

    corpus, contexts, target = data(N=1000)
    model = CBOW(40, 8, 2, corpus, seed=0)
    opt = Adam(lr=0.05).setup(model)
    old = _threads.num_threads()
    _threads.set_num_threads(2)
    monkeypatch.setattr(optimizers, "PARALLEL_MIN_ELEMENTS", 0)  # every update asks for the pool
    monkeypatch.setattr(_threads, "pool", lambda: pytest.fail("a worker handed work to the pool"))
    try:
        Trainer(model, opt, progress=False, workers=2).fit(contexts, target, max_epoch=1, batch_size=50, seed=0)
        with pytest.raises(pytest.fail.Exception):  # one worker does use the pool
            Trainer(model, opt, progress=False, workers=1).fit(contexts, target, max_epoch=1, batch_size=50, seed=0)
    finally:
        _threads.set_num_threads(old)
    assert opt.step > 0


def test_round_robin_deals_every_batch_once_in_turn_whatever_the_order_of_asking():
    import threading

    from tinygrad_nlp.train import _RoundRobin

    deal = _RoundRobin(iter(range(10)), 3, threading.Event())
    shares = [deal.share(i) for i in range(3)]
    got = {0: [], 1: [], 2: []}
    for i in (2, 2, 2, 0, 1, 2, 0, 0, 0, 1, 1, 1):  # thread 2 runs ahead, then the others
        batch = next(shares[i], None)
        if batch is not None:
            got[i].append(batch)
    assert got == {0: [0, 3, 6, 9], 1: [1, 4, 7], 2: [2, 5, 8]}
    stop = threading.Event()
    deal = _RoundRobin(iter(range(10)), 2, stop)
    share = deal.share(0)
    assert next(share) == 0
    stop.set()
    assert list(share) == []  # a stopped deal ends every share


@pytest.mark.parametrize("model_class", [CBOW, SkipGram])
def test_with_two_workers_each_batch_draws_the_same_negatives_and_windows_in_every_run(model_class, monkeypatch):
    import threading

    corpus, contexts, target = data(N=1200)
    runs = []
    for _ in range(2):
        drawn, threads = {}, set()
        real = model_class.prepare_batch

        def recording(self, c, t, real=real, drawn=drawn, threads=threads):
            prepared = real(self, c, t)
            batch = prepared["batch"]
            drawn[t.tobytes()] = (batch.negatives.copy(), None if batch.weights is None else batch.weights.copy())
            threads.add(threading.current_thread().name)
            return prepared

        monkeypatch.setattr(model_class, "prepare_batch", recording)
        model = model_class(40, 8, 2, corpus, seed=3, dynamic_window=True)
        Trainer(model, Adam(lr=0.05).setup(model), progress=False, workers=2).fit(
            contexts, target, max_epoch=2, batch_size=40, seed=5)
        runs.append(drawn)
        assert len(threads) == 2  # each worker prepared batches of its own
    assert runs[0].keys() == runs[1].keys() and len(runs[0]) == 2 * int(np.ceil(len(target) / 40))
    for key, (negatives, weights) in runs[0].items():
        np.testing.assert_array_equal(runs[1][key][0], negatives)
        np.testing.assert_array_equal(runs[1][key][1], weights)


def test_a_resumed_two_worker_run_draws_what_an_uninterrupted_one_draws(tmp_path, monkeypatch):
    # Weights differ between two Hogwild runs, but the batches, negatives and windows of every
    # epoch follow from fit's seed alone: a run resumed from its checkpoint draws the same ones.
    corpus, contexts, target = data(N=800)
    real = CBOW.prepare_batch
    drawn = {"whole": {}, "first": {}, "resumed": {}}
    current = []

    def recording(self, c, t):
        prepared = real(self, c, t)
        drawn[current[-1]][t.tobytes()] = prepared["batch"].negatives.copy()
        return prepared

    monkeypatch.setattr(CBOW, "prepare_batch", recording)

    def run(name, out, epochs, resume=False):
        current.append(name)
        model = CBOW(40, 8, 2, corpus, seed=2, dynamic_window=True)
        trainer = Trainer(model, Adam(lr=0.05).setup(model), progress=False, workers=2)
        return trainer.fit(contexts, target, max_epoch=epochs, batch_size=40, seed=1, checkpoint_dir=out,
                           resume=resume)

    whole = run("whole", tmp_path / "a", 3)
    run("first", tmp_path / "b", 2)
    resumed = run("resumed", tmp_path / "b", 3, resume=True)
    assert resumed.epoch == 3 and resumed.optimizer.step == whole.optimizer.step
    per_epoch = int(np.ceil(len(target) / 40))
    assert len(drawn["resumed"]) == per_epoch  # one epoch was left to train
    last_epoch = dict(list(drawn["whole"].items())[-per_epoch:])
    assert last_epoch.keys() == drawn["resumed"].keys()
    for key, negatives in drawn["resumed"].items():
        np.testing.assert_array_equal(last_epoch[key], negatives)


def test_an_error_in_one_worker_stops_every_thread():
    corpus, contexts, target = data(N=2000)
    model = CBOW(40, 8, 2, corpus, seed=0)
    opt = SGD(lr=1e30).setup(model)  # diverges: the loss or the update becomes non-finite
    with pytest.raises(FloatingPointError):
        Trainer(model, opt, progress=False, workers=2).fit(contexts, target, max_epoch=5, batch_size=20, seed=0)
    assert np.all(np.isfinite(model.word_vecs))


def test_shared_copy_shares_arrays_and_keeps_its_own_gradients():
    corpus, contexts, target = data()
    model = SimpleCBOW(40, 6, 2, seed=0)
    twin = model.shared_copy()
    for (k, p), (k2, q) in zip(model.named_params().items(), twin.named_params().items()):
        assert k == k2 and p is not q and p.data is q.data
    twin(contexts[:10], target[:10]).backward()
    assert all(p.grad is None for p in model.params()) and all(q.grad is not None for q in twin.params())


def test_workers_argument_is_checked():
    model, opt, _, _ = make()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers must be an integer >= 1"):
            Trainer(model, opt, workers=bad)


# ----- language models: truncated BPTT -----
import math  # noqa: E402

from tinygrad_nlp.models import LSTMLM  # noqa: E402
from tinygrad_nlp.train import LMTrainer, perplexity, stream_windows  # noqa: E402


def test_stream_windows_reads_parallel_streams():
    corpus = np.arange(23)
    windows = stream_windows(corpus, batch_size=3, time_size=3)
    # (23 - 1) // 3 = 7 words per stream: streams start at 0, 7, 14; windows of 3, 3 and 1 steps.
    assert [xs.shape for xs, _ in windows] == [(3, 3), (3, 3), (3, 1)]
    np.testing.assert_array_equal(windows[0][0], [[0, 1, 2], [7, 8, 9], [14, 15, 16]])
    np.testing.assert_array_equal(windows[2][1], [[7], [14], [21]])
    for xs, ts in windows:
        np.testing.assert_array_equal(ts, xs + 1)
    with pytest.raises(ValueError, match="too short for 30 streams"):
        stream_windows(corpus, 30, 5)
    with pytest.raises(ValueError, match="time_size must be a positive integer"):
        stream_windows(corpus, 3, 0)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    model = LSTMLM(17, 5, 5, seed=0)
    model.out.W.data[...] = 0
    model.out.b.data[...] = 0
    assert perplexity(model, np.arange(200) % 17, batch_size=4, time_size=6) == pytest.approx(17, rel=1e-5)
    assert model.rnn.state is None


def test_lm_trainer_learns_a_periodic_corpus():
    corpus = np.tile(np.array([0, 1, 2, 3, 4, 5, 1, 3, 5, 0, 2, 4]), 60)
    model = LSTMLM(6, 8, 16, seed=0)
    trainer = LMTrainer(model, SGD(lr=2.0, clip_norm=1.0).setup(model), progress=False)
    trainer.fit(corpus, max_epoch=25, batch_size=4, time_size=6, valid_corpus=corpus[:300])
    history = trainer.history["eval"]
    assert history[0]["train_perplexity"] > 2.5
    assert history[-1]["valid_perplexity"] < 1.2  # every word follows from the two before it
    assert perplexity(model, corpus, 3, 5) == pytest.approx(history[-1]["valid_perplexity"], rel=0.1)
    matplotlib = pytest.importorskip("matplotlib")
    backend = matplotlib.get_backend()
    fig = trainer.plot()  # a Figure, nothing written, the backend untouched
    train_line, valid_line = fig.axes[0].lines
    np.testing.assert_array_equal(valid_line.get_ydata(), [r["valid_perplexity"] for r in history])
    assert matplotlib.get_backend() == backend


def _lm_run(tmp_path, epochs, resume=False, schedule="plateau"):
    rng = np.random.default_rng(0)
    corpus = rng.integers(0, 12, 400)
    model = LSTMLM(12, 6, 6, num_layers=2, dropout=0.3, tie_weights=True, seed=0)
    trainer = LMTrainer(model, SGD(lr=1.0, clip_norm=0.5).setup(model), progress=False)
    trainer.fit(corpus, max_epoch=epochs, batch_size=4, time_size=5, valid_corpus=corpus[:100],
                schedule=schedule, decay_factor=4.0, checkpoint_dir=tmp_path, resume=resume)
    return model, trainer


def test_lm_trainer_resumes_exactly(tmp_path):
    straight, t1 = _lm_run(tmp_path / "a", 3)
    _lm_run(tmp_path / "b", 1)
    resumed, t2 = _lm_run(tmp_path / "b", 3, resume=True)
    for (k, p), q in zip(straight.named_params().items(), resumed.named_params().values()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=k)
    assert t1.loss_history == t2.loss_history
    assert [r["lr"] for r in t1.history["eval"]] == [r["lr"] for r in t2.history["eval"]]
    assert t2.epoch == 3


def test_lm_trainer_schedules():
    model, trainer = _lm_run(None, 6, schedule="plateau")
    records = trainer.history["eval"]
    lr, best = 1.0, math.inf
    for r in records:  # divided by 4 exactly when validation perplexity did not improve
        if r["valid_perplexity"] >= best:
            lr /= 4
        best = min(best, r["valid_perplexity"])
        assert r["lr"] == lr
    rng = np.random.default_rng(0)
    model = LSTMLM(12, 6, 6, seed=0)
    trainer = LMTrainer(model, SGD(lr=1.0).setup(model), progress=False)
    trainer.fit(rng.integers(0, 12, 200), max_epoch=6, batch_size=4, time_size=5, schedule="step",
                decay_factor=2.0, decay_after=4)
    assert [r["lr"] for r in trainer.history["eval"]] == [1.0, 1.0, 1.0, 0.5, 0.25, 0.125]
    with pytest.raises(ValueError, match="needs a validation corpus"):
        trainer.fit(rng.integers(0, 12, 200), schedule="plateau")


# ----- hyperparameters are checked where they are given -----
@pytest.mark.parametrize("kwargs, pattern", [
    (dict(max_epoch=0), "Trainer.fit: max_epoch must be an integer >= 1 \\(got 0\\)"),
    (dict(max_epoch=2.5), "max_epoch must be an integer"),
    (dict(batch_size=0), "batch_size must be an integer >= 1 \\(got 0\\)"),
    (dict(batch_size=True), "batch_size must be an integer"),
    (dict(resume=True), "resume=True needs checkpoint_dir"),
])
def test_fit_checks_its_arguments_before_training(kwargs, pattern):
    model, opt, contexts, target = make()
    before = model.word_vecs.copy()
    with pytest.raises(ValueError, match=pattern):
        Trainer(model, opt, progress=False).fit(contexts, target, **kwargs)
    assert np.array_equal(model.word_vecs, before)


def test_trainer_checks_what_it_is_given():
    model, opt, _, _ = make()
    with pytest.raises(ValueError, match="prefetch must be True, False or 'auto'"):
        Trainer(model, opt, prefetch="yes")
    with pytest.raises(ValueError, match="progress must be True or False"):
        Trainer(model, opt, progress="no")
    with pytest.raises(TypeError, match="eval_fn must be callable"):
        Trainer(model, opt, eval_fn=3)
    with pytest.raises(TypeError, match="optimizer must be an Optimizer"):
        Trainer(model, "adam")


# ----- what a checkpoint load accepts is what a run could have saved -----
def _checkpoint(tmp_path, epochs=1):
    model, opt, contexts, target = make()
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=epochs, batch_size=100,
                                            checkpoint_dir=tmp_path)
    return tmp_path / CHECKPOINT_NAME


def _rewrite(path, change):
    from tinygrad_nlp.layers import load_npz, save_npz

    arrays = load_npz(path)
    change(arrays)
    save_npz(path, arrays)


def _set(key, value):
    def change(arrays):
        arrays[key] = value(arrays[key]) if callable(value) else value
    return change


def _with_nan(a):
    a = a.copy()
    a.flat[3] = np.nan
    return a


@pytest.mark.parametrize("change, pattern", [
    (_set("model/in_embed.W", _with_nan), "'model/in_embed.W' holds NaN or infinite"),
    (_set("model/out_embed.W", lambda a: np.full(a.shape, np.inf, a.dtype)), "'model/out_embed.W' holds NaN or inf"),
    (_set("model/in_embed.W", lambda a: np.full(a.shape, 1e300)), "beyond the range of float32"),
    (_set("optim/in_embed.W/m", lambda a: a.astype(np.complex64)), "'optim/in_embed.W/m' holds complex64"),
    (_set("optim/in_embed.W/v", _with_nan), "'optim/in_embed.W/v' holds NaN"),
    (_set("optim/__step__", np.array(-1)), "'optim/__step__' must be a non-negative integer"),
    (_set("optim/__step__", np.array(-5)), "'optim/__step__' must be a non-negative integer"),
    (_set("optim/__step__", np.array(2.0)), "'optim/__step__' must be a non-negative integer"),
])
def test_load_checkpoint_refuses_what_no_run_saves_and_changes_nothing(tmp_path, change, pattern):
    path = _checkpoint(tmp_path)
    _rewrite(path, change)
    model, opt, contexts, target = make(seed=5)
    trainer = Trainer(model, opt, progress=False)
    before = model.word_vecs.copy()
    with pytest.raises(ValueError, match=pattern):
        trainer.load_checkpoint(path)
    assert np.array_equal(model.word_vecs, before) and trainer.epoch == 0 and opt.step == 0 and not opt.state


def test_a_checkpoint_of_other_hyperparameters_is_refused(tmp_path):
    path = _checkpoint(tmp_path)
    corpus, contexts, target = data()
    other = CBOW(40, 8, 2, corpus, seed=0, sample_size=3)  # same weights' shapes, other negatives
    with pytest.raises(ValueError, match="sample_size=5.*sample_size=3"):
        Trainer(other, Adam().setup(other), progress=False).load_checkpoint(path)


def test_resume_refuses_a_checkpoint_with_more_epochs_than_asked(tmp_path):
    _checkpoint(tmp_path, epochs=3)
    model, opt, contexts, target = make()
    trainer = Trainer(model, opt, progress=False)
    with pytest.raises(ValueError, match="already trained 3 epochs, more than the 2 asked for in total"):
        trainer.fit(contexts, target, max_epoch=2, batch_size=100, checkpoint_dir=tmp_path, resume=True)
    assert trainer.epoch == 0 and trainer.epoch_loss == []


def test_an_epoch_is_checkpointed_before_its_evaluation_runs(tmp_path):
    model, opt, contexts, target = make()
    calls = []

    def evaluation(m, epoch):
        calls.append(epoch)
        if epoch == 2:
            raise OSError("the evaluation file went away")
        return {"score": 1.0}

    trainer = Trainer(model, opt, progress=False, eval_fn=evaluation)
    with pytest.raises(OSError):
        trainer.fit(contexts, target, max_epoch=3, batch_size=100, checkpoint_dir=tmp_path)
    resumed = Trainer(*make()[:2], progress=False).load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert resumed.epoch == 2 and resumed.eval_history == [{"epoch": 1, "score": 1.0}]
