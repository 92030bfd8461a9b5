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
    ``default_n_critic`` (D steps per G step unless ``loss.n_critic`` says otherwise), override
    :meth:`after_discriminator_step` (e.g. WGAN's weight clipping), :meth:`check` (refuse
    combinations that make no sense at config time) and :meth:`pretrain_loss` (a D-only warm-up
    on real data before the game starts, run for ``pretrain_steps`` steps).

    Attributes:
        uses_class_head: the loss trains D's auxiliary class head (``model.d_label=classifier``);
            other losses refuse such a model, since its head would never learn.
        n_critic: D steps per G step for this run.
        pretrain_steps: D warm-up steps on real data (0 = none).

    Args:
        cfg: the run's :class:`~ganforge.config.LossConfig`.
    """

    default_n_critic: int = 1
    uses_class_head: bool = False

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        n_critic = getattr(cfg, "n_critic", None)
        self.n_critic: int = self.default_n_critic if n_critic is None else int(n_critic)
        self.pretrain_steps: int = 0

    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        """Raise ConfigError when this loss cannot train the given model family."""

    def pretrain_loss(self, discriminator: Discriminator, real: torch.Tensor,
                      y_real: Optional[torch.Tensor]) -> LossOutput:
        """D's warm-up objective on a real batch (only called when ``pretrain_steps > 0``)."""
        raise NotImplementedError(f"{type(self).__name__} has no pre-training phase")

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
