"""Files written safely and read back: atomic writes, checksums, JSON Lines.

Atomic writes go to a temporary file in the same folder, are fsynced, then ``os.replace``d: a
reader (or a resumed run after SIGKILL) sees either the old file or the complete new one, never a
half-written file. JSON Lines files (``stats.jsonl``, ``diagnostics.jsonl``) are the exception:
they are appended line by line, and :func:`read_jsonl` skips a torn last line.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from ganforge.errors import GanforgeError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Usage: ``with atomic_path(p) as tmp: save(tmp)``. On error the temporary file is removed and
    ``path`` is untouched.

    Raises:
        GanforgeError: one line for a file-system failure: a file where a parent folder should
            be, a folder where the file should be, a full disk, no permission.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise GanforgeError(write_error(path, err)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600 files; give results the usual permissions (0666 minus the umask).
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        # A file-system failure (full disk, lost permission) is the user's to fix: one line.
        # OSErrors without an errno (e.g. Pillow's "cannot write mode ...") are bugs and stay.
        if isinstance(err, OSError) and err.errno is not None:
            raise GanforgeError(write_error(path, err)) from err
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike[str], replace: bool = False) -> Iterator[Path]:
    """A temporary folder beside ``out``, renamed onto it when the block succeeds; on error it
    is removed and ``out`` is untouched.

    Args:
        replace: an existing ``out`` is removed with what it holds; otherwise it must be empty
            (the caller has checked that nothing would be lost).
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise GanforgeError(write_error(out, err)) from None
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
    try:
        yield tmp
        if out.is_dir():
            shutil.rmtree(out) if replace else out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_in_the_way(folder: str | os.PathLike[str]) -> Optional[Path]:
    """The file that stands where ``folder`` or one of its parents should be, or None.

    Writing ``results/run/config.json`` when ``results`` is a file fails with "File exists" or
    "Not a directory" on the way; this finds the file to name instead.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def not_a_folder(blocker: Path) -> str:
    """The one-line message for a file found where an output folder should be."""
    return f"'{blocker}' is a file, not a folder; choose another --out"


def write_error(path: str | os.PathLike[str], err: OSError) -> str:
    """The one-line message for an ``OSError`` raised while writing ``path``."""
    path = Path(path)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"cannot write '{path}': no space left on the device; free some space or "
                "choose another output folder")
    if err.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = file_in_the_way(path.parent)
        if blocker is not None:
            return not_a_folder(blocker)
    if err.errno == errno.EISDIR and path.is_dir():
        return f"'{path}' is a folder, not a file; choose another --out (a file name)"
    return f"cannot write '{path}' ({err.strerror or err}); choose a writable output folder"


def ensure_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and its parents) or raise a one-line :class:`GanforgeError`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = file_in_the_way(path)
        if blocker is None:  # gone again, or not a regular file: say what the system said
            raise GanforgeError(f"cannot create folder '{path}'; choose another --out") from None
        raise GanforgeError(not_a_folder(blocker)) from None
    except OSError as err:
        raise GanforgeError(f"cannot create folder '{path}' ({err.strerror or err}); choose a "
                            "writable output folder") from None
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (weights files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# JSON Lines (stats.jsonl, diagnostics.jsonl): appended line by line, so read torn-tail tolerant
# ---------------------------------------------------------------------------------------------

def parse_jsonl(path: Path) -> list[tuple[bytes, dict[str, Any]]]:
    """Parse a JSONL file into ``(raw_line, record)`` pairs.

    A torn final line (a run killed mid-write) is skipped; a bad line anywhere else means the
    file was damaged some other way, which the user has to look at.
    """
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    # ``lines[-1]`` is b"" when the file ends with a newline, otherwise the unterminated tail.
    complete, tail = lines[:-1], lines[-1]
    parsed: list[tuple[bytes, dict[str, Any]]] = []
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise GanforgeError(
                f"'{path}' line {number} is not valid JSON; fix or delete that line"
            ) from None
        if not isinstance(record, dict):
            raise GanforgeError(f"'{path}' line {number} is not a JSON object; fix or delete it")
        parsed.append((line, record))
    if tail.strip():
        try:
            record = json.loads(tail)
        except ValueError:
            record = None  # torn last line of a killed run
        if isinstance(record, dict):
            parsed.append((tail, record))
    return parsed


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a stats JSONL file (one JSON object per line, as ``stats.jsonl``).

    Args:
        path: the ``.jsonl`` file.

    Returns:
        One dict per complete line, in file order. ``null`` values (non-finite when written)
        come back as ``float('nan')`` so records can be plotted and averaged directly.

    Raises:
        GanforgeError: if the file is missing or a line other than a torn last one is corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise GanforgeError(f"no stats file at '{path}'; check the run folder")
    records = []
    for _, record in parse_jsonl(path):
        records.append({k: (math.nan if v is None else v) for k, v in record.items()})
    return records
