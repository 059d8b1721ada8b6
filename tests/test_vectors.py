"""Word vectors: similarity, analogies, evaluations on small and real files, word2vec-format I/O."""

import math
import os
import pickle
import struct
from collections import defaultdict

import numpy as np
import pytest
import scipy.stats

from tinygrad_nlp import Parameter
from tinygrad_nlp import vectors as vectors_module
from tinygrad_nlp.vectors import AnalogyResult, WordPairResult, WordVectors, spearman

SQRT_HALF = math.sqrt(0.5)


def tiny():
    """Known cosines with 'a': b 1/sqrt(2), c 0, z 0 (zero vector), d -1."""
    m = np.array([[2, 0, 0], [1, 1, 0], [0, 3, 0], [-1, 0, 0], [0, 0, 0]], np.float32)
    return WordVectors(m, ["a", "b", "c", "d", "z"])


def royal(extra=()):
    """man:woman = king:queen holds exactly with 3CosAdd; 'prince' is a distractor."""
    words = ["man", "woman", "king", "prince", "queen"]
    m = [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [2, 0, 1, 1], [0, 3, 3, 0]]
    for w, v in extra:
        words.append(w)
        m.append(v)
    return WordVectors(np.array(m, np.float32), words)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


# ----- construction -----


def test_attributes_container_protocol_and_float32_kept():
    m = np.arange(15, dtype=np.float32).reshape(5, 3)
    wv = WordVectors(m, ("p", "q", "r", "s", "t"))
    assert wv.vectors.dtype == np.float32 and wv.vectors.shape == (5, 3)
    assert wv.words == ["p", "q", "r", "s", "t"] and isinstance(wv.words, list)
    assert wv.index == {"p": 0, "q": 1, "r": 2, "s": 3, "t": 4}
    assert wv.dim == 3 and len(wv) == 5
    assert "r" in wv and "x" not in wv and 3 not in wv and ["p"] not in wv
    np.testing.assert_array_equal(wv["s"], [9, 10, 11])
    assert wv["s"].dtype == np.float32
    assert "5 words x 3 dims, float32" in repr(wv)


def test_matrix_is_copied_and_read_only():
    m = np.ones((2, 2), np.float32)
    wv = WordVectors(m, ["x", "y"])
    m[0, 0] = 5.0  # the caller keeps training: our copy does not change
    assert wv["x"][0] == 1.0
    with pytest.raises(ValueError):
        wv.vectors[0, 0] = 3.0
    with pytest.raises(ValueError):
        wv["x"][0] = 3.0


def test_dtypes_float64_kept_ints_become_float32_and_variables_accepted():
    assert WordVectors(np.ones((1, 2)), ["x"]).vectors.dtype == np.float64
    assert WordVectors(np.ones((1, 2), np.int64), ["x"]).vectors.dtype == np.float32
    assert WordVectors([[1, 2]], ["x"]).vectors.dtype == np.float32
    p = Parameter(np.full((2, 3), 0.5, np.float32))
    wv = WordVectors(p, ["x", "y"])
    np.testing.assert_array_equal(wv.vectors, p.data)
    with pytest.raises(TypeError, match="complex"):
        WordVectors(np.ones((1, 2), np.complex64), ["x"])


@pytest.mark.parametrize(
    "words, match",
    [
        (["a", "b", "a"], r"duplicate word 'a' \(rows 0 and 2\)"),
        (["a", "", "c"], r"word 1 '' is empty"),
        (["a", "b c", "d"], r"word 1 'b c' contains white space"),
        (["a", "b\t", "d"], r"word 1 'b\\t' contains white space"),
        (["a", "b\u00a0c", "d"], r"contains white space"),
        (["a", "b"], r"2 words for a matrix of 3 rows"),
        (["a", "b", "c", "d"], r"4 words for a matrix of 3 rows"),
    ],
)
def test_bad_words_raise_value_error_naming_them(words, match):
    with pytest.raises(ValueError, match=match):
        WordVectors(np.ones((3, 2), np.float32), words)


def test_bad_matrices_and_non_string_words():
    with pytest.raises(TypeError, match="word 1 is int"):
        WordVectors(np.ones((2, 2)), ["a", 7])
    with pytest.raises(ValueError, match=r"shape \(V, H\)"):
        WordVectors(np.ones(3), ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"shape \(V, H\)"):
        WordVectors(np.ones((2, 0)), ["a", "b"])
    m = np.ones((3, 2), np.float32)
    m[1, 1] = np.nan
    with pytest.raises(ValueError, match=r"'b' \(row 1\) has non-finite"):
        WordVectors(m, ["a", "b", "c"])


def test_empty_vocabulary_is_allowed():
    wv = WordVectors(np.zeros((0, 4), np.float32), [])
    assert len(wv) == 0 and wv.most_similar(np.ones(4)) == []


def test_from_ids_accepts_the_books_dict_and_lists():
    m = np.eye(3, dtype=np.float32)
    wv = WordVectors.from_ids(m, {2: "c", 0: "a", 1: "b"})
    assert wv.words == ["a", "b", "c"] and wv.index["c"] == 2
    assert WordVectors.from_ids(m, ["a", "b", "c"]).words == ["a", "b", "c"]
    assert WordVectors.from_ids(m, {np.int64(i): w for i, w in enumerate("xyz")}).words == ["x", "y", "z"]
    with pytest.raises(ValueError, match="no id 2"):
        WordVectors.from_ids(m, {0: "a", 1: "b", 3: "c"})


# ----- similarity -----


def test_most_similar_known_cosines_ties_by_row_and_query_excluded():
    wv = tiny()
    got = wv.most_similar("a", topn=4)
    assert [w for w, _ in got] == ["b", "c", "z", "d"]
    np.testing.assert_allclose([s for _, s in got], [SQRT_HALF, 0.0, 0.0, -1.0], rtol=1e-6, atol=1e-7)
    assert all(type(s) is float for _, s in got)
    assert [w for w, _ in wv.most_similar("a", topn=1)] == ["b"]
    assert [w for w, _ in wv.most_similar("a", topn=100)] == ["b", "c", "z", "d"]  # never the query
    assert wv.most_similar("a", topn=0) == []


