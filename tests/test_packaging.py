"""Packaging metadata: SPDX license, one version, changelog, type information."""

import re
import tomllib
from pathlib import Path

import tinygrad_nlp

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression_without_a_license_classifier():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    assert "MIT License" in (REPO / "LICENSE").read_text(encoding="utf-8")


def test_the_version_is_written_once_and_the_changelog_knows_it():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "tinygrad_nlp.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", tinygrad_nlp.__version__)
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and f"## [{tinygrad_nlp.__version__}]" in changelog


def test_the_package_ships_its_type_information():
    assert (REPO / "tinygrad_nlp" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["tinygrad_nlp"]


ANNOTATED_MODULES = ["tinygrad_nlp.viz", "tinygrad_nlp.vectors", "tinygrad_nlp.io", "tinygrad_nlp.core",
                     "tinygrad_nlp.gradcheck", "tinygrad_nlp.backend",
                     "tinygrad_nlp.optimizers", "tinygrad_nlp.layers", "tinygrad_nlp.models",
                     "tinygrad_nlp.sparse", "tinygrad_nlp.train",
                     *(f"tinygrad_nlp.text.{name}" for name in (
                         "contexts", "corpora", "demo", "preprocessing", "sampler", "sequences", "stream",
                         "subsampling", "vocab", "windows")),
                     *(f"tinygrad_nlp.seq2seq.{name}" for name in ("commands", "decoding", "evaluation", "networks"))]


# The functions users call; their Function classes' forward/backward are left unannotated.
FUNCTION_MODULES = [f"tinygrad_nlp.functions.{name}" for name in (
    "attention", "embedding", "losses", "math", "nn", "recurrent_sequence", "reduce", "rnn", "shape")]


def _public_callables(module, classes=True):
    import inspect

    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif classes and inspect.isclass(obj) and obj.__module__ == module.__name__:
            # with the methods it inherits from the module's own private bases (RNN from _Recurrent)
            seen = set()
            members = [(attr, member) for klass in obj.__mro__ if klass.__module__ == module.__name__
                       for attr, member in vars(klass).items()]
            for attr, member in members:
                if (attr.startswith("_") and attr != "__init__") or attr in seen:
                    continue
                seen.add(attr)
                if isinstance(member, property):
                    member = member.fget
                elif isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def test_the_public_api_of_the_annotated_modules_is_fully_annotated():
    """Every parameter and return value of their public functions and methods has a type."""
    import importlib
    import inspect

    missing = []
    for module_name in ANNOTATED_MODULES + FUNCTION_MODULES:
        module = importlib.import_module(module_name)
        for name, func in _public_callables(module, classes=module_name not in FUNCTION_MODULES):
            signature = inspect.signature(func)
            for param in list(signature.parameters.values()):
                if param.name in ("self", "cls") or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                if param.annotation is inspect.Parameter.empty:
                    missing.append(f"{module_name}.{name}({param.name})")
            if signature.return_annotation is inspect.Signature.empty:
                missing.append(f"{module_name}.{name} -> ?")
    assert missing == []
