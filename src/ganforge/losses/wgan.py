"""``wgan``: the Wasserstein GAN with weight clipping (Arjovsky et al. 2017).

The critic D scores samples with an unbounded real number; it maximises
``E[D(x)] − E[D(G(z))]`` (an estimate of the Wasserstein-1 distance when D is 1-Lipschitz) and G
maximises ``E[D(G(z))]``. Clipping every critic weight to [−c, c] after each critic step
(c = ``loss.clip`` = 0.01) keeps D Lipschitz, crudely; the paper trains with RMSprop, lr 5e-5 and
5 critic steps per G step (the ``wgan-mnist`` preset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.models.base import Discriminator, DOutput
from ganforge.settings import positive, setting


@LOSSES.register("wgan")
class WassersteinLoss(GANLoss):
    """WGAN with weight clipping (5 critic steps per G step by default)."""

    default_n_critic = 5

    @dataclass
    class Settings:
        clip: float = setting(0.01, "critic weights are clipped to [-clip, clip] after each "
                              "critic step", check=positive(),
                              message="{key} must be positive, e.g. 0.01")

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        score_real, score_fake = out_real.adv.mean(), out_fake.adv.mean()
        loss = score_fake - score_real
        return LossOutput(loss, self._stats(loss, score_real, score_fake))

    @staticmethod
    def _stats(loss: torch.Tensor, score_real: torch.Tensor, score_fake: torch.Tensor
               ) -> dict[str, torch.Tensor | float]:
        return {
            "Loss/D": loss.detach(),
            "Critic/real": score_real.detach(),
            "Critic/fake": score_fake.detach(),
            # The critic's estimate of the Wasserstein distance: the curve to watch in a WGAN.
            "Critic/W-distance": (score_real - score_fake).detach(),
        }

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        loss = -out_fake.adv.mean()
        return LossOutput(loss, {"Loss/G": loss.detach()})

    def real_signs(self, real_adv: torch.Tensor, fake_adv: torch.Tensor) -> torch.Tensor:
        """A critic's score has no fixed zero: "real" means above the fakes' mean score."""
        return torch.sign(real_adv - fake_adv.mean())

    @torch.no_grad()
    def after_discriminator_step(self, discriminator: Discriminator) -> None:
        """Clip every critic parameter to [−clip, clip] (norm-layer parameters included, as in
        the paper's code: clipping only some weights would leave D's scale unbounded)."""
        c = self.cfg.clip
        for p in discriminator.parameters():
            p.clamp_(-c, c)