def test_most_similar_accepts_a_vector_and_keeps_every_word():
    got = tiny().most_similar(np.array([5.0, 5.0, 0.0]), topn=5)
    assert got[0][0] == "b" and got[0][1] == pytest.approx(1.0, abs=1e-6)
    assert {w for w, _ in got} == {"a", "b", "c", "d", "z"}
    assert dict(got)["a"] == pytest.approx(SQRT_HALF, rel=1e-6)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        tiny().most_similar(np.ones(4))


def test_zero_vectors_give_zero_cosines_not_nan():
    wv = tiny()
    got = wv.most_similar("z", topn=4)
    assert [w for w, _ in got] == ["a", "b", "c", "d"]  # all 0.0: row order
    assert [s for _, s in got] == [0.0, 0.0, 0.0, 0.0]
    assert not np.isnan(wv.unit_vectors).any()
    np.testing.assert_array_equal(wv.unit_vectors[4], 0.0)
    assert wv.most_similar(np.zeros(3), topn=2) == [("a", 0.0), ("b", 0.0)]
    assert wv.similarity("a", "z") == 0.0


def test_unit_vectors_are_cached_normalised_and_float32():
    wv = tiny()
    u = wv.unit_vectors
    assert u is wv.unit_vectors and u.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(u[:4], axis=1), 1.0, rtol=1e-6)
    huge = WordVectors(np.array([[3e38, 3e38], [1e-40, 0.0]], np.float32), ["h", "t"])  # no overflow/underflow
    np.testing.assert_allclose(huge.unit_vectors, [[SQRT_HALF, SQRT_HALF], [1.0, 0.0]], rtol=1e-6)


def test_similarity_and_unknown_word_key_errors():
    wv = tiny()
    assert wv.similarity("a", "b") == pytest.approx(SQRT_HALF)
    assert wv.similarity("a", "d") == pytest.approx(-1.0)
    with pytest.raises(KeyError, match="'nope' not in vocabulary"):
        wv.most_similar("nope")
    with pytest.raises(KeyError, match="'nope' not in vocabulary"):
        wv["nope"]
    with pytest.raises(KeyError, match="'nope'"):
        wv.similarity("a", "nope")


def test_analogy_known_answer_and_score():
    wv = royal()
    got = wv.analogy("man", "woman", "king", topn=2)
    assert [w for w, _ in got] == ["queen", "prince"]
    u = lambda v: np.asarray(v, float) / np.linalg.norm(v)  # noqa: E731
    q = u([0, 1, 0, 0]) - u([1, 0, 0, 0]) + u([1, 0, 1, 0])
    expected = [u(q) @ u([0, 3, 3, 0]), u(q) @ u([2, 0, 1, 1])]
    np.testing.assert_allclose([s for _, s in got], expected, rtol=1e-6)
    every = wv.analogy("man", "woman", "king", topn=10)
    assert [w for w, _ in every] == ["queen", "prince"]  # a, b and c are never answers


def test_analogy_names_every_unknown_word():
    wv = royal()
    with pytest.raises(KeyError, match=r"words 'boy', 'girl' not in vocabulary"):
        wv.analogy("boy", "girl", "king")
    with pytest.raises(KeyError, match=r"word 'emperor' not in vocabulary"):
        wv.analogy("man", "woman", "emperor")


# ----- analogy evaluation -----

QUESTIONS = """\
: royal
man woman king queen
man woman king prince
man woman emperor queen

: shouting
MAN WOMAN KING QUEEN
"""


def test_evaluate_analogies_exact_counts(tmp_path):
    path = write(tmp_path / "q.txt", QUESTIONS)
    r = royal().evaluate_analogies(path)
    assert isinstance(r, AnalogyResult)
    assert (r.correct, r.total, r.skipped) == (2, 3, 1)
    assert r.accuracy == pytest.approx(2 / 3)
    assert list(r.sections.items()) == [("royal", (1, 2)), ("shouting", (1, 1))]
    table = str(r)
    assert table == r.summary()
    assert "royal" in table and "66.67%" in table and "skipped" in table and "of 4 questions" in table

    exact = royal().evaluate_analogies(path, lowercase=False)
    assert (exact.correct, exact.total, exact.skipped) == (1, 2, 2)
    assert exact.sections == {"royal": (1, 2), "shouting": (0, 0)}
    assert math.isnan(royal().evaluate_analogies(write(tmp_path / "e.txt", ": x\nq w e r\n")).accuracy)


def test_evaluate_analogies_restrict_vocab(tmp_path):
    path = write(tmp_path / "q.txt", QUESTIONS)
    r = royal().evaluate_analogies(path, restrict_vocab=4)  # 'queen' (row 4) is out: 'prince' wins
    assert (r.correct, r.total, r.skipped) == (1, 1, 3)
    r = royal().evaluate_analogies(path, restrict_vocab=10**9)
    assert (r.correct, r.total) == (2, 3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="restrict_vocab"):
            royal().evaluate_analogies(path, restrict_vocab=bad)


def test_case_variants_count_as_the_same_word(tmp_path):
    # 'KING' points exactly along woman - man + king, 'Queen' nearly so: both beat 'queen'.
    q = [-1 + SQRT_HALF, 1, SQRT_HALF, 0]
    wv = royal([("KING", q), ("Queen", [q[0], q[1], q[2], 0.05])])
    path = write(tmp_path / "q.txt", ": s\nman woman king queen\n")
    # lower-cased: KING is a case variant of c, so excluded like c; the prediction 'Queen' counts as 'queen'
    r = wv.evaluate_analogies(path)
    assert (r.correct, r.total) == (1, 1)
    assert wv.analogy("man", "woman", "king", topn=1)[0][0] == "KING"
    r = wv.evaluate_analogies(path, lowercase=False)
    assert (r.correct, r.total) == (0, 1)


