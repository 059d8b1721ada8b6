"""Layers: parameter collection, forward passes and safe weight files."""

import zipfile

import numpy as np
import pytest

import tinygrad_nlp.functions as F
from tinygrad_nlp import Parameter, SparseRows
from tinygrad_nlp.gradcheck import gradient_check
from tinygrad_nlp.layers import Embedding, Layer, Linear, load_npz, save_npz


class TwoLayer(Layer):
    def __init__(self):
        super().__init__()
        self.l1 = Linear(3, 4, rng=0)
        self.l2 = Linear(4, 2, nobias=True, rng=1)
        self.scale = Parameter(np.ones(1, np.float32), name="scale")
        self.not_a_param = np.zeros(3)

    def forward(self, x):
        return self.l2(F.tanh(self.l1(x))) * self.scale


def test_layer_collects_parameters_recursively_in_order():
    net = TwoLayer()
    names = list(net.named_params())
    assert names == ["l1.W", "l1.b", "l2.W", "scale"]
    assert len(list(net.params())) == 4
    del net.scale
    assert "scale" not in net.named_params()


def test_layer_without_super_init_is_explained():
    class Bad(Layer):
        def __init__(self):
            self.W = Parameter(np.ones(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__"):
        Bad()


def test_cleargrads_resets_every_parameter():
    net = TwoLayer()
    F.sum(net(np.ones((2, 3), np.float32))).backward()
    assert all(p.grad is not None for p in net.params())
    net.cleargrads()
    assert all(p.grad is None for p in net.params())


def test_linear_values_and_gradients():
    lin = Linear(3, 2, W=np.arange(6.0).reshape(3, 2), dtype=np.float64)
    x = np.array([[1.0, 0.0, -1.0]])
    assert np.allclose(lin(x).data, x @ lin.W.data)
    gradient_check(lambda W, b, xx: F.linear(xx, W, b), lin.W.data, np.ones(2), np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"W must have shape \(3, 2\)"):
        Linear(3, 2, W=np.ones((2, 3)))


def test_embedding_layer_lookup_bag_and_dot():
    emb = Embedding(6, 3, sparse=True, rng=0)
    assert emb.W.dtype == np.float32 and emb.W.shape == (6, 3)
    ids = np.array([[0, 5], [2, 2]])
    assert np.allclose(emb(ids).data, emb.W.data[ids])
    assert np.allclose(emb.bag(ids).data, emb.W.data[ids].mean(axis=1))
    h = np.ones((2, 3), np.float32)
    assert np.allclose(emb.dot(h, np.array([1, 4])).data, emb.W.data[[1, 4]].sum(axis=1))
    F.sum(emb.bag(ids)).backward()
    assert isinstance(emb.W.grad, SparseRows)
    with pytest.raises(ValueError, match=r"\(6, 3\)"):
        Embedding(6, 3, W=np.ones((3, 6)))


def test_save_and_load_weights_round_trip(tmp_path):
    net = TwoLayer()
    path = tmp_path / "w.npz"
    net.save_weights(path)
    other = TwoLayer()
    for p in other.params():
        p.data = np.zeros_like(p.data)
    other.load_weights(path)
    for (k, a), (_, b) in zip(net.named_params().items(), other.named_params().items()):
        assert np.array_equal(a.data, b.data) and a.data.dtype == b.data.dtype, k


def test_load_weights_names_missing_extra_and_wrong_shapes(tmp_path):
    net = TwoLayer()
    path = tmp_path / "w.npz"
    arrays = {k: p.data for k, p in net.named_params().items()}
    arrays.pop("scale")
    arrays["l1.W"] = np.zeros((5, 5), np.float32)
    arrays["bogus"] = np.zeros(1)
    save_npz(path, arrays)
    before = {k: p.data.copy() for k, p in net.named_params().items()}
    with pytest.raises(ValueError) as info:
        net.load_weights(path)
    msg = str(info.value)
    assert str(path) in msg and "missing ['scale']" in msg and "unexpected ['bogus']" in msg and "l1.W" in msg
    for k, p in net.named_params().items():  # nothing was modified
        assert np.array_equal(p.data, before[k])


def test_loading_refuses_pickled_object_arrays(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_npz(path)
    with pytest.raises(TypeError, match="pickle"):
        save_npz(tmp_path / "o.npz", {"x": np.array([None], dtype=object)})


def test_loading_corrupt_truncated_or_missing_files(tmp_path):
    net = TwoLayer()
    good = tmp_path / "good.npz"
    net.save_weights(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        net.load_weights(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        net.load_weights(garbage)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        net.load_weights(tmp_path / "nope.npz")
    assert zipfile.is_zipfile(good)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "w.npz"
    save_npz(path, {"a": np.ones(3)})
    before = path.read_bytes()

    class Exploding:
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_npz(path, {"a": np.zeros(3), "b": Exploding()})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left behind
