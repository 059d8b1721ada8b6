"""Shared fixtures: where the development data (../shared/data) lives."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TINYGRAD_NLP_SHARED_DATA", REPO.parent / "shared" / "data"))


def _require(path):
    if not path.exists():
        pytest.skip(f"development data not found at {path} (set TINYGRAD_NLP_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def ptb_dir():
    """Directory holding ptb.train.txt / ptb.valid.txt / ptb.test.txt."""
    return _require(SHARED_DATA / "ptb")


@pytest.fixture(scope="session")
def eval_dir():
    """Directory holding questions-words.txt and wordsim353.tsv."""
    return _require(SHARED_DATA / "eval")


@pytest.fixture(params=["compiled", "numpy"])
def impl(request):
    """Run the test against each backend implementation in turn (restored afterwards)."""
    from tinygrad_nlp import backend

    if request.param not in backend.available():
        pytest.skip(f"the {request.param} backend is not available here")
    previous = backend.use(request.param)
    yield request.param
    backend.use(previous)
