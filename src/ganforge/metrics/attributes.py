"""Attributes as the condition: do samples show the attributes they were asked for?

An attribute-conditioned G (CelebA's 40 binary attributes, ``data.labels=attributes``) is asked
for a row y_i of 0/1 attributes per sample. An attribute evaluator (``ganforge train-evaluator
--dataset celeba``: K sigmoid outputs) reads each sample back; for attribute k

    accuracy_k = share of samples whose predicted attribute k equals the requested y_ik
    TPR_k      = share of samples asked *with* attribute k that show it
    TNR_k      = share of samples asked *without* it that do not
    balanced_k = (TPR_k + TNR_k) / 2

Attributes are imbalanced (7% of the faces wear glasses): a G that ignores its condition still
scores ~0.9 accuracy on Eyeglasses, but 0.5 balanced accuracy, so ``attr-acc``'s value is the
mean balanced accuracy; the plain accuracies are in the details. The ceiling is the evaluator's
own score on *real* faces it never trained on (its held-out part of the reference data, brought
to the samples' size), measured the same way: a generator cannot be read better than the
real images are.

``attr-is`` is the Inception Score's analogue for such an evaluator: with K independent
outputs, p(y|x) is a product of Bernoullis and the KL divergence to the marginal is the sum
of the K per-attribute divergences, so

    attr-is = exp( E_x  sum_k  KL( Bern(p_k(x)) || Bern(mean_x p_k(x)) ) ).

It is not comparable with an Inception Score (another network, another label space).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.base import METRICS, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.evaluator_tasks import attribute_rates, nanmean, random_split
from ganforge.metrics.features import SplitSettings
from ganforge.metrics.formulas import TooFewSamples
from ganforge.metrics.reference import extract

# Real held-out faces scored for the ceiling, per (evaluator, reference, count): the same for
# every in-loop evaluation of a run, so computed once per process.
_CEILINGS: dict[str, dict[str, Any]] = {}


# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------

def attribute_accuracy(logits: torch.Tensor, rows: torch.Tensor) -> dict[str, Any]:
    """How well the attributes read from samples match the attributes they were asked for.

    Args:
        logits: (N, K) outputs of an attribute evaluator (> 0 reads "has the attribute").
        rows: (N, K) the requested attributes in {0, 1}.

    Returns:
        ``accuracy``, ``balanced``, ``tpr``, ``tnr``: (K,) float64 per attribute (NaN where the
        rows give no sample to measure a rate on, e.g. TPR of an attribute nobody asked for);
        ``mean_accuracy`` and ``mean_balanced`` (over the attributes where it is defined).
    """
    if logits.dim() != 2 or logits.shape != rows.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and rows {tuple(rows.shape)} must both "
                         "be (N, K)")
    if logits.shape[0] == 0:
        raise TooFewSamples("attribute accuracy needs at least one sample")
    rates = attribute_rates(logits > 0, rows)
    return {**{k: rates[k] for k in ("accuracy", "balanced", "tpr", "tnr")},
            "mean_accuracy": float(rates["accuracy"].mean()),
            "mean_balanced": nanmean(rates["balanced"])}


def attribute_inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """The Inception Score of independent sigmoid outputs, per split (see the module docstring).

    Args:
        logits: (N, K) attribute logits, N >= splits.
        splits: contiguous parts, each with its own marginal (as the Inception Score does).

    Returns:
        (mean, std) of the per-part scores (population std, like the Inception Score).
    """
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise TooFewSamples(f"an attribute IS with {splits} splits needs at least {splits} "
                            f"samples, got {n}")
    lg = logits.to(torch.float64)
    log_p, log_q = F.logsigmoid(lg), F.logsigmoid(-lg)  # log p and log (1 - p), stably
    p = log_p.exp()
    scores = torch.empty(splits, dtype=torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    for i in range(splits):
        part = slice(i * n // splits, (i + 1) * n // splits)
        mean = p[part].mean(0)
        log_m, log_1m = mean.clamp_min(tiny).log(), (1 - mean).clamp_min(tiny).log()
        kl = p[part] * (log_p[part] - log_m) + (1 - p[part]) * (log_q[part] - log_1m)
        scores[i] = kl.sum(1).mean().exp()
    return float(scores.mean()), float(scores.std(unbiased=False))


# --------------------------------------------------------------------------------------------
# The real faces' own score (the ceiling)
# --------------------------------------------------------------------------------------------

def heldout_attributes(extractor: Any, reference: Any, n: Optional[int] = None, seed: int = 0
                       ) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Real images of ``reference`` that ``extractor`` did not train on, with their attributes.

    The evaluator's JSON says how its held-out part was drawn: the whole test split, or a
    seeded random fraction of the split it trained on. When ``reference`` is that data (same
    dataset, split and limit), those images are returned; otherwise all of ``reference`` is,
    and the note says that it may include training images.

    Args:
        extractor: an attribute evaluator (``extractor.meta`` holds its training report).
        reference: a DataConfig of the real data (its size and channels are kept).
        n: at most this many images (a seeded random subset); None for all.

    Returns:
        x (M, C, H, W) uint8, rows (M, K) float32, and a note saying where they come from.
    """
    from ganforge.data import build_dataset

    meta = getattr(extractor, "meta", None) or {}
    used = meta.get("data") or {}
    heldout = str(used.get("heldout", ""))
    same_data = meta.get("dataset") == reference.name
    test_held = same_data and heldout.startswith("test") and reference.split == "test"
    part_held = same_data and heldout.startswith(f"{reference.split},")
    # The evaluator's own subset (its limit) when it is the same data, so the split matches.
    limit = used.get("limit") if test_held or part_held else reference.limit
    # A dataset that takes data.labels (celeba) is asked for its attribute rows; others (an
    # arrays file of condition rows) give them as they are.
    rows = {"labels": "attributes"} if hasattr(reference, "labels") else {}
    data = build_dataset(replace(reference, limit=limit, **rows))
    if data.y is None or data.y.dim() != 2:
        raise ConfigError(f"reference '{reference.name}' has no attribute rows; attr-acc "
                          "compares with real images of an attribute dataset (e.g. celeba)")
    if test_held:
        index, note = torch.arange(len(data)), f"{reference.split} split (held out)"
    elif part_held and len(data) == meta.get("train_size", -1) + meta.get("heldout_size", -1):
        _, index = random_split(len(data), used["val_fraction"], used["split_seed"])
        note = f"the evaluator's held-out part of the {reference.split} split"
    else:
        index = torch.arange(len(data))
        note = (f"{reference.name} {reference.split} split (may include the evaluator's "
                "training images)")
    if n is not None and n < len(index):
        pick = torch.randperm(len(index), generator=torch.Generator().manual_seed(seed))[:n]
        index = index[pick.sort().values]
    return data.x[index], data.y[index].float(), f"{note}, {len(index)} images"


