"""Samples of a trained run as files: ``ganforge generate RUN --out PATH``.

What is drawn follows the run's kind of condition, and anything that is not that kind is
refused before a sample is drawn (never cast: float rows given to a class model would all
become class 0):

* unconditional runs: ``--n`` samples; ``--class``, ``--per-class`` and ``--condition`` are
  refused;
* class-conditional runs: ``--per-class``, ``--class`` (with ``--n`` per class), ``--n``
  (cycling through the classes), or ``--condition`` with (N,) whole-number class indices (an
  ``(N, 1)`` column too) from an ``.npy`` file or written out (``--condition 3,3,7``);
* runs conditioned on K-column vectors (0/1 attributes or continuous values): ``--condition``
  with an (N, K) ``.npy`` array, or one (K,) row (``--condition 1,0``) repeated ``--n`` times.

Where the samples go (:data:`WRITERS`, picked by ``--format`` and ``--out``): a grid
``PATH.png`` (a scatter plot for vector data), one PNG per sample in the folder ``PATH``, or an
npz with ``images`` (or ``points``) and one ``labels`` entry per sample. An existing ``--out`` is
refused unless ``--force`` (a folder only when it holds nothing but earlier ``sample_*.png``);
everything is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ganforge import fileio
from ganforge.errors import GanforgeError
from ganforge.imaging import label_grid, make_grid, save_images, save_png, scatter_image, to_plane
from ganforge.registry import Registry
from ganforge.run.loaded import Run, class_indices, condition_rows, load_run

SAMPLE_PREFIX = "sample"
SAMPLE_FILE = re.compile(rf"^{SAMPLE_PREFIX}_\d+\.png$")  # what save_images names the files
NUMBERS = re.compile(r"^\s*[-+0-9.eE]+(\s*,\s*[-+0-9.eE]+)*\s*$")  # "1,0" or "-0.5, 2e-3"


# ---------------------------------------------------------------------------------------------
# What to draw
# ---------------------------------------------------------------------------------------------

def read_condition(text: str) -> np.ndarray:
    """The ``--condition`` value: an ``.npy`` file (never a pickle) or one row written out.

    Args:
        text: a path to an ``.npy`` file holding a (N,), (N, K) or (K,) numeric array, or
            comma-separated numbers such as ``1,0`` (one (K,) row; class indices for a class
            model). An existing file wins over the numbers reading.

    Returns:
        The array as stored (its dtype kept, so whole numbers stay integers).
    """
    if not Path(text).is_file() and NUMBERS.match(text):
        try:
            values = [float(v) for v in text.split(",")]
        except ValueError:
            values = None
        if values is not None:
            whole = all(v.is_integer() for v in values)
            return np.array(values, dtype=np.int64 if whole else np.float64)
    try:
        rows = np.load(text, allow_pickle=False)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GanforgeError(f"cannot read condition rows '{text}' ({first}); pass an .npy file "
                            "saved with np.save, or one row of numbers such as --condition 1,0"
                            ) from None
    if not isinstance(rows, np.ndarray) or rows.ndim not in (1, 2):
        shape = getattr(rows, "shape", "an npz archive")
        if hasattr(rows, "close"):  # np.load opened an npz archive
            rows.close()
        raise GanforgeError(f"condition rows '{text}' must be a (N,), (N, K) or (K,) array, got "
                            f"{shape}; save one array with np.save")
    return rows


def _grid_row(n: int) -> int:
    return max(1, int(round(n ** 0.5)))


def generate_labels(args: argparse.Namespace, run: Run
                    ) -> tuple[Optional[int], Optional[torch.Tensor], int]:
    """What the generate flags ask of ``run``, checked against its kind of condition.

    Returns:
        n (None when the labels give the count), labels ((N,) int64 classes, (N, K) float32
        condition rows in the data's units — one per sample — or None), images per grid row.
    """
    if args.condition is not None:
        return _given_condition(args, run)
    if run.multi_label:
        names = f" ({', '.join(run.class_names)})" if run.class_names else ""
        raise GanforgeError(f"run '{args.run}' is conditioned on {run.n_classes}-column "
                            f"condition rows{names}; pass them with --condition FILE.npy (an "
                            f"(N, {run.n_classes}) array) or --condition with one row of "
                            f"{run.n_classes} comma-separated values (repeated --n times)")
    if args.classes:  # N (default 10) samples of each requested class, one row per class
        per = args.n or args.per_class or 10
        return None, torch.tensor(args.classes).repeat_interleave(per), per
    if args.per_class:
        return None, run.per_class_labels(args.per_class), args.per_class
    if args.n is not None:
        n = args.n
        labels = torch.arange(n) % run.n_classes if run.n_classes else None
        return (None if labels is not None else n), labels, _grid_row(n)
    if run.n_classes:
        return None, run.per_class_labels(10), 10
    return 64, None, 8


def _given_condition(args: argparse.Namespace, run: Run
                     ) -> tuple[Optional[int], torch.Tensor, int]:
    """``--condition``: class indices or condition rows, whichever the run is conditioned on."""
    if args.classes or args.per_class:
        raise GanforgeError("--condition gives each sample's condition itself; drop --class / "
                            "--per-class")
    if not run.n_classes:
        raise GanforgeError(f"run '{args.run}' is unconditional and takes no --condition; drop "
                            "it and use --n")
    values, what = read_condition(args.condition), f"--condition '{args.condition}'"
    if not run.multi_label:
        if args.n is not None:
            raise GanforgeError(f"{what} gives one sample per class index; drop --n")
        labels = class_indices(values, run.n_classes, what)
        return None, labels, _grid_row(len(labels))
    one_row = values.ndim == 1
    if not one_row and args.n is not None:
        raise GanforgeError(f"--n repeats one ({run.n_classes},) row, and {what} holds "
                            f"{len(values)} rows (one sample each); drop --n")
    # A single row is repeated here, so the npz holds one condition row per sample.
    rows = condition_rows(values, run.n_classes, args.n, run.class_names, what)
    return None, rows, _grid_row(len(rows))


# ---------------------------------------------------------------------------------------------
# Where the samples go
# ---------------------------------------------------------------------------------------------

Writer = Callable[[Run, torch.Tensor, Optional[torch.Tensor], int, Path], None]
# info: the suffix of the file the writer makes at --out; None when it makes a folder.
WRITERS: Registry[Writer] = Registry("sample output")


@WRITERS.register("npz", info=".npz")
def write_npz(run: Run, samples: torch.Tensor, labels: Optional[torch.Tensor], nrow: int,
              out: Path) -> None:
    """npz: 'images' uint8 (or 'points' float32 for vector data) and one label per sample."""
    payload = ({"points": samples.numpy()} if samples.dim() == 2
               else {"images": run.uint8(samples)})
    if labels is not None:  # classes as int64 (N,), condition rows as float32 (N, K)
        y = labels.cpu().numpy()
        payload["labels"] = y.astype(np.float32 if y.ndim == 2 else np.int64)
    with fileio.atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)


@WRITERS.register("grid", info=".png")
def write_grid(run: Run, samples: torch.Tensor, labels: Optional[torch.Tensor], nrow: int,
               out: Path) -> None:
    """PNG grid of images; one row per class when the labels are classes."""
    grid = (label_grid(samples, labels, run.class_names, nrow)
            if labels is not None and labels.dim() == 1 else make_grid(samples, nrow))
    save_png(grid, out)


@WRITERS.register("scatter", info=".png")
def write_scatter(run: Run, samples: torch.Tensor, labels: Optional[torch.Tensor], nrow: int,
                  out: Path) -> None:
    """PNG scatter plot of vector samples (their first two coordinates, or a projection)."""
    save_png(scatter_image(to_plane(samples), title=f"{len(samples)} samples"), out)


@WRITERS.register("folder", info=None)
def write_folder(run: Run, samples: torch.Tensor, labels: Optional[torch.Tensor], nrow: int,
                 out: Path) -> None:
    """One PNG per sample (``sample_000000.png`` ...), written to a temporary folder beside
    ``out`` and renamed onto it, so a failure leaves no partial folder."""
    # (empty, or with --force earlier samples only: check_output made sure)
    with fileio.atomic_folder(out, replace=True) as tmp:
        save_images(samples, tmp, prefix=SAMPLE_PREFIX)


def output_kind(fmt: str, out: Path, vectors: bool) -> str:
    """The :data:`WRITERS` entry for ``--format`` and ``--out``; a one-line error for a pair
    that would write something other than what its name says."""
    suffix = out.suffix.lower()
    if fmt == "npz":
        if suffix == ".png":
            raise GanforgeError(f"--format npz writes an npz file, not '{out}'; name it "
                                f"{out.with_suffix('.npz')} (or drop --format for a PNG)")
        return "npz"
    if suffix == ".npz":
        raise GanforgeError(f"--out '{out}' names an npz file; add --format npz (PNG output is "
                            "PATH.png for a grid or a folder for one file per sample)")
    if suffix == ".png":
        return "scatter" if vectors else "grid"
    if vectors:
        raise GanforgeError("vector samples are saved as --format npz, or drawn as a scatter "
                            "plot with --out PATH.png")
    return "folder"


def check_output(out: Path, suffix: Optional[str], force: bool) -> None:
    """Refuse an ``--out`` that would overwrite something (unless ``force``) or that is the
    wrong kind of thing: a file where a folder is expected, or a folder where a file is.

    Args:
        suffix: the file the writer makes (".png", ".npz"); None when it makes a folder.
    """
    blocker = fileio.file_in_the_way(out.parent)
    if blocker is not None:
        raise GanforgeError(fileio.not_a_folder(blocker))
    if suffix is None:
        if out.exists() and not out.is_dir():
            raise GanforgeError(f"'{out}' is a file, not a folder; one PNG per sample goes into a "
                                "folder: pass a new folder, or PATH.png for one grid")
        held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if held and not force:
            raise GanforgeError(f"--out '{out}' exists and is not empty; choose a new folder, "
                                "delete it or pass --force")
        foreign = [name for name in held if not SAMPLE_FILE.match(name)]
        if foreign:  # --force replaces earlier samples, never other files
            raise GanforgeError(f"--out '{out}' holds files that generate did not write "
                                f"('{foreign[0]}'); --force replaces only a folder of "
                                f"{SAMPLE_PREFIX}_*.png: choose a new folder")
    elif out.is_dir():
        raise GanforgeError(f"'{out}' is a folder, not a file; pass a file path such as "
                            f"{out / ('samples' + suffix)}")
    elif out.exists() and not force:
        raise GanforgeError(f"--out '{out}' already exists; choose another path, delete it or "
                            "pass --force")


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------

def add_generate_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge generate`` to the CLI's subcommands."""
    p = subparsers.add_parser(
        "generate", help="sample from a trained run",
        description="Sample from a run folder. Examples: ganforge generate RUN --per-class 10 "
        "--out grid.png; ganforge generate RUN --n 10000 --format npz --out samples.npz; "
        "ganforge generate RUN --condition 1,0 --n 500 --out ring.png")
    p.add_argument("run", help="a run folder made by `ganforge train`, or a folder made by "
                   "`ganforge export --format hub`")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--n", type=int, help="number of samples")
    what.add_argument("--per-class", type=int, help="samples per class (conditional models)")
    p.add_argument("--class", dest="classes", type=int, action="append",
                   help="only this class (repeatable); with --n, N samples of each")
    p.add_argument("--condition", metavar="FILE.npy|V1,V2,...",
                   help="each sample's condition: class models take (N,) integer class "
                   "indices; models conditioned on K-column vectors take an (N, K) array in the "
                   "data's units, or one (K,) row (a .npy file or numbers such as 1,0) "
                   "repeated --n times")
    p.add_argument("--format", choices=("png", "npz"), default="png",
                   help="png: a grid (PATH.png) or one file per sample (PATH a folder); npz: "
                   "'images' uint8 (or 'points' float for vector data) and 'labels'")
    p.add_argument("--out", "-o", required=True, help="output file or folder")
    p.add_argument("--force", action="store_true", help="replace an existing --out (a folder "
                   "only when it holds nothing but earlier sample_*.png files)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (same seed, same samples)")
    p.add_argument("--checkpoint", help="'best' (kept by eval.best), a name in RUN/checkpoints "
                   "such as min_5 (log.checkpoint_minutes) or a checkpoints/*.json file "
                   "(default: the newest)")
    p.add_argument("--device", default="auto")


def cmd_generate(args: argparse.Namespace) -> int:
    """Run ``ganforge generate``: every check comes before the first sample is drawn."""
    for flag in ("n", "per_class"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise GanforgeError(f"--{flag.replace('_', '-')} must be positive")
    run = load_run(args.run, args.checkpoint, args.device)
    out = Path(args.out)
    kind = output_kind(args.format, out, vectors=len(run.record["data_shape"]) == 1)
    check_output(out, WRITERS.info(kind), args.force)
    n, labels, nrow = generate_labels(args, run)
    samples = run.generate(n=n, labels=labels, seed=args.seed)
    WRITERS.get(kind)(run, samples, labels, nrow, out)
    print(f"wrote {len(samples)} samples to {out}")
    return 0


__all__ = ["WRITERS", "add_generate_parser", "cmd_generate", "generate_labels", "read_condition"]
