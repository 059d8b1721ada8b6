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


def test_the_fast_recipe_sets_batch_learning_rate_and_epochs_and_flags_still_override():
    from tinygrad_nlp.cli import RECIPES, _recipe, build_parser

    parser = build_parser()
    recipe = _recipe(parser.parse_args(["train", "--corpus", "ptb", "--recipe", "fast"]))
    assert {k: recipe[k] for k in ("optimizer", "lr", "decay", "batch_size", "epochs")} == {
        "optimizer": "adam", "lr": 0.03, "decay": True, "batch_size": 4000, "epochs": 5}
    assert {k: v for k, v in recipe.items() if k not in ("lr", "batch_size", "epochs")} == {
        k: v for k, v in RECIPES["ptb"].items() if k not in ("lr", "batch_size", "epochs")}
    recipe = _recipe(parser.parse_args(["train", "--corpus", "ptb", "--recipe", "fast", "--epochs", "3",
                                        "--lr", "0.01"]))
    assert (recipe["epochs"], recipe["lr"], recipe["batch_size"]) == (3, 0.01, 4000)


def test_an_unknown_recipe_is_one_line_naming_the_flag(capsys):
    assert main(["train", "--corpus", "demo", "--recipe", "fastest"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tinygrad-nlp train: error: --recipe: invalid choice: 'fastest' (choose from 'adam', 'fast', 'sgd')"]


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
                                                ("--sample", "-1e-3", "--sample must be > 0 (got -1e-3)"),
                                                ("--sample", "nan", "--sample must be a finite number (got nan)")])
