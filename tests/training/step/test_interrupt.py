"""Stopping on a signal keeps the step it interrupted; a resumed run ends bit-identical.

SIGINT, SIGTERM and SIGUSR1 end training after the current step with a checkpoint of it, the
stats since the last line, a rebuilt report, one line naming the step and the resume command,
and exit status 128 + the signal's number. A second signal aborts at once and names the last
complete checkpoint. ``train.checkpoint_minutes`` checkpoints by wall time.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from ganforge import fileio
from ganforge.config import resolve
from ganforge.errors import Interrupted
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt
from ganforge.training.step import interrupt as interrupt_module
from ganforge.training.step import loop as loop_module
from ganforge.training.step.interrupt import StopSignals
from ganforge.training.step.loop import Trainer
from ganforge.training.watch.hooks import Watchers
from tests.training.step.test_resume_kill import OVERRIDES, VOLATILE, _last_step, _spawn

# The kill test's run (deterministic, every source of randomness), logged every 4 steps and
# checkpointed every 5, so a stop at step 7 leaves stats pending since step 4.
SETS = [o for o in OVERRIDES if not o.startswith(("log.checkpoint_every", "log.log_every"))] + [
    "log.checkpoint_every=5", "log.log_every=4", "log.report_every_s=0",
    "train.checkpoint_minutes=none"]


def _config(steps: int, *extra: str):
    return resolve("cgan-digits", overrides=SETS + [f"train.steps={steps}", "log.progress=false",
                                                    *extra])


class SignalAfter(Watchers):
    """The run's usual watchers, plus a signal to this process during step ``at``'s bookkeeping
    (as if the user pressed Ctrl-C then)."""

    at, sig = 7, signal.SIGUSR1

    def metrics_due(self, step: int) -> bool:
        if step == self.at:
            os.kill(os.getpid(), self.sig)
        return super().metrics_due(step)


def _tensors(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.latest_checkpoint(run)[1]


def _same_run(a: Path, b: Path) -> None:
    ta, tb = _tensors(a), _tensors(b)
    assert sorted(ta) == sorted(tb) and any(k.startswith("optim/D/") for k in ta)
    for key in ta:  # G, D, optimizers, RNG states
        assert torch.equal(ta[key], tb[key]), key
    sa, sb = read_jsonl(a / "stats.jsonl"), read_jsonl(b / "stats.jsonl")
    assert [r["step"] for r in sa] == [r["step"] for r in sb]
    for ra, rb in zip(sa, sb):
        assert {k: v for k, v in ra.items() if not k.startswith(VOLATILE)} == \
            {k: v for k, v in rb.items() if not k.startswith(VOLATILE)}, ra["step"]


def test_stop_signal_keeps_the_step_and_the_resumed_run_is_bit_identical(tmp_path):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    Trainer(_config(12), straight, log=lambda m: None, hooks=Watchers).fit()

    trainer = Trainer(_config(12), stopped, log=lambda m: None, hooks=SignalAfter)
    with pytest.raises(Interrupted) as info:
        trainer.fit()
    assert info.value.exit_code == 128 + signal.SIGUSR1
    assert str(info.value) == ("stopped by SIGUSR1 after step 7: saved checkpoints/"
                               f"step_000000007; resume with: ganforge train --resume {stopped}")
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handlers are given back
    meta = ckpt.latest_checkpoint(stopped)[2]
    assert meta["step"] == 7 and meta["stopped_by"] == "SIGUSR1"
    # The steps since the line at 4 are reported at once (the report shows them too) ...
    assert [r["step"] for r in read_jsonl(stopped / "stats.jsonl")] == [4, 7]
    assert (stopped / "report.html").is_file() and not (stopped / "summary.json").exists()
    assert not (stopped / ".lock").exists()

    # ... and written again, whole, by the resumed run: line 8 averages steps 5 to 8.
    Trainer(_config(12), stopped, resume=True, log=lambda m: None, hooks=Watchers).fit()
    _same_run(straight, stopped)
    assert [r["step"] for r in read_jsonl(stopped / "stats.jsonl")] == [4, 8, 12]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_a_random_step_through_the_command_line(tmp_path, sig):
    """``ganforge train`` as a user runs it, signalled at a random moment: exit 130/143, the
    step it was in is saved, and the printed resume command ends where a run left alone does."""
    rng = random.Random(int(sig) * 7919)
    steps = 60
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"

    def cmd(out: Path) -> list[str]:
        sets = [a for o in SETS for a in ("--set", o)]
        return [sys.executable, "-m", "ganforge", "train", "--preset", "cgan-digits", "--out",
                str(out), "--steps", str(steps), "--no-progress", *sets]

    reference = _spawn(cmd(straight), tmp_path / "straight.log")
    err_log = tmp_path / "stopped.err"
    with open(err_log, "wb") as err:
        proc = subprocess.Popen(cmd(stopped), stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(os.environ, OMP_NUM_THREADS="1"))
    target = rng.randint(10, 40)
    deadline = time.monotonic() + 120
    while _last_step(stopped / "stats.jsonl") < target:
        assert proc.poll() is None and time.monotonic() < deadline, err_log.read_text()
        time.sleep(0.002)
    time.sleep(rng.uniform(0.0, 0.01))
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 128 + sig
    lines = err_log.read_text().splitlines()
    assert lines[0].startswith(f"ganforge: {sig.name} received: finishing this step")
    last = lines[-1]
    prefix = f"ganforge: stopped by {sig.name} after step "
    assert last.startswith(prefix), lines
    step = int(last[len(prefix):].split(":")[0])
    assert target <= step < steps
    assert last == (f"{prefix}{step}: saved checkpoints/step_{step:09d}; resume with: "
                    f"ganforge train --resume {shlex.quote(str(stopped))}")
    assert ckpt.latest_checkpoint(stopped)[2]["step"] == step

    resume = shlex.split(last.split("resume with: ")[1])
    assert resume[0] == "ganforge"
    done = subprocess.run([sys.executable, "-m", "ganforge", *resume[1:]], capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"resumed from step_{step:09d}.json at step {step}" in done.stdout
    assert reference.wait(timeout=180) == 0
    _same_run(straight, stopped)


def test_a_second_signal_aborts_mid_save_and_names_the_last_complete_checkpoint(
        tmp_path, monkeypatch):
    """The user insists while step 7's checkpoint is being written: no file of it is left,
    and the line names step 5's checkpoint, the last complete one."""
    monkeypatch.setattr(StopSignals, "echo_window_s", 0.0)
    real_write = fileio.write_bytes

    def slow_disk(path, data):
        if Path(path).name == "step_000000007.safetensors":
            with fileio.atomic_path(path) as tmp:
                tmp.write_bytes(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGINT)  # lands here, half-way through the write
                time.sleep(5)
        real_write(path, data)

    monkeypatch.setattr(fileio, "write_bytes", slow_disk)
    monkeypatch.setattr(SignalAfter, "sig", signal.SIGINT)
    run = tmp_path / "run"
    with pytest.raises(Interrupted) as info:
        Trainer(_config(12), run, log=lambda m: None, hooks=SignalAfter).fit()
    assert info.value.exit_code == 130
    assert str(info.value) == (
        "aborted by a second SIGINT at step 7; the last complete checkpoint is checkpoints/"
        f"step_000000005 (step 5); resume with: ganforge train --resume {run}")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "step_000000005.json", "step_000000005.safetensors"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_stop_signals_take_the_first_ignore_its_echo_and_abort_on_the_second():
    notes: list[str] = []
    with StopSignals(notes.append) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # torchrun passing on what the process heard
        assert signals.requested == signal.SIGTERM and signals.exit_code == 143
        assert notes == ["ganforge: SIGTERM received: finishing this step and saving it (send "
                         "it again to abort without saving)"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # another signal: the user insists
            time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_stop_signals_leave_other_threads_alone():
    """Python installs handlers from the main thread only: a run in a worker thread keeps the
    process's handlers (and cannot be stopped by a signal), rather than failing."""
    seen = []

    def body():
        with StopSignals(seen.append) as signals:
            seen.append(signals.requested)

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    assert seen == [None] and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_checkpoint_minutes_saves_by_wall_time(tmp_path, monkeypatch):
    """A step that takes 25 s of wall time: with train.checkpoint_minutes=1 a checkpoint comes
    every third step, whatever log.checkpoint_every says."""
    holder: dict[str, Trainer] = {}

    class Clock:
        perf_counter = staticmethod(time.perf_counter)

        @staticmethod
        def monotonic() -> float:
            return 25.0 * holder["trainer"].step if "trainer" in holder else 0.0

    monkeypatch.setattr(loop_module, "time", Clock)
    cfg = _config(10, "train.checkpoint_minutes=1", "log.checkpoint_every=1000",
                  "log.keep_checkpoints=50")
    trainer = Trainer(cfg, tmp_path / "run", log=lambda m: None)
    holder["trainer"] = trainer
    trainer.fit()
    assert [int(p.stem[5:]) for p in ckpt.list_checkpoints(tmp_path / "run")] == [3, 6, 9, 10]


def test_resume_commands_name_the_launch(tmp_path, monkeypatch):
    from ganforge.training.world.ranks import World

    run = tmp_path / "my runs" / "a"
    assert interrupt_module.resume_command(run, World()) == \
        f"ganforge train --resume '{run}'"
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert interrupt_module.resume_command(run, World(0, 0, 2)) == \
        f"torchrun --nproc_per_node 2 -m ganforge train --resume '{run}'"
    assert interrupt_module.resume_command(run, World(0, 0, 4)) == \
        f"the same torchrun launch with -m ganforge train --resume '{run}'"
    assert interrupt_module.aborted_line(run, World(), "aborted") == (
        "aborted, before any checkpoint was complete; nothing to resume, train again")
    assert interrupt_module.aborted_line(run, World(1, 1, 2), "aborted") == ""
