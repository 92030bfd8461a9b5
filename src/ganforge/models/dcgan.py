"""Family ``dcgan``: DCGAN (Radford et al. 2015) and cDCGAN, one implementation for every size.

The shorter image side must be ``base * 2**k`` with base 7 or 4 and k >= 1 (28 = 7·4, 32 = 4·8,
64 = 4·16, also 14, 16, 56, 128, ...) and the longer one a multiple of ``2**k`` (so 28×56 two-digit
numbers work too). G starts from an ``(H/2^k) × (W/2^k)`` map and doubles it k times with
stride-2 transposed convs; D halves it k times with stride-2 convs. At 28×28 with
``g_width=64`` the generator has the layout of seed 002's PyTorch net (128·7·7 → 128 → 64 → C).

Conditioning (cDCGAN): G concatenates a learned label embedding to z. D receives the label as
``embed_dim`` extra input channels — the embedding vector broadcast over H×W and concatenated
to the image — so the very first conv already sees the label, as in the conditional DCGAN
formulation of Mirza & Osindero applied to conv nets. The label is a class index or an (N, K)
condition vector (0/1 attributes, or continuous values such as image features) through a
linear embedding. Vector data (D,) is refused: use ``mlp``.
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
from ganforge.models.layers import (LabelEmbedding, as_shape, conv_norm, init_weights, linear_norm,
                                    minibatch_std, spectral_norm_all)
from ganforge.models.layers import dropout as dropout_layer
from ganforge.settings import at_least, positive, setting

BASES = (7, 4)  # smallest feature-map side; 7 serves MNIST-like 28×28, 4 the power-of-two sizes


def stages_for(size: int) -> tuple[int, int]:
    """Split an image side into ``(base, k)`` with ``size == base * 2**k``, base in 7 or 4, k >= 1.

    Raises:
        ConfigError: sizes no number of stride-2 stages can make, listing the common ones.
    """
    for base in BASES:
        k, side = 0, size
        while side > base and side % 2 == 0:
            side //= 2
            k += 1
        if side == base and k >= 1:
            return base, k
    raise ConfigError(
        f"model dcgan cannot make {size}x{size} images; use 28, 32 or 64 "
        "(any 7*2^k or 4*2^k with k >= 1), e.g. data.image_size=32"
    )


def _image_shape(shape: Sequence[int], arch: str) -> tuple[int, int, int]:
    shape = as_shape(shape)
    if len(shape) != 3:
        raise ConfigError(f"model {arch} needs image data (C, H, W), got shape {shape}; use model.arch=mlp")
    return shape  # type: ignore[return-value]


def grid_for(h: int, w: int) -> tuple[int, int, int]:
    """``(H0, W0, k)``: the first feature map of G (last of D) and the number of stride-2 stages.

    Raises:
        ConfigError: shapes no number of stride-2 stages can make.
    """
    _, k = stages_for(min(h, w))
    if max(h, w) % 2**k:
        raise ConfigError(f"model dcgan cannot make {h}x{w} images: the longer side must be a "
                          f"multiple of {2**k}; e.g. 28x56 or a square size like 28, 32 or 64")
    return h >> k, w >> k, k


class DCGANGenerator(Generator):
    """Linear → (H0×W0 map) → k × [ConvT(4, 2, 1) → BN → ReLU] → Conv(3, 1, 1) → Tanh.

    Channels: the first map has ``width * 2**(k-1)`` channels; each stage after the first
    halves them, ending at ``width`` before the output conv.

    Args:
        z_dim: latent size Z.
        out_shape: (C, H, W) with a shape :func:`grid_for` accepts.
        width: channels of the last feature map (model.g_width).
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E, concatenated to z.
        norm: ``"batch"`` or ``"none"``.
        dropout: dropout probability after each up-sampling stage (0 = off).
        init: weight-init scheme.
        multi_label: y is an (N, K) float condition vector (0/1 or continuous) instead of (N,)
            class indices.
    """

    def __init__(
        self,
        z_dim: int,
        out_shape: Sequence[int],
        width: int = 64,
        n_classes: int = 0,
        embed_dim: int = 0,
        norm: str = "batch",
        dropout: float = 0.0,
        init: str = "normal02",
        multi_label: bool = False,
    ) -> None:
        super().__init__()
        channels, height, width_px = _image_shape(out_shape, "dcgan")
        h0, w0, k = grid_for(height, width_px)
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out_shape = (channels, height, width_px)
        self.embed = LabelEmbedding(n_classes, embed_dim, multi_label) if n_classes else None
        self.h0, self.w0 = h0, w0
        self.c0 = width * 2 ** (k - 1)
        # A bias before BatchNorm is cancelled by the mean subtraction, so drop it there.
        bias = norm != "batch"
        self.fc = nn.Linear(z_dim + (embed_dim if n_classes else 0), self.c0 * h0 * w0, bias=bias)
        self.fc_act = nn.Sequential(conv_norm(norm, self.c0), nn.ReLU())
        stages: list[nn.Module] = []
        c_in = self.c0
        for i in range(k):
            c_out = width * 2 ** (k - 1 - i)
            stages += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias),
                conv_norm(norm, c_out),
                nn.ReLU(),
                dropout_layer(dropout),
            ]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.to_image = nn.Conv2d(width, channels, 3, 1, 1)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: z: (N, Z); y: (N,) int64 labels or (N, K) condition rows if conditional.

        Returns:
            (N, C, H, W) images in [-1, 1].
        """
        h = torch.cat([z, self.embed(y)], dim=1) if self.embed is not None else z
        h = self.fc(h).view(z.shape[0], self.c0, self.h0, self.w0)
        h = self.stages(self.fc_act(h))
        return torch.tanh(self.to_image(h))


