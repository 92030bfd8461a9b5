"""image-folder: class subfolders or a flat folder, gray/RGB handling, bad files, the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.data.image_folder as image_folder
from ganforge.data import build_dataset
from ganforge.errors import DataError


def folder_cfg(data_cfg, folder, **fields):
    return data_cfg(name="image-folder", root=str(folder), **fields)


def test_class_subfolders_give_labels(tmp_path, save_image, data_cfg):
    for cls, count in (("cats", 2), ("dogs", 3), ("birds", 1)):
        for i in range(count):
            save_image(tmp_path / cls / f"{i}.png", size=(50, 40))
    save_image(tmp_path / "dogs" / "nested" / "deep.jpg")  # classes are walked recursively
    data = build_dataset(folder_cfg(data_cfg, tmp_path, image_size=16))
    assert data.x.shape == (7, 3, 16, 16) and data.x.dtype == torch.uint8
    assert data.class_names == ["birds", "cats", "dogs"] and data.n_classes == 3
    assert data.y.dtype == torch.int64 and data.y.tolist() == [0, 1, 1, 2, 2, 2, 2]
    assert data.extra["skipped"] == 0


def test_flat_folder_is_unlabelled_with_default_size(tmp_path, save_image, data_cfg):
    for i in range(3):
        save_image(tmp_path / f"img{i}.jpg", size=(100, 70))
    data = build_dataset(folder_cfg(data_cfg, tmp_path))
    assert data.x.shape == (3, 3, 64, 64)
    assert data.y is None and data.n_classes == 0 and data.class_names is None


def test_all_gray_stays_one_channel_and_mixed_becomes_rgb(tmp_path, save_image, data_cfg):
    gray, mixed = tmp_path / "gray", tmp_path / "mixed"
    for i in range(2):
        save_image(gray / f"{i}.png", mode="L")
        save_image(mixed / f"g{i}.png", mode="L")
    save_image(mixed / "colour.png", mode="RGB")
    assert build_dataset(folder_cfg(data_cfg, gray, image_size=8)).x.shape == (2, 1, 8, 8)
    x = build_dataset(folder_cfg(data_cfg, mixed, image_size=8)).x
    assert x.shape == (3, 3, 8, 8)
    assert torch.equal(x[1, 0], x[1, 1]) and torch.equal(x[1, 1], x[1, 2])  # gray -> R = G = B
    assert build_dataset(folder_cfg(data_cfg, mixed, image_size=8, channels=1)).x.shape == (3, 1, 8, 8)
    assert build_dataset(folder_cfg(data_cfg, gray, image_size=8, channels=3)).x.shape == (2, 3, 8, 8)


def test_center_crop_keeps_the_middle(tmp_path, data_cfg):
    # 30 wide x 10 high: white 10x10 middle, black sides that the crop must cut away.
    img = Image.new("L", (30, 10), 0)
    img.paste(255, (10, 0, 20, 10))
    img.save(tmp_path / "wide.png")
    x = build_dataset(folder_cfg(data_cfg, tmp_path, image_size=10)).x
    assert x.shape == (1, 1, 10, 10) and x.min() == 255


def bad_folder(root, save_image):
    save_image(root / "a" / "good1.png")
    save_image(root / "a" / "good2.jpg")
    save_image(root / "b" / "good3.png")
    (root / "b" / "notes.txt").write_text("not an image")
    blob = save_image(root / "b" / "truncated.jpg", size=(64, 64)).read_bytes()
    (root / "b" / "truncated.jpg").write_bytes(blob[: len(blob) // 2])
    return root


def test_bad_files_are_skipped_and_counted(tmp_path, save_image, data_cfg):
    data = build_dataset(folder_cfg(data_cfg, bad_folder(tmp_path, save_image), image_size=8))
    assert len(data) == 3 and data.y.tolist() == [0, 0, 1]
    assert data.extra["skipped"] == 2
    assert sorted(data.extra["skipped_files"]) == ["b/notes.txt", "b/truncated.jpg"]
    assert "2 unreadable skipped" in data.source


def test_bad_files_error_names_the_file(tmp_path, save_image, data_cfg):
    folder = bad_folder(tmp_path, save_image)
    with pytest.raises(DataError, match=r"notes\.txt.*data\.bad_files=skip") as info:
        build_dataset(folder_cfg(data_cfg, folder, image_size=8, bad_files="error"))
    assert "\n" not in str(info.value)
    # Also when an earlier "skip" run has cached the result.
    build_dataset(folder_cfg(data_cfg, folder, image_size=8))
    with pytest.raises(DataError, match="not a readable image"):
        build_dataset(folder_cfg(data_cfg, folder, image_size=8, bad_files="error"))


def test_cache_is_used_and_invalidated(tmp_path, save_image, data_cfg, monkeypatch,
                                       ganforge_home):
    for i in range(3):
        save_image(tmp_path / f"{i}.png")
    first = build_dataset(folder_cfg(data_cfg, tmp_path, image_size=8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.png", "1.png", "2.png"]
    (entry,) = (ganforge_home / "decoded").iterdir()
    cached = sorted(p.suffix for p in entry.iterdir())
    assert cached == [".json", ".npy"]

    decoded = []
    real = image_folder.decode_folder
    monkeypatch.setattr(image_folder, "decode_folder",
                        lambda *a, **k: decoded.append(1) or real(*a, **k))
    again = build_dataset(folder_cfg(data_cfg, tmp_path, image_size=8))
    assert torch.equal(first.x, again.x) and decoded == []
    save_image(tmp_path / "3.png")  # a new file changes the key
    assert len(build_dataset(folder_cfg(data_cfg, tmp_path, image_size=8))) == 4
    assert decoded == [1]
    assert sorted(p.suffix for p in entry.iterdir()) == [".json", ".npy"]  # the old one went


@pytest.mark.parametrize("make", ["empty", "only-hidden", "only-junk"])
def test_folders_without_images(tmp_path, data_cfg, make):
    if make == "only-hidden":
        (tmp_path / ".DS_Store").write_bytes(b"\0")
    if make == "only-junk":
        (tmp_path / "readme.md").write_text("# hi")
    with pytest.raises(DataError, match=str(tmp_path)):
        build_dataset(folder_cfg(data_cfg, tmp_path))


def test_missing_root(tmp_path, data_cfg):
    with pytest.raises(DataError, match="set data.root"):
        build_dataset(data_cfg(name="image-folder"))
    with pytest.raises(DataError, match="does not exist"):
        build_dataset(folder_cfg(data_cfg, tmp_path / "nope"))


def test_16_bit_gray_is_rescaled_not_clipped(tmp_path, data_cfg):
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")  # a 16-bit gray PNG
    x = build_dataset(folder_cfg(data_cfg, tmp_path, image_size=16)).x
    assert x.shape == (1, 1, 16, 16)
    assert x[0, 0, 0, 0] < 5 and x[0, 0, 0, -1] > 250 and 100 < x[0, 0, 0, 8] < 160
