"""Safe files: every file the project writes goes through ``atomic_write``, and ``.npz``
archives of arrays are written and read without pickle (``save_npz`` / ``load_npz``).

The data is written to a temporary file in the destination's directory, flushed and fsynced,
then moved over the destination with ``os.replace`` (atomic on POSIX and Windows). A crash or an
exception mid-write leaves the previous file untouched and no partial file behind. A temporary
file left by a writer that was killed (``kill -9``, power loss) is removed the next time the
same path is written. A replaced file keeps its permission bits, but never setuid, setgid or
sticky bits.

A set of files that belong together (a training run's vectors, weights, vocabulary and
summary) is written with [`FileSet`][tinygrad_nlp.io.FileSet]: into a staging folder first,
then renamed into place, so the set on disk is always one run's, never a mix of two.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO, Any, Callable, Iterable, Optional, Union

import numpy as np

from tinygrad_nlp.errors import TinygradNLPError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["atomic_write", "write_bytes_atomic", "write_text_atomic", "save_npz", "load_npz", "npz_headers",
           "check_loaded", "MAX_MEMBER_BYTES", "figure_and_axes", "finish_figure", "save_figure_atomic", "FileSet",
           "read_json", "to_json", "BOM"]

BOM = "\ufeff"  # the UTF-8 byte-order mark some editors put at the start of a text file

_UMASK = os.umask(0)
os.umask(_UMASK)


def _final_mode(path):
    """Keep an existing file's permission bits (never setuid, setgid or sticky: a file written
    by this library is data); new files get the usual 0666 minus the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return 0o666 & ~_UMASK


def _temp_prefix(path):
    return "." + os.path.basename(path) + "."


# Temporary names: ".NAME.<pid>-<random>.tmp"; the pid tells a live writer's file from a dead one's.
_TEMP_RE = re.compile(r"(\d+)-[^.]*\.tmp$")


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone else's live process (or unknowable): leave its file alone
    return True


