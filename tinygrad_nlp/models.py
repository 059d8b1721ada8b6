"""word2vec models written forward-only: the loss is a composition of Functions, and backprop
comes from the engine (no model defines ``backward``).

* ``SimpleCBOW`` - the book's simple CBoW: context embeddings averaged, a dense output layer, softmax
  cross-entropy over the whole vocabulary (for tiny corpora and teaching).
* ``CBOW`` - negative sampling: the averaged context vector scores the target word and K sampled
  negatives with ``EmbeddingDot``; a sigmoid cross-entropy turns the scores into a loss.
* ``SkipGram`` - the reverse: the target word's vector scores each context word and negatives.
* ``LSTMLM`` - a recurrent language model (LSTM, GRU or RNN): embed each word, run the stacked
  recurrent layers, score the next word over the vocabulary.

Calling a model, ``model(contexts, target)``, returns the scalar loss Variable;
``model.word_vecs`` is the (V, H) input embedding matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_nlp.functions as F
from tinygrad_nlp import _checks, viz
from tinygrad_nlp.core import Parameter, Variable, no_grad, test_mode
from tinygrad_nlp.io import PathLike
from tinygrad_nlp.layers import GRU, LSTM, RNN, Embedding, Layer, Linear
from tinygrad_nlp.sparse import Ids

__all__ = ["Model", "SimpleCBOW", "CBOW", "SkipGram", "LSTMLM", "nearest_words", "Seq2seq", "PeekySeq2seq",
           "AttentionSeq2seq"]


class Model(Layer):
    """A Layer whose forward pass returns a loss; adds graph rendering."""

    def graph(self, *inputs: Any, verbose: bool = True, rankdir: str = "TB", **kwargs: Any) -> viz.DotGraph:
        """The graph one forward pass on ``inputs`` builds, as a [`DotGraph`][tinygrad_nlp.viz.DotGraph].

        It is the DOT text; Jupyter draws it inline and ``.save(path)`` writes svg/png/pdf/dot.
        """
        return viz.get_dot_graph(self(*inputs, **kwargs), verbose=verbose, rankdir=rankdir)

    def plot(self, *inputs: Any, to_file: PathLike | None = None, verbose: bool = True, rankdir: str = "TB",
             **kwargs: Any) -> viz.DotGraph:
        """Like [`graph`][graph], and also saves the drawing to ``to_file`` (svg/png/pdf/dot) if given."""
        return viz.plot_dot_graph(self(*inputs, **kwargs), to_file=to_file, verbose=verbose, rankdir=rankdir)

    @property
    def word_vecs(self) -> np.ndarray:
        """The (V, H) input word vectors."""
        return self.in_embed.W.data

    def random_generators(self) -> dict[str, np.random.Generator]:
        """The model's random generators by name (their states go into training checkpoints)."""
        return {}

    def worker_copy(self, seed: int | np.random.SeedSequence) -> Model:
        """A copy for another training thread: a [`shared_copy`][tinygrad_nlp.layers.Layer.shared_copy]
        (the same weight arrays, gradients of its own) whose random generators are its own,
        seeded from ``seed``, so that what it draws depends only on ``seed`` and its batches.
        A model without random generators has nothing more to copy."""
        return self.shared_copy()

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that define the model beyond its weights' shapes (dict of JSON values).

        Training checkpoints record them, so a checkpoint resumes only into the same model."""
        return {}


def _check_window(window_size):
    if isinstance(window_size, bool) or not isinstance(window_size, (int, np.integer)):
        raise ValueError(f"window_size must be an integer, got {window_size!r}")
    if window_size < 1:
        raise ValueError(f"window_size must be >= 1, got {window_size}")
    return int(window_size)


def _check_batch(contexts, target, window_size, vocab_size, target_ids=True):
    """Validate a (contexts, target) batch: shapes, and ids in [0, vocab_size) named if not
    (``target_ids=False`` leaves the targets to the loss, which checks labels itself).

    Returns the contexts as an [`Ids`][Ids] marked as checked (the embedding functions then skip
    their own range check; an ``Ids`` passed in is checked at most once) and the target array.
    """
    context_ids = contexts if isinstance(contexts, Ids) else Ids(contexts)
    contexts = context_ids.array
    target = np.asarray(target)
    if contexts.ndim != 2:
        raise ValueError(f"contexts must have shape (N, 2*window_size), got {contexts.shape}")
    if contexts.shape[1] != 2 * window_size:
        raise ValueError(f"contexts have {contexts.shape[1]} columns but window_size={window_size} needs {2 * window_size}")
    if target.shape[:1] != contexts.shape[:1]:
        raise ValueError(f"target has {target.shape[0] if target.ndim else 0} rows but contexts have {contexts.shape[0]}")
    F.check_ids(context_ids, vocab_size, what="context id")
    if target_ids:
        F.check_ids(target, vocab_size, what="target id")
    return context_ids, target


class SimpleCBOW(Model):
    """The book's simple CBoW: average the context embeddings, score every word, softmax loss.

    Args:
        vocab_size: V. hidden_size: H. window_size: contexts per side (the book uses 1).
        seed: for the initial weights (0.01 * N(0, 1), float32, as in the book).
    """

    def __init__(self, vocab_size: int, hidden_size: int, window_size: int = 1, seed: int | None = None,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        V = _checks.size("SimpleCBOW", "vocab_size", vocab_size)
        H = _checks.size("SimpleCBOW", "hidden_size", hidden_size)
        dtype = _checks.float_dtype("SimpleCBOW", dtype)
        rng = np.random.default_rng(seed)
        self.vocab_size, self.hidden_size, self.window_size = V, H, _check_window(window_size)
        self.in_embed = Embedding(V, H, dtype=dtype, W=0.01 * rng.standard_normal((V, H)), name="W_in")
        self.out = Linear(H, V, nobias=True, dtype=dtype, W=0.01 * rng.standard_normal((H, V)))
        self.out.W.name = "W_out"

    def hyperparameters(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "hidden_size": self.hidden_size, "window_size": self.window_size}

    def predict(self, contexts: ArrayLike) -> Variable:
        """(N, V) scores of every word as the centre of each context row."""
        h = F.mean(self.in_embed(contexts), axis=1)
        h.name = "h"
        score = self.out(h)
        score.name = "score"
        return score

    def forward(self, contexts: ArrayLike, target: ArrayLike) -> Variable:
        contexts, target = _check_batch(contexts, target, self.window_size, self.vocab_size, target_ids=False)
        loss = F.softmax_cross_entropy(self.predict(contexts), target)
        loss.name = "loss"
        return loss


class _NegativeSamplingModel(Model):
    """Shared setup of CBOW and SkipGram: W_in and W_out (V, H) tables plus a unigram sampler.

    The sampler counts the words of ``corpus``; ``counts`` ((V,) word counts, e.g. a
    [`Vocabulary`][tinygrad_nlp.text.Vocabulary]'s) may be given instead, with ``corpus=None``, so that
    a corpus too large for memory is not read again.
    """

    def __init__(self, vocab_size: int, hidden_size: int, window_size: int, corpus: ArrayLike | None,
                 sample_size: int = 5, power: float = 0.75, sparse: bool = True, seed: int | None = None,
                 dtype: DTypeLike = np.float32, dynamic_window: bool = False,
                 counts: ArrayLike | None = None) -> None:
        super().__init__()
        from tinygrad_nlp.text import UnigramSampler
        from tinygrad_nlp.text.contexts import check_corpus

        owner = type(self).__name__
        window_size = _check_window(window_size)
        V, H = _checks.size(owner, "vocab_size", vocab_size), _checks.size(owner, "hidden_size", hidden_size)
        sample_size = _checks.size(owner, "sample_size", sample_size)
        power = _checks.non_negative(owner, "power", power)
        dtype = _checks.float_dtype(owner, dtype)
        dynamic_window = _checks.flag(owner, "dynamic_window", dynamic_window)
        rng = np.random.default_rng(seed)
        self.vocab_size, self.hidden_size, self.window_size = V, H, window_size
        self.sample_size, self.power = sample_size, power
        # word2vec's initialisation: small uniform input vectors, zero output vectors. Built in
        # place in the final dtype: no float64 (V, H) temporary even for a huge vocabulary.
        W_in = rng.random((V, H), dtype=np.float64 if np.dtype(dtype) == np.float64 else np.float32)
        W_in -= 0.5
        W_in /= H
        self.in_embed = Embedding(V, H, sparse=sparse, dtype=dtype, W=W_in, name="W_in")
        self.out_embed = Embedding(V, H, sparse=sparse, dtype=dtype, W=np.zeros((V, H), dtype), name="W_out")
        if counts is None:
            corpus = check_corpus(corpus)
            if corpus.size == 0:
                raise ValueError("corpus is empty: the negative sampler needs word counts")
            if corpus.max() >= V:
                raise ValueError(f"corpus holds id {int(corpus.max())} but ids must lie in [0, vocab_size={V})")
            counts = np.bincount(corpus, minlength=V)
        else:
            counts = np.asarray(counts)
            if counts.shape != (V,):
                raise ValueError(f"counts must have one entry per word id, shape ({V},), got {counts.shape}")
        self.sampler = UnigramSampler.from_counts(
            counts, power=power, sample_size=sample_size,
            seed=None if seed is None else int(rng.integers(2**63)),
        )
        self.dynamic_window = dynamic_window
        self.rng = np.random.default_rng(None if seed is None else int(rng.integers(2**63)))

    def random_generators(self) -> dict[str, np.random.Generator]:
        return {"sampler": self.sampler.rng, "window": self.rng}

    def worker_copy(self, seed: int | np.random.SeedSequence) -> _NegativeSamplingModel:
        twin = self.shared_copy()
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        sampler_seed, window_seed = sequence.spawn(2)
        twin.sampler = self.sampler.with_seed(sampler_seed)
        twin.rng = np.random.default_rng(window_seed)
        return twin

    def hyperparameters(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "hidden_size": self.hidden_size, "window_size": self.window_size,
                "sample_size": self.sample_size, "power": self.power, "dynamic_window": self.dynamic_window}

    def window_weights(self, n: int) -> np.ndarray:
        """(n, 2*window_size) 0/1 weights of word2vec's shrunk window: each row keeps the
        contexts within a distance drawn uniformly from 1..window_size (near words count more
        often). Columns follow ``create_contexts_target``: offsets -W..-1, then 1..W."""
        W = self.window_size
        reach = self.rng.integers(1, W + 1, size=(n, 1))
        distance = np.concatenate([np.arange(W, 0, -1), np.arange(1, W + 1)])
        return (distance[None, :] <= reach).astype(self.in_embed.W.dtype)

    def sample_negatives(self, positives: ArrayLike) -> np.ndarray:
        """(N, K) negative ids for the (N,) positive ids (each differs from its row's positive)."""
        return self.sampler.get_negative_sample(np.asarray(positives))

    # ----- the data pipeline: what a step needs besides the weights, made ahead -----
    def prepare(self, contexts: Ids | ArrayLike, target: ArrayLike, negatives: ArrayLike | None = None,
                weights: ArrayLike | None = None) -> SamplingBatch:
        """A [`SamplingBatch`][SamplingBatch] of ``(contexts, target)``: ids checked (a bad one is named
        as a context or target id), negatives drawn and window weights drawn unless given, and
        the ids the backward pass sums by sorted, once. The Trainer calls this in its prefetch
        thread, so that work overlaps the previous step."""
        context_ids, target = _check_batch(contexts, target, self.window_size, self.vocab_size)
        contexts = context_ids.array
        if negatives is None:
            negatives = self.sample_negatives(self._positives(contexts, target))
        if weights is None and self.dynamic_window:
            weights = self.window_weights(len(target))
        if weights is not None:
            weights = np.asarray(weights)
            if weights.shape != contexts.shape:
                raise ValueError(f"weights of shape {weights.shape} must match contexts of shape {contexts.shape}")
        batch = self._batch(context_ids, target, np.asarray(negatives), weights)
        if self.in_embed.sparse or self.out_embed.sparse:
            for ids in batch.ids():
                ids.unique_inverse()  # the sort the sparse backward needs, done here
        return batch

    def prepare_batch(self, contexts: Ids | ArrayLike, target: ArrayLike) -> dict[str, SamplingBatch]:
        """``{"batch": self.prepare(contexts, target)}``: the keyword the Trainer passes to
        ``model(contexts, target, batch=...)`` for a batch prepared in its prefetch thread."""
        return {"batch": self.prepare(contexts, target)}

    def __call__(self, contexts, target, negatives=None, weights=None, batch=None):
        """The loss of a batch: ``model(contexts, target)``, optionally with given ``negatives``
        and window ``weights``, or with the ``batch`` a data pipeline prepared from them."""
        if batch is None:
            batch = self.prepare(contexts, target, negatives, weights)
        elif not batch.holds(contexts, target):
            raise ValueError("batch must be the one prepared from these contexts and targets")
        return self.forward(batch)


class SamplingBatch:
    """One step of a negative-sampling model, prepared: ids as checked (and sorted)
    [`Ids`][tinygrad_nlp.sparse.Ids], the negatives, and what the model scores.

    ``contexts`` (N, 2w) Ids and ``target`` (N,) are the batch; ``negatives`` (rows, K);
    ``weights`` (N, 2w) or None. ``inputs`` are the ids whose rows of ``W_in`` are gathered
    (CBOW: the contexts; SkipGram: each kept pair's centre word), ``positives`` the ids scored as
    positives and ``scored`` the Ids ``[positives | negatives]``; ``scale`` turns the loss
    averaged over scored rows into the model's (1 for CBOW)."""

    __slots__ = ("contexts", "target", "negatives", "weights", "inputs", "positives", "scored", "scale")

    def __init__(self, contexts: Ids, target: np.ndarray, negatives: np.ndarray, weights: np.ndarray | None,
                 inputs: Ids, positives: np.ndarray, scored: Ids, scale: float = 1.0) -> None:
        self.contexts, self.target, self.negatives, self.weights = contexts, target, negatives, weights
        self.inputs, self.positives, self.scored, self.scale = inputs, positives, scored, scale

    def ids(self) -> tuple[Ids, Ids]:
        """The Ids whose gradient rows are summed by id in the backward pass."""
        return (self.inputs, self.scored)

    def holds(self, contexts: ArrayLike, target: ArrayLike) -> bool:
        """True when this batch was prepared from ``contexts`` and ``target``."""
        mine = self.contexts.array
        return ((mine is contexts or np.array_equal(mine, contexts))
                and (self.target is target or np.array_equal(self.target, target)))

    def __repr__(self):
        return f"SamplingBatch(rows={len(self.target)}, scored={self.scored.shape})"


class CBOW(_NegativeSamplingModel):
    """CBoW with negative sampling: predict the centre word from its averaged context.

    ``model(contexts, target)``: contexts (N, 2*window_size) and target (N,) integer ids;
    returns the mean over the batch of ``-log s(W_out[t] . h) - sum_k log s(-W_out[neg_k] . h)``
    where ``h`` averages the context rows of ``W_in``. ``negatives`` (N, K) may be passed in
    (a data pipeline can draw them ahead); otherwise they are drawn from the unigram^power
    distribution. ``sparse=True`` (default) gives both tables row-sparse gradients.

    ``dynamic_window=True`` averages, per row, only the contexts within a random distance
    1..window_size, as word2vec does (``weights`` (N, 2*window_size) may be passed in); on PTB it
    raises analogy accuracy from about 4.6 % to 5.5 %.
    """

    def forward(self, batch: SamplingBatch) -> Variable:
        """The loss of a prepared [`SamplingBatch`][SamplingBatch]: average the context rows, then score
        the target against the negatives."""
        h = self.in_embed.bag(batch.inputs, mode="mean", weights=batch.weights)
        h.name = "h"
        loss = F.negative_sampling_loss(h, self.out_embed.W, batch.positives, batch.negatives,
                                        sparse=self.out_embed.sparse, scored=batch.scored)
        loss.name = "loss"
        return loss

    @staticmethod
    def _positives(contexts, target):
        return target

    def _batch(self, context_ids, target, negatives, weights):
        scored = _scored(target, negatives, self.vocab_size)
        return SamplingBatch(context_ids, target, negatives, weights, context_ids, target, scored)


class SkipGram(_NegativeSamplingModel):
    """Skip-gram with negative sampling: predict each context word from the centre word.

    ``model(contexts, target)`` returns, averaged over the batch, the sum over the
    2*window_size context positions of the negative-sampling loss (the book's SkipGram).
    ``negatives`` may be given with shape (N * 2*window_size, K), one row per (target, context)
    pair in row-major order. ``dynamic_window=True`` leaves out, per row, the pairs beyond a
    random distance 1..window_size, as word2vec does (``weights`` (N, 2*window_size): pairs with
    weight 0 are left out).
    """

    def forward(self, batch: SamplingBatch) -> Variable:
        """The loss of a prepared [`SamplingBatch`][SamplingBatch]: each kept pair's centre vector scores
        its context word against the negatives; summed over context positions, as the book does."""
        h = self.in_embed(batch.inputs)
        h.name = "h"
        loss = F.negative_sampling_loss(h, self.out_embed.W, batch.positives, batch.negatives,
                                        sparse=self.out_embed.sparse, scored=batch.scored)
        loss = loss * batch.scale  # the loss averages over pairs; the book sums over positions
        loss.name = "loss"
        return loss

    @staticmethod
    def _positives(contexts, target):
        return contexts.reshape(-1)

    def _batch(self, context_ids, target, negatives, weights):
        contexts = context_ids.array
        positives, centres = contexts.reshape(-1), np.repeat(target, contexts.shape[1])
        if negatives.ndim != 2 or negatives.shape[0] != positives.size:
            raise ValueError(f"negatives must have shape ({positives.size}, K): one row per (target, context) pair, "
                             f"got {negatives.shape}")
        if weights is not None:  # pairs with weight 0 are left out
            keep = weights.reshape(-1) > 0
            positives, negatives, centres = positives[keep], negatives[keep], centres[keep]
        centre_ids = Ids(centres)
        centre_ids.checked_rows = self.vocab_size  # copies of checked target ids
        scored = _scored(positives, negatives, self.vocab_size)
        scale = float(positives.size / max(len(target), 1))
        return SamplingBatch(context_ids, target, negatives, weights, centre_ids, positives, scored, scale)


def _scored(positives, negatives, num_rows):
    """``[positives | negatives]`` as checked Ids (the positives are checked already; a bad
    negative is named as one)."""
    if negatives.ndim != 2 or negatives.shape[0] != positives.shape[0]:
        raise ValueError(f"negatives must have shape ({positives.shape[0]}, K), got {negatives.shape}")
    F.check_ids(negatives, num_rows, what="negative id")
    scored = Ids(np.concatenate([positives[:, None], negatives], axis=1))
    scored.checked_rows = num_rows
    return scored


def nearest_words(model: Model, id_to_word: Mapping[int, str] | Sequence[str], query: str,
                  topn: int = 5) -> list[tuple[str, float]]:
    """Cosine nearest neighbours of ``query`` in ``model.word_vecs`` (a convenience for demos)."""
    from tinygrad_nlp.vectors import WordVectors

    with no_grad():
        return WordVectors.from_ids(model.word_vecs, id_to_word).most_similar(query, topn=topn)


RECURRENT_CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class LSTMLM(Model):
    """A recurrent language model: ``embed -> [dropout] -> stacked LSTM/GRU/RNN -> [dropout] -> affine``.

    ``model(xs, ts)``: ``xs`` and ``ts`` are (N, T) integer ids (``ts`` the next word of each
    position); returns the mean softmax cross-entropy over the N*T positions. The recurrent layers
    are stateful: consecutive calls continue each of the N streams (truncated backpropagation
    through time, the graph cut between calls); ``reset_state()`` starts again.

    Args:
        vocab_size: V. wordvec_size: D, the embedding size. hidden_size: H.
        num_layers: stacked recurrent layers. cell: "lstm", "gru" or "rnn".
        dropout: applied to the embeddings, between the recurrent layers and before the output
            layer during training (Zaremba et al.'s placement, the book's ``BetterRnnlm``).
        tie_weights: score with the embedding matrix itself (``h @ W_embed.T + b``; needs D == H).
        init_scale: None for the book's initialisation (embeddings ``0.01 * N(0, 1)``, weights
            ``N(0, 1) / sqrt(fan_in)``), or a number ``s`` for ``U(-s, s)`` everywhere (Zaremba et al.
            use 0.1 for their small model, 0.05 for the medium one).
        seed: seeds the weights and the dropout masks.
    """

    def __init__(self, vocab_size: int, wordvec_size: int = 100, hidden_size: int = 100, num_layers: int = 1,
                 dropout: float = 0.0, tie_weights: bool = False, cell: str = "lstm", init_scale: float | None = None,
                 seed: int | None = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        if cell not in RECURRENT_CELLS:
            raise ValueError(f"LSTMLM: cell must be one of {', '.join(RECURRENT_CELLS)}, got {cell!r}")
        for name, value in (("vocab_size", vocab_size), ("wordvec_size", wordvec_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"LSTMLM: {name} must be a positive integer, got {value!r}")
        if tie_weights and wordvec_size != hidden_size:
            raise ValueError(f"LSTMLM: tie_weights needs wordvec_size == hidden_size, got {wordvec_size} and {hidden_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LSTMLM: dropout must be in [0, 1), got {dropout}")
        rng = np.random.default_rng(seed)
        V, D, H = int(vocab_size), int(wordvec_size), int(hidden_size)
        self.vocab_size, self.wordvec_size, self.hidden_size = V, D, H
        self.num_layers, self.dropout, self.tie_weights, self.cell = int(num_layers), float(dropout), bool(tie_weights), cell

        def uniform(shape):
            return rng.uniform(-init_scale, init_scale, size=shape)

        W_embed = 0.01 * rng.standard_normal((V, D)) if init_scale is None else uniform((V, D))
        self.embed = Embedding(V, D, sparse=True, dtype=dtype, W=W_embed)
        self.rnn = RECURRENT_CELLS[cell](D, H, num_layers=num_layers, dropout=dropout, stateful=True,
                                         dtype=dtype, rng=rng, init_scale=init_scale)
        if tie_weights:
            self.out_b = Parameter(np.zeros(V, dtype=dtype), name="b")
        else:
            W_out = rng.standard_normal((H, V)) / np.sqrt(H) if init_scale is None else uniform((H, V))
            self.out = Linear(H, V, dtype=dtype, W=W_out)
            if init_scale is not None:
                self.out.b.data[...] = uniform(V)
        self.rng = np.random.default_rng(rng.integers(2**63))

    def random_generators(self) -> dict[str, np.random.Generator]:
        return {"dropout": self.rng, "rnn_dropout": self.rnn.rng}

    def reset_state(self) -> None:
        """Start every stream again from a zero state."""
        self.rnn.reset_state()

    def _drop(self, x):
        return F.dropout(x, self.dropout, rng=self.rng) if self.dropout else x

    def scores(self, xs: ArrayLike) -> Variable:
        """(N, T, V) next-word scores for (N, T) ids, continuing the carried state."""
        ids = np.asarray(xs)
        if ids.ndim != 2:
            raise ValueError(f"LSTMLM: word ids must have shape (N, T), got {ids.shape}")
        F.check_ids(ids, self.vocab_size, what="word id")
        x = self._drop(self.embed(ids))
        h = self._drop(self.rnn(x))
        h.name = "h"
        if self.tie_weights:
            score = F.linear(h, F.transpose(self.embed.W), self.out_b)
        else:
            score = self.out(h)
        score.name = "score"
        return score

    def forward(self, xs: ArrayLike, ts: ArrayLike) -> Variable:
        ts = np.asarray(ts)
        if ts.shape != np.shape(xs):
            raise ValueError(f"LSTMLM: targets of shape {ts.shape} must match the inputs' shape {np.shape(xs)}")
        F.check_ids(ts, self.vocab_size, what="target id")
        loss = F.softmax_cross_entropy(self.scores(xs), ts)
        loss.name = "loss"
        return loss

    def generate(self, start_ids: ArrayLike, length: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None) -> np.ndarray:
        """Sample ``length`` word ids following ``start_ids`` (a list of ids, at least one).

        Each next word is drawn from ``softmax(scores / temperature)``, restricted to the
        ``top_k`` best-scored words when given; ``temperature=0`` picks the best word (greedy).
        Runs without recording a graph, in test mode, from a zero state; the training state
        carried by the model is left as it was. Returns an int64 array of ``length`` ids.
        """
        start = np.asarray(start_ids, dtype=np.int64).ravel()
        if start.size == 0:
            raise ValueError("generate: start_ids must hold at least one word id")
        F.check_ids(start, self.vocab_size, what="start id")
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"generate: length must be a non-negative integer, got {length!r}")
        if temperature < 0:
            raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(f"generate: top_k must be in 1..{self.vocab_size}, got {top_k}")
        rng = np.random.default_rng(seed)
        saved = self.rnn.state
        out = np.empty(length, dtype=np.int64)
        try:
            self.rnn.reset_state()
            with no_grad(), test_mode():
                score = self.scores(start[None, :]).data[0, -1]
                for i in range(length):
                    out[i] = _sample(score.astype(np.float64), temperature, top_k, rng)
                    score = self.scores(out[None, i : i + 1]).data[0, -1]
        finally:
            self.rnn.state = saved
        return out


def _sample(score, temperature, top_k, rng):
    """One id drawn from ``softmax(score / temperature)`` over the ``top_k`` best scores."""
    if temperature == 0:
        return int(np.argmax(score))
    if top_k is not None and top_k < score.size:
        cut = np.partition(score, -top_k)[-top_k]
        score = np.where(score >= cut, score, -np.inf)
    z = score / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return int(rng.choice(score.size, p=p))


_SEQ2SEQ = ("Seq2seq", "PeekySeq2seq", "AttentionSeq2seq")


def __getattr__(name):
    # The encoder-decoder models live in tinygrad_nlp.seq2seq (which builds on Model above);
    # they are reachable here too, imported on first use so that neither module imports the
    # other while it is still loading.
    if name in _SEQ2SEQ:
        from tinygrad_nlp.seq2seq import networks

        return getattr(networks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
