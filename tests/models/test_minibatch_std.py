"""The minibatch-std layer (ProGAN) by hand on fixed tensors, inside the mlp and dcgan Ds, and
its effect on how a D step scores real and fake batches."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tests.conftest import family_config
from ganforge.config import LossConfig, ModelConfig, resolve
from ganforge.errors import ConfigError
from ganforge.losses import LOSSES
from ganforge.losses.scoring import couples_samples, score
from ganforge.models import build_from_config
from ganforge.models.layers import MinibatchStd, minibatch_std

EPS_STD = math.sqrt(1e-8)  # what a group of equal values reads (the floor inside the root)


def identity_layer(width: int) -> nn.Linear:
    layer = nn.Linear(width, width, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(width))
    return layer


def test_vectors_get_each_groups_mean_std():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 8.0]])
    layer = MinibatchStd(identity_layer(2), 2, group=2)
    # group {0, 1}: stds 1 and ~0 -> 0.5; group {2, 3}: stds 1 and 2 -> 1.5
    first, second = (1.0 + EPS_STD) / 2, (1.0 + math.sqrt(4.0 + 1e-8)) / 2
    assert layer.stat(x).tolist() == pytest.approx([first, first, second, second], abs=1e-7)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, -2.0]))
    expected = x + torch.tensor([[first], [first], [second], [second]]) * torch.tensor([1.0, -2.0])
    torch.testing.assert_close(layer(x), expected)


def test_linear_equals_an_appended_feature():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    wrapped = MinibatchStd(nn.Linear(5, 3), 3, group=4)
    appended = nn.Linear(6, 3)
    with torch.no_grad():
        appended.weight.copy_(torch.cat([wrapped.layer.weight, wrapped.weight[:, None]], dim=1))
        appended.bias.copy_(wrapped.layer.bias)
    stat = torch.stack([x[i:i + 4].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
                        for i in (0, 0, 0, 0, 4, 4, 4, 4)])
    torch.testing.assert_close(wrapped(x), appended(torch.cat([x, stat[:, None]], dim=1)))


def test_conv_equals_an_appended_constant_channel_away_from_the_borders():
    torch.manual_seed(0)
    x = torch.randn(4, 2, 6, 6)
    wrapped = MinibatchStd(nn.Conv2d(2, 3, 3, 1, 1), 3, group=2)
    appended = nn.Conv2d(3, 3, 3, 1, 1)
    kernel_sum = wrapped.weight / 9  # a constant channel whose 3x3 kernel sums to `weight`
    with torch.no_grad():
        appended.weight.copy_(torch.cat([wrapped.layer.weight,
                                         kernel_sum.view(3, 1, 1, 1).expand(3, 1, 3, 3)], dim=1))
        appended.bias.copy_(wrapped.layer.bias)
    stat = wrapped.stat(x).view(4, 1, 1, 1).expand(4, 1, 6, 6)
    out, ref = wrapped(x), appended(torch.cat([x, stat], dim=1))
    assert out.shape == (4, 3, 6, 6)
    torch.testing.assert_close(out[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])


def test_groups_never_mix_and_shrink_to_divide_the_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 5)
    layer = MinibatchStd(identity_layer(5), 5, group=4)  # 6 = no multiple of 4: groups of 2
    expected = [x[i:i + 2].var(dim=0, unbiased=False).add(1e-8).sqrt().mean().item()
                for i in range(0, 6, 2) for _ in range(2)]
    assert layer.stat(x).tolist() == pytest.approx(expected, rel=1e-6)
    y = x.clone()
    y[5] += 10.0  # only the last group reads it
    assert torch.equal(layer(y)[:4], layer(x)[:4])
    assert layer.stat(x[:1]).item() == pytest.approx(EPS_STD)


def test_gradient_is_finite_where_a_group_agrees():
    x = torch.ones(4, 3, requires_grad=True)
    MinibatchStd(identity_layer(3), 3, group=4)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_off_and_bad_group_sizes():
    linear = nn.Linear(2, 2)
    assert minibatch_std(linear, 2, 0) is linear
    with pytest.raises(ConfigError, match="model.d_mbstd"):
        MinibatchStd(linear, 2, group=1)
    with pytest.raises(ConfigError, match=r"model\.d_mbstd=1 must be 0 \(off\) or a group"):
        resolve(None, None, ["model.d_mbstd=1"])
    assert resolve(None, None, ["model.d_mbstd=4"]).model.d_mbstd == 4
    with pytest.raises(ConfigError, match=r"model\.d_hidden"):
        build_from_config(ModelConfig(arch="mlp", d_hidden=[], d_mbstd=4), (1, 4, 4), 0)


@pytest.mark.parametrize("arch,shape,hidden", [("mlp", (1, 28, 28), [32, 16]),
                                                ("mlp", (1, 28, 28), [8]),
                                                ("dcgan", (1, 28, 28), None),
                                                ("dcgan", (3, 32, 32), None)])
@pytest.mark.parametrize("conditional", [False, True])
def test_discriminators_carry_the_layer_and_score_any_batch(arch, shape, hidden, conditional):
    extra = {"d_hidden": hidden} if hidden is not None else {}
    cfg = family_config(arch, g_width=4, d_width=4, z_dim=8, conditional=conditional,
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
    _, plain, args = build_from_config(family_config(arch, g_width=4, d_width=4, z_dim=8,
                                                   conditional=conditional, **extra),
                                       shape, 10 if conditional else 0)
    assert not any(isinstance(m, MinibatchStd) for m in plain.modules())
    assert args["discriminator"]["mbstd"] == 0 and not couples_samples(plain)


def test_a_d_step_scores_real_and_fake_apart_with_the_layer():
    cfg = ModelConfig(arch="mlp", d_hidden=[16, 16], g_hidden=[16], z_dim=4, d_mbstd=2)
    _, D, _ = build_from_config(cfg, (1, 4, 4), 0)
    layer = next(m for m in D.modules() if isinstance(m, MinibatchStd))
    with torch.no_grad():
        layer.weight.fill_(3.0)  # a D that leans on the statistic, so that mixing would show
    calls: list[int] = []
    D.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    torch.manual_seed(1)
    real, fake = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    # 3 + 3 in one forward: gcd(2, 6) = 2, so the group {2, 3} pairs the last real with the
    # first fake, and their scores change.
    fused = D(torch.cat([real, fake])).adv
    alone_real, alone_fake = D(real).adv, D(fake).adv
    # (relative: the normal02-initialised D scores near 1e-4)
    assert not torch.allclose(fused, torch.cat([alone_real, alone_fake]), rtol=0.1, atol=0.0)
    calls.clear()
    result = LOSSES.get("bce")(LossConfig()).discriminator_loss(D, real, None, fake, None)
    assert calls == [3, 3]  # real and fake apart
    bce = (torch.nn.functional.softplus(-alone_real).mean()
           + torch.nn.functional.softplus(alone_fake).mean())
    assert result.loss.item() == pytest.approx(bce.item(), rel=1e-6)
