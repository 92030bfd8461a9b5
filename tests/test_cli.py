"""The ganforge command: help, dry-run, list, summary, train + generate, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.config import list_presets, resolve
from tests.training.step.test_loop import preset_on_generated_data


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", [[], ["train"], ["generate"], ["summary"], ["tune"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main(command + ["--help"])
    assert info.value.code == 0
    assert "usage: ganforge" in capsys.readouterr().out


def test_module_entry_point_help():
    proc = subprocess.run([sys.executable, "-m", "ganforge", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "train" in proc.stdout


def test_dry_run_prints_resolved_config(capsys):
    code, out, _ = run_cli(capsys, "train", "--preset", "cgan-mnist", "--set", "optim.lr_g=1e-4",
                           "--time-budget", "90s", "--dry-run")
    cfg = json.loads(out)
    assert code == 0 and cfg["optim"]["lr_g"] == 1e-4 and cfg["train"]["minutes"] == 1.5
    assert cfg["model"]["conditional"] is True and cfg["name"] == "cgan-mnist"


@pytest.mark.parametrize("argv, message", [
    (["train", "--preset", "cgan-mnist", "--set", "optim.lr_gg=1", "--dry-run"],
     "unknown config key 'optim.lr_gg'"),
    (["train", "--preset", "nope", "--dry-run"], "unknown preset 'nope'"),
    (["train", "--dry-run"], "say what to train"),
    (["train", "--preset", "gan-mnist", "--time-budget", "soon", "--dry-run"], "not a duration"),
    (["generate", "no-such-run", "--out", "x.png"], "'no-such-run' does not exist; pass the folder"),
])
def test_errors_are_one_line_with_status_2(argv, message, capsys):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ganforge: error: ") and message in err
    assert "Traceback" not in err


def test_list_shows_every_registry(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in list_presets() + ["mlp", "dcgan", "cgan-paper", "bce", "minimax", "digits",
                                  "mnist", "kmnist49", "celeba", "image-folder", "toy-2d"]:
        assert f"  {name} " in out, name


def test_list_shows_reproductions_apart(capsys):
    """Presets that keep a document's exact settings are listed after the tuned ones."""
    _, out, _ = run_cli(capsys, "list")
    tuned, _, rest = out.partition("reproductions (")
    reproductions = rest.split("\nmodels:")[0]
    expected = {"acgan-kmnist", "acgan-kmnist49", "cgan-paper-mnist", "cgan-seed001-mnist",
                "dcgan-celeba64", "dcgan-cifar10", "dcgan-folder64", "dcgan-seed002-mnist",
                "wgan-gp-celeba64"}
    listed = {line.split()[0] for line in reproductions.splitlines()[1:] if line.strip()}
    assert listed == expected
    assert {p for p in list_presets() if resolve(p).reproduces} == expected
    # A preset built on a reproduction that changes it says it is not one.
    assert "  cdcgan-celeba64-attributes " in tuned and "  cgan-mnist " in tuned
    assert "[seed 002]" in reproductions and "[seed 001]" in reproductions


def test_summary_seed002_matches_hand_count(capsys):
    code, out, _ = run_cli(capsys, "summary", "dcgan-seed002-mnist")
    assert code == 0 and "Generator" in out and "Discriminator" in out
    # Linear with bias, then the seed's bias-free convs, each ConvT followed by BatchNorm.
    g_params = (100 * 6272 + 6272) + 128 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 9
    assert f"{g_params:,}" in out


@pytest.fixture(scope="module")
def trained_cgan(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", "--preset", "cgan-digits", "--out", str(out)]
    for o in preset_on_generated_data("cgan-digits", steps=3):
        argv += ["--set", o]
    assert main(argv) == 0
    return out


def test_generate_npz_per_class(trained_cgan, tmp_path, capsys):
    path = tmp_path / "s.npz"
    code, _, _ = run_cli(capsys, "generate", str(trained_cgan), "--per-class", "4", "--format",
                         "npz", "--out", str(path))
    assert code == 0
    data = np.load(path, allow_pickle=False)
    assert data["images"].shape == (40, 28, 28) and data["images"].dtype == np.uint8
    assert data["labels"].dtype == np.int64 and data["labels"].tolist() == \
        [k for k in range(10) for _ in range(4)]


def test_generate_class_png_and_folder(trained_cgan, tmp_path, capsys):
    code, _, _ = run_cli(capsys, "generate", str(trained_cgan), "--class", "3", "--n", "5",
                         "--out", str(tmp_path / "g.png"))
    assert code == 0 and Image.open(tmp_path / "g.png").size[0] > 5 * 28
    code, _, _ = run_cli(capsys, "generate", str(trained_cgan), "--n", "6",
                         "--out", str(tmp_path / "folder"))
    assert code == 0 and len(list((tmp_path / "folder").glob("*.png"))) == 6


def test_generate_same_seed_same_samples(trained_cgan, tmp_path, capsys):
    for name in ("a", "b"):
        run_cli(capsys, "generate", str(trained_cgan), "--n", "8", "--format", "npz",
                "--seed", "5", "--out", str(tmp_path / f"{name}.npz"))
    assert np.array_equal(np.load(tmp_path / "a.npz")["images"],
                          np.load(tmp_path / "b.npz")["images"])


def test_generate_class_out_of_range(trained_cgan, tmp_path, capsys):
    code, _, err = run_cli(capsys, "generate", str(trained_cgan), "--class", "10",
                           "--out", str(tmp_path / "x.png"))
    assert code == 2 and "class 10 is out of range; this model has classes 0..9" in err
    assert not (tmp_path / "x.png").exists()


def test_resume_via_cli(trained_cgan, capsys):
    code, out, _ = run_cli(capsys, "train", "--resume", str(trained_cgan), "--steps", "4")
    assert code == 0
    assert json.loads((trained_cgan / "summary.json").read_text())["steps"] == 4


def test_a_closed_pipe_ends_the_command_quietly():
    """`ganforge list | head -1`: the reader leaves early; no traceback, the shell's 141.
    (The pipe is closed before the command writes, so its first write meets the closed pipe.)"""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err, err
