"""build_dataset over the whole registry (each dataset from a tiny offline fixture), the
generic limit / channel / resize steps, and where the data folder is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import DATASETS, KNOWN_SHAPES, BatchSampler, build_dataset, default_root
from ganforge.data.transforms import LUMA, resize, to_channels
from ganforge.config import DataConfig
from ganforge.errors import ConfigError

# Datasets whose sample shape and classes only the user's files know (no KNOWN_SHAPES entry).
FILE_SHAPED = {"arrays"}


@pytest.fixture
def offline_cfg(tmp_path, data_cfg, fake_idx, fake_cifar, fake_k49, fake_celeba, save_image):
    """``make(name)``: a DataConfig for ``name`` whose files exist in tmp_path."""

    def make(name: str, **fields):
        split = fields.setdefault("split", "test")
        root = tmp_path
        if name in ("mnist", "fashion-mnist", "kmnist"):
            folder = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}[name]
            fake_idx(root, folder, "train" if split == "train" else "t10k", n=20)
        elif name == "cifar10":
            fake_cifar(root, split)
        elif name == "kmnist49":
            fake_k49(root / "KMNIST49", split)
        elif name == "celeba":
            fake_celeba(root, n=6)
        elif name == "image-folder":
            root = tmp_path / "images"
            for i in range(4):
                save_image(root / f"class{i % 2}" / f"{i}.png")
        elif name == "arrays":
            root = tmp_path / "mine.npz"
            images = np.arange(6 * 28 * 28, dtype=np.uint8).reshape(6, 28, 28)
            np.savez(root, x=images, y=np.arange(6) % 3, x_test=images[:4],
                     y_test=np.arange(4) % 3, class_names=np.array(["a", "b", "c"]))
        if name == "toy-2d":  # its own setting: a small draw
            fields.setdefault("toy_samples", 500)
        return data_cfg(name=name, root=str(root), **fields)

    return make


def test_the_registry_has_every_dataset():
    assert set(DATASETS.names()) >= {"digits", "mnist", "fashion-mnist", "kmnist", "cifar10",
                                     "kmnist49", "celeba", "image-folder", "toy-2d", "synthetic"}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_dataset_builds_and_samples(name, offline_cfg):
    assert DATASETS.doc(name), "the builder's docstring gives `ganforge list` its description"
    data = build_dataset(offline_cfg(name))
    assert data.name == name and len(data) > 0 and data.source
    if data.is_image:
        assert data.x.dtype == torch.uint8 and data.x.shape[1] in (1, 3)
    else:
        assert data.x.dtype == torch.float32 and data.x.dim() == 2
    if data.y is not None:
        assert len(data.y) == len(data)
        if data.n_classes:
            assert data.y.dtype == torch.int64 and 0 <= data.y.min() and data.y.max() < data.n_classes
            assert len(data.class_names) == data.n_classes
    else:
        assert data.n_classes == 0
    x, y = BatchSampler(data, 2, torch.device("cpu"), seed=0).next()
    assert x.shape == (2, *data.shape) and x.dtype == torch.float32
    # Shapes set by the user's files, or by a plugin's dataset, are not ganforge's to know.
    if name != "image-folder" and name not in FILE_SHAPED and not DATASETS.origin(name):
        assert KNOWN_SHAPES[name] == (data.shape, data.n_classes)


BUILT_IN = [n for n in DATASETS.names() if not DATASETS.origin(n)]  # not installed plugins


def test_known_shapes_cover_the_registry():
    assert sorted(KNOWN_SHAPES) == sorted(set(BUILT_IN) - FILE_SHAPED)


@pytest.mark.parametrize("name", [n for n in BUILT_IN if n != "toy-2d"])
def test_every_image_dataset_honours_size_channels_and_limit(name, offline_cfg):
    data = build_dataset(offline_cfg(name, image_size=12, channels=3, limit=2))
    assert data.x.shape == (2, 3, 12, 12)
    if data.y is not None:
        assert len(data.y) == 2


def test_resize_and_channels_on_real_digits(data_cfg):
    base = build_dataset(data_cfg(name="digits", limit=20))
    data = build_dataset(data_cfg(name="digits", limit=20, image_size=32, channels=3))
    assert data.x.shape == (20, 3, 32, 32) and data.x.dtype == torch.uint8
    assert torch.equal(data.y, base.y)
    assert torch.equal(data.x[:, 0], data.x[:, 2])
    assert "1->3 channels" in data.source and "28x28->32x32" in data.source
    # Down-scaling with antialiasing keeps the mean brightness.
    small = build_dataset(data_cfg(name="digits", limit=20, image_size=14))
    assert abs(small.x.float().mean() - base.x.float().mean()) < 2.0


def test_rgb_to_gray_uses_luma():
    x = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], dtype=torch.uint8)
    gray = to_channels(x.view(4, 3, 1, 1), 1).flatten().tolist()
    expected = [round(255 * w) for w in LUMA] + [round(10 * LUMA[0] + 20 * LUMA[1] + 30 * LUMA[2])]
    assert gray == expected


def test_resize_non_square_crops_the_center():
    x = torch.zeros(1, 1, 10, 30, dtype=torch.uint8)
    x[..., 8:22] = 200  # the middle 10 columns are kept; 2 columns spare for the filter width
    out = resize(x, 5)
    assert out.shape == (1, 1, 5, 5) and out.min() == 200


def test_toy_rejects_image_settings(data_cfg):
    with pytest.raises(ConfigError, match="data.image_size"):
        build_dataset(data_cfg(name="toy-2d", toy_samples=10, image_size=32))


def test_unknown_dataset_lists_the_valid_ones(data_cfg):
    with pytest.raises(ConfigError, match="valid datasets: .*digits"):
        build_dataset(data_cfg(name="imagenet"))


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "x"))
    assert default_root() == tmp_path / "x"
    monkeypatch.delenv("GANFORGE_DATA")
    assert default_root() == Path.home() / ".cache" / "ganforge" / "data"


def test_importing_the_package_has_no_side_effects(tmp_path):
    import subprocess
    import sys

    src = Path(__file__).resolve().parents[2] / "src"
    code = ("import sys, ganforge.data as d; import torch; "
            "assert not torch.cuda.is_initialized(); "
            "assert 'torchvision' not in sys.modules and 'PIL' not in sys.modules; "
            "print(len(d.DATASETS))")
    env = {"PYTHONPATH": str(src), "HOME": str(tmp_path), "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written (no cache folder in HOME or cwd)


def test_classes_keeps_and_relabels_a_subset():
    full = build_dataset(DataConfig(name="synthetic", limit=400))
    part = build_dataset(DataConfig(name="synthetic", limit=400, classes=[7, 2]))
    assert part.n_classes == 2 and set(part.y.tolist()) == {0, 1}
    assert len(part) == int(((full.y == 7) | (full.y == 2)).sum())
    # Relabelled in the order given: old class 7 is 0, old class 2 is 1, images unchanged.
    assert torch.equal(part.x[part.y == 0], full.x[full.y == 7])
    assert torch.equal(part.x[part.y == 1], full.x[full.y == 2])
    if full.class_names:
        assert part.class_names == [full.class_names[7], full.class_names[2]]


def test_classes_refused_without_labels_or_out_of_range():
    from ganforge.errors import DataError

    with pytest.raises(DataError, match="has classes 0..9"):
        build_dataset(DataConfig(name="synthetic", limit=100, classes=[0, 12]))
    with pytest.raises(DataError, match="has no class labels"):
        build_dataset(DataConfig(name="toy-2d", toy_samples=100, classes=[0, 1]))