def real_ceiling(ctx: EvalContext, n: int) -> dict[str, Any]:
    """The evaluator's attribute accuracy on real held-out images of ``ctx.reference``, or its
    held-out report from training when there is no reference."""
    ext = ctx.extractor
    if ctx.reference is None or not hasattr(ctx.reference, "split"):
        report = ext.meta.get("per_attribute") or {}
        return {"source": "the evaluator's held-out report from training",
                "accuracy": [r["accuracy"] for r in report.values()],
                "balanced": [r["balanced_accuracy"] for r in report.values()],
                "mean_accuracy": ext.meta.get("heldout_accuracy"),
                "mean_balanced": ext.meta.get("heldout_balanced_accuracy")}
    ref = ctx.reference
    key = json.dumps([ext.checksum, ref.name, ref.split, ref.image_size, ref.channels,
                      str(ref.root), n, ctx.seed])
    if key not in _CEILINGS:
        x, rows, note = heldout_attributes(ext, ref, n, ctx.seed)
        _, logits = extract(ext, x)
        acc = attribute_accuracy(logits, rows)
        _CEILINGS[key] = {"source": note, "accuracy": _listed(acc["accuracy"]),
                          "balanced": _listed(acc["balanced"]),
                          "mean_accuracy": acc["mean_accuracy"],
                          "mean_balanced": acc["mean_balanced"]}
    return _CEILINGS[key]


def _listed(values: torch.Tensor) -> list[Optional[float]]:
    """(K,) floats as a JSON-able list, NaN as None."""
    return [None if v != v else float(v) for v in values.tolist()]


# --------------------------------------------------------------------------------------------
# The registered metrics
# --------------------------------------------------------------------------------------------

def attribute_evaluator(ctx: EvalContext, metric: str) -> Any:
    """The context's extractor, checked to be an attribute evaluator."""
    ext = ctx.extractor
    if not ext.multi_label:
        raise ConfigError(f"{metric} needs an attribute evaluator (sigmoid outputs); "
                          f"'{ext.name}' is not one: train one with `ganforge train-evaluator "
                          "--dataset celeba` and pass --evaluator celeba-lenet")
    return ext


