"""Loading corpora from files: Penn Treebank (found locally or downloaded and verified) and any
plain-text file with one sentence per line (read line by line by ``tinygrad_nlp.text.stream``)."""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
import warnings

import numpy as np

from tinygrad_nlp.errors import TinygradNLPError
from tinygrad_nlp.io import BOM, PathLike, atomic_write
from tinygrad_nlp.text.preprocessing import ids_by_first_appearance
from tinygrad_nlp.text.stream import load_text

__all__ = [
    "load_ptb",
    "load_text",
    "DownloadError",
    "PTB_BASE_URL",
    "PTB_FILES",
    "PTB_SHA256",
    "PTB_TOKENS",
    "PTB_DIR_ENV",
    "CACHE_ENV",
]

#: Where the downloader fetches PTB from (Mikolov's preprocessed files, the book's source).
PTB_BASE_URL = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/"
PTB_FILES = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "test": "ptb.test.txt"}
PTB_SHA256 = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
#: Tokens per split with the book's convention (one ``<eos>`` per line).
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}
#: Environment variable naming a directory that holds the three PTB files.
PTB_DIR_ENV = "TINYGRAD_NLP_PTB_DIR"
#: Environment variable overriding the cache directory (default ``~/.cache/tinygrad_nlp``).
CACHE_ENV = "TINYGRAD_NLP_CACHE"

EOS = "<eos>"
_CHUNK = 1 << 16
_TIMEOUT = 30.0
# The opener used for downloads; a module attribute so tests can serve files offline.
_urlopen = urllib.request.urlopen


class DownloadError(TinygradNLPError, OSError):
    """A dataset file is not available locally and could not be downloaded."""


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def default_cache_dir():
    """``$TINYGRAD_NLP_CACHE`` if set, else ``~/.cache/tinygrad_nlp``."""
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tinygrad_nlp")


def _how_to_provide():
    return (
        f"pass data_dir='/path/to/ptb' (a directory holding {', '.join(PTB_FILES.values())}) "
        f"or set the environment variable {PTB_DIR_ENV}"
    )


def _download(url, dest, expected_sha256):
    """Fetch ``url`` into ``dest`` atomically, verifying its sha256 before it appears.

    The bytes go to a temporary file next to ``dest`` (``tinygrad_nlp.io.atomic_write``) and are
    hashed on the way; only a file with the expected hash is moved into place. A network error
    or a checksum mismatch leaves no file behind.
    """
    name = os.path.basename(dest)
    try:
        with atomic_write(dest, "wb") as f:
            h = hashlib.sha256()
            with _urlopen(url, timeout=_TIMEOUT) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    h.update(chunk)
                    f.write(chunk)
            actual = h.hexdigest()
            if actual != expected_sha256:
                raise ValueError(
                    f"checksum mismatch for downloaded {name} from {url}: "
                    f"expected sha256 {expected_sha256}, got {actual}; the file was not saved"
                )
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
        # network failures only (HTTPError is a URLError); a local write error propagates as is
        if isinstance(e, urllib.error.HTTPError):
            reason = f"HTTP {e.code} {e.reason}"
        else:
            reason = getattr(e, "reason", None) or e
        problem = f"could not download {name} from {url} ({reason})"
        error = DownloadError(f"{problem}; {_how_to_provide()}")
        error.problem = problem  # without the advice, for callers (the command line) that give their own
        raise error from e


