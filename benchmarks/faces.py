"""Real faces on a CPU: the face evaluator, seed 004's WGAN-GP, a tuned faces preset and
attribute-conditioned GANs, all on the 12,000 CelebA faces of ``../shared/data``.

Run from the repository root on an otherwise idle machine::

    .venv/bin/python benchmarks/faces.py                                  # everything, ~1.8 h
    .venv/bin/python benchmarks/faces.py --parts wgan tuned --evaluator celeba-lenet
    .venv/bin/python benchmarks/faces.py --minutes 0.2 --limit 500 --evaluator-epochs 1 \\
        --n 200 --threads 1 --out-dir /tmp/faces-smoke                  # pipeline check, minutes

Parts (``--parts``, default all, in this order):

``evaluator``
    ``train_evaluator`` on the faces (``celeba-lenet``: 40 sigmoid outputs, recipe v2 with the
    photo corruptions and flips, a twin; a seeded 20% held out since no test partition is
    present), saved to ``--evaluator-out`` (default: the user's evaluator folder, so later
    commands find it by name). Its held-out accuracy per attribute beside the majority-class
    baseline and the balanced accuracy go into the results. ``--evaluator NAME_OR_PATH`` uses
    an existing one instead.
``wgan``
    ``wgan-gp-celeba64`` (seed 004) for ``--minutes``: its W-distance and gradient-penalty
    curves (from ``stats.jsonl``), a sample grid, FID and the attribute IS (``attr-is``) of
    ``--n`` samples under the face evaluator against ``--n`` real faces. Seed 004 reported an
    Inception Score of 2.14: another network and label space, not comparable.
``tuned``
    ``r3gan-celeba32`` for ``--minutes`` with ``log.checkpoint_minutes`` at 1, 2, 3, 5 and 10
    fifteenths of the budget (1, 2, 3, 5, 10 minutes of the default 15): FID at each and at the
    end (the time-to-quality curve; FID after 5 and 15 minutes), a grid.
``attributes``
    ``--attribute-presets`` (default ``cdcgan-celeba64-attributes``,
    ``acgan-celeba64-attributes`` and the CPU-sized ``r3gan-celeba32-attributes``) for
    ``--cond-minutes`` (default ``--minutes``): samples generated for the attribute rows of the
    faces the evaluator held out, read back per attribute (``attr-acc``) against those real
    faces' own score under the same evaluator; FID; the flip grids of Smiling, Eyeglasses, Male
    and Blond_Hair.

``--merge`` keeps the parts of an earlier ``faces_cpu.json`` that this command does not run
(attribute rows are replaced per preset), and lists every command that contributed::

    .venv/bin/python benchmarks/faces.py --parts attributes --merge \
        --attribute-presets r3gan-celeba32-attributes --cond-minutes 15

Results: ``--out-dir``/``faces_cpu.{json,md}`` (command, machine, load average before and
after every part) and small PNGs (each at most 300 KB) in ``--out-dir``/``faces/``. Run folders
go to ``--runs`` (default ``runs/faces``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import faces_report as fr  # benchmarks/faces_report.py (this folder is on sys.path)
import report  # benchmarks/report.py

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("evaluator", "wgan", "tuned", "attributes")
WGAN, TUNED = "wgan-gp-celeba64", "r3gan-celeba32"
CONDITIONED = ("cdcgan-celeba64-attributes", "acgan-celeba64-attributes",
               "r3gan-celeba32-attributes")
CURVE_FRACTIONS = (1 / 15, 2 / 15, 3 / 15, 5 / 15, 10 / 15)  # of the budget, then its end
FLIPPED = ("Smiling", "Eyeglasses", "Male", "Blond_Hair")


# ----------------------------------------------------------------------------- helpers

def data_cfg(args: argparse.Namespace, size: Optional[int] = None, labels: str = "class") -> Any:
    """The faces as a DataConfig (train partition, offline, ``--limit``)."""
    from ganforge.config import DataConfig

    return DataConfig(name="celeba", root=str(Path(args.data_root).resolve()), split="train",
                      download=False, limit=args.limit, image_size=size, labels=labels)


def reference(args: argparse.Namespace, run_dir: Path) -> Any:
    """The real faces a run is scored against: its own size, every face (no ``--limit``)."""
    from dataclasses import replace

    from ganforge.metrics.evaluate import run_reference

    ref = run_reference(run_dir, split="train", root=str(Path(args.data_root).resolve()))
    return replace(ref, limit=None, download=False)


def train(preset: str, args: argparse.Namespace, minutes: float, extra: tuple[str, ...] = ()
          ) -> tuple[Path, dict[str, Any]]:
    """Train ``preset`` on the faces for ``minutes`` of wall clock; (run folder, facts)."""
    from ganforge import api

    folder = Path(args.runs) / f"{preset}-{minutes:g}min-{time.strftime('%Y%m%d-%H%M%S')}"
    overrides = [f"data.root={Path(args.data_root).resolve()}", "data.split=train",
                 "data.download=false", "train.epochs=none", "train.steps=none",
                 f"train.minutes={minutes:g}", f"train.threads={args.threads}",
                 "train.device=cpu", "log.progress=false", "log.trackers=[]",
                 # report.html once, after the budget (its flips and strips cost no training)
                 "log.report_every_s=0", "eval.every=0", "eval.best=none", *extra, *args.set]
    if args.limit:
        overrides.append(f"data.limit={args.limit}")
    before = list(os.getloadavg())
    api.train(preset, overrides=overrides, out=str(folder), log=lambda m: None)
    summary = json.loads((folder / "summary.json").read_text())
    return folder, {"preset": preset, "run": str(folder), "minutes": minutes,
                    "steps": summary.get("steps"), "train_s": summary.get("elapsed_s"),
                    "images_per_s": summary.get("images_per_s"),
                    "loadavg_before": before, "loadavg_after": list(os.getloadavg())}


def score(run_dir: Path, metrics: list[str], args: argparse.Namespace, evaluator: Any,
          checkpoint: Optional[str] = None) -> dict[str, Any]:
    """``ganforge evaluate`` of a run: ``--n`` samples against ``--n`` real faces of its size."""
    from ganforge.metrics.evaluate import evaluate

    results = evaluate(run_dir, metrics, evaluator, reference(args, run_dir), args.n, args.n,
                       seed=0, device="cpu", log=lambda m: None, checkpoint=checkpoint)
    return {r.name: {"value": r.value, **{k: v for k, v in r.details.items()
                                          if isinstance(v, (int, float, str)) or v is None}}
            for r in results}


# ----------------------------------------------------------------------------- the parts

def part_evaluator(args: argparse.Namespace, res: dict[str, Any]) -> Any:
    """Train the face evaluator (or load ``--evaluator``); returns the loaded evaluator."""
    from ganforge.metrics.evaluator import train_evaluator
    from ganforge.metrics.extractors import load_extractor

    if args.evaluator:
        ev = load_extractor(args.evaluator)
        res["evaluator"] = {"given": args.evaluator, **fr.evaluator_summary(ev.meta)}
        return ev
    before = list(os.getloadavg())
    report_ = train_evaluator(data_cfg(args, 64), epochs=args.evaluator_epochs,
                              out_path=args.evaluator_out, threads=args.threads, device="cpu",
                              log=lambda line: print(f"  evaluator: {line}", flush=True))
    ev = load_extractor(report_["path"])
    res["evaluator"] = {"path": fr.shown_path(report_["path"]), "seconds": report_["seconds"],
                        "loadavg_before": before, "loadavg_after": list(os.getloadavg()),
                        **fr.evaluator_summary(ev.meta)}
    return ev


def part_wgan(args: argparse.Namespace, res: dict[str, Any], ev: Any, out: Path) -> None:
    """Seed 004's WGAN-GP for ``--minutes``: curves, grid, FID and attribute IS."""
    folder, facts = train(WGAN, args, args.minutes)
    facts["curves"] = fr.critic_curves(folder, out / "wgan_gp_curves.png")
    facts["grid"] = fr.save_grid(folder, out / "wgan_gp_grid.png", 36)
    facts["scores"] = score(folder, ["fid", "attr-is"], args, ev)
    facts["note"] = ("attr-is is the face evaluator's IS analogue over 40 sigmoid outputs; seed "
                     "004's Inception Score 2.14 used Inception-v3's 1,008 classes: not "
                     "comparable")
    res["wgan"] = facts


