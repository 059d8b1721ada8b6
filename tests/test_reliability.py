"""Reliability and safety: loud, kind errors; no pickle; atomic writes; exact resume;
steady memory. Cases already proven elsewhere are not repeated here: see the Reliability section
of the README for the full map from guarantee to test. Property-based and fuzz tests live in
test_properties.py.
"""

import ast
import errno
import gc
import hashlib
import io as _pyio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nlp as tg
import tinygrad_nlp.functions as F
import tinygrad_nlp.io as tio
import tinygrad_nlp.text.corpora as corpora
from tinygrad_nlp import Parameter, Variable, viz
from tinygrad_nlp.layers import Linear, load_npz, save_npz
from tinygrad_nlp.models import CBOW, SimpleCBOW, SkipGram, nearest_words
from tinygrad_nlp.optimizers import SGD, Adam
from tinygrad_nlp.text import Vocabulary, create_contexts_target, load_ptb
from tinygrad_nlp.train import CHECKPOINT_NAME, Trainer
from tinygrad_nlp.vectors import WordVectors

PACKAGE = Path(tg.__file__).resolve().parent
_REAL = {"fsync": os.fsync, "replace": os.replace}


def ns_data(V=40, N=600, window=2, seed=0):
    rng = np.random.default_rng(seed)
    corpus = np.cumsum(rng.integers(0, 3, size=N + 2 * window)) % V
    contexts, target = create_contexts_target(corpus, window)
    return corpus, contexts, target


def small_cbow(seed=0, V=40, H=8, window=2):
    corpus, contexts, target = ns_data(V=V, window=window)
    return CBOW(V, H, window, corpus, seed=seed), contexts, target


# =====================================================================================
# Bad input at the Function level: a clear error naming the value, shape or argument
# =====================================================================================

@pytest.mark.parametrize(
    "ids, value, position",
    [
        (np.array([[0, 5]]), r"id 5 ", r"at position \(0, 1\) is out of range for V=5"),
        (np.array([[-1, 2]]), r"id -1 ", r"at position \(0, 0\) is out of range for V=5"),
        (np.array([[0.5, 1.0]]), r"must be integers.*0\.5", ""),
        (np.array([[True, False]]), r"must be integers.*bool", ""),
    ],
)
def test_embedding_bag_and_negative_sampling_name_the_bad_id(ids, value, position):
    W = Parameter(np.ones((5, 2)))
    with pytest.raises(F.InvalidIdError, match=value + position):
        F.embedding_bag(W, ids)
    if ids.dtype != bool:  # (bool negatives: see the next test)
        with pytest.raises(F.InvalidIdError, match=value):  # negatives sit after the target column
            F.negative_sampling_loss(Variable(np.ones((1, 2))), W, np.array([1]), ids)
    assert W.grad is None  # nothing was recorded or accumulated


def test_negative_sampling_refuses_bool_negatives():
    with pytest.raises(F.InvalidIdError, match="must be integers.*bool"):
        F.negative_sampling_loss(Variable(np.ones((1, 2))), Parameter(np.ones((5, 2))), np.array([1]),
                                 np.array([[True, False]]))


def test_models_name_a_bad_id_in_the_batch():
    model, contexts, target = small_cbow()
    bad = contexts.copy()
    bad[3, 1] = 40
    with pytest.raises(F.InvalidIdError, match=r"id 40 at position \(3, 1\).*V=40"):
        model(bad, target)
    skip = SkipGram(40, 8, 2, ns_data()[0], seed=0)
    with pytest.raises(ValueError, match=r"\b40\b"):
        skip(bad, target)
    simple = SimpleCBOW(40, 8, window_size=2, seed=0)
    with pytest.raises(F.InvalidIdError, match=r"label 41 at position \(0,\).*V=40"):
        simple(contexts[:2], np.array([41, 0]))


@pytest.mark.parametrize("op, sym", [(F.add, "Add"), (F.sub, "Sub"), (F.mul, "Mul"), (F.div, "Div"), (F.pow, "Pow")])
@pytest.mark.parametrize("left_array", [False, True])
def test_every_broadcasting_op_names_both_shapes(op, sym, left_array):
    a = np.ones((2, 3)) if left_array else Variable(np.ones((2, 3)))
    b = Variable(np.ones((3, 2)))
    with pytest.raises(ValueError, match=rf"{sym}: shapes \(2, 3\) and \(3, 2\) cannot be broadcast"):
        op(a, b)


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: .*\(2, 3, 4\) and \(3, 4, 5\)"):
        F.matmul(Variable(np.ones((2, 3, 4))), Variable(np.ones((3, 4, 5))))


def test_linear_bias_mismatch_names_the_bias_shape():
    with pytest.raises(ValueError, match=r"linear.*bias.*\(5,\).*\(2, 4\)|linear.*\(2, 4\).*bias.*\(5,\)"):
        F.linear(Variable(np.ones((2, 3))), Variable(np.ones((3, 4))), Variable(np.ones(5)))


