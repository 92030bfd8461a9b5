"""A generator exported for the Hugging Face Hub: its folder's layout, and reading it back.

``ganforge export RUN --format hub --out FOLDER`` (:mod:`ganforge.run.export`) writes::

    model.safetensors   G's weights (the EMA copy when the run kept one), a plain state dict
    config.json         what rebuilds G (the run's model record: family, constructor args,
                        latent size and distribution, classes and their names, sample shape,
                        the scaling of vectors and condition rows), the training config, the
                        step and the weights' SHA-256
    README.md           the model card (training, data, metrics with their protocol)
    samples.png         a grid of samples, linked from the card

Nothing in it is pickled. ``huggingface-cli upload USER/NAME FOLDER`` publishes it as it is;
:func:`~ganforge.run.loaded.load_run` and ``ganforge generate`` take the folder (or a download
of it) wherever a run folder goes. The format is told apart from a run folder by the
``format`` entry of its ``config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import torch

from ganforge import checkedfiles
from ganforge.errors import CheckpointError

HUB_WEIGHTS = "model.safetensors"
HUB_CONFIG = "config.json"
HUB_CARD = "README.md"
HUB_SAMPLES = "samples.png"
HUB_FORMAT = "ganforge-generator"
HUB_VERSION = 1
LIBRARY = "ganforge"

# How hub exports are named and fixed in the one-line errors of the shared reader. The folder's
# layout fixes the weights file's name; the checksum's wording names where it is recorded.
HUB_EXPORT = checkedfiles.FileKind(
    noun="hub export", fix="download or export it again",
    instead="make one with `ganforge export RUN --format hub`", format_version=HUB_VERSION,
    required=("step", "model", "config"), mark=("format", HUB_FORMAT),
    tensors_name=HUB_WEIGHTS,
    mismatch=f"does not match the SHA-256 in its {HUB_CONFIG} (truncated or changed)")


def hub_meta(path: str | Path) -> Optional[dict[str, Any]]:
    """The ``config.json`` of a hub export in ``path``, or None when ``path`` is not one."""
    config = Path(path) / HUB_CONFIG
    if not (Path(path) / HUB_WEIGHTS).is_file() or not config.is_file():
        return None
    try:
        meta = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == HUB_FORMAT else None


def is_hub_folder(path: str | Path) -> bool:
    """Whether ``path`` holds a generator exported with ``--format hub``."""
    return hub_meta(path) is not None


def read_hub(path: str | Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and load a hub export.

    Returns:
        The weights file; G's tensors under ``G_ema/`` (or ``G/``), as a checkpoint names
        them, so loading shares one path; and ``config.json`` (``step``, ``config``, ``model``).

    Raises:
        CheckpointError: not a hub export, a newer format, missing entries, or weights that do
            not match their recorded SHA-256.
    """
    path = Path(path)
    if hub_meta(path) is None:  # the folder's layout first: a run folder is not a damaged export
        raise CheckpointError(f"'{path}' is not a hub export (model.safetensors and a ganforge "
                              "config.json); make one with `ganforge export RUN --format hub`")
    checked = checkedfiles.read_checked(path / HUB_CONFIG, HUB_EXPORT)
    prefix = "G_ema" if checked.record.get("ema") else "G"
    return (checked.tensors_path, {f"{prefix}/{k}": v for k, v in checked.tensors.items()},
            checked.record)
