"""Tests of ganforge.metrics, plus the fake extractor they share.

:class:`FakeExtractor` stands in for the real evaluators: cheap, deterministic and with logits
the tests control. Its class prediction is read from the image brightness: an image whose
pixels are all ``LEVEL * c`` (uint8) is classified as class c, so a test chooses which samples
an "evaluator" gets right by painting them.
"""

from __future__ import annotations

import hashlib

import torch

from ganforge.metrics.base import FeatureExtractor

LEVEL = 20  # uint8 brightness step per class


class FakeExtractor(FeatureExtractor):
    """Features: a fixed random projection of the pixels; logits: one-hot of round(mean / LEVEL).

    Args:
        feature_dim: F.
        n_classes: K (classes beyond K are clamped to K - 1).
        name: protocol name.
    """

    def __init__(self, feature_dim: int = 8, n_classes: int = 10, name: str = "fake-lenet"):
        self.name = name
        self.feature_dim = feature_dim
        self.n_classes = n_classes
        self.class_names = [str(i) for i in range(n_classes)]
        self.input_shape = (1, 28, 28)
        self.resize_method = "none"
        self.checksum = hashlib.sha256(f"{name}-{feature_dim}".encode()).hexdigest()
        self.calls = 0  # images seen, to check that caches avoid extraction
        gen = torch.Generator().manual_seed(feature_dim)
        self._proj = torch.randn(28 * 28, feature_dim, generator=gen) / 28

    def features_and_logits(self, images):
        self.calls += images.shape[0]
        gray = images.float().mean(dim=1).flatten(1)  # (N, 784), channels averaged
        features = gray @ self._proj
        level = ((gray.mean(dim=1) + 1) * 127.5 / LEVEL).round().long()
        logits = None
        if self.n_classes:
            logits = 10.0 * torch.nn.functional.one_hot(level.clamp(0, self.n_classes - 1),
                                                        self.n_classes).float()
        return features, logits


def painted(classes, size: int = 28, channels: int = 1) -> torch.Tensor:
    """(N, C, size, size) uint8 images filled with LEVEL * class (per channel when classes is
    (N, C)), each with a little deterministic texture so features are not degenerate."""
    classes = torch.as_tensor(classes)
    if classes.dim() == 1:
        classes = classes[:, None].expand(-1, channels)
    n = classes.shape[0]
    base = (classes * LEVEL).to(torch.int16)[:, :, None, None].expand(n, classes.shape[1],
                                                                      size, size)
    gen = torch.Generator().manual_seed(n)
    noise = torch.randint(-2, 3, base.shape, generator=gen, dtype=torch.int16)
    return (base + noise).clamp(0, 255).to(torch.uint8)
