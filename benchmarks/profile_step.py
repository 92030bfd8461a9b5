"""Where one training step's time goes: torch.profiler over a few real ``Trainer.train_step``s.

Run from the repository root::

    .venv/bin/python benchmarks/profile_step.py --preset cgan-mnist --batch 64
    python benchmarks/profile_step.py --preset dcgan-celeba64 --device cuda --set train.amp=bf16

Prints the step time (median of 5 windows), then the operators sorted by self CPU time and, on
CUDA, by device time. The preset is made runnable offline as ``speed.py`` does (MNIST from
``../shared/data`` when present, synthetic stand-ins for datasets that are not here).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import speed  # benchmarks/speed.py (this folder is on sys.path when run as a script)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True)
    p.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--steps", type=int, default=20, help="profiled steps (default 20)")
    p.add_argument("--rows", type=int, default=25, help="operators per table (default 25)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config overrides, as for ganforge train")
    args = p.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from ganforge.config import apply_override, resolve, validate

    torch.set_num_threads(args.threads)
    batch = args.batch or resolve(args.preset).train.batch_size
    cfg, note = speed.bench_config(args.preset, batch, args.threads, speed.SHARED_DATA,
                                   speed.FULL)
    for override in [f"train.device={args.device}", *args.set]:
        apply_override(cfg, override)
    validate(cfg)
    cuda = args.device.startswith("cuda")

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory(prefix="ganforge-profile-") as tmp:
        trainer = speed.build_trainer(cfg, Path(tmp) / "run")
        for _ in range(10):  # allocation, cuDNN autotuning, lazy init
            trainer.train_step()
        sync()
        windows = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step()
            sync()
            windows.append((time.perf_counter() - t0) / args.steps)
        step_s = statistics.median(windows)
        images = trainer.s.phases.images_per_step(trainer.s.batches.global_batch)
        print(f"{args.preset} B={batch} on {args.device} ({note}); overrides {args.set}: "
              f"{step_s * 1e3:.2f} ms/step, {images / step_s:,.0f} images/s")
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            for _ in range(args.steps):
                trainer.train_step()
            sync()
        trainer.stats.close()
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if cuda:
        print(table.table(sort_by="self_cuda_time_total", row_limit=args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
