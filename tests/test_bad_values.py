"""Values refused for what they are: a negative or zero duration reaches ganforge's own check
(not argparse's "expected one argument"), and a mistyped name gets "did you mean" from every
registry and from the presets. One line, exit status 2, as in ``tests/test_bad_input.py``.
"""

from __future__ import annotations

import re

import pytest

from ganforge.cli import build_parser
from ganforge.config import parse_duration_minutes
from ganforge.data import DATASETS
from ganforge.errors import ConfigError, plural, unknown_name
from ganforge.losses import LOSSES
from ganforge.metrics import METRICS
from ganforge.models import MODELS
from ganforge.registry import Registry
from ganforge.run.export import EXPORTERS
from tests.test_bad_input import refused, sets

POSITIVE = "must be positive; write e.g. 30s, 5m or 2h"


@pytest.mark.parametrize("flags, shown", [
    (["--time-budget", "-5m"], "-5m"),
    (["--time-budget=-5m"], "-5m"),
    (["--time-budget", "-90s"], "-90s"),
    (["--time-budget", "0"], "0"),
    (["--time-budget", "0m"], "0m"),
])
def test_time_budget_must_be_positive(flags, shown, capsys):
    refused(capsys, ["train", "--preset", "cgan-digits", *flags, "--dry-run"],
            f"ganforge: error: time budget '{shown}' {POSITIVE}")


def test_negative_numbers_still_parse_as_values():
    args = build_parser().parse_args(["train", "--seed", "-1", "--time-budget", "-0.5h"])
    assert (args.seed, args.time_budget) == (-1, "-0.5h")
    args = build_parser().parse_args(["generate", "RUN", "--out", "g.png", "--class", "-2"])
    assert args.classes == [-2]


def test_a_flag_is_still_a_flag_after_an_option():
    """Only '-' followed by a digit is a value: a missing value is still named by argparse."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--time-budget", "--dry-run"])


@pytest.mark.parametrize("text", ["-5m", "0", "-0.5h", "+0s"])
def test_durations_that_are_not_positive(text):
    with pytest.raises(ConfigError, match=re.escape(f"time budget '{text}' {POSITIVE}")):
        parse_duration_minutes(text)
    assert parse_duration_minutes("+2m") == 2.0


@pytest.mark.parametrize("argv, message", [
    (["train", "--preset", "cgan-mnsit", "--dry-run"],
     "unknown preset 'cgan-mnsit' (did you mean 'cgan-mnist'?); valid presets: "
     "acgan-celeba64-attributes, "),
    (["summary", "dcgan-mnits"],
     "unknown preset 'dcgan-mnits' (did you mean 'dcgan-mnist'?); valid presets: "),
    (["train", "--preset", "cgan-digits", "--steps", "1", *sets("data.name=mnsit")],
     "unknown dataset 'mnsit' (did you mean 'mnist'?); valid datasets: arrays, celeba, "),
    (["train", "--preset", "cgan-digits", "--steps", "1", *sets("loss.name=hinje")],
     "unknown loss 'hinje' (did you mean 'hinge'?); valid losses: "),
])
def test_mistyped_names_get_a_suggestion(argv, message, capsys, tmp_path):
    out = tmp_path / "run"
    if argv[0] == "train" and "--dry-run" not in argv:
        argv = [*argv, "--out", str(out)]
    line = refused(capsys, argv, message, watch=out)
    assert line.count("did you mean") == 1


@pytest.mark.parametrize("registry, typo, meant", [
    (MODELS, "dcgna", "dcgan"),
    (LOSSES, "wgan-pg", "wgan-gp"),
    (DATASETS, "cifar01", "cifar10"),
    (METRICS, "fdi", "fid"),
    (EXPORTERS, "onxx", "onnx"),
])
def test_every_registry_suggests_the_closest_name(registry, typo, meant):
    with pytest.raises(ConfigError) as err:
        registry.get(typo)
    assert str(err.value) == (f"unknown {registry.kind} '{typo}' (did you mean '{meant}'?); "
                              f"valid {plural(registry.kind)}: {', '.join(registry.names())}")


def test_no_suggestion_when_nothing_is_close():
    registry: Registry[int] = Registry("box")
    registry.register("alpha", info="first")(1)
    assert str(unknown_name("box", "zzz", registry.names())) == (
        "unknown box 'zzz'; valid boxes: alpha")
    assert registry.info("alpha") == "first"
    with pytest.raises(ConfigError, match="^unknown box 'alpah' \\(did you mean 'alpha'\\?\\)"):
        registry.info("alpah")
    assert [plural(w) for w in ("loss", "model", "box", "batch")] == [
        "losses", "models", "boxes", "batches"]
