"""Tiny discriminators with known gradients, shared by the loss tests."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ganforge.losses.interface import DiscriminatorView, PlainView
from ganforge.models.base import Discriminator, DOutput


class LinearD(Discriminator):
    """D(x) = w·flatten(x): ∇ₓ D = w for every sample, so R1 = γ/2·‖w‖² exactly."""

    def __init__(self, weights: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(weights))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        return DOutput(adv=x.flatten(1) @ self.w)


class RecordingD(Discriminator):
    """Scores by the first value of each sample and records every batch it is called with."""

    def __init__(self, batch_norm: bool = False) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.norm = nn.BatchNorm1d(1, affine=False) if batch_norm else None
        self.calls: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        self.calls.append(x.detach().clone())
        first = x.flatten(1)[:, :1] * self.scale
        if self.norm is not None:
            first = self.norm(first)
        return DOutput(adv=first[:, 0])


class ConstantD(Discriminator):
    """Every sample gets ``value`` (plus 0 × its input, so gradients exist)."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(value))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        return DOutput(adv=self.value + 0.0 * x.flatten(1).sum(1))


class EagerTwin(nn.Module, DiscriminatorView):
    """A view of D whose ``eager`` twin is another object, as a compiled D's is: penalties must
    run their own forward instead of reusing the scoring one."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator
        self._twin = PlainView(discriminator)

    @property
    def module(self) -> nn.Module:
        return self.discriminator

    @property
    def eager(self) -> DiscriminatorView:
        return self._twin

    def full_precision(self, x: torch.Tensor) -> bool:
        return not torch.is_autocast_enabled(x.device.type)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        return self.discriminator(x, y)


class SmallConvD(Discriminator):
    """A two-layer conv D for (N, C, 8, 8) images, optionally with BatchNorm and a class head."""

    def __init__(self, channels: int = 1, n_classes: int = 0, batch_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, 4, 3, stride=2, padding=1)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(4))
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                   nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.adv = nn.Linear(8 * 2 * 2, 1)
        self.cls = nn.Linear(8 * 2 * 2, n_classes) if n_classes else None
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        h = self.body(x)
        return DOutput(adv=self.adv(h)[:, 0], cls=self.cls(h) if self.cls is not None else None,
                       features=h)
