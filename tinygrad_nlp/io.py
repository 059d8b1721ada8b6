"""Safe files: every file the project writes goes through ``atomic_write``, and ``.npz``
archives of arrays are written and read without pickle (``save_npz`` / ``load_npz``).

The data is written to a temporary file in the destination's directory, flushed and fsynced,
then moved over the destination with ``os.replace`` (atomic on POSIX and Windows). A crash or an
exception mid-write leaves the previous file untouched and no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, Union

import numpy as np

from tinygrad_nlp.errors import TinygradNLPError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic", "save_npz", "load_npz",
           "save_figure_atomic"]

_UMASK = os.umask(0)
os.umask(_UMASK)


def _final_mode(path):
    """Keep an existing file's permissions; new files get the usual 0666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports modes 'wb' and 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        if mode == "w":
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
        else:
            f = os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _final_mode(path))
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(directory):
    """Persist the rename itself (best effort; not supported on every platform)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Atomically replace ``path`` with ``data`` (bytes)."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text``."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def save_npz(path: PathLike, arrays: dict[str, Any]) -> None:
    """Atomically write a dict of ndarrays as an uncompressed ``.npz`` (no pickled objects)."""
    for k, a in arrays.items():
        if np.asarray(a).dtype.hasobject:
            raise TypeError(f"cannot save {k!r}: object arrays would need pickle")
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def load_npz(path: PathLike) -> dict[str, np.ndarray]:
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


class _ObjectArrayError(TinygradNLPError, ValueError):
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


def save_figure_atomic(fig: Any, path: PathLike) -> str:
    """Atomically write a matplotlib Figure to ``path``; the extension picks png, svg or pdf."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"cannot save a figure to {os.fspath(path)!r}: use a .png, .svg or .pdf name")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt)
    return os.fspath(path)
