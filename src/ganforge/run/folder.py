"""Reading what a run folder says about its run, without loading any weights.

A run folder (see docs/guides/reports.md) holds ``config.json``, ``model.json``, ``stats.jsonl``,
``summary.json`` (once finished), ``samples/step_*.png``, ``final_grid.png``,
``diagnostics.jsonl``, ``environment.json``, ``metrics.json`` (from ``ganforge evaluate``),
``stopped.json`` (a caller ended the run early) and
``checkpoints/``. Everything but ``config.json`` may be missing (a run that just started, or one
made before a file existed); :class:`RunFolder` reads what is there.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ganforge.errors import GanforgeError
from ganforge.fileio import read_jsonl
from ganforge.run.layout import (CHECKPOINT_DIR, CONFIG_FILE, ENVIRONMENT_FILE, FINAL_GRID_FILE,
                                 METRICS_FILE, MODEL_FILE, SAMPLES_DIR, STATS_FILE, STOPPED_FILE,
                                 SUMMARY_FILE, check_run_folder)

SNAPSHOT_RE = re.compile(r"^step_(\d+)\.png$")
CHECKPOINT_RE = re.compile(r"^step_(\d+)\.json$")


def _read_json(path: Path) -> Optional[Any]:
    """A JSON file's contents, None when it is absent; a corrupt file is a one-line error."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError):
        raise GanforgeError(f"'{path}' is not valid JSON; restore or delete the file") from None


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys: ``{"optim": {"lr_g": 2e-4}}`` -> ``{"optim.lr_g": 2e-4}``."""
    if not isinstance(values, dict):
        return {prefix: values}
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


@dataclass
class RunFolder:
    """What a run folder says about its run.

    Attributes:
        path: the folder.
        config: the resolved config (``config.json``) as a nested dict.
        model: ``model.json`` (architecture, classes, data shape), or None.
        records: the stats lines of ``stats.jsonl`` (NaN for non-finite values).
        summary: ``summary.json`` of a finished run, or None.
        snapshots: ``(step, path)`` of the fixed-noise grids, by step.
        environment: ``environment.json`` written when training started, or None.
        evaluations: ``metrics.json`` results of ``ganforge evaluate`` (name -> result dict).
        best_step: step of ``checkpoints/best.*``, or None.
        stopped: ``stopped.json`` (step, reason) when the caller's ``on_metrics`` ended the
            run early, or None.
    """

    path: Path
    config: dict[str, Any]
    model: Optional[dict[str, Any]] = None
    records: list[dict[str, Any]] = field(default_factory=list)
    summary: Optional[dict[str, Any]] = None
    snapshots: list[tuple[int, Path]] = field(default_factory=list)
    environment: Optional[dict[str, Any]] = None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    best_step: Optional[int] = None
    stopped: Optional[dict[str, Any]] = None

    @classmethod
    def read(cls, path: str | Path) -> "RunFolder":
        """Read what the run folder ``path`` holds.

        Raises:
            GanforgeError: ``path`` does not exist, is a file, has no ``config.json``, or holds
                a damaged JSON file.
        """
        path = check_run_folder(path)
        config = _read_json(path / CONFIG_FILE)
        if not isinstance(config, dict):
            raise GanforgeError(f"'{path}' is not a run folder (no config.json); pass a folder "
                                "made by `ganforge train`")
        run = cls(path, config, model=_read_json(path / MODEL_FILE),
                  summary=_read_json(path / SUMMARY_FILE),
                  environment=_read_json(path / ENVIRONMENT_FILE),
                  stopped=_read_json(path / STOPPED_FILE))
        if (path / STATS_FILE).is_file():
            run.records = read_jsonl(path / STATS_FILE)
        folder = path / SAMPLES_DIR
        if folder.is_dir():
            found = [(SNAPSHOT_RE.match(p.name), p) for p in folder.iterdir()]
            run.snapshots = sorted((int(m.group(1)), p) for m, p in found if m)
        metrics = _read_json(path / METRICS_FILE)
        if isinstance(metrics, dict):
            run.evaluations = {r["name"]: r for r in metrics.get("results", [])
                               if isinstance(r, dict) and "name" in r}
        best = _read_json(path / CHECKPOINT_DIR / "best.json")
        if isinstance(best, dict):
            run.best_step = best.get("step")
        return run

    @property
    def name(self) -> str:
        """The folder name (what the user typed, without the parents)."""
        return self.path.name

    @property
    def flat_config(self) -> dict[str, Any]:
        return flatten(self.config)

    def last(self, key: str) -> Optional[float]:
        """The newest finite value of statistic ``key``, or None."""
        for record in reversed(self.records):
            value = record.get(key)
            if value is not None and value == value:
                return float(value)
        return None

    @functools.cached_property
    def checkpoint_step(self) -> Optional[int]:
        """Step of the run's newest checkpoint (what loads it by default), from the file names
        alone; None without one. Listed once per read of the folder."""
        folder = self.path / CHECKPOINT_DIR
        found = [CHECKPOINT_RE.match(p.name) for p in folder.iterdir()] if folder.is_dir() else []
        steps = [int(m.group(1)) for m in found if m]
        return max(steps) if steps else None

    def is_current(self, result: dict[str, Any]) -> bool:
        """Whether a ``metrics.json`` result measured the run's current generator: the newest
        checkpoint's step (a result without a recorded model is not known to be current)."""
        model = result.get("model")
        return isinstance(model, dict) and model.get("step") == self.checkpoint_step

    @property
    def last_step(self) -> int:
        return int(self.records[-1].get("step", 0)) if self.records else 0

    @property
    def finished(self) -> bool:
        """A summary exists and covers the last stats line (a resumed run is unfinished again)."""
        return self.summary is not None and int(self.summary.get("steps", -1)) >= self.last_step

    @property
    def final_grid(self) -> Optional[Path]:
        """``final_grid.png`` of a finished run, else the newest snapshot."""
        final = self.path / FINAL_GRID_FILE
        if self.finished and final.is_file():
            return final
        return self.snapshots[-1][1] if self.snapshots else (final if final.is_file() else None)

    @property
    def conditional_classes(self) -> int:
        """Number of classes G is conditioned on (0: unconditional or attribute vectors)."""
        if not self.model or self.model.get("multi_label"):
            return 0
        return int(self.model.get("n_classes") or 0)

    @property
    def is_image(self) -> bool:
        return bool(self.model) and len(self.model.get("data_shape", [])) == 3