def test_evaluate_analogies_matches_one_question_at_a_time(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(300)]
    wv = WordVectors(rng.standard_normal((300, 8)).astype(np.float32), words)
    lines, expected = [": s1"], defaultdict(lambda: [0, 0])
    for k in range(400):
        if k == 200:
            lines.append(": s2")
        a, b, c = rng.choice(300, 3, replace=False)
        answer = wv.analogy(words[a], words[b], words[c], topn=1)[0][0]
        d = answer if rng.random() < 0.5 else words[rng.integers(300)]
        lines.append(f"{words[a]} {words[b]} {words[c]} {d}")
        sec = expected["s1" if k < 200 else "s2"]
        sec[0] += d == answer
        sec[1] += 1
    path = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    monkeypatch.setattr(vectors_module, "_SCORE_BLOCK", 7 * 300)  # blocks of 7 questions
    r = wv.evaluate_analogies(path)
    assert r.sections == {k: tuple(v) for k, v in expected.items()}
    assert r.correct == sum(v[0] for v in expected.values()) and r.total == 400 and r.skipped == 0


@pytest.mark.parametrize(
    "text, line, match",
    [
        (": s\na b c d\na b c\n", 3, "expected 4 words"),
        (": s\na b c d e\n", 2, "expected 4 words"),
        ("a b c d\n: s\n", 1, "question before any ': section' header"),
        (": s\n\n:\na b c d\n", 3, "section header without a name"),
    ],
)
def test_malformed_question_files_name_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(ValueError, match=rf"bad\.txt, line {line}: {match}"):
        royal().evaluate_analogies(path)


def test_undecodable_question_file_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b": s\nman woman king queen\nman \xff king queen\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: cannot decode"):
        royal().evaluate_analogies(path)


@pytest.fixture(scope="module")
def ptb_vectors(ptb_dir):
    """Random 10,000 x 16 float32 vectors for the book's PTB vocabulary (ids by first appearance)."""
    text = (ptb_dir / "ptb.train.txt").read_text(encoding="utf-8")
    vocab = list(dict.fromkeys(text.replace("\n", " <eos> ").split()))
    assert len(vocab) == 10000 and vocab[0] == "aer"
    rng = np.random.default_rng(0)
    return WordVectors(rng.standard_normal((len(vocab), 16)).astype(np.float32), vocab)


def test_real_questions_file_counts(eval_dir, ptb_vectors):
    path = eval_dir / "questions-words.txt"
    # count answerable questions per section independently of the module
    vocab = set(ptb_vectors.words)
    totals, section = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(":"):
            section = line[1:].strip()
            totals[section] = 0
        elif all(w.lower() in vocab for w in line.split()):
            totals[section] += 1
    r = ptb_vectors.evaluate_analogies(path)
    assert (r.total, r.skipped, r.total + r.skipped) == (4716, 14828, 19544)  # the README's figures
    assert list(r.sections) == list(totals) and len(totals) == 14
    assert {k: t for k, (_, t) in r.sections.items()} == totals
    assert 0 <= r.correct <= 20  # random vectors answer (almost) nothing
    r10 = ptb_vectors.evaluate_analogies(path, restrict_vocab=2000)
    assert r10.total < r.total and r10.total + r10.skipped == 19544
    exact_case = sum(all(w in vocab for w in line.split())
                     for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith(":"))
    assert 0 < exact_case < 4716
    assert ptb_vectors.evaluate_analogies(path, lowercase=False).total == exact_case


# ----- word-pair evaluation -----

PAIRS = """\
# a comment
# Word 1\tWord 2\tHuman (mean)
a\tb\t4
a\tc\t1

a\tz\t3.0
a\tzzz\t7.5
a\td\t2
"""


def test_evaluate_word_pairs_exact_spearman_with_ties(tmp_path):
    # cosines: a-b 0.707, a-c 0, a-z 0 (tie), a-d -1; human scores 4, 1, 3, 2
    # ranks (2.5 for the tie): [4, 2.5, 2.5, 1] vs [4, 1, 3, 2] -> rho = 3 / sqrt(4.5 * 5) = 2 / sqrt(10)
    r = tiny().evaluate_word_pairs(write(tmp_path / "ws.tsv", PAIRS))
    assert isinstance(r, WordPairResult)
    assert (r.pairs_used, r.pairs_total) == (4, 5)
    assert r.oov_ratio == pytest.approx(0.2)
    assert r.spearman == pytest.approx(2 / math.sqrt(10), abs=1e-12)
    assert r.pearson == pytest.approx(scipy.stats.pearsonr([SQRT_HALF, 0, 0, -1], [4, 1, 3, 2])[0], rel=1e-6)
    assert "over 4 of 5 pairs" in str(r) and "20.0%" in str(r)


def test_evaluate_word_pairs_case_folding(tmp_path):
    path = write(tmp_path / "ws.tsv", "A\tB\t3\nA\tD\t1\nc\tB\t2\n")
    r = tiny().evaluate_word_pairs(path)
    assert (r.pairs_used, r.spearman) == (3, pytest.approx(math.sqrt(3) / 2))  # ranks [2.5, 1, 2.5] vs [3, 1, 2]
    r = tiny().evaluate_word_pairs(path, lowercase=False)
    assert (r.pairs_used, r.oov_ratio) == (0, 1.0) and math.isnan(r.spearman)


