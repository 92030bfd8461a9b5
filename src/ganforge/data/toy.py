"""``toy-2d``: the 2-D toy distributions of the WGAN-GP paper (Gulrajani et al., 2017).

Small, fast and with known modes, they show mode collapse and mode dropping at a glance:

* ``8gaussians``: 8 Gaussians (std 0.02) on a circle of radius 2, all scaled by 1/1.414;
* ``25gaussians``: a 5 x 5 grid of Gaussians (std 0.05) at -4, -2, 0, 2, 4, scaled by 1/2.828;
* ``swissroll``: the 2-D swiss roll (x = t cos t, y = t sin t, t in [1.5 pi, 4.5 pi], noise
  std 0.25), scaled by 1/7.5.

The scalings follow the paper's reference code so the sets fit roughly in [-2, 2]^2.

One set is *conditioned* on a continuous vector, so a cGAN's use of a condition can be measured
against a known answer (the ``condition-fit`` metric):

* ``ring-angle``: angles theta uniform on [0, 2 pi); the point is ``(R + e)(cos theta, sin theta)``
  with R = 0.8 and radial noise e ~ N(0, 0.04^2), and its condition is ``y = (cos theta,
  sin theta)``. Given y, the right answer is the ring point ``R y`` (:func:`ring_target`); the
  noise is radial only, so a point's angle is exactly its condition's.

Samples are drawn from a fixed seed, so every build gives the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganforge.data.base import DATASETS, NO_ROOT, TensorData
from ganforge.errors import ConfigError
from ganforge.settings import one_of, positive, setting

# Fixed: the toy set is part of the experiment's definition, not of the run's seed. The test
# split is an independent draw (SEED + 1) from the same distribution.
SEED = 0
TOYS = ("8gaussians", "25gaussians", "swissroll", "ring-angle")
RING_RADIUS = 0.8   # inside tanh's range too, for generators that squash their output
RING_STD = 0.04     # radial noise: the spread G must draw from z once the angle is given


def mixture(centers: np.ndarray, std: float, scale: float, n: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` points from an equal-weight isotropic Gaussian mixture.

    Args:
        centers: (M, 2) mode centers before scaling.
        std: per-coordinate standard deviation before scaling.
        scale: the whole set (points and centers) is divided by this.

    Returns:
        points (n, 2) float32, modes (n,) int64 mode index of each point, centers (M, 2) float32.
    """
    m = len(centers)
    # Each mode gets n // m or n // m + 1 points (balanced), in random order.
    modes = rng.permutation(np.arange(n) % m)
    points = centers[modes] + rng.normal(0.0, std, size=(n, 2))
    return ((points / scale).astype(np.float32), modes.astype(np.int64),
            (centers / scale).astype(np.float32))


def eight_gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8 modes at angles 0, 45, ..., 315 degrees on the radius-2 circle."""
    angles = np.arange(8) * (2 * math.pi / 8)
    # Rounded so the axis-aligned centers are exactly 0 rather than ~1e-16.
    centers = 2.0 * np.round(np.stack([np.cos(angles), np.sin(angles)], axis=1), 12)
    return mixture(centers, std=0.02, scale=1.414, n=n, rng=rng)


def twenty_five_gaussians(n: int, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """25 modes on the grid {-4, -2, 0, 2, 4}^2 (row-major: x slowest)."""
    grid = np.arange(-2, 3) * 2.0
    centers = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    return mixture(centers, std=0.05, scale=2.828, n=n, rng=rng)


def swiss_roll(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) float32: the (x, z) plane of the 3-D swiss roll, as scikit-learn defines it."""
    t = 1.5 * math.pi * (1.0 + 2.0 * rng.random(n))
    points = np.stack([t * np.cos(t), t * np.sin(t)], axis=1)
    points += rng.normal(0.0, 0.25, size=points.shape)
    return (points / 7.5).astype(np.float32)


def ring_angle(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy ring points and their angle conditions.

    Returns:
        points (n, 2) float32 and conditions (n, 2) float32 ``(cos theta, sin theta)``.
    """
    theta = rng.uniform(0.0, 2 * math.pi, size=n)
    unit = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    radius = RING_RADIUS + rng.normal(0.0, RING_STD, size=n)
    return (radius[:, None] * unit).astype(np.float32), unit.astype(np.float32)


def ring_target(conditions: torch.Tensor) -> torch.Tensor:
    """(N, 2) ring points ``R y / |y|`` that (N, 2) angle conditions ask for."""
    y = conditions.to(torch.float64)
    return RING_RADIUS * y / y.norm(dim=1, keepdim=True).clamp_min(1e-12)


# Conditioned toy sets -> the function from condition rows (N, K) to the point (N, 2) each
# asks for; the condition-fit metric reads it.
CONDITION_TARGETS = {"ring-angle": ring_target}


@dataclass
class ToySettings:
    """``toy-2d``'s own settings: which mixture, and how many points are drawn."""

    toy: str = setting("8gaussians", "8gaussians | 25gaussians | swissroll | ring-angle "
                       "(conditioned on the angle, (cos, sin))",
                       check=one_of("8gaussians", "25gaussians", "swissroll", "ring-angle"))
    toy_samples: int = setting(100_000, "size of the drawn data set", check=positive(),
                               message="{key} must be positive")


@DATASETS.register("toy-2d", info=NO_ROOT, settings=ToySettings)
def build_toy_2d(cfg) -> TensorData:
    """2-D toy sets (data.toy: 8gaussians, 25gaussians, swissroll; ring-angle, conditioned).

    ``data.toy_samples`` points are drawn from a fixed seed (another one for ``split="test"``).
    For the Gaussian mixtures ``extra["modes"]`` holds each point's mode index and
    ``extra["centers"]`` the (M, 2) scaled centers, for mode-coverage metrics; y stays None
    because those sets are unconditional. ``ring-angle`` has y = (cos theta, sin theta).

    Returns:
        TensorData with x (N, 2) float32, n_classes 0, y None or (N, 2) float32 conditions.
    """
    if cfg.toy not in TOYS:
        raise ConfigError(f"data.toy='{cfg.toy}'; choose one of: {', '.join(TOYS)}")
    seed = SEED if cfg.split == "train" else SEED + 1
    rng = np.random.default_rng(seed)
    n = cfg.toy_samples
    extra: dict = {"toy": cfg.toy}
    y, names = None, None
    if cfg.toy == "swissroll":
        points = swiss_roll(n, rng)
    elif cfg.toy == "ring-angle":
        points, conditions = ring_angle(n, rng)
        y, names = torch.from_numpy(conditions), ["cos", "sin"]
    else:
        make = eight_gaussians if cfg.toy == "8gaussians" else twenty_five_gaussians
        points, modes, centers = make(n, rng)
        extra["modes"] = torch.from_numpy(modes)
        extra["centers"] = torch.from_numpy(centers)
    return TensorData(
        x=torch.from_numpy(points),
        y=y,
        n_classes=0,
        name="toy-2d",
        class_names=names,
        source=f"toy-2d {cfg.toy}, {n} points ({cfg.split} split, seed {seed})",
        extra=extra,
    )
