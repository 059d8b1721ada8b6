"""A word <-> id mapping with counts, an optional unknown-word bucket and a JSON file format."""

from __future__ import annotations

import json
import numbers
import os

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from tinygrad_nlp.io import PathLike, write_text_atomic

__all__ = ["Vocabulary"]

_FORMAT = "tinygrad_nlp.vocabulary"
_VERSION = 1


class Vocabulary:
    """Words, their ids and counts.

    Args:
        words: sequence of distinct str; ``words[i]`` gets id ``i``.
        counts: optional sequence of non-negative ints aligned with ``words`` (defaults to 0s).
        unk: the unknown-word token (must be one of ``words``), or None for no bucket.

    Attributes:
        word_to_id: dict str -> int.
        id_to_word: list of str (index = id).
        counts: read-only ``np.int64`` array of shape (len(words),).
        unk: the unknown-word token or None; ``unk_id`` its id or None.

    Usually built with [`build`][build] from a stream of tokens.
    """

    def __init__(self, words: Iterable[str], counts: ArrayLike | None = None, unk: str | None = None) -> None:
        words = list(words)
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise TypeError(f"words must be str, got {type(w).__name__} at index {i}: {w!r}")
        word_to_id = {}
        for i, w in enumerate(words):
            if w in word_to_id:
                raise ValueError(f"duplicate word {w!r} at ids {word_to_id[w]} and {i}")
            word_to_id[w] = i
        if counts is None:
            counts = np.zeros(len(words), dtype=np.int64)
        else:
            counts = np.asarray(counts)
            if counts.ndim != 1 or counts.shape[0] != len(words):
                raise ValueError(
                    f"counts must have one entry per word: {len(words)} words, counts shape {counts.shape}"
                )
            if counts.size and counts.dtype.kind not in "iu":
                raise ValueError(f"counts must be integers, got dtype {counts.dtype}")
            counts = counts.astype(np.int64)
            if counts.size and counts.min() < 0:
                raise ValueError(f"counts must be >= 0, got {int(counts.min())}")
        if unk is not None:
            if not isinstance(unk, str):
                raise TypeError(f"unk must be a str or None, got {type(unk).__name__}")
            if unk not in word_to_id:
                raise ValueError(f"unk token {unk!r} is not one of the words")
        counts.flags.writeable = False
        self._words = words
        self._word_to_id = word_to_id
        self._counts = counts
        self._unk = unk

    # ----- construction -----

    @classmethod
    def build(cls, tokens: Iterable[str], min_count: int = 1, max_size: int | None = None, unk: str | None = "<unk>",
              order: str = "first") -> Vocabulary:
        """Count ``tokens`` (an iterable of str) and keep the frequent words.

        Args:
            tokens: iterable of str (one pass; a generator is fine).
            min_count: int >= 1; words seen fewer times are dropped.
            max_size: None or int >= 1; at most this many entries *including* ``unk``. The most
                frequent words are kept (ties go to the word seen first).
            unk: token that stands for every dropped word, or None. It is added only if some
                word was dropped or it occurs in ``tokens`` itself (as ``<unk>`` does in PTB);
                its count is its own occurrences plus those of all dropped words. It is never
                dropped itself. With ``unk=None`` dropped words are simply not in the vocabulary
                (``encode`` raises KeyError for them).
            order: ``"first"`` (ids in order of first appearance in the token stream after
                mapping dropped words to ``unk``, the book's convention) or ``"frequency"``
                (most frequent first, ties by first appearance).
        """
        _check_options(min_count, max_size, order)
        if isinstance(tokens, str):
            raise TypeError("tokens must be an iterable of str, not a single str (split it first)")

        counter = {}
        get = counter.get
        for tok in tokens:
            counter[tok] = get(tok, 0) + 1
        for tok in counter:
            if not isinstance(tok, str):
                raise TypeError(f"tokens must be str, got {type(tok).__name__}: {tok!r}")
        # dict keeps insertion order = order of first appearance
        return cls.from_counts(list(counter), list(counter.values()), min_count, max_size, unk, order)

    @classmethod
    def from_counts(cls, words: Iterable[str], counts: ArrayLike, min_count: int = 1, max_size: int | None = None,
                    unk: str | None = "<unk>", order: str = "first") -> Vocabulary:
        """The vocabulary [`build`][build] makes, from words already counted.

        Args:
            words: distinct str in order of first appearance in the text (a streaming reader's
                running word list). counts: their counts (V,) non-negative integers.
            min_count, max_size, unk, order: as in [`build`][build].
        """
        _check_options(min_count, max_size, order)
        words = list(words)
        counts = [int(c) for c in np.asarray(counts).tolist()] if not isinstance(counts, list) else counts
        if len(counts) != len(words):
            raise ValueError(f"counts must have one entry per word: {len(words)} words, {len(counts)} counts")
        counter = dict(zip(words, counts))
        if len(counter) != len(words):
            raise ValueError("words must be distinct")
        first = {w: i for i, w in enumerate(words)}
        has_unk_token = unk is not None and unk in counter
        candidates = [w for w in words if w != unk and counter[w] >= min_count] if unk is not None \
            else [w for w in words if counter[w] >= min_count]
        candidates.sort(key=lambda w: (-counter[w], first[w]))
        n_real = len(words) - (1 if has_unk_token else 0)
        limit = max_size
        if unk is not None:
            truncated = max_size is not None and len(candidates) + has_unk_token > max_size
            need_unk = has_unk_token or len(candidates) < n_real or truncated
            if need_unk and max_size is not None:
                limit = max_size - 1
        else:
            need_unk = False
        kept = candidates if limit is None else candidates[:limit]
        kept_set = set(kept)

        if need_unk:
            dropped = [w for w in words if w not in kept_set and w != unk]
            unk_count = counter.get(unk, 0) + sum(counter[w] for w in dropped)
            unk_first = min([first[w] for w in dropped] + ([first[unk]] if has_unk_token else []))
            entries = [(w, counter[w], first[w]) for w in kept] + [(unk, unk_count, unk_first)]
        else:
            entries = [(w, counter[w], first[w]) for w in kept]
        if order == "first":
            entries.sort(key=lambda e: e[2])
        else:
            entries.sort(key=lambda e: (-e[1], e[2]))
        return cls(
            [e[0] for e in entries],
            np.array([e[1] for e in entries], dtype=np.int64),
            unk=unk if need_unk else None,
        )

    # ----- mapping -----

    @property
    def word_to_id(self) -> dict[str, int]:
        """dict str -> int (do not modify)."""
        return self._word_to_id

    @property
    def id_to_word(self) -> list[str]:
        """list of str, index = id (do not modify)."""
        return self._words

    @property
    def counts(self) -> np.ndarray:
        """Read-only ``np.int64`` array of shape (len(self),), aligned with ids."""
        return self._counts

    @property
    def unk(self) -> str | None:
        """The unknown-word token, or None."""
        return self._unk

    @property
    def unk_id(self) -> int | None:
        """Id of the unknown-word token, or None."""
        return None if self._unk is None else self._word_to_id[self._unk]

    def __len__(self):
        return len(self._words)

    def __contains__(self, word):
        return word in self._word_to_id

    def __iter__(self):
        return iter(self._words)

    def __eq__(self, other):
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return (
            self._words == other._words
            and self._unk == other._unk
            and np.array_equal(self._counts, other._counts)
        )

    __hash__ = None

    def __repr__(self):
        head = ", ".join(repr(w) for w in self._words[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocabulary({len(self)} words: [{head}{more}], unk={self._unk!r})"

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        """Map an iterable of str to a 1-D ``np.int32`` array of ids.

        Unknown words map to ``unk_id`` if the vocabulary has an unknown-word token; otherwise
        the first unknown word raises KeyError naming it.
        """
        if isinstance(tokens, str):
            raise TypeError("encode expects an iterable of tokens, not a single str (split it first)")
        w2i = self._word_to_id
        if self._unk is not None:
            unk_id = w2i[self._unk]
            ids = [w2i.get(t, unk_id) for t in tokens]
        else:
            try:
                ids = [w2i[t] for t in tokens]
            except KeyError as e:
                raise KeyError(f"word {e.args[0]!r} is not in the vocabulary (and it has no unk token)") from None
        return np.array(ids, dtype=np.int32) if ids else np.zeros(0, dtype=np.int32)

    def decode(self, ids: ArrayLike) -> list[str]:
        """Map a 1-D integer array (or list) of ids back to a list of str."""
        arr = np.asarray(ids)
        if arr.ndim > 1:
            raise ValueError(f"decode expects a 1-D sequence of ids, got shape {arr.shape}")
        arr = arr.reshape(-1)
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise ValueError(f"ids must be integers, got dtype {arr.dtype}")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= len(self._words):
            bad = lo if lo < 0 else hi
            raise ValueError(f"id {bad} is outside the vocabulary [0, {len(self._words)})")
        words = self._words
        return [words[i] for i in arr.tolist()]

    # ----- files -----

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: format tag, version, words, counts, unk."""
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "unk": self._unk,
            "words": list(self._words),
            "counts": [int(c) for c in self._counts],
        }

    def save(self, path: PathLike) -> None:
        """Write the vocabulary to ``path`` as UTF-8 JSON, atomically (never a partial file)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
        write_text_atomic(path, text + "\n")

    @classmethod
    def load(cls, path: PathLike) -> Vocabulary:
        """Read a file written by [`save`][save], validating it.

        Raises FileNotFoundError if ``path`` does not exist, and ValueError naming the file and
        the problem for invalid/truncated JSON, a wrong format tag or version, wrong types,
        duplicate words, a counts/words length mismatch or negative counts.
        """
        path = os.fspath(path)
        with open(path, "rb") as f:
            raw = f.read()
        try:
            data = json.loads(raw.decode("utf-8-sig"))  # an editor's byte-order mark is allowed
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a vocabulary file: not UTF-8 ({e.reason} at byte {e.start})") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a vocabulary file: invalid or truncated JSON ({e})") from None
        except (ValueError, RecursionError) as e:
            # json's other refusals: an integer of more than 4300 digits (ValueError), nesting
            # deeper than the interpreter's recursion limit (RecursionError)
            raise ValueError(f"{path}: not a vocabulary file: unreadable JSON ({type(e).__name__}: {e})") from None

        def bad(msg):
            return ValueError(f"{path}: invalid vocabulary file: {msg}")

        if not isinstance(data, dict):
            raise bad(f"top level must be an object, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise bad(f"format must be {_FORMAT!r}, got {data.get('format')!r}")
        if data.get("version") != _VERSION:
            raise bad(f"unsupported version {data.get('version')!r} (this code reads version {_VERSION})")
        words, counts, unk = data.get("words"), data.get("counts"), data.get("unk")
        if not isinstance(words, list):
            raise bad(f"'words' must be a list, got {type(words).__name__}")
        if not isinstance(counts, list):
            raise bad(f"'counts' must be a list, got {type(counts).__name__}")
        for i, w in enumerate(words):
            if not isinstance(w, str):
                raise bad(f"word {i} must be a string, got {type(w).__name__} {w!r}")
        for i, c in enumerate(counts):
            if isinstance(c, bool) or not isinstance(c, int):
                raise bad(f"count {i} must be an integer, got {type(c).__name__} {c!r}")
            if c < 0:
                raise bad(f"count {i} must be >= 0, got {c}")
        if len(counts) != len(words):
            raise bad(f"{len(words)} words but {len(counts)} counts")
        if unk is not None and not isinstance(unk, str):
            raise bad(f"'unk' must be a string or null, got {type(unk).__name__}")
        try:
            return cls(words, np.array(counts, dtype=np.int64), unk=unk)
        except (TypeError, ValueError, OverflowError) as e:
            raise bad(str(e)) from None


def _check_options(min_count, max_size, order):
    """Refuse a bad ``min_count``, ``max_size`` or ``order`` of ``Vocabulary.build`` and
    ``Vocabulary.from_counts`` (``build`` checks them before counting any token)."""
    if isinstance(min_count, bool) or not isinstance(min_count, numbers.Integral) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size < 1
    ):
        raise ValueError(f"max_size must be None or an integer >= 1, got {max_size!r}")
    if order not in ("first", "frequency"):
        raise ValueError(f"order must be 'first' or 'frequency', got {order!r}")
