"""Shared by the file-based image datasets (``celeba``, ``image-folder``): decoding many image
files in parallel and caching the decoded uint8 array atomically as ``.npy``.

Decoding JPEGs is the slow part of building such a dataset (minutes for CelebA), so it is done
once: later builds load the cache in about a second. Pillow releases the GIL while it decodes
and resamples, so a thread pool gives a near-linear speed-up without worker processes.

Where the cache lives: only in the user cache, never in the data folder (which ganforge only
reads). An entry of a data folder is ``<ganforge home>/decoded/<folder name>-<hash of its
resolved path>/<stem>-<key>.npy`` with its ``.json`` metadata (:mod:`ganforge.data.usercache`);
the key hashes every file's relative path, size and modification time and the decoding
settings, so an edited folder is decoded again, never served stale, and the entry it
supersedes is removed. A home that cannot be written costs a note and a decode next time,
never the run. ``.ganforge-cache/`` folders that older versions wrote inside data folders are
neither read nor written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np

from ganforge.data.usercache import DECODED_DIR, human_size
from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_path, write_json
from ganforge.runtime import HOME_ENV, ganforge_home

CACHE_VERSION = 2  # bump when the decoding changes, so stale caches are not reused
KEY_LENGTH = 16    # hex digits of the content key in an entry's file name
DECODE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError)

T = TypeVar("T")


def decode_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this file is not a readable image".

    ``PIL.UnidentifiedImageError`` (not an image) and truncated-file errors are ``OSError``s;
    Pillow's decompression-bomb guard raises its own type.
    """
    from PIL import Image

    return DECODE_ERRORS + (Image.DecompressionBombError,)


def parallel_map(
    fn: Callable[[Path], T], paths: Sequence[Path], chunk: int = 256
) -> Iterator[tuple[int, T | BaseException]]:
    """Yield ``(index, fn(path))`` in order, or ``(index, exception)`` for decode errors.

    Work is submitted chunk by chunk so a caller that stops at the first bad file does not
    wait for the whole folder to be decoded.
    """
    errors = decode_errors()

    def safe(path: Path) -> T | BaseException:
        try:
            return fn(path)
        except errors as err:
            return err

    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ganforge-decode") as pool:
        for start in range(0, len(paths), chunk):
            results = pool.map(safe, paths[start : start + chunk])
            for offset, result in enumerate(results):
                yield start + offset, result


# --------------------------------------------------------------------------------------------
# .npy cache with a JSON sidecar
# --------------------------------------------------------------------------------------------

