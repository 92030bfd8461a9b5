"""The original GAN objectives (Goodfellow et al. 2014) with optional label smoothing.

``bce`` is the non-saturating game every DCGAN/cGAN implementation trains: D minimises the binary
cross-entropy of real → 1 and fake → 0; G minimises −log D(G(z)). ``minimax`` keeps the paper's
saturating G objective log(1 − D(G(z))), which gives vanishing gradients early in training and is
here to show exactly that.

Both work on D's raw logits (``binary_cross_entropy_with_logits``), which is numerically stable and
avoids the popular bug of an MSE or BCE loss applied to an output without a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.models.base import DOutput
from ganforge.settings import Rule, setting


def label_range() -> Rule:
    return Rule(lambda v: v is None or (len(v) == 2 and v[0] <= v[1]),
                "[low, high] with low <= high", "{key} must be [low, high] with low <= high, "
                "e.g. [0.7, 1.2]")


def _targets(like: torch.Tensor, value: float, value_range: Optional[list[float]]) -> torch.Tensor:
    """Target labels shaped like ``like``: a constant, or U(low, high) noise (noisy soft labels)."""
    if value_range is None:
        return torch.full_like(like, value)
    low, high = value_range
    return torch.rand_like(like) * (high - low) + low


@LOSSES.register("bce")
class NonSaturatingLoss(GANLoss):
    """Non-saturating GAN loss: BCE for D, −log D(G(z)) for G; optional one-sided/noisy labels."""

    @dataclass
    class Settings:
        real_label: float = setting(1.0, "BCE target for real images; 0.9 = one-sided "
                                    "smoothing")
        real_label_range: Optional[list[float]] = setting(
            None, "noisy soft labels for reals, e.g. [0.7, 1.2] (seed 000)", check=label_range())
        fake_label_range: Optional[list[float]] = setting(
            None, "noisy soft labels for fakes, e.g. [0.0, 0.3] (seed 000)", check=label_range())

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        logit_real, logit_fake = out_real.adv, out_fake.adv
        t_real = _targets(logit_real, self.cfg.real_label, self.cfg.real_label_range)
        t_fake = _targets(logit_fake, 0.0, self.cfg.fake_label_range)
        loss_real = F.binary_cross_entropy_with_logits(logit_real, t_real)
        loss_fake = F.binary_cross_entropy_with_logits(logit_fake, t_fake)
        loss = loss_real + loss_fake
        return LossOutput(loss, {
            "Loss/D": loss.detach(),
            "Loss/D/real": loss_real.detach(),
            "Loss/D/fake": loss_fake.detach(),
            "Prob/D(x)": torch.sigmoid(logit_real.detach()).mean(),
            "Prob/D(G(z))": torch.sigmoid(logit_fake.detach()).mean(),
        })

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        logits = out_fake.adv
        loss = self._g_objective(logits)
        return LossOutput(loss, {
            "Loss/G": loss.detach(),
            # D(G(z)) after D's update: seed 001's "before/after" pair with Prob/D(G(z)).
            "Prob/D(G(z))/G-step": torch.sigmoid(logits.detach()).mean(),
        })

    def _g_objective(self, logits: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


@LOSSES.register("minimax")
class MinimaxLoss(NonSaturatingLoss):
    """The paper's saturating minimax loss: G minimises log(1 − D(G(z)))."""

    def _g_objective(self, logits: torch.Tensor) -> torch.Tensor:
        # log(1 - sigmoid(l)) = -softplus(l); minimising it = minimising -BCE(l, 0).
        return -F.softplus(logits).mean()
