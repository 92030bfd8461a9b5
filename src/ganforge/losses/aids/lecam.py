"""``lecam``: LeCam regularisation (Tseng et al. 2021, "Regularizing GANs under limited data").

Two exponential moving averages (decay 0.99) follow D's mean score on real samples (α_R) and on
fakes (α_F). The paper's regulariser pulls each real score towards the *fake* anchor and each
fake score towards the *real* anchor:

    R_LC = E_x[(D(x) − α_F)²] + E_z[(D(G(z)) − α_R)²],

and D minimises its loss + λ·R_LC (λ = ``loss.lecam_weight``). With the anchors fixed, the
optimal D of the regularised BCE game tracks the LeCam (triangular) divergence, which stays
bounded where D would otherwise drive its real/fake scores apart on a small training set. The
paper's definition is the two-sided square above; the authors' released code clips it to one
side (``relu(D(x) − α_F)²``, ``relu(α_R − D(G(z)))²``), penalising only scores on the far side
of the other anchor. This module implements the paper's definition.

As in the authors' code the anchors are updated with the current batch before the penalty is
taken, with the start-up bias removed (the first update sets each anchor to the batch mean).
Stats: ``Loss/D/lecam`` (λ·R_LC), ``LeCam/ema_real``, ``LeCam/ema_fake``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ganforge.losses.aids.base import AIDS, Aid, DBatch, Stats
from ganforge.settings import at_least, setting

DECAY = 0.99


@AIDS.register("lecam")
class LeCam(Aid):
    """λ · (E[(D(x) − α_F)²] + E[(D(G(z)) − α_R)²]) with EMA anchors α_R, α_F of D's scores."""

    @dataclass
    class Settings:
        lecam_weight: float = setting(0.0, "LeCam regulariser weight lambda (e.g. 0.3); 0 = off",
                                      check=at_least(0),
                                      message="{key} must be >= 0 (0 = off), e.g. 0.3")

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.weight = float(cfg.lecam_weight)
        # Bias-corrected EMAs; tensors on D's device once training runs (no per-step host sync).
        self.ema_real: torch.Tensor | float = 0.0
        self.ema_fake: torch.Tensor | float = 0.0
        self.updates = 0

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        return getattr(cfg, "lecam_weight", 0.0) > 0

    def update(self, real_mean: torch.Tensor, fake_mean: torch.Tensor) -> None:
        """Fold one batch's mean scores into the anchors (bias-corrected EMA, decay 0.99).

        Equivalent to a zero-initialised EMA divided by ``1 − decay^t``: update t moves the
        anchor by ``(1 − decay) / (1 − decay^t)`` of the way to the batch mean (all the way at
        t = 1, about 1% later on).
        """
        self.updates += 1
        rate = (1.0 - DECAY) / (1.0 - DECAY ** self.updates)
        self.ema_real = self.ema_real + rate * (real_mean - self.ema_real)
        self.ema_fake = self.ema_fake + rate * (fake_mean - self.ema_fake)

    def d_term(self, batch: DBatch) -> tuple[Optional[torch.Tensor], Stats]:
        real, fake = batch.out_real.adv.float(), batch.out_fake.adv.float()
        self.update(real.detach().mean(), fake.detach().mean())
        reg = (real - self.ema_fake).pow(2).mean() + (fake - self.ema_real).pow(2).mean()
        term = self.weight * reg
        return term, {"Loss/D/lecam": term.detach(), "LeCam/ema_real": self.ema_real,
                      "LeCam/ema_fake": self.ema_fake}

    def state_dict(self) -> dict[str, Any]:
        return {"ema_real": float(self.ema_real), "ema_fake": float(self.ema_fake),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema_real = float(state.get("ema_real", 0.0))
        self.ema_fake = float(state.get("ema_fake", 0.0))
        self.updates = int(state.get("updates", 0))
