"""tinygrad_nlp.text: the PTB loader (local files, cache, offline-served downloads) and load_text."""

import functools
import hashlib
import http.server
import os
import threading
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import tinygrad_nlp.text.corpora as corpora
from tinygrad_nlp.text import DownloadError, load_ptb, load_text

README_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch):
    """Tests must not depend on the developer's PTB environment variables."""
    monkeypatch.delenv(corpora.PTB_DIR_ENV, raising=False)
    monkeypatch.delenv(corpora.CACHE_ENV, raising=False)


@pytest.fixture(scope="session")
def ptb_splits(ptb_dir):
    return {s: load_ptb(s, data_dir=ptb_dir, download=False) for s in ("train", "valid", "test")}


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("network disabled in this test")


def _serve_from(monkeypatch, directory):
    """Point the downloader at ``directory`` through a file:// URL."""
    monkeypatch.setattr(corpora, "PTB_BASE_URL", Path(directory).resolve().as_uri() + "/")


# ----- PTB from the shared data -----

def test_ptb_token_counts_match_the_readme(ptb_splits):
    assert corpora.PTB_TOKENS == README_TOKENS
    for split, (corpus, _, _) in ptb_splits.items():
        assert corpus.shape == (README_TOKENS[split],) and corpus.dtype == np.int32


def test_ptb_ids_follow_the_book(ptb_splits):
    corpus, word_to_id, id_to_word = ptb_splits["train"]
    assert id_to_word[0] == "aer" and word_to_id["aer"] == 0
    np.testing.assert_array_equal(corpus[:30], np.arange(30))  # the book's corpus[:30]
    assert len(word_to_id) == 10_000 and isinstance(id_to_word, dict)
    assert id_to_word[24] == "<eos>" and corpus[24] == 24  # the first line has 24 words
    assert (corpus == word_to_id["<eos>"]).sum() == 42_068  # one per line of ptb.train.txt
    for split in ("valid", "test"):
        c, w2i, i2w = ptb_splits[split]
        assert w2i == word_to_id and i2w == id_to_word  # one vocabulary for every split
        assert c.min() >= 0 and c.max() < 10_000


def test_ptb_unknown_split_lists_valid_ones(ptb_dir):
    with pytest.raises(ValueError, match=r"'dev'.*\['test', 'train', 'valid'\]"):
        load_ptb("dev", data_dir=ptb_dir)


def test_ptb_env_var_and_lookup_order(ptb_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "_urlopen", _no_network)
    monkeypatch.setenv(corpora.PTB_DIR_ENV, str(ptb_dir))
    corpus, _, _ = load_ptb("test", cache_dir=tmp_path)
    assert len(corpus) == README_TOKENS["test"]
    assert os.listdir(tmp_path) == []  # found via the environment variable: nothing cached
    # data_dir wins over the environment variable
    monkeypatch.setenv(corpora.PTB_DIR_ENV, str(tmp_path / "nowhere"))
    assert len(load_ptb("test", data_dir=ptb_dir)[0]) == README_TOKENS["test"]
    with pytest.raises(FileNotFoundError, match="TINYGRAD_NLP_PTB_DIR"):
        load_ptb("test", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="ptb.train.txt"):
        load_ptb("train", data_dir=tmp_path)


