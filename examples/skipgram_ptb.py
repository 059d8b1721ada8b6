"""Skip-gram with negative sampling on the Penn Treebank with the PTB recipe, then an evaluation.

The same pipeline as cbow_ptb.py (same options, same outputs) with the other model: the centre
word's vector predicts each of its 2 x window context words, plus 5 negatives per context word.
Each epoch does about 10 times CBOW's work, so expect it to take correspondingly longer.

    python examples/skipgram_ptb.py --ptb-dir /path/to/ptb
    python examples/skipgram_ptb.py --ptb-dir /path/to/ptb --epochs 1 --max-steps 20 --out /tmp/sg
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cbow_ptb import run  # noqa: E402  (the shared pipeline, next to this file)


def main(argv=None):
    return run("skipgram", argv)


if __name__ == "__main__":
    sys.exit(main())
