"""The non-finite guard: NaN/Inf in a loss or in the weights is caught the step it appears;
"stop" leaves a diagnostic snapshot and names the step and loss, "rollback" goes back to the
last good checkpoint with lower learning rates, a bounded number of times."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ganforge.config import resolve
from ganforge.errors import NonFiniteError
from ganforge.reporting import read_jsonl
from ganforge.run import checkpoint as ckpt
from ganforge.training.step.guard import NonFiniteGuard
from ganforge.training.step.loop import Trainer
from tests.training.step.test_loop import preset_on_generated_data

LR = resolve("gan-mnist").optim.lr_g  # the rates the trainer starts from


def _trainer(tmp_path, *overrides, steps=10, resume=False, logs=None):
    cfg = resolve("gan-mnist", overrides=preset_on_generated_data("gan-mnist", steps) + [
        "log.tensorboard=false", "log.checkpoint_every=2", *overrides])
    return Trainer(cfg, tmp_path / "run", resume=resume,
                   log=(logs.append if logs is not None else lambda m: None))


def _poison_d_loss(trainer, bad_step):
    """D's loss becomes NaN during the steps ``bad_step(step)`` accepts (1-based, as in stats)."""
    original = trainer.s.loss.discriminator_loss

    def discriminator_loss(*args, **kwargs):
        out = original(*args, **kwargs)
        if bad_step(trainer.step + 1):
            out.loss = out.loss * float("nan")
        return out

    trainer.s.loss.discriminator_loss = discriminator_loss


def test_nan_loss_stops_with_a_snapshot(tmp_path):
    trainer = _trainer(tmp_path)
    _poison_d_loss(trainer, lambda step: step == 5)
    with pytest.raises(NonFiniteError) as info:
        trainer.fit()
    run = tmp_path / "run"
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("non-finite Loss/D (nan)") and " at step 5;" in message
    assert f"diagnostic snapshot in '{run / 'nonfinite.json'}'" in message
    assert message.endswith("lower optim.lr_g/optim.lr_d or set train.on_nonfinite=rollback")

    diag = json.loads((run / "nonfinite.json").read_text())
    assert diag["step"] == 5 and diag["losses"]["Loss/D"] == "nan" and diag["policy"] == "stop"
    assert diag["last_stats_step"] == 4 and math.isfinite(diag["last_stats"]["Loss/D"])
    # D took a step on the NaN loss, so its weights are named too.
    assert diag["nonfinite_tensors"] and all(n.startswith(("D/", "G/"))
                                             for n in diag["nonfinite_tensors"])
    tensors, meta = ckpt.load_checkpoint(run / diag["checkpoint"])
    assert meta["step"] == 5 and not torch.isfinite(tensors[diag["nonfinite_tensors"][0]]).all()
    # The step checkpoints before the problem are untouched and still the resume point.
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step_000000002.json",
                                                            "step_000000004.json"]
    records = read_jsonl(run / "stats.jsonl")
    # The failing step is recorded too (the poisoned D made G's loss NaN: null in the file).
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5] and math.isnan(records[-1]["Loss/G"])


def test_non_finite_weights_are_caught_the_same_step(tmp_path):
    """A finite loss whose update makes a weight infinite: caught by the weight check."""
    trainer = _trainer(tmp_path)
    weight = next(trainer.s.generator.parameters())

    def after_g_step(opt, args, kwargs):
        if trainer.step + 1 == 3:
            with torch.no_grad():
                weight.view(-1)[0] = float("inf")

    trainer.s.optimizers["G"].register_step_post_hook(after_g_step)
    with pytest.raises(NonFiniteError, match=r"^non-finite weights \(G/[\w.]+\) at step 3;"):
        trainer.fit()
    diag = json.loads((tmp_path / "run" / "nonfinite.json").read_text())
    assert all(math.isfinite(v) for v in diag["losses"].values())
    assert len(diag["nonfinite_tensors"]) == 1


def test_rollback_lowers_the_learning_rate_and_continues(tmp_path):
    logs = []
    trainer = _trainer(tmp_path, "train.on_nonfinite=rollback", "train.max_rollbacks=2",
                       "train.rollback_lr_factor=0.25", logs=logs)
    seen = set()

    def once_at_5(step):
        hit = step == 5 and step not in seen
        seen.add(step)
        return hit

    _poison_d_loss(trainer, once_at_5)
    summary = trainer.fit()
    assert summary["steps"] == 10
    line = next(m for m in logs if m.startswith("non-finite"))
    assert line.startswith("non-finite Loss/D (nan)")
    assert line.endswith("at step 5: rolled back to step 4, learning rates x0.25 "
                         "(rollback 1 of 2)")
    for opt in trainer.s.optimizers.values():
        assert all(g["lr"] == pytest.approx(LR * 0.25, rel=1e-12) for g in opt.param_groups)
    run = tmp_path / "run"
    records = read_jsonl(run / "stats.jsonl")
    assert [r["step"] for r in records] == list(range(1, 11))  # step 5 once, redone
    assert all(math.isfinite(r["Loss/D"]) for r in records)
    assert not (run / "nonfinite.json").exists()
    _, meta = ckpt.load_checkpoint(ckpt.list_checkpoints(run)[-1])
    assert meta["guard"] == {"rollbacks": 1, "lr_scale": 0.25}


