"""Exact resume under SIGKILL: ``ganforge train`` killed at random moments and resumed with
``--resume`` ends bit-identical to the same run left alone.

Every tensor of the final checkpoint is compared (G, D, an EMA copy of G when the run keeps
one, both optimizers' state and the RNG states), and so are the JSON side (sampler position,
optimizer hyper-parameters, Python/NumPy RNG, grid steps) and every loss in ``stats.jsonl``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ganforge.cli import main
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt

STEPS = 90
KILLS = 3
# A tiny conditional MLP on generated 8x8 images, with every source of randomness a run has:
# shuffled epochs (96 samples / batch 16 = 6 steps per epoch), dropout, noisy soft labels.
OVERRIDES = [
    "data.name=synthetic", "data.image_size=8", "data.channels=1", "data.limit=96",
    "train.batch_size=16", "train.device=cpu", "train.threads=1", "train.deterministic=true",
    "model.g_hidden=[32]", "model.d_hidden=[32]", "model.d_dropout=0.3",
    "loss.real_label_range=[0.7,1.2]",
    # checkpoint_every is not a multiple of log_every: stats pending at a checkpoint must
    # come back too, or the resumed run's means would differ.
    "log.checkpoint_every=3", "log.log_every=2", "log.sample_every=5", "log.keep_checkpoints=2",
    "log.tensorboard=false", "log.grid_columns=3", "log.grid_samples=9", "eval.final=[]",
]
VOLATILE = ("Speed/", "Time/")  # wall-clock values differ between any two runs


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "ganforge", *args, "--no-progress"]


def _train_cmd(out: Path) -> list[str]:
    cmd = _argv("train", "--preset", "cgan-digits", "--out", str(out), "--steps", str(STEPS))
    for o in OVERRIDES:
        cmd += ["--set", o]
    return cmd


def _spawn(cmd: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)


def _last_step(stats: Path) -> int:
    """Step of the last complete line of stats.jsonl (0 while there is none)."""
    try:
        data = stats.read_bytes()
    except FileNotFoundError:
        return 0
    lines = data.split(b"\n")[:-1]  # the unterminated tail may be torn
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except ValueError:
            continue
    return 0


def _kill_at(proc: subprocess.Popen, stats: Path, target: int, rng: random.Random) -> None:
    """SIGKILL ``proc`` once its stats reach ``target``, after a random sub-step delay."""
    deadline = time.monotonic() + 120
    while _last_step(stats) < target:
        assert proc.poll() is None, f"the run ended (status {proc.returncode}) before the kill"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, 0.015))  # land anywhere: mid-step, mid-save, mid-rotation
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _final(run: Path) -> tuple[dict[str, torch.Tensor], dict]:
    path, tensors, meta = ckpt.latest_checkpoint(run)
    assert meta["step"] == STEPS, path
    return tensors, meta


def test_killed_and_resumed_run_is_bit_identical(tmp_path, capsys):
    rng = random.Random(20240607)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    # The uninterrupted run goes alongside (two cores): same command, never touched.
    reference = _spawn(_train_cmd(straight), tmp_path / "straight.log")

    log = tmp_path / "killed.log"
    proc = _spawn(_train_cmd(killed), log)
    reached = 0
    for kill in range(KILLS):
        # Past the next checkpoint (every 3 steps), but short of the end of the run.
        target = min(reached + rng.randint(5, 24), STEPS - 8)
        if kill == 1:
            # While it trains, a second `ganforge train --resume` on the same folder is refused.
            while _last_step(killed / "stats.jsonl") < reached + 2:
                assert proc.poll() is None
                time.sleep(0.002)
            code = main(["train", "--resume", str(killed)])
            err = capsys.readouterr().err
            assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
            assert f"is in use by another ganforge process (PID {proc.pid})" in err
        _kill_at(proc, killed / "stats.jsonl", target, rng)
        reached = target
        # Whatever the kill interrupted, every checkpoint that has its JSON is complete.
        for json_path in ckpt.list_checkpoints(killed):
            assert ckpt.is_complete(json_path), json_path
        proc = _spawn(_argv("train", "--resume", str(killed)), log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-2000:]
    assert reference.wait(timeout=300) == 0, (tmp_path / "straight.log").read_text()[-2000:]

    resumed_at = [int(line.rsplit(" ", 1)[1]) for line in log.read_text().splitlines()
                  if line.startswith("resumed from ")]
    assert len(resumed_at) == KILLS and all(s % 3 == 0 and s > 0 for s in resumed_at)

    ta, ma = _final(straight)
    tb, mb = _final(killed)
    assert sorted(ta) == sorted(tb)
    assert any(k.startswith("G/") for k in ta) and any(k.startswith("optim/D/") for k in ta)
    for key in ta:  # G, D, G_ema (if kept), optimizer state, RNG states
        assert ta[key].dtype == tb[key].dtype and torch.equal(ta[key], tb[key]), key
    for key in ("sampler", "optimizers", "rng", "grid_steps", "modules"):
        assert ma[key] == mb[key], key

    sa, sb = read_jsonl(straight / "stats.jsonl"), read_jsonl(killed / "stats.jsonl")
    assert [r["step"] for r in sa] == [r["step"] for r in sb] == list(range(2, STEPS + 1, 2))
    for ra, rb in zip(sa, sb):
        for key in ra:
            if not key.startswith(VOLATILE):
                assert ra[key] == rb[key], (ra["step"], key)
    assert not (killed / ".lock").exists()
    leftovers = [p.name for p in (killed / "checkpoints").iterdir()
                 if p.name.endswith(".tmp") or not (p.with_suffix(".json")).exists()]
    assert leftovers == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rng_states_round_trip_per_device():
    torch.cuda.manual_seed_all(3)
    tensors, meta = ckpt.capture_rng()
    assert sum(k.startswith("rng/cuda/") for k in tensors) == torch.cuda.device_count()
    expected = [torch.rand(4, device=f"cuda:{i}").cpu() for i in range(torch.cuda.device_count())]
    ckpt.restore_rng(tensors, meta)
    again = [torch.rand(4, device=f"cuda:{i}").cpu() for i in range(torch.cuda.device_count())]
    assert all(torch.equal(a, b) for a, b in zip(expected, again))
