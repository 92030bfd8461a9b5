"""The standard GAN losses against hand-computed values on fixed logits."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.config import LossConfig
from ganforge.losses import LOSSES
from ganforge.models.base import DOutput


class FixedD(torch.nn.Module):
    """A 'discriminator' whose logits are the first pixel of each sample."""

    def forward(self, x, y=None):
        return DOutput(adv=x.flatten(1)[:, 0])


def sp(v: float) -> float:
    return math.log1p(math.exp(v))


REAL = torch.tensor([[0.0], [2.0]])
FAKE = torch.tensor([[0.0], [-1.0]])


@pytest.mark.parametrize("name", ["bce", "minimax"])
def test_discriminator_loss_values(name):
    out = LOSSES.get(name)(LossConfig()).discriminator_loss(FixedD(), REAL, None, FAKE, None)
    real = (sp(-0.0) + sp(-2.0)) / 2
    fake = (sp(0.0) + sp(-1.0)) / 2
    assert out.loss.item() == pytest.approx(real + fake, abs=1e-6)
    assert out.stats["Loss/D/real"].item() == pytest.approx(real, abs=1e-6)
    assert out.stats["Loss/D/fake"].item() == pytest.approx(fake, abs=1e-6)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    assert out.stats["Prob/D(x)"].item() == pytest.approx((sig(0) + sig(2)) / 2, abs=1e-6)
    assert out.stats["Prob/D(G(z))"].item() == pytest.approx((sig(0) + sig(-1)) / 2, abs=1e-6)


def test_non_saturating_generator_loss():
    out = LOSSES.get("bce")(LossConfig()).generator_loss(FixedD(), FAKE, None)
    assert out.loss.item() == pytest.approx((sp(0.0) + sp(1.0)) / 2, abs=1e-6)  # -log D(G(z))


def test_minimax_generator_loss():
    out = LOSSES.get("minimax")(LossConfig()).generator_loss(FixedD(), FAKE, None)
    # log(1 - D(G(z))) = -softplus(logit)
    assert out.loss.item() == pytest.approx(-(sp(0.0) + sp(-1.0)) / 2, abs=1e-6)


def test_minimax_saturates_where_non_saturating_does_not():
    """For a confident D (logit -8 on fakes) the minimax G gradient vanishes."""
    logits = torch.full((4, 1), -8.0, requires_grad=True)
    grads = {}
    for name in ("bce", "minimax"):
        logits.grad = None
        LOSSES.get(name)(LossConfig()).generator_loss(FixedD(), logits, None).loss.backward()
        grads[name] = logits.grad.abs().mean().item()
    assert grads["minimax"] < 1e-3 < grads["bce"]
    assert grads["bce"] / grads["minimax"] > 1000


def test_one_sided_label_smoothing():
    cfg = LossConfig(real_label=0.9)
    # Check the target through the gradient: d BCE / d logit = sigmoid(logit) - target.
    real = torch.zeros(3, 1, requires_grad=True)
    out = LOSSES.get("bce")(cfg).discriminator_loss(FixedD(), real, None, torch.zeros(3, 1), None)
    out.loss.backward()
    assert real.grad[:, 0].tolist() == pytest.approx([(0.5 - 0.9) / 3] * 3, abs=1e-6)


def test_noisy_soft_labels_stay_in_range():
    cfg = LossConfig(real_label_range=[0.7, 1.2], fake_label_range=[0.0, 0.3])
    torch.manual_seed(0)
    real = torch.zeros(4000, 1, requires_grad=True)
    fake = torch.zeros(4000, 1, requires_grad=True)
    LOSSES.get("bce")(cfg).discriminator_loss(FixedD(), real, None, fake, None).loss.backward()
    t_real = 0.5 - real.grad[:, 0] * 4000  # gradient = (sigmoid(0) - t) / N
    t_fake = 0.5 - fake.grad[:, 0] * 4000
    assert 0.7 <= t_real.min() and t_real.max() <= 1.2
    assert t_real.mean().item() == pytest.approx(0.95, abs=0.01)
    assert 0.0 <= t_fake.min() and t_fake.max() <= 0.3
    assert t_fake.mean().item() == pytest.approx(0.15, abs=0.01)
