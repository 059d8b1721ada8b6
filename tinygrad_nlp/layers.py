"""Layers: containers of Parameters with a forward pass, saved and loaded without pickle.

A ``Layer`` notices every ``Parameter`` or sub-``Layer`` assigned to one of its attributes, so
``params()`` finds all weights of a model without any registration code. Weights are saved as a
plain ``.npz`` archive keyed by dotted attribute paths (``"in_embed.W"``), written atomically
and loaded with ``allow_pickle=False`` after checking names, shapes and dtypes
([`tinygrad_nlp.io.save_npz`][tinygrad_nlp.io.save_npz] and [`load_npz`][tinygrad_nlp.io.load_npz], re-exported here).
"""

from __future__ import annotations


from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

import tinygrad_nlp.functions as F
from tinygrad_nlp import _checks
from tinygrad_nlp.core import Config, Parameter, Variable
from tinygrad_nlp.functions.rnn import CarriedState
from tinygrad_nlp.functions.recurrent_sequence import GRUSequence, LSTMSequence, RNNSequence
from tinygrad_nlp.functions.rnn import GRUCell as GRUCellFn, LSTMCell as LSTMCellFn, RNNCell as RNNCellFn
from tinygrad_nlp.io import PathLike, check_loaded, load_npz, npz_headers, save_npz
from tinygrad_nlp.sparse import Ids

__all__ = ["Layer", "Linear", "Embedding", "RNN", "LSTM", "GRU", "load_npz", "save_npz"]


