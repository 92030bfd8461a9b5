"""Condition fit: do conditional samples land where their condition asks?

For a data set whose right answer is known — the point ``t(y)`` that a condition row ``y`` asks
for, such as the ring point at angle theta for ``y = (cos theta, sin theta)`` in toy-2d
``ring-angle`` — the fit of samples x_i generated for conditions y_i is

    fit      = mean_i |x_i - t(y_i)|                  (distance to the asked-for point)
    baseline = mean_{i != j} |x_i - t(y_j)|           (distance to another sample's target)
    value    = fit / baseline

The baseline is what the same samples score when the condition is ignored (a random target),
so the value is 0 for samples exactly at their targets, about 1 for a generator that draws
from the right marginal but ignores its condition, and lower is better. It says nothing about
the spread *within* a condition (the ring's radial noise): a perfect generator scores the noise
level (about 0.04 on ring-angle), not 0.

:func:`condition_fit` is the formula on tensors; the registered ``condition-fit`` metric takes
the samples and the (N, K) condition rows from the context and the targets from the toy set.
"""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError
from ganforge.metrics.base import METRICS, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.formulas import TooFewSamples

CHUNK = 1024  # rows of the pairwise distance matrix computed at once (bounds memory)


def condition_fit(samples: torch.Tensor, targets: torch.Tensor) -> tuple[float, float, float]:
    """Condition fit of samples against the targets of their own conditions.

    Args:
        samples: (N, D) generated points, N >= 2.
        targets: (N, D) the point each sample's condition asks for.

    Returns:
        ``(value, fit, baseline)``: value = fit / baseline; fit = mean distance of each sample
        to its own target; baseline = mean distance of each sample to the targets of the other
        N - 1 samples (all pairs i != j, computed exactly in chunks of :data:`CHUNK` rows).

    Raises:
        TooFewSamples: fewer than 2 samples.
        ValueError: shapes that differ or are not (N, D).
    """
    if samples.dim() != 2 or samples.shape != targets.shape:
        raise ValueError(f"samples {tuple(samples.shape)} and targets {tuple(targets.shape)} "
                         "must both be (N, D)")
    n = samples.shape[0]
    if n < 2:
        raise TooFewSamples("condition fit needs at least 2 samples")
    x = samples.detach().to("cpu", torch.float64)
    t = targets.detach().to("cpu", torch.float64)
    own = (x - t).norm(dim=1).sum()
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, n, CHUNK):
        total += torch.cdist(x[start:start + CHUNK], t).sum()
    fit = float(own) / n
    baseline = float(total - own) / (n * (n - 1))
    if baseline <= 0:
        raise ValueError("all targets coincide with all samples; the condition fit is undefined")
    return fit / baseline, fit, baseline


def condition_targets(toy: str | None):
    """The function (N, K) condition rows -> (N, 2) target points of a conditioned toy set."""
    from ganforge.data.toy import CONDITION_TARGETS

    if toy not in CONDITION_TARGETS:
        raise ConfigError(f"condition-fit needs a data set with a known answer "
                          f"({', '.join(CONDITION_TARGETS)}): score a toy-2d run with "
                          f"data.toy={next(iter(CONDITION_TARGETS))}, or pass --dataset toy-2d "
                          f"--toy {next(iter(CONDITION_TARGETS))}")
    return CONDITION_TARGETS[toy]


@METRICS.register("condition-fit")
def condition_fit_metric(ctx: EvalContext) -> MetricResult:
    """Distance of samples to the point their condition asks for, relative (0 best, ~1 ignored).

    The value is mean |x_i - t(y_i)| over the mean |x_i - t(y_j)|, i != j (see the module
    docstring); details hold both means.
    """
    ref = ctx.reference
    toy = getattr(ref, "toy", None) if ref is not None and ref.name == "toy-2d" else None
    target_of = condition_targets(toy)
    labels = ctx.labels
    if labels is None or labels.dim() != 2 or not labels.is_floating_point():
        raise ConfigError("condition-fit needs the (N, K) float condition rows the samples were "
                          "generated for: score a run conditioned on vectors (e.g. preset "
                          "cgan-ring-angle), or an npz whose 'labels' are such rows")
    samples = ctx.samples
    if samples.dim() != 2 or len(labels) != len(samples):
        raise ConfigError(f"condition-fit needs (N, D) points with one condition row each, got "
                          f"samples {tuple(samples.shape)} and conditions {tuple(labels.shape)}")
    targets = target_of(labels.cpu())
    if targets.shape != samples.shape:
        raise ConfigError(f"condition-fit: {toy} targets are {tuple(targets.shape[1:])}-d but "
                          f"the samples are {tuple(samples.shape[1:])}-d; score samples of a "
                          f"{toy} run")
    value, fit, baseline = condition_fit(samples, targets)
    details = {"fit": fit, "baseline": baseline, "toy": toy}
    protocol = ctx.protocol("condition-fit", real=False, toy=toy,
                            baseline="mean over pairs i != j")
    return MetricResult(ctx.name("condfit", toy), value, details, protocol)
