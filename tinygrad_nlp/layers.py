"""Layers: containers of Parameters with a forward pass, saved and loaded without pickle.

A ``Layer`` notices every ``Parameter`` or sub-``Layer`` assigned to one of its attributes, so
``params()`` finds all weights of a model without any registration code. Weights are saved as a
plain ``.npz`` archive keyed by dotted attribute paths (``"in_embed.W"``), written atomically
and loaded with ``allow_pickle=False`` after checking names, shapes and dtypes.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib

import numpy as np

import tinygrad_nlp.functions as F
from tinygrad_nlp.core import Parameter
from tinygrad_nlp.io import atomic_write

__all__ = ["Layer", "Linear", "Embedding", "load_npz", "save_npz"]


class Layer:
    """Base class: assign Parameters and Layers as attributes, implement ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_children", [])

    def __setattr__(self, name, value):
        if isinstance(value, (Parameter, Layer)):
            children = self.__dict__.get("_children")
            if children is None:
                raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() before assigning {name!r}")
            if name not in children:
                children.append(name)
        super().__setattr__(name, value)

    def __delattr__(self, name):
        super().__delattr__(name)
        if name in self._children:
            self._children.remove(name)

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def named_params(self, prefix=""):
        """``{"sub.W": Parameter, ...}`` for this layer and its sub-layers, in assignment order."""
        out = {}
        for name in self._children:
            value = self.__dict__.get(name)
            if isinstance(value, Parameter):
                out[prefix + name] = value
            elif isinstance(value, Layer):
                out.update(value.named_params(prefix + name + "."))
        return out

    def params(self):
        """Every Parameter of this layer and its sub-layers (each once)."""
        seen = set()
        for p in self.named_params().values():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def cleargrads(self):
        """Reset the gradient of every Parameter (call before each backward pass)."""
        for p in self.params():
            p.cleargrad()

    def save_weights(self, path):
        """Write every Parameter to ``path`` as an ``.npz`` archive, atomically."""
        save_npz(path, {k: p.data for k, p in self.named_params().items()})

    def load_weights(self, path):
        """Load Parameters saved by :meth:`save_weights`, checking names, shapes and dtypes.

        Raises ``ValueError`` naming the file and listing missing, unexpected or mis-shaped
        arrays; nothing is modified unless every array fits.
        """
        arrays = load_npz(path)
        params = self.named_params()
        missing = sorted(set(params) - set(arrays))
        extra = sorted(set(arrays) - set(params))
        wrong = [
            f"{k}: file {arrays[k].shape} {arrays[k].dtype}, model {p.data.shape} {p.data.dtype}"
            for k, p in params.items()
            if k in arrays and (arrays[k].shape != p.data.shape or arrays[k].dtype.kind != p.data.dtype.kind)
        ]
        if missing or extra or wrong:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if extra:
                parts.append(f"unexpected {extra}")
            if wrong:
                parts.append("wrong shape/dtype: " + "; ".join(wrong))
            raise ValueError(f"{path}: weights do not match {type(self).__name__}: " + ", ".join(parts))
        for k, p in params.items():
            p.data = arrays[k].astype(p.data.dtype, copy=False)


