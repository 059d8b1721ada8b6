"""tinygrad_nlp.text.preprocessing: the book's preprocess."""

import json
import os

import numpy as np
import pytest

from tinygrad_nlp.text import Vocabulary, create_contexts_target, preprocess, tokenize

BOOK_TEXT = "You say goodbye and I say hello."


# ----- preprocess -----


def test_preprocess_matches_the_book_example():
    corpus, word_to_id, id_to_word = preprocess(BOOK_TEXT)
    assert corpus.dtype == np.int32 and corpus.ndim == 1
    assert corpus.tolist() == [0, 1, 2, 3, 4, 1, 5, 6]
    assert word_to_id == {"you": 0, "say": 1, "goodbye": 2, "and": 3, "i": 4, "hello": 5, ".": 6}
    assert id_to_word == {i: w for w, i in word_to_id.items()}
    assert isinstance(id_to_word, dict) and id_to_word[0] == "you"


def test_preprocess_splits_on_any_whitespace():
    messy = "  You  say\tgoodbye\n\nand I   say hello.\n"
    assert preprocess(messy)[0].tolist() == preprocess(BOOK_TEXT)[0].tolist()
    assert "" not in preprocess(messy)[1]


def test_preprocess_splits_every_period_and_lowercases():
    assert tokenize("Hi.Bye. OK") == ["hi", ".", "bye", ".", "ok"]
    assert tokenize("Hi. Bye", lowercase=False, split_period=False) == ["Hi.", "Bye"]


def test_preprocess_empty_text_gives_empty_int32_corpus():
    corpus, word_to_id, id_to_word = preprocess(" \n ")
    assert corpus.dtype == np.int32 and corpus.shape == (0,)
    assert word_to_id == {} and id_to_word == {}


def test_preprocess_rejects_bytes():
    with pytest.raises(TypeError, match="bytes"):
        preprocess(b"you say")


# ----- create_contexts_target -----


def test_vocabulary_first_order_matches_preprocess_ids():
    corpus, word_to_id, _ = preprocess(BOOK_TEXT)
    vocab = Vocabulary.build(tokenize(BOOK_TEXT))
    assert vocab.word_to_id == word_to_id
    assert vocab.id_to_word == ["you", "say", "goodbye", "and", "i", "hello", "."]
    assert vocab.counts.dtype == np.int64 and vocab.counts.tolist() == [1, 2, 1, 1, 1, 1, 1]
    np.testing.assert_array_equal(vocab.encode(tokenize(BOOK_TEXT)), corpus)
    assert vocab.unk is None and vocab.unk_id is None  # nothing dropped: no <unk> added
    assert len(vocab) == 7 and "say" in vocab and "<unk>" not in vocab
