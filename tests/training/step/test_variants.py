"""Every loss × model family × conditioning trains two steps, or is refused at config time;
EMA of G; attribute conditioning end to end."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch

from ganforge import api
from ganforge.config import resolve, section_type
from ganforge.errors import ConfigError
from ganforge.losses import LOSSES
from ganforge.models import MODELS
from ganforge.reporting import read_jsonl
from ganforge.training.step.ema import EMA
from ganforge.training.step.loop import Trainer
from ganforge.training.step.setup import build, check_combination
from tests.conftest import fast_overrides
from tests.training.step.test_loop import preset_on_generated_data
from tests.data.conftest import fake_celeba  # noqa: F401  (fixture)

# Model options each family × label mode needs to be a sensible combination.
LABEL_MODES = ["none", "input", "projection", "classifier"]


def overrides_for(arch: str, loss: str, mode: str) -> list[str]:
    out = [f"model.arch={arch}", f"loss.name={loss}", "data.name=synthetic", "data.limit=32",
           "data.image_size=28", "data.channels=1", "model.g_hidden=[16]", "model.d_hidden=[16]",
           "model.g_width=4", "model.d_width=4"]
    out.append("model.conditional=false" if mode == "none" else "model.conditional=true")
    if mode != "none":
        out.append(f"model.d_label={mode}")
    if loss in ("wgan-gp", "dragan"):
        out.append("model.d_norm=layer" if MODELS.get(arch).conv else "model.d_norm=none")
    # Each family takes the model settings it declares (widths, hidden sizes, norms).
    takes = {f.name for f in dataclasses.fields(section_type("model", arch))}
    out = [o for o in out if not o.startswith("model.") or o[6:].partition("=")[0] in takes]
    return out + fast_overrides(2) + ["log.sample_every=100", "log.checkpoint_every=100"]


CASES = [(arch, loss, mode) for arch in MODELS.names() if MODELS.get(arch).image
         for loss in LOSSES.names() for mode in LABEL_MODES]


@pytest.mark.parametrize("arch,loss,mode", CASES)
def test_loss_model_matrix_trains_or_is_refused(arch, loss, mode, tmp_path):
    cfg = resolve(None, None, overrides_for(arch, loss, mode))
    try:
        build(cfg)
    except ConfigError as err:
        message = str(err)
        assert "\n" not in message and ";" in message  # one line: the problem; the fix
        spec = MODELS.get(arch)
        expected = (
            (loss == "acgan") != (mode == "classifier")
            or (mode not in ("none", "input") and mode not in spec.label_modes)
            or (arch == "cgan-paper" and mode == "none")
            or (arch == "dcgan-seed002" and mode != "none")
        )
        assert expected, f"unexpected refusal: {message}"
        return
    assert not ((loss == "acgan") != (mode == "classifier") and mode != "none"), \
        "acgan/classifier mismatch must be refused"
    # Two real training steps through the loop's own step (no run-folder I/O: the matrix is big).
    trainer = Trainer(cfg, tmp_path / "run", log=lambda m: None)
    trainer.train_step()
    trainer.train_step()
    record = trainer.stats.flush(trainer.step)
    trainer.stats.close()
    assert trainer.step == 2 and "Loss/D" in record and "Loss/G" in record
    assert all(math.isfinite(v) for v in record.values())


def test_refusals_name_the_fix():
    cases = {
        ("loss.name=wgan-gp", "model.arch=dcgan", "model.d_norm=batch"): "model.d_norm=layer",
        ("loss.name=acgan", "model.conditional=true"): "model.d_label=classifier",
        ("model.conditional=true", "model.d_label=classifier"): "loss.name=acgan",
        ("model.arch=cgan-paper", "model.conditional=true",
         "model.d_label=projection"): "model.arch=dcgan or mlp",
        # Settings a family does not declare are refused as such, naming who takes them.
        ("model.arch=dcgan-seed002", "model.spectral_norm=true"):
            "'model.spectral_norm' for model 'dcgan-seed002' (it is a setting of model dcgan, mlp)",
        ("model.arch=cgan-paper", "model.d_mbstd=4"):
            "'model.d_mbstd' for model 'cgan-paper' (it is a setting of model dcgan, mlp)",
    }
    for overrides, fix in cases.items():
        with pytest.raises(ConfigError, match=re.escape(fix)):
            check_combination(resolve(None, None, list(overrides)))


def test_ema_averages_and_tracks_before_start():
    src = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        src.weight.fill_(1.0)
    ema = EMA(src, decay=0.9, start=1)
    with torch.no_grad():
        src.weight.fill_(3.0)
    ema.update(1)  # before/at start: copies
    assert ema.module.weight.tolist() == [[3.0, 3.0]]
    with torch.no_grad():
        src.weight.fill_(13.0)
    ema.update(2)  # 0.9 * 3 + 0.1 * 13 = 4
    assert ema.module.weight.flatten().tolist() == pytest.approx([4.0, 4.0])
    assert not ema.module.weight.requires_grad


def test_ema_half_life_in_images_with_rampup():
    """StyleGAN2-ADA's EMA: decay = 0.5 ** (B / half_life), half-life capped at rampup x images."""
    src = torch.nn.Linear(2, 1, bias=False)
    ema = EMA(src, half_life=1000.0, images_per_step=100)
    assert ema.decay_at(1) == pytest.approx(0.5 ** 0.1)
    assert ema.decay_at(10_000) == pytest.approx(0.5 ** 0.1)  # no ramp: the same every step
    ramped = EMA(src, half_life=1000.0, rampup=0.05, images_per_step=100)
    # Step 10: 1,000 images seen, half-life min(1000, 50) = 50 images -> 0.5 ** (100 / 50).
    assert ramped.decay_at(10) == pytest.approx(0.25)
    assert ramped.decay_at(200) == pytest.approx(0.5 ** 0.1)  # 20,000 x 0.05 = 1,000: full
    with torch.no_grad():
        src.weight.fill_(1.0)
    ramped.update(10)  # after the ramp's first steps the copy moves fast: 0.25 old + 0.75 new
    with torch.no_grad():
        src.weight.fill_(5.0)
    before = ramped.module.weight.clone()
    ramped.update(10)
    assert torch.allclose(ramped.module.weight, 0.25 * before + 0.75 * 5.0)


