"""The interface every generator and discriminator implements, and the model registry.

Networks only: no optimizers, no losses, no ``.cuda()`` calls. A model family registers a
:class:`ModelSpec`: its nets, the settings it takes (``model.*``, declared with
``ganforge.settings.setting``; a setting declared with ``to="discriminator.hidden"`` goes to
that constructor argument as it is) and a function for the arguments it computes from the
dataset's shape and classes. Together they give plain constructor keyword arguments
(:meth:`ModelSpec.kwargs`); those (JSON) are stored in every checkpoint so a run folder can
rebuild its networks without the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.registry import MODELS
from ganforge.settings import Rule, between, one_of, optional, positive, routed, setting


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
class NetSettings:
    """Settings of the families built from ganforge's own layers (``mlp``, ``dcgan``): norms,
    dropout, spectral norm, minibatch-std and the label embedding."""

    g_norm: str = setting("batch", "'batch' or 'none'", check=one_of("batch", "none"),
                          to="generator.norm")
    d_norm: str = setting("none", "'batch', 'layer' (the WGAN-GP critic) or 'none'",
                          check=one_of("batch", "layer", "none"), to="discriminator.norm")
    d_dropout: float = setting(0.0, "dropout after each hidden D layer",
                               check=between(0, 1, high_open=True),
                               message="{key} must be in [0, 1)", to="discriminator.dropout")
    g_dropout: float = setting(0.0, "dropout after each hidden G layer",
                               check=between(0, 1, high_open=True),
                               message="{key} must be in [0, 1)", to="generator.dropout")
    embed_dim: Optional[int] = setting(None, "label embedding size; none -> number of classes "
                                       "(seed 001)", check=optional(positive()),
                                       message="{key} must be positive or none")
    spectral_norm: bool = setting(False, "spectral normalisation of every D weight (SNGAN)",
                                  to="discriminator.spectral_norm")
    d_mbstd: int = setting(0, "minibatch-std group size in D (ProGAN; e.g. 4); 0 = off",
                           check=Rule(lambda v: v == 0 or v >= 2, "0 (off) or >= 2"),
                           message="{key}={value} must be 0 (off) or a group size >= 2, e.g. 4",
                           to="discriminator.mbstd")


WIDTHS = "model widths must be positive integers"


@dataclass
class ModelSpec:
    """A registered model family.

    Attributes:
        generator: the Generator class.
        discriminator: the Discriminator class.
        args: ``(model_cfg, data_shape, n_classes) -> {"generator": {...}, "discriminator":
            {...}}``: the constructor arguments the family computes (shapes, classes, fixed
            sizes); :meth:`kwargs` adds the settings declared with ``to=``. Raises ConfigError
            for shapes/options the family cannot build (e.g. an image size its up-sampling
            stages cannot make).
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
        settings: the family's own settings (``model.*`` beside the common ones), or None.
    """

    generator: type[Generator]
    discriminator: type[Discriminator]
    args: Callable[..., dict[str, dict[str, Any]]]
    image: bool = True
    conv: bool = False
    doc: str = ""
    vectors: bool = False
    label_modes: tuple[str, ...] = ("input",)
    spectral_norm: bool = False
    attributes: bool = False
    minibatch_std: bool = False
    settings: Optional[type] = None

    @property
    def Settings(self) -> Optional[type]:  # noqa: N802  (what the registry reads)
        return self.settings

    def kwargs(self, model_cfg: Any, data_shape: tuple[int, ...], n_classes: int,
               **extra: Any) -> dict[str, dict[str, Any]]:
        """JSON-serialisable constructor arguments of G and D: the settings declared with
        ``to=`` (the model section's), then what the family computes (:attr:`args`)."""
        computed = self.args(model_cfg, data_shape, n_classes, **extra)
        declared = routed(model_cfg)
        return {net: {**declared.get(net, {}), **computed[net]}
                for net in ("generator", "discriminator")}

    def check_config(self, cfg: Any, data: Any = None) -> None:
        """The family's word on a whole config (the registry's ``check``): how its D may see
        the label, and, once the data is loaded, whether it can take that data."""
        m, arch = cfg.model, cfg.model.arch
        if m.d_label not in self.label_modes:
            raise ConfigError(f"model '{arch}' supports model.d_label="
                              f"{'|'.join(self.label_modes)}, not '{m.d_label}'; use "
                              "model.arch=dcgan or mlp for it")
        if data is None:
            return
        if not data.is_image and self.conv:
            raise ConfigError(f"model '{arch}' is convolutional and cannot train on vector "
                              f"data '{cfg.data.name}'; use model.arch=mlp")
        multi_label = data.y is not None and data.y.dim() == 2
        n_labels = int(data.y.shape[1]) if multi_label else data.n_classes
        if m.conditional and n_labels == 0:
            raise ConfigError(f"model.conditional=true but dataset '{cfg.data.name}' has no "
                              "class labels; set model.conditional=false or use a labelled "
                              "dataset")
        if m.conditional and multi_label and not self.attributes:
            raise ConfigError(f"model '{arch}' conditions only on class indices, but dataset "
                              f"'{cfg.data.name}' has attribute vectors; use model.arch=dcgan "
                              "or mlp")


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
    # Families without an embedding setting (cgan-paper) size their own.
    return n_classes, getattr(model_cfg, "embed_dim", None) or n_classes
