"""The interface every generator and discriminator implements, and the model registry.

Networks only: no optimizers, no losses, no ``.cuda()`` calls. A model family registers a
:class:`ModelSpec` that turns the typed :class:`~ganforge.config.ModelConfig` plus the dataset's
shape into plain constructor keyword arguments; those arguments (JSON) are stored in every
checkpoint so a run folder can rebuild its networks without the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.registry import Registry


@dataclass
class DOutput:
    """What a discriminator returns.

    Attributes:
        adv: (N,) raw real/fake score: a logit for BCE-style losses, the critic value for WGAN.
            Never passed through a sigmoid inside the network.
        cls: (N, K) class logits for auxiliary-classifier discriminators, else None.
        features: (N, F) penultimate features (diagnostics, feature matching), else None.
    """

    adv: torch.Tensor
    cls: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None


class Generator(nn.Module):
    """Base class: ``forward(z, y=None) -> images``.

    Attributes:
        z_dim: length of the latent vector.
        n_classes: classes (or condition columns K) it is conditioned on (0 = unconditional).
        out_shape: (C, H, W) of its output, or (D,) for vector data (toy-2d, arrays).
    """

    z_dim: int
    n_classes: int
    out_shape: tuple[int, ...]

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Map latents to samples.

        Args:
            z: (N, z_dim) latent vectors.
            y: (N,) int64 class indices or (N, K) float condition rows (0/1 attributes or
                continuous values) for conditional models, else None.

        Returns:
            (N, *out_shape) samples: images in [-1, 1]; vectors in the data's (standardised)
            units.
        """
        raise NotImplementedError


class Discriminator(nn.Module):
    """Base class: ``forward(x, y=None) -> DOutput``.

    Attributes:
        n_classes: classes it is conditioned on (0 = unconditional).
    """

    n_classes: int

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Score samples.

        Args:
            x: (N, *in_shape) samples (images in [-1, 1]).
            y: (N,) int64 class indices or (N, K) float condition rows for conditional
                models, else None.
        """
        raise NotImplementedError


@dataclass
class ModelSpec:
    """A registered model family.

    Attributes:
        generator: the Generator class.
        discriminator: the Discriminator class.
        kwargs: ``(model_cfg, data_shape, n_classes) -> {"generator": {...}, "discriminator": {...}}``,
            JSON-serialisable constructor arguments. Raises ConfigError for shapes/options the
            family cannot build (e.g. an image size its up-sampling stages cannot make).
        image: True for image models, False for vector models (toy-2d).
        conv: True for convolutional families (used to refuse impossible combinations).
        vectors: True when the family also accepts (D,) vector data (the MLP accepts both
            images and vectors, so it has ``image=True`` and ``vectors=True``).
        doc: one-line description shown by ``ganforge list``.
        label_modes: the ``model.d_label`` values its discriminator supports (how D sees y).
        spectral_norm: its discriminator accepts ``model.spectral_norm=true``.
        attributes: it can condition on (N, K) float condition vectors — 0/1 attributes or
            continuous values, both through a linear embedding; its kwargs function then takes
            ``multi_label=True``.
        minibatch_std: its discriminator accepts ``model.d_mbstd`` (a minibatch-std layer).
    """

    generator: type[Generator]
    discriminator: type[Discriminator]
    kwargs: Callable[..., dict[str, dict[str, Any]]]
    image: bool = True
    conv: bool = False
    doc: str = ""
    vectors: bool = False
    label_modes: tuple[str, ...] = ("input",)
    spectral_norm: bool = False
    attributes: bool = False
    minibatch_std: bool = False


MODELS: Registry[ModelSpec] = Registry("model")


def build_models(arch: str, model_args: dict[str, dict[str, Any]]) -> tuple[Generator, Discriminator]:
    """Instantiate G and D of family ``arch`` from stored constructor arguments."""
    spec = MODELS.get(arch)
    return spec.generator(**model_args["generator"]), spec.discriminator(**model_args["discriminator"])


def conditioning(model_cfg: Any, n_classes: int, arch: str) -> tuple[int, int]:
    """Resolve the class count and label-embedding size a family's kwargs function should use.

    The dataset's class count only reaches the networks when ``model.conditional`` is true, so an
    unconditional model built on a labelled dataset has ``n_classes == 0`` and stores no
    embedding weights.

    Args:
        model_cfg: the :class:`~ganforge.config.ModelConfig` (reads ``conditional``, ``embed_dim``).
        n_classes: number of classes of the dataset (0 for unlabelled data).
        arch: family name, for the error message.

    Returns:
        ``(n_classes, embed_dim)``: both 0 for unconditional models; ``embed_dim`` defaults to
        the class count, as in the PyTorch-GAN cGAN (seed 001).

    Raises:
        ConfigError: conditional model on a dataset without class labels.
    """
    if not model_cfg.conditional:
        return 0, 0
    if n_classes <= 0:
        raise ConfigError(
            f"model.conditional=true needs a labelled dataset (model {arch} got 0 classes); "
            "pick a dataset with class labels or set model.conditional=false"
        )
    return n_classes, model_cfg.embed_dim or n_classes
