"""What only a CUDA device can check: fp16/bf16 autocast, the gradient penalty under fp16,
``torch.compile``, channels_last, data-parallel runs on the GPU, and GPU checkpoints loading on
the CPU.

Every test here is skipped without CUDA (CI has no GPU). On a GPU machine run
``python -m pytest tests/gpu`` (about two minutes, most of it compiling).

Tolerances: cuDNN convolutions run in TF32 by default on Ampere and newer (10 mantissa bits), so
two equivalent programs (eager vs compiled, NCHW vs NHWC) agree to ~1e-3 relative, not bit for
bit. The comparisons are made on the first step's D loss, which is computed before any update,
so Adam's sign-like steps cannot amplify rounding differences.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge import api
from ganforge.config import resolve
from ganforge.losses import LOSSES
from ganforge.losses.penalties import gradient_penalty
from ganforge.models import MODELS, build_models
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt
from ganforge.training.step.loop import Trainer
from ganforge.training.step.runner import LossView
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

SMALL_CONV = ["model.g_width=16", "model.d_width=16"]


def on_gpu(steps: int, batch: int = 32) -> list[str]:
    """A seconds-long CUDA run on 256 synthetic 28x28 images, a checkpoint every 5 steps."""
    return [f"train.steps={steps}", "train.epochs=none", "train.minutes=none",
            f"train.batch_size={batch}", "train.device=cuda", "log.progress=false",
            "log.log_every=1", "log.sample_every=5", "log.checkpoint_every=5",
            "log.report_every_s=none", "log.tensorboard=false", "log.grid_columns=4",
            "log.grid_samples=16", "data.name=synthetic", "data.limit=256",
            "data.image_size=28", "data.channels=1"]


def all_finite(run: Path) -> list[dict[str, Any]]:
    records = read_jsonl(run / "stats.jsonl")
    assert records, "no statistics were written"
    bad = [(r["step"], k) for r in records for k, v in r.items()
           if isinstance(v, float) and not math.isfinite(v)]
    assert bad == []
    return records


def first_d_loss(preset: str, overrides: list[str], out: Path) -> tuple[float, Trainer]:
    trainer = Trainer(resolve(preset, overrides=overrides), out, log=lambda m: None)
    trainer.fit()
    return read_jsonl(out / "stats.jsonl")[0]["Loss/D"], trainer


# ----------------------------------------------------------------------------- precision
@pytest.mark.parametrize("amp,dtype", [("none", torch.float32), ("bf16", torch.bfloat16),
                                       ("fp16", torch.float16)])
def test_precision_modes_train_and_the_checkpoint_loads_on_the_cpu(tmp_path, amp, dtype):
    run = tmp_path / "run"
    trainer = Trainer(resolve("dcgan-mnist", overrides=on_gpu(10) + SMALL_CONV
                              + [f"train.amp={amp}"]), run, log=lambda m: None)
    z, y = trainer.s.noise(4)
    assert trainer.runner.generate(z, y).dtype == dtype  # G runs under the chosen autocast
    trainer.fit()
    all_finite(run)
    meta = json.loads(ckpt.checkpoint_paths(run, 10)[1].read_text())
    assert meta["precision"]["mode"] == amp
    assert set(meta["precision"]["scalers"]) == ({"G", "D"} if amp == "fp16" else set())
    loaded = api.load_run(run, device="cpu")  # written on the GPU, read without one
    images = loaded.generate(n=8)
    assert images.device.type == "cpu" and images.shape == (8, 1, 28, 28)
    assert torch.isfinite(images).all() and images.abs().max() <= 1.0


def test_wgan_gp_trains_under_fp16_without_nans(tmp_path):
    """The failure users of other toolkits report: WGAN-GP going NaN under fp16. 30 G steps
    (150 critic steps) with the loss scalers active stay finite, and no rollback happened."""
    run = tmp_path / "run"
    Trainer(resolve("wgan-gp-mnist", overrides=on_gpu(30) + SMALL_CONV
                    + ["train.amp=fp16", "loss.n_critic=5"]),
            run, log=lambda m: None).fit()
    records = all_finite(run)
    assert records[-1]["step"] == 30
    assert not (run / "nonfinite.json").exists()
    meta = json.loads(ckpt.checkpoint_paths(run, 30)[1].read_text())
    assert 0 < meta["precision"]["scalers"]["D"]["scale"] <= 65536.0


def test_gradient_penalty_under_fp16_autocast_equals_fp32():
    cfg = resolve("wgan-gp-mnist", overrides=on_gpu(1) + SMALL_CONV)
    args = MODELS.get("dcgan").kwargs(cfg.model, (1, 28, 28), 0)
    D = build_models("dcgan", args)[1].cuda()
    x = torch.randn(16, 1, 28, 28, device="cuda")
    benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False
    try:  # the same cuDNN algorithm for both calls
        torch.manual_seed(0)
        want, _ = gradient_penalty(LossView(D), x, None)
        torch.manual_seed(0)
        with torch.autocast("cuda", dtype=torch.float16):
            got, _ = gradient_penalty(LossView(D), x, None)
    finally:
        torch.backends.cudnn.benchmark = benchmark
    assert got.dtype == torch.float32 and torch.isfinite(got)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert LOSSES.get("wgan-gp")(cfg.loss).n_critic == 1  # the CPU-tuned preset's (paper: 5)


# ----------------------------------------------------------------------------- compile, layout
def test_compiled_nets_match_eager(tmp_path):
    base = on_gpu(3) + SMALL_CONV + ["train.seed=7"]
    eager, _ = first_d_loss("dcgan-mnist", base, tmp_path / "eager")
    compiled, trainer = first_d_loss("dcgan-mnist", base + ["train.compile=true"],
                                     tmp_path / "compiled")
    assert trainer.runner.generator is not trainer.s.generator  # really compiled
    assert compiled == pytest.approx(eager, rel=2e-3)
    all_finite(tmp_path / "compiled")


def test_wgan_gp_with_compiled_critic_trains(tmp_path):
    """The compiled critic has no double backward: the penalty runs the eager D."""
    run = tmp_path / "run"
    Trainer(resolve("wgan-gp-mnist", overrides=on_gpu(3) + SMALL_CONV
                    + ["train.compile=true", "train.amp=bf16"]), run, log=lambda m: None).fit()
    assert all_finite(run)[-1]["step"] == 3


def test_channels_last_matches_contiguous(tmp_path):
    base = on_gpu(3) + SMALL_CONV + ["train.seed=3"]
    plain, _ = first_d_loss("dcgan-mnist", base, tmp_path / "nchw")
    nhwc, trainer = first_d_loss("dcgan-mnist", base + ["train.channels_last=true"],
                                 tmp_path / "nhwc")
    convs = [m.weight for m in trainer.s.discriminator.modules()
             if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert nhwc == pytest.approx(plain, rel=2e-3)


# ----------------------------------------------------------------------------- several processes
def launch_on_gpus(run: Path, sets: list[str], procs: int, backend: str, local_ranks: list[int],
                   extra: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """``ganforge train`` in ``procs`` processes started as torchrun starts them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "ganforge", "train", "--out", str(run), *extra]
    cmd += [a for o in sets + [f"train.dist_backend={backend}"] for a in ("--set", o)]
    running = []
    for rank in range(procs):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(local_ranks[rank]),
                   WORLD_SIZE=str(procs), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        running.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    start, results = time.monotonic(), []
    for proc in running:
        try:
            out, _ = proc.communicate(timeout=max(1.0, 240 - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results.append((proc.returncode, out))
    return results


def check_ddp_run(tmp_path: Path, backend: str, local_ranks: list[int]) -> None:
    run = tmp_path / "run"
    sets = on_gpu(4, batch=16) + SMALL_CONV + ["log.checkpoint_every=2"]
    results = launch_on_gpus(run, sets, len(local_ranks), backend, local_ranks,
                             ("--preset", "dcgan-mnist"))
    for code, out in results:
        assert code == 0, out[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["processes"] == len(local_ranks)
    all_finite(run)
    # --resume under the same launch continues the run ...
    results = launch_on_gpus(run, ["train.steps=6"], len(local_ranks), backend, local_ranks,
                             ("--resume", str(run)))
    for code, out in results:
        assert code == 0, out[-3000:]
    assert [r["step"] for r in read_jsonl(run / "stats.jsonl")] == list(range(1, 7))
    # ... and a single CPU process reads what the GPU ranks wrote.
    images = api.load_run(run, device="cpu").generate(n=4)
    assert images.shape == (4, 1, 28, 28) and torch.isfinite(images).all()


def test_two_processes_share_one_gpu_over_gloo(tmp_path):
    """DDP on CUDA tensors with one GPU: both ranks on cuda:0, gloo moving the gradients
    (NCCL refuses two ranks on one device)."""
    check_ddp_run(tmp_path, "gloo", [0, 0])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs one GPU per process")
def test_nccl_across_two_gpus(tmp_path):
    check_ddp_run(tmp_path, "nccl", [0, 1])


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="SyncBatchNorm over NCCL needs 2 GPUs")
def test_sync_batchnorm_across_two_gpus(tmp_path):
    run = tmp_path / "run"
    sets = on_gpu(3, batch=16) + SMALL_CONV + ["train.sync_batchnorm=true"]
    results = launch_on_gpus(run, sets, 2, "nccl", [0, 1], ("--preset", "dcgan-mnist"))
    for code, out in results:
        assert code == 0, out[-3000:]
    assert "SyncBatchNorm" not in json.dumps(ckpt.load_checkpoint(
        ckpt.checkpoint_paths(run, 3)[1])[1]["model"])  # saved as plain BatchNorm args
    all_finite(run)
