"""tinygrad_nlp: a small define-by-run autograd framework for NLP models (word2vec and friends).

Examples:
    >>> import numpy as np
    >>> import tinygrad_nlp as tg
    >>> x = tg.Variable(np.array(2.0))
    >>> y = x ** 4
    >>> y.backward()
    >>> float(x.grad.data)
    32.0
"""

from tinygrad_nlp import core as _core
from tinygrad_nlp.core import (  # noqa: F401
    Config,
    Function,
    Parameter,
    Variable,
    as_array,
    as_variable,
    detect_anomaly,
    no_grad,
    test_mode,
    unrolled,
    using_config,
)
from tinygrad_nlp.errors import TinygradNLPError  # noqa: F401
from tinygrad_nlp.sparse import SparseRows  # noqa: F401
from tinygrad_nlp import functions  # noqa: F401
from tinygrad_nlp import functions as _F

__version__ = "0.1.0"


def _install_operators():
    """Give Variable its arithmetic operators and indexing (they build graph nodes)."""
    V = Variable
    V.__add__ = V.__radd__ = _F.add
    V.__sub__ = _F.sub
    V.__rsub__ = _F.rsub
    V.__mul__ = V.__rmul__ = _F.mul
    V.__truediv__ = _F.div
    V.__rtruediv__ = _F.rdiv
    V.__neg__ = _F.neg
    V.__pow__ = _F.pow
    V.__rpow__ = _F.rpow
    V.__matmul__ = _F.matmul
    V.__rmatmul__ = lambda self, other: _F.matmul(other, self)
    V.__getitem__ = _F.get_item
    _core._F = _F


_install_operators()
