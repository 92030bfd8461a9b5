"""Checked files: a JSON record that names a safetensors file and its SHA-256, read and verified.

Checkpoints (``checkpoints/step_N.json`` beside ``step_N.safetensors``), domain evaluators
(``NAME.json`` beside ``NAME.safetensors``) and hub exports (``config.json`` beside
``model.safetensors``) are each a small JSON record next to a tensors file whose SHA-256 the
record holds. This module reads such a pair, the same way for all of them:

1. the record: UTF-8 JSON holding an object, marked as this kind of file, with a format version
   no newer than the newest this ganforge understands, and every key the kind requires;
2. the tensors file: looked up by its file name only, in the record's folder, so a crafted record
   cannot make ganforge read a file anywhere else;
3. its checksum: the file is hashed in 1 MiB chunks (a large file is never held twice) and
   compared with the record's;
4. the tensors: loaded by ``safetensors``, which parses a JSON header and raw bytes and never
   unpickles. A file that starts like a pickle (or a ``torch.save`` zip) is refused before a byte
   past its first few is read.

Every problem raises :class:`CheckedFileError` (a :class:`~ganforge.errors.CheckpointError`)
whose message is one line: the file, what is wrong with it, and what to do. :class:`FileKind`
holds each caller's words for those ("checkpoint" and "use an earlier checkpoint", ...).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from ganforge import fileio
from ganforge.errors import CheckpointError

if TYPE_CHECKING:
    import torch

SHA256_KEY = "sha256"
TENSORS_KEY = "tensors_file"
VERSION_KEY = "format_version"
UPGRADE = "upgrade ganforge"  # the fix for a file newer than this ganforge, whatever its kind

# What an object read from JSON is called in a message about a record that is not an object.
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


@dataclass(frozen=True)
class FileKind:
    """One kind of checked file: the caller's words for it and what its records must hold.

    Attributes:
        noun: what the file is called in messages: "checkpoint", "evaluator", "hub export".
        fix: what to do about a damaged file of this kind: "use an earlier checkpoint".
        instead: what to do when a path holds no file of this kind (nothing there, or another
            kind of JSON): "pass a run folder or a checkpoints/step_*.json file".
        format_version: the newest format version this ganforge understands.
        required: keys every record must have; ``sha256`` and ``tensors_file`` (unless
            ``tensors_name`` is given) are always required.
        mark: a (key, value) pair every record of this kind carries, e.g. ("kind",
            "ganforge-evaluator"); None when a ``format_version`` key is mark enough.
        tensors_name: the tensors file's fixed name, for a layout that fixes it (a hub export's
            ``model.safetensors``); None: the record's ``tensors_file`` names it.
        mismatch: how a checksum mismatch is put, after the file's name.
    """

    noun: str
    fix: str
    instead: str
    format_version: int
    required: tuple[str, ...] = ()
    mark: Optional[tuple[str, Any]] = None
    tensors_name: Optional[str] = None
    mismatch: str = "fails its checksum (truncated or corrupt)"


class CheckedFileError(CheckpointError):
    """A checked file that cannot be used; ``str(err)`` is ``"<reason>; <fix>"``, one line.

    Attributes:
        path: the file at fault (the record, or the tensors file).
        code: what went wrong, for callers that word it their own way: "not_found",
            "unreadable", "not_json", "foreign", "version", "newer", "incomplete",
            "tensors_missing", "tensors_unreadable", "pickle", "checksum", "not_safetensors"
            or "changed".
        reason: the file and its problem, without the fix.
        fix: what the user can do about it.
    """

    def __init__(self, path: Path, code: str, reason: str, fix: str) -> None:
        super().__init__(f"{reason}; {fix}")
        self.path, self.code, self.reason, self.fix = path, code, reason, fix


class Checked(NamedTuple):
    """A record and its tensors, verified: what :func:`read_checked` returns."""

    record: dict[str, Any]
    tensors_path: Path
    tensors: dict[str, torch.Tensor]
    sha256: str


# ---------------------------------------------------------------------------------------------
# The record
# ---------------------------------------------------------------------------------------------

def read_record(json_path: str | os.PathLike[str], kind: FileKind) -> dict[str, Any]:
    """The JSON record at ``json_path``, checked for its kind, version and required keys.

    Raises:
        CheckedFileError: the file is missing or unreadable, not JSON, not an object, another
            kind of file, of an invalid or newer format version, or lacks a required key.
    """
    path = Path(json_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckedFileError(path, "not_found", f"{kind.noun} '{path}' not found",
                               kind.instead) from None
    except OSError as err:
        raise CheckedFileError(path, "unreadable", f"cannot read {kind.noun} '{path}' "
                               f"({err.strerror or type(err).__name__})", kind.instead) from None
    try:
        # Decoded first: json.loads would also guess UTF-16 or UTF-32 from bytes.
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, nesting
        raise CheckedFileError(path, "not_json", f"{kind.noun} '{path}' is not valid JSON "
                               f"({type(err).__name__})", kind.fix) from None
    if not isinstance(record, dict):
        what = _JSON_TYPES.get(type(record), type(record).__name__)
        raise CheckedFileError(path, "foreign", f"'{path}' is not a ganforge {kind.noun} (its "
                               f"JSON is {what}, not an object)", kind.instead)
    key, value = kind.mark or (VERSION_KEY, None)
    if key not in record or (kind.mark is not None and record[key] != value):
        raise CheckedFileError(path, "foreign", f"'{path}' is not a ganforge {kind.noun}",
                               kind.instead)
    _check_version(path, record, kind)
    wanted = dict.fromkeys((*kind.required, SHA256_KEY)
                           + ((TENSORS_KEY,) if kind.tensors_name is None else ()))
    lacking = [k if k not in record else f"a valid {k}" for k in wanted
               if k not in record or not _valid(k, record[k])]
    if lacking:
        raise CheckedFileError(path, "incomplete", f"{kind.noun} '{path}' lacks "
                               f"{', '.join(lacking)}", kind.fix)
    return record


def _check_version(path: Path, record: dict[str, Any], kind: FileKind) -> None:
    """Refuse a record whose format version is not a positive integer or is too new to read."""
    version = record.get(VERSION_KEY)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckedFileError(path, "version", f"{kind.noun} '{path}' has no valid format "
                               f"version ({version!r})", kind.fix)
    if version > kind.format_version:
        raise CheckedFileError(path, "newer", f"{kind.noun} '{path}' has format version "
                               f"{version}, newer than this ganforge understands "
                               f"({kind.format_version})", UPGRADE)


def _valid(key: str, value: Any) -> bool:
    """Whether a key the reader itself uses holds something it can use."""
    if key == SHA256_KEY:
        return isinstance(value, str) and len(value) == 64 and \
            all(c in "0123456789abcdef" for c in value)
    if key == TENSORS_KEY:
        return _file_name(value) is not None
    return True


def _file_name(value: Any) -> Optional[str]:
    """The last component of a recorded path (either kind of slash), or None if it has none."""
    if not isinstance(value, str):
        return None
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    return None if name in ("", ".", "..") or "\0" in name else name


def tensors_path(json_path: str | os.PathLike[str], record: dict[str, Any],
                 kind: FileKind) -> Path:
    """Where the record's tensors file is: its file name, in the record's folder.

    Only the name is honoured, so ``"../x.safetensors"`` or an absolute path in a crafted record
    still means a file beside the record, never one elsewhere.

    Raises:
        CheckedFileError: the record names no usable file (a record that :func:`read_record`
            returned always does).
    """
    path = Path(json_path)
    name = kind.tensors_name or _file_name(record.get(TENSORS_KEY))
    if name is None:
        raise CheckedFileError(path, "incomplete", f"{kind.noun} '{path}' lacks a valid "
                               f"{TENSORS_KEY}", kind.fix)
    return path.parent / name


# ---------------------------------------------------------------------------------------------
# The tensors file
# ---------------------------------------------------------------------------------------------

def check_tensors(path: str | os.PathLike[str], sha256: str, kind: FileKind) -> os.stat_result:
    """Verify a tensors file against its recorded SHA-256 without loading it.

    Returns:
        The file's status as it was verified (:func:`load_tensors` checks that the file it
        loads is still that one).

    Raises:
        CheckedFileError: the file is missing or unreadable, looks like a pickle, or does not
            match ``sha256``.
    """
    path = Path(path)
    status = _stat(path, kind)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        raise _unreadable(path, kind, err) from None
    if _looks_like_pickle(head):  # refused unread: nothing of a pickle is worth hashing
        raise CheckedFileError(path, "pickle", f"{kind.noun} '{path}' is not a safetensors "
                               "file but a pickle, which ganforge never loads (it can run code)",
                               kind.fix)
    try:
        digest = fileio.sha256_file(path)
    except OSError as err:
        raise _unreadable(path, kind, err) from None
    if digest != sha256:
        raise CheckedFileError(path, "checksum", f"{kind.noun} '{path}' {kind.mismatch}",
                               kind.fix)
    return status


def load_tensors(path: str | os.PathLike[str], sha256: str, kind: FileKind
                 ) -> dict[str, torch.Tensor]:
    """Verify a tensors file (:func:`check_tensors`) and load it on the CPU.

    Raises:
        CheckedFileError: as :func:`check_tensors`; the file is not a safetensors file; or it
            was replaced or rewritten between its verification and its loading.
    """
    # Imported here: verifying a file (as checkpoint rotation does) needs neither.
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    verified = check_tensors(path, sha256, kind)
    try:
        mapped = load_file(str(path), device="cpu")
    except (SafetensorError, ValueError) as err:
        raise CheckedFileError(path, "not_safetensors", f"{kind.noun} '{path}' is not a "
                               f"safetensors file ({type(err).__name__})", kind.fix) from None
    except OSError as err:
        raise _unreadable(path, kind, err) from None
    # safetensors may serve tensors from a memory map of the file: a later rewrite in place
    # would change them (or fault on a truncation). Owned copies stay what was verified; each
    # mapped tensor is dropped as soon as it is copied.
    tensors = {name: mapped.pop(name).clone() for name in list(mapped)}
    # The file was hashed, then opened again to load: a file replaced or rewritten in between
    # would give tensors the checksum never saw.
    if _identity(_stat(path, kind)) != _identity(verified):
        raise CheckedFileError(path, "changed", f"{kind.noun} '{path}' changed while it was "
                               "read", "try again once nothing is writing it")
    return tensors


def read_checked(json_path: str | os.PathLike[str], kind: FileKind) -> Checked:
    """Read a record, verify its tensors file and load it: the whole check in one call.

    Raises:
        CheckedFileError: one line naming the file, the problem and ``kind``'s fix.
    """
    record = read_record(json_path, kind)
    path = tensors_path(json_path, record, kind)
    return Checked(record, path, load_tensors(path, record[SHA256_KEY], kind),
                   record[SHA256_KEY])


def _looks_like_pickle(head: bytes) -> bool:
    """Whether a file's first bytes are a pickle's (protocol 2 or later) or a zip's (what
    ``torch.save`` writes: pickles in a zip).

    A safetensors file starts with its header's length (8 bytes, little-endian) and then the
    header's ``{``; its length may begin with the same bytes as a pickle, the ``{`` may not.
    """
    if head[8:9] == b"{":
        return False
    return (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")) \
        or head.startswith(b"PK\x03\x04")


def _stat(path: Path, kind: FileKind) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise CheckedFileError(path, "tensors_missing", f"{kind.noun} tensors '{path}' are "
                               "missing", kind.fix) from None
    except OSError as err:
        raise _unreadable(path, kind, err) from None


def _unreadable(path: Path, kind: FileKind, err: OSError) -> CheckedFileError:
    return CheckedFileError(path, "tensors_unreadable", f"cannot read {kind.noun} tensors "
                            f"'{path}' ({err.strerror or type(err).__name__})", kind.fix)


def _identity(status: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is replaced (device, inode) or rewritten (size, time)."""
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns
