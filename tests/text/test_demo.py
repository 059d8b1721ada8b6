"""The built-in demo corpus: deterministic, and its co-occurrences carry the semantic groups."""

import hashlib
import itertools

import numpy as np
import pytest

from tinygrad_nlp.text import DEMO_GROUPS, demo_group_of, demo_text, load_demo, load_text, preprocess

# Pinned so that any change to the generated text is deliberate (it changes published results):
# update both numbers, and the module docstring, when the templates change on purpose.
DEMO_SHA256 = "fd0b8a7eb15bb96e1ad0fba8f6289072342ddc8f9f602b63e852030ff39b0ce1"
DEMO_TOKENS = 140_156


@pytest.fixture(scope="module")
def demo():
    return load_demo()


def test_demo_text_is_deterministic_and_pinned():
    text = demo_text()
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == DEMO_SHA256
    lines = text.splitlines()
    assert len(lines) == 20_000 and text.endswith(" .\n")
    assert all(line.endswith(" .") and line == line.lower() for line in lines)
    assert demo_text(sentences=50, seed=1) != demo_text(sentences=50, seed=2)


def test_load_demo_shape_and_vocabulary(demo):
    corpus, word_to_id, id_to_word = demo
    assert corpus.dtype == np.int32 and corpus.shape == (DEMO_TOKENS,)
    assert 100_000 <= DEMO_TOKENS <= 300_000
    np.testing.assert_array_equal(corpus, preprocess(demo_text())[0])
    counts = np.bincount(corpus, minlength=len(word_to_id))
    for group, words in DEMO_GROUPS.items():
        for w in words:
            assert w in word_to_id, w
            assert counts[word_to_id[w]] >= 100, (group, w)
            assert demo_group_of(w) == group
    assert demo_group_of("the") is None


def test_demo_groups_are_disjoint_and_sized():
    all_words = list(itertools.chain.from_iterable(DEMO_GROUPS.values()))
    assert len(all_words) == len(set(all_words)) == 140
    assert len(DEMO_GROUPS) == 14 and all(len(w) >= 7 for w in DEMO_GROUPS.values())
    assert "days" in DEMO_GROUPS and "monday" in DEMO_GROUPS["days"]


def test_demo_text_loads_with_load_text(tmp_path):
    path = tmp_path / "demo.txt"
    path.write_text(demo_text(sentences=200), encoding="utf-8")
    corpus, word_to_id, id_to_word = load_text(path)
    assert len(corpus) == len(preprocess(demo_text(sentences=200))[0]) + 200  # plus one <eos> per line


def _ppmi_neighbour_precision(corpus, id_to_word, window=2, k=5):
    """Mean fraction of each group word's k nearest neighbours (cosine of PPMI rows over a
    +-window co-occurrence count) that belong to the same group; plus the neighbour lists."""
    V = int(corpus.max()) + 1
    flat = np.zeros(V * V, dtype=np.float64)
    for off in range(1, window + 1):
        a, b = corpus[:-off].astype(np.int64), corpus[off:].astype(np.int64)
        flat += np.bincount(a * V + b, minlength=V * V) + np.bincount(b * V + a, minlength=V * V)
    C = flat.reshape(V, V)
    row = C.sum(axis=1)
    with np.errstate(divide="ignore"):
        pmi = np.log(C * C.sum()) - np.log(np.outer(row, row))
    ppmi = np.where(np.isfinite(pmi), np.maximum(pmi, 0), 0.0)
    unit = ppmi / np.maximum(np.linalg.norm(ppmi, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    word_to_id = {w: i for i, w in id_to_word.items()}
    precisions, neighbours = [], {}
    for words in DEMO_GROUPS.values():
        for w in words:
            nn = np.argsort(-sim[word_to_id[w]])[: min(k, len(words) - 1)]
            neighbours[w] = [id_to_word[int(j)] for j in nn]
            precisions.append(np.mean([n in words for n in neighbours[w]]))
    return float(np.mean(precisions)), neighbours


def test_demo_cooccurrences_recover_the_groups(demo):
    corpus, _, id_to_word = demo
    precision, neighbours = _ppmi_neighbour_precision(corpus, id_to_word)
    assert precision >= 0.95, precision
    assert all(n in DEMO_GROUPS["days"] for n in neighbours["monday"])
    assert all(n in DEMO_GROUPS["capitals"] for n in neighbours["paris"])
    assert all(n in DEMO_GROUPS["instruments"] for n in neighbours["violin"])
    # Negative control: the same tokens shuffled carry no group signal, so the measure can fail.
    shuffled = np.random.default_rng(0).permutation(corpus)
    control, _ = _ppmi_neighbour_precision(shuffled, id_to_word)
    assert control < 0.3, control
