"""Images given as files: a real set for ``ganforge evaluate SAMPLES --reference FOLDER_OR_NPZ``,
and samples saved as a folder of images, so that models trained elsewhere and data ganforge has
no loader for can be scored.

What is read:

* a folder: every image file under it, recursively (``.png .jpg .jpeg .bmp .gif .webp .tif
  .tiff``; hidden files and folders skipped), in the order of their paths relative to the
  folder, decoded by the ``image-folder`` dataset's decoder; unreadable files are skipped and
  counted in the statistics' source;
* an npz: ``images`` uint8 (N, H, W) or (N, C, H, W) (as ``ganforge generate --format npz``
  writes; (N, H, W, C) too), or ``x`` as the ``arrays`` dataset reads it (uint8, or float
  images in [0, 1] or [-1, 1]).

A real set is brought to the samples' size and channels (shorter side resized, centre crop,
bicubic, as ``image-folder`` does), so real and fake images reach the extractor alike; images
already at that size are used as they are. The real set is a :class:`ReferenceFiles`, which the
reference statistics take in place of a dataset config: they are cached like a dataset's, keyed
by the files' content (the SHA-256 of every file with its relative path, or of the npz) and the
size and channels, so an edited file means new statistics and a renamed folder does not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.data.base import TensorData, one_line
from ganforge.data.image_folder import decode_folder
from ganforge.data.imagefiles import list_files
from ganforge.errors import DataError
from ganforge.fileio import sha256_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursively), sorted by relative path."""
    files = [p for p in list_files(folder, recursive=True) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"'{folder}' holds no image files ({', '.join(IMAGE_SUFFIXES)}); pass a "
                        "folder of images or an npz")
    return files


def content_digest(path: Path) -> str:
    """SHA-256 of an npz, or of a folder's image files (relative path and content of each)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in image_files(path):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _fit(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """(N, C, H, W) uint8 -> (N, channels, size, size), through PIL as the folder decoder does
    (convert the mode, then shorter side to ``size`` and centre crop, bicubic)."""
    from PIL import Image, ImageOps

    if images.shape[1:] == (channels, size, size):
        return images
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(images), size, size, channels), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
        pil = ImageOps.fit(pil.convert(mode), (size, size), method=Image.Resampling.BICUBIC)
        out[i] = np.asarray(pil, dtype=np.uint8).reshape(size, size, channels)
    return out.transpose(0, 3, 1, 2)


def read_npz_images(path: Path) -> np.ndarray:
    """(N, C, H, W) uint8 from an npz's ``images`` or (``arrays``-style) ``x``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = set(npz.files)
            images = npz["images"] if "images" in names else None
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"cannot read '{path}' ({one_line(err)}); pass an npz with 'images' "
                        "uint8 or 'x' images") from None
    if images is None:
        if "x" not in names:
            raise DataError(f"'{path}' has neither 'images' nor 'x'; save real images as "
                            "np.savez(path, images=uint8_images)")
        data = build_dataset(DataConfig(name="arrays", root=str(path)))
        if not data.is_image:
            raise DataError(f"'{path}' holds vectors {tuple(data.x.shape)}; --reference "
                            "compares images")
        return data.x.numpy()
    if images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # (N, H, W, C), as PIL and most tools stack them
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or \
            (images.ndim == 4 and images.shape[1] not in (1, 3)):
        raise DataError(f"'{path}': images must be uint8 (N, H, W), (N, C, H, W) or "
                        f"(N, H, W, C) with C = 1 or 3, got {images.dtype} {images.shape}")
    return images[:, None] if images.ndim == 3 else images


def read_folder(folder: Path, size: Optional[int] = None, channels: Optional[int] = None
                ) -> tuple[np.ndarray, list[str]]:
    """A folder's images as (N, C, S, S) uint8 and the files that could not be read.

    Args:
        size: S to bring every image to; None keeps their own size, which must be one square
            size for all (samples saved by a generator are).
        channels: 1 or 3; None: 1 when every image is gray, else 3.
    """
    from PIL import Image

    files = image_files(folder)
    if size is None:
        sizes = set()
        for file in files:
            try:
                with Image.open(file) as image:
                    sizes.add(image.size)
            except OSError:
                continue  # counted as unreadable when decoded
        if not sizes:
            raise DataError(f"none of the {len(files)} image files in '{folder}' can be read")
        (width, height), *others = sorted(sizes)
        if others or width != height:
            shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes)[:3])
            raise DataError(f"the images in '{folder}' are not of one square size ({shown}); "
                            "save the samples at one size")
        size = width
    x, _, skipped = decode_folder(files, folder, size, channels, bad_files="skip")
    if len(x) == 0:
        raise DataError(f"none of the {len(files)} image files in '{folder}' can be read "
                        f"(e.g. '{skipped[0]}')")
    return x, skipped


@dataclass(frozen=True)
class ReferenceFiles:
    """A real set given as files, in place of a dataset config for the reference statistics.

    Attributes:
        path: the folder or npz.
        content: :func:`content_digest` of it.
        image_size: S, the samples' size the images are brought to.
        channels: the samples' channel count.
        name: "folder" or "npz" (the ``dataset`` of the metrics' protocol).
        split: always "all" (every image of the files).
    """

    path: Path
    content: str
    image_size: int
    channels: int
    name: str = "folder"
    split: str = "all"
    limit: Optional[int] = None

    def describe(self) -> dict[str, Any]:
        """What a metric's protocol records about the real set."""
        return {"path": str(self.path), "sha256": self.content}

    def load(self) -> TensorData:
        """The images, brought to the samples' size and channels."""
        skipped: list[str] = []
        if self.name == "npz":
            x = _fit(read_npz_images(self.path), self.image_size, self.channels)
        else:
            x, skipped = read_folder(self.path, self.image_size, self.channels)
        source = f"{self.name} {self.path} ({len(x)} images"
        source += f", {len(skipped)} unreadable skipped" if skipped else ""
        # A fresh C-ordered copy: a view's strides (an added channel axis) can send the
        # extractor's convolutions down another kernel, which differs in the last bit.
        x = np.array(x, dtype=np.uint8, order="C", copy=True)
        return TensorData(x=torch.from_numpy(x), y=None, n_classes=0,
                          name=self.name, source=source + f", sha256 {self.content[:12]})")


def open_reference(path: str | Path, shape: tuple[int, ...]) -> ReferenceFiles:
    """The real set in ``path`` for samples of ``shape`` (C, H, W).

    Raises:
        DataError: a missing path, a file that is not an npz, or samples that are not square
            images.
    """
    path = Path(path).expanduser()
    if len(shape) != 3 or shape[1] != shape[2]:
        raise DataError(f"--reference compares square images; these samples have shape "
                        f"{tuple(shape)}")
    if path.is_dir():
        name = "folder"
    elif path.is_file() and path.suffix == ".npz":
        name = "npz"
    else:
        raise DataError(f"--reference '{path}' is neither a folder of images nor an .npz file; "
                        "check the path")
    return ReferenceFiles(path.resolve(), content_digest(path), int(shape[1]), int(shape[0]),
                          name)


def load_reference(reference: Any) -> TensorData:
    """The real data of a reference: files (:class:`ReferenceFiles`) or a dataset config."""
    return reference.load() if isinstance(reference, ReferenceFiles) else build_dataset(reference)