def test_sum_to_an_incompatible_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        F.sum_to(Variable(np.ones((2, 3))), (4,))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("create_graph", [False, True])
def test_integer_variables_needing_a_gradient_are_named(dtype, create_graph):
    x = Variable(np.ones((2, 3), dtype=dtype), name="counts")
    W = Parameter(np.ones((3, 4)))
    with pytest.raises(TypeError, match=rf"'counts'.*{np.dtype(dtype).name}.*\(2, 3\)"):
        F.matmul(x, W).sum().backward(create_graph=create_graph)
    table = Variable(np.ones((5, 2), dtype=np.int64), name="table")  # an integer embedding table
    with pytest.raises(TypeError, match=r"'table'.*int64.*\(5, 2\)"):
        F.embedding(table, np.array([0, 1]), sparse=True).sum().backward(create_graph=create_graph)


def test_sigmoid_cross_entropy_names_an_out_of_range_target():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\], got -0\.5"):
        F.sigmoid_cross_entropy(Variable(np.zeros(3)), np.array([0.0, -0.5, 1.0]))


def test_sigmoid_cross_entropy_refuses_nan_targets():
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\].*nan"):
        F.sigmoid_cross_entropy(Variable(np.zeros(3)), np.array([0.0, np.nan, 1.0]))


# =====================================================================================
# Bad data: empty corpora, windows, unknown words, undecodable or hostile files
# =====================================================================================

@pytest.mark.parametrize("cls", [CBOW, SkipGram])
@pytest.mark.parametrize("corpus", [[], np.array([0.0, 1.0, 2.0])], ids=["empty-list", "float-ids"])
def test_negative_sampling_models_explain_a_bad_corpus(cls, corpus):
    with pytest.raises(ValueError, match=r"corpus"):
        cls(10, 4, 1, corpus)


@pytest.mark.parametrize("cls", [CBOW, SkipGram])
def test_negative_sampling_models_refuse_window_0(cls):
    with pytest.raises(ValueError, match="window_size must be >= 1, got 0"):
        cls(10, 4, 0, np.arange(10))


def test_simple_cbow_refuses_window_0():
    with pytest.raises(ValueError, match="window_size"):
        SimpleCBOW(10, 4, window_size=0)


def test_nearest_words_names_an_unknown_word():
    model, _, _ = small_cbow()
    id_to_word = {i: f"w{i}" for i in range(40)}
    with pytest.raises(KeyError, match="'zebra'"):
        nearest_words(model, id_to_word, "zebra")
    assert [w for w, _ in nearest_words(model, id_to_word, "w3", topn=2)] != []


def test_ptb_copy_that_is_not_utf8_names_file_line_and_column(tmp_path):
    for name in corpora.PTB_FILES.values():
        (tmp_path / name).write_bytes(b" the cat \n caf\xe9 au lait \n")
    with pytest.warns(UserWarning, match="sha256"):
        with pytest.raises(ValueError) as info:
            load_ptb("train", data_dir=tmp_path)
    message = str(info.value)
    assert "ptb.train.txt: line 2, column 5" in message and "e9" in message
    assert "encoding=" not in message  # load_ptb has no encoding option to suggest


def test_empty_ptb_copy_is_refused(tmp_path):
    for name in corpora.PTB_FILES.values():
        (tmp_path / name).write_bytes(b"\n \n")
    with pytest.warns(UserWarning, match="sha256"):
        with pytest.raises(ValueError, match=r"ptb\.train\.txt holds no tokens"):
            load_ptb("train", data_dir=tmp_path)


@pytest.mark.parametrize(
    "raw, pattern",
    [
        (b"[" * 100_000, r"unreadable JSON \(RecursionError"),
        (b'{"format": "tinygrad_nlp.vocabulary", "version": 1, "unk": null, "words": ["a"], "counts": [1'
         + b"0" * 5000 + b"]}", r"unreadable JSON \(ValueError: Exceeds the limit"),
    ],
    ids=["deep-nesting", "5000-digit-count"],
)
def test_vocabulary_json_the_parser_refuses_is_a_value_error_naming_the_file(tmp_path, raw, pattern):
    path = tmp_path / "vocab.json"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=pattern) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_binary_word2vec_header_cannot_make_the_loader_allocate_terabytes(tmp_path):
    path = tmp_path / "huge.bin"
    path.write_bytes(b"100000000000 100\nx " + bytes(400))
    with pytest.raises(ValueError, match=r"huge\.bin: truncated at vector index 1 of 100000000000"):
        WordVectors.load_word2vec_format(path, binary=True)
    path.write_bytes(b"1 10000000000000\nx " + bytes(400))
    with pytest.raises(ValueError, match=r"huge\.bin, line 1: bad header '1 10000000000000'"):
        WordVectors.load_word2vec_format(path, binary=True)


def _npy_member(shape, descr="<f4", data=bytes(16)):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


