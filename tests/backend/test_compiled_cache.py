"""The optimizers' compiled update kernels are loaded from numba's disk cache in a new process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinygrad_nlp.backend import compiled

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, numpy as np
from tinygrad_nlp.backend import compiled
from tinygrad_nlp.optimizers import SGD, Adam
out = {}
for cls, hyper in ((Adam, (0.9, 0.999, 0.1, 0.001, 1e-8, 0.01, 0.0)), (SGD, (0.5, 0.0))):
    data = np.ones((6, 3), np.float32)
    states = [np.zeros_like(data) for _ in cls(lr=0.1).init_state(type("P", (), {"data": data})()).values()]
    assert compiled.update_rows(cls.rule, data, states, np.array([1, 4]), np.ones((2, 3), np.float32),
                                np.array(hyper, np.float32))
    stats = compiled._update_kernels[cls.rule].stats
    out[cls.__name__] = [sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), data[1].tolist()]
print(json.dumps(out))
"""


@pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")
def test_a_second_process_loads_every_update_kernel_from_the_cache():
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env,
                                      check=True, timeout=300).stdout.strip().splitlines()[-1]) for _ in range(2)]
    for name in ("Adam", "SGD"):
        hits, misses, row = runs[1][name]
        assert (hits, misses) == (1, 0), name  # compiled once (by the first run or earlier), then loaded
        assert row == runs[0][name][2]  # and the loaded code computes the same update
    assert runs[1]["Adam"][2] != runs[1]["SGD"][2]  # two rules never share one cached kernel


def test_kernel_names_follow_the_rule_and_its_code():
    def rule(w, g, h):
        return w - h[0] * g

    def other(w, g, h):
        return w - h[0] * g * 2

    tag = compiled._rule_tag(rule)
    assert tag != compiled._rule_tag(other) and tag == compiled._rule_tag(rule)
    assert tag.isidentifier() and "test_kernel_names_follow_the_rule_and_its_code__locals__rule_" in tag
