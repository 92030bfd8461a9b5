"""GAN objectives: one loss object per variant, registered by name."""

from ganforge.losses.base import LOSSES, GANLoss, LossOutput
from ganforge.losses import standard  # noqa: F401  (registers bce, minimax)

__all__ = ["LOSSES", "GANLoss", "LossOutput"]
