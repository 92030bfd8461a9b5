"""CelebA on a tiny generated folder: crop/resize, splits, attributes, the decode cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.data.data_fakes import CELEBA_ATTRS
from PIL import Image

import ganforge.data.celeba as celeba
from ganforge.data import build_dataset
from ganforge.errors import DataError


@pytest.mark.parametrize("split", ["train", "test"])
def test_celeba_split_shape_and_no_labels(tmp_path, fake_celeba, data_cfg, split):
    names = fake_celeba(tmp_path, n=9)
    data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), split=split))
    assert data.x.shape == (len(names[split]), 3, 64, 64) and data.x.dtype == torch.uint8
    assert data.y is None and data.n_classes == 0 and data.class_names is None


def test_celeba_crops_the_center_square(tmp_path, fake_celeba, data_cfg):
    names = fake_celeba(tmp_path, n=3)
    path = tmp_path / "celeba" / "img_align_celeba" / names["train"][0]
    # A 178x218 image that is white inside the central 140x140 square and black outside.
    pixels = np.zeros((218, 178, 3), np.uint8)
    pixels[39:179, 19:159] = 255
    Image.fromarray(pixels).save(path, quality=100)
    data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=32))
    assert data.x.shape == (1, 3, 32, 32)
    assert data.x.float().mean() > 250  # nothing of the black border made it in


def test_celeba_attributes(tmp_path, fake_celeba, data_cfg):
    names = fake_celeba(tmp_path, n=9)
    data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), split="test",
                                  labels="attributes"))
    assert data.y.shape == (len(names["test"]), 40) and data.y.dtype == torch.float32
    assert set(data.y.unique().tolist()) == {0.0, 1.0}
    assert data.class_names == CELEBA_ATTRS and data.n_classes == 0
    # Test images are 3, 6, 9 (indices 2, 5, 8): attribute j is +1 when (i + j) is odd.
    expected = torch.tensor([[float((i + j) % 2) for j in range(40)] for i in (2, 5, 8)])
    assert torch.equal(data.y, expected)


def test_celeba_cache_is_written_and_reused(tmp_path, fake_celeba, data_cfg, monkeypatch):
    fake_celeba(tmp_path, n=6)
    cfg = data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=16)
    first = build_dataset(cfg)
    cache_dir = tmp_path / "celeba" / ".ganforge-cache"
    assert sorted(p.name for p in cache_dir.iterdir()) == ["celeba-train-16px-2.json",
                                                           "celeba-train-16px-2.npy"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(celeba, "decode_faces", no_decoding)
    second = build_dataset(cfg)
    assert torch.equal(first.x, second.x)
    with pytest.raises(AssertionError, match="cache"):  # another size is another cache entry
        build_dataset(data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=8))


def test_celeba_read_only_folder_still_loads(tmp_path, fake_celeba, data_cfg, monkeypatch):
    fake_celeba(tmp_path, n=3)
    (tmp_path / "celeba" / ".ganforge-cache").write_text("a file where the cache folder goes")
    with pytest.warns(UserWarning, match="could not cache"):
        data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), image_size=8))
    assert len(data) == 1


def test_celeba_missing(tmp_path, data_cfg):
    with pytest.raises(DataError) as info:
        build_dataset(data_cfg(name="celeba", root=str(tmp_path)))
    message = str(info.value)
    assert "list_attr_celeba.txt" in message and "list_eval_partition.txt" in message
    assert "img_align_celeba" in message and str(tmp_path / "celeba") in message


def test_celeba_failed_download(tmp_path, data_cfg, offline):
    with pytest.raises(DataError, match="could not be downloaded.*URLError") as info:
        build_dataset(data_cfg(name="celeba", root=str(tmp_path), download=True))
    assert info.value.__cause__ is not None and len(offline) == 1


def test_celeba_corrupt_image_is_named(tmp_path, fake_celeba, data_cfg):
    names = fake_celeba(tmp_path, n=3)
    (tmp_path / "celeba" / "img_align_celeba" / names["train"][0]).write_bytes(b"\xff\xd8broken")
    with pytest.raises(DataError, match=names["train"][0]):
        build_dataset(data_cfg(name="celeba", root=str(tmp_path)))
