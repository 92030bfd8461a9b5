"""``rings``: points on concentric circles in the plane, labelled by their ring.

A small generated dataset (no files, no download): ``data.rings`` circles of radius 1, 2, ...,
``data.ring_points`` points in all, with Gaussian noise of ``data.ring_noise`` on the radius.
Its labels make it a conditional toy: G can be asked for a point of ring k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ganforge.plugin import DATASETS, NO_ROOT, TensorData, at_least, positive, setting


@dataclass
class RingSettings:
    rings: int = setting(3, "how many concentric circles (radius 1, 2, ...)", check=at_least(2),
                         example="3")
    ring_points: int = setting(6000, "points drawn in all (split evenly over the rings)",
                               check=positive())
    ring_noise: float = setting(0.05, "std of the noise on each point's radius",
                                check=at_least(0))


@DATASETS.register("rings", info=NO_ROOT, settings=RingSettings)
def build_rings(cfg) -> TensorData:
    """Points on concentric circles (``data.rings``), labelled by ring; generated, no files.

    Returns:
        TensorData with x (N, 2) float32 and y (N,) int64 ring indices (n_classes = rings).
    """
    seed = 7 if cfg.split == "train" else 8  # another draw for the test split
    gen = torch.Generator().manual_seed(seed)
    n = cfg.ring_points
    ring = torch.arange(n) % cfg.rings
    angle = torch.rand(n, generator=gen) * 2 * math.pi
    radius = (ring + 1).float() + cfg.ring_noise * torch.randn(n, generator=gen)
    x = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    return TensorData(x=x, y=ring, n_classes=cfg.rings, name="rings",
                      class_names=[f"ring {k + 1}" for k in range(cfg.rings)],
                      source=f"rings: {cfg.rings} circles, {n} points ({cfg.split} split, seed "
                      f"{seed})")
