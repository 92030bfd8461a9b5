"""How a discriminator uses the label: the output heads shared by the ``mlp`` and ``dcgan`` families.

A conditional D can see the label in three ways (``model.d_label``):

``input``
    The cGAN way (Mirza & Osindero 2014, seed 001): a label embedding is joined to D's input, and
    the head is a plain linear real/fake score. The family does the joining; this head ignores y.
``projection``
    The projection discriminator (Miyato & Koyama 2018): D's trunk sees only the image, and the
    score is ``w·φ(x) + b + ⟨embed(y), φ(x)⟩`` — the label enters as an inner product with the
    penultimate features φ(x). Works for class indices and for (N, K) condition vectors (0/1
    attributes or continuous values, embedded linearly).
``classifier``
    The auxiliary classifier of ACGAN (Odena et al. 2017, seed 000): the trunk sees only the
    image and has two heads, real/fake and a K-way class score. ``DOutput.cls`` carries the class
    logits; the ``acgan`` loss trains them. Classes and 0/1 attributes only: a continuous condition
    has no class to predict (``ganforge.data.vectors.check_condition_use`` refuses it).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.base import DOutput
from ganforge.models.layers import LabelEmbedding

LABEL_MODES = ("input", "projection", "classifier")


def check_label_mode(mode: str, arch: str) -> None:
    """Raise ConfigError for an unknown ``model.d_label`` value."""
    if mode not in LABEL_MODES:
        raise ConfigError(f"model.d_label='{mode}' is not supported by model {arch}; "
                          f"use one of: {', '.join(LABEL_MODES)}")


class DHead(nn.Module):
    """Maps D's penultimate features to a :class:`DOutput`.

    Args:
        n_features: F, the size of the flattened trunk features.
        n_classes: classes (or attributes) K; 0 for an unconditional D.
        mode: one of :data:`LABEL_MODES` (ignored when ``n_classes == 0``).
        multi_label: labels are (N, K) condition vectors (0/1 or continuous) instead of (N,)
            class indices.
    """

    def __init__(self, n_features: int, n_classes: int = 0, mode: str = "input",
                 multi_label: bool = False) -> None:
        super().__init__()
        check_label_mode(mode, "discriminator")
        self.mode = mode if n_classes else "input"
        self.out = nn.Linear(n_features, 1)
        # Only the head a mode needs is built, so checkpoints carry no unused weights.
        self.project = (LabelEmbedding(n_classes, n_features, multi_label)
                        if self.mode == "projection" else None)
        self.classify = nn.Linear(n_features, n_classes) if self.mode == "classifier" else None

    @property
    def takes_label_input(self) -> bool:
        """True when the trunk must see the label (``input`` mode of a conditional D)."""
        return self.mode == "input"

    def forward(self, features: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: features: (N, F); y: (N,) or (N, K) labels (used by ``projection``).

        Returns:
            DOutput with adv (N,), cls (N, K) logits in ``classifier`` mode, and the features.
        """
        adv = self.out(features).squeeze(1)
        cls = None
        if self.project is not None:
            adv = adv + (self.project(y) * features).sum(dim=1)
        elif self.classify is not None:
            cls = self.classify(features)
        return DOutput(adv=adv, cls=cls, features=features)
