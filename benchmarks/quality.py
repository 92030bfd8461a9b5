"""Quality of every GAN variant after a fixed CPU budget on MNIST, scored by the MNIST evaluator.

Run from the repository root (needs the evaluator: ``ganforge train-evaluator --dataset mnist
--data-root ../shared/data --split test``)::

    .venv/bin/python benchmarks/quality.py                         # every variant, seeds 0 1 2
    .venv/bin/python benchmarks/quality.py --presets acgan-mnist --seeds 0 --minutes 1

Protocol: each preset trains on the 10,000 MNIST test digits (``../shared/data``) for
``--minutes`` of wall-clock training time with ``--threads`` CPU threads, once per seed. The final
G (its EMA copy when the preset keeps one) draws 5,000 samples (labels uniform over the digits
for conditional models); the MNIST LeNet evaluator (``mnist-lenet``) gives
  * conditional presets: label accuracy (overall, worst class), precision/recall (k = 3),
    FID against 5,000 real test digits;
  * unconditional presets: the entropy of the predicted-digit histogram (max ln 10 = 2.303),
    the smallest digit share, FID against 5,000 real digits.
The FID floor is the FID between two disjoint 5,000-digit halves of the test split (the same
sample counts as the samples' FID). Targets (issue: variants): conditional label acc >= 0.98,
worst class >= 0.95, recall >= 0.3, FID <= 10x floor; unconditional entropy >= 2.2 nats,
FID <= 20x floor.

Results are appended run by run to ``results/quality_runs.jsonl`` (so a long benchmark can be
resumed or split across invocations) and summarised as mean ± std per preset in
``results/quality_cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
CONDITIONAL = ["cdcgan-mnist", "acgan-mnist", "projection-mnist", "cgan-mnist"]
UNCONDITIONAL = ["dcgan-mnist", "wgan-gp-mnist", "hinge-sn-mnist", "lsgan-mnist",
                 "dragan-mnist", "wgan-mnist"]
N_SAMPLES = 5000
# Datasets scored by one coverage metric instead of the MNIST table: (metric, samples).
MANY_MODES = {"mnist-pairs": ("two-digit-acc", 10_000), "stacked-mnist": ("stacked-mnist", 26_000)}
TARGETS = {"acc": 0.98, "worst": 0.95, "recall": 0.3, "fid_x_cond": 10.0,
           "entropy": 2.2, "fid_x_uncond": 20.0}


def train_and_score(preset: str, seed: int, minutes: float, threads: int, runs: Path,
                    evaluator: str, extra: list[str] = ()) -> dict[str, Any]:
    """One training run and its metrics (a JSON-able record)."""
    from ganforge import api
    from ganforge.metrics.evaluate import evaluate

    run_dir = runs / f"{preset}-s{seed}-{minutes:g}min"
    overrides = [f"data.root={SHARED_DATA}", "data.split=test", "data.download=false",
                 "train.epochs=none", "train.steps=none", f"train.minutes={minutes}",
                 f"train.seed={seed}", f"train.threads={threads}", "log.progress=false",
                 "log.tensorboard=false", "eval.every=0", "eval.best=none", *extra]
    run = api.train(preset, overrides=overrides, out=str(run_dir), log=lambda m: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    dataset = json.loads((run_dir / "config.json").read_text())["data"]["name"]
    record: dict[str, Any] = {
        "preset": preset + "".join(f" {x}" for x in extra), "seed": seed, "minutes": minutes,
        "threads": threads, "steps": summary["steps"], "images_per_s": summary["images_per_s"],
        "dataset": dataset, "conditional": run.n_classes > 0,
    }
    if dataset in MANY_MODES:  # the many-class and mode-coverage benchmarks
        metric, n = MANY_MODES[dataset]
        (result,) = evaluate(run_dir, [metric], evaluator, None, n, None, seed=seed,
                             log=lambda m: None)
        record.update(metric=result.name, value=result.value,
                      **{k: v for k, v in result.details.items() if isinstance(v, (int, float))})
        return record
    metrics = ["fid", "pr"] + (["label-acc"] if record["conditional"] else ["class-entropy"])
    reference = {"name": "mnist", "root": str(SHARED_DATA), "split": "test", "download": False}
    results = evaluate(run_dir, metrics, evaluator, reference, N_SAMPLES, N_SAMPLES, seed=seed,
                       log=lambda m: None)
    by = {r.name.split("_")[0].rstrip("0123456789k"): r for r in results}
    record.update(fid=by["fid"].value, precision=by["pr"].details["precision"],
                  recall=by["pr"].details["recall"])
    if record["conditional"]:
        record.update(acc=by["acc"].value, worst=by["acc"].details["worst_class_acc"])
    else:
        record.update(entropy=by["entropy"].value,
                      min_share=by["entropy"].details["min_class_share"])
    return record


def fid_floor(evaluator: str) -> float:
    """FID between two disjoint 5,000-digit halves of the MNIST test split."""
    from ganforge.config import DataConfig
    from ganforge.metrics.extractors import load_extractor
    from ganforge.metrics.reference import real_floor

    cfg = DataConfig(name="mnist", root=str(SHARED_DATA), split="test", download=False)
    return real_floor(load_extractor(evaluator), cfg, counts=(N_SAMPLES,), log=lambda m: None)[
        N_SAMPLES]


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(records: list[dict[str, Any]], floor: float) -> dict[str, dict[str, Any]]:
    """Mean ± std per preset (the latest record per preset × seed × minutes counts)."""
    latest = {(r["preset"], r["seed"], r["minutes"]): r for r in records
              if r.get("dataset") not in MANY_MODES}
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for (preset, _, minutes), r in sorted(latest.items()):
        groups.setdefault((preset, minutes), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for (preset, minutes), rs in groups.items():
        keys = ["fid", "precision", "recall", "steps", "images_per_s"]
        keys += ["acc", "worst"] if rs[0]["conditional"] else ["entropy", "min_share"]
        row: dict[str, Any] = {"seeds": [r["seed"] for r in rs], "minutes": minutes,
                               "conditional": rs[0]["conditional"]}
        for k in keys:
            row[k] = _mean_std([float(r[k]) for r in rs])
        row["fid_x_floor"] = _mean_std([r["fid"] / floor for r in rs])
        row["pass"] = passes(row)
        out[f"{preset}@{minutes:g}min"] = row
    return out


def summarise_many(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean ± std of the two-digit and Stacked MNIST runs, per preset and budget."""
    latest = {(r["preset"], r["seed"], r["minutes"]): r for r in records
              if r.get("dataset") in MANY_MODES}
    groups: dict[str, list[dict[str, Any]]] = {}
    for (preset, _, minutes), r in sorted(latest.items()):
        groups.setdefault(f"{preset}@{minutes:g}min", []).append(r)
    out = {}
    for name, rs in groups.items():
        keys = [k for k in ("value", "worst_class_acc", "kl_to_uniform", "modes", "steps")
                if all(k in r for r in rs)]
        out[name] = {"metric": rs[0]["metric"], "seeds": [r["seed"] for r in rs],
                     **{k: _mean_std([float(r[k]) for r in rs]) for k in keys}}
    return out


