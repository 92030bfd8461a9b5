"""MNIST domain evaluator: held-out accuracy, training time and feature speed, offline protocol.

Run from the repository root::

    .venv/bin/python benchmarks/evaluator_mnist.py                  # seeds 0 1 2, 2 threads
    .venv/bin/python benchmarks/evaluator_mnist.py --seeds 0 --epochs 3

Protocol (the issue's offline variant): the 10,000 MNIST test digits from ``../shared/data``,
split per seed into a stratified 8,000 / 2,000 train / held-out part; ``train_evaluator`` with
its defaults (lenet, 6 epochs, AdamW one-cycle, random affine augmentation) on the CPU; the
accuracy of the final model on the held-out part. Target: >= 98.0% held-out.
Also timed: features + logits of all 10,000 images with the saved evaluator (load included),
the extractor half of a 10k FID / label-accuracy computation.

Writes ``results/evaluator_mnist.{json,md}``. The issue's second target (>= 99.0% on the test
split when trained on the full 60k training split) needs the training split, which is not
available offline here; the report says so instead of claiming it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
TARGET = 0.98


def run_seed(seed: int, epochs: int, threads: int, folder: Path) -> dict[str, Any]:
    """Train on the 8k part for ``seed``; time feature extraction of all 10k images."""
    import torch

    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.metrics.evaluator import DomainEvaluator, train_evaluator

    cfg = DataConfig(name="mnist", root=str(SHARED_DATA), split="test", download=False)
    lines: list[str] = []
    rep = train_evaluator(cfg, epochs=epochs, seed=seed, out_path=str(folder / f"s{seed}"),
                          threads=threads, log=lines.append)
    x = build_dataset(cfg).x.float().div(127.5).sub(1)  # (10000, 1, 28, 28) in [-1, 1]
    torch.set_num_threads(threads)
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        features, logits = DomainEvaluator(rep["path"]).features_and_logits(x)
        timings.append(time.perf_counter() - start)
    return {"seed": seed, "heldout_accuracy": rep["heldout_accuracy"],
            "per_class_accuracy": rep["per_class_accuracy"], "train_s": rep["seconds"],
            "train_size": rep["train_size"], "heldout_size": rep["heldout_size"],
            "features_10k_s": statistics.median(timings), "features_shape": list(features.shape),
            "logits_shape": list(logits.shape),
            # The per-epoch lines; the last line names a temporary file, so it is left out.
            "log": [line for line in lines if line.startswith("epoch")]}


def command_line(argv: list[str]) -> str:
    """The command as typed from the repository root, with a relative interpreter path."""
    exe = Path(sys.executable)
    py = os.path.relpath(exe, REPO) if REPO in exe.parents else "python"
    return " ".join([py, "benchmarks/evaluator_mnist.py", *map(shlex.quote, argv[1:])])


def render(res: dict[str, Any]) -> str:
    rows = res["runs"]
    accs = [r["heldout_accuracy"] for r in rows]
    ok = min(accs) >= TARGET
    m = res["machine"]
    out = [
        "# MNIST domain evaluator (lenet): held-out accuracy and speed", "",
        f"Command: `{res['command']}`  ",
        f"Date (UTC): {res['date']}  ",
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable), {m['mem_total_gib']} GiB RAM, {m['platform']}  ",
        f"Software: Python {m['python']}, torch {m['torch']}, ganforge commit "
        f"{m['ganforge_commit']}  ",
        f"Threads: {m['threads']}; load average at start {m['loadavg_start'][0]:.2f}, at end "
        f"{res['loadavg_end'][0]:.2f} (the machine is shared; times are upper bounds)", "",
        "Protocol: MNIST test split (10,000 digits, `../shared/data`), stratified 8,000 / 2,000 "
        f"train / held-out split per seed; `train_evaluator` defaults ({res['epochs']} epochs, "
        "batch 128, AdamW one-cycle peak lr 3e-3, random rotation/shift/zoom), CPU; accuracy of "
        "the final model on the 2,000 held-out digits. Feature time: loading the saved "
        "evaluator + features and logits of all 10,000 digits, median of 3.", "",
        "## Target", "",
        "| target | result | detail |", "|---|---|---|",
        f"| >= 98.0% held-out (8k/2k of the test split) | {'PASS' if ok else 'FAIL'} | "
        f"min {min(accs):.2%}, mean {statistics.mean(accs):.2%} over {len(accs)} seed(s) |",
        "| >= 99.0% on the test split, trained on the 60k train split | NOT RUN | the MNIST "
        "training split is not available offline here (only t10k is in `../shared/data`); "
        "run `ganforge train-evaluator --dataset mnist` online to check it |", "",
        "## Runs", "",
        "| seed | held-out accuracy | train + eval time s | features+logits 10k s | shapes |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(f"| {r['seed']} | {r['heldout_accuracy']:.2%} | {r['train_s']:.1f} | "
                   f"{r['features_10k_s']:.2f} | {r['features_shape']} / {r['logits_shape']} |")
    worst = min(rows, key=lambda r: r["heldout_accuracy"])
    per_class = ", ".join(f"{k}: {a:.1%}" if a is not None else f"{k}: n/a"
                          for k, a in enumerate(worst["per_class_accuracy"]))
    out += ["", f"Per-class held-out accuracy of the weakest run (seed {worst['seed']}): "
            f"{per_class}.", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv[1:])
    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        sys.exit(f"the MNIST test split is not in {SHARED_DATA}; see shared/data/README.md")

    import torch

    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {
        "benchmark": "evaluator_mnist", "command": command_line(argv),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": report.machine_info(args.threads), "epochs": args.epochs, "target": TARGET,
        "full_train_split_target": "not run: the MNIST training split is not available offline",
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = run_seed(seed, args.epochs, args.threads, Path(tmp))
            res["runs"].append(run)
            print(f"seed {seed}: held-out {run['heldout_accuracy']:.4f}, train "
                  f"{run['train_s']:.1f}s, features 10k {run['features_10k_s']:.2f}s", flush=True)
    res["loadavg_end"] = list(os.getloadavg())
    from ganforge import fileio

    fileio.write_text(args.out_dir / "evaluator_mnist.json", json.dumps(res, indent=2) + "\n")
    fileio.write_text(args.out_dir / "evaluator_mnist.md", render(res))
    print(f"wrote {args.out_dir / 'evaluator_mnist.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
