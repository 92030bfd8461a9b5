"""Watching a run learn: fixed-noise grids during training, then a GIF, loss plot and final grid.

Files written into the run folder:
    samples/step_000000500.png  one grid per snapshot (conditional models: one row per class)
    samples.gif                 the grids over training
    final_grid.png              the last grid
    losses.png                  loss and D-probability curves from stats.jsonl
TensorBoard gets the same grids under ``Samples/fixed_noise``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
import torch

from ganforge import fileio
from ganforge.reporting import (
    TensorBoardWriter,
    label_grid,
    make_grid,
    plot_losses,
    read_jsonl,
    save_animation,
    save_png,
    scatter_image,
)

if TYPE_CHECKING:
    from ganforge.reporting import StatsCollector
    from ganforge.training.setup import Setup

SAMPLES_DIR = "samples"


@torch.no_grad()
def render_samples(generator: torch.nn.Module, z: torch.Tensor, y: Optional[torch.Tensor],
                   chunk: int = 512) -> torch.Tensor:
    """G(z, y) in eval mode (BatchNorm uses running statistics), restoring the previous mode.

    Returns:
        (N, *out_shape) float samples on the CPU.
    """
    was_training = generator.training
    generator.eval()
    try:
        parts = [generator(z[i:i + chunk], None if y is None else y[i:i + chunk]).float().cpu()
                 for i in range(0, z.shape[0], chunk)]
    finally:
        generator.train(was_training)
    return torch.cat(parts)


class ProgressImages:
    """Fixed-noise snapshots of G for one run.

    Args:
        setup: the run's components (G, noise, data).
        run_dir: the run folder.
        stats: the collector; its TensorBoard writer, if any, also receives the grids.
        steps: steps of snapshots already on disk (a resumed run continues the sequence).
        on_snapshot: called after each snapshot with (step, samples (N, ...) on the CPU,
            labels (N,) or None), e.g. the run's diagnostics.
    """

    def __init__(self, setup: "Setup", run_dir: Path, stats: "StatsCollector",
                 steps: Optional[list[int]] = None,
                 on_snapshot: Optional[Callable[[int, torch.Tensor, Optional[torch.Tensor]],
                                                None]] = None) -> None:
        self.s, self.run_dir = setup, Path(run_dir)
        self.on_snapshot = on_snapshot
        self.samples: Optional[torch.Tensor] = None  # the last rendered samples
        log = setup.cfg.log
        self.z, self.y, self.nrow = setup.noise.fixed(log.grid_columns, log.grid_samples)
        self.steps: list[int] = list(steps or [])
        self.tb = next((w for w in stats.writers if isinstance(w, TensorBoardWriter)), None)
        self.reference: Optional[np.ndarray] = None
        if not setup.data.is_image:  # toy data: scatter against a fixed subset of the real points
            self.reference = setup.data.x[:2000].cpu().numpy()
        elif self.tb is not None and not self.steps:  # real images once, to compare by eye
            real = setup.data.x[: self.z.shape[0]].float() / 127.5 - 1
            self.tb.write_image("Samples/real", 0, make_grid(real, self.nrow))

    @property
    def last_step(self) -> Optional[int]:
        return self.steps[-1] if self.steps else None

    def render(self, step: int) -> np.ndarray:
        """The current grid (H, W, 3) uint8."""
        x = render_samples(self.s.sampling_generator, self.z, self.y)
        self.samples = x
        if self.reference is not None:
            return scatter_image(x.numpy(), self.reference, title=f"step {step}")
        if self.y is not None and self.y.dim() == 1:  # attribute rows carry no single name
            return label_grid(x, self.y.cpu(), self.s.data.class_names, self.nrow)
        return make_grid(x, self.nrow)

    def path(self, step: int) -> Path:
        return self.run_dir / SAMPLES_DIR / f"step_{step:09d}.png"

    def snapshot(self, step: int) -> Path:
        image = self.render(step)
        path = self.path(step)
        save_png(image, path)
        if step not in self.steps:
            self.steps.append(step)
        if self.tb is not None:
            self.tb.write_image("Samples/fixed_noise", step, image)
        if self.on_snapshot is not None:
            labels = None if self.y is None else self.y.cpu()
            self.on_snapshot(step, self.samples, labels)
        return path

    def finalize(self) -> None:
        """GIF of all snapshots, the final grid and the loss plot."""
        frames = [self.path(s) for s in self.steps if self.path(s).is_file()]
        if frames:
            save_animation(frames, self.run_dir / "samples.gif",
                           max_frames=self.s.cfg.log.max_grid_frames)
            fileio.write_bytes(self.run_dir / "final_grid.png", frames[-1].read_bytes())
        stats_path = self.run_dir / "stats.jsonl"
        if stats_path.is_file():
            records = read_jsonl(stats_path)
            if records:
                plot_losses(records, self.run_dir / "losses.png", title=self.s.cfg.name)