class DCGANDiscriminator(Discriminator):
    """k × [Conv(4, 2, 1) → norm → LeakyReLU(0.2) → dropout] → flatten → Linear → logit.

    Channels start at ``width`` and double each stage, ending at ``width * 2**(k-1)`` on a
    H0×W0 map. The first conv has no norm (DCGAN rule: normalising the input layer makes
    training unstable). With ``norm="layer"`` it is the WGAN-GP critic: LayerNorm over (C, H, W).

    Args:
        in_shape: (C, H, W) of the images.
        width: channels of the first feature map (model.d_width).
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E, fed as E extra input channels.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` after every conv but the first.
        dropout: dropout probability after each stage (seed 002 uses 0.25).
        init: weight-init scheme.
        label_mode: how a conditional D uses y: ``input`` (label maps joined to the image),
            ``projection`` or ``classifier`` (see :mod:`ganforge.models.heads`).
        spectral_norm: spectrally normalise every weight (SNGAN).
        multi_label: y is an (N, K) float condition vector (0/1 or continuous) instead of (N,)
            class indices.
        fc: width of a hidden linear layer before the heads (0 = none; seed 000: 1024).
        mbstd: group size of a minibatch-std channel of the last stage's input (0 = none; see
            :class:`~ganforge.models.layers.MinibatchStd`).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        width: int = 64,
        n_classes: int = 0,
        embed_dim: int = 0,
        norm: str = "none",
        dropout: float = 0.0,
        init: str = "normal02",
        label_mode: str = "input",
        spectral_norm: bool = False,
        multi_label: bool = False,
        fc: int = 0,
        mbstd: int = 0,
    ) -> None:
        super().__init__()
        channels, height, width_px = _image_shape(in_shape, "dcgan")
        h0, w0, k = grid_for(height, width_px)
        self.n_classes = n_classes
        self.in_shape = (channels, height, width_px)
        n_conv = width * 2 ** (k - 1) * h0 * w0
        # Optional hidden FC layer between the conv trunk and the heads (seed 000's ACGAN trunk
        # ends in Linear(128·7·7 → 1024) → BN → LeakyReLU before its two heads).
        self.fc = (nn.Sequential(nn.Linear(n_conv, fc, bias=norm != "batch"),
                                 linear_norm(norm, fc), nn.LeakyReLU(0.2))
                   if fc else nn.Identity())
        self.head = DHead(fc or n_conv, n_classes, label_mode, multi_label)
        joined = n_classes > 0 and self.head.takes_label_input
        self.embed = LabelEmbedding(n_classes, embed_dim, multi_label) if joined else None
        stages: list[nn.Module] = []
        c_in, side = channels + (embed_dim if joined else 0), (height, width_px)
        for i in range(k):
            c_out, side = width * 2**i, (side[0] // 2, side[1] // 2)
            kind = norm if i > 0 else "none"
            conv = nn.Conv2d(c_in, c_out, 4, 2, 1, bias=kind == "none")
            stages += [  # the minibatch-std channel enters the last stage (ProGAN's last block)
                minibatch_std(conv, c_out, mbstd) if i == k - 1 else conv,
                conv_norm(kind, c_out, side),
                nn.LeakyReLU(0.2),
                dropout_layer(dropout),
            ]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.n_features = c_in * h0 * w0
        init_weights(self, init)
        if spectral_norm:
            spectral_norm_all(self)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: x: (N, C, H, W) in [-1, 1]; y: (N,) or (N, K) labels if conditional.

        Returns:
            DOutput with adv (N,) logits, cls (N, K) in classifier mode and features
            (N, fc or width·2^(k-1)·H0·W0).
        """
        if self.embed is not None:
            n, _, h, w = x.shape
            maps = self.embed(y)[:, :, None, None].expand(n, -1, h, w)
            x = torch.cat([x, maps], dim=1)
        return self.head(self.fc(self.stages(x).flatten(1)), y)


