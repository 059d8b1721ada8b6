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