@pytest.mark.parametrize(
    "bad_line, match",
    [
        ("a\tb", "expected 'word1<TAB>word2<TAB>score'"),
        ("a b 3.0", "expected 'word1<TAB>word2<TAB>score'"),
        ("a\tb\t3\t4", "expected 'word1<TAB>word2<TAB>score'"),
        ("a\t\t3", "expected 'word1<TAB>word2<TAB>score'"),
        ("a\tb\thigh", "score 'high' is not a finite number"),
        ("a\tb\tnan", "score 'nan' is not a finite number"),
    ],
)
def test_malformed_word_pair_files_name_file_and_line(tmp_path, bad_line, match):
    path = write(tmp_path / "ws.tsv", f"# header\na\tb\t1\n{bad_line}\n")
    with pytest.raises(ValueError, match=rf"ws\.tsv, line 3: {match}"):
        tiny().evaluate_word_pairs(path)


def test_real_wordsim_file(eval_dir, ptb_vectors):
    path = eval_dir / "wordsim353.tsv"
    r = ptb_vectors.evaluate_word_pairs(path)
    assert (r.pairs_used, r.pairs_total) == (237, 353)
    assert r.oov_ratio == pytest.approx(116 / 353)
    # recompute independently: cosine with numpy, Spearman with scipy
    sims, gold = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        w1, w2, score = line.split("\t")
        if w1.lower() in ptb_vectors and w2.lower() in ptb_vectors:
            v1, v2 = ptb_vectors[w1.lower()].astype(float), ptb_vectors[w2.lower()].astype(float)
            sims.append(v1 @ v2 / np.linalg.norm(v1) / np.linalg.norm(v2))
            gold.append(float(score))
    assert r.spearman == pytest.approx(scipy.stats.spearmanr(sims, gold)[0], abs=1e-9)


# ----- Spearman -----


def test_spearman_matches_scipy_on_random_data_with_ties():
    rng = np.random.default_rng(2)
    for trial in range(300):
        n = int(rng.integers(2, 60))
        levels = int(rng.integers(2, 8)) if trial % 3 else 10**6  # many ties, or (almost) none
        x = rng.integers(0, levels, n).astype(float)
        y = rng.integers(0, levels, n) + (x if trial % 2 else 0)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            assert math.isnan(spearman(x, y))
            continue
        assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-12)


def test_spearman_edge_cases():
    assert spearman([1, 2, 3], [10, 20, 30]) == 1.0
    assert spearman([1, 2, 3], [3, 2, 1]) == -1.0
    assert math.isnan(spearman([1], [2])) and math.isnan(spearman([], []))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="equal length"):
        spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        spearman([1, np.nan], [1, 2])


# ----- word2vec format -----


def awkward_vectors():
    """float32 values that a sloppy text writer would not round-trip, and non-ASCII words."""
    rng = np.random.default_rng(3)
    m = (rng.standard_normal((6, 7)) * 10.0 ** rng.integers(-30, 30, (6, 7))).astype(np.float32)
    m[0, :4] = [np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-45, -0.0]
    m[1, :3] = [0.1, 1 / 3, 16777217]
    return WordVectors(m, ["the", "café", "日本", "<eos>", "N", "a'b"])


@pytest.mark.parametrize("binary", [False, True])
def test_round_trip_is_exact(tmp_path, binary):
    wv = awkward_vectors()
    path = tmp_path / "v.w2v"
    wv.save_word2vec_format(path, binary=binary)
    back = WordVectors.load_word2vec_format(path, binary=binary)
    assert back.words == wv.words
    assert back.vectors.dtype == np.float32
    np.testing.assert_array_equal(back.vectors, wv.vectors)
    assert np.array_equal(np.signbit(back.vectors), np.signbit(wv.vectors))  # -0.0 too


def test_float64_text_round_trip_with_dtype(tmp_path):
    m = np.random.default_rng(4).standard_normal((3, 5))
    wv = WordVectors(m, ["x", "y", "z"])
    wv.save_word2vec_format(tmp_path / "v.txt")
    np.testing.assert_array_equal(WordVectors.load_word2vec_format(tmp_path / "v.txt", dtype=np.float64).vectors, m)
    np.testing.assert_array_equal(WordVectors.load_word2vec_format(tmp_path / "v.txt").vectors, m.astype(np.float32))


def test_file_layouts(tmp_path):
    wv = WordVectors(np.array([[1.5, -2.0], [0.25, 3.0]], np.float32), ["ab", "ç"])
    wv.save_word2vec_format(tmp_path / "v.txt")
    assert (tmp_path / "v.txt").read_text(encoding="utf-8") == "2 2\nab 1.5 -2\nç 0.25 3\n"
    wv.save_word2vec_format(tmp_path / "v.bin", binary=True)
    expected = b"2 2\nab " + struct.pack("<2f", 1.5, -2.0) + b"\n" + "ç ".encode() + struct.pack("<2f", 0.25, 3.0) + b"\n"
    assert (tmp_path / "v.bin").read_bytes() == expected


def test_binary_without_newlines_and_latin1_words(tmp_path):
    # gensim writes no newline after a vector; word2vec.c does: both load
    raw = b"2 3\ncaf\xe9 " + struct.pack("<3f", 1, 2, 3) + b"x " + struct.pack("<3f", 4, 5, 6)
    (tmp_path / "v.bin").write_bytes(raw)
    wv = WordVectors.load_word2vec_format(tmp_path / "v.bin", binary=True, encoding="latin-1")
    assert wv.words == ["café", "x"]
    np.testing.assert_array_equal(wv.vectors, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"vector index 0: word b'caf\\xe9' is not valid utf-8"):
        WordVectors.load_word2vec_format(tmp_path / "v.bin", binary=True)


def test_text_file_with_crlf_and_trailing_blank_lines_loads(tmp_path):
    (tmp_path / "v.txt").write_bytes(b"2 2\r\nx 1 2\r\ny 3 4\r\n\r\n\n")
    wv = WordVectors.load_word2vec_format(tmp_path / "v.txt")
    assert wv.words == ["x", "y"] and wv.vectors.tolist() == [[1, 2], [3, 4]]


