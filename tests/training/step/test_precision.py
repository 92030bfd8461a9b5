"""Mixed precision, channels_last and compile: what runs on the CPU, what is refused, and the
fp16 loss-scaling path (exercised on the CPU, where torch's autocast also supports fp16)."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge import api
from ganforge.config import resolve
from ganforge.errors import ConfigError
from ganforge.losses import LOSSES
from ganforge.losses.penalties import gradient_penalty
from ganforge.models import MODELS, build_models
from ganforge.run import checkpoint as ckpt
from ganforge.training.step import runner as runner_module
from ganforge.training.world.ranks import World
from ganforge.training.step.loop import Trainer
from ganforge.training.step.precision import Precision
from ganforge.training.step.runner import LossView, Runner
from ganforge.training.step.setup import build
from tests.training.world.test_distributed import SMALL_CONV, tiny

WGAN_GP = ("wgan-gp-mnist", tiny(2) + SMALL_CONV)


def critic() -> tuple[torch.nn.Module, object]:
    """A tiny WGAN-GP critic (LayerNorm, 28x28) and its loss object."""
    cfg = resolve(WGAN_GP[0], overrides=WGAN_GP[1])
    args = MODELS.get("dcgan").kwargs(cfg.model, (1, 28, 28), 0)
    _, D = build_models("dcgan", args)
    return D, LOSSES.get("wgan-gp")(cfg.loss)


@pytest.mark.parametrize("key,value,message", [
    ("train.amp", "fp16", "train.amp=fp16 needs CUDA"),
    ("train.compile", "true", "train.compile=true needs CUDA"),
])
def test_cuda_only_options_are_refused_on_the_cpu(tmp_path, key, value, message):
    with pytest.raises(ConfigError, match=message):
        api.train(WGAN_GP[0], overrides=WGAN_GP[1] + [f"{key}={value}"],
                  out=str(tmp_path / "r"), log=lambda m: None)
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_amp_choice_is_validated():
    with pytest.raises(ConfigError, match="train.amp"):
        resolve("gan-toy2d", overrides=["train.amp=fp8"])


def test_bf16_autocasts_the_nets_and_keeps_losses_in_fp32(tmp_path):
    cfg = resolve(WGAN_GP[0], overrides=WGAN_GP[1] + ["train.amp=bf16"])
    setup = build(cfg)
    run = Runner(setup, World(), log=lambda m: None)
    z, _ = setup.noise(4)
    fake = run.generate(z, None)
    assert fake.dtype == torch.bfloat16  # G ran under autocast
    real, _ = setup.sampler.next()
    out = run.discriminator_loss(real[:4], None, fake.detach(), None)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    with run.precision.autocast():
        assert run.view(real[:4]).adv.dtype == torch.float32  # D's outputs reach the loss in fp32
    # ... and a whole run trains, with finite statistics
    trainer = Trainer(cfg, tmp_path / "r", log=lambda m: None)
    trainer.fit()
    last = json.loads((tmp_path / "r" / "stats.jsonl").read_text().splitlines()[-1])
    assert all(v == v and abs(v) != float("inf") for v in last.values())


def test_gradient_penalty_runs_in_fp32_under_autocast():
    """The penalty turns autocast off: under bf16 it equals the fp32 penalty exactly."""
    D, _ = critic()
    x = torch.randn(6, 1, 28, 28)
    want, _ = gradient_penalty(LossView(D), x, None)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = gradient_penalty(LossView(D), x, None)
    assert got.dtype == torch.float32 and torch.equal(got, want)


def test_penalty_runs_the_eager_d_when_d_is_compiled():
    """A compiled graph has no double backward; the penalty takes LossView.eager instead."""
    D, loss = critic()
    compiled = torch.compile(D, backend="aot_eager")
    x, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    torch.manual_seed(0)
    eager = loss.discriminator_loss(LossView(D), x, None, fake, None).loss
    torch.manual_seed(0)
    view = LossView(D, compiled)
    assert view.eager is not view and view.eager.discriminator is D
    through_compiled = loss.discriminator_loss(view, x, None, fake, None).loss
    through_compiled.backward()  # the double backward goes through the eager D
    assert torch.allclose(through_compiled, eager, rtol=1e-5, atol=1e-6)
    # torch words the refusal by which graph it compiled first: since real and fake share one
    # forward (no BatchNorm), the batch-4 graph is traced here, with donated buffers.
    with pytest.raises(RuntimeError, match="double backward|donated buffers"):
        gradient_penalty(compiled, x, None)[0].backward()


def test_fp16_loss_scaling_unscales_and_skips_overflowing_steps():
    """D's WGAN-GP loss with an fp16 GradScaler (CPU autocast). At the initial scale 2^16 the
    critic's gradients (~10) overflow fp16: the step is skipped and the scale halved. At a
    scale that fits, the optimizer sees the gradients of the unscaled fp16 loss (loss scaling
    only moves fp16 rounding: 2e-3 here, against fp16's own ~3% from fp32)."""
    D16, loss = critic()
    D_ref, _ = critic()
    D_ref.load_state_dict(D16.state_dict())
    x, fake = torch.randn(8, 1, 28, 28), torch.randn(8, 1, 28, 28)

    def d_loss(D):
        torch.manual_seed(0)  # the same penalty points
        with torch.autocast("cpu", dtype=torch.float16):
            return loss.discriminator_loss(LossView(D), x, None, fake, None).loss

    fp16 = Precision("fp16", torch.device("cpu"))
    opt16 = torch.optim.SGD(D16.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in D16.parameters()]
    fp16.update("D", opt16, d_loss(D16))
    assert all(torch.equal(a, b) for a, b in zip(before, D16.parameters()))  # skipped
    assert fp16.scale("D") == 32768.0
    fp16.scalers["D"].update(new_scale=256.0)
    fp16.update("D", opt16, d_loss(D16))
    assert fp16.scale("D") == 256.0  # no overflow this time: the step was taken
    opt_ref = torch.optim.SGD(D_ref.parameters(), lr=1e-3)
    d_loss(D_ref).backward()  # the same fp16 forward, unscaled
    opt_ref.step()
    for p16, p_ref in zip(D16.parameters(), D_ref.parameters()):
        torch.testing.assert_close(p16.grad, p_ref.grad, rtol=1e-2, atol=2e-3)
        torch.testing.assert_close(p16, p_ref, rtol=0, atol=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, D16.parameters()))
    assert json.loads(json.dumps(fp16.state_dict()))["scalers"]["D"]["scale"] == 256.0


