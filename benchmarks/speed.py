"""CPU training speed of ganforge: images/s, peak memory and data-path share per preset and batch.

Run from the repository root::

    .venv/bin/python benchmarks/speed.py             # every preset, B = 64 256 1024 + default
    .venv/bin/python benchmarks/speed.py --quick     # two presets, B = 64 (+ default), seconds

Each (preset, batch) runs in its own subprocess, so its peak RSS (``ru_maxrss``) belongs to that
configuration alone. Inside, a real :class:`ganforge.training.step.loop.Trainer` is built into a
temporary run folder (no TensorBoard, no progress bar, no grids or checkpoints) and its
``train_step()`` is timed: warm-up, then equal-sized windows whose median images/s is reported.
The data path (``sampler.next()`` + noise/labels) is timed inside those same steps and, as a
cross-check, on its own. Seed nets are also run side by side with the typical implementation of
``baseline.py``, alternating windows so machine noise hits both. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_BATCHES = (64, 256, 1024)
QUICK_PRESETS = ("cgan-mnist", "dcgan-seed002-mnist")
# The seeds' own nets and batch sizes, measured side by side with the typical implementation.
# The typical implementations measured side by side: (name, preset whose nets it trains, batch).
# The seeds' own nets at their batch sizes, and the DCGAN paper's nets at 32 and 64 px (the
# presets on bigger images are held against these rather than against 28x28 nets).
SEEDS = (("seed 001", "cgan-mnist", 64), ("seed 002", "dcgan-seed002-mnist", 128),
         ("DCGAN paper 32 px", "dcgan-cifar10", 128), ("DCGAN paper 64 px", "dcgan-celeba64", 128))
BIG = 10**9  # "never" for step budgets and logging intervals


@dataclass
class Protocol:
    """How long to warm up and measure. Windows are sized from the warm-up's step time."""

    warmup_s: float = 3.0         # warm up at least this long ...
    min_warmup_steps: int = 2     # ... and at least this many steps (the first ones allocate)
    window_s: float = 4.0         # target length of one timed window (at least one step)
    windows: int = 5              # timed windows; the median is reported
    data_min_iters: int = 20      # iterations per isolated data-path window
    synthetic_limit: int = 10_000  # images of stand-in synthetic data (= MNIST test split size)


FULL = Protocol()


def with_overrides(proto: Protocol, args: Any) -> Protocol:
    """``proto`` with the command line's ``--warmup-s``/``--window-s``/``--windows`` applied."""
    given = {k: getattr(args, k, None) for k in ("warmup_s", "window_s", "windows")}
    return Protocol(**{**asdict(proto), **{k: v for k, v in given.items() if v is not None}})
QUICK = Protocol(warmup_s=0.3, min_warmup_steps=1, window_s=0.4, windows=3, data_min_iters=5,
                 synthetic_limit=2_000)


# ----------------------------------------------------------------------------- configuration

def bench_config(preset: str, batch: int, threads: int, data_root: Path,
                 proto: Protocol) -> tuple[Any, str]:
    """The preset's config made runnable offline and quiet; also a note on the data used.

    MNIST presets read the real test split from ``data_root``; CelebA presets read the real
    faces when ``data_root/celeba`` holds them (JPEGs decoded once into the decoded cache, as
    training does); other datasets that are not available offline become ``synthetic`` data of
    the same image shape; toy-2d and the embedded digits keep their own data.
    """
    from ganforge.config import resolve
    from ganforge.data import KNOWN_SHAPES

    base = resolve(preset)
    name = base.data.name
    over = [f"train.batch_size={batch}", f"train.steps={BIG}", "train.epochs=none",
            "train.minutes=none", "train.device=cpu", f"train.threads={threads}",
            "log.tensorboard=false", "log.progress=false", f"log.log_every={BIG}",
            f"log.sample_every={BIG}", f"log.checkpoint_every={BIG}"]
    if name == "mnist":
        over += [f"data.root={data_root}", "data.split=test", "data.download=false"]
        note = "MNIST test split (real, 10,000 images)"
    elif name in ("stacked-mnist", "mnist-pairs"):  # composed from MNIST digits, offline too
        over += [f"data.root={data_root}", "data.split=test", "data.download=false"]
        note = f"{name} composed from the MNIST test split's digits"
    elif name in ("toy-2d", "digits", "synthetic"):
        note = f"{name} (its own data)"
    elif name == "celeba" and (data_root / "celeba" / "img_align_celeba").is_dir():
        over += [f"data.root={data_root}", "data.split=train", "data.download=false"]
        count = sum(1 for _ in (data_root / "celeba" / "img_align_celeba").iterdir())
        note = (f"CelebA faces (real: {count:,} JPEGs in {data_root.name}/celeba, decoded once "
                f"into the decoded cache)")
    else:
        (c, h, _), _ = KNOWN_SHAPES[name]
        size = base.data.image_size or h
        chans = base.data.channels or c
        over += ["data.name=synthetic", f"data.image_size={size}", f"data.channels={chans}",
                 f"data.limit={proto.synthetic_limit}", "data.root=none"]
        note = (f"synthetic {chans}x{size}x{size} stand-in for {name} "
                f"({proto.synthetic_limit} images; {name} is not available offline)")
    return resolve(preset, overrides=over), note


