"""Convergence aids: regularisers and input transforms that every loss object applies.

An aid is written once and composes with every GAN variant and model family: the D-step
skeleton of :class:`~ganforge.losses.base.GANLoss` passes D's inputs through the aids'
:meth:`Aid.transform` (augmentation, instance noise), scores them, applies the variant's
formula and then adds each aid's :meth:`Aid.d_term` (R1/R2, LeCam; ADA's bookkeeping). Neither
the loop nor a variant names an aid: an aid is enabled by its own config keys, see
:meth:`Aid.enabled`.

Registered aids (``AIDS.names()``): ``augment`` (DiffAugment with fixed or adaptive p),
``instance_noise``, ``lecam``, ``r1r2``.
"""

from ganforge.losses.aids import adaptive, lecam, noise, zero_centred  # noqa: F401  (registration)
from ganforge.losses.aids.base import AIDS, Aid, DBatch, RankSum, Stats, build_aids, check_data

__all__ = ["AIDS", "Aid", "DBatch", "RankSum", "Stats", "build_aids", "check_data"]
