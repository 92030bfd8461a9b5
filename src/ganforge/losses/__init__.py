"""GAN objectives: one loss object per variant, registered by name.

Adding a variant = one file here that registers a :class:`GANLoss` subclass (and one preset in
``configs/``); the training loop never changes.
"""

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
# Imported for their registration side effect, one module per variant.
from ganforge.losses import standard  # noqa: F401  (bce, minimax)
from ganforge.losses import lsgan, hinge, wgan, wgan_gp, dragan, acgan  # noqa: F401

__all__ = ["LOSSES", "GANLoss", "LossOutput"]
