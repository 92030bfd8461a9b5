"""The feature metrics: FID, KID, IS, precision/recall, density/coverage, label accuracy and
per-class FID, each a registered function of an :class:`~.context.EvalContext`.

Too few samples: FID and per-class FID with no more samples than feature dimensions use a
rank-deficient covariance and are flagged ``details["estimate"]``; KID shrinks its subset size
and IS its split count to what the samples allow (flagged the same way); precision/recall and
density/coverage need more samples than k and fail with a one-line error otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ganforge.errors import ConfigError
from ganforge.metrics import formulas as F
from ganforge.metrics.base import METRICS, MetricResult
from ganforge.metrics.context import EvalContext, need_labels, rank_note
from ganforge.settings import positive, setting


@dataclass
class KIDSettings:
    subsets: int = setting(100, "random subsets the MMD is averaged over (its std is reported)",
                           check=positive())
    subset_size: int = setting(1000, "samples per subset (shrunk to what the samples allow)",
                               check=positive())


@dataclass
class SplitSettings:
    splits: int = setting(10, "splits the score is averaged over (mean and std)",
                          check=positive())


@dataclass
class NeighbourSettings:
    k: int = setting(3, "the k of the k-nearest-neighbour balls", check=positive())


@dataclass
class CoverageSettings:
    k: int = setting(5, "the k of the real k-nearest-neighbour balls", check=positive())


@METRICS.register("fid")
def fid_metric(ctx: EvalContext) -> MetricResult:
    """Fréchet distance of fake and real features (FID), e.g. fid10k_mnist-lenet."""
    f_fake, _ = ctx.fake()
    real = ctx.real()
    value = F.frechet_distance(real.mu, real.sigma, *F.feature_stats(f_fake))
    note = rank_note(min(real.n, ctx.n_fake), f_fake.shape[1])
    details = {"n_real": real.n, "n_fake": ctx.n_fake, **({"estimate": note} if note else {})}
    return MetricResult(ctx.name("fid"), value, details, ctx.protocol("fid"))


@METRICS.register("kid", settings=KIDSettings)
def kid_metric(ctx: EvalContext, subsets: int = 100, subset_size: int = 1000) -> MetricResult:
    """Kernel Inception Distance (unbiased MMD², cubic kernel) over subsets; std in details."""
    f_fake, _ = ctx.fake()
    real = ctx.real()
    size = min(subset_size, real.n, ctx.n_fake)
    mean, std = F.kid(real.features, f_fake, subsets, size, seed=ctx.seed)
    details: dict[str, Any] = {"std": std, "subsets": subsets, "subset_size": size}
    if size < subset_size:
        details["estimate"] = f"subset size reduced from {subset_size} to {size} (few samples)"
    return MetricResult(ctx.name("kid"), mean, details,
                        ctx.protocol("kid", subsets=subsets, subset_size=size, degree=3, coef=1))


@METRICS.register("is", settings=SplitSettings)
def is_metric(ctx: EvalContext, splits: int = 10) -> MetricResult:
    """Inception Score of the extractor's class predictions (any classifier extractor)."""
    _, logits = ctx.fake()
    if logits is None:
        raise ConfigError(f"is needs a classifier; extractor '{ctx.extractor.name}' has no "
                          "class logits")
    used = min(splits, ctx.n_fake)
    mean, std = F.inception_score(logits, used)
    details: dict[str, Any] = {"std": std, "splits": used}
    if used < splits:
        details["estimate"] = f"{used} splits instead of {splits} (few samples)"
    return MetricResult(ctx.name("is"), mean, details, ctx.protocol("is", real=False,
                                                                     splits=used))


@METRICS.register("pr", settings=NeighbourSettings)
def pr_metric(ctx: EvalContext, k: int = 3) -> MetricResult:
    """Improved precision (the value) and recall (Kynkäänniemi et al. 2019), k-NN manifolds."""
    f_fake, _ = ctx.fake()
    precision, recall = F.precision_recall(ctx.real().features, f_fake, k)
    return MetricResult(ctx.name("pr"), precision, {"precision": precision, "recall": recall,
                                                     "k": k}, ctx.protocol("pr", k=k))


