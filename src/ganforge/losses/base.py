"""The loss-object interface: a GAN variant is an objective, not a branch in the training loop.

The loop draws real batches and latents, runs G, and calls the loss object for the D and G
phases; it owns backward passes, optimizer steps, EMA and checkpoints. A loss object returns
its scalar loss plus the statistics it wants reported, under hierarchical names
(``Loss/D/real``, ``Prob/D(x)``) that the stats collector writes everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from ganforge.models.base import Discriminator
from ganforge.registry import Registry


@dataclass
class LossOutput:
    """A scalar loss to back-propagate and detached statistics to report.

    Attributes:
        loss: () scalar tensor with a graph.
        stats: name → () tensor (detached) or float; averaged by the stats collector.
    """

    loss: torch.Tensor
    stats: dict[str, torch.Tensor | float] = field(default_factory=dict)


class GANLoss:
    """Base class of every objective.

    Subclasses implement :meth:`discriminator_loss` and :meth:`generator_loss`; they may set
    ``n_critic`` (D steps per G step) and override :meth:`after_discriminator_step` (e.g. WGAN's
    weight clipping) and :meth:`check` (refuse combinations that make no sense at config time).

    Args:
        cfg: the run's :class:`~ganforge.config.LossConfig`.
    """

    n_critic: int = 1

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        """Raise ConfigError when this loss cannot train the given model family."""

    def discriminator_loss(
        self,
        discriminator: Discriminator,
        real: torch.Tensor,
        y_real: Optional[torch.Tensor],
        fake: torch.Tensor,
        y_fake: Optional[torch.Tensor],
    ) -> LossOutput:
        """D's objective on one real and one fake batch.

        Args:
            discriminator: D (its parameters receive gradients).
            real: (N, *shape) real samples in [-1, 1].
            y_real: (N,) labels of the real samples for conditional models, else None.
            fake: (N, *shape) generated samples, detached from G.
            y_fake: (N,) labels G was conditioned on, else None.
        """
        raise NotImplementedError

    def generator_loss(
        self, discriminator: Discriminator, fake: torch.Tensor, y_fake: Optional[torch.Tensor]
    ) -> LossOutput:
        """G's objective; ``fake`` carries G's graph, D's parameters are frozen by the loop."""
        raise NotImplementedError

    def after_discriminator_step(self, discriminator: Discriminator) -> None:
        """Hook run after every D optimizer step (no-op by default)."""


LOSSES: Registry[type[GANLoss]] = Registry("loss")
