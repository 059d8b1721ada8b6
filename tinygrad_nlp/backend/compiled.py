"""The compiled implementation of the backend primitives: numba loops for what numpy cannot fuse.

In numpy, a lazy Adam step over the R rows a batch touched is three row gathers, about a dozen
element-wise passes, a finiteness check and three scatters: each one a trip through memory. On
PTB's CBOW that was 60 % of a training step. Here an optimizer's element-wise rule (the one
Python function its class defines, see [`tinygrad_nlp.optimizers`][tinygrad_nlp.optimizers]) is compiled into a loop of
two passes over the touched elements: the first computes every new weight and state value and
checks that all are finite, and only then does the second compute them again and write them in
place. That keeps the optimizers' guarantee (a parameter is updated whole or not at all, never
with NaN or inf) at about a third of numpy's cost. The gather-sum (EmbeddingBag's forward) and
scatter-sum (every sparse gradient) replace scipy's sparse products, whose generic inner loop
does not vectorise over H, the row gather replaces ``np.take`` in the embedding forwards, and
the gather-dot gives EmbeddingDot's scores without an (N, K, H) array of gathered rows.
The loops that read rows scattered over a table prefetch the rows a few ids ahead, so that a
large vocabulary's trips to DRAM overlap instead of stalling one after another.

Every function has a twin of the same signature in [`tinygrad_nlp.backend.numpy_backend`][tinygrad_nlp.backend.numpy_backend],
which the tests hold these to; inputs a loop does not take (float16, a table that is not 2-D,
non-contiguous optimizer tables) are handed to that twin here, so callers never check. The
loops are compiled on first use, once per dtype (about half a second each), and cached on disk.
"""

from __future__ import annotations

import hashlib
import os
import types

import numpy as np

from tinygrad_nlp.backend import numpy_backend as _reference

NAME = "compiled"

__all__ = ["update_rows", "gather_rows", "gather_sum", "gather_dot", "scatter_sum", "search_cdf",
           "build_guide", "guided_search", "prefetch_row",
           "lstm_gates", "lstm_gates_backward", "gru_gates", "gru_gates_backward", "rnn_gates", "rnn_gates_backward"]

try:
    import numba as _numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    _numba = None

AVAILABLE = _numba is not None


def _jit(fn=None, cache=True, **options):
    if _numba is None:  # pragma: no cover
        return fn if fn is not None else (lambda f: f)
    # nogil: the two embedding tables are updated on two threads at once. error_model="numpy":
    # IEEE division (inf/NaN, as numpy gives) instead of a zero check that stops vectorization.
    # No fastmath by default: it would assume away the NaN and inf the finiteness check looks
    # for, and reorder arithmetic that must match the numpy code bit for bit. (The dot product
    # below asks for "reassoc" alone, which only lets it sum in vector lanes, as BLAS does.)
    jit = _numba.njit(nogil=True, cache=cache, error_model="numpy", **options)
    return jit(fn) if fn is not None else jit


# ----------------------------------------------------------------------------- prefetch
# The rows a batch names lie scattered over (V, H) tables. Past the last-level cache each is a
# trip to DRAM, and sorted ids with wide gaps (V = 1,000,000, a few thousand rows a step) give the
# CPU's stream prefetcher nothing to follow, so a loop over rows stalls on every one. A prefetch
# hint for the row a few ids ahead starts its trip while the current row is computed: measured on
# an Adam update of 2,000 rows, 1.34 -> 0.82 ms at V = 1,000,000 and 0.63 -> 0.47 ms at 10,000.

