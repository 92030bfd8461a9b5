"""``kmnist49``: Kuzushiji-49, 49 classes of cursive hiragana, 28x28 gray.

Kuzushiji-49 (Clanuwat et al., 2018; CC BY-SA 4.0) has 232,365 training and 38,547 test
images. It is distributed by ROIS-DS CODH as four NumPy ``.npz`` files, each holding one array
under the key ``arr_0``::

    k49-train-imgs.npz  (N, 28, 28) uint8      k49-test-imgs.npz
    k49-train-labels.npz  (N,) uint8/int        k49-test-labels.npz

They are looked for in ``<root>/KMNIST49/`` and then directly in ``<root>``; only the requested
split is read (or downloaded). Unlike Kuzushiji-MNIST the classes are imbalanced.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ganforge.data.base import DATASETS, TensorData, data_root, find_file, missing_error
from ganforge.errors import DataError

K49_URL = "http://codh.rois.ac.jp/kmnist/dataset/k49/"
K49_FOLDER = "KMNIST49"

# Romanised names in the order of the official k49_classmap.csv (gojuon order: a, i, u, e, o,
# ka, ...); index 48 is the hiragana iteration mark (ゝ).
K49_CLASSES = [
    "a", "i", "u", "e", "o",
    "ka", "ki", "ku", "ke", "ko",
    "sa", "shi", "su", "se", "so",
    "ta", "chi", "tsu", "te", "to",
    "na", "ni", "nu", "ne", "no",
    "ha", "hi", "fu", "he", "ho",
    "ma", "mi", "mu", "me", "mo",
    "ya", "yu", "yo",
    "ra", "ri", "ru", "re", "ro",
    "wa", "wi", "we", "wo",
    "n", "iteration-mark",
]


def k49_files(split: str) -> list[str]:
    """File names of one split: [images, labels]."""
    return [f"k49-{split}-imgs.npz", f"k49-{split}-labels.npz"]


def read_npz_array(path: Path) -> np.ndarray:
    """The ``arr_0`` array of an ``.npz`` file (pickled objects are refused)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "arr_0" not in archive.files:
                raise DataError(
                    f"'{path}' has no array 'arr_0' (found {', '.join(archive.files) or 'none'}); "
                    "replace it with the original Kuzushiji-49 file"
                )
            return archive["arr_0"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(
            f"cannot read '{path}' ({type(err).__name__}); delete it and download it again"
        ) from err


def _download(folder: Path, names: list[str]) -> None:
    from torchvision.datasets.utils import download_url  # deferred: importing torchvision is slow

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (folder / name).is_file():
            download_url(K49_URL + name, str(folder), filename=name)


@DATASETS.register("kmnist49")
def build_kmnist49(cfg) -> TensorData:
    """Kuzushiji-49 cursive hiragana, 28x28 gray, 49 classes: 232,365 train / 38,547 test (.npz files).

    Returns:
        TensorData with x (N, 1, 28, 28) uint8, y (N,) int64, n_classes 49, romanised names.
    """
    root = data_root(cfg)
    folder = root / K49_FOLDER
    names = k49_files(cfg.split)

    def locate() -> list[Path | None]:
        return [find_file(n, [folder, root]) for n in names]

    paths = locate()
    if None in paths:
        if not cfg.download:
            raise missing_error("kmnist49", cfg.split, names, folder)
        try:
            _download(folder, names)
        except Exception as err:
            raise missing_error("kmnist49", cfg.split, names, folder, err) from err
        paths = locate()
        if None in paths:
            raise missing_error("kmnist49", cfg.split, names, folder)

    images, labels = (read_npz_array(p) for p in paths if p is not None)
    if images.ndim == 4 and images.shape[-1] == 1:  # tolerate an (N, 28, 28, 1) re-save
        images = images[..., 0]
    labels = labels.reshape(-1)
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(
            f"'{paths[0]}' {images.shape} and '{paths[1]}' {labels.shape} do not match; "
            "replace them with the original Kuzushiji-49 files"
        )
    if images.dtype != np.uint8:
        raise DataError(f"'{paths[0]}' holds {images.dtype} images, expected uint8; wrong file?")
    if labels.size and (labels.min() < 0 or labels.max() >= len(K49_CLASSES)):
        raise DataError(f"'{paths[1]}' has labels outside 0..48; is it Kuzushiji-49?")
    return TensorData(
        x=torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1),
        y=torch.from_numpy(labels.astype(np.int64)),
        n_classes=len(K49_CLASSES),
        name="kmnist49",
        class_names=list(K49_CLASSES),
        source=f"Kuzushiji-49 {cfg.split} split from {paths[0].parent if paths[0] else folder}",
    )
