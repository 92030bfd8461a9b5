"""Family ``dcgan``: DCGAN (Radford et al. 2015) and cDCGAN, one implementation for every size.

The image side must be ``base * 2**k`` with base 7 or 4 and k >= 1 (28 = 7·4, 32 = 4·8,
64 = 4·16, also 14, 16, 56, 128, ...). G starts from a ``base × base`` map and doubles it k times
with stride-2 transposed convs; D halves it k times with stride-2 convs. At 28×28 with
``g_width=64`` the generator has the layout of seed 002's PyTorch net (128·7·7 → 128 → 64 → C).

Conditioning (cDCGAN): G concatenates a learned label embedding to z. D receives the label as
``embed_dim`` extra input channels — the embedding vector broadcast over H×W and concatenated
to the image — so the very first conv already sees the label, as in the conditional DCGAN
formulation of Mirza & Osindero applied to conv nets.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.base import MODELS, Discriminator, DOutput, Generator, ModelSpec, conditioning
from ganforge.models.layers import LabelEmbedding, as_shape, conv_norm, init_weights
from ganforge.models.layers import dropout as dropout_layer

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
    c, h, w = shape
    if h != w:
        raise ConfigError(f"model {arch} needs square images, got {h}x{w}; set data.image_size")
    return c, h, w


class DCGANGenerator(Generator):
    """Linear → (base×base map) → k × [ConvT(4, 2, 1) → BN → ReLU] → Conv(3, 1, 1) → Tanh.

    Channels: the first map has ``width * 2**(k-1)`` channels; each stage after the first
    halves them, ending at ``width`` before the output conv.

    Args:
        z_dim: latent size Z.
        out_shape: (C, H, W) with H == W a valid size (see :func:`stages_for`).
        width: channels of the last feature map (model.g_width).
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E, concatenated to z.
        norm: ``"batch"`` or ``"none"``.
        dropout: dropout probability after each up-sampling stage (0 = off).
        init: weight-init scheme.
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
    ) -> None:
        super().__init__()
        channels, size, _ = _image_shape(out_shape, "dcgan")
        base, k = stages_for(size)
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out_shape = (channels, size, size)
        self.embed = LabelEmbedding(n_classes, embed_dim) if n_classes else None
        self.base = base
        self.c0 = width * 2 ** (k - 1)
        # A bias before BatchNorm is cancelled by the mean subtraction, so drop it there.
        bias = norm != "batch"
        self.fc = nn.Linear(z_dim + (embed_dim if n_classes else 0), self.c0 * base * base, bias=bias)
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
        """Args: z: (N, Z); y: (N,) int64 labels if conditional. Returns: (N, C, H, W) in [-1, 1]."""
        h = torch.cat([z, self.embed(y)], dim=1) if self.embed is not None else z
        h = self.fc(h).view(z.shape[0], self.c0, self.base, self.base)
        h = self.stages(self.fc_act(h))
        return torch.tanh(self.to_image(h))


class DCGANDiscriminator(Discriminator):
    """k × [Conv(4, 2, 1) → norm → LeakyReLU(0.2) → dropout] → flatten → Linear → logit.

    Channels start at ``width`` and double each stage, ending at ``width * 2**(k-1)`` on a
    base×base map. The first conv has no norm (DCGAN rule: normalising the input layer makes
    training unstable). With ``norm="layer"`` it is the WGAN-GP critic: LayerNorm over (C, H, W).

    Args:
        in_shape: (C, H, W) of the images.
        width: channels of the first feature map (model.d_width).
        n_classes: classes K to condition on (0 = unconditional).
        embed_dim: label embedding size E, fed as E extra input channels.
        norm: ``"batch"``, ``"layer"`` or ``"none"`` after every conv but the first.
        dropout: dropout probability after each stage (seed 002 uses 0.25).
        init: weight-init scheme.
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
    ) -> None:
        super().__init__()
        channels, size, _ = _image_shape(in_shape, "dcgan")
        base, k = stages_for(size)
        self.n_classes = n_classes
        self.in_shape = (channels, size, size)
        self.embed = LabelEmbedding(n_classes, embed_dim) if n_classes else None
        stages: list[nn.Module] = []
        c_in, side = channels + (embed_dim if n_classes else 0), size
        for i in range(k):
            c_out, side = width * 2**i, side // 2
            kind = norm if i > 0 else "none"
            stages += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=kind == "none"),
                conv_norm(kind, c_out, side),
                nn.LeakyReLU(0.2),
                dropout_layer(dropout),
            ]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.n_features = c_in * base * base
        self.out = nn.Linear(self.n_features, 1)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: x: (N, C, H, W) in [-1, 1]; y: (N,) labels if conditional.

        Returns:
            DOutput with adv (N,) logits and features (N, width·2^(k-1)·base²).
        """
        if self.embed is not None:
            n, _, h, w = x.shape
            maps = self.embed(y)[:, :, None, None].expand(n, -1, h, w)
            x = torch.cat([x, maps], dim=1)
        features = self.stages(x).flatten(1)
        return DOutput(adv=self.out(features).squeeze(1), features=features)


def dcgan_kwargs(model_cfg: Any, data_shape: tuple[int, ...], n_classes: int) -> dict[str, dict[str, Any]]:
    """Constructor kwargs of family ``dcgan``; checks the image size before anything is built."""
    channels, size, _ = _image_shape(data_shape, "dcgan")
    stages_for(size)
    n_classes, embed_dim = conditioning(model_cfg, n_classes, "dcgan")
    shape = [channels, size, size]
    return {
        "generator": {
            "z_dim": model_cfg.z_dim,
            "out_shape": shape,
            "width": model_cfg.g_width,
            "n_classes": n_classes,
            "embed_dim": embed_dim,
            "norm": model_cfg.g_norm,
            "dropout": model_cfg.g_dropout,
            "init": model_cfg.init,
        },
        "discriminator": {
            "in_shape": shape,
            "width": model_cfg.d_width,
            "n_classes": n_classes,
            "embed_dim": embed_dim,
            "norm": model_cfg.d_norm,
            "dropout": model_cfg.d_dropout,
            "init": model_cfg.init,
        },
    }


_DOC = (
    "DCGAN / cDCGAN (Radford 2015), any 7*2^k or 4*2^k size (28, 32, 64); "
    "d_norm=layer gives the WGAN-GP critic"
)
MODELS.register("dcgan", doc=_DOC)(
    ModelSpec(
        generator=DCGANGenerator,
        discriminator=DCGANDiscriminator,
        kwargs=dcgan_kwargs,
        image=True,
        conv=True,
        doc=_DOC,
    )
)
