"""Every GAN variant's loss: exact values on fixed tensors, penalties, clipping, the ACGAN split."""

from __future__ import annotations

import math
from typing import Optional

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.config import LossConfig
from ganforge.losses import LOSSES
from ganforge.losses.acgan import class_accuracy, class_loss
from ganforge.losses.dragan import perturb
from ganforge.losses.penalties import gradient_penalty, interpolate
from ganforge.models.base import Discriminator, DOutput


class LinearD(Discriminator):
    """D(x) = w·flatten(x) (+ optional class logits = x[:, :K]): gradients known in closed form."""

    def __init__(self, dim: int, scale: float = 1.0, n_classes: int = 0) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.w = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        flat = x.flatten(1)
        cls = flat[:, : self.n_classes] * 1.0 if self.n_classes else None
        return DOutput(adv=flat @ self.w, cls=cls, features=flat)


def cfg(**kw) -> LossConfig:
    return LossConfig(**kw)


REAL = torch.tensor([[1.0, 0.0], [0.0, 2.0]])   # D = x0 + x1 -> scores 1, 2
FAKE = torch.tensor([[-1.0, 0.0], [0.5, -1.5]])  # scores -1, -1


def d_and_g(name: str, **kw):
    loss = LOSSES.get(name)(cfg(name=name, **kw))
    D = LinearD(2)
    return loss, loss.discriminator_loss(D, REAL, None, FAKE, None), loss.generator_loss(D, FAKE, None)


def test_lsgan_values():
    _, d, g = d_and_g("lsgan")
    # D: 0.5*mean((1-1)^2, (2-1)^2) + 0.5*mean((-1)^2, (-1)^2) = 0.25 + 0.5
    assert d.loss.item() == pytest.approx(0.75)
    assert d.stats["Loss/D/real"].item() == pytest.approx(0.25)
    # G: 0.5*mean((-1-1)^2) = 2
    assert g.loss.item() == pytest.approx(2.0)


def test_hinge_values():
    _, d, g = d_and_g("hinge")
    # relu(1-1)=0, relu(1-2)=0 -> 0; relu(1+(-1))=0 twice -> 0
    assert d.loss.item() == pytest.approx(0.0)
    assert g.loss.item() == pytest.approx(1.0)  # -mean(-1, -1)
    loss = LOSSES.get("hinge")(cfg(name="hinge"))
    d2 = loss.discriminator_loss(LinearD(2, 0.25), REAL, None, FAKE, None)
    # scores real .25, .5 -> relu .75, .5 -> .625; fake -.25, -.25 -> relu .75, .75 -> .75
    assert d2.loss.item() == pytest.approx(0.625 + 0.75)


def test_wgan_values_and_clipping():
    loss, d, g = d_and_g("wgan")
    assert loss.n_critic == 5
    assert d.loss.item() == pytest.approx(-1.0 - 1.5)  # mean fake - mean real
    assert d.stats["Critic/W-distance"].item() == pytest.approx(2.5)
    assert g.loss.item() == pytest.approx(1.0)
    D = LinearD(2, scale=3.0)
    with torch.no_grad():
        D.w[0] = -4.0
    loss.after_discriminator_step(D)
    assert D.w.tolist() == pytest.approx([-0.01, 0.01])


def test_n_critic_override():
    assert LOSSES.get("wgan-gp")(cfg(n_critic=2)).n_critic == 2
    assert LOSSES.get("bce")(cfg()).n_critic == 1


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_gradient_penalty_of_a_linear_critic(scale):
    # D(x) = scale * (x0 + x1): the gradient is (scale, scale) everywhere, norm scale*sqrt(2).
    D = LinearD(2, scale)
    penalty, norms = gradient_penalty(D, interpolate(REAL, FAKE), None)
    assert norms.tolist() == pytest.approx([scale * math.sqrt(2)] * 2)
    assert penalty.item() == pytest.approx((scale * math.sqrt(2) - 1) ** 2)
    penalty.backward()  # d/dw of (|w|-1)^2 = 2(|w|-1) w/|w|, per weight: 2(s√2-1)/√2
    assert D.w.grad.tolist() == pytest.approx([2 * (scale * math.sqrt(2) - 1) / math.sqrt(2)] * 2)


def test_wgan_gp_adds_the_weighted_penalty():
    loss = LOSSES.get("wgan-gp")(cfg(name="wgan-gp", gp_weight=10.0))
    out = loss.discriminator_loss(LinearD(2, 2.0), REAL, None, FAKE, None)
    critic = 2.0 * (-1.0) - 2.0 * 1.5
    assert out.loss.item() == pytest.approx(critic + 10 * (2 * math.sqrt(2) - 1) ** 2, rel=1e-5)
    assert out.stats["GradNorm/D(x_hat)"].item() == pytest.approx(2 * math.sqrt(2))


def test_interpolates_lie_between_real_and_fake():
    torch.manual_seed(0)
    a, b = torch.zeros(64, 3), torch.ones(64, 3)
    x = interpolate(a, b)
    assert ((x >= 0) & (x <= 1)).all()
    assert (x == x[:, :1]).all()  # one alpha per sample


