"""The condition-fit formula on planted cases and the registered metric on toy-2d ring-angle."""

from __future__ import annotations

import math

import pytest
import torch

from ganforge.config import DataConfig
from ganforge.data.toy import RING_RADIUS, ring_target
from ganforge.errors import ConfigError
from ganforge.metrics import METRICS, EvalContext
from ganforge.metrics import condition as condition_module
from ganforge.metrics.condition import condition_fit
from ganforge.metrics.formulas import TooFewSamples

RING = DataConfig(name="toy-2d", toy="ring-angle", split="test")


def ring_conditions(n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    theta = torch.rand(n, generator=gen, dtype=torch.float64) * 2 * math.pi
    return torch.stack([theta.cos(), theta.sin()], dim=1)


def test_hand_computed_value():
    samples = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    targets = torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    value, fit, baseline = condition_fit(samples, targets)
    # own: 0 and sqrt(2); other pairs: |x0 - t1| = 1, |x1 - t0| = 1.
    assert fit == pytest.approx(math.sqrt(2) / 2, abs=1e-12)
    assert baseline == pytest.approx(1.0, abs=1e-12)
    assert value == pytest.approx(math.sqrt(2) / 2, abs=1e-12)


def test_samples_at_their_targets_score_zero():
    y = ring_conditions(500, 0)
    value, fit, baseline = condition_fit(ring_target(y), ring_target(y))
    assert value == 0.0 and fit == 0.0
    # Two random points of a radius-R circle lie 4R/pi apart on average.
    assert baseline == pytest.approx(4 * RING_RADIUS / math.pi, rel=0.03)


def test_samples_ignoring_the_condition_score_about_one():
    y = ring_conditions(3000, 1)
    unrelated = ring_target(ring_conditions(3000, 2))  # right marginal, wrong angles
    value, _, _ = condition_fit(unrelated, ring_target(y))
    assert value == pytest.approx(1.0, abs=0.03)


def test_rotated_samples_score_between():
    y = ring_conditions(2000, 3)
    delta = math.pi / 6
    rotation = torch.tensor([[math.cos(delta), math.sin(delta)],
                             [-math.sin(delta), math.cos(delta)]], dtype=torch.float64)
    samples = ring_target(y) @ rotation
    value, fit, baseline = condition_fit(samples, ring_target(y))
    assert fit == pytest.approx(2 * RING_RADIUS * math.sin(delta / 2), rel=1e-9)
    assert value == pytest.approx(fit / baseline) and 0.3 < value < 0.45


def test_chunks_give_the_exact_pair_mean(monkeypatch):
    gen = torch.Generator().manual_seed(4)
    samples, targets = torch.randn(37, 3, generator=gen), torch.randn(37, 3, generator=gen)
    full = condition_fit(samples, targets)
    monkeypatch.setattr(condition_module, "CHUNK", 5)
    chunked = condition_fit(samples, targets)
    assert chunked == pytest.approx(full, rel=1e-12)
    d = torch.cdist(samples.double(), targets.double())
    off = (d.sum() - d.diagonal().sum()) / (37 * 36)
    assert full[2] == pytest.approx(float(off), rel=1e-12)


def test_formula_refuses_bad_shapes():
    with pytest.raises(TooFewSamples):
        condition_fit(torch.zeros(1, 2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="must both be"):
        condition_fit(torch.zeros(4, 2), torch.zeros(4, 3))


def test_registered_metric_on_ring_angle():
    y = ring_conditions(1000, 5).float()
    ctx = EvalContext(ring_target(y).float(), y, RING)
    result = METRICS.get("condition-fit")(ctx)
    assert result.name == "condfit1k_ring-angle" and result.value == pytest.approx(0.0, abs=1e-6)
    assert result.details["baseline"] == pytest.approx(4 * RING_RADIUS / math.pi, rel=0.05)
    assert result.protocol["metric"] == "condition-fit"
    assert result.protocol["reference"] == {"dataset": "toy-2d", "split": "test",
                                            "toy": "ring-angle"}
    far = ring_target(ring_conditions(1000, 6)).float()
    assert METRICS.get("condition-fit")(EvalContext(far, y, RING)).value == pytest.approx(
        1.0, abs=0.05)


@pytest.mark.parametrize("labels,reference,expected", [
    (None, RING, "(N, K) float condition rows"),
    (torch.arange(10), RING, "(N, K) float condition rows"),
    ("rows", DataConfig(name="toy-2d", toy="8gaussians"), "known answer"),
    ("rows", None, "known answer"),
    ("short", RING, "one condition row each"),
])
def test_metric_refusals_are_one_line(labels, reference, expected):
    y = ring_conditions(10, 7).float()
    labels = {"rows": y, "short": y[:5]}.get(labels, labels) if isinstance(labels, str) \
        else labels
    ctx = EvalContext(ring_target(y).float(), labels, reference)
    with pytest.raises(ConfigError) as err:
        METRICS.get("condition-fit")(ctx)
    assert expected in str(err.value) and "\n" not in str(err.value)
