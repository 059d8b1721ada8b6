"""Optimizers that update Parameters from their gradients, dense or row-sparse.

DeZero style: ``opt = Adam(lr=0.001).setup(model)``, then ``opt.update()`` after each backward
pass. A row-sparse gradient (:class:`~tinygrad_nlp.sparse.SparseRows`, from an embedding with
``sparse=True``) updates only the rows it touches, so a step costs O(batch x H) whatever the
vocabulary size. For the stateful optimizers this is the *lazy* variant: the state (velocity,
squared-gradient sums, Adam's moments) of a row changes only when that row gets a gradient;
rows not in the batch are left exactly as they were (they are not decayed towards zero). This
is what PyTorch's ``SparseAdam`` and word2vec implementations do, and it is what makes sparse
training fast.

Every optimizer accepts ``lr`` as a number or a schedule (a callable ``step -> lr``, e.g.
:class:`LinearDecay`), ``clip_norm`` (rescale all gradients together when their global L2 norm
exceeds it) and ``weight_decay`` (L2 penalty ``weight_decay * param`` added to the gradient; for
sparse gradients only on the touched rows).
"""

from __future__ import annotations

import math

import numpy as np

from tinygrad_nlp import _threads
from tinygrad_nlp.core import Variable
from tinygrad_nlp.sparse import SparseRows

__all__ = ["Optimizer", "SGD", "MomentumSGD", "AdaGrad", "Adam", "LinearDecay", "clip_grad_norm"]


class LinearDecay:
    """Learning rate falling linearly from ``start`` to ``end`` over ``total_steps`` (word2vec's
    schedule). ``total_steps=None`` lets ``Trainer.fit`` fill in the run's length."""

    def __init__(self, start, end=None, total_steps=None):
        if start <= 0:
            raise ValueError(f"LinearDecay: start must be positive, got {start}")
        self.start = float(start)
        self.end = float(start * 1e-4 if end is None else end)
        self.total_steps = total_steps

    def __call__(self, step):
        if not self.total_steps:
            return self.start
        frac = min(max(step / self.total_steps, 0.0), 1.0)
        return self.start + (self.end - self.start) * frac

    def __repr__(self):
        return f"LinearDecay(start={self.start}, end={self.end}, total_steps={self.total_steps})"


# Below this many gradient elements in a step, updating in one thread is faster than two.
PARALLEL_MIN_ELEMENTS = 200_000


def _grad_size(g):
    if isinstance(g, SparseRows):
        return g.stored_size()
    return g.data.size


def _grad_parts(params):
    for p in params:
        g = p.grad
        if g is not None:
            yield p, g