def _zip(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda p: p.write_bytes(b"this is not a zip file"), r"not an \.npz archive \(it does not start with the zip signature"),
        (lambda p: p.write_bytes(b""), r"not an \.npz archive \(the file is empty\)"),
        (lambda p: p.write_bytes(b"\x80\x04\x95\x00\x00."), r"it looks like a pickle, which is never loaded"),
        (lambda p: (np.save(p.with_suffix(".npy"), np.ones(3)), os.replace(p.with_suffix(".npy"), p)),
         r"it is a single \.npy array"),
        (lambda p: _zip(p, {"x.npy": _npy_member("(10000000000000,)")}),
         r"header declares shape \(10000000000000,\) float32 \(40000000000000 bytes\) but it holds 16 bytes"),
        (lambda p: _zip(p, {"x.npy": _npy_member("(100000000000000000000,)")}), r"but it holds 16 bytes"),
        (lambda p: _zip(p, {"x.npy": _npy_member("(5,)")}), r"\(20 bytes\) but it holds 16 bytes"),
        (lambda p: _zip(p, {"x.npy": _npy_member("(4,)", descr="|O")}), r"refusing to load member 'x\.npy', an object array"),
        (lambda p: _zip(p, {"notes.txt": b"hello"}), r"unexpected member 'notes\.txt'"),
    ],
    ids=["text", "empty", "pickle", "npy", "40TB-header", "overflowing-shape", "short-data", "object-header",
         "non-npy-member"],
)
def test_load_npz_says_what_is_wrong_and_names_the_file(tmp_path, make, pattern):
    path = tmp_path / "weights.npz"
    make(path)
    with pytest.raises(ValueError, match=pattern) as info:
        load_npz(path)
    assert str(path) in str(info.value)


def test_load_npz_refuses_a_directory(tmp_path):
    with pytest.raises(ValueError, match="is a directory"):
        load_npz(tmp_path)


# =====================================================================================
# Files: nothing that can execute code is ever used to save or load
# =====================================================================================

_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib", "jsonpickle"}
_UNSAFE_CALLS = {"eval", "exec", "compile", "__import__"}


def _unsafe_uses(source, filename):
    """(line, what) for every import of a pickle-like module, eval/exec call, ``allow_pickle``
    that is not the constant False, ``np.load`` without ``allow_pickle=False`` and unsafe YAML loads."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if isinstance(func, ast.Name) and name in _UNSAFE_CALLS:
                found.append((node.lineno, f"{name}()"))
            for kw in node.keywords:
                if kw.arg == "allow_pickle" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    found.append((node.lineno, "allow_pickle not False"))
            if name == "load" and isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                owner = func.value.id
                if owner in ("np", "numpy") and not any(k.arg == "allow_pickle" for k in node.keywords):
                    found.append((node.lineno, "np.load without allow_pickle=False"))
                if owner in ("yaml", "torch"):
                    found.append((node.lineno, f"{owner}.load"))
    return found


def test_the_source_scan_catches_what_it_looks_for():
    bad = textwrap.dedent("""
        import pickle
        from dill import loads
        eval("1")
        exec("x = 1")
        np.load(path)
        np.load(path, allow_pickle=True)
        yaml.load(text)
    """)
    whats = [w for _, w in _unsafe_uses(bad, "<bad>")]
    assert whats == ["import pickle", "from dill import ...", "eval()", "exec()", "np.load without allow_pickle=False",
                     "allow_pickle not False", "yaml.load"]
    assert _unsafe_uses("np.load(p, allow_pickle=False)\nx = 'pickle eval( exec('\n", "<ok>") == []


def test_the_package_never_uses_pickle_eval_or_exec():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(PACKAGE)}:{line}: {what}" for line, what in _unsafe_uses(source, str(path))]
        offenders += [f"{path.relative_to(PACKAGE)}: allow_pickle=True" for _ in re.finditer(r"allow_pickle\s*=\s*True", source)]
    assert offenders == []


def test_every_file_write_goes_through_atomic_write():
    """No module but io.py opens a file for writing, and numpy/matplotlib never write to a path."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "io.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "open" or (name == "fdopen"):
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
                if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
                    offenders.append(f"{path.name}:{node.lineno}: open(..., {mode.value!r})")
                elif mode is not None and not isinstance(mode, ast.Constant):
                    offenders.append(f"{path.name}:{node.lineno}: open() with a computed mode")
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            if owner == "shutil" or (owner == "os" and name in ("rename", "replace", "renames", "link", "symlink")):
                offenders.append(f"{path.name}:{node.lineno}: {owner}.{name}() outside io.py")
            numpy_save = owner in ("np", "numpy") and name in ("save", "savez", "savez_compressed", "savetxt")
            if numpy_save or name in ("tofile", "savefig", "render", "write_text", "write_bytes"):
                target = node.args[0] if node.args else None
                # allowed: writing into a file object handed out by atomic_write, or into a BytesIO
                if not (isinstance(target, ast.Name) and target.id in ("f", "buf")):
                    offenders.append(f"{path.name}:{node.lineno}: {name}() on something other than an atomic file")
    assert offenders == []


def _object_npz(path, **arrays):
    np.savez(path, evil=np.array([{"__reduce__": "os.system"}], dtype=object), **arrays)


