"""Non-finite guard: a NaN or Inf in a loss or in the weights is caught the step it appears.

The loop hands every loss it computes to :meth:`NonFiniteGuard.watch` (no host sync) and calls
:meth:`NonFiniteGuard.check` once at the end of each step. What happens then is the run's
``train.on_nonfinite``:

- ``"stop"``: write a diagnostic snapshot — ``checkpoints/nonfinite.*`` (the weights as they
  are now, outside the rotation) and ``RUN/nonfinite.json`` (step, loss values, the non-finite
  tensors, the last stats line) — and stop with one line naming the step and the loss;
- ``"rollback"``: reload the newest good checkpoint, multiply the learning rates by
  ``train.rollback_lr_factor`` and go on, at most ``train.max_rollbacks`` times, then stop.

Why the weights are checked too, and how it stays cheap: a finite loss does not imply finite
weights after the optimizer step (an overflowing gradient or a huge learning rate turns weights
into Inf/NaN while the loss that produced them was fine). Such weights would show up in the
*next* step's loss at best — an infinite logit can even give a finite BCE loss — so each step
also checks G's and D's tensors after their updates. The test is each tensor's extremes (min and
max; on CUDA the largest absolute value, one fused kernel), which cannot overflow the way a sum
or a squared norm of large finite weights would, and which carry any NaN or Inf; times zero they
are 0 for finite tensors and NaN otherwise. Everything folds into one scalar, read with one host
sync per step; on a GPU that sync is the price of catching the problem the step it happens. The
weight pass reads every weight once, a few percent of a step that reads them several times
(forward, backward, optimizer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

import torch
from torch.nn.utils import get_total_norm

from ganforge import fileio
from ganforge.config import TrainConfig
from ganforge.errors import NonFiniteError
from ganforge.run import checkpoint as ckpt
from ganforge.training.world.ranks import World, current

if TYPE_CHECKING:
    from ganforge.reporting.stats import StatsCollector
    from ganforge.training.step.setup import Setup

SNAPSHOT = "nonfinite"  # checkpoints/nonfinite.* and RUN/nonfinite.json


class Guarded(Protocol):
    """What the guard needs of the run it protects (the trainer)."""

    run_dir: Path
    step: int
    stats: "StatsCollector"
    world: World
    log: Callable[[str], None]

    def save(self, name: Optional[str] = None) -> Optional[Path]:
        """Write a checkpoint (``name``: outside the rotation)."""

    def rollback(self) -> None:
        """Back to the newest good checkpoint."""


@dataclass
class NonFinite:
    """What went non-finite at one step.

    Attributes:
        step: the training step (as in stats.jsonl) whose update produced the value.
        losses: every loss watched during the step, name -> value (the first non-finite one
            per name, else the last).
        tensors: names of non-finite weights/buffers, e.g. ``"D/net.0.weight"``.
    """

    step: int
    losses: dict[str, float]
    tensors: list[str] = field(default_factory=list)

    def what(self) -> str:
        """E.g. ``"Loss/D (nan)"`` or ``"weights (G/net.0.weight and 3 more)"``."""
        parts = [f"{name} ({value:g})" for name, value in self.losses.items()
                 if not math.isfinite(value)]
        if self.tensors:
            more = f" and {len(self.tensors) - 1} more" if len(self.tensors) > 1 else ""
            parts.append(f"weights ({self.tensors[0]}{more})")
        return ", ".join(parts)


def _extremes(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A () tensor that is finite exactly when every element of ``tensors`` is.

    Maxima and minima never overflow (a sum or a squared norm of large, finite weights would)
    and carry any NaN or Inf. On CUDA ``get_total_norm`` does it in one fused kernel; on the
    CPU its ``abs()`` copy costs ~15x more than ``aminmax``, which reads each tensor once.
    """
    if tensors[0].is_cuda:
        return get_total_norm(tensors, norm_type=math.inf)
    # Scaled by zero before summing, so two huge finite extremes cannot add up to Inf.
    return (torch.stack([torch.stack(torch.aminmax(t)) for t in tensors]).float() * 0).sum()


def _json_number(value: float) -> float | str:
    # Strict JSON has no NaN/Infinity; the diagnostic keeps them readable as strings.
    return value if math.isfinite(value) else str(value)


