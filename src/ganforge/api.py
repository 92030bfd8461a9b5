"""The Python API, a thin facade over the layers for notebook users.

    >>> import ganforge
    >>> run = ganforge.train("cgan-digits", overrides=["train.steps=200"])
    >>> images = run.generate(labels=[3, 3, 7])        # (3, 1, 28, 28) in [-1, 1]
    >>> grid = run.grid(per_class=8)                   # (H, W, 3) uint8, one row per class
    >>> run = ganforge.load_run("runs/cgan-digits-20260101-120000")
    >>> run.scores()                                   # {"label-acc": 0.99, "fid": 8.4}

:func:`train` resolves a config and hands it to :func:`ganforge.training.launch.launch`;
:func:`load_run` and :class:`Run` are the run layer's (:mod:`ganforge.run.loaded`). A caller
that watches the run as it trains (a hyperparameter search) passes ``on_metrics``: it sees every
in-loop evaluation and may end the run early by raising :class:`~ganforge.errors.StopRun`.

Scoring and data for scripts (the benchmarks use these): :func:`evaluate` scores a run folder,
an npz or an image folder as ``ganforge evaluate`` does, with an evaluator loaded once by
:func:`load_evaluator`; :func:`load_dataset` gives a registered dataset as tensors, and
:func:`save_images` writes images as the npz a reference set can be. A training
loop of one's own gets a preset's networks from :func:`build_networks` and saves its G with
:func:`save_generator`, after which ganforge loads, samples and scores it like its own runs.
Nothing in the package imports this module: it stands on top, beside the command line.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ganforge import fileio
from ganforge.config import Config, DataConfig, apply_overrides, resolve
from ganforge.data import build_dataset
from ganforge.errors import CheckpointError
from ganforge.metrics import METRICS
from ganforge.metrics.base import HIGHER_IS_BETTER
from ganforge.metrics.evaluate import evaluate as evaluate_source
from ganforge.metrics.extractors import load_extractor
from ganforge.models import build_from_config
from ganforge.models.layers import stock_dropout
from ganforge.run.checkpoint import save_checkpoint
from ganforge.run.loaded import Run, load_config, load_run
from ganforge.training.launch import launch
from ganforge.training.step.setup import label_info, model_record

__all__ = ["MetricsCallback", "Networks", "Run", "build_networks", "evaluate", "higher_is_better",
           "load_config", "load_dataset", "load_evaluator", "load_run", "resolve", "save_generator",
           "save_images", "train"]

# on_metrics(step, elapsed seconds of training, {"fid": 12.3, ...}); may raise StopRun.
MetricsCallback = Callable[[int, float, dict[str, float]], None]


def train(
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    out: Optional[str] = None,
    resume: Optional[str] = None,
    log: Callable[[str], None] = print,
    on_metrics: Optional[MetricsCallback] = None,
) -> Optional[Run]:
    """Train a model and return the loaded run (under torchrun: on rank 0; other ranks get None).

    Args:
        config: a resolved :class:`Config` or a preset name (ignored with ``resume`` unless a
            :class:`Config`; None without ``resume`` trains the defaults).
        overrides: ``"section.key=value"`` strings applied on top.
        out: run folder (default: under ``cfg.out_dir``).
        resume: a run folder to continue from its newest valid checkpoint; its saved config is
            used, with ``overrides`` (e.g. a longer budget) applied on top.
        log: one-line console messages.
        on_metrics: called after each in-loop evaluation (``eval.every`` steps,
            ``eval.minutes``) as ``on_metrics(step, elapsed_s, values)``, ``values`` by metric
            name (``{"fid": 12.3}``); under torchrun on rank 0 only. Raising
            :class:`~ganforge.errors.StopRun` in it ends the run after that step.

    Raises:
        StopRun: ``on_metrics`` ended the run; the run folder kept the step (checkpoint,
            stats, report, ``stopped.json``), and the exception names it (``run_dir``,
            ``step``).
    """
    if isinstance(config, Config):
        # A resolved Config (the CLI's, already carrying --steps etc.) wins over a saved one.
        cfg = apply_overrides(copy.deepcopy(config), tuple(overrides))
    elif resume is not None:  # the run's own saved config
        cfg = load_config(resume, overrides)
    else:
        cfg = resolve(preset=config, overrides=tuple(overrides))
    trained = launch(cfg, out=out, resume=resume, log=log, on_metrics=on_metrics)
    if trained is None:  # a rank other than 0: rank 0 holds the run
        return None
    run_dir, device = trained
    return load_run(run_dir, device=str(device))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` (a registered name: ``fid``, ``label-acc``) is
    better; the in-loop best checkpoint and the reports judge it the same way.

    Raises:
        ConfigError: no metric of that name (the closest one and every valid name).
    """
    METRICS.get(metric.split("/")[0])  # a detail ("pr/recall") is judged as its own name
    return metric in HIGHER_IS_BETTER


# ----------------------------------------------------------------------------- scoring

def load_evaluator(spec: str, device: str = "cpu") -> Any:
    """The feature extractor ``spec`` names (``"mnist-lenet"``, ``"inception"``, a path to an
    evaluator file), loaded once so that many :func:`evaluate` calls share it. It carries
    ``name``, ``checksum`` (SHA-256 of its weights) and ``recipe_version``.

    Raises:
        ConfigError: no evaluator of that name or file.
    """
    return load_extractor(spec, device=device)


