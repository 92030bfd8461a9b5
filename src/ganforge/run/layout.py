"""The layout of a run folder: every file name a run writes or reads, in one place.

A run folder, as ``ganforge train`` leaves it::

    config.json          the resolved config                   (written first; marks a run)
    model.json           what rebuilds G without the config    (arch, constructor args, classes)
    stats.jsonl          one line of statistics per log step   (appended; torn tail tolerated)
    summary.json         steps, time and final stats           (written when training ends)
    stopped.json         step and reason, when the caller's on_metrics ended the run early
    environment.json     versions, device, threads             (written when training starts)
    diagnostics.jsonl    findings of the training diagnostics
    metrics.json         results of ``ganforge evaluate``
    samples/step_000000500.png ...   fixed-noise grids
    final_grid.png  samples.gif  losses.png  report.html
    checkpoints/step_000001000.{safetensors,json}  best.*  nonfinite.*
    tb/                  TensorBoard event files
    .lock                held by the training process

Writers and readers in every room take the names from here, so the folder is described once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

from ganforge.errors import CheckpointError, GanforgeError
from ganforge.fileio import file_in_the_way, not_a_folder

CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"
STATS_FILE = "stats.jsonl"
SUMMARY_FILE = "summary.json"
STOPPED_FILE = "stopped.json"
ENVIRONMENT_FILE = "environment.json"
DIAGNOSTICS_FILE = "diagnostics.jsonl"
METRICS_FILE = "metrics.json"
SAMPLES_DIR = "samples"
FINAL_GRID_FILE = "final_grid.png"
ANIMATION_FILE = "samples.gif"
LOSS_PLOT_FILE = "losses.png"
REPORT_FILE = "report.html"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tb"
NONFINITE_FILE = "nonfinite.json"


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """``RUN/samples/step_000000500.png``: the fixed-noise grid of ``step``."""
    return Path(run_dir) / SAMPLES_DIR / f"step_{step:09d}.png"


def new_run_dir(name: str, out_dir: str, run_name: Optional[str] = None,
                out: Optional[str] = None) -> Path:
    """The folder of a new run: ``out`` if given, else ``<out_dir>/<run_name or name-timestamp>``.

    Raises:
        GanforgeError: the folder exists and is not empty (it would mix two runs), or a file
            stands where it or a folder above it should be.
    """
    if out is None:
        out = str(Path(out_dir) / (run_name or f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"))
    path = Path(out)
    blocker = file_in_the_way(path)
    if blocker is not None:
        raise GanforgeError(not_a_folder(blocker))
    if path.exists() and any(path.iterdir()):
        raise GanforgeError(f"run folder '{path}' already exists and is not empty; pass --resume "
                            f"{path} to continue it or choose another --out")
    return path


def check_run_folder(path: str | Path) -> Path:
    """``path`` as a Path when it is a folder; the one-line error for a run path that is not.

    Every command that reads a run (``report``, ``compare``, ``train --resume``, the Python
    ``load_config``) checks here first, so a missing path or a file given for the folder is
    named as such rather than as a folder without ``config.json``. What the folder holds is for
    the reader to check (a run folder and a hub export hold different files).

    Raises:
        CheckpointError: ``path`` does not exist, or is a file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"'{path}' does not exist; pass the folder `ganforge train` made")
    if not path.is_dir():
        raise CheckpointError(f"'{path}' is a file, not a run folder; pass the folder "
                              "`ganforge train` made")
    return path
