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

from tinygrad_nlp import _threads, kernels
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


def _all_finite(a):
    """True when every element of ``a`` is finite: its min and max are (numpy's min and max
    propagate NaN), two fast reductions instead of a scan that builds a mask."""
    if not a.size:
        return True
    return bool(np.isfinite(a.min()) and np.isfinite(a.max()))


def _commit(writes):
    for array, rows, new in writes:
        if rows is None:
            array[...] = new
        else:
            array[rows] = new


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
    ``update_sparse(state, data, rows, grad_rows, lr)`` on ndarrays. They do not write: they
    return the writes of the step as ``(array, rows, new_values)`` triples (``rows`` None for
    the whole array), and must not modify the gradient arrays (the engine may share them).
    A parameter's writes are committed only if its new weights and state are all finite, so no
    weight ever becomes NaN or inf: a parameter whose gradient or update is not finite keeps its
    weights and state, and ``update`` raises ``FloatingPointError`` naming it (the other
    parameters of that step are updated). Row-sparse steps of the built-in optimizers run as
    compiled kernels (``fused_sparse``, see :mod:`tinygrad_nlp.kernels`) with the same guarantee.
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
        """Apply one step to every Parameter that has a gradient.

        Raises ``FloatingPointError`` naming the parameter, and changes nothing, when a gradient
        or the step's result is NaN or infinite.
        """
        params = [p for p in self.params() if p.grad is not None]
        if self.clip_norm is not None:
            clip_grad_norm(params, self.clip_norm)
        lr = self.lr
        for p in params:
            if id(p) not in self.state:
                self.state[id(p)] = self.init_state(p)
        # Parameters are independent: their updates (numpy releases the GIL) share the cores,
        # when there is enough work to pay for handing it to another thread.
        parallel = sum(_grad_size(p.grad) for p in params) >= PARALLEL_MIN_ELEMENTS
        run = _threads.run_parallel if parallel else (lambda tasks: [t() for t in tasks])
        plans = run([lambda p=p: self._update_one(p, lr) for p in params])
        self.step += 1
        for p, (writes, finite) in zip(params, plans):
            if writes is None:
                raise FloatingPointError(
                    f"{type(self).__name__}: the gradient of parameter {self._name_of(p)} holds NaN or inf; "
                    "no update was applied"
                )
            if not finite:
                raise FloatingPointError(
                    f"{type(self).__name__}: this step would make parameter {self._name_of(p)} (or its optimizer "
                    f"state) NaN or inf at lr={lr:g}; it was left unchanged - lower the learning rate"
                )

    def _name_of(self, p):
        name = _param_names(self.target).get(id(p)) if self.target is not None else None
        return repr(name or p.name or f"of shape {p.data.shape}")

    def _update_one(self, p, lr):
        """Plan one parameter's writes and commit them if the new weights and state are finite.

        Returns ``(writes, finite)``; ``(None, False)`` when the gradient itself is not finite.
        Each parameter is updated atomically; a refused one keeps its weights and state."""
        state = self.state[id(p)]
        g = p.grad
        if isinstance(g, SparseRows):
            rows, values = g.rows, g.values
            if values.dtype != p.data.dtype:
                values = values.astype(p.data.dtype)
            written = self.fused_sparse(state, p.data, rows, values, lr) if kernels.fits(p.data, values) else None
            if written is not None:  # compiled: checked, then written, all or nothing (tinygrad_nlp.kernels)
                if written:
                    return [], True
                return (None, False) if not _all_finite(values) else ([], False)
            if self.weight_decay:
                values = values + self.weight_decay * p.data[rows]
            writes = self.update_sparse(state, p.data, rows, values, lr)
        else:
            grad = g.data
            if grad.dtype != p.data.dtype:
                grad = grad.astype(p.data.dtype)
            if self.weight_decay:
                grad = grad + self.weight_decay * p.data
            writes = self.update_dense(state, p.data, grad, lr)
        finite = all(_all_finite(new) for _, _, new in writes)
        if not finite:
            if not _all_finite(g.values if isinstance(g, SparseRows) else g.data):
                return None, False
            return writes, False
        _commit(writes)
        return writes, True

    def init_state(self, param):
        """Per-parameter state (dict of ndarrays shaped like ``param.data``), created at its first update."""
        return {}

    def update_dense(self, state, data, grad, lr):
        """The writes ``[(array, None, new)]`` of a step from a dense ``grad`` shaped like ``data`` (subclass hook)."""
        raise NotImplementedError

    def update_sparse(self, state, data, rows, grad, lr):
        """The writes ``[(array, rows, new_rows)]`` of a step from ``grad`` (R, H) for rows ``rows``
        (sorted unique int64, (R,)) of ``data`` (subclass hook)."""
        raise NotImplementedError

    def fused_sparse(self, state, data, rows, grad, lr):
        """The same step as :meth:`update_sparse`, weight decay included, done in place by a
        compiled kernel (:mod:`tinygrad_nlp.kernels`): True if written, False if a new value was
        not finite and nothing was written, None if there is no kernel (then ``update_sparse``
        runs). Called only when ``kernels.fits``; a subclass that changes ``update_sparse`` of a
        built-in optimizer must override this too (returning None is enough)."""
        return None

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
        return [(data, None, data - data.dtype.type(lr) * grad)]

    def update_sparse(self, state, data, rows, grad, lr):
        return [(data, rows, data[rows] - data.dtype.type(lr) * grad)]

    def fused_sparse(self, state, data, rows, grad, lr):
        return kernels.sparse_sgd(data, rows, grad, lr, self.weight_decay)