def test_ema_half_life_config_builds_the_average(tmp_path):
    cfg = resolve("dcgan-mnist", overrides=preset_on_generated_data("dcgan-mnist") + [
        "train.ema_half_life=500", "train.ema_rampup=0.05", "train.batch_size=16"])
    s = build(cfg)
    assert s.ema is not None and s.ema.half_life == 500 and s.ema.images_per_step == 16
    with pytest.raises(ConfigError, match="needs train.ema_half_life"):
        resolve("dcgan-mnist", overrides=["train.ema_rampup=0.05"])


def test_ema_run_saves_and_samples_from_the_average(tmp_path):
    overrides = overrides_for("dcgan", "bce", "input") + ["train.ema=0.5"]
    run = api.train(resolve(None, None, overrides), out=str(tmp_path / "run"), log=lambda m: None)
    assert run.uses_ema
    from ganforge.run import checkpoint as ckpt

    _, tensors, _ = ckpt.latest_checkpoint(tmp_path / "run")
    g, g_ema = ckpt.module_state(tensors, "G"), ckpt.module_state(tensors, "G_ema")
    assert g.keys() == g_ema.keys()
    assert any(not torch.equal(g[k], g_ema[k]) for k in g)  # averaged, not a copy
    for k, v in run.generator.state_dict().items():
        assert torch.equal(v, g_ema[k])


def test_attribute_conditioning_end_to_end(tmp_path, fake_celeba):  # noqa: F811
    fake_celeba(tmp_path / "data", n=12)
    overrides = ["data.root=" + str(tmp_path / "data"), "data.split=train", "data.download=false",
                 "data.image_size=16", "model.g_width=4", "model.d_width=4"]
    overrides += fast_overrides(2, batch=4)
    for mode in ("input", "projection"):
        run = api.train("cdcgan-celeba64-attributes", overrides=overrides + [
            f"model.d_label={mode}"], out=str(tmp_path / mode), log=lambda m: None)
        assert run.record["multi_label"] and run.n_classes == 40
        y = torch.zeros(3, 40)
        y[:, 20] = 1.0
        x = run.generator(torch.randn(3, run.record["z_dim"]), y)
        assert x.shape == (3, 3, 16, 16) and torch.isfinite(x).all()
    # ACGAN over attributes: a multi-label class head trained with BCE
    run = api.train("cdcgan-celeba64-attributes", overrides=overrides + [
        "model.d_label=classifier", "loss.name=acgan"], out=str(tmp_path / "ac"),
        log=lambda m: None)
    record = read_jsonl(tmp_path / "ac" / "stats.jsonl")[-1]
    assert 0.0 <= record["Acc/D/class_real"] <= 1.0 and math.isfinite(record["Loss/D/class_real"])


def test_acgan_pretrains_the_class_head_before_the_game(tmp_path):
    overrides = overrides_for("dcgan", "acgan", "classifier") + ["loss.pretrain_steps=3"]
    logs: list[str] = []
    api.train(resolve(None, None, overrides), out=str(tmp_path / "run"), log=logs.append)
    records = read_jsonl(tmp_path / "run" / "stats.jsonl")
    assert records[0]["step"] == 0 and "Loss/D/pretrain_class" in records[0]
    assert [r["step"] for r in records[1:3]] == [1, 2]
    assert "Loss/D/class_real" in records[1] and "Acc/D/class_fake" in records[1]
    assert any("pre-trained D for 3 steps" in m for m in logs)
