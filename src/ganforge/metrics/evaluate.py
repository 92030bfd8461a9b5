"""Scoring samples: ``ganforge evaluate`` and its Python entry :func:`evaluate`.

Samples come from a run folder or hub export (drawn with its G, labels cycling over its
classes), from an npz written by ``ganforge generate --format npz``, or from a folder of images
(any generator's); the real set is a dataset (``--dataset``, by default a run's own) or images
given as files (``--reference FOLDER_OR_NPZ``, :mod:`.reference_files`). Every registered metric
(:mod:`ganforge.metrics` imports them all) runs on one shared :class:`~.context.EvalContext`, and
the results are printed and merged into ``RUN/metrics.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import zipfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

import ganforge.metrics  # noqa: F401  (registers every metric before one is looked up)
from ganforge import fileio
from ganforge.config import DataConfig, metric_settings
from ganforge.data import build_dataset
from ganforge.data.base import one_line
from ganforge.data.vectors import destandardize
from ganforge.errors import ConfigError, GanforgeError
from ganforge.imaging import to_uint8
from ganforge.metrics.base import METRICS, FeatureExtractor, MetricResult
from ganforge.metrics.context import EvalContext
from ganforge.metrics.reference_files import open_reference, read_folder
from ganforge.run.hub import is_hub_folder
from ganforge.run.layout import CHECKPOINT_DIR, CONFIG_FILE, METRICS_FILE
from ganforge.run.loaded import load_config, load_run
from ganforge.runtime import pick_device

GENERATE_CHUNK = 1000  # samples per G call when scoring a run: bounds memory at 64 px RGB
# Metrics that read the reference dataset themselves, not through the cached statistics.


# --------------------------------------------------------------------------------------------
# Samples and the evaluate entry point
# --------------------------------------------------------------------------------------------

def load_npz(path: Path, n: Optional[int] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Samples saved by ``ganforge generate --format npz`` (the first ``n`` when given).

    The file holds ``images`` uint8 (N, H, W) or (N, C, H, W), or ``points`` float (N, D) for
    vector data, and optionally ``labels``: int (N,) classes or float (N, K) condition rows.
    Returns samples (N, C, H, W) uint8 or (N, D) float32, and labels (N,) int64, (N, K) float32
    or None.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:  # object arrays would unpickle
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise GanforgeError(f"cannot read samples '{path}' ({one_line(err)}); pass an npz made by "
                            "`ganforge generate --format npz`") from None
    if "images" in arrays:
        x = arrays["images"]
        if x.dtype != np.uint8 or x.ndim not in (3, 4):
            raise GanforgeError(f"'{path}': images must be uint8 (N, H, W) or (N, C, H, W), "
                                f"got {x.dtype} {x.shape}")
        samples = torch.from_numpy(x[:, None] if x.ndim == 3 else x)
    elif "points" in arrays:
        samples = torch.from_numpy(arrays["points"].astype(np.float32))
    else:
        raise GanforgeError(f"'{path}' has neither 'images' nor 'points'")
    labels = arrays.get("labels")
    y = None
    if labels is not None:  # condition rows stay rows; classes become one int64 column
        y = (torch.from_numpy(labels.astype(np.float32)) if labels.ndim == 2
             else torch.from_numpy(labels.astype(np.int64)).flatten())
    if y is not None and len(y) != len(samples):
        raise GanforgeError(f"'{path}': {len(y)} labels for {len(samples)} samples")
    if n is not None:
        samples, y = samples[:n], (None if y is None else y[:n])
    return samples, y


def condition_rows(reference: Any, n: int, seed: int) -> torch.Tensor:
    """``n`` condition rows drawn (seeded, with replacement) from the reference data's own rows,
    in the data's units: what a run conditioned on vectors is asked for when it is scored.

    Returns:
        (n, K) float32.
    """
    data = build_dataset(reference)
    if data.y is None or data.y.dim() != 2:
        raise ConfigError(f"the run is conditioned on vectors but reference '{reference.name}' "
                          "has no condition rows; pass its own dataset as --dataset")
    pick = torch.randint(0, len(data.y), (n,), generator=torch.Generator().manual_seed(seed))
    scaling = (data.extra.get("scaling") or {}).get("y")
    return destandardize(data.y.cpu()[pick], scaling)


def sample_run(run: Any, n: int, seed: int, reference: Any = None
               ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """``n`` samples of a loaded run: labels cycling over its classes (uniform) when conditional
    on classes, condition rows drawn from ``reference`` when conditioned on vectors.

    Images are quantised to uint8 like saved samples, so a run and its npz score the same.
    Chunk i is drawn with seed ``seed * 1_000_003 + i``.
    """
    if run.multi_label:
        y = condition_rows(reference, n, seed)
    else:
        y = torch.arange(n) % run.n_classes if run.n_classes else None
    parts = []
    for i, start in enumerate(range(0, n, GENERATE_CHUNK)):
        count = min(GENERATE_CHUNK, n - start)
        part = run.generate(n=None if y is not None else count,
                            labels=None if y is None else y[start:start + count],
                            seed=seed * 1_000_003 + i)
        parts.append(to_uint8(part) if part.dim() == 4 else part.float())
    return torch.cat(parts), y


def is_run(path: Path) -> bool:
    """A run folder (config.json or checkpoints/) or a hub export: samples come from its G."""
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / CHECKPOINT_DIR).is_dir()
                              or is_hub_folder(path))


def run_reference(run_dir: Path, split: str = "test", root: Optional[str] = None) -> Any:
    """The run's own data settings (dataset, size, channels, toy set) on the reference split."""
    data = load_config(run_dir).data
    return replace(data, split=split, limit=None, root=root or data.root)


