"""The ``ganforge`` command: train | generate | list | summary.

Every user-fixable problem is a :class:`~ganforge.errors.GanforgeError`: printed as one line
``ganforge: error: ...`` with exit status 2 and no traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional, Sequence

from ganforge.errors import GanforgeError

if TYPE_CHECKING:  # torch loads lazily so `ganforge --help` stays fast
    import torch

EXIT_USER_ERROR = 2


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a preset or config file",
                       description="Train a GAN. Example: ganforge train --preset cgan-mnist "
                       "--data-root ../data --time-budget 5m")
    p.add_argument("--preset", "-p", help="preset name (see `ganforge list`)")
    p.add_argument("--config", "-c", help="a TOML config file (may name a preset as 'base')")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a config key, e.g. optim.lr_g=1e-4")
    p.add_argument("--data-root", help="folder with existing dataset files (data.root)")
    p.add_argument("--out", "-o", help="run folder (default: runs/<preset>-<time>)")
    p.add_argument("--time-budget", help="train for this long, e.g. 90s, 5m, 2h (train.minutes); "
                   "a budget given here replaces the preset's")
    p.add_argument("--steps", type=int, help="train for this many G steps (train.steps)")
    p.add_argument("--epochs", type=float, help="train for this many epochs (train.epochs)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (train.device)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its newest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _generate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="sample from a trained run",
                       description="Sample from a run folder. Examples: ganforge generate RUN "
                       "--per-class 10 --out grid.png; ganforge generate RUN --n 10000 --format "
                       "npz --out samples.npz")
    p.add_argument("run", help="a run folder made by `ganforge train`, or a folder made by "
                   "`ganforge export --format hub`")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--n", type=int, help="number of samples")
    what.add_argument("--per-class", type=int, help="samples per class (conditional models)")
    p.add_argument("--class", dest="classes", type=int, action="append",
                   help="only this class (repeatable); with --n, N samples of each")
    p.add_argument("--condition", metavar="FILE.npy",
                   help="models conditioned on vectors: one sample per (K,) row of an (N, K) "
                   "array in the data's units (a single (K,) row is repeated --n times)")
    p.add_argument("--format", choices=("png", "npz"), default="png",
                   help="png: a grid (PATH.png) or one file per sample (PATH a folder); npz: "
                   "'images' uint8 (or 'points' float for vector data) and 'labels'")
    p.add_argument("--out", "-o", required=True, help="output file or folder")
    p.add_argument("--seed", type=int, default=0, help="latent seed (same seed, same samples)")
    p.add_argument("--checkpoint", help="'best' (kept by eval.best), a name in RUN/checkpoints such "
                   "as min_5 (log.checkpoint_minutes) or a checkpoints/*.json file "
                   "(default: the newest)")
    p.add_argument("--device", default="auto")


def _report_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="rebuild a run's report.html from its folder",
                       description="Write RUN/report.html: one self-contained page with the "
                       "curves, grids, metrics, diagnostics and config of a run. Example: "
                       "ganforge report runs/cgan-digits-20261125-101500")
    p.add_argument("run", help="a run folder made by `ganforge train`")
    p = sub.add_parser("compare", help="put runs side by side on one page",
                       description="Write one self-contained page comparing runs: config "
                       "differences, metrics (mean ± std over seeds), grids and overlaid curves. "
                       "Example: ganforge compare runs/cgan runs/acgan --out compare.html")
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more run folders")
    p.add_argument("--out", "-o", default="compare.html", help="the page (default compare.html)")


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error style (one line, the fix, status 2); subcommands too."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"ganforge: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ganforge", description="Train, watch, sample and compare GANs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    _generate_parser(sub)
    from ganforge.metrics.evaluate import add_evaluate_parser
    from ganforge.metrics.evaluator import add_train_evaluator_parser
    from ganforge.run.export import add_export_parser

    add_export_parser(sub)
    add_evaluate_parser(sub)
    add_train_evaluator_parser(sub)
    _report_parsers(sub)
    sub.add_parser("list", help="list presets, models, losses and datasets")
    p = sub.add_parser("summary", help="print G and D layer tables of a preset")
    p.add_argument("preset")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[])
    return parser


# ------------------------------------------------------------------------------------ commands

def cmd_train(args: argparse.Namespace) -> int:
    from ganforge import api
    from ganforge.config import describe_budget, parse_duration_minutes, resolve
    from ganforge.training.watch.trackers import check_trackers

    overrides = list(args.overrides)
    for flag, key in (("data_root", "data.root"), ("steps", "train.steps"),
                      ("epochs", "train.epochs"), ("device", "train.device"),
                      ("seed", "train.seed")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}" if flag != "data_root" else f"{key}=\"{value}\"")
    if args.time_budget is not None:
        overrides.append(f"train.minutes={parse_duration_minutes(args.time_budget)}")
    if args.no_progress:
        overrides.append("log.progress=false")
    if args.resume:
        if args.preset or args.config:
            raise GanforgeError("--resume uses the run's saved config; drop --preset/--config "
                                "(use --set to change e.g. the budget)")
        cfg = api.load_config(args.resume, overrides)
    else:
        if not args.preset and not args.config:
            raise GanforgeError("say what to train: --preset NAME (see `ganforge list`) or "
                                "--config FILE")
        cfg = resolve(args.preset, args.config, overrides)
    check_trackers(cfg.log.trackers)  # a missing extra is named before anything runs
    if args.dry_run:
        print(cfg.to_json())
        # On stderr, so that stdout stays the config as JSON for tools.
        print(f"budget: {describe_budget(cfg.train)}", file=sys.stderr)
        return 0
    if args.resume:
        run = api.train(cfg, resume=args.resume)
    else:
        run = api.train(cfg, out=args.out)
    if run is not None:  # None on torchrun ranks other than 0
        print(closing_summary(run.path))
    return 0


def closing_summary(run_dir: Path) -> str:
    """The lines a training run ends with: where its report is, its headline numbers (from
    ``eval.final``/``ganforge evaluate`` in ``metrics.json``, else the last in-loop metrics)
    and the next commands to try."""
    from ganforge.metrics.base import per_class_line, protocol_line
    from ganforge.run.folder import RunFolder
    from ganforge.run.layout import REPORT_FILE

    folder = RunFolder.read(run_dir)
    lines = [f"run folder: {run_dir}"]
    if (run_dir / REPORT_FILE).is_file():
        lines.append(f"report:     {run_dir / REPORT_FILE}  (open it in a browser)")
    for name, result in sorted(folder.evaluations.items()):
        details = result.get("details") or {}
        extra = ""
        if details.get("worst_class_acc") is not None:
            extra = f" (worst class {details['worst_class_acc']:.3f}"
            if details.get("disagreement") is not None:
                extra += f", evaluators disagree on {details['disagreement']:.1%}"
            extra += ")"
        lines.append(f"metric:     {name} = {result.get('value'):.4g}{extra}")
        for line in (per_class_line(details), protocol_line(result.get("protocol") or {})):
            if line:
                lines.append(f"            {line}")
    if not folder.evaluations:
        keys = {k for record in folder.records for k in record if k.startswith("Metrics/")}
        last = {k[len("Metrics/"):]: folder.last(k) for k in keys}
        lines += [f"metric:     {k} = {v:.4g} (in-loop)" for k, v in sorted(last.items())
                  if v is not None]
    how = "--per-class 10" if folder.conditional_classes else "--n 64"
    lines += ["next:       ganforge generate {run} {how} --out samples.png".format(
                  run=run_dir, how=how),
              f"            ganforge evaluate {run_dir} --metrics fid,kid,pr"
              + (",label-acc" if folder.conditional_classes else ""),
              f"            ganforge export {run_dir} --format onnx --out generator.onnx",
              f"            tensorboard --logdir {run_dir.parent}"]
    return "\n".join(lines)


def _generate_labels(args: argparse.Namespace, run) -> tuple[Optional[int], Optional["torch.Tensor"], int]:
    """(n, labels, images per grid row) for the generate flags."""
    import torch

    if args.condition is not None:
        rows = _read_condition(args.condition)
        n = args.n if rows.ndim == 1 else None
        return n, torch.from_numpy(rows), max(1, int(round((n or len(rows)) ** 0.5)))
    if run.multi_label:
        raise GanforgeError(f"run '{args.run}' is conditioned on {run.n_classes}-column "
                            "condition rows; pass them with --condition FILE.npy")
    if args.classes:  # N (default 10) samples of each requested class, one row per class
        per = args.n or args.per_class or 10
        return None, torch.tensor(args.classes).repeat_interleave(per), per
    if args.per_class:
        return None, run.per_class_labels(args.per_class), args.per_class
    if args.n is not None:
        n = args.n
        labels = torch.arange(n) % run.n_classes if run.n_classes else None
        return (None if labels is not None else n), labels, max(1, int(round(n ** 0.5)))
    if run.n_classes:
        return None, run.per_class_labels(10), 10
    return 64, None, 8


def _read_condition(path: str) -> "np.ndarray":
    """Condition rows for ``--condition``: a (K,) or (N, K) numeric .npy array (never a pickle)."""
    import numpy as np

    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise GanforgeError(f"cannot read condition rows '{path}' ({first}); save an (N, K) "
                            "float array with np.save") from None
    if rows.ndim not in (1, 2) or not np.issubdtype(rows.dtype, np.number):
        raise GanforgeError(f"condition rows '{path}' must be a numeric (N, K) or (K,) array, "
                            f"got {rows.dtype} {rows.shape}")
    return rows.astype(np.float32)


def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from ganforge import api, fileio
    from ganforge.imaging import (label_grid, make_grid, save_images, save_png, scatter_image,
                                  to_plane)

    for flag in ("n", "per_class"):
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise GanforgeError(f"--{flag.replace('_', '-')} must be positive")
    run = api.load_run(args.run, args.checkpoint, args.device)
    n, labels, nrow = _generate_labels(args, run)
    images = run.generate(n=n, labels=labels, seed=args.seed)
    out = Path(args.out)
    vectors = images.dim() == 2
    if args.format == "npz":
        payload = {"points": images.numpy()} if vectors else {"images": run.uint8(images)}
        if labels is not None:  # classes as int64, condition rows as float32 (N, K)
            y = labels.cpu().numpy()
            payload["labels"] = y.astype(np.float32 if y.ndim == 2 else np.int64)
        with fileio.atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **payload)
    elif vectors:
        if out.suffix.lower() != ".png":
            raise GanforgeError("vector samples are saved as --format npz, or drawn as a scatter "
                                "plot with --out PATH.png")
        save_png(scatter_image(to_plane(images), title=f"{len(images)} samples"), out)
    elif out.suffix.lower() == ".png":
        grid = (label_grid(images, labels, run.class_names, nrow)
                if labels is not None and labels.dim() == 1 else make_grid(images, nrow))
        save_png(grid, out)
    else:
        save_images(images, out, prefix="sample")
    print(f"wrote {len(images)} samples to {out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ganforge.config import list_presets, resolve
    from ganforge.data import DATASETS
    from ganforge.losses import LOSSES
    from ganforge.losses.aids import AIDS
    from ganforge.metrics import EXTRACTORS, METRICS
    from ganforge.models import MODELS
    from ganforge.run.export import EXPORTERS
    from ganforge.training.watch.trackers import TRACKERS

    presets = {name: resolve(name) for name in list_presets()}
    print("presets:")
    for name, cfg in presets.items():
        if not cfg.reproduces:
            print(f"  {name:28s} {cfg.description}")
    print("reproductions (a document's exact nets and settings; slower than the presets above):")
    for name, cfg in presets.items():
        if cfg.reproduces:
            print(f"  {name:28s} {cfg.description} [{cfg.reproduces}]")
    for title, reg in (("models", MODELS), ("losses", LOSSES), ("convergence aids", AIDS),
                       ("datasets", DATASETS), ("metrics", METRICS),
                       ("feature extractors", EXTRACTORS), ("experiment trackers", TRACKERS),
                       ("export formats", EXPORTERS)):
        print(f"{title}:")
        for name in reg.names():
            print(f"  {name:28s} {reg.doc(name)}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    import torch

    from ganforge.config import resolve
    from ganforge.data import shape_without_loading
    from ganforge.models import MODELS, build_models, summarize

    cfg = resolve(args.preset, None, args.overrides)
    shape, n_labels, multi_label = shape_without_loading(cfg.data)
    spec = MODELS.get(cfg.model.arch)
    n_classes = n_labels if cfg.model.conditional else 0
    extra = {"multi_label": True} if multi_label and n_classes else {}
    model_args = spec.kwargs(cfg.model, shape, n_classes, **extra)
    G, D = build_models(cfg.model.arch, model_args)
    G.eval(), D.eval()
    z = torch.zeros(2, cfg.model.z_dim)
    y = None
    if cfg.model.conditional:
        y = torch.zeros(2, n_classes) if extra else torch.zeros(2, dtype=torch.long)
    print(f"Generator ({cfg.model.arch}, {args.preset})")
    print(summarize(G, z, y))
    print(f"\nDiscriminator ({cfg.model.arch}, {args.preset})")
    print(summarize(D, torch.zeros(2, *shape), y))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ganforge.metrics.evaluate import cmd_evaluate as run

    return run(args)


def cmd_train_evaluator(args: argparse.Namespace) -> int:
    from ganforge.metrics.evaluator import cmd_train_evaluator as run

    return run(args)


def cmd_export(args: argparse.Namespace) -> int:
    from ganforge.run.export import cmd_export as run

    return run(args)


def cmd_report(args: argparse.Namespace) -> int:
    from ganforge.reporting.report import build_report

    print(f"wrote {build_report(args.run)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ganforge.reporting.compare import build_compare

    print(f"wrote {build_compare(args.runs, args.out)}")
    return 0


COMMANDS = {"train": cmd_train, "generate": cmd_generate, "export": cmd_export,
            "evaluate": cmd_evaluate, "train-evaluator": cmd_train_evaluator, "list": cmd_list,
            "summary": cmd_summary, "report": cmd_report, "compare": cmd_compare}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except GanforgeError as err:
        if args.debug:
            raise
        # One line whatever the message quotes (a value with a newline in it, say).
        print("ganforge: error: " + " ".join(str(err).splitlines()), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
