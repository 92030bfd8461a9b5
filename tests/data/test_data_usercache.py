"""The user cache: decoded-image entries keyed by the data folder and its files, and
``ganforge cache list|clear`` over decoded images and reference statistics."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch

import ganforge.data.image_folder as image_folder
from ganforge.cli import main
from ganforge.data import build_dataset
from ganforge.data.usercache import human_size, list_entries

SIZE = 8


@pytest.fixture
def folder(tmp_path, save_image):
    """Three 40x30 RGB PNGs in a flat folder."""
    for i in range(3):
        save_image(tmp_path / "faces" / f"{i}.png")
    return tmp_path / "faces"


@pytest.fixture
def decodes(monkeypatch):
    """Counts the calls of the image-folder decoder (a call = the cache was not used)."""
    calls = []
    real = image_folder.decode_folder
    monkeypatch.setattr(image_folder, "decode_folder",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def load(data_cfg, folder, **fields):
    return build_dataset(data_cfg(name="image-folder", root=str(folder), image_size=SIZE,
                                  **fields))


def npy_files(home):
    return sorted((home / "decoded").rglob("*.npy"))


def test_entry_lands_under_ganforge_home_and_is_reused(folder, data_cfg, decodes, ganforge_home):
    first = load(data_cfg, folder)
    (path,) = npy_files(ganforge_home)
    assert path.parent.parent == ganforge_home / "decoded"
    assert re.fullmatch(r"faces-[0-9a-f]{16}", path.parent.name)
    assert re.fullmatch(r"images-8px-[0-9a-f]{16}\.npy", path.name)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["data"] == str(folder.resolve()) and meta["files"] == 3
    assert meta["what"] == "image folder, 8px, 3 files" and meta["shape"] == [3, 3, SIZE, SIZE]
    assert meta["settings"] == {"size": SIZE, "channels": None}
    assert first.extra["cache"] == str(path) and decodes == [1]

    second = load(data_cfg, folder)
    assert torch.equal(first.x, second.x) and decodes == [1]
    assert second.extra["notes"] == []  # a line only when an entry is made


def test_an_edited_file_is_never_served_stale(folder, data_cfg, decodes, ganforge_home,
                                              save_image):
    first = load(data_cfg, folder)
    # Same name, size and modification time: the entry stands.
    target = folder / "1.png"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    load(data_cfg, folder)
    assert decodes == [1]

    # Only the modification time changes: decoded again.
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    load(data_cfg, folder)
    assert decodes == [1, 1]

    # Other pixels, and the old modification time put back: the size tells.
    save_image(target, size=(60, 50))
    assert target.stat().st_size != stat.st_size
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    edited = load(data_cfg, folder)
    assert decodes == [1, 1, 1]
    assert not torch.equal(edited.x[1], first.x[1]) and torch.equal(edited.x[0], first.x[0])
    assert len(npy_files(ganforge_home)) == 1  # each new entry replaced the one it superseded


def test_other_settings_are_other_entries(folder, data_cfg, decodes, ganforge_home):
    load(data_cfg, folder)
    load(data_cfg, folder, channels=1)
    load(data_cfg, folder, channels=1)
    assert decodes == [1, 1]
    names = [p.name.rsplit("-", 1)[0] for p in npy_files(ganforge_home)]
    assert sorted(names) == ["images-8px", "images-8px-1ch"]


def test_the_note_names_the_entry_and_its_size(folder, data_cfg, ganforge_home):
    data = load(data_cfg, folder)
    (path,) = npy_files(ganforge_home)
    size = path.stat().st_size + path.with_suffix(".json").stat().st_size
    assert data.extra["notes"] == [f"cached 3 decoded images of {folder.resolve()} "
                                   f"({human_size(size)}) in {path}"]


@pytest.mark.parametrize("n_bytes, text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"),
                                           (141_234_567, "141.2 MB"), (999_950, "1.0 MB"),
                                           (2_500_000_000, "2.5 GB")])
def test_human_size(n_bytes, text):
    assert human_size(n_bytes) == text


# --------------------------------------------------------------------------------------------
# ganforge cache list | clear
# --------------------------------------------------------------------------------------------

def refstats_entry(home):
    """A real reference-statistics entry, written as ``metrics.reference`` writes one."""
    from ganforge.metrics import reference as R

    key = {"version": 1, "extractor": "fake", "extractor_sha256": "0", "resize": "none",
           "data": {"name": "toy-2d", "split": "train"}, "n": 4, "seed": 0}
    stats = R.ReferenceStats(torch.zeros(4, 2), torch.zeros(2, dtype=torch.float64),
                             torch.eye(2, dtype=torch.float64), None, None,
                             {"key": key, "source": "toy 2-d points", "n_samples": 4})
    json_path, tensor_path = R.cache_paths(key)
    assert json_path.parent == home / "refstats"
    R.save_stats(stats, json_path, tensor_path)
    return tensor_path, tensor_path.stat().st_size + json_path.stat().st_size


def cache(capsys, *argv):
    code = main(["cache", *argv])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    return out.splitlines()


@pytest.fixture
def two_kinds(folder, data_cfg, ganforge_home):
    """One decoded-image entry and one reference-statistics entry: (kind, path, size) each."""
    load(data_cfg, folder)
    (npy,) = npy_files(ganforge_home)
    decoded_size = npy.stat().st_size + npy.with_suffix(".json").stat().st_size
    tensors, refstats_size = refstats_entry(ganforge_home)
    return [("decoded images", npy, decoded_size), ("reference statistics", tensors, refstats_size)]


def test_cache_list_shows_each_entry_and_a_total(capsys, two_kinds, folder, ganforge_home):
    lines = cache(capsys, "list")
    assert len(lines) == 3
    for line, (title, path, size) in zip(lines, two_kinds):
        assert line.startswith(f"{title:<20}  {human_size(size):>9}  ")
        assert line.endswith(f"  {path}")
    assert f"image folder, 8px, 3 files of {folder.resolve()}" in lines[0]
    assert "fake features of 4 samples: toy 2-d points" in lines[1]
    total = sum(size for _, _, size in two_kinds)
    assert lines[2] == f"total: 2 entries, {human_size(total)} in {ganforge_home}"
    assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d  ", lines[0])  # last used or made

    only = cache(capsys, "list", "--kind", "refstats")
    assert only == [lines[1], f"total: 1 entry, {human_size(two_kinds[1][2])} in {ganforge_home}"]


def test_cache_clear_without_yes_removes_nothing(capsys, two_kinds, ganforge_home):
    before = sorted(p for p in ganforge_home.rglob("*"))
    lines = cache(capsys, "clear")
    assert lines[-1] == "nothing removed; add --yes to remove the entries above"
    assert lines[-2].startswith("total: 2 entries, ")
    assert sorted(p for p in ganforge_home.rglob("*")) == before


def test_cache_clear_kind_and_yes(capsys, two_kinds, ganforge_home, data_cfg, folder, decodes):
    (_, npy, decoded_size), (_, tensors, _) = two_kinds
    lines = cache(capsys, "clear", "--kind", "decoded", "--yes")
    assert lines[-1] == f"removed 1 entry ({human_size(decoded_size)}) from {ganforge_home}"
    assert npy_files(ganforge_home) == [] and tensors.is_file()
    assert list((ganforge_home / "decoded").iterdir()) == []  # the data folder's folder went
    load(data_cfg, folder)  # decoded again, since the entry is gone
    assert decodes == [1]

    cache(capsys, "clear", "--yes")
    assert not tensors.exists() and npy_files(ganforge_home) == []
    assert cache(capsys, "list") == [f"no cache entries in {ganforge_home}"]
    assert cache(capsys, "clear", "--kind", "refstats") == [
        f"no reference statistics cache entries in {ganforge_home}"]


def test_incomplete_entries_are_listed_and_cleared(capsys, ganforge_home):
    """A data file whose JSON never came (a write cut short) still takes space: clear it."""
    orphan = ganforge_home / "decoded" / "faces-0123456789abcdef" / "images-8px-0.npy"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"\0" * 1500)
    (entry,) = list_entries()
    assert entry.kind == "decoded" and entry.of == "an incomplete entry" and entry.size == 1500
    assert cache(capsys, "clear", "--yes")[-1] == f"removed 1 entry (1.5 kB) from {ganforge_home}"
    assert not orphan.exists()


def test_cache_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["cache", "clear", "--kind", "checkpoints"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ganforge: error: argument --kind: invalid "
                                                   "choice: 'checkpoints'")