def test_fp16_scaler_state_survives_resume(tmp_path, monkeypatch):
    """A whole fp16 run (the CUDA-only check bypassed: CPU autocast supports fp16): both loss
    scales go into the checkpoint and come back on --resume."""
    monkeypatch.setattr(runner_module, "check_precision", lambda mode, device: None)
    cfg = resolve(WGAN_GP[0], overrides=WGAN_GP[1] + ["train.amp=fp16"])
    trainer = Trainer(cfg, tmp_path / "r", log=lambda m: None)
    scaler = trainer.runner.precision.scalers["D"]
    scaler.load_state_dict({**scaler.state_dict(), "scale": 1024.0})  # not the default 2^16
    trainer.fit()
    saved = json.loads(ckpt.checkpoint_paths(tmp_path / "r", 2)[1].read_text())["precision"]
    assert saved["mode"] == "fp16" and set(saved["scalers"]) == {"G", "D"}
    assert saved["scalers"]["D"]["scale"] <= 1024.0  # halved by any overflow, never grown yet
    resumed = Trainer(resolve(WGAN_GP[0], overrides=WGAN_GP[1] + ["train.amp=fp16",
                                                                 "train.steps=3"]),
                      tmp_path / "r", resume=True, log=lambda m: None)
    for name in ("G", "D"):
        assert resumed.runner.precision.scale(name) == saved["scalers"][name]["scale"]
    resumed.fit()
    assert resumed.step == 3


def test_channels_last_on_the_cpu(tmp_path):
    """channels_last is honoured on the CPU (it is correct there): conv weights change format,
    training matches the contiguous run to float32 rounding, and a resume works."""
    base = ("dcgan-mnist", tiny(2) + SMALL_CONV)
    runs = {}
    for flag in (False, True):
        cfg = resolve(base[0], overrides=base[1] + [f"train.channels_last={str(flag).lower()}"])
        trainer = Trainer(cfg, tmp_path / str(flag), log=lambda m: None)
        convs = [m.weight for m in trainer.s.discriminator.modules()
                 if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]  # C=1 is both formats
        assert convs[0].is_contiguous(memory_format=torch.channels_last) == flag
        trainer.fit()
        runs[flag] = trainer.s.generator.state_dict()
    # atol 1e-4: Adam divides by the gradient's running RMS, so on a weight whose gradient is
    # near 0 the two conv layouts' rounding can differ by a visible fraction of lr (1e-3) after
    # two steps (2 of 78,400 weights move 2.5e-5 apart); everything else agrees to 1e-4 relative.
    for key, value in runs[False].items():
        torch.testing.assert_close(runs[True][key], value, rtol=1e-4, atol=1e-4)
    run = api.train(overrides=["train.steps=3"], resume=str(tmp_path / "True"),
                    log=lambda m: None)
    assert run.step == 3


def test_channels_last_is_ignored_for_mlps():
    messages: list[str] = []
    cfg = resolve("gan-toy2d", overrides=["train.channels_last=true", "train.device=cpu",
                                          "data.toy_samples=256"])
    Runner(build(cfg), World(), log=messages.append)
    assert messages == ["train.channels_last ignored: model 'mlp' has no convolutions"]
