"""The phase runner: every update of a run — pre-training D, D, G — goes through one path here.

A loss object declares its phases (:class:`~ganforge.losses.interface.PhasePlan`); the loop
(``loop.py``) asks the :class:`Runner` for fakes and for one update of a :class:`Phase` at a
time, and stays the same for one process or many, fp32 or mixed precision, eager or compiled.
:meth:`Runner.step` owns what every phase shares: which net has gradients, autocast around the
forward passes, the objective (through DDP where there are several processes), the loss-scaled
backward and the optimizer step of the net the phase trains (``precision.py``), and the loss's
hook after a D update.

The loss sees D only as :class:`LossView`, training's implementation of the interface
``losses`` defines (:class:`~ganforge.losses.interface.DiscriminatorView`): D called under the
run's autocast with fp32 outputs, its eager twin for double-backward penalties when D is
compiled, and whether the current forward runs in full precision (from the run's
:class:`~ganforge.training.step.precision.Precision`), so a penalty may reuse its graph.

Why DDP wraps *objectives*, not D: DDP's reducer expects one forward per backward, no double
backward outside its forward, and no parameter toggled in between — while a GAN's D step calls
D on real samples, on fakes and (WGAN-GP, DRAGAN) on interpolates whose input gradient is taken
with ``create_graph=True``, and the G step runs D again with D's weights frozen. So:

- **D phases** (pre-training and D): :class:`PhaseObjective` runs the loss's whole objective
  of the phase inside one module call; DDP wraps that module (its parameters are D's). One DDP
  forward per backward, the penalty's ``autograd.grad`` happens inside it (it asks for input
  gradients only, so DDP's per-parameter hooks do not fire), and the one ``backward`` of D's
  loss — second-order terms included — reaches every D parameter once; the reducer averages
  those gradients over the ranks. For the D phase ``find_unused_parameters`` stays off (no
  graph walk per step): a loss that left part of D unused would make DDP fail loudly at the
  next step, never quietly. The pre-training phase (ACGAN's class head) leaves the real/fake
  head unused, so its wrapper sets ``find_unused_parameters``; it serves the steps before the
  first one only and is released when the D phase starts — two reducers over the same
  parameters must never alternate.
- **G phase**: G is DDP-wrapped; the G loss runs the *unwrapped* D (frozen by
  :meth:`Runner.step` with ``requires_grad_(False)``), so D's reducer is not involved and only
  G's gradients are averaged. G's forwards for the extra critic steps run under ``no_grad`` and
  do not arm G's reducer.

Mixed precision (``training/step/precision.py``) wraps every forward in autocast; D's outputs are
cast to fp32 before the loss sees them. With ``train.compile`` G and D are compiled, but the
gradient penalty runs D eagerly (:attr:`LossView.eager`): compiled graphs have no double
backward.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ganforge.errors import ConfigError
from ganforge.losses.base import GANLoss, LossOutput
from ganforge.losses.interface import DiscriminatorView
from ganforge.losses.scoring import has_batch_norm
from ganforge.models.base import DOutput
from ganforge.training.step.precision import Precision, check_precision
from ganforge.training.world.ranks import World, step_seed

if TYPE_CHECKING:
    from ganforge.training.step.setup import Setup


class Phase(enum.Enum):
    """One kind of update: pre-training D on real data, the game's D step, its G step."""

    PRETRAIN = "pretrain"
    D = "D"
    G = "G"

    @property
    def net(self) -> str:
        """The net the phase trains (``"D"`` or ``"G"``): its optimizer and loss scale, and the
        only one of the two whose weights get gradients."""
        return "G" if self is Phase.G else "D"


class LossView(nn.Module, DiscriminatorView):
    """D as the loss objects see it: the compiled D when ``train.compile``, outputs in fp32.

    Args:
        discriminator: the trained D (its parameters are this module's).
        compiled: ``torch.compile(discriminator)``, or None to run D eagerly.
        precision: the run's mixed precision, whose autocast the runner enters around every
            forward; None (a view outside a runner): the caller's autocast, whatever it is.
    """

    def __init__(self, discriminator: nn.Module, compiled: Optional[Callable] = None,
                 precision: Optional[Precision] = None) -> None:
        super().__init__()
        self.discriminator = discriminator
        # Kept in tuples, outside the module tree: they share D's parameters, which must not
        # be listed twice (DDP, optimizers, state dicts).
        self._compiled = (compiled,) if compiled is not None else ()
        self._eager: tuple[LossView, ...] = ()
        self._precision = precision

    @property
    def module(self) -> nn.Module:
        return self.discriminator

    @property
    def eager(self) -> "LossView":
        """The same D run eagerly; gradient penalties use it (no double backward when compiled)."""
        if not self._compiled:
            return self
        if not self._eager:
            self._eager = (LossView(self.discriminator, precision=self._precision),)
        return self._eager[0]

    def full_precision(self, x: torch.Tensor) -> bool:
        """Whether D's forward on ``x`` runs in fp32: the runner runs every forward under the
        run's autocast, so that is whether the run uses mixed precision at all."""
        if self._precision is None:
            return not torch.is_autocast_enabled(x.device.type)
        return not self._precision.enabled

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """D(x, y) with every output tensor as fp32 (losses stay in fp32 under autocast)."""
        net = self._compiled[0] if self._compiled else self.discriminator
        out = net(x, y)
        return dataclasses.replace(out, **{
            f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)
            if isinstance(getattr(out, f.name), torch.Tensor)})