def part_tuned(args: argparse.Namespace, res: dict[str, Any], ev: Any, out: Path) -> None:
    """The tuned preset with timed checkpoints: FID over minutes (time to quality)."""
    marks = sorted({round(args.minutes * f, 4) for f in CURVE_FRACTIONS})
    timed = "[" + ",".join(f"{m:g}" for m in marks) + "]"
    folder, facts = train(TUNED, args, args.minutes, (f"log.checkpoint_minutes={timed}",))
    curve = []
    for minutes, name in [(m, f"min_{m:g}") for m in marks] + [(args.minutes, None)]:
        scores = score(folder, ["fid"], args, ev, checkpoint=name)
        fid = next(v for k, v in scores.items() if k.startswith("fid"))
        curve.append({"minutes": minutes, "checkpoint": name or "final", "fid": fid["value"]})
        print(f"  {TUNED} at {minutes:g} min: FID {fid['value']:.2f}", flush=True)
    facts["curve"] = curve
    facts["grid"] = fr.save_grid(folder, out / "r3gan_celeba32_grid.png", 64)
    res["tuned"] = facts


def part_attributes(args: argparse.Namespace, res: dict[str, Any], ev: Any, out: Path) -> None:
    """Attribute-conditioned runs: attr-acc on the evaluator's held-out rows vs the real faces."""
    from ganforge.imaging import to_uint8
    from ganforge.metrics import METRICS
    from ganforge.metrics.attributes import heldout_attributes
    from ganforge.metrics.context import EvalContext
    from ganforge.run.loaded import load_run

    rows_out = [r for r in res.get("attributes", []) if r["preset"] not in args.attribute_presets]
    for preset in args.attribute_presets:
        folder, facts = train(preset, args, args.cond_minutes)
        ref = reference(args, folder)
        _, rows, note = heldout_attributes(ev, ref, args.n)
        run = load_run(folder)
        samples = to_uint8(run.generate(labels=rows, seed=0))
        ctx = EvalContext(samples, rows, ref, ev, n_real=len(rows), log=lambda m: None)
        result = METRICS.get("attr-acc")(ctx)
        facts["attr_acc"] = {"name": result.name, "value": result.value, "rows": note,
                             **{k: v for k, v in result.details.items()}}
        facts["scores"] = score(folder, ["fid"], args, ev)
        facts["flips"] = fr.save_flips(run, ref, out, preset, FLIPPED)
        facts["grid"] = fr.save_grid(folder, out / f"{preset}_grid.png", 36)
        rows_out.append(facts)
        print(f"  {preset}: attr-acc {result.value:.4f} (real faces "
              f"{result.details['real_balanced']:.4f})", flush=True)
    res["attributes"] = rows_out


