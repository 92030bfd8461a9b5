"""The search space and the command's checks: every distribution parsed and typed by its key,
every refusal one line (exit 2) before any trial runs, the space file, the check points."""

from __future__ import annotations

import sys

import pytest

from ganforge.cli import main
from ganforge.config import resolve
from ganforge.errors import ConfigError
from ganforge.tune.job import POINTS, Budget
from ganforge.tune.space import Param, build_space, read_space, split_top_level

BASE = ["train.steps=40", "eval.metrics=[fid]"]


def space(*specs: str, fixed: tuple[str, ...] = (), preset: str = "cgan-digits") -> list[Param]:
    return build_space(list(specs), preset, list(fixed), [*fixed, *BASE])


def refusal(*specs: str, fixed: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        space(*specs, fixed=fixed)
    return str(info.value)


def config_says(*overrides: str) -> str:
    """What the config itself says of ``overrides`` (the refusal a --param passes on)."""
    with pytest.raises(ConfigError) as info:
        resolve("cgan-digits", overrides=[*BASE, *overrides])
    return str(info.value)


def test_every_distribution_is_parsed_and_typed_by_its_key():
    params = space("optim.lr_g=loguniform:1e-4:2e-3", "loss.r1_gamma=uniform:0:1",
                   "model.z_dim=int:16:64", "model.d_dropout=choice:0,0.2",
                   "model.d_norm=choice:none,layer", "model.conditional=choice:true,false",
                   "model.d_hidden=choice:[32],[64,64]", "eval.settings.pr.k=int:2:5")
    assert [(p.key, p.dist, p.low, p.high, p.choices) for p in params] == [
        ("optim.lr_g", "loguniform", 1e-4, 2e-3, ()),
        ("loss.r1_gamma", "uniform", 0.0, 1.0, ()),
        ("model.z_dim", "int", 16, 64, ()),
        ("model.d_dropout", "choice", None, None, (0.0, 0.2)),
        ("model.d_norm", "choice", None, None, ("none", "layer")),
        ("model.conditional", "choice", None, None, (True, False)),
        ("model.d_hidden", "choice", None, None, ("[32]", "[64,64]")),
        ("eval.settings.pr.k", "int", 2, 5, ())]
    assert [p.override(v) for p, v in zip(params, (3e-4, 0.5, 32, 0.2, "layer", False, "[32]",
                                                   3))] == [
        "optim.lr_g=0.0003", "loss.r1_gamma=0.5", "model.z_dim=32", "model.d_dropout=0.2",
        "model.d_norm=layer", "model.conditional=false", "model.d_hidden=[32]",
        "eval.settings.pr.k=3"]
    # A key of the component a fixed override chooses.
    (width,) = space("model.d_width=int:8:16", fixed=("model.arch=dcgan",))
    assert (width.key, width.low, width.high) == ("model.d_width", 8, 16)


def test_suggested_values_stay_in_their_distributions():
    optuna = pytest.importorskip("optuna", reason="needs the tune extra: pip install "
                                 "'ganforge[tune]'")
    params = space("optim.lr_g=loguniform:1e-4:2e-3", "model.z_dim=int:16:64",
                   "model.d_hidden=choice:[32],[64,64]")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        lr, z, hidden = (p.suggest(trial) for p in params)
        assert 1e-4 <= lr <= 2e-3 and 16 <= z <= 64 and isinstance(z, int)
        assert hidden in ("[32]", "[64,64]")
        resolve("cgan-digits", overrides=[p.override(v) for p, v in zip(params, (lr, z, hidden))])
        study.tell(trial, 0.0)


@pytest.mark.parametrize("spec, line", [
    ("optim.lr_g", "--param 'optim.lr_g' is not KEY=DIST:ARGS; write e.g. --param "
     "optim.lr_g=loguniform:1e-4:2e-3"),
    ("optim.lr_g=0.1", "--param 'optim.lr_g=0.1' is not KEY=DIST:ARGS; write e.g. --param "
     "optim.lr_g=loguniform:1e-4:2e-3"),
    ("optim.lr_g=logunifrom:1e-4:1e-3", "--param optim.lr_g=logunifrom:1e-4:1e-3: unknown "
     "distribution 'logunifrom' (did you mean 'loguniform'?); valid distributions: uniform, "
     "loguniform, int, choice"),
    ("optim.lr_g=loguniform:0:1e-3", "--param optim.lr_g=loguniform:0:1e-3: loguniform wants "
     "0 < A < B"),
    ("optim.lr_g=uniform:2:1", "--param optim.lr_g=uniform:2:1: wants A < B, got 2.0 and 1.0"),
    ("optim.lr_g=uniform:a:b", "--param optim.lr_g=uniform:a:b: wants two numbers A:B"),
    ("optim.lr_g=uniform:1", "--param optim.lr_g=uniform:1: wants two numbers A:B"),
    ("optim.lr_g=uniform:1:inf", "--param optim.lr_g=uniform:1:inf: wants A < B, got 1.0 and "
     "inf"),
    ("model.z_dim=int:1.5:4", "--param model.z_dim=int:1.5:4: wants two integers A:B"),
    ("model.z_dim=uniform:1:5", "--param model.z_dim=uniform:1:5: the key takes int; use "
     "int:A:B or choice:X,Y,..."),
    ("model.d_norm=uniform:0:1", "--param model.d_norm=uniform:0:1: the key takes str; use "
     "choice:X,Y,..."),
    ("model.d_hidden=int:1:4", "--param model.d_hidden=int:1:4: the key takes list[int]; use "
     "choice:X,Y,..."),
    ("model.d_norm=choice:none", "--param model.d_norm=choice:none: wants two or more "
     "different values X,Y,... (fix one with --set)"),
    ("model.d_norm=choice:none,none", "--param model.d_norm=choice:none,none: wants two or "
     "more different values X,Y,... (fix one with --set)"),
    ("train.seed=int:0:3", "--param train.seed=int:0:3: tune sets train.seed for every run; "
     "search another key"),
])
def test_a_bad_spec_is_one_line(spec, line):
    assert refusal(spec) == line


@pytest.mark.parametrize("spec, overrides", [
    # The key: the config's own words, "did you mean" included.
    ("model.d_widht=uniform:0:1", ["model.d_widht=0"]),
    ("model.d_width=int:8:16", ["model.d_width=8"]),
    # A bound the key's rule refuses (each bound is resolved with the preset).
    ("loss.r1_gamma=uniform:-1:1", ["loss.r1_gamma=-1.0"]),
    ("optim.lr_d=uniform:0:1", ["optim.lr_d=0.0"]),
    ("model.d_dropout=uniform:0:2", ["model.d_dropout=2.0"]),
    # A choice the key refuses.
    ("model.d_norm=choice:none,spectral", ["model.d_norm=spectral"]),
    ("model.z_dim=choice:16,abc", ["model.z_dim=abc"]),
])
def test_the_config_refuses_keys_bounds_and_choices(spec, overrides):
    assert refusal(spec) == f"--param {spec}: {config_says(*overrides)}"


def test_a_key_is_searched_once_and_never_also_fixed():
    assert refusal("optim.lr_g=uniform:0.1:1", "optim.lr_g=uniform:0.2:1") == \
        "--param optim.lr_g=uniform:0.2:1: optim.lr_g is searched twice; keep one"
    assert refusal("optim.lr_g=uniform:0.1:1", fixed=("optim.lr_g=0.1",)) == \
        "--param optim.lr_g=uniform:0.1:1: optim.lr_g is also fixed by --set; drop one of them"
    assert refusal() == ("nothing to search; give --param KEY=DIST:ARGS (e.g. "
                         "optim.lr_g=loguniform:1e-4:2e-3) or --space FILE.toml")


def test_a_space_file_holds_the_same_specs(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('[params]\n"optim.lr_g" = "loguniform:1e-4:2e-3"\n'
                    'model.d_hidden = "choice:[32],[64,64]"\n')
    assert read_space(str(path)) == ["optim.lr_g=loguniform:1e-4:2e-3",
                                     "model.d_hidden=choice:[32],[64,64]"]
    path.write_text('[params]\n"optim.lr_g" = 0.1\n')
    with pytest.raises(ConfigError, match=r"^space file '.*space.toml': optim.lr_g = 0.1 is not "
                       r"a \"DIST:ARGS\" string; write e.g. \"choice:16,32\"$"):
        read_space(str(path))
    path.write_text('lr = "uniform:0:1"\n')
    with pytest.raises(ConfigError, match=r"must hold one \[params\] table of KEY = "):
        read_space(str(path))
    with pytest.raises(ConfigError, match=r"^space file '.*nowhere.toml' not found; check the "
                       r"path$"):
        read_space(str(tmp_path / "nowhere.toml"))


def test_choices_split_outside_brackets():
    assert split_top_level("[64,64],[128],7") == ["[64,64]", "[128]", "7"]


def test_check_points_at_a_quarter_half_and_three_quarters():
    steps = Budget(steps=40)
    assert steps.overrides() == ["train.steps=40", "eval.every=10", "eval.minutes=[]"]
    assert [steps.point(s, 0.0) for s in (10, 20, 30, 40, 15)] == [1, 2, 3, 0, 0]
    minutes = Budget(minutes=2.0)
    assert minutes.overrides() == ["train.minutes=2.0", "eval.every=0",
                                   "eval.minutes=[0.5,1.0,1.5]"]
    assert [minutes.point(0, s) for s in (30.0, 61.0, 95.0, 120.0)] == [1, 2, 3, 3]
    assert minutes.overrides(checks=False)[-1] == "eval.minutes=[]" and POINTS == 4


def _tune(capsys, *argv: str) -> tuple[int, str]:
    code = main(["tune", "--preset", "cgan-digits", "--out", "unused", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["--seeds", "0"], "--seeds 0: a trial needs at least one seed; give --seeds 1 or more"),
    (["--trials", "0"], "--trials 0: give 1 or more"),
    (["--workers", "0"], "--workers 0: give 1 or more"),
    (["--set", "train.seed=3"], "--set train.seed=3: tune sets train.seed for every run (the "
     "budget: --minutes-per-trial or --steps-per-trial; the metric: --metric)"),
    (["--metric", "fdi"], None),
])
def test_the_command_refuses_in_one_line_before_any_trial(capsys, tmp_path, monkeypatch, argv,
                                                          line):
    pytest.importorskip("optuna", reason="needs the tune extra: pip install 'ganforge[tune]'")
    monkeypatch.chdir(tmp_path)
    given = {"--metric": "fid", "--steps-per-trial": "40",
             "--param": "optim.lr_g=uniform:1e-4:1e-3"}
    for flag, value in given.items():
        if flag not in argv:
            argv = [*argv, flag, value]
    code, err = _tune(capsys, *argv)
    assert code == 2 and err.count("\n") == 1
    if line is None:  # the metric registry's own words
        assert err.startswith("ganforge: error: unknown metric 'fdi' (did you mean 'fid'?)")
    else:
        assert err == f"ganforge: error: {line}\n"
    assert not (tmp_path / "unused").exists()


def test_without_optuna_the_command_names_the_extra(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    code, err = _tune(capsys, "--metric", "fid", "--steps-per-trial", "40")
    assert (code, err) == (2, "ganforge: error: ganforge tune needs Optuna; pip install "
                              "'ganforge[tune]'\n")
