"""The cGAN paper's Table 1 (seed 003): Gaussian Parzen-window log-likelihood of MNIST generators.

Run from the repository root (no wall-clock budgets: each run trains for its preset's epochs,
so other work on the machine changes the time taken, not the numbers)::

    .venv/bin/python benchmarks/parzen_mnist.py                       # 3 presets x 3 seeds
    .venv/bin/python benchmarks/parzen_mnist.py --presets gan-mnist --seeds 0
    .venv/bin/python benchmarks/parzen_mnist.py --early-stop 250       # the paper's early stopping

Protocol: each preset trains on the 10,000 MNIST test digits (``../shared/data``) for the epochs
its preset sets, with ``--threads`` threads; 10,000 samples of the final G (a conditional model's
labels cycle over the digits: 1,000 per class, pooled) are the kernel centres; the real images
are the 5,000 embedded ``digits`` (genuine MNIST *training* digits, checked pixel for pixel to be
absent from the test split), shuffled and cut into 500 that choose sigma and 4,500 that are
scored (``ganforge.metrics.parzen``: 20 sigmas log-spaced over 0.05..1). The real row scores
the 10,000 training digits themselves as "samples" under the same protocol: what a generator
that reproduced its training set would get.

The paper trained on MNIST's first 50,000 training digits, chose sigma on the last 10,000 and
scored the 10,000 test digits (cGAN 132 +- 1.8, GAN 225 +- 2 nats); here train and scored sets
are swapped in role and smaller, so the numbers are comparable with each other, and only
roughly with the paper's. Writes ``results/parzen_mnist.{json,md}`` and one small grid per preset
in ``results/parzen/``.

``--early-stop K`` follows the paper's model selection: a checkpoint every K steps is kept, each
one's 10,000 samples are scored, and the checkpoint whose samples give the 500 validation digits
the highest log-likelihood (at their own best sigma) is reported on the 4,500 scored digits, next
to the final G's number. The scored digits never take part in the choice. Writes
``results/parzen_mnist_early.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import faces_report as fr  # benchmarks/faces_report.py: save_small_png
import quality_score as qs  # benchmarks/quality_score.py (this folder is on sys.path)
import report  # benchmarks/report.py

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
PRESETS = ["cgan-paper-mnist", "gan-mnist", "cgan-mnist"]
# Table 1 of Mirza & Osindero (2014): mean log-likelihood (nats) +- standard error.
PAPER = {"cgan-paper-mnist": "132 +- 1.8 (conditional adversarial nets)",
         "gan-mnist": "225 +- 2 (adversarial nets, Goodfellow et al. 2014)"}
N_SAMPLES = 10_000
# The paper's SGD (lr 0.1, momentum 0.5 -> 0.7) is on the edge of stability (before the paper's
# D read its pixels in [0, 1], G's weights turned NaN within ~200 steps): a non-finite step rolls
# back to the last good checkpoint with halved learning rates instead of stopping (README
# "Resuming and safety"); the number of rollbacks is recorded per run.
PRESET_OVERRIDES = {"cgan-paper-mnist": ["train.on_nonfinite=rollback"]}


def parzen(source: Path, reference: Path, seed: int) -> dict[str, Any]:
    """Parzen estimate of ``source`` (run folder or npz) against the reference npz."""
    from ganforge.metrics.evaluate import evaluate

    (result,) = evaluate(source, ["parzen"], "mnist-lenet", str(reference), N_SAMPLES, None,
                         seed=seed, log=lambda m: None)
    return {"value": result.value, **{k: v for k, v in result.details.items()
                                      if isinstance(v, (int, float, str, bool))}}


def early_stopped(run_dir: Path, reference: Path) -> dict[str, Any]:
    """Every kept checkpoint of ``run_dir`` scored; the best on the validation digits chosen.

    Returns:
        value, stderr, sigma of the chosen checkpoint; ``chosen_step``, ``chosen_path``;
        ``final``: value, stderr, sigma of the last checkpoint (the final G); ``curve``: per
        checkpoint {step, val (validation log-likelihood at its best sigma), value (scored
        digits), stderr, sigma}.
    """
    from ganforge.metrics.evaluate import evaluate
    from ganforge.run.checkpoint import list_checkpoints

    curve = []
    for path in list_checkpoints(run_dir):
        (result,) = evaluate(run_dir, ["parzen"], "mnist-lenet", str(reference), N_SAMPLES, None,
                             seed=0, log=lambda m: None, checkpoint=path)
        d = result.details
        curve.append({"step": int(path.stem.split("_")[-1]), "val": max(d["val_scores"]),
                      "value": result.value, "stderr": d["stderr"], "sigma": d["sigma"],
                      "path": path})
    best = max(curve, key=lambda c: c["val"])
    final = curve[-1]  # the run saves a checkpoint at its end
    return {"value": best["value"], "stderr": best["stderr"], "sigma": best["sigma"],
            "chosen_step": best["step"], "chosen_path": best["path"],
            "final": {k: final[k] for k in ("value", "stderr", "sigma")},
            "curve": [{k: v for k, v in c.items() if k != "path"} for c in curve]}


def train(preset: str, seed: int, args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    from ganforge import api

    run_dir = Path(args.runs) / f"{preset}-s{seed}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    overrides = [f"data.root={SHARED_DATA}", "data.split=test", "data.download=false",
                 f"train.seed={seed}", f"train.threads={args.threads}", "log.progress=false",
                 "log.trackers=[]", "log.report_every_s=none", "eval.every=0", "eval.best=none",
                 *PRESET_OVERRIDES.get(preset, [])]
    if args.early_stop:  # every K-th step's G kept for the choice on the validation digits
        overrides += [f"log.checkpoint_every={args.early_stop}", "log.keep_checkpoints=100000"]
    start = time.perf_counter()
    lines: list[str] = []
    api.train(preset, overrides=overrides, out=str(run_dir), log=lines.append)
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, {"steps": summary["steps"], "images_per_s": summary["images_per_s"],
                     "train_s": round(time.perf_counter() - start, 1),
                     "overrides": PRESET_OVERRIDES.get(preset, []),
                     "rollbacks": sum("roll" in line.lower() for line in lines)}


def render(res: dict[str, Any]) -> str:
    m, early = res["machine"], res.get("early_stop")
    title = "# The cGAN paper's Parzen table (seed 003), on disjoint MNIST digits"
    out = [title + (", early-stopped as the paper" if early else ""), "",
           f"Command: `{res['command']}`  ", f"Date (UTC): {res['date']}  ",
           f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores, torch {m['torch']}, "
           f"ganforge commit {m['ganforge_commit']}; {res['threads']} thread(s) per run; load "
           f"average {res['load_start'][0]:.2f} at start, {res['load_end'][0]:.2f} at end "
           "(no wall-clock budgets: load changes times, not numbers)", "",
           "Protocol: " + res["protocol"], ""]
    if early:
        out += [f"Early stopping: a checkpoint every {early} steps; the one whose samples give "
                "the 500 validation digits the highest log-likelihood is scored on the 4,500 "
                "(the final G's number beside it).", ""]
    extra = " chosen step per seed | final G, mean +- std |" if early else ""
    out += ["| model | preset | seeds | steps | rollbacks | log-likelihood (nats), mean +- std "
            "over seeds | per seed (+- standard error) | sigma |" + extra + " paper (Table 1) |",
            "|---" * (9 + 2 * bool(early)) + "|"]
    for preset, rows in res["runs"].items():
        values = [r["value"] for r in rows]
        spread = f" +- {statistics.stdev(values):.1f}" if len(values) > 1 else ""
        per_seed = ", ".join(f"{r['value']:.1f} +- {r['stderr']:.1f}" for r in rows)
        sigmas = ", ".join(f"{r['sigma']:.3f}" for r in rows)
        cells = ""
        if early:
            finals = [r["final"]["value"] for r in rows]
            cells = (" " + ", ".join(str(r["chosen_step"]) for r in rows) + " | "
                     f"{statistics.mean(finals):.1f}"
                     + (f" +- {statistics.stdev(finals):.1f}" if len(finals) > 1 else "") + " |")
        out.append(f"| {res['descriptions'][preset]} | `{preset}` | {len(rows)} | "
                   f"{rows[0]['steps']} | {sum(r.get('rollbacks', 0) for r in rows)} | "
                   f"{statistics.mean(values):.1f}{spread} | {per_seed} | "
                   f"{sigmas} |{cells} {PAPER.get(preset, '–')} |")
    real = res["real"]
    out.append("| real: the 10,000 training digits as samples | – | – | – | – | "
               f"{real['value']:.1f} "
               f"| +- {real['stderr']:.1f} | {real['sigma']:.3f} |"
               + (" – | – |" if early else "") + " – |")
    pics = [f"![{p_}](parzen/{Path(rows[0]['grid']['png']).name})"
            for p_, rows in res["runs"].items() if rows and rows[0].get("grid")]
    if pics:
        out += ["", "Samples of the first seed of each preset (left to right as in the table; "
                "conditional models one row per digit): " + " ".join(pics)]
    out += ["", "Higher is better. The estimate is rough in 784 dimensions (Theis et al. 2016): it "
            "rewards samples close to real digits in pixel distance and can rank models wrongly; "
            "the paper calls its table a proof of concept. Compare rows of this table with each "
            "other, not with the paper's numbers, whose splits and training differ (see the "
            "protocol).", ""]
    return "\n".join(out)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=PRESETS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default=str(REPO / "runs" / "parzen"))
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--early-stop", type=int, default=0, metavar="K",
                   help="keep a checkpoint every K steps and report the one chosen on the "
                   "validation digits (the paper's early stopping); 0: the final G")
    args = p.parse_args(argv)
    import torch

    from ganforge import fileio
    from ganforge.config import resolve

    torch.set_num_threads(args.threads)
    folder = Path(args.runs)
    folder.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    x, y = qs.unseen_digits()
    reference = qs._write_npz(folder / "unseen_digits.npz", x, y)
    train_x, train_y = qs.mnist_test(SHARED_DATA)
    overlap = qs.check_unseen(x, train_x)
    real_npz = qs._write_npz(folder / "mnist_test.npz", train_x, train_y)
    real = parzen(real_npz, reference, seed=0)
    print(f"real: {real['value']:.1f} +- {real['stderr']:.1f}", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {}
    for preset in args.presets:
        for seed in args.seeds:
            run_dir, info = train(preset, seed, args)
            chosen = None
            if args.early_stop:  # the last checkpoint is the final G: scored once, in the curve
                row = {"seed": seed, **info, **early_stopped(run_dir, reference)}
                chosen = row.pop("chosen_path")
            else:
                row = {"seed": seed, **info, **parzen(run_dir, reference, seed=0)}
            if seed == args.seeds[0]:  # one small grid per preset (rows: classes)
                from ganforge.run.loaded import load_run

                grids = args.out_dir / "parzen"
                grids.mkdir(parents=True, exist_ok=True)
                name = f"{preset}-s{seed}{'_early' if chosen else ''}_grid.png"
                row["grid"] = fr.save_small_png(load_run(run_dir, chosen).grid(seed=0),
                                                grids / name)
            runs.setdefault(preset, []).append(row)
            at = f", chosen step {row['chosen_step']}" if args.early_stop else ""
            print(f"{preset} seed {seed}: {row['value']:.1f} +- {row['stderr']:.1f} "
                  f"(sigma {row['sigma']:.3f}, {info['steps']} steps, {info['train_s']} s{at})",
                  flush=True)
    res = {"benchmark": "parzen_mnist", "command": report.command_line(REPO, sys.argv),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "machine": report.machine_info(args.threads), "threads": args.threads,
           "load_start": list(load_start), "load_end": list(os.getloadavg()),
           "protocol": ("train on the 10,000 MNIST test digits for the preset's epochs; "
                        "10,000 samples of "
                        + ("each kept checkpoint's G" if args.early_stop else "the final G")
                        + " (conditional: 1,000 per class, pooled); "
                        f"reference: the 5,000 embedded `digits` (MNIST training digits; overlap "
                        f"with the training digits: {overlap}), shuffled with seed 0 into 500 "
                        "that choose sigma (20 values log-spaced over 0.05..1, pixels in [0, 1]) "
                        "and 4,500 scored. The paper: 50k training digits, sigma on 10k "
                        "validation digits, 10k test digits scored. Overrides: "
                        + (", ".join(f"`{k}`: `{' '.join(v)}`" for k, v in PRESET_OVERRIDES.items()
                                     if k in args.presets) or "none")
                        + " (a guard: a non-finite step of the paper's SGD rolls back to the last "
                        "good checkpoint with halved learning rates; rollbacks are counted)."),
           "descriptions": {p_: resolve(p_).description for p_ in args.presets},
           "real": real, "runs": runs, "early_stop": args.early_stop}
    stem = args.out_dir / ("parzen_mnist_early" if args.early_stop else "parzen_mnist")
    fileio.write_text(stem.with_suffix(".json"), json.dumps(res, indent=2) + "\n")
    fileio.write_text(stem.with_suffix(".md"), render(res))
    print(f"wrote {stem.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
