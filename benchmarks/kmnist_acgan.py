"""Seed 000 on real Kuzushiji characters: its ACGAN's failure, the levers it tried, and the fix.

Run from the repository root, alone on the machine (every run is a wall-clock budget)::

    .venv/bin/python benchmarks/kmnist_acgan.py                         # all parts, ~1.5 h
    .venv/bin/python benchmarks/kmnist_acgan.py --parts seed levers five --seed-minutes 8
    .venv/bin/python benchmarks/kmnist_acgan.py --parts tuned --minutes 15 --seeds 0 1 2
    .venv/bin/python benchmarks/kmnist_acgan.py --replay-only   # diagnostics, today's thresholds

Data: the 10,000 KMNIST test characters of ``../shared/data`` (the training split is not
available offline), the only KMNIST the models train on. Scoring: the ``kmnist-lenet`` evaluator
(``benchmarks/evaluator_mnist.py --dataset kmnist``; its held-out accuracy is the ceiling of
label accuracy); 5,000 samples (500 per class) against the first 5,000 training characters for
FID and precision/recall (k = 3), and the real floor: the other 5,000 characters scored the
same way. No unseen KMNIST exists offline, so FID here measures closeness to the training set.

Parts (``--parts``):

``seed``
    ``acgan-kmnist`` as seed 000 trained it (its nets, noisy soft labels, class loss on real and
    fake, z ~ N(0.5, 1), batch 64, Adam 2e-4) for ``--seed-minutes``: per-class label accuracy,
    the class loss on real vs fake images over training, whether the ``class-imbalance``
    diagnostic fired, a grid (one row per class).
``levers``
    The seed's levers, same budget: class-head pre-training on real labels
    (``loss.pretrain_steps=1000``) and the class loss on real images only
    (``loss.class_on_fake=false``).
``five``
    The seed's 5-class run (classes 0-4, ``data.classes=[0,1,2,3,4]``), same budget.
``tuned``
    ``acgan-kmnist-tuned`` for ``--minutes`` per seed (``--seeds``).
``variants``
    ``acgan-kmnist-tuned`` with the overrides of each ``--variant NAME:KEY=VALUE,...`` for
    ``--minutes`` (first of ``--seeds``): the settings tried while tuning it.

Writes ``results/kmnist_acgan.{json,md}`` (each part replaces its own rows; the others are kept)
and small PNGs in ``results/kmnist/``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

import faces_report as fr  # benchmarks/faces_report.py: save_small_png, shown_path
import kmnist_report as kr  # benchmarks/kmnist_report.py: the markdown
import quality_score as qs  # benchmarks/quality_score.py
import report  # benchmarks/report.py
from ganforge.bench.store import TRAINED_SECTIONS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
SEED_PRESET, TUNED = "acgan-kmnist", "acgan-kmnist-tuned"
LEVERS = {"pretrain": ["loss.pretrain_steps=1000"], "real-only": ["loss.class_on_fake=false"]}
N = 5000  # samples, reference and floor images per score
FAKE_KEYS = ("Loss/D/class_fake", "Loss/D/class_fake_heldout")


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (name, ["KEY=VALUE", ...]); ``;`` separates list items."""
    name, _, rest = text.partition(":")
    if not name:
        raise SystemExit(f"variant '{text}' has no name; write NAME:KEY=VALUE,...")
    return name, [item.replace(";", ",") for item in rest.split(",") if item.strip()]


