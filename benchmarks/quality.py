"""Quality of every MNIST preset, and of the typical training loop, after minutes of CPU training.

Run from the repository root on an otherwise idle machine, after training the evaluator
(``ganforge train-evaluator --dataset mnist --data-root ../shared/data --split test``)::

    .venv/bin/python benchmarks/quality.py                      # everything (hours; see README)
    .venv/bin/python benchmarks/quality.py --presets cgan-mnist --typical typical-cgan
    .venv/bin/python benchmarks/quality.py --summarise-only     # rebuild the tables and plot
    .venv/bin/python benchmarks/quality.py --quick              # pipeline check, ~2 minutes

Protocol (``quality-v2``; the records of the earlier protocol are in the results store too,
under ``quality-v1``):

* Models: the conditional presets ``cgan-mnist``, ``cdcgan-mnist``, ``projection-mnist``,
  ``acgan-mnist`` and the unconditional ``dcgan-mnist``, ``wgan-gp-mnist``, ``hinge-sn-mnist``,
  ``lsgan-mnist``, ``dragan-mnist``, ``wgan-mnist``, ``r3gan-mnist``; beside them the four typical
  loops of ``baseline.py`` (``TYPICAL``: seed 001's MLP cGAN, seed 002's DCGAN, an ACGAN in
  PyTorch-GAN's ``acgan.py`` style on seed 000's nets, a WGAN-GP in ``wgan_gp.py``'s style).
  Each preset is held to the typical loop a user would otherwise run (``COMPARE``): its own
  family's where there is one (cGAN, ACGAN, DCGAN, WGAN-GP), else the conditional presets to
  the MLP cGAN and the unconditional ones to the DCGAN.
* Training: the 10,000 MNIST test digits (``--data-root``, ``data.split=test``), ``--minutes``
  of wall clock (default 5) with ``--threads`` CPU threads (default 2), seeds ``--seeds``
  (0 1 2), one run at a time in this process, ``train.epochs=none train.steps=none`` so that the
  time budget alone stops it; the typical loops train for the same minutes and threads. The load
  average (``os.getloadavg``) is recorded before and after every run.
* Scoring (``quality_score.py``): every final G and every timed checkpoint (the EMA copy of G
  when the preset keeps one) draws ``--samples`` (10,000) samples from the same seeded latents,
  labels cycling over the 10 digits for conditional models, scored by ``--evaluator``
  (``mnist-lenet``, recipe v2) against digits neither the models nor the evaluator (trained
  on the test split as well) saw: all 5,000 digits of the embedded ``digits`` dataset
  (genuine MNIST training-split digits; its train and test splits, 4,000 + 1,000,
  concatenated into one npz reference, checked to share no image with the MNIST test split).
  Metrics: FID, improved precision/recall (k = 3), and label accuracy (overall, worst class,
  the evaluator pair's disagreement) for conditional models or the entropy of the
  predicted-digit histogram and the smallest digit share otherwise. The FID
  floor is the 10,000 real test digits scored exactly like samples.
* Time to quality: ``--curve-seeds`` (one seed) train for the last of ``--curve-minutes``
  (1 2 5 10 15) and keep ``log.checkpoint_minutes`` at the others; every run keeps those below
  its budget. Nothing in training depends on the total budget (only the stop test reads
  ``train.minutes``; the named checkpoints are taken at the same clock reading, with the
  same test, as the budget's), so the 15-minute run's ``min_5`` checkpoint is the state a
  5-minute run of that seed ends in (up to the step count the machine reaches in 5 minutes,
  which varies between any two 5-minute runs): it serves as that seed's 5-minute result
  (``--separate-curve-runs`` trains them apart instead). The typical loops save G at the
  same minutes with the same clock test. Headline per preset: X = its typical
  loop's best point on its curve (normally 15 minutes); minutes each needs to reach X, linear
  in log-minutes between curve points, and their ratio.
* Results: one record per run appended to the results store ``results/records.jsonl``
  (``ganforge.bench``; ``quality_store.py`` says what a run's record holds), so the benchmark
  can be split across invocations or resumed with ``--skip-done``. Each preset run records the
  fingerprint of the settings it trained with (its ``config.json``), and a run of an earlier
  form of its preset is stale (``ganforge bench status``): neither skipped to nor summarised.
  The runs are summarised per kind of CPU (each record names its CPU; runs compare only with
  runs of the same kind of machine, see :func:`machine_slug`) into
  ``results/quality_cpu_<cpu>.{json,md}`` (mean ± std over seeds, the issue's targets, the
  typical loops beside their presets, time to quality, load averages, commands, machine) and
  the plot ``results/quality_time_to_quality_<cpu>.png``. Presets on ``mnist-pairs`` or
  ``stacked-mnist`` are scored by ``two-digit-acc`` or ``stacked-mnist`` instead (final G only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import baseline  # benchmarks/ is on sys.path when run as a script
import quality_report as qr
import quality_score as qs
import quality_store
import report
from ganforge.bench import Store, settings_fingerprint
from ganforge.bench.store import ganforge_version

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
CONDITIONAL = ["cgan-mnist", "cdcgan-mnist", "projection-mnist", "acgan-mnist"]
UNCONDITIONAL = ["dcgan-mnist", "wgan-gp-mnist", "hinge-sn-mnist", "lsgan-mnist",
                 "dragan-mnist", "wgan-mnist", "r3gan-mnist"]
COMPARE = {"cgan-mnist": "typical-cgan", "cdcgan-mnist": "typical-cgan",
           "projection-mnist": "typical-cgan", "acgan-mnist": "typical-acgan",
           "wgan-gp-mnist": "typical-wgan-gp", **{p: "typical-dcgan" for p in UNCONDITIONAL
                                                  if p != "wgan-gp-mnist"}}
# Datasets scored by one coverage metric (final G only): metric and samples at --samples 10000.
MANY_MODES = {"mnist-pairs": ("two-digit-acc", 10_000), "stacked-mnist": ("stacked-mnist", 26_000)}
QUICK = {"presets": ["cgan-mnist", "dcgan-mnist"], "typical": ["typical-cgan", "typical-dcgan"],
         "seeds": [0, 1], "minutes": 0.05, "curve_minutes": [0.02, 0.05, 0.1], "samples": 500,
         "reference_n": 1000}
DEFAULTS = {"presets": CONDITIONAL + UNCONDITIONAL, "typical": list(baseline.TYPICAL),
            "seeds": [0, 1, 2], "minutes": 5.0, "curve_minutes": [1, 2, 5, 10, 15],
            "samples": 10_000, "reference_n": None}


@dataclass
class Job:
    """One training run: a preset ("preset", "many-modes") or a typical loop ("typical")."""

    kind: str
    name: str
    seed: int
    budget: float                                     # minutes of training
    timed: list[float] = field(default_factory=list)  # named checkpoints below the budget


def plan(args: argparse.Namespace) -> list[Job]:
    """Every run, one model at a time: curve seeds at the last curve minute, the other seeds
    at ``--minutes`` (curve seeds too when ``--minutes`` is not a curve point or with
    ``--separate-curve-runs``)."""
    from ganforge.config import resolve

    last = max(args.curve_minutes)
    shared = args.minutes in args.curve_minutes and not args.separate_curve_runs
    jobs = []
    for kind, names in (("preset", args.presets), ("typical", args.typical)):
        for name in names:
            many = kind == "preset" and resolve(name).data.name in MANY_MODES
            for seed in sorted(set(args.seeds) | set(args.curve_seeds)):
                curve = seed in args.curve_seeds and not many
                if curve:
                    jobs.append(Job(kind, name, seed, last, below(args.curve_minutes, last)))
                if seed in args.seeds and not (curve and shared):
                    jobs.append(Job("many-modes" if many else kind, name, seed, args.minutes,
                                    [] if many else below(args.curve_minutes, args.minutes)))
    return jobs


def below(minutes: list[float], budget: float) -> list[float]:
    return sorted(m for m in minutes if m < budget)


def relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (results name no machine paths)."""
    try:  # abspath, not resolve: .venv/bin/python stays itself, not the interpreter it links
        return str(Path(os.path.abspath(path)).relative_to(REPO))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------- one run

