"""``ralsgan``: the relativistic average least-squares GAN (Jolicoeur-Martineau 2018).

D judges whether a real sample scores above the *average* fake, and a fake below the average
real, by a margin m, in least squares:

    L_D = E_x[(C(x) − E_z C(G(z)) − m)²] + E_z[(C(G(z)) − E_x C(x) + m)²]
    L_G = E_z[(C(G(z)) − E_x C(x) − m)²] + E_x[(C(x) − E_z C(G(z)) + m)²]

G's objective reads real scores too (``g_needs_real``): the loop pairs its fakes with the real
batch of the latest D step. The margin is this loss's own setting, ``loss.margin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ganforge.plugin import DOutput, GANLoss, LossOutput, positive, setting


def _gap(a: torch.Tensor, b: torch.Tensor, margin: float) -> torch.Tensor:
    """``mean((a − mean(b) − margin)²)`` for (N,) scores a and (M,) scores b."""
    return (a - b.mean() - margin).pow(2).mean()


class RaLSGANLoss(GANLoss):
    """Relativistic average LSGAN: real above the average fake, fake below the average real."""

    g_needs_real = True

    @dataclass
    class Settings:
        margin: float = setting(1.0, "the gap m between a score and the other side's average",
                                check=positive(), example="1")

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        m = self.cfg.margin
        real, fake = out_real.adv, out_fake.adv
        loss = _gap(real, fake, m) + _gap(fake, real, -m)
        return LossOutput(loss, {
            "Loss/D": loss.detach(),
            "Score/real_minus_fake": (real.mean() - fake.mean()).detach(),
        })

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        assert out_real is not None, "ralsgan pairs G's fakes with a real batch"
        m = self.cfg.margin
        real, fake = out_real.adv, out_fake.adv
        loss = _gap(fake, real, m) + _gap(real, fake, -m)
        return LossOutput(loss, {"Loss/G": loss.detach()})

    def real_signs(self, real_adv: torch.Tensor, fake_adv: torch.Tensor) -> torch.Tensor:
        """Relativistic scores have no fixed zero: "real" means above the fakes' mean."""
        return torch.sign(real_adv - fake_adv.mean())
