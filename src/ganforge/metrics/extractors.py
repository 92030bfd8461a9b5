"""Finding, storing and loading feature extractors: ``load_extractor`` and the evaluator files.

An extractor is named by one string (``--evaluator SPEC`` on the command line):

- ``inception``: the standard FID Inception-v3 (:mod:`ganforge.metrics.inception`);
- a path to a domain evaluator's ``.safetensors`` or ``.json`` file;
- an evaluator name such as ``mnist-lenet``, looked up as ``NAME.json`` in
  :func:`evaluator_dir`, where ``ganforge train-evaluator --dataset mnist`` saves it.

A domain evaluator on disk is ``NAME.safetensors`` (the state dict) and ``NAME.json`` (format
version, kind, architecture and its constructor arguments, data, held-out accuracy, SHA-256 of
the weights file, versions, date). Only JSON and safetensors are parsed, never a pickle.

Importing this module registers the ``EXTRACTORS`` entries; it reads no file and loads no weights.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import torch

from ganforge.errors import CheckpointError, GanforgeError
from ganforge.metrics import inception as _inception  # noqa: F401  (registers "inception")
from ganforge.metrics.base import EXTRACTORS, FeatureExtractor

FORMAT_VERSION = 1
KIND = "ganforge-evaluator"  # the JSON's "kind", so a run checkpoint is never taken for one
HOME_ENV = "GANFORGE_HOME"
EVALUATOR_SUFFIXES = (".safetensors", ".json")


def evaluator_dir() -> Path:
    """Where evaluators live by default: ``$GANFORGE_HOME/evaluators`` or
    ``~/.cache/ganforge/evaluators``. Nothing is created here."""
    home = os.environ.get(HOME_ENV, "").strip()
    base = Path(home).expanduser() if home else Path.home() / ".cache" / "ganforge"
    return base / "evaluators"


# --------------------------------------------------------------------------------------------
# Evaluator files
# --------------------------------------------------------------------------------------------

def evaluator_path(out_path: Optional[str | os.PathLike[str]], name: str) -> Path:
    """The ``.safetensors`` path for ``--out`` (a file path or a folder), or the default one."""
    if out_path is None:
        return evaluator_dir() / f"{name}.safetensors"
    path = Path(out_path).expanduser()
    if path.suffix in EVALUATOR_SUFFIXES:
        return path.with_suffix(".safetensors")
    return path / f"{name}.safetensors"


def save_evaluator(model: torch.nn.Module, path: Path, meta: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``path`` (.safetensors) then its ``.json`` sidecar, each atomically.

    Args:
        meta: JSON-able description (name, arch, arch_kwargs, data, accuracy, ...); the format
            version, kind, weights checksum, versions and date are added here.
    """
    from safetensors.torch import save as st_save

    import ganforge
    from ganforge import fileio

    blob = st_save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    st_path, json_path = path.with_suffix(".safetensors"), path.with_suffix(".json")
    fileio.write_bytes(st_path, blob)
    record = {"format_version": FORMAT_VERSION, "kind": KIND, **meta,
              "tensors_file": st_path.name, "sha256": hashlib.sha256(blob).hexdigest(),
              "ganforge_version": ganforge.__version__, "torch_version": torch.__version__,
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    fileio.write_json(json_path, record)
    return st_path, json_path


def read_evaluator(path: str | os.PathLike[str]
                   ) -> tuple[dict[str, Any], dict[str, torch.Tensor], str]:
    """Read and verify an evaluator: (JSON record, CPU state dict, SHA-256 of the weights file).

    Raises:
        CheckpointError: one line, for another kind of file, a missing or corrupt file, a
            checksum mismatch or a newer format version.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path).expanduser()
    if path.suffix not in EVALUATOR_SUFFIXES:
        raise CheckpointError(f"'{path}' is not an evaluator; give the NAME.safetensors or "
                              "NAME.json written by `ganforge train-evaluator`")
    json_path = path.with_suffix(".json")
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"evaluator description '{json_path}' not found; create it with "
                              "`ganforge train-evaluator --dataset NAME`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"'{json_path}' is not valid JSON ({type(err).__name__}); it is "
                              "corrupt or not an evaluator, train it again") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CheckpointError(f"'{json_path}' is not a ganforge evaluator; create one with "
                              "`ganforge train-evaluator --dataset NAME`")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"evaluator '{json_path}' has format version {version}, newer "
                              f"than this ganforge reads ({FORMAT_VERSION}); upgrade ganforge")
    # Only a file name is honoured, so a crafted JSON cannot point outside its folder.
    st_path = json_path.parent / Path(str(meta.get("tensors_file", ""))).name
    try:
        blob = st_path.read_bytes()
    except OSError:
        raise CheckpointError(f"evaluator weights '{st_path}' are missing; train the evaluator "
                              "again or copy the file next to its JSON") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta.get("sha256"):
        raise CheckpointError(f"evaluator weights '{st_path}' fail their checksum (changed, "
                              "truncated or corrupt); train the evaluator again")
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f"'{st_path}' is not a safetensors file "
                              f"({str(err).splitlines()[0][:80]}); train the evaluator again"
                              ) from None
    return meta, state, digest


# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------

@EXTRACTORS.register("evaluator")
def domain_evaluator(path: str | os.PathLike[str], device: str | torch.device = "cpu"
                     ) -> FeatureExtractor:
    """A domain evaluator trained by ``ganforge train-evaluator`` (features + logits), by path."""
    from ganforge.metrics.evaluator import DomainEvaluator

    return DomainEvaluator(path, device=device)


def available_evaluators() -> list[str]:
    """Names of the evaluators saved in the default folder (e.g. ["mnist-lenet"])."""
    folder = evaluator_dir()
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def _looks_like_path(spec: str) -> bool:
    return (Path(spec).suffix in EVALUATOR_SUFFIXES or "/" in spec or os.sep in spec
            or Path(spec).expanduser().is_file())


def _dataset_of(name: str) -> str:
    """The dataset part of an evaluator name, "mnist-lenet" -> "mnist" (for the hint)."""
    from ganforge.metrics.evaluator import ARCHS

    for arch in ARCHS:
        if name.endswith(f"-{arch}"):
            return name[: -len(arch) - 1]
    return name


def load_extractor(spec: str, device: str | torch.device = "cpu", **kwargs: Any
                   ) -> FeatureExtractor:
    """The feature extractor named by ``spec`` (see the module docstring).

    Args:
        spec: "inception", an evaluator file path, or an evaluator name like "mnist-lenet".
        device: where the extractor runs; its outputs always come back on the CPU.
        **kwargs: passed to a registered factory (e.g. ``weights=`` for "inception").

    Raises:
        GanforgeError: one line naming what was looked for and how to create it.
    """
    spec = str(spec).strip()
    if not spec:
        raise GanforgeError("no feature extractor given; use 'inception', an evaluator name "
                            "such as 'mnist-lenet', or a path to an evaluator .safetensors")
    if spec in EXTRACTORS and spec != "evaluator":
        return EXTRACTORS.get(spec)(device=device, **kwargs)
    if _looks_like_path(spec):
        return domain_evaluator(Path(spec).expanduser(), device=device)
    candidate = evaluator_dir() / f"{spec}.json"
    if candidate.is_file():
        return domain_evaluator(candidate, device=device)
    saved = available_evaluators()
    have = f"saved evaluators: {', '.join(saved)}" if saved else "no evaluator saved there yet"
    raise GanforgeError(
        f"unknown feature extractor '{spec}': not 'inception', not an evaluator file, and "
        f"'{candidate}' does not exist ({have}); create it with `ganforge train-evaluator "
        f"--dataset {_dataset_of(spec)}` or pass the path of an evaluator .safetensors")
