"""``tinygrad-nlp seq2seq train`` and ``predict`` end to end on small generated tasks: the files a
run writes, answers from the saved model, the attention heatmap, and clear errors."""

import json

import pytest

from tinygrad_nlp.cli import main
from tinygrad_nlp.seq2seq import accuracy
from tinygrad_nlp.seq2seq.commands import load_run, predict_text
from tinygrad_nlp.text import Vocabulary, addition, split_seq


@pytest.fixture(scope="module")
def dates_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dates"
    assert main(["seq2seq", "train", "--data", "dates", "--size", "400", "--epochs", "2", "--hidden", "16",
                 "--wordvec", "8", "--batch-size", "64", "--beam", "3", "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_every_file(dates_run, capsys):
    names = {p.name for p in dates_run.iterdir()}
    assert {"weights.npz", "vocab.json", "summary.json", "accuracy.png", "attention.png"} <= names
    assert "graph.svg" in names or "graph.dot" in names
    summary = json.loads((dates_run / "summary.json").read_text())
    assert summary["model"] == "attention" and summary["reverse"] is True and summary["hidden"] == 16
    assert summary["question_width"] == 29 and summary["answer_width"] == 10 and summary["start"] == "_"
    assert summary["train_size"] == 360 and summary["test_size"] == 40
    assert len(summary["accuracy_per_epoch"]) == 2 and len(summary["train_seconds_per_epoch"]) == 2
    assert summary["beam"] == 3 and 0 <= summary["beam_accuracy"] <= 1
    graph = next(p for p in dates_run.iterdir() if p.name.startswith("graph."))
    text = graph.read_text(encoding="utf-8")
    assert "encoder" in text and "decoder (AttentionDecoder)" in text
    # the saved run answers like the trained model: same accuracy on the same split
    model, vocab, _ = load_run(dates_run)
    lines = __import__("tinygrad_nlp.text", fromlist=["dates"]).dates(400, seed=1984)
    _, (xt, tt), vocab2 = split_seq(lines, reverse=True)
    assert vocab == vocab2
    assert accuracy(model, xt, tt) == pytest.approx(summary["accuracy"])


def test_predict_prints_answers_and_plots(dates_run, capsys, tmp_path):
    capsys.readouterr()
    assert main(["seq2seq", "predict", str(dates_run), "march 3, 1999"]) == 0
    answer = capsys.readouterr().out.strip()
    assert len(answer) <= 10 and answer == predict_text(dates_run, ["march 3, 1999"])[0]
    plot = tmp_path / "a.png"
    assert main(["seq2seq", "predict", str(dates_run), "march 3, 1999", "1/2/03", "--plot", str(plot), "--beam", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("march 3, 1999\t") and out[1].startswith("1/2/03\t") and out[2] == f"wrote {plot}"
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["predict", "{run}", "march 3, 1999 \u00e9"], "characters the vocabulary lacks"),
    (["predict", "{run}", "x" * 40], "has 40 characters; the model reads at most 29"),
    (["predict", "{missing}", "1+1"], "no summary.json"),
    (["train", "--data", "{missing}/a.txt", "--out", "{tmp}/o"], "--data: no such file"),
    (["train", "--data", "addition", "--size", "50", "--hidden", "0", "--out", "{tmp}/o"], "--hidden must be >= 1"),
])
def test_errors_are_one_clear_line(dates_run, tmp_path, capsys, args, message):
    args = [a.format(run=dates_run, missing=tmp_path / "missing", tmp=tmp_path) for a in args]
    assert main(["seq2seq", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_plot_refused_for_models_without_attention(tmp_path, capsys):
    lines = addition(300, seed=0)
    data = tmp_path / "add.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert main(["seq2seq", "train", "--data", str(data), "--model", "peeky", "--epochs", "1", "--hidden", "8",
                 "--beam", "1", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "peeky" and summary["beam_accuracy"] is None and summary["question_width"] == 7
    assert not (out / "attention.png").exists()
    assert main(["seq2seq", "predict", str(out), "12+34", "--plot"]) == 2
    assert "has no attention weights" in capsys.readouterr().err