def test_object_arrays_are_refused_by_load_weights_and_load_checkpoint(tmp_path):
    model, contexts, target = small_cbow()
    trainer = Trainer(model, Adam().setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=1, batch_size=200, seed=0, checkpoint_dir=tmp_path)
    good = dict(load_npz(tmp_path / CHECKPOINT_NAME))
    before = {k: p.data.copy() for k, p in model.named_params().items()}
    weights = tmp_path / "weights.npz"
    _object_npz(weights, **{k: p.data for k, p in model.named_params().items()})
    with pytest.raises(ValueError, match=r"weights\.npz: refusing to load member 'evil\.npy', an object array"):
        model.load_weights(weights)
    checkpoint = tmp_path / "evil_checkpoint.npz"
    _object_npz(checkpoint, **good)
    with pytest.raises(ValueError, match=r"evil_checkpoint\.npz: refusing to load member 'evil\.npy'"):
        trainer.load_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=r"resume_from/checkpoint\.npz: refusing to load member 'evil\.npy'"):
        trainer.fit(contexts, target, max_epoch=2, batch_size=200, seed=0, resume=True,
                    checkpoint_dir=_dir_with(tmp_path, checkpoint))
    for k, p in model.named_params().items():
        assert np.array_equal(p.data, before[k])


def _dir_with(tmp_path, checkpoint):
    d = tmp_path / "resume_from"
    d.mkdir(exist_ok=True)
    shutil.copy(checkpoint, d / CHECKPOINT_NAME)
    return d


# =====================================================================================
# Files: every write is atomic
# =====================================================================================

def _trained(seed=0, epochs=1):
    model, contexts, target = small_cbow(seed=seed)
    trainer = Trainer(model, Adam(lr=0.05).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=epochs, batch_size=100, seed=seed)
    return trainer


def _graph(scale):
    x = Variable(np.ones((2, 3)) * scale, name="x")
    return F.sum(F.tanh(x) * x)


def _write_weights(path, version):
    layer = Linear(3, 2, rng=version)
    layer.save_weights(path)


def _write_checkpoint(path, version):
    _trained(seed=version).save_checkpoint(path)


def _write_vocabulary(path, version):
    Vocabulary.build(("the cat sat on the mat " * (version + 1)).split() + [f"w{version}"]).save(path)


def _write_vectors(binary):
    def write(path, version):
        rng = np.random.default_rng(version)
        WordVectors(rng.normal(size=(50, 8)).astype(np.float32), [f"w{i}" for i in range(50)]).save_word2vec_format(
            path, binary=binary)
    return write


def _write_plot(path, version):
    pytest.importorskip("matplotlib")
    _trained(seed=version).plot(path, title=f"run {version}")


def _write_graph(path, version):
    if Path(path).suffix != ".dot" and viz.renderer(Path(path).suffix[1:]) is None:
        pytest.skip("no Graphviz renders this format here")
    viz.plot_dot_graph(_graph(version + 1), to_file=path, verbose=bool(version))


WRITERS = {
    "Layer.save_weights": ("w.npz", _write_weights),
    "Trainer.save_checkpoint": (CHECKPOINT_NAME, _write_checkpoint),
    "Vocabulary.save": ("vocab.json", _write_vocabulary),
    "save_word2vec_format-text": ("vectors.txt", _write_vectors(False)),
    "save_word2vec_format-binary": ("vectors.bin", _write_vectors(True)),
    "Trainer.plot": ("loss.png", _write_plot),
    "viz.plot_dot_graph-svg": ("graph.svg", _write_graph),
    "viz.plot_dot_graph-dot": ("graph.dot", _write_graph),
}


class _DiskFull:
    """A file object that accepts ``budget`` bytes (or characters), then fails like a full disk
    (or, with ``interrupt``, as if the user pressed Ctrl-C in the middle of the write)."""

    def __init__(self, f, budget, interrupt=False):
        self._f, self._budget, self._interrupt = f, budget, interrupt

    def write(self, data):
        if len(data) > self._budget:
            self._f.write(data[: self._budget])
            self._budget = 0
            if self._interrupt:
                raise KeyboardInterrupt("injected Ctrl-C mid-write")
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        self._budget -= len(data)
        return self._f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self._f, name)


def _inject(monkeypatch, failure):
    def fail(*args, **kwargs):
        raise OSError(errno.EIO, f"injected failure in {failure}")

    if failure in ("disk-full", "ctrl-c"):
        real_fdopen = os.fdopen

        def fdopen(fd, *args, **kwargs):
            return _DiskFull(real_fdopen(fd, *args, **kwargs), budget=64, interrupt=failure == "ctrl-c")

        monkeypatch.setattr(tio.os, "fdopen", fdopen)
    else:
        monkeypatch.setattr(tio.os, failure, fail)


@pytest.mark.parametrize("failure", ["disk-full", "ctrl-c", "fsync", "replace"])
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_failing_write_leaves_the_previous_file_byte_identical(tmp_path, monkeypatch, writer, failure):
    name, write = WRITERS[writer]
    path = tmp_path / name
    write(path, 0)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    _inject(monkeypatch, failure)
    with pytest.raises(KeyboardInterrupt if failure == "ctrl-c" else OSError, match="injected"):
        write(path, 1)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing  # no temporary file left behind
    write(path, 1)  # and the same write succeeds once the disk behaves
    assert path.read_bytes() != before


