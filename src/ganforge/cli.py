"""The ``ganforge`` command: train | generate | list | summary.

Every user-fixable problem is a :class:`~ganforge.errors.GanforgeError`: printed as one line
``ganforge: error: ...`` with exit status 2 and no traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from ganforge.errors import GanforgeError, Interrupted

EXIT_USER_ERROR = 2


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a preset or config file",
                       description="Train a GAN. Example: ganforge train --preset cgan-mnist "
                       "--data-root ../data --time-budget 5m")
    p.add_argument("--preset", "-p", help="preset name (see `ganforge list`)")
    p.add_argument("--config", "-c", help="a TOML config file (may name a preset as 'base')")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[],
                   metavar="KEY=VALUE", help="override a config key, e.g. optim.lr_g=1e-4")
    p.add_argument("--data-root", help="the folder that holds the dataset's files, or the .npz "
                   "of the arrays dataset (data.root)")
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
    """argparse with the CLI's error style (one line, the fix, status 2); subcommands too.

    A value that starts with '-' and a digit (``--time-budget -5m``, ``--steps -3``) is read as
    the option's value, so that ganforge's own check names what is wrong with it; plain
    argparse takes only numbers for values and "-5m" for an unknown option ("expected one
    argument"). No ganforge option starts with '-' and a digit, so none is shadowed.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # argparse's private hook for "looks like a negative number" (Python 3.13's own
        # pattern); subparsers are made by this class too, so every subcommand gets it.
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"ganforge: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ganforge", description="Train, watch, sample and compare GANs.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    from ganforge.metrics.evaluate import add_evaluate_parser
    from ganforge.metrics.evaluator import add_train_evaluator_parser
    from ganforge.bench.command import add_bench_parser
    from ganforge.data.usercache import add_cache_parser
    from ganforge.run.export import add_export_parser
    from ganforge.run.generate import add_generate_parser
    from ganforge.tune.command import add_tune_parser

    add_generate_parser(sub)
    add_export_parser(sub)
    add_evaluate_parser(sub)
    add_train_evaluator_parser(sub)
    _report_parsers(sub)
    add_cache_parser(sub)
    add_bench_parser(sub)
    add_tune_parser(sub)
    p = sub.add_parser("list", help="list presets, models, losses and datasets",
                       description="List what ganforge can train with (plugins included). "
                       "Examples: ganforge list; ganforge list --details wgan-gp; ganforge list "
                       "--reference > settings.md")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--details", metavar="NAME", help="the settings of one component (a "
                     "loss, aid, model family, dataset or metric) or section (train, log, ...)")
    how.add_argument("--reference", action="store_true", help="every setting of every "
                     "component, as markdown")
    p.add_argument("--builtin", action="store_true", help="with --reference: only what ships "
                   "with ganforge (docs/reference/settings.md), not installed plugins")
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
    """The lines ``train`` ends with (:func:`ganforge.reporting.closing.closing_summary`)."""
    from ganforge.reporting.closing import closing_summary as summary

    return summary(run_dir)


def cmd_generate(args: argparse.Namespace) -> int:
    from ganforge.run.generate import cmd_generate as run

    return run(args)


def cmd_list(args: argparse.Namespace) -> int:
    from ganforge.config import list_presets, resolve
    from ganforge.config.reference import details, reference_markdown

    if args.details:
        print(details(args.details))
        return 0
    if args.reference:
        print(reference_markdown(builtin_only=args.builtin), end="")
        return 0
    if args.builtin:
        raise GanforgeError("--builtin goes with --reference; drop it or add --reference")
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
            origin = reg.origin(name) if hasattr(reg, "origin") else None
            print(f"  {name:28s} {reg.doc(name)}" + (f" [plugin: {origin}]" if origin else ""))
        for name, why in (reg.broken() if hasattr(reg, "broken") else {}).items():
            print(f"  {name:28s} NOT LOADED: {why}")
    print("settings of one of them: ganforge list --details NAME")
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


def cmd_bench(args: argparse.Namespace) -> int:
    from ganforge.bench.command import cmd_bench as run

    return run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from ganforge.tune.command import cmd_tune as run

    return run(args)


def cmd_cache(args: argparse.Namespace) -> int:
    from ganforge.data.usercache import cmd_cache as run

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
            "summary": cmd_summary, "report": cmd_report, "compare": cmd_compare,
            "cache": cmd_cache, "bench": cmd_bench, "tune": cmd_tune}


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
    except Interrupted as stop:  # training saved its last step on the way out
        if str(stop):  # empty on torchrun ranks other than 0, which rank 0 speaks for
            print(f"ganforge: {stop}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:  # outside training (loading data, scoring): nothing to keep
        print("ganforge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`ganforge list | head`): not an error of ours. Point stdout at
        # nothing so the interpreter's final flush does not fail again on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process a closed pipe ended


if __name__ == "__main__":
    sys.exit(main())
