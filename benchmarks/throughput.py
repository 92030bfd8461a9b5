"""Training throughput on a GPU (or the CPU): mixed precision, compile, and the toolkit's overhead.

Run from the repository root::

    .venv/bin/python benchmarks/throughput.py --device cuda            # a GPU, ~30-60 min
    .venv/bin/python benchmarks/throughput.py --device cuda --presets dcgan-celeba64 dcgan-mnist
    .venv/bin/python benchmarks/throughput.py --device cpu --quick     # pipeline check, ~2 min

Two tables, every configuration in its own subprocess (fresh CUDA context, compile caches and
peak-memory counters):

1. **Presets**: images/s and peak memory of the real ``Trainer.train_step()`` for every preset
   at its default batch size, once per precision variant (``--variants``; on CUDA fp32, bf16
   and fp16 by default). On the CPU ``speed.py`` is the full benchmark (batch sweep, data-path
   share, DataLoader baseline); here the CPU only checks the pipeline.
2. **DCGAN 64×64 overhead**: ``dcgan-celeba64``'s nets at its default batch, toolkit vs a bare
   synthetic loop of the same nets (one fixed real batch on the device, no data loading, no
   statistics, no NaN guard, no logging), for fp32/bf16/fp16 × eager/compiled (+ channels_last).
   The toolkit should reach >= 60% of the bare loop's images/s.

Timing follows ``speed.py``'s protocol (warm-up, equal windows, median) with a CUDA
synchronisation before each clock read. Peak memory is ``torch.cuda.max_memory_allocated``
during the timed steps on CUDA, the process's peak RSS on the CPU. Results go to
``results/throughput_<device>[_quick].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Optional

import report  # benchmarks/report.py (this folder is on sys.path when run as a script)
import speed  # benchmarks/speed.py: the protocol, timing helpers and offline data config

RESULTS = Path(__file__).resolve().parent / "results"
OVERHEAD_PRESET = "dcgan-celeba64"
OVERHEAD_TARGET = 0.60   # toolkit images/s >= this share of the bare loop's
# A variant: (train.amp, train.compile, train.channels_last).
VARIANTS = {"fp32": ("none", False, False), "bf16": ("bf16", False, False),
            "fp16": ("fp16", False, False), "fp32+compile": ("none", True, False),
            "bf16+compile": ("bf16", True, False), "bf16+cl": ("bf16", False, True),
            "bf16+compile+cl": ("bf16", True, True)}
CUDA_ONLY = {"fp16", "fp32+compile", "bf16+compile", "bf16+compile+cl"}
QUICK_PRESETS = ("cgan-mnist", "dcgan-mnist")
QUICK = speed.Protocol(warmup_s=0.3, min_warmup_steps=1, window_s=0.4, windows=3,
                       data_min_iters=5, synthetic_limit=512)


# ----------------------------------------------------------------------------- configuration

def variant_config(preset: str, batch: Optional[int], device: str, variant: str, threads: int,
                   data_root: Path, proto: speed.Protocol) -> tuple[Any, str]:
    """``speed.bench_config`` on ``device`` with the variant's precision/compile settings;
    MNIST-based data becomes a synthetic stand-in of its size when the MNIST files are absent
    (a GPU machine without ``../shared/data``)."""
    from ganforge.config import apply_override, resolve, validate
    from ganforge.data import KNOWN_SHAPES

    batch = batch or resolve(preset).train.batch_size
    cfg, note = speed.bench_config(preset, batch, threads, data_root, proto)
    if cfg.data.root == str(data_root) and not (data_root / "MNIST" / "raw").is_dir():
        (c, h, _), _ = KNOWN_SHAPES[cfg.data.name]
        note = f"synthetic {c}x{h}x{h} stand-in for {cfg.data.name} (no MNIST files found)"
        for o in ("data.name=synthetic", "data.root=none", f"data.limit={proto.synthetic_limit}",
                  f"data.image_size={h}", f"data.channels={c}"):
            apply_override(cfg, o)
    amp, compiled, channels_last = VARIANTS[variant]
    for o in (f"train.device={device}", f"train.amp={amp}", f"train.compile={compiled}",
              f"train.channels_last={channels_last}"):
        apply_override(cfg, o)
    validate(cfg)
    return cfg, note


def data_shape(cfg: Any) -> tuple[tuple[int, ...], int]:
    """(C, H, W) and class count of the benchmark's (synthetic or MNIST) data, unread."""
    from ganforge.data import KNOWN_SHAPES

    shape, n_classes = KNOWN_SHAPES[cfg.data.name]
    if len(shape) == 3:
        shape = (cfg.data.channels or shape[0], cfg.data.image_size or shape[1],
                 cfg.data.image_size or shape[2])
    return shape, n_classes


