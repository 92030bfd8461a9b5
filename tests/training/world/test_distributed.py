"""Data-parallel training with two CPU processes (gloo): what DDP must and must not change.

The processes are started the way torchrun starts them (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT) by :func:`launch`; ``ddp_worker.py`` is the rank's program. One launch
(the ``suite`` fixture) runs several scenarios and the tests below check its results; the
failure test and the torchrun CLI test launch their own processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import torch
from safetensors.torch import load_file

from ganforge import api
from ganforge.config import list_presets, resolve
from ganforge.errors import ConfigError
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt
from ganforge.training.world.ranks import World, launch_env, pick_backend, step_seed
from ganforge.training.step.loop import Trainer
from ganforge.training.watch.monitor import MetricMonitor
from ganforge.training.step.runner import Runner
from ganforge.training.step.setup import build
from tests.conftest import REPO
from tests.training.step.test_loop import preset_on_generated_data
from tests.training.watch.test_monitor import evaluator  # noqa: F401  (a fixture)

WORLD = 2
B = 8  # samples per rank and step


def tiny(steps: int, batch: int = B) -> list[str]:
    """A few-second run on 64 synthetic images with a checkpoint every 2 steps."""
    return [f"train.steps={steps}", "train.epochs=none", "train.minutes=none",
            f"train.batch_size={batch}", "train.device=cpu", "train.threads=1",
            "log.progress=false", "log.log_every=1", "log.sample_every=2",
            "log.checkpoint_every=2", "log.keep_checkpoints=10", "log.report_every_s=none",
            "log.tensorboard=false", "log.grid_columns=3", "log.grid_samples=9",
            "data.name=synthetic", "data.limit=64", "data.image_size=28", "data.channels=1"]


SMALL_CONV = ["model.g_width=8", "model.d_width=8"]
PHASES = {  # loss -> (preset, overrides): plain BCE, a double backward, a two-headed D
    "bce": ("cgan-mnist", tiny(1) + ["model.g_hidden=[32]", "model.d_hidden=[32]",
                                     "model.d_dropout=0"]),
    "wgan-gp": ("wgan-gp-mnist", tiny(1) + SMALL_CONV),
    "acgan": ("acgan-mnist", tiny(1) + SMALL_CONV + ["loss.pretrain_steps=1"]),
}
# No BatchNorm and no dropout: a rank's batch statistics cannot differ from the big batch's.
# No EMA: the comparisons below read the trained G's own weights.
EQUIV = ("cgan-mnist", tiny(4) + ["model.g_hidden=[32,32]", "model.d_hidden=[32]",
                                  "model.g_norm=none", "model.d_dropout=0",
                                  "train.ema_half_life=none", "train.ema_rampup=none",
                                  "log.tensorboard=true", "eval.every=2", "eval.samples=100",
                                  "eval.metrics=fid", "eval.best=fid"])
# Five critic steps per G step: G's DDP forwards without gradients, then one with them.
RESUME = ("wgan-gp-mnist", tiny(4) + SMALL_CONV + ["train.deterministic=true", "loss.n_critic=5"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(scenario: str, spec: dict[str, Any], timeout: float
           ) -> list[tuple[Optional[int], str, float]]:
    """Start ``WORLD`` worker processes as torchrun would; ``(exit code, output, seconds)`` each
    (exit code None: killed at the timeout)."""
    port, start, procs = free_port(), time.monotonic(), []
    for rank in range(WORLD):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.training.world.ddp_worker", scenario, json.dumps(spec)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    results = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=max(1.0, start + timeout - time.monotonic()))
            results.append((proc.returncode, output, time.monotonic() - start))
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            results.append((None, output, time.monotonic() - start))
    return results


class RankNoise:
    """The latents and labels that the ranks of a ``WORLD``-process run draw, concatenated in
    rank order: rank r seeds its stream with ``step_seed(seed, r, step)`` before each step and
    draws its B latents, then its B labels."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.noise = trainer, trainer.s.noise

    def __call__(self, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        parts = []
        for rank in range(WORLD):
            torch.manual_seed(step_seed(self.trainer.cfg.train.seed, rank, self.trainer.step))
            parts.append(self.noise(n // WORLD))
        ys = [y for _, y in parts]
        return (torch.cat([z for z, _ in parts]),
                None if ys[0] is None else torch.cat(ys))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def suite(tmp_path_factory, evaluator):  # noqa: F811
    """One two-process launch of ``ddp_worker.py suite``, plus a single-process run whose
    checkpoint the ranks resume."""
    root = tmp_path_factory.mktemp("ddp")
    runs, out = root / "runs", root / "out"
    out.mkdir()
    runs.mkdir()
    single = runs / "single"
    api.train(RESUME[0], overrides=RESUME[1] + ["train.steps=2"], out=str(single),
              log=lambda m: None)
    equiv = EQUIV[1] + [f'eval.extractor="{evaluator}"']
    spec = {"out": str(out), "runs": str(runs), "single": str(single),
            "phases": PHASES,
            "train": {"preset": EQUIV[0], "overrides": equiv, "out": str(runs / "ddp")},
            "resume": {"preset": RESUME[0], "overrides": RESUME[1],
                       "straight": str(runs / "straight"), "split": str(runs / "split")}}
    results = launch("suite", spec, timeout=300)
    for code, output, _ in results:
        assert code == 0, output[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    return {"root": root, "runs": runs, "out": out, "ranks": ranks, "equiv": equiv}


def weights(out: Path, rank: int, name: str) -> dict[str, torch.Tensor]:
    return load_file(str(out / f"rank{rank}_{name}.safetensors"))


# ------------------------------------------------------------------------------ phases
@pytest.mark.parametrize("loss", sorted(PHASES))
def test_ddp_averages_each_phase_like_the_big_batch(suite, loss):
    """D's objective (with its double backward for WGAN-GP), G's objective through the frozen,
    unwrapped D, and ACGAN's pre-training: DDP's gradients equal the mean over the ranks of
    each rank's own objective — the gradient of the 2B-sample objective, as all of these are
    batch means. float32 sums in another order: 1e-6 of the largest gradient."""
    for result in suite["ranks"]:
        phases = result["phases"][loss]
        assert set(phases) == ({"D", "G", "pretrain"} if loss == "acgan" else {"D", "G"})
        for name, cmp in phases.items():
            assert cmp["max_grad"] > 1e-6, (loss, name)  # a real gradient, not zeros
            assert cmp["max_diff"] <= 1e-6 * cmp["max_grad"] + 1e-9, (loss, name, cmp)


# ------------------------------------------------------------------------------ a full run
def test_ranks_end_with_identical_weights(suite):
    a, b = weights(suite["out"], 0, "train"), weights(suite["out"], 1, "train")
    assert a.keys() == b.keys() and any(k.startswith("D/") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_only_rank_0_writes_the_run_folder(suite):
    run = suite["runs"] / "ddp"
    ranks = suite["ranks"]
    assert ranks[1]["writes"] == []
    # The recorder works: rank 0's writes were seen (stats, TensorBoard, grids, checkpoints).
    seen = " ".join(ranks[0]["writes"])
    for part in ("stats.jsonl", "tb", "samples", "checkpoints", "summary.json"):
        assert part in seen, part
    for name in ("config.json", "stats.jsonl", "summary.json", "samples.gif", "environment.json"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "step_000000000.png", "step_000000002.png", "step_000000004.png"]


def test_two_ranks_of_batch_b_match_one_process_of_batch_2b(suite, tmp_path):
    """The same run in one process with batch 2B: the sampler gives it the union of the ranks'
    shards (rank r takes every 2nd sample of the same permutation) and RankNoise the ranks'
    latents and labels. Means over 2B then equal the mean of the ranks' means, so the runs
    differ only by float32 rounding (sums in another order): 1e-6 in every weight after 4
    Adam steps (measured: ~1e-8; with the ranks' latents swapped the runs differ by ~2e-3).
    The logged statistics are the means over all ranks."""
    cfg = resolve(EQUIV[0], overrides=suite["equiv"] + [f"train.batch_size={2 * B}"])
    trainer = Trainer(cfg, tmp_path / "one", log=lambda m: None)
    trainer.s.noise = RankNoise(trainer)  # type: ignore[assignment]
    trainer.fit()
    ddp = weights(suite["out"], 0, "train")
    for name, module in (("G", trainer.s.generator), ("D", trainer.s.discriminator)):
        for key, value in module.state_dict().items():
            torch.testing.assert_close(ddp[f"{name}/{key}"], value, rtol=0, atol=1e-6)
    one = read_jsonl(tmp_path / "one" / "stats.jsonl")
    two = read_jsonl(suite["runs"] / "ddp" / "stats.jsonl")
    assert [r["step"] for r in two] == [1, 2, 3, 4]
    for r1, r2 in zip(one, two):
        for key in ("Loss/D", "Loss/G", "Prob/D(x)", "Prob/D(G(z))"):
            assert r2[key] == pytest.approx(r1[key], rel=1e-4, abs=1e-6), (r1["step"], key)
    # images/s counts the images of both ranks (2B per step), so it is positive and global
    assert all(r["Speed/images_per_s"] > 0 for r in two)


def test_metrics_under_ddp_equal_single_process_metrics(suite):
    """Rank 0 computes the in-loop metrics; a single process evaluating the same checkpoint's
    G gets the same numbers (same fixed latents, same evaluator)."""
    run = suite["runs"] / "ddp"
    logged = {r["step"]: r["Metrics/fid"] for r in read_jsonl(run / "stats.jsonl")
              if "Metrics/fid" in r}
    assert sorted(logged) == [2, 4]
    cfg = resolve(EQUIV[0], overrides=suite["equiv"])
    setup = build(cfg)
    for step, value in logged.items():
        tensors, _ = ckpt.load_checkpoint(ckpt.checkpoint_paths(run, step)[1])
        setup.generator.load_state_dict(ckpt.module_state(tensors, "G"))
        monitor = MetricMonitor(setup, log=lambda m: None)
        assert monitor.evaluate(step)["Metrics/fid"] == pytest.approx(value, rel=1e-9)
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["step"] == min(logged, key=lambda s: (logged[s], s))


def test_ddp_checkpoint_loads_in_one_process(suite):
    """No ``module.`` prefixes: the unwrapped modules are saved; ``generate`` needs no DDP."""
    run = suite["runs"] / "ddp"
    tensors, meta = ckpt.load_checkpoint(ckpt.checkpoint_paths(run, 4)[1])
    assert not any("module." in k or "_orig_mod." in k for k in tensors)  # unwrapped modules
    assert meta["sampler"]["world_size"] == WORLD
    loaded = api.load_run(run)
    assert loaded.step == 4
    ddp = weights(suite["out"], 0, "train")
    for key, value in loaded.generator.state_dict().items():
        assert torch.equal(value, ddp[f"G/{key}"]), key
    assert loaded.generate(labels=[1, 2]).shape == (2, 1, 28, 28)


# ------------------------------------------------------------------------------ resume
def test_resume_under_ddp_continues_exactly(suite):
    """4 steps straight vs 2 steps + ``--resume`` to 4, both with two ranks: bit-identical
    weights (deterministic CPU kernels; each rank's data order and random stream come back)."""
    out = suite["out"]
    for rank in range(WORLD):
        a, b = weights(out, rank, "straight"), weights(out, rank, "split")
        for key in a:
            assert torch.equal(a[key], b[key]), (rank, key)
    straight = read_jsonl(suite["runs"] / "straight" / "stats.jsonl")
    split = read_jsonl(suite["runs"] / "split" / "stats.jsonl")
    assert [r["step"] for r in split] == [1, 2, 3, 4]
    for ra, rb in zip(straight, split):
        assert ra["Loss/D"] == rb["Loss/D"] and ra["Loss/G"] == rb["Loss/G"], ra["step"]


def test_resume_across_world_sizes(suite, tmp_path):
    """A single-process checkpoint continues under two ranks, and a two-rank one in a single
    process, at the same point of the epoch. 64 samples, B=8, 5 critic batches per step: one
    process did 10 batches (8 per epoch), i.e. 16 samples into epoch 1; two ranks continue at
    position 1 of epoch 1 (16 samples) and after 10 batches (4 per epoch) are at epoch 3,
    position 3."""
    single = suite["runs"] / "single"
    assert [r["step"] for r in read_jsonl(single / "stats.jsonl")] == [1, 2, 3, 4]
    for rank in range(WORLD):
        assert suite["ranks"][rank]["single_resumed_step"] == [3, 3]
    split = suite["runs"] / "split"
    run = api.train(overrides=["train.steps=6"], resume=str(split), log=lambda m: None)
    assert run.step == 6
    assert [r["step"] for r in read_jsonl(split / "stats.jsonl")][-2:] == [5, 6]


# ------------------------------------------------------------------------------ failures
def test_a_failing_rank_stops_the_others(tmp_path):
    """Rank 1 raises in its third step; rank 0 must exit with an error of its own, not wait
    (the launcher kills what is left after 120 s, which reads as exit code None)."""
    argv = ["train", "--preset", RESUME[0], "--out", str(tmp_path / "run"), "--set",
            "train.dist_timeout_s=30"] + [a for o in tiny(20) + SMALL_CONV for a in ("--set", o)]
    spec = {"out": str(tmp_path), "argv": argv}
    (code0, out0, _), (code1, out1, _) = launch("fail", spec, timeout=120)
    assert code1 not in (0, None) and "injected failure on rank 1" in out1
    assert code0 == 2, out0[-2000:]  # the CLI's one-line GanforgeError, not a hang
    assert "rank 0: lost contact with the other processes" in out0


def test_torchrun_cli_trains_with_two_processes(tmp_path):
    """``torchrun --nproc_per_node 2 -m ganforge train ...`` (CPU, gloo) as a user runs it:
    ACGAN with BatchNorm in D and two pre-training steps (a second DDP wrapper of D)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.is_file() else [sys.executable, "-m",
                                                           "torch.distributed.run"]
    run = tmp_path / "run"
    sets = tiny(3) + SMALL_CONV + ["loss.pretrain_steps=2"]
    cmd = launcher + ["--standalone", "--nproc_per_node", "2", "-m", "ganforge", "train",
                      "--preset", "acgan-mnist", "--out", str(run)]
    cmd += [a for o in sets for a in ("--set", o)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("run folder:") == 1  # rank 0 only
    assert proc.stdout.count("pre-trained D for 2 steps") == 1
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["processes"] == 2
    meta = json.loads(ckpt.checkpoint_paths(run, 3)[1].read_text())
    assert meta["sampler"]["world_size"] == 2
    steps = [r["step"] for r in read_jsonl(run / "stats.jsonl")]
    assert steps == [0, 1, 2, 3]  # the pre-training line, then every step once


# ------------------------------------------------------------------------------ no processes
@pytest.mark.parametrize("preset", list_presets())
def test_every_parameter_gets_a_gradient_in_each_phase(preset):
    """DDP wraps D's objective and G without ``find_unused_parameters``: a parameter left
    without a gradient would stop a torchrun run at its second step. Every preset's D step
    reaches all of D, its G step all of G."""
    cfg = resolve(preset, overrides=preset_on_generated_data(preset, steps=1))
    s = build(cfg)
    run = Runner(s, World(), log=lambda m: None)
    real, y_real = s.sampler.next()
    z, y_fake = s.noise(cfg.train.batch_size)
    fake = run.generate(z, y_fake)
    s.discriminator.requires_grad_(True)
    run.discriminator_loss(real, y_real, fake.detach(), y_fake).loss.backward()
    assert [n for n, p in s.discriminator.named_parameters() if p.grad is None] == []
    s.discriminator.requires_grad_(False)
    run.generator_loss(fake, y_fake).loss.backward()
    assert [n for n, p in s.generator.named_parameters() if p.grad is None] == []


def test_launch_env(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert launch_env() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert launch_env() is None  # torchrun --nproc_per_node 1: an ordinary single process
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(ConfigError, match="MASTER_ADDR and MASTER_PORT not set"):
        launch_env()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert launch_env() == World(rank=1, local_rank=1, world_size=2)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2 with WORLD_SIZE=2"):
        launch_env()


def test_backend_choice():
    assert pick_backend("auto", torch.device("cpu")) == "gloo"
    assert pick_backend("auto", torch.device("cuda", 0)) == "nccl"
    assert pick_backend("gloo", torch.device("cuda", 0)) == "gloo"
    with pytest.raises(ConfigError, match="dist_backend=nccl needs CUDA"):
        pick_backend("nccl", torch.device("cpu"))


def test_rank_streams_differ_and_repeat():
    seeds = {step_seed(0, r, s) for r in range(4) for s in range(50)}
    assert len(seeds) == 200 and step_seed(3, 1, 7) == step_seed(3, 1, 7)


def test_sync_batchnorm_needs_cuda_and_several_processes():
    cfg = resolve("dcgan-mnist", overrides=tiny(1) + SMALL_CONV + ["train.sync_batchnorm=true"])
    messages: list[str] = []
    Runner(build(cfg), World(), log=messages.append)  # one process: nothing to synchronise
    assert messages == ["train.sync_batchnorm ignored: it only matters with several processes "
                        "(torchrun)"]
    with pytest.raises(ConfigError, match="sync_batchnorm=true needs CUDA"):
        Runner(build(cfg), World(rank=0, world_size=2), log=messages.append)


@pytest.mark.parametrize("key,value", [("train.dist_backend", "mpi"),
                                       ("train.dist_timeout_s", "0")])
def test_distributed_settings_are_validated(key, value):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve("gan-toy2d", overrides=[f"{key}={value}"])
