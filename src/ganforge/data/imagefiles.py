"""Shared by the file-based image datasets (``celeba``, ``image-folder``): decoding many image
files in parallel and caching the decoded uint8 array atomically as ``.npy``.

Decoding JPEGs is the slow part of building such a dataset (minutes for CelebA), so it is done
once: later builds load the cache in about a second. Pillow releases the GIL while it decodes
and resamples, so a thread pool gives a near-linear speed-up without worker processes.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

import numpy as np

from ganforge.errors import GanforgeError
from ganforge.fileio import atomic_path, write_json

CACHE_DIR = ".ganforge-cache"
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
