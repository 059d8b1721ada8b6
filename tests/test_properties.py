"""Property-based tests (hypothesis): gradients under random broadcasting and of random graphs
against central differences, and fuzzing of every file loader with random, truncated and
bit-flipped bytes.

The examples are derandomized so CI is deterministic. For a longer, randomized hunt set
``TINYGRAD_NLP_HYPOTHESIS=thorough`` (ten times the examples, a fresh seed each run).
"""

import json
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinygrad_nlp.functions as F
from tinygrad_nlp import Variable
from tinygrad_nlp.gradcheck import gradient_check
from tinygrad_nlp.layers import Layer, Linear, load_npz
from tinygrad_nlp.models import CBOW
from tinygrad_nlp.optimizers import Adam
from tinygrad_nlp.text import Vocabulary, create_contexts_target, load_text
from tinygrad_nlp.train import CHECKPOINT_NAME, Trainer
from tinygrad_nlp.vectors import WordVectors

THOROUGH = os.environ.get("TINYGRAD_NLP_HYPOTHESIS") == "thorough"


def examples(n):
    return settings(max_examples=n * 10 if THOROUGH else n, deadline=None, derandomize=not THOROUGH,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


seeds = st.integers(0, 2**32 - 1)


def values(rng, shape, low=-1.5, high=1.5):
    return rng.uniform(low, high, size=shape)


def away_from_zero(rng, shape):
    return rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


# =====================================================================================
# Broadcasting gradients
# =====================================================================================

BINARY = {
    "add": (F.add, values),
    "sub": (F.sub, values),
    "mul": (F.mul, values),
    "div": (F.div, away_from_zero),
    "operator+": (lambda a, b: a + b, values),
    "operator/": (lambda a, b: a / b, away_from_zero),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
@examples(100)
def test_broadcasting_binary_ops_have_correct_gradients(name, shapes, seed):
    op, second = BINARY[name]
    rng = np.random.default_rng(seed)
    (s0, s1), result = shapes.input_shapes, shapes.result_shape
    a, b = values(rng, s0), second(rng, s1)
    y = op(Variable(a), Variable(b))
    assert y.shape == result
    assert np.allclose(y.data, {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
                                "operator+": np.add, "operator/": np.divide}[name](a, b))
    gradient_check(op, a, b)
    # float32 in, float32 gradients of exactly the inputs' shapes out
    x0, x1 = Variable(a.astype(np.float32)), Variable(b.astype(np.float32))
    op(x0, x1).backward()
    assert x0.grad.shape == s0 and x1.grad.shape == s1
    assert x0.grad.dtype == np.float32 and x1.grad.dtype == np.float32


@given(shapes=mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2, max_side=3), seed=seeds)
@examples(150)
def test_matmul_with_batch_broadcasting_has_correct_gradients(shapes, seed):
    rng = np.random.default_rng(seed)
    (sa, sb), result = shapes.input_shapes, shapes.result_shape
    a, b = values(rng, sa), values(rng, sb)
    y = F.matmul(Variable(a), Variable(b))
    assert y.shape == result == np.matmul(a, b).shape
    assert np.allclose(y.data, a @ b)
    gradient_check(F.matmul, a, b)


# =====================================================================================
# Random graphs: compositions of a handful of ops over shared inputs, nodes reused
# =====================================================================================

# Every node has a shape whose dimensions are each 1 or the full (2, 3), so any two broadcast.
# Each op keeps values bounded, so finite differences stay accurate at any depth.
UNARY = {
    "tanh": F.tanh,
    "sigmoid": F.sigmoid,
    "sin": F.sin,
    "cos": F.cos,
    "exp_tanh": lambda x: F.exp(F.tanh(x)),
    "cube_tanh": lambda x: F.tanh(x) ** 3,
    "neg": lambda x: -x,
    "scale": lambda x: x * 0.5 + 1.0,
    "mean_rows": lambda x: F.mean(x, axis=0, keepdims=True),
    "sum_cols": lambda x: F.sum(x, axis=1, keepdims=True) * (1.0 / 3.0),
    "reverse_rows": lambda x: x[::-1],
    "repeat_row": lambda x: F.get_item(x, np.array([x.shape[0] - 1, x.shape[0] - 1])),  # a repeated index
    "transpose_twice": lambda x: F.transpose(F.transpose(x)),
    "reshape_round_trip": lambda x: F.reshape(F.reshape(x, (-1,)), x.shape),
    "max_cols": lambda x: F.max(x, axis=1, keepdims=True),
    "to_full": lambda x: F.broadcast_to(x, (2, 3)),
}
BINARY_NODES = {
    "add": lambda x, y: x + y,
    "sub": lambda x, y: x - y,
    "mul_tanh": lambda x, y: x * F.tanh(y),
    "div_bounded": lambda x, y: x / (1.0 + y * y),
    "matmul_W": None,  # x (broadcast to (2, 3)) @ W (3, 3), W being the fourth input
}
OPS = sorted(UNARY) + sorted(BINARY_NODES)


def build_graph(recipe):
    """f(x0, x1, x2, W) applying ``recipe`` [(op, i, j), ...]; i and j pick earlier nodes (mod count)."""

    def f(x0, x1, x2, W):
        nodes = [x0, x1, F.sum(x2, axis=0, keepdims=True)]  # a (1, 3) node from the start
        created = []
        for op, i, j in recipe:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            if op in UNARY:
                out = UNARY[op](a)
            elif op == "matmul_W":
                out = F.matmul(F.broadcast_to(a, (2, 3)), W) * (1.0 / 3.0)
            else:
                out = BINARY_NODES[op](a, b)
            nodes.append(out)
            created.append(out)
        return F.stack([F.sum(n) for n in created])  # every node reaches the output

    return f


@given(recipe=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=8),
       seed=seeds)