def remove_stale_temporaries(path):
    """Delete the temporary files that writers of ``path`` killed mid-write left behind.

    A temporary whose writer is still running is kept (it is about to be renamed into place).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        match = _TEMP_RE.fullmatch(name[len(prefix):])
        if match and _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8). A missing parent
    directory is created (the command line refuses an output file whose directory is missing
    before it gets here). An error names ``path`` (``[Errno 28] No space left on device`` alone
    would not say which file).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write supports modes 'wb' and 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path) + f"{os.getpid()}-", suffix=".tmp", dir=directory)
    except OSError as err:
        raise _naming(err, path) from None
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
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:
            raise _naming(err, path) from None
        raise


def _naming(err, path):
    """The same OSError with ``path`` as its file name, so its message says which file failed."""
    if err.filename is not None or err.errno is None:
        return err
    try:
        return type(err)(err.errno, err.strerror or str(err), path)
    except TypeError:  # an OSError subclass with a constructor of its own
        return err


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


#: Largest member [`load_npz`][tinygrad_nlp.io.load_npz] reads when the caller does not say
#: what shape to expect.
MAX_MEMBER_BYTES = 1 << 30


def load_npz(path: PathLike, expect: Callable[[str], Optional[tuple]] | None = None,
             max_member_bytes: int = MAX_MEMBER_BYTES) -> dict[str, np.ndarray]:
    """Read an ``.npz`` archive into a dict of ndarrays without ever unpickling, in bounded memory.

    ``expect`` (optional) says what the caller can use: a callable ``key -> shape`` (a tuple, or
    None for any shape) that raises ``KeyError`` for a key it does not know. Every member's name
    is checked with it before any member is read, so an unexpected member - however large it
    inflates - is refused without being read, and a member whose header declares another shape
    is refused before its data is read. Each member's data is read in a stream, exactly the
    size its header declares (at most ``max_member_bytes``), and then one more byte must not
    exist.

    A missing file raises ``FileNotFoundError``; anything else that is not a valid archive of
    plain arrays - a truncated or corrupt file, a single ``.npy`` or a pickle, a member whose
    header does not match its data, an object array (which would need pickle, and pickle can
    run code), an unexpected member or shape - raises ``ValueError`` naming the file.
    """
    path = os.fspath(path)
    with _open_npz(path) as f, _archive_errors(path), zipfile.ZipFile(f) as archive:
        members = _members(archive)
        shapes = {}
        if expect is not None:
            unknown = []
            for key in members:
                try:
                    shapes[key] = expect(key)
                except KeyError:
                    unknown.append(key)
            if unknown:
                raise _UnexpectedMembers(sorted(unknown))
        return {key: _read_member(archive, info, shapes.get(key), max_member_bytes)
                for key, info in members.items()}


def npz_headers(path: PathLike) -> dict[str, tuple]:
    """``{key: (shape, dtype)}`` of an ``.npz`` archive's members, from their headers alone.

    No member's data is read, so a caller can check names and shapes against what it expects
    before [`load_npz`][tinygrad_nlp.io.load_npz] reads anything. A damaged file raises like
    ``load_npz``.
    """
    path = os.fspath(path)
    with _open_npz(path) as f, _archive_errors(path), zipfile.ZipFile(f) as archive:
        headers = {}
        for key, info in _members(archive).items():
            with archive.open(info) as member:
                shape, _, dtype = _read_header(member, info.filename)
            headers[key] = (tuple(shape), dtype)
        return headers


@contextlib.contextmanager
def _archive_errors(path):
    """Whatever reading the ``.npz`` archive ``path`` raises, as one ValueError naming the file."""
    try:
        yield
    except _UnexpectedMembers as err:
        raise ValueError(f"{path}: unexpected {err.keys} (refused before reading any member)") from None
    except _ObjectArrayError as err:
        raise ValueError(f"{path}: refusing to load {err} (it would need pickle, which can run code)") from None
    except ValueError as err:
        raise ValueError(f"{path}: not a valid .npz file ({err})") from None
    except _CORRUPT as err:
        raise ValueError(f"{path}: corrupt or truncated .npz file ({type(err).__name__}: {err})") from None


def check_loaded(path: PathLike, key: str, array: np.ndarray, dtype: Any = None) -> None:
    """Refuse what no training run saves: values that are not real floating point, NaN or
    infinite values, or (``dtype`` given) values beyond that dtype's range, which would become
    inf when cast. Raises ``ValueError`` naming the file and the key."""
    if array.dtype.kind != "f":
        raise ValueError(f"{path}: {key!r} holds {array.dtype} values; expected real floating point")
    if array.size and not (np.isfinite(array.min()) and np.isfinite(array.max())):
        raise ValueError(f"{path}: {key!r} holds NaN or infinite values, which no training run saves")
    if dtype is not None and array.size and np.dtype(dtype).itemsize < array.dtype.itemsize:
        if float(np.abs(array).max()) > float(np.finfo(dtype).max):
            raise ValueError(f"{path}: {key!r} holds values beyond the range of {np.dtype(dtype).name}")


def _open_npz(path):
    """The file, checked to start like a zip archive (else ValueError saying what it is)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"no such weights file: {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not an .npz file") from None
    magic = f.read(6)
    if magic[:4] not in _ZIP_MAGIC:
        f.close()
        raise ValueError(f"{path}: not an .npz archive ({_what_is(magic)})")
    f.seek(0)
    return f


def _members(archive):
    """``{key: ZipInfo}``: every member must be an ``.npy`` array, each name once."""
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"unexpected member {info.filename!r} (not an .npy array)")
        key = info.filename[: -len(".npy")]
        if key in members:
            raise ValueError(f"duplicate member {info.filename!r}")
        members[key] = info
    return members


class _UnexpectedMembers(TinygradNLPError, ValueError):
    def __init__(self, keys):
        super().__init__(keys)
        self.keys = keys


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


