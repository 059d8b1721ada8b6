"""Row-sparse gradients and fast scatter-add of rows.

An embedding lookup ``W[idx]`` touches only the rows named in ``idx``, so its gradient is zero
everywhere else. ``SparseRows`` stores just the touched rows (sorted unique ids plus one summed
value row each), which keeps a training step's cost proportional to the batch instead of the
vocabulary. Optimizers read ``rows``/``values`` and update those rows in place.

Summing many gradient rows into few (``scatter_add_rows``) is the hot loop of every embedding
backward. ``np.add.at`` does it one element at a time; here the backend's ``scatter_sum`` does
it: a compiled loop vectorised over H, or, in the numpy backend, a product with a sparse 0/1
matrix that streams through the gradient once (10-20x faster on 100,000 rows).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp import _threads, backend
from tinygrad_nlp.errors import TinygradNLPError

__all__ = ["Ids", "InvalidIdError", "check_ids", "SparseRows", "scatter_add_rows", "scatter_add_dense", "sparse_matmul", "unique_inverse"]


class InvalidIdError(TinygradNLPError, IndexError, ValueError):
    """An id that cannot index the embedding matrix (negative, too large, or not an integer)."""


def check_ids(idx: Ids | ArrayLike, num_rows: int, what: str = "id") -> np.ndarray:
    """Return ``idx`` as an integer ndarray after checking every value lies in ``[0, num_rows)``.

    numpy would silently wrap a negative id to the end of the matrix and raise an unhelpful
    error for a float; here the offending value, its position and the row count are named.
    """
    if isinstance(idx, Ids):
        if idx.checked_rows != num_rows:
            check_ids(idx.array, num_rows, what)
            idx.checked_rows = num_rows
        return idx.array
    if not isinstance(idx, np.ndarray) and isinstance(getattr(idx, "data", None), np.ndarray):
        idx = idx.data  # a Variable holding ids
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        flat = idx.ravel()
        if flat.dtype.kind == "f":
            nonint = flat[~(np.isfinite(flat) & (flat == np.round(flat)))]
            flat = nonint if nonint.size else flat
        example = flat[0].item() if flat.size else None
        raise InvalidIdError(
            f"{what}s must be integers, got a {idx.dtype} array with value {example!r} "
            f"(V={num_rows}); convert whole numbers with .astype(np.int64)"
        )
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0 or hi >= num_rows:
            bad = lo if lo < 0 else hi
            pos = tuple(int(p) for p in np.argwhere(idx == bad)[0])
            raise InvalidIdError(
                f"{what} {int(bad)} at position {pos} is out of range for V={num_rows} rows "
                f"(valid ids are 0..{num_rows - 1})"
            )
    return idx


class Ids:
    """An integer id array whose checks and sort are done once and remembered.

    Embedding functions accept an ``Ids`` wherever they take ids: its range check and the
    sorted unique ids with the inverse map (needed to sum gradient rows) are computed at most
    once, so a data pipeline can do that work ahead of time in another thread
    (see ``CBOW.prepare_batch``). ``array`` is the plain integer ndarray.
    """

    __slots__ = ("array", "checked_rows", "_unique")

    def __init__(self, array: ArrayLike) -> None:
        self.array = np.asarray(array)
        self.checked_rows = None  # the row count the ids were validated against
        self._unique = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def unique_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        """``(sorted unique ids, inverse)`` of the flattened array, computed once."""
        if self._unique is None:
            self._unique = unique_inverse(self.array.ravel())
        return self._unique

    def prepare(self, num_rows: int) -> Ids:
        """Validate against ``num_rows`` and sort now (returns self)."""
        check_ids(self, num_rows)
        self.unique_inverse()
        return self

    def __repr__(self):
        return f"Ids(shape={self.array.shape}, checked_rows={self.checked_rows})"


def _argsort_ids(ids):
    """Argsort of integer ids: numpy's radix sort when they fit in 16 bits (2-8x faster than a
    comparison sort), two radix passes (low then high 16 bits) when they fit in 32 (1.6x faster
    at V = 1,000,000)."""
    top, low = int(ids.max()), int(ids.min())
    if low >= 0 and top < 65536:
        return np.argsort(ids.astype(np.uint16), kind="stable")
    if low >= 0 and top < 2**32:
        wide = ids.astype(np.uint32, copy=False)
        by_low = np.argsort((wide & 0xFFFF).astype(np.uint16), kind="stable")
        by_high = np.argsort((wide[by_low] >> 16).astype(np.uint16), kind="stable")
        return by_low[by_high]
    return np.argsort(ids)


def unique_inverse(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of the 1-D integer array ``ids`` and, per element, its position in them."""
    ids = np.asarray(ids).ravel()
    if ids.size == 0:
        return ids.astype(np.int64), np.zeros(0, np.int64)
    order = _argsort_ids(ids)
    sorted_ids = ids[order]
    is_new = np.empty(ids.size, dtype=bool)
    is_new[0] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=is_new[1:])
    unique = sorted_ids[is_new]
    inverse = np.empty(ids.size, dtype=np.int64)
    inverse[order] = np.cumsum(is_new) - 1
    return unique.astype(np.int64, copy=False), inverse


