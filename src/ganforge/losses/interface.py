"""What crosses the line between a loss object and the training side, declared by the losses.

``losses`` sits below ``training`` and never imports it; what the two must agree on is written
down here, and the training side implements or reads it:

- :class:`DiscriminatorView`, D as a loss object sees it. A loss only ever calls it
  (``view(x, y) -> DOutput``), asks it for its :attr:`~DiscriminatorView.eager` twin when a
  penalty needs a double backward, and asks it whether the forward it runs now is in full
  precision (:meth:`~DiscriminatorView.full_precision`), so that a penalty may take input
  gradients from the scoring forward instead of running D again. The training runner's
  ``LossView`` implements it (a compiled D, its own autocast, fp32 outputs); a plain
  discriminator, as the losses' unit tests pass one, is adapted by :func:`as_view`.
- :class:`PhasePlan`, the loss's schedule, returned by ``GANLoss.phase_plan()``: D-only
  pre-training steps on real data, D steps per G step and the lazy intervals of the aids'
  regularisers. The training side reads this one object to order the phases of a run.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Union

import torch
from torch import nn

from ganforge.models.base import DOutput


class DiscriminatorView(abc.ABC):
    """D as a loss object sees it: a call, its eager twin and the precision of its forward.

    Implemented by the training runner's view (``training/step/runner.py``: D possibly
    compiled, run under the run's autocast, outputs cast to fp32) and by :class:`PlainView`
    (any ``discriminator(x, y) -> DOutput`` as it is).
    """

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """D's outputs for a batch.

        Args:
            x: (N, *shape) D's inputs.
            y: (N,) class indices or (N, K) condition rows for a conditional D, else None.

        Returns:
            ``adv`` (N,) or (N, 1), optional ``cls`` (N, K) and ``features`` (N, F).
        """

    @property
    @abc.abstractmethod
    def module(self) -> object:
        """The discriminator behind the view (its layers decide whether real and fake samples
        may share one forward: :func:`~ganforge.losses.scoring.couples_samples`)."""

    @property
    @abc.abstractmethod
    def eager(self) -> "DiscriminatorView":
        """The same D run eagerly: compiled graphs have no double backward, so gradient
        penalties call this twin. The view itself when it runs eagerly."""

    @abc.abstractmethod
    def full_precision(self, x: torch.Tensor) -> bool:
        """Whether this view's forward on ``x`` (N, *shape) runs in fp32 now (no autocast).

        Only then may a penalty differentiate the scoring forward w.r.t. D's inputs: under
        autocast small fp16/bf16 input gradients square to zero, so the penalty runs D again
        in fp32.
        """

    def reuses_graph(self, x: torch.Tensor) -> bool:
        """Whether a penalty may take input gradients from this view's forward on ``x``: it
        runs in full precision and eagerly (its :attr:`eager` twin is the view itself)."""
        return self.full_precision(x) and self.eager is self


class PlainView(DiscriminatorView):
    """A plain discriminator as a :class:`DiscriminatorView`: eager, in the caller's precision.

    Args:
        discriminator: any ``discriminator(x, y) -> DOutput``: an ``nn.Module`` or a function.
    """

    def __init__(self, discriminator: Callable[..., DOutput]) -> None:
        self._discriminator = discriminator

    def __call__(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        return self._discriminator(x, y)

    @property
    def module(self) -> object:
        return self._discriminator

    @property
    def eager(self) -> DiscriminatorView:
        return self

    def full_precision(self, x: torch.Tensor) -> bool:
        # No runner sets the precision here: it is whatever autocast the caller entered.
        return not torch.is_autocast_enabled(x.device.type)


AnyDiscriminator = Union[DiscriminatorView, nn.Module, Callable[..., DOutput]]


def as_view(discriminator: AnyDiscriminator) -> DiscriminatorView:
    """``discriminator`` itself when it is a :class:`DiscriminatorView`, else a
    :class:`PlainView` of it (the losses' entry points accept either)."""
    if isinstance(discriminator, DiscriminatorView):
        return discriminator
    return PlainView(discriminator)


@dataclass(frozen=True)
class PhasePlan:
    """A loss object's schedule: which phases a run takes and how often.

    The training side runs ``pretrain_steps`` D-only steps on real batches before step 1 (their
    objective is ``GANLoss.pretrain_loss``; a resumed run never repeats them), then, per
    training step, ``n_critic`` D steps, each on a fresh real batch, and one G step.

    Attributes:
        pretrain_steps: D-only warm-up steps on real data before the game (ACGAN's class head,
            ``loss.pretrain_steps``); 0: none.
        n_critic: D steps per G step (WGAN: 5 by default; ``loss.n_critic``).
        reg_every: lazily applied regularisers by aid name, and their interval in D steps
            (R1/R2: ``{"r1r2": loss.reg_every}``). The aid applies its term on D steps 0, k,
            2k, ... inside the D objective, scaled by k, so no phase of its own is needed.
    """

    pretrain_steps: int = 0
    n_critic: int = 1
    reg_every: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pretrain_steps < 0 or self.n_critic < 1 or \
                any(k < 1 for k in self.reg_every.values()):
            raise ValueError(f"invalid phase plan {self}: pretrain_steps >= 0, n_critic >= 1 "
                             "and every interval >= 1")

    def images_per_step(self, global_batch: int) -> int:
        """Real images one G step consumes over all ranks (``n_critic`` batches of
        ``global_batch``): what the images/s statistic counts."""
        return global_batch * self.n_critic
