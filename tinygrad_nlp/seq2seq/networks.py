"""Encoder-decoder models written forward-only: ``Seq2seq``, ``PeekySeq2seq``, ``AttentionSeq2seq``.

Each reads a question of ids ``xs`` (N, Te) with a recurrent encoder and writes the answer with
a recurrent decoder started from the encoder's final state:

* ``Seq2seq``: the decoder sees only that state (the book's chapter 7 baseline).
* ``PeekySeq2seq``: the encoder's final hidden state ``h`` is also concatenated to the decoder's
  input and to its output at every step, so no step has to remember it.
* ``AttentionSeq2seq``: every decoder state attends over all encoder states
  ([`attention`][tinygrad_nlp.functions.attention]); the context vector joins the decoder state
  before the output layer.

``model(xs, ts)`` is the teacher-forced loss: the decoder reads ``ts[:, :-1]`` (starting with the
start symbol) and is scored on predicting ``ts[:, 1:]``. Decoding without teacher forcing is in
[`tinygrad_nlp.seq2seq.decoding`][tinygrad_nlp.seq2seq.decoding] (``model.generate`` and ``model.beam_search`` call it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_nlp.functions as F
from tinygrad_nlp.core import Variable
from tinygrad_nlp.io import PathLike
from tinygrad_nlp.layers import GRU, LSTM, RNN, Embedding, Layer, Linear
from tinygrad_nlp.models import Model

if TYPE_CHECKING:
    from tinygrad_nlp.viz import DotGraph

__all__ = ["Seq2seq", "PeekySeq2seq", "AttentionSeq2seq", "CELLS", "MODELS"]

#: Recurrent layer classes by the name ``cell=`` takes.
CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def _named(v, name):
    v.name = name
    return v


def _flatten(x):
    if x is None:
        return []
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _flatten(item)]
    return [x]


class Encoder(Layer):
    """Embedding + recurrent layer: ids (N, Te) -> states (N, Te, H) and the final state."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, cell, rng):
        super().__init__()
        self.embed = Embedding(vocab_size, wordvec_size, W=0.01 * rng.standard_normal((vocab_size, wordvec_size)))
        self.rnn = CELLS[cell](wordvec_size, hidden_size, rng=rng)

    def forward(self, xs):
        hs = self.rnn(_named(self.embed(xs), "enc_embed"))
        return _named(hs, "hs_enc"), self.rnn.state[0]


