"""The aid interface: what an aid sees of a D step (:class:`DBatch`), the :class:`Aid` base
class and the :data:`AIDS` registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from ganforge.losses.interface import DiscriminatorView
from ganforge.models.base import DOutput
from ganforge.registry import AIDS

Stats = dict[str, "torch.Tensor | float"]
RankSum = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class DBatch:
    """One D step as the aids (and a variant's own penalty) see it.

    Attributes:
        discriminator: D as the loss sees it; a term that runs D again for a double backward
            calls its :attr:`~ganforge.losses.interface.DiscriminatorView.eager` twin.
        x_real: (N, *shape) D's real inputs, after augmentation and noise.
        y_real: (N,) or (N, K) labels of the real samples, else None.
        x_fake: (N, *shape) D's fake inputs, after augmentation and noise (detached from G).
        y_fake: labels G was conditioned on, else None.
        out_real: D's output on ``x_real``.
        out_fake: D's output on ``x_fake``.
        step: 0-based index of this D step since the start of training.
        reuse: the scores were computed in fp32 by an eager D, and ``x_real``/``x_fake``
            require grad where an aid asked (:meth:`Aid.input_grads`): a penalty may take
            input gradients from this forward instead of running D again.
        real_signs: the loss's :meth:`~ganforge.losses.base.GANLoss.real_signs`: (N,) +1 where
            a score counts as "real" for this loss, -1 elsewhere.
    """

    discriminator: DiscriminatorView
    x_real: torch.Tensor
    y_real: Optional[torch.Tensor]
    x_fake: torch.Tensor
    y_fake: Optional[torch.Tensor]
    out_real: DOutput
    out_fake: DOutput
    step: int
    reuse: bool
    real_signs: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Aid:
    """Base class of a convergence aid; every hook defaults to doing nothing.

    Attributes:
        order: position among the input transforms (lower runs first: augment, then noise).
        rank_sum: sums a tensor over the processes of a distributed run (identity in one
            process); :meth:`GANLoss.set_rank_sum` replaces it.

    Args:
        cfg: the run's :class:`~ganforge.config.LossConfig`.
    """

    order: int = 100
    Settings: Optional[type] = None  # the aid's own loss.* settings, see ganforge.settings

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.rank_sum: RankSum = lambda t: t

    @classmethod
    def enabled(cls, cfg: Any) -> bool:
        """Whether ``cfg`` turns this aid on (every aid is off by default)."""
        raise NotImplementedError

    @classmethod
    def check_data(cls, cfg: Any, sample_shape: Sequence[int]) -> None:
        """Raise ConfigError when the aid cannot work on samples of this shape."""

    @classmethod
    def check_config(cls, cfg: Any, data: Any = None) -> None:
        """The aid's word on a whole config it is switched on in (the registry's ``check``);
        with the data loaded, whether it can work on its samples (:meth:`check_data`)."""
        if data is not None:
            cls.check_data(cfg.loss, data.shape)

    def transform(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Change one batch of D's inputs (real or fake, D or G step); identity by default.

        Args:
            x: (N, *shape) samples on their way into D.
            step: index of the current D step (the G step uses the number of D steps so far).
        """
        return x

    @property
    def reg_every(self) -> Optional[int]:
        """D steps between two applications of this aid's regulariser when it is applied lazily
        (declared in the loss's :class:`~ganforge.losses.interface.PhasePlan`); None: it is not
        a lazy regulariser."""
        return None

    def input_grads(self, step: int) -> tuple[bool, bool]:
        """Whether this step's term differentiates D w.r.t. its (real, fake) inputs."""
        return False, False

    def d_term(self, batch: DBatch) -> tuple[Optional[torch.Tensor], Stats]:
        """A () term to add to D's loss (or None) and the statistics to report."""
        return None, {}

    def state_dict(self) -> dict[str, Any]:
        """State that must survive a resume, as JSON-able numbers."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; missing keys keep their initial values."""


__all__ = ["AIDS", "Aid", "DBatch", "RankSum", "Stats", "build_aids", "check_data"]


def build_aids(cfg: Any) -> dict[str, Aid]:
    """The aids ``cfg`` enables, by registry name, in transform order."""
    enabled = [(name, AIDS.get(name)) for name in AIDS.names() if AIDS.get(name).enabled(cfg)]
    enabled.sort(key=lambda item: item[1].order)
    return {name: cls(cfg) for name, cls in enabled}


def check_data(cfg: Any, sample_shape: Sequence[int]) -> None:
    """Refuse enabled aids that cannot work on samples of ``sample_shape`` (ConfigError)."""
    for name in AIDS.names():
        if AIDS.get(name).enabled(cfg):
            AIDS.get(name).check_data(cfg, sample_shape)


