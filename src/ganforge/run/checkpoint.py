"""Checkpoints: tensors in safetensors, everything else in a JSON sidecar, nothing pickled.

A checkpoint ``step_000001000`` is two files in ``RUN/checkpoints/``:

- ``step_000001000.safetensors``: module weights (``G/…``, ``D/…``, ``G_ema/…``), optimizer
  tensors (``optim/G/state/<param index>/exp_avg`` …) and RNG states (``rng/…``);
- ``step_000001000.json``: format version, step, the SHA-256 of the safetensors file, optimizer
  hyper-parameters, sampler position, Python/NumPy RNG states, the resolved config and the model
  constructor arguments.

Both are written atomically, tensors first; the JSON is the commit marker, so a checkpoint without
its JSON (a run killed while saving) is simply not a checkpoint. A checkpoint counts only once it
reads back: the tensors file is hashed again from the disk after writing, and loading verifies
the checksum too (both through :mod:`ganforge.checkedfiles`, the reader evaluators and hub
exports share).

A checkpoint that fails verification is never deleted and never silently skipped: training moves
it to ``checkpoints/corrupt/`` (where the user can look at it) with a line on stderr, and every
command that falls back past one says so on stderr and names the checkpoint it used instead.
Rotation never deletes the newest checkpoint that verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from safetensors.torch import save as st_save

from ganforge import checkedfiles, fileio
from ganforge.errors import CheckpointError
from ganforge.run.layout import CHECKPOINT_DIR

FORMAT_VERSION = 1
CORRUPT_DIR = "corrupt"  # RUN/checkpoints/corrupt/: checkpoints that failed verification

Warn = Callable[[str], None]


def warn_stderr(message: str) -> None:
    """The default for warnings about checkpoints: one line on stderr, away from results."""
    print(f"ganforge: warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# RNG state <-> (tensors, json)
# ---------------------------------------------------------------------------------------------

def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch (CPU and every CUDA device), NumPy and Python RNG states."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py_version, py_state, py_gauss = random.getstate()
    meta = {"numpy": [kind, int(pos), int(has_gauss), float(cached)],
            "python": [py_version, list(py_state), py_gauss]}
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng/cuda/"))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    kind, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, tensors["rng/numpy"].numpy().astype(np.uint32), pos, has_gauss,
                         cached))
    py_version, py_state, py_gauss = meta["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))


# ---------------------------------------------------------------------------------------------
# Optimizer state <-> (tensors, json)
# ---------------------------------------------------------------------------------------------

def _flatten_optimizer(name: str, opt: torch.optim.Optimizer
                       ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/state/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
                         ) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim/{name}/state/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            pid, field = key[len(prefix):].split("/", 1)
            state.setdefault(int(pid), {})[field] = value
    for pid, extra in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(extra)
    # JSON turned tuples such as Adam's betas into lists; give optimizers back their own types.
    groups = [{k: (tuple(v) if isinstance(v, list) and k != "params" else v)
               for k, v in group.items()} for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------------------------------
# Save / load
# ---------------------------------------------------------------------------------------------

def checkpoint_paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    stem = Path(run_dir) / CHECKPOINT_DIR / f"step_{step:09d}"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json")


def save_checkpoint(
    run_dir: Path,
    step: int,
    modules: dict[str, torch.nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    meta: dict[str, Any],
    keep: int = 2,
    label: Optional[str] = None,
    warn: Warn = warn_stderr,
) -> Optional[Path]:
    """Write a checkpoint atomically, read it back and rotate old ones.

    Returns:
        The JSON path; None when the checkpoint did not read back (it is moved to
        ``checkpoints/corrupt/`` with a warning, and the older ones stay).

    Args:
        modules: e.g. {"G": G, "D": D, "G_ema": G_ema}; state dicts are stored under ``name/``.
        optimizers: e.g. {"G": opt_G, "D": opt_D}.
        meta: JSON-able run state (config, model args, sampler state, elapsed time, ...).
        keep: number of most recent checkpoints kept; older ones are deleted only after this one
            is complete, so the only good checkpoint is never removed.
        label: save as ``checkpoints/<label>.*`` (e.g. "best") instead of ``step_<step>``;
            labelled checkpoints are outside the rotation.
        warn: receives one line for a checkpoint moved aside.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"{name}/{key}"] = value
    optim_meta = {}
    for name, opt in optimizers.items():
        t, m = _flatten_optimizer(name, opt)
        tensors.update(t)
        optim_meta[name] = m
    rng_tensors, rng_meta = capture_rng()
    tensors.update(rng_tensors)
    blob = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    st_path, json_path = checkpoint_paths(run_dir, step)
    if label is not None:
        st_path, json_path = (st_path.with_name(f"{label}.safetensors"),
                              json_path.with_name(f"{label}.json"))
    fileio.write_bytes(st_path, blob)
    record = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "sha256": hashlib.sha256(blob).hexdigest(),  # of its one other file, tensors_file
        "tensors_file": st_path.name,
        "modules": sorted(modules),
        "optimizers": optim_meta,
        "rng": rng_meta,
        **meta,
    }
    fileio.write_json(json_path, record)
    if not is_complete(json_path):  # what the disk gives back, not what we meant to write
        quarantine(json_path, "did not read back after writing", warn)
        return None
    if label is None:
        rotate(run_dir, keep, verified=json_path, warn=warn)
    return json_path


