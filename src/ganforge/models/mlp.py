"""Family ``mlp``: the fully connected GAN and cGAN.

Unconditional, it is the vanilla GAN of Goodfellow et al. (2014) with LeakyReLU hidden units;
conditional, it is the MLP cGAN of seed 001 (the PyTorch-GAN ``cgan.py`` layout): a learned label
embedding is concatenated to z in G and to the flattened sample in D. The label is a class index
or an (N, K) condition vector (0/1 attributes or continuous values) through a linear embedding.
The same nets serve images (C, H, W) and vectors (D,) such as the toy-2d sets or standardised
``arrays`` features, since both are just flattened.

G's output layer: ``tanh`` for images (pixels live in [-1, 1]); ``linear`` for vectors, whose
values are not bounded (toy points reach 1.41, standardised features several stds): a tanh
there keeps G from ever reaching the outer modes. Runs saved before this choice existed have no
``output`` entry in their stored kwargs and rebuild with tanh, as they were trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.base import (MODELS, WIDTHS, Discriminator, DOutput, Generator, ModelSpec,
                                  NetSettings, conditioning)
from ganforge.models.heads import LABEL_MODES, DHead, check_label_mode
from ganforge.models.layers import (LabelEmbedding, as_shape, flat_size, init_weights, linear_norm,
                                    minibatch_std, spectral_norm_all)
# Imported under another name because the constructors take a ``dropout`` probability argument.
from ganforge.models.layers import dropout as dropout_layer
from ganforge.settings import each, positive, setting


OUTPUTS = ("tanh", "linear")


class MLPGenerator(Generator):
    """G(z, y) = out(MLP([embed(y), z])) reshaped to ``out_shape``; out = tanh or identity.

    Each hidden layer is Linear → norm → LeakyReLU(0.2) → dropout. As in the PyTorch-GAN cGAN,
    the first hidden layer has no BatchNorm: normalising right after the raw input would wash
    out the label embedding's scale.

    Args:
        z_dim: latent size Z.
        out_shape: (C, H, W) or (D,) of one sample.
        hidden: widths of the hidden layers, e.g. [128, 256, 512, 1024].
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E (used when n_classes > 0).
        norm: ``"batch"`` or ``"none"`` for hidden layers 2..L.
        dropout: dropout probability after each hidden layer.
        init: weight-init scheme (see :func:`~ganforge.models.layers.init_weights`).
        multi_label: y is an (N, K) float condition vector (0/1 or continuous) instead of (N,)
            class indices.
        output: ``"tanh"`` (samples in [-1, 1], images) or ``"linear"`` (unbounded vectors).
    """

    def __init__(
        self,
        z_dim: int,
        out_shape: Sequence[int],
        hidden: Sequence[int] = (128, 256, 512, 1024),
        n_classes: int = 0,
        embed_dim: int = 0,
        norm: str = "batch",
        dropout: float = 0.0,
        init: str = "normal02",
        multi_label: bool = False,
        output: str = "tanh",
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ConfigError(f"mlp generator output '{output}' is unknown; use one of: "
                              f"{', '.join(OUTPUTS)}")
        self.output = output
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out_shape = as_shape(out_shape)
        self.embed = LabelEmbedding(n_classes, embed_dim, multi_label) if n_classes else None
        width = z_dim + (embed_dim if n_classes else 0)
        layers: list[nn.Module] = []
        for i, h in enumerate(hidden):
            layers += [
                nn.Linear(width, h),
                linear_norm(norm if i > 0 else "none", h),
                nn.LeakyReLU(0.2),
                dropout_layer(dropout),
            ]
            width = h
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, flat_size(self.out_shape))
        init_weights(self, init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: z: (N, Z); y: (N,) int64 labels or (N, K) condition rows if conditional.

        Returns:
            (N, *out_shape) samples: in [-1, 1] with the tanh output, unbounded with linear.
        """
        h = torch.cat([self.embed(y), z], dim=1) if self.embed is not None else z
        x = self.out(self.body(h))
        if self.output == "tanh":
            x = torch.tanh(x)
        return x.view(z.shape[0], *self.out_shape)


