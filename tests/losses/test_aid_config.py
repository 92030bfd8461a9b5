"""Config keys of the convergence aids: defaults off, range checks, presets."""

from __future__ import annotations

import pytest

from ganforge.config import list_presets, resolve
from ganforge.errors import ConfigError
from ganforge.losses import AIDS, LOSSES

AID_KEYS = ("r1_gamma", "r2_gamma", "augment", "augment_p", "ada_target", "lecam_weight",
            "instance_noise")


# Presets tuned with the aids on purpose; every other preset keeps its document's recipe.
AIDED_PRESETS = ("r3gan-mnist", "r3gan-celeba32", "r3gan-celeba32-attributes")


@pytest.mark.parametrize("preset", [p for p in list_presets() if p not in AIDED_PRESETS])
def test_existing_presets_enable_no_aid(preset):
    cfg = resolve(preset)
    assert [name for name in AIDS.names() if AIDS.get(name).enabled(cfg.loss)] == []


def test_r3gan_preset_is_rpgan_with_r1_r2_on_a_batch_norm_free_d():
    cfg = resolve("r3gan-mnist")
    assert cfg.loss.name == "rpgan" and cfg.model.arch == "dcgan" and cfg.model.d_norm == "none"
    assert cfg.loss.r1_gamma > 0 and cfg.loss.r2_gamma > 0
    assert set(LOSSES.get("rpgan")(cfg.loss).aids) == {"r1r2"}


def test_augment_takes_a_comma_list_on_the_command_line():
    cfg = resolve("dcgan-mnist", overrides=["loss.augment=translation,cutout",
                                            "loss.ada_target=0.6"])
    assert cfg.loss.augment == ["translation", "cutout"] and cfg.loss.ada_target == 0.6
    assert resolve("dcgan-mnist", overrides=["loss.augment=color"]).loss.augment == ["color"]


@pytest.mark.parametrize("override, words", [
    ("loss.r1_gamma=-1", "r1_gamma"),
    ("loss.r2_gamma=-0.1", "r2_gamma"),
    ("loss.reg_every=0", "reg_every"),
    ("loss.augment_p=1.5", "augment_p"),
    ("loss.ada_target=1", "ada_target"),
    ("loss.ada_interval=0", "ada_interval"),
    ("loss.ada_speed=0", "ada_speed"),
    ("loss.lecam_weight=-1", "lecam_weight"),
    ("loss.instance_noise=-0.5", "instance_noise"),
    ("loss.instance_noise_steps=0", "instance_noise_steps"),
])
def test_out_of_range_values_get_one_line_errors(override, words):
    extra = ["loss.augment=translation"] if "augment_p" in override or "ada" in override else []
    with pytest.raises(ConfigError, match=words) as err:
        resolve("hinge-sn-mnist", overrides=extra + [override])
    assert "\n" not in str(err.value)


def test_adaptive_options_need_augmentations():
    with pytest.raises(ConfigError, match="loss.augment=translation,cutout"):
        resolve("hinge-sn-mnist", overrides=["loss.ada_target=0.6"])


@pytest.mark.parametrize("key", ["r1_gamma", "r2_gamma"])
def test_zero_centred_penalties_refuse_a_batch_norm_d(key):
    with pytest.raises(ConfigError, match="model.d_norm=none"):
        resolve("dcgan-mnist", overrides=[f"loss.{key}=0.1"])
    resolve("dcgan-mnist", overrides=[f"loss.{key}=0.1", "model.d_norm=none"])


def test_every_aid_key_has_an_off_default():
    cfg = resolve()
    for key in AID_KEYS:
        assert getattr(cfg.loss, key) in (0.0, None, []), key


def test_aided_presets_really_enable_aids():
    for preset in AIDED_PRESETS:
        cfg = resolve(preset)
        assert "r1r2" in [name for name in AIDS.names() if AIDS.get(name).enabled(cfg.loss)]
