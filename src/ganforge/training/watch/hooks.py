"""All that watches a training run, behind the loop's hooks (``training/step/hooks.py``).

:class:`Watchers` puts together, for one run:

* the experiment trackers of ``log.trackers`` (:mod:`.trackers`: TensorBoard, MLflow, W&B),
  attached to the stats collector when the run folder opens (rank 0 only);
* :class:`~.progress.ProgressImages`: the fixed-noise grids, then GIF, final grid, loss plot;
* :class:`~.report.RunWatch`: ``environment.json``, the diagnostics, ``report.html`` rebuilds;
* :class:`~.monitor.MetricMonitor`: in-loop metrics and the best checkpoint they pick;
* :class:`~.monitor.FinalScore`: ``eval.final``, the final G scored into ``metrics.json``;
* the caller's ``on_metrics`` callback (``ganforge.train``): it sees every in-loop evaluation
  and may end the run with :class:`~ganforge.errors.StopRun`, which the run folder then
  records in ``stopped.json`` (removed when the run resumes).

Under ``torchrun`` every rank gets watchers (``main=False`` on ranks other than 0): every rank
must agree on when metrics run and whether they improved, but only rank 0 renders, writes and
computes the metrics (the trainer asks it, and shares its values with the others).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from ganforge import fileio
from ganforge.errors import StopRun
from ganforge.run.layout import STOPPED_FILE
from ganforge.training.step.hooks import HookContext, RunHooks
from ganforge.training.watch.monitor import FinalScore, MetricMonitor
from ganforge.training.watch.progress import ProgressImages
from ganforge.training.watch.report import RunWatch
from ganforge.training.watch.trackers import Tracker, TrackerContext, check_trackers, open_trackers


MetricsCallback = Callable[[int, float, dict[str, float]], None]


class Watchers(RunHooks):
    """Grids, in-loop metrics, diagnostics, the report and the trackers for one run.

    Args:
        ctx: the run's context (built by the trainer before it writes anything).
        main: this process writes the run folder (rank 0); other ranks only keep the
            bookkeeping every rank shares.
        on_metrics: called on rank 0 after each in-loop evaluation as ``on_metrics(step,
            elapsed_s, values)``, ``values`` by metric (``{"fid": 12.3}``); it may raise
            :class:`~ganforge.errors.StopRun` to end the run after that step.

    Raises:
        GanforgeError: in-loop metrics need an evaluator that cannot be loaded, or a tracker
            is unknown or not installed (before any file of the run is written).
    """

    def __init__(self, ctx: HookContext, main: bool = True,
                 on_metrics: Optional[MetricsCallback] = None) -> None:
        super().__init__(ctx)
        self.ctx, self.main, self.on_metrics = ctx, main, on_metrics
        self.stopped: Optional[dict[str, Any]] = None  # the caller's StopRun, for stopped.json
        setup = ctx.setup
        self.monitor: Optional[MetricMonitor] = None
        if setup.cfg.eval.every > 0 or setup.cfg.eval.minutes:
            state = (ctx.state or {}).get("monitor")
            self.monitor = MetricMonitor(setup, log=ctx.log, state=state)
        # eval.final: the final G scored like `ganforge evaluate RUN` (rank 0; checked now).
        self.final = FinalScore(setup, ctx.log) if setup.cfg.eval.final and main else None
        self.images: Optional[ProgressImages] = None
        self.watch: Optional[RunWatch] = None
        check_trackers(setup.cfg.log.trackers)  # a missing extra stops the run before its folder
        self.trackers: list[Tracker] = []

    def open(self, step: int) -> None:
        if not self.main:
            return
        ctx, setup = self.ctx, self.ctx.setup
        if ctx.resumed:  # the run goes on: a caller's earlier stop no longer describes it
            (ctx.run_dir / STOPPED_FILE).unlink(missing_ok=True)
        tracking = TrackerContext(ctx.run_dir, setup.cfg.name, setup.cfg.to_dict(), step,
                                  ctx.resumed, log=ctx.log)
        self.trackers = open_trackers(setup.cfg.log.trackers, tracking,
                                      (ctx.state or {}).get("trackers"))
        for tracker in self.trackers:  # the stats' means, and the grids (write_image)
            ctx.stats.attach(tracker)
        self.watch = RunWatch(setup, ctx.run_dir, ctx.stats, step, ctx.log)
        self.images = ProgressImages(setup, ctx.run_dir, ctx.stats, first=not self.grid_steps,
                                     on_snapshot=self.watch.snapshot)

    def snapshot(self, step: int) -> None:
        if self.images is not None:
            self.images.snapshot(step)
        super().snapshot(step)

    def metrics_due(self, step: int) -> bool:
        return self.monitor is not None and self.monitor.due(step)

    def metrics(self, step: int) -> dict[str, float]:
        assert self.monitor is not None
        return self.monitor.evaluate(step)

    def is_best(self, values: Mapping[str, float], step: int) -> bool:
        return self.monitor is not None and self.monitor.improved(dict(values), step)

    def evaluated(self, step: int, elapsed_s: float, values: Mapping[str, float]
                  ) -> Optional[StopRun]:
        if self.on_metrics is None or not self.main:
            return None
        named = {k.removeprefix("Metrics/"): v for k, v in values.items()}
        try:
            self.on_metrics(step, elapsed_s, named)
        except StopRun as stop:
            self.stopped = {"step": step, "elapsed_s": round(elapsed_s, 3),
                            "reason": stop.reason}
            return stop
        return None

    def finish(self, step: int) -> None:
        if self.images is not None:
            self.images.finalize(self.grid_steps)

    def close(self, step: int) -> None:
        for tracker in self.trackers:  # closed with the stats already; a no-op then
            tracker.close()
        if self.final is not None and self.main:  # before the last report, which shows them
            self.final.score(self.ctx.run_dir)
        if self.watch is not None:
            self.watch.finish(step)

    def interrupt(self, step: int) -> None:
        # Trackers close (their files complete); the report shows the run as far as it went.
        # No final grid, GIF or scores: the run is not finished, and the user is waiting.
        if self.stopped is not None and self.main:  # before the report, which shows it
            fileio.write_json(self.ctx.run_dir / STOPPED_FILE, self.stopped)
        for tracker in self.trackers:
            tracker.close()
        if self.watch is not None:
            self.watch.finish(step)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(),
                "monitor": None if self.monitor is None else self.monitor.state_dict(),
                # A resumed run continues its tracker runs (MLflow / W&B run ids).
                "trackers": {t.name: t.run_id for t in self.trackers if t.run_id}}
