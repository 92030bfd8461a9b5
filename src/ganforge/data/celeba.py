"""``celeba``: aligned CelebA faces, center-cropped and resized (DCGAN-style), decoded once.

Expected layout (the one ``torchvision.datasets.CelebA`` downloads)::

    <root>/celeba/img_align_celeba/000001.jpg ... 202599.jpg    (178 x 218 aligned faces)
    <root>/celeba/list_attr_celeba.txt                            (40 binary attributes)
    <root>/celeba/list_eval_partition.txt                         (0 train, 1 valid, 2 test)

Only the images present on disk are used (a subset such as 12,000 faces of the train partition
works; the list files may name more). Each image's central 140 x 140 square (the face, as in the
DCGAN CelebA setup) is resized to ``data.image_size`` (default 64). The decoded uint8 array is
cached in the user cache, never under ``<root>`` (which is only read, unless
``data.download=true`` fetches the files there), keyed by the folder, the split, the size and
the names, sizes and modification times of the images
(:func:`ganforge.data.imagefiles.load_or_decode`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import DATASETS, TensorData, data_root, missing_error, one_line
from ganforge.data.imagefiles import load_or_decode, parallel_map
from ganforge.errors import DataError
from ganforge.settings import one_of, setting

CROP = 140          # side of the central square kept from each 178 x 218 aligned face
DEFAULT_SIZE = 64
PARTITION = {"train": 0, "test": 2}  # list_eval_partition.txt codes; 1 (valid) is unused
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_DIR = "img_align_celeba"


def read_partition(path: Path, split: str) -> list[str]:
    """Image names of ``split`` in file order, from ``list_eval_partition.txt``."""
    code = str(PARTITION[split])
    names = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{lineno} should be '<image> <0|1|2>'; replace the file")
        if parts[1] == code:
            names.append(parts[0])
    return names


def read_attributes(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Attribute names and ``{image name: (40,) float32 in {0, 1}}`` from ``list_attr_celeba.txt``.

    The file is: a count line, a line of attribute names, then ``<image> <+1|-1> ...`` rows.
    """
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DataError(f"'{path}' is too short to be CelebA's attribute list; replace it")
    names = lines[1].split()
    table: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[2:], 3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(f"{path}:{lineno} has {len(parts) - 1} values for {len(names)} "
                            "attributes; replace the file")
        # -1/+1 -> 0/1
        table[parts[0]] = (np.asarray(parts[1:], dtype=np.int8) > 0).astype(np.float32)
    return names, table


def _download(root: Path) -> None:
    """Fetch CelebA with torchvision's Google Drive helper (the files torchvision lists)."""
    from torchvision.datasets import CelebA
    from torchvision.datasets import utils as tv_utils

    folder = root / CelebA.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    for file_id, md5, filename in CelebA.file_list:
        # check_integrity (md5) rather than is_file: a download cut off midway is fetched again.
        if not tv_utils.check_integrity(str(folder / filename), md5):
            tv_utils.download_file_from_google_drive(file_id, str(folder), filename, md5)
    tv_utils.extract_archive(str(folder / "img_align_celeba.zip"))


def decode_face(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8: the central CROP x CROP square of one face, resized."""
    from PIL import Image

    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(CROP, w, h)
        left, top = (w - side) // 2, (h - side) // 2
        # resize(box=...) crops and resamples in one pass; Pillow antialiases when shrinking.
        face = img.resize((size, size), Image.Resampling.BICUBIC,
                          box=(left, top, left + side, top + side))
        return np.asarray(face, dtype=np.uint8)


def decode_faces(folder: Path, names: list[str], size: int) -> np.ndarray:
    """(N, 3, size, size) uint8 of all ``names`` in ``folder``; a bad file is a DataError."""
    out = np.empty((len(names), size, size, 3), dtype=np.uint8)
    paths = [folder / n for n in names]
    for i, result in parallel_map(lambda p: decode_face(p, size), paths):
        if isinstance(result, BaseException):
            raise DataError(f"CelebA image '{paths[i]}' is unreadable ({one_line(result)}); "
                            "replace it from img_align_celeba.zip") from result
        out[i] = result
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


@dataclass
class CelebASettings:
    """``celeba``'s own setting: what its labels are."""

    labels: str = setting("class", "'class' (none) or 'attributes' (the 40 binary attributes)",
                          check=one_of("class", "attributes"))


@DATASETS.register("celeba", settings=CelebASettings)
def build_celeba(cfg) -> TensorData:
    """CelebA aligned faces, 140px center crop resized to 64x64 RGB; optional 40 binary attributes.

    ``split="train"`` is partition 0 (162,770 faces), ``split="test"`` partition 2 (19,962).
    With ``data.labels="attributes"`` y holds the 40 binary attributes.

    Returns:
        TensorData with x (N, 3, S, S) uint8; y (N, 40) float32 in {0, 1} and class_names the
        attribute names, or y None; n_classes 0 either way; extra["cache"] the cache entry's
        path and extra["notes"] the console line about it (when one was made, or not).
    """
    root = data_root(cfg)
    folder = root / "celeba"
    images = folder / IMAGE_DIR
    required = [IMAGE_DIR + "/*.jpg", ATTR_FILE, PARTITION_FILE]

    def present() -> bool:
        lists = (folder / ATTR_FILE, folder / PARTITION_FILE)
        return images.is_dir() and all(p.is_file() for p in lists)

    if not present():
        if not cfg.download:
            raise missing_error("celeba", cfg.split, required, folder)
        try:
            _download(root)
        except Exception as err:
            raise missing_error("celeba", cfg.split, required, folder, err) from err
        if not present():
            raise missing_error("celeba", cfg.split, required, folder)

    on_disk = {entry.name for entry in images.iterdir()}
    names = [n for n in read_partition(folder / PARTITION_FILE, cfg.split) if n in on_disk]
    if not names:
        other = [s for s in PARTITION if s != cfg.split]
        raise DataError(f"no CelebA {cfg.split} images (partition {PARTITION[cfg.split]}) among "
                        f"the {len(on_disk)} files in '{images}'; extract img_align_celeba.zip "
                        f"there, or use data.split={other[0]} (--split {other[0]})")
    size = cfg.image_size or DEFAULT_SIZE

    # The images' names, sizes and times are the key: another subset, or an edited face, is
    # another entry (which replaces this split and size's old one).
    decoded = load_or_decode(
        folder, f"celeba-{cfg.split}-{size}px", [images / n for n in names],
        {"split": cfg.split, "size": size, "crop": CROP},
        lambda: (decode_faces(images, names, size), {}),
        what=f"celeba {cfg.split}, {size}px, {len(names)} faces")

    y = None
    class_names = None
    if cfg.labels == "attributes":
        class_names, table = read_attributes(folder / ATTR_FILE)
        missing = [n for n in names if n not in table]
        if missing:
            raise DataError(f"'{folder / ATTR_FILE}' has no attributes for {missing[0]} "
                            f"({len(missing)} images); replace the file")
        y = torch.from_numpy(np.stack([table[n] for n in names]))
    return TensorData(
        x=torch.from_numpy(decoded.array),
        y=y,
        n_classes=0,
        name="celeba",
        class_names=class_names,
        source=f"CelebA {cfg.split} split ({len(names)} faces, {CROP}px center crop) from {images}",
        # A mirrored face keeps its 40 attributes (evaluators may train on flipped faces).
        extra={"cache": str(decoded.path), "notes": [decoded.note] if decoded.note else [],
               "mirror_invariant": True},
    )