def test_save_is_atomic(tmp_path):
    path = tmp_path / "v.bin"
    tiny().save_word2vec_format(path, binary=True)
    before = path.read_bytes()
    too_big = WordVectors(np.array([[1e300, 0.0]]), ["x"])
    with pytest.raises(ValueError, match="too large for float32"):
        too_big.save_word2vec_format(path, binary=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["v.bin"]  # no temporary file left behind


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r": empty file"),
        ("3\n", r", line 1: bad header '3'"),
        ("two 2\n", r", line 1: bad header"),
        ("1 0\nx\n", r", line 1: bad header"),
        ("-1 2\n", r", line 1: bad header"),
        ("3 2\nx 1 2\ny 3 4\n", r": the header \(line 1\) declares 3 vectors but the file ends after 2 \(line 3\)"),
        ("1 2\nx 1 2\ny 3 4\n", r", line 3: more vectors than the 1"),
        ("2 2\nx 1 2\ny 3\n", r", line 3: expected a word and 2 values, got 1"),
        ("2 2\nx 1 2\ny 3 4 5\n", r", line 3: expected a word and 2 values, got 3"),
        ("2 2\nx 1 2\n\ny 3 4\n", r", line 3: empty line where vector 2 of 2 was expected"),
        ("3 2\nx 1 2\ny 3 4\nz 5 abc\n", r", line 4: value 'abc' is not a number"),
        ("2 2\nx 1 2\ny nan 4\n", r", line 3: non-finite value"),
        ("2 2\nx 1 2\ny 1e39 4\n", r", line 3: non-finite value"),
        ("3 2\nx 1 2\ny 3 4\nx 5 6\n", r", line 4: duplicate word 'x' \(first on line 2\)"),
    ],
)
def test_malformed_text_files_name_file_and_line(tmp_path, text, match):
    path = write(tmp_path / "bad.txt", text)
    with pytest.raises(ValueError, match=rf"bad\.txt{match}"):
        WordVectors.load_word2vec_format(path)


def test_undecodable_text_file_names_the_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"2 2\nx 1 2\n\xff 3 4\n")
    with pytest.raises(ValueError, match=r"bad\.txt, line 3: cannot decode as utf-8"):
        WordVectors.load_word2vec_format(tmp_path / "bad.txt")


def binary_file(n_header, entries, dim=2):
    return f"{n_header} {dim}\n".encode() + b"".join(w + b" " + struct.pack(f"<{dim}f", *v) + b"\n" for w, v in entries)


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", r", line 1: no header line"),
        (b"2 2 x\n", r", line 1: bad header"),
        (binary_file(2, [(b"x", (1, 2)), (b"y", (3, 4))])[:-3], r": truncated at vector index 1 of 2 \(word 'y'\): needs 8 bytes, 6 left"),
        (binary_file(2, [(b"x", (1, 2)), (b"y", (3, 4))])[:-11], r": truncated at vector index 1 of 2: no word followed by a space"),
        (binary_file(3, [(b"x", (1, 2)), (b"y", (3, 4))]), r": truncated at vector index 2 of 3"),
        (binary_file(1, [(b"x", (1, 2)), (b"y", (3, 4))]), r": 12 bytes of data after the 1 vectors"),
        (binary_file(2, [(b"x", (1, 2)), (b"x", (3, 4))]), r": vector index 1: duplicate word 'x' \(first at index 0\)"),
        (binary_file(2, [(b"x", (1, 2)), (b"y", (np.inf, 4))]), r": vector index 1 \(word 'y'\) has non-finite"),
        (binary_file(2, [(b"x", (1, 2)), (b"y\tz", (3, 4))]), r": vector index 1: bad word 'y\\tz'"),
    ],
)
def test_malformed_binary_files_name_file_and_vector(tmp_path, data, match):
    (tmp_path / "bad.bin").write_bytes(data)
    with pytest.raises(ValueError, match=rf"bad\.bin{match}"):
        WordVectors.load_word2vec_format(tmp_path / "bad.bin", binary=True)


class _Boom:
    def __reduce__(self):
        return (os.mkdir, ("should-never-exist",))


@pytest.mark.parametrize("binary", [False, True])
def test_loading_never_unpickles(tmp_path, monkeypatch, binary):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "v.pkl").write_bytes(pickle.dumps(_Boom()))
    with pytest.raises(ValueError, match=r"v\.pkl"):
        WordVectors.load_word2vec_format(tmp_path / "v.pkl", binary=binary)
    assert not (tmp_path / "should-never-exist").exists()


def test_text_file_read_as_binary_fails_cleanly(tmp_path):
    awkward_vectors().save_word2vec_format(tmp_path / "v.txt")
    with pytest.raises(ValueError, match=r"v\.txt"):
        WordVectors.load_word2vec_format(tmp_path / "v.txt", binary=True)


# ----- gensim interoperability -----


