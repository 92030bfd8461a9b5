"""Scoring batches with D: one forward over real and fake together where that is exact.

A D step scores a real and a fake batch. Without BatchNorm every sample's score depends only on
that sample, so concatenating the two batches into one forward gives the same numbers as two
forwards at half the kernel launches and with larger, better-filled matrix products. BatchNorm
normalises by the statistics of the batch it sees, so a fused forward would mix real and fake
statistics and change the game D plays (the DCGAN paper keeps them apart): such a D gets one
forward per batch. So does a D with any other layer that couples the samples of its batch, such as
the minibatch-std layer (a module whose ``couples_samples`` attribute is true).

D reaches these functions as a :class:`~ganforge.losses.interface.DiscriminatorView` (a plain
discriminator is adapted): whether to fuse is decided by the layers of the view's
:attr:`~ganforge.losses.interface.DiscriminatorView.module`.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Optional, Sequence

import torch
from torch import nn

from ganforge.losses.interface import AnyDiscriminator, as_view
from ganforge.models.base import DOutput

# Whether a D couples its samples, looked up once per module (walking its modules every step
# costs Python time that the MLP presets' steps notice).
_COUPLED: "weakref.WeakKeyDictionary[nn.Module, bool]" = weakref.WeakKeyDictionary()


def has_batch_norm(module: nn.Module) -> bool:
    """True when any ``nn.modules.batchnorm._BatchNorm`` is among the module's modules."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def couples_samples(discriminator: object) -> bool:
    """True when D's score of one sample can depend on the other samples of its batch.

    That is D with BatchNorm or with a module that says so through a true ``couples_samples``
    attribute (:class:`~ganforge.models.layers.MinibatchStd`). Anything that is not an
    ``nn.Module`` (a bare function standing in for D) counts as coupled: its batches are then
    scored apart, which is always correct. Looked up once per module.
    """
    if not isinstance(discriminator, nn.Module):
        return True
    found = _COUPLED.get(discriminator)
    if found is None:
        found = any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                    or getattr(m, "couples_samples", False) for m in discriminator.modules())
        _COUPLED[discriminator] = found
    return found


def split_output(out: DOutput, sizes: Sequence[int]) -> list[DOutput]:
    """Cut a DOutput of a concatenated batch back into one DOutput per part.

    Args:
        out: D's output on ``sum(sizes)`` samples (``adv`` (N,) or (N, 1), optional ``cls`` and
            ``features`` (N, ·)).
        sizes: the parts' batch sizes, in concatenation order.

    Returns:
        One DOutput per part; fields that were None stay None.
    """
    fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    pieces = {name: (torch.split(value, list(sizes)) if isinstance(value, torch.Tensor)
                     else [value] * len(sizes)) for name, value in fields.items()}
    return [dataclasses.replace(out, **{name: pieces[name][i] for name in fields})
            for i in range(len(sizes))]


def score(
    discriminator: AnyDiscriminator,
    xs: Sequence[torch.Tensor],
    ys: Sequence[Optional[torch.Tensor]],
) -> list[DOutput]:
    """D's outputs for several batches: one fused forward unless D couples its samples.

    Args:
        discriminator: D as a view, or a plain ``discriminator(x, y) -> DOutput``.
        xs: batches (N_i, *shape) of the same sample shape (e.g. D's real and fake inputs).
        ys: their labels, (N_i,) or (N_i, K), or all None for an unconditional D.

    Returns:
        One DOutput per batch, in order; the same numbers whether fused or not (up to float
        rounding of the larger matrix products).
    """
    view = as_view(discriminator)
    labelled = [y is not None for y in ys]
    fuse = len(xs) > 1 and not couples_samples(view.module) and len(set(labelled)) == 1
    if not fuse:
        return [view(x, y) for x, y in zip(xs, ys)]
    x = torch.cat(list(xs))
    y = torch.cat(list(ys)) if labelled[0] else None  # type: ignore[arg-type]
    return split_output(view(x, y), [part.shape[0] for part in xs])

