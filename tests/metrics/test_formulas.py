"""The metric formulas against closed forms, hand computations and torchmetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import formulas as F


def gaussian(n: int, d: int, seed: int, mean: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) * scale + mean


def random_spd(d: int, seed: int) -> torch.Tensor:
    a = gaussian(2 * d, d, seed)
    return a.T @ a / (2 * d) + 0.1 * torch.eye(d, dtype=torch.float64)


# ------------------------------------------------------------------------------------ FID

def test_feature_stats_match_numpy():
    x = gaussian(50, 4, 0)
    mu, sigma = F.feature_stats(x.float())
    assert mu.dtype == sigma.dtype == torch.float64
    np.testing.assert_allclose(mu.numpy(), x.numpy().mean(0), atol=1e-6)
    np.testing.assert_allclose(sigma.numpy(), np.cov(x.numpy(), rowvar=False), atol=1e-6)


@pytest.mark.parametrize("n, d", [(500, 16), (10, 32)])  # the second: singular covariance
def test_fid_of_a_set_against_itself_is_zero(n, d):
    stats = F.feature_stats(gaussian(n, d, 1, scale=3.0))
    assert 0.0 <= F.frechet_distance(*stats, *stats) <= 1e-6


def test_fid_closed_form_for_isotropic_gaussians():
    # N(0, I) vs N(m, s^2 I): ||m||^2 + tr(I + s^2 I - 2 s I) = ||m||^2 + d (1 - s)^2.
    d, s = 6, 1.7
    m = torch.arange(d, dtype=torch.float64) / 10
    expected = float(m.dot(m)) + d * (1 - s) ** 2
    eye = torch.eye(d, dtype=torch.float64)
    exact = F.frechet_distance(torch.zeros(d), eye, m, s * s * eye)
    assert exact == pytest.approx(expected, rel=1e-12)
    # ... and estimated from samples of the two Gaussians.
    x, y = gaussian(100_000, d, 2), gaussian(100_000, d, 3) * s + m
    assert F.frechet_distance(*F.feature_stats(x), *F.feature_stats(y)) == \
        pytest.approx(expected, abs=0.04)  # sampling std of the estimate ~0.01


def test_fid_matches_the_sqrtm_formula_on_non_commuting_covariances():
    from scipy import linalg

    s1, s2 = random_spd(10, 4), random_spd(10, 5)
    mu1, mu2 = gaussian(1, 10, 6)[0], gaussian(1, 10, 7)[0]
    covmean = linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    expected = float((mu1 - mu2).dot(mu1 - mu2)) + np.trace(s1.numpy() + s2.numpy()
                                                             - 2 * covmean)
    assert F.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fid_agrees_with_torchmetrics_on_the_same_features():
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Identity(torch.nn.Module):
        """A 'feature extractor' that passes pre-computed features through."""

        num_features = 64

        def forward(self, x):
            return x

    real, fake = gaussian(1000, 64, 8), gaussian(800, 64, 9, mean=0.3, scale=1.2)
    metric = FrechetInceptionDistance(feature=Identity())
    metric.update(real.float(), real=True)
    metric.update(fake.float(), real=False)
    theirs = float(metric.compute())
    ours = F.frechet_distance(*F.feature_stats(real.float()), *F.feature_stats(fake.float()))
    assert ours == pytest.approx(theirs, abs=1e-3)


# ------------------------------------------------------------------------------------ KID

def test_kid_by_hand_on_two_points():
    # k(a, b) = (a.b / F + 1)^3 with F = 2.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    k = lambda a, b: (float(a @ b) / 2 + 1) ** 3  # noqa: E731
    within_x = (k(x[0], x[1]) + k(x[1], x[0])) / (2 * 1)   # = 1, diagonals left out
    within_y = (k(y[0], y[1]) + k(y[1], y[0])) / (2 * 1)   # = 1
    cross = sum(k(a, b) for a in x for b in y) / (2 * 2)  # = (3.375 + 1 + 3.375 + 1) / 4
    expected = within_x + within_y - 2 * cross
    assert expected == pytest.approx(-2.375)
    mean, std = F.kid(x, y, subsets=5, subset_size=2)  # every subset is the whole set
    assert mean == pytest.approx(expected, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_mmd_agrees_with_torchmetrics():
    from torchmetrics.image.kid import poly_mmd

    x, y = gaussian(60, 5, 10), gaussian(60, 5, 11, mean=0.5)
    assert F.polynomial_mmd2(x, y) == pytest.approx(float(poly_mmd(x, y)), rel=1e-10)


def test_kid_is_near_zero_for_one_distribution_and_seeded():
    x, y = gaussian(400, 8, 12), gaussian(400, 8, 13)
    mean, std = F.kid(x, y, subsets=20, subset_size=100, seed=3)
    assert abs(mean) < 3 * std + 1e-3
    assert F.kid(x, y, subsets=20, subset_size=100, seed=3) == (mean, std)


# ------------------------------------------------------------------------------------ IS

def test_inception_score_by_hand():
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)
    # p(y) = (0.5, 0.5); each row: KL = 0.9 ln(0.9 / 0.5) + 0.1 ln(0.1 / 0.5).
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    mean, std = F.inception_score(p.log(), splits=1)
    assert mean == pytest.approx(math.exp(kl), rel=1e-12) and std == 0.0


def test_inception_score_splits_and_extremes():
    # Two splits: one confident and diverse (IS = 2), one collapsed to one class (IS = 1).
    logits = torch.tensor([[50.0, 0.0], [0.0, 50.0], [50.0, 0.0], [50.0, 0.0]])
    mean, std = F.inception_score(logits, splits=2)
    assert mean == pytest.approx(1.5, abs=1e-9)
    assert std == pytest.approx(0.5, abs=1e-9)  # population std of (2, 1)


# ------------------------------------------------------------------- precision / recall etc.

def line(values) -> torch.Tensor:
    """Points (v, 0) in 2-D, float64, so distances are exact integers."""
    v = torch.as_tensor(values, dtype=torch.float64)
    return torch.stack([v, torch.zeros_like(v)], dim=1)


def test_precision_recall_known_answers():
    x = gaussian(200, 5, 14)
    assert F.precision_recall(x, x.clone(), k=3) == (1.0, 1.0)
    assert F.precision_recall(x, x + 1000.0, k=3) == (0.0, 0.0)
    # Reals 0..9 (radius 1 with k=1); fakes 0..4 and 100..104 (radius 1). Precision: 5 of 10
    # fakes lie on the real line. Recall: reals 0..4 and real 5 (distance 1 to fake 4) = 6/10.
    real, fake = line(range(10)), line(list(range(5)) + list(range(100, 105)))
    assert F.precision_recall(real, fake, k=1) == (0.5, 0.6)


def test_density_coverage_known_answers():
    # Dyadic coordinates make every squared distance exact in float64, so a point at exactly
    # the k-th neighbour distance counts as inside that ball whichever block computed it.
    x = (gaussian(200, 5, 15) * 1024).round() / 1024
    density, coverage = F.density_coverage(x, x.clone(), k=5)
    assert coverage == 1.0 and density == pytest.approx(6 / 5)  # (k + 1) / k for a set itself
    assert F.density_coverage(x, x + 1000.0, k=5) == (0.0, 0.0)
    # Same line sets, k = 1: fakes 0..4 lie in 2, 3, 3, 3, 3 real balls -> 14 / (1 * 10).
    real, fake = line(range(10)), line(list(range(5)) + list(range(100, 105)))
    assert F.density_coverage(real, fake, k=1) == (pytest.approx(1.4), 0.6)


def test_blocked_distances_equal_one_block():
    real, fake = gaussian(300, 6, 16), gaussian(250, 6, 17, mean=0.4)
    assert F.precision_recall(real, fake, 3, block=7) == F.precision_recall(real, fake, 3)
    assert F.density_coverage(real, fake, 5, block=7) == F.density_coverage(real, fake, 5)


# ------------------------------------------------------------------------ label accuracy

def test_label_accuracy_counts_and_confusion():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 3])
    preds = torch.tensor([0, 0, 0, 1, 1, 2, 3])
    logits = torch.nn.functional.one_hot(preds, 4).float()
    acc = F.label_accuracy(logits, labels, 4)
    assert acc.overall == pytest.approx(5 / 7)
    expected = torch.zeros(4, 4, dtype=torch.int64)
    for t, p in zip(labels, preds):
        expected[t, p] += 1
    assert torch.equal(acc.confusion, expected)
    assert acc.per_class[0] == 0.75 and acc.per_class[1] == 0.5 and acc.per_class[3] == 1.0
    assert math.isnan(acc.per_class[2])  # no sample was made for class 2


def test_evaluator_agreement_exact_values():
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 3, 3])
    a = torch.tensor([0, 1, 2, 0, 1, 0, 3, 1])  # right on 6 of 8
    b = torch.tensor([0, 1, 1, 1, 1, 2, 3, 2])  # right on 4 of 8
    agree = F.evaluator_agreement(torch.nn.functional.one_hot(a, 4).float(),
                                  torch.nn.functional.one_hot(b, 4).float() * 3, labels)
    # They differ on samples 2, 3, 5 and 7: on 2 and 5 only a is right (the gap), on 3 and 7
    # both are wrong in different ways (disagreement without a gap).
    assert agree == F.EvaluatorAgreement(0.75, 0.5, 0.5, 0.25)
    assert agree.disagreement >= agree.accuracy_gap
    same = F.evaluator_agreement(torch.eye(4)[a], torch.eye(4)[a] * 2, labels)
    assert same == F.EvaluatorAgreement(0.75, 0.75, 0.0, 0.0)
    # Both wrong but in different ways: full disagreement with no accuracy gap.
    wrong = F.evaluator_agreement(torch.eye(4)[torch.tensor([1, 2])],
                                  torch.eye(4)[torch.tensor([2, 3])], torch.tensor([0, 0]))
    assert wrong == F.EvaluatorAgreement(0.0, 0.0, 1.0, 0.0)


def test_evaluator_agreement_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same"):
        F.evaluator_agreement(torch.zeros(3, 4), torch.zeros(3, 5), torch.zeros(3))
    with pytest.raises(F.TooFewSamples, match="one label per sample"):
        F.evaluator_agreement(torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(2))
    with pytest.raises(F.TooFewSamples):
        F.evaluator_agreement(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0))


# ------------------------------------------------------------------------ too few samples

@pytest.mark.parametrize("call", [
    lambda: F.feature_stats(torch.zeros(1, 3)),
    lambda: F.kid(torch.zeros(5, 3), torch.zeros(9, 3), subsets=2, subset_size=6),
    lambda: F.inception_score(torch.zeros(3, 2), splits=4),
    lambda: F.precision_recall(torch.zeros(3, 2), torch.zeros(10, 2), k=3),
    lambda: F.density_coverage(torch.zeros(10, 2), torch.zeros(0, 2), k=3),
])
def test_too_few_samples_is_a_one_line_user_error(call):
    with pytest.raises(GanforgeError) as info:
        call()
    assert isinstance(info.value, F.TooFewSamples) and "\n" not in str(info.value)