def resolved_settings(run_dir: Path) -> dict[str, Any]:
    """What a run trained with (the sections of its config.json the results store
    fingerprints), so a result row stays true after its preset changes."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    return {k: config[k] for k in TRAINED_SECTIONS}


def train(preset: str, name: str, overrides: list[str], minutes: float, seed: int,
          args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """Train on the KMNIST test split for ``minutes`` of wall clock; (run folder, facts)."""
    from ganforge import api

    run_dir = Path(args.runs) / f"{name}-s{seed}"
    if args.reuse and (run_dir / "summary.json").is_file():  # finished earlier: score it again
        summary = json.loads((run_dir / "summary.json").read_text())
        return run_dir, {"preset": preset, "name": name, "overrides": overrides, "seed": seed,
                         "minutes": minutes, "steps": summary["steps"],
                         "images_per_s": summary["images_per_s"], "load_before": None,
                         "load_after": None, "reused": True,
                         "resolved": resolved_settings(run_dir)}
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    base = [f"data.root={SHARED_DATA}", "data.split=test", "data.download=false",
            "train.epochs=none", "train.steps=none", f"train.minutes={minutes:g}",
            f"train.seed={seed}", f"train.threads={args.threads}", "train.device=cpu",
            "log.progress=false", "log.trackers=[]", "log.report_every_s=none", "eval.every=0",
            "eval.best=none"]
    before = list(os.getloadavg())
    api.train(preset, overrides=base + overrides, out=str(run_dir), log=lambda m: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, {"preset": preset, "name": name, "overrides": overrides, "seed": seed,
                     "minutes": minutes, "steps": summary["steps"],
                     "images_per_s": summary["images_per_s"], "load_before": before,
                     "load_after": list(os.getloadavg()),
                     "resolved": resolved_settings(run_dir)}


def class_losses(run_dir: Path) -> dict[str, Any]:
    """D's class loss on real vs fake images per quarter of training (``stats.jsonl``)."""
    from ganforge.fileio import read_jsonl

    records = read_jsonl(run_dir / "stats.jsonl")
    # class_fake_heldout: the head does not train on fakes (loss.class_on_fake=false).
    key = next((k for k in FAKE_KEYS if any(k in r for r in records)), FAKE_KEYS[0])
    rows = [r for r in records if "Loss/D/class_real" in r and key in r]
    if not rows:
        return {}
    quarters = []
    for q in range(4):
        part = rows[q * len(rows) // 4:(q + 1) * len(rows) // 4] or rows[-1:]
        real = statistics.mean(r["Loss/D/class_real"] for r in part)
        fake = statistics.mean(r[key] for r in part)
        acc_real = [r["Acc/D/class_real"] for r in part if "Acc/D/class_real" in r]
        quarters.append({"steps": [part[0]["step"], part[-1]["step"]], "real": real,
                         "fake": fake, "ratio": real / fake if fake > 0 else None,
                         "acc_real": statistics.mean(acc_real) if acc_real else None})
    return {"quarters": quarters, "fake_key": key,
            "curve": [(r["step"], r["Loss/D/class_real"], r[key]) for r in rows]}


def diagnostics(run_dir: Path) -> list[dict[str, Any]]:
    """The findings the run reported while training (``diagnostics.jsonl``)."""
    from ganforge.fileio import read_jsonl

    path = run_dir / "diagnostics.jsonl"
    return [{"step": d["step"], "name": d["name"], "message": d["message"]}
            for d in (read_jsonl(path) if path.is_file() else [])]


def replayed(run_dir: Path) -> list[dict[str, Any]]:
    """The stats checks replayed over ``stats.jsonl`` with today's default thresholds (so runs
    trained under older thresholds are judged alike)."""
    from ganforge.config import DiagnosticsConfig
    from ganforge.fileio import read_jsonl
    from ganforge.reporting.diagnostics import replay

    records = read_jsonl(run_dir / "stats.jsonl")
    config = run_dir / "config.json"
    if config.is_file() and not json.loads(config.read_text())["loss"]["class_on_fake"]:
        # Runs made before the loss named the untrained side apart: name it as the loss now does.
        records = [{k.replace("class_fake", "class_fake_heldout")
                    if k.endswith("/class_fake") else k: v for k, v in r.items()}
                   for r in records]
    return [{"step": f.step, "name": f.name, "message": f.message}
            for f in replay(records, DiagnosticsConfig())]


def run_part(preset: str, name: str, overrides: list[str], minutes: float, seed: int,
             args: argparse.Namespace, scorer: qs.Scorer) -> dict[str, Any]:
    """Train, score, and keep the class-loss split, diagnostics, grid and loss curves."""
    from ganforge.run.loaded import load_run

    run_dir, facts = train(preset, name, overrides, minutes, seed, args)
    scores = scorer.score(run_dir, conditional=True)
    losses = class_losses(run_dir)
    out = args.out_dir / "kmnist"
    out.mkdir(parents=True, exist_ok=True)
    facts.update(scores)
    facts["class_loss"] = losses.get("quarters")
    facts["diagnostics"] = diagnostics(run_dir)
    facts["replayed"] = replayed(run_dir)
    facts["run"] = fr.shown_path(run_dir)
    facts["grid"] = fr.save_small_png(load_run(run_dir).grid(per_class=10, seed=0),
                                      out / f"{name}-s{seed}_grid.png")
    if losses:
        facts["class_loss_png"] = kr.plot_class_losses(losses["curve"],
                                                      out / f"{name}-s{seed}_class_loss.png")
    print(f"  {name} seed {seed}: acc {scores['acc']:.3f}, worst {scores['worst']:.3f}, FID "
          f"{scores['fid']:.2f}, {facts['steps']} steps; diagnostics "
          f"{[d['name'] for d in facts['diagnostics']]}, replayed "
          f"{[d['name'] for d in facts['replayed']]}", flush=True)
    return facts


def make_scorer(args: argparse.Namespace) -> tuple[qs.Scorer, dict[str, Any]]:
    """The KMNIST scorer (first 5,000 characters as reference) and the real floor row."""
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.metrics.extractors import load_extractor

    data = build_dataset(DataConfig(name="kmnist", root=str(SHARED_DATA), split="test",
                                    download=False))
    folder = Path(args.runs)
    folder.mkdir(parents=True, exist_ok=True)
    ref = qs._write_npz(folder / "kmnist-first5000.npz", data.x[:N], data.y[:N])
    floor_npz = qs._write_npz(folder / "kmnist-last5000.npz", data.x[N:2 * N], data.y[N:2 * N])
    extractor = load_extractor(args.evaluator)
    meta = getattr(extractor, "meta", {}) or {}
    info = {"evaluator": extractor.name, "evaluator_sha256": extractor.checksum,
            "evaluator_recipe": getattr(extractor, "recipe_version", None),
            "reference": "KMNIST test split, first 5,000 characters (the training data)",
            "reference_n": N, "n_samples": N, "sample_seed": qs.SAMPLE_SEED,
            "ceiling": meta.get("heldout_accuracy"),
            "ceiling_per_class": meta.get("per_class_accuracy")}
    scorer = qs.Scorer(extractor, ref, N, N, info)
    floor = scorer.score(floor_npz, conditional=True)
    floor.pop("per_class", None)
    return scorer, floor


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", nargs="+", choices=("seed", "levers", "five", "tuned", "variants"),
                   default=["seed", "levers", "five", "tuned"])
    p.add_argument("--seed-minutes", type=float, default=8.0)
    p.add_argument("--minutes", type=float, default=15.0, help="budget of each tuned run")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="tuned seeds")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--evaluator", default="kmnist-lenet")
    p.add_argument("--runs", default=str(REPO / "runs" / "kmnist"))
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="part 'variants': the tuned preset with these overrides (';' between "
                   "list items), --minutes each, first of --seeds")
    p.add_argument("--reuse", action="store_true", help="score finished run folders again "
                   "instead of training them anew")
    p.add_argument("--replay-only", action="store_true", help="train nothing: replay the "
                   "diagnostics of the runs in the results with today's thresholds, rewrite")
    args = p.parse_args(argv)
    import torch

    from ganforge import fileio

    torch.set_num_threads(args.threads)
    stem = args.out_dir / "kmnist_acgan"
    json_path = stem.with_suffix(".json")
    res = json.loads(json_path.read_text()) if json_path.is_file() else {"runs": {}}
    if args.replay_only:
        for rows in res["runs"].values():
            for r in rows:
                r["replayed"] = replayed(Path(args.runs) / f"{r['name']}-s{r['seed']}")
        fileio.write_text(json_path, json.dumps(res, indent=2) + "\n")
        fileio.write_text(stem.with_suffix(".md"), kr.render(res))
        return 0
    scorer, floor = make_scorer(args)
    command = report.command_line(REPO, sys.argv if argv is None else [__file__, *argv])
    res.update({"command": command,
                "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": report.machine_info(args.threads), "scoring": scorer.info,
                "floor": floor})
    res.setdefault("commands", []).append(res["command"])
    jobs = {"seed": [(SEED_PRESET, "seed000", [], args.seed_minutes, 0)],
            "levers": [(SEED_PRESET, name, ov, args.seed_minutes, 0)
                       for name, ov in LEVERS.items()],
            "five": [(SEED_PRESET, "five-classes", ["data.classes=[0,1,2,3,4]"], args.seed_minutes,
                      0)],
            "tuned": [(TUNED, "tuned", [], args.minutes, s) for s in args.seeds],
            "variants": [(TUNED, name, ov, args.minutes, args.seeds[0])
                         for name, ov in map(parse_variant, args.variant)]}
    for part in args.parts:
        rows = [run_part(*job, args=args, scorer=scorer) for job in jobs[part]]
        if part == "variants":  # kept beside earlier variants, replaced by name
            names = {r["name"] for r in rows}
            rows = [r for r in res["runs"].get(part, []) if r["name"] not in names] + rows
        res["runs"][part] = rows
        fileio.write_text(json_path, json.dumps(res, indent=2) + "\n")
        fileio.write_text(stem.with_suffix(".md"), kr.render(res))
    print(f"wrote {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