def test_ptb_user_copy_with_other_checksum_loads_with_a_warning(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b c \n b c d \n", encoding="utf-8")
    (tmp_path / "ptb.valid.txt").write_text(" c a \n zzz \n", encoding="utf-8")
    with pytest.warns(UserWarning, match="ptb.train.txt: sha256 .* differs"):
        corpus, word_to_id, id_to_word = load_ptb("train", data_dir=tmp_path)
    assert corpus.tolist() == [0, 1, 2, 3, 1, 2, 4, 3] and id_to_word[3] == "<eos>"
    with pytest.warns(UserWarning):
        with pytest.raises(ValueError, match="'zzz' is not in the training vocabulary"):
            load_ptb("valid", data_dir=tmp_path)


# ----- PTB download path, served offline -----

def test_ptb_download_from_file_url(ptb_dir, tmp_path, monkeypatch):
    _serve_from(monkeypatch, ptb_dir)
    corpus, word_to_id, _ = load_ptb("valid", cache_dir=tmp_path)
    assert len(corpus) == README_TOKENS["valid"] and word_to_id["aer"] == 0
    cache = tmp_path / "ptb"
    assert sorted(os.listdir(cache)) == ["ptb.train.txt", "ptb.valid.txt"]  # no temporary files
    for name in ("ptb.train.txt", "ptb.valid.txt"):
        assert hashlib.sha256((cache / name).read_bytes()).hexdigest() == corpora.PTB_SHA256[name]
    # the second call is served from the cache: no network needed
    monkeypatch.setattr(corpora, "_urlopen", _no_network)
    assert len(load_ptb("train", cache_dir=tmp_path)[0]) == README_TOKENS["train"]
    assert len(load_ptb("valid", cache_dir=tmp_path, download=False)[0]) == README_TOKENS["valid"]


def test_ptb_download_over_http(ptb_dir, tmp_path, monkeypatch):
    handler = functools.partial(_QuietHandler, directory=str(ptb_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(corpora, "PTB_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/")
        monkeypatch.setenv(corpora.CACHE_ENV, str(tmp_path))  # cache_dir from the environment
        corpus, _, id_to_word = load_ptb("test")
        assert len(corpus) == README_TOKENS["test"] and id_to_word[0] == "aer"
        assert sorted(os.listdir(tmp_path / "ptb")) == ["ptb.test.txt", "ptb.train.txt"]
        monkeypatch.setattr(corpora, "PTB_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/missing/")
        with pytest.raises(DownloadError, match="HTTP 404"):
            load_ptb("valid")
        assert "ptb.valid.txt" not in os.listdir(tmp_path / "ptb")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_ptb_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    (served / "ptb.train.txt").write_bytes(b" not the real ptb \n")
    _serve_from(monkeypatch, served)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError) as info:
        load_ptb("train", cache_dir=cache)
    message = str(info.value)
    assert "ptb.train.txt" in message
    assert corpora.PTB_SHA256["ptb.train.txt"] in message
    assert hashlib.sha256(b" not the real ptb \n").hexdigest() in message
    assert os.listdir(cache / "ptb") == []  # neither the bad file nor a temporary one


def test_ptb_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class Dropping:
        def __init__(self):
            self.sent = False

        def read(self, n):
            if self.sent:
                raise ConnectionResetError("connection reset by peer")
            self.sent = True
            return b"x" * n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(corpora, "_urlopen", lambda url, timeout: Dropping())
    with pytest.raises(DownloadError, match="connection reset"):
        load_ptb("train", cache_dir=tmp_path)
    assert os.listdir(tmp_path / "ptb") == []


def test_ptb_without_network_says_how_to_provide_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "_urlopen", _no_network)
    with pytest.raises(DownloadError) as info:
        load_ptb("train", cache_dir=tmp_path)
    message = str(info.value)
    assert "network disabled" in message and "data_dir" in message and "TINYGRAD_NLP_PTB_DIR" in message
    assert not any((tmp_path / "ptb").iterdir())
    with pytest.raises(FileNotFoundError, match="download=False.*data_dir"):
        load_ptb("train", cache_dir=tmp_path, download=False)


def test_ptb_corrupt_cache_is_refetched(ptb_dir, tmp_path, monkeypatch):
    (tmp_path / "ptb").mkdir()
    bad = tmp_path / "ptb" / "ptb.train.txt"
    bad.write_bytes(b" damaged \n")
    with pytest.raises(ValueError, match="cached .*ptb.train.txt is corrupt"):
        load_ptb("train", cache_dir=tmp_path, download=False)
    _serve_from(monkeypatch, ptb_dir)
    assert len(load_ptb("train", cache_dir=tmp_path)[0]) == README_TOKENS["train"]
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == corpora.PTB_SHA256["ptb.train.txt"]


# ----- load_text -----

def test_load_text_lines_eos_and_case(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Hello world\n\n  hello   THERE \nlast line", encoding="utf-8")
    corpus, word_to_id, id_to_word = load_text(path)
    assert [id_to_word[i] for i in corpus] == "hello world <eos> hello there <eos> last line <eos>".split()
    assert corpus.dtype == np.int32 and word_to_id["hello"] == 0
    corpus, _, id_to_word = load_text(path, lowercase=False, eos=False)
    assert [id_to_word[i] for i in corpus] == "Hello world hello THERE last line".split()


def test_load_text_min_count_and_max_size_make_unk(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("a a a b b c\na b d\n", encoding="utf-8")
    corpus, word_to_id, id_to_word = load_text(path, min_count=2)
    assert [id_to_word[i] for i in corpus] == "a a a b b <unk> <eos> a b <unk> <eos>".split()
    corpus, word_to_id, _ = load_text(path, max_size=3)
    assert set(word_to_id) == {"a", "b", "<unk>"}  # <eos> (2) loses to a (4) and b (3)


def test_load_text_reads_ptb_exactly_as_load_ptb(ptb_dir, ptb_splits):
    corpus, word_to_id, id_to_word = load_text(ptb_dir / "ptb.train.txt", lowercase=False)  # PTB has "N"
    ref_corpus, ref_w2i, ref_i2w = ptb_splits["train"]
    np.testing.assert_array_equal(corpus, ref_corpus)
    assert word_to_id == ref_w2i and id_to_word == ref_i2w


def test_load_text_encoding_errors_name_file_and_line(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("first line\nsecond line\ncaf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError) as info:
        load_text(path)
    message = str(info.value)
    assert str(path) in message and "line 3, column 4" in message and "e9" in message
    assert "errors='replace'" in message
    _, word_to_id, _ = load_text(path, errors="replace")
    assert "caf\ufffd" in word_to_id
    _, word_to_id, _ = load_text(path, errors="ignore")
    assert "caf" in word_to_id
    _, word_to_id, _ = load_text(path, encoding="latin-1")
    assert "café" in word_to_id


def test_load_text_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.txt holds no tokens"):
        load_text(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text(" \n\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="blank.txt"):
        load_text(blank)
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        load_text(tmp_path / "nothing.txt")
