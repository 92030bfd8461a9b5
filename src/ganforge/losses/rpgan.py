"""``rpgan``: the relativistic pairing GAN loss, the objective of R3GAN (Huang et al. 2024).

Each fake is paired with a real sample (fake i with real i of the same step) and D judges which
of the two is more real: D minimises ``E[softplus(D(G(z)) − D(x))]`` and G minimises
``E[softplus(D(x) − D(G(z)))]`` (the relativistic GAN of Jolicoeur-Martineau 2019 in its paired
form). Because every fake is compared with a real sample rather than with a fixed decision
boundary, G cannot satisfy D by putting all fakes on one mode near the boundary; "The GAN is
dead; long live the GAN!" shows that with the zero-centred penalties R1 and R2
(``loss.r1_gamma``, ``loss.r2_gamma``) the game converges locally. RpGAN + R1 + R2 is their R3GAN
baseline (preset ``r3gan-mnist``).

G's step needs D's scores of real samples too: it reuses the real batch of the latest D step
(re-scored by the updated D, augmented afresh when ``loss.augment`` is on). Stats: ``Critic/real``,
``Critic/fake`` (mean scores) and ``Prob/D(x)>D(G(z))`` (how often, in the soft sense of the
sigmoid, D ranks the real sample of a pair above its fake).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.models.base import DOutput


def paired_margin(out_real: DOutput, out_fake: DOutput) -> torch.Tensor:
    """D(x_i) − D(G(z_i)) for each pair: (N,) or (N, 1) like D's scores.

    Raises:
        ValueError: the real and fake batches differ in size (pairs need one of each).
    """
    if out_real.adv.shape != out_fake.adv.shape:
        raise ValueError(f"rpgan pairs real and fake samples one to one, but got "
                         f"{tuple(out_real.adv.shape)} real and {tuple(out_fake.adv.shape)} "
                         "fake scores; give both batches the same size")
    return out_real.adv - out_fake.adv


@LOSSES.register("rpgan")
class RelativisticPairingLoss(GANLoss):
    """RpGAN: D ranks each real sample above its paired fake; G ranks its fake above it."""

    g_needs_real = True

    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        margin = paired_margin(out_real, out_fake)
        loss = F.softplus(-margin).mean()
        return LossOutput(loss, {
            "Loss/D": loss.detach(),
            "Critic/real": out_real.adv.detach().mean(),
            "Critic/fake": out_fake.adv.detach().mean(),
            "Prob/D(x)>D(G(z))": torch.sigmoid(margin.detach()).mean(),
        })

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        assert out_real is not None, "rpgan's G step scores the latest real batch"
        loss = F.softplus(paired_margin(out_real, out_fake)).mean()
        return LossOutput(loss, {"Loss/G": loss.detach()})

    def real_signs(self, real_adv: torch.Tensor, fake_adv: torch.Tensor) -> torch.Tensor:
        """Relativistic scores have no fixed zero: "real" means above the fakes' mean score."""
        return torch.sign(real_adv - fake_adv.mean())
