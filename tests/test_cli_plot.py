"""tinygrad_nlp.cli_plot: the training command's loss plot, drawn by a helper process."""

import subprocess

import numpy as np
import pytest

from tinygrad_nlp import cli_plot, train

pytest.importorskip("matplotlib")

LOSSES = list(np.linspace(3.0, 1.0, 120) + 0.1 * np.sin(np.arange(120)))


def _no_drawing_here(monkeypatch):
    monkeypatch.setattr(train, "plot_losses", lambda *a, **k: pytest.fail("the loss plot was drawn in this process"))


def test_the_helper_draws_the_loss_curve(tmp_path, monkeypatch):
    _no_drawing_here(monkeypatch)
    path = tmp_path / "loss.png"
    with cli_plot.LossPlotter() as plotter:
        plotter.draw(LOSSES, path, "CBOW on test")
        plotter.finish()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]  # written atomically: no temporary left


def test_it_draws_here_when_the_helper_cannot_start(tmp_path, monkeypatch):
    def no_process(*args, **kwargs):
        raise OSError("no more processes")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    path = tmp_path / "loss.svg"
    with cli_plot.LossPlotter() as plotter:
        plotter.draw(LOSSES, path, "here")
        plotter.finish()
    assert b"<svg" in path.read_bytes()


def test_a_failing_helper_leaves_the_error_to_drawing_here(tmp_path):
    with cli_plot.LossPlotter() as plotter:
        plotter.draw(LOSSES, tmp_path / "loss.txt", "bad name")  # the helper fails on the extension
        with pytest.raises(ValueError, match="use a .png, .svg or .pdf name"):
            plotter.finish()


def test_without_matplotlib_in_the_helper_finish_raises_the_install_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_plot, "_HELPER", "import sys; print('No module named matplotlib', file=sys.stderr); "
                                             f"sys.exit({cli_plot.NO_MATPLOTLIB_STATUS})")
    _no_drawing_here(monkeypatch)
    with cli_plot.LossPlotter() as plotter:
        plotter.draw(LOSSES, tmp_path / "loss.png", "t")
        with pytest.raises(ImportError, match=r'pip install "tinygrad_nlp\[plot\]" \(No module named matplotlib\)'):
            plotter.finish()
    assert not (tmp_path / "loss.png").exists()


def test_leaving_before_drawing_stops_the_helper():
    with cli_plot.LossPlotter() as plotter:
        process = plotter._process
        assert process.poll() is None  # waiting for its losses
    assert process.returncode is not None


def test_leaving_after_asking_for_a_drawing_stops_the_helper(tmp_path):
    with cli_plot.LossPlotter() as plotter:
        process = plotter._process
        plotter.draw(LOSSES, tmp_path / "loss.png", "t")  # then the run fails before finish()
    assert process.returncode is not None and process.stdin.closed and process.stderr.closed