def test_gensim_reads_and_writes_our_formats_and_agrees_on_evaluation(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    KeyedVectors = gensim_models.KeyedVectors
    wv = awkward_vectors()
    for binary in (False, True):
        path = tmp_path / f"ours.{'bin' if binary else 'txt'}"
        wv.save_word2vec_format(path, binary=binary)
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert list(kv.index_to_key) == wv.words
        np.testing.assert_array_equal(kv.vectors, wv.vectors)
        theirs = tmp_path / f"theirs.{'bin' if binary else 'txt'}"
        kv.save_word2vec_format(str(theirs), binary=binary)
        back = WordVectors.load_word2vec_format(theirs, binary=binary)
        assert back.words == wv.words
        np.testing.assert_array_equal(back.vectors, wv.vectors)

    # analogy and word-pair evaluation agree with gensim, case variants included
    rng = np.random.default_rng(5)
    words = [f"w{i}" for i in range(200)] + ["W3", "W7", "w200"]
    m = rng.standard_normal((len(words), 10)).astype(np.float32)
    lines = [": first"]
    for k in range(300):
        if k == 150:
            lines.append(": second")
        a, b, c, d = (words[i] for i in rng.choice(len(words), 4, replace=False))
        if k % 3 == 0:  # make some questions right, half of those with an upper-case word
            m[words.index(d)] = m[words.index(b)] - m[words.index(a)] + m[words.index(c)] + 0.3 * rng.standard_normal(10)
            if k % 6 == 0:
                a = a.upper()
        lines.append(f"{a} {b} {c} {d}")
    lines.append("w1 w2 unknown w3")
    questions = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    pairs = write(tmp_path / "p.tsv", "".join(f"{words[i]}\t{words[j]}\t{rng.integers(0, 5)}\n"
                                              for i, j in rng.integers(0, len(words), (80, 2))) + "w1\tnope\t3\n")
    ours = WordVectors(m, words)
    kv = KeyedVectors(10)
    kv.add_vectors(words, m)
    for lowercase in (True, False):
        for restrict in (None, 150):
            r = ours.evaluate_analogies(questions, lowercase=lowercase, restrict_vocab=restrict)
            score, sections = kv.evaluate_word_analogies(str(questions), case_insensitive=lowercase,
                                                         restrict_vocab=restrict or len(words))
            theirs = {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections}
            assert theirs.pop("Total accuracy") == (r.correct, r.total)
            assert theirs == r.sections
            assert r.correct > 5 and r.accuracy == pytest.approx(score)
    pearson, spear, oov_percent = kv.evaluate_word_pairs(str(pairs))
    r = ours.evaluate_word_pairs(pairs)
    assert r.spearman == pytest.approx(spear[0], abs=1e-6)
    assert r.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert 100 * r.oov_ratio == pytest.approx(oov_percent)


# ----- gensim's names and signatures -----


def planted(seed=11, n=120, dim=12):
    """Random vectors where w0:w1 = w2:w3 (and a few more) hold by construction, plus case variants."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n)] + ["W5", "W9"]
    m = rng.standard_normal((len(words), dim)).astype(np.float32)
    quads = [(0, 1, 2, 3), (4, 5, 6, 7), (10, 11, 12, 13), (20, 21, 22, 23)]
    for a, b, c, d in quads:
        m[d] = m[b] - m[a] + m[c] + 0.2 * rng.standard_normal(dim)
    return words, m, rng


def test_most_similar_positive_negative_is_the_analogy_and_old_calls_still_work():
    wv = royal()
    assert wv.most_similar(positive=["woman", "king"], negative=["man"], topn=1)[0][0] == "queen"
    assert wv.most_similar(positive=["woman", "king"], negative=["man"], topn=2) == wv.analogy("man", "woman", "king", topn=2)
    assert wv.most_similar("man", topn=2) == wv.most_similar(positive="man", topn=2)
    assert len(wv.most_similar("man")) == 4  # topn defaults to 10, gensim's; the query word is left out
    weighted = wv.most_similar(positive=[("woman", 2.0), "king"], negative=["man"], topn=1)
    assert weighted[0][0] == "queen"
    scores = wv.most_similar(positive=["king"], topn=None)
    assert scores.shape == (5,) and scores[wv.key_to_index["king"]] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one"):
        wv.most_similar()
    with pytest.raises(KeyError, match="'emperor'"):
        wv.most_similar(positive=["king", "emperor"])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        wv.most_similar(positive=[np.ones(3)])


def test_aliases_get_vector_and_doesnt_match():
    wv = tiny()
    assert wv.index_to_key is wv.words and wv.key_to_index is wv.index and wv.vector_size == 3
    v = wv.get_vector("a")
    np.testing.assert_array_equal(v, [2, 0, 0])
    v[0] = 9  # a copy: the stored vector stays
    np.testing.assert_array_equal(wv["a"], [2, 0, 0])
    np.testing.assert_allclose(wv.get_vector("b", norm=True), [SQRT_HALF, SQRT_HALF, 0], rtol=1e-6)
    assert wv.has_index_for("c") and not wv.has_index_for("nope")
    assert wv.doesnt_match(["a", "b", "d", "nope"]) == "d"
    with pytest.raises(ValueError, match="none of"):
        wv.doesnt_match(["nope", "nada"])


def test_most_similar_cosmul_known_scores():
    wv = tiny()
    # one positive word: score = (1 + cos) / 2 / (1 + 1e-6)
    got = dict(wv.most_similar_cosmul(positive=["a"], topn=4))
    assert got["b"] == pytest.approx((1 + SQRT_HALF) / 2 / (1 + 1e-6))
    assert got["d"] == pytest.approx(0.0, abs=1e-12) and got["c"] == pytest.approx(0.5 / (1 + 1e-6))
    got = dict(wv.most_similar_cosmul(positive=["a"], negative=["c"], topn=4))
    assert got["b"] == pytest.approx(((1 + SQRT_HALF) / 2) / ((1 + SQRT_HALF) / 2 + 1e-6))


def test_gensim_api_agrees_with_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    words, m, rng = planted()
    ours = WordVectors(m, words)
    kv = gensim_models.KeyedVectors(m.shape[1])
    kv.add_vectors(words, m)
    queries = [dict(positive=["w1", "w2"], negative=["w0"]), dict(positive="w7"),
               dict(positive=[("w5", 2.0), "w6"], negative=["w4"]), dict(positive=[m[3] / np.linalg.norm(m[3])], negative=["w8"]),
               dict(negative=["w30"]), dict(positive=["w11", "w12"], negative=["w10"], restrict_vocab=60)]
    for query in queries:
        for method in ("most_similar", "most_similar_cosmul"):
            weighted = any(isinstance(t, tuple) for t in query.get("positive", []))
            if method == "most_similar_cosmul" and (weighted or "positive" not in query or "restrict_vocab" in query):
                continue  # gensim's cosmul takes no weights, needs a positive term, ignores restrict_vocab
            mine = getattr(ours, method)(topn=7, **query)
            theirs = getattr(kv, method)(topn=7, **query)
            assert [w for w, _ in mine] == [w for w, _ in theirs], (method, query)
            np.testing.assert_allclose([s for _, s in mine], [s for _, s in theirs], rtol=1e-5, atol=1e-6)
    first60 = WordVectors(m[:60], words[:60])
    for method in ("most_similar", "most_similar_cosmul"):
        query = dict(positive=["w11", "w12"], negative=["w10"], topn=7)
        assert getattr(ours, method)(restrict_vocab=60, **query) == getattr(first60, method)(**query)
    for group in (["w1", "w2", "w3", "w90"], ["w20", "w21", "w22", "w23", "w64", "nope"]):
        assert ours.doesnt_match(group) == kv.doesnt_match([w for w in group if w in kv])
    assert ours.similarity("w0", "w13") == pytest.approx(float(kv.similarity("w0", "w13")), abs=1e-6)
    np.testing.assert_allclose(ours.get_vector("w4", norm=True), kv.get_vector("w4", norm=True), rtol=1e-6)
    assert ours.index_to_key == list(kv.index_to_key) and ours.key_to_index == dict(kv.key_to_index)

    lines = [": first", "w0 w1 w2 w3", "W5 w5 w4 w6", "w4 w5 w6 w7", "w9 w8 w7 w6", ": second",
             "w10 w11 w12 w13", "w20 w21 w22 w23", "w1 w2 w3 unknown", "w30 w31 w32 w33"]
    questions = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    for case_insensitive in (True, False):
        for restrict in (300000, 21):
            score, sections = ours.evaluate_word_analogies(questions, restrict_vocab=restrict,
                                                           case_insensitive=case_insensitive)
            g_score, g_sections = kv.evaluate_word_analogies(str(questions), restrict_vocab=restrict,
                                                             case_insensitive=case_insensitive)
            assert score == pytest.approx(g_score)
            fold = str.upper if case_insensitive else str
            assert [s["section"] for s in sections] == [s["section"] for s in g_sections]
            for mine, theirs in zip(sections, g_sections):
                for key in ("correct", "incorrect"):
                    assert [tuple(map(fold, q)) for q in mine[key]] == [tuple(q) for q in theirs[key]]
    assert score > 0 and sections[-1]["section"] == "Total accuracy"

    pairs = "".join(f"{words[i]}\t{words[j]}\t{rng.integers(0, 10)}\n" for i, j in rng.integers(0, 120, (40, 2)))
    pairs_file = write(tmp_path / "pairs.tsv", "# word1\tword2\tscore\n" + pairs + "w1\tnope\t3\nW5\tw9\t2\n")
    for case_insensitive in (True, False):
        (p, p_p), (s, s_p), oov = ours.evaluate_word_pairs(pairs_file, case_insensitive=case_insensitive)
        (gp, gp_p), (gs, gs_p), g_oov = kv.evaluate_word_pairs(str(pairs_file), case_insensitive=case_insensitive)
        assert (p, p_p, s, s_p) == pytest.approx((gp, gp_p, gs, gs_p), rel=1e-5)
        assert oov == pytest.approx(g_oov)
    comma = write(tmp_path / "pairs.csv", pairs.replace("\t", ","))
    r = ours.evaluate_word_pairs(comma, delimiter=",")
    g = kv.evaluate_word_pairs(str(comma), delimiter=",")
    assert (r.pearson, r.spearman) == pytest.approx((g[0][0], g[1][0]), rel=1e-5)
    assert r.pairs_used == 40 and r.spearman_test.pvalue == pytest.approx(g[1][1], rel=1e-5)


def test_word_pairs_use_scipy_stats_and_keep_the_old_names(tmp_path):
    wv = tiny()
    path = write(tmp_path / "p.tsv", "a\tb\t4\na\tc\t1\na\td\t3\nA\tb\t2\n")
    r = wv.evaluate_word_pairs(path, lowercase=False)  # the older keyword, case kept: 'A' is unknown
    sims, gold = [SQRT_HALF, 0.0, -1.0], [4, 1, 3]
    assert r.pearson_test == pytest.approx(tuple(scipy.stats.pearsonr(sims, gold)))
    assert r.spearman_test == pytest.approx(tuple(scipy.stats.spearmanr(sims, gold)))
    assert (r.pairs_used, r.pairs_total, r.oov_ratio) == (3, 4, 0.25)
    pearson, spear, oov_percent = r
    assert (pearson, spear, oov_percent) == (r.pearson_test, r.spearman_test, 25.0) and len(r) == 3
    with pytest.raises(ValueError, match="word1,word2,score"):
        wv.evaluate_word_pairs(path, delimiter=",")


def test_load_word2vec_format_limit_and_no_header_agree_with_gensim(tmp_path):
    words, m, _ = planted(n=30, dim=5)
    wv = WordVectors(m, words)
    for binary in (False, True):
        path = tmp_path / f"v.{binary}"
        wv.save_word2vec_format(path, binary=binary)
        for limit in (0, 1, 7, 32, 100):
            got = WordVectors.load_word2vec_format(path, binary=binary, limit=limit)
            assert got.words == words[:limit]
            np.testing.assert_array_equal(got.vectors, m[:limit])
    glove = tmp_path / "glove.txt"
    glove.write_text("".join(f"{w} {' '.join(repr(float(x)) for x in row)}\n" for w, row in zip(words, m)) + "\n")
    got = WordVectors.load_word2vec_format(glove, no_header=True)
    assert got.words == words and got.dim == 5
    np.testing.assert_array_equal(got.vectors, m)
    assert WordVectors.load_word2vec_format(glove, no_header=True, limit=3).words == words[:3]
    with pytest.raises(ValueError, match="text files only"):
        WordVectors.load_word2vec_format(tmp_path / "v.True", binary=True, no_header=True)
    with pytest.raises(ValueError, match="limit must be"):
        WordVectors.load_word2vec_format(glove, limit=-1)
    gensim_models = pytest.importorskip("gensim.models")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(glove), no_header=True, limit=10)
    mine = WordVectors.load_word2vec_format(glove, no_header=True, limit=10)
    assert mine.words == list(kv.index_to_key)
    np.testing.assert_array_equal(mine.vectors, kv.vectors)


def test_projector_tsv_files_hold_the_exact_vectors_and_words(tmp_path):
    words, m, _ = planted(n=30, dim=4)
    wv = WordVectors(m, words)
    vec, meta = wv.save_projector_tsv(tmp_path / "vectors.tsv", tmp_path / "metadata.tsv")
    np.testing.assert_array_equal(np.loadtxt(vec, delimiter="\t", dtype=np.float32), m)
    assert (tmp_path / "metadata.tsv").read_text(encoding="utf-8").split("\n") == words + [""]
    assert (tmp_path / "vectors.tsv").read_text().count("\n") == len(words)
    assert all(line.count("\t") == 3 for line in (tmp_path / "vectors.tsv").read_text().splitlines())


def test_text_vectors_are_read_line_by_line_in_chunks(tmp_path):
    """A file of more values than one conversion chunk (65,536) loads exactly, limit and no_header too."""
    rng = np.random.default_rng(0)
    m = rng.standard_normal((900, 100)).astype(np.float32)
    words = [f"w{i}" for i in range(900)]
    body = "".join(w + " " + " ".join(repr(float(x)) for x in row) + "\n" for w, row in zip(words, m))
    (tmp_path / "v.txt").write_text("900 100\n" + body)
    (tmp_path / "nh.txt").write_text(body + "\n\n")
    loaded = WordVectors.load_word2vec_format(tmp_path / "v.txt")
    assert loaded.words == words and np.array_equal(loaded.vectors, m)
    part = WordVectors.load_word2vec_format(tmp_path / "v.txt", limit=700)
    assert part.words == words[:700] and np.array_equal(part.vectors, m[:700])
    nh = WordVectors.load_word2vec_format(tmp_path / "nh.txt", no_header=True)
    assert np.array_equal(nh.vectors, m)
    (tmp_path / "gap.txt").write_text(body[:50_000].rsplit("\n", 1)[0] + "\n\n" + body[50_000:].split("\n", 1)[1])
    with pytest.raises(ValueError, match=r"gap\.txt, line \d+: empty line where vector \d+ was expected"):
        WordVectors.load_word2vec_format(tmp_path / "gap.txt", no_header=True)


def test_a_vectors_file_without_newlines_is_refused_not_read_into_memory(tmp_path, monkeypatch):
    from tinygrad_nlp.text import stream

    defaults = list(stream.read_line_blocks.__defaults__)
    defaults[2] = 1000  # max_line_bytes, as if the limit were 1,000 bytes
    monkeypatch.setattr(stream.read_line_blocks, "__defaults__", tuple(defaults))
    (tmp_path / "long.txt").write_bytes(b"1 2\n" + b"7" * 5000)
    with pytest.raises(ValueError, match=r"long\.txt: line 2 is longer than 1,000 bytes"):
        WordVectors.load_word2vec_format(tmp_path / "long.txt")
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match=r"/dev/zero: line 1 is longer than 1,000 bytes"):
            WordVectors.load_word2vec_format("/dev/zero")


# ----- pictures -----


def test_plot_pca_matches_an_independent_pca_and_writes_only_when_asked(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    monkeypatch.chdir(tmp_path)
    backend = matplotlib.get_backend()
    words, m, _ = planted(n=40, dim=6)
    wv = WordVectors(m, words)
    chosen = ["w0", "w1", "w2", "w3", "w17", "W5"]
    fig = wv.plot(chosen)
    assert isinstance(fig, Figure) and list(tmp_path.iterdir()) == []
    ax = fig.axes[0]
    xy = np.asarray(ax.collections[0].get_offsets())
    assert [t.get_text() for t in ax.texts] == chosen
    # independent PCA: eigenvectors of the covariance of the chosen unit vectors
    u = m[[words.index(w) for w in chosen]].astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    centred = u - u.mean(axis=0)
    vals, vecs = np.linalg.eigh(centred.T @ centred)
    expected = centred @ vecs[:, ::-1][:, :2]
    for j in range(2):  # components are defined up to sign
        sign = np.sign(expected[:, j] @ xy[:, j])
        np.testing.assert_allclose(xy[:, j], sign * expected[:, j], atol=1e-5)
    host = Figure()
    assert wv.plot(chosen, ax=host.add_subplot(), title="t") is host
    wv.plot(chosen, path="words.png")
    assert (tmp_path / "words.png").read_bytes()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend
    with pytest.raises(KeyError, match="'nope'"):
        wv.plot(["w0", "nope"])
    with pytest.raises(ValueError, match="'pca' or 'tsne'"):
        wv.plot(chosen, method="umap")
    with pytest.raises(ValueError, match="at least two"):
        wv.plot(["w0"])


def test_plot_tsne_keeps_planted_groups_apart():
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((3, 16)) * 5
    m = np.concatenate([c + 0.1 * rng.standard_normal((8, 16)) for c in centres]).astype(np.float32)
    words = [f"g{g}_{i}" for g in range(3) for i in range(8)]
    fig = WordVectors(m, words).plot(words, method="tsne", seed=0)
    xy = np.asarray(fig.axes[0].collections[0].get_offsets())
    assert xy.shape == (24, 2) and fig.axes[0].texts[5].get_text() == "g0_5"
    # every point's nearest neighbour in the picture is from its own group
    d = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(24) * 1e9
    assert all(np.argmin(d[i]) // 8 == i // 8 for i in range(24))
