"""The loss-object interface: a GAN variant is an objective, not a branch in the training loop.

The loop draws real batches and latents, runs G, and calls the loss object for the D and G
phases; it owns backward passes, optimizer steps, EMA and checkpoints. A loss object returns
its scalar loss plus the statistics it wants reported, under hierarchical names
(``Loss/D/real``, ``Prob/D(x)``) that the stats collector writes everywhere.

:class:`GANLoss` owns the skeleton of both phases, so that a variant supplies only its formula
and a convergence aid (:mod:`ganforge.losses.aids`) is written once for all of them:

    D step: aids transform D's inputs (augmentation, instance noise) → D scores real and fake
            (one fused forward unless D has BatchNorm) → the variant's :meth:`~GANLoss.d_formula`
            → the variant's own penalty (:meth:`~GANLoss.d_penalty`, WGAN-GP, DRAGAN) → the
            aids' terms (R1/R2, LeCam) and bookkeeping (ADA).
    G step: aids transform the fakes (and, for a relativistic loss, the latest real batch) →
            D scores them → the variant's :meth:`~GANLoss.g_formula`.

D reaches a loss object as a :class:`~ganforge.losses.interface.DiscriminatorView` (the
training runner's, or a plain D adapted by :func:`~ganforge.losses.interface.as_view`), and the
loss tells the training side its schedule as one :class:`~ganforge.losses.interface.PhasePlan`
(:meth:`GANLoss.phase_plan`): ``losses/interface.py`` is the whole agreement between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import torch

from ganforge.errors import ConfigError, GanforgeError
from ganforge.losses import aids as aid_registry
from ganforge.losses.aids import DBatch
from ganforge.losses.interface import AnyDiscriminator, PhasePlan, as_view
from ganforge.losses.scoring import score
from ganforge.models.base import Discriminator, DOutput
from ganforge.registry import LOSSES, MODELS

Terms = Optional[tuple[Optional[torch.Tensor], dict[str, "torch.Tensor | float"]]]


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
    """Base class of every objective: the D- and G-step skeletons, the aids and their state.

    Subclasses implement :meth:`d_formula` and :meth:`g_formula` (the variant's arithmetic on D's
    outputs); they may set ``default_n_critic`` (D steps per G step unless ``loss.n_critic``
    says otherwise), ``decision_threshold`` or :meth:`real_signs` (which side of D's score is
    "real", for ADA), ``g_needs_real`` (G's objective also scores real samples), and override
    :meth:`d_penalty` (a variant's own regulariser), :meth:`after_discriminator_step` (e.g.
    WGAN's weight clipping), :meth:`check` (refuse combinations that make no sense at config
    time) and :meth:`pretrain_loss` (a D-only warm-up on real data before the game starts, run
    for ``pretrain_steps`` steps). The training side reads the schedule these make up through
    :meth:`phase_plan` only.

    Attributes:
        uses_class_head: the loss trains D's auxiliary class head (``model.d_label=classifier``);
            other losses refuse such a model, since its head would never learn.
        n_critic: D steps per G step for this run (declared to the training side in
            :meth:`phase_plan`).
        pretrain_steps: D warm-up steps on real data (0 = none; also in :meth:`phase_plan`).
        d_steps: D steps taken so far (drives lazy penalties and noise annealing; part of
            :meth:`state_dict`).
        aids: the convergence aids the config enables, by name.

    Args:
        cfg: the run's :class:`~ganforge.config.LossConfig`.
    """

    Settings: Optional[type] = None  # a variant's own settings (loss.*), see ganforge.settings
    default_n_critic: int = 1
    uses_class_head: bool = False
    decision_threshold: float = 0.0
    g_needs_real: bool = False

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        n_critic = getattr(cfg, "n_critic", None)
        self.n_critic: int = self.default_n_critic if n_critic is None else int(n_critic)
        self.pretrain_steps: int = 0
        self.d_steps: int = 0
        self.aids = aid_registry.build_aids(cfg)
        self._last_real: Optional[tuple[torch.Tensor, Optional[torch.Tensor]]] = None

    # ------------------------------------------------------------------ checks
    @classmethod
    def check(cls, model_spec: Any, model_cfg: Any) -> None:
        """Raise ConfigError when this loss cannot train the given model family."""

    @classmethod
    def check_config(cls, cfg: Any, data: Any = None) -> None:
        """The loss's word on a whole config (the registry's ``check``): the model family it
        must train (:meth:`check`), and a class head only a loss that trains one may have."""
        m = cfg.model
        cls.check(MODELS.get(m.arch), m)
        if m.conditional and m.d_label == "classifier" and not cls.uses_class_head:
            raise ConfigError(f"model.d_label=classifier adds a class head that loss "
                              f"'{cfg.loss.name}' never trains; use loss.name=acgan or "
                              "model.d_label=input|projection")

    @staticmethod
    def check_data(loss_cfg: Any, sample_shape: Sequence[int]) -> None:
        """Raise ConfigError when an enabled aid cannot work on the data (e.g. augmentation of
        (D,) vectors); ``sample_shape`` is one sample's (C, H, W) or (D,)."""
        aid_registry.check_data(loss_cfg, sample_shape)

    # ------------------------------------------------------------------ what variants supply
    def d_formula(self, out_real: DOutput, out_fake: DOutput, y_real: Optional[torch.Tensor],
                  y_fake: Optional[torch.Tensor]) -> LossOutput:
        """The variant's D objective on D's outputs for the real and the fake batch.

        Returns:
            The loss with a graph and the variant's statistics (``Loss/D`` is set to the final
            total by the skeleton).
        """
        raise NotImplementedError

    def g_formula(self, out_fake: DOutput, y_fake: Optional[torch.Tensor],
                  out_real: Optional[DOutput]) -> LossOutput:
        """The variant's G objective; ``out_real`` is D's output on the latest real batch when
        ``g_needs_real``, else None."""
        raise NotImplementedError

    def d_penalty(self, batch: DBatch) -> Terms:
        """The variant's own regulariser: ``(term, stats)`` or None (the default)."""
        return None

    def real_signs(self, real_adv: torch.Tensor, fake_adv: torch.Tensor) -> torch.Tensor:
        """+1 where D scores a real sample as real, −1 where as fake (ADA's over-fitting signal).

        Args:
            real_adv: (N,) or (N, 1) D's scores of the real inputs.
            fake_adv: D's scores of the fake inputs (used by losses whose scores have no fixed
                zero, e.g. the Wasserstein critic).
        """
        return torch.sign(real_adv - self.decision_threshold)

    def pretrain_loss(self, discriminator: AnyDiscriminator, real: torch.Tensor,
                      y_real: Optional[torch.Tensor]) -> LossOutput:
        """D's warm-up objective on a real batch (only called when ``pretrain_steps > 0``)."""
        raise NotImplementedError(f"{type(self).__name__} has no pre-training phase")

    def after_discriminator_step(self, discriminator: Discriminator) -> None:
        """Hook run after every D optimizer step, pre-training included (no-op by default).

        Args:
            discriminator: the trained D itself (not a view), e.g. to clip its weights.
        """

    # ------------------------------------------------------------------ the schedule
    def phase_plan(self) -> PhasePlan:
        """This loss's schedule: pre-training steps, D steps per G step and the lazy intervals
        of its aids' regularisers (the training side orders a run's phases by it)."""
        lazy = {name: aid.reg_every for name, aid in self.aids.items()
                if aid.reg_every is not None}
        return PhasePlan(pretrain_steps=self.pretrain_steps, n_critic=self.n_critic,
                         reg_every=lazy)

    # ------------------------------------------------------------------ the two phases
    def discriminator_loss(
        self,
        discriminator: AnyDiscriminator,
        real: torch.Tensor,
        y_real: Optional[torch.Tensor],
        fake: torch.Tensor,
        y_fake: Optional[torch.Tensor],
    ) -> LossOutput:
        """D's objective on one real and one fake batch.

        Args:
            discriminator: D as a view, or a plain D (its parameters receive gradients).
            real: (N, *shape) real samples in [-1, 1].
            y_real: (N,) labels of the real samples for conditional models, else None.
            fake: (N, *shape) generated samples, detached from G.
            y_fake: (N,) labels G was conditioned on, else None.
        """
        view = as_view(discriminator)
        step = self.d_steps
        if self.g_needs_real:
            self._last_real = (real.detach(), y_real)
        x_real, x_fake = self.d_inputs(real, step), self.d_inputs(fake, step)
        # Penalties due now may differentiate this forward instead of running D again when it
        # runs eagerly in fp32 (the view says so).
        reuse = view.reuses_graph(x_real)
        if reuse:
            want_real = any(aid.input_grads(step)[0] for aid in self.aids.values())
            want_fake = any(aid.input_grads(step)[1] for aid in self.aids.values())
            x_real = _needing_grad(x_real) if want_real else x_real
            x_fake = _needing_grad(x_fake) if want_fake else x_fake
        out_real, out_fake = score(view, [x_real, x_fake], [y_real, y_fake])
        result = self.d_formula(out_real, out_fake, y_real, y_fake)
        batch = DBatch(view, x_real, y_real, x_fake, y_fake, out_real, out_fake, step,
                       reuse, self.real_signs)
        loss, stats = result.loss, dict(result.stats)
        for terms in [self.d_penalty(batch)] + [aid.d_term(batch) for aid in self.aids.values()]:
            if terms is None:
                continue
            term, extra = terms
            if term is not None:
                loss = loss + term
            stats.update(extra)
        stats["Loss/D"] = loss.detach()
        self.d_steps += 1
        return LossOutput(loss, stats)

    def generator_loss(
        self, discriminator: AnyDiscriminator, fake: torch.Tensor, y_fake: Optional[torch.Tensor]
    ) -> LossOutput:
        """G's objective; ``fake`` carries G's graph, D's parameters are frozen by the runner.

        A relativistic loss (``g_needs_real``) pairs the fakes with the real batch of the
        latest D step (the loop always runs a D step before a G step).
        """
        view = as_view(discriminator)
        x_fake = self.d_inputs(fake, self.d_steps)
        if not self.g_needs_real:
            return self.g_formula(view(x_fake, y_fake), y_fake, None)
        if self._last_real is None:
            raise GanforgeError(f"loss {type(self).__name__} pairs G's fakes with the latest "
                                "real batch; run a discriminator step before the first G step")
        real, y_real = self._last_real
        # D is frozen here and real data carries no graph, so D(real) is a constant of G's loss:
        # scoring it without a graph costs one forward, where a fused forward would also
        # back-propagate through the real half (an input gradient that is thrown away).
        with torch.no_grad():
            out_real = view(self.d_inputs(real, self.d_steps), y_real)
        return self.g_formula(view(x_fake, y_fake), y_fake, out_real)

    def d_inputs(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """A batch on its way into D, through every aid's transform (augmentation, noise)."""
        for aid in self.aids.values():
            x = aid.transform(x, step)
        return x

    # ------------------------------------------------------------------ state and ranks
    def state_dict(self) -> dict[str, Any]:
        """What a resume needs: the D-step counter and each aid's state (JSON-able numbers)."""
        return {"d_steps": self.d_steps,
                "aids": {name: aid.state_dict() for name, aid in self.aids.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. Missing entries (a checkpoint from before an aid was
        enabled) keep their initial values; entries of aids this run does not enable are
        ignored."""
        self.d_steps = int(state.get("d_steps", 0))
        for name, aid_state in state.get("aids", {}).items():
            if name in self.aids:
                self.aids[name].load_state_dict(aid_state)

    def set_rank_sum(self, rank_sum: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Give the aids a function that sums a small tensor over all processes (torchrun).

        ADA calls it every ``loss.ada_interval`` D steps, inside the D objective, on the same
        step on every rank, so that all ranks move ``p`` by the same global r_t.
        """
        for aid in self.aids.values():
            aid.rank_sum = rank_sum


def _needing_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself if autograd already tracks it, else a detached copy that requires grad."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


__all__ = ["LOSSES", "GANLoss", "LossOutput"]