def _make_prefetch_row():
    """A numba intrinsic ``prefetch_row(table, r)``: hint the CPU to load row ``r`` of a 2-D
    array into cache (every 64-byte line of it). A hint: it never faults and changes no value."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch_row(typingctx, table, row):
        if not (isinstance(table, types.Array) and table.ndim == 2 and isinstance(row, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            table_type, row_type = signature.args
            array = context.make_array(table_type)(context, builder, args[0])
            intp = lambda value: context.get_constant(types.intp, value)  # noqa: E731
            r = context.cast(builder, args[1], row_type, types.intp)
            start = cgutils.get_item_pointer(context, builder, table_type, array, [r, intp(0)], wraparound=False)
            byte_ptr = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            hint = builder.module.declare_intrinsic(
                "llvm.prefetch", [byte_ptr], ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]))
            base = builder.bitcast(start, byte_ptr)
            width = builder.extract_value(array.shape, 1)
            row_bytes = builder.mul(width, intp(table_type.dtype.bitwidth // 8))
            # read (0), keep in all cache levels (3), data cache (1); offsets 0, 64, ... and the
            # last byte, whose line the steps miss when the row does not start on a line.
            with cgutils.for_range_slice(builder, intp(0), row_bytes, intp(64)) as (offset, _):
                builder.call(hint, [builder.gep(base, [offset]), i32(0), i32(3), i32(1)])
            with builder.if_then(builder.icmp_signed(">", row_bytes, intp(0))):
                last = builder.sub(row_bytes, intp(1))
                builder.call(hint, [builder.gep(base, [last]), i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(table, row), codegen

    return prefetch_row


if _numba is not None:
    prefetch_row = _make_prefetch_row()
else:  # pragma: no cover
    def prefetch_row(table, row):
        """No-op without numba."""

# How far ahead to prefetch, in rows (an optimizer update does ~30 operations per element, so a
# row's trip to DRAM overlaps two rows of work) and in ids (a gather only copies or sums).
UPDATE_AHEAD = 2
GATHER_AHEAD = 8


def _with_decay(rule, n_state):
    """``step(w, g, a, b, c, hyper) -> (w, a, b, c)``: the L2 decay (the last scalar) added to the
    gradient, then ``rule`` on the first ``n_state`` state values; the other slots pass through."""
    rule = _jit(inline="always", cache=_cacheable(rule))(rule)
    if n_state == 0:
        def step(w, g, a, b, c, hyper):
            return rule(w, g + hyper[hyper.size - 1] * w, hyper), a, b, c
    elif n_state == 1:
        def step(w, g, a, b, c, hyper):
            w, a = rule(w, g + hyper[hyper.size - 1] * w, a, hyper)
            return w, a, b, c
    elif n_state == 2:
        def step(w, g, a, b, c, hyper):
            w, a, b = rule(w, g + hyper[hyper.size - 1] * w, a, b, hyper)
            return w, a, b, c
    else:
        def step(w, g, a, b, c, hyper):
            return rule(w, g + hyper[hyper.size - 1] * w, a, b, c, hyper)
    return _jit(inline="always", cache=_cacheable(rule))(step)


def _cacheable(fn):
    """Compiled code is cached on disk only for a function from a file (not one typed at a prompt)."""
    fn = getattr(fn, "py_func", fn)
    return os.path.isfile(fn.__code__.co_filename)


def _two_pass_kernel(rule, n_state):
    """Compile a row update from an optimizer's scalar ``rule`` with ``n_state`` state tables.

    The kernel ``(data, s1, s2, s3, rows, grad, hyper)`` first computes every new value of the
    touched rows without writing, noting whether all are finite; only then does a second pass
    compute them again and write them in place, the weights and the first ``n_state`` state
    tables (unused table slots are given ``data`` and never written). Measured inside PTB
    training, this costs 1.5-2x an unchecked update, and less than keeping an undo copy of the
    rows (whose extra writes cost more than the recomputation). ``rows`` are sorted and unique;
    ``grad`` is (R, H); ``hyper`` is a 1-D array of the rule's scalars in the tables' dtype, so
    float32 stays float32.
    """
    step = _with_decay(rule, n_state)

    @_jit(inline="always", cache=False)
    def prefetch_ahead(data, s1, s2, s3, rows, i):
        if i + UPDATE_AHEAD < rows.size:
            ahead = rows[i + UPDATE_AHEAD]
            prefetch_row(data, ahead)
            if n_state > 0:
                prefetch_row(s1, ahead)
            if n_state > 1:
                prefetch_row(s2, ahead)
            if n_state > 2:
                prefetch_row(s3, ahead)

    # The kernel reads STEP, PREFETCH_AHEAD and N_STATE as globals of its own, not from a closure:
    # numba keys its disk cache by a pickle of a function's closure, and a compiled function
    # pickles with a fresh id in every process, so a closure over one is compiled again at every
    # start (about a second a kernel). Globals are frozen into the compiled code instead, and the
    # kernel's name carries the rule's name and a digest of its code, so two rules, or an edited
    # rule, never share cached code.
    kernel = types.FunctionType(_update_kernel.__code__, {**globals(), "STEP": step, "PREFETCH_AHEAD": prefetch_ahead,
                                                          "N_STATE": n_state}, "_update_kernel")
    kernel.__qualname__ = f"_update_kernel_{_rule_tag(rule)}_{n_state}"
    return _jit(cache=_cacheable(rule))(kernel)


def _rule_tag(rule):
    """``Module_Class_rule_<digest of its code>``: a name that changes whenever the rule does."""
    fn = getattr(rule, "py_func", rule)
    code = fn.__code__
    digest = hashlib.sha256(code.co_code + repr((code.co_consts, code.co_names, code.co_varnames)).encode())
    name = f"{fn.__module__}.{fn.__qualname__}"
    return "".join(ch if ch.isalnum() else "_" for ch in name) + "_" + digest.hexdigest()[:16]


def _update_kernel(data, s1, s2, s3, rows, grad, hyper):  # pragma: no cover - the template of the kernels
    zero = data.dtype.type(0)
    bad = False
    n = rows.size
    for i in range(n):
        PREFETCH_AHEAD(data, s1, s2, s3, rows, i)  # noqa: F821 - a global given to each kernel
        r = rows[i]
        for j in range(data.shape[1]):
            w, a, b, c = STEP(data[r, j], grad[i, j], s1[r, j], s2[r, j], s3[r, j], hyper)  # noqa: F821
            bad |= (w + a + b + c) * zero != zero  # 0 * (inf or NaN) is NaN
    if bad:
        return False
    for i in range(n):
        PREFETCH_AHEAD(data, s1, s2, s3, rows, i)  # noqa: F821 - pass 1 left the rows in L3, not all in L1/L2
        r = rows[i]
        for j in range(data.shape[1]):
            w, a, b, c = STEP(data[r, j], grad[i, j], s1[r, j], s2[r, j], s3[r, j], hyper)  # noqa: F821
            data[r, j] = w
            if N_STATE > 0:  # noqa: F821
                s1[r, j] = a
            if N_STATE > 1:  # noqa: F821
                s2[r, j] = b
            if N_STATE > 2:  # noqa: F821
                s3[r, j] = c
    return True


_update_kernels = {}  # rule function -> its compiled kernel
_ONE_ROW = np.zeros(1, np.int64)


def _fits_update(data, states, grad):
    """True when the kernel can update ``data`` and ``states`` in place from ``grad``: all
    C-contiguous, writable, float32 or float64 of one dtype, at most three state tables."""
    if data.dtype not in (np.float32, np.float64) or grad.dtype != data.dtype or len(states) > 3:
        return False
    if not grad.flags.c_contiguous:
        return False
    for a in (data, *states):
        if a.dtype != data.dtype or a.shape != data.shape or not (a.flags.c_contiguous and a.flags.writeable):
            return False
    return True


def update_rows(rule, data, states, rows, grad, hyper):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.update_rows`][tinygrad_nlp.backend.numpy_backend.update_rows], compiled from
    ``rule`` (once per rule and dtype). A dense update is one row of the flattened arrays."""
    if not _fits_update(data, states, grad):
        return _reference.update_rows(rule, data, states, rows, grad, hyper)
    kernel = _update_kernels.get(rule)
    if kernel is None:
        kernel = _update_kernels[rule] = _two_pass_kernel(rule, len(states))
    if rows is None or data.ndim != 2:
        if rows is None:
            tables = [a.reshape(1, -1) for a in (data, *states)]
            rows, grad = _ONE_ROW, grad.reshape(1, -1)
        else:  # rows of an N-d table: each row flattened
            tables = [a.reshape(a.shape[0], -1) for a in (data, *states)]
            grad = grad.reshape(grad.shape[0], -1)
    else:
        tables = [data, *states]
    tables += [tables[0]] * (4 - len(tables))
    return bool(kernel(*tables, np.ascontiguousarray(rows, dtype=np.int64), grad, hyper))


