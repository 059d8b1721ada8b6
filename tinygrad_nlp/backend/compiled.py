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
        for j in range(out.shape[1]):  # out comes uninitialised (see gather_sum)
            out[n, j] = 0
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
    for r in range(out.shape[0]):  # out comes uninitialised (see scatter_sum)
        for j in range(out.shape[1]):
            out[r, j] = 0
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
    # np.empty, zeroed row by row in the loop: np.zeros of a few MB costs as much as the sums,
    # as calloc hands out fresh pages every call.
    out = np.empty((ids.size // group, table.shape[1]), dtype=table.dtype)
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
    out = np.empty((num_rows, values.shape[1]), dtype=values.dtype)  # zeroed in the loop, as gather_sum's
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
# One time step of a recurrent cell, between matrix products that stay in BLAS: numpy makes a
# dozen passes over the (N, 4H) gates, each a trip through memory and most with a temporary;
# these loops make one. numba compiles ``np.tanh`` of a float32 to a call of the C library's
# ``tanhf`` per element (about 13 ns, against numpy's vectorised 0.3 ns), so float32 gates use
# ``_tanh`` below instead: plain arithmetic that LLVM vectorises. The forward loops take float32
# only; a float64 forward goes to numpy (whose vectorised tanh beats the C library's 4x), the
# backward loops, which need no tanh, take both.

# tanh(x) / x = P(x^2) / Q(x^2) on [0, 9], a rational approximation fitted for this module
# (Loeb's iteratively reweighted least squares on the relative error, which stays below 1e-8).
# Evaluated in float64 and rounded once to float32 it is within 0.62 units in the last place of
# the exact tanh (numpy's own float32 tanh: 1.4). Past |x| = 9, tanh rounds to +-1 in float32.
_TANH_P = (0.9999999966845134, 0.13087303695776517, 0.0031076123049670903, 1.1191908507384852e-05,
           -2.0373850838917544e-08, 5.347354045007255e-11, -8.661367383378198e-14)
_TANH_Q = (1.0, 0.46420632304245174, 0.024509800998356646, 0.00025514316721509756)
_P0, _P1, _P2, _P3, _P4, _P5, _P6 = _TANH_P
_Q0, _Q1, _Q2, _Q3 = _TANH_Q


@_jit(inline="always")
def _tanh(x):
    """tanh of a float32, vectorisable; NaN stays NaN (the comparisons below are false for it)."""
    v = np.float64(x)
    big = v >= 9.0 or v <= -9.0
    if big:
        v = 0.0  # the answer is +-1 (below); keep the polynomial in its range
    s = v * v
    p = ((((((_P6 * s + _P5) * s + _P4) * s + _P3) * s + _P2) * s + _P1) * s + _P0)
    q = (((_Q3 * s + _Q2) * s + _Q1) * s + _Q0)
    t = v * p / q
    if big:
        t = 1.0 if x > 0 else -1.0
    return np.float32(t)


_HALF = np.float32(0.5)


@_jit(inline="always")
def _sigmoid(x):
    """The logistic sigmoid of a float32 as ``0.5 * tanh(0.5 * x) + 0.5`` (no overflow)."""
    return _HALF * _tanh(_HALF * x) + _HALF


# The loops take each row's gate blocks as 1-D views: LLVM then checks once per row that the
# blocks do not overlap and runs the vectorised loop (indexing a[n, H + j] in one 2-D array, it
# could not prove the blocks apart and ran 4x slower, element by element).

@_jit
def _lstm_gates(a, xw, c_prev, c, tanh_c, h):
    N, H = c.shape
    for n in range(N):
        ai, af, ag, ao = a[n, :H], a[n, H : 2 * H], a[n, 2 * H : 3 * H], a[n, 3 * H :]
        xi, xf, xg, xo = xw[n, :H], xw[n, H : 2 * H], xw[n, 2 * H : 3 * H], xw[n, 3 * H :]
        cp, cr, tr, hr = c_prev[n], c[n], tanh_c[n], h[n]
        for j in range(H):
            i = _sigmoid(ai[j] + xi[j])
            f = _sigmoid(af[j] + xf[j])
            g = _tanh(ag[j] + xg[j])
            o = _sigmoid(ao[j] + xo[j])
            ai[j], af[j], ag[j], ao[j] = i, f, g, o
            cn = f * cp[j] + i * g
            tc = _tanh(cn)
            cr[j], tr[j], hr[j] = cn, tc, o * tc


@_jit
def _lstm_gates_backward(gates, c_prev, tanh_c, dh, dc, dA):
    N, H = dc.shape
    one = gates.dtype.type(1)
    for n in range(N):
        gi, gf, gg, go = gates[n, :H], gates[n, H : 2 * H], gates[n, 2 * H : 3 * H], gates[n, 3 * H :]
        di, df, dg, do = dA[n, :H], dA[n, H : 2 * H], dA[n, 2 * H : 3 * H], dA[n, 3 * H :]
        cp, tr, dhr, dcr = c_prev[n], tanh_c[n], dh[n], dc[n]
        for j in range(H):
            i, f, g, o, tc, d_h = gi[j], gf[j], gg[j], go[j], tr[j], dhr[j]
            d = dcr[j] + d_h * o * (one - tc * tc)
            di[j] = d * g * i * (one - i)
            df[j] = d * cp[j] * f * (one - f)
            dg[j] = d * i * (one - g * g)
            do[j] = d_h * tc * o * (one - o)
            dcr[j] = d * f


@_jit
def _gru_gates(hw, xw, b_h, h_prev, gates, h):
    N, H = h.shape
    br, bz, bn = b_h[:H], b_h[H : 2 * H], b_h[2 * H :]
    for n in range(N):
        wr, wz, wn = hw[n, :H], hw[n, H : 2 * H], hw[n, 2 * H :]
        xr, xz, xn = xw[n, :H], xw[n, H : 2 * H], xw[n, 2 * H :]
        gr, gz, gn = gates[n, :H], gates[n, H : 2 * H], gates[n, 2 * H :]
        hp, hr = h_prev[n], h[n]
        for j in range(H):
            ar, az, hn = wr[j] + br[j], wz[j] + bz[j], wn[j] + bn[j]
            wr[j], wz[j], wn[j] = ar, az, hn
            r = _sigmoid(xr[j] + ar)
            z = _sigmoid(xz[j] + az)
            m = _tanh(r * hn + xn[j])
            gr[j], gz[j], gn[j] = r, z, m
            hr[j] = (hp[j] - m) * z + m


@_jit
def _gru_gates_backward(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev):
    N, H = dh.shape
    one = gates.dtype.type(1)
    for n in range(N):
        gr, gz, gn, wn = gates[n, :H], gates[n, H : 2 * H], gates[n, 2 * H :], hw[n, 2 * H :]
        xr, xz, xn = d_xw[n, :H], d_xw[n, H : 2 * H], d_xw[n, 2 * H :]
        hr_, hz, hn_ = d_hw[n, :H], d_hw[n, H : 2 * H], d_hw[n, 2 * H :]
        hp, dhr, dpr = h_prev[n], dh[n], dh_prev[n]
        for j in range(H):
            r, z, m, hn, d = gr[j], gz[j], gn[j], wn[j], dhr[j]
            dm = d * (one - z) * (one - m * m)
            dr = dm * hn * r * (one - r)
            dz = d * (hp[j] - m) * z * (one - z)
            xr[j], xz[j], xn[j] = dr, dz, dm
            hr_[j], hz[j], hn_[j] = dr, dz, dm * r
            dpr[j] = d * z


@_jit
def _rnn_gates(a, xw):
    N, H = a.shape
    for n in range(N):
        ar, xr = a[n], xw[n]
        for j in range(H):
            ar[j] = _tanh(ar[j] + xr[j])


@_jit
def _rnn_gates_backward(h, dh, dA):
    N, H = h.shape
    one = h.dtype.type(1)
    for n in range(N):
        hr, dhr, dr = h[n], dh[n], dA[n]
        for j in range(H):
            dr[j] = (one - hr[j] * hr[j]) * dhr[j]


def _fits_gates(*arrays, dtypes=(np.float32, np.float64)):
    """True when the gate loops take these arrays: all of one dtype among ``dtypes``."""
    dtype = arrays[0].dtype
    return dtype in dtypes and all(a.dtype == dtype for a in arrays)


def lstm_gates(a, xw, c_prev, c, tanh_c, h):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.lstm_gates`][tinygrad_nlp.backend.numpy_backend.lstm_gates], one loop."""
    if not _fits_gates(a, xw, c_prev, c, tanh_c, h, dtypes=(np.float32,)):
        return _reference.lstm_gates(a, xw, c_prev, c, tanh_c, h)
    _lstm_gates(a, xw, c_prev, c, tanh_c, h)


def lstm_gates_backward(gates, c_prev, tanh_c, dh, dc, dA):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.lstm_gates_backward`][tinygrad_nlp.backend.numpy_backend.lstm_gates_backward], one loop."""
    if not _fits_gates(gates, c_prev, tanh_c, dh, dc, dA):
        return _reference.lstm_gates_backward(gates, c_prev, tanh_c, dh, dc, dA)
    _lstm_gates_backward(gates, c_prev, tanh_c, dh, dc, dA)


def gru_gates(hw, xw, b_h, h_prev, gates, h):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.gru_gates`][tinygrad_nlp.backend.numpy_backend.gru_gates], one loop."""
    if not _fits_gates(hw, xw, b_h, h_prev, gates, h, dtypes=(np.float32,)):
        return _reference.gru_gates(hw, xw, b_h, h_prev, gates, h)
    _gru_gates(hw, xw, b_h, h_prev, gates, h)


def gru_gates_backward(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.gru_gates_backward`][tinygrad_nlp.backend.numpy_backend.gru_gates_backward], one loop."""
    if not _fits_gates(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev):
        return _reference.gru_gates_backward(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev)
    _gru_gates_backward(gates, hw, h_prev, dh, d_xw, d_hw, dh_prev)


def rnn_gates(a, xw):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.rnn_gates`][tinygrad_nlp.backend.numpy_backend.rnn_gates], one loop."""
    if not _fits_gates(a, xw, dtypes=(np.float32,)):
        return _reference.rnn_gates(a, xw)
    _rnn_gates(a, xw)


def rnn_gates_backward(h, dh, dA):
    """Same contract as [`tinygrad_nlp.backend.numpy_backend.rnn_gates_backward`][tinygrad_nlp.backend.numpy_backend.rnn_gates_backward], one loop."""
    if not _fits_gates(h, dh, dA):
        return _reference.rnn_gates_backward(h, dh, dA)
    _rnn_gates_backward(h, dh, dA)
