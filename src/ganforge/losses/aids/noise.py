"""``instance_noise``: Gaussian noise on every D input, annealed to zero.

Early in training the real and fake distributions barely overlap and a perfect D gives G no
useful gradient. Adding N(0, σ²) noise to both makes their supports overlap (Arjovsky & Bottou
2017; Sønderby et al. 2017, "Amortised MAP inference for image super-resolution"); σ falls
linearly from ``loss.instance_noise`` at the first D step to 0 after
``loss.instance_noise_steps`` D steps, so the final game is the noiseless one. The noise is
added to D's real and fake inputs in D's step and to the fakes in G's step (G is judged on the
inputs D learned on; the gradient passes through the addition).

Stat: ``Noise/sigma``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ganforge.losses.aids.base import AIDS, Aid, DBatch, Stats
from ganforge.settings import at_least, setting


@AIDS.register("instance_noise")
class InstanceNoise(Aid):
    """x + σ_t · N(0, 1) on D's inputs, σ_t = σ₀ · max(0, 1 − t / T) over D steps t."""

    order = 20  # after augmentation: the noise is the last thing D's input gets

    @dataclass
    class Settings:
        instance_noise: float = setting(0.0, "std of Gaussian noise on D's inputs at the "
                                        "start; 0 = off", check=at_least(0),
                                        message="{key} must be >= 0 (0 = off), e.g. 0.1")
        instance_noise_steps: int = setting(10_000, "D steps over which that std falls "
                                            "linearly to 0", check=at_least(1),
                                            message="{key} must be >= 1, e.g. 10000")

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.sigma0, self.steps = float(cfg.instance_noise), int(cfg.instance_noise_steps)

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        return getattr(cfg, "instance_noise", 0.0) > 0

    def sigma(self, step: int) -> float:
        """σ at D step ``step`` (0-based): σ₀ at 0, falling linearly to 0 at step T."""
        return self.sigma0 * max(0.0, 1.0 - step / self.steps)

    def transform(self, x: torch.Tensor, step: int) -> torch.Tensor:
        sigma = self.sigma(step)
        return x + sigma * torch.randn_like(x) if sigma > 0 else x

    def d_term(self, batch: DBatch) -> tuple[Optional[torch.Tensor], Stats]:
        return None, {"Noise/sigma": self.sigma(batch.step)}