@examples(300)
def test_random_graphs_match_numerical_gradients(recipe, seed):
    rng = np.random.default_rng(seed)
    x0, x1, x2 = values(rng, (2, 3)), values(rng, (2, 3)), values(rng, (2, 3))
    W = values(rng, (3, 3))
    f = build_graph(recipe)
    # inputs untied: a maximum taken over distinct inputs is unique, so its gradient is defined
    with np.errstate(all="raise"):
        gradient_check(f, _untie(x0, rng), _untie(x1, rng), _untie(x2, rng), W, rtol=1e-4, atol=1e-6)


def _untie(x, rng):
    """Spread values so no two entries are within 1e-3 (max/min gradients are then well defined)."""
    flat = x.ravel()
    order = np.argsort(flat)
    flat[order] = np.sort(flat) + np.arange(flat.size) * 1e-2
    return flat.reshape(x.shape)


def test_random_graph_builder_covers_every_op():
    """Guards the property above: each op builds and runs on every node shape it can meet."""
    f = build_graph([(op, 0, 2) for op in OPS] + [(op, 2, 0) for op in OPS])
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    out = f(Variable(x), Variable(x + 0.1), Variable(x - 0.2), Variable(np.eye(3)))
    assert out.shape == (2 * len(OPS),)


# =====================================================================================
# Fuzzing the file loaders
# =====================================================================================

CORPUS = np.cumsum(np.random.default_rng(0).integers(0, 3, size=104)) % 20
WORDS = ["x", "y", "zé", "w"]


class _Tiny(Layer):
    def __init__(self):
        super().__init__()
        self.a = Linear(3, 2, rng=0)
        self.b = Linear(2, 2, nobias=True, rng=1)


def _cbow():
    return CBOW(20, 4, 1, CORPUS, seed=0)


def _trainer():
    model = _cbow()
    return Trainer(model, Adam().setup(model), progress=False)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """One valid file per loader, as bytes."""
    d = tmp_path_factory.mktemp("valid")
    trainer = _trainer()
    contexts, target = create_contexts_target(CORPUS, 1)
    trainer.fit(contexts, target, max_epoch=1, batch_size=50, seed=0, checkpoint_dir=d)
    _Tiny().save_weights(d / "w.npz")
    Vocabulary.build("a b c a é <unk>".split()).save(d / "v.json")
    wv = WordVectors(np.random.default_rng(1).normal(size=(4, 3)), WORDS)
    wv.save_word2vec_format(d / "v.txt")
    wv.save_word2vec_format(d / "v.bin", binary=True)
    return {
        "load_npz": (d / "w.npz").read_bytes(),
        "Layer.load_weights": (d / "w.npz").read_bytes(),
        "Trainer.load_checkpoint": (d / CHECKPOINT_NAME).read_bytes(),
        "Vocabulary.load": (d / "v.json").read_bytes(),
        "load_word2vec_format-text": (d / "v.txt").read_bytes(),
        "load_word2vec_format-binary": (d / "v.bin").read_bytes(),
        "evaluate_analogies": ": capital\nx y zé w\ny x w zé\n: other\nx w y zé\n".encode(),
        "evaluate_word_pairs": "# word1\tword2\tscore\nx\ty\t1.5\ny\tw\t2\nzé\tx\t3\n".encode(),
        "load_text": "Hello world\nsecond line é\n\n third  line\n".encode(),
    }


def _check_npz(result):
    return all(isinstance(a, np.ndarray) and not a.dtype.hasobject for a in result.values())


def _load_weights(path):
    layer = _Tiny()
    before = {k: p.data.copy() for k, p in layer.named_params().items()}
    try:
        layer.load_weights(path)
    except ValueError:
        assert all(np.array_equal(p.data, before[k]) for k, p in layer.named_params().items())  # untouched
        raise
    assert all(p.data.shape == before[k].shape and p.data.dtype == before[k].dtype
               for k, p in layer.named_params().items())


def _load_checkpoint(path):
    trainer = _trainer()
    before = {k: p.data.copy() for k, p in trainer.model.named_params().items()}
    try:
        trainer.load_checkpoint(path)
    except ValueError:
        assert all(np.array_equal(p.data, before[k]) for k, p in trainer.model.named_params().items())
        raise
    assert all(p.data.shape == before[k].shape for k, p in trainer.model.named_params().items())


