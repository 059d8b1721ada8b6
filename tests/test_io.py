"""tinygrad_nlp.io: atomic writes (modes, stale temporaries, named errors), file sets, JSON, bounded .npz loading."""

import errno
import json
import os
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tinygrad_nlp.io import FileSet, atomic_write, to_json, write_text_atomic


@pytest.mark.parametrize("bits", [stat.S_ISUID, stat.S_ISGID, stat.S_ISVTX])
def test_replacing_a_file_never_carries_setuid_setgid_or_sticky(tmp_path, bits):
    path = tmp_path / "vocab.json"
    path.write_text("old")
    os.chmod(path, 0o755 | bits)
    if not os.stat(path).st_mode & bits:
        pytest.skip("this file system does not keep the bit")
    write_text_atomic(path, "new")
    mode = os.stat(path).st_mode
    assert path.read_text() == "new"
    assert mode & 0o7000 == 0 and mode & 0o777 == 0o755  # the permission bits are kept, the special ones dropped


def _kill_mid_write(path):
    """A writer of ``path`` killed with SIGKILL while its temporary file is open."""
    code = ("import os, signal, sys\n"
            "from tinygrad_nlp.io import atomic_write\n"
            f"with atomic_write({str(path)!r}, 'wb') as f:\n"
            "    f.write(b'x' * 100000); f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ}, capture_output=True)
    assert result.returncode == -9


def test_stale_temporaries_of_a_killed_writer_are_removed_on_the_next_write(tmp_path):
    path = tmp_path / "vectors.txt"
    _kill_mid_write(path)
    first = [p.name for p in tmp_path.iterdir()]
    assert len(first) == 1 and first[0].startswith(".vectors.txt.")  # what kill -9 leaves
    _kill_mid_write(path)
    second = [p.name for p in tmp_path.iterdir()]
    assert len(second) == 1 and second != first  # the next writer removed it (and was killed in turn)
    (tmp_path / ".other.txt.123-abc.tmp").write_text("another file's temporary")
    write_text_atomic(path, "done")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.123-abc.tmp", "vectors.txt"]


def test_a_live_writers_temporary_is_left_alone(tmp_path):
    path = tmp_path / "w.bin"
    with atomic_write(path, "wb") as f:  # our own temporary, still open
        f.write(b"a")
        write_text_atomic(path, "concurrent")  # another write of the same path meanwhile
        assert any(p.name.startswith(".w.bin.") for p in tmp_path.iterdir())
    assert path.read_bytes() == b"a"


def test_write_errors_name_the_file(tmp_path, monkeypatch):
    path = tmp_path / "weights.npz"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left on device") as info:
        write_text_atomic(path, "data")
    assert str(path) in str(info.value)
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_to_json_writes_null_for_undefined_numbers():
    text = to_json({"spearman": float("nan"), "loss": [1.5, float("inf")], "n": np.float32("nan"), "ok": 2})
    assert json.loads(text) == {"spearman": None, "loss": [1.5, None], "n": None, "ok": 2}
    assert "NaN" not in text and "Infinity" not in text


OWNS = ["vectors.txt", "weights.npz", "loss.png", "summary.json"]


def _write_set(directory, tag, names=OWNS):
    with FileSet(directory, owns=OWNS) as files:
        for name in names:
            write_text_atomic(files.path(name), f"{tag} {name}")


def _contents(directory):
    return {p.name: p.read_text() for p in directory.iterdir()}


def test_a_file_set_appears_whole(tmp_path):
    _write_set(tmp_path, "run1")
    assert _contents(tmp_path) == {n: f"run1 {n}" for n in OWNS}
    _write_set(tmp_path, "run2", names=["vectors.txt", "weights.npz", "summary.json"])
    # run 1's loss.png does not stay beside run 2's files
    assert _contents(tmp_path) == {n: f"run2 {n}" for n in ("vectors.txt", "weights.npz", "summary.json")}


def test_a_file_set_that_fails_midway_leaves_the_previous_set(tmp_path):
    _write_set(tmp_path, "run1")
    with pytest.raises(OSError, match="disk full"):
        with FileSet(tmp_path, owns=OWNS) as files:
            write_text_atomic(files.path("vectors.txt"), "run2 vectors.txt")
            raise OSError(errno.ENOSPC, "disk full")
    assert _contents(tmp_path) == {n: f"run1 {n}" for n in OWNS}


def test_a_file_set_interrupted_between_renames_is_completed_by_the_next_writer(tmp_path, monkeypatch):
    _write_set(tmp_path, "run1")
    real_replace = os.replace
    calls = []

    def dies_on_second_rename(src, dst):
        if os.path.dirname(os.fspath(dst)) == str(tmp_path):  # a rename into the run's folder
            calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process stops between two renames
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        _write_set(tmp_path, "run2")
    monkeypatch.setattr(os, "replace", real_replace)
    listed = _contents_without_staging(tmp_path)
    assert "summary.json" not in listed  # no summary stands beside a mixed set
    FileSet.recover(tmp_path)
    assert _contents(tmp_path) == {n: f"run2 {n}" for n in OWNS}


def _contents_without_staging(directory):
    return {p.name: p.read_text() for p in directory.iterdir() if p.is_file()}


def test_an_unfinished_staging_folder_is_deleted(tmp_path):
    staging = tmp_path / ".fileset-999999999-x.tmp"
    staging.mkdir()
    (staging / "vectors.txt").write_text("half")
    _write_set(tmp_path, "run1")
    assert _contents(tmp_path) == {n: f"run1 {n}" for n in OWNS}


# ----- .npz loading is bounded in memory -----
_PEAK_SCRIPT = r"""
import sys, zipfile
import numpy as np
from tinygrad_nlp.models import CBOW
from tinygrad_nlp.optimizers import Adam
from tinygrad_nlp.train import Trainer

def peak_kib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1])

model = CBOW(50, 8, 2, np.arange(50), seed=0)
trainer = Trainer(model, Adam().setup(model), progress=False)
load = model.load_weights if sys.argv[2] == "weights" else trainer.load_checkpoint
before = peak_kib()
try:
    load(sys.argv[1])
except ValueError as err:
    print("refused:", str(err)[:300])
print("grew_kib", peak_kib() - before)
"""


def _add_inflating_member(path, name, size):
    """Append a member of ``size`` zero bytes (a few hundred KiB once compressed)."""
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            header = b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little")
            text = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % (size - 128)
            member.write(header + (text + " " * (117 - len(text)) + "\n").encode())
            chunk, left = bytes(1 << 24), size - 128
            while left:
                member.write(chunk[:left])
                left -= min(left, len(chunk))


@pytest.mark.parametrize("kind", ["weights", "checkpoint"])
def test_an_unexpected_member_is_refused_before_it_is_read(tmp_path, kind):
    from tinygrad_nlp.models import CBOW
    from tinygrad_nlp.optimizers import Adam
    from tinygrad_nlp.train import Trainer

    model = CBOW(50, 8, 2, np.arange(50), seed=0)
    path = tmp_path / f"{kind}.npz"
    if kind == "weights":
        model.save_weights(path)
    else:
        trainer = Trainer(model, Adam().setup(model), progress=False)
        trainer.rng = np.random.default_rng(0)
        trainer.save_checkpoint(path)
    _add_inflating_member(path, "junk.npy", 160 << 20)  # 160 MiB once inflated
    assert path.stat().st_size < 4 << 20
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(path), kind], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "refused:" in result.stdout and "unexpected ['junk']" in result.stdout, result.stdout
    grew_mib = int(result.stdout.split("grew_kib")[1]) / 1024
    assert grew_mib < 100, f"refusing the file took {grew_mib:.0f} MiB"