def evaluate(source: str | Path, metrics: Sequence[str], evaluator: Any = None,
             reference: Any = None, samples: Optional[int] = 10_000, real: Optional[int] = None,
             seed: int = 0, checkpoint: Optional[str | Path] = None,
             settings: Optional[dict[str, dict[str, Any]]] = None,
             device: str = "cpu") -> dict[str, Any]:
    """Score a run folder (samples drawn by its G), an npz of samples or a folder of images,
    as ``ganforge evaluate`` does.

    Args:
        source: the run folder, npz or image folder.
        metrics: registry names (``["fid", "pr", "label-acc"]``).
        evaluator: a spec or an object from :func:`load_evaluator`; None: the reference's own.
        reference: the real data: a dict of data settings (``{"name": "mnist", "split":
            "test", "root": ...}``), an npz or an image folder; None for a run: its own data.
        samples: samples drawn from a run (the first ``samples`` of an npz; None: all).
        real: real images for the statistics (None: as many as samples).
        seed: the seed of the drawn latents and labels (the same seed, the same inputs).
        checkpoint: which checkpoint draws (None: the newest; ``"best"``, ``"min_5"``, a path).
        settings: each metric's own settings by name.

    Returns:
        ``{metric: result}`` in the order asked; each result has ``value``, ``details`` (a dict
        of the metric's other numbers) and ``model`` (for a run: step, EMA, checkpoint).
    """
    results = evaluate_source(source, list(metrics), evaluator, reference, samples, real,
                              seed=seed, device=device, log=lambda _: None,
                              checkpoint=checkpoint, settings=settings)
    return {name: result for name, result in zip(metrics, results)}


def load_dataset(name: str, split: str = "train", root: Optional[str | Path] = None,
                 download: bool = False, **settings: Any) -> Any:
    """A registered dataset as tensors: ``x`` (N, C, H, W) uint8, ``y`` (N,) int64 or None,
    ``n_classes``, ``shape``, ``class_names``.

    Raises:
        ConfigError: an unknown dataset or setting; DataError: files missing under ``root``.
    """
    values = {"name": name, "split": split, "download": download, **settings}
    if root is not None:
        values["root"] = str(root)
    return build_dataset(DataConfig(**values))


def save_images(path: str | Path, images: torch.Tensor,
                labels: Optional[torch.Tensor] = None) -> Path:
    """Write an image set as the npz that :func:`evaluate` (and ``--reference``) reads, at once
    and whole (a temporary file renamed onto ``path``).

    Args:
        images: (N, C, H, W) uint8, C = 1 (stored (N, H, W)) or 3 (stored (N, H, W, 3)).
        labels: (N,) class indices, or None.
    """
    arrays = {"images": images[:, 0].numpy() if images.shape[1] == 1
              else images.permute(0, 2, 3, 1).numpy()}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return Path(path)


# ----------------------------------------------------------------------------- your own loop

@dataclass
class Networks:
    """A preset's G and D for a training loop of one's own (:func:`build_networks`).

    Attributes:
        G: the generator, ``G(z (B, z_dim), y (B,) or None) -> (B, C, H, W)`` in [-1, 1].
        D: the discriminator, as ganforge's losses call it.
        config: the resolved config the nets are built from.
        record: what :func:`save_generator` stores so that ``load_run``, ``evaluate`` and
            ``generate`` rebuild G without the data.
    """

    G: torch.nn.Module
    D: torch.nn.Module
    config: Config
    record: dict[str, Any]


def build_networks(config: Config | str, data: Any, overrides: Sequence[str] = (),
                   plain: bool = False) -> Networks:
    """G and D of a preset (or a resolved config) for ``data`` (:func:`load_dataset`'s).

    Args:
        plain: stock PyTorch layers only, as a loop written outside ganforge would have
            (ganforge's faster CPU dropout becomes ``nn.Dropout`` of the same ``p``).
    """
    cfg = (apply_overrides(copy.deepcopy(config), tuple(overrides)) if isinstance(config, Config)
           else resolve(preset=config, overrides=tuple(overrides)))
    n_labels, _ = label_info(data)
    G, D, args = build_from_config(cfg.model, data.shape,
                                   n_labels if cfg.model.conditional else 0)
    if plain:
        G, D = stock_dropout(G), stock_dropout(D)
    return Networks(G, D, cfg, model_record(cfg, data, args))


def save_generator(folder: str | Path, nets: Networks, step: int, elapsed_s: float,
                   label: Optional[str] = None, meta: Optional[dict[str, Any]] = None) -> Path:
    """Save ``nets.G`` as a checkpoint of the run folder ``folder`` (created with its
    ``config.json``), so that ganforge loads, scores and samples it like a run of its own.

    Args:
        step: the G steps taken so far.
        elapsed_s: seconds of training so far.
        label: save as ``checkpoints/<label>`` (e.g. ``"min_5"``) instead of ``step_<step>``;
            the newest ``step_*`` checkpoint alone is kept, labelled ones always.
        meta: more JSON-able facts kept in the checkpoint's record.

    Returns:
        The checkpoint's JSON path.

    Raises:
        CheckpointError: the checkpoint did not read back.
    """
    folder = Path(folder)
    config_json = folder / "config.json"
    if not config_json.is_file():
        fileio.ensure_dir(folder)
        fileio.write_text(config_json, nets.config.to_json() + "\n")
    record = {"config": nets.config.to_dict(), "model": nets.record, "elapsed_s": elapsed_s,
              **(meta or {})}
    path = save_checkpoint(folder, step, {"G": nets.G}, {}, record, keep=1, label=label)
    if path is None:
        raise CheckpointError(f"the checkpoint of step {step} in '{folder}' did not read back; "
                              "check the disk and save again")
    return path