# ----------------------------------------------------------------------------- timing

def sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def measure_steps(step: Callable[[], None], device: str, proto: speed.Protocol
                  ) -> dict[str, Any]:
    """Warm up, then ``proto.windows`` timed windows of equal step counts (synchronised)."""
    import torch

    def synced() -> None:
        step()
        sync(device)

    n = speed.window_steps(speed.warm_up(synced, proto), proto)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(proto.windows):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        seconds.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else speed.peak_rss_mib())
    return {"steps_per_window": n, "window_s": seconds, "peak_mem_mib": peak,
            "peak_mem_kind": "cuda max allocated" if device.startswith("cuda") else "peak RSS"}


def measure_toolkit(preset: str, batch: Optional[int], device: str, variant: str, threads: int,
                    proto: speed.Protocol, data_root: Path = speed.SHARED_DATA
                    ) -> dict[str, Any]:
    """Images/s and peak memory of ganforge's ``Trainer.train_step`` for one configuration."""
    import torch

    torch.set_num_threads(threads)
    cfg, note = variant_config(preset, batch, device, variant, threads, data_root, proto)
    with tempfile.TemporaryDirectory(prefix="ganforge-bench-") as tmp:
        trainer = speed.build_trainer(cfg, Path(tmp) / "run")
        images = trainer.s.phases.images_per_step(trainer.s.batches.global_batch)
        timing = measure_steps(trainer.train_step, device, proto)
        trainer.stats.close()
    ips = [images * timing["steps_per_window"] / s for s in timing.pop("window_s")]
    return {"preset": preset, "batch": cfg.train.batch_size, "variant": variant,
            "device": device, "data": note, "images_per_s": speed.spread(ips), **timing}