REQUIRED_KEYS = ("step", "sha256", "tensors_file", "optimizers", "rng")

# How checkpoints are named and fixed in the one-line errors of the shared reader.
CHECKPOINT = checkedfiles.FileKind(
    noun="checkpoint", fix="use an earlier checkpoint",
    instead="pass a run folder or a checkpoints/step_*.json file",
    format_version=FORMAT_VERSION, required=REQUIRED_KEYS)

# verify() names the checkpoint itself ("checkpoints/step_N.json: ..."), so its tensors' two
# common failures are told relative to it rather than by their absolute path.
_RELATIVE = {"checksum": "its tensors fail their checksum (truncated or corrupt)",
             "tensors_missing": "its tensors are missing"}


def _read_record(json_path: Path) -> tuple[dict[str, Any], Path]:
    """The checkpoint's JSON record and its tensors path, checked for kind and version only."""
    if json_path.suffix != ".json":
        raise CheckpointError(f"'{json_path}' is not a ganforge checkpoint (a checkpoints/"
                              "step_*.json with its .safetensors); pickled .pt/.pth/.ckpt files "
                              "are never loaded")
    meta = checkedfiles.read_record(json_path, CHECKPOINT)
    return meta, checkedfiles.tensors_path(json_path, meta, CHECKPOINT)