def need_attribute_rows(ctx: EvalContext, k: int) -> torch.Tensor:
    """The samples' (N, K) requested 0/1 attribute rows; a one-line error without them."""
    rows = ctx.labels
    if rows is None or rows.dim() != 2:
        raise ConfigError("attr-acc needs samples generated for (N, K) attribute rows: an "
                          "attribute-conditioned run (e.g. preset cdcgan-celeba64-attributes), "
                          "or an npz whose 'labels' are such rows")
    if rows.shape[1] != k or rows.shape[0] != ctx.n_fake:
        raise ConfigError(f"attr-acc: {tuple(rows.shape)} attribute rows for {ctx.n_fake} "
                          f"samples and an evaluator of {k} attributes; they must agree")
    if not bool(((rows == 0) | (rows == 1)).all()):
        raise ConfigError("attr-acc needs 0/1 attribute rows; these conditions are continuous "
                          "(use condition-fit for those)")
    return rows.float().cpu()


@METRICS.register("attr-acc")
def attr_acc_metric(ctx: EvalContext) -> MetricResult:
    """Attribute accuracy of attribute-conditioned samples (mean balanced; ceiling: real faces).

    Details: per attribute by name its accuracy, balanced accuracy, TPR, TNR and the real
    held-out images' accuracy and balanced accuracy under the same evaluator; the means; the
    twin evaluator's mean balanced accuracy and the share of (sample, attribute) readings on
    which the two evaluators differ.
    """
    ext = attribute_evaluator(ctx, "attr-acc")
    rows = need_attribute_rows(ctx, ext.n_classes)
    _, logits = ctx.fake()
    acc = attribute_accuracy(logits, rows)
    real = real_ceiling(ctx, ctx.n_real or ctx.n_fake)
    twin_logits = ext.twin_logits(ctx.samples)
    twin = attribute_accuracy(twin_logits, rows) if twin_logits is not None else None
    names = ext.class_names or [f"attr-{k}" for k in range(ext.n_classes)]
    per_attribute = {
        name: {"accuracy": float(acc["accuracy"][k]),
               "balanced_accuracy": _listed(acc["balanced"][k:k + 1])[0],
               "tpr": _listed(acc["tpr"][k:k + 1])[0], "tnr": _listed(acc["tnr"][k:k + 1])[0],
               "asked_positive_rate": float(rows[:, k].mean()),
               "real_accuracy": real["accuracy"][k] if real["accuracy"] else None,
               "real_balanced_accuracy": real["balanced"][k] if real["balanced"] else None}
        for k, name in enumerate(names)}
    balanced = acc["balanced"].numpy()
    worst = int(np.nanargmin(balanced)) if not np.isnan(balanced).all() else None
    details = {
        "mean_accuracy": acc["mean_accuracy"], "balanced": acc["mean_balanced"],
        "real_accuracy": real["mean_accuracy"], "real_balanced": real["mean_balanced"],
        "worst_balanced": None if worst is None else float(balanced[worst]),
        "worst_attribute": None if worst is None else names[worst],
        "twin_balanced": twin["mean_balanced"] if twin else None,
        "disagreement": (float(((logits > 0) != (twin_logits > 0)).float().mean())
                         if twin_logits is not None else None),
        "evaluator_recipe": ext.recipe_version, "real_source": real["source"],
        "per_attribute": per_attribute}
    value = acc["mean_balanced"] if acc["mean_balanced"] is not None else float("nan")
    protocol = ctx.protocol("attr-acc", real=False, value="mean balanced accuracy",
                            ceiling=real["source"])
    return MetricResult(ctx.name("attracc"), value, details, protocol)


@METRICS.register("attr-is", settings=SplitSettings)
def attr_is_metric(ctx: EvalContext, splits: int = 10) -> MetricResult:
    """Inception-Score analogue of an attribute evaluator (not comparable with Inception's IS).

    With a reference, the real images' score under the same evaluator is in ``real_is``.
    """
    ext = attribute_evaluator(ctx, "attr-is")
    _, logits = ctx.fake()
    used = min(splits, ctx.n_fake)
    mean, std = attribute_inception_score(logits, used)
    details: dict[str, Any] = {"std": std, "splits": used}
    if used < splits:
        details["estimate"] = f"{used} splits instead of {splits} (few samples)"
    if ctx.reference is not None:
        real_logits = ctx.real().logits
        if real_logits is not None and len(real_logits) >= used:
            details["real_is"] = attribute_inception_score(real_logits, used)[0]
    protocol = ctx.protocol("attr-is", real=ctx.reference is not None, splits=used,
                            note=f"sigmoid outputs of {ext.name}; not an Inception Score")
    return MetricResult(ctx.name("attris"), mean, details, protocol)
