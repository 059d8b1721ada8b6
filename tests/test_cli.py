"""The tinygrad-nlp command line, run in-process and once as a real console script."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_nlp import viz
from tinygrad_nlp.cli import main
from tinygrad_nlp.text import DEMO_GROUPS
from tinygrad_nlp.vectors import WordVectors


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--quiet", "--epochs", "2"]) == 0
    return out


def test_demo_writes_every_artifact(demo_run):
    for name in ("vectors.txt", "weights.npz", "vocab.json", "loss.png", "summary.json"):
        assert (demo_run / name).stat().st_size > 0, name
    graph = demo_run / ("graph.svg" if viz.renderer("svg") else "graph.dot")
    assert "EmbeddingDot" in graph.read_text()
    summary = json.loads((demo_run / "summary.json").read_text())
    assert summary["corpus"] == "demo" and summary["model"] == "cbow" and summary["epochs"] == 2
    assert summary["targets_per_second"] > 0


def test_demo_vectors_have_meaningful_neighbours(demo_run):
    vectors = WordVectors.load_word2vec_format(demo_run / "vectors.txt")
    hits, total = 0, 0
    for group in ("days", "months", "capitals", "instruments", "colours", "animals"):
        for word in DEMO_GROUPS[group]:
            neighbours = [w for w, _ in vectors.most_similar(word, topn=3)]
            hits += sum(w in DEMO_GROUPS[group] for w in neighbours)
            total += 3
    assert hits / total > 0.9


def test_demo_prints_neighbours(demo_run, capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--epochs", "1", "--query", "monday"]) == 0
    out = capsys.readouterr().out
    assert "monday ->" in out and "targets/s" in out


def test_similar_analogy_and_evaluate_commands(demo_run, capsys, tmp_path):
    vec = str(demo_run / "vectors.txt")
    assert main(["similar", vec, "paris", "--topn", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("\t" in l for l in lines)
    assert main(["analogy", vec, "france", "paris", "japan"]) == 0
    assert capsys.readouterr().out.strip()
    questions = tmp_path / "q.txt"
    questions.write_text(": capitals\nfrance paris japan tokyo\nitaly rome spain madrid\n")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("# w1\tw2\tscore\nmonday\ttuesday\t9\nmonday\tpiano\t1\nred\tblue\t8\nred\tcello\t2\n")
    assert main(["evaluate", vec, "--analogies", str(questions), "--word-pairs", str(pairs)]) == 0
    out = capsys.readouterr().out
    assert "capitals" in out


def test_errors_are_reported_without_traceback(demo_run, capsys, tmp_path):
    vec = str(demo_run / "vectors.txt")
    assert main(["similar", vec, "notaword"]) == 2
    err = capsys.readouterr().err
    assert "notaword" in err and "Traceback" not in err
    assert main(["similar", str(tmp_path / "missing.txt"), "x"]) == 2
    assert "missing.txt" in capsys.readouterr().err
    assert main(["evaluate", vec]) == 2
    assert main(["train", "--corpus", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o")]) == 2


def test_train_on_a_text_file_with_skipgram(tmp_path):
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    corpus.write_text("\n".join(" ".join(rng.choice(words, 12)) for _ in range(200)) + "\n")
    out = tmp_path / "run"
    args = ["train", "--corpus", str(corpus), "--model", "skipgram", "--epochs", "1", "--batch-size", "64",
            "--hidden", "8", "--window", "2", "--negative", "3", "--min-count", "1", "--out", str(out), "--quiet"]
    assert main(args) == 0
    vectors = WordVectors.load_word2vec_format(out / "vectors.txt")
    assert vectors.dim == 8 and "w3" in vectors
    vocab = json.loads((out / "vocab.json").read_text())
    assert "w3" in json.dumps(vocab)


def test_train_with_checkpoint_and_resume(tmp_path):
    out = tmp_path / "run"
    base = ["train", "--corpus", "demo", "--out", str(out), "--quiet", "--hidden", "8", "--checkpoint"]
    assert main(base + ["--epochs", "1"]) == 0
    assert (out / "checkpoint.npz").exists()
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["epoch_loss"]) == 2


def test_graph_command_renders(tmp_path):
    out = tmp_path / "g.dot"
    assert main(["graph", "--model", "simple-cbow", "--out", str(out)]) == 0
    text = out.read_text()
    assert "W_in" in text and "SoftmaxCrossEntropy" in text
    assert main(["graph", "--window", "9", "--out", str(out)]) == 2


def test_console_script_runs():
    exe = Path(sys.executable).with_name("tinygrad-nlp")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tinygrad_nlp.cli"]
    result = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "demo" in result.stdout and "train" in result.stdout


def test_train_streams_a_text_corpus_with_subsampling_workers_and_the_sgd_recipe(tmp_path):
    from tinygrad_nlp.text import load_text, open_id_file

    rng = np.random.default_rng(0)
    corpus_file = tmp_path / "c.txt"
    corpus_file.write_text("\n".join(" ".join(f"w{i}" for i in rng.integers(0, 30, 12)) for _ in range(300)))
    out = tmp_path / "run"
    args = ["train", "--corpus", str(corpus_file), "--epochs", "2", "--batch-size", "64", "--hidden", "8",
            "--window", "2", "--negative", "3", "--min-count", "2", "--sample", "1e-2", "--workers", "2",
            "--recipe", "sgd", "--out", str(out), "--quiet"]
    assert main(args) == 0
    ids = open_id_file(out / "corpus.ids.npy")
    expected, w2i, _ = load_text(corpus_file, min_count=2)
    np.testing.assert_array_equal(ids, expected)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["optimizer"], summary["decay"], summary["workers"], summary["subsample"]) == ("sgd", True, 2, 0.01)
    assert summary["targets"] < len(expected) - 4  # frequent words were dropped
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["counts"] == np.bincount(expected, minlength=len(w2i)).tolist()


@pytest.mark.parametrize("flag,value,message", [("--workers", "0", "--workers must be >= 1 (got 0)"),
                                                ("--sample", "-1e-3", "--sample must be a number > 0 (got -0.001)"),
                                                ("--sample", "nan", "--sample must be a number > 0 (got nan)")])
def test_workers_and_sample_are_checked_before_the_corpus_is_read(tmp_path, capsys, flag, value, message):
    args = ["train", "--corpus", str(tmp_path / "missing.txt"), f"{flag}={value}", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args) == 2
    assert message in capsys.readouterr().err  # not "missing.txt not found": checked first
