"""The addition and date tasks: generators, the book's line layout, its exact train/test split
and character vocabulary, reversal, and the errors for malformed files."""

import datetime
import re

import numpy as np
import pytest

from tinygrad_nlp.text.sequences import (
    START, SeqFormatError, addition, dates, encode_questions, load_seq, parse_seq_lines, split_seq,
)

from conftest import SHARED_DATA


def reference_split(lines, seed=1984):
    """The book's loader re-derived: vocabulary by first appearance over question then answer,
    line by line; indices shuffled by the global legacy RandomState; the last tenth as test."""
    questions = [l[:l.index("_")] for l in lines]
    answers = [l[l.index("_"):] for l in lines]
    char_to_id = {}
    for q, a in zip(questions, answers):
        for c in q + a:
            char_to_id.setdefault(c, len(char_to_id))
    x = np.array([[char_to_id[c] for c in q] for q in questions])
    t = np.array([[char_to_id[c] for c in a] for a in answers])
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        idx = np.arange(len(x))
        np.random.shuffle(idx)
    finally:
        np.random.set_state(state)
    x, t = x[idx], t[idx]
    cut = len(x) - len(x) // 10
    return (x[:cut], t[:cut]), (x[cut:], t[cut:]), list(char_to_id)


def decode(vocab, row):
    return "".join(vocab.decode(row))


def test_addition_lines_are_correct_sums_in_the_book_layout():
    lines = addition(2000, seed=3)
    assert len(lines) == len(set(lines)) == 2000
    for line in lines:
        assert re.fullmatch(r"\d{1,3}\+\d{1,3} *_\d{1,4} *", line) and len(line) == 12
        q, a = line.split("_")
        left, right = q.split("+")
        assert int(a) == int(left) + int(right)
        assert len(q) == 7 and not left.startswith("0") or left == "0"
    assert addition(50, seed=3) == addition(50, seed=3) != addition(50, seed=4)
    # operand lengths cover 1..3 digits; three-digit operands are the most frequent shape
    lengths = [len(l.split("+")[0]) for l in lines]
    assert set(lengths) == {1, 2, 3} and lengths.count(3) > lengths.count(1)


def test_addition_width_and_bounds():
    assert addition(3, seed=0, digits=1)[0].startswith(tuple("0123456789")) and len(addition(3, seed=0, digits=1)[0]) == 3 + 3
    assert len(addition(100, seed=0, digits=1)) == 100  # every 1-digit pair, none repeated
    with pytest.raises(ValueError, match="only 100 distinct problems"):
        addition(101, seed=0, digits=1)
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        addition(-1)
    with pytest.raises(ValueError, match="digits must be a positive integer"):
        addition(3, digits=0)


MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]