class NonFiniteGuard:
    """Watches one run's losses and weights; see the module docstring.

    Args:
        cfg: the run's train settings (``on_nonfinite``, ``rollback_lr_factor``,
            ``max_rollbacks``).
        setup: the run's components; G's and D's tensors are checked, and a rollback scales
            the optimizers' learning rates and the schedule's base rates.
    """

    def __init__(self, cfg: TrainConfig, setup: "Setup") -> None:
        self.policy = cfg.on_nonfinite
        self.factor = cfg.rollback_lr_factor
        self.max_rollbacks = cfg.max_rollbacks
        self.s = setup
        self.world = current()
        self.modules = {"G": setup.generator, "D": setup.discriminator}
        self._base_lrs = dict(setup.schedule.base_lrs)
        self.rollbacks = 0
        self.lr_scale = 1.0
        self._losses: list[tuple[str, torch.Tensor]] = []
        self._watched: Optional[list[tuple[str, torch.Tensor]]] = None

    # ------------------------------------------------------------------ watching
    def watch(self, name: str, loss: torch.Tensor) -> None:
        """Remember a loss of the current step (no host sync)."""
        self._losses.append((name, loss.detach()))

    def _tensors(self) -> list[tuple[str, torch.Tensor]]:
        # The parameter/buffer objects are listed once (optimizers and load_state_dict update
        # them in place); detached per call, so a swapped ``.data`` is still seen.
        if self._watched is None:
            self._watched = [
                (f"{mname}/{tname}", t) for mname, module in self.modules.items()
                for named in (module.named_parameters(), module.named_buffers())
                for tname, t in named if t.is_floating_point() and t.numel()]
        return [(name, t.detach()) for name, t in self._watched]

    def check(self, step: int) -> Optional[NonFinite]:
        """Whether this step's losses and the updated weights are finite (one host sync).

        Returns:
            None when everything is finite, else what was not.
        """
        losses, self._losses = self._losses, []
        tensors = self._tensors()
        flags = [(loss.float() * 0).sum() for _, loss in losses]
        if tensors:
            flags.append(_extremes([t for _, t in tensors]) * 0)
        if not flags:
            return None
        device = flags[0].device
        flag = torch.stack([f.to(device) for f in flags]).sum()
        # Under torchrun every rank must take the same branch: one rank's NaN stops them all.
        if math.isfinite(float(self.world.sum(flag))):
            return None
        # The failure path: now it is fine to look at every value separately.
        values: dict[str, float] = {}
        for name, loss in losses:
            value = float(loss.float().sum())
            if name not in values or math.isfinite(values[name]):
                values[name] = value
        bad = [name for name, t in tensors if not bool(torch.isfinite(t).all())]
        return NonFinite(step, values, bad)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"rollbacks": self.rollbacks, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: Optional[dict[str, Any]]) -> None:
        """Restore the counters of a resumed run (checkpoints before this guard have none)."""
        state = state or {}
        self.rollbacks = int(state.get("rollbacks", 0))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        # The optimizers' own rates come back with their state; a schedule recomputes the
        # rates from its base values every step, so those carry the scale too.
        self.s.schedule.base_lrs = {k: v * self.lr_scale for k, v in self._base_lrs.items()}

    # ------------------------------------------------------------------ policy
    def prepare(self, trainer: Guarded) -> None:
        """Rolling back needs a checkpoint to go back to: save one at the start if none."""
        if self.policy == "rollback" and not ckpt.list_checkpoints(trainer.run_dir):
            trainer.save()

    def handle(self, problem: NonFinite, trainer: Guarded) -> None:
        """Roll back (when allowed and rollbacks are left) or stop with a snapshot.

        Raises:
            NonFiniteError: when the run stops.
        """
        if self.policy == "rollback" and self.rollbacks < self.max_rollbacks:
            self._roll_back(problem, trainer)
            return
        snapshot = self._snapshot(problem, trainer)
        if self.policy == "rollback":
            raise NonFiniteError(
                f"non-finite {problem.what()} at step {problem.step} after {self.rollbacks} "
                f"rollbacks (train.max_rollbacks); diagnostic snapshot in '{snapshot}'; lower "
                "optim.lr_g/optim.lr_d further or check the data")
        raise NonFiniteError(
            f"non-finite {problem.what()} at step {problem.step}; diagnostic snapshot in "
            f"'{snapshot}'; lower optim.lr_g/optim.lr_d or set train.on_nonfinite=rollback")

    def _roll_back(self, problem: NonFinite, trainer: Guarded) -> None:
        rollbacks, scale = self.rollbacks, self.lr_scale
        trainer.rollback()  # restores weights, optimizers, RNG, data order, step and our state
        saved_scale = self.lr_scale
        self.rollbacks, self.lr_scale = rollbacks + 1, scale * self.factor
        for opt in self.s.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = group["lr"] * (self.lr_scale / saved_scale)
        self.s.schedule.base_lrs = {k: v * self.lr_scale for k, v in self._base_lrs.items()}
        trainer.log(f"non-finite {problem.what()} at step {problem.step}: rolled back to step "
                    f"{trainer.step}, learning rates x{self.lr_scale:g} (rollback "
                    f"{self.rollbacks} of {self.max_rollbacks})")

    def _snapshot(self, problem: NonFinite, trainer: Guarded) -> Any:
        """``checkpoints/nonfinite.*`` and ``RUN/nonfinite.json``; returns the JSON's path."""
        ckpt_path = trainer.save(name=SNAPSHOT)
        stats = trainer.stats
        path = trainer.run_dir / f"{SNAPSHOT}.json"
        write = fileio.write_json if trainer.world.is_main else (lambda *_: None)
        write(path, {
            "step": problem.step,
            "policy": self.policy,
            "losses": {k: _json_number(v) for k, v in problem.losses.items()},
            "nonfinite_tensors": problem.tensors,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "last_stats_step": stats.latest_step,
            "last_stats": {k: _json_number(float(v)) for k, v in stats.latest.items()},
            "checkpoint": ckpt_path and str(ckpt_path.relative_to(trainer.run_dir)),
        })
        # The failing step goes into stats.jsonl too (its non-finite means as null), and the
        # writers are closed so TensorBoard's pending events reach the disk before we stop.
        if stats.names:
            stats.flush(problem.step)
        stats.close()
        return path