class Decoder(Layer):
    """Embedding + recurrent layer + output layer over the (N, Td) decoder inputs.

    ``extra_in`` and ``extra_out`` widen the recurrent layer's input and the output layer's
    input for the subclasses that concatenate something there (Peeky, attention).
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, cell, rng, extra_in=0, extra_out=0):
        super().__init__()
        V, D, H = vocab_size, wordvec_size, hidden_size
        self.embed = Embedding(V, D, W=0.01 * rng.standard_normal((V, D)))
        self.rnn = CELLS[cell](D + extra_in, H, rng=rng)
        self.affine = Linear(H + extra_out, V, W=rng.standard_normal((H + extra_out, V)) / np.sqrt(H + extra_out))

    def forward(self, ts_in, state, memory):
        """``(scores (N, Td, V), final state, attention weights or None)``."""
        hs = self.rnn(_named(self.embed(ts_in), "dec_embed"), state)
        return _named(self.affine(_named(hs, "hs_dec")), "scores"), self.rnn.state[0], None


class PeekyDecoder(Decoder):
    """The encoder's final ``h`` (``memory``) joins the input and the output of every step.

    The recurrent layer reads ``[h, embed(t)]`` at every step, given as its ``constant`` input:
    the layer projects ``h`` once per sequence rather than once per step (a quarter of a step's
    arithmetic at the book's sizes).
    """

    def __init__(self, vocab_size, wordvec_size, hidden_size, cell, rng):
        super().__init__(vocab_size, wordvec_size, hidden_size, cell, rng, extra_in=hidden_size,
                         extra_out=hidden_size)

    def forward(self, ts_in, state, memory):
        N, T = ts_in.shape
        h = memory
        hs = _named(self.rnn(self.embed(ts_in), state, constant=h), "hs_dec")
        peek = F.broadcast_to(F.reshape(h, (N, 1, h.shape[1])), (N, T, h.shape[1]))
        scores = self.affine(F.concat([peek, hs], axis=2))
        return _named(scores, "scores"), self.rnn.state[0], None


class AttentionDecoder(Decoder):
    """Each decoder state attends over the encoder states (``memory``, (N, Te, H)); the context
    and the state together feed the output layer."""

    def __init__(self, vocab_size, wordvec_size, hidden_size, cell, rng):
        super().__init__(vocab_size, wordvec_size, hidden_size, cell, rng, extra_out=hidden_size)

    def forward(self, ts_in, state, memory):
        hs = _named(self.rnn(self.embed(ts_in), state), "hs_dec")
        state = self.rnn.state[0]
        context, weights = F.attention(memory, hs)
        scores = self.affine(F.concat([_named(context, "context"), hs], axis=2))
        return _named(scores, "scores"), state, _named(weights, "attention")


class Seq2seq(Model):
    """Encoder-decoder over character ids; see the module docstring.

    Args:
        vocab_size: V, the number of symbols (shared by questions and answers).
        wordvec_size: D, the size of the symbol embeddings.
        hidden_size: H, the recurrent state size.
        cell: ``"lstm"`` (default), ``"gru"`` or ``"rnn"``.
        seed: seeds the initial weights (the book's: N(0, 0.01^2) embeddings, N(0, 1/fan_in)
            matrices, zero biases).
        dtype: float32 (default) or float64.
    """

    decoder_class = Decoder

    def __init__(self, vocab_size: int, wordvec_size: int, hidden_size: int, cell: str = "lstm",
                 seed: int | None = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("wordvec_size", wordvec_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        if cell not in CELLS:
            raise ValueError(f"{type(self).__name__}: cell must be one of {', '.join(CELLS)}, got {cell!r}")
        rng = np.random.default_rng(seed)
        self.vocab_size, self.wordvec_size, self.hidden_size, self.cell = int(vocab_size), int(wordvec_size), \
            int(hidden_size), cell
        self.encoder = Encoder(vocab_size, wordvec_size, hidden_size, cell, rng)
        self.decoder = self.decoder_class(vocab_size, wordvec_size, hidden_size, cell, rng)
        if np.dtype(dtype) != np.float32:
            for p in self.params():
                p.data = p.data.astype(dtype)

    # ----- the pieces decoding uses -----
    def encode(self, xs: ArrayLike) -> tuple[Variable | tuple[Variable, Variable], Variable | None]:
        """``(state, memory)``: the decoder's initial state and what it reads at every step
        (None here, ``h`` for Peeky, the encoder states for attention)."""
        hs, state = self.encoder(xs)
        return state, self._memory(hs, state)

    def _memory(self, hs, state):
        return None

    def decode(self, ts_in: ArrayLike, state: Variable | tuple[Variable, Variable],
               memory: Variable | None) -> tuple[Variable, Variable | tuple[Variable, Variable], Variable | None]:
        """``(scores (N, Td, V), final state, attention weights (N, Td, Te) or None)``."""
        return self.decoder(ts_in, state, memory)

    # ----- training -----
    def forward(self, xs: ArrayLike, ts: ArrayLike) -> Variable:
        """Mean cross-entropy of predicting ``ts[:, 1:]`` from ``ts[:, :-1]`` and ``xs``."""
        xs, ts = self.check_ids(xs), self.check_ids(ts, "answers")
        if xs.ndim != 2 or ts.ndim != 2 or xs.shape[0] != ts.shape[0] or ts.shape[1] < 2:
            raise ValueError(f"{type(self).__name__}: questions (N, Te) and answers (N, Ta >= 2) need matching rows, "
                             f"got shapes {xs.shape} and {ts.shape}")
        state, memory = self.encode(xs)
        scores, _, _ = self.decode(ts[:, :-1], state, memory)
        return _named(F.softmax_cross_entropy(scores, ts[:, 1:]), "loss")

    def check_ids(self, ids: Variable | ArrayLike, what: str = "questions") -> np.ndarray:
        """``ids`` as an integer array with every id in ``[0, vocab_size)``; ValueError otherwise."""
        ids = np.asarray(ids.data if isinstance(ids, Variable) else ids)
        if ids.dtype.kind not in "iu":
            raise ValueError(f"{type(self).__name__}: {what} must be integer ids, got dtype {ids.dtype}")
        F.check_ids(ids, self.vocab_size, what=what[:-1] + " id")
        return ids

    # ----- decoding -----
    def generate(self, xs: ArrayLike, start_id: int, length: int) -> np.ndarray:
        """Greedy decoding: the (N, length) ids of the most likely symbol at each step, each fed
        back as the next input. A 1-D question gives a 1-D answer."""
        from tinygrad_nlp.seq2seq.decoding import greedy

        return greedy(self, xs, start_id, length)

    def beam_search(self, xs: ArrayLike, start_id: int, length: int, beam: int = 5) -> np.ndarray:
        """Beam search: per question, the ``length`` ids of highest total log-probability found
        keeping the ``beam`` best partial answers at each step. (N, length) ids."""
        from tinygrad_nlp.seq2seq.decoding import beam_search

        return beam_search(self, xs, start_id, length, beam)

    def graph(self, xs: ArrayLike, ts: ArrayLike, verbose: bool = True, rankdir: str = "TB") -> DotGraph:
        """DOT text of the graph of one forward pass, the encoder and the decoder drawn as
        labelled clusters (the loss outside them). Use a batch of a row or two."""
        from tinygrad_nlp.viz import get_dot_graph

        xs, ts = self.check_ids(xs), self.check_ids(ts, "answers")
        state, memory = self.encode(xs)
        scores, _, _ = self.decode(ts[:, :-1], state, memory)
        loss = _named(F.softmax_cross_entropy(scores, ts[:, 1:]), "loss")
        encoder = [v for v in _flatten((state, memory))]
        return get_dot_graph(loss, verbose=verbose, rankdir=rankdir,
                             clusters=[("encoder", encoder), (f"decoder ({type(self.decoder).__name__})", [scores])])

    def plot(self, xs: ArrayLike, ts: ArrayLike, to_file: PathLike = "model.svg", verbose: bool = True,
             rankdir: str = "TB") -> DotGraph:
        """Render [`graph`][graph] to ``to_file`` (svg/png/pdf/dot)."""
        from tinygrad_nlp.viz import render_dot

        return render_dot(self.graph(xs, ts, verbose=verbose, rankdir=rankdir), to_file)


class PeekySeq2seq(Seq2seq):
    """Seq2seq whose decoder reads the encoder's final ``h`` at every step (input and output)."""

    decoder_class = PeekyDecoder

    def _memory(self, hs, state):
        return state[0] if isinstance(state, tuple) else state


class AttentionSeq2seq(Seq2seq):
    """Seq2seq whose decoder attends over every encoder state at every step."""

    decoder_class = AttentionDecoder

    def _memory(self, hs, state):
        return hs


#: Model classes by the name the command line uses.
MODELS = {"plain": Seq2seq, "peeky": PeekySeq2seq, "attention": AttentionSeq2seq}
