"""The training loop. It never names a GAN variant: the loss object decides what D and G optimise,
and declares its schedule (:class:`~ganforge.losses.interface.PhasePlan`), which the loop walks:

    before step 1: the loss's pre-training phase, if any (D-only steps on real batches);
    per step:      ``n_critic`` D steps on fresh real batches and fresh fakes, then one G step —
                   reusing the last fakes' graph, so G runs forward once per step;
    after a step:  in-loop metrics, stats, grids and checkpoints on their intervals.

Every update goes through the phase runner (``step/runner.py``: DDP, autocast, compile,
gradient scaling); every count of samples through the run's
:class:`~ganforge.data.batch_plan.BatchPlan`. Grids, in-loop metrics, diagnostics and the report
are not the loop's business: it calls the hooks its caller built (``step/hooks.py``; the
launcher passes ``training.watch``'s); the bar and the images/s are ``step/progress.py``'s.

Between two steps the loop asks, once and agreed over every rank: is the budget spent, did a stop
signal come (``step/interrupt.py``: then the step just done is saved and the run ends with
:class:`~ganforge.errors.Interrupted`), and is a checkpoint due by wall time
(``train.checkpoint_minutes``)? The training clock also names checkpoints
(``log.checkpoint_minutes``) and times in-loop metrics (``eval.minutes``). After in-loop
metrics the caller may end the run (its hooks' ``evaluated``: a
:class:`~ganforge.errors.StopRun`), which is kept as a signal's stop is and then raised on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, NoReturn, Optional

import torch

from ganforge import fileio
from ganforge.config import Config
from ganforge.errors import CheckpointError, ConfigError, Interrupted, StopRun
from ganforge.losses.base import LossOutput
from ganforge.reporting.writers import JsonlWriter
from ganforge.run import checkpoint as ckpt
from ganforge.run.layout import CONFIG_FILE, MODEL_FILE, STATS_FILE, SUMMARY_FILE
from ganforge.training.step.guard import NonFiniteGuard
from ganforge.training.step.hooks import HookContext, HookFactory, RunHooks
from ganforge.training.step.interrupt import (SIGNALS, StopSignals, aborted_line,
                                              resume_command, stderr_line)
from ganforge.training.step.progress import Budget, Progress
from ganforge.training.step.runner import Phase, Runner
from ganforge.training.step.setup import Setup, build
from ganforge.training.world.ranks import current
from ganforge.training.world.stats import stats_collector


class Trainer:
    """Runs one training job into ``run_dir``.

    Args:
        cfg: resolved config.
        run_dir: the run folder (created if needed).
        resume: continue from the newest valid checkpoint in ``run_dir``.
        log: callable for one-line console messages.
        hooks: builds the run's watchers from a :class:`HookContext` (grids, metrics,
            diagnostics, report); None: nothing watches (:class:`RunHooks`).
    """

    def __init__(self, cfg: Config, run_dir: Path, resume: bool = False,
                 log: Callable[[str], None] = print,
                 hooks: Optional[HookFactory] = None) -> None:
        self.cfg, self.run_dir, self.log = cfg, Path(run_dir), log
        self.world = current()  # rank and world size under torchrun; rank 0 of 1 otherwise
        self.s: Setup = build(cfg, self.world.rank, self.world.world_size)
        # G, D and the loss as trained: DDP, autocast, compile, channels_last (runner.py).
        self.runner = Runner(self.s, self.world, log)
        self.guard = NonFiniteGuard(cfg.train, self.s)
        skipped = self.s.data.extra.get("skipped", 0)
        if skipped:
            log(f"skipped {skipped} unreadable files in the data (data.bad_files=error refuses "
                "them)")
        for note in self.s.data.extra.get("notes", []):  # e.g. where the decoded images went
            log(note)
        self.step = 0
        self.elapsed = 0.0
        self._saved_at = time.monotonic()  # wall clock of the last step checkpoint
        t = cfg.train
        self.budget = Budget(t.steps, t.epochs, t.minutes, self.s.sampler.steps_per_epoch)
        if self.budget.total_steps is None and t.minutes is None:
            raise ConfigError("no training budget; set train.steps, train.epochs or "
                              "--time-budget 5m")
        self._stats_state: Optional[dict[str, Any]] = None
        state = self._restore() if resume else None
        self.stats = stats_collector(self.world)  # means over all ranks under torchrun
        # Built before anything is written: a missing evaluator must not leave a run folder.
        context = HookContext(self.s, self.run_dir, self.stats, log, state)
        self.hooks: RunHooks = (hooks or RunHooks)(context)
        if not resume and self.world.is_main:  # only rank 0 writes the run folder
            fileio.ensure_dir(self.run_dir)
            fileio.write_text(self.run_dir / CONFIG_FILE, cfg.to_json() + "\n")
            fileio.write_json(self.run_dir / MODEL_FILE, self.s.record)
        if self.world.is_main:
            self.stats.attach(JsonlWriter(self.run_dir / STATS_FILE))
        if self._stats_state:  # means pending at the checkpoint continue where they stopped
            self.stats.load_state_dict(self._stats_state, self.s.device)
        self.hooks.open(self.step)

    # ---------------------------------------------------------------- one step
    def train_step(self) -> None:
        """One step of the loss's phase plan: ``n_critic`` D updates, then one G update."""
        s, run = self.s, self.runner
        run.begin_step(self.step)
        s.schedule.apply(s.optimizers, self.step)
        last = s.phases.n_critic - 1

        # --- discriminator: n_critic steps, fakes detached from G
        for i in range(s.phases.n_critic):
            real, y_real = s.sampler.next()
            z, y_fake = s.noise(s.batches.per_rank)
            # The last fake batch keeps G's graph so the G step below can reuse it.
            with torch.set_grad_enabled(i == last):
                fake = run.generate(z, y_fake)
            self._record("Loss/D", run.step(Phase.D, real, y_real, fake.detach(), y_fake))

        # --- generator: through the frozen D (the runner skips D's weight gradients)
        self._record("Loss/G", run.step(Phase.G, fake, y_fake))
        if s.ema is not None:
            s.ema.update(self.step + 1)
        self.step += 1

    def _record(self, name: str, out: LossOutput) -> None:
        """A phase's loss to the non-finite guard (as ``name``), its statistics to the stats."""
        self.guard.watch(name, out.loss)
        self.stats.add_many(out.stats)

    def pretrain(self) -> None:
        """The loss's pre-training phase before step 1, if its plan has one (e.g. ACGAN's class
        head): D-only updates on real batches through the runner like any D update.

        Logged at step 0; it consumes real batches from the sampler like any D step, so a
        resumed run (which never repeats it) continues the same data order.
        """
        steps = self.s.phases.pretrain_steps
        if not steps:
            return
        for _ in range(steps):
            real, y_real = self.s.sampler.next()
            self.stats.add_many(self.runner.step(Phase.PRETRAIN, real, y_real).stats)
        self.stats.flush(0)
        self.log(f"pre-trained D for {steps} steps on real data")

    # ---------------------------------------------------------------- the run
    def fit(self) -> dict[str, Any]:
        """Train until the budget is spent (or a stop signal ends the run); the summary."""
        cfg, s = self.cfg, self.s
        s.generator.train()
        s.discriminator.train()
        progress = Progress(cfg.name, self.budget.total_steps, self.step,
                            s.phases.images_per_step(s.batches.global_batch),
                            show=cfg.log.progress and self.world.is_main)
        start = time.perf_counter() - self.elapsed
        epoch = s.sampler.epoch  # pre-training may end an epoch: step 1 then snapshots

        # --- before step 1 (a resumed run did it before its first checkpoint)
        if self.step == 0:
            self.pretrain()
            self.hooks.snapshot(0)
        self.guard.prepare(self)
        # Clock values a resumed run has already passed are not saved again.
        timed = [m for m in cfg.log.checkpoint_minutes if m * 60 > self.elapsed]
        scored = [m for m in cfg.eval.minutes if m * 60 > self.elapsed]
        with StopSignals(self.world.log(stderr_line), linger=self.world.distributed) as signals:
            try:
                while True:
                    # --- between two steps: budget, stop signals, checkpoints by wall time
                    clock = time.perf_counter() - start  # one reading: checkpoints, budget agree
                    timed = self._timed_checkpoints(clock, timed)
                    scored = self._timed_metrics(clock, scored)
                    done, stop, save_due = self._between_steps(clock, signals)
                    if stop:  # the step before this check is complete: keep it, then end
                        self.elapsed = clock
                        progress.close()
                        self.stop_early(signals, progress.images_per_s)
                    if done:
                        break
                    if save_due:
                        self.save()

                    # --- one step, and NaN/Inf in its losses or weights
                    self.train_step()
                    problem = self.guard.check(self.step)
                    if problem is not None:
                        self.guard.handle(problem, self)  # rolls back to a checkpoint, or raises
                        progress.rewind(self.step)
                        continue
                    progress.advance()
                    self.elapsed = time.perf_counter() - start

                    # --- after it: metrics, the stats line, grids, checkpoints
                    epoch = self._after_step(progress, epoch)
            except KeyboardInterrupt:
                if signals.requested is None:  # not ours: an interrupt raised some other way
                    raise
                # A second signal: the user insists, wherever the run was (even mid-save).
                line = aborted_line(self.run_dir, self.world, f"aborted by a second "
                                    f"{signals.name} at step {self.step}")
                raise Interrupted(line, signals.exit_code) from None
            except StopRun as ended:  # the caller's word on the metrics: keep the step, then end
                progress.close()
                self._wind_down(f"caller: {ended.reason}", progress.images_per_s)
                ended.run_dir, ended.step = self.run_dir, self.step
                raise
        # The time the budget check saw (logging, grids and checkpoints count as training time).
        self.elapsed = time.perf_counter() - start
        progress.close()
        return self.finish(progress.images_per_s)

    def _after_step(self, progress: Progress, epoch: int) -> int:
        """What is due after a step: in-loop metrics, the stats line (with the images/s since
        the last one), a snapshot (also when an epoch ended), a checkpoint. Returns the
        sampler's epoch now (``epoch``: before the step)."""
        log = self.cfg.log
        if self.hooks.metrics_due(self.step):
            self.evaluate()
        if self.step % log.log_every == 0:
            record = self.stats.flush(self.step, self._progress(progress.measure(self.step)))
            progress.show(record)
        new_epoch = self.s.sampler.epoch != epoch
        if self.step % log.sample_every == 0 or new_epoch:
            self.hooks.snapshot(self.step)
        if self.step % log.checkpoint_every == 0:
            self.save()
        return self.s.sampler.epoch

    def _progress(self, images_per_s: float) -> dict[str, float]:
        """The values a stats line reports as they are (speed, epoch, training clock)."""
        return {"Speed/images_per_s": images_per_s, "Progress/epoch": self.s.sampler.epoch,
                "Time/elapsed_s": self.elapsed}

    def _between_steps(self, clock: float, signals: StopSignals) -> tuple[bool, bool, bool]:
        """(budget spent, stop requested, checkpoint due by wall time), agreed over the ranks.

        One collective a step under torchrun: clocks and signals differ between ranks (a
        signal may reach one rank only, or reach them a step apart), and every rank must
        leave, stop or save at the same step.
        """
        every = self.cfg.train.checkpoint_minutes
        due = every is not None and time.monotonic() - self._saved_at >= every * 60
        heard = [signals.requested == sig for sig in SIGNALS]
        done, due, *agreed = self.world.agree([self.budget.done(self.step, clock), due, *heard])
        for sig, flag in zip(SIGNALS, agreed):
            if flag:
                signals.request(sig)  # this rank ends with the same status as the one that heard
        return done, any(agreed), due

    def _timed_checkpoints(self, elapsed_s: float, pending: list[float]) -> list[float]:
        """Save ``checkpoints/min_<m>`` for each of ``pending`` (minutes, increasing) that the
        training clock has reached; returns those still ahead.

        The check runs where the time budget's does, with the same clock reading, so
        ``min_5`` of a longer run is the state a 5-minute run ends with. A step that passes
        several values saves each name (the same state).
        """
        # Every rank saves together (save gathers the stats), as the time budget stops them.
        while pending and self.world.any(elapsed_s >= pending[0] * 60):
            self.elapsed = elapsed_s
            name = f"min_{pending[0]:g}"
            self.save(name=name)
            self.log(f"saved checkpoints/{name} at step {self.step} "
                     f"({elapsed_s / 60:.2f} min of training)")
            pending = pending[1:]
        return pending

    def _timed_metrics(self, elapsed_s: float, pending: list[float]) -> list[float]:
        """In-loop metrics once the training clock passes the first of ``pending``
        (``eval.minutes``, increasing; several passed in one step score once); returns those
        still ahead. Agreed over the ranks, as the named checkpoints are."""
        passed = False
        while pending and self.world.any(elapsed_s >= pending[0] * 60):
            pending, passed = pending[1:], True
        if passed:
            self.elapsed = elapsed_s
            self.evaluate()
        return pending

    def finish(self, images_per_s: float) -> dict[str, Any]:
        """Final grid, GIF, loss plot, last checkpoint and ``summary.json``."""
        if self.stats.names:  # steps since the last log line
            self.stats.flush(self.step, self._progress(images_per_s))
        record = self.stats.latest
        if self.hooks.last_snapshot != self.step:
            self.hooks.snapshot(self.step)
        self.hooks.finish(self.step)
        self.save()
        summary = {
            "steps": self.step,
            "epochs": self.s.sampler.epoch + self.s.sampler.position
            / max(1, self.s.sampler.steps_per_epoch),
            "elapsed_s": round(self.elapsed, 3),
            "images_per_s": round(images_per_s, 2),
            # real images one step consumes over all ranks (D steps per G step included)
            "images_per_step": self.s.phases.images_per_step(self.s.batches.global_batch),
            "device": str(self.s.device),
            "processes": self.world.world_size,  # images_per_s counts all of them
            "final": {k: v for k, v in record.items() if k != "step"},
        }
        if self.world.is_main:
            fileio.write_json(self.run_dir / SUMMARY_FILE, summary)
        self.stats.close()
        self.hooks.close(self.step)
        return summary

    def evaluate(self) -> None:
        """In-loop metrics (reported with the next stats line); keeps the best checkpoint.

        Raises:
            StopRun: the caller's callback ended the run after this step (every rank).
        """
        # Rank 0 evaluates its G (the same weights on every rank); the others wait for it.
        values = self.world.from_main(lambda: self.hooks.metrics(self.step))
        self.stats.add_many(values)
        if self.hooks.is_best(values, self.step):
            self.save(name="best")
        stop = self.world.from_main(lambda: self.hooks.evaluated(self.step, self.elapsed, values))
        if stop is not None:
            raise stop

    # ---------------------------------------------------------------- a stop signal
    def stop_early(self, signals: StopSignals, images_per_s: float) -> NoReturn:
        """End the run after the step a stop signal interrupted, keeping it.

        Checkpoint first (what matters most if the machine goes away mid-way), then the stats
        of the steps since the last line (one line at this step, from those means; the
        checkpoint keeps them pending, so a resumed run redoes the line as an uninterrupted
        run writes it), then the report. Every rank comes here at the same step.

        Raises:
            Interrupted: always; its message names the saved step and the resume command
                (empty on ranks other than 0).
        """
        path = self._wind_down(signals.name, images_per_s)
        if path is not None:
            line = (f"stopped by {signals.name} after step {self.step}: saved checkpoints/"
                    f"{path.stem}; resume with: {resume_command(self.run_dir, self.world)}")
        else:  # rank 0's checkpoint did not read back (moved aside); the others wrote none
            line = aborted_line(self.run_dir, self.world, f"stopped by {signals.name} after "
                                f"step {self.step}, but its checkpoint did not read back")
        raise Interrupted(line if self.world.is_main else "", signals.exit_code)

    def _wind_down(self, stopped_by: str, images_per_s: float) -> Optional[Path]:
        """Keep the step a stop ends the run after: its checkpoint (marked ``stopped_by``),
        the stats since the last line, the report. Returns the checkpoint (rank 0's)."""
        path = self.save(stopped_by=stopped_by)
        if self.stats.names:
            self.stats.flush(self.step, self._progress(images_per_s))
        self.stats.close()
        self.hooks.interrupt(self.step)
        # The ranks leave together: a launcher that sees one rank end stops the others, and
        # rank 0 may still be writing the report.
        self.world.barrier()
        return path

    # ---------------------------------------------------------------- checkpoints
    def save(self, name: Optional[str] = None, stopped_by: Optional[str] = None
             ) -> Optional[Path]:
        """Write a checkpoint (rank 0; every rank calls it: the pending stats are gathered).

        Args:
            name: a label outside the rotation ("best", "min_5"); None: ``step_<step>``.
            stopped_by: the signal (or ``caller: <reason>``) that ends the run after this
                checkpoint (its stats line follows it; see :meth:`_restore`).
        """
        s = self.s
        if name is None:
            self._saved_at = time.monotonic()
        meta = {
            "config": self.cfg.to_dict(),
            "model": s.record,
            "sampler": s.sampler.state_dict(),
            "elapsed_s": self.elapsed,
            **self.hooks.state_dict(),  # grid_steps, monitor
            "guard": self.guard.state_dict(),
            "stats": self.stats.state_dict(),
            "precision": self.runner.precision.state_dict(),
            "loss_state": s.loss.state_dict(),  # D-step counter, ADA's p, LeCam's anchors
            "stopped_by": stopped_by,
        }
        if not self.world.is_main:
            return None
        modules = {"G": s.generator, "D": s.discriminator}
        if s.ema is not None:
            modules["G_ema"] = s.ema.module
        return ckpt.save_checkpoint(
            self.run_dir, self.step, modules, s.optimizers,
            meta, keep=self.cfg.log.keep_checkpoints, label=name)

    def _restore(self) -> dict[str, Any]:
        """Load the newest valid checkpoint; returns its metadata (the hooks' state is in it)."""
        s = self.s
        # Rank 0 holds the folder: it moves checkpoints that fail verification aside.
        path, tensors, meta = ckpt.latest_checkpoint(
            self.run_dir, warn=self.world.log(ckpt.warn_stderr), quarantined=self.world.is_main)
        record = meta.get("model") or {}
        if record.get("arch") != s.record["arch"] or \
                record.get("model_args") != s.record["model_args"]:
            raise CheckpointError(f"checkpoint '{path}' holds a different model than this "
                                  "config; resume with the run's own config.json")
        s.generator.load_state_dict(ckpt.module_state(tensors, "G"))
        s.discriminator.load_state_dict(ckpt.module_state(tensors, "D"))
        if s.ema is not None:
            # A run that enabled the EMA on resume starts its average from the current G.
            ema_state = ckpt.module_state(tensors, "G_ema") or ckpt.module_state(tensors, "G")
            s.ema.module.load_state_dict(ema_state)
        for name, opt in s.optimizers.items():
            ckpt.restore_optimizer(opt, name, tensors, meta)
        s.sampler.load_state_dict(self.world.sampler_state(meta["sampler"], s.sampler, self.log))
        self.runner.precision.load_state_dict(meta.get("precision"))
        s.loss.load_state_dict(meta.get("loss_state") or {})
        ckpt.restore_rng(tensors, meta["rng"])
        self.step, self.elapsed = meta["step"], meta["elapsed_s"]
        if self.world.is_main:
            # A run stopped by a signal wrote one more stats line at this step, from means the
            # checkpoint still holds pending: the resumed run writes that line again, later
            # and whole, as an uninterrupted run does.
            partial = meta.get("stopped_by") and (meta.get("stats") or {}).get("counts")
            JsonlWriter.truncate_after(self.run_dir / STATS_FILE,
                                       self.step - 1 if partial else self.step)
        self.log(f"resumed from {path.name} at step {self.step}")
        self._stats_state = meta.get("stats")
        self.guard.load_state_dict(meta.get("guard"))
        return meta

    def rollback(self) -> None:
        """Back to the newest good checkpoint (the non-finite guard's rollback).

        The in-loop metric history and best checkpoint are kept: those evaluations happened.
        """
        jsonl = next((w for w in self.stats.writers if isinstance(w, JsonlWriter)), None)
        if jsonl is not None:  # rank 0's
            self.stats.detach(jsonl)
            jsonl.close()  # _restore rewrites stats.jsonl; an open writer would append to the old
        self.hooks.rewind(self._restore())
        self.stats.reset()
        if self._stats_state:
            self.stats.load_state_dict(self._stats_state, self.s.device)
        if jsonl is not None:
            self.stats.attach(JsonlWriter(self.run_dir / STATS_FILE))

