"""Preset tuning sweeps: variants of one preset, trained alike and scored like the quality benchmark.

Run from the repository root, alone on the machine (every run is a wall-clock budget)::

    .venv/bin/python benchmarks/sweep.py dcgan-mnist --minutes 2 \\
        --variant base: \\
        --variant diffaug:loss.augment=translation;cutout \\
        --variant ema-hl:train.ema_half_life=10000,train.ema_rampup=0.05

Each variant is ``NAME:KEY=VALUE,KEY=VALUE`` (config overrides on top of the preset; a list value
is written with ``;`` between items, e.g. ``loss.augment=translation;cutout``). It trains on the
MNIST test split for ``--minutes`` of wall clock with ``--threads`` threads, one run at a time, and
is scored by ``quality_score.Scorer`` (10,000 samples against the 5,000 unseen embedded digits,
the ``mnist-lenet`` evaluator; the same protocol as ``quality.py``). Records (with the load average
and the overrides) are appended to ``results/sweeps/<preset>.jsonl`` and the table of every
record of that preset is rewritten to ``results/sweeps/<preset>.md``, so the settings tried for a
preset, and what they reached, stay on file. Each record names its CPU; the page holds one table
per kind of CPU and evaluator, since rows compare only within one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import quality_score as qs  # benchmarks/quality_score.py (this folder is on sys.path)
import report  # benchmarks/report.py
from ganforge.bench.store import TRAINED_SECTIONS

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "sweeps"


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``NAME:KEY=VALUE,KEY=VALUE`` -> (name, ["KEY=VALUE", ...]); ``;`` separates list items."""
    name, _, rest = text.partition(":")
    if not name:
        raise SystemExit(f"variant '{text}' has no name; write NAME:KEY=VALUE,...")
    overrides = [item.replace(";", ",") for item in rest.split(",") if item.strip()]
    return name, overrides


def trained_settings(cfg: dict[str, Any]) -> dict[str, Any]:
    """The sections of a resolved config (``Config.to_dict()``, a run's ``config.json``) that
    decide what a run trains (those the results store fingerprints)."""
    return {k: cfg[k] for k in TRAINED_SECTIONS}


def resolved_settings(run_dir: Path) -> dict[str, Any]:
    """What a run trained with (its config.json's trained settings), so a result row stays true
    after its preset changes."""
    return trained_settings(json.loads((Path(run_dir) / "config.json").read_text()))


