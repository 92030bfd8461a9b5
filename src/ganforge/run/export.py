"""A trained generator that leaves ganforge: ONNX, TorchScript, or a folder for the Hugging Face
Hub. ``ganforge export RUN --format onnx|torchscript|hub --out PATH``.

The generator exported is the one ``load_run`` samples with: the EMA copy of G when the run kept
one. An ONNX or TorchScript file computes exactly what :meth:`Run.generate` returns for the same
latents, so it needs nothing of ganforge to be used:

* inputs ``z``: (N, z_dim) float32, drawn by the caller from the run's latent distribution
  (normal with mean ``z_mean``, or uniform in [-1, 1]); and for conditional models ``labels``:
  (N,) int64 classes, or (N, K) float32 condition rows in the data's own units (a run trained
  on standardised conditions standardises them inside the graph, as ``Run.generate`` does);
* output ``images``: (N, C, H, W) float32 in [-1, 1], or (N, D) vectors in the data's original
  units (de-standardised inside the graph when the run trained on standardised vectors);
* N is dynamic. The latent size and distribution, classes and shapes travel in the file: the
  ONNX metadata entry ``ganforge`` and the TorchScript extra file ``ganforge.json`` (JSON).

``--format hub`` writes the folder described in :mod:`ganforge.run.hub` (safetensors weights,
``config.json``, a model card and a sample grid). Every format is written under a temporary name
beside ``--out`` and renamed when complete, and checked against ``Run.generate`` first (ONNX
with onnxruntime when it is installed), so a failed export leaves nothing behind.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from safetensors.torch import save as st_save
from torch import nn

from ganforge import fileio
from ganforge.errors import ConfigError, GanforgeError
from ganforge.imaging import save_png, scatter_image, to_plane
from ganforge.registry import Registry
from ganforge.run.card import io_rows, model_card
from ganforge.run.folder import RunFolder
from ganforge.run.hub import (HUB_CARD, HUB_CONFIG, HUB_FORMAT, HUB_SAMPLES, HUB_VERSION,
                              HUB_WEIGHTS, LIBRARY, is_hub_folder)
from ganforge.run.loaded import Run, load_run
from ganforge.version import __version__

TOLERANCE = 1e-4   # largest |exported - PyTorch| accepted when an export checks itself
EXAMPLE_BATCH = 3  # batch traced with (not 0 or 1, which an exporter may fix as constants)
CHECK_BATCH = 5    # another batch size, checked against PyTorch: the batch must stay dynamic


class GraphGenerator(nn.Module):
    """G as an exported file runs it: ``z`` (and ``labels``) in, ``Run.generate``'s output out.

    Args:
        run: the loaded run; its G (EMA when kept) is copied to the CPU in eval mode.
    """

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.generator = copy.deepcopy(run.generator).cpu().eval()
        self.conditional = run.n_classes > 0
        scaling = run.scaling or {}
        for name, record in (("y", scaling.get("y") if run.multi_label else None),
                             ("x", scaling.get("x"))):
            # float64, as ganforge.data.vectors computes the same maps.
            stats = None if record is None else torch.tensor([record["mean"], record["std"]],
                                                             dtype=torch.float64)
            self.register_buffer(f"{name}_scaling", stats)
        self.eval().requires_grad_(False)  # inference only: outputs carry no autograd graph

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args: z (N, z_dim); labels (N,) int64 or (N, K) float32 rows in the data's units.

        Returns:
            (N, C, H, W) images in [-1, 1] or (N, D) vectors in the data's units.
        """
        y = labels
        if self.y_scaling is not None and y is not None:
            y = ((y.double() - self.y_scaling[0]) / self.y_scaling[1]).float()
        x = self.generator(z, y)
        if self.x_scaling is not None and x.dim() == 2:
            x = (x.double() * self.x_scaling[1] + self.x_scaling[0]).float()
        return x


