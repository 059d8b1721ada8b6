"""Reading a text corpus of any size in bounded memory: one streaming pass turns it into word
ids, optionally written once to a compact id file on disk that training memory-maps.

The text is read in blocks of whole lines (about 1 MB), decoded, split into tokens and mapped to
ids by first appearance while the words are counted; only the running word list and the ids
of one block are in memory. A line longer than ``max_line_bytes`` (default
`MAX_LINE_BYTES`, 100 MB) is refused naming the file and the line, so a file without
newlines (``/dev/zero``) cannot exhaust memory. When the pass ends, ``min_count`` and
``max_size`` pick the vocabulary (exactly as [`Vocabulary.build`][Vocabulary.build] would from the whole
token list) and the ids are renumbered in place by one lookup table.

* [`load_text`][load_text] keeps the ids in memory: its peak is about twice the final id array plus
  the vocabulary (the blocks' ids, then one array they are joined into).
* ``build_id_file`` writes them to a ``.npy`` file (int32, 128-byte header, atomic: a
  temporary file renamed into place) whose memory does not grow with the corpus at all;
  [`open_id_file`][open_id_file] maps it back read-only.
"""

from __future__ import annotations

import codecs
import mmap
import os
import struct

from collections.abc import Iterator

import numpy as np

from tinygrad_nlp.io import PathLike, atomic_write
from tinygrad_nlp.text.vocab import Vocabulary

__all__ = ["MAX_LINE_BYTES", "EOS", "TextEncoder", "read_line_blocks", "load_text", "build_id_file",
           "open_id_file"]

#: Longest line (in bytes, without its newline) a corpus may hold: longer ones are refused.
MAX_LINE_BYTES = 100 * 2**20
EOS = "<eos>"
#: Bytes read from the file at a time. A block's tokens are Python strings while it is encoded
#: (about 12 MB for 1 MB of text), so the block is kept small next to the corpus's ids.
BLOCK_BYTES = 2**20
_BOM = codecs.BOM_UTF8
_HEADER_BYTES = 128  # the id file's .npy header, padded so that the ids start 64-byte aligned

_DECODE_HINT = (
    "pass encoding='...' if the file uses another encoding, or "
    "errors='replace' (keep a U+FFFD marker) / errors='ignore' (drop the bytes)"
)


def _check_encoding(encoding, errors):
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"unknown text encoding {encoding!r}") from None
    if errors not in ("strict", "replace", "ignore"):
        raise ValueError(f"errors must be 'strict', 'replace' or 'ignore', got {errors!r}")


def _decode(data, path, first_line, encoding, errors, hint=_DECODE_HINT):
    try:
        return data.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        bad = data[e.start:e.end].hex(" ")
        if callable(hint):  # the caller words the message
            raise ValueError(hint(path, line, col, bad, encoding, e.reason)) from None
        raise ValueError(
            f"{path}: line {line}, column {col}: cannot decode byte(s) {bad} as {encoding} ({e.reason}); {hint}"
        ) from None


def read_line_blocks(path: PathLike, encoding: str = "utf-8", errors: str = "strict",
                     max_line_bytes: int = MAX_LINE_BYTES, block_bytes: int | None = None,
                     hint: str = _DECODE_HINT) -> Iterator[tuple[int, str]]:
    """Yield ``(first_line_number, text)``: the file decoded in blocks of whole lines.

    A UTF-8 byte-order mark at the start is dropped. Raises FileNotFoundError for a missing
    file, and ValueError naming the file and line for undecodable bytes (with ``errors=
    "strict"``; ``hint`` is appended to its message, or, if callable, ``hint(path, line, column,
    bad_bytes_hex, encoding, reason)`` words it) or a line longer than ``max_line_bytes``. Memory: one block (``block_bytes``,
    default `BLOCK_BYTES`) plus the longest line, never more than about
    ``block_bytes + max_line_bytes``.
    """
    path = os.fspath(path)
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    _check_encoding(encoding, errors)
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"text corpus {path} not found") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a text file") from None
    utf8 = codecs.lookup(encoding).name == "utf-8"
    with f:
        line = 1
        pending = []  # pieces of an unfinished line
        pending_bytes = 0
        first = True
        while True:
            chunk = f.read(block_bytes)
            if first:
                if utf8 and chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM):]
                first = False
            if not chunk:
                break
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes > max_line_bytes:
                    raise ValueError(f"{path}: line {line} is longer than {max_line_bytes:,} bytes "
                                     f"(the limit for one line of a corpus); is it a text file?")
                continue
            head = chunk[:cut + 1]
            first_nl = head.find(b"\n")
            if pending_bytes + first_nl > max_line_bytes:
                raise ValueError(f"{path}: line {line} is longer than {max_line_bytes:,} bytes "
                                 f"(the limit for one line of a corpus); is it a text file?")
            data = b"".join(pending) + head if pending else head
            _check_lines(data, path, line, max_line_bytes)
            yield line, _decode(data, path, line, encoding, errors, hint)
            line += data.count(b"\n")
            pending = [chunk[cut + 1:]]
            pending_bytes = len(pending[0])
            if pending_bytes > max_line_bytes:
                raise ValueError(f"{path}: line {line} is longer than {max_line_bytes:,} bytes "
                                 f"(the limit for one line of a corpus); is it a text file?")
        if pending_bytes:
            data = b"".join(pending)
            yield line, _decode(data, path, line, encoding, errors, hint)


