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

from ganforge.registry import METRICS, Registry

# Metrics computed on the samples themselves, never on an extractor's features: in-loop
# evaluation loads no evaluator for them.
WITHOUT_FEATURES = {"parzen", "toy-2d", "condition-fit"}

# Metrics where a larger value is better; all others (FID, KID, ...) are minimised. The in-loop
# monitor picks the best checkpoint by it, and the report and compare pages mark the best value.
HIGHER_IS_BETTER = {"is", "pr", "dc", "label-acc", "stacked-mnist", "toy-2d", "class-entropy",
                    "parzen", "pr/recall", "dc/coverage", "label-acc/worst_class_acc",
                    "attr-acc", "attr-is"}


class FeatureExtractor:
    """Maps images to features (for FID/KID/PR) and, when it is a classifier, to class logits.

    Attributes:
        name: short protocol name used in metric names, e.g. "mnist-lenet" or "inception".
        checksum: SHA-256 (hex) of the weights, recorded with every number.
        input_shape: (C, H, W) the network wants; inputs of another size/channel count are
            converted by :meth:`prepare` with ``resize_method``.
        resize_method: how inputs are resized (recorded in provenance), e.g. "bilinear-antialias".
        n_classes: number of classes (or attributes, when ``multi_label``) of the logits head
            (0 when it has none).
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
    batch_size: int = 250  # images per forward pass (bounds activation memory)
    recipe_version: Optional[int] = None  # a domain evaluator's training recipe (None: n/a)
    multi_label: bool = False  # logits are K independent attributes (sigmoid), not K classes

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Convert a batch (N, C, H, W) in [-1, 1] (or uint8) to the network's input."""
        raise NotImplementedError

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Network pass on one prepared batch: features (B, F) and logits (B, K) or None."""
        raise NotImplementedError

    @torch.no_grad()
    def features_and_logits(self, images: torch.Tensor
                            ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Features and logits of any number of images, computed ``batch_size`` at a time.

        Args:
            images: (N, C, H, W) float in [-1, 1] (or uint8) on any device.

        Returns:
            features (N, F) float32 on the CPU; logits (N, K) float32 on the CPU, or None.
        """
        feats, logits = [], []
        for i in range(0, images.shape[0], self.batch_size):
            f, lg = self.forward(self.prepare(images[i:i + self.batch_size]))
            feats.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
        if not feats:
            empty_logits = torch.empty(0, self.n_classes) if self.n_classes else None
            return torch.empty(0, self.feature_dim), empty_logits
        return torch.cat(feats), (torch.cat(logits) if logits else None)

    def twin_logits(self, images: torch.Tensor) -> Optional[torch.Tensor]:
        """(N, K) logits of a second classifier trained apart (a domain evaluator's twin), for
        the evaluator's own uncertainty; None when the extractor has none."""
        return None

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
        model: which generator drew the samples, when they came from a run: ``{"step": N,
            "ema": bool, "checkpoint": "step_000001000"}`` (None for an npz or a folder).
    """

    name: str
    value: float
    details: dict[str, Any] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    model: Optional[dict[str, Any]] = None


def per_class_line(details: dict[str, Any]) -> Optional[str]:
    """"per class: 0 0.98 · 1 0.99 · ..." from a label accuracy's details, or None when the
    result has no per-class accuracies (names from ``class_names`` when the data has them)."""
    per = details.get("per_class")
    if not isinstance(per, list) or not per:
        return None
    names = details.get("class_names")
    names = names if isinstance(names, list) and len(names) == len(per) else range(len(per))
    return "per class: " + " · ".join(f"{n} {'–' if v is None else f'{v:.2f}'}"
                                      for n, v in zip(names, per))


def protocol_line(protocol: dict[str, Any]) -> Optional[str]:
    """"10,000 samples vs 1,000 real (digits test split), digits-lenet recipe v2": what a
    result was measured on, in one line, or None when the protocol says too little."""
    n_fake = protocol.get("n_fake")
    if not n_fake:
        return None
    text = f"{n_fake:,} samples"
    ref = protocol.get("reference") or {}
    where = " ".join(str(ref[k]) for k in ("dataset", "split") if ref.get(k))
    if protocol.get("n_real"):
        text += f" vs {protocol['n_real']:,} real" + (f" ({where} split)" if where else "")
    if protocol.get("extractor"):
        text += f", {protocol['extractor']}"
        if protocol.get("extractor_recipe") is not None:
            text += f" recipe v{protocol['extractor_recipe']}"
    return text


EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature extractor")

# METRICS (ganforge.registry): a metric is a function ``(ctx, **settings) -> MetricResult``,
# registered with ``settings=`` a dataclass of its keyword settings when it takes any; the
# config's ``eval.settings.<name>`` sets them for in-loop and final scores.
__all__ = ["EXTRACTORS", "METRICS", "FeatureExtractor", "MetricResult"]
