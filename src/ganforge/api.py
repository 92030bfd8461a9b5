"""The Python API: train from a config, load a run folder, generate tensors or grids.

    >>> import ganforge
    >>> run = ganforge.train("cgan-digits", overrides=["train.steps=200"])
    >>> images = run.generate(labels=[3, 3, 7])        # (3, 1, 28, 28) in [-1, 1]
    >>> grid = run.grid(per_class=8)                   # (H, W, 3) uint8, one row per class
    >>> run = ganforge.load_run("runs/cgan-digits-20260101-120000")
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ganforge.config import Config, from_dict, resolve
from ganforge.errors import CheckpointError, GanforgeError
from ganforge.models import build_models
from ganforge.reporting import label_grid, make_grid, to_uint8
from ganforge.training import checkpoint as ckpt
from ganforge.training import distributed
from ganforge.training.loop import Trainer
from ganforge.training.noise import NoiseSampler
from ganforge.training.progress import render_samples
from ganforge.training.setup import pick_device


def new_run_dir(cfg: Config, out: Optional[str] = None) -> Path:
    """``out`` if given, else ``<out_dir>/<run_name or name-timestamp>``; never an existing run."""
    if out is None:
        name = cfg.run_name or f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        out = str(Path(cfg.out_dir) / name)
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        raise GanforgeError(f"run folder '{path}' already exists and is not empty; pass --resume "
                            f"{path} to continue it or choose another --out")
    return path


def train(
    config: Config | str | None = None,
    overrides: Sequence[str] = (),
    out: Optional[str] = None,
    resume: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> Optional["Run"]:
    """Train a model and return the loaded run (under torchrun: on rank 0; other ranks get None).

    Args:
        config: a resolved :class:`Config` or a preset name (optional with ``resume``).
        overrides: ``"section.key=value"`` strings applied on top.
        out: run folder (default: under ``cfg.out_dir``).
        resume: a run folder to continue from its newest valid checkpoint; its saved config is
            used, with ``overrides`` (e.g. a longer budget) applied on top.
    """
    if resume is not None:
        # A resolved Config (the CLI's, already carrying --steps etc.) wins over the saved one.
        cfg = _apply(copy.deepcopy(config), overrides) if isinstance(config, Config) \
            else load_config(resume, overrides)
        run_dir: Optional[Path] = Path(resume)
    else:
        if isinstance(config, str):
            cfg = resolve(preset=config, overrides=overrides)
        else:
            cfg = _apply(copy.deepcopy(config), overrides)
        run_dir = None
    # Under torchrun every rank gets here; rank 0 names the folder, holds its lock and writes.
    with distributed.session(cfg.train) as world:
        if run_dir is None:
            run_dir = world.from_main(lambda: new_run_dir(cfg, out))
        with world.lock(run_dir):  # one training process per run folder, released however it ends
            trainer = Trainer(cfg, run_dir, resume=resume is not None, log=world.log(log))
            trainer.fit()
    if not world.is_main:
        return None
    return load_run(run_dir, device=str(trainer.s.device))


def _apply(cfg: Config, overrides: Sequence[str]) -> Config:
    from ganforge.config import apply_override, validate

    for assignment in overrides:
        apply_override(cfg, assignment)
    validate(cfg)
    return cfg


def load_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> Config:
    """The resolved config saved in a run folder, with optional overrides."""
    path = Path(run_dir) / "config.json"
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
    cfg = from_dict(values)
    return _apply(cfg, overrides)


class Run:
    """A trained run loaded for sampling (G in eval mode).

    Attributes:
        path: the run folder.
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
        if checkpoint is None or str(checkpoint) == "latest":
            ckpt_path, tensors, meta = ckpt.latest_checkpoint(self.path)
        else:
            ckpt_path = Path(checkpoint)
            if str(checkpoint) == "best":  # kept by eval.best inside the run folder
                ckpt_path = self.path / ckpt.CKPT_DIR / "best.json"
                if not ckpt_path.is_file():
                    raise CheckpointError(f"run '{self.path}' has no best checkpoint; train "
                                          "with eval.every and eval.best set")
            tensors, meta = ckpt.load_checkpoint(ckpt_path)
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
        self.noise = NoiseSampler(record["z_dim"], record["z_dist"], self.n_classes, self.device,
                                  mean=record.get("z_mean", 0.0))

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]

    def _labels(self, labels: Optional[Sequence[int] | torch.Tensor], n: Optional[int]
                ) -> tuple[int, Optional[torch.Tensor]]:
        if self.multi_label:
            return self._attribute_labels(labels, n)
        if labels is None:
            if n is None:
                raise GanforgeError("say how many samples: pass n or labels")
            if self.n_classes:  # conditional model without labels: cycle through classes
                return n, torch.arange(n, device=self.device) % self.n_classes
            return n, None
        if not self.n_classes:
            raise GanforgeError(f"run '{self.path}' is unconditional and takes no class labels; "
                                "drop --class/--per-class and use --n")
        y = torch.as_tensor(labels, dtype=torch.long).flatten().to(self.device)
        bad = y[(y < 0) | (y >= self.n_classes)]
        if bad.numel():
            raise GanforgeError(f"class {int(bad[0])} is out of range; this model has classes "
                                f"0..{self.n_classes - 1}")
        return y.numel(), y

    def _attribute_labels(self, labels: Any, n: Optional[int]) -> tuple[int, torch.Tensor]:
        """(N, K) 0/1 attribute rows for an attribute-conditioned model."""
        k = self.n_classes
        if labels is None:
            raise GanforgeError(f"run '{self.path}' is conditioned on {k} attributes; pass "
                                f"labels as an (N, {k}) tensor of 0/1 values")
        y = torch.as_tensor(labels, dtype=torch.float32).to(self.device)
        if y.dim() == 1 and y.numel() == k:
            y = y[None].expand(n or 1, k)
        if y.dim() != 2 or y.shape[1] != k:
            raise GanforgeError(f"attribute labels must have shape (N, {k}), got "
                                f"{tuple(y.shape)}; one row of 0/1 values per sample")
        return y.shape[0], y

    def generate(self, n: Optional[int] = None, labels: Optional[Sequence[int]] = None,
                 seed: int = 0) -> torch.Tensor:
        """Samples from G.

        Args:
            n: number of samples (unconditional models, or cycling through classes).
            labels: class of each sample (conditional models), or an (N, K) 0/1 tensor of
                attributes (attribute-conditioned models; one (K,) row is repeated n times).
            seed: seeds the latents, so the same call gives the same samples.

        Returns:
            (N, *shape) float tensor in [-1, 1] on the CPU.
        """
        n, y = self._labels(labels, n)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        z = self.noise.z(n, gen, device="cpu").to(self.device)
        return render_samples(self.generator, z, y)

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


def load_run(path: str | Path, checkpoint: Optional[str | Path] = None, device: str = "cpu"
             ) -> Run:
    """Load a run folder (newest valid checkpoint unless one is given)."""
    return Run(path, checkpoint, device)
