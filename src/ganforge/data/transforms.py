"""Whole-dataset image transforms, applied once when a dataset is built (never per batch).

All functions take and return (N, C, H, W) uint8 tensors and work in chunks, so converting
a large dataset never needs a float copy of all of it at once.
"""

from __future__ import annotations

import torch

# ITU-R 601-2 luma weights, the ones Pillow's convert("L") uses, so gray images made here
# match gray images decoded from files.
LUMA = (0.299, 0.587, 0.114)

# Bound on the temporary float memory one chunk may take.
CHUNK_BYTES = 256 * 1024**2


def _chunk_len(x: torch.Tensor, out_per_sample: int) -> int:
    """Samples per chunk so a float32 copy of the chunk (input or output) stays under CHUNK_BYTES."""
    per_sample = 4 * max(int(x[0].numel()) if len(x) else 1, out_per_sample)
    return max(1, CHUNK_BYTES // per_sample)


def to_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert images to ``channels`` (1 or 3) channels.

    Gray -> RGB repeats the plane; RGB -> gray takes the luma
    ``0.299 R + 0.587 G + 0.114 B`` rounded to the nearest integer.

    Args:
        x: (N, C, H, W) uint8 with C in {1, 3}.
        channels: 1 or 3.

    Returns:
        (N, channels, H, W) uint8 (``x`` itself when it already has that many channels).
    """
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1 and channels == 3:
        return x.repeat(1, 3, 1, 1)
    if c == 3 and channels == 1:
        weights = torch.tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)
        out = torch.empty((x.shape[0], 1, *x.shape[2:]), dtype=torch.uint8)
        step = _chunk_len(x, 0)
        for i in range(0, x.shape[0], step):
            luma = (x[i : i + step].to(torch.float32) * weights).sum(dim=1, keepdim=True)
            out[i : i + step] = luma.round_().clamp_(0, 255).to(torch.uint8)
        return out
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize images to ``size`` x ``size`` with antialiased bilinear filtering.

    Square images are scaled directly; other shapes get their shorter side scaled to ``size``
    and are then center-cropped, so nothing is stretched.

    Args:
        x: (N, C, H, W) uint8.
        size: output side length.

    Returns:
        (N, C, size, size) uint8 (``x`` itself when it already has that size).
    """
    from torchvision.transforms.v2 import functional as F  # deferred: keeps import light

    h, w = x.shape[-2:]
    if h == size and w == size:
        return x
    target = [size, size] if h == w else [size]  # [size] scales the shorter side
    out = torch.empty((x.shape[0], x.shape[1], size, size), dtype=torch.uint8)
    step = _chunk_len(x, x.shape[1] * size * size)
    for i in range(0, x.shape[0], step):
        # uint8 in, uint8 out: torchvision has a native antialiased uint8 kernel.
        chunk = F.resize(x[i : i + step], target, antialias=True)
        if h != w:
            chunk = F.center_crop(chunk, [size, size])
        out[i : i + step] = chunk
    return out