def example_inputs(run: Run, n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``(z,)`` or ``(z, labels)`` for ``n`` samples, labels as the exported graph takes them."""
    gen = torch.Generator().manual_seed(seed)
    z = run.noise.z(n, gen, device="cpu")
    if not run.n_classes:
        return (z,)
    if run.multi_label:
        return z, torch.rand(n, run.n_classes, generator=gen)
    return z, torch.arange(n) % run.n_classes


def reference_output(run: Run, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The graph module run eagerly in PyTorch, which an export must match: what
    ``Run.generate`` gives for these latents and labels (the export tests hold the two equal)."""
    with torch.no_grad():
        return GraphGenerator(run)(*inputs)


def metadata(run: Run) -> dict[str, Any]:
    """What a user of the file needs to feed it: latents, labels, shapes, provenance."""
    r = run.record
    return {"library": LIBRARY, "ganforge_version": __version__, "arch": r["arch"],
            "z_dim": r["z_dim"], "z_dist": r["z_dist"], "z_mean": r.get("z_mean", 0.0),
            "n_classes": run.n_classes, "multi_label": run.multi_label,
            "class_names": run.class_names, "data_shape": r["data_shape"],
            "dataset": r.get("dataset"), "step": run.step, "ema": run.uses_ema,
            "inputs": [{"name": n, "shape": s, "meaning": m} for n, s, m in io_rows(r)]}


def _names(run: Run) -> list[str]:
    return ["z", "labels"] if run.n_classes else ["z"]


def _check(name: str, got: np.ndarray | torch.Tensor, want: torch.Tensor) -> None:
    got = torch.as_tensor(np.asarray(got))
    if got.shape != want.shape or not bool(torch.isfinite(got).all()) or \
            float((got - want).abs().max()) > TOLERANCE:
        diff = (float((got - want).abs().max()) if got.shape == want.shape
                else f"shape {tuple(got.shape)}")
        raise GanforgeError(f"the {name} export does not reproduce the generator ({diff} vs "
                            f"PyTorch, tolerance {TOLERANCE}); nothing was written")


# ---------------------------------------------------------------------------------------------
# The formats
# ---------------------------------------------------------------------------------------------

# info: the modules a format needs beyond ganforge's own (None: nothing more).
EXPORTERS: Registry[Callable[[Run, Path], None]] = Registry("export format")


def missing_modules(fmt: str) -> list[str]:
    """The modules export format ``fmt`` needs that are not installed ([] when it can run)."""
    return [m for m in EXPORTERS.info(fmt) or () if importlib.util.find_spec(m) is None]


def _needs(fmt: str) -> None:
    missing = missing_modules(fmt)
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)}; pip install "
                          "'ganforge[export]'")


@EXPORTERS.register("onnx", info=("onnx", "onnxscript"))
def export_onnx(run: Run, out: Path) -> None:
    """ONNX file (torch.export-based exporter; needs ganforge[export]); inputs z[, labels]."""
    _needs("onnx")
    module, inputs = GraphGenerator(run), example_inputs(run, EXAMPLE_BATCH)
    batch = torch.export.Dim("batch", min=1)
    with fileio.atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        # z and labels share the one batch axis, which the exporter notes for each input.
        warnings.filterwarnings("ignore", message=r"# The axis name: batch will not be used")
        program = torch.onnx.export(module, inputs, dynamo=True, input_names=_names(run),
                                    output_names=["images"], verbose=False,
                                    dynamic_shapes=tuple({0: batch} for _ in inputs))
        program.model.metadata_props["ganforge"] = json.dumps(metadata(run))
        program.save(str(tmp), external_data=False)  # one self-contained file
        if importlib.util.find_spec("onnxruntime") is not None:
            import onnxruntime

            session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            check = example_inputs(run, CHECK_BATCH, seed=1)
            got = session.run(None, {n: t.numpy() for n, t in zip(_names(run), check)})[0]
            _check("ONNX", got, reference_output(run, check))


@EXPORTERS.register("torchscript")
def export_torchscript(run: Run, out: Path) -> None:
    """TorchScript file (torch.jit.load, no ganforge needed); forward(z[, labels])."""
    module, inputs = GraphGenerator(run), example_inputs(run, EXAMPLE_BATCH)
    with fileio.atomic_path(out) as tmp, torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated upstream in favour of torch.export (ONNX here), yet it is
        # still the one format torch.jit.load runs in any PyTorch without extra packages.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        # The nets' input checks (label shapes) are constant for one model: fine to freeze.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(module, inputs, check_trace=False)
        check = example_inputs(run, CHECK_BATCH, seed=1)
        _check("TorchScript", traced(*check), reference_output(run, check))
        torch.jit.save(traced, str(tmp), _extra_files={"ganforge.json": json.dumps(metadata(run))})


@EXPORTERS.register("hub")
def export_hub(run: Run, out: Path) -> None:
    """Folder for the Hugging Face Hub: model.safetensors, config.json, README.md, samples.png."""
    if is_hub_folder(run.path):
        raise GanforgeError(f"'{run.path}' is already a hub export; copy the folder instead")
    folder = RunFolder.read(run.path)
    with fileio.atomic_folder(out) as tmp:
        state = {k: v.detach().cpu().contiguous() for k, v in run.generator.state_dict().items()}
        blob = st_save(state, metadata={"format": "pt"})
        fileio.write_bytes(tmp / HUB_WEIGHTS, blob)
        grid = sample_grid(run, folder)
        if grid is not None:
            save_png(grid, tmp / HUB_SAMPLES)
        fileio.write_json(tmp / HUB_CONFIG, {
            "format": HUB_FORMAT, "format_version": HUB_VERSION, "library_name": LIBRARY,
            "ganforge_version": __version__, "weights": HUB_WEIGHTS,
            "sha256": hashlib.sha256(blob).hexdigest(), "step": run.step, "ema": run.uses_ema,
            "source": run.path.name, "model": run.record, "config": run.config})
        fileio.write_text(tmp / HUB_CARD, model_card(run, folder, grid is not None))


