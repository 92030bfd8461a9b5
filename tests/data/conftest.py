"""Fixtures for the data tests: small fake copies of every on-disk dataset format, written into
``tmp_path``, and a guard that makes every download fail at once (the tests never touch the
network, and a download that is tried must surface as a one-line DataError)."""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.data.data_fakes import CELEBA_ATTRS, write_idx
from ganforge.config import DataConfig


@pytest.fixture
def ganforge_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ganforge home (the user cache) of the test's own, outside ``tmp_path``: tests
    use ``tmp_path`` itself as a data folder, which ganforge must never write into."""
    return tmp_path_factory.mktemp("ganforge-home")


@pytest.fixture(autouse=True)
def _isolated_default_root(tmp_path: Path, ganforge_home: Path,
                           monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default data folder and the user cache into temporary folders so no test
    reads or writes ~/.cache."""
    root = tmp_path / "default-root"
    monkeypatch.setenv("GANFORGE_DATA", str(root))
    monkeypatch.setenv("GANFORGE_HOME", str(ganforge_home))
    return root


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make torchvision's download helpers raise URLError, as they would without network.

    Returns the list of URLs/ids that were attempted.
    """
    from torchvision.datasets import utils as tv_utils

    attempts: list[str] = []

    def fail(url: str, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    for name in ("download_and_extract_archive", "download_url", "download_file_from_google_drive"):
        monkeypatch.setattr(tv_utils, name, fail)
    return attempts


@pytest.fixture
def fake_idx() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``make(root, folder, prefix, n, gz=False)`` writes fake MNIST-format image/label files."""

    def make(root: Path, folder: str = "MNIST", prefix: str = "t10k", n: int = 30,
             gz: bool = False, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(len(prefix) + n)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % n_classes).astype(np.uint8)
        ext = ".gz" if gz else ""
        raw = root / folder / "raw"
        write_idx(raw / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        return images, labels

    return make


@pytest.fixture
def fake_cifar() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``make(root, split, per_batch)`` writes pickled CIFAR-10 batches like the real ones."""

    def make(root: Path, split: str = "test", per_batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True, exist_ok=True)
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        rng = np.random.default_rng(1)
        all_x, all_y = [], []
        for name in names:
            data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
            with open(folder / name, "wb") as fh:
                pickle.dump({"batch_label": name, "data": data, "labels": labels}, fh)
            all_x.append(data.reshape(-1, 3, 32, 32))
            all_y.append(np.asarray(labels))
        return np.concatenate(all_x), np.concatenate(all_y)

    return make


@pytest.fixture
def fake_k49() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    """``make(folder, split, n)`` writes Kuzushiji-49 style ``.npz`` files into ``folder``."""

    def make(folder: Path, split: str = "test", n: int = 49 * 2) -> tuple[np.ndarray, np.ndarray]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(2)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 49).astype(np.uint8)
        np.savez_compressed(folder / f"k49-{split}-imgs.npz", images)  # stored as arr_0
        np.savez_compressed(folder / f"k49-{split}-labels.npz", labels)
        return images, labels

    return make


@pytest.fixture
def fake_celeba() -> Callable[..., dict[str, list[str]]]:
    """``make(root, n)`` writes a tiny CelebA folder: n 178x218 JPEGs and the two list files.

    Partitions cycle 0, 1, 2 over the images; returns the image names of each split.
    """
    from PIL import Image

    def make(root: Path, n: int = 9) -> dict[str, list[str]]:
        folder = root / "celeba"
        images = folder / "img_align_celeba"
        images.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(3)
        names = [f"{i + 1:06d}.jpg" for i in range(n)]
        attr_lines = [str(n), " ".join(CELEBA_ATTRS)]
        part_lines = []
        for i, name in enumerate(names):
            pixels = rng.integers(0, 256, size=(218, 178, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(images / name, quality=90)
            signs = ["1" if (i + j) % 2 else "-1" for j in range(len(CELEBA_ATTRS))]
            attr_lines.append(f"{name} " + " ".join(f"{s:>2}" for s in signs))
            part_lines.append(f"{name} {i % 3}")
        (folder / "list_attr_celeba.txt").write_text("\n".join(attr_lines) + "\n")
        (folder / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
        return {"train": names[0::3], "valid": names[1::3], "test": names[2::3]}

    return make


@pytest.fixture
def save_image() -> Callable[..., Path]:
    """``save(path, size=(w, h), mode="RGB")`` writes a random image in the format of its suffix."""
    from PIL import Image

    counter = iter(range(10**6))

    def save(path: Path, size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Path:
        rng = np.random.default_rng(next(counter))
        shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, size=shape, dtype=np.uint8)).save(path)  # L or RGB
        return path

    return save


@pytest.fixture
def data_cfg() -> Callable[..., DataConfig]:
    """``cfg(**fields)``: a DataConfig with download off unless asked for."""

    def make(**fields) -> DataConfig:
        fields.setdefault("download", False)
        return DataConfig(**fields)

    return make
