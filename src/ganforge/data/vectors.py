"""Vector data and condition vectors: per-feature standardisation records and label kinds.

A vector dataset is trained in standardised units (each feature with mean 0 and std 1 over the
training data), so one learning rate and one initialisation suit features of any scale. The
statistics travel with the data as a small JSON-able *scaling record*::

    {"kind": "standardize", "mean": [m_1, ..., m_D], "std": [s_1, ..., s_D]}

``standardize(x, record)`` maps original units to model units, ``destandardize(x, record)`` maps
samples back; ``None`` is the identity record (data that was not rescaled). A feature that is
constant over the data gets std 1 (it is only centred), and so does a 0/1 column of a condition
matrix (binary attributes are fed as they are, like CelebA's).

Labels come in three kinds (:func:`label_kind`): ``classes`` (an (N,) integer tensor),
``binary`` ((N, K) float rows of 0/1 attributes) and ``continuous`` ((N, K) float rows of any
values). Models take the last two the same way, through a linear embedding; only a class head
(ACGAN's) needs to know the difference, see :func:`check_condition_use`.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch

from ganforge.errors import ConfigError, DataError

SCALING_KINDS = ("standardize",)
LABEL_KINDS = ("classes", "binary", "continuous")


# --------------------------------------------------------------------------------------------
# Standardisation records
# --------------------------------------------------------------------------------------------

def fit_standardize(x: np.ndarray | torch.Tensor, keep_binary: bool = False) -> dict[str, Any]:
    """The scaling record of (N, D) data: per-feature mean and (population) std.

    Args:
        x: (N, D) finite values, N >= 1.
        keep_binary: leave columns whose values are all 0 or 1 unscaled (mean 0, std 1), as
            condition matrices do for their attribute columns.

    Returns:
        ``{"kind": "standardize", "mean": [D floats], "std": [D floats]}``; a constant column
        gets std 1 so it maps to 0 instead of dividing by zero.
    """
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    arr = arr.astype(np.float64).reshape(arr.shape[0], -1)
    mean = arr.mean(axis=0)
    std = arr.std(axis=0)
    std[std == 0] = 1.0
    if keep_binary:
        binary = np.all((arr == 0) | (arr == 1), axis=0)
        mean[binary], std[binary] = 0.0, 1.0
    return {"kind": "standardize", "mean": mean.tolist(), "std": std.tolist()}


def _stats(record: dict[str, Any], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D,) float64 mean and std of a record, checked against x's last dimension."""
    if not isinstance(record, dict) or record.get("kind") not in SCALING_KINDS:
        kind = record.get("kind") if isinstance(record, dict) else type(record).__name__
        raise DataError(f"unknown scaling record kind {kind!r}; expected one of "
                        f"{', '.join(SCALING_KINDS)} (the run folder is damaged or newer)")
    mean = torch.tensor(record["mean"], dtype=torch.float64, device=x.device)
    std = torch.tensor(record["std"], dtype=torch.float64, device=x.device)
    if x.dim() != 2 or x.shape[1] != mean.numel():
        raise DataError(f"scaling record has {mean.numel()} features but the values have shape "
                        f"{tuple(x.shape)}; pass (N, {mean.numel()}) rows")
    return mean, std


def standardize(x: torch.Tensor | np.ndarray, record: Optional[dict[str, Any]]) -> torch.Tensor:
    """Original units -> model units: ``(x - mean) / std`` per feature.

    Args:
        x: (N, D) values in the data's original units.
        record: a record from :func:`fit_standardize`, or None (identity).

    Returns:
        (N, D) float32 tensor on x's device (computed in float64).
    """
    x = torch.as_tensor(x)
    if record is None:
        return x.to(torch.float32)
    mean, std = _stats(record, x)
    return ((x.to(torch.float64) - mean) / std).to(torch.float32)


def destandardize(x: torch.Tensor | np.ndarray, record: Optional[dict[str, Any]]) -> torch.Tensor:
    """Model units -> original units: ``x * std + mean`` per feature (inverse of standardize).

    Args:
        x: (N, D) samples of G, or standardised data.
        record: a record from :func:`fit_standardize`, or None (identity).

    Returns:
        (N, D) float32 tensor on x's device (computed in float64).
    """
    x = torch.as_tensor(x)
    if record is None:
        return x.to(torch.float32)
    mean, std = _stats(record, x)
    return (x.to(torch.float64) * std + mean).to(torch.float32)


# --------------------------------------------------------------------------------------------
# Label kinds
# --------------------------------------------------------------------------------------------

def label_kind(y: Optional[torch.Tensor]) -> Optional[str]:
    """What a dataset's labels are: ``classes``, ``binary``, ``continuous``, or None.

    Args:
        y: (N,) integer class indices, (N, K) float condition rows, or None.
    """
    if y is None:
        return None
    if y.dim() == 1:
        return "classes"
    if y.dim() == 2 and bool(((y == 0) | (y == 1)).all()):
        return "binary"
    return "continuous"


def check_condition_use(data: Any, model_cfg: Any) -> None:
    """Refuse model settings that cannot use the dataset's kind of condition.

    ACGAN's class head (``model.d_label=classifier``) predicts the condition with a
    cross-entropy (classes) or per-attribute BCE (0/1 attributes); for continuous values neither
    is a meaningful objective, so such a combination is refused before training.

    Args:
        data: the :class:`~ganforge.data.base.TensorData` to train on.
        model_cfg: the :class:`~ganforge.config.ModelConfig`.

    Raises:
        ConfigError: a class head on a continuous condition.
    """
    if not model_cfg.conditional or model_cfg.d_label != "classifier":
        return
    if label_kind(data.y) == "continuous":
        raise ConfigError(
            f"model.d_label=classifier (ACGAN's class head) cannot predict the continuous "
            f"conditions of dataset '{data.name}'; use model.d_label=input or projection with "
            "a non-ACGAN loss (e.g. loss.name=bce)")
