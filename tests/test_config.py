"""Config resolution: defaults, presets, overrides, strict validation (with hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ganforge.config import (
    Config, apply_override, from_dict, list_presets, parse_duration_minutes, parse_value, resolve)
from ganforge.errors import ConfigError


def test_defaults_are_valid_and_round_trip():
    cfg = resolve()
    again = from_dict(json.loads(cfg.to_json()))
    assert again == cfg


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_resolves_and_round_trips(preset):
    cfg = resolve(preset)
    assert cfg.name == preset
    assert cfg.description, f"preset {preset} needs a description line"
    assert from_dict(cfg.to_dict()) == cfg


def test_preset_base_chain_is_a_small_diff():
    base, child = resolve("cgan-mnist"), resolve("cgan-digits")
    assert child.data.name == "digits" and base.data.name == "mnist"
    assert child.model == base.model and child.optim == base.optim


def test_override_types():
    cfg = resolve("cgan-mnist", overrides=["optim.lr_g=1e-4", "model.g_hidden=[64,128]",
                                           "train.steps=10", "model.conditional=false",
                                           "data.image_size=none", "model.d_hidden=32,32"])
    assert cfg.optim.lr_g == 1e-4 and isinstance(cfg.optim.lr_g, float)
    assert cfg.model.g_hidden == [64, 128] and cfg.model.d_hidden == [32, 32]
    assert cfg.train.steps == 10 and cfg.model.conditional is False
    assert cfg.data.image_size is None


def test_int_given_for_float_is_accepted_but_not_the_reverse():
    cfg = resolve(overrides=["optim.lr_g=1"])
    assert cfg.optim.lr_g == 1.0
    with pytest.raises(ConfigError, match="train.batch_size' wants int"):
        resolve(overrides=["train.batch_size=6.5"])


@pytest.mark.parametrize("override, message", [
    ("optim.lr_gg=1e-4", r"unknown config key 'optim.lr_gg' \(did you mean 'optim.lr_g'\?\)"),
    ("optimizer.lr_g=1", "unknown config key 'optimizer'"),
    ("train.batch_size=abc", "train.batch_size' wants int"),
    ("train.batch_size=0", "train.batch_size=0 must be positive"),
    ("model.z_dist=gamma", "model.z_dist' is 'gamma'; choose one of: normal, uniform"),
    ("optim.betas=[0.5]", "optim.betas must be two numbers"),
    ("model.conditional=maybe", "model.conditional' wants bool"),
    ("data.split=val", "choose one of: train, test"),
    ("train.device=gpu", "train.device='gpu'"),
    ("optim.lr_decay=0.5", "optim.lr_decay"),
    ("loss.real_label_range=[1.2,0.7]", "low <= high"),
    ("train", "has no '='"),
])
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve("cgan-mnist", overrides=[override])
    assert "\n" not in str(info.value)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as info:
        resolve(overrides=["model.widht=3"])
    assert "valid keys:" in str(info.value) and "model.g_width" in str(info.value)


def test_unknown_preset_lists_presets():
    with pytest.raises(ConfigError, match="unknown preset 'nope'; valid presets: .*cgan-mnist"):
        resolve("nope")


def test_config_file_with_base(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "dcgan-mnist"\n[train]\nbatch_size = 32\n')
    cfg = resolve(config_file=str(path))
    assert cfg.model.arch == "dcgan" and cfg.train.batch_size == 32
    path.write_text("[train]\nbatch_size = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        resolve(config_file=str(path))
    path.write_text("[train]\nbatchsize = 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'train.batchsize'"):
        resolve(config_file=str(path))


@pytest.mark.parametrize("text, minutes", [("90s", 1.5), ("5m", 5.0), ("2h", 120.0),
                                           ("7", 7.0), ("0.5min", 0.5)])
def test_durations(text, minutes):
    assert parse_duration_minutes(text) == pytest.approx(minutes)


def test_bad_duration():
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration_minutes("five minutes")


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=10**6))
def test_int_overrides_round_trip(value):
    cfg = Config()
    apply_override(cfg, f"train.batch_size={value}")
    assert cfg.train.batch_size == value


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=1e-8, max_value=10.0, allow_nan=False))
def test_float_overrides_round_trip(value):
    cfg = Config()
    apply_override(cfg, f"optim.lr_d={value!r}")
    assert cfg.optim.lr_d == value


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=6))
def test_list_overrides_round_trip(values):
    cfg = Config()
    apply_override(cfg, "model.g_hidden=" + ",".join(map(str, values)))
    assert cfg.model.g_hidden == values
    apply_override(cfg, f"model.d_hidden={json.dumps(values)}")
    assert cfg.model.d_hidden == values


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_random_keys_are_rejected_or_known(key):
    cfg = Config()
    known = key in {f for f in cfg.train.__dataclass_fields__}
    if known:
        return
    with pytest.raises(ConfigError, match="unknown config key"):
        apply_override(cfg, f"train.{key}=1")


def test_parse_value():
    assert parse_value("none") is None and parse_value("True") is True
    assert parse_value("3") == 3 and parse_value("2e-4") == 2e-4
    assert parse_value("mnist") == "mnist" and parse_value("[1, 2]") == [1, 2]