def test_workers_and_sample_are_checked_before_the_corpus_is_read(tmp_path, capsys, flag, value, message,
                                                                   monkeypatch):
    import tinygrad_nlp.cli as cli

    monkeypatch.setattr(cli, "stream_corpus", None)  # reading the corpus would fail differently
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n")
    args = ["train", "--corpus", str(corpus), f"{flag}={value}", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(args) == 2
    assert message in capsys.readouterr().err


# ----- usage and data mistakes: one line naming the flag or file, exit 2, never a traceback -----
def _broken_inputs(tmp_path, vec):
    """(argv, exit status, text the one-line error must contain) for every subcommand."""
    bad_utf8 = tmp_path / "latin.txt"
    bad_utf8.write_bytes(b"caf\xe9 au lait\n" * 5)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    questions = tmp_path / "q.txt"
    questions.write_text(": s\nman woman king\n")
    huge_header = tmp_path / "huge.txt"
    huge_header.write_text("0 " + "9" * 40 + "\n")
    nan_vectors = tmp_path / "nan.txt"
    nan_vectors.write_text("1 2\nx nan 1\n")
    notdir = tmp_path / "a_file"
    notdir.write_text("x")
    no_summary = tmp_path / "not_a_run"
    no_summary.mkdir()
    corrupt_run = tmp_path / "corrupt_run"
    corrupt_run.mkdir()
    (corrupt_run / "summary.json").write_text("{not json")
    ptb_dir = tmp_path / "noptb"
    ptb_dir.mkdir()
    out = str(tmp_path / "o")
    train = ["train", "--out", out, "--quiet", "--corpus"]
    return [
        (["demo", "--clip-norm", "-1"], 2, "--clip-norm must be > 0 (got -1)"),
        (["demo", "--clip-norm", "0"], 2, "--clip-norm must be > 0 (got 0)"),
        (["demo", "--epochs", "0"], 2, "--epochs must be >= 1 (got 0)"),
        (["demo", "--lr", "nan"], 2, "--lr must be a finite number (got nan)"),
        (["demo", "--lr", "fast"], 2, "--lr must be a number (got fast)"),
        (["demo", "--seed", "-1"], 2, "--seed must be >= 0 (got -1)"),
        (["demo", "--out", str(notdir)], 2, "a_file is a file, not a directory"),
        (["demo", "--model", "rnn"], 2, "--model: invalid choice"),
        (train + ["demo", "--hidden", "0"], 2, "--hidden must be >= 1 (got 0)"),
        (train + ["demo", "--batch-size", "-5"], 2, "--batch-size must be >= 1 (got -5)"),
        (train + ["demo", "--encoding", "nosuchcodec"], 2, "--encoding is not a known text encoding"),
        (train + [str(tmp_path / "missing.txt")], 2, "--corpus: no such file"),
        (train + ["ptb:dev"], 2, "--corpus names an unknown PTB split"),
        (train + ["ptb", "--ptb-dir", str(ptb_dir)], 2, "--ptb-dir"),
        (train + [str(bad_utf8)], 2, "line 1, column 4"),
        (train + [str(empty)], 2, "empty.txt"),
        (train + ["demo", "--resume"], 2, "--resume needs --checkpoint"),
        (train + ["demo", "--eval-analogies", str(questions)], 2, "--eval-analogies"),
        (train + ["demo", "--eval-word-pairs", str(tmp_path / "nope.tsv")], 2, "--eval-word-pairs: no such file"),
        (train + ["demo", "--window", "100000000"], 2, "--window 100000000 needs"),
        (["similar", str(tmp_path / "missing.txt"), "x"], 2, "vectors: no such file"),
        (["similar", vec, "notaword"], 2, "'notaword' is not in the vocabulary"),
        (["similar", vec, "paris", "--topn", "0"], 2, "--topn must be >= 1 (got 0)"),
        (["similar", str(huge_header), "x"], 2, "huge.txt, line 1: bad header"),
        (["similar", str(nan_vectors), "x"], 2, "nan.txt, line 2: non-finite"),
        (["similar", str(bad_utf8), "x"], 2, "latin.txt"),
        (["similar", vec, "x", "--binary"], 2, "vectors.txt"),
        (["analogy", vec, "paris", "xyzzy", "plugh"], 2, "'xyzzy' is not in the vocabulary"),
        (["analogy", str(empty), "a", "b", "c"], 2, "empty.txt: empty file"),
        (["evaluate", vec], 2, "give --analogies PATH and/or --word-pairs PATH"),
        (["evaluate", vec, "--analogies", str(questions)], 2, "q.txt, line 2: expected 4 words"),
        (["evaluate", vec, "--word-pairs", str(questions)], 2, "q.txt, line 1"),
        (["graph", "--out", str(tmp_path / "nonexistent_dir" / "x.svg")], 2, "--out: directory"),
        (["graph", "--window", "9"], 2, "--window 9 is too wide"),
        (["graph", "--hidden", "-3"], 2, "--hidden must be >= 1 (got -3)"),
        (["graph", str(no_summary)], 2, "has no summary.json"),
        (["graph", str(corrupt_run)], 2, "summary.json: not a training run's summary"),
        (["graph", str(tmp_path / "no_such_run")], 2, "RUN: no such directory"),
        (["graph", str(corrupt_run), "--model", "cbow"], 2, "--model does not apply to a trained run"),
        (["lm", "train", "--corpus", "ptb", "--dropout", "1.5"], 2, "--dropout must be in [0, 1) (got 1.5)"),
        (["lm", "train", "--corpus", "ptb", "--clip-norm", "-1"], 2, "--clip-norm must be > 0 (got -1)"),
        (["lm", "train", "--corpus", str(tmp_path / "missing.txt")], 2, "--corpus: no such file"),
        (["lm", "train", "--corpus", str(empty), "--out", out], 2, "empty.txt"),
        (["lm", "generate", str(tmp_path / "no_such_run"), "--start", "a"], 2, "run_dir: no such directory"),
        (["lm", "generate", str(no_summary), "--start", "a"], 2, "model.json not found"),
        (["lm", "generate", str(no_summary), "--start", "a", "--top-k", "0"], 2, "--top-k must be >= 1 (got 0)"),
        (["lm", "evaluate", str(no_summary), "--corpus", "ptb:test", "--batch-size", "0"], 2,
         "--batch-size must be >= 1 (got 0)"),
        (["seq2seq", "train", "--data", "addition", "--lr", "-1", "--out", out], 2, "--lr must be > 0 (got -1)"),
        (["seq2seq", "train", "--data", "addition", "--clip-norm", "0", "--out", out], 2, "--clip-norm must be > 0 (got 0)"),
        (["seq2seq", "train", "--data", str(tmp_path / "missing.txt")], 2, "--data: no such file"),
        (["seq2seq", "train", "--data", str(empty), "--out", out], 2, "empty.txt"),
        (["seq2seq", "predict", str(no_summary), "1+1"], 2, "no summary.json"),
        (["seq2seq", "predict", str(no_summary), "1+1", "--beam", "0"], 2, "--beam must be >= 1 (got 0)"),
    ]


def test_every_subcommand_reports_broken_input_in_one_line_without_traceback(demo_run, tmp_path, capsys):
    wrong = []
    for argv, status, expected in _broken_inputs(tmp_path, str(demo_run / "vectors.txt")):
        got = main(argv)
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        if (got != status or "Traceback" in captured.err + captured.out or len(lines) != 1
                or not lines[0].startswith(f"tinygrad-nlp {argv[0]}") or ": error: " not in lines[0]
                or expected not in lines[0]):
            wrong.append((argv[:3], got, captured.err[-300:]))
    assert not wrong, "\n".join(map(str, wrong))
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # nothing was written


def test_flags_are_checked_before_any_data_is_read(tmp_path, monkeypatch, capsys):
    import tinygrad_nlp.cli as cli

    def must_not_load(*args, **kwargs):
        raise AssertionError("the corpus was read before the flags were checked")

    monkeypatch.setattr(cli, "load_corpus", must_not_load)
    questions = tmp_path / "q.txt"
    questions.write_text(": s\na b c\n")
    for extra in (["--clip-norm", "-1"], ["--resume"], ["--eval-analogies", str(questions)], ["--hidden", "0"]):
        assert main(["train", "--corpus", "demo", "--out", str(tmp_path / "o")] + extra) == 2
    err = capsys.readouterr().err
    assert "AssertionError" not in err and "the corpus was read" not in err


@pytest.mark.parametrize("raised, status, text", [
    (KeyboardInterrupt(), 130, "interrupted"),
    (OSError(28, "No space left on device", "/runs/x/weights.npz"), 1, "/runs/x/weights.npz: No space left on device"),
    (MemoryError(), 1, "out of memory"),
    (FloatingPointError("the loss became nan at epoch 1, step 3"), 1, "the loss became nan"),
    (RuntimeError("boom"), 1, "unexpected RuntimeError: boom"),
    (ValueError("data.txt, line 3: bad"), 2, "data.txt, line 3: bad"),
    (LookupError("unknown encoding: x"), 2, "unknown encoding"),
])
def test_exit_status_says_what_kind_of_failure_and_debug_shows_the_traceback(monkeypatch, capsys, tmp_path, raised,
                                                                              status, text):
    import tinygrad_nlp.cli as cli

    def fails(args):
        raise raised

    monkeypatch.setattr(cli, "cmd_similar", fails)
    vec = tmp_path / "v.txt"
    vec.write_text("1 1\nx 1\n")
    assert main(["similar", str(vec), "x"]) == status
    err = capsys.readouterr().err
    assert text in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["similar", str(vec), "x", "--debug"]) == status
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and text in err


