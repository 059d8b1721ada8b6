"""word2vec models written forward-only: the loss is a composition of Functions, and backprop
comes from the engine (no model defines ``backward``).

* ``SimpleCBOW`` - seed 000: context embeddings averaged, a dense output layer, softmax
  cross-entropy over the whole vocabulary (for tiny corpora and teaching).
* ``CBOW`` - negative sampling: the averaged context vector scores the target word and K sampled
  negatives with ``EmbeddingDot``; a sigmoid cross-entropy turns the scores into a loss.
* ``SkipGram`` - the reverse: the target word's vector scores each context word and negatives.

Calling a model, ``model(contexts, target)``, returns the scalar loss Variable;
``model.word_vecs`` is the (V, H) input embedding matrix.
"""

from __future__ import annotations

import numpy as np

import tinygrad_nlp.functions as F
from tinygrad_nlp import viz
from tinygrad_nlp.core import no_grad
from tinygrad_nlp.layers import Embedding, Layer, Linear

__all__ = ["Model", "SimpleCBOW", "CBOW", "SkipGram"]


class Model(Layer):
    """A Layer whose forward pass returns a loss; adds graph rendering."""

    def graph(self, *inputs, verbose=True, rankdir="TB", **kwargs):
        """DOT text of the graph one forward pass on ``inputs`` builds."""
        return viz.get_dot_graph(self(*inputs, **kwargs), verbose=verbose, rankdir=rankdir)

    def plot(self, *inputs, to_file="model.svg", verbose=True, rankdir="TB", **kwargs):
        """Run one forward pass on ``inputs`` and render its graph to ``to_file`` (svg/png/pdf/dot)."""
        return viz.plot_dot_graph(self(*inputs, **kwargs), to_file=to_file, verbose=verbose, rankdir=rankdir)

    @property
    def word_vecs(self):
        """The (V, H) input word vectors."""
        return self.in_embed.W.data


def _check_batch(contexts, target, window_size=None):
    contexts = np.asarray(contexts)
    target = np.asarray(target)
    if contexts.ndim != 2:
        raise ValueError(f"contexts must have shape (N, 2*window_size), got {contexts.shape}")
    if window_size is not None and contexts.shape[1] != 2 * window_size:
        raise ValueError(f"contexts have {contexts.shape[1]} columns but window_size={window_size} needs {2 * window_size}")
    if target.shape[:1] != contexts.shape[:1]:
        raise ValueError(f"target has {target.shape[0] if target.ndim else 0} rows but contexts have {contexts.shape[0]}")
    return contexts, target


