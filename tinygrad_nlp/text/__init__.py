"""The data layer: text -> word ids, vocabularies, context windows, subsampling, negative
sampling and corpus loaders (PTB, any plain-text file, a built-in demo corpus).

Examples:
    >>> from tinygrad_nlp.text import preprocess, create_contexts_target
    >>> corpus, word_to_id, id_to_word = preprocess("You say goodbye and I say hello.")
    >>> contexts, target = create_contexts_target(corpus, window_size=1)
    >>> contexts.shape, target.tolist()
    ((6, 2), [1, 2, 3, 4, 1, 5])

Modules, one job each: ``preprocessing`` (tokenising, ids), ``vocab`` ([`Vocabulary`][Vocabulary]),
``contexts`` ([`create_contexts_target`][create_contexts_target]), ``subsampling`` (frequent-word subsampling),
``sampler`` ([`UnigramSampler`][UnigramSampler]), ``corpora`` ([`load_ptb`][load_ptb]), ``stream`` ([`load_text`][load_text],
``build_id_file``: any text read line by line in bounded memory), ``windows``
(``ContextWindows``: training batches cut from a corpus as they are needed),
``demo`` ([`load_demo`][load_demo], [`demo_text`][demo_text]), ``sequences`` (the addition and date tasks of
sequence-to-sequence models: [`addition`][addition], [`dates`][dates], [`load_seq`][load_seq]).
"""

from tinygrad_nlp.text.contexts import create_contexts_target
from tinygrad_nlp.text.corpora import (
    PTB_BASE_URL,
    PTB_DIR_ENV,
    PTB_FILES,
    PTB_SHA256,
    PTB_TOKENS,
    DownloadError,
    load_ptb,
    load_text,
)
from tinygrad_nlp.text.demo import DEMO_GROUPS, demo_group_of, demo_text, load_demo
from tinygrad_nlp.text.preprocessing import preprocess, tokenize
from tinygrad_nlp.text.sampler import UnigramSampler
from tinygrad_nlp.text.sequences import SeqFormatError, addition, dates, encode_questions, load_seq, split_seq
from tinygrad_nlp.text.subsampling import keep_probabilities, subsample
from tinygrad_nlp.text.vocab import Vocabulary
from tinygrad_nlp.text.windows import ContextWindows
from tinygrad_nlp.text.stream import build_id_file, open_id_file

__all__ = [
    "preprocess",
    "tokenize",
    "create_contexts_target",
    "ContextWindows",
    "build_id_file",
    "open_id_file",
    "Vocabulary",
    "subsample",
    "keep_probabilities",
    "UnigramSampler",
    "load_ptb",
    "load_text",
    "DownloadError",
    "PTB_BASE_URL",
    "PTB_DIR_ENV",
    "PTB_FILES",
    "PTB_SHA256",
    "PTB_TOKENS",
    "load_demo",
    "demo_text",
    "demo_group_of",
    "DEMO_GROUPS",
    "addition",
    "dates",
    "load_seq",
    "split_seq",
    "encode_questions",
    "SeqFormatError",
]
