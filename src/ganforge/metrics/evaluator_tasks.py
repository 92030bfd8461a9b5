"""What a domain evaluator learns, and how it is scored: one class per image, or a set of
binary attributes per image (CelebA's 40).

:func:`~ganforge.metrics.evaluator.train_evaluator` is the same recipe for both (corruption
mix, a twin on another seed and split, held-out accuracy clean and under the fixed suite); a
:class:`Task` supplies what differs: the loss, how logits become predictions, the held-out
split, the report of held-out accuracy and the corruptions that make sense for the images.

``classes``
    (N,) int64 labels; softmax cross-entropy; a stratified held-out split; overall and
    per-class accuracy; every corruption of :mod:`~ganforge.metrics.corruptions`.
``attributes``
    (N, K) float rows of 0/1 attributes; K sigmoid outputs with a balanced binary
    cross-entropy (each attribute's positives weighted by its negative-to-positive ratio in the
    training part, so a 5%-attribute is not learnt as "never": on 32 px faces, 3 epochs, the
    mean balanced accuracy rose from 0.62 to 0.77 and the mean accuracy fell from 0.87 to
    0.75); a seeded random held-out split (40 imbalanced attributes cannot all be stratified);
    per attribute the accuracy, the majority-class baseline (always answering the training
    part's commoner value), the true-positive and true-negative rates and the balanced accuracy
    (their mean, the honest figure for an attribute only 5% of faces have); the photo corruptions
    (:data:`PHOTO_CORRUPTIONS`), after a random horizontal flip when the dataset says its
    attributes do not change in a mirror (``TensorData.extra["mirror_invariant"]``: faces).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.corruptions import (SUITE, SUITE_SEED, CorruptionMix, apply_suite,
                                          suite_accuracy)
from ganforge.registry import Registry

# The corruptions of a photo generator's artefacts: geometry (misplaced, warped faces),
# softness, levels and pixel noise. Left out: stroke thickness, grain and haze model the strokes
# and background smudges of digit generators, and salt-and-pepper no conv generator makes.
PHOTO_CORRUPTIONS = ("affine", "elastic", "blur", "contrast", "brightness", "speckle",
                     "gaussian-noise")
FLIP_P = 0.5  # mirrored faces keep their 40 attributes: a free augmentation


class FlippedMix:
    """A horizontal flip with probability :data:`FLIP_P`, then a :class:`CorruptionMix`."""

    def __init__(self, mix: CorruptionMix) -> None:
        self.mix = mix

    def describe(self) -> dict[str, object]:
        return {**self.mix.describe(), "hflip": FLIP_P}

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Augment a training batch (N, C, H, W) in [-1, 1]; ``gen`` on ``x.device``."""
        flip = torch.rand(x.shape[0], generator=gen, device=x.device) < FLIP_P
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        return self.mix(x, gen)