def score_points(scorer: qs.Scorer, folder: Path, job: Job, conditional: bool,
                 images_per_step: int) -> list[dict[str, Any]]:
    """The scored points of a run folder: each timed checkpoint, then the final one."""
    from ganforge.run.checkpoint import list_checkpoints

    points = []
    names = [(m, folder / "checkpoints" / f"min_{m:g}.json") for m in job.timed]
    names.append((job.budget, list_checkpoints(folder)[-1]))
    for minutes, path in names:
        meta = json.loads(path.read_text())
        point = {"minutes": minutes, "checkpoint": path.stem, "step": meta["step"],
                 "elapsed_s": round(meta["elapsed_s"], 3),
                 "images_per_s": round(meta["step"] * images_per_step
                                       / max(meta["elapsed_s"], 1e-9), 2)}
        point.update(scorer.score(folder, conditional, checkpoint=path))
        points.append(point)
    return points


def train_preset(job: Job, args: argparse.Namespace, folder: Path) -> tuple[dict, int, bool]:
    """Train a preset with ganforge; returns (run facts, images per step, conditional)."""
    from ganforge import api
    from ganforge.losses import LOSSES

    timed = "[" + ",".join(f"{m:g}" for m in job.timed) + "]"
    overrides = [f"data.root={Path(args.data_root).resolve()}", "data.split=test",
                 "data.download=false", "train.epochs=none", "train.steps=none",
                 f"train.minutes={job.budget:g}", f"train.seed={job.seed}",
                 f"train.threads={args.threads}", "train.device=cpu", "log.progress=false",
                 "log.trackers=[]", "log.report_every_s=none", "eval.every=0", "eval.best=none",
                 f"log.checkpoint_minutes={timed}", *args.set]
    run = api.train(job.name, overrides=overrides, out=str(folder), log=lambda m: None)
    cfg = json.loads((folder / "config.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    loss = LOSSES.get(cfg["loss"]["name"])
    n_critic = cfg["loss"]["n_critic"] or loss.default_n_critic
    per_step = cfg["train"]["batch_size"] * n_critic
    facts = {"steps": summary["steps"], "train_s": summary["elapsed_s"],
             "images_per_s": round(summary["steps"] * per_step / summary["elapsed_s"], 2),
             "images_per_s_last_window": summary["images_per_s"], "dataset": cfg["data"]["name"],
             "settings_sha": settings_fingerprint(cfg)}  # what the run trained with
    return facts, per_step, run.n_classes > 0


def train_typical(job: Job, args: argparse.Namespace, folder: Path) -> tuple[dict, int, bool]:
    """Train a typical loop of ``baseline.py``; returns the same as :func:`train_preset`."""
    import torch

    torch.set_num_threads(args.threads)
    loop = baseline.build_typical(job.name, job.seed, Path(args.data_root))
    facts = loop.train_for(folder, job.budget, save_minutes=tuple(job.timed))
    facts["dataset"] = "mnist"
    facts["settings_sha"] = ""  # fixed code, no preset: never stale
    return facts, loop.images_per_step(), loop.conditional


def run_job(job: Job, args: argparse.Namespace, scorer: qs.Scorer) -> dict[str, Any]:
    """Train one job, score its points and return its record."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = Path(args.runs) / f"{job.name}-s{job.seed}-{job.budget:g}min-{stamp}"
    load_before, t0 = list(os.getloadavg()), time.perf_counter()
    trainer = train_typical if job.kind == "typical" else train_preset
    facts, per_step, conditional = trainer(job, args, folder)
    wall, load_after = time.perf_counter() - t0, list(os.getloadavg())
    record: dict[str, Any] = {
        "protocol": qr.PROTOCOL, "kind": job.kind, "name": job.name,
        "compare_with": COMPARE.get(job.name) if job.kind == "preset" else None,
        "seed": job.seed, "budget_minutes": job.budget, "threads": args.threads,
        "conditional": conditional, **facts, "wall_s": round(wall, 1),
        "loadavg_before": load_before, "loadavg_after": load_after,
        "run_dir": relative(folder), "extra_overrides": list(args.set),
        "command": args.command, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpu_model": args.cpu, **scorer.info}
    t1 = time.perf_counter()
    if job.kind == "many-modes":
        record.update(score_many(folder, facts["dataset"], args, scorer))
    else:
        record["points"] = score_points(scorer, folder, job, conditional, per_step)
    record["score_s"] = round(time.perf_counter() - t1, 1)
    return record


def score_many(folder: Path, dataset: str, args: argparse.Namespace,
               scorer: qs.Scorer) -> dict[str, Any]:
    """Two-digit label accuracy or Stacked MNIST modes of the final G (its own data's test
    split as the reference, as ``ganforge evaluate`` does for a run)."""
    from ganforge.metrics.evaluate import evaluate

    metric, n = MANY_MODES[dataset]
    n = max(1, n * args.samples // 10_000)
    (result,) = evaluate(folder, [metric], scorer.extractor, None, n, None, seed=qs.SAMPLE_SEED,
                         log=lambda m: None)
    return {"metric": result.name, "value": result.value,
            **{k: v for k, v in result.details.items() if isinstance(v, (int, float))}}


# ----------------------------------------------------------------------------- results

def build_results(records: list[dict[str, Any]], args: argparse.Namespace, scorer: qs.Scorer,
                  floor: dict[str, Any]) -> dict[str, Any]:
    """Everything the JSON and Markdown results hold, from the records of this evaluator and
    this kind of machine."""
    scored_alike = [r for r in records if same_scoring(r, scorer, args.cpu)]
    mine, earlier = [], set()
    for r in scored_alike:
        if r["current"]:  # judged by the store (quality_store.load_runs)
            mine.append(r)
        else:
            earlier.add(r["name"])
    curve = qr.curves(mine, args.curve_minutes)
    summary = qr.summarise(mine, args.minutes, floor["fid"])
    runs = [{k: r[k] for k in ("name", "seed", "budget_minutes", "threads", "steps",
                               "images_per_s", "loadavg_before", "loadavg_after", "wall_s")}
            for r in mine if r.get("protocol") == qr.PROTOCOL]
    return {
        "quick": args.quick, "protocol": {
            "name": qr.PROTOCOL, "minutes": args.minutes, "threads": args.threads,
            "seeds": args.seeds, "curve_minutes": args.curve_minutes,
            "curve_seeds": args.curve_seeds, "shared_curve_runs": not args.separate_curve_runs},
        "scorer": scorer.info, "floor": {k: v for k, v in floor.items()
                                         if k not in ("per_class", "histogram")},
        "targets": qr.target_checks(summary), "summary": summary, "curves": curve,
        "time_to_quality": qr.time_to_quality(curve), "runs": runs,
        "many_modes": qr.summarise_many(mine), "order": CONDITIONAL + UNCONDITIONAL,
        "typical_loops": {k: v.about for k, v in baseline.TYPICAL.items()},
        "commands": sorted({r["command"] for r in mine if r.get("command")}),
        "summary_command": args.command,
        "excluded_other_scoring": len(records) - len(scored_alike),
        "excluded_earlier_settings": sorted(earlier),
        "machine": report.machine_info(args.threads),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def write_results(res: dict[str, Any], curve_png: Path, stem: Path) -> list[Path]:
    from ganforge import fileio

    qr.plot(res["curves"], curve_png, res["floor"]["fid"])
    res["plot"] = curve_png.name
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    fileio.write_text(json_path, json.dumps(res, indent=2) + "\n")
    fileio.write_text(md_path, qr.render_markdown(res))
    return [json_path, md_path, curve_png]


# ----------------------------------------------------------------------------- command line

def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="*", help="presets (default: the 11 MNIST presets)")
    p.add_argument("--typical", nargs="*", choices=list(baseline.TYPICAL),
                   help="typical loops (default: all four; none: --typical alone)")
    p.add_argument("--seeds", nargs="+", type=int, help="default 0 1 2")
    p.add_argument("--minutes", type=float, help="budget of the tables (default 5)")
    p.add_argument("--curve-minutes", nargs="+", type=float, help="default 1 2 5 10 15")
    p.add_argument("--curve-seeds", nargs="*", type=int, help="default: the first seed")
    p.add_argument("--separate-curve-runs", action="store_true",
                   help="train the curve seeds' --minutes runs apart from their curve runs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, help="samples per score (default 10000)")
    p.add_argument("--reference-n", type=int, help="reference digits (default: all 5,000; "
                   "--quick: 1,000)")
    p.add_argument("--evaluator", default="mnist-lenet")
    p.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    p.add_argument("--runs", default=str(REPO / "runs" / "quality"),
                   help="run folders (and the reference npz files) go here")
    p.add_argument("--results", default=str(RESULTS), help="folder of the results files")
    p.add_argument("--store", help="the results store each run is appended to (default: "
                   "RESULTS/records.jsonl; --quick: RESULTS/records_quick.jsonl)")
    p.add_argument("--skip-done", action="store_true",
                   help="skip runs the store already holds, current (same model, seed, budget, "
                   "evaluator, kind of CPU, settings its preset resolves to now)")
    p.add_argument("--summarise-only", action="store_true", help="rebuild the results only")
    p.add_argument("--quick", action="store_true", help="pipeline check: two presets, two "
                   "typical loops, seconds-long budgets, 500 samples against 1,000 digits; "
                   "writes *_quick files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra override for every preset run (experiments, not the tables)")
    args = p.parse_args(argv)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK.get(key, value) if args.quick else value)
    args.curve_minutes = sorted(args.curve_minutes)
    if args.curve_seeds is None:
        args.curve_seeds = args.seeds[:1]
    suffix = "_quick" if args.quick else ""
    args.store = Path(args.store or Path(args.results) / f"records{suffix}.jsonl")
    args.cpu = report.cpu_model()
    slug = machine_slug(args.cpu) + suffix
    args.stem = Path(args.results) / f"quality_cpu_{slug}"
    args.curve_png = Path(args.results) / f"quality_time_to_quality_{slug}.png"
    args.command = shlex.join([relative(Path(sys.executable)), "benchmarks/quality.py",
                               *(sys.argv[1:] if argv is None else argv)])
    return args


def main(argv: Optional[list[str]] = None, evaluator: Any = None) -> int:
    """Run the benchmark. ``evaluator``: an extractor object in place of ``--evaluator``
    (tests)."""
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    scorer = qs.make_scorer(evaluator or args.evaluator, Path(args.runs), args.samples,
                            args.reference_n)
    store = Store(args.store)
    records = qr.load_runs(store)
    if not args.summarise_only:
        done = {(r["kind"], r["name"], r["seed"], r["budget_minutes"]) for r in records
                if args.skip_done and same_scoring(r, scorer, args.cpu) and r["current"]}
        code = ganforge_version()
        for job in plan(args):
            if (job.kind, job.name, job.seed, job.budget) in done:
                continue
            run = run_job(job, args, scorer)
            record = store.append(quality_store.to_record(run, code=code, cores=os.cpu_count()))
            records.append(dict(quality_store.from_record(record),
                                current=not store.is_stale(record)))
            print(one_line(run), flush=True)
    floor = qs.real_floor(scorer, Path(args.data_root), Path(args.runs))
    res = build_results(records, args, scorer, floor)
    for path in write_results(res, args.curve_png, args.stem):
        print(f"wrote {relative(path)}")
    return 0


SCORING_KEYS = ("evaluator_sha256", "n_samples", "reference_n", "reference_pixels_sha256")


def same_scoring(record: dict[str, Any], scorer: qs.Scorer, cpu: str) -> bool:
    """Whether a logged run trained on this kind of CPU and was scored as this invocation
    scores (evaluator, counts, data)."""
    return record.get("cpu_model") == cpu and all(record.get(k) == scorer.info[k]
                                                   for k in SCORING_KEYS)


def machine_slug(cpu: str) -> str:
    """The results files' suffix for a CPU model: "Intel(R) Xeon(R) Processor" -> "intel-xeon",
    "AMD EPYC 7B13 64-Core Processor" -> "amd-epyc". One set of tables per kind of machine:
    a minute of training buys more steps on a faster CPU, and the evaluator, retrained on
    another CPU, differs in its last bits (its checksum with it), so runs compare only with
    runs of their own machine."""
    words = [w for w in re.sub(r"\(\w+\)|[^A-Za-z0-9 ]", " ", cpu).lower().split()
             if w not in ("processor", "cpu")]
    return "-".join(words[:2]) or "unknown"


def one_line(r: dict[str, Any]) -> str:
    last = (r.get("points") or [{}])[-1]
    score = " ".join(f"{k}={last[k]:.3g}" for k in ("fid", "acc", "entropy", "recall")
                     if isinstance(last.get(k), float))
    return (f"{r['name']} seed {r['seed']} {r['budget_minutes']:g} min: {r['steps']} steps, "
            f"{r['images_per_s']:,.0f} img/s, load {r['loadavg_before'][0]:.2f} -> "
            f"{r['loadavg_after'][0]:.2f}; {score or r.get('value')} (scored in {r['score_s']} s)")


if __name__ == "__main__":
    sys.exit(main())
