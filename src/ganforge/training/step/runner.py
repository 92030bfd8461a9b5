"""How the loop runs G, D and the loss object: DDP, autocast, ``torch.compile``, channels_last.

The loop (``loop.py``) never touches these wrappers itself; it asks the :class:`Runner` for
fakes, for D's and G's objectives and for optimizer updates, and stays the same for one process
or many, fp32 or mixed precision, eager or compiled.

Why DDP wraps *objectives*, not D: DDP's reducer expects one forward per backward, no double
backward outside its forward, and no parameter toggled in between — while a GAN's D step calls
D on real samples, on fakes and (WGAN-GP, DRAGAN) on interpolates whose input gradient is taken
with ``create_graph=True``, and the G step runs D again with D's weights frozen. So:

- **D step**: :class:`DiscriminatorObjective` runs the loss object's whole D objective inside
  one module call; DDP wraps that module (its parameters are D's). One DDP forward per
  backward, the penalty's ``autograd.grad`` happens inside it (it asks for input gradients
  only, so DDP's per-parameter hooks do not fire), and the one ``backward`` of D's loss —
  second-order terms included — reaches every D parameter once; the reducer averages those
  gradients over the ranks. ``find_unused_parameters`` stays off (no graph walk per step): a
  loss that left part of D unused would make DDP fail loudly at the next step, never quietly.
- **G step**: G is DDP-wrapped; the G loss runs the *unwrapped* D (frozen by the loop with
  ``requires_grad_(False)``), so D's reducer is not involved and only G's gradients are
  averaged. G's forwards on the extra critic steps run under ``no_grad`` and do not arm G's
  reducer.
- **D pre-training** (ACGAN's class head): its own DDP wrapper with ``find_unused_parameters``
  (the real/fake head is unused), used only before the first step and released when the D step
  starts — two reducers over the same parameters must never alternate.

Mixed precision (``training/step/precision.py``) wraps every forward in autocast; D's outputs are
cast to fp32 before the loss sees them. With ``train.compile`` G and D are compiled, but the
gradient penalty runs D eagerly (:attr:`LossView.eager`): compiled graphs have no double
backward.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ganforge.errors import ConfigError
from ganforge.losses.base import GANLoss, LossOutput
from ganforge.losses.scoring import has_batch_norm
from ganforge.models.base import DOutput
from ganforge.training.step.precision import Precision, check_precision
from ganforge.training.world.ranks import World, step_seed

if TYPE_CHECKING:
    from ganforge.training.step.setup import Setup


class LossView(nn.Module):
    """D as the loss objects see it: the compiled D when ``train.compile``, outputs in fp32.

    Args:
        discriminator: the trained D (its parameters are this module's).
        compiled: ``torch.compile(discriminator)``, or None to run D eagerly.
    """

    def __init__(self, discriminator: nn.Module, compiled: Optional[Callable] = None) -> None:
        super().__init__()
        self.discriminator = discriminator
        # Kept in tuples, outside the module tree: they share D's parameters, which must not
        # be listed twice (DDP, optimizers, state dicts).
        self._compiled = (compiled,) if compiled is not None else ()
        self._eager: tuple[LossView, ...] = ()

    @property
    def eager(self) -> "LossView":
        """The same D run eagerly; gradient penalties use it (no double backward when compiled)."""
        if not self._compiled:
            return self
        if not self._eager:
            self._eager = (LossView(self.discriminator),)
        return self._eager[0]

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """D(x, y) with every output tensor as fp32 (losses stay in fp32 under autocast)."""
        net = self._compiled[0] if self._compiled else self.discriminator
        out = net(x, y)
        return dataclasses.replace(out, **{
            f.name: getattr(out, f.name).float() for f in dataclasses.fields(out)
            if isinstance(getattr(out, f.name), torch.Tensor)})


class DiscriminatorObjective(nn.Module):
    """The loss object's whole D objective as one forward (so DDP sees one per backward).

    ``forward(real, y_real, fake, y_fake)`` takes the loss's arguments (see
    :meth:`GANLoss.discriminator_loss`) and returns ``(loss, stats)``.
    """

    def __init__(self, view: LossView, loss: GANLoss) -> None:
        super().__init__()
        self.view, self.loss = view, loss

    def forward(self, real: torch.Tensor, y_real: Optional[torch.Tensor], fake: torch.Tensor,
                y_fake: Optional[torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.loss.discriminator_loss(self.view, real, y_real, fake, y_fake)
        return out.loss, out.stats


class PretrainObjective(nn.Module):
    """The loss's D warm-up objective on a real batch, as one forward: ``(loss, stats)``."""

    def __init__(self, view: LossView, loss: GANLoss) -> None:
        super().__init__()
        self.view, self.loss = view, loss

    def forward(self, real: torch.Tensor, y_real: Optional[torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, Any]]:
        out = self.loss.pretrain_loss(self.view, real, y_real)
        return out.loss, out.stats


class Runner:
    """G, D and the loss object as the loop trains them.

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
        self.view = LossView(D, D_run)
        d_objective = DiscriminatorObjective(self.view, self.loss)
        pretrain = PretrainObjective(self.view, self.loss)
        self._pretrain: Optional[nn.Module] = pretrain
        if world.distributed:
            ids = [device.index] if device.type == "cuda" else None
            G_run = DDP(G_run, device_ids=ids)  # type: ignore[arg-type]
            d_objective = DDP(d_objective, device_ids=ids)
            self._pretrain = (DDP(pretrain, device_ids=ids, find_unused_parameters=True)
                              if self.loss.pretrain_steps > 0 else None)
            # The steps before the first one (ACGAN's pre-training) draw per rank, too.
            torch.manual_seed(step_seed(self.seed, world.rank, -1))
            # Aids that adapt to D's outputs (ADA's p) must move the same way on every rank.
            self.loss.set_rank_sum(lambda t: world.sum(t).to(t.dtype))
        self.generator: Callable = G_run
        self.d_objective: nn.Module = d_objective

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

    def discriminator_loss(self, real: torch.Tensor, y_real: Optional[torch.Tensor],
                           fake: torch.Tensor, y_fake: Optional[torch.Tensor]) -> LossOutput:
        """D's objective on a real and a (detached) fake batch, through DDP when distributed."""
        if self.world.distributed:
            self._pretrain = None  # its reducer must not outlive the pre-training
        if self.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        with self.precision.autocast():
            loss, stats = self.d_objective(real, y_real, fake, y_fake)
        return LossOutput(loss, stats)

    def generator_loss(self, fake: torch.Tensor, y_fake: Optional[torch.Tensor]) -> LossOutput:
        """G's objective through the unwrapped (frozen) D."""
        with self.precision.autocast():
            return self.loss.generator_loss(self.view, fake, y_fake)

    def pretrain_loss(self, real: torch.Tensor, y_real: Optional[torch.Tensor]) -> LossOutput:
        """The loss's D warm-up objective (before the first step only)."""
        if self._pretrain is None:
            raise RuntimeError("D pre-training runs before the first training step only")
        with self.precision.autocast():
            loss, stats = self._pretrain(real, y_real)
        return LossOutput(loss, stats)

    def update(self, phase: str, optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """Zero the gradients, backward (loss-scaled under fp16; DDP averages), step."""
        self.precision.update(phase, optimizer, loss)
