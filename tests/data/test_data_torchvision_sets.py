"""MNIST family and CIFAR-10 readers: one split at a time, plain or gzipped files, one-line
errors when files are missing (with and without an attempted download), and the real MNIST
test split from the shared data folder when it is there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.data.data_fakes import SHARED_DATA, write_idx

from ganforge.data import build_dataset
from ganforge.data.torchvision_sets import read_idx
from ganforge.errors import DataError

IDX_SETS = [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")]


@pytest.mark.parametrize("name,folder", IDX_SETS)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_split_loads_without_the_other_split(tmp_path, fake_idx, data_cfg, name, folder, gz):
    images, labels = fake_idx(tmp_path, folder, "t10k", n=30, gz=gz)
    data = build_dataset(data_cfg(name=name, root=str(tmp_path), split="test"))
    assert data.x.shape == (30, 1, 28, 28) and data.x.dtype == torch.uint8
    assert data.y.dtype == torch.int64
    assert np.array_equal(data.x[:, 0].numpy(), images)
    assert np.array_equal(data.y.numpy(), labels)
    assert data.n_classes == 10 and len(data.class_names) == 10
    assert data.name == name


def test_class_names_follow_torchvision(tmp_path, fake_idx, data_cfg):
    fake_idx(tmp_path, "FashionMNIST", "train", n=10)
    fake_idx(tmp_path, "KMNIST", "train", n=10)
    fashion = build_dataset(data_cfg(name="fashion-mnist", root=str(tmp_path)))
    kmnist = build_dataset(data_cfg(name="kmnist", root=str(tmp_path)))
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[-1] == "Ankle boot"
    assert kmnist.class_names == ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def test_files_directly_in_root_are_accepted(tmp_path, data_cfg):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8))
    assert len(build_dataset(data_cfg(name="mnist", root=str(tmp_path)))) == 4


@pytest.mark.parametrize("name,folder", IDX_SETS)
def test_missing_idx_files_name_files_and_folder(tmp_path, fake_idx, data_cfg, name, folder):
    fake_idx(tmp_path, folder, "t10k")  # only the test split is present
    with pytest.raises(DataError) as info:
        build_dataset(data_cfg(name=name, root=str(tmp_path), split="train"))
    message = str(info.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message
    assert str(tmp_path / folder / "raw") in message
    assert "data.download=true" in message


def test_failed_download_becomes_a_one_line_data_error(tmp_path, data_cfg, offline):
    with pytest.raises(DataError) as info:
        build_dataset(data_cfg(name="mnist", root=str(tmp_path), download=True))
    message = str(info.value)
    assert "\n" not in message and "could not be downloaded" in message
    assert "URLError" in message and "needs network" in message
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "MNIST" / "raw") in message
    assert info.value.__cause__ is not None  # the original error is chained, not swallowed
    # Only the requested split's files were tried (on every mirror).
    assert offline and all("train-" in url for url in offline)


def test_default_root_is_used_without_data_root(_isolated_default_root, fake_idx, data_cfg):
    fake_idx(_isolated_default_root, "MNIST", "t10k", n=5)
    assert len(build_dataset(data_cfg(name="mnist", split="test"))) == 5


@pytest.mark.parametrize("damage", ["magic", "truncated", "bad-gzip"])
def test_corrupt_idx_file_is_a_data_error(tmp_path, fake_idx, data_cfg, damage):
    fake_idx(tmp_path, "MNIST", "t10k", gz=damage == "bad-gzip")
    raw = tmp_path / "MNIST" / "raw"
    path = raw / ("t10k-images-idx3-ubyte" + (".gz" if damage == "bad-gzip" else ""))
    blob = path.read_bytes()
    path.write_bytes({"magic": b"\x01" + blob[1:], "truncated": blob[:-100],
                      "bad-gzip": blob[:20]}[damage])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        build_dataset(data_cfg(name="mnist", root=str(tmp_path), split="test"))


def test_read_idx_roundtrip(tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a.gz", array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


# ------------------------------------------------------------------------------ CIFAR-10

@pytest.mark.parametrize("split,n", [("train", 5 * 6), ("test", 6)])
def test_cifar10_reads_only_its_split(tmp_path, fake_cifar, data_cfg, split, n):
    images, labels = fake_cifar(tmp_path, split, per_batch=6)
    data = build_dataset(data_cfg(name="cifar10", root=str(tmp_path), split=split))
    assert data.x.shape == (n, 3, 32, 32) and data.x.dtype == torch.uint8
    assert np.array_equal(data.x.numpy(), images) and np.array_equal(data.y.numpy(), labels)
    assert data.class_names[:3] == ["airplane", "automobile", "bird"] and data.n_classes == 10


def test_cifar10_missing_batches(tmp_path, fake_cifar, data_cfg):
    fake_cifar(tmp_path, "test")
    with pytest.raises(DataError) as info:
        build_dataset(data_cfg(name="cifar10", root=str(tmp_path), split="train"))
    assert "data_batch_1" in str(info.value) and "data_batch_5" in str(info.value)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


def test_cifar10_failed_download(tmp_path, data_cfg, offline):
    with pytest.raises(DataError, match="could not be downloaded.*URLError") as info:
        build_dataset(data_cfg(name="cifar10", root=str(tmp_path), split="test", download=True))
    assert "test_batch" in str(info.value) and info.value.__cause__ is not None
    assert offline == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]


def test_cifar10_corrupt_batch(tmp_path, fake_cifar, data_cfg):
    fake_cifar(tmp_path, "test")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="test_batch"):
        build_dataset(data_cfg(name="cifar10", root=str(tmp_path), split="test"))


# ------------------------------------------------------------------------------ real MNIST

@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason="the shared MNIST test split (../shared/data/MNIST/raw) is not present")
def test_real_mnist_test_split(data_cfg):
    data = build_dataset(data_cfg(name="mnist", root=str(SHARED_DATA), split="test"))
    assert data.x.shape == (10000, 1, 28, 28) and data.x.dtype == torch.uint8
    assert data.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    counts = torch.bincount(data.y, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert 0 < data.x.float().mean() < 255  # real strokes, not an empty tensor


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(),
                    reason="the shared MNIST test split (../shared/data/MNIST/raw) is not present")
def test_real_mnist_train_split_is_absent_offline(data_cfg):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        build_dataset(data_cfg(name="mnist", root=str(SHARED_DATA), split="train"))