def _read_header(member, name):
    """``(shape, fortran_order, dtype)`` of an .npy member; refuses object arrays."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"member {name!r}: unsupported .npy format version {version}")
    if dtype.hasobject:
        raise _ObjectArrayError(f"member {name!r}, an object array of dtype {dtype}")
    return shape, fortran, dtype


def _read_member(archive, info, expected_shape=None, max_bytes=MAX_MEMBER_BYTES):
    """One array of the archive, read in a stream: its header is validated (dtype, the expected
    shape, a size within ``max_bytes``) before any data is read, then exactly the bytes the header
    declares are read, and one more must not exist."""
    name = info.filename
    with archive.open(info) as member:
        shape, fortran, dtype = _read_header(member, name)
        if expected_shape is not None and tuple(shape) != tuple(expected_shape):
            raise ValueError(f"member {name!r}: shape {tuple(shape)}, expected {tuple(expected_shape)}")
        count = 1
        for n in shape:
            count *= int(n)
        declared = count * dtype.itemsize
        held = info.file_size - member.tell()  # what the archive claims: a cheap early refusal
        if declared != held:
            raise ValueError(f"member {name!r}: its header declares shape {shape} {dtype} ({declared} bytes) "
                             f"but it holds {held} bytes of data")
        if declared > max_bytes:
            raise ValueError(f"member {name!r}: its header declares {declared:,} bytes, more than the "
                             f"{max_bytes:,} a member may hold")
        raw = np.empty(declared, np.uint8)
        view = memoryview(raw)
        got = 0
        while got < declared:
            n = member.readinto(view[got:got + (1 << 24)])
            if not n:
                raise ValueError(f"member {name!r}: truncated after {got} of its {declared} bytes")
            got += n
        if member.read(1):  # (reading to the end also verifies the member's CRC-32)
            raise ValueError(f"member {name!r}: data after the array")
    return raw.view(dtype).reshape(shape, order="F" if fortran else "C")


def figure_and_axes(ax: Any = None, figsize: tuple[float, float] = (7, 4)) -> tuple[Any, Any]:
    """``(figure, axes)`` to draw a plot on: ``ax`` and its figure when given, else a new
    matplotlib Figure of ``figsize`` inches made without ``pyplot`` (the global backend is never
    switched and no window opens). ImportError with the install line if matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "tinygrad_nlp[plot]"') from None
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, dpi=100)
    return fig, fig.add_subplot()


def finish_figure(fig: Any, path: PathLike | None = None) -> Any:
    """Lay ``fig`` out tightly, save it atomically to ``path`` when given (see
    [`save_figure_atomic`][save_figure_atomic]) and return it."""
    fig.tight_layout()
    if path is not None:
        save_figure_atomic(fig, path)
    return fig


