"""Sequence-to-sequence models on character tasks (the book's chapters 7 and 8, and past them).

* [`networks`][tinygrad_nlp.seq2seq.networks]: ``Seq2seq``, ``PeekySeq2seq``, ``AttentionSeq2seq``.
* [`decoding`][tinygrad_nlp.seq2seq.decoding]: greedy decoding and beam search, batched.
* [`evaluation`][tinygrad_nlp.seq2seq.evaluation]: exact-match accuracy and a sample with mistakes marked.

The tasks themselves (addition, dates, files in the book's layout) are in
[`tinygrad_nlp.text.sequences`][tinygrad_nlp.text.sequences].
"""

from tinygrad_nlp.seq2seq.decoding import beam_search, greedy
from tinygrad_nlp.seq2seq.evaluation import accuracy, format_samples, predict
from tinygrad_nlp.seq2seq.networks import CELLS, MODELS, AttentionSeq2seq, PeekySeq2seq, Seq2seq

__all__ = ["Seq2seq", "PeekySeq2seq", "AttentionSeq2seq", "MODELS", "CELLS", "greedy", "beam_search",
           "accuracy", "predict", "format_samples"]
