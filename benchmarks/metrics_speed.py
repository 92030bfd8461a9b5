"""How long FID + label accuracy take for 10k MNIST samples with the domain evaluator (CPU).

Target (evaluation issue): under 30 s on the 2-core CPU, with reference statistics cached.

Protocol: the samples are an npz of 10,000 images in the `ganforge generate` format (default:
the real MNIST test digits with their labels, which exercises exactly the same code as generated
samples); the extractor is `mnist-lenet` from the default evaluator folder (train it first with
`ganforge train-evaluator --dataset mnist --data-root ../shared/data --split test`). "cold" runs
start from an empty reference cache (features of the 10k real images are computed and cached);
"warm" runs reuse it. Each is repeated and the median wall time quoted.

    .venv/bin/python benchmarks/metrics_speed.py [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from ganforge import fileio  # noqa: E402
from ganforge.config import DataConfig  # noqa: E402
from ganforge.data import build_dataset  # noqa: E402
from ganforge.metrics.evaluate import evaluate  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-root", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--evaluator", default="mnist-lenet")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "metrics_speed"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    ref = DataConfig(name="mnist", root=args.data_root, split="test", download=False)
    data = build_dataset(ref)
    work = Path(tempfile.mkdtemp(prefix="gf-metrics-bench-"))
    npz = work / "samples.npz"
    np.savez(npz, images=data.x[:, 0].numpy(), labels=data.y.numpy())

    timings: dict[str, list[float]] = {"cold": [], "warm": []}
    values = {}
    for r in range(args.repeats):
        cache = work / f"cache{r}"
        for kind in ("cold", "warm"):
            start = time.perf_counter()
            results = evaluate(npz, ["fid", "label-acc"], extractor=args.evaluator,
                               reference=ref, n_fake=10_000, cache_dir=cache, log=lambda m: None)
            timings[kind].append(time.perf_counter() - start)
            values = {res.name: res.value for res in results}
            print(f"repeat {r} {kind}: {timings[kind][-1]:.2f} s {values}", flush=True)

    summary = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
                    "torch": torch.__version__},
        "samples": "10,000 real MNIST test digits as an npz (same path as generated samples)",
        "metrics": values,
        "seconds": {k: {"median": statistics.median(v), "min": min(v), "max": max(v),
                        "all": [round(x, 3) for x in v]} for k, v in timings.items()},
        "target_s": 30.0,
    }
    out = Path(args.out)
    fileio.write_json(out.with_suffix(".json"), summary)
    s = summary["seconds"]
    md = [
        "# FID + label accuracy for 10k MNIST samples (CPU)", "",
        f"Command: `{summary['command']}`  ",
        f"Date: {summary['date']}; machine: {summary['machine']['cpu']}, "
        f"{summary['machine']['cores']} cores, {args.threads} torch threads, "
        f"torch {torch.__version__}", "",
        f"Samples: {summary['samples']}; extractor `{args.evaluator}`; reference: MNIST test "
        "split (10,000). Median of "
        f"{args.repeats} repeats.", "",
        "| cache | median s | min s | max s | target | result |", "|---|---|---|---|---|---|",
    ]
    for kind in ("cold", "warm"):
        ok = "PASS" if s[kind]["median"] < 30 else "FAIL"
        md.append(f"| {kind} | {s[kind]['median']:.2f} | {s[kind]['min']:.2f} | "
                  f"{s[kind]['max']:.2f} | < 30 s | {ok} |")
    md += ["", "Values (real vs real, a sanity check): " +
           ", ".join(f"`{k}` = {v:.4g}" for k, v in values.items())]
    fileio.write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print(f"wrote {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
