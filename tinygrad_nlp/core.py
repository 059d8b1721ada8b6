"""The autograd engine: ``Variable``, ``Function``, the backward pass and the global ``Config``.

A graph is built while the forward pass runs (define-by-run). Each ``Function`` call links its
output ``Variable``s to itself (``output.creator``) and keeps strong references to its inputs; a
Function refers to its outputs only through weak references, so a graph has no reference cycles
and is freed the moment the user drops its last output, even with the garbage collector off.

``Variable.backward`` walks the graph iteratively in reverse topological order: functions are
popped from a heap keyed by their *generation* (how far from the leaves they are), so each
Function's backward runs exactly once, after every gradient flowing into its outputs has been
summed. Backward passes are written with Variables, so with ``create_graph=True`` the backward
computation is itself recorded and can be differentiated again.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "Config",
    "using_config",
    "no_grad",
    "test_mode",
    "unrolled",
    "detect_anomaly",
    "Variable",
    "Parameter",
    "Function",
    "as_variable",
    "as_array",
]


class _Config(threading.local):
    """Switches read by every Function call, one set per thread.

    ``enable_backprop``: record graphs (off inside ``no_grad()``).
    ``train``: training-time behaviour such as dropout (off inside ``test_mode()``).
    ``anomaly``: check every forward and backward result for NaN/inf and name the
    Function that produced it (see ``detect_anomaly()``); costs a scan of each array.
    ``unrolled``: recurrent layers build one cell node per time step instead of one node for the
    whole sequence (see ``unrolled()``): the same values, drawn one cluster per step.

    Per thread, as PyTorch's grad mode is: a backward pass turns ``enable_backprop`` off while it
    runs, and a thread building its own graph at that moment (the Trainer's training threads)
    must not see that. A new thread starts from the defaults below.
    """

    enable_backprop = True
    train = True
    anomaly = False
    unrolled = False

    def settings(self) -> dict[str, bool]:
        """This thread's switches as a dict (to hand them to a thread started for the same work)."""
        return {"enable_backprop": self.enable_backprop, "train": self.train, "anomaly": self.anomaly,
                "unrolled": self.unrolled}

    def apply(self, settings: dict[str, bool]) -> None:
        """Set this thread's switches from [`settings`][settings] of another thread."""
        for name, value in settings.items():
            setattr(self, name, value)


Config = _Config()


@contextlib.contextmanager
def using_config(name: str, value: bool) -> Iterator[None]:
    """Temporarily set ``Config.<name>`` to ``value`` inside a ``with`` block."""
    if name not in ("enable_backprop", "train", "anomaly", "unrolled"):
        raise AttributeError(f"Config has no setting {name!r}; known: enable_backprop, train, anomaly, unrolled")
    old = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old)


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Run the enclosed code without recording a graph (inference, evaluation, updates)."""
    return using_config("enable_backprop", False)


def test_mode() -> contextlib.AbstractContextManager[None]:
    """Run the enclosed code with ``Config.train = False`` (dropout becomes the identity)."""
    return using_config("train", False)


test_mode.__test__ = False  # not a test, though pytest would collect it by its name


def unrolled() -> contextlib.AbstractContextManager[None]:
    """Build recurrent layers one cell node per time step inside the block (for graph diagrams,
    [`recurrent_dot`][tinygrad_nlp.viz.recurrent_dot]); outside it a layer's whole sequence is one
    node. Both give the same values and gradients."""
    return using_config("unrolled", True)


def detect_anomaly() -> contextlib.AbstractContextManager[None]:
    """Raise ``FloatingPointError`` naming the first Function whose forward or backward
    produced NaN or inf, instead of letting non-finite values spread silently."""
    return using_config("anomaly", True)


def as_array(x: ArrayLike, dtype: DTypeLike | None = None) -> np.ndarray:
    """Return ``x`` as an ndarray (numpy scalars and 0-d results become 0-d arrays)."""
    if type(x) is np.ndarray and (dtype is None or x.dtype == dtype):
        return x
    return np.asarray(x, dtype=dtype)


def _is_python_scalar(x):
    return isinstance(x, (int, float, bool)) and not isinstance(x, np.ndarray)


def as_variable(x: Variable | ArrayLike, like: Variable | None = None) -> Variable:
    """Wrap ``x`` as a Variable; Variables pass through unchanged.

    A Python scalar combined with a floating Variable ``like`` takes ``like``'s dtype, so
    ``float32_var * 2.0`` stays float32. Values converted here are constants of the graph:
    they receive no gradient.
    """
    if isinstance(x, Variable):
        return x
    if like is not None and _is_python_scalar(x):
        kind = like.data.dtype.kind
        if kind == "f" or kind == "c" or (kind in "iu" and not isinstance(x, float)):
            return _Constant(np.asarray(x, dtype=like.data.dtype))
    return _Constant(np.asarray(x))


class Variable:
    """A node holding an ndarray, its gradient and the Function that created it.

    Args:
        data: an ndarray (or anything ``np.asarray`` accepts: Python scalars become 0-d arrays).
        name: optional label shown in graph diagrams and ``repr``.

    ``grad`` is ``None`` until a backward pass reaches this Variable; it is then a Variable of
    the same shape, or a gradient object standing for one (a row-sparse gradient of an embedding table
    built with ``sparse=True``).
    Operators ``+ - * / ** @`` and unary ``-`` build graph nodes, with Python scalars and numpy
    arrays accepted on either side.

    Habits from numpy and PyTorch, each chosen deliberately:

    * ``x > 0`` (``<``, ``<=``, ``>=``) compares the values and returns a boolean ndarray, which
      has no gradient (PyTorch's comparisons give a boolean tensor without one); use it as a mask,
      ``x[x.data > 0]`` or ``x * (x > 0)``.
    * ``==`` and ``!=`` stay identity comparisons, so Variables can be dict keys and set members
      (a model's parameters are); compare values with ``x.data == y``.
    * ``np.asarray(x)`` and ``x.numpy()`` give the values (``x.data``, not a copy), never an
      object array of Variables. ``np.sum``, ``np.mean``, ``np.reshape`` and ``np.transpose``
      build graph nodes like the methods of the same names; every other numpy function raises a
      TypeError saying to pass ``x.data`` or use ``tinygrad_nlp.functions`` (so a gradient is
      never lost silently). numpy's element-wise functions (``np.exp(x)``) raise a TypeError too:
      use ``F.exp(x)``.
    * ``bool(x)`` is the truth of a one-element Variable (ValueError for several elements, as
      numpy); ``x.detach()`` is a new leaf sharing the data; ``x.astype(dtype)`` casts through a
      graph node for floating dtypes and leaves the graph for integer or bool ones.
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "__weakref__")
    # numpy defers to our reflected operators (ndarray + Variable -> Variable.__radd__).
    __array_ufunc__ = None

    def __init__(self, data: ArrayLike, name: str | None = None) -> None:
        if type(data) is not np.ndarray:
            if isinstance(data, Variable):
                raise TypeError("Variable(data): data is already a Variable; pass data.data to copy its array")
            data = np.asarray(data)
        if data.dtype == object:
            raise TypeError(f"Variable(data): unsupported array dtype object (got {type(data).__name__})")
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0

    # ----- array-like properties -----
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data`` (tuple of ints)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions of ``data`` (int)."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements of ``data`` (int)."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of ``data`` (float32 or float64 for anything that gets gradients)."""
        return self.data.dtype

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d Variable")
        return len(self.data)

    def __repr__(self):
        cls = type(self).__name__.lower()
        if self.data is None:
            return f"{cls}(None)"
        body = np.array2string(self.data, separator=", ", prefix=cls + "(", threshold=64)
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"{cls}({body}, dtype={self.data.dtype}{name})"

    def __float__(self):
        return float(self.data)

    def item(self) -> Any:
        """The value of a one-element Variable as a Python scalar."""
        return self.data.item()

    # ----- numpy and PyTorch habits (see the class docstring) -----
    def __bool__(self):
        return bool(self.data)

    def __lt__(self, other):
        return self.data < (other.data if isinstance(other, Variable) else other)

    def __le__(self, other):
        return self.data <= (other.data if isinstance(other, Variable) else other)

    def __gt__(self, other):
        return self.data > (other.data if isinstance(other, Variable) else other)

    def __ge__(self, other):
        return self.data >= (other.data if isinstance(other, Variable) else other)

    __eq__ = object.__eq__  # identity: Variables are graph nodes, usable as dict keys
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(x)``: the values as an ndarray (no copy unless asked or converted)."""
        data = self.data
        if dtype is not None and np.dtype(dtype) != data.dtype:
            if copy is False:
                raise ValueError(f"cannot give a {data.dtype} Variable's values as {np.dtype(dtype)} without a copy")
            return data.astype(dtype)
        return data.copy() if copy else data

    def __array_function__(self, func, types, args, kwargs):
        method = _NUMPY_METHODS.get(func)
        if method is None:
            raise TypeError(
                f"numpy.{func.__name__}() got a Variable, and numpy cannot carry its gradient: pass "
                f"x.data (or x.numpy()) for the values, or use tinygrad_nlp.functions to stay in the graph")
        return method(*args, **kwargs)

    def numpy(self) -> np.ndarray:
        """The values: ``data`` itself (not a copy), as PyTorch's ``Tensor.numpy()``."""
        return self.data

    def detach(self) -> Variable:
        """A new leaf Variable sharing this one's data: no creator, so no gradient flows back."""
        return Variable(self.data, name=self.name)

    def astype(self, dtype: DTypeLike) -> Variable:
        """The values as ``dtype``: a graph node for floating dtypes (gradients flow through the
        cast); a leaf with no gradient for integer and bool dtypes. Same dtype returns ``self``."""
        dtype = np.dtype(dtype)
        if dtype == self.data.dtype:
            return self
        if dtype.kind in "fc":
            return _F.cast(self, dtype)
        return Variable(self.data.astype(dtype))

    def set_creator(self, func: Function) -> None:
        """Record ``func`` as the Function that produced this Variable (sets ``generation``)."""
        self.creator = func
        self.generation = func.generation + 1

    def unchain(self) -> None:
        """Forget the creator: this Variable becomes a leaf (truncated backprop)."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every link of the graph behind this Variable's creator (DeZero's name): each
        Variable it was computed from becomes a leaf, so the recorded history (a previous window
        of truncated BPTT) is freed once nothing else holds it. ``self`` keeps its creator, whose
        inputs are now leaves."""
        func = self.creator
        stack = [func] if func is not None else []
        seen = set()
        while stack:
            f = stack.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            for x in f.inputs:
                if x.creator is not None:
                    stack.append(x.creator)
                    x.creator = None

    def cleargrad(self) -> None:
        """Reset the accumulated gradient (call before each new backward pass)."""
        self.grad = None

    # ----- backward -----
    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Compute the gradient of this Variable with respect to every Variable it depends on.

        A non-scalar output is seeded with ones (the gradient of ``self.sum()``), unless
        ``self.grad`` was set beforehand. Gradients of leaves (Variables without a creator) are
        accumulated into their ``.grad``; intermediate gradients are dropped unless
        ``retain_grad=True``. With ``create_graph=True`` the backward computation is recorded,
        so the resulting gradients can be differentiated again.
        """
        seed = self.grad
        if seed is None:
            seed = Variable(np.ones_like(self.data))
        elif not isinstance(seed, Variable):
            seed = Variable(as_array(seed))
        if self.creator is None:
            self.grad = seed
            return
        _run_backward(self, seed, retain_grad, create_graph)

    # ----- methods that build graph nodes (installed by tinygrad_nlp.functions) -----
    def reshape(self, *shape: int | tuple[int, ...] | list[int]) -> Variable:
        """Reshape to ``shape`` (ints or one tuple)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _F.reshape(self, tuple(shape))

    def transpose(self, *axes: int | tuple[int, ...] | list[int] | None) -> Variable:
        """Permute axes (reverse them when no axes are given)."""
        if len(axes) == 0:
            axes = None
        elif len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _F.transpose(self, axes)

    @property
    def T(self) -> Variable:
        """Transpose with all axes reversed (a graph node, like ``transpose()``)."""
        return _F.transpose(self)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Sum over ``axis`` (int, tuple or None for all); see ``functions.sum``."""
        return _F.sum(self, axis, keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Mean over ``axis`` (int, tuple or None for all); see ``functions.mean``."""
        return _F.mean(self, axis, keepdims)


def _numpy_reduction(name):
    def reduce(a, axis=None, dtype=None, out=None, keepdims=False, **rest):
        if dtype is not None or out is not None or rest:
            given = ["dtype"] * (dtype is not None) + ["out"] * (out is not None) + sorted(rest)
            raise TypeError(f"numpy.{name}() of a Variable takes only axis and keepdims, not {', '.join(given)}")
        return getattr(a, name)(axis=axis, keepdims=keepdims)
    return reduce


def _numpy_reshape(a, *args, **kwargs):
    shape = args[0] if args else kwargs.pop("shape", kwargs.pop("newshape", None))
    if len(args) > 1 or kwargs:
        raise TypeError("numpy.reshape() of a Variable takes only the new shape")
    return a.reshape(shape)


# numpy functions that have a differentiable counterpart: they build graph nodes on Variables.
_NUMPY_METHODS = {
    np.sum: _numpy_reduction("sum"),
    np.mean: _numpy_reduction("mean"),
    np.reshape: _numpy_reshape,
    np.transpose: lambda a, axes=None: a.transpose(axes),
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
    np.size: lambda a, axis=None: a.size if axis is None else a.shape[axis],
}


class _Constant(Variable):
    """A value that entered the graph as a plain number or ndarray: it gets no gradient."""

    __slots__ = ()


class Parameter(Variable):
    """A trainable weight. Layers collect Parameters; graph diagrams draw them distinctly."""

    __slots__ = ()

    def __init__(self, data: ArrayLike, name: str | None = None) -> None:
        super().__init__(data, name)
        if self.data.dtype.kind not in "fc":
            raise TypeError(
                f"Parameter {name or ''} needs a floating dtype to receive gradients, "
                f"got {self.data.dtype} with shape {self.data.shape}".replace("Parameter  ", "Parameter ")
            )


class Function:
    """Base class of every differentiable operation.

    Subclasses implement ``forward(self, *xs)`` on ndarrays (returning an ndarray or a tuple of
    them) and ``backward(self, *gys)`` on Variables (returning one gradient Variable per input,
    or ``None`` for an input that gets no gradient). Calling an instance runs ``forward`` and,
    unless ``no_grad()`` is active, links the outputs to it; its inputs are then available as
    ``self.inputs`` and its outputs (weakly) as ``self.outputs``.

    Optionally a subclass may also define ``backward_arrays(self, *gys)``: the same gradients
    computed on plain ndarrays. The engine uses it when ``create_graph`` is off, which skips
    building Variables for the backward pass (several times faster for small arrays); the
    Variable ``backward`` stays the definition used for higher derivatives, and the test suite
    checks that both agree.
    """

    generation = 0
    inputs = ()
    outputs = ()
    backward_arrays = None

    def __call__(self, *inputs):
        for x in inputs:
            if not isinstance(x, Variable):
                inputs = _convert_inputs(inputs)
                break
        n = len(inputs)
        if n == 2:
            ys = self.forward(inputs[0].data, inputs[1].data)
        elif n == 1:
            ys = self.forward(inputs[0].data)
        else:
            ys = self.forward(*[x.data for x in inputs])
        if type(ys) is tuple:
            return self._link_many(inputs, ys)
        out = _new_variable(ys if type(ys) is np.ndarray else np.asarray(ys))
        if Config.anomaly:
            _check_finite(self, "forward", [out.data])
        if Config.enable_backprop:
            gen = 0
            for x in inputs:
                if x.generation > gen:
                    gen = x.generation
            self.generation = gen
            out.creator = self
            out.generation = gen + 1
            self.inputs = inputs
            self.outputs = (weakref.ref(out),)
        return out

    def _link_many(self, inputs, ys):
        outputs = [_new_variable(y if type(y) is np.ndarray else np.asarray(y)) for y in ys]
        if Config.anomaly:
            _check_finite(self, "forward", [o.data for o in outputs])
        if Config.enable_backprop:
            self.generation = max([x.generation for x in inputs], default=0)
            for o in outputs:
                o.creator = self
                o.generation = self.generation + 1
            self.inputs = inputs
            self.outputs = tuple(weakref.ref(o) for o in outputs)
            self._output_meta = [(o.data.shape, o.data.dtype) for o in outputs]
        return outputs

    def forward(self, *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, *gys: Variable) -> Variable | None | tuple[Variable | None, ...]:
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __repr__(self):
        return f"<{type(self).__name__} generation={self.generation}>"


_object_new = object.__new__


def _new_variable(data):
    """Fast construction of a Variable around an ndarray produced by a Function."""
    v = _object_new(Variable)
    v.data = data
    v.name = None
    v.grad = None
    v.creator = None
    v.generation = 0
    return v


def _convert_inputs(inputs):
    like = None
    for x in inputs:
        if isinstance(x, Variable):
            like = x
            break
    return tuple(x if isinstance(x, Variable) else as_variable(x, like) for x in inputs)


# ----------------------------------------------------------------------------- gradients
# A gradient is an ndarray (a Variable when the backward pass is recorded) or a *gradient object*
# that a Function returns for an input it touches only in part: a row-sparse gradient of an
# embedding table, for instance. The engine needs four things of such an object and names no
# type: ``shape``; ``+`` with another gradient object or with an ndarray (giving an ndarray);
# ``to_dense()``, the ndarray it stands for; and ``is_finite()``, for anomaly mode.

def _is_array(g):
    return type(g) is np.ndarray or isinstance(g, np.generic)  # numpy scalars are 0-d arrays here


def _dense(g, arrays):
    """``g`` as a Function's backward takes it: an ndarray, or a Variable when recording."""
    if arrays:
        return g if _is_array(g) else g.to_dense()
    return g if isinstance(g, Variable) else Variable(g.to_dense())


def _add(a, b):
    """Sum of two gradients: Variables add as graph nodes while recording, everything else as
    arrays (a gradient object's ``+`` with an ndarray gives an ndarray)."""
    if type(a) is np.ndarray and type(b) is np.ndarray:
        return a + b
    va, vb = isinstance(a, Variable), isinstance(b, Variable)
    if va and vb and Config.enable_backprop:
        return a + b
    if va or vb:
        return Variable((a.data if va else a) + (b.data if vb else b))
    return a + b


def _check_finite(func, phase, grads):
    for i, g in enumerate(grads):
        if g is None:
            continue
        if isinstance(g, Variable):
            g = g.data
        if _is_array(g):
            bad = g.dtype.kind in "fc" and not np.all(np.isfinite(g))
        else:
            bad = not g.is_finite()
        if bad:
            raise FloatingPointError(
                f"{type(func).__name__}.{phase} produced a non-finite value "
                f"(NaN or inf) in its {'output' if phase == 'forward' else 'gradient for input'} {i} "
                f"of shape {g.shape}"
            )


def _output_grads(f, grads, arrays, retain_grad):
    """The gradients of ``f``'s outputs, dense, zeros for an output no path reached."""
    gys = []
    for ref, (shape, dtype) in zip(f.outputs, f._output_meta):
        y = ref()
        gy = grads.pop(id(y), None) if y is not None else None
        gy = (np.zeros(shape, dtype) if arrays else Variable(np.zeros(shape, dtype))) if gy is None else _dense(gy, arrays)
        if retain_grad and y is not None:
            y.grad = Variable(gy) if arrays else gy
        gys.append(gy)
    return gys


def _unrecorded_backward(f, gys):
    """``f.backward`` on Variables wrapping the arrays ``gys``, its gradients unwrapped."""
    gxs = f.backward(*[Variable(g) for g in gys])
    return tuple(g.data if isinstance(g, Variable) else g for g in (gxs if type(gxs) is tuple else (gxs,)))


def _run_backward(root, seed, retain_grad, create_graph):
    """Backward pass from ``root``; see ``Variable.backward``.

    Functions are popped from a heap ordered by generation (newest first), so a Function runs
    only after every consumer of its outputs has contributed its gradient. Without
    ``create_graph`` gradients travel as ndarrays (``backward_arrays`` where a Function has one);
    with it they travel as Variables through the recorded ``backward``.
    """
    arrays = not create_graph
    grads = {id(root): seed.data if arrays else seed}
    counter = itertools.count()
    first = root.creator
    heap = [(-first.generation, 0, first)]
    seen = {first}
    anomaly = Config.anomaly
    old = Config.enable_backprop
    Config.enable_backprop = create_graph
    try:
        while heap:
            f = heapq.heappop(heap)[2]
            if len(f.outputs) == 1:  # the common case, without _output_grads' bookkeeping
                y = f.outputs[0]()
                gy = grads.pop(id(y))
                if type(gy) is not np.ndarray:
                    gy = _dense(gy, arrays)
                if retain_grad:
                    y.grad = Variable(gy) if arrays else gy
                if not arrays:
                    gxs = f.backward(gy)
                elif f.backward_arrays is not None:
                    gxs = f.backward_arrays(gy)
                else:
                    gxs = _unrecorded_backward(f, (gy,))
            else:
                gys = _output_grads(f, grads, arrays, retain_grad)
                if not arrays:
                    gxs = f.backward(*gys)
                elif f.backward_arrays is not None:
                    gxs = f.backward_arrays(*gys)
                else:
                    gxs = _unrecorded_backward(f, gys)
            if type(gxs) is not tuple:
                gxs = (gxs,)
            inputs = f.inputs
            if len(gxs) != len(inputs):
                raise ValueError(f"{type(f).__name__}.backward returned {len(gxs)} gradients for {len(inputs)} inputs")
            if anomaly:
                _check_finite(f, "backward", gxs)
            for x, gx in zip(inputs, gxs):
                if gx is None or x.__class__ is _Constant:
                    continue
                if gx.shape != x.data.shape:
                    raise ValueError(f"{type(f).__name__}.backward returned a gradient of shape {gx.shape} "
                                     f"for an input of shape {x.data.shape}")
                c = x.creator
                if c is None:
                    _accumulate_leaf(x, gx)
                    continue
                k = id(x)
                prev = grads.get(k)
                grads[k] = gx if prev is None else _add(prev, gx)
                if c not in seen:
                    seen.add(c)
                    heapq.heappush(heap, (-c.generation, next(counter), c))
    finally:
        Config.enable_backprop = old


def _accumulate_leaf(x, gx):
    """Add ``gx`` to the leaf's ``.grad`` (ndarrays become Variables of the leaf's dtype)."""
    if x.data.dtype.kind not in "fc":
        label = f"Variable {x.name!r}" if x.name else "a Variable"
        raise TypeError(
            f"cannot compute a gradient for {label} of integer/bool dtype {x.data.dtype} "
            f"and shape {x.data.shape}: give it floating data (e.g. np.float32) or pass it as a plain ndarray"
        )
    prev = x.grad
    if type(gx) is np.ndarray or isinstance(gx, np.generic):
        if gx.dtype != x.data.dtype:
            gx = gx.astype(x.data.dtype)
        x.grad = Variable(gx if prev is None else (prev.data if isinstance(prev, Variable) else prev) + gx)
    else:  # a Variable (recorded pass) or a gradient object
        x.grad = gx if prev is None else _add(prev, gx)


# Variable methods call into tinygrad_nlp.functions, which imports this module; the reference is
# bound once the package has finished importing (see tinygrad_nlp/__init__.py).
_F = None
