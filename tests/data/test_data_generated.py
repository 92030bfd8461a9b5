"""Datasets that need no files: the embedded digits, toy-2d and synthetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.data import build_dataset
from ganforge.data.embedded import split_indices

# ------------------------------------------------------------------------------ digits


def test_digits_train_and_test_are_balanced_and_disjoint(data_cfg):
    train = build_dataset(data_cfg(name="digits", split="train"))
    test = build_dataset(data_cfg(name="digits", split="test"))
    assert train.x.shape == (4000, 1, 28, 28) and test.x.shape == (1000, 1, 28, 28)
    assert train.x.dtype == torch.uint8 and train.y.dtype == torch.int64
    assert torch.bincount(train.y).tolist() == [400] * 10
    assert torch.bincount(test.y).tolist() == [100] * 10
    assert train.n_classes == 10 and train.class_names == [str(d) for d in range(10)]
    # No test image also appears in train.
    train_rows = {row.tobytes() for row in train.x.flatten(1).numpy()}
    assert not any(row.tobytes() in train_rows for row in test.x.flatten(1).numpy())
    assert 20 < train.x.float().mean() < 60  # real MNIST digits: mostly black, ~33 on average


def test_digits_prefix_is_balanced(data_cfg):
    data = build_dataset(data_cfg(name="digits", limit=50))
    assert torch.bincount(data.y).tolist() == [5] * 10
    assert data.y[:10].tolist() == list(range(10))


def test_split_indices_is_stratified_and_deterministic():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 5)
    train = split_indices(labels, "train")
    test = split_indices(labels, "test")
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(20))
    assert np.bincount(labels[train]).tolist() == [8, 4, 4]
    assert labels[train[:3]].tolist() == [0, 1, 2]  # round-robin over classes
    assert np.array_equal(train, split_indices(labels, "train"))


# ------------------------------------------------------------------------------ toy-2d

@pytest.mark.parametrize("toy,modes,scale,std", [("8gaussians", 8, 1.414, 0.02),
                                                 ("25gaussians", 25, 2.828, 0.05)])
def test_gaussian_mixtures(data_cfg, toy, modes, scale, std):
    data = build_dataset(data_cfg(name="toy-2d", toy=toy, toy_samples=5000))
    assert data.x.shape == (5000, 2) and data.x.dtype == torch.float32
    assert data.y is None and data.n_classes == 0 and not data.is_image
    centers, mode = data.extra["centers"], data.extra["modes"]
    assert centers.shape == (modes, 2) and mode.shape == (5000,)
    assert torch.bincount(mode, minlength=modes).min() >= 5000 // modes  # every mode used
    residual = data.x - centers[mode]
    assert abs(residual.std().item() - std / scale) < 0.1 * std / scale
    if toy == "8gaussians":
        torch.testing.assert_close(centers.norm(dim=1), torch.full((8,), 2 / 1.414))
    else:
        assert sorted(set(np.round(centers[:, 0].numpy() * scale, 6).tolist())) == [-4, -2, 0, 2, 4]


def test_swissroll(data_cfg):
    data = build_dataset(data_cfg(name="toy-2d", toy="swissroll", toy_samples=3000))
    assert data.x.shape == (3000, 2) and "modes" not in data.extra
    radius = data.x.norm(dim=1) * 7.5  # |(t cos t, t sin t)| = t, in [1.5 pi, 4.5 pi] + noise
    assert radius.min() > 1.5 * math.pi - 1.5 and radius.max() < 4.5 * math.pi + 1.5


def test_ring_angle_conditions_match_the_points(data_cfg):
    from ganforge.data.toy import RING_RADIUS, RING_STD, ring_target

    data = build_dataset(data_cfg(name="toy-2d", toy="ring-angle", toy_samples=4000))
    assert data.x.shape == (4000, 2) and data.y.shape == (4000, 2)
    assert data.y.dtype == torch.float32 and data.n_classes == 0
    assert data.class_names == ["cos", "sin"]
    # Each condition is the unit vector of its point's angle (the noise is radial only).
    torch.testing.assert_close(data.y.norm(dim=1), torch.ones(4000))
    point_angle = torch.atan2(data.x[:, 1].double(), data.x[:, 0].double())
    cond_angle = torch.atan2(data.y[:, 1].double(), data.y[:, 0].double())
    gap = torch.remainder(point_angle - cond_angle + math.pi, 2 * math.pi) - math.pi
    assert gap.abs().max() < 1e-6
    # Radius R with radial noise std RING_STD; angles cover the circle evenly.
    radius = data.x.norm(dim=1)
    assert abs(radius.mean().item() - RING_RADIUS) < 0.005
    assert abs(radius.std().item() - RING_STD) < 0.1 * RING_STD
    assert torch.histc(cond_angle.float(), bins=8, min=-math.pi, max=math.pi).min() > 400
    # The target of a condition is the noiseless ring point of the same angle.
    target = ring_target(data.y)
    torch.testing.assert_close(target, (data.y.double() * RING_RADIUS))
    assert ((data.x.double() - target).norm(dim=1) - (radius.double() - RING_RADIUS).abs()
            ).abs().max() < 1e-6
    test = build_dataset(data_cfg(name="toy-2d", toy="ring-angle", toy_samples=100,
                                  split="test"))
    assert not torch.equal(test.y, data.y[:100])


def test_ring_angle_refuses_a_class_head(data_cfg):
    from ganforge.config import ModelConfig
    from ganforge.data.vectors import check_condition_use, label_kind
    from ganforge.errors import ConfigError

    data = build_dataset(data_cfg(name="toy-2d", toy="ring-angle", toy_samples=100))
    assert label_kind(data.y) == "continuous"
    check_condition_use(data, ModelConfig(conditional=True, d_label="input"))
    with pytest.raises(ConfigError, match="d_label=classifier"):
        check_condition_use(data, ModelConfig(conditional=True, d_label="classifier"))


def test_toy_is_deterministic_and_limit_keeps_modes_aligned(data_cfg):
    full = build_dataset(data_cfg(name="toy-2d", toy_samples=1000))
    again = build_dataset(data_cfg(name="toy-2d", toy_samples=1000))
    assert torch.equal(full.x, again.x)
    head = build_dataset(data_cfg(name="toy-2d", toy_samples=1000, limit=10))
    assert torch.equal(head.x, full.x[:10])
    assert torch.equal(head.extra["modes"], full.extra["modes"][:10])
    assert head.extra["centers"].shape == (8, 2)
    test = build_dataset(data_cfg(name="toy-2d", toy_samples=1000, split="test"))
    assert not torch.equal(test.x, full.x)


# ------------------------------------------------------------------------------ synthetic

@pytest.mark.parametrize("size,channels", [(None, None), (16, 3), (32, 1)])
def test_synthetic_shapes(data_cfg, size, channels):
    data = build_dataset(data_cfg(name="synthetic", image_size=size, channels=channels, limit=100))
    s, c = size or 28, channels or 1
    assert data.x.shape == (100, c, s, s) and data.x.dtype == torch.uint8
    assert data.n_classes == 10 and torch.bincount(data.y).tolist() == [10] * 10


def test_synthetic_default_size_and_determinism(data_cfg):
    a = build_dataset(data_cfg(name="synthetic"))
    b = build_dataset(data_cfg(name="synthetic"))
    assert len(a) == 2000 and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_synthetic_classes_are_told_apart_by_a_nearest_mean(data_cfg):
    train = build_dataset(data_cfg(name="synthetic", limit=500))
    test = build_dataset(data_cfg(name="synthetic", limit=200, split="test"))
    means = torch.stack([train.x[train.y == k].float().mean(0).flatten() for k in range(10)])
    predicted = torch.cdist(test.x.float().flatten(1), means).argmin(1)
    assert (predicted == test.y).float().mean() == 1.0
