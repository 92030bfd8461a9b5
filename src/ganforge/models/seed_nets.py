"""Family ``dcgan-seed002``: the exact PyTorch DCGAN of seed 002 (MNIST, 28×28 grayscale).

Layer for layer the nets of the seed's PyTorch section, with the same submodule names
(``linear``, ``gen1.conv``, ``gen1.bn``, ..., ``disc4.conv``, ``out``) so a state dict saved by
the seed's code loads here. Two deliberate differences, both fixes:

* The seed builds ``BatchNorm2d(momentum=0.8)``, a literal copy of its Keras model's
  ``BatchNormalization(momentum=0.8)``. Keras keeps ``0.8·running + 0.2·batch`` while PyTorch
  keeps ``(1 − momentum)·running + momentum·batch``, so the Keras setting is PyTorch
  ``momentum=0.2``, which is what we use.
* The seed's D ends in a sigmoid; ganforge's losses take logits (BCE-with-logits is the
  numerically stable form of the same loss), so D returns the raw logit.

The widths, dropout (0.25) and kernel sizes are the seed's; model.g_width, d_width, g_hidden,
d_hidden, the norms and dropouts of the config do not apply. z_dim and init do.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.base import MODELS, Discriminator, DOutput, Generator, ModelSpec
from ganforge.models.layers import FastDropout, as_shape, init_weights

SEED002_SHAPE = (1, 28, 28)
KERAS_TO_TORCH_BN_MOMENTUM = 1.0 - 0.8  # the seed's Keras momentum 0.8, in PyTorch's convention


class _GenConv(nn.Module):
    """The seed's ``gen_conv``: ConvT → BN → ReLU, or (final) Conv → Tanh. Bias-free convs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, final: bool = False) -> None:
        super().__init__()
        if final:
            self.conv: nn.Module = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
            self.bn: nn.Module = nn.Identity()
            self.act: nn.Module = nn.Tanh()
        else:
            self.conv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding, bias=False)
            self.bn = nn.BatchNorm2d(c_out, momentum=KERAS_TO_TORCH_BN_MOMENTUM)
            self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class _DiscConv(nn.Module):
    """The seed's ``disc_conv``: bias-free Conv → Dropout(0.25) → LeakyReLU(0.2)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.drop = FastDropout(dropout)  # nn.Dropout, faster on the CPU
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(self.conv(x)))


class Seed002Generator(Generator):
    """Linear(z→128·7·7) ReLU → ConvT(128→128) BN ReLU → ConvT(128→64) BN ReLU → Conv(64→1) Tanh.

    Args:
        z_dim: latent size Z (seed: 100).
        out_shape: must be (1, 28, 28); stored so the checkpoint is self-describing.
        init: weight-init scheme (the seed uses Xavier).
    """

    def __init__(self, z_dim: int = 100, out_shape: Sequence[int] = SEED002_SHAPE, init: str = "xavier") -> None:
        super().__init__()
        _check_shape(out_shape)
        self.z_dim = z_dim
        self.n_classes = 0
        self.out_shape = SEED002_SHAPE
        self.linear = nn.Linear(z_dim, 128 * 7 * 7)
        self.act = nn.ReLU()
        self.gen1 = _GenConv(128, 128, 4, 2, 1)  # 7 → 14
        self.gen2 = _GenConv(128, 64, 4, 2, 1)  # 14 → 28
        self.gen3 = _GenConv(64, 1, 3, 1, 1, final=True)
        init_weights(self, init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: z: (N, Z); y: ignored (unconditional). Returns: (N, 1, 28, 28) in [-1, 1]."""
        h = self.act(self.linear(z)).view(z.shape[0], 128, 7, 7)
        return self.gen3(self.gen2(self.gen1(h)))


class Seed002Discriminator(Discriminator):
    """Conv(1→32,k4,s2) → Conv(32→64,k4,s2) → Conv(64→128,k3,s2) → Conv(128→256,k3,s1) → Linear.

    Spatial sizes 28 → 14 → 7 → 4 → 4; each conv is followed by Dropout(0.25) and LeakyReLU(0.2).

    Args:
        in_shape: must be (1, 28, 28).
        dropout: dropout probability of every block (seed: 0.25).
        init: weight-init scheme (the seed uses Xavier).
    """

    def __init__(self, in_shape: Sequence[int] = SEED002_SHAPE, dropout: float = 0.25, init: str = "xavier") -> None:
        super().__init__()
        _check_shape(in_shape)
        self.n_classes = 0
        self.in_shape = SEED002_SHAPE
        self.disc1 = _DiscConv(1, 32, 4, 2, 1, dropout)
        self.disc2 = _DiscConv(32, 64, 4, 2, 1, dropout)
        self.disc3 = _DiscConv(64, 128, 3, 2, 1, dropout)
        self.disc4 = _DiscConv(128, 256, 3, 1, 1, dropout)
        self.out = nn.Linear(256 * 4 * 4, 1)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: x: (N, 1, 28, 28) in [-1, 1]; y: ignored.

        Returns:
            DOutput with adv (N,) logits and features (N, 4096).
        """
        features = self.disc4(self.disc3(self.disc2(self.disc1(x)))).flatten(1)
        return DOutput(adv=self.out(features).squeeze(1), features=features)


def _check_shape(shape: Sequence[int]) -> None:
    if as_shape(shape) != SEED002_SHAPE:
        raise ConfigError(
            f"model dcgan-seed002 makes only 1x28x28 images, got {'x'.join(map(str, shape))}; "
            "set data.image_size=28 and data.channels=1, or use model.arch=dcgan"
        )


def seed002_args(model_cfg: Any, data_shape: tuple[int, ...], n_classes: int) -> dict[str, dict[str, Any]]:
    """What family ``dcgan-seed002`` computes: its fixed shapes (only ``z_dim`` and ``init``
    come from the config, as the model section declares them)."""
    if model_cfg.conditional:
        raise ConfigError(
            "model dcgan-seed002 is unconditional (seed 002's nets take no labels); "
            "set model.conditional=false or use model.arch=dcgan for a cDCGAN"
        )
    _check_shape(data_shape)
    shape = list(SEED002_SHAPE)
    return {
        "generator": {"out_shape": shape},
        "discriminator": {"in_shape": shape, "dropout": 0.25},
    }


_DOC = "seed 002's exact PyTorch DCGAN for 28x28 grayscale (Linear+2 ConvT / 4 convs, dropout 0.25)"
MODELS.register("dcgan-seed002", doc=_DOC)(
    ModelSpec(
        generator=Seed002Generator,
        discriminator=Seed002Discriminator,
        args=seed002_args,
        image=True,
        conv=True,
        doc=_DOC,
    )
)