def sparse_matmul(layout: str, shape: tuple[int, int], indptr: ArrayLike, indices: ArrayLike, data: ArrayLike,
                  X: ArrayLike) -> np.ndarray:
    """``A @ X`` for a sparse ``A`` of ``shape`` given by its compressed arrays.

    ``layout`` is "csc" (``indptr`` over columns) or "csr" (over rows); ``X`` is a dense
    (shape[1], H) array. A convenience over scipy's sparse matrices; the embedding Functions
    use the backend's gather and scatter primitives instead.
    """
    import scipy.sparse as _sp  # here, not at import: a third of the package's import time

    cls = _sp.csc_matrix if layout == "csc" else _sp.csr_matrix
    return np.asarray(cls((data, indices, indptr), shape=shape) @ np.ascontiguousarray(X))


def _column_product(row_of_each, num_rows, weights, group, values):
    """``out[r] = sum of weight * values[j // group]`` over the ids ``row_of_each[j] == r``."""
    data = np.ones(row_of_each.size, dtype=values.dtype) if weights is None else np.asarray(weights, dtype=values.dtype)
    return backend.ops.scatter_sum(values, row_of_each, data, group, num_rows)


def _as_rows(values, n):
    values = np.asarray(values)
    return values.reshape(n, -1) if values.ndim != 2 or values.shape[0] != n else values


# Products over at least this many value rows are split across threads (scipy releases the GIL;
# on 2 cores 100,000 rows x 100 take 4.8 ms instead of 8.6 ms).
PARALLEL_MIN_ROWS = 32_768


def _scatter_product(row_of_each, num_rows, values, weights, group):
    """``out[r] = sum of weight * values[j] over the ids mapped to r``, as a (num_rows, H) array."""
    n = values.shape[0]
    workers = _threads.num_threads()
    if n < PARALLEL_MIN_ROWS or workers < 2:
        return _column_product(row_of_each, num_rows, weights, group, values)
    bounds = np.linspace(0, n, workers + 1).astype(np.int64)
    flat_weights = None if weights is None else np.asarray(weights).ravel()

    def part(a, b):
        w = None if flat_weights is None else flat_weights[a * group : b * group]
        return _column_product(row_of_each[a * group : b * group], num_rows, w, group, values[a:b])

    parts = _threads.run_parallel([lambda a=bounds[i], b=bounds[i + 1]: part(a, b) for i in range(workers)])
    out = parts[0]
    for p in parts[1:]:
        out += p
    return out


