"""``hinge``: the hinge loss of Lim & Ye (2017), used by SNGAN and the projection discriminator.

D minimises ``E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]``, G minimises ``−E[D(G(z))]``. Pair
it with ``model.spectral_norm=true`` for SNGAN (Miyato et al. 2018; the ``hinge-sn-mnist`` preset)
and with ``model.d_label=projection`` for the projection cGAN (``projection-mnist``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.losses.lsgan import score_stats
from ganforge.models.base import DOutput


@LOSSES.register("hinge")
class HingeLoss(GANLoss):
    """Hinge loss for D, the negated score for G (SNGAN, projection discriminator)."""

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        score_real, score_fake = out_real.adv, out_fake.adv
        loss_real = F.relu(1.0 - score_real).mean()
        loss_fake = F.relu(1.0 + score_fake).mean()
        loss = loss_real + loss_fake
        return LossOutput(loss, score_stats(loss, loss_real, loss_fake, score_real, score_fake))

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        loss = -out_fake.adv.mean()
        return LossOutput(loss, {"Loss/G": loss.detach()})
