"""Interfaces of the evaluation room: feature extractors and metrics, each in a registry.

A metric is three parts (as in stylegan2-ada's metric_utils): features from an extractor,
reference statistics cached per (extractor checksum, dataset, split, count), and a small formula.
Every number is returned with its protocol (:class:`MetricResult.protocol`), so a reported value
always says how it was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch

from ganforge.registry import Registry


class FeatureExtractor:
    """Maps images to features (for FID/KID/PR) and, when it is a classifier, to class logits.

    Attributes:
        name: short protocol name used in metric names, e.g. "mnist-lenet" or "inception".
        checksum: SHA-256 (hex) of the weights, recorded with every number.
        input_shape: (C, H, W) the network wants; inputs of another size/channel count are
            converted by :meth:`prepare` with ``resize_method``.
        resize_method: how inputs are resized (recorded in provenance), e.g. "bilinear-antialias".
        n_classes: number of classes of the logits head (0 when it has none).
        class_names: optional names of the classes.
        feature_dim: F, the feature size.
    """

    name: str
    checksum: str
    input_shape: tuple[int, int, int]
    resize_method: str
    n_classes: int = 0
    class_names: Optional[list[str]] = None
    feature_dim: int

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Args: images (N, C, H, W) float in [-1, 1] on any device.

        Returns:
            features (N, F) float64-safe float32 on the CPU; logits (N, K) or None.
        """
        raise NotImplementedError

    def provenance(self) -> dict[str, Any]:
        return {"extractor": self.name, "extractor_sha256": self.checksum,
                "extractor_input": list(self.input_shape), "resize": self.resize_method}


@dataclass
class MetricResult:
    """One reported number with how it was measured.

    Attributes:
        name: protocol-bearing name, e.g. "fid10k_mnist-lenet".
        value: the headline number.
        details: extra values (e.g. per-class accuracies, KID std, confusion matrix).
        protocol: metric, extractor + checksum, real/fake counts, reference dataset and split,
            resize method, library versions.
    """

    name: str
    value: float
    details: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)


EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature extractor")
METRICS: Registry[Callable[..., MetricResult]] = Registry("metric")
