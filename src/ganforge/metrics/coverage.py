"""Mode coverage: Stacked MNIST (1,000 modes) and the 2-D Gaussian mixtures.

* ``stacked-mnist`` (Metz et al. 2017, VEEGAN, PacGAN): each of the three channels of a sample
  is classified by an MNIST evaluator; the three digits make one of 1,000 modes. Reported: the
  number of modes with at least one sample, and KL(p_samples || uniform over 1,000 modes).
* ``toy-2d`` (VEEGAN's protocol): each sample is assigned to its nearest mode centre and is
  *high quality* when it lies within 3 standard deviations of it. Reported: the number of modes
  with at least one high-quality sample, and the share of high-quality samples.

The pure functions (:func:`mode_histogram_stats`, :func:`toy_mode_stats`) take labels or points;
the registered metrics wrap them with the classifier, the toy set's centres and provenance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganforge.errors import ConfigError
from ganforge.metrics.base import METRICS, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.formulas import TooFewSamples
from ganforge.metrics.reference import extract
from ganforge.settings import positive, setting

STACKED_MODES = 1000
STACKED_EVALUATOR = "mnist-lenet"  # classifies each channel when the context's is not MNIST's

# Per-coordinate std of each mixture component after the toy set's scaling, as
# ``ganforge.data.toy`` draws them (std / scale); the tests check these against drawn data.
TOY_STD = {"8gaussians": 0.02 / 1.414, "25gaussians": 0.05 / 2.828}


# --------------------------------------------------------------------------------------------
# Formulas
# --------------------------------------------------------------------------------------------

def mode_histogram_stats(labels: torch.Tensor, n_modes: int = STACKED_MODES,
                         min_count: int = 1) -> tuple[int, float, torch.Tensor]:
    """Modes covered and KL to uniform of a histogram of mode labels.

    Args:
        labels: (N,) int mode of each sample, in [0, n_modes).
        n_modes: M, the number of modes.
        min_count: samples a mode needs to count as covered (1, as in PacGAN's tables).

    Returns:
        (modes covered, KL(p || U) in nats, counts (M,) int64), where p is the normalised
        histogram and U uniform: KL = sum_i p_i log(M p_i), 0 for a perfectly even spread and
        log(M) when all samples fall into one mode.
    """
    labels = labels.to(torch.int64).flatten()
    if labels.numel() == 0:
        raise TooFewSamples("mode coverage needs at least one sample")
    if labels.min() < 0 or labels.max() >= n_modes:
        raise ValueError(f"mode labels must lie in 0..{n_modes - 1}")
    counts = torch.bincount(labels, minlength=n_modes)
    p = counts.double() / labels.numel()
    nz = p > 0  # 0 log 0 = 0
    kl = float((p[nz] * torch.log(p[nz] * n_modes)).sum())
    return int((counts >= min_count).sum()), kl, counts


def toy_mode_stats(points: torch.Tensor, centres: torch.Tensor, std: float,
                   n_sigma: float = 3.0, min_count: int = 1) -> tuple[int, float, torch.Tensor]:
    """Modes covered and share of high-quality samples of a 2-D mixture.

    Args:
        points: (N, D) samples.
        centres: (M, D) mode centres.
        std: per-coordinate standard deviation of each mode.
        n_sigma: a sample within ``n_sigma * std`` (Euclidean) of its nearest centre is high
            quality.
        min_count: high-quality samples a mode needs to count as covered.

    Returns:
        (modes covered, high-quality share in [0, 1], per-mode high-quality counts (M,) int64).
    """
    if points.shape[0] == 0:
        raise TooFewSamples("mode coverage needs at least one sample")
    dist = torch.cdist(points.to(torch.float64), centres.to(torch.float64))  # (N, M)
    nearest, mode = dist.min(dim=1)
    good = nearest <= n_sigma * std
    counts = torch.bincount(mode[good], minlength=centres.shape[0])
    return int((counts >= min_count).sum()), float(good.double().mean()), counts


def toy_modes(toy: str) -> tuple[torch.Tensor, float]:
    """(M, 2) centres and the per-coordinate std of a toy mixture, as ``ganforge.data.toy``
    scales them."""
    from ganforge.data import toy as toy_data

    makers = {"8gaussians": toy_data.eight_gaussians, "25gaussians": toy_data.twenty_five_gaussians}
    if toy not in makers:
        raise ConfigError(f"toy-2d mode coverage needs a Gaussian mixture (8gaussians or "
                          f"25gaussians), not '{toy}'")
    # Drawing zero points returns just the scaled centres.
    _, _, centres = makers[toy](0, np.random.default_rng(0))
    return torch.from_numpy(centres), TOY_STD[toy]


# --------------------------------------------------------------------------------------------
# Registered metrics
# --------------------------------------------------------------------------------------------

def stacked_digits(ctx: EvalContext) -> tuple[torch.Tensor, Any]:
    """(N,) mode labels 100 d0 + 10 d1 + d2 of 3-channel samples, and the classifier used."""
    images = ctx.samples
    if images.dim() != 4 or images.shape[1] != 3:
        raise ConfigError(f"stacked-mnist needs 3-channel images (one digit per channel), got "
                          f"samples of shape {tuple(images.shape[1:])}")
    spec = ctx.extractor_spec
    # The context's extractor is used when it is a 10-class classifier (an MNIST evaluator);
    # otherwise (e.g. --evaluator inception for FID in the same call) the MNIST default.
    clf = ctx.load(spec) if spec is not None else None
    if clf is None or clf.n_classes != 10:
        clf = ctx.load(STACKED_EVALUATOR)
    digits = []
    for c in range(3):
        _, logits = extract(clf, images[:, c:c + 1])
        digits.append(logits.argmax(dim=1))
    return digits[0] * 100 + digits[1] * 10 + digits[2], clf


@dataclass
class ModeCountSettings:
    min_count: int = setting(1, "samples a mode needs to count as covered", check=positive())


@dataclass
class ToyModeSettings:
    n_sigma: float = setting(3.0, "a sample within this many stds of a mode's centre is in "
                             "it (high quality)", check=positive())


@METRICS.register("stacked-mnist", settings=ModeCountSettings)
def stacked_mnist_metric(ctx: EvalContext, min_count: int = 1) -> MetricResult:
    """Stacked MNIST: modes covered out of 1,000 (the value) and KL to uniform."""
    labels, clf = stacked_digits(ctx)
    modes, kl, counts = mode_histogram_stats(labels, STACKED_MODES, min_count)
    details = {"modes": modes, "kl_to_uniform": kl, "n_modes": STACKED_MODES,
               "max_mode_share": float(counts.max()) / len(labels)}
    if ctx.n_fake < STACKED_MODES:
        details["estimate"] = (f"{ctx.n_fake} samples cannot cover {STACKED_MODES} modes; "
                               "the papers use 26,000")
    protocol = ctx.protocol("stacked-mnist", real=False, extractor=clf, min_count=min_count)
    return MetricResult(ctx.name("modes", f"stacked-mnist_{clf.name}"), float(modes), details,
                        protocol)


@METRICS.register("toy-2d", settings=ToyModeSettings)
def toy_2d_metric(ctx: EvalContext, n_sigma: float = 3.0) -> MetricResult:
    """2-D mixtures: modes with a sample within 3 std (the value) and high-quality share."""
    ref = ctx.reference
    toy = getattr(ref, "toy", None) if ref is not None and ref.name == "toy-2d" else None
    if toy is None:
        raise ConfigError("toy-2d needs the toy set: score a toy-2d run, or pass "
                          "--dataset toy-2d --toy 8gaussians|25gaussians")
    if ctx.samples.dim() != 2 or ctx.samples.shape[1] != 2:
        raise ConfigError(f"toy-2d needs (N, 2) points, got {tuple(ctx.samples.shape)}")
    centres, std = toy_modes(toy)
    modes, share, counts = toy_mode_stats(ctx.samples, centres, std, n_sigma)
    details = {"modes": modes, "n_modes": len(centres), "high_quality": share,
               "per_mode": counts.tolist(), "std": std, "n_sigma": n_sigma}
    protocol = ctx.protocol("toy-2d", real=False, toy=toy, n_sigma=n_sigma, std=std,
                            min_count=1)
    return MetricResult(ctx.name("modes", toy), float(modes), details, protocol)



@METRICS.register("class-entropy")
def class_entropy_metric(ctx: EvalContext) -> MetricResult:
    """Entropy (nats) of the evaluator's predicted-class histogram of the samples (the value).

    For unconditional models: a generator that covers every class evenly reaches ln K (2.303 for
    10 digits); one that dropped or favours classes scores lower. Details hold the histogram and
    the smallest class share (the issue's "every digit >= 5% of samples").
    """
    _, logits = ctx.fake()
    if logits is None:
        raise ConfigError(f"class-entropy needs a classifier; extractor '{ctx.extractor.name}' "
                          "has no class logits (use an evaluator such as mnist-lenet)")
    k = logits.shape[1]
    counts = torch.bincount(logits.argmax(dim=1), minlength=k).double()
    share = counts / counts.sum()
    nonzero = share[share > 0]
    entropy = float(-(nonzero * nonzero.log()).sum())
    details = {"max_entropy": math.log(k), "min_class_share": float(share.min()),
               "histogram": counts.long().tolist()}
    return MetricResult(ctx.name("entropy"), entropy, details,
                        ctx.protocol("class-entropy", real=False))


@METRICS.register("two-digit-acc")
def two_digit_acc_metric(ctx: EvalContext) -> MetricResult:
    """Label accuracy of conditional ``mnist-pairs`` samples (the value), 100 classes.

    Each (1, 28, 56) sample is cut into its left and right 28×28 halves; an MNIST evaluator
    reads each digit, and the sample counts as correct when 10 · left + right equals its label.
    Details give the worst class and the per-digit accuracy of each side.
    """
    labels = ctx.labels
    if labels is None:
        raise ConfigError("two-digit-acc needs conditional samples with labels (a conditional "
                          "mnist-pairs run, or an npz with 'labels')")
    images = ctx.samples
    if images.dim() != 4 or images.shape[1] != 1 or images.shape[3] != 2 * images.shape[2]:
        raise ConfigError(f"two-digit-acc needs (1, H, 2H) two-digit images, got samples of "
                          f"shape {tuple(images.shape[1:])}; train on data.name=mnist-pairs")
    spec = ctx.extractor_spec
    clf = ctx.load(spec) if spec is not None else None
    if clf is None or clf.n_classes != 10:
        clf = ctx.load(STACKED_EVALUATOR)
    side = images.shape[2]
    left = extract(clf, images[..., :side])[1].argmax(dim=1)
    right = extract(clf, images[..., side:])[1].argmax(dim=1)
    labels = labels.to(left.device)
    correct = (left * 10 + right == labels).float()
    per_class = torch.stack([correct[labels == c].mean() if (labels == c).any()
                             else torch.tensor(float("nan")) for c in range(100)])
    details = {"worst_class_acc": float(np.nanmin(per_class.numpy())),
               "left_digit_acc": float((left == labels // 10).float().mean()),
               "right_digit_acc": float((right == labels % 10).float().mean()),
               "per_class": per_class.tolist()}
    protocol = ctx.protocol("two-digit-acc", real=False, extractor=clf)
    return MetricResult(ctx.name("acc", f"two-digit_{clf.name}"), float(correct.mean()),
                        details, protocol)
