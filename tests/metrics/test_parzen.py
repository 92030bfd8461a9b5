"""The Parzen-window log-likelihood: formulas against closed forms, and the registered metric."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.errors import ConfigError
from ganforge.metrics import METRICS
from ganforge.metrics import parzen as P
from ganforge.metrics.base import HIGHER_IS_BETTER
from ganforge.metrics.context import EvalContext
from ganforge.metrics.formulas import TooFewSamples

F64 = torch.float64


def gaussian_log_pdf(x: torch.Tensor, mean: torch.Tensor, var: float) -> torch.Tensor:
    """(M,) log N(x; mean, var I), written out."""
    d = x.shape[1]
    return -((x - mean) ** 2).sum(dim=1) / (2 * var) - 0.5 * d * math.log(2 * math.pi * var)


def naive_log_density(x, samples, sigmas):
    """The definition, with the full (M, N, D) difference tensor, in float64."""
    sig = torch.as_tensor(sigmas, dtype=F64)
    d2 = ((x.double()[:, None] - samples.double()[None]) ** 2).sum(dim=-1)
    lse = torch.logsumexp(-d2[..., None] / (2 * sig**2), dim=1)
    return lse - math.log(samples.shape[0]) - 0.5 * x.shape[1] * torch.log(2 * math.pi * sig**2)


# ------------------------------------------------------------------------------------ formulas

def test_single_kernel_is_the_gaussian_log_density():
    s = torch.tensor([[0.2, -1.0, 3.0]], dtype=F64)
    x = torch.tensor([[0.2, -1.0, 3.0], [1.2, 0.0, 3.0], [0.0, 0.0, 0.0]], dtype=F64)
    for sigma in (0.1, 0.5, 2.0):
        got = P.parzen_log_density(x, s, sigma, dtype=F64)[:, 0]
        assert torch.allclose(got, gaussian_log_pdf(x, s[0], sigma**2), rtol=0, atol=1e-12)
    # At the centre: -(D/2) log(2 pi sigma^2); 1 away in 2 of 3 coordinates: 1/sigma^2 lower.
    got = P.parzen_log_density(x[:2], s, 0.5, dtype=F64)[:, 0]
    assert got[0].item() == pytest.approx(-1.5 * math.log(2 * math.pi * 0.25), abs=1e-12)
    assert (got[0] - got[1]).item() == pytest.approx(2 / (2 * 0.25), abs=1e-12)


def test_two_kernels_average_their_densities():
    s = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=F64)
    x = torch.tensor([[1.0, 1.0]], dtype=F64)
    expected = torch.log(0.5 * (gaussian_log_pdf(x, s[0], 0.49).exp()
                                + gaussian_log_pdf(x, s[1], 0.49).exp()))
    assert P.parzen_log_density(x, s, 0.7)[0, 0].item() == pytest.approx(expected.item(),
                                                                          abs=1e-5)


def test_blocks_give_the_unblocked_result():
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(103, 20, generator=gen, dtype=F64)
    s = torch.rand(211, 20, generator=gen, dtype=F64)
    sigmas = [0.05, 0.2, 1.0]
    whole = P.parzen_log_density(x, s, sigmas, block=10_000, sample_block=10_000, dtype=F64)
    blocked = P.parzen_log_density(x, s, sigmas, block=7, sample_block=13, dtype=F64)
    reference = naive_log_density(x, s, sigmas)
    assert whole.shape == (103, 3)
    assert torch.allclose(blocked, whole, rtol=0, atol=1e-10)
    assert torch.allclose(whole, reference, rtol=0, atol=1e-10)
    # float32 distances: the same up to float32 rounding of ~10-nat values.
    assert torch.allclose(P.parzen_log_density(x, s, sigmas, block=7, sample_block=13),
                          reference, rtol=1e-5, atol=1e-3)


def test_far_points_stay_finite():
    # exp(-1e6 / (2 * 0.05^2)) underflows in any precision; the shifted sum does not.
    s = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1000.0, 0.0]])
    got = P.parzen_log_density(x, s, [0.05, 1.0], sample_block=1)
    assert torch.isfinite(got).all()
    d2 = torch.tensor([1000.0**2, 1000.0**2 + 1.0], dtype=F64)
    for j, sigma in enumerate((0.05, 1.0)):
        expected = (torch.logsumexp(-d2 / (2 * sigma**2), 0) - math.log(2)
                    - math.log(2 * math.pi * sigma**2))
        assert got[0, j].item() == pytest.approx(expected.item(), rel=1e-6)


def test_estimate_approaches_the_smoothed_density_as_samples_grow():
    # Samples of N(0, I) convolved with the kernel N(0, sigma^2 I) give N(0, (1 + sigma^2) I):
    # the KDE converges to that density, pointwise, as N grows.
    gen = torch.Generator().manual_seed(1)
    sigma, x = 0.5, torch.randn(2000, 2, generator=gen, dtype=F64)
    exact = gaussian_log_pdf(x, torch.zeros(2, dtype=F64), 1 + sigma**2)
    errors = []
    for n in (100, 1000, 20_000):
        s = torch.randn(n, 2, generator=gen, dtype=F64)
        diff = P.parzen_log_density(x, s, sigma, dtype=F64)[:, 0] - exact
        errors.append((diff.mean().abs().item(), diff.abs().max().item()))
    assert errors[0][1] > errors[1][1] > errors[2][1]
    assert errors[2][0] < 0.005 and errors[2][1] < 0.5


def test_estimate_with_chosen_sigma_approaches_the_true_log_likelihood():
    # With sigma chosen on validation points, the gap E[log p - log p_kde] (a KL divergence,
    # >= 0 in expectation) shrinks towards 0 as the samples grow.
    gen = torch.Generator().manual_seed(2)
    x_val, x_test = (torch.randn(n, 2, generator=gen, dtype=F64) for n in (1000, 2000))
    truth = gaussian_log_pdf(x_test, torch.zeros(2, dtype=F64), 1.0)
    grid, gaps, sigmas = P.sigma_grid(0.02, 2.0, 30), [], []
    for n in (30, 300, 3000, 10_000):
        s = torch.randn(n, 2, generator=gen, dtype=F64)
        sigma, _ = P.select_sigma(s, x_val, grid, dtype=F64)
        gap = truth - P.parzen_log_density(x_test, s, sigma, dtype=F64)[:, 0]
        mean, stderr = P.mean_and_stderr(gap)
        assert mean > -3 * stderr
        gaps.append(mean)
        sigmas.append(sigma)
    # 0.134, 0.030, 0.013, 0.008 nats; the last two differ by about their standard error.
    assert gaps[0] > gaps[1] > max(gaps[2:]) and gaps[-1] < 0.015
    assert sigmas == sorted(sigmas, reverse=True)  # more samples, narrower kernels


@pytest.mark.parametrize("planted", [3, 9, 15])
def test_sigma_selection_recovers_a_planted_bandwidth(planted):
    grid = P.sigma_grid(0.05, 1.0, 20)
    sigma_true = grid[planted].item()
    gen = torch.Generator().manual_seed(planted)
    samples = 10 * torch.rand(200, 8, generator=gen)  # far apart compared with the kernels
    # Validation points drawn from the KDE itself: a random centre plus N(0, sigma^2 I) noise.
    centres = samples[torch.randint(0, 200, (3000,), generator=gen)]
    val = centres + sigma_true * torch.randn(3000, 8, generator=gen)
    sigma, scores = P.select_sigma(samples, val, grid)
    assert sigma == pytest.approx(sigma_true, rel=1e-12)
    assert scores.shape == (20,) and int(scores.argmax()) == planted


def test_mean_and_stderr():
    mean, stderr = P.mean_and_stderr(torch.tensor([1.0, 2.0, 3.0, 6.0]))
    assert mean == 3.0 and stderr == pytest.approx(math.sqrt(3.5) / 2)
    with pytest.raises(TooFewSamples):
        P.mean_and_stderr(torch.tensor([1.0]))


def test_sigma_grid_and_bad_input():
    grid = P.sigma_grid(0.1, 1.0, 3)
    assert torch.allclose(grid, torch.tensor([0.1, math.sqrt(0.1), 1.0], dtype=F64))
    with pytest.raises(ConfigError, match="sigma grid"):
        P.sigma_grid(0.0, 1.0, 5)
    with pytest.raises(ConfigError, match="positive"):
        P.parzen_log_density(torch.zeros(2, 3), torch.zeros(2, 3), [0.1, -1.0])
    with pytest.raises(TooFewSamples, match="--n"):
        P.parzen_log_density(torch.zeros(2, 3), torch.zeros(0, 3), 0.1)
    with pytest.raises(ValueError, match="equal D"):
        P.parzen_log_density(torch.zeros(2, 3), torch.zeros(2, 4), 0.1)


@pytest.mark.parametrize("available,expected", [(70_000, (1000, 10_000)), (10_000, (1000, 9000)),
                                                (1797, (179, 1618)), (50, (10, 40))])
def test_split_sizes(available, expected):
    assert P.split_sizes(available, 1000, 10_000) == expected


def test_split_sizes_too_few():
    with pytest.raises(TooFewSamples, match="data.limit"):
        P.split_sizes(15, 1000, 10_000)


# ------------------------------------------------------------------------------ the metric

SYNTH_TEST = DataConfig(name="synthetic", split="test", limit=300)


def synthetic_samples(n: int) -> torch.Tensor:
    """n images of the synthetic train split: the same blobs, other noise, never scored."""
    return build_dataset(DataConfig(name="synthetic", split="train", limit=n)).x


def test_metric_is_registered_and_maximised():
    assert METRICS.get("parzen") is P.parzen_metric
    assert "parzen" in HIGHER_IS_BETTER


def test_metric_end_to_end_on_synthetic_images():
    samples, labels = synthetic_samples(200), torch.arange(200) % 10
    ctx = EvalContext(samples, labels, SYNTH_TEST, seed=5)
    result = P.parzen_metric(ctx)
    d = result.details
    assert result.name == "parzen200_synthetic"
    assert (d["n_val"], d["n_test"], d["n_samples"], d["conditional"]) == (30, 270, 200, True)
    assert len(d["sigma_grid"]) == len(d["val_scores"]) == 20
    assert d["sigma"] == d["sigma_grid"][int(np.argmax(d["val_scores"]))]
    assert "estimate" not in d  # the best bandwidth lies inside the grid

    # The same numbers from the formulas on the seeded split.
    order = torch.randperm(300, generator=torch.Generator().manual_seed(5))
    real = build_dataset(SYNTH_TEST).x.flatten(1).double() / 255
    fake = samples.flatten(1).double() / 255
    sigma, _ = P.select_sigma(fake, real[order[:30]], P.sigma_grid(0.05, 1.0, 20), dtype=F64)
    mean, stderr = P.mean_and_stderr(P.parzen_log_density(real[order[30:]], fake, sigma,
                                                          dtype=F64)[:, 0])
    assert d["sigma"] == pytest.approx(sigma, rel=1e-12)
    assert result.value == pytest.approx(mean, abs=1e-3)
    assert d["stderr"] == pytest.approx(stderr, rel=1e-4)

    p = result.protocol
    assert (p["metric"], p["n_fake"], p["n_real"], p["seed"]) == ("parzen", 200, 270, 5)
    assert p["reference"] == {"dataset": "synthetic", "split": "test", "limit": 300,
                              "source": build_dataset(SYNTH_TEST).source}
    assert p["params"]["n_val"] == 30 and p["params"]["grid"] == [0.05, 1.0, 20]
    assert p["params"]["sigma"] == d["sigma"] and p["versions"]["torch"] is not None
    json.dumps(p)  # the protocol is stored as JSON


def test_metric_ranks_real_like_samples_above_noise():
    ref_ctx = {"reference": SYNTH_TEST, "seed": 0}
    good = P.parzen_metric(EvalContext(synthetic_samples(200), **ref_ctx))
    gen = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (200, 1, 28, 28), generator=gen, dtype=torch.uint8)
    bad = P.parzen_metric(EvalContext(noise, **ref_ctx))
    assert good.value > bad.value + 10 * (good.details["stderr"] + bad.details["stderr"])
    assert bad.details["conditional"] is False


def test_metric_on_toy_points():
    ref = DataConfig(name="toy-2d", toy="8gaussians", toy_samples=1000, split="test")
    points = build_dataset(DataConfig(name="toy-2d", toy="8gaussians", toy_samples=500)).x
    result = P.parzen_metric(EvalContext(points, reference=ref), n_val=100, n_test=400)
    assert result.name == "parzen500_8gaussians"
    assert (result.details["n_val"], result.details["n_test"]) == (100, 400)
    assert result.protocol["reference"]["toy"] == "8gaussians"
    # Mixture modes with std 0.014: a sharp density, far above a 2-D unit Gaussian's -2.84.
    assert result.value > 1.0 and result.details["sigma"] < 0.05


def test_sigma_at_the_grid_edge_is_flagged():
    ctx = EvalContext(synthetic_samples(100), reference=SYNTH_TEST)
    result = P.parzen_metric(ctx, grid=(2.0, 4.0, 3))
    assert result.details["sigma"] == 2.0 and "edge of the grid" in result.details["estimate"]


def test_metric_errors_name_the_fix():
    with pytest.raises(ConfigError, match="--dataset"):
        P.parzen_metric(EvalContext(synthetic_samples(20)))
    with pytest.raises(TooFewSamples, match="--n"):
        P.parzen_metric(EvalContext(synthetic_samples(1), reference=SYNTH_TEST))
    with pytest.raises(TooFewSamples, match="larger split"):
        P.parzen_metric(EvalContext(synthetic_samples(20),
                                    reference=DataConfig(name="synthetic", limit=12)))
    with pytest.raises(ConfigError, match="image_size"):
        P.parzen_metric(EvalContext(synthetic_samples(20), reference=DataConfig(
            name="synthetic", limit=100, image_size=16)))
    with pytest.raises(ConfigError, match="uint8"):
        P.parzen_metric(EvalContext(torch.zeros(20, 1, 28, 28), reference=SYNTH_TEST))


def test_evaluate_scores_an_npz(tmp_path):
    from ganforge.metrics.evaluate import evaluate, format_table

    path = tmp_path / "samples.npz"
    np.savez_compressed(path, images=synthetic_samples(100)[:, 0].numpy(),
                        labels=np.arange(100) % 10)
    (result,) = evaluate(path, ["parzen"], reference={"name": "synthetic", "split": "test",
                                                      "limit": 300})
    assert result.name == "parzen100_synthetic" and result.details["n_test"] == 270
    (result,) = evaluate(path, ["parzen"], n_real=50, reference={"name": "synthetic",
                                                                  "split": "test", "limit": 300})
    assert (result.details["n_val"], result.details["n_test"]) == (30, 50)
    assert result.protocol["n_real"] == 50
    assert "stderr=" in format_table([result]) and "sigma=" in format_table([result])
