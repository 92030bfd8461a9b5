"""Continuous conditions, measured: a cGAN on toy-2d ring-angle against the same GAN without the
condition, scored by condition-fit on the test split's conditions.

Run from the repository root::

    .venv/bin/python benchmarks/condition_ring.py                         # about a minute
    .venv/bin/python benchmarks/condition_ring.py --seeds 0 1 2 \
        --out benchmarks/results/condition_ring.json

Protocol: preset ``cgan-ring-angle`` (MLP cGAN, conditioned on y = (cos theta, sin theta)) and
the same preset with ``model.conditional=false``, each for ``--steps`` steps on 1 thread with the
given seed. Each model then draws one point per condition row of the ring-angle *test* split
(5,000 rows; the unconditional model just draws 5,000 points), and condition-fit compares every
point with the ring point its row asks for: 0 = exactly there, ~1 = no better than a random
row's point; the ring's own radial noise puts a perfect generator at about 0.04.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import report  # benchmarks/report.py (this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]

N_TEST = 5000


def measure(conditional: bool, steps: int, seed: int, out: Path) -> dict[str, Any]:
    """Train one model and score it on the test split's condition rows."""
    import ganforge
    from ganforge.config import DataConfig
    from ganforge.data import build_dataset
    from ganforge.data.toy import ring_target
    from ganforge.metrics.condition import condition_fit

    rows = build_dataset(DataConfig(name="toy-2d", toy="ring-angle", split="test",
                                    toy_samples=N_TEST)).y
    start = time.perf_counter()
    run = ganforge.train("cgan-ring-angle", out=str(out), log=lambda line: None, overrides=[
        f"model.conditional={str(conditional).lower()}", f"train.steps={steps}",
        f"train.seed={seed}", "train.threads=1", "log.progress=false", "eval.every=0",
        "log.report_every_s=none"])
    seconds = time.perf_counter() - start
    points = run.generate(labels=rows, seed=seed) if conditional else run.generate(n=N_TEST,
                                                                                   seed=seed)
    value, fit, baseline = condition_fit(points, ring_target(rows))
    radius = points.norm(dim=1)
    return {"conditional": conditional, "seed": seed, "steps": steps, "condition_fit": value,
            "fit": fit, "baseline": baseline, "radius_mean": float(radius.mean()),
            "radius_std": float(radius.std()), "train_s": round(seconds, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv[1:])

    import torch

    torch.set_num_threads(1)
    machine = report.machine_info(torch.get_num_threads())  # load average at the start
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for conditional in (True, False):
                name = f"{'cond' if conditional else 'uncond'}-{seed}"
                row = measure(conditional, args.steps, seed, Path(tmp) / name)
                rows.append(row)
                print(f"{name}: condition-fit {row['condition_fit']:.4f} (fit {row['fit']:.4f}"
                      f", baseline {row['baseline']:.4f}), radius {row['radius_mean']:.3f} "
                      f"+- {row['radius_std']:.3f}, {row['train_s']:.0f} s", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": report.command_line(REPO, sys.argv), "machine": machine,
                                    "loadavg_end": list(os.getloadavg()),
                                    "steps": args.steps, "runs": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
