"""``dragan``: the non-saturating GAN loss plus DRAGAN's gradient penalty (Kodali et al. 2017).

The penalty ``λ (‖∇D(x̂)‖ − 1)²`` is taken at points x̂ between each real sample x and a noisy
copy ``x + c · std(x) · u`` (u ~ U(0, 1) per value, c = ``loss.dragan_noise`` = 0.5, λ =
``loss.gp_weight`` = 10). Keeping D's gradients tame *around the data* is what the paper argues
prevents the sharp local optima behind mode collapse; the rest is the ``bce`` game, including
its label-smoothing options.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ganforge.losses.base import LOSSES, LossOutput
from ganforge.losses.penalties import gradient_penalty, interpolate, refuse_batch_norm
from ganforge.losses.standard import NonSaturatingLoss
from ganforge.models.base import Discriminator


def perturb(real: torch.Tensor, scale: float) -> torch.Tensor:
    """``real + scale · std(real) · u`` with u ~ U(0, 1) elementwise (the paper's perturbation).

    Args:
        real: (N, *shape) real samples.
        scale: c, in units of the batch's standard deviation.

    Returns:
        (N, *shape) perturbed copies.
    """
    return real + scale * real.std() * torch.rand_like(real)


@LOSSES.register("dragan")
class DraganLoss(NonSaturatingLoss):
    """Non-saturating BCE plus a gradient penalty in a noisy neighbourhood of the real data."""

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        refuse_batch_norm("dragan", model_cfg)

    def discriminator_loss(
        self,
        discriminator: Discriminator,
        real: torch.Tensor,
        y_real: Optional[torch.Tensor],
        fake: torch.Tensor,
        y_fake: Optional[torch.Tensor],
    ) -> LossOutput:
        base = super().discriminator_loss(discriminator, real, y_real, fake, y_fake)
        points = interpolate(real, perturb(real, self.cfg.dragan_noise))
        penalty, norms = gradient_penalty(discriminator, points, y_real)
        loss = base.loss + self.cfg.gp_weight * penalty
        stats = dict(base.stats)
        stats["Loss/D"] = loss.detach()
        stats["Loss/D/gp"] = penalty.detach()
        stats["GradNorm/D(x_hat)"] = norms.mean()
        return LossOutput(loss, stats)