def train_and_score(preset: str, name: str, overrides: list[str], args: argparse.Namespace,
                    scorer: qs.Scorer) -> dict[str, Any]:
    from ganforge import api

    run_dir = Path(args.runs) / preset / f"{name}-s{args.seed}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    base = [f"data.root={SHARED_DATA}", "data.split=test", "data.download=false",
            "train.epochs=none", "train.steps=none", f"train.minutes={args.minutes}",
            f"train.seed={args.seed}", f"train.threads={args.threads}", "log.progress=false",
            "log.trackers=[]", "log.report_every_s=none", "eval.every=0", "eval.best=none"]
    load_before = os.getloadavg()
    start = time.perf_counter()
    run = api.train(preset, overrides=base + overrides, out=str(run_dir), log=lambda m: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    scores = scorer.score(run_dir, conditional=run.n_classes > 0)
    return {"preset": preset, "variant": name, "overrides": overrides, "seed": args.seed,
            "resolved": resolved_settings(run_dir),
            "minutes": args.minutes, "threads": args.threads, "steps": summary["steps"],
            "images_per_s": summary["images_per_s"], "load_before": list(load_before),
            "load_after": list(os.getloadavg()), "wall_s": round(time.perf_counter() - start, 1),
            "cpu_model": report.cpu_model(), "scoring": scorer.info,
            **{k: v for k, v in scores.items() if k not in ("per_class", "histogram")}}


def settings(record: dict[str, Any]) -> str:
    """The run's overrides, or the key settings of the preset as it resolved then."""
    if record["overrides"]:
        return f"`{' '.join(record['overrides'])}`"
    r = record.get("resolved")
    if not r:
        return "(preset)"
    t, o = r["train"], r["optim"]
    ema = (f"EMA half-life {t['ema_half_life']:g}" if t.get("ema_half_life")
           else f"EMA {t['ema']:g}" if t.get("ema") else "no EMA")
    return (f"(preset: batch {t['batch_size']}, lr {o['lr_g']:g}/{o['lr_d']:g}, {ema}, loss "
            f"{r['loss']['name']})")


def table(records: list[dict[str, Any]], floor: Optional[float]) -> str:
    conditional = any("acc" in r for r in records)
    head = ("| variant | overrides | seed | min | steps | img/s | load | FID | FID/floor | "
            "precision | recall | " + ("acc | worst |" if conditional else "entropy | min share |"))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in records:
        ratio = f"{r['fid'] / floor:.1f}" if floor else "–"
        tail = (f"{r['acc']:.3f} | {r['worst']:.3f} |" if conditional else
                f"{r['entropy']:.3f} | {r['min_share']:.3f} |")
        lines.append(f"| {r['variant']} | {settings(r)} | "
                     f"{r['seed']} | {r['minutes']:g} | {r['steps']} | {r['images_per_s']:,.0f} "
                     f"| {r['load_before'][0]:.1f}/{r['load_after'][0]:.1f} | {r['fid']:.2f} | "
                     f"{ratio} | {r['precision']:.3f} | {r['recall']:.3f} | {tail}")
    return "\n".join(lines)


def render(preset: str, records: list[dict[str, Any]], floor: Optional[float],
           cpu: str) -> str:
    """The sweep's markdown: every command that added rows, then one table per kind of CPU
    and evaluator (a row compares only with rows of its own machine: a minute buys other step
    counts elsewhere, and the evaluator retrained there scores on other features), each with
    its own FID floor. ``cpu``: this machine's, for rows that predate ``cpu_model``."""
    commands = list(dict.fromkeys(r["command"] for r in records if r.get("command")))
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        sha = str((r.get("scoring") or {}).get("evaluator_sha256", ""))[:12]
        groups.setdefault((r.get("cpu_model") or cpu, sha), []).append(r)
    tables = []
    for (model, sha), rows in groups.items():
        own = rows[-1].get("fid_floor") or floor
        tables.append(f"Machine: {model}" + (f", evaluator sha256 {sha}" if sha else "")
                      + f"; FID floor (real MNIST test digits, same protocol): "
                      + (f"{own:.3f}" if own else "–") + ".\n\n" + table(rows, own) + "\n")
    return (f"# Sweep: {preset}\n\nEvery setting tried for this preset, scored like "
            f"`quality.py` (10,000 samples vs the 5,000 unseen embedded digits, `mnist-lenet`).\n\n"
            + "".join(f"Command: `{c}`  \n" for c in commands)
            + "(each invocation appends; load = load average before/after each run).\n\n"
            + "\n".join(tables))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...")
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluator", default="mnist-lenet")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--runs", default=str(REPO / "runs" / "sweeps"))
    p.add_argument("--render-only", action="store_true",
                   help="train nothing: rewrite the markdown from the results' JSON lines")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / f"{args.preset}.jsonl"
    command = report.command_line(REPO, sys.argv if argv is None else [__file__, *argv])
    floor: Optional[float] = None
    if not args.render_only:
        Path(args.runs).mkdir(parents=True, exist_ok=True)
        scorer = qs.make_scorer(args.evaluator, Path(args.runs), args.samples)
        floor = qs.real_floor(scorer, SHARED_DATA, Path(args.runs))["fid"]
        for text in args.variant or ["preset:"]:
            name, overrides = parse_variant(text)
            record = train_and_score(args.preset, name, overrides, args, scorer)
            record.update(fid_floor=floor, command=command)
            with log.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            print(json.dumps({k: record[k] for k in record if k != "scoring"}), flush=True)
    if not log.is_file():
        raise SystemExit(f"no sweep of {args.preset} yet ({log} is missing); run one first")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    floor = floor if floor is not None else records[-1].get("fid_floor")
    text = render(args.preset, records, floor, report.cpu_model())
    (RESULTS / f"{args.preset}.md").write_text(text)
    print(f"wrote {RESULTS / args.preset}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
