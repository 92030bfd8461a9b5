"""An exponential moving average of G's weights, used for samples and metrics when enabled.

Averaging the generator's weights over the last ~1/(1 − decay) steps smooths out the
oscillation of the adversarial game; samples from the average are usually sharper and more
stable than from the raw G (Yazıcı et al. 2019; used by ProGAN, StyleGAN, BigGAN). Training
itself never sees the copy: only progress grids, in-loop metrics, ``generate`` and ``evaluate``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``module`` — a frozen copy of ``source`` — at ``decay·module + (1 − decay)·source``.

    Before step ``start`` the copy simply tracks ``source`` (averaging G's random initial
    weights into the copy would only blur the early samples). Buffers such as BatchNorm running
    statistics are copied, not averaged: they are already running averages.

    Args:
        source: the generator being trained.
        decay: the EMA decay in (0, 1), e.g. 0.999.
        start: G steps before averaging begins.
    """

    def __init__(self, source: nn.Module, decay: float, start: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay, self.start = decay, start
        self.source = source
        self.module = copy.deepcopy(source).eval().requires_grad_(False)

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
            torch._foreach_lerp_(dst, src, 1.0 - self.decay)
        for b_dst, b_src in zip(self.module.buffers(), self.source.buffers()):
            b_dst.copy_(b_src)
