"""Family ``cgan-paper``: the MNIST networks of the cGAN paper (Mirza & Osindero 2014, seed 003).

Generator: z → 200 ReLU and one-hot y → 1000 ReLU, concatenated into a 1200 ReLU layer, then a
sigmoid output layer of one unit per pixel; dropout 0.5 on the hidden layers.
Discriminator: x → 240 maxout units (5 pieces) and y → 50 maxout units (5 pieces), concatenated
into 240 maxout units (4 pieces), then one logit; dropout 0.5 on the inputs of every hidden layer.

The paper trains on pixels in [0, 1] with a sigmoid output. ganforge normalises data to
[-1, 1], so G emits ``2·sigmoid(a) − 1`` (``== tanh(a / 2)``) and D maps its input back with
``(x + 1) / 2`` before the first layer: both nets then compute exactly the paper's functions of
the paper's [0, 1] pixels (the pre-activations, weights and learning dynamics are unchanged).
D's rescaling matters for the paper's SGD at lr 0.1: on [-1, 1] pixels every background pixel
is −1 instead of 0, so all 784 inputs feed the first layer's pre-activations and weight
gradients, and the run diverged within ~200 steps on the MNIST test split. The paper draws z from U(0, 1)^100; that is
the training loop's ``model.z_dist``, not part of the network. The layer sizes are the paper's and
do not read model.g_hidden / d_hidden; they are still constructor kwargs, stored in checkpoints.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.base import MODELS, Discriminator, DOutput, Generator, ModelSpec, conditioning
from ganforge.models.layers import FastDropout, Maxout, as_shape, flat_size, init_weights

PAPER_DROPOUT = 0.5


def _one_hot(y: Optional[torch.Tensor], n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    if y is None:
        raise ValueError("cgan-paper is conditional: pass y, the (N,) int64 class labels")
    return F.one_hot(y.long(), n_classes).to(dtype)


class PaperGenerator(Generator):
    """The cGAN paper's MNIST generator (sizes as in the paper by default).

    Args:
        z_dim: latent size Z (paper: 100).
        out_shape: (C, H, W) of one image (paper: 1×28×28 = 784 outputs).
        n_classes: classes K; y enters as a one-hot vector.
        z_hidden: units of the z branch (paper: 200).
        y_hidden: units of the y branch (paper: 1000).
        joint_hidden: units of the joint layer (paper: 1200).
        dropout: dropout probability on the hidden layers (paper: 0.5).
        init: weight-init scheme.
    """

    def __init__(
        self,
        z_dim: int,
        out_shape: Sequence[int],
        n_classes: int,
        z_hidden: int = 200,
        y_hidden: int = 1000,
        joint_hidden: int = 1200,
        dropout: float = PAPER_DROPOUT,
        init: str = "normal02",
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.n_classes = n_classes
        self.out_shape = as_shape(out_shape)
        self.z_branch = nn.Sequential(nn.Linear(z_dim, z_hidden), nn.ReLU(), FastDropout(dropout))
        self.y_branch = nn.Sequential(nn.Linear(n_classes, y_hidden), nn.ReLU(), FastDropout(dropout))
        self.joint = nn.Sequential(nn.Linear(z_hidden + y_hidden, joint_hidden), nn.ReLU(), FastDropout(dropout))
        self.out = nn.Linear(joint_hidden, flat_size(self.out_shape))
        init_weights(self, init)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: z: (N, Z); y: (N,) int64 labels. Returns: (N, C, H, W) in [-1, 1]."""
        h = torch.cat([self.z_branch(z), self.y_branch(_one_hot(y, self.n_classes, z.dtype))], dim=1)
        a = self.out(self.joint(h))
        # The paper's sigmoid output, rescaled from [0, 1] to ganforge's [-1, 1] pixel range.
        x = 2.0 * torch.sigmoid(a) - 1.0
        return x.view(z.shape[0], *self.out_shape)


