"""`tinygrad-nlp lm train | generate | evaluate` end to end on a tiny corpus."""

import json

import numpy as np
import pytest

from tinygrad_nlp.cli import main
from tinygrad_nlp.layers import load_npz

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog met on the mat"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "tiny.txt"
    path.write_text("\n".join(SENTENCES * 8) + "\n", encoding="utf-8")
    return path


def train(corpus, out, *extra):
    args = ["lm", "train", "--corpus", str(corpus), "--valid", str(corpus), "--test", str(corpus),
            "--hidden", "8", "--wordvec", "8", "--batch-size", "2", "--time-size", "5", "--lr", "2",
            "--out", str(out), "--quiet", *extra]
    return main(args)


@pytest.fixture(scope="module")
def run_dir(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train(corpus, out, "--epochs", "2", "--layers", "2", "--tie-weights", "--dropout", "0.1") == 0
    return out


def test_lm_train_writes_every_output(run_dir):
    for name in ("weights.npz", "vocab.json", "model.json", "summary.json", "perplexity.png", "graph.svg",
                 "checkpoint.npz"):
        assert (run_dir / name).stat().st_size > 0, name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs_done"] == 2 and summary["num_layers"] == 2 and summary["tie_weights"] is True
    # Each setting once, under the model constructor's name (as in model.json), not also the flag's.
    model = json.loads((run_dir / "model.json").read_text())
    assert {k: summary[k] for k in model} == model
    assert not {"wordvec", "hidden", "layers"} & set(summary)
    assert summary["batch_size"] == 2 and summary["time_size"] == 5 and summary["lr"] == 2.0 and summary["epochs"] == 2
    for key in ("train_perplexity", "valid_perplexity", "test_perplexity", "wall_seconds", "words_per_second"):
        assert summary[key] > 0, key
    assert summary["valid_perplexity"] == summary["test_perplexity"]  # the same file
    assert len(summary["history"]) == 2
    svg = (run_dir / "graph.svg").read_text()
    assert "<svg" in svg
    # drawn unrolled: a cluster per time step, each holding the cells of both layers
    assert all(f"t = {t}" in svg for t in range(3)) and svg.count("LSTMCell layer") == 6


def test_lm_evaluate_reproduces_the_summary(run_dir, corpus, capsys):
    assert main(["lm", "evaluate", str(run_dir), "--corpus", str(corpus)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert f"perplexity {summary['test_perplexity']:.2f}" in printed


def test_lm_generate_is_seeded(run_dir, capsys):
    assert main(["lm", "generate", str(run_dir), "--start", "the cat", "--length", "12", "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main(["lm", "generate", str(run_dir), "--start", "the cat", "--length", "12", "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("the cat")
    words = first.split()
    assert len(words) >= 2 and set(words) <= set(" ".join(SENTENCES).split())


def test_lm_resume_continues_exactly(corpus, tmp_path):
    assert train(corpus, tmp_path / "a", "--epochs", "2") == 0
    assert train(corpus, tmp_path / "b", "--epochs", "1") == 0
    assert train(corpus, tmp_path / "b", "--epochs", "2", "--resume") == 0
    a, b = load_npz(tmp_path / "a" / "weights.npz"), load_npz(tmp_path / "b" / "weights.npz")
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("args, message", [
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--tie-weights", "--hidden", "9"], "--tie-weights needs --wordvec equal to --hidden"),
    (["--time-size", "0"], "--time-size must be >= 1 (got 0)"),
    (["--max-steps", "0"], "--max-steps must be >= 1 (got 0)"),
])
def test_lm_train_names_a_bad_flag(corpus, tmp_path, capsys, args, message):
    assert train(corpus, tmp_path, *args) == 2
    assert message in capsys.readouterr().err


def test_lm_generate_and_evaluate_name_bad_input(run_dir, tmp_path, capsys):
    assert main(["lm", "generate", str(run_dir), "--start", "the zebra"]) == 2
    assert "'zebra' is not in the model's vocabulary" in capsys.readouterr().err
    assert main(["lm", "generate", str(tmp_path / "none"), "--start", "the"]) == 2
    assert "run_dir: no such directory" in capsys.readouterr().err
    assert main(["lm", "evaluate", str(run_dir), "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "--corpus: no such file" in capsys.readouterr().err


def test_lm_train_max_steps_trains_the_first_windows_only(corpus, tmp_path):
    assert train(corpus, tmp_path, "--epochs", "1", "--max-steps", "3") == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    # 3 windows of 2 streams x 5 words.
    assert summary["max_steps"] == 3 and summary["words_trained"] == 30
