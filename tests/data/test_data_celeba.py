"""CelebA on a tiny generated folder: crop/resize, splits, attributes, the decode cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.data.data_fakes import CELEBA_ATTRS
from PIL import Image

import ganforge.data.celeba as celeba
from ganforge.data import build_dataset
from ganforge.data.imagefiles import entry_folder
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
    assert data.extra["mirror_invariant"] is True  # a mirrored face keeps its attributes
    # Test images are 3, 6, 9 (indices 2, 5, 8): attribute j is +1 when (i + j) is odd.
    expected = torch.tensor([[float((i + j) % 2) for j in range(40)] for i in (2, 5, 8)])
    assert torch.equal(data.y, expected)


def test_celeba_cache_is_written_and_reused(tmp_path, fake_celeba, data_cfg, monkeypatch,
                                            ganforge_home):
    fake_celeba(tmp_path, n=6)
    cfg = data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=16)
    first = build_dataset(cfg)
    home = ganforge_home / "decoded"
    (entry,) = home.iterdir()  # one folder per data folder: celeba-<hash of its path>
    assert entry.name.startswith("celeba-")
    names = sorted(p.name for p in entry.iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == ["celeba-train-16px"] * 2
    assert [n.rsplit(".", 1)[1] for n in names] == ["json", "npy"]
    assert first.extra["cache"] == str(entry / names[1])
    assert first.extra["notes"] == [f"cached 2 decoded images of {(tmp_path / 'celeba').resolve()} "
                                    f"({_size(entry)}) in {entry / names[1]}"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(celeba, "decode_faces", no_decoding)
    second = build_dataset(cfg)
    assert torch.equal(first.x, second.x) and second.extra["notes"] == []
    with pytest.raises(AssertionError, match="cache"):  # another size is another cache entry
        build_dataset(data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=8))


def _size(folder):
    from ganforge.data.usercache import human_size

    return human_size(sum(p.stat().st_size for p in folder.iterdir()))


def test_celeba_unwritable_home_still_loads_with_a_note(tmp_path, fake_celeba, data_cfg,
                                                        monkeypatch, recwarn):
    fake_celeba(tmp_path, n=3)
    home = tmp_path / "home-is-a-file"
    home.write_text("a file where the ganforge home goes")  # unwritable even for root
    monkeypatch.setenv("GANFORGE_HOME", str(home))
    data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), image_size=8))
    assert len(data) == 1 and len(recwarn) == 0
    (note,) = data.extra["notes"]
    assert note == (f"note: could not cache the decoded images in {entry_folder(tmp_path / 'celeba')}"
                    " (Not a directory); they will be decoded again next time (set GANFORGE_HOME"
                    " to a writable folder to keep them)")
    assert sorted(p.name for p in (tmp_path / "celeba").iterdir()) == [
        "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"]


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


# --------------------------------------------------------------------------------------------
# The decoded cache goes to the user cache, whatever the data folder allows
# --------------------------------------------------------------------------------------------

def _entries(folder):
    return sorted(p.name.rsplit("-", 1)[0] for p in folder.rglob("*.npy")) \
        if folder.is_dir() else []


def test_celeba_read_only_folder_caches_in_user_cache(tmp_path, fake_celeba, data_cfg,
                                                      monkeypatch, ganforge_home):
    fake_celeba(tmp_path, n=6)
    folder = tmp_path / "celeba"
    folder.chmod(0o555)
    try:
        cfg = data_cfg(name="celeba", root=str(tmp_path), split="train", image_size=16)
        first = build_dataset(cfg)
        assert not (folder / ".ganforge-cache").exists()
        home = ganforge_home / "decoded"
        assert _entries(home) == ["celeba-train-16px"]
        assert first.extra["cache"].startswith(str(home))

        monkeypatch.setattr(celeba, "decode_faces", _no_decoding)
        second = build_dataset(cfg)  # the second start reads the user cache
        assert torch.equal(first.x, second.x)
    finally:
        folder.chmod(0o755)


def _no_decoding(*args, **kwargs):
    raise AssertionError("the cache should have been used")


def test_two_roots_never_share_a_cache(tmp_path, fake_celeba, data_cfg):
    fake_celeba(tmp_path / "a", n=3)
    fake_celeba(tmp_path / "b", n=3)
    # Same file names and count, other pixels: b's image is a flat grey face.
    path = tmp_path / "b" / "celeba" / "img_align_celeba" / "000001.jpg"
    Image.fromarray(np.full((218, 178, 3), 128, np.uint8)).save(path, quality=95)
    a = build_dataset(data_cfg(name="celeba", root=str(tmp_path / "a"), image_size=8))
    b = build_dataset(data_cfg(name="celeba", root=str(tmp_path / "b"), image_size=8))
    assert a.extra["cache"] != b.extra["cache"]
    assert not torch.equal(a.x, b.x)
    assert (b.x.float() - 128).abs().max() <= 2


def test_an_old_cache_beside_the_data_is_neither_read_nor_written(tmp_path, fake_celeba,
                                                                  data_cfg, ganforge_home):
    """``.ganforge-cache/`` folders of older versions are left as they are, and not trusted."""
    names = fake_celeba(tmp_path, n=3)
    old = tmp_path / "celeba" / ".ganforge-cache"
    old.mkdir()
    np.save(old / "celeba-train-8px-1.npy", np.zeros((1, 3, 8, 8), np.uint8))
    (old / "celeba-train-8px-1.json").write_text('{"version": 1, "shape": [1, 3, 8, 8]}')
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    data = build_dataset(data_cfg(name="celeba", root=str(tmp_path), image_size=8))
    decoded = celeba.decode_faces(tmp_path / "celeba" / "img_align_celeba", names["train"], 8)
    assert torch.equal(data.x, torch.from_numpy(decoded))  # the face, not the old cache's zeros
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before
    assert _entries(ganforge_home / "decoded") == ["celeba-train-8px"]


def test_cache_of_other_files_with_the_same_count_is_rebuilt(tmp_path, fake_celeba, data_cfg,
                                                             monkeypatch):
    fake_celeba(tmp_path, n=6)
    cfg = data_cfg(name="celeba", root=str(tmp_path), image_size=8)
    build_dataset(cfg)
    # Another pair of train images of the same count: 000004.jpg becomes 000010.jpg.
    folder = tmp_path / "celeba"
    (folder / "img_align_celeba" / "000004.jpg").rename(folder / "img_align_celeba" / "000010.jpg")
    part = (folder / "list_eval_partition.txt").read_text().replace("000004.jpg", "000010.jpg")
    (folder / "list_eval_partition.txt").write_text(part)
    calls = []
    original = celeba.decode_faces
    monkeypatch.setattr(celeba, "decode_faces",
                        lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    build_dataset(cfg)
    assert calls == [["000001.jpg", "000010.jpg"]]


def test_celeba_subset_without_a_partition_says_which_split_to_use(tmp_path, fake_celeba,
                                                                   data_cfg):
    fake_celeba(tmp_path, n=6)
    part = tmp_path / "celeba" / "list_eval_partition.txt"
    part.write_text("".join(f"{line.split()[0]} 0\n" for line in part.read_text().splitlines()))
    with pytest.raises(DataError, match=r"no CelebA test images .* among the 6 files .* "
                                        r"data.split=train \(--split train\)"):
        build_dataset(data_cfg(name="celeba", root=str(tmp_path), split="test"))
    assert len(build_dataset(data_cfg(name="celeba", root=str(tmp_path), image_size=8))) == 6
