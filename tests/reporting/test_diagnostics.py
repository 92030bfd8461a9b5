"""Diagnostics fire once on broken runs (real and synthetic) and stay quiet on healthy ones."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ganforge import api
from ganforge.config import DiagnosticsConfig, resolve
from ganforge.errors import ConfigError
from ganforge.reporting.diagnostics import (CHECKS, Diagnostics, read_findings, replay,
                                           sample_diversity)
from tests.conftest import fast_overrides

WINDOW = ["diagnostics.window_steps=100"]


def small_cgan(steps: int, *extra: str) -> list[str]:
    """The quick-start cGAN on the embedded digits at a tenth of its width."""
    return fast_overrides(steps, batch=32) + [
        "data.limit=1000", "model.g_hidden=[64,128]", "model.d_hidden=[128]",
        "log.log_every=10", "log.sample_every=25", "log.checkpoint_every=1000",
        "log.tensorboard=false", "log.report_every_s=none", *WINDOW, *extra]


def train(tmp_path, preset: str, overrides: list[str]) -> tuple[list[str], list[str]]:
    """Train; returns (names in diagnostics.jsonl, console lines that name a diagnostic)."""
    lines: list[str] = []
    api.train(preset, overrides=overrides, out=str(tmp_path / "run"), log=lines.append)
    findings = read_findings(tmp_path / "run")
    assert findings is not None
    return [f.name for f in findings], [line for line in lines if line.startswith("diagnostic")]


def test_strong_discriminator_and_frozen_generator_fire_once(tmp_path):
    # D learns 10x faster than the default while G barely moves (no BatchNorm in G, so its
    # eval-mode output depends on its weights alone).
    names, console = train(tmp_path, "cgan-digits", small_cgan(
        250, "optim.lr_d=2e-3", "optim.lr_g=1e-12", "model.g_norm=none"))
    assert sorted(names) == ["d-wins", "g-frozen"]
    assert len(console) == 2 and all("Advice:" in line for line in console)
    findings = {f.name: f for f in read_findings(tmp_path / "run")}
    # D(x) -> 1 within ~40 steps; the streak must then last window_steps (100) more.
    assert 100 <= findings["d-wins"].step <= 200
    # Three still pairs of snapshots in a row (every 25 steps and at epoch ends): the 4th.
    snapshots = sorted(int(p.stem[5:]) for p in (tmp_path / "run" / "samples").iterdir())
    assert findings["g-frozen"].step == snapshots[3]
    assert "optim.lr_d" in findings["d-wins"].advice


@pytest.mark.parametrize("preset,overrides", [
    ("cgan-digits", small_cgan(300)),
    ("gan-toy2d", fast_overrides(300, batch=128) + [
        "data.toy_samples=4096", "model.g_hidden=[64,64]", "model.d_hidden=[64,64]",
        "log.log_every=10", "log.sample_every=25", "log.checkpoint_every=1000",
        "log.tensorboard=false", "log.report_every_s=none", "log.grid_samples=256", *WINDOW]),
])
def test_healthy_short_runs_stay_quiet(tmp_path, preset, overrides):
    names, console = train(tmp_path, preset, overrides)
    assert names == [] and console == []


def records(pairs: list[tuple[float, float]], key_real: str, key_fake: str, every: int = 50):
    return [{"step": every * (i + 1), key_real: a, key_fake: b} for i, (a, b) in enumerate(pairs)]


def test_acgan_class_imbalance_needs_a_sustained_gap():
    cfg = DiagnosticsConfig(window_steps=200)
    # A one-line spike, then a balanced stretch: quiet.
    quiet = records([(2.0, 0.1)] + [(0.8, 0.6)] * 10, "Loss/D/class_real", "Loss/D/class_fake")
    assert replay(quiet, cfg) == []
    # Seed 000: real-image class loss stays high while fakes are classified almost perfectly.
    lines = records([(0.8, 0.6)] * 3 + [(2.2, 0.05)] * 10, "Loss/D/class_real",
                    "Loss/D/class_fake")
    (finding,) = replay(lines, cfg)
    # The streak starts at step 200 (4th line) and holds 200 steps at step 400.
    assert (finding.name, finding.step) == ("class-imbalance", 400)
    assert "2.200 vs 0.050" in finding.message and "class_on_fake" in finding.advice
    # Ratio above 3 but a gap below class_gap (both tiny) is not an imbalance.
    assert replay(records([(0.03, 0.005)] * 20, "Loss/D/class_real", "Loss/D/class_fake"),
                  cfg) == []


# D's class loss on real and fake images of seed 000's ACGAN (acgan-kmnist) on the real KMNIST
# test split, every 50 steps from step 50 (benchmarks/results/kmnist_acgan.md, seed 0).
SEED000_KMNIST = [(1.099, 0.449), (0.672, 0.022), (0.532, 0.014), (0.386, 0.016),
                  (0.349, 0.016), (0.342, 0.016), (0.242, 0.018), (0.231, 0.022), (0.221, 0.021),
                  (0.181, 0.029), (0.152, 0.033), (0.168, 0.037), (0.141, 0.042), (0.121, 0.047),
                  (0.136, 0.042), (0.129, 0.053), (0.102, 0.051), (0.117, 0.057)]


def test_seed_000s_measured_imbalance_fires_with_the_default_thresholds():
    lines = records(SEED000_KMNIST, "Loss/D/class_real", "Loss/D/class_fake")
    (finding,) = replay(lines, DiagnosticsConfig())
    # Ratio above 3 and gap above 0.05 nats from step 100 on: 500 steps later it fires.
    assert (finding.name, finding.step) == ("class-imbalance", 600)
    # The same curve from a head that never trains on fakes is G succeeding: quiet.
    heldout = records(SEED000_KMNIST, "Loss/D/class_real", "Loss/D/class_fake_heldout")
    assert replay(heldout, DiagnosticsConfig()) == []


def test_discriminator_wins_on_stats_alone():
    cfg = DiagnosticsConfig(window_steps=100)
    lines = records([(0.99, 0.01)] * 2 + [(0.9, 0.01)] + [(0.99, 0.01)] * 3,
                    "Prob/D(x)", "Prob/D(G(z))")
    (finding,) = replay(lines, cfg)  # the streak restarts at step 200: 200, 250, 300
    assert (finding.name, finding.step) == ("d-wins", 300)


def test_non_finite_fires_at_once_and_once(tmp_path):
    logged: list[str] = []
    diag = Diagnostics(DiagnosticsConfig(), log=logged.append, path=tmp_path / "d.jsonl")
    diag.write_scalars(10, {"Loss/D": 1.0, "Loss/G": 0.5})
    diag.write_scalars(20, {"Loss/D": math.nan, "Loss/G": 0.5})
    diag.write_scalars(30, {"Loss/D": math.inf, "Loss/G": math.nan})
    diag.close()
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [(r["step"], r["name"]) for r in lines] == [(20, "non-finite")]
    assert lines[0]["message"] == "Loss/D is nan at step 20." and len(logged) == 1
    # stats.jsonl stores non-finite values as null; the replay reads them back as NaN.
    assert replay([{"step": 5, "Loss/G": None}], DiagnosticsConfig())[0].name == "non-finite"


def test_sample_diversity_values():
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0], [0.0, 1.0]])
    assert sample_diversity(x) == pytest.approx((5 + 0 + 1 + 5 + math.sqrt(18) + 1) / 6)
    y = torch.tensor([0, 0, 1, 1])
    assert sample_diversity(x, y) == pytest.approx((5.0 + 1.0) / 2)  # within each class
    assert math.isnan(sample_diversity(x[:1]))


def test_mode_collapse_from_samples_and_from_class_entropy():
    cfg = DiagnosticsConfig(window_steps=100, patience=2)
    diag = Diagnostics(cfg, log=lambda m: None, reference_diversity=10.0)
    gen = torch.Generator().manual_seed(0)
    diverse = torch.randn(32, 8, generator=gen) * 4  # pairwise distance ~ 4 * sqrt(16) = 16
    diag.observe_samples(50, diverse * 0.01)  # before the window: ignored, not a peak
    diag.observe_samples(100, diverse)
    diag.observe_samples(200, diverse * 0.1)  # diversity falls to a tenth: 1 of 2
    assert diag.findings == []
    diag.observe_samples(300, diverse * 0.1)
    (finding,) = diag.findings
    assert (finding.name, finding.step) == ("mode-collapse", 300)

    # A predicted-class entropy (any Metrics/*entropy* statistic) that halves: fires.
    lines = [{"step": s, "Metrics/class-entropy": v}
             for s, v in ((500, 0.9), (1000, 0.95), (1500, 0.5), (2000, 0.45))]
    (finding,) = replay(lines, cfg)
    assert (finding.name, finding.step) == ("mode-collapse", 2000)
    assert replay(lines[:3], cfg) == []


def test_findings_survive_a_resume_without_repeating(tmp_path):
    overrides = small_cgan(150, "optim.lr_d=2e-3", "optim.lr_g=1e-12", "model.g_norm=none",
                           "log.checkpoint_every=75")
    names, _ = train(tmp_path, "cgan-digits", overrides)
    assert "g-frozen" in names  # before step 150, where the run resumes
    # A finding past the resumed step (as a killed run leaves) describes training to be redone.
    with open(tmp_path / "run" / "diagnostics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 10_000, "name": "mode-collapse", "title": "t",
                             "message": "m", "advice": "a"}) + "\n")
    logged: list[str] = []
    api.train(overrides=["train.steps=200"], resume=str(tmp_path / "run"), log=logged.append)
    after = [f.name for f in read_findings(tmp_path / "run")]
    assert after.count("g-frozen") == 1 and "mode-collapse" not in after
    assert len(after) == len(set(after))
    assert not any("[g-frozen]" in line for line in logged)


def test_registry_and_config_validation():
    assert CHECKS.names() == ["class-imbalance", "d-wins", "g-frozen", "mode-collapse",
                              "non-finite"]
    with pytest.raises(ConfigError, match="d_wins_fake < d_wins_real"):
        resolve("cgan-digits", overrides=["diagnostics.d_wins_real=0.01"])
    with pytest.raises(ConfigError, match="collapse_ratio must be in"):
        resolve("cgan-digits", overrides=["diagnostics.collapse_ratio=1.5"])
    cfg = resolve("cgan-digits", overrides=["diagnostics.enabled=false"])
    assert cfg.diagnostics.enabled is False
