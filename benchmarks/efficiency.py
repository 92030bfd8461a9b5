"""How close a training step comes to the machine's limit: FLOPs per image against the fp32
matmul peak, measured on the same machine.

Run from the repository root::

    .venv/bin/python benchmarks/efficiency.py                  # every MNIST preset, 2 threads
    .venv/bin/python benchmarks/efficiency.py --presets cgan-mnist gan-mnist --threads 2

Protocol:

* **The limit**: the fp32 matrix-multiply rate of this machine with ``--threads`` threads,
  measured first (square ``torch.mm`` of sides 1024, 2048 and 3072; median of 7 timings each;
  the best size is the peak), in GFLOP/s.
* **FLOPs per image**: one real ``Trainer.train_step()`` (every D step, the G step, forward and
  backward, penalties included) counted by ``torch.utils.flop_counter.FlopCounterMode`` — the
  matmuls and convolutions of the layers (2 FLOPs per multiply-add); elementwise work is not
  counted, so the fraction below is the share of the peak the layers' arithmetic reaches.
  Divided by the real images one step consumes (``batch × n_critic``).
* **Speed**: the step timed as ``speed.py`` times it (warm-up, 5 windows, median), on the
  preset's default batch and its own data (MNIST test split from ``../shared/data``).
* **Fraction of the limit** = FLOPs per step / seconds per step / peak.

Writes ``results/efficiency_cpu.{json,md}``; ``--quick`` gives seconds-long runs for tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)
import speed   # benchmarks/speed.py: the same config, trainer and timing protocol

RESULTS = Path(__file__).resolve().parent / "results"
MNIST_PRESETS = ("cgan-mnist", "gan-mnist", "dcgan-mnist", "cdcgan-mnist", "acgan-mnist",
                 "projection-mnist", "wgan-mnist", "wgan-gp-mnist", "hinge-sn-mnist",
                 "lsgan-mnist", "dragan-mnist", "r3gan-mnist")


def matmul_peak(threads: int, sides: tuple[int, ...] = (1024, 2048, 3072), repeats: int = 7
                ) -> dict[str, Any]:
    """The fp32 ``torch.mm`` rate in GFLOP/s per side, and the best (the machine's limit)."""
    import torch

    torch.set_num_threads(threads)
    rates = {}
    for n in sides:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(2):  # warm up: thread pool, first-touch of the result
            torch.mm(a, b)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t0)
        rates[n] = 2 * n**3 / statistics.median(times) / 1e9
    return {"gflops_by_side": rates, "peak_gflops": max(rates.values())}


def step_flops(trainer: Any) -> float:
    """FLOPs of one training step (forward and backward of every D and G pass).

    Counted with the formulas of ``torch.utils.flop_counter`` under a plain dispatch mode:
    ``FlopCounterMode`` itself tracks modules with backward hooks, which ``autograd.grad`` (the
    gradient penalties) refuses.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                Counter.total += int(formula(*args, **kwargs, out_val=out))
            return out

    with Counter():
        trainer.train_step()
    return float(Counter.total)


def measure(preset: str, threads: int, proto: speed.Protocol, peak: float) -> dict[str, Any]:
    """FLOPs per image, images/s and the fraction of ``peak`` of one preset at its batch."""
    import torch

    from ganforge.config import resolve

    torch.set_num_threads(threads)
    batch = resolve(preset).train.batch_size
    cfg, note = speed.bench_config(preset, batch, threads, speed.SHARED_DATA, proto)
    with tempfile.TemporaryDirectory(prefix="ganforge-eff-") as tmp:
        trainer = speed.build_trainer(cfg, Path(tmp) / "run")
        images = trainer.s.phases.images_per_step(trainer.s.batches.global_batch)
        n = speed.window_steps(speed.warm_up(trainer.train_step, proto), proto)
        flops = step_flops(trainer)
        step_s = [speed.timed(trainer.train_step, n) / n for _ in range(proto.windows)]
        trainer.stats.close()
    med = statistics.median(step_s)
    return {"preset": preset, "batch": batch, "n_critic": images // batch, "data": note,
            "arch": cfg.model.arch, "flops_per_image": flops / images,
            "images_per_s": images / med, "step_ms": med * 1e3,
            "gflops": flops / med / 1e9, "fraction_of_peak": flops / med / 1e9 / peak,
            "step_ms_windows": [s * 1e3 for s in step_s]}


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        "# Training step against the machine's limit (CPU)", "",
        f"Command: `{res['command']}`", "",
        f"Machine: {m.get('cpu_model')}, {m.get('logical_cores')} cores, torch "
        f"{m.get('torch')}, {res['threads']} threads; load average at start "
        f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_start', []))}.", "",
        f"fp32 matmul peak: **{res['peak']['peak_gflops']:.1f} GFLOP/s** (best of sides "
        + ", ".join(f"{k}: {v:.1f}" for k, v in res["peak"]["gflops_by_side"].items()) + ").",
        "", "| preset | arch | batch | MFLOP/image | images/s | GFLOP/s | share of peak |",
        "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['preset']} | {r['arch']} | {r['batch']} | "
                     f"{r['flops_per_image'] / 1e6:.2f} | {r['images_per_s']:,.0f} | "
                     f"{r['gflops']:.1f} | {100 * r['fraction_of_peak']:.0f}% |")
    lines += ["", "FLOPs: matmuls and convolutions of one `train_step()` (every D step and the "
              "G step, forward and backward) counted by `torch.utils.flop_counter`; images: "
              "real images per step (batch × n_critic). Speed: median of 5 timed windows."]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(MNIST_PRESETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="seconds-long windows (smoke test)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    proto = speed.QUICK if args.quick else speed.FULL
    machine = report.machine_info(args.threads)
    peak = matmul_peak(args.threads, sides=(256, 512) if args.quick else (1024, 2048, 3072))
    print(f"fp32 matmul peak: {peak['peak_gflops']:.1f} GFLOP/s", flush=True)
    rows = []
    for preset in args.presets:
        row = measure(preset, args.threads, proto, peak["peak_gflops"])
        rows.append(row)
        print(f"{preset}: {row['flops_per_image'] / 1e6:.2f} MFLOP/image, "
              f"{row['images_per_s']:,.0f} img/s, {100 * row['fraction_of_peak']:.0f}% of peak",
              flush=True)
    res = {"benchmark": "efficiency", "command": report.command_line(speed.REPO, sys.argv),
           "machine": machine, "threads": args.threads, "peak": peak, "rows": rows}
    stem = "efficiency_cpu" + ("_quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(render(res))
    print(f"wrote {args.out / stem}.{{json,md}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