class MLPDiscriminator(Discriminator):
    """D(x, y) = head(MLP([flatten(x), embed(y)])) → raw logit (plus class logits for ACGAN).

    Each hidden layer is Linear → norm → dropout → LeakyReLU(0.2) (the order of seed 001). The
    first hidden layer has neither norm nor dropout, as in seed 001's discriminator and in the
    DCGAN rule of no normalisation on D's input layer.

    Args:
        in_shape: (C, H, W) or (D,) of one sample.
        hidden: widths of the hidden layers, e.g. [512, 512, 512].
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E (used when n_classes > 0).
        norm: ``"batch"``, ``"layer"`` or ``"none"`` for hidden layers 2..L.
        dropout: dropout probability in hidden layers 2..L (seed 001: 0.4).
        init: weight-init scheme.
        label_mode: how a conditional D uses y: ``input`` (joined to x), ``projection`` or
            ``classifier`` (see :mod:`ganforge.models.heads`).
        spectral_norm: spectrally normalise every weight (SNGAN).
        multi_label: y is an (N, K) float condition vector (0/1 or continuous) instead of (N,)
            class indices.
        mbstd: group size of a minibatch-std feature of the last hidden layer's input (0 = none;
            see :class:`~ganforge.models.layers.MinibatchStd`); needs a hidden layer.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden: Sequence[int] = (512, 512, 512),
        n_classes: int = 0,
        embed_dim: int = 0,
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "normal02",
        label_mode: str = "input",
        spectral_norm: bool = False,
        multi_label: bool = False,
        mbstd: int = 0,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.in_shape = as_shape(in_shape)
        joined = n_classes > 0 and label_mode == "input"  # DHead refuses an unknown mode
        width = flat_size(self.in_shape) + (embed_dim if joined else 0)
        if mbstd and not hidden:
            raise ConfigError("model.d_mbstd needs a hidden D layer (model.d_hidden, e.g. [512]); "
                              "or set model.d_mbstd=0")
        # The head is built first: module order decides how the seeded init draws its numbers.
        self.head = DHead(hidden[-1] if hidden else width, n_classes, label_mode, multi_label)
        self.embed = LabelEmbedding(n_classes, embed_dim, multi_label) if joined else None
        layers: list[nn.Module] = []
        for i, h in enumerate(hidden):
            # The minibatch-std feature enters the last hidden layer, so that a non-linear layer
            # can use it (ProGAN puts it before its last block).
            linear = nn.Linear(width, h)
            layers += [
                minibatch_std(linear, h, mbstd) if i == len(hidden) - 1 else linear,
                linear_norm(norm if i > 0 else "none", h),
                dropout_layer(dropout if i > 0 else 0.0),
                nn.LeakyReLU(0.2),
            ]
            width = h
        self.body = nn.Sequential(*layers)
        init_weights(self, init)
        if spectral_norm:
            spectral_norm_all(self)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: x: (N, *in_shape) images in [-1, 1] or vectors; y: (N,) or (N, K) labels.

        Returns:
            DOutput with adv (N,) logits, cls (N, K) in classifier mode, features (N, hidden[-1]).
        """
        h = x.reshape(x.shape[0], -1)
        if self.embed is not None:
            h = torch.cat([h, self.embed(y)], dim=1)
        return self.head(self.body(h), y)


@dataclass
class MLPSettings(NetSettings):
    """``mlp``'s own settings: the hidden widths of G and D."""

    g_hidden: list[int] = setting([128, 256, 512, 1024], "MLP widths of G",
                                  check=each(positive()), message=WIDTHS, to="generator.hidden")
    d_hidden: list[int] = setting([512, 512, 512], "MLP widths of D", check=each(positive()),
                                  message=WIDTHS, to="discriminator.hidden")


def mlp_args(model_cfg: Any, data_shape: tuple[int, ...], n_classes: int,
             multi_label: bool = False) -> dict[str, dict[str, Any]]:
    """What family ``mlp`` computes from the data (its settings go where they declare).

    ``multi_label`` says y is an (N, K) condition vector (0/1 or continuous), K = n_classes.
    """
    n_classes, embed_dim = conditioning(model_cfg, n_classes, "mlp")
    check_label_mode(model_cfg.d_label, "mlp")
    shape = [int(s) for s in data_shape]
    labels = {"n_classes": n_classes, "embed_dim": embed_dim, "multi_label": multi_label}
    return {
        "generator": {"out_shape": shape, **labels,
                      "output": "linear" if len(shape) == 1 else "tanh"},
        "discriminator": {"in_shape": shape, **labels, "label_mode": model_cfg.d_label},
    }


_DOC = (
    "fully connected GAN (Goodfellow 2014) / MLP cGAN (seed 001); images or vectors; "
    "widths model.g_hidden / model.d_hidden"
)
MODELS.register("mlp", doc=_DOC)(
    ModelSpec(
        generator=MLPGenerator,
        discriminator=MLPDiscriminator,
        args=mlp_args,
        settings=MLPSettings,
        image=True,
        conv=False,
        vectors=True,
        doc=_DOC,
        label_modes=LABEL_MODES,
        spectral_norm=True,
        attributes=True,
        minibatch_std=True,
    )
)
