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
    # the quick start keeps seed 001's D (joined label, dropout 0.4) it was measured with
    assert child.model == dataclasses.replace(base.model, d_label="input", d_dropout=0.4)
    assert child.optim == base.optim


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


def test_a_toml_file_unsets_an_optional_key_of_its_base_with_none(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "cgan-mnist"\n[train]\nema_half_life = "none"\n'
                    'ema_rampup = "None"\nepochs = "null"\nsteps = 10\n')
    cfg = resolve(config_file=str(path))
    assert resolve("cgan-mnist").train.ema_half_life == 10000
    assert cfg.train.ema_half_life is None and cfg.train.ema_rampup is None
    assert cfg.train.epochs is None and cfg.train.steps == 10
    assert resolve("cgan-seed001-mnist").train.ema_half_life is None
    path.write_text('[train]\nbatch_size = "none"\n')  # not optional: still refused
    with pytest.raises(ConfigError, match="train.batch_size"):
        resolve(config_file=str(path))


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


def test_numbers_given_to_text_fields_stay_text():
    cfg = resolve(overrides=["run_name=2024", "data.root=123", "name=1e3"])
    assert (cfg.run_name, cfg.data.root, cfg.name) == ("2024", "123", "1e3")


def test_non_finite_floats_are_refused():
    for raw in ("NaN", "Infinity", "-Infinity", "1e999"):
        with pytest.raises(ConfigError, match="give a finite number"):
            resolve(overrides=[f"optim.lr_g={raw}"])


def test_parse_value():
    assert parse_value("none") is None and parse_value("True") is True
    assert parse_value("3") == 3 and parse_value("2e-4") == 2e-4
    assert parse_value("mnist") == "mnist" and parse_value("[1, 2]") == [1, 2]


# ---------------------------------------------------------------------------------------------
# Property-based: parsing, overrides, round trips, rejection
# ---------------------------------------------------------------------------------------------

import dataclasses  # noqa: E402

from ganforge.config import apply_dict, validate  # noqa: E402

SECTIONS = {f.name: f for f in dataclasses.fields(Config) if dataclasses.is_dataclass(
    getattr(Config(), f.name))}

# Valid values per key, as --set strings; a random subset of them makes a random config.
VALID_OVERRIDES = {
    "train.batch_size": st.integers(1, 4096).map(str),
    "train.seed": st.integers(-(2**31), 2**31).map(str),
    "train.steps": st.one_of(st.just("none"), st.integers(1, 10**7).map(str)),
    "train.deterministic": st.sampled_from(["true", "false", "True", "FALSE"]),
    "train.on_nonfinite": st.sampled_from(["stop", "rollback"]),
    "train.rollback_lr_factor": st.floats(1e-6, 1.0).map(repr),
    "train.max_rollbacks": st.integers(0, 100).map(str),
    "optim.lr_g": st.floats(1e-9, 10.0).map(repr),
    "optim.lr_d": st.floats(1e-9, 10.0).map(repr),
    "optim.betas": st.lists(st.floats(0.0, 0.999), min_size=2, max_size=2).map(
        lambda b: json.dumps(b)),
    "model.conditional": st.sampled_from(["true", "false"]),
    "model.g_hidden": st.lists(st.integers(1, 2048), min_size=1, max_size=5).map(
        lambda v: ",".join(map(str, v))),
    "model.d_hidden": st.lists(st.integers(1, 2048), min_size=1, max_size=5).map(json.dumps),
    "model.embed_dim": st.one_of(st.just("none"), st.integers(1, 512).map(str)),
    "model.d_dropout": st.floats(0.0, 0.99).map(repr),
    "data.image_size": st.one_of(st.just("none"), st.integers(8, 1024).map(str)),
    "data.split": st.sampled_from(["train", "test"]),
    "data.limit": st.one_of(st.just("null"), st.integers(1, 10**6).map(str)),
    "log.keep_checkpoints": st.integers(1, 50).map(str),
    "eval.metrics": st.lists(st.sampled_from(["fid", "kid", "is", "pr"]), min_size=1,
                             max_size=3).map(lambda m: "[" + ",".join(m) + "]"),
    "name": st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=20),
}


@st.composite
def valid_overrides(draw):
    keys = draw(st.lists(st.sampled_from(sorted(VALID_OVERRIDES)), unique=True, max_size=10))
    return [f"{k}={draw(VALID_OVERRIDES[k])}" for k in keys]