@dataclass
class DCGANSettings(NetSettings):
    """``dcgan``'s own settings: feature-map widths and D's optional hidden FC layer."""

    g_width: int = setting(64, "channels of G's last feature map", check=positive(),
                           message=WIDTHS, to="generator.width")
    d_width: int = setting(64, "channels of D's first feature map", check=positive(),
                           message=WIDTHS, to="discriminator.width")
    d_fc: int = setting(0, "hidden FC width before D's heads (seed 000: 1024); 0 = none",
                        check=at_least(0), message="{key} must be >= 0 (0 = no hidden FC "
                        "layer in D)", to="discriminator.fc")


def dcgan_args(model_cfg: Any, data_shape: tuple[int, ...], n_classes: int,
               multi_label: bool = False) -> dict[str, dict[str, Any]]:
    """What family ``dcgan`` computes from the data; checks the image size before anything is
    built (its settings go where they declare)."""
    channels, height, width_px = _image_shape(data_shape, "dcgan")
    grid_for(height, width_px)
    n_classes, embed_dim = conditioning(model_cfg, n_classes, "dcgan")
    check_label_mode(model_cfg.d_label, "dcgan")
    shape = [channels, height, width_px]
    labels = {"n_classes": n_classes, "embed_dim": embed_dim, "multi_label": multi_label}
    return {"generator": {"out_shape": shape, **labels},
            "discriminator": {"in_shape": shape, **labels, "label_mode": model_cfg.d_label}}


_DOC = (
    "DCGAN / cDCGAN (Radford 2015), any 7*2^k or 4*2^k size (28, 32, 64); "
    "d_norm=layer gives the WGAN-GP critic"
)
MODELS.register("dcgan", doc=_DOC)(
    ModelSpec(
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        args=dcgan_args,
        settings=DCGANSettings,
        image=True,
        conv=True,
        doc=_DOC,
        label_modes=LABEL_MODES,
        spectral_norm=True,
        attributes=True,
        minibatch_std=True,
    )
)
