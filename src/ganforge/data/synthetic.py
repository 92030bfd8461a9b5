"""``synthetic``: generated, labelled images for tests and smoke runs (no files, no download).

Class k is a bright Gaussian blob at the k-th of 10 positions on a ring around the image
centre (and, with 3 channels, in the k-th of 10 distinct colours), on a dark background with
pixel noise. The classes are trivially separable, so a conditional GAN that learns the label
shows it within a few hundred steps, and a label classifier reaches ~100% accuracy.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ganforge.data.base import DATASETS, NO_ROOT, TensorData

SEED = 0
N_CLASSES = 10
DEFAULT_N = 2000
DEFAULT_SIZE = 28
NOISE_STD = 12.0    # in 0..255 pixel units: visible texture that never hides the blob
CHUNK = 1024        # images generated at a time (bounds the float temporaries)

# One well-separated colour per class (RGB in 0..1) for 3-channel images.
PALETTE = np.array([
    [1.0, 0.2, 0.2], [1.0, 0.6, 0.1], [0.9, 0.9, 0.1], [0.3, 1.0, 0.2], [0.1, 0.9, 0.8],
    [0.2, 0.5, 1.0], [0.5, 0.2, 1.0], [1.0, 0.3, 0.9], [1.0, 1.0, 1.0], [0.6, 0.6, 0.6],
], dtype=np.float32)


def class_templates(size: int, channels: int) -> np.ndarray:
    """(10, channels, size, size) float32 in 0..255: the noise-free image of each class."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    radius, sigma = 0.3 * size, max(0.09 * size, 1.0)
    templates = np.empty((N_CLASSES, channels, size, size), dtype=np.float32)
    for k in range(N_CLASSES):
        angle = 2 * math.pi * k / N_CLASSES - math.pi / 2  # class 0 at the top, then clockwise
        cy, cx = size / 2 + radius * math.sin(angle), size / 2 + radius * math.cos(angle)
        blob = 235.0 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        colour = PALETTE[k] if channels == 3 else np.ones(channels, dtype=np.float32)
        templates[k] = colour[:, None, None] * blob[None]
    return templates


@DATASETS.register("synthetic", info=NO_ROOT)
def build_synthetic(cfg) -> TensorData:
    """Generated labelled images (10 blob positions), 28x28 gray by default; for tests and smoke runs.

    Size is ``data.image_size`` or 28, channels ``data.channels`` or 1, and the number of images
    ``data.limit`` or 2,000. Labels cycle 0, 1, ..., 9 so every prefix is balanced. Fixed seed
    (another one for ``split="test"``), so builds are identical.

    Returns:
        TensorData with x (N, C, S, S) uint8, y (N,) int64, n_classes 10.
    """
    size = cfg.image_size or DEFAULT_SIZE
    channels = cfg.channels or 1
    n = cfg.limit or DEFAULT_N
    seed = SEED if cfg.split == "train" else SEED + 1
    rng = np.random.default_rng(seed)

    templates = class_templates(size, channels)
    labels = np.arange(n, dtype=np.int64) % N_CLASSES
    x = np.empty((n, channels, size, size), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        chunk = templates[labels[start : start + CHUNK]]
        # Noise around a faint background level, so both dark and bright pixels vary.
        chunk = chunk + 10.0 + rng.normal(0.0, NOISE_STD, size=chunk.shape).astype(np.float32)
        x[start : start + CHUNK] = np.clip(np.rint(chunk), 0, 255).astype(np.uint8)
    return TensorData(
        x=torch.from_numpy(x),
        y=torch.from_numpy(labels),
        n_classes=N_CLASSES,
        name="synthetic",
        class_names=[f"blob-{k}" for k in range(N_CLASSES)],
        source=f"synthetic blobs, {n} images {channels}x{size}x{size} "
               f"({cfg.split} split, seed {seed})",
    )