def save_npz(path, arrays):
    """Atomically write a dict of ndarrays as an uncompressed ``.npz`` (no pickled objects)."""
    for k, a in arrays.items():
        if np.asarray(a).dtype.hasobject:
            raise TypeError(f"cannot save {k!r}: object arrays would need pickle")
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path):
    """Read an ``.npz`` archive into a dict of ndarrays without ever unpickling.

    A missing file raises ``FileNotFoundError``; anything else that is not a valid archive of
    plain arrays - a truncated or corrupt file, a single ``.npy`` or a pickle, a member whose
    header does not match its size, an object array (which would need pickle, and pickle can
    run code) - raises ``ValueError`` naming the file. Each member's header is checked against
    its size before any array is allocated, so a corrupt header cannot ask for terabytes.
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such weights file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not an .npz file") from None
    with f:
        magic = f.read(6)
        if magic[:4] not in _ZIP_MAGIC:
            raise ValueError(f"{path}: not an .npz archive ({_what_is(magic)})")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as archive:
                arrays = {}
                for info in archive.infolist():
                    if not info.filename.endswith(".npy"):
                        raise ValueError(f"unexpected member {info.filename!r} (not an .npy array)")
                    key = info.filename[: -len(".npy")]
                    if key in arrays:
                        raise ValueError(f"duplicate member {info.filename!r}")
                    arrays[key] = _read_member(archive, info)
                return arrays
        except _ObjectArrayError as err:
            raise ValueError(f"{path}: refusing to load {err} (it would need pickle, which can run code)") from None
        except ValueError as err:
            raise ValueError(f"{path}: not a valid .npz file ({err})") from None
        except _CORRUPT as err:
            raise ValueError(f"{path}: corrupt or truncated .npz file ({type(err).__name__}: {err})") from None


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# What reading a damaged zip archive or .npy header can raise besides ValueError.
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, IndexError, struct.error,
            NotImplementedError, RuntimeError, OverflowError, TypeError)


class _ObjectArrayError(ValueError):
    pass


def _what_is(magic):
    if magic.startswith(b"\x93NUMPY"):
        return "it is a single .npy array; save a dict of arrays with save_npz"
    if magic[:1] == b"\x80":
        return "it looks like a pickle, which is never loaded because it can run code"
    if not magic:
        return "the file is empty"
    return f"it does not start with the zip signature: first bytes {magic!r}"


def _read_member(archive, info):
    """One array of the archive; its header is validated before the data is read."""
    name = info.filename
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:
            raise ValueError(f"member {name!r}: unsupported .npy format version {version}")
        if dtype.hasobject:
            raise _ObjectArrayError(f"member {name!r}, an object array of dtype {dtype}")
        count = 1
        for n in shape:
            count *= int(n)
        declared, held = count * dtype.itemsize, info.file_size - member.tell()
        if declared != held:
            raise ValueError(f"member {name!r}: its header declares shape {shape} {dtype} ({declared} bytes) "
                             f"but it holds {held} bytes of data")
    with archive.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
        if member.read(1):  # (reading to the end also verifies the member's CRC-32)
            raise ValueError(f"member {name!r}: data after the array")
    return array


class Linear(Layer):
    """``y = x @ W + b`` with ``W`` (in_size, out_size) and optional bias (out_size,)."""

    def __init__(self, in_size, out_size, nobias=False, dtype=np.float32, W=None, rng=None):
        super().__init__()
        rng = np.random.default_rng(rng)
        if W is None:
            W = rng.standard_normal((in_size, out_size)) * np.sqrt(1.0 / in_size)
        W = np.asarray(W, dtype=dtype)
        if W.shape != (in_size, out_size):
            raise ValueError(f"Linear: W must have shape {(in_size, out_size)}, got {W.shape}")
        self.W = Parameter(W, name="W")
        self.b = None if nobias else Parameter(np.zeros(out_size, dtype=dtype), name="b")

    def forward(self, x):
        return F.linear(x, self.W, self.b)


class Embedding(Layer):
    """A (vocab_size, dim) lookup table: ``layer(idx)`` returns ``W[idx]``.

    ``sparse=True`` makes ``W``'s gradient row-sparse (only the looked-up rows), which keeps the
    optimizer's work proportional to the batch. ``scale`` sets the initial N(0, scale^2) weights
    (the book uses 0.01); pass ``W`` to start from given weights.
    """

    def __init__(self, vocab_size, dim, sparse=False, dtype=np.float32, scale=0.01, W=None, rng=None, name="W"):
        super().__init__()
        if W is None:
            W = np.random.default_rng(rng).standard_normal((vocab_size, dim)) * scale
        W = np.asarray(W, dtype=dtype)
        if W.shape != (vocab_size, dim):
            raise ValueError(f"Embedding: W must have shape {(vocab_size, dim)}, got {W.shape}")
        self.W = Parameter(W, name=name)
        self.sparse = sparse

    def forward(self, idx):
        return F.embedding(self.W, idx, sparse=self.sparse)

    def bag(self, idx, mode="mean", weights=None):
        """Average (or sum) the rows named in each row of ``idx`` (N, C) -> (N, H), one node
        (optionally weighted per id, see ``F.embedding_bag``)."""
        return F.embedding_bag(self.W, idx, mode=mode, sparse=self.sparse, weights=weights)

    def dot(self, h, idx):
        """Scores ``W[idx[n]] . h[n]`` for (N,) or (N, K) ids."""
        return F.embedding_dot(self.W, h, idx, sparse=self.sparse)
