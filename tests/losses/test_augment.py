"""DiffAugment policies and the ``augment`` aid: identity at p=0, shapes, gradients, pixels."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import LossConfig
from ganforge.errors import ConfigError
from ganforge.losses import LOSSES, GANLoss
from ganforge.losses.aids.augment import AUGMENTS, cutout, shift, translation
from tests.losses.nets import LinearD, RecordingD


def images(n: int = 16, c: int = 1, h: int = 16, w: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("name", AUGMENTS.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_policies_keep_shape_and_dtype_and_change_images_at_p1(name, channels):
    torch.manual_seed(0)
    x = images(c=channels)
    out = AUGMENTS.get(name)(x, 1.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(1)
    assert changed.float().mean() > 0.8  # nearly every sample is transformed


@pytest.mark.parametrize("name", AUGMENTS.names())
def test_policies_are_the_identity_at_p0(name):
    x = images()
    assert torch.equal(AUGMENTS.get(name)(x, 0.0), x)


@pytest.mark.parametrize("name", AUGMENTS.names())
def test_p_is_a_per_sample_probability(name):
    torch.manual_seed(0)
    x = images(n=2000, h=8, w=8)
    changed = (AUGMENTS.get(name)(x, 0.3) != x).flatten(1).any(1).float().mean().item()
    # color draws three operations with p each: 1 - 0.7^2 of the gray samples change
    expected = 1 - 0.7 ** 2 if name == "color" else 0.3
    assert changed == pytest.approx(expected, abs=0.04)


def test_shift_moves_content_by_whole_pixels():
    x = torch.full((2, 1, 16, 16), -1.0)
    x[:, 0, 6, 7] = 1.0  # away from the borders, so no reflection brings it back in
    out = shift(x, torch.tensor([2, -1]), torch.tensor([-3, 1]), 2, 3)
    assert out[0, 0].argmax().item() == (6 + 2) * 16 + (7 - 3)
    assert out[1, 0].argmax().item() == (6 - 1) * 16 + (7 + 1)
    assert sorted(out.unique().tolist()) == [-1.0, 1.0]  # whole pixels: no interpolation
    assert (out == 1.0).sum().item() == 2


def test_translation_is_a_shift_within_an_eighth_of_the_side():
    torch.manual_seed(0)
    x = torch.full((64, 1, 16, 16), -1.0)
    x[:, 0, 7, 8] = 1.0  # far enough from the border for every shift
    out = translation(x, 1.0)
    rows, cols = (out[:, 0] == 1.0).nonzero()[:, 1], (out[:, 0] == 1.0).nonzero()[:, 2]
    assert len(rows) == 64 and sorted(out.unique().tolist()) == [-1.0, 1.0]
    assert (rows - 7).abs().max() <= 2 and (cols - 8).abs().max() <= 2  # 16/8 = 2 pixels
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # the shifts vary per sample


def test_translation_fills_borders_by_reflection():
    x = torch.arange(8.0).repeat(1, 1, 8, 1)  # columns 0..7
    out = shift(x, torch.tensor([0]), torch.tensor([1]), 0, 1)
    assert out[0, 0, 0].tolist() == [1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_cutout_zeroes_one_square_of_half_the_side():
    torch.manual_seed(0)
    x = torch.ones(32, 1, 16, 16)
    out = cutout(x, 1.0)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    for hole in out[:, 0] == 0:
        rows, cols = hole.any(1).nonzero()[:, 0], hole.any(0).nonzero()[:, 0]
        assert hole.sum() == len(rows) * len(cols)  # a rectangle ...
        assert len(rows) <= 8 and len(cols) <= 8     # ... of at most 8 x 8, clipped at borders
    assert (out[:, 0] == 0).sum((1, 2)).max() == 64


def test_color_on_gray_images_is_an_affine_map_per_sample():
    """Saturation does nothing to one channel; brightness and contrast are a·x + b."""
    torch.manual_seed(0)
    x = images(n=8)
    out = AUGMENTS.get("color")(x, 1.0)
    for xi, oi in zip(x.flatten(1), out.flatten(1)):
        design = torch.stack([xi, torch.ones_like(xi)], 1)
        coef = torch.linalg.lstsq(design, oi[:, None]).solution
        torch.testing.assert_close(design @ coef, oi[:, None], atol=1e-5, rtol=0)


def aug_loss(name: str = "bce", **kw) -> GANLoss:
    return LOSSES.get(name)(LossConfig(name=name, augment=["translation", "cutout", "color"], **kw))


def test_d_step_augments_real_and_fake():
    torch.manual_seed(0)
    real, fake = images(n=8, seed=1), images(n=8, seed=2)
    D = RecordingD()
    out = aug_loss().discriminator_loss(D, real, None, fake, None)
    seen = D.calls[0]
    assert seen.shape == (16, 1, 16, 16)
    assert (seen[:8] != real).flatten(1).any(1).all() and (seen[8:] != fake).flatten(1).any(1).all()
    assert out.stats["Aug/p"] == 1.0  # fixed p defaults to 1 (DiffAugment)


def test_augment_p_zero_leaves_d_inputs_alone():
    real, fake = images(n=4, seed=1), images(n=4, seed=2)
    D = RecordingD()
    aug_loss(augment_p=0.0).discriminator_loss(D, real, None, fake, None)
    assert torch.equal(D.calls[0], torch.cat([real, fake]))


@pytest.mark.parametrize("policy", AUGMENTS.names())
@pytest.mark.parametrize("name", ["bce", "rpgan"])
def test_g_step_gradients_reach_the_fakes_through_the_augmentation(policy, name):
    torch.manual_seed(0)
    loss = LOSSES.get(name)(LossConfig(name=name, augment=[policy]))
    D = LinearD([0.1] * 256)
    real = images(n=4, seed=1)
    loss.discriminator_loss(D, real, None, images(n=4, seed=2), None)
    fake = images(n=4, seed=3).requires_grad_(True)
    loss.generator_loss(D, fake, None).loss.backward()
    assert fake.grad is not None and (fake.grad.flatten(1).abs().sum(1) > 0).all()


def test_augmentation_is_refused_for_vector_data():
    cfg = LossConfig(augment=["translation"])
    with pytest.raises(ConfigError, match="vectors") as err:
        GANLoss.check_data(cfg, (2,))
    assert "\n" not in str(err.value)
    GANLoss.check_data(cfg, (1, 28, 28))  # images are fine
    GANLoss.check_data(LossConfig(), (2,))  # augmentation off: vectors are fine
    with pytest.raises(ConfigError, match="loss.augment"):  # and at the first D step, too
        LOSSES.get("bce")(cfg).discriminator_loss(RecordingD(), torch.zeros(4, 2), None,
                                                  torch.zeros(4, 2), None)


def test_unknown_policy_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid augmentations: color, cutout, translation"):
        LOSSES.get("bce")(LossConfig(augment=["rotate"]))


def test_blank_policy_list_means_off():
    assert LOSSES.get("bce")(LossConfig(augment=[""])).aids == {}