class Task:
    """The task-specific parts of training and scoring a domain evaluator."""

    name: str
    suite: dict[str, float]

    def check(self, data: Any, dataset: str) -> None:
        """Raise ConfigError when ``data`` has no labels of this task."""
        raise NotImplementedError

    def split(self, y: torch.Tensor, fraction: float, seed: int
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted, disjoint train and held-out indices, ``fraction`` held out, deterministic."""
        raise NotImplementedError

    def mix(self) -> CorruptionMix | FlippedMix:
        """The training augmentation of the recipe."""
        raise NotImplementedError

    def prepare(self, train_y: torch.Tensor) -> None:
        """Fit what the loss needs from the training part's labels (before training a net)."""

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of (N, K) ``logits`` against the labels ``y`` (a scalar)."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The task's loss and split, for the evaluator's JSON."""
        raise NotImplementedError

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """(N,) classes or (N, K) 0/1 attributes from (N, K) logits."""
        raise NotImplementedError

    def n_right(self, logits: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
        """(right answers, answers) of a batch, for the training log."""
        right = self.predict(logits) == y
        return int(right.sum()), right.numel()

    def heldout(self, pred: torch.Tensor, y: torch.Tensor, train: Any) -> dict[str, Any]:
        """The held-out report of predictions ``pred`` against the true labels ``y``.

        Args:
            train: the training part (a TensorData: its labels, classes and their names).
        """
        raise NotImplementedError

    def suite_report(self, predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                     y: torch.Tensor) -> dict[str, Any]:
        """``{"corrupted_accuracy": {corruption: acc, "mean": ...}, ...}`` on held-out images."""
        raise NotImplementedError


TASKS: Registry[type[Task]] = Registry("evaluator task")


def stratified_split(y: torch.Tensor, fraction: float, seed: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split of (N,) labels ``y``: ``round(fraction * n_k)`` of each
    class k is held out. Returns sorted, disjoint train and held-out index tensors."""
    gen = torch.Generator().manual_seed(seed)
    train, held = [], []
    for k in torch.unique(y).tolist():
        idx = torch.nonzero(y == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def random_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic split of ``n`` items: ``round(fraction * n)`` drawn with ``seed`` are held
    out. Returns sorted, disjoint train and held-out index tensors."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = int(round(fraction * n))
    return order[n_held:].sort().values, order[:n_held].sort().values


# --------------------------------------------------------------------------------------------
# One class per image
# --------------------------------------------------------------------------------------------

@TASKS.register("classes")
class ClassTask(Task):
    """One class per image: softmax cross-entropy, stratified split, every corruption."""

    name = "classes"
    suite = SUITE

    def check(self, data: Any, dataset: str) -> None:
        if data.y is None or data.y.dim() != 1 or data.n_classes < 2:
            raise ConfigError(f"dataset '{dataset}' has no class labels for images; "
                              "train-evaluator needs a labelled image dataset (e.g. mnist)")

    def split(self, y, fraction, seed):
        return stratified_split(y, fraction, seed)

    def mix(self):
        return CorruptionMix()

    def loss(self, logits, y):
        # No label smoothing: it would cap the softmax confidence that IS relies on.
        return F.cross_entropy(logits, y)

    def describe(self):
        return {"task": self.name, "loss": "softmax cross-entropy", "split": "stratified"}

    def predict(self, logits):
        return logits.argmax(1)

    def heldout(self, pred, y, train):
        right = pred == y
        # None (JSON null, not NaN) for a class absent from the held-out part.
        per_class = [right[y == k].float().mean().item() if (y == k).any() else None
                     for k in range(train.n_classes)]
        return {"heldout_accuracy": right.float().mean().item(), "per_class_accuracy": per_class}

    def suite_report(self, predict, x, y):
        return {"corrupted_accuracy": suite_accuracy(lambda xb: predict(xb).argmax(1), x, y)}


# --------------------------------------------------------------------------------------------
# Binary attributes per image
# --------------------------------------------------------------------------------------------

def _none_if_nan(value: float) -> Optional[float]:
    return None if math.isnan(value) else value


def attribute_rates(pred: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-attribute accuracy, true-positive and true-negative rates and balanced accuracy.

    Args:
        pred: (N, K) predicted attributes (0/1, bool or float).
        y: (N, K) true attributes in {0, 1}.

    Returns:
        ``accuracy``, ``tpr``, ``tnr``, ``balanced`` ((TPR + TNR) / 2), each (K,) float64;
        ``positives`` and ``negatives`` (K,) int64 counts of y. A rate without a sample to
        measure it on (an attribute no true row has, or every row has) is NaN, and so is the
        balanced accuracy then.
    """
    if pred.shape != y.shape or y.dim() != 2:
        raise ValueError(f"predictions {tuple(pred.shape)} and attributes {tuple(y.shape)} must "
                         "both be (N, K)")
    p, t = pred.cpu().bool(), y.cpu() > 0.5
    pos, neg = t.sum(0), (~t).sum(0)
    tp, tn = (p & t).sum(0).double(), (~p & ~t).sum(0).double()
    tpr, tnr = tp / pos.double(), tn / neg.double()  # 0 / 0 -> NaN
    return {"accuracy": (p == t).double().mean(0), "tpr": tpr, "tnr": tnr,
            "balanced": (tpr + tnr) / 2, "positives": pos, "negatives": neg}


@TASKS.register("attributes")
class AttributeTask(Task):
    """Binary attributes per image: sigmoid BCE, random split, photo corruptions and flips."""

    name = "attributes"
    suite = {k: v for k, v in SUITE.items() if k in PHOTO_CORRUPTIONS}

    def check(self, data: Any, dataset: str) -> None:
        y = data.y
        if y is None or y.dim() != 2 or not data.is_image:
            raise ConfigError(f"dataset '{dataset}' has no attribute rows for images; an "
                              "attribute evaluator needs (N, K) 0/1 rows (e.g. celeba)")
        if not bool(((y == 0) | (y == 1)).all()):
            raise ConfigError(f"dataset '{dataset}' has continuous condition columns; an "
                              "evaluator learns classes or 0/1 attributes only")

    def split(self, y, fraction, seed):
        return random_split(len(y), fraction, seed)

    def mix(self):
        mix = CorruptionMix(names=list(PHOTO_CORRUPTIONS))
        return FlippedMix(mix) if self.flip else mix

    def __init__(self, flip: bool = False) -> None:
        self.flip = flip
        self.pos_weight: Optional[torch.Tensor] = None

    def prepare(self, train_y):
        self.pos_weight = balanced_pos_weight(train_y)

    def loss(self, logits, y):
        weight = None if self.pos_weight is None else self.pos_weight.to(logits.device)
        return balanced_bce(logits, y, weight)

    def describe(self):
        return {"task": self.name, "split": "random",
                "loss": "sigmoid BCE, positives weighted by negatives/positives per attribute "
                        f"(clamped to [{1 / MAX_POS_WEIGHT:g}, {MAX_POS_WEIGHT:g}])"}

    def predict(self, logits):
        return (logits > 0).to(torch.float32)

    def heldout(self, pred, y, train):
        rates = attribute_rates(pred, y)
        # The majority baseline answers every held-out image with the training part's commoner
        # value; its accuracy is the share of held-out rows that have that value.
        majority = (train.y.cpu().float().mean(0) > 0.5).float()
        baseline = (y.cpu() == majority).double().mean(0)
        names = train.class_names or [f"attr-{k}" for k in range(y.shape[1])]
        per_attribute = {
            name: {"accuracy": float(rates["accuracy"][k]),
                   "balanced_accuracy": _none_if_nan(float(rates["balanced"][k])),
                   "majority_baseline": float(baseline[k]),
                   "tpr": _none_if_nan(float(rates["tpr"][k])),
                   "tnr": _none_if_nan(float(rates["tnr"][k])),
                   "positive_rate": float(rates["positives"][k]) / max(len(y), 1)}
            for k, name in enumerate(names)}
        return {"heldout_accuracy": float(rates["accuracy"].mean()),
                "heldout_balanced_accuracy": nanmean(rates["balanced"]),
                "majority_baseline": float(baseline.mean()),
                "per_class_accuracy": rates["accuracy"].tolist(),
                "per_attribute": per_attribute}

    @torch.no_grad()
    def suite_report(self, predict, x, y, batch: int = 500):
        """Mean attribute accuracy (and mean balanced accuracy) under each photo corruption."""
        acc: dict[str, float] = {}
        balanced: dict[str, Optional[float]] = {}
        for name in self.suite:
            preds = []
            for i in range(0, len(x), batch):
                xb = x[i:i + batch]
                xb = xb.float().div(127.5).sub(1) if xb.dtype == torch.uint8 else xb.float()
                preds.append(self.predict(predict(apply_suite(xb, name, SUITE_SEED + i))).cpu())
            rates = attribute_rates(torch.cat(preds), y)
            acc[name] = float(rates["accuracy"].mean())
            balanced[name] = nanmean(rates["balanced"])
        acc["mean"] = sum(acc.values()) / len(self.suite)
        defined = [v for v in balanced.values() if v is not None]
        balanced["mean"] = sum(defined) / len(defined) if defined else None
        return {"corrupted_accuracy": acc, "corrupted_balanced_accuracy": balanced}


MAX_POS_WEIGHT = 50.0  # an attribute in 1 of 50 faces or rarer: its weight stops growing


def balanced_pos_weight(y: torch.Tensor) -> torch.Tensor:
    """(K,) weight of each attribute's positives: its negatives / positives in ``y`` (N, K),
    clamped to [1 / MAX_POS_WEIGHT, MAX_POS_WEIGHT] (and 1 for an attribute without positives
    or negatives), so positives and negatives weigh alike in the loss."""
    pos = y.float().sum(0)
    neg = y.shape[0] - pos
    weight = (neg / pos.clamp_min(1)).clamp(1 / MAX_POS_WEIGHT, MAX_POS_WEIGHT)
    return torch.where((pos == 0) | (neg == 0), torch.ones_like(weight), weight)


def balanced_bce(logits: torch.Tensor, y: torch.Tensor,
                 pos_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over (N, K) of -[w_k y log s(l) + (1 - y) log(1 - s(l))], s the sigmoid.

    Args:
        logits: (N, K) attribute logits; y: (N, K) targets in {0, 1}.
        pos_weight: (K,) w_k, or None for plain binary cross-entropy (w = 1).
    """
    return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype), pos_weight=pos_weight)


def nanmean(values: torch.Tensor) -> Optional[float]:
    """Mean of the defined (non-NaN) values of a tensor, None when there are none."""
    kept = values[~torch.isnan(values)]
    return float(kept.mean()) if kept.numel() else None


def task_of(data: Any) -> Task:
    """The task of a dataset's labels: attributes for (N, K) rows (flipped in training when
    the data is mirror-invariant), else classes."""
    if data.y is not None and data.y.dim() == 2:
        return TASKS.get("attributes")(flip=bool(data.extra.get("mirror_invariant")))
    return TASKS.get("classes")()


def attribute_table(report: dict[str, Any]) -> str:
    """An attribute evaluator's held-out report as a text table: per attribute its accuracy,
    the majority-class baseline, the balanced accuracy, TPR, TNR and share of positives, then
    the means."""
    def cell(value: Optional[float]) -> str:
        return f"{value:9.4f}" if value is not None else f"{'-':>9s}"

    rows = report["per_attribute"]
    width = max(len(name) for name in rows)
    lines = [f"{'attribute':{width}s}  {'accuracy':>9s} {'majority':>9s} {'balanced':>9s} "
             f"{'TPR':>9s} {'TNR':>9s} {'positive':>9s}"]
    for name, r in rows.items():
        lines.append(f"{name:{width}s}  {cell(r['accuracy'])} {cell(r['majority_baseline'])} "
                     f"{cell(r['balanced_accuracy'])} {cell(r['tpr'])} {cell(r['tnr'])} "
                     f"{cell(r['positive_rate'])}")
    lines.append(f"{'mean':{width}s}  {cell(report['heldout_accuracy'])} "
                 f"{cell(report['majority_baseline'])} "
                 f"{cell(report['heldout_balanced_accuracy'])}")
    return "\n".join(lines)