def test_rollbacks_are_bounded(tmp_path):
    logs = []
    trainer = _trainer(tmp_path, "train.on_nonfinite=rollback", "train.max_rollbacks=2",
                       logs=logs)
    _poison_d_loss(trainer, lambda step: step >= 5)
    with pytest.raises(NonFiniteError) as info:
        trainer.fit()
    assert str(info.value).startswith("non-finite Loss/D (nan)")
    assert " at step 5 after 2 rollbacks (train.max_rollbacks);" in str(info.value)
    assert [m.split(": ", 1)[1] for m in logs if m.startswith("non-finite")] == [
        "rolled back to step 4, learning rates x0.5 (rollback 1 of 2)",
        "rolled back to step 4, learning rates x0.25 (rollback 2 of 2)"]
    diag = json.loads((tmp_path / "run" / "nonfinite.json").read_text())
    assert diag["rollbacks"] == 2 and diag["lr_scale"] == 0.25 and diag["policy"] == "rollback"


def test_rollback_before_the_first_checkpoint_goes_to_step_0(tmp_path):
    logs = []
    trainer = _trainer(tmp_path, "train.on_nonfinite=rollback", "log.checkpoint_every=100",
                       logs=logs, steps=4)
    seen = []
    _poison_d_loss(trainer, lambda step: step == 3 and not seen and not seen.append(step))
    assert trainer.fit()["steps"] == 4
    assert any(m.endswith("rolled back to step 0, learning rates x0.5 (rollback 1 of 3)")
               for m in logs)


def test_rollback_scale_survives_resume_and_reaches_the_schedule(tmp_path):
    decay = ["optim.lr_decay=1.01"]
    trainer = _trainer(tmp_path, "train.on_nonfinite=rollback", *decay, steps=6)
    seen = []
    _poison_d_loss(trainer, lambda step: step == 3 and not seen and not seen.append(step))
    trainer.fit()
    resumed = _trainer(tmp_path, "train.on_nonfinite=rollback", *decay, steps=8, resume=True)
    assert resumed.guard.state_dict() == {"rollbacks": 1, "lr_scale": 0.5}
    assert resumed.s.schedule.lr("G", 6) == pytest.approx(LR * 0.5 / 1.01 ** 6, rel=1e-12)
    resumed.fit()
    g_lr = resumed.s.optimizers["G"].param_groups[0]["lr"]
    assert g_lr == pytest.approx(LR * 0.5 / 1.01 ** 7, rel=1e-12)  # set at the start of step 8


def test_check_is_quiet_for_finite_values_and_names_buffers():
    G = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    D = torch.nn.Linear(4, 1)

    class FakeSetup:
        generator, discriminator = G, D
        schedule = type("S", (), {"base_lrs": {"G": 1.0, "D": 1.0}})()
        optimizers: dict = {}

    cfg = resolve(overrides=[]).train
    guard = NonFiniteGuard(cfg, FakeSetup())
    guard.watch("Loss/D", torch.tensor(0.7))
    guard.watch("Loss/G", torch.tensor(3e38))  # huge but finite
    with torch.no_grad():
        D.weight.fill_(3e38)  # max-abs check: no overflow into a false alarm
    assert guard.check(1) is None
    G[1].running_var[2] = float("nan")
    guard.watch("Loss/D", torch.tensor(0.7))
    problem = guard.check(2)
    assert problem is not None and problem.tensors == ["G/1.running_var"]
    assert problem.what() == "weights (G/1.running_var)"
    assert problem.losses == {"Loss/D": pytest.approx(0.7)}
    assert guard.check(3) is not None  # no losses watched: the weights alone still count


def test_huge_learning_rate_stops_via_the_cli(tmp_path, capsys):
    from ganforge.cli import main

    out = tmp_path / "run"
    argv = ["train", "--preset", "gan-mnist", "--out", str(out)]
    for o in preset_on_generated_data("gan-mnist", 20) + [
            "log.tensorboard=false", "optim.name=sgd", "optim.lr_d=1e30", "optim.lr_g=1e30"]:
        argv += ["--set", o]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ganforge: error: non-finite ") and " at step 1;" in err
    assert (out / "nonfinite.json").is_file() and (out / "checkpoints" / "nonfinite.json").is_file()
    assert not (out / ".lock").exists()