# ----------------------------------------------------------------------------- gather and scatter
# The embedding Functions' products with a sparse matrix whose rows (or columns) hold a fixed
# number of ids. scipy's general CSR/CSC kernels do the same sums but cannot vectorise the inner
# loop over H; these do, and need no index-pointer array.

# The gathers check each id as they read it (the loops do not check bounds otherwise) and
# return the position of the first bad one, or -1: no separate pass over the ids.

@_jit
def _gather_sum(table, ids, weights, group, out):
    n_ids, num_rows = ids.size, table.shape[0]
    for n in range(out.shape[0]):
        for c in range(group):
            k = n * group + c
            if k + GATHER_AHEAD < n_ids:
                prefetch_row(table, ids[k + GATHER_AHEAD])
            r, a = ids[k], weights[k]
            if r < 0 or r >= num_rows:
                return k
            for j in range(table.shape[1]):
                out[n, j] += a * table[r, j]
    return -1


@_jit
def _gather_rows(table, ids, out):
    n_ids, num_rows = ids.size, table.shape[0]
    for k in range(n_ids):
        if k + GATHER_AHEAD < n_ids:
            prefetch_row(table, ids[k + GATHER_AHEAD])
        r = ids[k]
        if r < 0 or r >= num_rows:
            return k
        for j in range(table.shape[1]):
            out[k, j] = table[r, j]
    return -1