def passes(row: dict[str, Any]) -> dict[str, bool]:
    """Each target against the mean over seeds."""
    if row["conditional"]:
        return {"acc": row["acc"][0] >= TARGETS["acc"], "worst": row["worst"][0] >= TARGETS["worst"],
                "recall": row["recall"][0] >= TARGETS["recall"],
                "fid": row["fid_x_floor"][0] <= TARGETS["fid_x_cond"]}
    return {"entropy": row["entropy"][0] >= TARGETS["entropy"],
            "fid": row["fid_x_floor"][0] <= TARGETS["fid_x_uncond"]}


def markdown(summary: dict[str, dict[str, Any]], floor: float, command: str,
             machine: dict[str, Any]) -> str:
    def ms(v: tuple[float, float], fmt: str = ".3f") -> str:
        return f"{v[0]:{fmt}} ± {v[1]:{fmt}}"

    lines = ["# Variant quality on MNIST after a fixed CPU budget", "",
             f"Command: `{command}`", "",
             f"Machine: {machine['cpu_model']}, {machine['usable_cores']} usable cores, "
             f"torch {machine['torch']}, {machine['threads']} threads per run, commit "
             f"{machine['ganforge_commit']}.", "",
             f"Protocol: see `benchmarks/quality.py`. Real-vs-real FID floor (5k vs 5k, "
             f"mnist-lenet): {floor:.3f}.", "",
             "## Conditional (targets: acc >= 0.98, worst >= 0.95, recall >= 0.3, FID <= 10x)", "",
             "| preset | seeds | steps | label acc | worst class | recall | precision | FID | "
             "FID / floor | pass |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in summary.items():
        if r["conditional"]:
            ok = " ".join(f"{k}:{'yes' if v else 'NO'}" for k, v in r["pass"].items())
            lines.append(f"| {name} | {len(r['seeds'])} | {r['steps'][0]:.0f} | {ms(r['acc'])} | "
                         f"{ms(r['worst'])} | {ms(r['recall'])} | {ms(r['precision'])} | "
                         f"{ms(r['fid'], '.2f')} | {ms(r['fid_x_floor'], '.1f')} | {ok} |")
    lines += ["", "## Unconditional (targets: entropy >= 2.2 nats, FID <= 20x)", "",
              "| preset | seeds | steps | entropy | min digit share | recall | precision | FID | "
              "FID / floor | pass |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in summary.items():
        if not r["conditional"]:
            ok = " ".join(f"{k}:{'yes' if v else 'NO'}" for k, v in r["pass"].items())
            lines.append(f"| {name} | {len(r['seeds'])} | {r['steps'][0]:.0f} | "
                         f"{ms(r['entropy'])} | {ms(r['min_share'])} | {ms(r['recall'])} | "
                         f"{ms(r['precision'])} | {ms(r['fid'], '.2f')} | "
                         f"{ms(r['fid_x_floor'], '.1f')} | {ok} |")
    return "\n".join(lines) + "\n"


def markdown_many(many: dict[str, dict[str, Any]]) -> str:
    lines = ["", "## Many classes (two-digit numbers, 100 classes) and Stacked MNIST (1,000 modes)",
             "", "Two-digit: label accuracy of 10,000 samples, each half read by mnist-lenet "
             "(target >= 0.90 for one conditional variant). Stacked MNIST: modes covered of "
             "1,000 and KL to uniform over 26,000 samples (target: 1,000 modes, KL <= 0.1).", "",
             "| preset | seeds | steps | metric | value | worst class | KL to uniform |",
             "|---|---|---|---|---|---|---|"]
    for name, r in many.items():
        def cell(key: str) -> str:
            return f"{r[key][0]:.3f} ± {r[key][1]:.3f}" if key in r else "—"
        lines.append(f"| {name} | {len(r['seeds'])} | {r['steps'][0]:.0f} | {r['metric']} | "
                     f"{cell('value')} | {cell('worst_class_acc')} | {cell('kl_to_uniform')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=CONDITIONAL + UNCONDITIONAL)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--evaluator", default="mnist-lenet")
    p.add_argument("--runs", default=str(REPO / "runs" / "quality"))
    p.add_argument("--summarise-only", action="store_true", help="rebuild the tables only")
    p.add_argument("--log", default=str(RESULTS / "quality_runs.jsonl"),
                   help="JSONL file the per-run records are appended to")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every run (experiments; not for the tables)")
    args = p.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    log_file = Path(args.log)
    if not args.summarise_only:
        for preset in args.presets:
            for seed in args.seeds:
                start = time.perf_counter()
                record = train_and_score(preset, seed, args.minutes, args.threads,
                                         Path(args.runs), args.evaluator, args.set)
                record["wall_s"] = round(time.perf_counter() - start, 1)
                with log_file.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    floor = fid_floor(args.evaluator)
    summary = summarise(records, floor)
    many = summarise_many(records)
    machine = report.machine_info(args.threads)
    command = "python benchmarks/quality.py " + shlex.join(argv if argv is not None
                                                            else sys.argv[1:])
    (RESULTS / "quality_cpu.json").write_text(json.dumps(
        {"command": command, "machine": machine, "fid_floor": floor, "targets": TARGETS,
         "results": summary, "many_modes": many}, indent=2) + "\n")
    (RESULTS / "quality_cpu.md").write_text(markdown(summary, floor, command, machine)
                                            + markdown_many(many))
    print((RESULTS / "quality_cpu.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
