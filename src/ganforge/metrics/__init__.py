"""Metrics: features from an extractor, cached reference statistics and a small formula.

Importing this package registers every metric in :data:`METRICS` (``ganforge list`` shows
them); nothing is computed, read or downloaded until a metric runs.

* :mod:`.formulas`: FID, KID, IS, precision/recall, density/coverage, label accuracy on tensors;
* :mod:`.reference`: reference statistics of a dataset split, cached on disk, and the
  real-vs-real FID floor;
* :mod:`.evaluate`: the metric context, the feature metrics and ``ganforge evaluate``;
* :mod:`.coverage`: Stacked MNIST and 2-D mixture mode coverage.
"""

from __future__ import annotations

from ganforge.metrics import (  # noqa: F401  (imported so each module registers its entries)
    coverage,
    evaluate,
    extractors,
    formulas,
    reference,
)
from ganforge.metrics.base import EXTRACTORS, METRICS, FeatureExtractor, MetricResult
from ganforge.metrics.evaluate import EvalContext
from ganforge.metrics.evaluate import evaluate as evaluate_samples
from ganforge.metrics.reference import ReferenceStats, real_floor, reference_stats

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "EvalContext",
    "FeatureExtractor",
    "MetricResult",
    "ReferenceStats",
    "evaluate_samples",
    "real_floor",
    "reference_stats",
]