@settings(max_examples=80, deadline=None)
@given(valid_overrides())
def test_random_valid_configs_round_trip(overrides):
    cfg = resolve(overrides=overrides)
    assert from_dict(cfg.to_dict()) == cfg
    assert from_dict(json.loads(cfg.to_json())) == cfg
    # Applying the saved dict over a fresh config gives the same config too (a TOML layer).
    fresh = Config()
    apply_dict(fresh, json.loads(cfg.to_json()))
    validate(fresh)
    assert fresh == cfg


@settings(max_examples=80, deadline=None)
@given(valid_overrides())
def test_overrides_set_exactly_what_they_say(overrides):
    cfg = resolve(overrides=overrides)
    values = cfg.to_dict()
    for assignment in overrides:
        key, _, raw = assignment.partition("=")
        section, _, name = key.rpartition(".")
        got = values[section][name] if section else values[name]
        parsed = parse_value(raw)
        if isinstance(got, list) and not isinstance(parsed, list):
            parsed = [parsed]  # "model.g_hidden=256" is a one-layer list
        if isinstance(got, str) and not isinstance(parsed, str):
            assert got == raw.strip()  # a text field keeps "0" as text
        else:
            assert got == parsed and (not isinstance(got, float) or got == float(raw))


@settings(max_examples=100, deadline=None)
@given(st.integers())
def test_parse_value_ints(value):
    assert parse_value(str(value)) == value and type(parse_value(str(value))) is int


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_parse_value_floats_round_trip_exactly(value):
    for text in (repr(value), f"{value:e}" if value else "0.0"):
        parsed = parse_value(text)
        assert float(parsed) == float(text)
    assert parse_value(repr(value)) == value


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["true", "True", "TRUE", "false", "False", " false "]))
def test_parse_value_bools(text):
    assert parse_value(text) is (text.strip().lower() == "true")


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["none", "None", "NULL", "null", " none"]))
def test_parse_value_none(text):
    assert parse_value(text) is None


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True).filter(
    lambda w: w not in ("none", "null", "true", "false")), min_size=1, max_size=5))
def test_parse_value_bare_word_lists(words):
    assert parse_value("[" + ",".join(words) + "]") == words
    assert parse_value(", ".join(words)) == (words if len(words) > 1 else words[0])


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SECTIONS)),
       st.from_regex(r"[a-z_]{1,14}", fullmatch=True))
def test_unknown_keys_are_rejected_in_every_section(section, key):
    cfg = Config()
    known = {f.name for f in dataclasses.fields(getattr(cfg, section))}
    if key in known:
        return
    with pytest.raises(ConfigError, match=f"unknown config key '{section}.{key}'") as info:
        apply_override(cfg, f"{section}.{key}=1")
    assert "\n" not in str(info.value) and "valid keys:" in str(info.value)
    assert cfg == Config()  # nothing applied


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(VALID_OVERRIDES)), st.text(max_size=30))
def test_arbitrary_values_never_crash(key, raw):
    """Any text after '=' is either accepted (and valid) or refused with one ConfigError line."""
    try:
        cfg = resolve(overrides=[f"{key}={raw}"])
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    assert from_dict(cfg.to_dict()) == cfg


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["train.batch_size", "train.max_rollbacks", "log.keep_checkpoints"]),
       st.one_of(st.floats(allow_nan=False).filter(lambda f: not f.is_integer()).map(repr),
                 st.sampled_from(["abc", "[1,2]", "true", '"3"'])))
def test_int_keys_refuse_other_types(key, raw):
    with pytest.raises(ConfigError, match=f"config key '{key}' wants int"):
        resolve(overrides=[f"{key}={raw}"])


def test_a_budget_override_replaces_the_presets_budget():
    """cgan-mnist says 20 epochs; a time budget given on top replaces it instead of racing it."""
    assert resolve("cgan-mnist").train.epochs == 20
    cfg = resolve("cgan-mnist", overrides=["train.minutes=5"])
    assert (cfg.train.minutes, cfg.train.epochs, cfg.train.steps) == (5.0, None, None)
    both = resolve("cgan-mnist", overrides=["train.steps=100", "train.minutes=2"])
    assert (both.train.steps, both.train.minutes, both.train.epochs) == (100, 2.0, None)
    # Unsetting one budget key is not a budget: the preset's other keys stay.
    cleared = resolve("dcgan-seed002-mnist", overrides=["train.epochs=none"])
    assert cleared.train.steps == resolve("dcgan-seed002-mnist").train.steps


def test_describe_budget_says_what_stops_the_run():
    from ganforge.config import describe_budget

    cfg = resolve("cgan-mnist", overrides=["train.steps=100", "train.epochs=3"])
    assert describe_budget(cfg.train) == ("100 steps (train.steps) or 3 epochs (train.epochs), "
                                          "whichever comes first")
    assert describe_budget(resolve("cgan-mnist").train) == "20 epochs (train.epochs)"
