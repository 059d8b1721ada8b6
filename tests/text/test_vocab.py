"""tinygrad_nlp.text.vocab: the Vocabulary, its orders, unknown words and its JSON file."""

import json
import os

import numpy as np
import pytest

from tinygrad_nlp.text import Vocabulary, create_contexts_target, preprocess, tokenize

BOOK_TEXT = "You say goodbye and I say hello."


# ----- preprocess -----


TOKENS = "the cat sat on the mat the dog sat on the log a cat".split()


def test_vocabulary_frequency_order_breaks_ties_by_first_appearance():
    vocab = Vocabulary.build(TOKENS, order="frequency")
    # the:4, cat:2 sat:2 on:2 (in that first-appearance order), then the singletons
    assert vocab.id_to_word[:4] == ["the", "cat", "sat", "on"]
    assert vocab.id_to_word[4:] == ["mat", "dog", "log", "a"]
    assert vocab.counts.tolist() == [4, 2, 2, 2, 1, 1, 1, 1]


def test_vocabulary_min_count_maps_rare_words_to_unk():
    vocab = Vocabulary.build(TOKENS, min_count=2)
    # <unk> takes its place where the first dropped word ("mat") first appeared
    assert vocab.id_to_word == ["the", "cat", "sat", "on", "<unk>"]
    assert vocab.unk == "<unk>" and vocab.unk_id == 4
    assert vocab.counts.tolist() == [4, 2, 2, 2, 4]
    assert vocab.counts.sum() == len(TOKENS)
    ids = vocab.encode(TOKENS)
    assert ids.dtype == np.int32
    assert vocab.decode(ids) == [w if w in vocab else "<unk>" for w in TOKENS]


def test_vocabulary_max_size_counts_unk_and_keeps_most_frequent():
    vocab = Vocabulary.build(TOKENS, max_size=3, order="frequency")
    assert vocab.id_to_word == ["<unk>", "the", "cat"]  # <unk> holds the 8 dropped tokens
    assert vocab.counts.tolist() == [8, 4, 2]
    assert len(Vocabulary.build(TOKENS, max_size=8)) == 8 and Vocabulary.build(TOKENS, max_size=8).unk is None
    assert len(Vocabulary.build(TOKENS, max_size=7)) == 7  # 6 words + <unk>
    only_unk = Vocabulary.build(TOKENS, max_size=1)
    assert only_unk.id_to_word == ["<unk>"] and only_unk.counts.tolist() == [len(TOKENS)]


def test_vocabulary_unk_token_in_text_is_kept_and_absorbs_dropped_words():
    tokens = "<unk> a b a c <unk> a".split()
    vocab = Vocabulary.build(tokens)
    assert vocab.id_to_word == ["<unk>", "a", "b", "c"] and vocab.unk == "<unk>"
    rare = Vocabulary.build(tokens, min_count=2)
    assert rare.id_to_word == ["<unk>", "a"] and rare.counts.tolist() == [4, 3]


def test_vocabulary_without_unk_drops_words_and_encode_raises_keyerror():
    vocab = Vocabulary.build(TOKENS, min_count=2, unk=None)
    assert vocab.id_to_word == ["the", "cat", "sat", "on"] and vocab.unk is None
    with pytest.raises(KeyError, match="'mat'"):
        vocab.encode(["the", "mat"])


def test_vocabulary_encode_decode_edge_cases():
    vocab = Vocabulary.build(TOKENS)
    assert vocab.encode([]).dtype == np.int32 and vocab.encode([]).shape == (0,)
    assert vocab.decode(np.array([], dtype=np.int64)) == []
    assert vocab.decode([0, 1]) == ["the", "cat"]
    with pytest.raises(ValueError, match="id 8 is outside"):
        vocab.decode([0, 8])
    with pytest.raises(ValueError, match="id -1 is outside"):
        vocab.decode([-1])
    with pytest.raises(TypeError, match="single str"):
        vocab.encode("the cat")
    with pytest.raises(TypeError, match="single str"):
        Vocabulary.build("the cat")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_count": 0}, "min_count must be an integer >= 1, got 0"),
        ({"max_size": 0}, "max_size must be None or an integer >= 1, got 0"),
        ({"order": "alpha"}, "order must be 'first' or 'frequency', got 'alpha'"),
    ],
)
def test_vocabulary_build_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.build(TOKENS, **kwargs)


def test_vocabulary_constructor_validates():
    with pytest.raises(ValueError, match="duplicate word 'a' at ids 0 and 2"):
        Vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="one entry per word"):
        Vocabulary(["a", "b"], counts=[1])
    with pytest.raises(ValueError, match="not one of the words"):
        Vocabulary(["a"], unk="<unk>")
    with pytest.raises(TypeError, match="index 1"):
        Vocabulary(["a", 3])
    vocab = Vocabulary(["a", "b"], counts=[3, 1])
    with pytest.raises(ValueError):
        vocab.counts[0] = 5  # read-only: the vocabulary's state cannot be changed by accident


def test_vocabulary_save_load_round_trip(tmp_path):
    tokens = ["naïve", "café", "日本", "the", "the", "x"]
    vocab = Vocabulary.build(tokens, min_count=2)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    assert os.listdir(tmp_path) == ["vocab.json"]  # atomic write leaves no temporary file
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["words"] == ["<unk>", "the"] and data["counts"] == [4, 2]
    loaded = Vocabulary.load(path)
    assert loaded == vocab and loaded.unk == "<unk>"
    full = Vocabulary.build(tokens)
    full.save(str(path))  # str path; overwrites
    assert Vocabulary.load(str(path)) == full and Vocabulary.load(path).id_to_word[2] == "日本"


def _valid_payload():
    return {"format": "tinygrad_nlp.vocabulary", "version": 1, "unk": None, "words": ["a", "b"], "counts": [2, 1]}


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda d: d.update(words=["a", "a"]), "duplicate word 'a'"),
        (lambda d: d.update(words=["a", 7]), "word 1 must be a string"),
        (lambda d: d.update(words="ab"), "'words' must be a list"),
        (lambda d: d.update(counts=[2, 1.5]), "count 1 must be an integer"),
        (lambda d: d.update(counts=[True, 1]), "count 0 must be an integer"),
        (lambda d: d.update(counts=[2, -1]), "count 1 must be >= 0"),
        (lambda d: d.update(counts=[2]), "2 words but 1 counts"),
        (lambda d: d.update(unk="<unk>"), "not one of the words"),
        (lambda d: d.update(unk=3), "'unk' must be a string or null"),
        (lambda d: d.update(format="pickle"), "format must be"),
        (lambda d: d.update(version=99), "unsupported version 99"),
        (lambda d: d.pop("counts"), "'counts' must be a list"),
    ],
)
def test_vocabulary_load_rejects_invalid_content(tmp_path, mutate, match):
    payload = _valid_payload()
    mutate(payload)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(ValueError, match=match) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_vocabulary_load_rejects_truncated_and_non_json_files(tmp_path):
    path = tmp_path / "v.json"
    Vocabulary.build(TOKENS).save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="invalid or truncated JSON") as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="invalid or truncated JSON"):
        Vocabulary.load(path)
    path.write_bytes(b"\x80\x03}q\x00.")  # a pickle header: never unpickled
    with pytest.raises(ValueError, match="not UTF-8"):
        Vocabulary.load(path)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="top level must be an object"):
        Vocabulary.load(path)
    with pytest.raises(FileNotFoundError):
        Vocabulary.load(tmp_path / "missing.json")
