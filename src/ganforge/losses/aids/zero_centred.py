"""``r1r2``: zero-centred gradient penalties on real (R1) and fake (R2) inputs, applied lazily.

R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?") adds
``γ₁/2 · E‖∇ₓ D(x)‖²`` over real samples to D's loss, R2 the same over fakes with γ₂: D's
surface is kept flat where the data (and G's samples) lie, which makes the game converge locally
instead of circling. R3GAN (Huang et al. 2024) pairs both with the relativistic loss ``rpgan``.

Lazy regularisation (StyleGAN2, Karras et al. 2020): with ``loss.reg_every = k`` the penalties
are computed on D steps 0, k, 2k, … only and multiplied by k there, so their average pull is
unchanged at 1/k of the cost. The gradients are taken in fp32: from the D step's own forward when
that ran in fp32 and eagerly, else from a second forward with autocast off
(:func:`~ganforge.losses.penalties.input_gradients`). Penalties are taken at D's inputs as D sees
them (after augmentation and instance noise).

Config: ``loss.r1_gamma``, ``loss.r2_gamma`` (0 = off), ``loss.reg_every``. Stats:
``Loss/D/r1``, ``Loss/D/r2`` (γ/2 · E‖∇‖², before the lazy factor k), on regularised steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ganforge.errors import ConfigError
from ganforge.losses.aids.base import AIDS, Aid, DBatch, Stats
from ganforge.losses.penalties import input_gradients
from ganforge.settings import at_least, setting

GAMMA_MESSAGE = "loss.r1_gamma and loss.r2_gamma must be >= 0 (0 = off), e.g. 0.1"


def zero_centred_penalty(grad: torch.Tensor, gamma: float) -> torch.Tensor:
    """``γ/2 · mean over samples of ‖grad_i‖²`` for (N, *shape) input gradients."""
    return 0.5 * gamma * grad.flatten(1).pow(2).sum(dim=1).mean()


@AIDS.register("r1r2")
class ZeroCentredPenalties(Aid):
    """R1 (real) and R2 (fake) zero-centred gradient penalties, every ``reg_every`` D steps."""

    @dataclass
    class Settings:
        r1_gamma: float = setting(0.0, "R1: gamma/2 * E|grad_x D(x)|^2 on reals; 0 = off",
                                  check=at_least(0), message=GAMMA_MESSAGE)
        r2_gamma: float = setting(0.0, "R2: the same on fakes; 0 = off (R3GAN = rpgan + R1 + "
                                  "R2)", check=at_least(0), message=GAMMA_MESSAGE)
        reg_every: int = setting(1, "R1/R2 every N D steps, multiplied by N (lazy; StyleGAN2: "
                                 "16)", check=at_least(1),
                                 message="{key} must be >= 1 (1 = every D step), e.g. 4")

    @classmethod
    def check_config(cls, cfg: Any, data: Any = None) -> None:
        # Families without a D norm setting fix their own layers.
        if getattr(cfg.model, "d_norm", "none") == "batch":
            raise ConfigError("loss.r1_gamma/r2_gamma penalise per-sample gradients, which D's "
                              "BatchNorm mixes across the batch; set model.d_norm=none or layer")
        super().check_config(cfg, data)

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.gamma_real, self.gamma_fake = float(cfg.r1_gamma), float(cfg.r2_gamma)
        self.every = int(cfg.reg_every)

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        return getattr(cfg, "r1_gamma", 0.0) > 0 or getattr(cfg, "r2_gamma", 0.0) > 0

    @property
    def reg_every(self) -> Optional[int]:
        return self.every

    def due(self, step: int) -> bool:
        """Whether D step ``step`` (0-based) is a regularisation step."""
        return step % self.every == 0

    def input_grads(self, step: int) -> tuple[bool, bool]:
        due = self.due(step)
        return due and self.gamma_real > 0, due and self.gamma_fake > 0

    def d_term(self, batch: DBatch) -> tuple[Optional[torch.Tensor], Stats]:
        if not self.due(batch.step):
            return None, {}
        sides = [(name, gamma, x, y, out) for name, gamma, x, y, out in (
            ("r1", self.gamma_real, batch.x_real, batch.y_real, batch.out_real),
            ("r2", self.gamma_fake, batch.x_fake, batch.y_fake, batch.out_fake)) if gamma > 0]
        xs, ys = [s[2] for s in sides], [s[3] for s in sides]
        reuse = batch.reuse and all(x.requires_grad for x in xs)
        grads = input_gradients(batch.discriminator, xs, ys,
                                [s[4] for s in sides] if reuse else None)
        total: Optional[torch.Tensor] = None
        stats: Stats = {}
        for (name, gamma, *_), grad in zip(sides, grads):
            penalty = zero_centred_penalty(grad, gamma)
            stats[f"Loss/D/{name}"] = penalty.detach()
            total = penalty if total is None else total + penalty
        assert total is not None  # enabled() guarantees one positive gamma
        return total * self.every, stats
