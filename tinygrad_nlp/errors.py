"""The library's own exception classes share one base, [`TinygradNLPError`][TinygradNLPError].

``except tinygrad_nlp.TinygradNLPError`` catches every error the library defines, while each
class also derives from the built-in a caller would expect (``ValueError``, ``OSError`` ...), so
code that catches those keeps working.
"""

from __future__ import annotations

__all__ = ["TinygradNLPError"]


class TinygradNLPError(Exception):
    """Base class of every exception class that tinygrad_nlp defines."""