class BareLoop:
    """The preset's G and D trained by the smallest loop that does the same arithmetic.

    One D step on a fixed real batch and on ``G(z).detach()`` (BCE on logits), then one G step
    through the same fakes with D frozen — the toolkit's algorithm — with the variant's
    autocast, fp16 loss scaling, ``torch.compile`` and channels_last, and nothing else.
    """

    def __init__(self, cfg: Any, device: str) -> None:
        import torch

        from ganforge.models import MODELS, build_models

        t = cfg.train
        shape, n_classes = data_shape(cfg)
        n_classes = n_classes if cfg.model.conditional else 0
        G, D = build_models(cfg.model.arch, MODELS.get(cfg.model.arch).kwargs(
            cfg.model, shape, n_classes))
        fmt = torch.channels_last if t.channels_last else torch.contiguous_format
        self.G, self.D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
        if device.startswith("cuda"):
            torch.backends.cudnn.benchmark = True  # as the toolkit's runner sets it
        opt = dict(lr=cfg.optim.lr_g, betas=tuple(cfg.optim.betas), fused=True)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **opt)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **{**opt, "lr": cfg.optim.lr_d})
        self.G_run = torch.compile(self.G) if t.compile else self.G
        self.D_run = torch.compile(self.D) if t.compile else self.D
        B = t.batch_size
        self.real = (torch.rand(B, *shape, device=device) * 2 - 1).contiguous(memory_format=fmt)
        self.y = torch.randint(0, n_classes, (B,), device=device) if n_classes else None
        self.ones, self.zeros = torch.ones(B, device=device), torch.zeros(B, device=device)
        self.B, self.z_dim, self.device = B, cfg.model.z_dim, device
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.amp)
        self.autocast = (lambda: torch.autocast(torch.device(device).type, dtype=dtype)) \
            if dtype else (lambda: torch.autocast(torch.device(device).type, enabled=False))
        scaler = (lambda: torch.amp.GradScaler(torch.device(device).type)) \
            if t.amp == "fp16" else (lambda: None)
        self.scaler_g, self.scaler_d = scaler(), scaler()

    def _update(self, opt: Any, scaler: Any, loss: Any) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def step(self) -> None:
        import torch
        import torch.nn.functional as F

        z = torch.randn(self.B, self.z_dim, device=self.device)
        with self.autocast():
            fake = self.G_run(z, self.y)
            d_real = self.D_run(self.real, self.y).adv.float()
            d_fake = self.D_run(fake.detach(), self.y).adv.float()
        loss_d = (F.binary_cross_entropy_with_logits(d_real, self.ones)
                  + F.binary_cross_entropy_with_logits(d_fake, self.zeros))
        self._update(self.opt_d, self.scaler_d, loss_d)
        self.D.requires_grad_(False)
        with self.autocast():
            d_gen = self.D_run(fake, self.y).adv.float()
        self._update(self.opt_g, self.scaler_g, F.binary_cross_entropy_with_logits(d_gen,
                                                                                 self.ones))
        self.D.requires_grad_(True)


def measure_bare(preset: str, batch: Optional[int], device: str, variant: str, threads: int,
                 proto: speed.Protocol, data_root: Path = speed.SHARED_DATA) -> dict[str, Any]:
    """Images/s and peak memory of :class:`BareLoop` on the preset's nets."""
    import torch

    torch.set_num_threads(threads)
    cfg, _ = variant_config(preset, batch, device, variant, threads, data_root, proto)
    if cfg.loss.name != "bce":
        raise ValueError(f"the bare loop trains BCE GANs; preset {preset} uses {cfg.loss.name}")
    loop = BareLoop(cfg, device)
    timing = measure_steps(loop.step, device, proto)
    ips = [cfg.train.batch_size * timing["steps_per_window"] / s
           for s in timing.pop("window_s")]
    return {"preset": preset, "batch": cfg.train.batch_size, "variant": variant,
            "device": device, "images_per_s": speed.spread(ips), **timing}


MEASURES = {"toolkit": measure_toolkit, "bare": measure_bare}


def worker_main(job: dict[str, Any], out: Path) -> None:
    """Subprocess entry: one measurement, its result as JSON in ``out``."""
    proto = speed.Protocol(**job["protocol"])
    result = MEASURES[job["kind"]](job["preset"], job["batch"], job["device"], job["variant"],
                                   job["threads"], proto, Path(job["data_root"]))
    out.write_text(json.dumps(result))