def test_the_writers_really_produce_different_files():
    """Guards the test above: version 0 and 1 of every writer differ, so 'unchanged' means something."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for writer, (name, write) in WRITERS.items():
            try:
                write(Path(d) / f"a_{name}", 0)
                write(Path(d) / f"b_{name}", 1)
            except pytest.skip.Exception:
                continue
            assert (Path(d) / f"a_{name}").read_bytes() != (Path(d) / f"b_{name}").read_bytes(), writer


def test_graphviz_fallback_dot_file_is_written_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-graphviz-here"))
    (tmp_path / "graph.dot").write_text("previous\n")
    _inject(monkeypatch, "replace")
    with pytest.raises(OSError, match="injected"):  # PNG has no fallback without the dot program
        viz.plot_dot_graph(_graph(1), to_file=tmp_path / "graph.png")
    assert (tmp_path / "graph.dot").read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["graph.dot"]


_KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import tinygrad_nlp.io as tio
    from tinygrad_nlp.vectors import WordVectors

    def hang(fd):  # the data is in the temporary file; the process dies before the rename
        open(sys.argv[2], "w").close()
        time.sleep(60)

    tio.os.fsync = hang
    wv = WordVectors(np.full((2000, 16), 7.0, np.float32), [f"new{i}" for i in range(2000)])
    wv.save_word2vec_format(sys.argv[1])
""")


def test_a_process_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "vectors.txt"
    WordVectors(np.eye(3, dtype=np.float32), ["a", "b", "c"]).save_word2vec_format(path)
    before = path.read_bytes()
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), str(ready)])
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None, "the writer exited before reaching fsync"
            assert time.monotonic() < deadline, "the writer never reached fsync"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert path.read_bytes() == before
    assert WordVectors.load_word2vec_format(path).words == ["a", "b", "c"]
    # The killed process could not clean up: its temporary file is hidden and named after the target.
    leftovers = [n for n in os.listdir(tmp_path) if n not in ("vectors.txt", "ready")]
    assert all(n.startswith(".vectors.txt.") and n.endswith(".tmp") for n in leftovers), leftovers


class _Response:
    """A urlopen() response serving ``data``, optionally failing after ``fail_after`` bytes."""

    def __init__(self, data, fail_after=None):
        self._buf, self._fail_after, self._sent = _pyio.BytesIO(data), fail_after, 0

    def read(self, n=-1):
        if self._fail_after is not None and self._sent >= self._fail_after:
            raise ConnectionResetError("connection reset by peer (injected)")
        chunk = self._buf.read(n)
        self._sent += len(chunk)
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def corrupt_ptb_cache(tmp_path, monkeypatch):
    monkeypatch.delenv(corpora.PTB_DIR_ENV, raising=False)
    monkeypatch.delenv(corpora.CACHE_ENV, raising=False)
    cached = tmp_path / "ptb" / "ptb.train.txt"
    cached.parent.mkdir()
    cached.write_bytes(b" a damaged cached copy \n")
    return cached


@pytest.mark.parametrize("how", ["checksum-mismatch", "connection-reset"])
def test_failed_ptb_download_leaves_the_cached_file_as_it_was(corrupt_ptb_cache, monkeypatch, how):
    served = b" not the real ptb \n" * 1000
    fail_after = 4096 if how == "connection-reset" else None
    monkeypatch.setattr(corpora, "_urlopen", lambda url, timeout: _Response(served, fail_after))
    with pytest.raises((ValueError, corpora.DownloadError), match="checksum mismatch|connection reset"):
        load_ptb("train", cache_dir=corrupt_ptb_cache.parent.parent)
    assert corrupt_ptb_cache.read_bytes() == b" a damaged cached copy \n"
    assert os.listdir(corrupt_ptb_cache.parent) == ["ptb.train.txt"]


@pytest.mark.parametrize("failure", ["fsync", "replace"])
def test_verified_ptb_download_that_fails_to_commit_leaves_the_cache_as_it_was(ptb_dir, corrupt_ptb_cache, monkeypatch,
                                                                               failure):
    served = (ptb_dir / "ptb.train.txt").read_bytes()
    monkeypatch.setattr(corpora, "_urlopen", lambda url, timeout: _Response(served))
    _inject(monkeypatch, failure)
    with pytest.raises(OSError, match="injected"):
        load_ptb("train", cache_dir=corrupt_ptb_cache.parent.parent)
    assert corrupt_ptb_cache.read_bytes() == b" a damaged cached copy \n"
    assert os.listdir(corrupt_ptb_cache.parent) == ["ptb.train.txt"]
    monkeypatch.setattr(tio.os, failure, _REAL[failure])  # the disk works again: the refetch succeeds
    corpus, _, _ = load_ptb("train", cache_dir=corrupt_ptb_cache.parent.parent)
    assert len(corpus) == corpora.PTB_TOKENS["train"]
    assert hashlib.sha256(corrupt_ptb_cache.read_bytes()).hexdigest() == corpora.PTB_SHA256["ptb.train.txt"]


# =====================================================================================
# Checkpoints: validated before anything changes; a crash never loses the last epoch
# =====================================================================================

