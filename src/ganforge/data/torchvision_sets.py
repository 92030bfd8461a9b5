"""MNIST, Fashion-MNIST, KMNIST and CIFAR-10 in torchvision's folder layout.

The files are read directly (IDX files for the MNIST family, pickled batches for CIFAR-10) and
only for the requested split: torchvision's own classes insist that *both* splits exist before
they load either, which breaks an offline folder that holds only the test split.

Layout under the data root (``data.root`` or :func:`~ganforge.data.base.default_root`)::

    MNIST/raw/t10k-images-idx3-ubyte[.gz]          (FashionMNIST/raw, KMNIST/raw alike)
    cifar-10-batches-py/data_batch_1 ... test_batch

Files placed directly in the root are accepted too. Missing files are downloaded with
torchvision's download helpers (only the split that is needed) when ``data.download`` is true.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.base import DATASETS, TensorData, data_root, find_file, missing_error
from ganforge.errors import DataError

IDX_UBYTE = 0x08  # IDX type code of unsigned bytes, the only type the MNIST family uses

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]


# --------------------------------------------------------------------------------------------
# MNIST family (IDX files)
# --------------------------------------------------------------------------------------------

def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes, plain or gzipped.

    Returns:
        uint8 array with the shape stored in the header, e.g. (N, 28, 28) images or (N,) labels.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read '{path}' ({err}); delete it and download it again") from err
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != IDX_UBYTE or not 1 <= data[3] <= 4:
        raise DataError(f"'{path}' is not an IDX file of bytes; replace it with the original file")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header])
    payload = np.frombuffer(data, dtype=np.uint8, offset=header)
    if payload.size != int(np.prod(dims)):
        raise DataError(
            f"'{path}' is truncated ({payload.size} of {int(np.prod(dims))} bytes); "
            "delete it and download it again"
        )
    return payload.reshape(dims)


@dataclass(frozen=True)
class IdxSpec:
    """One MNIST-format dataset: registry key, torchvision class name (= folder) and classes."""

    key: str
    tv_class: str
    class_names: tuple[str, ...]


def _tv_class(name: str) -> Any:
    import torchvision.datasets  # deferred: importing torchvision costs ~1 s

    return getattr(torchvision.datasets, name)


def _download_idx(spec: IdxSpec, prefix: str, raw: Path) -> None:
    """Fetch (and gunzip) only ``prefix``'s files from the torchvision class's mirrors."""
    from torchvision.datasets import utils as tv_utils

    cls = _tv_class(spec.tv_class)
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in cls.resources:
        if not filename.startswith(prefix) or find_file(filename[:-3], [raw], compressed=True):
            continue
        last_err: Exception | None = None
        for mirror in cls.mirrors:
            try:
                tv_utils.download_and_extract_archive(
                    f"{mirror}{filename}", download_root=str(raw), filename=filename, md5=md5
                )
                break
            except Exception as err:  # noqa: BLE001 - any failure means "try the next mirror"
                last_err = err
        else:
            assert last_err is not None
            raise last_err


def load_idx_dataset(spec: IdxSpec, cfg) -> TensorData:
    """Load one split of an MNIST-format dataset (see the module docstring for the layout)."""
    root = data_root(cfg)
    raw = root / spec.tv_class / "raw"
    prefix = "train" if cfg.split == "train" else "t10k"
    names = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def locate() -> list[Path | None]:
        return [find_file(n, [raw, root], compressed=True) for n in names]

    paths = locate()
    if None in paths:
        if not cfg.download:
            raise missing_error(spec.key, cfg.split, names, raw, note="(or .gz)")
        try:
            _download_idx(spec, prefix, raw)
        except Exception as err:
            raise missing_error(spec.key, cfg.split, names, raw, err, note="(or .gz)") from err
        paths = locate()
        if None in paths:
            raise missing_error(spec.key, cfg.split, names, raw, note="(or .gz)")

    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"'{paths[0]}' {images.shape} and '{paths[1]}' {labels.shape} do not match; "
            "replace them with the original files"
        )
    n_classes = len(spec.class_names)
    if labels.size and labels.max() >= n_classes:
        raise DataError(f"'{paths[1]}' has label {labels.max()} >= {n_classes}; wrong file?")
    return TensorData(
        x=torch.from_numpy(images.copy()).unsqueeze(1),
        y=torch.from_numpy(labels.astype(np.int64)),
        n_classes=n_classes,
        name=spec.key,
        class_names=list(spec.class_names),
        source=f"{spec.tv_class} {cfg.split} split from {paths[0].parent}",
    )


MNIST = IdxSpec("mnist", "MNIST", tuple(str(d) for d in range(10)))
FASHION_MNIST = IdxSpec(
    "fashion-mnist",
    "FashionMNIST",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)
KMNIST = IdxSpec("kmnist", "KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"))


@DATASETS.register("mnist")
def build_mnist(cfg) -> TensorData:
    """MNIST handwritten digits, 28x28 gray, 10 classes: 60,000 train / 10,000 test.

    Returns:
        TensorData with x (N, 1, 28, 28) uint8, y (N,) int64, class names "0".."9".
    """
    return load_idx_dataset(MNIST, cfg)


@DATASETS.register("fashion-mnist")
def build_fashion_mnist(cfg) -> TensorData:
    """Fashion-MNIST clothing items, 28x28 gray, 10 classes: 60,000 train / 10,000 test.

    Returns:
        TensorData with x (N, 1, 28, 28) uint8, y (N,) int64, Zalando's item names.
    """
    return load_idx_dataset(FASHION_MNIST, cfg)


@DATASETS.register("kmnist")
def build_kmnist(cfg) -> TensorData:
    """Kuzushiji-MNIST cursive Japanese characters, 28x28 gray, 10 classes: 60,000 / 10,000.

    Returns:
        TensorData with x (N, 1, 28, 28) uint8, y (N,) int64, romanised class names as in
        torchvision ("o", "ki", ...).
    """
    return load_idx_dataset(KMNIST, cfg)


# --------------------------------------------------------------------------------------------
# CIFAR-10 (pickled batches)
# --------------------------------------------------------------------------------------------

def _cifar_files(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only.

    A pickle runs code by naming a callable (``os.system``, ``builtins.eval``, ...) for the
    loader to import and call; CIFAR's batches only need the few NumPy constructors below, so
    a file that names anything else is refused instead of executed.
    """

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # NumPy 2 moved it
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch -> (n, 3, 32, 32) uint8 images and (n,) int64 labels."""
    try:
        with open(path, "rb") as fh:
            # The batches were pickled by Python 2; latin1 maps its byte strings 1:1.
            entry = _ArrayUnpickler(fh, encoding="latin1").load()
        entry = {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError,
            ValueError) as err:
        raise DataError(
            f"'{path}' is not a CIFAR-10 python batch ({type(err).__name__}); "
            "delete it and download cifar-10-python.tar.gz again"
        ) from err
    if len(images) != len(labels):
        raise DataError(f"'{path}' has {len(images)} images but {len(labels)} labels; corrupt file")
    return images, labels


def _download_cifar10(root: Path) -> None:
    """Extract an already present cifar-10-python.tar.gz, else download and extract it."""
    from torchvision.datasets import utils as tv_utils

    cls = _tv_class("CIFAR10")
    archive = root / cls.filename
    root.mkdir(parents=True, exist_ok=True)
    if archive.is_file():
        tv_utils.extract_archive(str(archive), str(root))
    else:
        tv_utils.download_and_extract_archive(
            cls.url, download_root=str(root), filename=cls.filename, md5=cls.tgz_md5
        )


@DATASETS.register("cifar10")
def build_cifar10(cfg) -> TensorData:
    """CIFAR-10 tiny photos, 32x32 RGB, 10 classes: 50,000 train / 10,000 test (torchvision layout).

    Reads ``<root>/cifar-10-batches-py/data_batch_1..5`` (train) or ``test_batch`` (test).

    Returns:
        TensorData with x (N, 3, 32, 32) uint8, y (N,) int64, class names "airplane".."truck".
    """
    root = data_root(cfg)
    folder = root / "cifar-10-batches-py"
    names = _cifar_files(cfg.split)

    def locate() -> list[Path | None]:
        return [find_file(n, [folder, root]) for n in names]

    paths = locate()
    if None in paths:
        if not cfg.download:
            raise missing_error("cifar10", cfg.split, names, folder,
                                note="(from cifar-10-python.tar.gz)")
        try:
            _download_cifar10(root)
        except Exception as err:
            raise missing_error("cifar10", cfg.split, names, folder, err,
                                note="(from cifar-10-python.tar.gz)") from err
        paths = locate()
        if None in paths:
            raise missing_error("cifar10", cfg.split, names, folder)

    batches = [_read_cifar_batch(p) for p in paths if p is not None]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise DataError(f"CIFAR-10 labels in '{folder}' are outside 0..9; is it CIFAR-100?")
    return TensorData(
        x=torch.from_numpy(images),
        y=torch.from_numpy(labels),
        n_classes=10,
        name="cifar10",
        class_names=list(CIFAR10_CLASSES),
        source=f"CIFAR-10 {cfg.split} split from {paths[0].parent if paths[0] else folder}",
    )