def sample_grid(run: Run, folder: RunFolder) -> Optional[np.ndarray]:
    """The card's picture: a grid (one row per class) or a scatter drawn from the exported G;
    for G conditioned on vectors, the run's own last fixed-noise grid (no rows to ask for)."""
    if run.multi_label:
        final = folder.final_grid
        if final is None:
            return None
        from PIL import Image

        return np.asarray(Image.open(final).convert("RGB"))
    if len(run.record["data_shape"]) == 1:
        labels = torch.arange(2000) % run.n_classes if run.n_classes else None
        points = run.generate(n=None if labels is not None else 2000, labels=labels, seed=0)
        return scatter_image(to_plane(points), title=f"{len(points)} samples")
    per_class = max(2, min(10, 200 // max(1, run.n_classes)))
    return run.grid(per_class=per_class, n=64, seed=0)


# ---------------------------------------------------------------------------------------------
# The entry point and the command
# ---------------------------------------------------------------------------------------------

def check_output(out: Path, fmt: str) -> None:
    """Refuse an output that would overwrite something or cannot take the format."""
    if out.is_dir():
        if fmt != "hub":
            raise GanforgeError(f"--out '{out}' is a folder; the {fmt} format is one file, "
                                "e.g. --out generator.onnx")
        if any(out.iterdir()):
            raise GanforgeError(f"--out '{out}' exists and is not empty; choose a new folder "
                                "or delete it")
    elif out.exists() and (fmt == "hub" or out.stat().st_size > 0):
        raise GanforgeError(f"--out '{out}' already exists; choose another path or delete it")


def export(run: str | Path | Run, fmt: str, out: str | Path,
           checkpoint: Optional[str] = None) -> Path:
    """Export the generator of a run folder (or hub export) in format ``fmt`` to ``out``.

    Args:
        run: a run folder, a hub export, or a loaded :class:`Run`.
        fmt: ``onnx``, ``torchscript`` or ``hub`` (see :data:`EXPORTERS`).
        out: the file (onnx, torchscript) or new folder (hub).
        checkpoint: ``best`` or a checkpoint file (default: the newest).

    Raises:
        GanforgeError: an unknown format, a missing run, an existing non-empty output, a
            missing extra, or an export that fails (nothing is left at ``out`` then).
    """
    exporter, out = EXPORTERS.get(fmt), Path(out)
    check_output(out, fmt)
    loaded = run if isinstance(run, Run) else load_run(run, checkpoint, device="cpu")
    try:
        exporter(loaded, out)
    except GanforgeError:
        raise
    except Exception as err:  # noqa: BLE001 - the exporters' many error types, as one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise GanforgeError(f"{fmt} export of '{loaded.path}' failed ({type(err).__name__}: "
                            f"{first[:300]}); nothing was written, --debug shows why") from err
    return out


def add_export_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge export`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "export", help="export a run's generator: ONNX, TorchScript or a Hub folder",
        description="Export the generator (its EMA copy when kept) so it runs without "
        "ganforge. Examples: ganforge export RUN --format onnx --out g.onnx; ganforge export "
        "RUN --format hub --out my-gan (then: huggingface-cli upload USER/my-gan my-gan)")
    p.add_argument("run", help="a run folder made by `ganforge train` (or a hub export)")
    p.add_argument("--format", "-f", required=True, dest="export_format", metavar="FORMAT",
                   help=f"one of: {', '.join(EXPORTERS.names())}")
    p.add_argument("--out", "-o", required=True, help="the file (onnx, torchscript) or a new "
                   "folder (hub)")
    p.add_argument("--checkpoint", help="'best' (kept by eval.best), a name in RUN/checkpoints such "
                   "as min_5 (log.checkpoint_minutes) or a checkpoints/*.json file "
                   "(default: the newest)")


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``ganforge export``."""
    out = export(args.run, args.export_format, args.out, args.checkpoint)
    print(f"wrote {out}")
    return 0


__all__ = ["EXPORTERS", "GraphGenerator", "add_export_parser", "cmd_export", "export",
           "missing_modules"]
