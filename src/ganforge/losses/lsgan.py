"""``lsgan``: least-squares GAN (Mao et al. 2017) with the 0–1 coding.

D minimises ``½ E[(D(x) − 1)²] + ½ E[D(G(z))²]`` and G minimises ``½ E[(D(G(z)) − 1)²]``. The
square keeps gradients for fakes that D already classifies correctly but that lie far from the
data, where the log-loss saturates. D's output is a raw score, never passed through a sigmoid.
"""

from __future__ import annotations

from typing import Optional

import torch

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.models.base import DOutput


def score_stats(loss: torch.Tensor, loss_real: torch.Tensor, loss_fake: torch.Tensor,
                 out_real: torch.Tensor, out_fake: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """The statistics of losses on raw scores: D's loss split, mean scores of real and fake."""
    return {
        "Loss/D": loss.detach(),
        "Loss/D/real": loss_real.detach(),
        "Loss/D/fake": loss_fake.detach(),
        "Critic/real": out_real.detach().mean(),
        "Critic/fake": out_fake.detach().mean(),
    }


@LOSSES.register("lsgan")
class LeastSquaresLoss(GANLoss):
    """LSGAN with targets a = 0 (fake), b = 1 (real), c = 1 (G's target)."""

    decision_threshold = 0.5  # midway between the fake (0) and real (1) targets

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        score_real, score_fake = out_real.adv, out_fake.adv
        loss_real = 0.5 * (score_real - 1.0).pow(2).mean()
        loss_fake = 0.5 * score_fake.pow(2).mean()
        loss = loss_real + loss_fake
        return LossOutput(loss, score_stats(loss, loss_real, loss_fake, score_real, score_fake))

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        loss = 0.5 * (out_fake.adv - 1.0).pow(2).mean()
        return LossOutput(loss, {"Loss/G": loss.detach()})