def clip_grad_norm(params, max_norm):
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

    Subclasses implement ``update_dense(state, data, grad, lr)`` and
    ``update_sparse(state, data, rows, grad_rows, lr)`` on ndarrays; they update ``data`` in
    place and must not modify the gradient arrays (the engine may share them).
    """

    def __init__(self, lr, clip_norm=None, weight_decay=0.0):
        if not callable(lr) and lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        if weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {weight_decay}")
        self.schedule = lr if callable(lr) else None
        self.base_lr = None if callable(lr) else float(lr)
        self.clip_norm = clip_norm
        self.weight_decay = weight_decay
        self.target = None
        self.step = 0
        self.state = {}

    @property
    def lr(self):
        """The learning rate for the next update."""
        return self.schedule(self.step) if self.schedule is not None else self.base_lr

    def setup(self, target):
        """Attach to a Layer/Model (its ``params()``) or an iterable of Parameters; returns self."""
        self.target = target
        return self

    def params(self):
        """The Parameters being optimized (list), from the ``setup`` target; RuntimeError before ``setup``."""
        if self.target is None:
            raise RuntimeError(f"{type(self).__name__}.setup(model) must be called before update()")
        if hasattr(self.target, "params"):
            return list(self.target.params())
        return list(self.target)

    def set_total_steps(self, total_steps):
        """Tell a schedule without a fixed length how many steps the run has."""
        if self.schedule is not None and getattr(self.schedule, "total_steps", 0) is None:
            self.schedule.total_steps = total_steps

    def update(self):
        """Apply one step to every Parameter that has a gradient."""
        params = [p for p in self.params() if p.grad is not None]
        if self.clip_norm is not None:
            clip_grad_norm(params, self.clip_norm)
        lr = self.lr
        self.step += 1
        for p in params:
            if id(p) not in self.state:
                self.state[id(p)] = self.init_state(p)
        # Parameters are independent: their updates (numpy releases the GIL) share the cores,
        # when there is enough work to pay for handing it to another thread.
        if sum(_grad_size(p.grad) for p in params) >= PARALLEL_MIN_ELEMENTS:
            _threads.run_parallel([lambda p=p: self._update_one(p, lr) for p in params])
        else:
            for p in params:
                self._update_one(p, lr)

    def _update_one(self, p, lr):
        state = self.state[id(p)]
        g = p.grad
        if isinstance(g, SparseRows):
            rows, values = g.rows, g.values
            if values.dtype != p.data.dtype:
                values = values.astype(p.data.dtype)
            if self.weight_decay:
                values = values + self.weight_decay * p.data[rows]
            self.update_sparse(state, p.data, rows, values, lr)
        else:
            grad = g.data
            if grad.dtype != p.data.dtype:
                grad = grad.astype(p.data.dtype)
            if self.weight_decay:
                grad = grad + self.weight_decay * p.data
            self.update_dense(state, p.data, grad, lr)

    def init_state(self, param):
        """Per-parameter state (dict of ndarrays shaped like ``param.data``), created at its first update."""
        return {}

    def update_dense(self, state, data, grad, lr):
        """Update ``data`` (V, H) in place from a dense ``grad`` of the same shape and dtype (subclass hook)."""
        raise NotImplementedError

    def update_sparse(self, state, data, rows, grad, lr):
        """Update rows ``rows`` (int64, (R,)) of ``data`` in place from ``grad`` (R, H) (subclass hook)."""
        raise NotImplementedError

    # ----- state for checkpoints -----
    def state_dict(self):
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

    def load_state_dict(self, arrays):
        """Restore what :meth:`state_dict` returned (after ``setup`` with the same model)."""
        names = _param_names(self.target)
        by_name = {names[id(p)]: p for p in self.params()}
        if "__step__" not in arrays:
            raise ValueError("optimizer state has no '__step__' entry")
        state = {}
        for key, value in arrays.items():
            if key == "__step__":
                continue
            pname, _, field = key.rpartition("/")
            if pname not in by_name:
                raise ValueError(f"optimizer state names unknown parameter {pname!r}")
            p = by_name[pname]
            st = state.setdefault(id(p), self.init_state(p))
            if field not in st:
                raise ValueError(f"optimizer state {key!r}: {type(self).__name__} keeps no {field!r}")
            if np.shape(st[field]) != np.shape(value):
                raise ValueError(f"optimizer state {key!r} has shape {np.shape(value)}, expected {np.shape(st[field])}")
            st[field] = np.array(value, dtype=st[field].dtype)
        self.step = int(arrays["__step__"])
        self.state = state  # replaced only once everything fitted


def _param_names(target):
    if hasattr(target, "named_params"):
        return {id(p): k for k, p in target.named_params().items()}
    return {id(p): f"param{i}" for i, p in enumerate(target)}


class SGD(Optimizer):
    """Plain stochastic gradient descent: ``param -= lr * grad``."""

    def __init__(self, lr=0.01, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)

    def update_dense(self, state, data, grad, lr):
        data -= data.dtype.type(lr) * grad

    def update_sparse(self, state, data, rows, grad, lr):
        data[rows] -= data.dtype.type(lr) * grad


class MomentumSGD(Optimizer):
    """SGD with momentum: ``v = momentum * v - lr * grad; param += v`` (lazy for sparse rows)."""

    def __init__(self, lr=0.01, momentum=0.9, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)
        self.momentum = momentum

    def init_state(self, param):
        return {"v": np.zeros_like(param.data)}

    def update_dense(self, state, data, grad, lr):
        v = state["v"]
        v *= self.momentum
        v -= data.dtype.type(lr) * grad
        data += v

    def update_sparse(self, state, data, rows, grad, lr):
        v = state["v"][rows] * self.momentum - data.dtype.type(lr) * grad
        state["v"][rows] = v
        data[rows] += v


class AdaGrad(Optimizer):
    """AdaGrad: per-element learning rates ``lr / (sqrt(sum grad^2) + eps)``."""

    def __init__(self, lr=0.01, eps=1e-8, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)
        self.eps = eps

    def init_state(self, param):
        return {"h": np.zeros_like(param.data)}

    def update_dense(self, state, data, grad, lr):
        h = state["h"]
        h += grad * grad
        data -= data.dtype.type(lr) * grad / (np.sqrt(h) + self.eps)

    def update_sparse(self, state, data, rows, grad, lr):
        h = state["h"][rows] + grad * grad
        state["h"][rows] = h
        data[rows] -= data.dtype.type(lr) * grad / (np.sqrt(h) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction; lazy on row-sparse gradients.

    With a sparse gradient only the touched rows' moments ``m``, ``v`` are updated (and their
    weights moved); untouched rows keep their moments unchanged rather than decaying them, as
    PyTorch's ``SparseAdam`` does. The bias correction uses the global step count.
    """

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def init_state(self, param):
        return {"m": np.zeros_like(param.data), "v": np.zeros_like(param.data)}

    def _step_size(self, lr):
        t = self.step  # already incremented for this update
        return lr * math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)

    def update_dense(self, state, data, grad, lr):
        m, v = state["m"], state["v"]
        b1, b2 = data.dtype.type(self.beta1), data.dtype.type(self.beta2)
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * (grad * grad)
        data -= data.dtype.type(self._step_size(lr)) * m / (np.sqrt(v) + data.dtype.type(self.eps))

    def update_sparse(self, state, data, rows, grad, lr):
        dt = data.dtype.type
        b1, b2 = dt(self.beta1), dt(self.beta2)
        tmp = np.multiply(grad, 1 - b1)
        m = state["m"][rows]
        m *= b1
        m += tmp
        state["m"][rows] = m
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - b2
        v = state["v"][rows]
        v *= b2
        v += tmp
        state["v"][rows] = v
        np.sqrt(v, out=v)
        v += dt(self.eps)
        np.divide(m, v, out=m)
        m *= dt(self._step_size(lr))
        w = data[rows]
        w -= m
        data[rows] = w