def run_job(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One job in a fresh interpreter (speed.py's runner); a failure becomes ``{"error": ...}``."""
    result = speed.run_job(job, timeout, script=Path(__file__),
                           identity=("kind", "preset", "variant", "device"))
    result["kind"] = job["kind"]
    return result


# ----------------------------------------------------------------------------- report

def overhead_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Toolkit vs bare loop per variant of the overhead preset, with the ratio and the target."""
    by = {(r["kind"], r["variant"]): r for r in results
          if r["preset"] == OVERHEAD_PRESET and "error" not in r}
    rows = []
    for (kind, variant), bare in by.items():
        tool = by.get(("toolkit", variant))
        if kind != "bare" or tool is None:
            continue
        ratio = tool["images_per_s"]["median"] / bare["images_per_s"]["median"]
        rows.append({"variant": variant, "batch": bare["batch"],
                     "toolkit": tool["images_per_s"]["median"],
                     "bare": bare["images_per_s"]["median"], "ratio": ratio,
                     "pass": ratio >= OVERHEAD_TARGET})
    return rows


def render_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    head = f"# ganforge training throughput on {res['device_name']}"
    out = [head + (" (quick mode: not a real result)" if res["quick"] else ""), "",
           f"Command: `{res['command']}`  ", f"Date (UTC): {res['date_utc']}  ",
           f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores; torch {m['torch']}; "
           f"ganforge commit {m['ganforge_commit'] or 'unknown'}  ",
           f"Protocol: warm-up ≥ {res['protocol']['warmup_s']:g} s, {res['protocol']['windows']} "
           f"windows of ≈ {res['protocol']['window_s']:g} s, median [min–max]; synchronised "
           f"before every clock read. Total {res['wall_s'] / 60:.1f} min.", "",
           "## Presets", "", "| preset | B | variant | images/s | peak memory MiB | data |",
           "|---|---|---|---|---|---|"]
    for r in res["results"]:
        if r["kind"] != "toolkit":
            continue
        if "error" in r:
            out.append(f"| {r['preset']} | | {r['variant']} | ERROR: {r['error']} | | |")
            continue
        out.append(f"| {r['preset']} | {r['batch']} | {r['variant']} | "
                   f"{speed_spread(r['images_per_s'])} | {r['peak_mem_mib']:.0f} "
                   f"({r['peak_mem_kind']}) | {r['data']} |")
    out += ["", f"## Toolkit overhead: {OVERHEAD_PRESET} nets vs a bare synthetic loop", "",
            "Bare loop: the same G and D, one fixed real batch on the device, BCE, fused Adam, "
            "the same autocast/scaler/compile; no data loading, statistics, NaN guard or "
            f"logging. Target: toolkit ≥ {OVERHEAD_TARGET:.0%} of the bare loop.", "",
            "| variant | B | toolkit images/s | bare images/s | toolkit / bare | target |",
            "|---|---|---|---|---|---|"]
    for row in res["overhead"]:
        out.append(f"| {row['variant']} | {row['batch']} | {row['toolkit']:,.1f} | "
                   f"{row['bare']:,.1f} | {row['ratio']:.0%} | "
                   f"{'PASS' if row['pass'] else 'FAIL'} |")
    for r in res["results"]:
        if r["kind"] == "bare" and "error" in r:
            out.append(f"| {r['variant']} | | ERROR: {r['error']} | | | |")
    if res["skipped"]:
        out += ["", "Not run on this device: " + ", ".join(res["skipped"]) + "."]
    return "\n".join(out) + "\n"


def speed_spread(s: dict[str, Any]) -> str:
    fmt = (lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.1f}")
    return f"{fmt(s['median'])} [{fmt(s['min'])}–{fmt(s['max'])}]"


# ----------------------------------------------------------------------------- main

def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--presets", nargs="+", help="presets of the first table (default: all; "
                   f"--quick: {' '.join(QUICK_PRESETS)})")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS),
                   help="precision variants of the first table (default: cuda fp32 bf16 fp16; "
                        "cpu fp32 bf16)")
    p.add_argument("--overhead-variants", nargs="+", choices=sorted(VARIANTS),
                   help="variants of the overhead table (default: cuda all; cpu fp32)")
    p.add_argument("--batch", type=int, help="batch size for every job (default: each "
                   "preset's own; --quick on the CPU: 8)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--quick", action="store_true", help="short windows and few presets")
    p.add_argument("--data-root", type=Path, default=speed.SHARED_DATA)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--timeout", type=float, default=1800, help="seconds per job")
    p.add_argument("--warmup-s", type=float, help="warm-up seconds per job (default 3)")
    p.add_argument("--window-s", type=float, help="seconds per timed window (default 4)")
    p.add_argument("--windows", type=int, help="timed windows per job (default 5)")
    return p.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """The jobs to run and the variants skipped because the device cannot run them."""
    from ganforge.config import list_presets

    cuda = args.device.startswith("cuda")
    proto = speed.with_overrides(QUICK if args.quick else speed.FULL, args)
    presets = args.presets or (list(QUICK_PRESETS) if args.quick else list_presets())
    variants = args.variants or (["fp32", "bf16", "fp16"] if cuda else ["fp32", "bf16"])
    # bf16 convolutions are emulated (slow) on most CPUs: the CPU's overhead check is fp32.
    over = args.overhead_variants or (list(VARIANTS) if cuda else ["fp32"])
    batch = args.batch or (8 if args.quick and not cuda else None)
    skipped = sorted({v for v in variants + over if v in CUDA_ONLY and not cuda})
    common = {"device": args.device, "threads": args.threads, "batch": batch,
              "protocol": asdict(proto), "data_root": str(args.data_root.resolve())}
    jobs = [{"kind": "toolkit", "preset": p, "variant": v, **common}
            for p in presets for v in variants if v not in skipped]
    for v in over:
        if v in skipped:
            continue
        if not any(j["preset"] == OVERHEAD_PRESET and j["variant"] == v for j in jobs):
            jobs.append({"kind": "toolkit", "preset": OVERHEAD_PRESET, "variant": v, **common})
        jobs.append({"kind": "bare", "preset": OVERHEAD_PRESET, "variant": v, **common})
    return jobs, skipped


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("throughput: no CUDA device is visible; run on a GPU machine or pass --device cpu "
              "(with --quick for a pipeline check)", file=sys.stderr)
        return 2
    jobs, skipped = plan(args)
    device_name = (torch.cuda.get_device_name(torch.device(args.device))
                   if args.device.startswith("cuda") else f"CPU ({report.cpu_model()})")
    stem = f"throughput_{'cuda' if args.device.startswith('cuda') else 'cpu'}"
    stem += "_quick" if args.quick else ""
    print(f"ganforge throughput: {len(jobs)} jobs on {device_name} -> "
          f"{args.out_dir / stem}.{{json,md}}", flush=True)
    t0, results = time.perf_counter(), []
    for i, job in enumerate(jobs, 1):
        r = run_job(job, args.timeout)
        results.append(r)
        what = r.get("error") or f"{r['images_per_s']['median']:,.1f} img/s, " \
            f"{r['peak_mem_mib']:.0f} MiB"
        print(f"[{i}/{len(jobs)} {time.perf_counter() - t0:6.0f}s] {job['kind']} "
              f"{job['preset']} {job['variant']}: {what}", flush=True)
    argv_used = sys.argv[1:] if argv is None else argv
    res = {"command": " ".join(["python", "benchmarks/throughput.py",
                                *map(shlex.quote, argv_used)]),
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "device_name": device_name, "machine": report.machine_info(args.threads),
           "quick": args.quick, "protocol": jobs[0]["protocol"] if jobs else {},
           "wall_s": time.perf_counter() - t0, "results": results,
           "overhead": overhead_rows(results), "skipped": skipped}
    from ganforge import fileio

    args.out_dir.mkdir(parents=True, exist_ok=True)
    fileio.write_text(args.out_dir / f"{stem}.json", json.dumps(res, indent=2) + "\n")
    fileio.write_text(args.out_dir / f"{stem}.md", render_markdown(res))
    for row in res["overhead"]:
        print(f"overhead {row['variant']}: toolkit {row['ratio']:.0%} of the bare loop "
              f"({'PASS' if row['pass'] else 'FAIL'} at {OVERHEAD_TARGET:.0%})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(json.loads(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(main())