def evaluate(source: str | Path, metrics: list[str],
             extractor: FeatureExtractor | str | None = None, reference: Any = None,
             n_fake: Optional[int] = 10_000, n_real: Optional[int] = None, seed: int = 0,
             device: str = "cpu", cache_dir: Optional[Path] = None,
             log: Callable[[str], None] = print,
             checkpoint: Optional[str | Path] = None,
             settings: Optional[dict[str, dict[str, Any]]] = None) -> list[MetricResult]:
    """Score a run folder, an npz of samples or a folder of sample images.

    Args:
        source: a run folder or hub export (samples drawn with its G), an npz (see
            :func:`load_npz`) or a folder of images (all of one square size).
        metrics: registry names, e.g. ["fid", "label-acc"] (unknown names fail at once).
        extractor: a FeatureExtractor or a spec ("mnist-lenet", "inception", a path); None
            means ``<reference dataset>-lenet``.
        reference: DataConfig (or dict of its fields) of the real data, or the path of a
            folder of images or an npz (``--reference``); None for a run uses its own
            dataset's test split.
        n_fake: samples drawn from a run (the first n of an npz; None: all of the npz).
        n_real: real samples for the statistics (None: as many as fakes).
        checkpoint: which checkpoint of a run folder draws the samples: None (the newest),
            "best", a name in ``RUN/checkpoints`` such as "min_5", or a checkpoint JSON path.
        settings: each metric's own settings by name (``eval.settings``), checked against
            what the metric declares; a metric not named keeps its defaults.

    Returns:
        One MetricResult per metric, in the order asked; a run's results name the generator
        that drew the samples (``model``: step, EMA or not, checkpoint).
    """
    fns = [METRICS.get(name) for name in metrics]
    kwargs = {name: dataclasses.asdict(obj) for name, values in (settings or {}).items()
              if (obj := metric_settings(name, values)) is not None}
    path = Path(source)
    model: Optional[dict[str, Any]] = None
    files = reference if isinstance(reference, (str, Path)) else None
    reference = DataConfig(**reference) if isinstance(reference, dict) else reference
    if is_run(path):
        run = load_run(path, checkpoint, device=device)
        model = {"step": int(run.step), "ema": bool(run.uses_ema),
                 "checkpoint": Path(run.checkpoint).stem}
        own = run_reference(path) if files is not None or reference is None else reference
        reference = own if reference is None else reference
        samples, labels = sample_run(run, n_fake or 10_000, seed, own)
        if files is not None and extractor is None:  # the run's own domain evaluator
            extractor = f"{own.name}-lenet"
    elif path.is_dir():
        x, _ = read_folder(path)
        samples, labels = torch.from_numpy(x[:n_fake] if n_fake else x), None
    elif path.is_file():
        samples, labels = load_npz(path, n_fake)
    elif not path.exists():
        raise GanforgeError(f"'{source}' does not exist; pass a run folder, an npz made by "
                            "`ganforge generate --format npz` or a folder of images")
    else:
        raise GanforgeError(f"'{source}' is neither a run folder, an npz file nor a folder of "
                            "images")
    if files is not None:
        reference = open_reference(files, tuple(samples.shape[1:]))
    ctx = EvalContext(samples, labels, reference, extractor, n_real, seed, device, cache_dir, log)
    return [replace(fn(ctx, **kwargs.get(name, {})), model=model)
            for name, fn in zip(metrics, fns)]


# --------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------

