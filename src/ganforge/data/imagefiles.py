"""Shared by the file-based image datasets (``celeba``, ``image-folder``): decoding many image
files in parallel and caching the decoded uint8 array atomically as ``.npy``.

Decoding JPEGs is the slow part of building such a dataset (minutes for CelebA), so it is done
once: later builds load the cache in about a second. Pillow releases the GIL while it decodes
and resamples, so a thread pool gives a near-linear speed-up without worker processes.

Where the cache lives (:func:`cache_candidates`, :func:`cache_for_writing`): beside the data in
``<folder>/.ganforge-cache/`` when that folder is writable, else in the user cache,
``$GANFORGE_HOME/decoded/<folder name>-<hash of its resolved path>/`` (default
``~/.cache/ganforge``), so a read-only dataset mount still starts in seconds the second time
and two data folders never share an entry. A cache beside the data is read first wherever it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_path, write_json

CACHE_DIR = ".ganforge-cache"
HOME_ENV = "GANFORGE_HOME"  # moves ~/.cache/ganforge (the user cache of decoded images)
USER_CACHE_DIR = "decoded"  # below it: one sub-folder per data folder
CACHE_VERSION = 1  # bump when the decoding changes, so stale caches are not reused
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


def save_cache(npy_path: Path, array: np.ndarray, meta: dict[str, Any]) -> None:
    """Write ``array`` and ``meta`` atomically; a read-only data folder only costs a warning.

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
        warnings.warn(f"could not cache the decoded images at '{npy_path}' ({err}); "
                      "they will be decoded again next time", stacklevel=3)


# --------------------------------------------------------------------------------------------
# Where the cache lives: beside the data, or in the user cache for a read-only data folder
# --------------------------------------------------------------------------------------------

def write_probe(folder: Path) -> bool:
    """Whether a file can really be created in ``folder`` (created and removed at once).

    Only an attempt tells: ``os.access`` says yes to root on a folder whose mode forbids
    writing, and to anyone on some read-only network mounts.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".ganforge-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return True


def folder_writable(folder: Path) -> bool:
    """Whether decoded images may be cached inside ``folder``.

    No when the folder is missing, when its mode grants nobody write access (someone marked the
    dataset read-only: honoured even for root, whom the permission bits do not stop), when
    ``os.access`` refuses, or when creating a file there fails (a read-only mount).
    """
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    if not stat.S_ISDIR(mode) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return False
    return os.access(folder, os.W_OK) and write_probe(folder)


def user_cache_dir(data_folder: Path) -> Path:
    """The user-cache folder for ``data_folder``'s decoded images (not created).

    ``$GANFORGE_HOME/decoded/<name>-<key>`` (default ``~/.cache/ganforge/decoded/...``); the key
    is a hash of the folder's resolved path, so two data folders never share entries.
    """
    home = os.environ.get(HOME_ENV, "").strip()
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "ganforge"
    resolved = Path(data_folder).expanduser().resolve()
    key = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    return base / USER_CACHE_DIR / f"{resolved.name or 'root'}-{key}"


def cache_candidates(data_folder: Path, filename: str) -> list[Path]:
    """Where a cache entry of ``data_folder`` may already be, in lookup order: beside the data
    (written while the folder was writable, or by whoever prepared the mount), then the user
    cache."""
    return [data_folder / CACHE_DIR / filename, user_cache_dir(data_folder) / filename]


def cache_for_writing(data_folder: Path, filename: str) -> Path:
    """Where a new cache entry of ``data_folder`` goes: beside the data when the folder (or its
    existing cache folder) is writable, else the user cache."""
    beside = data_folder / CACHE_DIR
    if folder_writable(beside if beside.is_dir() else data_folder):
        return beside / filename
    return user_cache_dir(data_folder) / filename


def load_or_decode(data_folder: Path, filename: str,
                   decode: Callable[[], tuple[np.ndarray, dict[str, Any]]],
                   expect: Optional[dict[str, Any]] = None
                   ) -> tuple[np.ndarray, dict[str, Any], Path]:
    """The decoded array of ``data_folder`` from its cache, or decoded now and cached.

    Args:
        data_folder: the dataset's folder (keys the user cache).
        filename: the entry's ``.npy`` file name (what it depends on: split, size, count ...).
        decode: returns the uint8 array and the metadata to store with it.
        expect: metadata entries a cached entry must have to be reused (e.g. a hash of the file
            names), so an entry of other files with the same name is rebuilt.

    Returns:
        (array, its metadata, the cache path it was read from or written to).
    """
    for path in cache_candidates(data_folder, filename):
        cached = load_cache(path)
        if cached is not None and all(cached[1].get(k) == v for k, v in (expect or {}).items()):
            return cached[0], cached[1], path
    array, meta = decode()
    path = cache_for_writing(data_folder, filename)
    if len(array):
        save_cache(path, array, {**meta, **(expect or {})})
    return array, {**meta, **(expect or {})}, path


def list_files(folder: Path, recursive: bool) -> list[Path]:
    """Regular, non-hidden files under ``folder`` (hidden folders such as the cache skipped),
    sorted by their path relative to ``folder`` so the order is the same on every machine."""
    found: list[Path] = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    else:
        found = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())