class PaperDiscriminator(Discriminator):
    """The cGAN paper's maxout discriminator; returns a raw logit (the loss applies the sigmoid).

    Args:
        in_shape: (C, H, W) of one image (flattened).
        n_classes: classes K; y enters as a one-hot vector.
        x_units, x_pieces: maxout units / pieces of the image branch (paper: 240, 5).
        y_units, y_pieces: maxout units / pieces of the label branch (paper: 50, 5).
        joint_units, joint_pieces: maxout units / pieces of the joint layer (paper: 240, 4).
        dropout: dropout probability on the inputs of each hidden layer (paper: 0.5).
        init: weight-init scheme.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        n_classes: int,
        x_units: int = 240,
        x_pieces: int = 5,
        y_units: int = 50,
        y_pieces: int = 5,
        joint_units: int = 240,
        joint_pieces: int = 4,
        dropout: float = PAPER_DROPOUT,
        init: str = "normal02",
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.in_shape = as_shape(in_shape)
        self.x_branch = nn.Sequential(FastDropout(dropout), Maxout(flat_size(self.in_shape), x_units, x_pieces))
        self.y_branch = nn.Sequential(FastDropout(dropout), Maxout(n_classes, y_units, y_pieces))
        self.joint = nn.Sequential(FastDropout(dropout), Maxout(x_units + y_units, joint_units, joint_pieces))
        self.out = nn.Linear(joint_units, 1)
        init_weights(self, init)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> DOutput:
        """Args: x: (N, C, H, W) in [-1, 1] (read as (x + 1) / 2 in [0, 1]); y: (N,) int64 labels.

        Returns:
            DOutput with adv (N,) logits and features (N, joint_units).
        """
        # The paper's D sees pixels in [0, 1] (background 0): see the module docstring.
        hx = self.x_branch((x.reshape(x.shape[0], -1) + 1.0) * 0.5)
        hy = self.y_branch(_one_hot(y, self.n_classes, x.dtype))
        features = self.joint(torch.cat([hx, hy], dim=1))
        return DOutput(adv=self.out(features).squeeze(1), features=features)


def cgan_paper_args(model_cfg: Any, data_shape: tuple[int, ...], n_classes: int) -> dict[str, dict[str, Any]]:
    """What family ``cgan-paper`` computes: the paper's sizes, conditional only (``z_dim`` and
    ``init`` come from the model section as declared)."""
    if not model_cfg.conditional:
        raise ConfigError(
            "model cgan-paper is the conditional GAN of Mirza & Osindero; "
            "set model.conditional=true or use model.arch=mlp for an unconditional GAN"
        )
    if len(data_shape) != 3:
        raise ConfigError(
            f"model cgan-paper needs image data (C, H, W), got shape {tuple(data_shape)}; use model.arch=mlp"
        )
    n_classes, _ = conditioning(model_cfg, n_classes, "cgan-paper")
    shape = [int(s) for s in data_shape]
    return {
        "generator": {
            "out_shape": shape,
            "n_classes": n_classes,
            "z_hidden": 200,
            "y_hidden": 1000,
            "joint_hidden": 1200,
            "dropout": PAPER_DROPOUT,
        },
        "discriminator": {
            "in_shape": shape,
            "n_classes": n_classes,
            "x_units": 240,
            "x_pieces": 5,
            "y_units": 50,
            "y_pieces": 5,
            "joint_units": 240,
            "joint_pieces": 4,
            "dropout": PAPER_DROPOUT,
        },
    }


_DOC = (
    "cGAN paper nets (Mirza & Osindero 2014): G 200/1000/1200 ReLU, D maxout 240x5/50x5/240x4; "
    "conditional only"
)
MODELS.register("cgan-paper", doc=_DOC)(
    ModelSpec(
        generator=PaperGenerator,
        discriminator=PaperDiscriminator,
        args=cgan_paper_args,
        image=True,
        conv=False,
        doc=_DOC,
    )
)
