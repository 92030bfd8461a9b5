"""Finding, storing and loading feature extractors: ``load_extractor`` and the evaluator files.

An extractor is named by one string (``--evaluator SPEC`` on the command line):

- ``inception``: the standard FID Inception-v3 (:mod:`ganforge.metrics.inception`);
- a path to a domain evaluator's ``.safetensors`` or ``.json`` file;
- an evaluator name such as ``mnist-lenet``, looked up as ``NAME.json`` in
  :func:`evaluator_dir`, where ``ganforge train-evaluator --dataset mnist`` saves it, then among
  the evaluators shipped in the package (:data:`SHIPPED_DIR`: ``digits-lenet``).

The evaluator files themselves (format, folder, checksums) are :mod:`.evaluator_files`.

Importing this module registers the ``EXTRACTORS`` entries; it reads no file and loads no weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ganforge.errors import GanforgeError
from ganforge.metrics import inception as _inception  # noqa: F401  (registers "inception")
from ganforge.metrics.base import EXTRACTORS, FeatureExtractor
from ganforge.metrics.evaluator import ARCHS, DomainEvaluator
from ganforge.metrics.evaluator_files import (  # noqa: F401  (re-exported: the lookup's vocabulary)
    EVALUATOR_SUFFIXES,
    FORMAT_VERSION,
    KIND,
    evaluator_dir,
    evaluator_path,
    read_evaluator,
    save_evaluator,
)

# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------

@EXTRACTORS.register("evaluator")
def domain_evaluator(path: str | os.PathLike[str], device: str | torch.device = "cpu",
                     allow_old_recipe: bool = False) -> FeatureExtractor:
    """A domain evaluator trained by ``ganforge train-evaluator`` (features + logits), by path.

    ``allow_old_recipe``: load an evaluator of an older training recipe instead of refusing it
    (what a user who names the file explicitly asks for).
    """
    return DomainEvaluator(path, device=device, allow_old_recipe=allow_old_recipe)


def available_evaluators() -> list[str]:
    """Names of the evaluators saved in the default folder (e.g. ["mnist-lenet"]) and of those
    shipped inside the package."""
    names = {p.stem for folder in (evaluator_dir(), SHIPPED_DIR) if folder.is_dir()
             for p in folder.glob("*.json")}
    return sorted(names)


# Evaluators that ship inside the package (small ones, for the embedded datasets): the quick
# start measures itself without a download or a training of its own.
SHIPPED_DIR = Path(__file__).parent / "evaluators"


def _looks_like_path(spec: str) -> bool:
    return (Path(spec).suffix in EVALUATOR_SUFFIXES or "/" in spec or os.sep in spec
            or Path(spec).expanduser().is_file())


def _dataset_of(name: str) -> str:
    """The dataset part of an evaluator name, "mnist-lenet" -> "mnist" (for the hint)."""
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
    if _looks_like_path(spec):  # a file named explicitly: the user knows which evaluator it is
        return domain_evaluator(Path(spec).expanduser(), device=device, allow_old_recipe=True)
    candidate = evaluator_dir() / f"{spec}.json"
    if candidate.is_file():  # the user's own (a retrained one wins over a shipped one)
        return domain_evaluator(candidate, device=device)
    shipped = SHIPPED_DIR / f"{spec}.json"
    if shipped.is_file():
        return domain_evaluator(shipped, device=device)
    saved = available_evaluators()
    have = f"saved evaluators: {', '.join(saved)}" if saved else "no evaluator saved there yet"
    raise GanforgeError(
        f"unknown feature extractor '{spec}': not 'inception', not an evaluator file, and "
        f"'{candidate}' does not exist ({have}); create it with `ganforge train-evaluator "
        f"--dataset {_dataset_of(spec)}` or pass the path of an evaluator .safetensors")