def test_dragan_perturbation_and_penalty():
    torch.manual_seed(0)
    real = torch.randn(256, 4)
    noisy = perturb(real, 0.5)
    delta = noisy - real
    assert delta.min() >= 0 and delta.max() <= 0.5 * real.std() + 1e-6
    loss = LOSSES.get("dragan")(cfg(name="dragan", gp_weight=10.0))
    out = loss.discriminator_loss(LinearD(2, 1.0), REAL, None, FAKE, None)
    bce = (F.binary_cross_entropy_with_logits(torch.tensor([1.0, 2.0]), torch.ones(2))
           + F.binary_cross_entropy_with_logits(torch.tensor([-1.0, -1.0]), torch.zeros(2)))
    assert out.loss.item() == pytest.approx(bce.item() + 10 * (math.sqrt(2) - 1) ** 2, rel=1e-5)


def acgan_d_step(**kw):
    """ACGAN's loss and D on fixed inputs: (loss, D, D's output, CE on reals, CE on fakes)."""
    loss = LOSSES.get("acgan")(cfg(name="acgan", **kw))
    D = LinearD(3, 0.0, n_classes=3)  # adv = 0 -> BCE = ln 2 each; class logits = the input
    out = loss.discriminator_loss(D, ACGAN_REAL, ACGAN_Y_REAL, ACGAN_FAKE, ACGAN_Y_FAKE)
    return (loss, D, out, F.cross_entropy(ACGAN_REAL, ACGAN_Y_REAL).item(),
            F.cross_entropy(ACGAN_FAKE, ACGAN_Y_FAKE).item())


ACGAN_REAL = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
ACGAN_FAKE = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
ACGAN_Y_REAL, ACGAN_Y_FAKE = torch.tensor([0, 1]), torch.tensor([2, 2])


def test_acgan_reports_class_loss_on_real_and_fake_separately():
    loss, D, out, ce_real, ce_fake = acgan_d_step()
    assert out.stats["Loss/D/class_real"].item() == pytest.approx(ce_real)
    assert out.stats["Loss/D/class_fake"].item() == pytest.approx(ce_fake)
    assert out.stats["Acc/D/class_real"].item() == 1.0
    assert out.stats["Acc/D/class_fake"].item() == 0.5
    assert out.loss.item() == pytest.approx(2 * math.log(2) + ce_real + ce_fake, rel=1e-6)
    # class_on_fake=false: D's class head learns from real images only
    only_real = LOSSES.get("acgan")(cfg(name="acgan", class_on_fake=False))
    out2 = only_real.discriminator_loss(D, ACGAN_REAL, ACGAN_Y_REAL, ACGAN_FAKE, ACGAN_Y_FAKE)
    assert out2.loss.item() == pytest.approx(2 * math.log(2) + ce_real, rel=1e-6)
    g = loss.generator_loss(D, ACGAN_FAKE, ACGAN_Y_FAKE)
    assert g.stats["Loss/G/class"].item() == pytest.approx(ce_fake)
    assert g.loss.item() == pytest.approx(math.log(2) + ce_fake, rel=1e-6)


def test_acgan_names_the_fake_side_heldout_when_the_head_does_not_train_on_fakes():
    _, _, out, ce_real, ce_fake = acgan_d_step(class_on_fake=False)
    assert "Loss/D/class_fake" not in out.stats and "Acc/D/class_fake" not in out.stats
    assert out.stats["Loss/D/class_fake_heldout"].item() == pytest.approx(ce_fake)
    assert out.stats["Acc/D/class_fake_heldout"].item() == 0.5
    # Measured, not trained: only the real side enters D's loss.
    assert out.loss.item() == pytest.approx(2 * math.log(2) + ce_real, rel=1e-6)


def test_class_loss_multi_label_uses_bce():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert class_loss(logits, y).item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, y).item())
    assert class_accuracy(logits, y).item() == pytest.approx(0.75)


def test_acgan_pretrain_loss_is_real_class_loss():
    loss = LOSSES.get("acgan")(cfg(name="acgan", pretrain_steps=3))
    assert loss.pretrain_steps == 3
    D = LinearD(2, 0.0, n_classes=2)
    out = loss.pretrain_loss(D, REAL, torch.tensor([0, 1]))
    assert out.loss.item() == pytest.approx(F.cross_entropy(REAL, torch.tensor([0, 1])).item())


def test_spectral_norm_keeps_the_largest_singular_value_near_one():
    from ganforge.models.dcgan import DCGANDiscriminator

    torch.manual_seed(0)
    D = DCGANDiscriminator([1, 28, 28], width=8, spectral_norm=True)
    D.train()
    for _ in range(30):  # power iterations run in training-mode forwards
        D(torch.randn(4, 1, 28, 28))
    for m in D.modules():
        if isinstance(m, nn.Linear):
            sigma = torch.linalg.matrix_norm(m.weight.detach(), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=0.05)
        if isinstance(m, nn.Conv2d):  # SN normalises the (out, in*k*k) reshaped kernel
            w = m.weight.detach().flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_registry_lists_every_variant():
    assert set(LOSSES.names()) >= {"bce", "minimax", "lsgan", "hinge", "wgan", "wgan-gp",
                                   "dragan", "acgan"}