class Layer:
    """Base class: assign Parameters and Layers as attributes, implement ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_children", [])

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Layer)):
            children = self.__dict__.get("_children")
            if children is None:
                raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
            if name not in children:
                children.append(name)
        super().__setattr__(name, value)

    def __delattr__(self, name):
        super().__delattr__(name)
        if name in self._children:
            self._children.remove(name)

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def named_params(self, prefix: str = "") -> dict[str, Parameter]:
        """``{"sub.W": Parameter, ...}`` for this layer and its sub-layers, in assignment order."""
        out = {}
        for name in self._children:
            value = self.__dict__.get(name)
            if isinstance(value, Parameter):
                out[prefix + name] = value
            elif isinstance(value, Layer):
                out.update(value.named_params(prefix + name + "."))
        return out

    def params(self) -> Iterator[Parameter]:
        """Every Parameter of this layer and its sub-layers (each once)."""
        seen = set()
        for p in self.named_params().values():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def shared_copy(self, _memo: dict[int, Parameter] | None = None) -> Layer:
        """A copy of this layer whose Parameters hold the *same* arrays but gradients of their own.

        Several threads can then train at once against one set of weights, each with its own
        copy (lock-free "Hogwild" training, as word2vec's worker threads do): an update written
        in place by one is seen by all. A Parameter shared inside the layer (tied weights) stays
        shared in the copy. Other attributes are shared as they are (a shallow copy).
        """
        import copy

        memo = {} if _memo is None else _memo
        clone = copy.copy(self)
        object.__setattr__(clone, "_children", list(self._children))
        for name in self._children:
            value = self.__dict__.get(name)
            if isinstance(value, Parameter):
                if id(value) not in memo:
                    twin = Parameter(value.data, name=value.name)
                    memo[id(value)] = twin
                clone.__dict__[name] = memo[id(value)]
            elif isinstance(value, Layer):
                clone.__dict__[name] = value.shared_copy(memo)
        return clone

    def cleargrads(self) -> None:
        """Reset the gradient of every Parameter (call before each backward pass)."""
        for p in self.params():
            p.cleargrad()

    def save_weights(self, path: PathLike) -> None:
        """Write every Parameter to ``path`` as an ``.npz`` archive, atomically."""
        save_npz(path, {k: p.data for k, p in self.named_params().items()})

    def load_weights(self, path: PathLike) -> None:
        """Load Parameters saved by [`save_weights`][save_weights], checking names, shapes and values.

        Raises ``ValueError`` naming the file and listing missing, unexpected or mis-shaped
        arrays - found from the archive's headers, before any array is read, so a hostile file
        cannot make the loader allocate more than the model's own size - or naming an array
        whose values no training run saves (NaN, inf, complex, beyond the parameter dtype's
        range). Nothing is modified unless every array fits.
        """
        params = self.named_params()
        headers = npz_headers(path)
        missing = sorted(set(params) - set(headers))
        extra = sorted(set(headers) - set(params))
        wrong = [
            f"{k}: file {headers[k][0]} {headers[k][1]}, model {p.data.shape} {p.data.dtype}"
            for k, p in params.items()
            if k in headers and (headers[k][0] != p.data.shape or headers[k][1].kind != p.data.dtype.kind)
        ]
        if missing or extra or wrong:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"unexpected {extra}")
            if wrong:
                parts.append("wrong shape/dtype: " + "; ".join(wrong))
            raise ValueError(f"{path}: weights do not match {type(self).__name__}: " + ", ".join(parts))
        arrays = load_npz(path, expect=lambda key: params[key].data.shape)
        for k, p in params.items():
            check_loaded(path, k, arrays[k], p.data.dtype)
        for k, p in params.items():
            p.data = arrays[k].astype(p.data.dtype, copy=False)


class Linear(Layer):
    """``y = x @ W + b`` with ``W`` (in_size, out_size) and optional bias (out_size,)."""

    def __init__(self, in_size: int, out_size: int, nobias: bool = False, dtype: DTypeLike = np.float32,
                 W: ArrayLike | None = None, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        in_size, out_size = _checks.size("Linear", "in_size", in_size), _checks.size("Linear", "out_size", out_size)
        dtype = _checks.float_dtype("Linear", dtype)
        rng = np.random.default_rng(rng)
        if W is None:
            W = rng.standard_normal((in_size, out_size)) * np.sqrt(1.0 / in_size)
        W = np.asarray(W, dtype=dtype)
        if W.shape != (in_size, out_size):
            raise ValueError(f"Linear: W must have shape {(in_size, out_size)}, got {W.shape}")
        self.W = Parameter(W, name="W")
        self.b = None if nobias else Parameter(np.zeros(out_size, dtype=dtype), name="b")

    def forward(self, x: Variable | ArrayLike) -> Variable:
        return F.linear(x, self.W, self.b)


class Embedding(Layer):
    """A (vocab_size, dim) lookup table: ``layer(idx)`` returns ``W[idx]``.

    ``sparse=True`` makes ``W``'s gradient row-sparse (only the looked-up rows), which keeps the
    optimizer's work proportional to the batch. ``scale`` sets the initial N(0, scale^2) weights
    (the book uses 0.01); pass ``W`` to start from given weights.
    """

    def __init__(self, vocab_size: int, dim: int, sparse: bool = False, dtype: DTypeLike = np.float32,
                 scale: float = 0.01, W: ArrayLike | None = None, rng: np.random.Generator | int | None = None,
                 name: str = "W") -> None:
        super().__init__()
        vocab_size, dim = _checks.size("Embedding", "vocab_size", vocab_size), _checks.size("Embedding", "dim", dim)
        dtype = _checks.float_dtype("Embedding", dtype)
        scale = _checks.non_negative("Embedding", "scale", scale)
        sparse = _checks.flag("Embedding", "sparse", sparse)
        if W is None:
            W = np.random.default_rng(rng).standard_normal((vocab_size, dim)) * scale
        W = np.asarray(W, dtype=dtype)
        if W.shape != (vocab_size, dim):
            raise ValueError(f"Embedding: W must have shape {(vocab_size, dim)}, got {W.shape}")
        self.W = Parameter(W, name=name)
        self.sparse = sparse

    def forward(self, idx: Ids | ArrayLike) -> Variable:
        return F.embedding(self.W, idx, sparse=self.sparse)

    def bag(self, idx: Ids | ArrayLike, mode: str = "mean", weights: Variable | ArrayLike | None = None) -> Variable:
        """Average (or sum) the rows named in each row of ``idx`` (N, C) -> (N, H), one node
        (optionally weighted per id, see ``F.embedding_bag``)."""
        return F.embedding_bag(self.W, idx, mode=mode, sparse=self.sparse, weights=weights)

    def dot(self, h: Variable | ArrayLike, idx: Ids | ArrayLike) -> Variable:
        """Scores ``W[idx[n]] . h[n]`` for (N,) or (N, K) ids."""
        return F.embedding_dot(self.W, h, idx, sparse=self.sparse)


# ----- recurrent layers -----
class _CellWeights(Layer):
    """The weights of one recurrent layer: ``W_x`` (D, kH), ``W_h`` (H, kH), bias ``b`` (kH,)
    with k gate blocks (1 for an RNN, 4 for an LSTM, 3 for a GRU, which also has ``b_h``).

    Initialised as in the book (``N(0, 1) / sqrt(fan_in)`` weights, zero biases), or uniformly in
    ``[-init_scale, init_scale]`` (biases included) as Zaremba et al. and PyTorch do.
    """

    blocks = 1
    has_state_c = False

    def __init__(self, input_size: int, hidden_size: int, dtype: DTypeLike = np.float32,
                 rng: np.random.Generator | int | None = None, init_scale: float | None = None) -> None:
        super().__init__()
        rng = np.random.default_rng(rng)
        D, H, k = input_size, hidden_size, self.blocks
        if init_scale is None:
            W_x = rng.standard_normal((D, k * H)) / np.sqrt(D)
            W_h = rng.standard_normal((H, k * H)) / np.sqrt(H)
            b = np.zeros(k * H)
        else:
            W_x, W_h, b = (rng.uniform(-init_scale, init_scale, size=s) for s in ((D, k * H), (H, k * H), (k * H,)))
        self.W_x = Parameter(np.asarray(W_x, dtype=dtype), name="W_x")
        self.W_h = Parameter(np.asarray(W_h, dtype=dtype), name="W_h")
        self.b = Parameter(np.asarray(b, dtype=dtype), name="b")
        if self.blocks == 3:
            b_h = np.zeros(k * H) if init_scale is None else rng.uniform(-init_scale, init_scale, size=k * H)
            self.b_h = Parameter(np.asarray(b_h, dtype=dtype), name="b_h")
        self.input_size, self.hidden_size = D, H

    def project(self, xs: Variable, constant: Variable | None = None) -> Variable:
        """The input projection ``xs W_x + b`` of every step, (T, N, kH), one matrix product.

        ``constant`` (N, C) is an input joined in front of every step's input (the first C rows
        of ``W_x`` read it): its share ``constant W_x[:C] + b`` is the same at every step, so it
        is computed once and broadcast over the T steps instead of being projected T times.
        """
        W_x, bias = self.input_weights(constant)
        if constant is None:
            return F.linear(xs, W_x, bias)
        return F.linear(xs, W_x) + F.reshape(bias, (1,) + bias.shape)

    def input_weights(self, constant: Variable | None = None) -> tuple[Variable, Variable]:
        """``(W_x, bias)`` for the per-step inputs: ``W_x`` and ``b`` themselves, or, beside a
        ``constant`` (N, C), the rows ``W_x[C:]`` that read the steps and the constant's share
        ``constant W_x[:C] + b`` as one bias row per sequence (N, kH)."""
        if constant is None:
            return self.W_x, self.b
        C = constant.shape[1]
        return self.W_x[C:], F.linear(constant, self.W_x[:C], self.b)

    def run(self, xs: Variable, state: Variable | tuple[Variable, Variable] | None, layer: int = 0,
            constant: Variable | None = None) -> tuple[Variable, Variable | tuple[Variable, Variable]]:
        """Run over a time-major (T, N, D) Variable from ``state`` (None: zeros); returns
        ``(ys (T, N, H), last state)``.

        The input projection of all T*N positions is one matrix product (see ``project``). The
        time loop is then one sequence Function (``F.lstm_sequence`` etc.), or, inside
        ``tinygrad_nlp.unrolled()``, one step Function per time step tagged with its
        ``time_step`` and ``layer`` for graph diagrams; both give the same values. (An LSTM
        whose input is narrow leaves the projection to its sequence Function, inside each
        step's product: see ``LSTMCellWeights.sequence``.)
        """
        if state is None:
            zeros = np.zeros((xs.shape[1], self.hidden_size), dtype=self.W_h.dtype)
            state = (Variable(zeros), Variable(zeros)) if self.has_state_c else Variable(zeros)
        if not Config.unrolled:
            hs, state = self.sequence(xs, state, constant)
            self._label(hs.creator)
            return hs, state
        xw = self.project(xs, constant)
        hs = []
        for t, step in enumerate(F.unbind(xw, axis=0)):
            state = self.step(step, state)
            h = state[0] if self.has_state_c else state
            if h.creator is not None:
                h.creator.time_step, h.creator.layer = t, layer
                self._label(h.creator)
            hs.append(h)
        return F.stack(hs, axis=0), state

    def _label(self, node):
        """Name the layer on its nodes when there are several (graph diagrams)."""
        layer_label = getattr(self, "layer_label", "")
        if layer_label and node is not None:
            node.label = f"{type(node).__name__} {layer_label}"


class RNNCellWeights(_CellWeights):
    """One Elman RNN layer's weights; a sequence (``F.rnn_sequence``) or a step (``F.rnn_step``)."""

    blocks = 1

    def sequence(self, xs: Variable, h: Variable, constant: Variable | None = None) -> tuple[Variable, Variable]:
        return RNNSequence()(self.project(xs, constant), h, self.W_h)

    def step(self, xw: Variable, h: Variable) -> Variable:
        return RNNCellFn(projected=True)(xw, h, self.W_h)


class LSTMCellWeights(_CellWeights):
    """One LSTM layer's weights (gate blocks i, f, g, o); a sequence (``F.lstm_sequence``) or a
    step (``F.lstm_step``)."""

    blocks = 4
    has_state_c = True

    # An input at most this fraction of the state's width (an embedding of 16 feeding H = 128 or
    # 256) goes into each step's product instead of being projected first: see LSTMSequence.
    NARROW_INPUT = 1 / 8

    def sequence(self, xs: Variable, state: tuple[Variable, Variable],
                 constant: Variable | None = None) -> tuple[Variable, tuple[Variable, Variable]]:
        (h, c), D = state, xs.shape[2]
        if D > self.NARROW_INPUT * self.hidden_size:
            hs, h, c = LSTMSequence()(self.project(xs, constant), h, c, self.W_h)
            return hs, (h, c)
        W_x, bias = self.input_weights(constant)
        hs, h, c = LSTMSequence(projected=False)(xs, h, c, self.W_h, W_x, bias)
        return hs, (h, c)

    def step(self, xw: Variable, state: tuple[Variable, Variable]) -> tuple[Variable, Variable]:
        h, c = state
        return tuple(LSTMCellFn(projected=True)(xw, h, c, self.W_h))


class GRUCellWeights(_CellWeights):
    """One GRU layer's weights (blocks r, z, n; ``b`` is ``b_x``); a sequence
    (``F.gru_sequence``) or a step (``F.gru_step``)."""

    blocks = 3

    def sequence(self, xs: Variable, h: Variable, constant: Variable | None = None) -> tuple[Variable, Variable]:
        return GRUSequence()(self.project(xs, constant), h, self.W_h, self.b_h)

    def step(self, xw: Variable, h: Variable) -> Variable:
        return GRUCellFn(projected=True)(xw, h, self.W_h, self.b_h)


def _detached(v, name):
    """A leaf sharing ``v``'s values: what a stateful layer carries into the next call, so no
    gradient of the next window reaches this one and this window's graph can be freed."""
    return CarriedState(v.data, name=name)


class _Recurrent(Layer):
    """Shared code of ``RNN``, ``LSTM`` and ``GRU``: stacked layers over (N, T, D) sequences.

    ``layer(xs, state=None)`` takes ``xs`` (N, T, D) (Variable or array) and returns ``ys``
    (N, T, H), the last layer's hidden states. Afterwards ``layer.state`` is a list with one
    entry per layer - ``(h, c)`` for an LSTM, ``h`` for an RNN or GRU, each an (N, H) Variable:

    * with ``stateful=False`` these are the live Variables of the last step, so a decoder started
      from them (``decoder(ys, state=encoder.state)``) backpropagates into the encoder;
    * with ``stateful=True`` they are leaf copies (cut from the graph, ``h`` and ``c`` alike), and
      the next call starts from them: truncated backpropagation through time, where no gradient
      of a window reaches the previous one. ``reset_state()`` starts again from zeros.

    A ``state`` passed in replaces the carried one (a bare ``(h, c)`` or ``h`` is accepted when
    ``num_layers == 1``). ``dropout`` is applied between stacked layers during training.
    """

    weights_class = None

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 stateful: bool = False, dtype: DTypeLike = np.float32, rng: np.random.Generator | int | None = None,
                 init_scale: float | None = None) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout}")
        rng = np.random.default_rng(rng)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.dropout, self.stateful = float(dropout), bool(stateful)
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else self.hidden_size
            cell = self.weights_class(D, self.hidden_size, dtype, rng, init_scale)
            if self.num_layers > 1:  # told apart in graph diagrams
                cell.layer_label = f"layer {layer}"
                for p in cell.params():
                    p.name = f"{p.name} ({cell.layer_label})"
            setattr(self, f"cell{layer}", cell)
        self.rng = np.random.default_rng(rng.integers(2**63))
        self.state = None

    @property
    def cells(self) -> list[_CellWeights]:
        """The per-layer weights, bottom first."""
        return [getattr(self, f"cell{layer}") for layer in range(self.num_layers)]

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from zeros."""
        self.state = None

    def forward(self, xs: Variable | ArrayLike,
                state: Variable | tuple[Variable, Variable] | list[Variable | tuple[Variable, Variable]] | None = None,
                constant: Variable | ArrayLike | None = None) -> Variable:
        """``ys`` (N, T, H) for inputs ``xs`` (N, T, D); see the class docstring.

        ``constant`` (N, C), when given, is joined in front of the input of every step of the
        first layer, which then reads ``[constant, x_t]`` (``input_size`` is C + D): a sequence
        that sees the same vector at every step (a Peeky decoder's encoder state) without it
        being repeated T times or projected T times.
        """
        xs = xs if isinstance(xs, Variable) else Variable(np.asarray(xs))
        name = type(self).__name__
        C = 0
        if constant is not None:
            constant = constant if isinstance(constant, Variable) else Variable(np.asarray(constant))
            if constant.ndim != 2 or constant.shape[0] != xs.shape[0] or not 0 < constant.shape[1] < self.input_size:
                raise ValueError(f"{name}: constant must have shape (N, C) with N = {xs.shape[0]} rows like the input "
                                 f"and 0 < C < input_size = {self.input_size}, got {constant.shape}")
            C = constant.shape[1]
        if xs.ndim != 3 or xs.shape[2] != self.input_size - C:
            joined = f" (input_size {self.input_size} minus the constant's {C})" if C else ""
            raise ValueError(f"{name}: input must have shape (N, T, {self.input_size - C}){joined}, got {xs.shape}")
        if xs.shape[1] == 0:
            raise ValueError(f"{name}: input has no time steps (shape {xs.shape})")
        if state is None and self.stateful:
            state = self.state
        states = self._check_state(state, xs.shape[0])
        new_state = []
        xs = F.transpose(xs, (1, 0, 2))  # time-major inside: a step is one contiguous (N, D) block
        for layer, cell in enumerate(self.cells):
            if layer and self.dropout:
                xs = F.dropout(xs, self.dropout, rng=self.rng)
            xs, last = cell.run(xs, states[layer], layer, constant if layer == 0 else None)
            new_state.append(last)
        if self.stateful:
            new_state = [tuple(_detached(v, n) for v, n in zip(s, ("h", "c"))) if isinstance(s, tuple)
                         else _detached(s, "h") for s in new_state]
        self.state = new_state
        return F.transpose(xs, (1, 0, 2))

    def _check_state(self, state, N):
        """Per-layer list of states (None entries for zeros), shapes checked."""
        name, L, H = type(self).__name__, self.num_layers, self.hidden_size
        lstm = self.weights_class.has_state_c
        if state is None:
            return [None] * L
        bare = isinstance(state, tuple) and len(state) == 2 and not isinstance(state[0], (tuple, list)) if lstm \
            else not isinstance(state, (list, tuple))
        if bare:
            if L != 1:
                raise ValueError(f"{name}: with num_layers={L} the state must be a list of {L} entries, one per layer")
            state = [state]
        state = list(state)
        if len(state) != L:
            raise ValueError(f"{name}: the state has {len(state)} entries but the layer has num_layers={L}")
        out = []
        for layer, s in enumerate(state):
            parts = s if lstm else (s,)
            if lstm and not (isinstance(s, (tuple, list)) and len(s) == 2):
                raise ValueError(f"{name}: the state of layer {layer} must be a pair (h, c)")
            parts = tuple(p if isinstance(p, Variable) else Variable(np.asarray(p, dtype=self.cell0.W_h.dtype))
                          for p in parts)
            for what, p in zip(("h", "c"), parts):
                if p.shape != (N, H):
                    raise ValueError(
                        f"{name}: the state's {what} of layer {layer} has shape {p.shape} but this batch needs "
                        f"{(N, H)}; call reset_state() when the batch size changes"
                    )
            out.append(parts if lstm else parts[0])
        return out


class RNN(_Recurrent):
    """Stacked Elman RNN layers, ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``; see ``_Recurrent``."""

    weights_class = RNNCellWeights


class LSTM(_Recurrent):
    """Stacked LSTM layers (PyTorch's gate order i, f, g, o); state ``(h, c)`` per layer."""

    weights_class = LSTMCellWeights


class GRU(_Recurrent):
    """Stacked GRU layers (PyTorch's formula and block order r, z, n); state ``h`` per layer."""

    weights_class = GRUCellWeights