def load_checkpoint(json_path: Path, map_location: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify one checkpoint; raises CheckpointError with the reason and a fix."""
    json_path = Path(json_path)
    if json_path.suffix == ".safetensors":
        json_path = json_path.with_suffix(".json")
    meta, st_path = _read_record(json_path)
    tensors = checkedfiles.load_tensors(st_path, meta["sha256"], CHECKPOINT)
    if str(map_location) != "cpu":
        tensors = {k: v.to(map_location) for k, v in tensors.items()}
    return tensors, meta


def verify(json_path: Path) -> Optional[str]:
    """Why the checkpoint fails verification (its record unreadable, its tensors missing or not
    matching their checksum), or None when it is complete. Streamed: checking a large
    checkpoint costs one read, not a copy in memory."""
    try:
        meta, st_path = _read_record(Path(json_path))
        checkedfiles.check_tensors(st_path, meta["sha256"], CHECKPOINT)
    except checkedfiles.CheckedFileError as err:
        return _RELATIVE.get(err.code, err.reason)
    except CheckpointError as err:
        return _reason(err)
    return None


def is_complete(json_path: Path) -> bool:
    """True when the checkpoint's record reads and its tensors file matches its checksum."""
    return verify(json_path) is None


def _reason(err: Exception) -> str:
    """A checkpoint error's reason without its fix (the caller says what happens instead)."""
    if isinstance(err, checkedfiles.CheckedFileError):
        return err.reason
    return str(err).split("; ")[0]


def quarantine(json_path: Path, reason: str, warn: Warn = warn_stderr) -> Path:
    """Move a checkpoint that failed verification to ``checkpoints/corrupt/`` (never deleted:
    it may be all that is left of some steps) and say so; returns where its JSON went."""
    json_path = Path(json_path)
    folder = fileio.ensure_dir(json_path.parent / CORRUPT_DIR)
    stem, n = json_path.stem, 1
    while (folder / f"{stem}.json").exists() or (folder / f"{stem}.safetensors").exists():
        stem, n = f"{json_path.stem}.{n}", n + 1  # an earlier casualty of the same name stays
    # Tensors first: the JSON is the commit marker, so a kill between the two moves leaves
    # a tensors file that the next rotation clears, never a checkpoint without tensors.
    for src, suffix in ((json_path.with_suffix(".safetensors"), ".safetensors"),
                        (json_path, ".json")):
        if src.exists():
            os.replace(src, folder / f"{stem}{suffix}")
    warn(f"checkpoints/{json_path.name}: {reason}; moved to checkpoints/{CORRUPT_DIR}/"
         f"{stem}.json")
    return folder / f"{stem}.json"


def module_state(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The state dict stored under ``name/`` (e.g. "G")."""
    prefix = f"{name}/"
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def restore_optimizer(opt: torch.optim.Optimizer, name: str, tensors: dict[str, torch.Tensor],
                      meta: dict[str, Any]) -> None:
    opt.load_state_dict(_unflatten_optimizer(name, tensors, meta["optimizers"][name]))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """JSON files of the run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(folder.glob("step_*.json")) if folder.is_dir() else []


def latest_checkpoint(run_dir: Path, map_location: str | torch.device = "cpu",
                      warn: Optional[Warn] = warn_stderr, quarantined: bool = False
                      ) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """Newest checkpoint that loads and verifies, falling back to older ones.

    Args:
        warn: receives one line for each checkpoint passed over, naming the one used instead
            (default: stderr; None: silent).
        quarantined: move the checkpoints passed over to ``checkpoints/corrupt/`` (training
            does, as it holds the run folder; commands that only read it do not).
    """
    candidates = list_checkpoints(run_dir)
    if not candidates:
        raise CheckpointError(f"no checkpoint in '{run_dir}'; train first or pass another run")
    newest_error: Optional[CheckpointError] = None
    skipped: list[tuple[Path, str]] = []
    for path in reversed(candidates):
        try:
            tensors, meta = load_checkpoint(path, map_location)
        except CheckpointError as err:
            newest_error = newest_error or err
            skipped.append((path, _reason(err)))
            continue
        for bad, reason in skipped:
            if quarantined:  # one line says both: moved, and what is used instead
                moved = quarantine(bad, reason, lambda line: None)
                reason += f"; moved to checkpoints/{CORRUPT_DIR}/{moved.name}"
            if warn is not None:
                warn(f"checkpoints/{bad.name}: {reason}; using checkpoints/{path.name} "
                     f"(step {meta['step']}) instead")
        return path, tensors, meta
    # The newest one's reason (corrupt? newer format?) carries the fix.
    raise CheckpointError(f"no usable checkpoint in '{run_dir}' ({len(candidates)} tried); "
                          f"the newest: {newest_error}")


def newest_complete(run_dir: Path) -> Optional[tuple[Path, int]]:
    """(JSON path, step) of the newest step checkpoint that verifies, or None."""
    for path in reversed(list_checkpoints(run_dir)):
        if is_complete(path):
            return path, int(json.loads(path.read_text(encoding="utf-8"))["step"])
    return None


def rotate(run_dir: Path, keep: int, verified: Optional[Path] = None,
           warn: Warn = warn_stderr) -> None:
    """Delete all but the newest ``keep`` checkpoints (a checkpoint = its JSON + tensors), never
    the newest one that verifies.

    Checkpoints newer than that one failed verification: they are moved to
    ``checkpoints/corrupt/`` rather than kept in the rotation (where, numbered higher, they
    would push the good one out) or deleted. Normally the newest is the checkpoint just
    written and verified (``verified``), and nothing is read again.
    """
    newest_good: Optional[Path] = None
    for json_path in reversed(list_checkpoints(run_dir)):
        reason = None if json_path == verified else verify(json_path)
        if reason is None:
            newest_good = json_path
            break
        quarantine(json_path, reason, warn)
    paths = list_checkpoints(run_dir)
    kept = set(paths[-keep:]) | ({newest_good} if newest_good is not None else set())
    for json_path in paths:
        if json_path in kept:
            continue
        # The JSON goes first: it is the commit marker, so a kill between the two unlinks
        # leaves an ignored tensors file rather than a checkpoint without tensors.
        json_path.unlink(missing_ok=True)
        json_path.with_suffix(".safetensors").unlink(missing_ok=True)
    _remove_leftovers(Path(run_dir) / CHECKPOINT_DIR)


def _remove_leftovers(folder: Path) -> None:
    """Temporary files and tensors without a JSON, left by a run killed while saving.

    Only the process holding the run folder's lock saves, and never while it rotates, so
    nothing found here is still being written.
    """
    for tmp in folder.glob(".step_*.tmp"):
        tmp.unlink(missing_ok=True)
    for st_path in folder.glob("step_*.safetensors"):
        if not st_path.with_suffix(".json").exists():
            st_path.unlink(missing_ok=True)
