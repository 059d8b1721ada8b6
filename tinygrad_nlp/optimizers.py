"""Optimizers that update Parameters from their gradients, dense or row-sparse.

DeZero style: ``opt = Adam(lr=0.001).setup(model)``, then ``opt.update()`` after each backward
pass. A row-sparse gradient ([`SparseRows`][tinygrad_nlp.sparse.SparseRows], from an embedding with
``sparse=True``) updates only the rows it touches, so a step costs O(batch x H) whatever the
vocabulary size. For the stateful optimizers this is the *lazy* variant: the state (velocity,
squared-gradient sums, Adam's moments) of a row changes only when that row gets a gradient;
rows not in the batch are left exactly as they were (they are not decayed towards zero). This
is what PyTorch's ``SparseAdam`` and word2vec implementations do, and it is what makes sparse
training fast.

An optimizer is a small class: ``init_state`` (its per-parameter arrays) and one element-wise
``rule`` written once, which the base class applies to dense arrays and to row-sparse rows, in
numpy or compiled by the backend (``tinygrad_nlp.backend``), checked all or nothing.

Every optimizer accepts ``lr`` as a number or a schedule (a callable ``step -> lr``, e.g.
[`LinearDecay`][LinearDecay]), ``clip_norm`` (rescale all gradients together when their global L2 norm
exceeds it) and ``weight_decay`` (L2 penalty ``weight_decay * param`` added to the gradient; for
sparse gradients only on the touched rows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np

from tinygrad_nlp import _checks, _threads, backend
from tinygrad_nlp.backend.numpy_backend import all_finite as _all_finite
from tinygrad_nlp.core import Parameter, Variable
from tinygrad_nlp.sparse import SparseRows

#: What an update rule computes on: whole arrays (numpy backend) or single elements (compiled).
Values = np.ndarray | np.floating
#: An update rule's hyperparameters, ``hyper(lr)``'s tuple.
Hyper = Sequence[np.floating]


class HasParams(Protocol):
    """What an optimizer can be set up with besides a list of Parameters: a Layer or Model."""

    def params(self) -> Iterable[Parameter]: ...


__all__ = ["Optimizer", "SGD", "MomentumSGD", "AdaGrad", "RMSprop", "Adam", "AdamW", "LinearDecay", "clip_grad_norm"]


class LinearDecay:
    """Learning rate falling linearly from ``start`` to ``end`` over ``total_steps`` (word2vec's
    schedule). ``total_steps=None`` lets ``Trainer.fit`` fill in the run's length."""

    def __init__(self, start: float, end: float | None = None, total_steps: int | None = None) -> None:
        start = _checks.positive("LinearDecay", "start", start)
        self.start = start
        self.end = start * 1e-4 if end is None else _checks.non_negative("LinearDecay", "end", end)
        self.total_steps = None if total_steps is None else _checks.size("LinearDecay", "total_steps", total_steps)

    def __call__(self, step):
        if not self.total_steps:
            return self.start
        frac = min(max(step / self.total_steps, 0.0), 1.0)
        return self.start + (self.end - self.start) * frac

    def __repr__(self):
        return f"LinearDecay(start={self.start}, end={self.end}, total_steps={self.total_steps})"


# Below this many gradient elements in a step, updating in one thread is faster than two. Rows
# of a sparse gradient sit scattered over a table and each one waits on memory, which a second
# thread overlaps; dense updates stream through memory at a rate one core nearly reaches alone,
# so they are split only when very large (Adam on 2 threads, against 1: 0.59 M elements, a
# seq2seq model, 1.36 against 0.93 ms; 2.1 M, 2.19 against 2.07; 16.4 M, 22.0 against 23.1).
PARALLEL_MIN_ELEMENTS = 200_000
PARALLEL_MIN_DENSE_ELEMENTS = 8_000_000


def _grad_size(g):
    if isinstance(g, SparseRows):
        return g.stored_size()
    return g.data.size


def _grad_parts(params):
    for p in params:
        g = p.grad
        if g is not None:
            yield p, g