def read_date(question):
    """An independent reader of every written form ``dates`` produces -> datetime.date."""
    q = question.strip().lower()
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{2})", q)
    if m:
        yy = int(m[3])
        return datetime.date(1900 + yy if yy >= 70 else 2000 + yy, int(m[1]), int(m[2]))
    m = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", q)
    if m:
        return datetime.date(int(m[3]), int(m[1]), int(m[2]))
    m = re.fullmatch(r"(\d{2})\.(\d{2})\.(\d{4})", q)
    if m:
        return datetime.date(int(m[3]), int(m[2]), int(m[1]))
    q = re.sub(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*, ", "", q)
    month = lambda w: next(i for i, name in enumerate(MONTHS, 1) if name.startswith(w) and len(w) >= 3)
    m = re.fullmatch(r"([a-z]+) (\d{1,2})(?:st|nd|rd|th)?, (\d{4})", q)
    if m:
        return datetime.date(int(m[3]), month(m[1]), int(m[2]))
    m = re.fullmatch(r"(\d{1,2}) ([a-z]+) (\d{4})", q)
    return datetime.date(int(m[3]), month(m[2]), int(m[1]))


FORMS = [r"\d{1,2}/\d{1,2}/\d\d", r"[a-z]{3} \d{1,2}, \d{4}", r"[a-z]{4,} \d{1,2}, \d{4}",
         r"[a-z]{6,}, [a-z]+ \d{1,2}, \d{4}", r"\d{1,2} [a-z]{4,} \d{4}", r"\d{1,2} [a-z]{3} \d{4}",
         r"[a-z]+ \d{1,2}(st|nd|rd|th), \d{4}", r"\d\d/\d\d/\d{4}", r"\d\d\.\d\d\.\d{4}",
         r"[a-z]{3}, \d{1,2} [a-z]{3} \d{4}"]


def test_dates_are_right_in_every_form_and_case():
    lines = dates(3000, seed=5)
    shapes, forms = set(), set()
    for line in lines:
        assert len(line) == 40 and line[29] == START
        question, answer = line[:29], line[30:]
        d = read_date(question)
        assert d.isoformat() == answer
        assert datetime.date(1970, 1, 1) <= d <= datetime.date(2017, 12, 31)
        words = question.strip()
        if re.search(r"[a-zA-Z]", words):
            letters = "".join(c for c in words if c.isalpha())
            shapes.add("lower" if letters.islower() else "upper" if letters.isupper() else "title")
            assert "Th," not in words and "St," not in words  # "7th", never "7Th"
            weekday = words.split(",")[0].lower()
            if weekday[:3] in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") and not weekday[3:4].isdigit():
                assert d.strftime("%A").lower().startswith(weekday)
        forms.update(i for i, form in enumerate(FORMS) if re.fullmatch(form, words.lower()))
    assert shapes == {"lower", "upper", "title"}
    assert forms == set(range(len(FORMS)))
    assert dates(20, seed=1) == dates(20, seed=1) != dates(20, seed=2)


def test_split_is_the_books_split_and_vocabulary():
    lines = addition(1000, seed=11)
    (x, t), (xt, tt), vocab = split_seq(lines)
    (rx, rt), (rxt, rtt), chars = reference_split(lines)
    for ours, ref in ((x, rx), (t, rt), (xt, rxt), (tt, rtt)):
        assert ours.dtype == np.int32 and np.array_equal(ours, ref)
    assert vocab.id_to_word == chars
    assert x.shape == (900, 7) and xt.shape == (100, 7) and t.shape == (900, 5)
    assert np.all(t[:, 0] == vocab.word_to_id[START]) and np.all(tt[:, 0] == vocab.word_to_id[START])


def test_reverse_flips_questions_only_and_fractions():
    lines = dates(200, seed=2)
    (x, t), (xt, tt), _ = split_seq(lines)
    (xr, tr), (xtr, ttr), _ = split_seq(lines, reverse=True)
    assert np.array_equal(xr, x[:, ::-1]) and np.array_equal(xtr, xt[:, ::-1]) and xr.flags.c_contiguous
    assert np.array_equal(tr, t) and np.array_equal(ttr, tt)
    (x0, _), (x1, _), _ = split_seq(lines, test_fraction=0.0)
    assert len(x0) == 200 and len(x1) == 0
    (x0, _), (x1, _), _ = split_seq(lines, test_fraction=0.25, seed=7)
    assert len(x1) == 50
    with pytest.raises(ValueError, match=r"test_fraction must be in \[0, 1\)"):
        split_seq(lines, test_fraction=1.0)


@pytest.mark.parametrize("name, first_train, first_test, chars", [
    ("addition.txt", "71+118 _189 ", "77+85  _162 ", "16+75 _920384"),
    ("date.txt", "2/7/72                       _1972-02-07", "10/15/94                     _1994-10-15",
     "septmbr 27,194_-0Aug38/TUESDYPMBR5JN6ailOcoGFynCWdILjHvhVfw"),
])
def test_the_books_files_give_its_figures(name, first_train, first_test, chars):
    """Rows and vocabulary printed by the book's own ``sequence.load_data`` on its files."""
    path = SHARED_DATA / "seq" / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    (x, t), (xt, tt), vocab = load_seq(path)
    assert x.shape[0] == 45000 and xt.shape[0] == 5000
    assert "".join(vocab.id_to_word) == chars
    assert decode(vocab, x[0]) + decode(vocab, t[0]) == first_train
    assert decode(vocab, xt[0]) + decode(vocab, tt[0]) == first_test
    lines = path.read_text(encoding="utf-8").splitlines()
    for got, ref in zip((x, t, xt, tt), [a for pair in reference_split(lines)[:2] for a in pair]):
        assert np.array_equal(got, ref)


def test_file_round_trip_with_crlf_and_no_final_newline(tmp_path):
    lines = addition(30, seed=1)
    p = tmp_path / "a.txt"
    p.write_bytes(("\r\n".join(lines)).encode())
    (x, t), (xt, tt), vocab = load_seq(p)
    (x2, t2), (xt2, tt2), vocab2 = split_seq(lines)
    assert np.array_equal(x, x2) and np.array_equal(tt, tt2) and vocab == vocab2
    assert "\r" not in vocab


@pytest.mark.parametrize("content, message", [
    ("1+1    _2   \n2+2    3    \n", r"a.txt, line 2: no '_' separating question and answer"),
    ("1+1    _2   \n\n", r"a.txt, line 2: no '_'"),
    ("1+1    _2   \n2+2   _4   \n", r"a.txt, line 2: question of 6 and answer of 5 characters .* line 1 has 7 and 5"),
    ("1+1    _2   \n_4   \n", r"a.txt, line 2: empty question"),
    ("", r"a.txt: no lines"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, content, message):
    p = tmp_path / "a.txt"
    p.write_text(content, encoding="utf-8")
    with pytest.raises(SeqFormatError, match=message):
        load_seq(p)


def test_non_utf8_file_and_missing_file(tmp_path):
    p = tmp_path / "b.txt"
    p.write_bytes(b"1+1\xff   _2   \n")
    with pytest.raises(SeqFormatError, match=r"b.txt: not UTF-8"):
        load_seq(p)
    with pytest.raises(FileNotFoundError):
        load_seq(tmp_path / "missing.txt")


def test_encode_questions_pads_reverses_and_rejects():
    (x, _), _, vocab = split_seq(addition(200, seed=0))
    ids = encode_questions(["12+3"], vocab, 7)
    assert decode(vocab, ids[0]) == "12+3   "
    assert decode(vocab, encode_questions("12+3", vocab, 7, reverse=True)[0]) == "   3+21"
    with pytest.raises(ValueError, match=r"characters the vocabulary lacks: 'x'"):
        encode_questions(["1x2"], vocab, 7)
    with pytest.raises(ValueError, match="has 9 characters; the model reads at most 7"):
        encode_questions(["123+45678"], vocab, 7)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="line 1: expected str"):
        parse_seq_lines([b"1+1_2"])
