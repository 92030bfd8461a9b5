"""The process's runtime: which device to use and how to seed it.

Nothing here runs at import time; the caller picks the device (``--device``, ``train.device``)
and every room that needs one asks :func:`pick_device`, so "auto" means the same everywhere.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ganforge.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """"auto" → CUDA when present, else CPU; explicit names are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device='{name}' but no CUDA device is visible; use "
                          "train.device=cpu or auto")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device='mps' but MPS is not available; use cpu or auto")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matmuls on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