def _locate_ptb_file(name, data_dir, cache_dir, download):
    """Path of PTB file ``name`` by the lookup order of [`load_ptb`][load_ptb]; warns on user files
    whose checksum differs."""
    expected = PTB_SHA256[name]
    user_dir, source = None, None
    if data_dir is not None:
        user_dir, source = os.fspath(data_dir), "data_dir"
    elif os.environ.get(PTB_DIR_ENV):
        user_dir, source = os.environ[PTB_DIR_ENV], f"${PTB_DIR_ENV}"
    if user_dir is not None:
        path = os.path.join(user_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found ({source}={user_dir!r} must hold {name})")
        actual = _sha256_file(path)
        if actual != expected:
            warnings.warn(
                f"{path}: sha256 {actual} differs from the reference PTB file's {expected}; "
                "loading it anyway (token counts may differ from the published ones)",
                UserWarning,
                stacklevel=3,
            )
        return path

    cache = os.path.join(os.fspath(cache_dir) if cache_dir is not None else default_cache_dir(), "ptb")
    path = os.path.join(cache, name)
    if os.path.isfile(path):
        actual = _sha256_file(path)
        if actual == expected:
            return path
        if not download:
            raise ValueError(
                f"cached {path} is corrupt: expected sha256 {expected}, got {actual}; "
                "delete it or call with download=True to fetch it again"
            )
        # A wrong cached file can only come from outside this code (we verify before saving):
        # fetch a good copy, which atomically replaces it.
    elif not download:
        raise FileNotFoundError(f"{name} not found in the cache {cache} and download=False; {_how_to_provide()}")
    _download(PTB_BASE_URL + name, path, expected)
    return path


def _read_ptb_tokens(path):
    """Tokens of a PTB file with the book's convention: each newline becomes `` <eos> ``.

    A file that is not UTF-8 or holds no tokens raises ValueError naming it (a user's
    ``data_dir`` copy is only warned about when its checksum differs, then read here).
    """
    with open(path, "rb") as f:
        data = f.read()
    text = _decode_or_explain(data, path, "utf-8", "strict",
                              hint="the PTB files are plain ASCII, so this copy is damaged or not a PTB file")
    text = text.removeprefix(BOM)  # a byte-order mark an editor added is not part of the first word
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text mode reads them
    tokens = text.replace("\n", f" {EOS} ").split()
    if all(t == EOS for t in tokens):  # stops at the first word of a real file
        raise ValueError(f"{path} holds no tokens (empty or blank file)")
    return tokens


def load_ptb(split: str = "train", data_dir: PathLike | None = None, cache_dir: PathLike | None = None,
             download: bool = True) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """Penn Treebank (Mikolov's word-level version) as the book loads it.

    Args:
        split: ``"train"``, ``"valid"`` or ``"test"``.
        data_dir: directory holding ``ptb.{train,valid,test}.txt``. A file whose sha256 differs
            from the reference one is still loaded, with a warning.
        cache_dir: where downloads go (in a ``ptb`` subfolder); default ``$TINYGRAD_NLP_CACHE``
            or ``~/.cache/tinygrad_nlp``.
        download: fetch missing files from ``PTB_BASE_URL`` (verified by sha256 before they
            are saved) when not found locally.

    Lookup order: ``data_dir`` -> ``$TINYGRAD_NLP_PTB_DIR`` -> the cache -> download.

    Returns:
        corpus: 1-D ``np.int32`` array (929,589 / 73,760 / 82,430 tokens for train / valid /
            test), newlines as ``<eos>``.
        word_to_id: dict str -> int, ids in order of first appearance in the *training* split
            ("aer" is 0) for every split, so ids agree across splits.
        id_to_word: dict int -> str.

    A valid/test word missing from the training vocabulary (impossible with the reference
    files) maps to ``<unk>`` with a warning.
    A file that is not UTF-8 (naming the line and column) or holds no tokens raises ValueError
    naming it.
    """
    if split not in PTB_FILES:
        raise ValueError(f"unknown PTB split {split!r}; valid splits are {sorted(PTB_FILES)}")
    train_path = _locate_ptb_file(PTB_FILES["train"], data_dir, cache_dir, download)
    corpus, word_to_id = ids_by_first_appearance(_read_ptb_tokens(train_path))
    id_to_word = {i: w for w, i in word_to_id.items()}
    if split == "train":
        return corpus, word_to_id, id_to_word
    path = _locate_ptb_file(PTB_FILES[split], data_dir, cache_dir, download)
    tokens = _read_ptb_tokens(path)
    get = word_to_id.get
    corpus = np.array([get(w, -1) for w in tokens], dtype=np.int32)
    missing = corpus < 0
    if missing.any():
        first = tokens[int(np.flatnonzero(missing)[0])]
        unk_id = word_to_id.get("<unk>")
        if unk_id is None:
            raise ValueError(f"{path}: word {first!r} is not in the training vocabulary and there is no <unk>")
        warnings.warn(
            f"{path}: {int(missing.sum())} tokens (first {first!r}) are not in the training "
            "vocabulary; mapped to <unk>",
            UserWarning,
            stacklevel=2,
        )
        corpus[missing] = unk_id
    return corpus, word_to_id, id_to_word


_DECODE_HINT = (
    "pass encoding='...' if the file uses another encoding, or "
    "errors='replace' (keep a U+FFFD marker) / errors='ignore' (drop the bytes)"
)


def _decode_or_explain(data, path, encoding, errors, hint=_DECODE_HINT):
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start:e.end].hex(" ")
        raise ValueError(
            f"{path}: line {line}, column {col}: cannot decode byte(s) {bad} as {encoding} ({e.reason}); {hint}"
        ) from None