# ----------------------------------------------------------------------------- timing helpers

def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_up(step: Callable[[], None], proto: Protocol) -> float:
    """Run steps until both warm-up minimums are met; returns a steady step-time estimate."""
    t0, times = time.perf_counter(), []
    while len(times) < proto.min_warmup_steps or time.perf_counter() - t0 < proto.warmup_s:
        ts = time.perf_counter()
        step()
        times.append(time.perf_counter() - ts)
    tail = times[len(times) // 2:]  # the first steps pay for allocation and lazy init
    return sum(tail) / len(tail)


def window_steps(step_s: float, proto: Protocol) -> int:
    return max(1, round(proto.window_s / max(step_s, 1e-9)))


def timed(step: Callable[[], None], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return time.perf_counter() - t0


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min and max of per-window values (and the values themselves)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "windows": values}


class DataPathTimer:
    """Times the data path inside real training steps.

    ``train_step`` reaches the data only through ``setup.sampler.next()`` and ``setup.noise(B)``,
    so wrapping those two attributes captures batch slicing, uint8 -> float conversion,
    normalisation, labels and noise without touching the loop. The wrappers add two
    ``perf_counter`` calls per use (well under a microsecond against millisecond steps).
    """

    def __init__(self, setup: Any) -> None:
        self.seconds = 0.0
        self.sampler_next, self.noise = setup.sampler.next, setup.noise  # the unwrapped ones

        def timed_next():
            t = time.perf_counter()
            out = self.sampler_next()
            self.seconds += time.perf_counter() - t
            return out

        def timed_noise(n: int):
            t = time.perf_counter()
            out = self.noise(n)
            self.seconds += time.perf_counter() - t
            return out

        setup.sampler.next, setup.noise = timed_next, timed_noise

    def isolated(self, batch: int, n_critic: int, iters: int) -> float:
        """Seconds per training step of the data path alone (``iters`` steps' worth)."""
        t0 = time.perf_counter()
        for _ in range(iters):
            for _ in range(n_critic):
                self.sampler_next()
                self.noise(batch)
        return (time.perf_counter() - t0) / iters


def build_trainer(cfg: Any, run_dir: Path) -> Any:
    from ganforge.training.step.loop import Trainer

    trainer = Trainer(cfg, run_dir, log=lambda _msg: None)
    trainer.s.generator.train()  # what Trainer.fit does before its first step
    trainer.s.discriminator.train()
    return trainer


# ----------------------------------------------------------------------------- workers

def measure_preset(preset: str, batch: int, threads: int, proto: Protocol,
                   data_root: Path = SHARED_DATA) -> dict[str, Any]:
    """Images/s, data-path share and peak RSS of ganforge's real loop for one configuration."""
    import torch

    import ganforge.training.step.loop  # noqa: F401  (so the import share of the peak is known)

    torch.set_num_threads(threads)
    rss_import = peak_rss_mib()  # torch alone is most of a process's memory at small batches
    cfg, note = bench_config(preset, batch, threads, data_root, proto)
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        t0 = time.perf_counter()
        trainer = build_trainer(cfg, Path(tmp) / "run")
        setup_s, rss_setup = time.perf_counter() - t0, peak_rss_mib()
        s = trainer.s
        n_critic = s.phases.n_critic
        # Real images consumed per G step, as Trainer.fit counts them (one process).
        images = s.phases.images_per_step(s.batches.global_batch)
        timer = DataPathTimer(s)
        n = window_steps(warm_up(trainer.train_step, proto), proto)
        ips, step_s, in_step = [], [], []
        for _ in range(proto.windows):
            timer.seconds = 0.0
            dt = timed(trainer.train_step, n)
            ips.append(images * n / dt)
            step_s.append(dt / n)
            in_step.append(timer.seconds / dt)
        iters = max(n, proto.data_min_iters)
        data_step = [timer.isolated(batch, n_critic, iters) for _ in range(proto.windows)]
        trainer.stats.close()
    med_step = statistics.median(step_s)
    return {
        "preset": preset, "batch": batch, "data": note, "arch": cfg.model.arch,
        "shape": list(s.data.shape), "reproduces": cfg.reproduces,
        "threads": torch.get_num_threads(), "n_critic": n_critic, "steps_per_window": n,
        "images_per_s": spread(ips), "step_ms": med_step * 1e3,
        "data_path": {"in_step_pct": spread([100 * f for f in in_step]),
                      "isolated_ms": statistics.median(data_step) * 1e3,
                      "isolated_pct": 100 * statistics.median(data_step) / med_step},
        "peak_rss_mib": peak_rss_mib(), "peak_rss_after_import_mib": rss_import,
        "peak_rss_after_setup_mib": rss_setup,
        "setup_s": setup_s,
    }


def measure_compare(preset: str, batch: int, threads: int, proto: Protocol,
                    data_root: Path = SHARED_DATA, limit: Optional[int] = None) -> dict[str, Any]:
    """Baseline and ganforge on the same nets and batch, alternating timed windows."""
    import torch

    from baseline import BaselineGAN

    torch.set_num_threads(threads)
    cfg, note = bench_config(preset, batch, threads, data_root, proto)
    if limit is not None:  # smoke tests: a small data set for both sides
        from ganforge.config import apply_override
        apply_override(cfg, f"data.limit={limit}")
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        trainer = build_trainer(cfg, Path(tmp) / "run")
        timer = DataPathTimer(trainer.s)
        # MNIST comes from its files as torchvision serves it, real CelebA from its JPEGs (one
        # decode per sample); other data (the synthetic stand-ins) from the trainer's own
        # arrays, through PIL all the same.
        other = None if cfg.data.name == "mnist" else trainer.s.data
        base = BaselineGAN(cfg, batch, root=data_root, limit=limit, seed=cfg.train.seed,
                           data=other)
        if cfg.data.name == "celeba" and cfg.data.root:
            from typical_faces import use_jpeg_faces

            use_jpeg_faces(base, Path(cfg.data.root), trainer.s.data.shape[-1], limit)
        g_images = trainer.s.phases.images_per_step(trainer.s.batches.global_batch)
        n_b = window_steps(warm_up(base.step, proto), proto)
        n_g = window_steps(warm_up(trainer.train_step, proto), proto)
        b_ips, g_ips, b_data, g_data = [], [], [], []
        for _ in range(proto.windows):  # baseline, ganforge, baseline, ganforge, ...
            base.data_time = 0.0
            dt = base.run(n_b)
            b_ips.append(base.images_per_step() * n_b / dt)
            b_data.append(100 * base.data_time / dt)
            timer.seconds = 0.0
            dt = timed(trainer.train_step, n_g)
            g_ips.append(g_images * n_g / dt)
            g_data.append(100 * timer.seconds / dt)
        trainer.stats.close()
    b, g = spread(b_ips), spread(g_ips)
    return {
        "preset": preset, "batch": batch, "data": note, "threads": torch.get_num_threads(),
        "baseline": {**b, "steps_per_window": n_b, "data_pct": spread(b_data)},
        "ganforge": {**g, "steps_per_window": n_g, "data_pct": spread(g_data)},
        "ratio": g["median"] / b["median"],
        "pair_ratios": [gi / bi for gi, bi in zip(g_ips, b_ips)],
        "peak_rss_mib_both": peak_rss_mib(),
    }


def worker_main(job: dict[str, Any], out: Path) -> None:
    """Subprocess entry: run one job and write its result as JSON to ``out``."""
    proto = Protocol(**job["protocol"])
    root = Path(job["data_root"])
    if job["kind"] == "preset":
        result = measure_preset(job["preset"], job["batch"], job["threads"], proto, root)
    else:
        result = measure_compare(job["preset"], job["batch"], job["threads"], proto, root)
    out.write_text(json.dumps(result))


# ----------------------------------------------------------------------------- orchestration

def run_job(job: dict[str, Any], timeout: float, script: Optional[Path] = None,
            identity: tuple[str, ...] = ("preset", "batch")) -> dict[str, Any]:
    """Run ``job`` in a fresh interpreter (``script --worker JOB OUT``, this file by default);
    on failure return its ``identity`` keys plus an error line."""
    fd, out_name = tempfile.mkstemp(prefix="ganforge-bench-", suffix=".json")
    os.close(fd)
    out = Path(out_name)
    threads = str(job["threads"])
    # OpenMP/MKL pools read these at start-up; torch.set_num_threads in the worker sets the rest.
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    worker = (script or Path(__file__)).resolve()
    cmd = [sys.executable, str(worker), "--worker", json.dumps(job), str(out)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, timeout=timeout, capture_output=True,
                              text=True)
        if proc.returncode == 0:
            result = json.loads(out.read_text())
        else:
            lines = (proc.stderr or "").strip().splitlines() or [f"exit code {proc.returncode}"]
            result = {"error": f"exit {proc.returncode}: {lines[-1][:300]}"}
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {timeout:.0f} s"}
    finally:
        out.unlink(missing_ok=True)
    for key in identity:
        result.setdefault(key, job[key])
    result["wall_s"] = time.perf_counter() - t0
    return result


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", help="presets to run (default: all; --quick: "
                   f"{' '.join(QUICK_PRESETS)})")
    p.add_argument("--batch-sizes", nargs="+", type=int,
                   help="batch sizes besides each preset's default (default: 64 256 1024; "
                        "--quick: 64)")
    p.add_argument("--defaults-only", action="store_true",
                   help="each preset at its default batch size only (no sweep)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--quick", action="store_true",
                   help="short windows, two presets, B=64 only (no default batch); writes "
                        "speed_cpu_quick.* so real results are never overwritten")
    p.add_argument("--windows", type=int, help="timed windows per measurement (default 5)")
    p.add_argument("--window-s", type=float, help="target seconds per window (default 4)")
    p.add_argument("--warmup-s", type=float, help="minimum warm-up seconds (default 3)")
    p.add_argument("--skip-compare", action="store_true", help="no side-by-side baseline runs")
    p.add_argument("--compare", nargs="+", choices=[name for name, _, _ in SEEDS],
                   metavar="NAME", help="side-by-side baselines to run (default: all of "
                   + ", ".join(repr(name) for name, _, _ in SEEDS) + ")")
    p.add_argument("--data-root", type=Path, default=SHARED_DATA,
                   help="folder with MNIST/raw/t10k-* and celeba/ (default: ../shared/data)")
    p.add_argument("--out-dir", type=Path, default=RESULTS, help="where results are written")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per configuration")
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from ganforge.config import list_presets, resolve

    proto = with_overrides(QUICK if args.quick else FULL, args)
    presets = args.presets or (list(QUICK_PRESETS) if args.quick else list_presets())
    sweep = args.batch_sizes or ([64] if args.quick else list(DEFAULT_BATCHES))
    if args.defaults_only:
        sweep = []
    common = {"threads": args.threads, "protocol": asdict(proto),
              "data_root": str(args.data_root.resolve())}
    jobs = []
    for preset in presets:
        default = resolve(preset).train.batch_size
        # Quick mode is a pipeline check: B=64 only, without each preset's default batch.
        batches = set(sweep) if args.quick else set(sweep) | {default}
        for batch in sorted(batches):
            jobs.append({"kind": "preset", "preset": preset, "batch": batch,
                         "default": batch == default, **common})
    if not args.skip_compare:
        jobs += [{"kind": "compare", "preset": p, "batch": b, "seed": s, **common}
                 for s, p, b in SEEDS if not args.compare or s in args.compare]

    machine = report.machine_info(args.threads)
    stem = "speed_cpu_quick" if args.quick else "speed_cpu"
    print(f"ganforge CPU speed benchmark: {len(jobs)} runs, {args.threads} threads, "
          f"{machine['cpu_model']} -> {args.out_dir / stem}.{{json,md}}", flush=True)
    t_start, rows, compares = time.perf_counter(), [], []
    for i, job in enumerate(jobs, 1):
        result = run_job(job, args.timeout)
        if job["kind"] == "preset":
            result["default"] = job["default"]
            rows.append(result)
        else:
            result["seed"] = job["seed"]
            compares.append(result)
        print(f"[{i}/{len(jobs)} {time.perf_counter() - t_start:6.0f}s] "
              f"{report.one_line(job['kind'], result)}", flush=True)

    machine["loadavg_end"] = list(os.getloadavg())
    results = {
        "command": report.command_line(REPO, sys.argv if argv is None else ["x", *argv]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine, "threads": args.threads, "quick": args.quick,
        "protocol": asdict(proto), "wall_s": time.perf_counter() - t_start,
        "presets": rows, "comparisons": compares,
    }
    results["defaults_vs_baseline"] = report.defaults_vs_baseline(rows, compares)
    results["targets"] = report.evaluate_targets(results)
    paths = report.write_results(results, args.out_dir, stem)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    print(report.targets_line(results["targets"]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(json.loads(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(main())