def _check_vectors(wv):
    return wv.vectors.ndim == 2 and len(wv.words) == len(wv.vectors) and bool(np.isfinite(wv.vectors).all())


_QUERY = WordVectors(np.random.default_rng(2).normal(size=(4, 3)), WORDS)

# loader name -> (call, check of a successful result, the exceptions its docstring documents)
LOADERS = {
    # "a truncated, corrupt or pickle-bearing file raises ValueError naming it"
    "load_npz": (load_npz, _check_npz, (ValueError,)),
    # "Raises ValueError naming the file and listing missing, unexpected or mis-shaped arrays"
    "Layer.load_weights": (_load_weights, None, (ValueError,)),
    # "a checkpoint of another model, or a corrupt one, raises ValueError naming the file"
    "Trainer.load_checkpoint": (_load_checkpoint, None, (ValueError,)),
    # "ValueError naming the file and the problem for invalid/truncated JSON, ..."
    "Vocabulary.load": (Vocabulary.load, lambda v: isinstance(v, Vocabulary), (ValueError,)),
    # "Any inconsistency ... raises ValueError naming the file and the line number"
    "load_word2vec_format-text": (WordVectors.load_word2vec_format, _check_vectors, (ValueError,)),
    "load_word2vec_format-binary": (lambda p: WordVectors.load_word2vec_format(p, binary=True), _check_vectors,
                                    (ValueError,)),
    # "Raises ValueError naming the file and line for a malformed line"
    "evaluate_analogies": (_QUERY.evaluate_analogies, lambda r: r.correct <= r.total, (ValueError,)),
    "evaluate_word_pairs": (_QUERY.evaluate_word_pairs, lambda r: r.pairs_used <= r.pairs_total, (ValueError,)),
    # "ValueError (naming it) for a file without tokens" / undecodable bytes (errors="strict")
    "load_text": (load_text, lambda r: r[0].dtype == np.int32 and int(r[0].max()) < len(r[1]), (ValueError,)),
}

STRUCTURAL = b" \n\t\r:#-+.,0123456789eEnaifNIF\x00\x80\xff\"{}[]PK\x03\x04\x93"


def corruptions(valid):
    n = len(valid)

    def flip(changes):
        b = bytearray(valid)
        for pos, bit in changes:
            b[pos] ^= 1 << bit
        return bytes(b)

    def replace(changes):
        b = bytearray(valid)
        for pos, byte in changes:
            b[pos] = byte
        return bytes(b)

    def insert(args):
        pos, extra = args
        return valid[:pos] + extra + valid[pos:]

    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, n - 1).map(lambda k: valid[:k]),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 7)), min_size=1, max_size=6).map(flip),
        st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(list(STRUCTURAL))), min_size=1, max_size=6).map(replace),
        st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=24)).map(insert),
    )


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("loader", list(LOADERS))
@given(data=st.data())
@examples(250)
def test_loaders_raise_only_their_documented_errors_on_damaged_files(loader, valid_files, fuzz_dir, data):
    call, check, allowed = LOADERS[loader]
    blob = data.draw(corruptions(valid_files[loader]), label="file bytes")
    path = fuzz_dir / f"damaged-{loader}"
    path.write_bytes(blob)
    try:
        result = call(path)
    except allowed as err:
        assert path.name in str(err), f"the error does not name the file: {err}"
    else:
        if check is not None:
            assert check(result)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_loaders_accept_their_valid_file(loader, valid_files, fuzz_dir):
    """Guards the fuzz test above: the undamaged file loads, so the fuzzing starts from a real format."""
    call, check, _ = LOADERS[loader]
    path = fuzz_dir / f"valid-{loader}"
    path.write_bytes(valid_files[loader])
    result = call(path)
    if check is not None:
        assert check(result)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
META_FIELDS = ["epoch", "epoch_loss", "eval", "seconds", "targets_seen", "rng", "generators"]


@given(changes=st.dictionaries(st.sampled_from(META_FIELDS), JSON, min_size=1, max_size=3))
@examples(150)
def test_checkpoint_with_random_metadata_fields_raises_value_error_or_loads(valid_files, fuzz_dir, changes):
    """The checkpoint's metadata with a few fields replaced by random JSON (the CRC only protects it
    against accidents, not against a wrong writer): it loads, or raises a ValueError naming the
    file with the model untouched; never another exception."""
    from tinygrad_nlp.layers import save_npz

    src = fuzz_dir / "valid.npz"
    src.write_bytes(valid_files["Trainer.load_checkpoint"])
    arrays = load_npz(src)
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    arrays["meta"] = np.array(json.dumps(meta))
    path = fuzz_dir / "meta-checkpoint.npz"
    save_npz(path, arrays)
    try:
        _load_checkpoint(path)
    except ValueError as err:
        assert path.name in str(err)
