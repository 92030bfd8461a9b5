"""``dragan``: the non-saturating GAN loss plus DRAGAN's gradient penalty (Kodali et al. 2017).

The penalty ``λ (‖∇D(x̂)‖ − 1)²`` is taken at points x̂ between each real sample x and a noisy
copy ``x + c · std(x) · u`` (u ~ U(0, 1) per value, c = ``loss.dragan_noise`` = 0.5, λ =
``loss.gp_weight`` = 10). Keeping D's gradients tame *around the data* is what the paper argues
prevents the sharp local optima behind mode collapse; the rest is the ``bce`` game, including
its label-smoothing options. x is D's real input as D sees it (after ``loss.augment`` and
instance noise, when those are on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ganforge.losses.aids import DBatch
from ganforge.losses.base import LOSSES, Terms
from ganforge.losses.penalties import gradient_penalty, interpolate, refuse_batch_norm
from ganforge.losses.standard import NonSaturatingLoss
from ganforge.settings import at_least, positive, setting


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

    @dataclass
    class Settings(NonSaturatingLoss.Settings):
        gp_weight: float = setting(10.0, "weight lambda of the gradient penalty",
                                   check=at_least(0), message="{key} must be >= 0, e.g. 10")
        dragan_noise: float = setting(0.5, "perturbation scale c (times the batch's std)",
                                      check=positive(),
                                      message="{key} must be positive, e.g. 0.5")

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        refuse_batch_norm("dragan", model_cfg)

    def d_penalty(self, batch: DBatch) -> Terms:
        real = batch.x_real.detach()
        points = interpolate(real, perturb(real, self.cfg.dragan_noise))
        penalty, norms = gradient_penalty(batch.discriminator, points, batch.y_real)
        return self.cfg.gp_weight * penalty, {"Loss/D/gp": penalty.detach(),
                                              "GradNorm/D(x_hat)": norms.mean()}
