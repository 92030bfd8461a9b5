"""The process's runtime: which device to use, how to seed it, and where ganforge keeps its
own files (the ganforge home).

Nothing here runs at import time; the caller picks the device (``--device``, ``train.device``)
and every room that needs one asks :func:`pick_device`, so "auto" means the same everywhere.
Likewise the rooms that cache files of their own (decoded images, reference statistics) put
them under :func:`ganforge_home`, never beside the user's data.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ganforge.errors import ConfigError

HOME_ENV = "GANFORGE_HOME"  # moves the ganforge home (a big scratch disk, a test's tmp folder)


def _linux_cache() -> Path:
    # The XDG spec ignores a relative XDG_CACHE_HOME.
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "ganforge"


def _windows_cache() -> Path:
    local = os.environ.get("LOCALAPPDATA", "").strip()
    return (Path(local) if local else Path.home() / "AppData" / "Local") / "ganforge" / "Cache"


# sys.platform -> the platform's per-user cache folder for ganforge; any other platform (Linux,
# the BSDs) follows the XDG spec.
PLATFORM_CACHES: dict[str, Callable[[], Path]] = {
    "darwin": lambda: Path.home() / "Library" / "Caches" / "ganforge",
    "win32": _windows_cache,
}


def ganforge_home() -> Path:
    """The folder that holds ganforge's own files (not created here).

    ``$GANFORGE_HOME`` when set, else the platform's cache folder: ``$XDG_CACHE_HOME/ganforge``
    or ``~/.cache/ganforge`` on Linux, ``~/Library/Caches/ganforge`` on macOS,
    ``%LOCALAPPDATA%\\ganforge\\Cache`` on Windows.
    """
    home = os.environ.get(HOME_ENV, "").strip()
    if home:
        return Path(home).expanduser()
    return PLATFORM_CACHES.get(sys.platform, _linux_cache)()


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