def _checkpointed(tmp_path):
    model, contexts, target = small_cbow(seed=0)
    trainer = Trainer(model, Adam(lr=0.05).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=1, batch_size=100, seed=0, checkpoint_dir=tmp_path)
    return tmp_path / CHECKPOINT_NAME


def _rewrite(path, changes):
    """A copy of checkpoint ``path`` with arrays replaced (None: removed); ``"meta.<field>"``
    keys change one field of the JSON metadata."""
    arrays = dict(load_npz(path))
    meta = json.loads(str(arrays["meta"]))
    for k, v in changes.items():
        if k.startswith("meta."):
            meta[k[len("meta."):]] = v
            arrays["meta"] = np.array(json.dumps(meta))
        elif v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    out = path.with_name("edited.npz")
    save_npz(out, arrays)
    return out


def _state(trainer):
    params = {k: p.data.copy() for k, p in trainer.model.named_params().items()}
    optim = {k: np.array(v, copy=True) for k, v in trainer.optimizer.state_dict().items()}
    generators = [json.dumps(g.bit_generator.state, default=str)
                  for g in _generators_of(trainer.model) + ([trainer.rng] if trainer.rng is not None else [])]
    return params, optim, generators, trainer.epoch, list(trainer.loss_history), list(trainer.eval_history)


def _generators_of(model):
    get = getattr(model, "random_generators", None)
    return list((get() if get is not None else {}).values())


def _same_state(a, b):
    (pa, oa, *rest_a), (pb, ob, *rest_b) = a, b
    return rest_a == rest_b and pa.keys() == pb.keys() and oa.keys() == ob.keys() and \
        all(np.array_equal(pa[k], pb[k]) for k in pa) and all(np.array_equal(oa[k], ob[k]) for k in oa)


def _fresh_trainer(optimizer=Adam):
    model, contexts, target = small_cbow(seed=7)
    trainer = Trainer(model, optimizer(lr=0.05).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=1, batch_size=300, seed=3)  # some state of its own
    return trainer


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"model/in_embed.W": np.zeros((40, 9), np.float32)}, r"wrong shape \['in_embed\.W'\]"),
        ({"model/out_embed.W": None}, r"missing \['out_embed\.W'\]"),
        ({"model/extra.W": np.zeros(3, np.float32)}, r"unexpected \['extra\.W'\]"),
        ({"meta": None}, r"not a tinygrad_nlp checkpoint \(no 'meta' entry\)"),
        ({"meta": np.array("{not json")}, r"corrupt checkpoint metadata"),
        ({"meta": np.array("{}")}, r"corrupt checkpoint metadata \(KeyError: 'epoch'\)"),
        ({"meta": np.array("[]")}, r"corrupt checkpoint metadata \(TypeError"),
        ({"meta.epoch": "one"}, r"corrupt checkpoint metadata \(ValueError"),
        ({"meta.epoch_loss": "abc"}, r"corrupt checkpoint metadata"),
        ({"optim/in_embed.W/m": np.zeros((3, 3), np.float32)}, r"optimizer state 'in_embed\.W/m' has shape \(3, 3\)"),
        ({"optim/__step__": None}, r"no '__step__' entry"),
        ({"optim/bogus.W/m": np.zeros(3, np.float32)}, r"unknown parameter 'bogus\.W'"),
    ],
    ids=["weights-wrong-shape", "weights-missing", "weights-extra", "meta-missing", "meta-not-json", "meta-empty",
         "meta-list", "meta-bad-epoch", "meta-bad-epoch-loss", "optim-wrong-shape", "optim-step-missing",
         "optim-unknown-param"],
)
def test_checkpoint_mismatches_are_named_and_change_nothing(tmp_path, change, pattern):
    path = _rewrite(_checkpointed(tmp_path), change)
    trainer = _fresh_trainer()
    before = _state(trainer)
    with pytest.raises(ValueError, match=pattern) as info:
        trainer.load_checkpoint(path)
    assert str(path) in str(info.value)
    assert _same_state(before, _state(trainer))


def test_checkpoint_of_another_optimizer_is_refused(tmp_path):
    path = _checkpointed(tmp_path)  # written by Adam
    trainer = _fresh_trainer(optimizer=SGD)
    before = _state(trainer)
    with pytest.raises(ValueError, match=r"checkpoint\.npz: .*SGD keeps no 'm'"):
        trainer.load_checkpoint(path)
    assert _same_state(before, _state(trainer))


@pytest.mark.parametrize(
    "change",
    [
        {"history/loss": np.zeros((2, 2))},
        {"history/loss": np.array(["a", "b"])},
        {"meta.eval": 5},
        {"meta.seconds": "x"},
        {"meta.targets_seen": "x"},
        {"meta.epoch": float("inf")},
        {"meta.rng": {"bit_generator": "MT19937"}},
        {"meta.generators": {"sampler": 3, "window": 4}},
        {"model/in_embed.W": np.zeros((40, 8), np.int64)},
    ],
    ids=["history-2d", "history-strings", "meta-eval-not-a-list", "meta-seconds-not-a-number",
         "meta-targets-seen-not-a-number", "meta-epoch-infinite", "meta-rng-of-another-kind", "meta-generator-not-a-state", "integer-weights"],
)
def test_damaged_checkpoint_raises_value_error_and_changes_nothing(tmp_path, change):
    path = _rewrite(_checkpointed(tmp_path), change)
    trainer = _fresh_trainer()
    before = _state(trainer)
    with pytest.raises(ValueError) as info:
        trainer.load_checkpoint(path)
    assert str(path) in str(info.value)
    assert _same_state(before, _state(trainer))


