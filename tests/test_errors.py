"""One base class for the library's errors, and the built-in bases callers already catch."""

import ast
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nlp
from tinygrad_nlp import TinygradNLPError
from tinygrad_nlp.text.corpora import DownloadError
from tinygrad_nlp.viz import GraphvizError, GraphvizNotFoundError

PACKAGE = Path(tinygrad_nlp.__file__).parent
embedding = importlib.import_module("tinygrad_nlp.functions.embedding")


def library_exception_classes():
    """Every exception class defined in the package's modules (found by importing them all)."""
    found = {}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="tinygrad_nlp."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_every_error_class_derives_from_the_base():
    classes = library_exception_classes()
    assert len(classes) >= 5  # InvalidIdError, DownloadError, the two Graphviz errors, the base
    offenders = [name for name, cls in classes.items() if not issubclass(cls, TinygradNLPError)]
    assert offenders == []


def test_no_module_defines_an_exception_class_the_import_walk_missed():
    """The source has no ``class X(...Error)`` that library_exception_classes() does not list."""
    names = {name.rsplit(".", 1)[1] for name in library_exception_classes()}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Exception")):
                assert node.name in names, f"{path.name}: {node.name}"


@pytest.mark.parametrize("cls, builtin", [
    (embedding.InvalidIdError, IndexError), (embedding.InvalidIdError, ValueError),
    (DownloadError, OSError), (GraphvizNotFoundError, RuntimeError), (GraphvizError, RuntimeError),
])
def test_errors_keep_their_builtin_base(cls, builtin):
    assert issubclass(cls, builtin) and issubclass(cls, TinygradNLPError)


def test_a_real_bad_id_is_caught_as_the_base_and_as_value_error():
    W = tinygrad_nlp.Parameter(np.zeros((3, 2), np.float32))
    with pytest.raises(TinygradNLPError, match="5"):
        embedding.embedding(W, np.array([0, 5]))
    with pytest.raises(ValueError):
        embedding.embedding(W, np.array([0, 5]))


def test_the_base_is_exported_at_the_top():
    assert tinygrad_nlp.TinygradNLPError is TinygradNLPError
    assert TinygradNLPError.__module__ == "tinygrad_nlp.errors"
