"""``image-folder``: any folder of images, with or without class subfolders.

``data.root`` is the folder. When it has (non-hidden) subfolders, each subfolder is a class
(label = index in sorted order, class name = folder name) and files at the top level are
ignored; otherwise the top-level files form an unlabelled dataset.

Every image is decoded once with Pillow (EXIF rotation applied), its shorter side resized to
``data.image_size`` (default 64) and center-cropped. Files Pillow cannot read (corrupt,
truncated or not images) are skipped and counted (``data.bad_files="skip"``) or reported
(``"error"``). The result is cached as uint8 ``.npy`` in the user cache (never in the folder,
which is only read), keyed by the folder, its files' paths, sizes and modification times and the
decode settings (:func:`ganforge.data.imagefiles.load_or_decode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ganforge.data.base import DATASETS, DataRoot, TensorData, one_line
from ganforge.data.imagefiles import list_files, load_or_decode, parallel_map
from ganforge.errors import DataError
from ganforge.settings import one_of, setting

DEFAULT_SIZE = 64
SKIPPED_LISTED = 10  # how many skipped file names TensorData.extra["skipped_files"] keeps
GRAY_MODES = {"1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}


def scan(folder: Path) -> tuple[list[Path], list[int], Optional[list[str]]]:
    """Files of the dataset, their labels (-1 when unlabelled) and the class names (or None)."""
    class_dirs = sorted(
        (d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.name,
    )
    if not class_dirs:
        files = list_files(folder, recursive=False)
        return files, [-1] * len(files), None
    files, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        found = list_files(class_dir, recursive=True)
        files += found
        labels += [label] * len(found)
    return files, labels, [d.name for d in class_dirs]


def decode_image(path: Path, size: int, channels: Optional[int]) -> np.ndarray:
    """One file -> (size, size) uint8 for gray or (size, size, 3) uint8 for colour.

    ``channels`` forces the output (1 or 3); None keeps gray images gray and makes everything
    else RGB (alpha dropped, palettes expanded).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode.startswith("I") or img.mode == "F":
            # 16/32-bit gray: convert("L") would clip at 255, so rescale the range first.
            arr = np.asarray(img, dtype=np.float64)
            top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
            img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).round().astype(np.uint8))
        gray = img.mode in GRAY_MODES
        mode = {1: "L", 3: "RGB"}.get(channels or 0, "L" if gray else "RGB")
        img = img.convert(mode)
        # Shorter side -> size, then the centered square (ImageOps.fit crops before it resamples).
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)


def decode_folder(
    files: list[Path], folder: Path, size: int, channels: Optional[int], bad_files: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode all files.

    Returns:
        x: (M, C, size, size) uint8 of the readable files (C from ``channels``, else 1 when all
            are gray, else 3).
        keep: (len(files),) bool, which files were readable.
        skipped: relative paths of the unreadable files.
    """
    out_c = channels or 3  # None: decode into RGB planes; reduced to 1 if all turn out gray
    out = np.empty((len(files), size, size, out_c), dtype=np.uint8)
    keep = np.zeros(len(files), dtype=bool)
    all_gray = True
    skipped: list[str] = []
    for i, result in parallel_map(lambda p: decode_image(p, size, channels), files):
        rel = files[i].relative_to(folder).as_posix()
        if isinstance(result, BaseException):
            if bad_files == "error":
                raise DataError(f"'{files[i]}' is not a readable image ({one_line(result)}); "
                                "remove it or set data.bad_files=skip") from result
            skipped.append(rel)
            continue
        keep[i] = True
        if result.ndim == 2:
            out[i] = result[..., None]  # broadcasts a gray image into every plane
        else:
            all_gray = False
            out[i] = result
    x = out if keep.all() else out[keep]  # avoid a full copy when nothing was skipped
    if channels is None and all_gray:
        x = x[..., :1]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), keep, skipped


def _decode_for_cache(files: list[Path], folder: Path, size: int, channels: Optional[int],
                      bad_files: str) -> tuple[np.ndarray, dict]:
    """:func:`decode_folder` as :func:`load_or_decode` takes it: the array and what to keep
    with it (which files were readable)."""
    x, keep, skipped = decode_folder(files, folder, size, channels, bad_files)
    return x, {"keep": keep.tolist(), "skipped_files": skipped}


@dataclass
class FolderSettings:
    """``image-folder``'s own setting: what to do with files that are not readable images."""

    bad_files: str = setting("skip", "'skip' unreadable files (counted) or 'error'",
                             check=one_of("skip", "error"))


@DATASETS.register("image-folder", settings=FolderSettings, info=DataRoot(
    "the folder of your images (class subfolders give labels)", downloads=False))
def build_image_folder(cfg) -> TensorData:
    """Your own images in data.root (class subfolders give labels), resized and center-cropped, 64px.

    Returns:
        TensorData with x (N, C, S, S) uint8 (S = data.image_size or 64; C = data.channels, else
        1 if every image is gray, else 3), y (N,) int64 folder labels or None;
        extra["skipped"] the number of unreadable files and extra["skipped_files"] the first few;
        extra["cache"] the cache entry's path and extra["notes"] the console line about it.
    """
    if not cfg.root:
        raise DataError("image-folder needs a folder: set data.root (--data-root) to your images")
    folder = Path(cfg.root).expanduser()
    if not folder.is_dir():
        raise DataError(f"image folder '{folder}' does not exist; check data.root")
    files, labels, class_names = scan(folder)
    if not files:
        raise DataError(f"image folder '{folder}' has no files; put images (or class "
                        "subfolders of images) in it")
    size = cfg.image_size or DEFAULT_SIZE

    decoded = load_or_decode(
        folder, f"images-{size}px" + (f"-{cfg.channels}ch" if cfg.channels else ""), files,
        {"size": size, "channels": cfg.channels},
        lambda: _decode_for_cache(files, folder, size, cfg.channels, cfg.bad_files),
        what=f"image folder, {size}px, {len(files)} files")
    x_np = decoded.array
    keep = np.asarray(decoded.meta["keep"], dtype=bool)
    skipped = list(decoded.meta["skipped_files"])
    if skipped and cfg.bad_files == "error":  # a cache made under "skip" still refuses them
        raise DataError(f"'{folder / skipped[0]}' is not a readable image; remove it or set "
                        "data.bad_files=skip")
    if len(x_np) == 0:
        raise DataError(f"none of the {len(files)} files in '{folder}' is a readable image "
                        f"(e.g. '{skipped[0]}'); add images")

    y = None
    if class_names is not None:
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64)[keep])
    source = f"image folder {folder} ({len(x_np)} images"
    source += f", {len(skipped)} unreadable skipped)" if skipped else ")"
    return TensorData(
        x=torch.from_numpy(x_np),
        y=y,
        n_classes=len(class_names) if class_names else 0,
        name="image-folder",
        class_names=class_names,
        source=source,
        extra={"skipped": len(skipped), "skipped_files": skipped[:SKIPPED_LISTED],
               "cache": str(decoded.path), "notes": [decoded.note] if decoded.note else []},
    )
