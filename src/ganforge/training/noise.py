"""Latent and label sampling for G, including the fixed noise behind the progress grids."""

from __future__ import annotations

from typing import Optional

import torch


class NoiseSampler:
    """Draws latents z and (for conditional models) uniformly random class labels.

    Args:
        z_dim: latent size.
        dist: "normal" for N(0, 1) or "uniform" for U(-1, 1) (the cGAN paper's choice).
        n_classes: classes to draw labels from; 0 for unconditional models.
        device: where the tensors are created (drawn there directly, no host copy).
    """

    def __init__(self, z_dim: int, dist: str, n_classes: int, device: torch.device) -> None:
        self.z_dim, self.dist, self.n_classes, self.device = z_dim, dist, n_classes, device

    def z(self, n: int, generator: Optional[torch.Generator] = None,
          device: Optional[torch.device | str] = None) -> torch.Tensor:
        """(n, z_dim) latents, drawn on ``device`` (default: the sampler's) with ``generator``.

        Fixed latents are drawn on the CPU from a seeded CPU generator and then moved, so the
        same seed gives the same latents on every device.
        """
        device = self.device if device is None else device
        if self.dist == "uniform":
            return torch.rand(n, self.z_dim, device=device, generator=generator) * 2 - 1
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def labels(self, n: int, generator: Optional[torch.Generator] = None) -> Optional[torch.Tensor]:
        """(n,) int64 uniformly random classes, or None for unconditional models."""
        if self.n_classes == 0:
            return None
        return torch.randint(0, self.n_classes, (n,), device=self.device, generator=generator)

    def __call__(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.z(n), self.labels(n)

    def fixed(self, columns: int, samples: int, seed: int = 1234
              ) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
        """Fixed latents for progress grids, drawn from their own seeded generator.

        Conditional models get one row per class and ``columns`` columns; each column shares one z
        across classes, so a row shows a class and a column shows a style. Unconditional models
        get ``samples`` latents.

        Returns:
            z: (M, z_dim); y: (M,) labels or None; nrow: images per grid row.
        """
        gen = torch.Generator(device="cpu").manual_seed(seed)
        if self.n_classes:
            z = self.z(columns, gen, device="cpu").repeat(self.n_classes, 1)
            y = torch.arange(self.n_classes).repeat_interleave(columns)
            return z.to(self.device), y.to(self.device), columns
        nrow = max(1, int(round(samples ** 0.5)))
        return self.z(samples, gen, device="cpu").to(self.device), None, nrow