def load_cache(npy_path: Path) -> Optional[tuple[np.ndarray, dict[str, Any]]]:
    """Load ``<name>.npy`` and its ``<name>.json`` metadata, or None if absent or unusable.

    A damaged cache is not an error: it is reported as a warning and rebuilt.
    """
    meta_path = npy_path.with_suffix(".json")
    if not (npy_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        array = np.load(npy_path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        warnings.warn(f"ignoring unreadable dataset cache '{npy_path}' ({err}); rebuilding it",
                      stacklevel=3)
        return None
    if (meta.get("version") != CACHE_VERSION or array.dtype != np.uint8
            or list(array.shape) != meta.get("shape")):
        warnings.warn(f"ignoring stale dataset cache '{npy_path}'; rebuilding it", stacklevel=3)
        return None
    return array, meta


def save_cache(npy_path: Path, array: np.ndarray, meta: dict[str, Any]) -> Optional[str]:
    """Write ``array`` and ``meta`` atomically; returns None, or why it could not be written.

    The array is written first and the metadata last, so a cache is only ever used complete.
    """
    meta = {"version": CACHE_VERSION, "shape": list(array.shape), **meta}
    try:
        with atomic_path(npy_path) as tmp:
            # Write through a file handle: np.save(path) would append ".npy" to the temp name.
            with open(tmp, "wb") as fh:
                np.save(fh, array, allow_pickle=False)
        write_json(npy_path.with_suffix(".json"), meta)
    except (GanforgeError, OSError) as err:
        try:  # an array without its metadata would never be read: don't leave it behind
            npy_path.unlink(missing_ok=True)
        except OSError:
            pass
        return _reason(err)
    return None


def _reason(err: BaseException) -> str:
    """The file system's own words for a failed write ("Permission denied"): fileio's message
    advises on output folders, which is not the fix for a cache."""
    cause = err if isinstance(err, OSError) else (err.__cause__ or err.__context__)
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return " ".join(str(err).splitlines())


# --------------------------------------------------------------------------------------------
# Entries in the user cache, keyed by the data folder and its files
# --------------------------------------------------------------------------------------------

def entry_folder(data_folder: Path) -> Path:
    """The user-cache folder of ``data_folder``'s entries (not created).

    ``<ganforge home>/decoded/<name>-<key>``; the key is a hash of the folder's resolved path,
    so two data folders never share entries.
    """
    resolved = Path(data_folder).expanduser().resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    return ganforge_home() / DECODED_DIR / f"{resolved.name or 'root'}-{key}"


def files_key(data_folder: Path, files: Sequence[Path], settings: dict[str, Any]) -> str:
    """Hex SHA-256 of everything a decoded array depends on: the decoding settings and each
    file's path relative to ``data_folder``, size and modification time. Any added, removed,
    edited or touched file (or another setting) gives another key."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, **settings},
                                       sort_keys=True).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"\n{path.relative_to(data_folder).as_posix()}\0{stat.st_size}\0"
                      f"{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


@dataclass
class Decoded:
    """The decoded images of a data folder and where their cache entry is.

    Attributes:
        array: (N, C, H, W) uint8 as the dataset's ``decode`` returned it.
        meta: the metadata stored with it (the decoder's own entries included).
        path: the entry's ``.npy`` (absent when it could not be written).
        note: a line for the console when an entry was made, or could not be; None on reuse.
    """

    array: np.ndarray
    meta: dict[str, Any]
    path: Path
    note: Optional[str] = None


def _prune_superseded(folder: Path, stem: str, keep: Path) -> None:
    """Remove the entries of ``stem`` with another key: their files have changed since."""
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{%d}\.(npy|json)" % KEY_LENGTH)
    for path in folder.iterdir():
        if pattern.fullmatch(path.name) and path.stem != keep.stem:
            try:
                path.unlink()
            except OSError:  # in use elsewhere, or gone already: the listing still shows it
                pass


def load_or_decode(data_folder: Path, stem: str, files: Sequence[Path], settings: dict[str, Any],
                   decode: Callable[[], tuple[np.ndarray, dict[str, Any]]], what: str
                   ) -> Decoded:
    """The decoded array of ``files`` from the user cache, or decoded now and cached there.

    Args:
        data_folder: the dataset's folder; ``files`` lie under it. Only read.
        stem: the entry's name without its key (dataset, split, size ...): a new entry of the
            same stem replaces the old one.
        files: the files ``decode`` reads (their paths, sizes and times key the entry).
        settings: the decoding settings the array depends on (size, channels ...), JSON-able.
        decode: returns the uint8 array and the metadata to store with it.
        what: what the entry holds, for ``ganforge cache list`` ("celeba train, 64px").
    """
    resolved = Path(data_folder).expanduser().resolve()
    key = files_key(data_folder, files, settings)
    folder = entry_folder(data_folder)
    path = folder / f"{stem}-{key[:KEY_LENGTH]}.npy"
    cached = load_cache(path)
    if cached is not None and cached[1].get("key") == key and cached[1].get("data") == str(resolved):
        try:
            os.utime(path)  # "last used" for `ganforge cache list`
        except OSError:
            pass
        return Decoded(cached[0], cached[1], path)
    array, extra = decode()
    meta = {**extra, "data": str(resolved), "what": what, "files": len(files),
            "settings": settings, "key": key,
            "made": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if not len(array):  # nothing readable: the dataset raises, and there is nothing to keep
        return Decoded(array, meta, path)
    failed = save_cache(path, array, meta)
    if failed is not None:
        return Decoded(array, meta, path, f"note: could not cache the decoded images in "
                       f"{folder} ({failed}); they will be decoded again next time (set "
                       f"{HOME_ENV} to a writable folder to keep them)")
    _prune_superseded(folder, stem, path)
    size = sum(p.stat().st_size for p in (path, path.with_suffix(".json")))
    return Decoded(array, meta, path, f"cached {len(array)} decoded images of {resolved} "
                   f"({human_size(size)}) in {path}")


def list_files(folder: Path, recursive: bool) -> list[Path]:
    """Regular, non-hidden files under ``folder`` (hidden folders skipped: ``.git``, an old
    ``.ganforge-cache``),
    sorted by their path relative to ``folder`` so the order is the same on every machine."""
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    else:
        found = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())
