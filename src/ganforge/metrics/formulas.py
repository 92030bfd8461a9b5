"""The small formulas of the metrics: pure functions on feature and logit tensors.

Nothing here knows about extractors, datasets or files: each function takes (N, F) features or
(N, K) logits and returns numbers. Sums that lose precision in float32 (covariances, matrix
square roots, MMD kernels) run in float64.

torchmetrics implements FID/KID/IS as stateful ``Metric`` classes around its own Inception
network, and its pure formulas are private (``_compute_fid``); we need the formulas on cached
features from any extractor, so they are written here and the tests check them against
torchmetrics on the same features.

Too few samples for a formula raise :class:`TooFewSamples`, a one-line user error; the metric
layer (``ganforge.metrics.features``) decides whether to shrink a setting and flag the number
as an estimate instead.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ganforge.errors import GanforgeError

# Rows of the query set per cdist call: bounds the (block, N) distance matrix to ~40 MB at
# N = 10k in float32, whatever the size of the sets.
DISTANCE_BLOCK = 1024


class TooFewSamples(GanforgeError):
    """A metric was asked for with fewer samples than its formula needs."""


# --------------------------------------------------------------------------------------------
# FID
# --------------------------------------------------------------------------------------------

def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased covariance of a feature set.

    Args:
        features: (N, F) features, N >= 2.

    Returns:
        mu (F,) float64 and sigma (F, F) float64 (divided by N - 1, as torchmetrics and
        pytorch-fid do).
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (N, F), got {tuple(features.shape)}")
    n = features.shape[0]
    if n < 2:
        raise TooFewSamples(f"a covariance needs at least 2 samples, got {n}; use a larger --n")
    x = features.detach().to(torch.float64)
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (n - 1)
    return mu, sigma


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite (F, F) matrix via its eigenbasis."""
    eigvals, eigvecs = torch.linalg.eigh(matrix)
    # Rounding leaves tiny negative eigenvalues on singular covariances; they are zero.
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor,
                     mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (FID on features).

    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``. The trace term is
    computed as the sum of square roots of the eigenvalues of the symmetric PSD matrix
    ``sigma1^(1/2) sigma2 sigma1^(1/2)``, which is similar to ``sigma1 sigma2``. Unlike
    ``scipy.linalg.sqrtm`` of the non-symmetric product, this never yields complex parts, needs
    no diagonal offset for singular covariances, and costs two symmetric eigendecompositions.

    Args:
        mu1, mu2: (F,) means.
        sigma1, sigma2: (F, F) covariances.

    Returns:
        The distance as a Python float (>= 0; rounding below zero is clamped).
    """
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    s1, s2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(),) * 2:
        raise ValueError(f"shape mismatch: mu {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)} / {tuple(s2.shape)}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2  # symmetrise away accumulated rounding
    root1 = _sqrt_psd(s1)
    inner = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((inner + inner.T) / 2).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    value = diff.dot(diff) + s1.trace() + s2.trace() - 2 * tr_covmean
    return max(float(value), 0.0)


# --------------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------------

def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3,
                    gamma: float | None = None, coef: float = 1.0) -> float:
    """Unbiased MMD² of two equal-size sets with the kernel ``(gamma x.y + coef)^degree``.

    Args:
        x, y: (m, F) features, m >= 2.
        gamma: kernel scale; None means 1 / F (the KID paper's choice).
    """
    m = x.shape[0]
    x, y = x.to(torch.float64), y.to(torch.float64)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k_xx = (x @ x.T * gamma + coef) ** degree
    k_yy = (y @ y.T * gamma + coef) ** degree
    k_xy = (x @ y.T * gamma + coef) ** degree
    # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum())
    return float(within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid(f_real: torch.Tensor, f_fake: torch.Tensor, subsets: int = 100,
        subset_size: int = 1000, degree: int = 3, gamma: float | None = None,
        coef: float = 1.0, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al., 2018): mean and std of MMD² over subsets.

    Each subset draws ``subset_size`` real and fake samples without replacement (independently
    per subset, like the KID paper's code and torchmetrics), from a generator seeded by
    ``seed`` so the number is reproducible.

    Args:
        f_real: (N_r, F) real features.
        f_fake: (N_f, F) fake features.
        subsets: number of subsets.
        subset_size: m, samples per subset; needs m <= min(N_r, N_f) and m >= 2.

    Returns:
        (mean, std) over subsets; std is the population std (ddof 0), as in torchmetrics.
    """
    n = min(f_real.shape[0], f_fake.shape[0])
    if subset_size > n or subset_size < 2:
        raise TooFewSamples(f"KID subset size {subset_size} needs 2..{n} samples per set "
                            f"(have {f_real.shape[0]} real, {f_fake.shape[0]} fake)")
    gen = torch.Generator().manual_seed(seed)
    scores = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        real = f_real[torch.randperm(f_real.shape[0], generator=gen)[:subset_size]]
        fake = f_fake[torch.randperm(f_fake.shape[0], generator=gen)[:subset_size]]
        scores[i] = polynomial_mmd2(real, fake, degree, gamma, coef)
    return float(scores.mean()), float(scores.std(unbiased=False))


# --------------------------------------------------------------------------------------------
# Inception Score
# --------------------------------------------------------------------------------------------

def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """Inception Score (Salimans et al., 2016): exp E_x KL(p(y|x) || p(y)), per split.

    The samples are cut into ``splits`` contiguous parts (as the original code does); p(y) is
    the mean prediction of each part.

    Args:
        logits: (N, K) class logits, N >= splits.
        splits: number of parts.

    Returns:
        (mean, std) of the per-part scores; std is the population std (ddof 0), as in the
        original code and torch-fidelity.
    """
    n = logits.shape[0]
    if splits < 1 or n < splits:
        raise TooFewSamples(f"Inception Score with {splits} splits needs at least {splits} "
                            f"samples, got {n}")
    log_p = torch.log_softmax(logits.to(torch.float64), dim=1)
    p = log_p.exp()
    scores = torch.empty(splits, dtype=torch.float64)
    for i in range(splits):
        part, log_part = p[i * n // splits:(i + 1) * n // splits], \
            log_p[i * n // splits:(i + 1) * n // splits]
        # Clamped so a class no sample predicts (p = 0 throughout) adds 0, not 0 * inf.
        log_py = part.mean(dim=0).clamp_min(torch.finfo(torch.float64).tiny).log()
        kl = (part * (log_part - log_py)).sum(dim=1).mean()
        scores[i] = kl.exp()
    return float(scores.mean()), float(scores.std(unbiased=False))


# --------------------------------------------------------------------------------------------
# k-NN manifolds: precision/recall and density/coverage
# --------------------------------------------------------------------------------------------

def knn_radii(x: torch.Tensor, k: int, block: int = DISTANCE_BLOCK) -> torch.Tensor:
    """Distance from each point to its k-th nearest *other* point of the same set.

    Args:
        x: (N, F) points, N > k.

    Returns:
        (N,) radii.
    """
    n = x.shape[0]
    if k < 1 or n <= k:
        raise TooFewSamples(f"k-NN radii with k={k} need more than {k} samples, got {n}")
    # k + 1: the smallest distance of each row is the point to itself.
    return torch.cat([torch.cdist(x[i:i + block], x).kthvalue(k + 1, dim=1).values
                      for i in range(0, n, block)])


def _in_balls(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
              block: int = DISTANCE_BLOCK) -> torch.Tensor:
    """(Q,) int64: for each query, how many balls B(centre_j, radius_j) contain it."""
    return torch.cat([(torch.cdist(queries[i:i + block], centres) <= radii).sum(dim=1)
                      for i in range(0, queries.shape[0], block)])


def _nearest(queries: torch.Tensor, points: torch.Tensor,
             block: int = DISTANCE_BLOCK) -> torch.Tensor:
    """(Q,) distance from each query to its nearest point."""
    return torch.cat([torch.cdist(queries[i:i + block], points).min(dim=1).values
                      for i in range(0, queries.shape[0], block)])


def _check_pair(f_real: torch.Tensor, f_fake: torch.Tensor) -> None:
    if f_real.dim() != 2 or f_fake.dim() != 2 or f_real.shape[1] != f_fake.shape[1]:
        raise ValueError(f"features must be (N, F) with equal F, got {tuple(f_real.shape)} "
                         f"and {tuple(f_fake.shape)}")


def precision_recall(f_real: torch.Tensor, f_fake: torch.Tensor, k: int = 3,
                     block: int = DISTANCE_BLOCK) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Each set's manifold is the union of balls around its points, each ball reaching the
    point's k-th nearest neighbour. Precision: share of fake samples inside the real manifold;
    recall: share of real samples inside the fake manifold. Distances are computed ``block``
    rows at a time, so memory stays O(block * N).

    Args:
        f_real: (N_r, F) real features, N_r > k.
        f_fake: (N_f, F) fake features, N_f > k.
        k: neighbourhood size (the paper uses 3).

    Returns:
        (precision, recall), both in [0, 1].
    """
    _check_pair(f_real, f_fake)
    r_real, r_fake = knn_radii(f_real, k, block), knn_radii(f_fake, k, block)
    precision = (_in_balls(f_fake, f_real, r_real, block) > 0).double().mean()
    recall = (_in_balls(f_real, f_fake, r_fake, block) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(f_real: torch.Tensor, f_fake: torch.Tensor, k: int = 5,
                     block: int = DISTANCE_BLOCK) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020), on the real set's k-NN balls only.

    Density: mean over fake samples of the number of real balls containing it, divided by k
    (about 1 when fakes follow the reals; (k + 1) / k for a set against itself, since every
    point lies in its own ball and in those of its k neighbours). Coverage: share of real
    samples whose ball contains at least one fake sample.

    Args:
        f_real: (N_r, F) real features, N_r > k.
        f_fake: (N_f, F) fake features.
        k: neighbourhood size (the paper uses 5).

    Returns:
        (density, coverage); density >= 0, coverage in [0, 1].
    """
    _check_pair(f_real, f_fake)
    if f_fake.shape[0] < 1:
        raise TooFewSamples("density/coverage need at least one fake sample")
    r_real = knn_radii(f_real, k, block)
    density = _in_balls(f_fake, f_real, r_real, block).double().sum() / (k * f_fake.shape[0])
    coverage = (_nearest(f_real, f_fake, block) <= r_real).double().mean()
    return float(density), float(coverage)


# --------------------------------------------------------------------------------------------
# Label accuracy
# --------------------------------------------------------------------------------------------

class LabelAccuracy(NamedTuple):
    """Classification of conditional samples by an evaluator.

    Attributes:
        overall: share of samples whose predicted class is the intended one.
        per_class: (K,) float64 accuracy per intended class; NaN for classes without samples.
        confusion: (K, K) int64 counts, rows = intended class, columns = predicted class.
    """

    overall: float
    per_class: torch.Tensor
    confusion: torch.Tensor


def label_accuracy(pred_logits: torch.Tensor, labels: torch.Tensor,
                   n_classes: int) -> LabelAccuracy:
    """Accuracy of an evaluator's predictions against the labels the samples were made for.

    Args:
        pred_logits: (N, K) logits (or probabilities) of the evaluator, K == n_classes.
        labels: (N,) int intended classes in [0, n_classes).
        n_classes: K.
    """
    if pred_logits.dim() != 2 or pred_logits.shape[1] != n_classes:
        raise ValueError(f"logits must be (N, {n_classes}), got {tuple(pred_logits.shape)}")
    labels = labels.to(torch.int64).flatten().cpu()
    if labels.numel() != pred_logits.shape[0] or labels.numel() == 0:
        raise TooFewSamples(f"label accuracy needs one label per sample (got {labels.numel()} "
                            f"labels for {pred_logits.shape[0]} samples)")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    pred = pred_logits.argmax(dim=1).cpu()
    confusion = torch.bincount(labels * n_classes + pred, minlength=n_classes ** 2)
    confusion = confusion.reshape(n_classes, n_classes)
    support = confusion.sum(dim=1).double()
    per_class = confusion.diagonal().double() / support  # 0 / 0 -> NaN for absent classes
    overall = float(confusion.diagonal().sum()) / labels.numel()
    return LabelAccuracy(overall, per_class, confusion)


class EvaluatorAgreement(NamedTuple):
    """How much a label accuracy depends on the evaluator: two evaluators on the same samples.

    Attributes:
        accuracy: share of samples the first (primary) evaluator reads as their label.
        twin_accuracy: the same for the second evaluator (the twin).
        disagreement: share of samples on which the two predict different classes; it bounds
            ``accuracy_gap`` from above (every sample one reads right and the other wrong is
            a disagreement) and also counts samples both read wrong in different ways.
        accuracy_gap: ``|accuracy - twin_accuracy|``.
    """

    accuracy: float
    twin_accuracy: float
    disagreement: float
    accuracy_gap: float


def evaluator_agreement(logits: torch.Tensor, twin_logits: torch.Tensor,
                        labels: torch.Tensor) -> EvaluatorAgreement:
    """Accuracy of two evaluators on the same conditional samples and their disagreement.

    Args:
        logits, twin_logits: (N, K) logits (or probabilities) of the two evaluators.
        labels: (N,) int intended classes.
    """
    if logits.dim() != 2 or logits.shape != twin_logits.shape:
        raise ValueError(f"both evaluators' logits must be the same (N, K), got "
                         f"{tuple(logits.shape)} and {tuple(twin_logits.shape)}")
    labels = labels.to(torch.int64).flatten().cpu()
    if labels.numel() != logits.shape[0] or labels.numel() == 0:
        raise TooFewSamples(f"evaluator agreement needs one label per sample (got "
                            f"{labels.numel()} labels for {logits.shape[0]} samples)")
    pred, twin_pred = logits.argmax(dim=1).cpu(), twin_logits.argmax(dim=1).cpu()
    n = labels.numel()
    # Counts first, then one division each, so the values are exact fractions of n.
    right, twin_right = int((pred == labels).sum()), int((twin_pred == labels).sum())
    return EvaluatorAgreement(right / n, twin_right / n, int((pred != twin_pred).sum()) / n,
                              abs(right - twin_right) / n)