def test_console_script_exits_130_on_ctrl_c_without_traceback(tmp_path):
    # A shell starts background jobs with SIGINT ignored, and Python then installs no Ctrl-C
    # handler; restore the one a terminal gives, so the test means the same wherever it runs.
    code = ("import signal, sys, threading, os\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from tinygrad_nlp import cli\n"
            "threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()\n"
            "sys.exit(cli.main(['train', '--corpus', 'demo', '--epochs', '200', '--quiet', '--out', sys.argv[1]]))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 130
    assert "Traceback" not in result.stderr and "interrupted" in result.stderr


def _subcommand_parsers():
    """``{"train": parser, "lm train": parser, ...}``: every command that runs something."""
    from tinygrad_nlp.cli import build_parser

    found = {}

    def walk(parser, prefix):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            found[prefix] = parser
        for sub in subs:
            for name, child in sub.choices.items():
                walk(child, f"{prefix} {name}".strip())

    walk(build_parser(), "")
    return found


def test_help_gives_every_option_a_text_and_its_default():
    commands = _subcommand_parsers()
    assert {"demo", "train", "similar", "analogy", "evaluate", "graph", "lm train", "lm generate"} <= set(commands)
    for name, p in commands.items():
        text = " ".join(p.format_help().split())
        for action in p._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            if action.option_strings and action.default not in (None, False):
                assert f"(default: {action.default})" in text, (name, action.option_strings)
            assert "--debug" in text, name  # every command has the common error handling
        for option, default in (("--epochs", "demo 3, ptb 10, text 5"), ("--lr", "demo 0.01, ptb 0.0075")):
            if name in ("demo", "train"):
                assert default in text, (name, option)
    assert "(default: 10)" in " ".join(commands["similar"].format_help().split())


def test_version(capsys):
    from tinygrad_nlp import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tinygrad-nlp {__version__}"


def test_unknown_words_get_close_suggestions(tmp_path, capsys):
    vec = tmp_path / "v.txt"
    WordVectors(np.eye(4, dtype=np.float32), ["president", "presidents", "monday", "Paris"]).save_word2vec_format(vec)
    assert main(["similar", str(vec), "President"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'president', 'presidents'?" in err
    assert main(["analogy", str(vec), "paris", "monday", "mondey"]) == 2
    err = capsys.readouterr().err
    assert "'paris' is not in the vocabulary" in err and "did you mean 'Paris'?" in err
    assert main(["similar", str(vec), "zzzzzz"]) == 2
    assert "did you mean" not in capsys.readouterr().err


def test_demo_query_reports_unknown_words(demo_run, capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path), "--quiet", "--epochs", "1", "--query", "monday", "xyzzy", "Paris"]) == 0
    out = capsys.readouterr().out
    assert "monday ->" in out
    assert "xyzzy -> not in the vocabulary" in out
    assert "Paris -> not in the vocabulary (did you mean paris?)" in out


def test_a_failed_ptb_download_names_the_ptb_dir_flag(tmp_path, monkeypatch, capsys):
    import urllib.error

    from tinygrad_nlp.text import corpora

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(corpora, "_urlopen", offline)
    monkeypatch.setenv("TINYGRAD_NLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TINYGRAD_NLP_PTB_DIR", raising=False)
    assert main(["train", "--corpus", "ptb", "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "could not download ptb.train.txt" in err and "--ptb-dir" in err and "data_dir" not in err
    assert "Traceback" not in err


def test_graph_draws_a_trained_runs_model(demo_run, tmp_path, capsys):
    out = tmp_path / "run.dot"
    assert main(["graph", str(demo_run), "--out", str(out)]) == 0
    text = out.read_text()
    summary = json.loads((demo_run / "summary.json").read_text())
    V, H = summary["vocab_size"], summary["hidden"]
    assert f"({V}, {H})" in text  # the trained tables' shapes, not the toy model's
    assert "W_in" in text and "W_out" in text
    toy = tmp_path / "toy.dot"
    assert main(["graph", "--out", str(toy)]) == 0
    assert f"({V}, {H})" not in toy.read_text()


def test_graph_does_not_create_a_missing_directory(tmp_path, capsys):
    target = tmp_path / "nonexistent_dir" / "x.svg"
    assert main(["graph", "--out", str(target)]) == 2
    assert "--out: directory" in capsys.readouterr().err
    assert not target.parent.exists()


# ----- a run never silently loses progress, and its files are one set -----
def _train(out, *extra):
    return main(["train", "--corpus", "demo", "--out", str(out), "--quiet", "--hidden", "8", *extra])


def test_an_existing_checkpoint_is_not_overwritten_without_resume_or_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--epochs", "2", "--checkpoint") == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert _train(out, "--epochs", "1", "--checkpoint") == 2
    err = capsys.readouterr().err
    assert "already holds a run's checkpoint" in err and "--resume" in err and "--overwrite" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    assert _train(out, "--epochs", "1", "--checkpoint", "--overwrite") == 0
    assert (out / "checkpoint.npz").read_bytes() != before


def test_resume_with_fewer_epochs_than_the_checkpoint_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--epochs", "2", "--checkpoint") == 0
    capsys.readouterr()
    assert _train(out, "--epochs", "1", "--checkpoint", "--resume") == 2
    err = capsys.readouterr().err
    assert "already trained 2 epochs, more than the 1 asked for" in err and "max_epoch" not in err
    assert _train(out, "--epochs", "3", "--checkpoint", "--resume") == 0
    assert "trained 3 epochs" in capsys.readouterr().out


def test_a_checkpoint_of_another_model_does_not_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--epochs", "1", "--checkpoint", "--model", "skipgram") == 0
    capsys.readouterr()
    assert _train(out, "--epochs", "2", "--checkpoint", "--resume", "--model", "cbow") == 2
    err = capsys.readouterr().err
    assert "saved from SkipGram" in err and "CBOW" in err
    assert _train(out, "--epochs", "2", "--checkpoint", "--resume", "--model", "skipgram", "--window", "3") == 2
    assert "window_size=2" in capsys.readouterr().err


def test_each_epoch_is_checkpointed_before_it_is_evaluated(tmp_path, monkeypatch, capsys):
    import tinygrad_nlp.cli as cli

    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("monday\ttuesday\t9\n")

    def broken_evaluation(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(cli, "evaluate_vectors", broken_evaluation)
    out = tmp_path / "run"
    assert _train(out, "--epochs", "2", "--checkpoint", "--eval-word-pairs", str(pairs)) == 1
    from tinygrad_nlp.layers import load_npz

    meta = json.loads(str(load_npz(out / "checkpoint.npz")["meta"]))
    assert meta["epoch"] == 1  # the epoch whose evaluation failed is saved


def test_summary_json_writes_null_for_an_undefined_metric(tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("xyzzy\tplugh\t9\nfoo\tbar\t1\n")  # no pair in the vocabulary: no correlation
    out = tmp_path / "run"
    assert _train(out, "--epochs", "1", "--eval-word-pairs", str(pairs)) == 0
    text = (out / "summary.json").read_text()
    assert "NaN" not in text
    summary = json.loads(text)
    assert summary["eval"][0]["word_pairs_spearman"] is None


def test_a_runs_files_are_one_set_even_when_writing_fails(tmp_path, monkeypatch, capsys):
    import errno

    from tinygrad_nlp.layers import Layer, load_npz

    out = tmp_path / "run"
    assert _train(out, "--epochs", "1") == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}

    def disk_full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(Layer, "save_weights", disk_full)
    assert _train(out, "--epochs", "1", "--hidden", "12") == 1
    assert "weights.npz: No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first  # run 1's set, untouched
    monkeypatch.undo()
    assert _train(out, "--epochs", "1", "--hidden", "12") == 0
    vectors = WordVectors.load_word2vec_format(out / "vectors.txt")
    assert vectors.dim == 12 and load_npz(out / "weights.npz")["in_embed.W"].shape[1] == 12
    assert json.loads((out / "summary.json").read_text())["hidden"] == 12
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_byte_order_mark_is_not_part_of_the_first_word(tmp_path):
    corpus = tmp_path / "bom.txt"
    corpus.write_bytes(b"\xef\xbb\xbf" + b"the cat sat on the mat\n" * 20)
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--min-count", "1", "--window", "1", "--epochs", "1",
                 "--hidden", "4", "--out", str(out), "--quiet"]) == 0
    vectors = WordVectors.load_word2vec_format(out / "vectors.txt")
    assert "the" in vectors and not any(w.startswith("\ufeff") for w in vectors.words)
    text = out / "vectors_bom.txt"
    text.write_bytes(b"\xef\xbb\xbf" + (out / "vectors.txt").read_bytes())
    assert WordVectors.load_word2vec_format(text).words == vectors.words
