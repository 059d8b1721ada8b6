"""Character-level sequence-to-sequence tasks: the addition and date-format problems.

A task is a list of lines in one fixed layout, ``question<pad>_answer<pad>``: every question is
padded with spaces to the same width, then comes ``_`` (the decoder's start symbol) and the
answer, padded to the same width too. ``"16+75  _91  "`` is an addition line (question 7
characters, answer ``_`` + 4); ``"september 27, 1994           _1994-09-27"`` a date line
(question 29 characters, answer ``_`` + 10).

* [`addition`][addition] and [`dates`][dates] generate such lines from a seed.
* [`load_seq`][load_seq] reads a file of them and [`split_seq`][split_seq] turns lines into id arrays with a
  character vocabulary, split into training and test rows exactly as the NLP book's
  ``sequence.load_data`` does, so accuracies on its ``addition.txt`` and ``date.txt`` compare.
"""

from __future__ import annotations

import datetime
import os

from collections.abc import Iterable

import numpy as np

from tinygrad_nlp.errors import TinygradNLPError
from tinygrad_nlp.io import PathLike
from tinygrad_nlp.text.vocab import Vocabulary

__all__ = ["START", "addition", "dates", "load_seq", "split_seq", "parse_seq_lines", "encode_questions",
           "SeqFormatError"]

#: The start symbol that separates question and answer; every answer begins with it.
START = "_"


class SeqFormatError(TinygradNLPError, ValueError):
    """A line does not follow the ``question<pad>_answer<pad>`` layout (names file and line)."""


# ----- generators -----

def _check_count(n, what):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{what}: n must be a non-negative integer, got {n!r}")
    return int(n)


def addition(n: int, seed: int | None = None, digits: int = 3) -> list[str]:
    """``n`` distinct addition problems ``a+b`` with operands of 1 to ``digits`` digits.

    Each operand draws a length uniformly from 1..digits, then that many digits (leading zeros
    fall away, so short operands are more common), and repeated questions are drawn again: the
    process behind the book's ``addition.txt``.
    Questions are padded to ``2 * digits + 1`` characters, answers to ``_`` + ``digits + 1``.

    Returns:
        A list of ``n`` str lines (without newline), e.g. ``"16+75  _91  "``.
    """
    n = _check_count(n, "addition")
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < 1:
        raise ValueError(f"addition: digits must be a positive integer, got {digits!r}")
    possible = (10 ** digits) ** 2  # distinct (a, b) pairs
    if n > possible:
        raise ValueError(f"addition: only {possible:,} distinct problems have operands of up to {digits} digits, "
                         f"asked for {n:,}")
    rng = np.random.default_rng(seed)
    q_width, a_width = 2 * digits + 1, digits + 1
    seen, lines = set(), []
    while len(lines) < n:
        want = max(2 * (n - len(lines)), 64)
        lengths = rng.integers(1, digits + 1, size=(want, 2))
        values = (rng.random((want, 2)) * 10.0 ** lengths).astype(np.int64)
        for a, b in values.tolist():
            if (a, b) in seen:
                continue
            seen.add((a, b))
            lines.append(f"{a}+{b}".ljust(q_width) + START + str(a + b).ljust(a_width))
            if len(lines) == n:
                break
    return lines


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _ordinal(day):
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}" + {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _date_formats():
    """The written forms, each a function of a date; words get one of three cases afterwards."""
    return [
        # the book's four forms
        lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
        lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
        lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
        lambda d: f"{_WEEKDAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year}",
        # and some it lacks
        lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
        lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
        lambda d: f"{_MONTHS[d.month - 1]} {_ordinal(d.day)}, {d.year}",
        lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
        lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
        lambda d: f"{_WEEKDAYS[d.weekday()][:3]}, {d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
    ]


def _title(text):
    """Capitalise each word ("march 7th" -> "March 7th"; str.title would give "7Th")."""
    return " ".join(word.capitalize() for word in text.split(" "))


#: Width of a date question (the longest form, "wednesday, september 30, 2000", fills it).
DATE_QUESTION_WIDTH = 29
DATE_FIRST, DATE_LAST = datetime.date(1970, 1, 1), datetime.date(2017, 12, 31)


def dates(n: int, seed: int | None = None) -> list[str]:
    """``n`` dates between 1970-01-01 and 2017-12-31 written in one of ten forms -> ISO 8601.

    The forms are the book's four (``3/7/94``, ``mar 7, 1994``, ``march 7, 1994``,
    ``monday, march 7, 1994``) and six more (``7 march 1994``, ``7 mar 1994``,
    ``march 7th, 1994``, ``03/07/1994``, ``07.03.1994``, ``mon, 7 mar 1994``), drawn uniformly;
    words are lower case, Title Case or UPPER CASE with equal chance. Two-digit years mean
    1970-2069, which the date range keeps unambiguous.

    Returns:
        A list of ``n`` str lines in the book's ``date.txt`` layout (question 29 characters, then
        ``_`` and the 10-character ISO date), e.g. ``"march 7, 1994                _1994-03-07"``.
    """
    n = _check_count(n, "dates")
    rng = np.random.default_rng(seed)
    forms = _date_formats()
    span = (DATE_LAST - DATE_FIRST).days + 1
    offsets = rng.integers(0, span, size=n).tolist()
    form_ids = rng.integers(0, len(forms), size=n).tolist()
    cases = rng.integers(0, 3, size=n).tolist()
    lines = []
    for offset, form, case in zip(offsets, form_ids, cases):
        d = DATE_FIRST + datetime.timedelta(days=offset)
        text = forms[form](d)
        text = text if case == 0 else _title(text) if case == 1 else text.upper()
        lines.append(text.ljust(DATE_QUESTION_WIDTH) + START + d.isoformat())
    return lines