def _check_lines(data, path, first_line, limit):
    """Refuse a line of ``data`` (whole lines) longer than ``limit`` bytes, naming it."""
    if len(data) <= limit:
        return
    start, line = 0, first_line
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        if end - start > limit:
            raise ValueError(f"{path}: line {line} is longer than {limit:,} bytes "
                             f"(the limit for one line of a corpus); is it a text file?")
        start, line = end + 1, line + 1


class TextEncoder:
    """Word ids by first appearance, assigned while a text streams past, with running counts.

    ``encode(text)`` maps a block of lines to a 1-D ``np.int32`` array (``<eos>`` after every
    non-blank line when ``eos``); ``words`` and ``counts`` describe every word seen so far.
    """

    def __init__(self, lowercase: bool = True, eos: bool = True) -> None:
        self.lowercase, self.eos = lowercase, eos
        self.word_to_id = {}
        self._counts = np.zeros(1024, dtype=np.int64)

    @property
    def words(self) -> list[str]:
        """Distinct words seen so far, in order of first appearance (index = raw id)."""
        return list(self.word_to_id)

    @property
    def counts(self) -> np.ndarray:
        """(len(words),) int64 occurrences of each word so far."""
        return self._counts[: len(self.word_to_id)]

    def encode(self, text: str) -> np.ndarray:
        if self.lowercase:
            text = text.lower()
        tokens = []
        extend, append, eos = tokens.extend, tokens.append, self.eos
        for line in text.splitlines():
            words = line.split()
            if words:
                extend(words)
                if eos:
                    append(EOS)
        w2i = self.word_to_id
        # New words get ids in order of first appearance: dict.fromkeys keeps the block's order
        # and visits each distinct word once, so the per-token work stays in C.
        for w in dict.fromkeys(tokens):
            if w not in w2i:
                w2i[w] = len(w2i)
        ids = np.fromiter(map(w2i.__getitem__, tokens), dtype=np.int32, count=len(tokens))
        if len(w2i) > self._counts.size:
            grown = np.zeros(max(2 * self._counts.size, len(w2i)), dtype=np.int64)
            grown[: self._counts.size] = self._counts
            self._counts = grown
        self._counts[: len(w2i)] += np.bincount(ids, minlength=len(w2i))
        return ids

    def vocabulary(self, min_count: int = 1, max_size: int | None = None,
                   unk: str | None = "<unk>") -> tuple[Vocabulary, np.ndarray]:
        """``(vocab, remap)``: the vocabulary [`Vocabulary.build`][Vocabulary.build] would give for the whole
        text (ids by first appearance), and the (V_seen,) int32 table from raw to final ids."""
        words = self.words
        vocab = Vocabulary.from_counts(words, self.counts, min_count=min_count, max_size=max_size, unk=unk,
                                       order="first")
        w2i = vocab.word_to_id
        unk_id = vocab.unk_id if vocab.unk_id is not None else -1
        remap = np.fromiter((w2i.get(w, unk_id) for w in words), dtype=np.int32, count=len(words))
        return vocab, remap


def _stream_ids(path, encoder, encoding, errors, max_line_bytes):
    for _, text in read_line_blocks(path, encoding, errors, max_line_bytes):
        ids = encoder.encode(text)
        if ids.size:
            yield ids


