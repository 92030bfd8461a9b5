"""Differentiable augmentations of D's inputs (DiffAugment, Zhao et al. 2020).

Each policy maps an image batch (N, C, H, W) in [-1, 1] and a probability ``p`` to a batch of
the same shape: every sample is transformed with probability ``p`` (independently per sample
and per operation), the others pass through unchanged. Every operation is differentiable w.r.t.
its input, so in G's step the gradient reaches G through the augmented fakes. Random
parameters come from torch's global generator on the batch's device (per-rank streams under
torchrun are seeded by the trainer).

Policies (``loss.augment``): ``translation`` (whole-pixel shifts up to 1/8 of the side, borders
filled by reflection), ``cutout`` (a square of half the side set to 0, the middle of [-1, 1]),
``color`` (brightness, saturation, contrast; saturation leaves 1-channel images unchanged).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ganforge.registry import Registry

Policy = Callable[[torch.Tensor, float], torch.Tensor]
AUGMENTS: Registry[Policy] = Registry("augmentation")

TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the image side
CUTOUT_RATIO = 1 / 2       # side of the cut-out square, as a fraction of the image side


def chosen(n: int, p: float, device: torch.device) -> torch.Tensor:
    """(n,) bool: which samples an operation transforms (each with probability ``p``)."""
    return torch.rand(n, device=device) < p


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, max_y: int, max_x: int
          ) -> torch.Tensor:
    """Move each image by whole pixels: ``out[n, :, i, j] = x[n, :, i - dy[n], j - dx[n]]``.

    Pixels shifted in from outside are the image reflected at its border (so a uniform
    background stays uniform and no artificial frame appears).

    Args:
        x: (N, C, H, W) images.
        dy, dx: (N,) int64 shifts (down, right), ``|dy| <= max_y`` and ``|dx| <= max_x``.
        max_y, max_x: the padding needed for the largest shifts (each below the side).

    Returns:
        (N, C, H, W) shifted images (two gathers: differentiable, layout kept).
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (max_x, max_x, max_y, max_y), mode="reflect") if max_x or max_y else x
    rows = torch.arange(h, device=x.device)[None, :] + max_y - dy[:, None]  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] + max_x - dx[:, None]  # (N, W)
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, padded.shape[3]))
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


@AUGMENTS.register("translation")
def translation(x: torch.Tensor, p: float) -> torch.Tensor:
    """Shift each chosen image by a uniform whole-pixel offset in ±1/8 of its side."""
    n, _, h, w = x.shape
    max_y, max_x = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
    keep = chosen(n, p, x.device).long()
    dy = torch.randint(-max_y, max_y + 1, (n,), device=x.device) * keep
    dx = torch.randint(-max_x, max_x + 1, (n,), device=x.device) * keep
    return shift(x, dy, dx, max_y, max_x)


@AUGMENTS.register("cutout")
def cutout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Set a square of half the side, centred on a uniform pixel, to 0 in each chosen image."""
    n, _, h, w = x.shape
    size_y, size_x = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
    top = torch.randint(0, h, (n, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w, (n, 1), device=x.device) - size_x // 2
    rows = torch.arange(h, device=x.device)[None, :]
    cols = torch.arange(w, device=x.device)[None, :]
    in_rows = (rows >= top) & (rows < top + size_y)     # (N, H)
    in_cols = (cols >= left) & (cols < left + size_x)   # (N, W)
    hole = in_rows[:, :, None] & in_cols[:, None, :] & chosen(n, p, x.device)[:, None, None]
    return x * (~hole).unsqueeze(1).to(x.dtype)


def _per_sample(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(N, 1, 1, 1) factors drawn uniformly from [low, high)."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (high - low) + low


@AUGMENTS.register("color")
def color(x: torch.Tensor, p: float) -> torch.Tensor:
    """Brightness ± 0.5, saturation × U(0, 2) (colour images only), contrast × U(0.5, 1.5).

    Each of the three is applied to a chosen sample independently; unchosen samples keep their
    exact values.
    """
    n = x.shape[0]

    def where(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
        return torch.where(chosen(n, p, x.device)[:, None, None, None], new, old)

    x = where(x + _per_sample(x, -0.5, 0.5), x)
    if x.shape[1] > 1:  # a gray image has no saturation to change
        mean = x.mean(dim=1, keepdim=True)
        x = where((x - mean) * _per_sample(x, 0.0, 2.0) + mean, x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return where((x - mean) * _per_sample(x, 0.5, 1.5) + mean, x)
