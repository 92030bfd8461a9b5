"""Gradient penalties: WGAN-GP's and DRAGAN's, the input gradients R1/R2 need, a BatchNorm check.

WGAN-GP and DRAGAN penalise ``(‖∇ₓ D(x̂)‖₂ − 1)²`` at points x̂ near the data. They differ in
where x̂ lies: WGAN-GP (Gulrajani et al. 2017) uses random points on lines between real and fake
samples; DRAGAN (Kodali et al. 2017) uses random points between real samples and noisy copies of
them. The zero-centred penalties R1/R2 (:mod:`ganforge.losses.aids.zero_centred`) take
``∇ₓ D(x)`` at the real and fake inputs themselves (:func:`input_gradients`).

Every penalty that runs D again for its own double backward runs the view's
:attr:`~ganforge.losses.interface.DiscriminatorView.eager` twin (a compiled D has no double
backward) with autocast off.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from ganforge.errors import ConfigError
from ganforge.losses.interface import AnyDiscriminator, as_view
from ganforge.losses.scoring import score
from ganforge.models.base import DOutput


def refuse_batch_norm(loss_name: str, model_cfg: Any) -> None:
    """A gradient penalty is per sample; BatchNorm makes D(x̂) depend on the whole batch.

    Raises:
        ConfigError: ``model.d_norm=batch`` (the popular BatchNorm'd WGAN-GP critic bug).
    """
    # Families without a D norm setting (cgan-paper, dcgan-seed002) fix their own layers.
    if getattr(model_cfg, "d_norm", "none") == "batch":
        raise ConfigError(
            f"loss {loss_name} penalises per-sample gradients, which D's BatchNorm mixes across "
            "the batch; set model.d_norm=layer (the WGAN-GP critic) or none"
        )


def gradient_penalty(
    discriminator: AnyDiscriminator,
    points: torch.Tensor,
    y: Optional[torch.Tensor],
    target: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean((‖∇ₓ D(x̂)‖₂ − target)²)`` over the batch, differentiable w.r.t. D's weights.

    Args:
        discriminator: D as a view, or a plain D (gradients flow into its parameters through
            ``create_graph``).
        points: (N, *shape) the points x̂ (any graph they carry is cut here).
        y: (N,) or (N, K) labels for a conditional D, else None.
        target: the norm the penalty pulls towards (1 for both papers).

    Returns:
        ``(penalty, norms)``: the () penalty with a graph and the (N,) detached gradient norms.
    """
    points = points.detach().requires_grad_(True)
    # A compiled D (train.compile) has no double backward: its eager twin runs the penalty.
    eager = as_view(discriminator).eager
    # Computed in fp32 even under autocast: squaring small fp16 gradients underflows to 0 and
    # the norm's backward then divides by it — the NaNs users of other toolkits report.
    with torch.autocast(device_type=points.device.type, enabled=False):
        scores = eager(points.float(), y).adv
        (grad,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
        norms = grad.flatten(1).norm(2, dim=1)
        penalty = ((norms - target) ** 2).mean()
    return penalty, norms.detach()


def interpolate(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample random points on the segments a→b: ``a + α (b − a)``, α ~ U(0, 1).

    Args:
        a, b: (N, *shape) tensors of equal shape.

    Returns:
        (N, *shape) detached points.
    """
    alpha = torch.rand((a.shape[0],) + (1,) * (a.dim() - 1), device=a.device, dtype=a.dtype)
    return (a + alpha * (b - a)).detach()


def input_gradients(
    discriminator: AnyDiscriminator,
    xs: Sequence[torch.Tensor],
    ys: Sequence[Optional[torch.Tensor]],
    outs: Optional[Sequence[DOutput]] = None,
) -> list[torch.Tensor]:
    """``∇ₓ Σ D(x)`` for each batch in ``xs``, differentiable w.r.t. D's weights.

    Args:
        discriminator: D as a view, or a plain D (a forward of its own runs the view's eager
            twin).
        xs: batches (N_i, *shape) of D's inputs.
        ys: their labels, or None each.
        outs: D's outputs on ``xs`` from a forward that ran in fp32 with ``xs`` requiring grad
            (the D step's own scoring); their graph is reused. None: D runs again on detached
            fp32 copies of ``xs`` with autocast off (squared fp16/bf16 gradients underflow).

    Returns:
        (N_i, *shape) gradients, one per batch, with ``create_graph=True``.
    """
    if outs is None:
        eager = as_view(discriminator).eager
        device_type = xs[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            points = [x.detach().float().requires_grad_(True) for x in xs]
            outs = score(eager, points, ys)
            sums = [out.adv.float().sum() for out in outs]
            return list(torch.autograd.grad(sums, points, create_graph=True))
    sums = [out.adv.sum() for out in outs]
    return list(torch.autograd.grad(sums, list(xs), create_graph=True))
