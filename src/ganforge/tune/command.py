"""``ganforge tune``: the command line, its checks, and the workers that run the trials.

Everything the command can refuse is refused before the first trial, in one line (exit 2):
the preset and ``--set`` overrides, the metric, every parameter (:mod:`.space`; with
``--sampler grid``, choices only: :mod:`.samplers`), the numbers, and the study's storage and
what it was made for (:mod:`.study`). Then this process — or
``--workers W`` processes of this machine, or the same command on several machines sharing a
``--storage`` — claims trials until the study holds ``--trials``; the process that started
them writes the outputs (:mod:`.outputs`) and runs ``--verify``.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ganforge.errors import ConfigError, GanforgeError, Interrupted

if TYPE_CHECKING:
    from ganforge.tune.job import TuneJob

EXAMPLE = ("ganforge tune --preset cgan-digits --param optim.lr_g=loguniform:1e-4:2e-3 "
           "--param model.d_dropout=uniform:0:0.5 --metric fid --minutes-per-trial 2 "
           "--trials 20 --seeds 2 --out runs/tune-digits")


def add_tune_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ganforge tune`` to the CLI's subcommands."""
    from ganforge.tune.pruning import PRUNERS
    from ganforge.tune.samplers import SAMPLERS
    from ganforge.tune.space import DISTRIBUTIONS

    p = subparsers.add_parser(
        "tune", help="time-budgeted hyperparameter search (Optuna)",
        description="Search config keys of a preset for the best score of a metric: each "
        "trial trains the preset once per seed with sampled values, in-loop scores at a "
        "quarter, half and three quarters of each run let a bad trial be pruned early, and "
        "the study is stored (SQLite in the study folder, or --storage) so the same command "
        "again goes on with it. With --sampler grid it trains every combination of the "
        "choice: values once instead. Outputs: best.toml (a preset), study.html, records.jsonl. "
        f"Needs pip install 'ganforge[tune]'. Example: {EXAMPLE}")
    p.add_argument("--preset", "-p", required=True, help="the preset to tune")
    p.add_argument("--param", dest="params", action="append", default=[],
                   metavar="KEY=DIST:ARGS", help="a searched config key; DIST is one of "
                   f"{', '.join(f'{k}:{d.form}' for k, d in DISTRIBUTIONS.items())}, e.g. "
                   "optim.lr_g=loguniform:1e-4:2e-3 or model.d_hidden=choice:[64],[128,128]")
    p.add_argument("--space", metavar="FILE.toml", help="more --param, as a [params] table of "
                   "KEY = \"DIST:ARGS\"")
    p.add_argument("--set", "-s", dest="fixed", action="append", default=[],
                   metavar="KEY=VALUE", help="a fixed override for every run, e.g. data.root=..")
    p.add_argument("--metric", required=True, help="the metric to optimise (fid, label-acc, "
                   "kid, ...: `ganforge list`)")
    p.add_argument("--direction", choices=("minimize", "maximize"), help="default: from the "
                   "metric (label-acc, precision up; fid, kid down)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes-per-trial", type=float, metavar="M", help="training "
                        "minutes of each run of a trial (a trial of K seeds trains K x M)")
    budget.add_argument("--steps-per-trial", type=int, metavar="S", help="G steps of each run "
                        "of a trial")
    p.add_argument("--sampler", choices=tuple(SAMPLERS), default="tpe",
                   help="; ".join(f"{k}: {v.doc}" for k, v in SAMPLERS.items()))
    p.add_argument("--trials", type=int, help="trials the study holds when done (default 20; "
                   "with --sampler grid, the number of combinations; run again with more to "
                   "add some)")
    p.add_argument("--seeds", type=int, default=1, help="runs per trial, seeds 0..K-1; the "
                   "trial's value is their mean (default 1)")
    p.add_argument("--out", "-o", required=True, metavar="STUDY_DIR", help="the study folder: "
                   "runs, study.db, best.toml, study.html, records.jsonl")
    p.add_argument("--storage", metavar="URL", help="an Optuna RDB URL shared by several "
                   "machines, e.g. postgresql://user:pass@host/db (default: sqlite:///"
                   "STUDY_DIR/study.db)")
    p.add_argument("--study-name", help="the study's name in the storage (default: the study "
                   "folder's name)")
    p.add_argument("--workers", type=int, default=1, help="processes on this machine claiming "
                   "trials of the study (default 1)")
    p.add_argument("--pruner", choices=tuple(PRUNERS),
                   help="; ".join(f"{k}: {v.doc}" for k, v in PRUNERS.items()) + " (default: "
                   "median; none with --sampler grid)")
    p.add_argument("--startup-trials", type=int, default=3, help="median pruner: trials that "
                   "complete before it prunes (default 3)")
    p.add_argument("--samples", type=int, default=2000, help="samples per score, in-loop and "
                   "final (default 2000)")
    p.add_argument("--store", metavar="FILE", help="the results store for the completed "
                   "trials (default STUDY_DIR/records.jsonl)")
    p.add_argument("--verify", type=int, default=0, metavar="K", help="then train the best "
                   "settings and the base preset with K fresh seeds at the full budget and "
                   "print both as mean ± std")


