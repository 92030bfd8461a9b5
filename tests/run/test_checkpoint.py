"""Checkpoint files: round trip, checksum, rotation, format version, fallback."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from ganforge.errors import CheckpointError
from ganforge.run import checkpoint as ckpt


def _objects():
    torch.manual_seed(0)
    G = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    D = torch.nn.Linear(2, 1)
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3)
    opt_D = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    for _ in range(2):  # populate optimizer state
        G(torch.randn(5, 4)).sum().backward()
        D(torch.randn(5, 2)).sum().backward()
        opt_G.step()
        opt_D.step()
    return G, D, opt_G, opt_D


def test_round_trip_restores_weights_optimizers_and_rng(tmp_path):
    G, D, opt_G, opt_D = _objects()
    ckpt.save_checkpoint(tmp_path, 7, {"G": G, "D": D}, {"G": opt_G, "D": opt_D},
                         {"note": "x"})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    G2, D2, opt_G2, opt_D2 = _objects()
    for p in G2.parameters():
        p.data.zero_()
    path, tensors, meta = ckpt.latest_checkpoint(tmp_path)
    assert meta["step"] == 7 and meta["note"] == "x" and path.name == "step_000000007.json"
    G2.load_state_dict(ckpt.module_state(tensors, "G"))
    ckpt.restore_optimizer(opt_G2, "G", tensors, meta)
    ckpt.restore_optimizer(opt_D2, "D", tensors, meta)
    for a, b in zip(G.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = opt_G.state_dict(), opt_G2.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for pid in sa["state"]:
        for key, value in sa["state"][pid].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["state"][pid][key]))
    ckpt.restore_rng(tensors, meta["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_corrupt_checkpoint_detected_and_skipped(tmp_path):
    G, D, opt_G, opt_D = _objects()
    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, {"G": G}, {"G": opt_G}, {}, keep=5)
    newest = tmp_path / "checkpoints" / "step_000000002.safetensors"
    newest.write_bytes(newest.read_bytes()[:-10])  # truncated
    with pytest.raises(CheckpointError, match="fails its checksum"):
        ckpt.load_checkpoint(newest.with_suffix(".json"))
    skipped = []
    path, _, meta = ckpt.latest_checkpoint(tmp_path, warn=skipped.append)
    assert meta["step"] == 1 and len(skipped) == 1 and "step_000000002" in skipped[0]


def test_rotation_keeps_newest(tmp_path):
    G, D, opt_G, opt_D = _objects()
    for step in range(1, 6):
        ckpt.save_checkpoint(tmp_path, step, {"G": G}, {"G": opt_G}, {}, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_000000004.json", "step_000000004.safetensors",
                     "step_000000005.json", "step_000000005.safetensors"]


def test_newer_format_and_foreign_files_refused(tmp_path):
    G, D, opt_G, opt_D = _objects()
    path = ckpt.save_checkpoint(tmp_path, 1, {"G": G}, {"G": opt_G}, {})
    meta = json.loads(path.read_text())
    meta["format_version"] = ckpt.FORMAT_VERSION + 1
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="newer than this ganforge understands"):
        ckpt.load_checkpoint(path)
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        ckpt.load_checkpoint(other)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        ckpt.latest_checkpoint(tmp_path / "empty")


def test_incomplete_checkpoint_without_json_is_ignored(tmp_path):
    G, D, opt_G, opt_D = _objects()
    ckpt.save_checkpoint(tmp_path, 1, {"G": G}, {"G": opt_G}, {})
    (tmp_path / "checkpoints" / "step_000000002.safetensors").write_bytes(b"partial")
    _, _, meta = ckpt.latest_checkpoint(tmp_path)
    assert meta["step"] == 1


# ---------------------------------------------------------------------------------------------
# Damaged files: clear errors, fallback, rotation that keeps a good checkpoint
# ---------------------------------------------------------------------------------------------

def _two_checkpoints(tmp_path, keep=5):
    G, D, opt_G, opt_D = _objects()
    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, {"G": G, "D": D}, {"G": opt_G, "D": opt_D}, {},
                             keep=keep)
    return tmp_path / "checkpoints"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "step_000000002.json").write_text('{"format_version": 1, "st'),
     "is not valid JSON"),
    (lambda d: (d / "step_000000002.json").write_bytes(b"\x80\x04\x95 binary"),
     "is not valid JSON"),
    (lambda d: (d / "step_000000002.safetensors").unlink(), "tensors .* are missing"),
    (lambda d: (d / "step_000000002.safetensors").write_bytes(b""), "fails its checksum"),
    (lambda d: _flip_byte(d / "step_000000002.safetensors"), "fails its checksum"),
    (lambda d: _edit_json(d / "step_000000002.json", lambda m: m.pop("sha256")),
     "lacks sha256"),
    (lambda d: _edit_json(d / "step_000000002.json", lambda m: m.update(format_version=99)),
     "format version 99, newer than this ganforge understands"),
])
def test_damaged_newest_checkpoint_is_named_and_skipped(tmp_path, damage, message):
    folder = _two_checkpoints(tmp_path)
    damage(folder)
    with pytest.raises(CheckpointError, match=message) as info:
        ckpt.load_checkpoint(folder / "step_000000002.json")
    assert "\n" not in str(info.value)
    skipped = []
    path, _, meta = ckpt.latest_checkpoint(tmp_path, warn=skipped.append)
    assert meta["step"] == 1 and len(skipped) == 1 and "step_000000002.json" in skipped[0]


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_json(path, edit):
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_all_damaged_gives_the_newest_reason(tmp_path):
    folder = _two_checkpoints(tmp_path)
    _flip_byte(folder / "step_000000001.safetensors")
    _edit_json(folder / "step_000000002.json", lambda m: m.update(format_version=7))
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*\(2 tried\); the "
                       "newest: .*format version 7.*upgrade ganforge") as info:
        ckpt.latest_checkpoint(tmp_path)
    assert "\n" not in str(info.value)


def test_tensors_file_cannot_point_outside_its_folder(tmp_path):
    folder = _two_checkpoints(tmp_path)
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes((folder / "step_000000001.safetensors").read_bytes())
    _edit_json(folder / "step_000000002.json",
               lambda m: m.update(tensors_file="../elsewhere.safetensors"))
    # Only the file name counts: it is looked up in checkpoints/, where it does not exist.
    with pytest.raises(CheckpointError, match="are missing"):
        ckpt.load_checkpoint(folder / "step_000000002.json")


def test_valid_checksum_but_not_safetensors_is_refused(tmp_path):
    import hashlib

    folder = _two_checkpoints(tmp_path)
    junk = b"\x80\x04junk that is not a safetensors header"
    (folder / "step_000000002.safetensors").write_bytes(junk)
    _edit_json(folder / "step_000000002.json",
               lambda m: m.update(sha256=hashlib.sha256(junk).hexdigest()))
    with pytest.raises(CheckpointError, match="is not a safetensors file"):
        ckpt.load_checkpoint(folder / "step_000000002.json")


def test_rotation_keeps_the_last_good_one_when_the_newest_is_corrupt(tmp_path, capsys):
    """A corrupt newest checkpoint is moved to corrupt/ (never deleted, never kept in the
    rotation where its higher step would push the good one out); the good one stays."""
    folder = _two_checkpoints(tmp_path)
    _flip_byte(folder / "step_000000002.safetensors")
    ckpt.rotate(tmp_path, keep=1)
    assert sorted(p.name for p in folder.iterdir()) == [
        "corrupt", "step_000000001.json", "step_000000001.safetensors"]
    assert sorted(p.name for p in (folder / "corrupt").iterdir()) == [
        "step_000000002.json", "step_000000002.safetensors"]
    err = capsys.readouterr().err
    assert err == ("ganforge: warning: checkpoints/step_000000002.json: its tensors fail their "
                   "checksum (truncated or corrupt); moved to checkpoints/corrupt/"
                   "step_000000002.json\n")
    _, _, meta = ckpt.latest_checkpoint(tmp_path)
    assert meta["step"] == 1


def test_rotation_after_a_save_that_came_out_corrupt(tmp_path, monkeypatch):
    """A disk that silently corrupts the newest file: the checkpoint does not count (save
    returns None, it goes to corrupt/), and keep=1 does not delete step 1."""
    from ganforge import fileio

    G, D, opt_G, opt_D = _objects()
    ckpt.save_checkpoint(tmp_path, 1, {"G": G}, {"G": opt_G}, {}, keep=1)
    real_write = fileio.write_bytes

    def bad_disk(path, data):
        real_write(path, data[:-7] if str(path).endswith(".safetensors") else data)

    monkeypatch.setattr(fileio, "write_bytes", bad_disk)
    warnings = []
    assert ckpt.save_checkpoint(tmp_path, 2, {"G": G}, {"G": opt_G}, {}, keep=1,
                                warn=warnings.append) is None
    assert warnings == ["checkpoints/step_000000002.json: did not read back after writing; "
                        "moved to checkpoints/corrupt/step_000000002.json"]
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000001.json"]
    assert ckpt.newest_complete(tmp_path) == (tmp_path / "checkpoints" / "step_000000001.json", 1)
    monkeypatch.setattr(fileio, "write_bytes", real_write)
    path = ckpt.save_checkpoint(tmp_path, 3, {"G": G}, {"G": opt_G}, {}, keep=1)  # good again
    assert path == tmp_path / "checkpoints" / "step_000000003.json"
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000003.json"]
    assert (tmp_path / "checkpoints" / "corrupt" / "step_000000002.safetensors").is_file()


def test_training_quarantines_what_reading_commands_only_report(tmp_path, capsys):
    """Commands that read a run warn on stderr and fall back, leaving the folder as it is;
    training (quarantined=True) moves the bad checkpoint aside. A second casualty of the same
    name does not overwrite the first."""
    folder = _two_checkpoints(tmp_path)
    truncated = folder / "step_000000002.safetensors"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    path, _, meta = ckpt.latest_checkpoint(tmp_path)  # as generate/evaluate/export read it
    assert meta["step"] == 1 and path.name == "step_000000001.json"
    assert capsys.readouterr().err == (
        "ganforge: warning: checkpoints/step_000000002.json: checkpoint '"
        f"{truncated}' fails its checksum (truncated or corrupt); using "
        "checkpoints/step_000000001.json (step 1) instead\n")
    assert truncated.is_file()
    (folder / "corrupt").mkdir()
    (folder / "corrupt" / "step_000000002.json").write_text("an earlier casualty")
    _, _, meta = ckpt.latest_checkpoint(tmp_path, quarantined=True)  # as --resume reads it
    assert meta["step"] == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"ganforge: warning: checkpoints/step_000000002.json: checkpoint '{truncated}' fails its "
        "checksum (truncated or corrupt); moved to checkpoints/corrupt/step_000000002.1.json; "
        "using checkpoints/step_000000001.json (step 1) instead"]
    assert (folder / "corrupt" / "step_000000002.json").read_text() == "an earlier casualty"
    assert (folder / "corrupt" / "step_000000002.1.safetensors").stat().st_size == \
        (folder / "step_000000001.safetensors").stat().st_size // 2
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step_000000001.json"]


def test_rotation_removes_what_a_killed_save_left(tmp_path):
    folder = _two_checkpoints(tmp_path)
    (folder / ".step_000000003.safetensors.k2j3.tmp").write_bytes(b"half")
    (folder / "step_000000003.safetensors").write_bytes(b"tensors without json")
    (folder / "best.safetensors").write_bytes(b"labelled: not ours to clean")
    assert ckpt.latest_checkpoint(tmp_path)[2]["step"] == 2  # neither is taken for a checkpoint
    ckpt.rotate(tmp_path, keep=5)
    assert sorted(p.name for p in folder.iterdir()) == [
        "best.safetensors", "step_000000001.json", "step_000000001.safetensors",
        "step_000000002.json", "step_000000002.safetensors"]


def test_pickled_checkpoint_names_are_refused_without_reading(tmp_path):
    for name in ("model.pt", "model.pth", "model.ckpt"):
        with pytest.raises(CheckpointError, match="pickled .pt/.pth/.ckpt files are never loaded"):
            ckpt.load_checkpoint(tmp_path / name)
