"""What a training run does for the people watching it: diagnostics and a current report.

:class:`RunWatch` (one of the run's watchers, see ``hooks.py``):

* writes ``environment.json`` (versions, device, threads) when training starts;
* runs the diagnostics (:mod:`ganforge.reporting.diagnostics`) on every flushed stats line (it
  attaches them to the stats collector) and on every fixed-noise snapshot;
* rebuilds ``report.html`` after a snapshot when ``log.report_every_s`` seconds have passed —
  and never sooner than ten times the last rebuild took, so the report costs at most ~10% of
  the training time however slow it is — and once more when training finishes.

The report samples from the live G, so no checkpoint is read while training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import torch

from ganforge import fileio
from ganforge.reporting.diagnostics import Diagnostics, read_findings, sample_diversity
from ganforge.reporting.generated import SampleSource
from ganforge.reporting.page import environment
from ganforge.reporting.report import build_report
from ganforge.reporting.writers import JsonlWriter
from ganforge.run.layout import DIAGNOSTICS_FILE, ENVIRONMENT_FILE

if TYPE_CHECKING:
    from ganforge.reporting.stats import StatsCollector
    from ganforge.training.step.setup import Setup

REPORT_COST_FACTOR = 10   # a rebuild waits at least this many times its own duration
REFERENCE_PER_CLASS = 64  # real samples per class (or x4 in all) for the diversity yardstick


def reference_diversity(setup: "Setup") -> Optional[float]:
    """:func:`sample_diversity` of real data laid out like the fixed noise (same classes)."""
    data = setup.data
    by_class = setup.noise.n_classes > 0 and data.y is not None and data.y.dim() == 1
    if by_class:
        assert data.y is not None
        index = torch.cat([torch.nonzero(data.y == c).flatten()[:REFERENCE_PER_CLASS]
                           for c in range(setup.noise.n_classes)])
    else:
        index = torch.arange(min(len(data), 4 * REFERENCE_PER_CLASS))
    x = data.x[index.to(data.x.device)]
    x = x.float() / 127.5 - 1 if data.is_image else x.float()  # the scale G's samples are on
    labels = data.y[index.to(data.y.device)] if by_class and data.y is not None else None
    value = sample_diversity(x, labels)
    return value if value == value and value > 0 else None


class RunWatch:
    """Diagnostics, ``environment.json`` and ``report.html`` for one training run.

    Args:
        setup: the run's components (live G, noise, data).
        run_dir: the run folder.
        stats: the run's collector; the diagnostics are attached to it as a writer.
        step: the step training starts from (a resumed run drops findings made after it).
        log: one-line console messages.
    """

    def __init__(self, setup: "Setup", run_dir: Path, stats: "StatsCollector", step: int,
                 log: Callable[[str], None] = print) -> None:
        self.s, self.run_dir, self.log = setup, Path(run_dir), log
        cfg = setup.cfg
        self.every: Optional[float] = cfg.log.report_every_s
        self.evaluators: dict[str, Any] = {}
        self._next_report = time.monotonic() + (self.every or 0.0)
        self.diagnostics: Optional[Diagnostics] = None
        if cfg.diagnostics.enabled:
            path = self.run_dir / DIAGNOSTICS_FILE
            JsonlWriter.truncate_after(path, step)  # findings past a resumed step are redone
            fired = tuple(read_findings(self.run_dir) or ())
            self.diagnostics = Diagnostics(cfg.diagnostics, log, path,
                                           reference_diversity(setup), fired)
            stats.attach(self.diagnostics)
        fileio.write_json(self.run_dir / ENVIRONMENT_FILE,
                          {**environment(str(setup.device)), "started_at_step": step,
                           "started": time.strftime("%Y-%m-%d %H:%M:%S")})

    def snapshot(self, step: int, samples: torch.Tensor, labels: Optional[torch.Tensor]) -> None:
        """After each fixed-noise grid: sample diagnostics, and the report when it is due."""
        if self.diagnostics is not None:
            self.diagnostics.observe_samples(step, samples, labels)
        if self.every and time.monotonic() >= self._next_report:
            self.report(step)

    def report(self, step: int) -> Path:
        """Rebuild ``report.html`` from the folder and the live G."""
        s = self.s
        multi_label = bool(s.record.get("multi_label"))
        # Attribute-conditioned G: four attribute rows of the data, the same at every rebuild.
        attributes = (s.noise.labels(4, torch.Generator().manual_seed(0), device="cpu")
                      if multi_label else None)
        source = SampleSource(s.sampling_generator, s.noise,
                              0 if multi_label else s.noise.n_classes, s.data.class_names,
                              step, "generator being trained", multi_label, attributes)
        start = time.monotonic()
        path = build_report(self.run_dir, source, self.evaluators)
        cost = time.monotonic() - start
        self._next_report = time.monotonic() + max(self.every or 0.0, REPORT_COST_FACTOR * cost)
        return path

    def finish(self, step: int) -> None:
        """After the summary is written: close the diagnostics and write the final report."""
        if self.diagnostics is not None:
            self.diagnostics.close()
        if self.every is not None:
            self.report(step)
