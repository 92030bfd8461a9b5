"""Gradient penalties shared by WGAN-GP and DRAGAN, and a check that D has no BatchNorm.

Both penalise ``(‖∇ₓ D(x̂)‖₂ − 1)²`` at points x̂ near the data. They differ in where x̂ lies:
WGAN-GP (Gulrajani et al. 2017) uses random points on lines between real and fake samples;
DRAGAN (Kodali et al. 2017) uses random points between real samples and noisy copies of them.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from ganforge.errors import ConfigError
from ganforge.models.base import Discriminator


def refuse_batch_norm(loss_name: str, model_cfg: Any) -> None:
    """A gradient penalty is per sample; BatchNorm makes D(x̂) depend on the whole batch.

    Raises:
        ConfigError: ``model.d_norm=batch`` (the popular BatchNorm'd WGAN-GP critic bug).
    """
    if model_cfg.d_norm == "batch":
        raise ConfigError(
            f"loss {loss_name} penalises per-sample gradients, which D's BatchNorm mixes across "
            "the batch; set model.d_norm=layer (the WGAN-GP critic) or none"
        )


def gradient_penalty(
    discriminator: Discriminator,
    points: torch.Tensor,
    y: Optional[torch.Tensor],
    target: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean((‖∇ₓ D(x̂)‖₂ − target)²)`` over the batch, differentiable w.r.t. D's weights.

    Args:
        discriminator: D (gradients flow into its parameters through ``create_graph``).
        points: (N, *shape) the points x̂ (any graph they carry is cut here).
        y: (N,) or (N, K) labels for a conditional D, else None.
        target: the norm the penalty pulls towards (1 for both papers).

    Returns:
        ``(penalty, norms)``: the () penalty with a graph and the (N,) detached gradient norms.
    """
    points = points.detach().requires_grad_(True)
    # A compiled D (train.compile) has no double backward; the trainer's D names its eager twin.
    discriminator = getattr(discriminator, "eager", discriminator)
    # Computed in fp32 even under autocast: squaring small fp16 gradients underflows to 0 and
    # the norm's backward then divides by it — the NaNs users of other toolkits report.
    with torch.autocast(device_type=points.device.type, enabled=False):
        scores = discriminator(points.float(), y).adv
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
