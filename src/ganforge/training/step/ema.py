"""An exponential moving average of G's weights, used for samples and metrics when enabled.

Averaging the generator's weights over the last ~1/(1 − decay) steps smooths out the
oscillation of the adversarial game; samples from the average are usually sharper and more
stable than from the raw G (Yazıcı et al. 2019; used by ProGAN, StyleGAN, BigGAN). Training
itself never sees the copy: only progress grids, in-loop metrics, ``generate`` and ``evaluate``.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import nn


class EMA:
    """Keeps ``module`` — a frozen copy of ``source`` — at ``decay·module + (1 − decay)·source``.

    The decay is fixed, or follows from a half-life in images (StyleGAN2-ADA, Karras et al.
    2020): after ``half_life`` images the old weights count half, so with ``B`` images per G
    step ``decay = 0.5 ** (B / half_life)``, whatever the batch size. With ``rampup`` the
    half-life is at most ``rampup`` × the images seen so far: early on, when G changes fast, the
    average forgets quickly, and it lengthens to ``half_life`` as training goes on.

    Before step ``start`` the copy simply tracks ``source`` (averaging G's random initial
    weights into the copy would only blur the early samples). Buffers such as BatchNorm running
    statistics are copied, not averaged: they are already running averages.

    Args:
        source: the generator being trained.
        decay: the fixed EMA decay in (0, 1), e.g. 0.999 (ignored with ``half_life``).
        start: G steps before averaging begins.
        half_life: half-life in images, e.g. 10,000; None uses ``decay``.
        rampup: cap the half-life at this fraction of the images seen, e.g. 0.05.
        images_per_step: B, images per G step over all processes (for ``half_life``).
    """

    def __init__(self, source: nn.Module, decay: float = 0.999, start: int = 0,
                 half_life: Optional[float] = None, rampup: Optional[float] = None,
                 images_per_step: int = 1) -> None:
        if half_life is None and not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        if half_life is not None and half_life <= 0:
            raise ValueError(f"EMA half-life must be positive, got {half_life}")
        self.decay, self.start = decay, start
        self.half_life, self.rampup, self.images_per_step = half_life, rampup, images_per_step
        self.source = source
        self.module = copy.deepcopy(source).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay used by the update after G step ``step`` (1-based)."""
        if self.half_life is None:
            return self.decay
        half_life = self.half_life
        if self.rampup is not None:
            half_life = min(half_life, step * self.images_per_step * self.rampup)
        return 0.5 ** (self.images_per_step / max(half_life, 1e-8))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold the source's current weights in (call after each G optimizer step).

        Args:
            step: G steps done so far (after this one).
        """
        src = [p.detach() for p in self.source.parameters()]
        dst = list(self.module.parameters())
        if step <= self.start:
            torch._foreach_copy_(dst, src)
        else:
            # lerp(dst, src, w) = dst + w (src − dst) = decay·dst + (1 − decay)·src
            torch._foreach_lerp_(dst, src, 1.0 - self.decay_at(step))
        for b_dst, b_src in zip(self.module.buffers(), self.source.buffers()):
            b_dst.copy_(b_src)
