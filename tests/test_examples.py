"""Every script in examples/ runs in its fast mode, in a subprocess, and writes what it promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_example(name, *args, cwd):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=env)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_every_example_is_tested():
    tested = {"simple_cbow.py", "cbow_ptb.py", "skipgram_ptb.py", "render_graph.py", "seq2seq_addition.py",
              "attention_dates.py", "lstm_lm_ptb.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_simple_cbow(tmp_path):
    out = run_example("simple_cbow.py", "--steps", 300, "--out", tmp_path / "run", cwd=tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert [line.split(",")[0] for line in lines] == ["Epoch 0", "Epoch 100", "Epoch 200"]
    first = float(lines[0].rsplit(" ", 1)[1])
    assert abs(first - 1.9459) < 0.01  # log 7, as in the book's first line
    assert "you ___ goodbye" in out
    for name in ("loss.png", "graph.svg"):
        assert (tmp_path / "run" / name).stat().st_size > 1000
    svg = (tmp_path / "run" / "graph.svg").read_text(encoding="utf-8")
    assert "W_in" in svg and "W_out" in svg


def test_simple_cbow_defaults_reproduce_the_seed_curve(tmp_path):
    """The full 1,000 steps of the book's SimpleCBOW example take about a second: the loss falls from 1.95 to below 0.9."""
    out = run_example("simple_cbow.py", "--out", tmp_path / "run", cwd=tmp_path)
    final = float(out.split("final loss (mean of the last 100 steps): ")[1].split()[0])
    assert final < 0.9


@pytest.mark.parametrize("script, model, evaluation", [
    ("cbow_ptb.py", "cbow", "analogies"),
    ("skipgram_ptb.py", "skipgram", "word_pairs"),
])
def test_ptb_examples(script, model, evaluation, tmp_path, ptb_dir, eval_dir):
    out_dir = tmp_path / "run"
    # One evaluation each keeps the pair fast; both code paths are covered between them.
    analogies = eval_dir / "questions-words.txt" if evaluation == "analogies" else "none"
    word_pairs = eval_dir / "wordsim353.tsv" if evaluation == "word_pairs" else "none"
    out = run_example(script, "--ptb-dir", ptb_dir, "--epochs", 1, "--max-steps", 4, "--out", out_dir, "--quiet",
                      "--analogies", analogies, "--word-pairs", word_pairs, cwd=tmp_path)
    assert "929,589 tokens, 10,000 words; training on 4,000 targets" in out
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"] == model and summary["epochs"] == 1 and summary["targets"] == 4000
    if evaluation == "analogies":
        assert summary["analogy_total"] == 4716 and "capital-common-countries" in out
    else:
        assert summary["wordsim_pairs"] == 237 and "WordSim-353: Spearman" in out
    header = (out_dir / "vectors.txt").read_text(encoding="utf-8").split("\n", 1)[0]
    assert header == "10000 100"
    for name in ("weights.npz", "loss.png", "graph.svg"):
        assert (out_dir / name).stat().st_size > 1000, name


def test_ptb_example_checkpoint_and_resume(tmp_path, ptb_dir):
    out_dir = tmp_path / "run"
    common = ["--ptb-dir", ptb_dir, "--max-steps", 2, "--hidden", 10, "--out", out_dir, "--quiet",
              "--analogies", "none", "--word-pairs", "none"]
    run_example("cbow_ptb.py", "--epochs", 1, "--checkpoint", *common, cwd=tmp_path)
    assert (out_dir / "checkpoint.npz").is_file()
    out = run_example("cbow_ptb.py", "--epochs", 2, "--resume", *common, cwd=tmp_path)
    assert "trained 2 epochs" in out
    assert json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))["epochs"] == 2


def test_render_graph(tmp_path):
    out = run_example("render_graph.py", "--out", tmp_path / "g", cwd=tmp_path)
    names = {"polynomial", "derivative_x4", "neuron", "softmax_cross_entropy", "simple_cbow", "cbow", "skipgram"}
    assert {p.stem for p in (tmp_path / "g").glob("*.svg")} == names
    assert out.count("wrote ") == len(names)
    assert "EmbeddingDot" in (tmp_path / "g" / "cbow.svg").read_text(encoding="utf-8")
    run_example("render_graph.py", "--out", tmp_path / "d", "--format", "dot", "--brief", cwd=tmp_path)
    assert (tmp_path / "d" / "skipgram.dot").read_text(encoding="utf-8").startswith("digraph")


def test_seq2seq_addition_fast(tmp_path):
    out = run_example("seq2seq_addition.py", "--fast", "--out", tmp_path / "run", cwd=tmp_path)
    assert "epoch 2: test accuracy" in out and "accuracy per epoch (%):" in out
    assert "test accuracy: greedy" in out and "beam 5" in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["model"] == "peeky" and summary["train_size"] == 1800 and summary["reverse"] is True
    assert (tmp_path / "run" / "accuracy.png").stat().st_size > 1000


def test_attention_dates_fast(tmp_path):
    out = run_example("attention_dates.py", "--fast", "--out", tmp_path / "run", cwd=tmp_path)
    assert out.count("(attention drawn in ") == 3 and "'march 3, 1999' -> '" in out
    for name in ("attention.png", "attention-0.png", "attention-2.png", "weights.npz"):
        assert (tmp_path / "run" / name).stat().st_size > 1000, name


def test_lstm_lm_ptb_fast(tmp_path, ptb_dir):
    out_dir = tmp_path / "run"
    out = run_example("lstm_lm_ptb.py", "--ptb-dir", ptb_dir, "--fast", "--out", out_dir, "--quiet", cwd=tmp_path)
    assert "PTB: 20,000 training words, vocabulary 10,000; LSTM 1 x 32, 1 epoch(s)" in out
    assert "sample: the company " in out
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    # One epoch on 20,000 words already beats the uniform guess (perplexity 10,000) by far.
    assert 100 < summary["test_perplexity"] < 2000
    assert (out_dir / "weights.npz").is_file() and (out_dir / "perplexity.png").is_file()