def test_checkpoint_write_that_fails_keeps_the_last_epoch_and_resume_is_exact(tmp_path, monkeypatch):
    """Epoch 3's checkpoint write fails at the rename (a crash while saving): epoch 2's checkpoint is
    intact, and resuming from it gives exactly the weights and losses of an uninterrupted run."""
    model, contexts, target = small_cbow(seed=1)
    full = Trainer(model, Adam(lr=0.05).setup(model), progress=False).fit(
        contexts, target, max_epoch=4, batch_size=64, seed=5)
    expected_w, expected_losses = model.word_vecs.copy(), list(full.loss_history)

    model, contexts, target = small_cbow(seed=1)
    saved = {}

    def after_epoch(m, epoch):
        path = tmp_path / CHECKPOINT_NAME
        if path.exists():
            saved[epoch - 1] = path.read_bytes()
        if epoch == 3:
            _inject(monkeypatch, "replace")

    trainer = Trainer(model, Adam(lr=0.05).setup(model), progress=False, eval_fn=after_epoch)
    with pytest.raises(OSError, match="injected"):
        trainer.fit(contexts, target, max_epoch=4, batch_size=64, seed=5, checkpoint_dir=tmp_path)
    monkeypatch.undo()
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == saved[2]
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]

    model2, _, _ = small_cbow(seed=99)
    resumed = Trainer(model2, Adam(lr=0.05).setup(model2), progress=False)
    resumed.fit(contexts, target, max_epoch=4, batch_size=64, seed=5, checkpoint_dir=tmp_path, resume=True)
    assert resumed.epoch == 4
    assert np.array_equal(model2.word_vecs, expected_w)
    assert resumed.loss_history == expected_losses


@pytest.mark.parametrize("model_cls", [SkipGram, SimpleCBOW])
def test_resume_is_exact_for_skipgram_and_simple_cbow_with_sgd(tmp_path, model_cls):
    corpus, contexts, target = ns_data(V=30, N=400, window=1)

    def make(seed):
        if model_cls is SimpleCBOW:
            m = SimpleCBOW(30, 6, window_size=1, seed=seed)
        else:
            m = SkipGram(30, 6, 1, corpus, seed=seed)
        return m, SGD(lr=0.5).setup(m)

    model, opt = make(0)
    Trainer(model, opt, progress=False, prefetch=False).fit(contexts, target, max_epoch=3, batch_size=50, seed=4)
    expected = model.word_vecs.copy()
    model, opt = make(0)
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=50, seed=4,
                                             checkpoint_dir=tmp_path)
    model, opt = make(123)
    Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=3, batch_size=50, seed=4,
                                             checkpoint_dir=tmp_path, resume=True)
    assert np.array_equal(model.word_vecs, expected)


# =====================================================================================
# Training: non-finite values are never silent; anomaly mode names the Function
# =====================================================================================

def _overflowing_backward_cbow():
    """A CBOW whose loss is finite but whose backward overflows float32: tiny input vectors and
    output vectors at the float32 maximum (scores ~1e9; dh = sum over negatives of 3.4e38 = inf)."""
    model, contexts, target = small_cbow()
    model.in_embed.W.data[:] = 1e-30
    model.out_embed.W.data[:] = 3.4e38
    return model, contexts[:1], target[:1]


def test_anomaly_mode_names_the_forward_that_overflowed_inside_a_trainer():
    model, contexts, target = small_cbow()
    model.in_embed.W.data[:] = 1e30
    model.out_embed.W.data[:] = 1e30
    before = model.word_vecs.copy()
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError, match=r"^EmbeddingDot\.forward produced a non-finite value .* output 0 "
                           r"of shape \(20, 6\)"):
            Trainer(model, Adam().setup(model), progress=False).fit(contexts, target, max_epoch=1, batch_size=20)
    assert np.array_equal(model.word_vecs, before)
    assert tg.Config.anomaly is False


def test_anomaly_mode_names_the_backward_that_overflowed_inside_a_real_model():
    model, contexts, target = _overflowing_backward_cbow()
    with np.errstate(all="ignore"):
        loss = model(contexts, target)
        assert np.isfinite(loss.data)  # the forward pass is fine: only the backward overflows
        with tg.detect_anomaly():
            loss = model(contexts, target)
            with pytest.raises(FloatingPointError, match=r"^EmbeddingDot\.backward produced a non-finite value .* "
                               r"gradient for input 1 of shape \(1, 8\)"):
                loss.backward()
    assert model.in_embed.W.grad is None  # the error came before any leaf gradient was stored


