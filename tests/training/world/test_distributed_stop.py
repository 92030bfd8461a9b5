"""A stop signal under ``torchrun`` (two CPU processes, gloo): every rank stops after the same
step, rank 0 writes that step, and the run resumed with the printed command ends bit-identical
to the same launch left alone.

The signal goes to rank 1 only, the hardest case: rank 0 never hears it and learns it from the
flag the ranks agree on after every step.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from ganforge.run import checkpoint as ckpt
from tests.training.step.test_interrupt import SETS, _same_run
from tests.training.step.test_resume_kill import _last_step

STEPS = 40


def _launcher() -> list[str]:
    torchrun = Path(sys.executable).with_name("torchrun")
    return [str(torchrun)] if torchrun.is_file() else [sys.executable, "-m",
                                                       "torch.distributed.run"]


def _start(out: Path, log: Path) -> subprocess.Popen:
    cmd = _launcher() + ["--standalone", "--nproc_per_node", "2", "-m", "ganforge", "train",
                         "--preset", "cgan-digits", "--out", str(out), "--steps", str(STEPS),
                         "--no-progress"]
    cmd += [a for o in SETS for a in ("--set", o)]
    with open(log, "wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))


def _worker(launcher_pid: int, rank: int) -> int:
    """The PID of the worker process of ``rank`` that torchrun started."""
    children = []
    for task in Path(f"/proc/{launcher_pid}/task").iterdir():
        children += (task / "children").read_text().split()
    for pid in children:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        if f"RANK={rank}".encode() in env:
            return int(pid)
    raise AssertionError(f"no worker of rank {rank} among {children}")


def test_sigterm_to_one_rank_stops_every_rank_at_one_step_and_resumes_exactly(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    reference = _start(straight, tmp_path / "straight.log")
    log = tmp_path / "stopped.log"
    proc = _start(stopped, log)
    deadline = time.monotonic() + 240
    while _last_step(stopped / "stats.jsonl") < 12:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.005)
    os.kill(_worker(proc.pid, 1), 15)  # SIGTERM, as a cluster sends it, to rank 1 alone
    proc.wait(timeout=240)
    out = log.read_text()
    lines = [line for line in out.splitlines() if line.startswith("ganforge: stopped by")]
    assert len(lines) == 1, out[-3000:]  # rank 0 speaks for both
    prefix = "ganforge: stopped by SIGTERM after step "
    step = int(lines[0][len(prefix):].split(":")[0])
    assert 12 <= step < STEPS
    assert lines[0] == (f"{prefix}{step}: saved checkpoints/step_{step:09d}; resume with: "
                        "torchrun --nproc_per_node 2 -m ganforge train --resume "
                        f"{shlex.quote(str(stopped))}")
    # torchrun's failure report: both ranks ended with 128 + SIGTERM, neither was killed.
    assert sorted(line.split("(pid")[0].strip() for line in out.splitlines()
                  if line.strip().startswith("exitcode")) == ["exitcode  : 143"] * 2
    meta = ckpt.latest_checkpoint(stopped)[2]
    assert meta["step"] == step and meta["sampler"]["world_size"] == 2

    resume = shlex.split(lines[0].split("resume with: ")[1])
    assert resume[:3] == ["torchrun", "--nproc_per_node", "2"]
    done = subprocess.run(_launcher() + ["--standalone"] + resume[1:] + ["--no-progress"],
                          capture_output=True, text=True, timeout=240,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert reference.wait(timeout=240) == 0, (tmp_path / "straight.log").read_text()[-2000:]

    _same_run(straight, stopped)  # bit-identical to the run left alone