# ----------------------------------------------------------------------------- main

def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--minutes", type=float, default=15.0, help="training budget of the wgan "
                   "and tuned runs (default 15)")
    p.add_argument("--cond-minutes", type=float, help="budget of each attribute-conditioned "
                   "run (default: --minutes)")
    p.add_argument("--attribute-presets", nargs="+", default=list(CONDITIONED),
                   help="presets of the attributes part")
    p.add_argument("--merge", action="store_true", help="keep the parts of an earlier "
                   "faces_cpu.json in --out-dir that this command does not run")
    p.add_argument("--limit", type=int, help="train on the first N faces only (smoke runs)")
    p.add_argument("--n", type=int, default=5000, help="samples (and real faces) per score")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--evaluator", help="use this evaluator (name or path) instead of training")
    p.add_argument("--evaluator-epochs", type=int, default=10)
    p.add_argument("--evaluator-out", help="where the trained evaluator goes (default: the "
                   "user's evaluator folder, as celeba-lenet; with --limit: OUT_DIR/evaluator)")
    p.add_argument("--data-root", default="../shared/data", help="folder holding celeba/ "
                   "(default ../shared/data)")
    p.add_argument("--runs", default="runs/faces", help="folder for the run folders")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every training run")
    args = p.parse_args(argv)
    args.cond_minutes = args.cond_minutes or args.minutes
    if args.evaluator_out is None and args.limit:  # a smoke run never replaces the real one
        args.evaluator_out = str(args.out_dir / "evaluator")
    if "evaluator" not in args.parts and not args.evaluator:
        args.evaluator = "celeba-lenet"  # the one an earlier full run saved by name
    return args


def main(argv: Optional[list[str]] = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    grids = args.out_dir / "faces"
    grids.mkdir(parents=True, exist_ok=True)
    command = report.command_line(REPO, sys.argv if argv is None else ["x", *argv])
    earlier = args.out_dir / "faces_cpu.json"
    res: dict[str, Any] = {}
    if args.merge and earlier.is_file():
        res = json.loads(earlier.read_text())
        res["earlier_commands"] = [*res.get("earlier_commands", []),
                                   {"command": res["command"], "date_utc": res["date_utc"],
                                    "machine": res["machine"], "wall_s": res.get("wall_s")}]
        if "evaluator" not in args.parts:  # keep the trained evaluator's full record
            args.evaluator_record = res.get("evaluator")
    res.update({
        "command": command,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": report.machine_info(args.threads),
        "settings": {k: (fr.shown_path(str(v)) if isinstance(v, Path) else v)
                     for k, v in vars(args).items() if k != "evaluator_record"},
    })
    t0 = time.perf_counter()
    print(f"faces benchmark: parts {' '.join(args.parts)}, {args.minutes:g} min per run, "
          f"{args.threads} threads -> {args.out_dir}/faces_cpu.{{json,md}}", flush=True)

    def write(partial: bool) -> list[Path]:
        """The results so far, with the load average and wall time at this moment."""
        now = {**res, "machine": {**res["machine"], "loadavg_end": list(os.getloadavg())},
               "wall_s": round(time.perf_counter() - t0, 1)}
        return fr.write_results({**now, "partial": True} if partial else now, args.out_dir,
                                "faces_cpu")

    ev = part_evaluator(args, res)
    if getattr(args, "evaluator_record", None):
        res["evaluator"] = args.evaluator_record
    for name, part in (("wgan", part_wgan), ("tuned", part_tuned),
                       ("attributes", part_attributes)):
        if name in args.parts:
            print(f"[{time.perf_counter() - t0:6.0f}s] {name}", flush=True)
            part(args, res, ev, grids)
            write(partial=True)  # a later part that fails loses only itself
    paths = write(partial=False)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