def require_optuna() -> None:
    """Optuna is an optional extra: its absence is one line naming it."""
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise GanforgeError("ganforge tune needs Optuna; pip install 'ganforge[tune]'") from None


def _check_numbers(args: argparse.Namespace) -> None:
    checks = [
        (args.seeds >= 1, f"--seeds {args.seeds}: a trial needs at least one seed; give "
         "--seeds 1 or more"),
        (args.trials is None or args.trials >= 1, f"--trials {args.trials}: give 1 or more"),
        (args.workers >= 1, f"--workers {args.workers}: give 1 or more"),
        (args.workers == 1 or os.name == "posix", f"--workers {args.workers}: processes share "
         "a study through file locks this system lacks; run one (several machines: --storage)"),
        (args.verify >= 0, f"--verify {args.verify}: give 0 (no verification) or more seeds"),
        (args.startup_trials >= 0, f"--startup-trials {args.startup_trials}: give 0 or more"),
        (args.samples >= 2, f"--samples {args.samples}: give at least 2, e.g. 2000"),
        (args.minutes_per_trial is None or args.minutes_per_trial > 0,
         f"--minutes-per-trial {args.minutes_per_trial}: give a positive number of minutes"),
        (args.steps_per_trial is None or args.steps_per_trial >= 1,
         f"--steps-per-trial {args.steps_per_trial}: give 1 or more steps"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def job_from_args(args: argparse.Namespace) -> "TuneJob":
    """The study the command describes, every part of it checked (one line, exit 2)."""
    from ganforge import api
    from ganforge.config import resolve
    from ganforge.tune.job import STORE_FILE, Budget, TuneJob, default_storage
    from ganforge.tune.samplers import check_grid, grid_size
    from ganforge.tune.space import RESERVED, build_space, read_space

    _check_numbers(args)
    for override in args.fixed:
        key = override.partition("=")[0].strip()
        if key in RESERVED:
            raise ConfigError(f"--set {override}: tune sets {key} for every run (the budget: "
                              "--minutes-per-trial or --steps-per-trial; the metric: --metric)")
    higher = api.higher_is_better(args.metric)  # an unknown metric is named here
    if "/" in args.metric:  # a detail (pr/recall): runs score their metric's value only
        raise ConfigError(f"--metric {args.metric}: tune optimises a metric's value; give "
                          f"--metric {args.metric.split('/')[0]}")
    out = str(Path(args.out))
    grid = args.sampler == "grid"
    job = TuneJob(
        preset=args.preset, params=(), fixed=tuple(args.fixed), metric=args.metric,
        direction=args.direction or ("maximize" if higher else "minimize"),
        budget=Budget(args.minutes_per_trial, args.steps_per_trial), trials=args.trials or 20,
        seeds=args.seeds, out=out, storage=args.storage or default_storage(out),
        study_name=args.study_name or Path(out).resolve().name,
        pruner=args.pruner or ("none" if grid else "median"), sampler=args.sampler,
        startup_trials=args.startup_trials, samples=args.samples, workers=args.workers,
        verify=args.verify, store=args.store or str(Path(out) / STORE_FILE),
        storage_given=args.storage is not None)
    base = job.run_overrides(0, [])
    resolve(job.preset, overrides=base)  # the preset and the fixed overrides, as every run
    specs = list(args.params) + (read_space(args.space) if args.space else [])
    params = tuple(build_space(specs, job.preset, list(job.fixed), base))
    if not grid:
        return dataclasses.replace(job, params=params)
    check_grid(params)
    size = grid_size(params)
    if args.trials is not None and args.trials > size:
        raise ConfigError(f"--trials {args.trials}: the grid has {size} combinations, each run "
                          f"once; give at most {size}, or leave --trials out")
    return dataclasses.replace(job, params=params, trials=args.trials or size)


# ----------------------------------------------------------------------------- workers
def work(job: "TuneJob", name: str = "") -> int:
    """Claim and run trials until the study holds ``job.trials``; returns how many ran here."""
    from ganforge.tune.objective import Objective
    from ganforge.tune.study import claim, open_study

    study, storage = open_study(job)

    def log(line: str) -> None:
        print(f"[{name}] {line}" if name else line, flush=True)

    objective, ran = Objective(job, study, storage, log), 0
    try:
        while (trial := claim(job, study)) is not None:
            objective.run(trial)
            ran += 1
    except Interrupted as stop:  # its run is saved, its trial queued again: say how to go on
        raise Interrupted("tune interrupted; the trial it ran is queued again, and the same "
                          "command goes on with the study", stop.exit_code) from None
    return ran


def _worker_process(job: "TuneJob", index: int) -> None:
    """One of ``--workers`` processes (spawned): a share of the CPU, its trials, its exit."""
    import torch

    if not any(o.startswith("train.threads=") for o in job.fixed):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // job.workers))
    try:
        work(job, f"worker {index}")
    except (Interrupted, KeyboardInterrupt):  # the parent says how to go on
        sys.exit(130)
    except GanforgeError as err:
        print(f"ganforge: error: worker {index}: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)


def run_workers(job: "TuneJob") -> None:
    """``job.workers`` processes on this machine, until each finds nothing left to claim."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    processes = [context.Process(target=_worker_process, args=(job, i), daemon=False)
                 for i in range(1, job.workers + 1)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:  # the workers heard it too: they save, queue their trial, exit
        for process in processes:
            process.join()
    codes = [process.exitcode for process in processes]
    if any(code == 130 or (code or 0) < 0 for code in codes):
        raise Interrupted("tune interrupted; the trials it ran are queued again, and the same "
                          "command goes on with the study", 130)
    if any(codes):
        raise GanforgeError(f"worker exit codes {codes}; see their errors above")


# ----------------------------------------------------------------------------- the command
def cmd_tune(args: argparse.Namespace) -> int:
    require_optuna()
    from ganforge.tune.job import PAGE_FILE, hide_password
    from ganforge.tune.outputs import write_outputs
    from ganforge.tune.study import SEARCHED, best_trial, open_study, slots_taken
    from ganforge.tune.verify import verify

    job = job_from_args(args)
    study, _ = open_study(job)
    print(f"study '{job.study_name}' in {hide_password(job.storage)}: "
          f"{slots_taken(study.get_trials(deepcopy=False))} of {job.trials} trials; "
          f"{job.metric} ({job.direction}), {job.budget.describe()} x {job.seeds} seed(s) a "
          f"trial; runs in {job.out}/trials")
    if job.workers == 1:
        work(job)
    else:
        run_workers(job)
    write_outputs(job, study)
    best = best_trial(study)
    if best is None:
        print(f"no trial completed; see {Path(job.out) / PAGE_FILE}")
        return 0
    if job.verify:
        verify(job, study, best)
    paths = write_outputs(job, study)
    print(f"best: trial {best.number}, {job.metric} {best.value:.4g}: "
          f"{' '.join(best.user_attrs.get(SEARCHED, []))}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    print(f"browse the study: optuna-dashboard {hide_password(job.storage)}")
    return 0