@_jit(fastmath={"reassoc"})
def _gather_dot(table, ids, h, out):
    N, K = out.shape
    n_ids, num_rows = ids.size, table.shape[0]
    for n in range(N):
        for k in range(K):
            q = n * K + k
            if q + GATHER_AHEAD < n_ids:
                prefetch_row(table, ids[q + GATHER_AHEAD])
            r = ids[q]
            if r < 0 or r >= num_rows:
                return q
            acc = table.dtype.type(0)
            for j in range(table.shape[1]):
                acc += table[r, j] * h[n, j]
            out[n, k] = acc
    return -1


@_jit
def _scatter_sum(values, ids, weights, group, out):
    for k in range(ids.size):
        r, a, src = ids[k], weights[k], k // group
        for j in range(values.shape[1]):
            out[r, j] += a * values[src, j]


def fits_rows(table, ids, weights=None):
    """True when the gather and scatter loops take these arrays: ``table`` is a 2-D
    float32/float64 array, ``ids`` integers and ``weights`` (if any) of its dtype."""
    return (
        table.ndim == 2
        and table.dtype in (np.float32, np.float64)
        and (weights is None or weights.dtype == table.dtype)
        and ids.dtype.kind in "iu"
    )


def _raise_if_out_of_range(bad, flat_ids, num_rows):
    """Name the id a gather kernel stopped at (its return value ``bad`` >= 0)."""
    if bad >= 0:
        raise IndexError(f"id {int(flat_ids[bad])} is out of range for a table of {num_rows} rows")


