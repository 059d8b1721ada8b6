"""Turning raw text into word ids: the book's ``preprocess`` and the shared id-assignment helper.

Ids are given in order of first appearance, so the same text always produces the same ids and
small examples can be checked by hand ("You say goodbye and I say hello." gives "you" = 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["preprocess", "tokenize", "ids_by_first_appearance"]


def tokenize(text: str, lowercase: bool = True, split_period: bool = True) -> list[str]:
    """Split ``text`` (str) into a list of tokens the way the book does.

    Lower-cases (when ``lowercase``), puts spaces around every ``'.'`` so that the period is its
    own token (when ``split_period``), then splits on any run of whitespace (spaces, tabs,
    newlines), so doubled spaces or line breaks never produce empty tokens. (The book only adds
    a space before the period; the two agree unless a period is glued to the next word, as in
    "hi.bye", which gives "hi", ".", "bye" here rather than the book's "hi", ".bye".)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if lowercase:
        text = text.lower()
    if split_period:
        text = text.replace(".", " . ")
    return text.split()


def ids_by_first_appearance(tokens: Iterable[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Give each distinct token an id in order of first appearance.

    Args:
        tokens: an iterable of str.

    Returns:
        ``(corpus, word_to_id)``: corpus is a 1-D ``np.int32`` array with one id per token,
        word_to_id a dict whose insertion order is the id order.
    """
    word_to_id = {}
    setdefault = word_to_id.setdefault
    # setdefault hands out len(word_to_id) only the first time a word is seen; one dict lookup
    # per token, so the cost is linear in the number of tokens.
    ids = [setdefault(w, len(word_to_id)) for w in tokens]
    corpus = np.array(ids, dtype=np.int32) if ids else np.zeros(0, dtype=np.int32)
    return corpus, word_to_id


def preprocess(text: str) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """The book's ``preprocess``: text -> ``(corpus, word_to_id, id_to_word)``.

    Args:
        text: str. Lower-cased, ``'.'`` split off as its own token, split on any whitespace.

    Returns:
        corpus: 1-D ``np.int32`` array of word ids, one per token (ids by first appearance).
        word_to_id: dict str -> int.
        id_to_word: dict int -> str (a dict, as in the book).

    Examples:
        >>> corpus, word_to_id, id_to_word = preprocess("You say goodbye and I say hello.")
        >>> corpus.tolist(), id_to_word[0], len(word_to_id)
        ([0, 1, 2, 3, 4, 1, 5, 6], 'you', 7)
    """
    corpus, word_to_id = ids_by_first_appearance(tokenize(text))
    id_to_word = {i: w for w, i in word_to_id.items()}
    return corpus, word_to_id, id_to_word
