"""Drawing from G: latents and labels (including the fixed noise behind the progress grids), and
G's samples in eval mode.

Everything that samples a generator — training, the progress grids, in-loop metrics, reports,
``Run.generate`` — draws its inputs from a :class:`NoiseSampler` and runs G through
:func:`render_samples`, so a sample means the same thing everywhere.
"""

from __future__ import annotations

from typing import Optional

import torch


@torch.no_grad()
def render_samples(generator: torch.nn.Module, z: torch.Tensor, y: Optional[torch.Tensor],
                   chunk: int = 512) -> torch.Tensor:
    """G(z, y) in eval mode (BatchNorm uses running statistics), restoring the previous mode.

    Args:
        generator: G.
        z: (N, z_dim) latents on G's device.
        y: (N,) classes, (N, K) condition rows, or None.
        chunk: samples per forward pass (bounds activation memory).

    Returns:
        (N, *out_shape) float samples on the CPU.
    """
    was_training = generator.training
    generator.eval()
    try:
        parts = [generator(z[i:i + chunk], None if y is None else y[i:i + chunk]).float().cpu()
                 for i in range(0, z.shape[0], chunk)]
    finally:
        generator.train(was_training)
    return torch.cat(parts)


class NoiseSampler:
    """Draws latents z and (for conditional models) labels.

    Class labels are uniform over the classes. Attribute labels (``label_pool`` given) are rows
    drawn uniformly from the data's own (N, K) attribute table, so G is asked for attribute
    combinations that occur (a random bit vector would ask for bearded women wearing lipstick
    and no hair as often as for anything else).

    Args:
        z_dim: latent size.
        dist: "normal" for N(0, 1) or "uniform" for U(-1, 1) (the cGAN paper's choice).
        n_classes: classes (or attributes) K; 0 for unconditional models.
        device: where the tensors are created (drawn there directly, no host copy).
        label_pool: (N, K) float attribute rows to draw from, or None for class labels.
        mean: mean of normal latents (seed 000 uses N(0.5, 1)); ignored for uniform ones.
    """

    def __init__(self, z_dim: int, dist: str, n_classes: int, device: torch.device,
                 label_pool: Optional[torch.Tensor] = None, mean: float = 0.0) -> None:
        self.z_dim, self.dist, self.n_classes, self.device = z_dim, dist, n_classes, device
        self.mean = mean
        self.pool = None if label_pool is None else label_pool.to(device=device,
                                                                  dtype=torch.float32)

    def z(self, n: int, generator: Optional[torch.Generator] = None,
          device: Optional[torch.device | str] = None) -> torch.Tensor:
        """(n, z_dim) latents, drawn on ``device`` (default: the sampler's) with ``generator``.

        Fixed latents are drawn on the CPU from a seeded CPU generator and then moved, so the
        same seed gives the same latents on every device.
        """
        device = self.device if device is None else device
        if self.dist == "uniform":
            return torch.rand(n, self.z_dim, device=device, generator=generator) * 2 - 1
        z = torch.randn(n, self.z_dim, device=device, generator=generator)
        return z + self.mean if self.mean else z

    def labels(self, n: int, generator: Optional[torch.Generator] = None,
               device: Optional[torch.device | str] = None) -> Optional[torch.Tensor]:
        """(n,) int64 uniformly random classes, (n, K) attribute rows, or None (unconditional).

        Drawn on ``device`` (default: the sampler's), which must match ``generator``'s device.
        """
        if self.n_classes == 0:
            return None
        device = self.device if device is None else device
        if self.pool is not None:
            rows = torch.randint(0, self.pool.shape[0], (n,), device=device, generator=generator)
            return self.pool.to(device)[rows]
        return torch.randint(0, self.n_classes, (n,), device=device, generator=generator)

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
        if self.pool is not None:
            # One row per attribute combination (10 drawn from the data), one column per style.
            rows = torch.randint(0, self.pool.shape[0], (10,), generator=gen)
            z = self.z(columns, gen, device="cpu").repeat(10, 1)
            y = self.pool.cpu()[rows].repeat_interleave(columns, dim=0)
            return z.to(self.device), y.to(self.device), columns
        if self.n_classes:
            z = self.z(columns, gen, device="cpu").repeat(self.n_classes, 1)
            y = torch.arange(self.n_classes).repeat_interleave(columns)
            return z.to(self.device), y.to(self.device), columns
        nrow = max(1, int(round(samples ** 0.5)))
        return self.z(samples, gen, device="cpu").to(self.device), None, nrow