def gather_sum(table, ids, weights, group):
    """``out[n] = sum_c weights[n*group + c] * table[ids[n*group + c]]``: (len(ids) // group, H)."""
    ids, weights = np.asarray(ids), np.asarray(weights)
    if not fits_rows(table, ids, weights):
        return _reference.gather_sum(table, ids, weights, group)
    out = np.zeros((ids.size // group, table.shape[1]), dtype=table.dtype)
    # The table is read in place whatever its layout (numba compiles a strided variant when
    # needed): copying it to rows would cost O(V) per call.
    flat = np.ascontiguousarray(ids).ravel()
    _raise_if_out_of_range(_gather_sum(table, flat, np.ascontiguousarray(weights).ravel(), group, out),
                           flat, table.shape[0])
    return out


def gather_rows(table, ids):
    """``table[ids]`` for a 2-D ``table`` and integer ``ids`` of any shape, prefetching rows
    ahead (``np.take`` copies row after row and waits on each one that is not in cache)."""
    ids = np.asarray(ids)
    if not fits_rows(table, ids):
        return _reference.gather_rows(table, ids)
    out = np.empty(ids.shape + (table.shape[1],), dtype=table.dtype)
    flat = np.ascontiguousarray(ids).ravel()
    _raise_if_out_of_range(_gather_rows(table, flat, out.reshape(-1, table.shape[1])), flat, table.shape[0])
    return out


def gather_dot(table, ids, h):
    """``out[n, k] = table[ids[n, k]] . h[n]`` for (N,) or (N, K) ``ids`` and (N, H) ``h`` of
    ``table``'s dtype: EmbeddingDot's scores without the (N, K, H) array of gathered rows
    (``out`` has ``ids``' shape). Summed in vector lanes, so the last bits may differ from
    ``np.matmul``'s order (which is not numpy's own fixed order either: it is BLAS's)."""
    ids = np.asarray(ids)
    if not (ids.size and fits_rows(table, ids, h)):
        return _reference.gather_dot(table, ids, h)
    N = ids.shape[0]
    if h.shape != (N, table.shape[1]):
        raise ValueError(f"gather_dot: h must have shape ({N}, {table.shape[1]}), got {h.shape}")
    out = np.empty((N, ids.size // max(N, 1)), dtype=table.dtype)
    flat = np.ascontiguousarray(ids).ravel()
    _raise_if_out_of_range(_gather_dot(table, flat, np.ascontiguousarray(h), out), flat, table.shape[0])
    return out.reshape(ids.shape)


def scatter_sum(values, ids, weights, group, num_rows):
    """``out[ids[k]] += weights[k] * values[k // group]`` for every k: a (num_rows, H) array."""
    ids, weights = np.asarray(ids), np.asarray(weights)
    if not fits_rows(values, ids, weights):
        return _reference.scatter_sum(values, ids, weights, group, num_rows)
    out = np.zeros((num_rows, values.shape[1]), dtype=values.dtype)
    _scatter_sum(np.ascontiguousarray(values), np.ascontiguousarray(ids).ravel(),
                 np.ascontiguousarray(weights).ravel(), group, out)
    return out


# ----------------------------------------------------------------------------- sampling
# Drawing from a discrete distribution is a search of its cumulative table. A binary search over
# V = 1,000,000 entries is 20 probes, most of them cache misses; a guide table (Chen and Asau's
# indexed search) of M buckets gives for each bucket [b/M, (b+1)/M) the first table index that can
# hold its draws, so a search starts next to its answer and takes one or two steps.

def build_guide(cdf, buckets=None):
    """The guide table of a non-decreasing ``cdf``: ``guide[b] = searchsorted(cdf, b / M, "right")``
    for ``M = buckets`` (default ``len(cdf)``), shape (M + 1,)."""
    m = len(cdf) if buckets is None else int(buckets)
    return np.searchsorted(cdf, np.arange(m + 1) / m, side="right").astype(np.intp)


@_jit
def _guided_search(cdf, guide, keys, out):
    m, n = guide.size - 1, cdf.size
    for k in range(keys.size):
        x = keys[k]
        b = min(max(int(x * m), 0), m - 1)
        i = guide[b]
        # The bucket's start may be off by rounding in x * m: step to the exact boundary either way.
        while i > 0 and cdf[i - 1] > x:
            i -= 1
        while i < n and cdf[i] <= x:
            i += 1
        out[k] = i


def guided_search(cdf, guide, keys):
    """``np.searchsorted(cdf, keys, side="right")`` for keys in [0, 1), the same answers, in
    expected O(1) per key with the table from [`build_guide`][build_guide]."""
    keys = np.asarray(keys, dtype=np.float64)
    out = np.empty(keys.shape, dtype=np.intp)
    _guided_search(cdf, guide, np.ascontiguousarray(keys).ravel(), out.ravel())
    return out


def search_cdf(cdf, keys, cache):
    """``np.searchsorted(cdf, keys, side="right")`` for keys in [0, 1), by the guide table
    (built on the first call and kept in the caller's ``cache`` dict for this ``cdf``)."""
    guide = cache.get("guide")
    if guide is None:
        guide = cache["guide"] = build_guide(cdf)
    return guided_search(cdf, guide, keys)


# ----------------------------------------------------------------------------- recurrent gates
lstm_gates, lstm_gates_backward = _reference.lstm_gates, _reference.lstm_gates_backward
gru_gates, gru_gates_backward = _reference.gru_gates, _reference.gru_gates_backward
rnn_gates, rnn_gates_backward = _reference.rnn_gates, _reference.rnn_gates_backward
