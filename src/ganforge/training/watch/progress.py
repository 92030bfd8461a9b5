"""Watching a run learn: fixed-noise grids during training, then a GIF, loss plot and final grid.

Files written into the run folder:
    samples/step_000000500.png  one grid per snapshot (conditional models: one row per class)
    samples.gif                 the grids over training, led by the last one (what stills show)
    final_grid.png              the last grid
    losses.png                  loss and D-probability curves from stats.jsonl
Every tracker of the run (TensorBoard, MLflow, W&B: any attached stats writer with a
``write_image``) gets the same grids under ``Samples/fixed_noise``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np
import torch

from ganforge import fileio
from ganforge.fileio import read_jsonl
from ganforge.imaging import (label_grid, make_grid, save_animation, save_png, scatter_image,
                              to_plane)
from ganforge.reporting.plots import plot_losses
from ganforge.run.layout import (ANIMATION_FILE, FINAL_GRID_FILE, LOSS_PLOT_FILE, STATS_FILE,
                                 snapshot_path)
from ganforge.run.sampling import render_samples

if TYPE_CHECKING:
    from ganforge.reporting.stats import StatsCollector
    from ganforge.training.step.setup import Setup

GIF_WIDTH = 720  # samples.gif scales wider grids down (the PNGs keep every pixel)


class ProgressImages:
    """Fixed-noise snapshots of G for one run.

    Args:
        setup: the run's components (G, noise, data).
        run_dir: the run folder.
        stats: the collector; its writers that take images (the trackers) get the grids.
        first: True for a run without snapshots yet (trackers get a grid of real images).
        on_snapshot: called after each snapshot with (step, samples (N, ...) on the CPU,
            labels (N,) or None), e.g. the run's diagnostics.
    """

    def __init__(self, setup: "Setup", run_dir: Path, stats: "StatsCollector", first: bool = True,
                 on_snapshot: Optional[Callable[[int, torch.Tensor, Optional[torch.Tensor]],
                                                None]] = None) -> None:
        self.s, self.run_dir = setup, Path(run_dir)
        self.on_snapshot = on_snapshot
        self.samples: Optional[torch.Tensor] = None  # the last rendered samples
        log = setup.cfg.log
        self.z, self.y, self.nrow = setup.noise.fixed(log.grid_columns, log.grid_samples)
        self.trackers = [w for w in stats.writers if callable(getattr(w, "write_image", None))]
        self.reference: Optional[np.ndarray] = None
        if not setup.data.is_image:  # vectors: scatter against a fixed subset of the real points
            self.reference = to_plane(setup.data.x[:2000])
        elif self.trackers and first:  # real images once, to compare by eye
            real = setup.data.x[: self.z.shape[0]].float() / 127.5 - 1
            grid = make_grid(real, self.nrow)
            for tracker in self.trackers:
                tracker.write_image("Samples/real", 0, grid)

    def render(self, step: int) -> np.ndarray:
        """The current grid (H, W, 3) uint8."""
        x = render_samples(self.s.sampling_generator, self.z, self.y)
        self.samples = x
        if self.reference is not None:
            return scatter_image(to_plane(x), self.reference, title=f"step {step}")
        if self.y is not None and self.y.dim() == 1:  # attribute rows carry no single name
            return label_grid(x, self.y.cpu(), self.s.data.class_names, self.nrow)
        return make_grid(x, self.nrow)

    def path(self, step: int) -> Path:
        return snapshot_path(self.run_dir, step)

    def snapshot(self, step: int) -> Path:
        image = self.render(step)
        path = self.path(step)
        save_png(image, path)
        for tracker in self.trackers:
            tracker.write_image("Samples/fixed_noise", step, image)
        if self.on_snapshot is not None:
            labels = None if self.y is None else self.y.cpu()
            self.on_snapshot(step, self.samples, labels)
        return path

    def finalize(self, steps: Sequence[int]) -> None:
        """GIF of the snapshots of ``steps``, the final grid and the loss plot."""
        frames = [self.path(s) for s in steps if self.path(s).is_file()]
        if frames:
            # Led by the last grid, so a still of the GIF shows where training got to.
            save_animation(frames, self.run_dir / ANIMATION_FILE,
                           max_frames=self.s.cfg.log.max_grid_frames, max_width=GIF_WIDTH,
                           lead_with_last=True)
            fileio.write_bytes(self.run_dir / FINAL_GRID_FILE, frames[-1].read_bytes())
        stats_path = self.run_dir / STATS_FILE
        if stats_path.is_file():
            records = read_jsonl(stats_path)
            if records:
                plot_losses(records, self.run_dir / LOSS_PLOT_FILE, title=self.s.cfg.name)
