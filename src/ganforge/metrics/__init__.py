"""Metrics: features from an extractor, cached reference statistics and a small formula.

Importing this package registers every metric in :data:`METRICS` (``ganforge list`` shows
them); nothing is computed, read or downloaded until a metric runs.

* :mod:`.base`: the extractor and metric interfaces and their registries;
* :mod:`.formulas`: FID, KID, IS, precision/recall, density/coverage, label accuracy on tensors;
* :mod:`.reference`: reference statistics of a dataset split, cached on disk, and the
  real-vs-real FID floor;
* :mod:`.context`: :class:`EvalContext`, what every metric receives;
* :mod:`.features`: the feature metrics (FID, KID, IS, PR, DC, label accuracy, per-class FID);
* :mod:`.coverage`: Stacked MNIST and 2-D mixture mode coverage, class entropy;
* :mod:`.condition`: condition fit of vector-conditioned samples (toy-2d ring-angle);
* :mod:`.attributes`: attribute accuracy of attribute-conditioned samples (``attr-acc``) and the
  IS analogue of an attribute evaluator (``attr-is``);
* :mod:`.extractors`, :mod:`.domain_evaluator`, :mod:`.evaluator`, :mod:`.evaluator_tasks`,
  :mod:`.evaluator_files`, :mod:`.corruptions`, :mod:`.inception`: the feature extractors
  (domain evaluators that ganforge trains on corrupted images, with a twin, for classes or
  binary attributes; the FID Inception network). ``evaluators/`` holds the ones that ship
  with the package (``digits-lenet``);
* :mod:`.parzen`, :mod:`.condition`: Parzen-window log-likelihood; how samples follow a
  continuous condition;
* :mod:`.reference_files`: any folder or npz of images as the real set (``--reference``);
* :mod:`.evaluate`: ``ganforge evaluate`` (above this package: it imports it to register all).

What it may import: the run layer (to sample a run folder), ``data`` (reference images),
``imaging`` and the foundation. Never ``reporting``, ``training``, ``api`` or ``cli``.
"""

from __future__ import annotations

from ganforge.metrics import (  # noqa: F401  (imported so each module registers its entries)
    attributes,
    condition,
    coverage,
    extractors,
    features,
    formulas,
    parzen,
    reference,
)
from ganforge.metrics.base import EXTRACTORS, METRICS, FeatureExtractor, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.reference import ReferenceStats, real_floor, reference_stats

__all__ = [
    "EXTRACTORS",
    "METRICS",
    "EvalContext",
    "FeatureExtractor",
    "MetricResult",
    "ReferenceStats",
    "real_floor",
    "reference_stats",
]
