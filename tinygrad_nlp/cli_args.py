"""Checking the command line's arguments: argparse types whose errors name the flag, and
``add_command``, which gives a subcommand ``--debug``, defaults in ``--help`` and one-line
errors. Every subcommand module (``cli``, ``cli_lm``) declares its
flags with these; see ``cli`` for the pattern.
"""

from __future__ import annotations

import argparse
import codecs
import math
import os
import re

from tinygrad_nlp.errors import TinygradNLPError

__all__ = ["PROG", "UsageError", "add_command", "count", "positive", "non_negative", "fraction", "text_encoding",
           "existing_file", "existing_dir", "output_file", "output_dir", "corpus_spec"]

PROG = "tinygrad-nlp"


# ----- argument checking: argparse types whose errors name the flag -----
class UsageError(TinygradNLPError, ValueError):
    """A mistake on the command line; ``main`` prints it as one line and exits with status 2."""


def _typed(name, parse):
    parse.__name__ = name  # argparse names the type in its "invalid ... value" fallback
    return parse


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a number'} (got {text})") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {text})")
    return value


def count(minimum=1):
    """An integer >= ``minimum`` (sizes, epochs, seeds)."""
    def parse(text):
        value = _number(text, int)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum} (got {text})")
        return value
    return _typed(f"integer >= {minimum}", parse)


def positive(text):
    """A finite float > 0 (learning rates, norms, thresholds)."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def non_negative(text):
    """A finite float >= 0 (weight decay)."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {text})")
    return value


def fraction(text):
    """A float in [0, 1) (momentum, Adam's betas)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1) (got {text})")
    return value


def text_encoding(text):
    """The name of a text encoding Python knows (``utf-8``, ``latin-1``...)."""
    try:
        info = codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(f"is not a known text encoding (got {text}); try utf-8 or latin-1") from None
    if not getattr(info, "_is_text_encoding", True):
        raise argparse.ArgumentTypeError(f"is not a text encoding (got {text})")
    return text


def existing_file(text):
    """A path to a file that exists."""
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    return text


def existing_dir(text):
    """A path to a directory that exists."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no such directory: {text}")
    return text


def output_file(text):
    """A file to write whose directory already exists (no directory is created by surprise)."""
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"directory {os.path.dirname(text) or directory} does not exist")
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name such as {os.path.join(text, 'graph.svg')}")
    return text


def output_dir(text):
    """A directory to write into (created if missing), not an existing file."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory")
    return text


def corpus_spec(text):
    """"demo", "ptb", "ptb:SPLIT" or a text file that exists."""
    if text in ("demo", "ptb"):
        return text
    if text.startswith("ptb:"):
        split = text.split(":", 1)[1]
        if split not in ("train", "valid", "test"):
            raise argparse.ArgumentTypeError(f"names an unknown PTB split {split!r}: use ptb:train, ptb:valid or ptb:test")
        return text
    return existing_file(text)


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line that start with the flag as typed."""

    def error(self, message):
        m = re.fullmatch(r"argument ([^:/\s]+)(?:/\S+)?: (.*)", message, flags=re.S)
        if m:
            flag, problem = m.groups()
            joiner = " " if re.match(r"(must|is|names) ", problem) else ": "
            message = f"{flag}{joiner}{problem}"
        self.exit(2, f"{self.prog}: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default unless it has none (None) or is an off switch."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or "default:" in text or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            return text
        return text + " (default: %(default)s)"


def add_command(sub, name, func, help, check=None, description=None):
    """Register subcommand ``name`` running ``func(args) -> exit status``; returns its parser.

    The parser has ``--debug`` and shows defaults in ``--help``; ``check(args)`` (optional)
    validates combinations of flags before ``func`` runs, raising ``UsageError``.
    """
    p = sub.add_parser(name, help=help, description=description or help, formatter_class=_HelpFormatter)
    p.add_argument("--debug", action="store_true", help="show the full traceback when something fails")
    p.set_defaults(func=func, check=check, prog=p.prog)
    return p
