"""Components own their settings: a section is built from the chosen component's declaration,
every preset resolves to the settings it had before, old run folders still load, and the
reference is generated from the same declarations."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ganforge.cli import main
from ganforge.config import (Config, LossConfig, ModelConfig, from_dict, list_presets,
                             resolve, section_type)
from ganforge.config.reference import details, reference_markdown
from ganforge.errors import ConfigError
from ganforge.registry import AIDS, DATASETS, LOSSES, METRICS, MODELS
from ganforge.run.folder import flatten
from ganforge.settings import describe, setting
from tests.conftest import REPO

SNAPSHOT = Path(__file__).parent / "fixtures" / "presets_resolved.json"


@pytest.mark.parametrize("preset", list_presets())
def test_every_preset_resolves_to_the_settings_it_had(preset):
    """Against the resolved presets recorded before components declared their settings (every
    key of every section then): each key a preset still has keeps its value, and a key it lost
    belongs to a component the preset does not choose."""
    snapshot = json.loads(SNAPSHOT.read_text())
    before = {**snapshot["defaults"], **snapshot["presets"][preset]}
    cfg = resolve(preset)
    now = flatten(cfg.to_dict())
    assert set(now) - set(before) == {"eval.settings", "eval.minutes"}  # the keys that are new
    assert {k: v for k, v in now.items() if k in before} == \
        {k: before[k] for k in now if k in before}
    for key in set(before) - set(now):
        section, name = key.split(".", 1)
        assert section in ("data", "model", "loss")
        assert not hasattr(getattr(cfg, section), name)


def test_a_section_holds_the_chosen_components_settings_only():
    assert {"gp_weight"} <= {f.name for f in dataclasses.fields(section_type("loss", "wgan-gp"))}
    bce = {f.name for f in dataclasses.fields(section_type("loss", "bce"))}
    assert "gp_weight" not in bce and "clip" not in bce and "real_label" in bce
    assert {"r1_gamma", "augment", "lecam_weight", "instance_noise"} <= bce  # every aid's
    with pytest.raises(ConfigError, match=r"unknown config key 'loss\.gp_weight' for loss 'bce' "
                       r"\(it is a setting of loss dragan, wgan-gp\); valid keys: loss\.name"):
        resolve(overrides=["loss.gp_weight=5"])


def test_choosing_another_component_keeps_the_settings_both_have():
    cfg = resolve("dcgan-mnist", overrides=["loss.name=acgan", "model.conditional=true",
                                            "model.d_label=classifier", "loss.class_weight=2"])
    assert cfg.loss.real_label == 0.9  # dcgan-mnist's, a setting bce and acgan share
    assert cfg.loss.class_weight == 2.0
    # The overrides are one layer: the name counts before the keys, whatever their order.
    same = resolve("dcgan-mnist", overrides=["loss.class_weight=2", "loss.name=acgan",
                                             "model.conditional=true",
                                             "model.d_label=classifier"])
    assert same == cfg
    wgan = resolve("wgan-gp-mnist", overrides=["loss.name=wgan"])
    assert wgan.loss.clip == 0.01 and not hasattr(wgan.loss, "gp_weight")


def test_python_sections_are_strict_too():
    assert LossConfig(name="wgan-gp", gp_weight=5).gp_weight == 5.0
    assert ModelConfig(arch="dcgan", g_width=8).g_width == 8
    with pytest.raises(ConfigError, match="unknown config key 'model.g_hidden' for model "
                       "'dcgan'"):
        ModelConfig(arch="dcgan", g_hidden=[8])
    with pytest.raises(ConfigError, match=r"^loss\.gp_weight must be >= 0, e.g\. 10$"):
        LossConfig(name="wgan-gp", gp_weight=-1)


def test_a_config_saved_with_every_key_still_loads():
    """Run folders written before components declared their settings saved every key of every
    section; the keys of components a run did not use are dropped on load."""
    snapshot = json.loads(SNAPSHOT.read_text())
    old = {**snapshot["defaults"], **snapshot["presets"]["wgan-gp-mnist"]}
    nested: dict = {}
    for key, value in old.items():
        section, _, name = key.rpartition(".")
        (nested.setdefault(section, {}) if section else nested)[name] = value
    cfg = from_dict(nested)
    assert cfg == resolve("wgan-gp-mnist")
    with pytest.raises(ConfigError, match="unknown config key 'loss.no_such_key'"):
        from_dict({**nested, "loss": {**nested["loss"], "no_such_key": 1}})


def test_metric_settings_are_typed_checked_and_saved():
    cfg = resolve(overrides=["eval.settings.pr.k=5", "eval.settings.kid.subsets=20"])
    assert cfg.eval.settings == {"pr": {"k": 5}, "kid": {"subsets": 20, "subset_size": 1000}}
    assert from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match=r"unknown config key 'eval\.settings\.pr\.kk' "
                       r"\(did you mean 'eval\.settings\.pr\.k'\?\)"):
        resolve(overrides=["eval.settings.pr.kk=5"])
    with pytest.raises(ConfigError, match=r"eval\.settings\.kid\.subsets=0 must be positive"):
        resolve(overrides=["eval.settings.kid.subsets=0"])
    with pytest.raises(ConfigError, match="metric 'fid' takes no settings"):
        resolve(overrides=["eval.settings.fid.k=1"])


@pytest.mark.parametrize("registry", [LOSSES, AIDS, MODELS, DATASETS, METRICS],
                         ids=lambda r: r.kind)
def test_every_declared_setting_has_a_doc(registry):
    for name in registry.names():
        for info in describe(registry.settings(name)):
            assert info.doc and info.type, (registry.kind, name, info.name)


def test_a_settings_class_is_plain_dataclass_with_docs():
    @dataclasses.dataclass
    class Mine:
        width: int = setting(4, "how wide")

    (info,) = describe(Mine)
    assert (info.name, info.type, info.default, info.doc, info.rule) == (
        "width", "int", 4, "how wide", "")


def test_list_details_prints_a_components_settings(capsys):
    assert main(["list", "--details", "wgan-gp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("loss wgan-gp: WGAN-GP")
    assert out[1].split() == ["loss.gp_weight", "float", "=", "10.0;", ">=", "0"]
    assert out[2].strip() == "weight lambda of the gradient penalty"
    assert details("train").splitlines()[0] == "train: the settings of section train"
    assert main(["list", "--details", "wgna"]) == 2
    assert "unknown name 'wgna' (did you mean 'wgan'?)" in capsys.readouterr().err


def test_the_committed_reference_is_generated_from_the_declarations():
    committed = (REPO / "docs" / "reference" / "settings.md").read_text()
    assert committed == reference_markdown(builtin_only=True), (
        "docs/reference/settings.md is out of date: ganforge list --reference --builtin > "
        "docs/reference/settings.md")
    for section in ("data", "model", "loss", "optim", "train", "log", "eval", "diagnostics"):
        assert f"### `{section}`" in committed
    assert "| `loss.gp_weight` | float | `10.0` | >= 0 |" in committed
    assert "ralsgan" not in committed  # installed plugins are not ganforge's reference


def test_config_fields_keep_their_docs():
    for f in dataclasses.fields(Config):
        if f.name not in ("data", "model", "loss"):
            assert f.metadata.get("doc") or dataclasses.is_dataclass(getattr(Config(), f.name))
