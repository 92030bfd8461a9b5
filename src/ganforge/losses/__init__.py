"""GAN objectives: one loss object per variant, registered by name, plus convergence aids.

Adding a variant = one file here that registers a :class:`GANLoss` subclass supplying its
formulas (and one preset in ``configs/``); the training loop never changes. Convergence aids
(R1/R2, DiffAugment/ADA, LeCam, instance noise) live in :mod:`ganforge.losses.aids` and apply
to every variant through :class:`GANLoss`'s D- and G-step skeletons.
"""

from ganforge.losses.aids import AIDS
from ganforge.losses.base import LOSSES, GANLoss, LossOutput
# Imported for their registration side effect, one module per variant.
from ganforge.losses import standard  # noqa: F401  (bce, minimax)
from ganforge.losses import lsgan, hinge, wgan, wgan_gp, dragan, acgan, rpgan  # noqa: F401

__all__ = ["AIDS", "LOSSES", "GANLoss", "LossOutput"]
