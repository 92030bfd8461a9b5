"""``wgan-gp``: the Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

The Wasserstein loss of :mod:`ganforge.losses.wgan` plus ``λ (‖∇D(x̂)‖ − 1)²`` at random points
x̂ between real and fake samples (λ = ``loss.gp_weight`` = 10) instead of weight clipping. The
paper uses Adam 1e-4, β = (0, 0.9), 5 critic steps per G step and a critic without BatchNorm
(LayerNorm, seed 004) — BatchNorm is refused here, the bug of popular copies. For conditional
models the penalty points carry the real samples' labels. The samples are D's inputs as D sees
them (after ``loss.augment`` and instance noise, when those are on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganforge.losses.aids import DBatch
from ganforge.losses.base import LOSSES, Terms
from ganforge.losses.penalties import gradient_penalty, interpolate, refuse_batch_norm
from ganforge.losses.wgan import WassersteinLoss
from ganforge.models.base import Discriminator
from ganforge.settings import at_least, setting


@LOSSES.register("wgan-gp")
class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP: the Wasserstein loss plus a gradient penalty on real–fake interpolates."""

    @dataclass
    class Settings:  # not WGAN's: the penalty replaces its weight clipping
        gp_weight: float = setting(10.0, "weight lambda of the gradient penalty",
                                   check=at_least(0), message="{key} must be >= 0, e.g. 10")

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        refuse_batch_norm("wgan-gp", model_cfg)

    def d_penalty(self, batch: DBatch) -> Terms:
        points = interpolate(batch.x_real, batch.x_fake)
        penalty, norms = gradient_penalty(batch.discriminator, points, batch.y_real)
        return self.cfg.gp_weight * penalty, {"Loss/D/gp": penalty.detach(),
                                              "GradNorm/D(x_hat)": norms.mean()}

    def after_discriminator_step(self, discriminator: Discriminator) -> None:
        """No clipping: the penalty keeps D Lipschitz."""
