"""Generator and discriminator networks, registered by family name.

Importing this package registers every family (``mlp``, ``dcgan``, ``cgan-paper``,
``dcgan-seed002``) in :data:`MODELS`; nothing else happens at import time. The training code
goes from config to networks with :func:`build_from_config`, stores the returned ``args`` in its
checkpoints and rebuilds the nets later with :func:`build_models` ``(arch, args)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from ganforge.errors import ConfigError
from ganforge.models import cgan_paper, dcgan, mlp, seed_nets  # noqa: F401  (registration)
from ganforge.models.base import (MODELS, Discriminator, DOutput, Generator, ModelSpec,
                                  NetSettings, build_models)
from ganforge.models.summary import summarize

__all__ = [
    "DOutput",
    "Discriminator",
    "Generator",
    "MODELS",
    "ModelSpec",
    "NetSettings",
    "build_from_config",
    "build_models",
    "model_args",
    "summarize",
]


def model_args(model_cfg: Any, data_shape: Sequence[int], n_classes: int) -> dict[str, dict[str, Any]]:
    """JSON-serialisable constructor kwargs of G and D for ``model_cfg.arch`` on this data.

    Args:
        model_cfg: a :class:`~ganforge.config.ModelConfig`.
        data_shape: shape of one sample, (C, H, W) for images or (D,) for vectors.
        n_classes: the dataset's class count (0 if unlabelled); used only when
            ``model_cfg.conditional`` is true.

    Returns:
        ``{"generator": {...}, "discriminator": {...}}``.

    Raises:
        ConfigError: unknown family, data kind the family cannot take, impossible size or option.
    """
    spec = MODELS.get(model_cfg.arch)
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 1 and not spec.vectors:
        raise ConfigError(
            f"model {model_cfg.arch} needs image data but the dataset gives {shape[0]}-d vectors; "
            "use model.arch=mlp for vector (toy-2d) data"
        )
    if len(shape) == 3 and not spec.image:
        raise ConfigError(
            f"model {model_cfg.arch} is for vector data but the dataset gives images {shape}; "
            "use model.arch=mlp or dcgan"
        )
    if len(shape) not in (1, 3):
        raise ConfigError(f"data samples of shape {shape} are neither (C, H, W) nor (D,); check the dataset")
    return spec.kwargs(model_cfg, shape, int(n_classes))


def build_from_config(
    model_cfg: Any, data_shape: Sequence[int], n_classes: int
) -> tuple[Generator, Discriminator, dict[str, dict[str, Any]]]:
    """Build G and D from the config; also return the kwargs to store in checkpoints.

    Returns:
        ``(G, D, args)`` with ``build_models(model_cfg.arch, args)`` rebuilding the same nets.
    """
    args = model_args(model_cfg, data_shape, n_classes)
    G, D = build_models(model_cfg.arch, args)
    return G, D, args