def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge evaluate`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "evaluate", help="score a run, an npz or a folder of samples (FID, KID, IS, ...)",
        description="Score samples. Example: ganforge evaluate RUN --metrics fid,label-acc; "
        "ganforge evaluate samples.npz --metrics fid --dataset mnist --data-root ../data; "
        "ganforge evaluate my_samples/ --reference real_images/ --evaluator inception")
    p.add_argument("source", metavar="SAMPLES", help="a run folder (or hub export), an npz of "
                   "samples, or a folder of sample images")
    p.add_argument("--metrics", "-m", default="fid",
                   help=f"comma-separated metric names ({', '.join(METRICS.names())})")
    p.add_argument("--evaluator", help="feature extractor: mnist-lenet, inception or a path "
                   "(default: <dataset>-lenet)")
    p.add_argument("--dataset", help="reference dataset (default for runs: the run's own)")
    p.add_argument("--reference", metavar="FOLDER_OR_NPZ", help="the real set as files instead "
                   "of a dataset: a folder of images (searched recursively) or an npz ('images' "
                   "uint8, or 'x'); brought to the samples' size, statistics cached by content")
    p.add_argument("--data-root", help="folder with the reference dataset's files")
    p.add_argument("--split", default="test", help="reference split (default: test)")
    p.add_argument("--toy", help="toy-2d reference set (implies --dataset toy-2d): 8gaussians "
                   "or 25gaussians")
    p.add_argument("--n", type=int, default=None, help="fake samples (default: 10000 for runs, "
                   "all of an npz or folder)")
    p.add_argument("--n-real", type=int, help="real samples (default: as many as fakes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", help="runs: 'best' (kept by eval.best), a name in "
                   "RUN/checkpoints such as min_5 (log.checkpoint_minutes) or a checkpoints/"
                   "*.json file (default: the newest)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", "-o", help="JSON file (default: RUN/metrics.json, else "
                   "SAMPLES-metrics.json beside the samples)")


def _jsonable(value: Any) -> Any:
    """Tensors to lists and NaN/inf to None, so the JSON file is strict JSON."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_table(results: list[MetricResult]) -> str:
    """Name, value and the scalar details of each result, one line each."""
    width = max([len(r.name) for r in results] + [6])
    lines = [f"{'metric':{width}s}  {'value':>12s}  details"]
    for r in results:
        extras = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                  for k, v in r.details.items() if isinstance(v, (int, float)) and k != "estimate"]
        if "estimate" in r.details:
            extras.append("(estimate)")
        lines.append(f"{r.name:{width}s}  {r.value:12.5g}  {' '.join(extras)}")
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``ganforge evaluate``: print the table, write (merge into) the JSON file."""
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not names:
        raise ConfigError("--metrics is empty; e.g. --metrics fid,kid")
    for flag in ("n", "n_real"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise ConfigError(f"--{flag.replace('_', '-')} must be positive")
    source, reference, run = Path(args.source), None, is_run(Path(args.source))
    if args.reference and (args.dataset or args.toy):
        raise ConfigError("--reference and --dataset/--toy both name the real set; pass one")
    if args.reference:
        reference = args.reference
    elif args.dataset or args.toy:
        reference = {"name": args.dataset or "toy-2d", "root": args.data_root,
                     "split": args.split, **({"toy": args.toy} if args.toy else {})}
    elif run:
        reference = run_reference(source, args.split, args.data_root)
    elif source.is_dir():
        raise ConfigError(f"'{source}' is a folder of images, not a run: name the real set with "
                          "--reference FOLDER_OR_NPZ or --dataset")
    n = args.n if args.n is not None or run else None
    if args.checkpoint and not run:
        raise ConfigError(f"--checkpoint picks a checkpoint of a run folder; '{source}' is not "
                          "one (drop --checkpoint)")
    results = evaluate(source, names, args.evaluator, reference, n, args.n_real, args.seed,
                       str(pick_device(args.device)), checkpoint=args.checkpoint)
    print(format_table(results))
    stem = source.name if source.is_dir() else source.stem
    out = Path(args.out) if args.out else (source / METRICS_FILE if run
                                           else source.with_name(f"{stem}-metrics.json"))
    save_results(out, source, results)
    print(f"wrote {out}")
    return 0


def save_results(out: Path, source: str | Path, results: list[MetricResult]) -> Path:
    """Merge ``results`` into the JSON file ``out`` (``RUN/metrics.json``) atomically: earlier
    metrics of the same run are kept, a recomputed name is replaced."""
    merged: dict[str, Any] = {}
    if out.is_file():
        try:
            merged = {r["name"]: r for r in json.loads(out.read_text()).get("results", [])}
        except (ValueError, AttributeError, KeyError, TypeError):
            merged = {}
    merged.update({r.name: _jsonable(asdict(r)) for r in results})
    fileio.write_json(out, {"source": str(source), "results": list(merged.values())})
    return out
