"""Word vectors: cosine neighbours, analogies, standard evaluations and word2vec-format files.

A [`WordVectors`][WordVectors] pairs a ``(V, H)`` matrix (for example a trained CBoW's input embedding)
with its ``V`` words. It answers nearest-neighbour and analogy queries by cosine similarity,
scores the two usual benchmarks (Mikolov's analogy questions, WordSim-353) and reads and writes
the word2vec text and binary formats that gensim and the original ``word2vec.c`` tools use.

The query and evaluation methods also go by the names and signatures of gensim's
``KeyedVectors`` (``most_similar(positive=..., negative=...)``, ``most_similar_cosmul``,
``doesnt_match``, ``evaluate_word_analogies``, ``index_to_key`` ...), so code written for gensim
runs on these vectors, and [`WordVectors.plot`][WordVectors.plot] draws chosen words in 2-D.

Examples:
    >>> import numpy as np
    >>> wv = WordVectors(np.array([[1, 0], [1, 1], [0, 1]], np.float32), ["x", "xy", "y"])
    >>> [(w, round(s, 3)) for w, s in wv.most_similar("x", topn=2)]
    [('xy', 0.707), ('y', 0.0)]
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Sequence, Union

import numpy as np

from tinygrad_nlp.core import Variable
from tinygrad_nlp.io import atomic_write, figure_and_axes, finish_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PathLike = Union[str, "os.PathLike[str]"]
# A most_similar term: a word, a vector of shape (H,), or a (word, weight) pair.
Term = Union[str, np.ndarray, Variable, tuple]
Terms = Union[Term, Sequence[Term], None]

__all__ = ["AnalogyResult", "Correlation", "WordPairResult", "WordVectors", "spearman"]

# Largest score block evaluate_analogies builds at once (questions x candidate words), in elements:
# 2**24 float32 is 64 MiB, so memory stays flat however large the vocabulary.
_SCORE_BLOCK = 1 << 24
_MAX_QUESTION_CHUNK = 2048
# The largest vector size a word2vec header may declare (far above any real embedding): a header
# of "0 999...9" is refused, not handed to numpy as a shape.
MAX_DIM = 1 << 20


def _is_single_token(word):
    """True for a non-empty string without any (Unicode) white space, as word2vec files need."""
    return word.split() == [word]


def _read_text_lines(path, encoding="utf-8"):
    """Yield ``(line_number, line)`` of a text file, read line by line (a trailing CR is dropped).

    A decoding error becomes a ValueError naming the file and the line it happened on, and so
    does a line longer than `tinygrad_nlp.text.stream.MAX_LINE_BYTES` (100 MB): a file
    without newlines, ``/dev/zero`` say, is refused instead of read until memory runs out.
    """
    from tinygrad_nlp.text.stream import read_line_blocks

    def undecodable(path, line, column, bad, encoding, reason):
        return f"{path}, line {line}: cannot decode as {encoding} ({reason} at column {column}: bytes {bad})"

    for first, text in read_line_blocks(path, encoding, hint=undecodable):
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()  # a block ends with a newline, which does not start another line
        for i, line in enumerate(lines):
            yield first + i, line[:-1] if line.endswith("\r") else line


class WordVectors:
    """A ``(V, H)`` matrix of word vectors and the ``V`` words its rows stand for.

    Args:
        matrix: array-like of shape ``(V, H)`` with ``H >= 1`` (a tinygrad ``Variable`` is accepted
            too). float32 and float64 keep their dtype; other numeric dtypes become float32. The
            array is copied and made read-only, so later training steps cannot silently change
            vectors (and the cached normalised rows) behind this object's back.
        words: sequence of ``V`` distinct, non-empty strings without white space (so they can be
            written to word2vec files), ``words[i]`` naming row ``i``.

    Attributes: ``vectors`` (the read-only matrix), ``words`` (list), ``index`` (dict word -> row)
    and ``dim`` (``H``). Treat ``words`` and ``index`` as read-only.
    """

    def __init__(self, matrix: Any, words: Sequence[str]) -> None:
        if isinstance(matrix, Variable):
            matrix = matrix.data
        self._setup(np.array(matrix, copy=True), words)

    @classmethod
    def _trusted(cls, matrix, words):
        """Wrap a freshly built matrix without copying it (the loaders own theirs)."""
        self = cls.__new__(cls)
        self._setup(matrix, words)
        return self

    def _setup(self, matrix, words):
        if matrix.dtype.kind == "c" or matrix.dtype == object or matrix.dtype.kind not in "biuf":
            raise TypeError(f"WordVectors: matrix must be real numbers, got dtype {matrix.dtype}")
        if matrix.dtype not in (np.float32, np.float64):
            matrix = matrix.astype(np.float32)
        if matrix.ndim != 2 or matrix.shape[1] < 1:
            raise ValueError(f"WordVectors: matrix must have shape (V, H) with H >= 1, got {matrix.shape}")
        words = list(words)
        if len(words) != matrix.shape[0]:
            raise ValueError(f"WordVectors: {len(words)} words for a matrix of {matrix.shape[0]} rows")
        index = {}
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise TypeError(f"WordVectors: word {i} is {type(w).__name__} {w!r}, not str")
            if not _is_single_token(w):
                what = "is empty" if w == "" else "contains white space"
                raise ValueError(f"WordVectors: word {i} {w!r} {what}")
            j = index.setdefault(w, i)
            if j != i:
                raise ValueError(f"WordVectors: duplicate word {w!r} (rows {j} and {i})")
        finite = np.isfinite(matrix).all(axis=1)
        if not finite.all():
            r = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"WordVectors: vector of {words[r]!r} (row {r}) has non-finite values (NaN or inf)")
        matrix.flags.writeable = False
        self.vectors = matrix
        self.words = words
        self.index = index
        self._unit = None
        self._folded = {}

    @classmethod
    def from_ids(cls, matrix: Any, id_to_word: Mapping[int, str] | Sequence[str]) -> WordVectors:
        """Build from the NLP book's ``id_to_word`` (a dict ``{0: word, 1: word, ...}``) or a list.

        A dict must have exactly the ids ``0 .. V-1`` so that id ``i`` names row ``i``.
        """
        if isinstance(id_to_word, Mapping):
            n = len(id_to_word)
            try:
                words = [id_to_word[i] for i in range(n)]
            except KeyError as e:
                raise ValueError(f"WordVectors.from_ids: id_to_word has {n} entries but no id {e.args[0]}; "
                                 f"ids must be 0 .. {n - 1}") from None
        else:
            words = list(id_to_word)
        return cls(matrix, words)

    # ----- container protocol -----

    @property
    def dim(self) -> int:
        """The vector size ``H``."""
        return self.vectors.shape[1]

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        try:
            return word in self.index
        except TypeError:
            return False

    def __getitem__(self, word):
        """The (read-only) vector of ``word``, shape ``(H,)``; KeyError naming an unknown word."""
        return self.vectors[self._row(word)]

    def __repr__(self):
        return f"WordVectors({len(self)} words x {self.dim} dims, {self.vectors.dtype})"

    def _row(self, word):
        try:
            return self.index[word]
        except (KeyError, TypeError):
            raise KeyError(f"word {word!r} not in vocabulary") from None

    # ----- gensim's names for the same things -----

    @property
    def index_to_key(self) -> list[str]:
        """The words, row by row (gensim's name for ``words``)."""
        return self.words

    @property
    def key_to_index(self) -> dict[str, int]:
        """word -> row (gensim's name for ``index``)."""
        return self.index

    @property
    def vector_size(self) -> int:
        """The vector size ``H`` (gensim's name for [`dim`][dim])."""
        return self.dim

    def get_vector(self, key: str, norm: bool = False) -> np.ndarray:
        """The vector of ``key``, shape ``(H,)`` (scaled to unit length if ``norm``); a copy."""
        row = self._row(key)
        return np.array((self.unit_vectors if norm else self.vectors)[row])

    def has_index_for(self, key: str) -> bool:
        """True if ``key`` is in the vocabulary."""
        return key in self

    # ----- similarity -----

    @property
    def unit_vectors(self) -> np.ndarray:
        """Rows scaled to unit length (computed once, cached, read-only); all-zero rows stay zero."""
        if self._unit is None:
            m = self.vectors
            norms = np.empty(len(m), np.float64)
            step = 1 << 16
            for s in range(0, len(m), step):  # float64 norms in chunks: no overflow, little memory
                block = m[s:s + step].astype(np.float64)
                norms[s:s + step] = np.sqrt(np.einsum("ij,ij->i", block, block))
            norms[norms == 0] = 1.0
            unit = (m / norms[:, None]).astype(m.dtype, copy=False)
            unit.flags.writeable = False
            self._unit = unit
        return self._unit

    def similarity(self, word1: str, word2: str) -> float:
        """Cosine similarity of two words (0.0 when either vector is all zeros)."""
        u = self.unit_vectors
        return float(np.dot(u[self._row(word1)].astype(np.float64), u[self._row(word2)].astype(np.float64)))

    def most_similar(self, positive: Terms = None, negative: Terms = None, topn: int | None = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]] | np.ndarray:
        """The ``topn`` words closest to the mean of ``positive`` minus ``negative``, best first.

        As gensim's ``KeyedVectors.most_similar``: ``positive`` and ``negative`` are a word, a
        vector of shape ``(H,)``, or a list of words, vectors or ``(word, weight)`` pairs. Each word
        stands for its unit vector; the weighted mean (weight 1 for positive, -1 for negative) is
        compared by cosine with every vocabulary word, and the words given are left out of the
        answer. ``most_similar("king")`` gives the neighbours of one word;
        ``most_similar(positive=["woman", "king"], negative=["man"])`` solves an analogy.

        Args:
            positive, negative: see above; at least one must be given.
            topn: how many words to return (fewer if the vocabulary is smaller), or None for the
                array of all ``V`` (or ``restrict_vocab``) cosines.
            restrict_vocab: look only at the first ``restrict_vocab`` rows.

        Returns a list of ``(word, cosine)`` with Python floats; ties are broken by row order.
        Raises KeyError naming a word that is not in the vocabulary.
        """
        limit = self._restrict(restrict_vocab)
        terms = self._terms(positive, 1.0) + self._terms(negative, -1.0)
        if not terms:
            raise ValueError("most_similar: give at least one word or vector in positive or negative")
        unit = self.unit_vectors
        mean = np.zeros(self.dim, np.float64)
        exclude = []
        for term, weight in terms:
            if isinstance(term, str):
                row = self._row(term)
                exclude.append(row)
                mean += weight * unit[row]
            else:
                mean += weight * self._vector(term)
        query = self._unit_query(mean / len(terms))
        scores = unit[:limit] @ query
        if topn is None:
            return scores
        return self._top(scores, topn, [r for r in exclude if r < limit])

    def _terms(self, given, sign):
        """``[(word or vector, weight), ...]`` from a most_similar argument."""
        if given is None:
            return []
        if isinstance(given, (str, np.ndarray, Variable)):
            given = [given]
        terms = []
        for item in given:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                terms.append((item[0], sign * float(item[1])))
            else:
                terms.append((item, sign))
        return terms

    def _vector(self, vector):
        if isinstance(vector, Variable):
            vector = vector.data
        v = np.asarray(vector, dtype=np.float64)
        if v.shape != (self.dim,):
            raise ValueError(f"query vector must have shape ({self.dim},), got {v.shape}")
        return v

    def most_similar_cosmul(self, positive: Terms = None, negative: Terms = None, topn: int | None = 10,
                            restrict_vocab: int | None = None) -> list[tuple[str, float]] | np.ndarray:
        """Analogies by 3CosMul (Levy and Goldberg, 2014), as gensim's ``most_similar_cosmul``.

        Each candidate's score is the product of its shifted cosines ``(1 + cos) / 2`` with the
        ``positive`` words divided by the product with the ``negative`` words (plus 1e-6). It is
        less dominated by one large similarity than [`most_similar`][most_similar]'s sum. Arguments and
        result as in [`most_similar`][most_similar], without weights.
        """
        limit = self._restrict(restrict_vocab)
        pos = [t for t, _ in self._terms(positive, 1.0)]
        neg = [t for t, _ in self._terms(negative, 1.0)]
        if not pos and not neg:
            raise ValueError("most_similar_cosmul: give at least one word or vector")
        unit = self.unit_vectors[:limit]
        exclude = []

        def shifted(term):
            if isinstance(term, str):
                row = self._row(term)
                exclude.append(row)
                query = self.unit_vectors[row].astype(np.float64)
            else:
                query = self._unit_query(self._vector(term)).astype(np.float64)
            return (1.0 + unit @ query) / 2.0

        top = np.prod([shifted(t) for t in pos], axis=0) if pos else np.ones(limit)
        bottom = np.prod([shifted(t) for t in neg], axis=0) if neg else np.ones(limit)
        scores = top / (bottom + 1e-6)
        if topn is None:
            return scores
        return self._top(scores, topn, [r for r in exclude if r < limit])

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word of ``words`` furthest from their mean (cosine), as gensim's ``doesnt_match``.

        Words outside the vocabulary are left out; ValueError if none is known.
        """
        rows = [self.index[w] for w in words if w in self]
        if not rows:
            raise ValueError(f"doesnt_match: none of {list(words)!r} is in the vocabulary")
        vectors = self.unit_vectors[rows].astype(np.float64)
        mean = self._unit_query(vectors.mean(axis=0)).astype(np.float64)
        return self.words[rows[int(np.argmin(vectors @ mean))]]

    def analogy(self, a: str, b: str, c: str, topn: int = 5) -> list[tuple[str, float]]:
        """Solve ``a : b = c : ?`` by 3CosAdd: the words nearest to ``b - a + c`` (normalised vectors).

        ``a``, ``b`` and ``c`` themselves are left out. Returns ``(word, score)`` pairs best first,
        the score being the cosine between the word and ``b - a + c``. Raises KeyError naming every
        unknown word.
        """
        missing = list(dict.fromkeys(w for w in (a, b, c) if w not in self))
        if missing:
            names = ", ".join(repr(w) for w in missing)
            raise KeyError(f"word{'s' if len(missing) > 1 else ''} {names} not in vocabulary")
        unit = self.unit_vectors
        ia, ib, ic = self.index[a], self.index[b], self.index[c]
        query = unit[ib].astype(np.float64) - unit[ia] + unit[ic]
        return self._top(unit @ self._unit_query(query), topn, [ia, ib, ic])

    def _unit_query(self, vector):
        v = self._vector(vector)
        if not np.isfinite(v).all():
            raise ValueError("query vector has non-finite values")
        scale = np.max(np.abs(v))
        if scale > 0:
            v = v / scale  # avoid overflow in the norm of huge vectors
            v = v / np.sqrt(np.dot(v, v))
        return v.astype(self.vectors.dtype)

    def _top(self, scores, topn, exclude):
        if isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 0:
            raise ValueError(f"topn must be a non-negative int, got {topn!r}")
        scores = np.array(scores, dtype=np.float64)
        scores[exclude] = -np.inf
        k = min(int(topn), len(scores) - len(set(exclude)))
        if k <= 0:
            return []
        if k < len(scores):
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            cand = np.flatnonzero(scores >= kth)
        else:
            cand = np.arange(len(scores))
        cand = cand[np.lexsort((cand, -scores[cand]))][:k]  # best first, ties by row
        return [(self.words[i], float(scores[i])) for i in cand]

    # ----- pictures -----

    def plot(self, words: Sequence[str], method: str = "pca", ax: Axes | None = None, path: PathLike | None = None,
             seed: int = 0, title: str | None = None) -> Figure:
        """A labelled 2-D scatter of ``words``, as a matplotlib Figure.

        The words' unit vectors (cosine is the similarity these vectors are read with) are
        projected to 2-D, fitted on these words only: ``method="pca"`` takes the two principal
        components (numpy's SVD, deterministic); ``method="tsne"`` runs scikit-learn's t-SNE
        (``pip install "tinygrad_nlp[tsne]"``; ``seed`` fixes it), which keeps neighbours together
        better but whose distances between groups mean little.

        Draws on ``ax`` when given, else on a new Figure made without ``pyplot`` (the global
        backend is never switched; a notebook shows the Figure inline). Saved (png, svg, pdf,
        atomically) only when ``path`` is given. KeyError names a word not in the vocabulary.
        """
        words = list(words)
        if len(words) < 2:
            raise ValueError(f"plot: give at least two words, got {len(words)}")
        rows = [self._row(w) for w in words]
        points = self.unit_vectors[rows].astype(np.float64)
        if method == "pca":
            xy = _pca_2d(points)
        elif method == "tsne":
            xy = _tsne_2d(points, seed)
        else:
            raise ValueError(f"plot: method must be 'pca' or 'tsne', got {method!r}")
        fig, ax = figure_and_axes(ax, figsize=(6, 5))
        ax.scatter(xy[:, 0], xy[:, 1], s=18, color="#1565c0")
        for word, (x, y) in zip(words, xy):
            ax.annotate(word, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9)
        ax.set_title(title or f"{len(words)} words, {'PCA' if method == 'pca' else 't-SNE'} of unit vectors")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.margins(0.12)
        return finish_figure(fig, path)

    # ----- evaluation -----

    def _lookup(self, lowercase, limit):
        """word -> row for the first ``limit`` rows; lower-cased keys map to the first row that folds to them."""
        key = (lowercase, limit)
        if key not in self._folded:
            words = self.words[:limit]
            if lowercase:
                table = {}
                for i, w in enumerate(words):
                    table.setdefault(w.lower(), i)
            else:
                table = {w: i for i, w in enumerate(words)}
            self._folded = {key: table}  # keep one table: the last one asked for
        return self._folded[key]

    def evaluate_analogies(self, path: PathLike, lowercase: bool = True,
                           restrict_vocab: int | None = None) -> AnalogyResult:
        """Accuracy on analogy questions in the ``questions-words.txt`` format (Mikolov et al.).

        The file has ``: section`` header lines and question lines ``a b c d`` (a:b = c:d). A
        question counts as correct when the 3CosAdd answer for ``a b c`` (see [`analogy`][analogy]) is
        ``d``. Questions with a word outside the vocabulary are skipped and counted in
        ``skipped``.

        Args:
            path: the questions file (UTF-8).
            lowercase: compare case-insensitively: question words are lower-cased and each
                lower-cased form maps to the first vocabulary row that lower-cases to it; a
                prediction that differs from ``d`` (or from ``a``, ``b``, ``c``) only by case counts
                as that word.
            restrict_vocab: use only the first ``restrict_vocab`` rows (the most frequent words in
                a frequency-sorted vocabulary), both for vocabulary checks and as candidates.

        All questions are scored in blocks of matrix products, not one at a time.
        Raises ValueError naming the file and line for a malformed line.
        """
        names, section_of, quads, known, correct = self._score_analogies(path, lowercase, restrict_vocab)
        sec = np.asarray(section_of, dtype=np.int64)[known]
        n_sec = len(names)
        tot = np.bincount(sec, minlength=n_sec)
        ok = np.bincount(sec[correct], minlength=n_sec)
        sections = {name: (int(ok[i]), int(tot[i])) for i, name in enumerate(names)}
        return AnalogyResult(correct=int(correct.sum()), total=int(known.sum()),
                             skipped=int((~known).sum()), sections=sections)

    def _score_analogies(self, path, lowercase, restrict_vocab):
        """(section names, section per question, questions, answerable mask, correct per answerable)."""
        limit = self._restrict(restrict_vocab)
        names, section_of, quads = _read_analogy_file(path)
        table = self._lookup(lowercase, limit)
        fold = (lambda w: w.lower()) if lowercase else (lambda w: w)
        rows = np.array([[table.get(fold(w), -1) for w in q] for q in quads], dtype=np.int64).reshape(-1, 4)
        known = (rows >= 0).all(axis=1)
        correct = self._answer_analogies(rows[known], lowercase, limit)
        return names, section_of, quads, known, correct

    def evaluate_word_analogies(self, analogies: PathLike, restrict_vocab: int = 300000,
                                case_insensitive: bool = True) -> tuple[float, list[dict]]:
        """Analogy accuracy in gensim's shape: ``(score, sections)``.

        The same evaluation as [`evaluate_analogies`][evaluate_analogies] (3CosAdd over the first
        ``restrict_vocab`` rows; questions with a word outside them are left out), returned as
        gensim's ``KeyedVectors.evaluate_word_analogies`` does: ``score`` is the overall accuracy
        (0.0 when nothing was answerable) and ``sections`` a list of dicts ``{"section": name,
        "correct": [(a, b, c, d), ...], "incorrect": [...]}`` in file order, then one named
        ``"Total accuracy"`` with every question. Questions keep the words as the file writes them.
        """
        names, section_of, quads, known, correct = self._score_analogies(
            analogies, case_insensitive, restrict_vocab)
        sections = [{"section": name, "correct": [], "incorrect": []} for name in names]
        total = {"section": "Total accuracy", "correct": [], "incorrect": []}
        outcome = iter(correct)
        for quad, sec, answerable in zip(quads, section_of, known):
            if answerable:
                key = "correct" if next(outcome) else "incorrect"
                sections[sec][key].append(quad)
                total[key].append(quad)
        sections.append(total)
        answered = len(total["correct"]) + len(total["incorrect"])
        score = len(total["correct"]) / answered if answered else 0.0
        return score, sections

    def _restrict(self, restrict_vocab):
        if restrict_vocab is None:
            return len(self)
        if isinstance(restrict_vocab, bool) or not isinstance(restrict_vocab, (int, np.integer)) or restrict_vocab < 1:
            raise ValueError(f"restrict_vocab must be a positive int or None, got {restrict_vocab!r}")
        return min(int(restrict_vocab), len(self))

    def _answer_analogies(self, rows, lowercase, limit):
        """Boolean (Q,): is the 3CosAdd answer to each question (rows a, b, c, d) word d?"""
        if len(rows) == 0:
            return np.zeros(0, dtype=bool)
        unit = self.unit_vectors[:limit]
        # canon[r]: the row whose word stands for row r after case folding (itself without folding)
        if lowercase:
            table = self._lookup(True, limit)
            canon = np.fromiter((table[w.lower()] for w in self.words[:limit]), dtype=np.int64, count=limit)
        else:
            canon = np.arange(limit)
        # rows sharing a folded form with another row: they must be excluded alongside a, b, c
        dup = canon != np.arange(limit)
        variants = {}
        for r in np.flatnonzero(dup):
            variants.setdefault(int(canon[r]), []).append(int(r))
        a, b, c, d = rows.T
        correct = np.empty(len(rows), dtype=bool)
        chunk = max(1, min(_MAX_QUESTION_CHUNK, _SCORE_BLOCK // limit))
        for s in range(0, len(rows), chunk):
            e = min(s + chunk, len(rows))
            q = unit[b[s:e]] - unit[a[s:e]] + unit[c[s:e]]  # ranking does not need normalising q
            scores = q @ unit.T
            local = np.arange(e - s)
            for col in (a, b, c):
                scores[local, col[s:e]] = -np.inf
            if variants:
                for i in range(s, e):
                    for r in {int(a[i]), int(b[i]), int(c[i])}:
                        if r in variants:
                            scores[i - s, variants[r]] = -np.inf
            pred = np.argmax(scores, axis=1)
            correct[s:e] = canon[pred] == d[s:e]
        return correct

    def evaluate_word_pairs(self, pairs: PathLike, delimiter: str = "\t", restrict_vocab: int = 300000,
                            case_insensitive: bool = True, *, lowercase: bool | None = None) -> WordPairResult:
        """Correlation of cosine similarities with human scores (WordSim-353 format).

        The file has lines ``word1<delimiter>word2<delimiter>score``; lines starting with ``#``
        and blank lines are ignored. Only pairs whose two words are both among the first
        ``restrict_vocab`` rows are scored (``case_insensitive`` folds case as in
        [`evaluate_analogies`][evaluate_analogies]; ``lowercase`` is its older name); the rest count towards the
        out-of-vocabulary share. Pearson's and Spearman's correlations come from ``scipy.stats``.

        Returns a [`WordPairResult`][WordPairResult]: ``.spearman``, ``.pearson``, ``.pairs_used`` ... and,
        unpacked, gensim's triple ``((pearson, p), (spearman, p), oov_percent)``. Raises
        ValueError naming the file and line for a malformed line.
        """
        if lowercase is not None:
            case_insensitive = lowercase
        limit = self._restrict(restrict_vocab)
        word_pairs = _read_word_pairs(pairs, delimiter)
        table = self._lookup(case_insensitive, limit)
        fold = (lambda w: w.lower()) if case_insensitive else (lambda w: w)
        used_rows, gold = [], []
        for w1, w2, score in word_pairs:
            r1, r2 = table.get(fold(w1)), table.get(fold(w2))
            if r1 is not None and r2 is not None:
                used_rows.append((r1, r2))
                gold.append(score)
        if used_rows:
            r = np.array(used_rows)
            u = self.unit_vectors
            sims = np.einsum("ij,ij->i", u[r[:, 0]].astype(np.float64), u[r[:, 1]].astype(np.float64))
        else:
            sims = np.zeros(0)
        gold = np.asarray(gold, dtype=np.float64)
        return WordPairResult(spearman_test=_correlation(_stats().spearmanr, sims, gold),
                              pearson_test=_correlation(_stats().pearsonr, sims, gold),
                              pairs_used=len(used_rows), pairs_total=len(word_pairs))

    # ----- word2vec files -----

    def save_word2vec_format(self, path: PathLike, binary: bool = False) -> None:
        """Write the word2vec format read by gensim's ``KeyedVectors.load_word2vec_format``.

        Header line ``V H``, then per word: text format ``word v1 ... vH`` (float32 with 9
        significant digits, float64 with 17, so loading gives back the exact values); binary
        format ``word``, a space and ``H`` little-endian float32 (then a newline, as
        ``word2vec.c`` writes). Words are UTF-8. The file is replaced atomically.
        Binary stores float32 only: float64 vectors are rounded (ValueError if one overflows).
        """
        m = self.vectors
        lines_per_write = 4096
        with atomic_write(path, "wb") as f:
            f.write(f"{len(self)} {self.dim}\n".encode("ascii"))
            if binary:
                with np.errstate(over="ignore"):
                    data = m.astype("<f4")
                if not np.isfinite(data).all():
                    raise ValueError("save_word2vec_format: a value is too large for float32 (binary format)")
                for s in range(0, len(self), lines_per_write):
                    f.write(b"".join(w.encode("utf-8") + b" " + row.tobytes() + b"\n"
                                     for w, row in zip(self.words[s:s + lines_per_write], data[s:s + lines_per_write])))
            else:
                digits = 9 if m.dtype == np.float32 else 17
                fmt = " ".join([f"%.{digits}g"] * self.dim)
                for s in range(0, len(self), lines_per_write):
                    block = m[s:s + lines_per_write].tolist()
                    text = "".join(f"{w} {fmt % tuple(row)}\n" for w, row in zip(self.words[s:s + lines_per_write], block))
                    f.write(text.encode("utf-8"))

    @classmethod
    def load_word2vec_format(cls, path: PathLike, binary: bool = False, limit: int | None = None,
                             no_header: bool = False, encoding: str = "utf-8",
                             dtype: Any = np.float32) -> WordVectors:
        """Read a word2vec text or binary file (as written by word2vec.c, gensim or [`save_word2vec_format`][save_word2vec_format]).

        Args:
            path: the file.
            binary: the binary format (word, space, ``H`` little-endian float32 per vector).
            limit: read only the first ``limit`` vectors (the most frequent words, in files
                sorted by frequency); None reads them all.
            no_header: a text file without the ``V H`` header line, as GloVe writes them (the
                size is taken from the lines). Text format only.
            encoding: encoding of the words (and of the whole text file).
            dtype: dtype of the loaded matrix (float32 like gensim; float64 keeps all digits of
                a text file written from float64 vectors).

        The file is parsed, never executed. Any inconsistency (bad header, fewer or more vectors
        than the header says, a wrong number of values, a non-numeric or non-finite value, a
        duplicate word, a truncated binary file) raises ValueError naming the file and the line
        number (text) or the 0-based vector index (binary).
        """
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"load_word2vec_format: dtype must be float32 or float64, got {dtype}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0):
            raise ValueError(f"load_word2vec_format: limit must be a non-negative int or None, got {limit!r}")
        path = os.fspath(path)
        if binary:
            if no_header:
                raise ValueError("load_word2vec_format: no_header=True is for text files only (binary files "
                                 "always start with a 'vocab_size vector_size' header)")
            words, matrix = _load_binary(path, encoding, limit)
            matrix = matrix.astype(dtype, copy=False)
        else:
            words, matrix = _load_text(path, encoding, dtype, limit, no_header)
        return cls._trusted(matrix, words)

    def save_projector_tsv(self, vectors_path: PathLike, metadata_path: PathLike) -> tuple[str, str]:
        """Write the two TSV files TensorFlow's Embedding Projector loads (projector.tensorflow.org).

        ``vectors_path`` gets one tab-separated vector per line, ``metadata_path`` the word of
        each line (one column, so no header). Both are written atomically; returns the paths.
        """
        m = self.vectors
        digits = 9 if m.dtype == np.float32 else 17
        fmt = "\t".join([f"%.{digits}g"] * self.dim) + "\n"
        lines_per_write = 4096
        with atomic_write(vectors_path, "wb") as f:
            for s in range(0, len(self), lines_per_write):
                f.write("".join(fmt % tuple(row) for row in m[s:s + lines_per_write].tolist()).encode("utf-8"))
        with atomic_write(metadata_path, "wb") as f:
            f.write("".join(w + "\n" for w in self.words).encode("utf-8"))
        return os.fspath(vectors_path), os.fspath(metadata_path)


def _parse_header(path, header):
    parts = header.split()
    try:
        if len(parts) != 2:
            raise ValueError
        n, dim = int(parts[0]), int(parts[1])
        if n < 0 or dim < 1 or dim > MAX_DIM:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}, line 1: bad header {header[:80]!r}; expected 'vocab_size vector_size' "
                         f"(two integers, 1 <= vector_size <= {MAX_DIM:,})") from None
    return n, dim


def _load_text(path, encoding, dtype, limit=None, no_header=False):
    """Words and (n, dim) matrix of a text-format file, read line by line: memory holds the
    matrix and one block of text, never the whole file's strings."""
    lines = _read_text_lines(path, encoding)
    n, dim = None, None
    if not no_header:
        header = next(lines, None)
        if header is None:
            raise ValueError(f"{path}: empty file; expected a header line 'vocab_size vector_size'")
        n, dim = _parse_header(path, header[1])
    declared = n
    if limit is not None and n is not None:
        n = min(n, int(limit))
    words, blocks, values, line_of = [], [], [], []
    seen = {}
    blank = None  # the first of a run of blank lines (no_header: allowed only at the end)
    last_line = 0 if no_header else 1

    def convert(values, first_index):
        """The strings of some vectors as an array (a bad one is named with its line)."""
        try:
            with np.errstate(over="ignore"):  # out-of-range values become inf, reported below with their line
                return np.array(values, dtype=dtype).reshape(-1, dim)
        except ValueError:
            for i in range(len(values) // dim):  # find the culprit for the message
                for token in values[i * dim:(i + 1) * dim]:
                    try:
                        with np.errstate(over="ignore"):
                            np.array(token, dtype=dtype)
                    except ValueError:
                        raise ValueError(f"{path}, line {line_of[first_index + i]}: value {token!r} is not a "
                                         "number") from None
            raise

    for line_no, line in lines:
        last_line = line_no
        parts = line.split()
        if n is not None and len(words) == n:
            if n < declared:
                break  # limit reached
            if parts:
                raise ValueError(f"{path}, line {line_no}: more vectors than the {n} the header (line 1) declares")
            continue
        if not parts:
            if no_header:
                blank = blank or line_no
                continue
            raise ValueError(f"{path}, line {line_no}: empty line where vector {len(words) + 1} of {n} was expected")
        if blank is not None:
            raise ValueError(f"{path}, line {blank}: empty line where vector {len(words) + 1} was expected")
        if dim is None:  # no_header: the first line gives the size
            dim = len(parts) - 1
            if dim < 1:
                raise ValueError(f"{path}, line {line_no}: a word without values (no_header=True)")
        if len(parts) != dim + 1:
            raise ValueError(f"{path}, line {line_no}: expected a word and {dim} values, got {len(parts) - 1} values "
                             f"(a word containing white space, or not the text format?)")
        word = parts[0]
        if word in seen:
            raise ValueError(f"{path}, line {line_no}: duplicate word {word!r} (first on line {seen[word]})")
        seen[word] = line_no
        words.append(word)
        values.extend(parts[1:])
        line_of.append(line_no)
        if len(values) >= 1 << 16:
            blocks.append(convert(values, len(words) - len(values) // dim))
            values = []
        if no_header and limit is not None and len(words) == int(limit):
            break
    if no_header and not words:
        raise ValueError(f"{path}, line 1: expected 'word v1 v2 ...' (no_header=True)")
    if n is not None and len(words) < n:
        raise ValueError(f"{path}: the header (line 1) declares {n} vectors but the file ends after "
                         f"{len(words)} (line {last_line})")
    if values:
        blocks.append(convert(values, len(words) - len(values) // dim))
    matrix = np.concatenate(blocks) if len(blocks) > 1 else blocks[0] if blocks else np.zeros((0, dim), dtype)
    bad = ~np.isfinite(matrix).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {line_of[i]}: non-finite value (NaN, inf or out of {dtype} range) "
                         f"in the vector of {words[i]!r}")
    return words, matrix


def _load_binary(path, encoding, limit=None):
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    try:
        end = buf.find(b"\n")
        if end < 0:
            raise ValueError(f"{path}, line 1: no header line 'vocab_size vector_size' (no newline in the file)")
        try:
            header = bytes(buf[:end]).decode("ascii")
        except UnicodeDecodeError:
            raise ValueError(f"{path}, line 1: bad header {bytes(buf[:min(end, 60)])!r}") from None
        n, dim = _parse_header(path, header)
        declared = n
        if limit is not None:
            n = min(n, int(limit))
        width = 4 * dim
        # Every vector takes at least a 1-byte word, a space and `width` bytes, so no more than
        # this many can follow the header: a corrupt header's count cannot make us allocate more
        # (the loop below reports the truncation at the first vector that is missing).
        room = (size - end - 1) // (width + 2)
        matrix = np.empty((min(n, room), dim), dtype=np.float32)
        words, seen = [], {}
        pos = end + 1
        for i in range(n):
            while pos < size and buf[pos] == 0x0A:  # word2vec.c ends each vector with a newline
                pos += 1
            sp = buf.find(b" ", pos)
            if sp < 0:
                raise ValueError(f"{path}: truncated at vector index {i} of {n}: no word followed by a space "
                                 f"in the last {size - pos} bytes")
            raw = bytes(buf[pos:sp])
            try:
                word = raw.decode(encoding)
            except UnicodeDecodeError:
                raise ValueError(f"{path}: vector index {i}: word {raw[:60]!r} is not valid {encoding} "
                                 "(wrong encoding, or not the binary format?)") from None
            if not _is_single_token(word):
                raise ValueError(f"{path}: vector index {i}: bad word {word[:60]!r} (empty or containing white "
                                 "space; header count too large, or not the binary format?)")
            if sp + 1 + width > size:
                raise ValueError(f"{path}: truncated at vector index {i} of {n} (word {word!r}): needs {width} bytes, "
                                 f"{size - sp - 1} left")
            row = np.frombuffer(bytes(buf[sp + 1:sp + 1 + width]), dtype="<f4")
            if not np.isfinite(row).all():
                raise ValueError(f"{path}: vector index {i} (word {word!r}) has non-finite values")
            if word in seen:
                raise ValueError(f"{path}: vector index {i}: duplicate word {word!r} (first at index {seen[word]})")
            seen[word] = i
            matrix[i] = row
            words.append(word)
            pos = sp + 1 + width
        if n == declared and bytes(buf[pos:]).strip():
            raise ValueError(f"{path}: {size - pos} bytes of data after the {n} vectors the header (line 1) declares")
    finally:
        if isinstance(buf, mmap.mmap):
            buf.close()
    return words, matrix


def _read_analogy_file(path):
    """(section names in order, section id per question, [(a, b, c, d), ...]) from questions-words format."""
    names, section_ids, section_of, quads = [], {}, [], []
    current = None
    for line_no, line in _read_text_lines(path):
        line = line.strip()
        if not line:
            continue
        if line.startswith(":"):
            name = line[1:].strip()
            if not name:
                raise ValueError(f"{path}, line {line_no}: section header without a name")
            if name not in section_ids:
                section_ids[name] = len(names)
                names.append(name)
            current = section_ids[name]
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"{path}, line {line_no}: expected 4 words 'a b c d', got {len(parts)}: {line!r}")
        if current is None:
            raise ValueError(f"{path}, line {line_no}: question before any ': section' header")
        section_of.append(current)
        quads.append(tuple(parts))
    return names, section_of, quads


def _read_word_pairs(path, delimiter="\t"):
    """[(word1, word2, score), ...] from a WordSim-353 style file (TSV unless ``delimiter``)."""
    if not isinstance(delimiter, str) or not delimiter:
        raise ValueError(f"delimiter must be a non-empty string, got {delimiter!r}")
    shown = "<TAB>" if delimiter == "\t" else delimiter
    pairs = []
    for line_no, line in _read_text_lines(path):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(delimiter)]
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise ValueError(f"{path}, line {line_no}: expected 'word1{shown}word2{shown}score', got {line!r}")
        try:
            score = float(fields[2])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise ValueError(f"{path}, line {line_no}: score {fields[2]!r} is not a finite number")
        pairs.append((fields[0], fields[1], score))
    return pairs


def _pca_2d(points):
    """(N, 2) coordinates of ``points`` (N, H) on their two principal axes (numpy SVD).

    Each axis' sign is fixed so that its largest coordinate is positive, so the picture does not
    flip between runs or machines. With H = 1 the second coordinate is 0.
    """
    centred = points - points.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    xy = np.zeros((len(points), 2))
    k = min(2, u.shape[1])
    xy[:, :k] = u[:, :k] * s[:k]
    for j in range(k):
        if xy[np.argmax(np.abs(xy[:, j])), j] < 0:
            xy[:, j] = -xy[:, j]
    return xy


def _tsne_2d(points, seed):
    """(N, 2) t-SNE embedding of ``points`` by scikit-learn (perplexity scaled to small N)."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ImportError('method="tsne" needs scikit-learn: pip install "tinygrad_nlp[tsne]"') from None
    perplexity = max(1.0, min(30.0, (len(points) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(points)


class Correlation(NamedTuple):
    """A correlation coefficient and its two-sided p-value (both NaN when undefined)."""

    statistic: float
    pvalue: float


def _correlation(test, x, y):
    """``test`` (scipy.stats.pearsonr or spearmanr) on two 1-D float arrays, as a Correlation.

    Undefined cases (fewer than two values, a constant sequence) give NaN, not a warning.
    """
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, math.nan)
    result = test(x, y)
    return Correlation(float(np.clip(result.statistic, -1.0, 1.0)), float(result.pvalue))


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation of two 1-D sequences of equal length (``scipy.stats.spearmanr``).

    Ties get average ranks. Returns NaN when it is undefined: fewer than two values, or one of
    the sequences constant. Raises ValueError for different lengths or non-finite values.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"spearman: need two 1-D sequences of equal length, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("spearman: values must be finite")
    return _correlation(_stats().spearmanr, x, y).statistic


@dataclass(frozen=True)
class AnalogyResult:
    """Outcome of [`WordVectors.evaluate_analogies`][WordVectors.evaluate_analogies].

    ``correct`` of ``total`` answerable questions were right; ``skipped`` questions had a word
    outside the vocabulary. ``sections`` maps each section name, in file order, to
    ``(correct, total)``. ``accuracy`` is ``correct / total`` (NaN when nothing was answerable).
    """

    correct: int
    total: int
    skipped: int
    sections: dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        """``correct / total`` as a float in [0, 1] (NaN when no question was answerable)."""
        return self.correct / self.total if self.total else math.nan

    def summary(self) -> str:
        """A plain-text table: one row per section, then the overall figures."""
        width = max([len("section")] + [len(s) for s in self.sections])

        def row(name, c, t):
            acc = f"{100.0 * c / t:7.2f}%" if t else "       -"
            return f"{name:<{width}}  {c:>7}  {t:>7}  {acc}"

        lines = [f"{'section':<{width}}  {'correct':>7}  {'total':>7}  accuracy"]
        lines += [row(name, c, t) for name, (c, t) in self.sections.items()]
        lines.append(row("all", self.correct, self.total))
        lines.append(f"skipped (a word not in vocabulary): {self.skipped} of {self.total + self.skipped} questions")
        return "\n".join(lines)

    __str__ = summary


@dataclass(frozen=True)
class WordPairResult:
    """Outcome of [`WordVectors.evaluate_word_pairs`][WordVectors.evaluate_word_pairs].

    ``spearman`` and ``pearson`` correlate cosine similarity with the human scores over the
    ``pairs_used`` pairs with both words in vocabulary, of ``pairs_total`` in the file (NaN if
    fewer than two pairs were usable); ``spearman_test`` and ``pearson_test`` add the p-values.
    ``oov_ratio`` is the fraction (0..1) of pairs left out. Unpacked, the result is gensim's
    triple ``(pearson_test, spearman_test, oov_percent)`` (gensim gives that share in percent).
    """

    spearman_test: Correlation
    pearson_test: Correlation
    pairs_used: int
    pairs_total: int

    @property
    def spearman(self) -> float:
        """Spearman's rank correlation (float; NaN when undefined)."""
        return self.spearman_test.statistic

    @property
    def pearson(self) -> float:
        """Pearson's correlation (float; NaN when undefined)."""
        return self.pearson_test.statistic

    @property
    def oov_ratio(self) -> float:
        """Fraction (0..1) of the file's pairs left out because a word is not in the vocabulary."""
        return (self.pairs_total - self.pairs_used) / self.pairs_total if self.pairs_total else math.nan

    def __iter__(self):
        yield self.pearson_test
        yield self.spearman_test
        yield 100.0 * self.oov_ratio

    def __getitem__(self, i):
        return tuple(self)[i]

    def __len__(self):
        return 3

    def summary(self) -> str:
        """One line: Spearman and Pearson correlations, pairs used and the out-of-vocabulary share."""
        return (f"Spearman {self.spearman:.4f}  Pearson {self.pearson:.4f}  over {self.pairs_used} of "
                f"{self.pairs_total} pairs (out of vocabulary: {100.0 * self.oov_ratio:.1f}%)")

    __str__ = summary


def _stats():
    """``scipy.stats``, imported when a correlation is first needed: it takes about half a second
    to import, which every command that loads this module (``train`` included) would pay."""
    import scipy.stats

    return scipy.stats