class SimpleCBOW(Model):
    """Seed 000's simple CBoW: average the context embeddings, score every word, softmax loss.

    Args:
        vocab_size: V. hidden_size: H. window_size: contexts per side (the seed uses 1).
        seed: for the initial weights (0.01 * N(0, 1), float32, as in the book).
    """

    def __init__(self, vocab_size, hidden_size, window_size=1, seed=None, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(seed)
        V, H = vocab_size, hidden_size
        self.window_size = window_size
        self.in_embed = Embedding(V, H, dtype=dtype, W=0.01 * rng.standard_normal((V, H)), name="W_in")
        self.out = Linear(H, V, nobias=True, dtype=dtype, W=0.01 * rng.standard_normal((H, V)))
        self.out.W.name = "W_out"

    def predict(self, contexts):
        """(N, V) scores of every word as the centre of each context row."""
        h = F.mean(self.in_embed(contexts), axis=1)
        h.name = "h"
        score = self.out(h)
        score.name = "score"
        return score

    def forward(self, contexts, target):
        contexts, target = _check_batch(contexts, target, self.window_size)
        loss = F.softmax_cross_entropy(self.predict(contexts), target)
        loss.name = "loss"
        return loss


class _NegativeSamplingModel(Model):
    """Shared setup of CBOW and SkipGram: W_in and W_out (V, H) tables plus a unigram sampler."""

    def __init__(self, vocab_size, hidden_size, window_size, corpus, sample_size=5, power=0.75,
                 sparse=True, seed=None, dtype=np.float32):
        super().__init__()
        from tinygrad_nlp.text import UnigramSampler

        if window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {window_size}")
        V, H = vocab_size, hidden_size
        rng = np.random.default_rng(seed)
        self.vocab_size, self.hidden_size, self.window_size = V, H, window_size
        self.sample_size = sample_size
        # word2vec's initialisation: small uniform input vectors, zero output vectors.
        W_in = (rng.random((V, H), dtype=np.float64) - 0.5) / H
        self.in_embed = Embedding(V, H, sparse=sparse, dtype=dtype, W=W_in, name="W_in")
        self.out_embed = Embedding(V, H, sparse=sparse, dtype=dtype, W=np.zeros((V, H)), name="W_out")
        corpus = np.asarray(corpus).ravel()
        if corpus.size and (corpus.min() < 0 or corpus.max() >= V):
            bad = int(corpus.min()) if corpus.min() < 0 else int(corpus.max())
            raise ValueError(f"corpus holds id {bad} but ids must lie in [0, vocab_size={V})")
        self.sampler = UnigramSampler.from_counts(
            np.bincount(corpus, minlength=V), power=power, sample_size=sample_size,
            seed=None if seed is None else int(rng.integers(2**63)),
        )

    def sample_negatives(self, positives):
        """(N, K) negative ids for the (N,) positive ids (each differs from its row's positive)."""
        return self.sampler.get_negative_sample(np.asarray(positives))

    def prepare_batch(self, contexts, target):
        """The extra inputs of one step (its negatives), drawn ahead by a data pipeline."""
        return {"negatives": self.sample_negatives(self._positives(np.asarray(contexts), np.asarray(target)))}


class CBOW(_NegativeSamplingModel):
    """CBoW with negative sampling: predict the centre word from its averaged context.

    ``model(contexts, target)``: contexts (N, 2*window_size) and target (N,) integer ids;
    returns the mean over the batch of ``-log s(W_out[t] . h) - sum_k log s(-W_out[neg_k] . h)``
    where ``h`` averages the context rows of ``W_in``. ``negatives`` (N, K) may be passed in
    (a data pipeline can draw them ahead); otherwise they are drawn from the unigram^power
    distribution. ``sparse=True`` (default) gives both tables row-sparse gradients.
    """

    @staticmethod
    def _positives(contexts, target):
        return target

    def forward(self, contexts, target, negatives=None):
        contexts, target = _check_batch(contexts, target, self.window_size)
        if negatives is None:
            negatives = self.sample_negatives(target)
        h = self.in_embed.bag(contexts, mode="mean")
        h.name = "h"
        loss = F.negative_sampling_loss(h, self.out_embed.W, target, negatives, sparse=self.out_embed.sparse)
        loss.name = "loss"
        return loss


class SkipGram(_NegativeSamplingModel):
    """Skip-gram with negative sampling: predict each context word from the centre word.

    ``model(contexts, target)`` returns, averaged over the batch, the sum over the
    2*window_size context positions of the negative-sampling loss (the book's SkipGram).
    ``negatives`` may be given with shape (N * 2*window_size, K), one row per (target, context)
    pair in row-major order.
    """

    @staticmethod
    def _positives(contexts, target):
        return contexts.reshape(-1)

    def forward(self, contexts, target, negatives=None):
        contexts, target = _check_batch(contexts, target, self.window_size)
        C = contexts.shape[1]
        positives = contexts.reshape(-1)
        if negatives is None:
            negatives = self.sample_negatives(positives)
        # One gathered row per (target, context) pair: the target's vector repeated C times.
        h = self.in_embed(np.repeat(target, C))
        h.name = "h"
        loss = F.negative_sampling_loss(h, self.out_embed.W, positives, negatives, sparse=self.out_embed.sparse) * float(C)
        loss.name = "loss"
        return loss


def nearest_words(model, id_to_word, query, topn=5):
    """Cosine nearest neighbours of ``query`` in ``model.word_vecs`` (a convenience for demos)."""
    from tinygrad_nlp.vectors import WordVectors

    with no_grad():
        return WordVectors.from_ids(model.word_vecs, id_to_word).most_similar(query, topn=topn)
