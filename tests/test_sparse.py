"""Row-sparse gradients and the scatter-add kernels, against np.add.at as the reference."""

import numpy as np
import pytest

from tinygrad_nlp import Variable
from tinygrad_nlp import sparse as S
from tinygrad_nlp.sparse import SparseRows, scatter_add_dense, scatter_add_rows, unique_inverse

# Every test runs against both backend implementations (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("impl")

rng = np.random.default_rng(3)


def reference(ids, values, V, weights=None, group=1):
    out = np.zeros((V, values.shape[1]), values.dtype)
    rows = np.repeat(values, group, axis=0)
    if weights is not None:
        rows = rows * weights.reshape(-1, 1)
    np.add.at(out, ids.ravel(), rows)
    return out


@pytest.mark.parametrize("n", [1, 17, 1000, S.PARALLEL_MIN_ROWS + 5])  # the last runs on threads
@pytest.mark.parametrize("V", [5, 300, 70_000])  # 70,000 ids do not fit the 16-bit radix sort
def test_scatter_add_rows_and_dense_match_add_at(n, V):
    ids = rng.integers(0, V, size=n)
    values = rng.standard_normal((n, 3)).astype(np.float32)
    ref = reference(ids, values, V)
    rows, sums = scatter_add_rows(ids, values)
    assert rows.dtype == np.int64 and sums.dtype == np.float32
    assert np.array_equal(rows, np.unique(ids))
    assert np.allclose(sums, ref[rows], atol=1e-5)
    assert np.allclose(scatter_add_dense(ids, values, V), ref, atol=1e-5)


@pytest.mark.parametrize("n", [10, S.PARALLEL_MIN_ROWS + 3])
def test_grouped_and_weighted_scatter(n):
    V, C = 50, 4
    ids = rng.integers(0, V, size=(n, C))
    values = rng.standard_normal((n, 2))
    weights = rng.random((n, C))
    ref = reference(ids, values, V, weights=weights, group=C)
    rows, sums = scatter_add_rows(ids, values, weights=weights, group=C)
    assert np.allclose(sums, ref[rows])
    assert np.allclose(scatter_add_dense(ids, values, V, weights=weights, group=C), ref)


def test_unique_inverse_reconstructs_and_handles_empty():
    ids = rng.integers(0, 100, size=500)
    u, inv = unique_inverse(ids)
    assert np.array_equal(u[inv], ids) and np.array_equal(u, np.unique(ids))
    u, inv = unique_inverse(np.array([], dtype=np.int64))
    assert u.size == 0 and inv.size == 0
    rows, sums = scatter_add_rows(np.array([], dtype=np.int64), np.zeros((0, 3)))
    assert rows.size == 0 and sums.shape == (0, 3)


def test_sparse_rows_lazily_concatenates_and_coalesces():
    a = SparseRows(np.array([3, 1, 3]), np.ones((3, 2)), (5, 2))
    b = SparseRows(np.array([0, 1]), np.full((2, 2), 2.0), (5, 2))
    c = a + b
    assert isinstance(c, SparseRows) and len(c._parts) == 2
    assert np.array_equal(c.rows, [0, 1, 3])
    assert np.array_equal(c.values, [[2, 2], [3, 3], [2, 2]])
    assert np.array_equal(c.to_dense(), [[2, 2], [3, 3], [0, 0], [2, 2], [0, 0]])
    assert c.sq_norm() == pytest.approx(4 * 2 + 9 * 2 + 4 * 2)
    c.scale(0.5)
    assert np.array_equal(c.values, [[1, 1], [1.5, 1.5], [1, 1]])


def test_sparse_plus_dense_is_dense_and_does_not_modify_inputs():
    s = SparseRows(np.array([1, 1]), np.ones((2, 2)), (3, 2))
    d = Variable(np.zeros((3, 2)))
    out = s + d
    assert isinstance(out, Variable)
    assert np.array_equal(out.data, [[0, 0], [2, 2], [0, 0]])
    assert np.all(d.data == 0)
    out2 = d.data + s  # ndarray on the left goes through SparseRows.__radd__
    assert isinstance(out2, np.ndarray) and np.array_equal(out2, out.data)


def test_sparse_rows_validation():
    with pytest.raises(ValueError, match="3 ids with values of shape"):
        SparseRows(np.array([0, 1, 2]), np.ones((2, 2)), (5, 2))
    a = SparseRows(np.array([0]), np.ones((1, 2)), (5, 2))
    with pytest.raises(ValueError, match=r"shapes \(5, 2\) and \(6, 2\)"):
        a + SparseRows(np.array([0]), np.ones((1, 2)), (6, 2))
    with pytest.raises(ValueError, match=r"shape \(5, 2\) to one of shape \(4, 2\)"):
        a + Variable(np.zeros((4, 2)))


@pytest.mark.parametrize("layout", ["csc", "csr"])
def test_sparse_matmul_is_the_dense_product(layout):
    n_row, n_col = 7, 5
    dense = rng.standard_normal((n_row, n_col)).astype(np.float32) * (rng.random((n_row, n_col)) > 0.5)
    X = rng.standard_normal((n_col, 3)).astype(np.float32)
    compressed = dense.T if layout == "csc" else dense  # walk columns (csc) or rows (csr)
    indptr, indices, data = [0], [], []
    for line in compressed:
        nz = np.flatnonzero(line)
        indices += list(nz)
        data += list(line[nz])
        indptr.append(len(indices))
    args = ((n_row, n_col), np.array(indptr, np.int64), np.array(indices, np.int64), np.array(data, np.float32), X)
    assert np.allclose(S.sparse_matmul(layout, *args), dense @ X, atol=1e-6)


@pytest.mark.parametrize("low, high", [(0, 60_000), (0, 1_000_000), (0, 2**32 - 1), (2**33, 2**33 + 500), (-50, 50)])
def test_unique_inverse_in_every_id_range_matches_numpy(low, high):
    """16-bit radix, two 16-bit radix passes, and the plain argsort (ids past 32 bits or negative)."""
    ids = rng.integers(low, high, size=5000, endpoint=True)
    ids[:3] = [low, high, low]
    u, inv = unique_inverse(ids)
    expected_u, expected_inv = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(u, expected_u)
    np.testing.assert_array_equal(inv, expected_inv)
