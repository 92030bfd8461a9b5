"""``wgan-gp``: the Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

The Wasserstein loss of :mod:`ganforge.losses.wgan` plus ``λ (‖∇D(x̂)‖ − 1)²`` at random points
x̂ between real and fake samples (λ = ``loss.gp_weight`` = 10) instead of weight clipping. The
paper uses Adam 1e-4, β = (0, 0.9), 5 critic steps per G step and a critic without BatchNorm
(LayerNorm, seed 004) — BatchNorm is refused here, the bug of popular copies. For conditional
models the penalty points carry the real samples' labels.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ganforge.losses.base import LOSSES, LossOutput
from ganforge.losses.penalties import gradient_penalty, interpolate, refuse_batch_norm
from ganforge.losses.wgan import WassersteinLoss
from ganforge.models.base import Discriminator


@LOSSES.register("wgan-gp")
class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP: the Wasserstein loss plus a gradient penalty on real–fake interpolates."""

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        refuse_batch_norm("wgan-gp", model_cfg)

    def discriminator_loss(
        self,
        discriminator: Discriminator,
        real: torch.Tensor,
        y_real: Optional[torch.Tensor],
        fake: torch.Tensor,
        y_fake: Optional[torch.Tensor],
    ) -> LossOutput:
        base = super().discriminator_loss(discriminator, real, y_real, fake, y_fake)
        penalty, norms = gradient_penalty(discriminator, interpolate(real, fake), y_real)
        loss = base.loss + self.cfg.gp_weight * penalty
        stats = dict(base.stats)
        stats["Loss/D"] = loss.detach()
        stats["Loss/D/gp"] = penalty.detach()
        stats["GradNorm/D(x_hat)"] = norms.mean()
        return LossOutput(loss, stats)

    def after_discriminator_step(self, discriminator: Discriminator) -> None:
        """No clipping: the penalty keeps D Lipschitz."""
