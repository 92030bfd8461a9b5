"""Evaluator files: where domain evaluators live, how they are written and read back, and
whether their training recipe is current.

A domain evaluator on disk is ``NAME.safetensors`` (the weights) and ``NAME.json`` (format
version, kind, recipe version, architecture and its constructor arguments, data, held-out
accuracy clean and corrupted, SHA-256 of the weights file, versions, date). Only JSON and
safetensors are parsed, never a pickle. Names are looked up in :func:`evaluator_dir`, where
``ganforge train-evaluator`` saves them.

Format 2 holds several nets in the one weights file, each under its own key prefix (the
primary evaluator as ``primary.*`` and its independently trained twin as ``twin.*``, listed in
the JSON's ``nets``), so one checksum covers the pair. Format 1 (one net, unprefixed keys) is
still read.

Recipe versions (``recipe_version`` in the JSON; files without one are version 1):

1. clean images with random affine augmentation, one net;
2. the corruption mix of :mod:`ganforge.metrics.corruptions` (noise, blur, elastic, contrast,
   ...), held-out accuracy under each suite corruption, and a twin net trained on another seed
   and data split, whose disagreement with the primary net is reported with label accuracy.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from ganforge import checkedfiles
from ganforge.errors import CheckpointError
from ganforge.version import __version__

FORMAT_VERSION = 2
RECIPE_VERSION = 2  # bump when a change to train_evaluator changes what evaluators measure
KIND = "ganforge-evaluator"  # the JSON's "kind", so a run checkpoint is never taken for one
HOME_ENV = "GANFORGE_HOME"
EVALUATOR_SUFFIXES = (".safetensors", ".json")

# How evaluators are named and fixed in the one-line errors of the shared reader; formats 1
# and 2 differ only in how the weights file holds its nets (see net_states).
EVALUATOR = checkedfiles.FileKind(
    noun="evaluator", fix="train it again with `ganforge train-evaluator`",
    instead="create it with `ganforge train-evaluator --dataset NAME`",
    format_version=FORMAT_VERSION, mark=("kind", KIND))


def evaluator_dir() -> Path:
    """Where evaluators live by default: ``$GANFORGE_HOME/evaluators`` or
    ``~/.cache/ganforge/evaluators``. Nothing is created here."""
    home = os.environ.get(HOME_ENV, "").strip()
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "ganforge"
    return base / "evaluators"


def evaluator_path(out_path: Optional[str | os.PathLike[str]], name: str) -> Path:
    """The ``.safetensors`` path for ``--out`` (a file path or a folder), or the default one."""
    if out_path is None:
        return evaluator_dir() / f"{name}.safetensors"
    path = Path(out_path).expanduser()
    if path.suffix in EVALUATOR_SUFFIXES:
        return path.with_suffix(".safetensors")
    return path / f"{name}.safetensors"


def save_evaluator(nets: Mapping[str, torch.nn.Module], path: Path, meta: dict[str, Any],
                   half: bool = False) -> tuple[Path, Path]:
    """Write ``path`` (.safetensors, every net under ``ROLE.``) then its ``.json``, each atomically.

    Args:
        nets: the nets by role, the primary one first, e.g. {"primary": a, "twin": b}.
        meta: JSON-able description (name, arch, arch_kwargs, data, accuracy, recipe, ...); the
            format version, kind, net list, weights checksum, versions and date are added here.
        half: store floating tensors as float16 (half the file; loading casts them back to
            float32, so what is measured is the evaluator as stored).
    """
    from safetensors.torch import save as st_save

    from ganforge import fileio

    if not nets or "." in "".join(nets):
        raise ValueError(f"net roles must be non-empty names without dots, got {list(nets)}")

    def stored(v: torch.Tensor) -> torch.Tensor:
        v = v.detach().cpu().contiguous()
        return v.half() if half and v.is_floating_point() else v

    blob = st_save({f"{role}.{k}": stored(v)
                    for role, net in nets.items() for k, v in net.state_dict().items()})
    st_path, json_path = path.with_suffix(".safetensors"), path.with_suffix(".json")
    fileio.write_bytes(st_path, blob)
    record = {"format_version": FORMAT_VERSION, "kind": KIND, **meta, "nets": list(nets),
              "weights_dtype": "float16" if half else "float32",
              "tensors_file": st_path.name, "sha256": hashlib.sha256(blob).hexdigest(),
              "ganforge_version": __version__, "torch_version": torch.__version__,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    fileio.write_json(json_path, record)
    return st_path, json_path


def net_states(meta: dict[str, Any], state: dict[str, torch.Tensor]
               ) -> dict[str, dict[str, torch.Tensor]]:
    """The state dict of each net of an evaluator file, by role (the primary one first).

    A format-1 file holds one net with unprefixed keys; it is returned as ``{"primary": ...}``.

    Raises:
        CheckpointError: a net listed in the JSON has no weights in the file.
    """
    if meta.get("format_version", 1) < 2:
        return {"primary": state}
    roles = meta.get("nets")
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise CheckpointError(f"evaluator '{meta.get('name')}' has no valid list of nets "
                              f"({roles!r}); train it again")
    out = {role: {k[len(role) + 1:]: v for k, v in state.items() if k.startswith(f"{role}.")}
           for role in roles}
    empty = [role for role, part in out.items() if not part]
    if empty or not out:
        raise CheckpointError(f"evaluator '{meta.get('name')}' lists nets {roles} but the "
                              f"weights of {empty or 'all'} are absent; train it again")
    return out


def recipe_version(meta: dict[str, Any]) -> int:
    """The training recipe of an evaluator record: ``recipe_version``, 1 when absent."""
    version = meta.get("recipe_version", 1)
    return version if isinstance(version, int) else 1


def recipe_problem(meta: dict[str, Any]) -> Optional[str]:
    """Why an evaluator's recipe is not the current one (a one-line message), or None.

    An evaluator trained by an older recipe (or by this one with its corruption augmentation
    switched off) measures something else, so its numbers are not comparable with current ones.
    """
    version, dataset = recipe_version(meta), meta.get("dataset", "NAME")
    augment = (meta.get("recipe") or {}).get("augment")
    if version < RECIPE_VERSION:
        why = f"was trained by evaluator recipe v{version}, older than v{RECIPE_VERSION}"
    elif version == RECIPE_VERSION and augment != "corruptions":
        why = f"was trained without the corruption augmentation (augment: {augment})"
    else:
        return None
    return (f"evaluator '{meta.get('name')}' {why} (it misreads noisy generated images); "
            f"retrain it with `ganforge train-evaluator --dataset {dataset}`, or pass the path "
            "of its file to use it anyway")


def read_evaluator(path: str | os.PathLike[str]
                   ) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """Read and verify an evaluator: (JSON record, CPU state dict, SHA-256 of the weights file).

    Raises:
        CheckpointError: one line, for another kind of file, a missing or corrupt file, a
            checksum mismatch or a newer format version.
    """
    path = Path(path).expanduser()
    if path.suffix not in EVALUATOR_SUFFIXES:
        raise CheckpointError(f"'{path}' is not an evaluator; give the NAME.safetensors or "
                              "NAME.json written by `ganforge train-evaluator`")
    checked = checkedfiles.read_checked(path.with_suffix(".json"), EVALUATOR)
    return checked.record, checked.tensors, checked.sha256
