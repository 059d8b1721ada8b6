"""Training loop: shuffled mini-batches, a progress bar, loss history, checkpoints and resume.

``Trainer(model, optimizer).fit(contexts, target, max_epoch, batch_size)`` runs
``loss = model(ctx, tgt); model.cleargrads(); loss.backward(); optimizer.update()`` over
shuffled batches. While one step computes, a background thread prepares the next batch (row
gathering and negative sampling), which numpy lets run on the second core.

Runs are reproducible: ``seed`` fixes the shuffling, and the model's own seed fixes its
initial weights and negative samples. With ``checkpoint_dir`` every epoch ends with an atomic
``checkpoint.npz`` (weights, optimizer state, random-generator states, history); ``resume=True``
continues from it and gives the same result as a run that never stopped.

Language models train differently (``LMTrainer``): the corpus is read as ``batch_size``
parallel streams, ``time_size`` words at a time, with the recurrent state carried from window
to window and the graph cut between them (truncated backpropagation through time);
``perplexity`` evaluates such a model on a corpus.
"""

from __future__ import annotations

import collections
import copy
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import _checks, _threads
from tinygrad_nlp.core import Config
from tinygrad_nlp.io import (PathLike, check_loaded, figure_and_axes, finish_figure, load_npz, npz_headers,
                             save_npz, write_bytes_atomic)

if TYPE_CHECKING:  # for annotations only: importing train loads no model code
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from tinygrad_nlp.models import LSTMLM, Model
    from tinygrad_nlp.optimizers import Optimizer

__all__ = ["Trainer", "ArrayBatches", "LMTrainer", "perplexity", "stream_windows", "plot_losses", "CHECKPOINT_NAME",
           "PREFETCH_MIN_BATCH"]

CHECKPOINT_NAME = "checkpoint.npz"

# Measured on PTB CBOW (2 cores): prefetching gains ~15 % at batch 1,000 but loses ~25 % at
# batch 100, where the producer thread's small numpy calls mostly compete for the GIL.
PREFETCH_MIN_BATCH = 500


class _Prefetcher:
    """Prepares batches ``(contexts, target, extra_kwargs)`` in a background thread."""

    _DONE = object()

    def __init__(self, batches, prepare, depth=2):
        self._prepare = prepare
        self._queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(batches,), daemon=True, name="tinygrad_nlp-prefetch")
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, batches):
        try:
            for c, t in batches:
                if self._stop.is_set() or not self._put(self._prepare(c, t)):
                    return
            self._put(self._DONE)
        except BaseException as err:  # hand the error to the consumer
            self._put(err)

    def __iter__(self):
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is self._DONE:
                self._queue.put(item)  # every consumer thread sees the end
                return
            if isinstance(item, BaseException):
                self._queue.put(item)
                raise item
            yield item

    def close(self):
        self._stop.set()
        self._thread.join()


class _RoundRobin:
    """Deals the batches of one iterator to ``n`` threads in turn: thread ``i`` gets batches
    ``i, i + n, i + 2n, ...`` whichever thread is faster (the other's batches wait in a queue)."""

    def __init__(self, batches, n, stop):
        self._batches = iter(batches)
        self._queues = [collections.deque() for _ in range(n)]
        self._lock = threading.Lock()
        self._stop = stop
        self._dealt = 0
        self._done = False

    def share(self, i):
        """Thread ``i``'s batches, until the iterator ends or ``stop`` is set."""
        queue_i = self._queues[i]
        while not self._stop.is_set():
            with self._lock:
                while not queue_i and not self._done:
                    try:
                        batch = next(self._batches)
                    except StopIteration:
                        self._done = True
                        break
                    self._queues[self._dealt % len(self._queues)].append(batch)
                    self._dealt += 1
                if not queue_i:
                    return
                batch = queue_i.popleft()
            yield batch


