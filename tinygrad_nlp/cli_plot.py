"""The training command's loss plot, drawn by a helper process.

Importing matplotlib takes about half a second, a visible share of a run that trains PTB in a
few seconds. ``LossPlotter()`` starts a Python process at once, which imports matplotlib while
this one reads the corpus and trains (the corpus is read on one core; the other is idle).
``draw(losses, path, title)`` then hands it the per-step losses as JSON, and it draws ``path``
([`plot_losses`][tinygrad_nlp.train.plot_losses]'s figure) while this process writes the vectors;
``finish()`` waits for it. If the helper cannot start or fails, the plot is drawn here instead;
without matplotlib, ``finish`` raises the ImportError that drawing here would raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence

from tinygrad_nlp.io import PathLike

__all__ = ["LossPlotter", "NO_MATPLOTLIB_STATUS"]

#: The helper's exit status when matplotlib cannot be imported (its message is on stderr).
NO_MATPLOTLIB_STATUS = 3

_HELPER = f"""
import json, sys
try:
    import matplotlib.figure  # noqa: F401 - the slow import, done before the losses arrive
    from matplotlib.backends import backend_agg  # noqa: F401
except ImportError as err:
    print(err, file=sys.stderr)
    sys.exit({NO_MATPLOTLIB_STATUS})
from tinygrad_nlp.train import plot_losses
request = json.load(sys.stdin)
plot_losses(request["losses"], request["path"], title=request["title"])
"""


class LossPlotter:
    """A helper process that draws a loss curve (see the module docstring)."""

    def __init__(self) -> None:
        import tinygrad_nlp

        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(tinygrad_nlp.__file__)))
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_parent + (os.pathsep + path if path else "")}
        try:
            self._process = subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        except OSError:
            self._process = None
        self._request = None

    def draw(self, losses: Sequence[float], path: PathLike, title: str) -> None:
        """Hand the helper the curve of ``losses`` to draw to ``path`` (png, svg or pdf, written
        atomically); [`finish`][finish] waits for it."""
        self._request = (list(losses), path, title)
        if self._process is not None:
            request = json.dumps({"losses": [float(x) for x in losses], "path": os.fspath(path), "title": title})
            try:
                self._process.stdin.write(request.encode("utf-8"))
                self._process.stdin.close()
            except OSError:  # the helper has gone (finish finds out why)
                pass

    def finish(self) -> None:
        """Wait for the drawing asked for by [`draw`][draw]; draw it here if the helper could not."""
        from tinygrad_nlp.train import plot_losses

        process, self._process = self._process, None
        losses, path, title = self._request
        if process is not None:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            err = process.stderr.read().decode("utf-8", "replace").strip()
            process.stderr.close()
            if process.returncode == 0:
                return
            if process.returncode == NO_MATPLOTLIB_STATUS:
                raise ImportError(f'plotting needs matplotlib: pip install "tinygrad_nlp[plot]" ({err})')
        plot_losses(losses, path, title=title)  # the helper could not draw it: draw it here

    def close(self) -> None:
        """Stop the helper if it is still waiting (the run failed before its plot)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            for pipe in (process.stdin, process.stderr):
                try:
                    pipe.close()
                except OSError:  # a request it never read: nothing to flush it to
                    pass

    def __enter__(self) -> LossPlotter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