class PhaseObjective(nn.Module):
    """A D phase's whole objective as one forward (so DDP sees one forward per backward).

    ``forward(real, y_real, fake=None, y_fake=None)`` returns ``(loss, stats)``: for
    :attr:`Phase.D` the loss's D objective on a real and a (detached) fake batch
    (:meth:`GANLoss.discriminator_loss`), for :attr:`Phase.PRETRAIN` its warm-up on the real
    batch alone (:meth:`GANLoss.pretrain_loss`).
    """

    def __init__(self, view: LossView, loss: GANLoss, phase: Phase) -> None:
        super().__init__()
        self.view, self.loss, self.phase = view, loss, phase

    def forward(self, real: torch.Tensor, y_real: Optional[torch.Tensor],
                fake: Optional[torch.Tensor] = None, y_fake: Optional[torch.Tensor] = None
                ) -> tuple[torch.Tensor, dict[str, Any]]:
        if self.phase is Phase.PRETRAIN:
            out = self.loss.pretrain_loss(self.view, real, y_real)
        else:
            assert fake is not None, "the D phase scores a real and a fake batch"
            out = self.loss.discriminator_loss(self.view, real, y_real, fake, y_fake)
        return out.loss, out.stats


class Runner:
    """G, D and the loss object as a run trains them, one phase update at a time.

    Args:
        setup: the run's components; G and D are converted in place where an option asks
            (SyncBatchNorm, channels_last), keeping their parameter objects, so the optimizers,
            the EMA and checkpoints are unaffected.
        world: this process's rank and world size.
        log: one-line console messages (options ignored, and why).

    Raises:
        ConfigError: an option the device cannot honour (fp16, compile or SyncBatchNorm
            without CUDA).
    """

    def __init__(self, setup: "Setup", world: World,
                 log: Callable[[str], None] = print) -> None:
        cfg, device = setup.cfg.train, setup.device
        self.world, self.seed, self.loss = world, cfg.seed, setup.loss
        self.optimizers = setup.optimizers
        check_precision(cfg.amp, device)
        self.precision = Precision(cfg.amp, device)
        if cfg.amp == "bf16" and device.type == "cpu":
            log("train.amp=bf16 on the CPU: correct, but only CPUs with native bfloat16 "
                "(AVX512-BF16, AMX) run it faster than fp32")
        if device.type == "cuda" and not cfg.deterministic:
            # Fixed input sizes: cuDNN times its algorithms once and keeps the fastest.
            torch.backends.cudnn.benchmark = True
        if cfg.sync_batchnorm:
            self._sync_batch_norm(setup, log)
        G, D = setup.generator, setup.discriminator
        self.channels_last = cfg.channels_last and self._channels_last(setup, log)
        G_run: Callable = G
        D_run: Optional[Callable] = None
        if cfg.compile:
            if device.type != "cuda":
                raise ConfigError(f"train.compile=true needs CUDA (the device is {device.type}; "
                                  "compiling for a CPU costs minutes and gains little for these "
                                  "nets); set train.compile=false")
            G_run, D_run = torch.compile(G), torch.compile(D)
        self.view = LossView(D, D_run, self.precision)
        objectives: dict[Phase, nn.Module] = {
            Phase.D: PhaseObjective(self.view, self.loss, Phase.D),
            Phase.PRETRAIN: PhaseObjective(self.view, self.loss, Phase.PRETRAIN)}
        if world.distributed:
            ids = [device.index] if device.type == "cuda" else None
            G_run = DDP(G_run, device_ids=ids)  # type: ignore[arg-type]
            objectives[Phase.D] = DDP(objectives[Phase.D], device_ids=ids)
            if setup.phases.pretrain_steps > 0:
                objectives[Phase.PRETRAIN] = DDP(objectives[Phase.PRETRAIN], device_ids=ids,
                                                 find_unused_parameters=True)
            else:
                del objectives[Phase.PRETRAIN]
            # The steps before the first one (the pre-training phase) draw per rank, too.
            torch.manual_seed(step_seed(self.seed, world.rank, -1))
            # Aids that adapt to D's outputs (ADA's p) must move the same way on every rank.
            self.loss.set_rank_sum(lambda t: world.sum(t).to(t.dtype))
        self.generator: Callable = G_run
        self._objectives = objectives

    # ------------------------------------------------------------------ options
    def _sync_batch_norm(self, setup: "Setup", log: Callable[[str], None]) -> None:
        if not (has_batch_norm(setup.generator) or has_batch_norm(setup.discriminator)):
            log("train.sync_batchnorm ignored: neither G nor D has BatchNorm layers")
            return
        if not self.world.distributed:
            log("train.sync_batchnorm ignored: it only matters with several processes "
                "(torchrun)")
            return
        if setup.device.type != "cuda":
            raise ConfigError("train.sync_batchnorm=true needs CUDA (torch's SyncBatchNorm has "
                              "no CPU kernel); set train.sync_batchnorm=false")
        # Same parameter and buffer objects, so optimizers and checkpoints are unaffected.
        setup.generator = nn.SyncBatchNorm.convert_sync_batchnorm(setup.generator)
        setup.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(setup.discriminator)

    @staticmethod
    def _channels_last(setup: "Setup", log: Callable[[str], None]) -> bool:
        convs = [m for m in setup.generator.modules() if isinstance(m, nn.modules.conv._ConvNd)]
        if not convs or not setup.data.is_image:
            log(f"train.channels_last ignored: model '{setup.cfg.model.arch}' has no "
                "convolutions")
            return False
        fmt = torch.channels_last
        setup.generator.to(memory_format=fmt)
        setup.discriminator.to(memory_format=fmt)
        if setup.ema is not None:
            setup.ema.module.to(memory_format=fmt)
        return True

    # ------------------------------------------------------------------ what the loop calls
    def begin_step(self, step: int) -> None:
        """Seed this rank's random stream for ``step`` (several processes only)."""
        if self.world.distributed:
            torch.manual_seed(step_seed(self.seed, self.world.rank, step))

    def generate(self, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """G(z, y) under autocast: (N, *out_shape)."""
        with self.precision.autocast():
            return self.generator(z, y)

    def step(self, phase: Phase, *batch: Optional[torch.Tensor]) -> LossOutput:
        """One update of ``phase``: only its net's weights get gradients, its objective
        (:meth:`objective`), backward and the optimizer step of its net, then — after a D
        update — the loss's hook (e.g. WGAN's clipping).

        Args:
            phase: which update.
            *batch: the phase's batch (:meth:`objective`).

        Returns:
            The objective: the loss (its graph used) and the statistics to report.
        """
        D = self.view.discriminator
        # A frozen D lets the G phase's backward skip D's weight gradients.
        D.requires_grad_(phase.net == "D")
        out = self.objective(phase, *batch)
        self.update(phase.net, self.optimizers[phase.net], out.loss)
        if phase.net == "D":
            self.loss.after_discriminator_step(D)
        return out

    def objective(self, phase: Phase, *batch: Optional[torch.Tensor]) -> LossOutput:
        """``phase``'s objective under autocast; a D phase's through its DDP wrapper when
        distributed, the G phase's through the unwrapped D.

        Args:
            phase: which objective.
            *batch: ``real, y_real`` for :attr:`Phase.PRETRAIN`; ``real, y_real, fake,
                y_fake`` for :attr:`Phase.D` (real (N, *shape) in [-1, 1], fake detached from
                G, labels (N,) or (N, K) or None); ``fake, y_fake`` for :attr:`Phase.G` (fake
                carrying G's graph).
        """
        if phase is Phase.G:
            fake, y_fake = batch
            with self.precision.autocast():
                return self.loss.generator_loss(self.view, fake, y_fake)
        objective = self._d_objective(phase)
        real, *rest = batch
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        with self.precision.autocast():
            loss, stats = objective(real, *rest)
        return LossOutput(loss, stats)

    def _d_objective(self, phase: Phase) -> nn.Module:
        if phase is Phase.D and self.world.distributed:
            self._objectives.pop(Phase.PRETRAIN, None)  # its reducer must not outlive it
        objective = self._objectives.get(phase)
        if objective is None:
            raise RuntimeError("D pre-training runs before the first training step only")
        return objective

    def discriminator_loss(self, real: torch.Tensor, y_real: Optional[torch.Tensor],
                           fake: torch.Tensor, y_fake: Optional[torch.Tensor]) -> LossOutput:
        """The D phase's objective (:meth:`objective`)."""
        return self.objective(Phase.D, real, y_real, fake, y_fake)

    def pretrain_loss(self, real: torch.Tensor, y_real: Optional[torch.Tensor]) -> LossOutput:
        """The pre-training phase's objective (:meth:`objective`; before the first step only)."""
        return self.objective(Phase.PRETRAIN, real, y_real)

    def generator_loss(self, fake: torch.Tensor, y_fake: Optional[torch.Tensor]) -> LossOutput:
        """The G phase's objective (:meth:`objective`)."""
        return self.objective(Phase.G, fake, y_fake)

    def update(self, net: str, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Zero the gradients, backward (loss-scaled under fp16; DDP averages), step."""
        self.precision.update(net, optimizer, loss)
