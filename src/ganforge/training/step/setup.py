"""Everything a training run is built from, resolved from the config in one place.

:func:`build` turns a :class:`~ganforge.config.Config` into a :class:`Setup` — device, data,
sampler, G, D, loss object, optimizers, noise — and refuses combinations that make no sense
before any training starts. It also fixes the two plans the rest of training reads: the batch
(:class:`~ganforge.data.batch_plan.BatchPlan`, per rank and over all ranks) and the loss's
phases (:class:`~ganforge.losses.interface.PhasePlan`). The loop (``loop.py``) then only walks
steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ganforge.config import Config, check_components
from ganforge.data import BatchPlan, BatchSampler, build_dataset
from ganforge.data.base import TensorData
from ganforge.data.vectors import check_condition_use
from ganforge.losses import LOSSES, GANLoss
from ganforge.losses.interface import PhasePlan
from ganforge.models import MODELS, Discriminator, Generator, build_models
from ganforge.run.sampling import NoiseSampler
from ganforge.runtime import pick_device, seed_everything
from ganforge.training.step.ema import EMA
from ganforge.training.step.optim import Schedule, build_optimizer
from ganforge.training.world.ranks import current, rank_device


def model_record(cfg: Config, data: TensorData, model_args: dict[str, Any]) -> dict[str, Any]:
    """What ``generate`` needs to rebuild G without the config or the data (saved as model.json)."""
    n_labels, multi_label = label_info(data)
    return {
        "arch": cfg.model.arch,
        "model_args": model_args,
        "conditional": cfg.model.conditional,
        "n_classes": n_labels if cfg.model.conditional else 0,
        "multi_label": multi_label and cfg.model.conditional,
        "class_names": data.class_names,
        "data_shape": list(data.shape),
        "z_dim": cfg.model.z_dim,
        "z_dist": cfg.model.z_dist,
        "z_mean": cfg.model.z_mean,
        "dataset": cfg.data.name,
        # How vectors and condition rows were rescaled for training (arrays data): samples go
        # back to the data's units and given conditions into the model's (ganforge.run.loaded).
        "scaling": data.extra.get("scaling"),
    }


def label_info(data: TensorData) -> tuple[int, bool]:
    """``(K, multi_label)``: class count, or attribute count for (N, K) attribute labels."""
    if data.y is not None and data.y.dim() == 2:
        return int(data.y.shape[1]), True
    return data.n_classes, False


def check_combination(cfg: Config, data: Optional[TensorData] = None) -> None:
    """Refuse model/loss/data combinations, with the fix in the message.

    Every chosen component (dataset, model family, loss, the aids it switches on, metrics) is
    asked through its ``check(cfg, data)`` (:func:`~ganforge.config.check_components`); then
    the data's own rule on how a model may use condition vectors. Called twice: before the data
    is loaded (``data`` None) and after.
    """
    check_components(cfg, data)
    if data is not None:
        check_condition_use(data, cfg.model)


@dataclass
class Setup:
    """The components of one run (see :func:`build`).

    Attributes:
        batches: samples per batch on this rank and over all ranks; the sampler, the fakes,
            the EMA and the images/s statistic all count with it.
        phases: the loss's schedule (pre-training steps, D steps per G step, lazy intervals).
        schedule: the optimizers' per-step learning-rate and momentum schedule.
        ema: the EMA of G, when enabled.
    """

    cfg: Config
    device: torch.device
    data: TensorData
    sampler: BatchSampler
    generator: Generator
    discriminator: Discriminator
    loss: GANLoss
    optimizers: dict[str, torch.optim.Optimizer]
    schedule: Schedule
    noise: NoiseSampler
    model_args: dict[str, Any]
    record: dict[str, Any]
    batches: BatchPlan
    phases: PhasePlan
    ema: Optional[EMA] = None

    @property
    def sampling_generator(self) -> Generator:
        """The G that samples and metrics use: the EMA copy when enabled, else G itself."""
        return self.generator if self.ema is None else self.ema.module  # type: ignore[return-value]


def build(cfg: Config, rank: int = 0, world_size: int = 1) -> Setup:
    """Resolve every component of a run (seeded, on the chosen device)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    device = rank_device(pick_device(cfg.train.device), current())  # torchrun: cuda:LOCAL_RANK
    batches = BatchPlan(cfg.train.batch_size, world_size, rank)  # the run's one batch size
    check_combination(cfg)
    data = build_dataset(cfg.data)
    check_combination(cfg, data)
    spec = MODELS.get(cfg.model.arch)
    n_labels, multi_label = label_info(data)
    n_classes = n_labels if cfg.model.conditional else 0
    # Only attribute-capable families take the flag, so the others keep their signature.
    extra = {"multi_label": True} if multi_label and n_classes else {}
    model_args = spec.kwargs(cfg.model, data.shape, n_classes, **extra)
    G, D = build_models(cfg.model.arch, model_args)
    G, D = G.to(device), D.to(device)
    loss = LOSSES.get(cfg.loss.name)(cfg.loss)
    lrs = {"G": cfg.optim.lr_g, "D": cfg.optim.lr_d}
    optimizers = {
        "G": build_optimizer(G.parameters(), cfg.optim, lrs["G"]),
        "D": build_optimizer(D.parameters(), cfg.optim, lrs["D"]),
    }
    sampler = BatchSampler.from_plan(data, batches, device, cfg.train.seed)
    # Attribute vectors are drawn from the data's own label rows (their joint distribution).
    pool = data.y if multi_label and n_classes else None
    noise = NoiseSampler(cfg.model.z_dim, cfg.model.z_dist, n_classes, device, label_pool=pool,
                         mean=cfg.model.z_mean)
    t = cfg.train
    ema = None
    if t.ema > 0 or t.ema_half_life is not None:
        ema = EMA(G, t.ema or 0.999, t.ema_start, half_life=t.ema_half_life, rampup=t.ema_rampup,
                  images_per_step=batches.global_batch)
    return Setup(cfg, device, data, sampler, G, D, loss, optimizers, Schedule(cfg.optim, lrs),
                 noise, model_args, model_record(cfg, data, model_args), batches,
                 loss.phase_plan(), ema)
