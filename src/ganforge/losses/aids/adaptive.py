"""``augment``: DiffAugment on every D input, with a fixed or an adaptive probability.

DiffAugment (Zhao et al. 2020) transforms real *and* fake samples with the same policies, in D's
step and in G's step, so D never sees an un-augmented distribution that G could be blamed for
and G's gradient passes through the (differentiable) augmentations. With ``loss.ada_target``
set, the probability ``p`` adapts as in ADA (Karras et al. 2020): over every
``loss.ada_interval`` D steps the aid averages r_t = E[sign(D(real))] (the loss decides which
side of D's score means "real", :meth:`GANLoss.real_signs`); when r_t is above the target D is
over-confident on the training images, so ``p`` rises, otherwise it falls, by
``loss.ada_speed`` per 1,000 real images, within [0, ``P_MAX``].

Config: ``loss.augment`` (policies, e.g. ``translation,cutout,color``; empty = off),
``loss.augment_p`` (fixed p, default 1; ADA's start, default 0), ``loss.ada_target``,
``loss.ada_interval``, ``loss.ada_speed``. Stats: ``Aug/p`` (p used in the step) and, with ADA,
``Aug/r_t`` (the step's mean sign; its mean over a log window is r_t over that window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from ganforge.errors import ConfigError
from ganforge.losses.aids.base import AIDS, Aid, DBatch, Stats
from ganforge.losses.aids.augment import AUGMENTS
from ganforge.settings import at_least, between, optional, positive, setting

# p stays below 1 so that D always sees some training images as they are.
P_MAX = 0.99


def policy_names(cfg: Any) -> list[str]:
    """The policies ``loss.augment`` lists (blank entries ignored: ``""`` means off)."""
    return [name.strip() for name in getattr(cfg, "augment", None) or [] if name.strip()]


@AIDS.register("augment")
class Augmentation(Aid):
    """DiffAugment of D's real and fake inputs with probability p, fixed or adapted (ADA)."""

    order = 10

    @dataclass
    class Settings:
        augment: list[str] = setting([], "DiffAugment policies for D's inputs: translation, "
                                     "cutout, color (e.g. translation,cutout); [] = off")
        augment_p: Optional[float] = setting(
            None, "per-sample probability; none: 1 (fixed) or 0 (ADA's start)",
            check=optional(between(0, 1)),
            message="{key}={value} must be in [0, 1], e.g. 0.5 (none = default)")
        ada_target: Optional[float] = setting(
            None, "ADA: target r_t = E[sign D(real)], e.g. 0.6; none: fixed p",
            check=optional(between(0, 1, low_open=True, high_open=True)),
            message="{key}={value} must be in (0, 1), e.g. 0.6 (none = fixed p)")
        ada_interval: int = setting(4, "ADA: D steps between updates of p", check=at_least(1),
                                    message="{key} must be >= 1 D step, e.g. 4")
        ada_speed: float = setting(0.01, "ADA: p moves by this per 1,000 real images (0 -> 1 "
                                   "in 100k)", check=positive(),
                                   message="{key} must be positive, e.g. 0.01 per 1,000 images")

        def check(self, prefix: str) -> None:
            if not any(name.strip() for name in self.augment) and (
                    self.augment_p is not None or self.ada_target is not None):
                raise ConfigError(f"{prefix}augment_p and {prefix}ada_target need "
                                  f"augmentations; set e.g. {prefix}augment=translation,cutout")

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.policies = [AUGMENTS.get(name) for name in policy_names(cfg)]
        self.target: Optional[float] = cfg.ada_target
        start = cfg.augment_p
        self.p: float = float(start if start is not None else (1.0 if self.target is None else 0.0))
        self.interval, self.speed = int(cfg.ada_interval), float(cfg.ada_speed)
        self.r_t: Optional[float] = None  # r_t of the last adjustment
        self._sign_sum: torch.Tensor | float = 0.0  # signs since the last adjustment
        self._sign_count = 0

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        return bool(policy_names(cfg))

    @classmethod
    def check_data(cls, cfg: Any, sample_shape: Sequence[int]) -> None:
        if len(sample_shape) != 3:
            raise ConfigError(
                f"loss.augment transforms images (C, H, W) but the data are {tuple(sample_shape)} "
                "vectors; remove loss.augment (set loss.augment=[])")

    def transform(self, x: torch.Tensor, step: int) -> torch.Tensor:
        if x.dim() != 4:
            self.check_data(self.cfg, x.shape[1:])
        if self.p <= 0.0:
            return x
        for policy in self.policies:
            x = policy(x, self.p)
        return x

    def d_term(self, batch: DBatch) -> tuple[Optional[torch.Tensor], Stats]:
        stats: Stats = {"Aug/p": self.p}
        if self.target is None:
            return None, stats
        signs = batch.real_signs(batch.out_real.adv.detach(), batch.out_fake.adv.detach())
        signs = signs.flatten().float()
        # Kept on D's device between adjustments: no host sync on the steps in between.
        self._sign_sum = signs.sum() + self._sign_sum
        self._sign_count += signs.numel()
        stats["Aug/r_t"] = signs.mean()
        if (batch.step + 1) % self.interval == 0:
            self.adjust(signs.device)
        return None, stats

    def adjust(self, device: torch.device) -> None:
        """Move p by one ADA update from the signs gathered since the last one (all ranks)."""
        count = float(self._sign_count)
        totals = torch.stack([torch.as_tensor(self._sign_sum, dtype=torch.float32, device=device),
                              torch.tensor(count, dtype=torch.float32, device=device)])
        sign_sum, count = self.rank_sum(totals).tolist()
        self._sign_sum, self._sign_count = 0.0, 0
        if count <= 0:
            return
        self.r_t = sign_sum / count
        delta = self.speed * count / 1000.0
        self.p = min(max(self.p + (delta if self.r_t > self.target else -delta), 0.0), P_MAX)

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "r_t": self.r_t, "sign_sum": float(self._sign_sum),
                "sign_count": self._sign_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.target is not None:  # a fixed p is the config's, not the checkpoint's
            self.p = float(state.get("p", self.p))
        self.r_t = state.get("r_t", self.r_t)
        self._sign_sum = float(state.get("sign_sum", 0.0))
        self._sign_count = int(state.get("sign_count", 0))
