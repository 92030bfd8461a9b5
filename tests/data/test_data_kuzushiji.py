"""Kuzushiji-49 (.npz) reader: both folder layouts, one split at a time, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.kuzushiji import K49_CLASSES, K49_URL
from ganforge.errors import DataError


@pytest.mark.parametrize("sub", ["KMNIST49", ""])
def test_k49_loads_from_subfolder_or_root(tmp_path, fake_k49, data_cfg, sub):
    images, labels = fake_k49(tmp_path / sub if sub else tmp_path, "test")
    data = build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="test"))
    assert data.x.shape == (len(images), 1, 28, 28) and data.x.dtype == torch.uint8
    assert np.array_equal(data.x[:, 0].numpy(), images)
    assert data.y.dtype == torch.int64 and np.array_equal(data.y.numpy(), labels)
    assert data.n_classes == 49 and data.class_names == K49_CLASSES


def test_k49_class_names_are_unique_and_49():
    assert len(K49_CLASSES) == len(set(K49_CLASSES)) == 49


def test_k49_missing_split_names_files_and_folder(tmp_path, fake_k49, data_cfg):
    fake_k49(tmp_path / "KMNIST49", "test")
    with pytest.raises(DataError) as info:
        build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="train"))
    message = str(info.value)
    assert "k49-train-imgs.npz" in message and "k49-train-labels.npz" in message
    assert str(tmp_path / "KMNIST49") in message and "\n" not in message


def test_k49_failed_download(tmp_path, data_cfg, offline):
    with pytest.raises(DataError, match="could not be downloaded.*URLError") as info:
        build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="test", download=True))
    assert info.value.__cause__ is not None
    assert offline == [K49_URL + "k49-test-imgs.npz"]  # stops at the first failure


def test_k49_download_fetches_only_the_split(tmp_path, data_cfg, monkeypatch):
    """A working download (simulated) writes the files where the loader then finds them."""
    from torchvision.datasets import utils as tv_utils

    fetched = []

    def fake_download(url, root, filename=None, md5=None):
        fetched.append(filename)
        array = np.zeros((3, 28, 28), np.uint8) if "imgs" in filename else np.arange(3, dtype=np.uint8)
        np.savez(f"{root}/{filename}", array)

    monkeypatch.setattr(tv_utils, "download_url", fake_download)
    data = build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="train", download=True))
    assert fetched == ["k49-train-imgs.npz", "k49-train-labels.npz"] and len(data) == 3


def test_k49_wrong_key_is_a_data_error(tmp_path, fake_k49, data_cfg):
    folder = tmp_path / "KMNIST49"
    fake_k49(folder, "test")
    np.savez(folder / "k49-test-labels.npz", labels=np.zeros(98, np.uint8))
    with pytest.raises(DataError, match="no array 'arr_0'"):
        build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="test"))


def test_k49_pickled_arrays_are_refused(tmp_path, fake_k49, data_cfg):
    folder = tmp_path / "KMNIST49"
    fake_k49(folder, "test")
    np.savez(folder / "k49-test-labels.npz", np.array([object()] * 98, dtype=object))
    with pytest.raises(DataError, match="k49-test-labels.npz"):
        build_dataset(data_cfg(name="kmnist49", root=str(tmp_path), split="test"))