# ----- reading -----

def parse_seq_lines(lines: Iterable[str], source: str = "<lines>") -> tuple[list[str], list[str]]:
    """Split lines in the ``question<pad>_answer<pad>`` layout into questions and answers.

    The question is everything before the first ``_``; the answer is the rest, ``_`` included.
    A trailing newline (``\\n`` or ``\\r\\n``) is dropped. Every question must have the width of
    the first one and every answer too.

    Raises:
        SeqFormatError: naming ``source`` and the 1-based line number of the first line without
            ``_``, with an empty question or of another width.
    """
    questions, answers = [], []
    q_width = a_width = None
    for number, line in enumerate(lines, 1):
        if not isinstance(line, str):
            raise TypeError(f"{source}, line {number}: expected str, got {type(line).__name__}")
        if line.endswith("\n"):
            line = line[:-2] if line.endswith("\r\n") else line[:-1]
        cut = line.find(START)
        if cut < 0:
            shown = line if len(line) <= 40 else line[:37] + "..."
            raise SeqFormatError(f"{source}, line {number}: no '{START}' separating question and answer: {shown!r}")
        if cut == 0:
            raise SeqFormatError(f"{source}, line {number}: empty question before '{START}': {line!r}")
        question, answer = line[:cut], line[cut:]
        if q_width is None:
            q_width, a_width = len(question), len(answer)
        elif len(question) != q_width or len(answer) != a_width:
            raise SeqFormatError(
                f"{source}, line {number}: question of {len(question)} and answer of {len(answer)} characters "
                f"(with '{START}'), but line 1 has {q_width} and {a_width}: every line must be padded alike: {line!r}")
        questions.append(question)
        answers.append(answer)
    if not questions:
        raise SeqFormatError(f"{source}: no lines")
    return questions, answers


def _encode(strings, vocab):
    width = len(strings[0])
    text = "".join(strings)
    table = vocab.word_to_id
    ids = np.fromiter((table[c] for c in text), dtype=np.int32, count=len(text))
    return ids.reshape(len(strings), width)


def encode_questions(questions: Iterable[str], vocab: Vocabulary, width: int, reverse: bool = False) -> np.ndarray:
    """(N, width) int32 ids of questions padded with spaces to ``width`` (reversed when asked).

    For predicting on new text: a character outside ``vocab`` or a question longer than
    ``width`` raises ``ValueError`` naming it.
    """
    if isinstance(questions, str):
        questions = [questions]
    padded = []
    for q in questions:
        if len(q) > width:
            raise ValueError(f"question {q!r} has {len(q)} characters; the model reads at most {width}")
        unknown = sorted({c for c in q if c not in vocab})
        if unknown:
            raise ValueError(f"question {q!r} has characters the vocabulary lacks: {''.join(unknown)!r}")
        padded.append(q.ljust(width))
    x = _encode(padded, vocab)
    return np.ascontiguousarray(x[:, ::-1]) if reverse else x


def split_seq(lines: Iterable[str], test_fraction: float = 0.1, seed: int | None = 1984, reverse: bool = False,
              source: str = "<lines>",
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Vocabulary]:
    """Id arrays of a task's lines, split into training and test rows.

    The vocabulary holds every character in order of first appearance (question, then answer,
    line by line). Rows are split as the book does: the line indices are shuffled by numpy's
    legacy ``RandomState(seed)`` (``seed=None``: a fresh random order) and the last
    ``test_fraction`` of them are the test set (``len // 10`` rows for 0.1).

    Args:
        lines: iterable of str in the ``question<pad>_answer<pad>`` layout.
        test_fraction: share of the rows held out, in [0, 1).
        seed: seed of the legacy shuffle (1984 gives the book's split).
        reverse: reverse each question (the answers keep their start symbol first).
        source: name used in error messages (the file path).

    Returns:
        ``((x_train, t_train), (x_test, t_test), vocab)``: int32 arrays (N, Tq) and (N, Ta)
        where ``t[:, 0]`` is the start symbol's id, and a [`Vocabulary`][Vocabulary] of characters.
    """
    if not (isinstance(test_fraction, (int, float)) and 0 <= test_fraction < 1):
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction!r}")
    questions, answers = parse_seq_lines(lines, source)

    def chars():
        for q, a in zip(questions, answers):
            yield from q
            yield from a

    vocab = Vocabulary.build(chars(), unk=None, order="first")
    x, t = _encode(questions, vocab), _encode(answers, vocab)
    order = np.arange(len(x))
    rs = np.random.RandomState(seed)
    rs.shuffle(order)
    x, t = x[order], t[order]
    if reverse:
        x = np.ascontiguousarray(x[:, ::-1])
    # floor(n * fraction) without float rounding pushing an exact product one below
    n_test = int(len(x) * test_fraction + 1e-9)
    cut = len(x) - n_test
    return (x[:cut], t[:cut]), (x[cut:], t[cut:]), vocab


def load_seq(path: PathLike, test_fraction: float = 0.1, seed: int | None = 1984, reverse: bool = False,
             ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Vocabulary]:
    """Read a task file (one ``question<pad>_answer<pad>`` line each) and split it; see
    [`split_seq`][split_seq]. ``load_seq("date.txt", reverse=True)`` reproduces the book's arrays
    for its attention model (``x[:, ::-1]``)."""
    path = os.fspath(path)
    with open(path, encoding="utf-8", newline="") as f:
        try:
            lines = f.read().split("\n")
        except UnicodeDecodeError as e:
            raise SeqFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    return split_seq(lines, test_fraction, seed, reverse, source=path)