def test_anomaly_mode_stops_a_trainer_before_the_bad_update():
    model, contexts, target = _overflowing_backward_cbow()
    before = {k: p.data.copy() for k, p in model.named_params().items()}
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError, match=r"EmbeddingDot\.backward"):
            Trainer(model, SGD(lr=1.0).setup(model), progress=False).fit(contexts, target, max_epoch=1, batch_size=1)
    for k, p in model.named_params().items():
        assert np.array_equal(p.data, before[k]), k


@pytest.mark.parametrize("case", ["overflowing-gradient", "huge-learning-rate"])
def test_non_finite_weights_after_an_update_are_never_silent(case):
    if case == "overflowing-gradient":
        model, contexts, target = _overflowing_backward_cbow()
        opt = SGD(lr=1.0).setup(model)
    else:
        model, contexts, target = small_cbow()
        contexts, target = contexts[:10], target[:10]
        opt = SGD(lr=1e39).setup(model)
    with np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError, match=r"epoch 1, step 1"):
            Trainer(model, opt, progress=False).fit(contexts, target, max_epoch=1, batch_size=len(target))
    assert all(np.isfinite(p.data).all() for p in model.params())


# =====================================================================================
# Steady under load: graphs are freed every step, memory does not grow
# =====================================================================================

def test_thousands_of_steps_do_not_grow_memory_and_free_every_graph():
    model, contexts, target = small_cbow(V=50, H=16)
    opt = Adam(lr=0.01).setup(model)
    n, B = len(target), 32

    def step(i):
        s = (i * B) % (n - B)
        loss = model(contexts[s:s + B], target[s:s + B])
        model.cleargrads()
        loss.backward()
        opt.update()
        return weakref.ref(loss.creator), weakref.ref(loss)

    for i in range(200):  # warm-up: optimizer state, caches, thread pool
        step(i)
    gc.collect()
    gc.disable()  # graphs must be freed by reference counting alone (no cycles)
    tracemalloc.start(8)
    try:
        alive = 0
        levels, snapshots = [], []
        for i in range(2300):
            refs = step(i)
            alive += any(r() is not None for r in refs)
            if i in (299, 1299):
                levels.append(tracemalloc.get_traced_memory()[0])
                snapshots.append(tracemalloc.take_snapshot())
                if i == 299:
                    tracemalloc.reset_peak()
        levels.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
        settled, middle, end = levels
        top = "" if end - middle < 16 * 1024 else "\n".join(
            str(stat) + "\n" + "\n".join(stat.traceback.format()[-8:])
            for stat in tracemalloc.take_snapshot().compare_to(snapshots[1], "traceback")[:3])
    finally:
        tracemalloc.stop()
        gc.enable()
    assert alive == 0, f"{alive} steps left their graph alive"
    # A leak of one small object per step (a float in a list: 32 bytes) adds 32 KiB per 1,000 steps.
    assert end - middle < 16 * 1024, f"memory grew by {end - middle} bytes over steps 1,300-2,300:\n{top}"
    assert end - settled < 256 * 1024, f"memory grew by {end - settled} bytes over steps 300-2,300"
    assert peak - settled < 2 * 1024 * 1024, f"a step peaked at {peak - settled} bytes above the settled level"


def test_trainer_frees_each_steps_graph_without_the_garbage_collector():
    model, contexts, target = small_cbow()
    refs = []
    forward = model.forward

    def recording_forward(*args, **kwargs):
        loss = forward(*args, **kwargs)
        refs.append(weakref.ref(loss.creator))
        return loss

    model.forward = recording_forward
    alive_at_callback = []

    def callback(trainer, epoch, step, loss):
        alive_at_callback.append(sum(r() is not None for r in refs[:-1]))  # every graph but the current one

    gc.collect()
    gc.disable()
    try:
        Trainer(model, Adam().setup(model), progress=False).fit(
            contexts, target, max_epoch=3, batch_size=10, seed=0, callback=callback)
        assert len(refs) == 3 * 60
        assert max(alive_at_callback) == 0
    finally:
        gc.enable()


_RSS_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from tinygrad_nlp.models import CBOW
    from tinygrad_nlp.optimizers import Adam
    from tinygrad_nlp.text import create_contexts_target
    from tinygrad_nlp.train import Trainer

    rng = np.random.default_rng(0)
    corpus = np.cumsum(rng.integers(0, 3, size=4004)) % 60
    contexts, target = create_contexts_target(corpus, 2)
    model = CBOW(60, 16, 2, corpus, seed=0)
    trainer = Trainer(model, Adam(lr=0.01).setup(model), progress=False)
    trainer.fit(contexts, target, max_epoch=1, batch_size=8, seed=0)
    warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainer.fit(contexts, target, max_epoch=6, batch_size=8, seed=1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(warm, after, len(trainer.loss_history))
""")


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_peak_rss_does_not_grow_over_thousands_of_trainer_steps():
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT], capture_output=True, text=True, timeout=300, check=True)
    warm, after, steps = (int(x) for x in out.stdout.split())
    assert steps == 7 * 500
    # 3,000 steps after warm-up; the loss history itself adds ~100 KiB
    assert after - warm < 4 * 1024, f"peak RSS grew by {after - warm} KiB over 3,000 steps"
