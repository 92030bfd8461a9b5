"""A trained run loaded back: its config, its generator and samples from it.

``load_run(RUN)`` reads the newest valid checkpoint (or ``best``, or a given one), rebuilds G from
the checkpoint's model record alone — no config resolution, no data — and returns a :class:`Run`
that generates tensors and grids. ``RUN`` may also be a folder written by ``ganforge export
--format hub`` (:mod:`ganforge.run.hub`): the same record and G's weights, without checkpoints.
``ganforge generate``, ``ganforge evaluate``, the reports and the Python API all load runs this
way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ganforge.config import Config, apply_overrides, from_dict
from ganforge.data.vectors import destandardize, standardize
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.imaging import label_grid, make_grid, to_uint8
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.run.hub import hub_meta, read_hub
from ganforge.run.layout import CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE, check_run_folder
from ganforge.run.sampling import NoiseSampler, render_samples
from ganforge.runtime import pick_device


def load_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> Config:
    """The resolved config saved in a run folder (or a hub export), with optional overrides.

    Raises:
        CheckpointError: ``run_dir`` does not exist, is a file, or holds no readable config.
    """
    check_run_folder(run_dir)
    exported = hub_meta(run_dir)
    if exported is not None:  # a hub export keeps the training config beside G's record
        return apply_overrides(from_dict(exported["config"]), overrides)
    path = Path(run_dir) / CONFIG_FILE
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"'{run_dir}' is not a run folder (no config.json); pass the folder "
                              "that `ganforge train` created") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot read '{path}' ({type(err).__name__}); it is damaged, "
                              "restore it from a checkpoint's JSON 'config' entry") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"'{path}' is not a ganforge config; pass a run folder")
    return apply_overrides(from_dict(values), overrides)


class Run:
    """A trained run loaded for sampling (G in eval mode).

    Attributes:
        path: the run folder (or hub export).
        generator: G with the checkpoint's weights (its EMA copy when the run kept one).
        uses_ema: True when ``generator`` holds the EMA weights.
        n_classes: 0 for unconditional models.
        class_names: names of the classes, when the dataset has them.
        step: the training step of the loaded checkpoint.
    """

    def __init__(self, path: str | Path, checkpoint: Optional[str | Path] = None,
                 device: str = "cpu") -> None:
        self.path = Path(path)
        self.device = pick_device(device)
        ckpt_path, tensors, meta = self._read(checkpoint)
        self.checkpoint, self.step, self.meta = ckpt_path, meta["step"], meta
        record = meta["model"]
        self.record: dict[str, Any] = record
        G, _ = build_models(record["arch"], record["model_args"])
        # The EMA copy of G, when the run kept one, is what samples and metrics should use.
        self.uses_ema = bool(ckpt.module_state(tensors, "G_ema"))
        try:
            G.load_state_dict(ckpt.module_state(tensors, "G_ema" if self.uses_ema else "G"))
        except RuntimeError as err:
            raise CheckpointError(f"checkpoint '{ckpt_path}' does not fit its model "
                                  f"({str(err).splitlines()[0]}); the file is from another "
                                  "model") from None
        self.generator = G.to(self.device).eval()
        self.n_classes: int = record["n_classes"]
        self.class_names: Optional[list[str]] = record.get("class_names")
        self.multi_label: bool = bool(record.get("multi_label"))
        # Vectors and condition columns trained in standardised units (arrays data): samples go
        # back to the data's units, given condition rows into the model's.
        self.scaling: dict[str, Any] = record.get("scaling") or {}
        self.noise = NoiseSampler(record["z_dim"], record["z_dist"], self.n_classes, self.device,
                                  mean=record.get("z_mean", 0.0))

    def _read(self, checkpoint: Optional[str | Path]
              ) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
        """(file, tensors, metadata) of the checkpoint to load, or of a hub export."""
        check_run_folder(self.path)  # a file or a missing path is named as such
        if hub_meta(self.path) is not None:
            if checkpoint is not None and str(checkpoint) != "latest":
                raise CheckpointError(f"'{self.path}' is a hub export holding one generator; "
                                      "drop --checkpoint")
            return read_hub(self.path)
        if checkpoint is None or str(checkpoint) == "latest":
            if self.path.is_dir() and not (self.path / CONFIG_FILE).is_file() \
                    and not (self.path / CHECKPOINT_DIR).is_dir():
                raise CheckpointError(f"no checkpoint in '{self.path}': it is neither a run "
                                      "folder (config.json, checkpoints/) nor a hub export "
                                      "(model.safetensors, config.json); pass one")
            return ckpt.latest_checkpoint(self.path)
        ckpt_path = Path(checkpoint)
        if is_checkpoint_name(str(checkpoint)):  # best, min_5, ...: in RUN/checkpoints
            ckpt_path = self.path / CHECKPOINT_DIR / f"{checkpoint}.json"
            if not ckpt_path.is_file():
                raise CheckpointError(self._missing(str(checkpoint)))
        tensors, meta = ckpt.load_checkpoint(ckpt_path)
        return ckpt_path, tensors, meta

    def _missing(self, name: str) -> str:
        """The one-line error for a checkpoint name the run folder does not hold."""
        if name == "best":
            return (f"run '{self.path}' has no best checkpoint; train with eval.every and "
                    "eval.best set")
        folder = self.path / CHECKPOINT_DIR
        have = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        return (f"run '{self.path}' has no checkpoint '{name}' (it has: "
                f"{', '.join(have) or 'none'}); pass one of those or a checkpoints/*.json path")

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    def scores(self) -> dict[str, float]:
        """The loaded generator's scores by metric, ``{"fid": 8.4, "label-acc": 0.99}``: the
        results in ``metrics.json`` (``eval.final``, ``ganforge evaluate``) that measured this
        checkpoint's step; of a metric scored twice, the last written. Empty when none did.

        Raises:
            CheckpointError: ``metrics.json`` is damaged.
        """
        path = self.path / METRICS_FILE
        try:
            results = json.loads(path.read_text(encoding="utf-8")).get("results", [])
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError) as err:
            raise CheckpointError(f"cannot read '{path}' ({type(err).__name__}); delete it and "
                                  "score the run again with `ganforge evaluate`") from None
        return {r["protocol"]["metric"]: float(r["value"]) for r in results
                if isinstance(r, dict) and (r.get("model") or {}).get("step") == self.step
                and "metric" in (r.get("protocol") or {})}

    def _labels(self, labels: Optional[Sequence[int] | torch.Tensor], n: Optional[int]
                ) -> tuple[int, Optional[torch.Tensor]]:
        """(sample count, labels on the device) for :meth:`generate`: (N,) int64 classes, (N, K)
        condition rows in G's units, or None; what is not this run's kind of label is refused."""
        if self.multi_label:
            return self._condition_rows(labels, n)
        if labels is None:
            if n is None:
                raise GanforgeError("say how many samples: pass n or labels")
            if self.n_classes:  # conditional model without labels: cycle through classes
                return n, torch.arange(n, device=self.device) % self.n_classes
            return n, None
        if not self.n_classes:
            raise GanforgeError(f"run '{self.path}' is unconditional and takes no class labels; "
                                "drop --class/--per-class and use --n")
        y = class_indices(labels, self.n_classes).to(self.device)
        return y.numel(), y

    def _condition_rows(self, labels: Any, n: Optional[int]) -> tuple[int, torch.Tensor]:
        """(N, K) condition rows (0/1 attributes or continuous values, in the data's units) for
        a model conditioned on vectors, in the units G was trained with."""
        k = self.n_classes
        if labels is None:
            raise GanforgeError(f"run '{self.path}' is conditioned on {k}-column condition rows "
                                f"(attributes or continuous values); pass labels as an (N, {k}) "
                                "array, e.g. `ganforge generate RUN --condition rows.npy`")
        y = condition_rows(labels, k, n, names=self.class_names)
        y = standardize(y, self.scaling.get("y")).float()
        return y.shape[0], y.to(self.device)

    def generate(self, n: Optional[int] = None, labels: Optional[Sequence[int]] = None,
                 seed: int = 0) -> torch.Tensor:
        """Samples from G.

        Args:
            n: number of samples (unconditional models, or cycling through classes).
            labels: class of each sample (class-conditional models): (N,) whole numbers in
                0..K-1 (an (N, 1) column too; 0.5 is refused, never rounded to a class), or
                (N, K) condition rows (models conditioned on attributes or continuous vectors,
                in the data's units; one (K,) row is repeated n times).
            seed: seeds the latents, so the same call gives the same samples.

        Raises:
            GanforgeError: labels that are not this run's kind (see :func:`class_indices` and
                :func:`condition_rows`), or labels for an unconditional run.

        Returns:
            (N, *shape) float tensor on the CPU: images in [-1, 1], vectors in the data's
            original units.
        """
        n, y = self._labels(labels, n)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = self.noise.z(n, gen, device="cpu").to(self.device)
        x = render_samples(self.generator, z, y)
        if x.dim() == 2 and self.scaling.get("x") is not None:
            x = destandardize(x, self.scaling["x"]).float()
        return x

    def per_class_labels(self, per_class: int) -> torch.Tensor:
        """(n_classes * per_class,) labels, class-major (row = class in a grid)."""
        if not self.n_classes:
            raise GanforgeError("--per-class needs a conditional model; use --n")
        return torch.arange(self.n_classes).repeat_interleave(per_class)

    def grid(self, labels: Optional[Sequence[int]] = None, per_class: int = 10, n: int = 64,
             seed: int = 0) -> np.ndarray:
        """An (H, W, 3) uint8 grid: one row per class for conditional models."""
        if self.multi_label:
            return make_grid(self.generate(n=n, labels=labels, seed=seed),
                             max(1, int(round(n ** 0.5))))
        if self.n_classes:
            y = torch.as_tensor(labels) if labels is not None else self.per_class_labels(per_class)
            images = self.generate(labels=y, seed=seed)
            return label_grid(images, y, self.class_names, per_class if labels is None else
                              max(1, int(len(y) ** 0.5)))
        images = self.generate(n=n, seed=seed)
        return make_grid(images, max(1, int(round(n ** 0.5))))

    def uint8(self, images: torch.Tensor) -> np.ndarray:
        """Samples as uint8 arrays: (N, H, W) for one channel, (N, C, H, W) otherwise."""
        arr = to_uint8(images)
        arr = arr.numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)
        return arr[:, 0] if arr.ndim == 4 and arr.shape[1] == 1 else arr


def is_checkpoint_name(text: str) -> bool:
    """Whether ``--checkpoint TEXT`` names a checkpoint inside the run folder (``best``,
    ``min_5`` of ``log.checkpoint_minutes``, ``step_000001000``) rather than a file path."""
    return bool(text) and "/" not in text and "\\" not in text and not text.endswith(
        (".json", ".safetensors"))


def load_run(path: str | Path, checkpoint: Optional[str | Path] = None, device: str = "cpu"
             ) -> Run:
    """Load a run folder (newest valid checkpoint unless one is given) or a hub export.

    ``checkpoint``: None or "latest" (the newest valid one), a name in ``RUN/checkpoints``
    ("best", "min_5", "step_000001000") or the path of a checkpoint's JSON file.
    """
    return Run(path, checkpoint, device)


def _as_tensor(values: Any, what: str, fix: str) -> torch.Tensor:
    """Labels given as a tensor, an array or a (nested) sequence, as a tensor; a one-line error
    for what is not numbers (strings, ragged lists)."""
    try:
        arr = (values.detach().cpu() if isinstance(values, torch.Tensor)
               else torch.as_tensor(np.asarray(values)))
        if arr.is_complex():
            raise TypeError(f"dtype {arr.dtype}")
        return arr
    except (TypeError, ValueError):  # strings, objects, ragged lists
        raise GanforgeError(f"{what}: not numbers; {fix}") from None


def class_indices(labels: Any, n_classes: int, what: str = "labels") -> torch.Tensor:
    """The class of each sample for a class-conditional run, refused unless it is one.

    Whole numbers only: a float such as 0.7 is refused, never rounded to a class (float
    condition rows meant for another kind of run would otherwise all become class 0).

    Args:
        labels: (N,) or an (N, 1) column (a table's single column) of class indices, of an
            integer dtype or floats holding whole numbers; a single number is one sample.
        n_classes: the run's classes; indices must lie in 0..n_classes-1.
        what: how an error names the labels (e.g. ``--condition 'rows.npy'``).

    Returns:
        (N,) int64 on the CPU.

    Raises:
        GanforgeError: another shape, no labels, non-whole or non-finite values, booleans, or
            a class out of range; one line with the fix.
    """
    fix = (f"this run is conditioned on classes 0..{n_classes - 1}; pass --class N / "
           "--per-class, or an (N,) integer array")
    y = _as_tensor(labels, what, fix)
    y = y.reshape(1) if y.dim() == 0 else y
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise GanforgeError(f"{what}: shape {tuple(y.shape)}, not (N,) class indices; {fix}")
    if y.numel() == 0:
        raise GanforgeError(f"{what}: no class index; {fix}")
    if y.dtype == torch.bool:
        raise GanforgeError(f"{what}: true/false values, not class indices; {fix}")
    if y.is_floating_point():
        bad = y[~(torch.isfinite(y) & (y == torch.round(y)))]
        if bad.numel():
            raise GanforgeError(f"{what}: {float(bad[0]):g} is not a class index; {fix}")
    y = y.long()
    bad = y[(y < 0) | (y >= n_classes)]
    if bad.numel():
        raise GanforgeError(f"class {int(bad[0])} is out of range; this model has classes "
                            f"0..{n_classes - 1}")
    return y


def condition_rows(labels: Any, k: int, n: Optional[int] = None,
                   names: Optional[Sequence[str]] = None, what: str = "condition rows"
                   ) -> torch.Tensor:
    """Condition rows for a run conditioned on K-column vectors, refused unless they are some.

    Args:
        labels: (N, K) rows, or one (K,) row repeated ``n`` times (once when ``n`` is None),
            in the data's own units (0/1 attributes or continuous values).
        k: the run's condition columns K.
        n: how many times a single (K,) row is repeated.
        names: the K columns' names, for the error message.
        what: how an error names the rows (e.g. ``--condition 'rows.npy'``).

    Returns:
        (N, K) float32 on the CPU, in the data's units.

    Raises:
        GanforgeError: another shape, no rows, or NaN/infinite values; one line with the fix.
    """
    columns = f" ({', '.join(names)})" if names and len(names) == k else ""
    fix = (f"this run is conditioned on {k}-column rows{columns}: pass an (N, {k}) array, or "
           f"one ({k},) row")
    y = _as_tensor(labels, what, fix).to(torch.float32)
    if y.dim() == 1 and y.numel() == k:
        y = y[None].expand(n or 1, k)
    if y.dim() != 2 or y.shape[1] != k:
        raise GanforgeError(f"{what}: shape {tuple(y.shape)}; {fix}")
    if y.shape[0] == 0:
        raise GanforgeError(f"{what}: no row; {fix}")
    if not bool(torch.isfinite(y).all()):
        raise GanforgeError(f"{what}: NaN or infinite values; pass finite numbers")
    return y.contiguous()
