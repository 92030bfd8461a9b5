"""The minibatch-std layer (ProGAN) by hand on fixed tensors, inside the mlp and dcgan Ds, and
its effect on how a D step scores real and fake batches."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.config import LossConfig, ModelConfig, resolve
from ganforge.errors import ConfigError
from ganforge.losses import LOSSES
from ganforge.losses.scoring import couples_samples, score
from ganforge.models import build_from_config
from ganforge.models.layers import MinibatchStd, minibatch_std

EPS_STD = math.sqrt(1e-8)  # what a group of equal values reads (the floor inside the root)


def test_vectors_get_each_groups_mean_std():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 8.0]])
    out = MinibatchStd(group=2)(x)
    assert out.shape == (4, 3)
    assert torch.equal(out[:, :2], x)  # the features pass through untouched
    # group {0, 1}: stds 1 and ~0 -> 0.5; group {2, 3}: stds 1 and 2 -> 1.5
    first, second = (1.0 + EPS_STD) / 2, (1.0 + math.sqrt(4.0 + 1e-8)) / 2
    assert out[:, 2].tolist() == pytest.approx([first, first, second, second], abs=1e-7)


def test_maps_get_a_constant_channel():
    x = torch.zeros(4, 3, 2, 2)
    x[1] = 2.0  # group {0, 1}: every value differs by 2 -> std 1
    out = MinibatchStd(group=2)(x)
    assert out.shape == (4, 4, 2, 2)
    torch.testing.assert_close(out[:2, 3], torch.full((2, 2, 2), math.sqrt(1.0 + 1e-8)))
    torch.testing.assert_close(out[2:, 3], torch.full((2, 2, 2), EPS_STD))


def test_groups_never_mix_and_shrink_to_divide_the_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    layer = MinibatchStd(group=4)  # 6 is no multiple of 4: groups of gcd(4, 6) = 2
    out = layer(x)
    expected = [x[i:i + 2].var(dim=0, unbiased=False).add(1e-8).sqrt().mean().item()
                for i in range(0, 6, 2) for _ in range(2)]
    assert out[:, 5].tolist() == pytest.approx(expected, rel=1e-6)
    y = x.clone()
    y[5] += 10.0  # only the last group reads it
    assert torch.equal(layer(y)[:4, 5], out[:4, 5])
    single = layer(x[:1])
    assert single[0, 5].item() == pytest.approx(EPS_STD)


def test_gradient_is_finite_where_a_group_agrees():
    x = torch.ones(4, 3, requires_grad=True)
    MinibatchStd(group=4)(x)[:, 3].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_off_and_bad_group_sizes():
    assert isinstance(minibatch_std(0), torch.nn.Identity)
    with pytest.raises(ConfigError, match="model.d_mbstd"):
        MinibatchStd(group=1)
    with pytest.raises(ConfigError, match=r"model\.d_mbstd=1 must be 0 \(off\) or a group"):
        resolve(None, None, ["model.d_mbstd=1"])
    assert resolve(None, None, ["model.d_mbstd=4"]).model.d_mbstd == 4


@pytest.mark.parametrize("arch,shape,hidden", [("mlp", (1, 28, 28), [32, 16]),
                                                ("mlp", (1, 28, 28), []),
                                                ("dcgan", (1, 28, 28), None),
                                                ("dcgan", (3, 32, 32), None)])
@pytest.mark.parametrize("conditional", [False, True])
def test_discriminators_carry_the_layer_and_score_any_batch(arch, shape, hidden, conditional):
    extra = {"d_hidden": hidden} if hidden is not None else {}
    cfg = ModelConfig(arch=arch, g_width=4, d_width=4, z_dim=8, conditional=conditional,
                      d_mbstd=4, **extra)
    _, D, args = build_from_config(cfg, shape, 10 if conditional else 0)
    assert args["discriminator"]["mbstd"] == 4
    layers = [m for m in D.modules() if isinstance(m, MinibatchStd)]
    assert len(layers) == 1 and layers[0].group == 4 and couples_samples(D)
    for n in (8, 6, 1):
        x = torch.rand(n, *shape) * 2 - 1
        y = torch.arange(n) % 10 if conditional else None
        assert D(x, y).adv.shape == (n,)
    # Without the option nothing changes: no layer, and the D may be fused again.
    _, plain, args = build_from_config(ModelConfig(arch=arch, g_width=4, d_width=4, z_dim=8,
                                                   conditional=conditional, **extra),
                                       shape, 10 if conditional else 0)
    assert not any(isinstance(m, MinibatchStd) for m in plain.modules())
    assert args["discriminator"]["mbstd"] == 0 and not couples_samples(plain)


def test_a_d_step_scores_real_and_fake_apart_with_the_layer():
    cfg = ModelConfig(arch="mlp", d_hidden=[16, 16], g_hidden=[16], z_dim=4, d_mbstd=2)
    _, D, _ = build_from_config(cfg, (1, 4, 4), 0)
    torch.manual_seed(1)
    real, fake = torch.rand(4, 1, 4, 4), torch.rand(4, 1, 4, 4)
    fused_would_be = D(torch.cat([real, fake])).adv
    out_real, out_fake = score(D, [real, fake], [None, None])
    torch.testing.assert_close(out_real.adv, D(real).adv)
    torch.testing.assert_close(out_fake.adv, D(fake).adv)
    # Groups of 2 inside 4 + 4 never straddle the halves, so here fusing would agree; a batch
    # of 3 + 3 would not (gcd(2, 6) = 2 straddles 2..3): the scorer never fuses such a D.
    torch.testing.assert_close(torch.cat([out_real.adv, out_fake.adv]), fused_would_be)
    loss = LOSSES.get("bce")(LossConfig())
    result = loss.discriminator_loss(D, real[:3], None, fake[:3], None)
    expected_real, expected_fake = D(real[:3]).adv, D(fake[:3]).adv
    bce = (torch.nn.functional.softplus(-expected_real).mean()
           + torch.nn.functional.softplus(expected_fake).mean())
    assert result.loss.item() == pytest.approx(bce.item(), rel=1e-6)
