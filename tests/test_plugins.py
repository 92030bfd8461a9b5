"""Plugins by entry point: the example package in ``examples/plugin`` (a loss with a setting of
its own and a dataset) is listed, configured, checked, trained through the CLI, saved, reloaded
and reported like a built-in component; a run that needs a missing plugin names it; and the
registry's discovery itself, with entry points made here (a working and a broken package)."""

from __future__ import annotations

import importlib.metadata
import json
import sys

import pytest

from ganforge.cli import main
from ganforge.config import resolve
from ganforge.errors import ConfigError
from ganforge.registry import LOSSES, Registry
from tests.conftest import REPO

pytest.importorskip("ganforge_ralsgan", reason="the example plugin is not installed; "
                    "`pip install -e examples/plugin` (make install does)")

CONFIG = REPO / "examples" / "plugin" / "rings.toml"
PACKAGE = f"ganforge-ralsgan {importlib.metadata.version('ganforge-ralsgan')}"
FAST = ["--set", "log.trackers=[]", "--set", "log.report_every_s=0", "--set", "log.log_every=5",
        "--set", "log.checkpoint_every=10", "--set", "data.ring_points=600",
        "--set", "model.g_hidden=[32]", "--set", "model.d_hidden=[32]", "--no-progress"]


def refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err.strip()


def test_the_plugin_is_listed_with_its_package_and_its_settings(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.strip().startswith("ralsgan ")]
    assert line.endswith(f"[plugin: {PACKAGE}]")
    assert main(["list", "--details", "ralsgan"]) == 0
    details = capsys.readouterr().out.splitlines()
    assert details[0].startswith(f"loss ralsgan (plugin: {PACKAGE}): Relativistic average LSGAN")
    assert details[1].split() == ["loss.margin", "float", "=", "1.0;", "positive"]
    assert LOSSES.origin("ralsgan") == PACKAGE and LOSSES.origin("bce") is None
    # Found as an installed distribution's entry points, as any third-party package is.
    dist = importlib.metadata.distribution("ganforge-ralsgan")
    assert {p.group: p.name for p in dist.entry_points} == {
        "ganforge.losses": "ralsgan", "ganforge.datasets": "rings"}


def test_its_settings_are_checked_like_a_built_ins(capsys):
    cfg = resolve(config_file=str(CONFIG), overrides=["loss.margin=2.5", "data.rings=4"])
    assert (cfg.loss.name, cfg.loss.margin, cfg.data.rings) == ("ralsgan", 2.5, 4)
    assert not hasattr(cfg.data, "toy")  # gan-toy2d's own key went with its dataset
    err = refused(capsys, ["train", "--config", str(CONFIG), "--set", "loss.margin=-1",
                           "--dry-run"])
    assert err == "ganforge: error: loss.margin=-1.0 must be positive, e.g. 1"
    err = refused(capsys, ["train", "--config", str(CONFIG), "--set", "loss.marign=2",
                           "--dry-run"])
    assert err.startswith("ganforge: error: unknown config key 'loss.marign' for loss "
                          "'ralsgan' (did you mean 'loss.margin'?); valid keys: loss.name, "
                          "loss.n_critic, loss.margin, ")


@pytest.mark.slow
def test_it_trains_saves_reloads_and_resumes_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(CONFIG), "--steps", "20", "--out", str(run),
                 *FAST]) == 0
    saved = json.loads((run / "config.json").read_text())
    assert saved["loss"]["name"] == "ralsgan" and saved["loss"]["margin"] == 1.0
    assert saved["data"]["name"] == "rings" and saved["data"]["rings"] == 3
    assert saved["plugins"] == {"loss:ralsgan": PACKAGE, "dataset:rings": PACKAGE}
    assert "Loss/D" in (run / "stats.jsonl").read_text()
    capsys.readouterr()
    assert main(["generate", str(run), "--n", "50", "--format", "npz",
                 "--out", str(tmp_path / "s.npz")]) == 0
    assert main(["evaluate", str(run), "--metrics", "parzen", "--n", "200"]) == 0
    assert "parzen200_rings" in (run / "metrics.json").read_text()
    assert main(["train", "--resume", str(run), "--steps", "30", "--no-progress"]) == 0
    assert "resumed from step_000000020.json at step 20" in capsys.readouterr().out
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "ralsgan" in html and "rings" in html


def test_a_run_needing_a_missing_plugin_names_the_package(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", str(CONFIG), "--steps", "2", "--out", str(run),
                 *FAST]) == 0
    saved = json.loads((run / "config.json").read_text())
    saved["loss"]["name"] = "ralsgan2"
    saved["plugins"] = {"loss:ralsgan2": "ganforge-ralsgan2 0.3"}
    (run / "config.json").write_text(json.dumps(saved))
    capsys.readouterr()
    err = refused(capsys, ["train", "--resume", str(run), "--steps", "4"])
    assert err == ("ganforge: error: this run needs loss 'ralsgan2' from the plugin package "
                   "ganforge-ralsgan2 0.3, which is not installed here; pip install "
                   "ganforge-ralsgan2")


# ---------------------------------------------------------------------------------------------
# Discovery, with entry points made here
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Two "installed" packages on sys.path: one registers a class, one fails to import."""
    (tmp_path / "good_plugin.py").write_text(
        "class Thing:\n    '''A thing from a plugin.'''\n")
    (tmp_path / "broken_plugin.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [importlib.metadata.EntryPoint("good", "good_plugin:Thing", "test.things"),
              importlib.metadata.EntryPoint("bad", "broken_plugin", "test.things")]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [p for p in points if p.group == group])
    yield
    for name in ("good_plugin", "broken_plugin"):
        sys.modules.pop(name, None)


def test_entry_points_fill_a_registry_on_its_first_lookup(packages):
    things: Registry = Registry("thing", group="test.things")
    assert things.names() == ["good"]
    assert things.doc("good") == "A thing from a plugin."
    assert things.origin("good") == "good_plugin:Thing"  # no distribution: the entry point
    assert things.broken() == {"bad": "thing 'bad' comes from the package broken_plugin, which "
                               "failed to load (ImportError: needs libfoo); reinstall or fix it"}
    with pytest.raises(ConfigError, match=r"^thing 'bad' comes from the package broken_plugin"):
        things.get("bad")
    with pytest.raises(ConfigError, match=r"^unknown thing 'god' \(did you mean 'good'\?\)"):
        things.get("god")