class MomentumSGD(Optimizer):
    """SGD with momentum: ``v = momentum * v - lr * grad; param += v`` (lazy for sparse rows)."""

    def __init__(self, lr=0.01, momentum=0.9, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)
        self.momentum = momentum

    def init_state(self, param):
        return {"v": np.zeros_like(param.data)}

    def update_dense(self, state, data, grad, lr):
        v = state["v"] * data.dtype.type(self.momentum) - data.dtype.type(lr) * grad
        return [(state["v"], None, v), (data, None, data + v)]

    def update_sparse(self, state, data, rows, grad, lr):
        v = state["v"][rows] * data.dtype.type(self.momentum) - data.dtype.type(lr) * grad
        return [(state["v"], rows, v), (data, rows, data[rows] + v)]

    def fused_sparse(self, state, data, rows, grad, lr):
        return kernels.sparse_momentum(data, state["v"], rows, grad, lr, self.momentum, self.weight_decay)


class AdaGrad(Optimizer):
    """AdaGrad: per-element learning rates ``lr / (sqrt(sum grad^2) + eps)``."""

    def __init__(self, lr=0.01, eps=1e-8, clip_norm=None, weight_decay=0.0):
        super().__init__(lr, clip_norm, weight_decay)
        self.eps = eps

    def init_state(self, param):
        return {"h": np.zeros_like(param.data)}

    def _step(self, h, w, grad, lr):
        h = h + grad * grad
        return h, w - w.dtype.type(lr) * grad / (np.sqrt(h) + w.dtype.type(self.eps))

    def update_dense(self, state, data, grad, lr):
        h, w = self._step(state["h"], data, grad, lr)
        return [(state["h"], None, h), (data, None, w)]

    def update_sparse(self, state, data, rows, grad, lr):
        h, w = self._step(state["h"][rows], data[rows], grad, lr)
        return [(state["h"], rows, h), (data, rows, w)]

    def fused_sparse(self, state, data, rows, grad, lr):
        return kernels.sparse_adagrad(data, state["h"], rows, grad, lr, self.eps, self.weight_decay)


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
        t = self.step + 1  # the update being planned
        return lr * math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)

    def _step(self, m, v, w, grad, lr):
        """New (m, v, w) from gathered rows ``m``, ``v``, ``w`` (fresh arrays, modified in place)."""
        dt = w.dtype.type
        b1, b2 = dt(self.beta1), dt(self.beta2)
        tmp = np.multiply(grad, 1 - b1)
        m *= b1
        m += tmp
        np.multiply(grad, grad, out=tmp)
        tmp *= 1 - b2
        v *= b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += dt(self.eps)
        np.divide(m, tmp, out=tmp)
        tmp *= dt(self._step_size(lr))
        w -= tmp
        return m, v, w

    def update_dense(self, state, data, grad, lr):
        m, v, w = self._step(state["m"].copy(), state["v"].copy(), data.copy(), grad, lr)
        return [(state["m"], None, m), (state["v"], None, v), (data, None, w)]

    def update_sparse(self, state, data, rows, grad, lr):
        m, v, w = self._step(state["m"][rows], state["v"][rows], data[rows], grad, lr)
        return [(state["m"], rows, m), (state["v"], rows, v), (data, rows, w)]

    def fused_sparse(self, state, data, rows, grad, lr):
        return kernels.sparse_adam(data, state["m"], state["v"], rows, grad, self.beta1, self.beta2, self.eps,
                                   self._step_size(lr), self.weight_decay)