def save_figure_atomic(fig: Any, path: PathLike) -> str:
    """Atomically write a matplotlib Figure to ``path``; the extension picks png, svg or pdf."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"cannot save a figure to {os.fspath(path)!r}: use a .png, .svg or .pdf name")
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format=fmt)
    return os.fspath(path)


def read_json(path: PathLike, missing: str | None = None) -> Any:
    """The JSON value held by the UTF-8 file ``path`` (a run's settings or summary).

    A missing file raises FileNotFoundError, worded as ``missing`` when given (say what should
    have written it); a file that is not UTF-8 JSON raises ValueError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        if missing is None:
            raise
        raise FileNotFoundError(missing) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{os.fspath(path)}: not valid JSON ({err})") from None


def to_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes an undefined number (NaN, inf) as ``null``: bare ``NaN`` is not JSON."""
    return json.dumps(_finite_or_none(obj), allow_nan=False, **kwargs)


def _finite_or_none(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:  # numpy scalars
        return _finite_or_none(obj.item())
    return obj


class FileSet:
    """Write several files of ``directory`` so that they appear together or not at all.

    ::

        with FileSet("runs/ptb", owns=["vectors.txt", "weights.npz", "summary.json"]) as files:
            vectors.save_word2vec_format(files.path("vectors.txt"))
            model.save_weights(files.path("weights.npz"))
            write_text_atomic(files.path("summary.json"), text)

    Each file is written in full into a staging folder inside ``directory``; nothing in
    ``directory`` changes until the block succeeds, so an error, a full disk or Ctrl-C leaves
    the previous set as it was. Then the staging folder is marked complete and its files are
    renamed into place (the last one named in ``owns`` last; a file of ``owns`` the new set does
    not contain is removed, so no file of the previous set stays beside the new one). Should the
    process die during those renames, the next ``FileSet`` on the directory finishes them before
    it starts, and a staging folder that was never completed is deleted.
    """

    _PREFIX = ".fileset-"
    _DONE = "COMPLETE"

    def __init__(self, directory: PathLike, owns: Iterable[str]) -> None:
        self.directory = os.fspath(directory)
        self.owns = list(owns)
        self.staging = None

    def __enter__(self) -> "FileSet":
        try:
            os.makedirs(self.directory, exist_ok=True)
            self.recover(self.directory)
            self.staging = tempfile.mkdtemp(prefix=f"{self._PREFIX}{os.getpid()}-", suffix=".tmp", dir=self.directory)
        except OSError as err:
            raise _naming(err, self.directory) from None
        return self

    def path(self, name: str) -> str:
        """Where to write file ``name`` of the set (inside the staging folder)."""
        if name not in self.owns:
            raise ValueError(f"FileSet: {name!r} is not one of the set's files {self.owns}")
        return os.path.join(self.staging, name)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            return False
        try:
            written = [n for n in self.owns if os.path.exists(os.path.join(self.staging, n))]
            plan = {"files": written, "remove": [n for n in self.owns if n not in written]}
            write_text_atomic(os.path.join(self.staging, self._DONE), json.dumps(plan) + "\n")
            _fsync_dir(self.staging)
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        self._move_into_place(self.directory, self.staging, plan)
        return False

    @classmethod
    def recover(cls, directory: PathLike) -> None:
        """Finish the renames of a completed staging folder; delete any other staging folder."""
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return
        for name in names:
            staging = os.path.join(directory, name)
            if not (name.startswith(cls._PREFIX) and name.endswith(".tmp") and os.path.isdir(staging)):
                continue
            pid = name[len(cls._PREFIX):].partition("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and _pid_alive(int(pid)):
                continue  # another live process is writing its set
            done = os.path.join(staging, cls._DONE)
            plan = None
            with contextlib.suppress(OSError, ValueError):
                with open(done, encoding="utf-8") as f:
                    plan = json.load(f)
            if isinstance(plan, dict) and all(isinstance(plan.get(k), list) for k in ("files", "remove")):
                listed = plan["files"] + plan["remove"]
                if all(isinstance(n, str) and n and os.path.basename(n) == n and not n.startswith(".") for n in listed):
                    cls._move_into_place(directory, staging, plan)
                    continue
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def _move_into_place(cls, directory, staging, plan):
        """Rename the staged files over ``directory``'s; safe to run again after an interruption."""
        files = [n for n in plan["files"] if os.path.exists(os.path.join(staging, n))]  # not yet moved
        last = plan["files"][-1] if plan["files"] else None
        # The last file (the summary) is removed first and renamed last: while the renames run,
        # no summary stands beside a half-replaced set.
        stale = ([last] if last in files else []) + list(plan["remove"])
        for name in stale:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                os.unlink(os.path.join(directory, name))
        for name in [n for n in files if n != last] + ([last] if last in files else []):
            target = os.path.join(directory, name)
            try:
                os.replace(os.path.join(staging, name), target)
            except OSError as err:
                raise _naming(err, target) from None
        _fsync_dir(directory)
        shutil.rmtree(staging, ignore_errors=True)