def scatter_add_rows(ids: ArrayLike, values: ArrayLike, weights: ArrayLike | None = None, group: int = 1,
                     unique: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sum value rows that share an id, without touching any other row.

    Args:
        ids: integer array; ``ids.size == values.shape[0] * group``.
        values: (n, H) float array, one row per id (or per ``group`` ids).
        weights: optional float array shaped like ``ids``: each id adds ``weight * row``.
        group: how many consecutive ids share one value row.
        unique: ``unique_inverse(ids)`` if already known (e.g. from an [`Ids`][Ids]).

    Returns:
        ``(rows, sums)``: sorted unique ids (int64) and a (len(rows), H) array of summed rows in
        ``values``' dtype.
    """
    ids = np.asarray(ids).ravel()
    n = ids.size // group
    values = _as_rows(values, n)
    rows, inverse = unique_inverse(ids) if unique is None else unique
    if rows.size == 0:
        return rows, np.zeros((0,) + values.shape[1:], values.dtype)
    return rows, _scatter_product(inverse, rows.size, values, weights, group)


def scatter_add_dense(ids: ArrayLike, values: ArrayLike, num_rows: int, weights: ArrayLike | None = None,
                      group: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """Dense version of [`scatter_add_rows`][scatter_add_rows]: a (num_rows, H) array, zero for untouched rows."""
    ids = np.asarray(ids).ravel()
    n = ids.size // group
    values = _as_rows(values, n)
    result = _scatter_product(ids, num_rows, values, weights, group)
    if out is not None:
        out += result
        return out
    return result


class SparseRows:
    """Gradient of a (V, H) matrix that is non-zero only in some rows.

    Holds any number of (ids, value rows) parts; adding two SparseRows concatenates their parts
    without densifying. ``rows`` / ``values`` coalesce the parts on first access into sorted
    unique ids and their summed rows. ``to_dense()`` gives the full (V, H) array.
    """

    __slots__ = ("shape", "dtype", "_parts", "_rows", "_values")
    __array_ufunc__ = None  # ndarray + SparseRows defers to SparseRows.__radd__

    def __init__(self, rows: ArrayLike, values: ArrayLike, shape: tuple[int, ...], coalesced: bool = False) -> None:
        values = np.asarray(values)
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if values.shape[0] != rows.size or values.shape[1:] != tuple(shape[1:]):
            raise ValueError(f"SparseRows: {rows.size} ids with values of shape {values.shape} for a matrix of shape {tuple(shape)}")
        self.shape = tuple(shape)
        self.dtype = values.dtype
        if coalesced:
            self._parts = None
            self._rows, self._values = rows, values
        else:
            self._parts = [(rows, values)]
            self._rows = self._values = None

    @classmethod
    def _from_parts(cls, parts, shape, dtype):
        obj = cls.__new__(cls)
        obj.shape, obj.dtype = shape, dtype
        obj._parts, obj._rows, obj._values = parts, None, None
        return obj

    def _coalesce(self):
        if self._parts is not None:
            if len(self._parts) == 1:
                ids, vals = self._parts[0]
            else:
                ids = np.concatenate([p[0] for p in self._parts])
                vals = np.concatenate([p[1] for p in self._parts])
            self._rows, self._values = scatter_add_rows(ids, vals)
            self._parts = None

    @property
    def rows(self) -> np.ndarray:
        """Sorted unique row ids (int64) that carry a gradient."""
        self._coalesce()
        return self._rows

    @property
    def values(self) -> np.ndarray:
        """(len(rows), H) summed gradient rows, aligned with ``rows``."""
        self._coalesce()
        return self._values

    @property
    def ndim(self) -> int:
        """Number of dimensions of the dense gradient (2 for a (V, H) matrix)."""
        return len(self.shape)

    def stored_size(self) -> int:
        """Number of stored gradient values (before coalescing): the work an update will do."""
        if self._parts is None:
            return self._values.size
        return sum(v.size for _, v in self._parts)

    @property
    def data(self) -> np.ndarray:
        """The dense gradient as an ndarray (same as ``to_dense()``; allocates (V, H))."""
        return self.to_dense()

    def to_dense(self) -> np.ndarray:
        """The full gradient as an ndarray of ``shape`` (allocates V x H)."""
        out = np.zeros(self.shape, dtype=self.dtype)
        out[self.rows] = self.values
        return out

    def _parts_list(self):
        return list(self._parts) if self._parts is not None else [(self._rows, self._values)]

    # ----- the gradient protocol the autograd engine speaks (see tinygrad_nlp.core) -----
    @staticmethod
    def add(a: SparseRows | ArrayLike, b: SparseRows | ArrayLike) -> SparseRows | ArrayLike:
        """Sum of two gradients where at least one is a SparseRows: sparse + sparse stays sparse
        (the parts are concatenated, summed when first read); sparse + a dense ndarray gives a
        new ndarray, and sparse + a Variable a new Variable (the dense operand is not modified)."""
        if isinstance(a, SparseRows) and isinstance(b, SparseRows):
            if a.shape != b.shape:
                raise ValueError(f"cannot add sparse gradients of shapes {a.shape} and {b.shape}")
            dtype = np.result_type(a.dtype, b.dtype)
            return SparseRows._from_parts(a._parts_list() + b._parts_list(), a.shape, dtype)
        sparse, dense = (a, b) if isinstance(a, SparseRows) else (b, a)
        holder = None
        if not isinstance(dense, np.ndarray) and isinstance(getattr(dense, "data", None), np.ndarray):
            holder, dense = type(dense), dense.data  # a Variable: the sum is one too
        dense = np.asarray(dense)
        if dense.shape != sparse.shape:
            raise ValueError(f"cannot add a sparse gradient of shape {sparse.shape} to one of shape {dense.shape}")
        out = dense.astype(np.result_type(dense.dtype, sparse.dtype), copy=True)
        out[sparse.rows] += sparse.values
        return out if holder is None else holder(out)

    def __add__(self, other):
        return SparseRows.add(self, other)

    __radd__ = __add__

    def is_finite(self) -> bool:
        """True when every stored value is finite (what anomaly mode asks of a gradient)."""
        v = self.values
        return bool(np.isfinite(v).all())

    def scale(self, factor: float) -> SparseRows:
        """Multiply every stored row by ``factor`` in place (used by gradient clipping)."""
        self._coalesce()
        self._values = self._values * np.asarray(factor, dtype=self._values.dtype)
        return self

    def sq_norm(self) -> float:
        """Squared Frobenius norm of the gradient (float)."""
        v = self.values
        return float(np.vdot(v.ravel(), v.ravel()))

    def __repr__(self):
        n = "?" if self._parts is not None else str(self._rows.size)
        return f"SparseRows(shape={self.shape}, dtype={self.dtype}, rows={n})"