def clip_grad_norm(params: Iterable[Variable], max_norm: float | None) -> float:
    """Scale all gradients by ``max_norm / norm`` when their global L2 norm exceeds ``max_norm``.

    Works on dense and row-sparse gradients alike (gradients are replaced, never modified in
    place, because the engine may share one gradient array between Variables). Returns the norm
    before clipping.
    """
    params = list(params)
    total = 0.0
    for _, g in _grad_parts(params):
        if isinstance(g, SparseRows):
            total += g.sq_norm()
        else:
            d = g.data
            total += float(np.vdot(d.ravel(), d.ravel()))
    norm = math.sqrt(total)
    if max_norm is not None and norm > max_norm:
        scale = max_norm / (norm + 1e-12)
        for p, g in _grad_parts(params):
            if isinstance(g, SparseRows):
                p.grad = SparseRows(g.rows, g.values * np.asarray(scale, g.values.dtype), g.shape, coalesced=True)
            else:
                p.grad = Variable(g.data * np.asarray(scale, g.data.dtype))
    return norm


class Optimizer:
    """Base class: ``setup(model_or_params)``, then ``update()`` after each backward pass.

    A subclass defines its state and one update rule, nothing else:

    * ``init_state(param)``: a dict of arrays shaped like ``param.data`` (e.g. Adam's ``m``, ``v``).
    * ``hyper(lr)``: the rule's scalars for this step, as a tuple of numbers.
    * ``rule(w, g, *state, h)``, a static method: the new weight, followed by the new state
      values in ``init_state``'s order (just the weight when there is no state). ``h`` holds
      ``hyper(lr)`` in the parameter's dtype. It is written with arithmetic and ``np.sqrt``
      only, so the same function runs on numpy arrays of gathered rows and, compiled, on single
      elements: the backend applies it to a dense parameter or to the rows a row-sparse
      gradient touched (lazily: other rows and their state are left as they were).

    ``weight_decay`` (L2) is added to the gradient before the rule sees it. No weight ever
    becomes NaN or inf. A step whose gradients are not all finite changes nothing at all: every
    gradient is checked before any parameter is written, and ``update`` raises
    ``FloatingPointError`` naming the first such parameter, with the step counter unchanged. A
    step whose gradients are finite but whose result would overflow for some parameter leaves
    that parameter's weights and state as they were and raises ``FloatingPointError`` naming it;
    the parameters updated before it in that step keep their update (undoing them would need a
    copy of every touched row on every step), and the step counter does not advance.
    """

    def __init__(self, lr: float | Callable[[int], float], clip_norm: float | None = None,
                 weight_decay: float = 0.0) -> None:
        owner = type(self).__name__
        self.schedule = lr if callable(lr) else None
        self.base_lr = None if callable(lr) else _checks.positive(owner, "lr", lr)
        self.clip_norm = _checks.optional_positive(owner, "clip_norm", clip_norm)
        self.weight_decay = _checks.non_negative(owner, "weight_decay", weight_decay)
        self.target = None
        self.step = 0
        self.state = {}

    # ----- what a subclass defines -----
    def init_state(self, param: Parameter) -> dict[str, np.ndarray]:
        """Per-parameter state (dict of ndarrays shaped like ``param.data``), created at its first update."""
        return {}

    def hyper(self, lr: float) -> tuple[float, ...]:
        """The rule's scalars for the step about to be taken at learning rate ``lr`` (tuple)."""
        return (lr,)

    @staticmethod
    def rule(w: Values, g: Values, *state_and_h: Values | Hyper) -> Values | tuple[Values, ...]:
        """``(new w, new state...)`` from weights ``w``, gradient ``g``, state and scalars ``h``."""
        raise NotImplementedError("an Optimizer subclass defines rule(w, g, *state, h)")

    # ----- the rest is shared -----
    @property
    def lr(self) -> float:
        """The learning rate for the next update."""
        return self.schedule(self.step) if self.schedule is not None else self.base_lr

    def setup(self, target: HasParams | Iterable[Parameter]) -> Optimizer:
        """Attach to a Layer/Model (its ``params()``) or an iterable of Parameters; returns self."""
        self.target = target
        return self

    def params(self) -> list[Parameter]:
        """The Parameters being optimized (list), from the ``setup`` target; RuntimeError before ``setup``."""
        if self.target is None:
            raise RuntimeError(f"{type(self).__name__}.setup(model) must be called before update()")
        if hasattr(self.target, "params"):
            return list(self.target.params())
        return list(self.target)

    def set_total_steps(self, total_steps: int) -> None:
        """Tell a schedule without a fixed length how many steps the run has."""
        if self.schedule is not None and getattr(self.schedule, "total_steps", 0) is None:
            self.schedule.total_steps = total_steps

    def update(self) -> None:
        """Apply one step to every Parameter that has a gradient.

        Raises ``FloatingPointError`` naming the parameter when a gradient or the step's result
        is NaN or infinite: a non-finite gradient changes no parameter, state or step counter; an
        overflowing result changes neither that parameter nor the step counter (see the class
        docstring for the parameters updated before it).
        """
        if type(self).rule is Optimizer.rule:
            raise TypeError(f"{type(self).__name__} defines no rule(w, g, *state, h): see the Optimizer docstring")
        params = [p for p in self.params() if p.grad is not None]
        for p in params:  # all or nothing: every gradient is checked before anything is written
            g = p.grad
            if not _all_finite(g.values if isinstance(g, SparseRows) else g.data):
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of parameter {self._name_of(p)} holds NaN or inf; "
                    "no parameter was updated"
                )
        if self.clip_norm is not None:
            clip_grad_norm(params, self.clip_norm)
        lr = self.lr
        scalars = (*self.hyper(lr), self.weight_decay)
        for p in params:
            if id(p) not in self.state:
                self.state[id(p)] = self.init_state(p)
        # Parameters are independent: their updates (numpy and the compiled loops release the
        # GIL) share the cores, when there is enough work to pay for handing it to another thread.
        sparse = sum(_grad_size(p.grad) for p in params if isinstance(p.grad, SparseRows))
        dense = sum(_grad_size(p.grad) for p in params if not isinstance(p.grad, SparseRows))
        parallel = sparse + dense >= PARALLEL_MIN_ELEMENTS and (sparse > 0 or dense >= PARALLEL_MIN_DENSE_ELEMENTS)
        run = _threads.run_parallel if parallel else (lambda tasks: [t() for t in tasks])
        outcomes = run([lambda p=p: self._update_one(p, scalars) for p in params])
        if all(outcome is None for outcome in outcomes):
            self.step += 1
        for p, outcome in zip(params, outcomes):
            if outcome == "gradient":
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of parameter {self._name_of(p)} holds NaN or inf; "
                    "no update was applied"
                )
            if outcome == "step":
                raise FloatingPointError(
                    f"{type(self).__name__}: this step would make parameter {self._name_of(p)} (or its optimizer "
                    f"state) NaN or inf at lr={lr:g}; it was left unchanged - lower the learning rate"
                )

    def _name_of(self, p):
        name = _param_names(self.target).get(id(p)) if self.target is not None else None
        return repr(name or p.name or f"of shape {p.data.shape}")

    def _update_one(self, p, scalars):
        """Update one parameter, all or nothing: None when written, else what was not finite
        ("gradient" or "step")."""
        g = p.grad
        if isinstance(g, SparseRows):
            rows, grad = g.rows, g.values
        else:
            rows, grad = None, g.data
        if grad.dtype != p.data.dtype:
            grad = grad.astype(p.data.dtype)
        hyper = np.array(scalars, dtype=p.data.dtype)
        if backend.ops.update_rows(type(self).rule, p.data, list(self.state[id(p)].values()), rows, grad, hyper):
            return None
        return "step" if _all_finite(grad) else "gradient"

    # ----- state for checkpoints -----
    def state_dict(self) -> dict[str, np.ndarray]:
        """Optimizer state as a flat dict of ndarrays keyed by parameter name (for checkpoints)."""
        names = _param_names(self.target)
        out = {"__step__": np.array(self.step, dtype=np.int64)}
        for p in self.params():
            st = self.state.get(id(p))
            if st is None:
                continue
            for key, value in st.items():
                out[f"{names[id(p)]}/{key}"] = np.asarray(value)
        return out

    def load_state_dict(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what [`state_dict`][state_dict] returned (after ``setup`` with the same model).

        Only what a run could have saved is accepted: a non-negative integer ``__step__``, and
        for each parameter either no state (it never had a gradient) or every array of its
        state, shaped like the parameter, finite and real (NaN, inf, complex values, or values
        beyond the parameter dtype's range are refused). A refusal raises ``ValueError`` naming
        the key and changes nothing.
        """
        names = _param_names(self.target)
        by_name = {names[id(p)]: p for p in self.params()}
        if "__step__" not in arrays:
            raise ValueError("optimizer state has no '__step__' entry")
        step = np.asarray(arrays["__step__"])
        if step.shape != () or step.dtype.kind not in "iu" or int(step) < 0:
            raise ValueError(f"optimizer state '__step__' must be a non-negative integer, got {step!r}")
        fields = {}
        for key, value in arrays.items():
            if key == "__step__":
                continue
            pname, _, field = key.rpartition("/")
            if pname not in by_name:
                raise ValueError(f"optimizer state names unknown parameter {pname!r}")
            fields.setdefault(pname, {})[field] = np.asarray(value)
        state = {}
        for pname, given in fields.items():
            p = by_name[pname]
            st = self.init_state(p)
            unknown = sorted(set(given) - set(st))
            if unknown:
                raise ValueError(f"optimizer state {pname + '/' + unknown[0]!r}: {type(self).__name__} keeps no "
                                 f"{unknown[0]!r}")
            missing = [f for f in st if f not in given]
            if missing:
                raise ValueError(f"optimizer state {pname + '/' + missing[0]!r} is missing (the state of {pname!r} "
                                 f"needs {sorted(st)})")
            for field, value in given.items():
                key = f"{pname}/{field}"
                if value.shape != np.shape(st[field]):
                    raise ValueError(f"optimizer state {key!r} has shape {value.shape}, expected {np.shape(st[field])}")
                _check_state_values(key, value, st[field].dtype)
                st[field] = np.array(value, dtype=st[field].dtype)
            state[id(p)] = st
        self.step = int(step)
        self.state = state  # replaced only once everything fitted


def _check_state_values(key, value, dtype):
    if value.dtype.kind != "f":
        raise ValueError(f"optimizer state {key!r} holds {value.dtype} values; expected real floating point")
    if not _all_finite(value):
        raise ValueError(f"optimizer state {key!r} holds NaN or infinite values")
    if value.size and value.dtype.itemsize > np.dtype(dtype).itemsize:
        if float(np.abs(value).max()) > float(np.finfo(dtype).max):
            raise ValueError(f"optimizer state {key!r} holds values beyond the range of {np.dtype(dtype).name}")


def _param_names(target):
    if hasattr(target, "named_params"):
        return {id(p): k for k, p in target.named_params().items()}
    return {id(p): f"param{i}" for i, p in enumerate(target)}


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``param -= lr * grad``."""

    def __init__(self, lr: float | Callable[[int], float] = 0.01, clip_norm: float | None = None,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, clip_norm, weight_decay)

    @staticmethod
    def rule(w: Values, g: Values, h: Hyper) -> Values:
        return w - h[0] * g


class MomentumSGD(Optimizer):
    """SGD with momentum: ``v = momentum * v - lr * grad; param += v`` (lazy for sparse rows)."""

    def __init__(self, lr: float | Callable[[int], float] = 0.01, momentum: float = 0.9,
                 clip_norm: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(lr, clip_norm, weight_decay)
        self.momentum = _checks.fraction(type(self).__name__, "momentum", momentum)

    def init_state(self, param: Parameter) -> dict[str, np.ndarray]:
        return {"v": np.zeros_like(param.data)}

    def hyper(self, lr: float) -> tuple[float, ...]:
        return lr, self.momentum

    @staticmethod
    def rule(w: Values, g: Values, v: Values, h: Hyper) -> tuple[Values, Values]:
        v = v * h[1] - h[0] * g
        return w + v, v


class AdaGrad(Optimizer):
    """AdaGrad: per-element learning rates ``lr / (sqrt(sum grad^2) + eps)``."""

    def __init__(self, lr: float | Callable[[int], float] = 0.01, eps: float = 1e-8,
                 clip_norm: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(lr, clip_norm, weight_decay)
        self.eps = _checks.positive(type(self).__name__, "eps", eps)

    def init_state(self, param: Parameter) -> dict[str, np.ndarray]:
        return {"h": np.zeros_like(param.data)}

    def hyper(self, lr: float) -> tuple[float, ...]:
        return lr, self.eps

    @staticmethod
    def rule(w: Values, g: Values, s: Values, h: Hyper) -> tuple[Values, Values]:
        s = s + g * g
        return w - h[0] * g / (np.sqrt(s) + h[1]), s


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton): ``v = alpha * v + (1 - alpha) * grad^2``,
    ``param -= lr * grad / (sqrt(v) + eps)``; lazy on row-sparse gradients."""

    def __init__(self, lr: float | Callable[[int], float] = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 clip_norm: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(lr, clip_norm, weight_decay)
        owner = type(self).__name__
        self.alpha, self.eps = _checks.fraction(owner, "alpha", alpha), _checks.positive(owner, "eps", eps)

    def init_state(self, param: Parameter) -> dict[str, np.ndarray]:
        return {"v": np.zeros_like(param.data)}

    def hyper(self, lr: float) -> tuple[float, ...]:
        return lr, self.alpha, 1.0 - self.alpha, self.eps

    @staticmethod
    def rule(w: Values, g: Values, v: Values, h: Hyper) -> tuple[Values, Values]:
        v = v * h[1] + (g * g) * h[2]
        return w - h[0] * g / (np.sqrt(v) + h[3]), v


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; lazy on row-sparse gradients.

    With a sparse gradient only the touched rows' moments ``m``, ``v`` are updated (and their
    weights moved); untouched rows keep their moments unchanged rather than decaying them, as
    PyTorch's ``SparseAdam`` does. The bias correction uses the global step count and is folded
    into the step size, ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` (the paper's efficient form).
    """

    def __init__(self, lr: float | Callable[[int], float] = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, clip_norm: float | None = None, weight_decay: float = 0.0) -> None:
        super().__init__(lr, clip_norm, weight_decay)
        owner = type(self).__name__
        self.beta1, self.beta2 = _checks.fraction(owner, "beta1", beta1), _checks.fraction(owner, "beta2", beta2)
        self.eps = _checks.positive(owner, "eps", eps)

    def init_state(self, param: Parameter) -> dict[str, np.ndarray]:
        return {"m": np.zeros_like(param.data), "v": np.zeros_like(param.data)}

    def hyper(self, lr: float) -> tuple[float, ...]:
        t = self.step + 1  # the update about to be taken
        step_size = lr * math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        return self.beta1, self.beta2, 1.0 - self.beta1, 1.0 - self.beta2, self.eps, step_size

    @staticmethod
    def rule(w: Values, g: Values, m: Values, v: Values, h: Hyper) -> tuple[Values, Values, Values]:
        m = m * h[0] + g * h[2]
        v = v * h[1] + (g * g) * h[3]
        return w - (m / (np.sqrt(v) + h[4])) * h[5], m, v


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): each step first shrinks the
    weights by ``lr * weight_decay``, outside the moments; lazy on row-sparse gradients (only
    the touched rows shrink)."""

    def __init__(self, lr: float | Callable[[int], float] = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01, clip_norm: float | None = None) -> None:
        super().__init__(lr, beta1, beta2, eps, clip_norm)
        self.decoupled_decay = _checks.non_negative("AdamW", "weight_decay", weight_decay)

    def hyper(self, lr: float) -> tuple[float, ...]:
        return (*super().hyper(lr), 1.0 - lr * self.decoupled_decay)

    @staticmethod
    def rule(w: Values, g: Values, m: Values, v: Values, h: Hyper) -> tuple[Values, Values, Values]:
        m = m * h[0] + g * h[2]
        v = v * h[1] + (g * g) * h[3]
        return w * h[6] - (m / (np.sqrt(v) + h[4])) * h[5], m, v
