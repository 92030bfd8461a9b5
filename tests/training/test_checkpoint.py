"""Checkpoint files: round trip, checksum, rotation, format version, fallback."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from ganforge.errors import CheckpointError
from ganforge.training import checkpoint as ckpt


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
