"""Streaming text reader: the same ids as reading the whole text, bounded memory, long lines refused."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_nlp.text import Vocabulary, build_id_file, load_text, open_id_file
from tinygrad_nlp.text import stream

REPO = Path(__file__).resolve().parents[2]
TEXT = "the cat sat on the mat\n\nThe dog  sat\r\non a log\na b c d e f\nrare words once\n"


def whole_text_reference(text, lowercase=True, min_count=1, max_size=None):
    """The tokens read the simple way (whole text, splitlines, <eos> per non-blank line)."""
    tokens = []
    for line in (text.lower() if lowercase else text).splitlines():
        words = line.split()
        if words:
            tokens += words + ["<eos>"]
    vocab = Vocabulary.build(tokens, min_count=min_count, max_size=max_size, unk="<unk>", order="first")
    return vocab.encode(tokens), vocab


@pytest.mark.parametrize("block_bytes", [1, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("min_count,max_size", [(1, None), (2, None), (1, 5)])
def test_blocks_of_any_size_give_the_whole_text_ids(tmp_path, monkeypatch, block_bytes, min_count, max_size):
    path = tmp_path / "c.txt"
    path.write_bytes(TEXT.encode())
    monkeypatch.setattr(stream, "BLOCK_BYTES", block_bytes)
    expected, vocab = whole_text_reference(TEXT, min_count=min_count, max_size=max_size)
    corpus, w2i, i2w = load_text(path, min_count=min_count, max_size=max_size)
    np.testing.assert_array_equal(corpus, expected)
    assert w2i == vocab.word_to_id and [i2w[i] for i in range(len(i2w))] == vocab.id_to_word
    got_vocab, n = build_id_file(path, tmp_path / "c.ids.npy", min_count=min_count, max_size=max_size)
    assert n == expected.size and got_vocab == vocab
    ids = open_id_file(tmp_path / "c.ids.npy")
    assert ids.dtype == np.int32 and isinstance(ids, np.memmap)
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_array_equal(np.load(tmp_path / "c.ids.npy"), expected)  # a plain .npy file


def test_vocabulary_from_counts_equals_build():
    tokens = "b a c a b d a e e <unk> f".split()
    for kwargs in ({}, {"min_count": 2}, {"max_size": 3}, {"order": "frequency", "min_count": 2}):
        built = Vocabulary.build(tokens, **kwargs)
        words = list(dict.fromkeys(tokens))
        counts = [tokens.count(w) for w in words]
        assert Vocabulary.from_counts(words, counts, **kwargs) == built


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello world\n")
    _, w2i, _ = load_text(path)
    assert list(w2i) == ["hello", "world", "<eos>"]


def test_a_line_longer_than_the_limit_is_refused_naming_file_and_line(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"short line\nanother\n" + b"x" * 5000 + b"\nend\n")
    with pytest.raises(ValueError, match=r"long\.txt: line 3 is longer than 1,000 bytes"):
        load_text(path, max_line_bytes=1000)
    with pytest.raises(ValueError, match=r"line 3 is longer"):
        build_id_file(path, tmp_path / "ids.npy", max_line_bytes=1000)
    assert not os.path.exists(tmp_path / "ids.npy")
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []  # no temporary left behind
    assert load_text(path, max_line_bytes=5000)[0].size == 9  # at the limit: read


def test_an_endless_line_is_refused_in_bounded_memory(tmp_path):
    """``/dev/zero`` never ends a line: refused once the limit is reached, not after memory runs out."""
    # The child's own peak (VmHWM starts afresh at exec; ru_maxrss would carry the parent's over).
    code = (
        "from tinygrad_nlp.text import load_text\n"
        "try:\n"
        "    load_text('/dev/zero', max_line_bytes=50 * 2**20)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) // 1024)\n"
    )
    if not os.path.exists("/dev/zero") or not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux's /dev/zero and /proc")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    message, peak_mb = out.stdout.strip().splitlines()
    assert "/dev/zero: line 1 is longer than 52,428,800 bytes" in message
    assert int(peak_mb) < 400  # the limit (50 MB) and its pieces, not the whole of memory


def test_undecodable_bytes_name_the_line_across_blocks(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"one\ntwo\nthree \xff four\n")
    monkeypatch.setattr(stream, "BLOCK_BYTES", 5)
    with pytest.raises(ValueError, match=r"bad\.txt: line 3, column 7: cannot decode byte\(s\) ff"):
        load_text(path)


def test_unknown_encoding_and_missing_or_empty_files(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("a b\n")
    with pytest.raises(ValueError, match="unknown text encoding 'nosuchcodec'"):
        load_text(path, encoding="nosuchcodec")
    with pytest.raises(FileNotFoundError, match="nothere.txt"):
        build_id_file(tmp_path / "nothere.txt", tmp_path / "ids.npy")
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no tokens"):
        build_id_file(tmp_path / "blank.txt", tmp_path / "ids.npy")
    assert not os.path.exists(tmp_path / "ids.npy")


def test_open_id_file_refuses_other_arrays(tmp_path):
    np.save(tmp_path / "f.npy", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="expected 1-D int32"):
        open_id_file(tmp_path / "f.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match="not an id file"):
        open_id_file(tmp_path / "junk.npy")