@METRICS.register("dc", settings=CoverageSettings)
def dc_metric(ctx: EvalContext, k: int = 5) -> MetricResult:
    """Density (the value) and coverage (Naeem et al. 2020) on the real k-NN balls."""
    f_fake, _ = ctx.fake()
    density, coverage = F.density_coverage(ctx.real().features, f_fake, k)
    return MetricResult(ctx.name("dc"), density, {"density": density, "coverage": coverage,
                                                   "k": k}, ctx.protocol("dc", k=k))


@METRICS.register("label-acc")
def label_acc_metric(ctx: EvalContext) -> MetricResult:
    """Share of conditional samples classified as their label; per class and confusion too.

    With an evaluator that has a twin (recipe v2), the twin reads the same samples and the
    details add its accuracy, the two evaluators' ``disagreement`` (share of samples whose
    predicted classes differ) and ``acc_gap`` = |acc - twin_acc|: the evaluator's own
    uncertainty, to set beside the value. They are None for an evaluator without a twin.
    """
    labels = need_labels(ctx, "label-acc")
    _, logits = ctx.fake()
    ext = ctx.extractor
    k = ext.n_classes
    if logits is None or labels.min() < 0 or labels.max() >= k:
        raise ConfigError(f"label-acc needs an evaluator over the samples' classes; '"
                          f"{ext.name}' has {k}, labels span {int(labels.min())}.."
                          f"{int(labels.max())}")
    acc = F.label_accuracy(logits, labels, k)
    twin_logits = ext.twin_logits(ctx.samples)
    agree = F.evaluator_agreement(logits, twin_logits, labels) if twin_logits is not None else None
    details = {"worst_class_acc": float(np.nanmin(acc.per_class.numpy())),
               "twin_acc": agree.twin_accuracy if agree else None,
               "disagreement": agree.disagreement if agree else None,
               "acc_gap": agree.accuracy_gap if agree else None,
               "evaluator_recipe": ext.recipe_version,
               "per_class": acc.per_class.tolist(), "confusion": acc.confusion.tolist(),
               "class_names": ext.class_names}
    return MetricResult(ctx.name("acc"), acc.overall, details, ctx.protocol("label-acc",
                                                                            real=False))


@METRICS.register("fid-per-class")
def fid_per_class_metric(ctx: EvalContext) -> MetricResult:
    """FID of each class's samples against that class's real images; the value is their mean."""
    labels = need_labels(ctx, "fid-per-class")
    f_fake, _ = ctx.fake()
    real = ctx.real()
    if real.labels is None:
        raise ConfigError(f"fid-per-class needs a labelled reference; '{ctx.reference.name}' "
                          "has no class labels")
    per_class, notes = [], []
    for c in range(int(max(labels.max(), real.labels.max())) + 1):
        fake_c, real_c = f_fake[labels == c], real.features[real.labels == c]
        if min(len(fake_c), len(real_c)) < 2:
            per_class.append(None)  # a class G was not asked for, or absent from the reference
            continue
        per_class.append(F.frechet_distance(*F.feature_stats(real_c), *F.feature_stats(fake_c)))
        note = rank_note(min(len(fake_c), len(real_c)), f_fake.shape[1])
        if note:
            notes.append(f"class {c}: {note}")
    scored = [v for v in per_class if v is not None]
    if not scored:
        raise F.TooFewSamples("fid-per-class: no class has 2 fake and 2 real samples")
    details: dict[str, Any] = {"per_class": per_class}
    if notes:
        details["estimate"] = f"{notes[0]} ({len(notes)} classes flagged)"
    return MetricResult(ctx.name("fidpc"), sum(scored) / len(scored), details,
                        ctx.protocol("fid-per-class"))