def load_text(path: PathLike, lowercase: bool = True, encoding: str = "utf-8", errors: str = "strict",
              min_count: int = 1, max_size: int | None = None, eos: bool = True,
              max_line_bytes: int = MAX_LINE_BYTES) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """Load any plain-text corpus (one sentence per line, tokens separated by whitespace).

    Args:
        path: the file, read line by line (see ``read_line_blocks``).
        lowercase: lower-case every token.
        encoding: the file's text encoding.
        errors: how undecodable bytes are handled, as in ``bytes.decode``: ``"strict"`` raises a
            ValueError naming the file, line and column; ``"replace"`` puts U+FFFD in their place;
            ``"ignore"`` drops them.
        min_count, max_size: passed to [`Vocabulary.build`][Vocabulary.build]; words dropped by them become
            ``<unk>``.
        eos: append ``<eos>`` after every non-blank line (blank lines are skipped).
        max_line_bytes: a longer line raises ValueError naming the file and line.

    Returns:
        corpus: 1-D ``np.int32`` array of ids; word_to_id: dict str -> int (ids by first
        appearance); id_to_word: dict int -> str.

    Raises FileNotFoundError for a missing file and ValueError (naming it) for a file without
    tokens. Tokens are not split further (no punctuation handling), so a pre-tokenised file
    like PTB loads exactly as written. Peak memory is about twice the returned array plus the
    vocabulary; for corpora larger than that, use ``build_id_file``.
    """
    path = os.fspath(path)
    encoder = TextEncoder(lowercase, eos)
    parts = list(_stream_ids(path, encoder, encoding, errors, max_line_bytes))
    if not parts:
        raise ValueError(f"{path} holds no tokens (empty or blank file)")
    corpus = np.empty(sum(p.size for p in parts), dtype=np.int32)
    parts.reverse()
    at = 0
    while parts:  # each block is freed once copied: at most about twice the ids at any moment
        part = parts.pop()
        corpus[at:at + part.size] = part
        at += part.size
    del part
    vocab, remap = encoder.vocabulary(min_count, max_size)
    for a in range(0, corpus.size, 1 << 20):  # in chunks: np.take on the whole array would make
        part = corpus[a:a + (1 << 20)]        # an int64 copy of the ids and a buffer (3x more)
        part[...] = remap[part]
    return corpus, dict(vocab.word_to_id), dict(enumerate(vocab.id_to_word))


def _npy_header(n):
    body = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d,), }" % n
    size = _HEADER_BYTES - 10
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", size) + (body.ljust(size - 1) + "\n").encode("latin1")


def build_id_file(path: PathLike, out_path: PathLike, lowercase: bool = True, encoding: str = "utf-8",
                  errors: str = "strict", min_count: int = 1, max_size: int | None = None, eos: bool = True,
                  max_line_bytes: int = MAX_LINE_BYTES) -> tuple[Vocabulary, int]:
    """Turn a text corpus into a file of int32 word ids, streaming: memory does not grow with it.

    One pass reads ``path`` block by block (as [`load_text`][load_text] does, with the same vocabulary
    and ids) and appends each block's ids to a temporary file beside ``out_path``; the ids are
    then renumbered in place through a memory map and the file is renamed to ``out_path`` (a
    ``.npy`` file: ``np.load(out_path, mmap_mode="r")`` or [`open_id_file`][open_id_file] read it).

    Returns:
        ``(vocab, tokens)``: the [`Vocabulary`][Vocabulary] (with counts) and the number of ids written.
    """
    path, out_path = os.fspath(path), os.fspath(out_path)
    encoder = TextEncoder(lowercase, eos)
    with atomic_write(out_path, "wb") as f:
        f.write(b"\0" * _HEADER_BYTES)
        n = 0
        for ids in _stream_ids(path, encoder, encoding, errors, max_line_bytes):
            f.write(ids.astype("<i4", copy=False).tobytes())
            n += ids.size
        if n == 0:
            raise ValueError(f"{path} holds no tokens (empty or blank file)")
        vocab, remap = encoder.vocabulary(min_count, max_size)
        f.flush()
        _renumber_in_place(f.fileno(), n, remap)
        f.seek(0)
        f.write(_npy_header(n))
    return vocab, n


def _renumber_in_place(fd, n, remap, chunk=1 << 20):
    """``ids[i] = remap[ids[i]]`` over the file's ``n`` ids, a chunk of pages at a time."""
    with mmap.mmap(fd, _HEADER_BYTES + 4 * n) as mm:
        ids = np.frombuffer(mm, dtype="<i4", count=n, offset=_HEADER_BYTES)
        part = None
        try:
            for a in range(0, n, chunk):
                part = ids[a:a + chunk]
                part[...] = remap[part]
                _drop_pages(mm, _HEADER_BYTES + 4 * a, 4 * part.size)
            mm.flush()
        finally:
            del ids, part


def _drop_pages(mm, start, length):
    """Let the kernel take back the resident pages of ``mm[start:start+length]`` (page-aligned
    inside); the data stays in the file and the page cache. Keeps a scan's memory flat."""
    page = mmap.PAGESIZE
    lo = -(-start // page) * page
    hi = (start + length) // page * page
    if hi > lo and hasattr(mm, "madvise"):
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def open_id_file(path: PathLike) -> np.ndarray:
    """The ids of a file written by ``build_id_file``, memory-mapped read-only (1-D int32)."""
    path = os.fspath(path)
    try:
        ids = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"id file {path} not found") from None
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not an id file ({err})") from None
    if ids.ndim != 1 or ids.dtype != np.int32:
        raise ValueError(f"{path}: not an id file (holds {ids.dtype} of shape {ids.shape}, expected 1-D int32)")
    return ids