class BatchSource(Protocol):
    """What ``Trainer.fit`` takes instead of two arrays: a source that cuts its own batches."""

    num_targets: int

    def num_batches(self, batch_size: int) -> int: ...

    def batches(self, batch_size: int, rng: np.random.Generator,
                shuffle: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class ArrayBatches:
    """The batches of given ``(contexts, target)`` arrays: each epoch a permutation of the rows
    cut into consecutive batches (the data source ``Trainer.fit`` makes from two arrays)."""

    def __init__(self, contexts: ArrayLike, target: ArrayLike) -> None:
        contexts = np.asarray(contexts)
        target = np.asarray(target)
        if contexts.shape[0] != target.shape[0]:
            raise ValueError(f"contexts have {contexts.shape[0]} rows but target has {target.shape[0]}")
        self.contexts, self.target = contexts, target

    @property
    def num_targets(self) -> int:
        return len(self.target)

    def num_batches(self, batch_size: int) -> int:
        return -(-self.num_targets // batch_size)

    def batches(self, batch_size: int, rng: np.random.Generator,
                shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = len(self.target)
        order = rng.permutation(n) if shuffle else np.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            yield self.contexts[idx], self.target[idx]


class Trainer:
    """Fit a model that maps ``(contexts, target)`` batches to a scalar loss.

    Args:
        model: a [`Model`][tinygrad_nlp.models.Model] (e.g. CBOW); if it has
            ``prepare_batch(contexts, target) -> dict`` of keywords for ``model(contexts,
            target, **keywords)`` (CBOW and SkipGram prepare a whole ``SamplingBatch`` there:
            negatives, window, checked and sorted ids) that work happens in the prefetch thread.
        optimizer: an optimizer already ``setup`` with the model.
        progress: show a progress bar (tqdm) with the running loss and targets/s.
        eval_fn: optional ``eval_fn(model, epoch) -> dict`` called after every epoch; results
            are kept in ``history["eval"]``.
        prefetch: with one worker, prepare the next batch in a background thread: True, False,
            or "auto" (default: on for batches of at least ``PREFETCH_MIN_BATCH`` rows; for small
            batches the thread's Python work contends for the GIL and costs more than it saves).
            Several workers prepare their own batches instead.
        workers: threads that train at once (default 1). With more than one, each thread
            steps its own [`worker_copy`][tinygrad_nlp.models.Model.worker_copy] of the model - the
            same weight arrays, gradients and random generators of its own - on every
            ``workers``-th batch, which it prepares itself (no prefetch thread), and the
            optimizer's compiled updates (which release the GIL) write into the shared weights
            and state without locks, as word2vec's worker threads do ("Hogwild"). The workers'
            generators are seeded from ``seed`` at every epoch, so the negatives and windows
            each batch gets depend only on ``seed`` and ``workers``. Steps are numbered by one
            counter, so learning-rate schedules and Adam's bias correction see the run's step
            count. Results still vary slightly from run to run, as the workers' updates
            interleave differently; one worker is exactly reproducible, resumed or not.
    """

    def __init__(self, model: Model, optimizer: Optimizer, progress: bool = True,
                 eval_fn: Callable[[Model, int], dict[str, Any] | None] | None = None,
                 prefetch: bool | str = "auto", workers: int = 1) -> None:
        self.workers = _checks.size("Trainer", "workers", workers)
        if not callable(model) or not hasattr(model, "named_params"):
            raise TypeError(f"Trainer: model must be a Model (a Layer returning the loss), got {type(model).__name__}")
        if not hasattr(optimizer, "update") or not hasattr(optimizer, "state_dict"):
            raise TypeError(f"Trainer: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"Trainer: eval_fn must be callable or None, got {type(eval_fn).__name__}")
        if not (prefetch == "auto" or isinstance(prefetch, (bool, np.bool_))):
            raise ValueError(f"Trainer: prefetch must be True, False or 'auto' (got {prefetch!r})")
        progress = _checks.flag("Trainer", "progress", progress)
        self.model = model
        self.optimizer = optimizer
        self.progress = progress
        self.eval_fn = eval_fn
        self.prefetch = prefetch
        self.loss_history = []
        self.epoch_loss = []
        self.eval_history = []
        self.epoch = 0
        self.rng = None
        self.seconds = 0.0
        self.targets_seen = 0

    @property
    def history(self) -> dict[str, list]:
        """Per-step losses, per-epoch mean losses and evaluation results."""
        return {"loss": list(self.loss_history), "epoch_loss": list(self.epoch_loss), "eval": list(self.eval_history)}

    # ----- training -----
    def fit(self, contexts: BatchSource | ArrayLike, target: ArrayLike | None = None, max_epoch: int = 1,
            batch_size: int = 100, shuffle: bool = True, seed: int | None = None,
            checkpoint_dir: PathLike | None = None, resume: bool = False,
            callback: Callable[[Trainer, int, int, float], Any] | None = None) -> Trainer:
        """Train for ``max_epoch`` more epochs; with ``resume=True``, until ``max_epoch`` epochs are
        done in total (counting those in the checkpoint).

        Args:
            contexts: (N, C) integer ids, with target (N,) integer ids; or, with ``target``
                None, a data source that cuts batches itself, such as
                ``ContextWindows`` over a corpus (of any length: its
                batches are built as they are needed). A source has ``num_batches(batch_size)``
                and ``batches(batch_size, rng, shuffle)`` yielding ``(contexts, target)``.
            batch_size: rows per step (the last batch of an epoch may be smaller).
            seed: seeds the shuffling (None: fresh randomness).
            checkpoint_dir: write ``checkpoint.npz`` there after every epoch.
            resume: continue from ``checkpoint_dir``'s checkpoint if there is one.
            callback: optional ``callback(trainer, epoch, step, loss)`` after every step.

        Raises:
            FloatingPointError: the loss became NaN or infinite (naming epoch and step).
        """
        if target is None and hasattr(contexts, "batches"):
            data = contexts
        elif target is None:
            raise ValueError("fit needs contexts and target arrays, or one data source with a batches() method")
        else:
            data = ArrayBatches(contexts, target)
        if data.num_targets == 0:
            raise ValueError("there is nothing to train on: contexts and target are empty")
        batch_size = _checks.size("Trainer.fit", "batch_size", batch_size)
        max_epoch = _checks.size("Trainer.fit", "max_epoch", max_epoch)
        if resume and checkpoint_dir is None:
            raise ValueError("Trainer.fit: resume=True needs checkpoint_dir")
        steps_per_epoch = data.num_batches(batch_size)
        self.rng = np.random.default_rng(seed)
        if resume:
            path = os.path.join(checkpoint_dir, CHECKPOINT_NAME)
            if os.path.exists(path):
                self.load_checkpoint(path, most_epochs=max_epoch)
            last_epoch = max_epoch
        else:
            last_epoch = self.epoch + max_epoch
        self.optimizer.set_total_steps(steps_per_epoch * last_epoch)

        while self.epoch < last_epoch:
            epoch = self.epoch + 1
            batches = data.batches(batch_size, self.rng, shuffle)
            self._run_epoch(epoch, last_epoch, batches, steps_per_epoch, min(batch_size, data.num_targets), callback)
            self.epoch = epoch
            # The epoch is saved before it is evaluated: a failing evaluation cannot lose it.
            if checkpoint_dir is not None:
                self.save_checkpoint(os.path.join(checkpoint_dir, CHECKPOINT_NAME))
            if self.eval_fn is not None:
                result = self.eval_fn(self.model, epoch)
                self.eval_history.append({"epoch": epoch, **(result or {})})
                if checkpoint_dir is not None:  # again, with the evaluation in its history
                    self.save_checkpoint(os.path.join(checkpoint_dir, CHECKPOINT_NAME))
        return self

    def _run_epoch(self, epoch, max_epoch, batches, num_batches, rows, callback):
        bar = _progress_bar(num_batches, f"epoch {epoch}/{max_epoch}", self.progress)
        prepare_batch = getattr(self.model, "prepare_batch", None)

        def prepare(c, t):
            return c, t, (prepare_batch(c, t) if prepare_batch is not None else {})

        if self.workers > 1:
            return self._run_epoch_threads(epoch, batches, num_batches, bar, callback)
        prefetch = self.prefetch if self.prefetch != "auto" else rows >= PREFETCH_MIN_BATCH
        source = _Prefetcher(batches, prepare) if prefetch else (prepare(c, t) for c, t in batches)
        total, count, seen = 0.0, 0, 0
        t0 = time.perf_counter()
        last_refresh = t0
        try:
            for step, (c, t, extra) in enumerate(source, start=1):
                value = self._step(self.model, self.optimizer, c, t, extra, epoch, step)
                self.loss_history.append(value)
                total += value
                count += 1
                seen += len(t)
                if callback is not None:
                    callback(self, epoch, step, value)
                now = time.perf_counter()
                if bar is not None:
                    bar.update(1)
                    if now - last_refresh > 0.25 or step == num_batches:
                        bar.set_postfix_str(f"loss={total / count:.4f} targets/s={seen / max(now - t0, 1e-9):,.0f}")
                        last_refresh = now
        finally:
            if isinstance(source, _Prefetcher):
                source.close()
            if bar is not None:
                bar.close()
        elapsed = time.perf_counter() - t0
        self.seconds += elapsed
        self.targets_seen += seen
        self.epoch_loss.append(total / max(count, 1))

    def _step(self, model, optimizer, c, t, extra, epoch, step):
        """One training step on a prepared batch; returns its loss (float)."""
        loss = model(c, t, **extra)
        value = float(loss.data)
        if not math.isfinite(value):  # checked before the update: weights stay finite
            raise FloatingPointError(
                f"the loss became {value} at epoch {epoch}, step {step}: lower the learning rate "
                f"or enable tinygrad_nlp.detect_anomaly() to find the Function that produced it"
            )
        model.cleargrads()
        loss.backward()
        try:
            optimizer.update()  # refuses (changing nothing) to write NaN/inf
        except FloatingPointError as err:
            raise FloatingPointError(f"at epoch {epoch}, step {step}: {err}") from None
        return value

    def _workers(self, seeds):
        """``(model, optimizer)`` per training thread: the model for the first, for each other a
        [`worker_copy`][tinygrad_nlp.models.Model.worker_copy] (shared weights, random generators
        of its own seeded from ``seeds[i]``); and copies of the optimizer that share its state
        arrays (each created now, so all share it)."""
        opt = self.optimizer
        for p in opt.params():
            if id(p) not in opt.state:
                opt.state[id(p)] = opt.init_state(p)
        names = self.model.named_params()
        pairs = []
        for i in range(self.workers):
            worker_copy = getattr(self.model, "worker_copy", None)
            model = self.model if i == 0 else worker_copy(seeds[i]) if worker_copy else self.model.shared_copy()
            worker_opt = copy.copy(opt)
            worker_opt.target = model
            own = model.named_params()
            worker_opt.state = {id(own[k]): opt.state[id(p)] for k, p in names.items() if id(p) in opt.state}
            pairs.append((model, worker_opt))
        return pairs

    def _run_epoch_threads(self, epoch, batches, num_batches, bar, callback):
        """An epoch on ``self.workers`` threads (the calling thread is one of them).

        Batches are dealt in turn (worker ``i`` trains batches ``i, i + n, ...``) and each
        worker prepares its own (negatives, window, sorted ids) with its model's generators, so
        what it draws depends only on ``seed`` and the number of workers; the weights they
        update at once still make results vary slightly from run to run."""
        stop = threading.Event()
        source = _RoundRobin(batches, self.workers, stop)
        seeds = np.random.SeedSequence(int(self.rng.integers(2**63))).spawn(self.workers)
        lock = threading.Lock()
        errors = []
        shared = self.optimizer
        settings = Config.settings()
        stats = {"total": 0.0, "count": 0, "seen": 0}
        t0 = time.perf_counter()

        def work(i, model, optimizer):
            Config.apply(settings)
            prepare_batch = getattr(model, "prepare_batch", None)
            try:
                with _threads.serial():  # the other workers keep the other cores busy
                    for c, t in source.share(i):
                        extra = prepare_batch(c, t) if prepare_batch is not None else {}
                        with lock:  # one step number per update, in the order they start
                            optimizer.step = shared.step
                            shared.step += 1
                            step = stats["count"] + 1 + len(errors)
                        value = self._step(model, optimizer, c, t, extra, epoch, step)
                        with lock:
                            self.loss_history.append(value)
                            stats["total"] += value
                            stats["count"] += 1
                            stats["seen"] += len(t)
                            if callback is not None:
                                callback(self, epoch, stats["count"], value)
                            if bar is not None:
                                bar.update(1)
                                now = time.perf_counter()
                                bar.set_postfix_str(f"loss={stats['total'] / stats['count']:.4f} "
                                                    f"targets/s={stats['seen'] / max(now - t0, 1e-9):,.0f}",
                                                    refresh=False)
            except BaseException as err:  # stop every thread, re-raised by the caller
                with lock:
                    errors.append(err)
                stop.set()

        pairs = self._workers(seeds)
        threads = [threading.Thread(target=work, args=(i, *pair), daemon=True, name=f"tinygrad_nlp-worker-{i}")
                   for i, pair in enumerate(pairs[1:], start=1)]
        try:
            for th in threads:
                th.start()
            work(0, *pairs[0])
            for th in threads:
                th.join()
        finally:
            stop.set()
            for th in threads:
                th.join()
            if bar is not None:
                bar.close()
        if errors:
            raise errors[0]
        self.seconds += time.perf_counter() - t0
        self.targets_seen += stats["seen"]
        self.epoch_loss.append(stats["total"] / max(stats["count"], 1))

    # ----- checkpoints -----
    def save_checkpoint(self, path: PathLike) -> None:
        """Atomically write weights, optimizer state, generator states and history to ``path``."""
        arrays = {f"model/{k}": p.data for k, p in self.model.named_params().items()}
        arrays.update({f"optim/{k}": v for k, v in self.optimizer.state_dict().items()})
        arrays["history/loss"] = np.asarray(self.loss_history, dtype=np.float64)
        meta = {
            "epoch": self.epoch,
            "epoch_loss": self.epoch_loss,
            "eval": self.eval_history,
            "seconds": self.seconds,
            "targets_seen": self.targets_seen,
            "rng": self.rng.bit_generator.state if self.rng is not None else None,
            "generators": {k: g.bit_generator.state for k, g in _generators(self.model).items()},
            "model": _model_record(self.model),
        }
        arrays["meta"] = np.array(json.dumps(meta, default=_json_default))
        save_npz(path, arrays)

    def load_checkpoint(self, path: PathLike, most_epochs: int | None = None) -> None:
        """Restore everything [`save_checkpoint`][save_checkpoint] wrote.

        Everything is read and validated against the model before anything changes: a
        checkpoint of another model class or other hyperparameters, weights or optimizer state
        that are not finite real floats of the parameters' shapes, a missing optimizer state
        array, a negative step, or a corrupt file raises ``ValueError`` naming the file and the
        key and leaves the trainer, model and optimizer as they were. ``most_epochs`` also
        refuses a checkpoint that has trained more epochs than that.
        """
        params = self.model.named_params()
        headers = npz_headers(path)  # names and shapes are checked before any array is read
        stray = sorted(k for k in headers if k not in ("meta", "history/loss") and not k.startswith(("model/", "optim/")))
        if stray:
            raise ValueError(f"{path}: not a tinygrad_nlp checkpoint: unexpected {stray}")
        if "meta" not in headers:
            raise ValueError(f"{path}: not a tinygrad_nlp checkpoint (no 'meta' entry)")
        saved = {k[len("model/"):]: h for k, h in headers.items() if k.startswith("model/")}
        missing = sorted(set(params) - set(saved))
        extra = sorted(set(saved) - set(params))
        wrong = sorted(k for k in params if k in saved and saved[k][0] != params[k].data.shape)
        wrong_kind = sorted(k for k in params if k in saved and saved[k][1].kind != params[k].data.dtype.kind)
        if missing or extra or wrong or wrong_kind:
            kinds = f", wrong dtype {wrong_kind}" if wrong_kind else ""
            raise ValueError(f"{path}: checkpoint does not match the model (missing {missing}, unexpected {extra}, "
                             f"wrong shape {wrong}{kinds})")
        arrays = load_npz(path, expect=lambda key: _checkpoint_shape(key, params),
                          max_member_bytes=max([64 << 20] + [p.data.nbytes for p in params.values()]))
        if "meta" not in arrays:
            raise ValueError(f"{path}: not a tinygrad_nlp checkpoint (no 'meta' entry)")

        def bad(problem):
            return ValueError(f"{path}: corrupt checkpoint metadata ({problem})")

        try:
            meta = json.loads(str(arrays["meta"]))
            epoch = meta["epoch"]
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
                raise bad(f"ValueError: epoch must be a non-negative integer, got {epoch!r}")
            if most_epochs is not None and epoch > most_epochs:
                raise ValueError(f"{path}: the checkpoint has already trained {epoch} epochs, more than the "
                                 f"{most_epochs} asked for in total; ask for at least {epoch} to resume it")
            record = meta.get("model")
            if record is not None and record != _model_record(self.model):
                raise ValueError(f"{path}: checkpoint does not match the model: it was saved from "
                                 f"{_describe_record(record)}, this run's model is "
                                 f"{_describe_record(_model_record(self.model))}")
            epoch_loss = [float(x) for x in meta.get("epoch_loss", [])]
            eval_history = list(meta.get("eval", []))
            if not all(isinstance(r, dict) for r in eval_history):
                raise bad("ValueError: 'eval' must be a list of records")
            seconds = float(meta.get("seconds", 0.0))
            targets_seen = int(meta.get("targets_seen", 0))
            history = arrays.get("history/loss", np.zeros(0))
            if history.ndim != 1 or history.dtype.kind not in "fiu":
                raise bad(f"ValueError: history/loss must be a 1-D numeric array, got shape {history.shape} {history.dtype}")
            loss_history = [float(x) for x in history]
            saved_generators = dict(meta.get("generators", {}))
            rng = None
            if meta.get("rng") is not None:
                rng = np.random.default_rng()
                rng.bit_generator.state = meta["rng"]
            generators = _generators(self.model)
            for name, state in saved_generators.items():  # check each state on a scratch generator
                if name in generators:
                    scratch = type(generators[name].bit_generator)()
                    scratch.state = state
        except ValueError as err:
            if str(err).startswith(f"{path}:"):
                raise
            raise bad(f"{type(err).__name__}: {err}") from None
        except (json.JSONDecodeError, KeyError, TypeError, OverflowError, AttributeError) as err:
            raise bad(f"{type(err).__name__}: {err}") from None
        weights = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        for k in params:
            check_loaded(path, f"model/{k}", weights[k], params[k].data.dtype)
        for k, v in arrays.items():
            if k.startswith("optim/") and k != "optim/__step__":
                check_loaded(path, k, v, None)
        step = arrays.get("optim/__step__")
        if step is not None and (step.shape != () or step.dtype.kind not in "iu" or int(step) < 0):
            raise ValueError(f"{path}: 'optim/__step__' must be a non-negative integer, got {step!r}")
        if set(saved_generators) != set(generators):
            raise ValueError(f"{path}: checkpoint does not match the model: it holds random generators "
                             f"{sorted(saved_generators)}, the model has {sorted(generators)}")
        try:  # validates fully before replacing the optimizer's state
            self.optimizer.load_state_dict({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ValueError(f"{path}: optimizer state does not fit ({type(err).__name__}: {err})") from None
        # Everything is valid: commit.
        for name, state in saved_generators.items():
            generators[name].bit_generator.state = state
        for k, p in params.items():
            p.data = weights[k].astype(p.data.dtype, copy=True)
        self.rng = rng
        self.loss_history = loss_history
        self.epoch = epoch
        self.epoch_loss = epoch_loss
        self.eval_history = eval_history
        self.seconds = seconds
        self.targets_seen = targets_seen
        return self

    # ----- reporting -----
    @property
    def targets_per_second(self) -> float:
        """Training throughput so far: targets (rows) trained per second of training (float)."""
        return self.targets_seen / self.seconds if self.seconds else 0.0

    def plot(self, path: PathLike | None = None, ax: Axes | None = None, title: str | None = None) -> Figure:
        """The loss curve (per step, with a moving average) as a matplotlib Figure.

        Draws on ``ax`` when given (and returns its figure), else on a new Figure made without
        ``pyplot``, so the global backend is never switched and nothing pops up; a notebook shows
        the returned Figure inline. Saved (png, svg or pdf by extension, atomically) only when
        ``path`` is given. Needs matplotlib (``pip install "tinygrad_nlp[plot]"``).
        """
        return plot_losses(self.loss_history, path, ax, title or f"{type(self.model).__name__} training loss")


def plot_losses(losses: ArrayLike, path: PathLike | None = None, ax: Axes | None = None,
                title: str = "training loss") -> Figure:
    """The loss curve of [`Trainer.plot`][Trainer.plot] from a sequence of per-step losses: each step, and
    a moving average over a fiftieth of the run. Drawn and saved as ``Trainer.plot`` does."""
    fig, ax = figure_and_axes(ax)
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        raise ValueError("there is no loss history to plot yet: call fit() first")
    ax.plot(np.arange(1, losses.size + 1), losses, lw=0.6, alpha=0.45, label="loss per step")
    window = max(1, losses.size // 50)
    if window > 1:
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, losses.size + 1), smooth, lw=1.8, label=f"moving average ({window} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return finish_figure(fig, path)


def _model_record(model):
    """The model's class and hyperparameters, as a checkpoint records them (JSON values)."""
    get = getattr(model, "hyperparameters", None)
    hyper = get() if get is not None else {}
    return json.loads(json.dumps({"class": type(model).__name__, **hyper}, default=_json_default))


def _describe_record(record):
    if not isinstance(record, dict):
        return repr(record)
    rest = ", ".join(f"{k}={v!r}" for k, v in record.items() if k != "class")
    return f"{record.get('class', '?')}({rest})"


def _checkpoint_shape(key, params):
    """The shape a checkpoint member must have (None: any, within the loader's bound)."""
    if key in ("meta", "optim/__step__"):
        return ()
    if key.startswith("model/"):
        return params[key[len("model/"):]].data.shape
    return None  # optimizer state (checked by the optimizer) and the loss history


def _generators(model):
    get = getattr(model, "random_generators", None)
    return get() if get is not None else {}


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _progress_bar(total, desc, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # Redraw at most twice a second: when the output is a log file every redraw is a new line.
    return tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=True, mininterval=0.5)


# ----- language models: truncated backpropagation through time -----
def stream_windows(corpus: ArrayLike, batch_size: int, time_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (N, T) ``(xs, ts)`` windows of one pass over ``corpus`` read as ``batch_size`` streams.

    Stream ``n`` reads the ``n``-th of ``batch_size`` equal slices of the corpus; each window
    holds the next ``time_size`` words of every stream (the last window may be shorter) and
    ``ts`` the word after each. Words past the last full slice (fewer than ``batch_size``)
    are left out. Returns a list of pairs of int64 views (no copy of the corpus).
    """
    corpus = np.asarray(corpus)
    if corpus.ndim != 1 or corpus.dtype.kind not in "iu":
        raise ValueError(f"the corpus must be a 1-D array of integer word ids, got {corpus.dtype} of shape {corpus.shape}")
    for name, value in (("batch_size", batch_size), ("time_size", time_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    jump = (corpus.size - 1) // batch_size
    if jump < 1:
        raise ValueError(f"a corpus of {corpus.size} words is too short for {batch_size} streams "
                         f"(it needs at least {batch_size + 1}); lower the batch size")
    xs = corpus[: batch_size * jump].reshape(batch_size, jump)
    ts = corpus[1 : batch_size * jump + 1].reshape(batch_size, jump)
    return [(xs[:, t : t + time_size], ts[:, t : t + time_size]) for t in range(0, jump, time_size)]


def perplexity(model: LSTMLM, corpus: ArrayLike, batch_size: int = 10, time_size: int = 35) -> float:
    """``exp`` of the mean next-word cross-entropy of ``model`` (an ``LSTMLM``) over ``corpus``.

    Reads the corpus as ``batch_size`` streams, ``time_size`` words at a time, carrying the state
    as in training; no graph is recorded and dropout is off. The model starts from a zero state
    and is left with a zero state. Returns a float.
    """
    from tinygrad_nlp.core import no_grad, test_mode

    windows = stream_windows(corpus, batch_size, time_size)
    total, count = 0.0, 0
    model.reset_state()
    try:
        with no_grad(), test_mode():
            for xs, ts in windows:
                total += float(model(xs, ts).data) * ts.size
                count += ts.size
    finally:
        model.reset_state()
    return math.exp(total / count)


LR_SCHEDULES = ("constant", "plateau", "step")


class LMTrainer(Trainer):
    """Train a recurrent language model by truncated backpropagation through time.

    ``LMTrainer(model, optimizer).fit(corpus, max_epoch, batch_size=20, time_size=35)``: every
    epoch reads the corpus as ``batch_size`` parallel streams ([`stream_windows`][stream_windows]), one
    ``(N, T)`` window per step; the model's stateful layers carry the state from window to
    window and cut the graph behind it. Gradient clipping by global norm is the optimizer's
    ``clip_norm``. Learning-rate schedules, applied after each epoch:

    * ``"constant"``;
    * ``"plateau"``: divide the rate by ``decay_factor`` (the book uses 4) when the validation
      perplexity did not improve (needs ``valid_corpus``);
    * ``"step"``: multiply it by ``1 / decay_factor`` after every epoch past ``decay_after``
      (Zaremba et al.: halve after epoch 4).

    The progress bar shows the running perplexity and words/s. ``history["eval"]`` holds one
    record per epoch (train and validation perplexity, the learning rate of the next epoch,
    seconds). With ``checkpoint_dir`` each epoch ends with ``checkpoint.npz``; ``resume=True``
    continues from it exactly (weights, optimizer state, learning rate, dropout generators).
    """

    def __init__(self, model: LSTMLM, optimizer: Optimizer, progress: bool = True) -> None:
        super().__init__(model, optimizer, progress=progress)

    def fit(self, corpus: ArrayLike, max_epoch: int = 1, batch_size: int = 20, time_size: int = 35,
            valid_corpus: ArrayLike | None = None, schedule: str = "constant", decay_factor: float = 4.0,
            decay_after: int = 0, eval_batch_size: int = 10, checkpoint_dir: PathLike | None = None,
            resume: bool = False, callback: Callable[[Trainer, int, int, float], Any] | None = None,
            max_steps: int | None = None) -> LMTrainer:
        """Train for ``max_epoch`` more epochs (with ``resume=True``: until ``max_epoch`` in total).

        ``max_steps`` trains each epoch on its first windows only (a quick look at a big model).
        """
        if schedule not in LR_SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
        if schedule == "plateau" and valid_corpus is None:
            raise ValueError("the 'plateau' schedule needs a validation corpus (valid_corpus)")
        if decay_factor < 1:
            raise ValueError(f"decay_factor must be >= 1, got {decay_factor}")
        if self.optimizer.schedule is not None and schedule != "constant":
            raise ValueError("give the optimizer a number as its lr when using an epoch schedule")
        if max_epoch < 1:
            raise ValueError(f"max_epoch must be >= 1, got {max_epoch}")
        windows = stream_windows(corpus, batch_size, time_size)
        if max_steps is not None:
            if max_steps < 1:
                raise ValueError(f"max_steps must be >= 1, got {max_steps}")
            windows = windows[:max_steps]
        if valid_corpus is not None:
            stream_windows(valid_corpus, eval_batch_size, time_size)  # fail now, not after an epoch
        if resume:
            if checkpoint_dir is None:
                raise ValueError("resume=True needs checkpoint_dir")
            path = os.path.join(checkpoint_dir, CHECKPOINT_NAME)
            if os.path.exists(path):
                self.load_checkpoint(path)
                if self.eval_history and "lr" in self.eval_history[-1]:
                    self.optimizer.base_lr = float(self.eval_history[-1]["lr"])
            last_epoch = max_epoch
        else:
            last_epoch = self.epoch + max_epoch
        self.optimizer.set_total_steps(len(windows) * last_epoch)
        while self.epoch < last_epoch:
            epoch = self.epoch + 1
            t0 = time.perf_counter()
            self.model.reset_state()
            train_loss = self._run_lm_epoch(epoch, last_epoch, windows, callback)
            self.model.reset_state()
            record = {"epoch": epoch, "train_perplexity": math.exp(train_loss)}
            if valid_corpus is not None:
                record["valid_perplexity"] = perplexity(self.model, valid_corpus, eval_batch_size, time_size)
            self._schedule(schedule, decay_factor, decay_after, epoch, record)
            record["lr"] = self.optimizer.base_lr
            record["seconds"] = time.perf_counter() - t0
            self.eval_history.append(record)
            self.epoch = epoch
            if checkpoint_dir is not None:
                self.save_checkpoint(os.path.join(checkpoint_dir, CHECKPOINT_NAME))
        return self

    def _schedule(self, schedule, decay_factor, decay_after, epoch, record):
        opt = self.optimizer
        if schedule == "plateau":
            best = min((r["valid_perplexity"] for r in self.eval_history if "valid_perplexity" in r), default=math.inf)
            if record["valid_perplexity"] >= best:
                opt.base_lr /= decay_factor
        elif schedule == "step" and epoch >= decay_after:
            opt.base_lr /= decay_factor

    def _run_lm_epoch(self, epoch, max_epoch, windows, callback):
        bar = _progress_bar(len(windows), f"epoch {epoch}/{max_epoch}", self.progress)
        total, count, seen = 0.0, 0, 0
        t0 = last_refresh = time.perf_counter()
        try:
            for step, (xs, ts) in enumerate(windows, start=1):
                loss = self.model(xs, ts)
                value = float(loss.data)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"the loss became {value} at epoch {epoch}, step {step}: lower the learning rate or "
                        f"the clipping norm, or enable tinygrad_nlp.detect_anomaly() to find the Function that produced it"
                    )
                self.model.cleargrads()
                loss.backward()
                del loss  # frees this window's graph before the update
                try:
                    self.optimizer.update()
                except FloatingPointError as err:
                    raise FloatingPointError(f"at epoch {epoch}, step {step}: {err}") from None
                self.loss_history.append(value)
                total += value * ts.size
                count += ts.size
                seen += ts.size
                if callback is not None:
                    callback(self, epoch, step, value)
                if bar is not None:
                    bar.update(1)
                    now = time.perf_counter()
                    if now - last_refresh > 0.5 or step == len(windows):
                        bar.set_postfix_str(f"ppl={math.exp(total / count):.2f} words/s={seen / max(now - t0, 1e-9):,.0f}")
                        last_refresh = now
        finally:
            if bar is not None:
                bar.close()
        self.seconds += time.perf_counter() - t0
        self.targets_seen += seen
        mean = total / max(count, 1)
        self.epoch_loss.append(mean)
        return mean

    @property
    def words_per_second(self) -> float:
        """Training throughput: words (predicted positions) per second of training (float)."""
        return self.targets_per_second

    def plot(self, path: PathLike | None = None, ax: Axes | None = None, title: str | None = None) -> Figure:
        """The per-epoch train/validation perplexity curve as a matplotlib Figure.

        As [`Trainer.plot`][Trainer.plot]: drawn on ``ax`` or a new pyplot-free Figure (the global backend
        is never switched) and saved (png, svg, pdf) only when ``path`` is given.
        """
        fig, ax = figure_and_axes(ax)
        if not self.eval_history:
            raise ValueError("there is no perplexity history to plot yet: call fit() first")
        epochs = [r["epoch"] for r in self.eval_history]
        ax.plot(epochs, [r["train_perplexity"] for r in self.eval_history], marker="o", label="train")
        if all("valid_perplexity" in r for r in self.eval_history):
            ax.plot(epochs, [r["valid_perplexity"] for r in self.eval_history], marker="o", label="validation")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("perplexity")
        ax.set_title(title or f"{type(self.model).__name__} perplexity")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        return finish_figure(fig, path)
